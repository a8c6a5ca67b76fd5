/* tests/sweep/test_reload.c — the hook reload API, driven in process.
 *
 * A registry loads the sweep_hook fixture the way a sweep does (from a
 * private copy of a scratch file that stands for the user's build output);
 * each test writes another build over the scratch file in place, as `cp`
 * does, and asks for a reload:
 *
 *   - refused while an instance of the hook is alive, and while a run is
 *     marked active: the message says why, the old build keeps working;
 *   - a broken build (init fails) and a renamed one are refused with a
 *     message naming the file and the reason; the old build stays
 *     registered and its hooks still run;
 *   - a good build replaces the old one: new instances come from it, and the
 *     old private copy is gone from /proc/self/maps and from disk;
 *   - 100 swaps, alternating v1 and v2, each with an instance made and
 *     destroyed, leave the thread count, the open descriptors and both
 *     allocators' byte counters where they were.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dk/dk.h>

#include "cfg/cfg.h"
#include "plugin/registry.h"
#include "plugin/reload.h"
#include "util/util.h"

#include "dk_test.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUILD(b) SWEEP_FIXTURES "/" b "/sweep_hook.so"

typedef struct fixture {
    char dir[512];
    char path[600]; /* the scratch plugin file the registry loads from */
    dkh_registry *reg;
} fixture;

static bool no_dlclose(void)
{
    const char *v = getenv("DK_NO_DLCLOSE");
    return v && strcmp(v, "1") == 0;
}

/* Writes src's bytes over dst in place (same inode), as `cp` does. */
static void copy_over(const char *src, const char *dst)
{
    int in = open(src, O_RDONLY);
    assert_true(in >= 0);
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    assert_true(out >= 0);
    char buf[1 << 14];
    for (ssize_t n; (n = read(in, buf, sizeof buf)) > 0;)
        assert_int_equal(write(out, buf, (size_t)n), n);
    close(in);
    assert_int_equal(close(out), 0);
}

