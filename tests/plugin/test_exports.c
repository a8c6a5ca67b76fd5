/* tests/plugin/test_exports.c — every plugin exports exactly one symbol.
 *
 * Runs `nm -D --defined-only` on each fixture plugin and on every in-tree
 * plugin in the build's plugins/ directory, and fails on any defined dynamic
 * symbol other than dk_plugin_entry: an extra export could collide with the
 * host or another plugin, and means the plugin was not built hidden. The
 * stray fixture is an ordinary library, not a plugin, and is skipped.
 */
#include "plugin_test.h"

#include <dirent.h>
#include <sys/stat.h>

static size_t n_checked;

static void check_exports(const char *path)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "'%s' -D --defined-only '%s' 2>&1", DK_NM, path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[1024];
    bool entry = false, bad = false;
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = '\0';
        /* "<address> <class> <name>"; the name is the last field. */
        const char *name = strrchr(line, ' ');
        name = name ? name + 1 : line;
        if (strcmp(name, "dk_plugin_entry") == 0) {
            entry = true;
        } else {
            print_error("%s exports '%s' (nm line: %s)\n", path, name, line);
            bad = true;
        }
    }
    assert_int_equal(pclose(p), 0);
    if (!entry)
        print_error("%s does not export dk_plugin_entry\n", path);
    assert_true(entry);
    assert_false(bad);
    n_checked++;
}

/* Checks every "*.so" in dir; recurses one level when `nested`. */
static void check_dir(const char *dir, bool nested)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        size_t n = strlen(e->d_name);
        if (S_ISDIR(st.st_mode) && nested)
            check_dir(path, false);
        else if (S_ISREG(st.st_mode) && n > 3 && strcmp(e->d_name + n - 3, ".so") == 0 &&
                 strcmp(e->d_name, "stray.so") != 0)
            check_exports(path);
    }
    closedir(d);
}

static void test_fixture_exports(void **state)
{
    (void)state;
    n_checked = 0;
    check_dir(FIXTURE_DIR, true);
    assert_true(n_checked >= 10);
}

static void test_in_tree_plugin_exports(void **state)
{
    (void)state;
    n_checked = 0;
    /* In-tree plugins are optional at this stage; each one present must
     * pass. (The directory may not exist yet.) */
    check_dir(DK_BINARY_DIR "/plugins", true);
    print_message("checked %zu in-tree plugin(s)\n", n_checked);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_exports),
        cmocka_unit_test(test_in_tree_plugin_exports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
