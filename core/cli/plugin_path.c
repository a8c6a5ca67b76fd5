/* core/cli/plugin_path.c — finding the plugin directories.
 *
 * dkhost run from its build tree must find the in-tree plugins without flags,
 * and an installed dkhost must find the installed ones even when the install
 * prefix was chosen at `cmake --install` time, so the default directory is
 * derived from where the running executable is, not from a configure-time path.
 */
#include "plugin_path.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef DK_BUILD_BIN_DIR
#define DK_BUILD_BIN_DIR ""
#endif
#ifndef DK_BUILD_PLUGIN_DIR
#define DK_BUILD_PLUGIN_DIR ""
#endif
#ifndef DK_INSTALL_PLUGIN_RELDIR
#define DK_INSTALL_PLUGIN_RELDIR "../lib/dk/plugins"
#endif

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *dkh_plugins_default_dir(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return dkh_strdup(DK_BUILD_PLUGIN_DIR);
    exe[n] = '\0';
    char *dir = dirname(exe);
    char real_bin[PATH_MAX], real_build[PATH_MAX];
    if (realpath(dir, real_bin) && realpath(DK_BUILD_BIN_DIR, real_build) &&
        strcmp(real_bin, real_build) == 0)
        return dkh_strdup(DK_BUILD_PLUGIN_DIR);
    return dkh_asprintf("%s/%s", dir, DK_INSTALL_PLUGIN_RELDIR);
}

dk_status dkh_plugins_load(dkh_registry *reg, const char *const *dirs, size_t n_dirs,
                           bool no_default)
{
    for (size_t i = 0; i < n_dirs; i++) {
        struct stat st;
        if (stat(dirs[i], &st) != 0)
            return dk_fail(DK_ERR_PLUGIN, "--plugins %s: %s", dirs[i], strerror(errno));
        if (!S_ISDIR(st.st_mode))
            return dk_fail(DK_ERR_PLUGIN, "--plugins %s: not a directory", dirs[i]);
        DK_TRY(dkh_registry_load_dir(reg, dirs[i]));
    }

    const char *env = getenv("DK_PLUGIN_PATH");
    if (env && *env) {
        char *copy = dkh_strdup(env), *save = NULL;
        for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
            if (!is_dir(d)) {
                dk_log(DK_LOG_WARN, "DK_PLUGIN_PATH entry %s is not a directory; skipped", d);
                continue;
            }
            dk_status s = dkh_registry_load_dir(reg, d);
            if (s != DK_OK) {
                free(copy);
                return s;
            }
        }
        free(copy);
    }

    if (no_default)
        return DK_OK;
    char *def = dkh_plugins_default_dir();
    dk_status s = is_dir(def) ? dkh_registry_load_dir(reg, def) : DK_OK;
    free(def);
    return s;
}