static const dkh_plugin *hook_plugin(const fixture *f)
{
    for (size_t i = 0; i < dkh_registry_n_plugins(f->reg); i++) {
        const dkh_plugin *p = dkh_registry_plugin_at(f->reg, i);
        if (strcmp(p->name, "sweep_hook") == 0)
            return p;
    }
    return NULL;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s/reload_%d", DK_TEST_BINARY_DIR, (int)getpid());
    mkdir(f->dir, 0755);
    snprintf(f->path, sizeof f->path, "%s/sweep_hook.so", f->dir);
    copy_over(BUILD("v1"), f->path);
    f->reg = dkh_registry_new();
    dkh_registry_set_current(f->reg);
    dkh_registry_set_private_copies(f->reg, true);
    if (dkh_registry_load_file(f->reg, f->path) != DK_OK) {
        print_error("%s\n", dk_last_error());
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    dkh_registry_set_current(NULL);
    dkh_registry_free(f->reg);
    dkh_private_dir_remove();
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* An instance of SweepHook; the version of the build that made it. */
static dk_object *make_hook(int *version)
{
    dk_cfg *node = NULL;
    assert_int_equal(dkh_cfg_parse("type: SweepHook\n", "hook.yaml", &node), DK_OK);
    dk_object *obj = NULL;
    dk_status s = dk_object_build(node, "hook", &obj);
    if (s != DK_OK)
        fail_msg("building SweepHook: %s", dk_last_error());
    dkh_cfg_free(node);
    if (version)
        *version = *(const int *)dk_object_self(obj);
    return obj;
}

/* Runs the instance's before_run: the library's code is still callable. */
static void call_hook(dk_object *obj)
{
    const dk_hook_vtable *vt = dk_object_type(obj)->vtable;
    assert_non_null(vt->before_run);
    assert_int_equal(vt->before_run(dk_object_self(obj), NULL), DK_OK);
}

/* A new SweepHook is build `want` of the fixture, and its code runs. */
static void expect_build(int want)
{
    int version = 0;
    dk_object *obj = make_hook(&version);
    assert_int_equal(version, want);
    call_hook(obj);
    dk_object_free(obj);
}

static void test_loaded_from_private_copy(void **state)
{
    fixture *f = *state;
    const dkh_plugin *p = hook_plugin(f);
    assert_non_null(p);
    assert_str_eq(p->path, f->path);
    assert_non_null(dkh_private_dir());
    assert_true(strncmp(p->loaded_path, dkh_private_dir(), strlen(dkh_private_dir())) == 0);
    assert_true(dkh_library_mapped(p->loaded_path));
}

static void test_refused_while_alive(void **state)
{
    fixture *f = *state;
    int version = 0;
    dk_object *obj = make_hook(&version);
    assert_int_equal(version, 1);
    copy_over(BUILD("v2"), f->path);
    assert_int_equal(dkh_plugin_reload(f->reg, "sweep_hook", NULL), DK_ERR_PLUGIN);
    assert_contains(dk_last_error(), "cannot reload plugin 'sweep_hook'");
    assert_contains(dk_last_error(), "1 object of its types is still alive");
    call_hook(obj);
    dk_object_free(obj);
    copy_over(BUILD("v1"), f->path);
}

static void test_refused_while_run_active(void **state)
{
    fixture *f = *state;
    copy_over(BUILD("v2"), f->path);
    dkh_registry_run_begin(f->reg);
    assert_int_equal(dkh_plugin_reload(f->reg, "sweep_hook", NULL), DK_ERR_PLUGIN);
    assert_contains(dk_last_error(), "a run is active; plugins are swapped only between runs");
    /* The between-runs check does nothing during a run either. */
    assert_int_equal(dkh_plugins_refresh(f->reg, true), 0);
    dkh_registry_run_end(f->reg);
    expect_build(1);
    copy_over(BUILD("v1"), f->path);
}

static void test_broken_build_keeps_old(void **state)
{
    fixture *f = *state;
    char *before = strdup(hook_plugin(f)->loaded_path);
    copy_over(BUILD("v3"), f->path);
    assert_int_equal(dkh_plugin_reload(f->reg, "sweep_hook", NULL), DK_ERR_RUNTIME);
    const char *msg = dk_last_error();
    assert_contains(msg, "cannot reload plugin 'sweep_hook'");
    assert_contains(msg, f->path);
    assert_contains(msg, "init failed: SweepHook build v3 is broken on purpose");
    assert_contains(msg, "the loaded build stays registered");
    assert_null(strchr(msg, '\n'));

    copy_over(BUILD("renamed"), f->path);
    assert_int_equal(dkh_plugin_reload(f->reg, "sweep_hook", NULL), DK_ERR_PLUGIN);
    assert_contains(dk_last_error(), "a reload must keep the plugin's name");
    assert_contains(dk_last_error(), "'sweep_hook_renamed'");

    /* Still v1, from the same copy, and working. */
    const dkh_plugin *p = hook_plugin(f);
    assert_non_null(p);
    assert_str_eq(p->version, "1.0");
    assert_str_eq(p->loaded_path, before);
    assert_non_null(dkh_registry_find(f->reg, "hook", "SweepHook"));
    expect_build(1);
    /* The refused builds left no copy behind: only the loaded one. */
    DIR *d = opendir(dkh_private_dir());
    int files = 0;
    for (struct dirent *e; (e = readdir(d));)
        files += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(files, 1);
    assert_int_equal(dkh_registry_n_refusals(f->reg), 0);
    free(before);
    copy_over(BUILD("v1"), f->path);
}

static void test_swap_unmaps_old(void **state)
{
    fixture *f = *state;
    char *old = strdup(hook_plugin(f)->loaded_path);
    copy_over(BUILD("v2"), f->path);
    bool unmapped = false;
    dk_status s = dkh_plugin_reload(f->reg, "sweep_hook", &unmapped);
    if (s != DK_OK)
        fail_msg("reload: %s", dk_last_error());
    const dkh_plugin *p = hook_plugin(f);
    assert_str_eq(p->version, "2.0");
    assert_str_eq(p->path, f->path);
    assert_true(strcmp(p->loaded_path, old) != 0);
    expect_build(2);
    /* The old copy is deleted from disk in every case ... */
    struct stat st;
    assert_int_not_equal(stat(old, &st), 0);
    /* ... and unmapped unless DK_NO_DLCLOSE keeps libraries for a leak checker. */
    if (!no_dlclose()) {
        assert_true(unmapped);
        assert_false(dkh_library_mapped(old));
        FILE *maps = fopen("/proc/self/maps", "r");
        assert_non_null(maps);
        char line[4096];
        while (fgets(line, sizeof line, maps))
            if (strstr(line, old))
                fail_msg("the old copy is still mapped: %s", line);
        fclose(maps);
    }
    free(old);
}

static long threads_now(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    char line[256];
    long n = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %ld", &n) == 1)
            break;
    fclose(f);
    return n;
}

static int fds_now(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_hundred_swaps(void **state)
{
    fixture *f = *state;
    /* One swap first, so whatever is made once per process exists. */
    copy_over(BUILD("v2"), f->path);
    assert_int_equal(dkh_plugin_reload(f->reg, "sweep_hook", NULL), DK_OK);
    dk_object_free(make_hook(NULL));

    long threads = threads_now();
    int fds = fds_now();
    size_t host_bytes = dkh_mem_current();
    dk_memory_stats tensor0;
    dk_memory_stats_get((dk_device){DK_DEVICE_CPU, 0}, &tensor0);

    for (int i = 0; i < 100; i++) {
        int want = i % 2 == 0 ? 1 : 2;
        copy_over(want == 1 ? BUILD("v1") : BUILD("v2"), f->path);
        dk_status s = dkh_plugin_reload(f->reg, "sweep_hook", NULL);
        if (s != DK_OK)
            fail_msg("swap %d: %s", i, dk_last_error());
        expect_build(want);
    }

    assert_int_equal(threads_now(), threads);
    assert_int_equal(fds_now(), fds);
    assert_int_equal(dkh_mem_current(), host_bytes);
    dk_memory_stats tensor1;
    dk_memory_stats_get((dk_device){DK_DEVICE_CPU, 0}, &tensor1);
    assert_int_equal(tensor1.current, tensor0.current);
    /* One copy on disk: the loaded one. */
    DIR *d = opendir(dkh_private_dir());
    int files = 0;
    for (struct dirent *e; (e = readdir(d));)
        files += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(files, 1);
    assert_int_equal(dkh_registry_n_plugins(f->reg), 1);
}

static void test_not_unloadable_or_unknown(void **state)
{
    fixture *f = *state;
    assert_int_equal(dkh_plugin_reload(f->reg, "no_such_plugin", NULL), DK_ERR_NOT_FOUND);
    assert_contains(dk_last_error(), "no such plugin is loaded");
    /* A dataset plugin is resident: loaded from its own file, never swapped. */
    const char *toy = DK_BINARY_DIR "/tests/runner/plugins/toy_blobs.so";
    assert_int_equal(dkh_registry_load_file(f->reg, toy), DK_OK);
    const dkh_plugin *p = dkh_registry_plugin_at(f->reg, 1);
    assert_str_eq(p->name, "toy_blobs");
    assert_str_eq(p->loaded_path, toy);
    assert_int_equal(dkh_plugin_reload(f->reg, "toy_blobs", NULL), DK_ERR_PLUGIN);
    assert_contains(dk_last_error(), "is not flagged DK_PLUGIN_UNLOADABLE (hook-only)");
    assert_contains(dk_last_error(), "restart dkhost");
    assert_non_null(dkh_registry_find(f->reg, "dataset", "ToyBlobs"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_loaded_from_private_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_while_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_while_run_active, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_build_keeps_old, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swap_unmaps_old, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hundred_swaps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_unloadable_or_unknown, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
