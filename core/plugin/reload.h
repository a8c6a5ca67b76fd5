/* core/plugin/reload.h — swapping rebuilt hook plugins between runs.
 *
 * A sweep (`dkhost sweep`, core/cli/sweep.c) runs several trainings in one
 * process. Between two runs it may load a new build of a hook plugin in
 * place of the old one: the new build is mapped from a private copy of its
 * file (so a rebuild or a `cp` over the original never touches a mapped
 * library), checked and initialised while the old one is still registered,
 * and only when all of that succeeded do the old types leave the registry,
 * the old build get its shutdown call and its library close. A new build
 * that fails any step leaves the old one registered and working.
 *
 * Only plugins flagged DK_PLUGIN_UNLOADABLE (hook-only plugins, whose
 * objects all die with the run) are swapped; every other plugin stays
 * loaded for the life of the process.
 */
#ifndef DKH_RELOAD_H
#define DKH_RELOAD_H

#include "registry.h"

/* Loads a new build of the loaded plugin `name` from its file (the path it
 * was first loaded from), as described above. Refused, with the old build
 * kept, while a run is active (dkh_registry_run_begin), while any object of
 * its types is alive, when the plugin is not flagged DK_PLUGIN_UNLOADABLE,
 * and when the new build cannot be copied, fails to load, fails the ABI
 * checks, has another plugin name or fails its init: the message names the
 * plugin, its file and the reason. After a swap the old library is checked
 * to be unmapped (unless DK_NO_DLCLOSE=1 keeps it) and a warning is logged
 * when it is not; *unmapped (may be NULL) receives the result (false when
 * not checked). */
dk_status dkh_plugin_reload(dkh_registry *r, const char *name, bool *unmapped) DK_CHECK;

/* The check between two runs of a sweep: every loaded plugin's file is
 * compared with the build that is loaded (device, inode, size, modification
 * time; then the bytes' hash, so a file rewritten unchanged is no change).
 * A changed unloadable plugin is reloaded; a changed resident one is
 * reported once ("restart dkhost to pick this up"); a build that failed to
 * reload is reported once and not retried until the file changes again.
 * force reloads every unloadable plugin whether or not its file changed.
 * Everything is reported through dk_log, one line each. Returns the number
 * of plugins reloaded. Does nothing while a run is active. */
size_t dkh_plugins_refresh(dkh_registry *r, bool force);

/* True when a library whose file is path (absolute) is mapped into this
 * process: asked of the dynamic loader (RTLD_NOLOAD) and of /proc/self/maps. */
bool dkh_library_mapped(const char *path);

/* The process's private plugin directory ($TMPDIR/dkhost-<pid>-XXXXXX,
 * created on first use), or NULL before any copy was made. Borrowed. */
const char *dkh_private_dir(void);
/* Removes the private directory and anything left in it; call once every
 * registry that used it is freed. A later copy creates a new one. */
void dkh_private_dir_remove(void);

#endif /* DKH_RELOAD_H */
