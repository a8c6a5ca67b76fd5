/* core/cli/plugin_path.h — which directories dkhost loads plugins from. */
#ifndef DKH_PLUGIN_PATH_H
#define DKH_PLUGIN_PATH_H

#include "../plugin/registry.h"

/* The search order: each --plugins DIR as given, then every entry of
 * DK_PLUGIN_PATH (colon-separated; empty entries ignored), then the default
 * directory unless no_default: the build tree's plugins when this dkhost runs
 * from the build tree, else <prefix>/lib/dk/plugins next to the installed
 * binary. Earlier directories shadow later ones by file name.
 *
 * A --plugins directory that cannot be read is an error (DK_ERR_PLUGIN naming
 * it); a missing DK_PLUGIN_PATH entry is logged as a warning; a missing
 * default directory is skipped. Refused plugin files never fail this call:
 * they are recorded in the registry. */
dk_status dkh_plugins_load(dkh_registry *reg, const char *const *dirs, size_t n_dirs,
                           bool no_default) DK_CHECK;

/* The default plugin directory for this executable (new string). */
char *dkh_plugins_default_dir(void);

#endif /* DKH_PLUGIN_PATH_H */
