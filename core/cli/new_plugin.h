/* core/cli/new_plugin.h — `dkhost new-plugin`: writes a plugin skeleton. */
#ifndef DKH_NEW_PLUGIN_H
#define DKH_NEW_PLUGIN_H

/* Runs `dkhost new-plugin --kind KIND NAME DIR` with argv[0] = "new-plugin":
 * creates DIR (or fills it if it is an empty folder) with the template of
 * KIND built into libdk, NAME filled in. Writes to stdout and stderr; returns
 * the exit code (docs/cli.md): 0 written, 2 usage error (unknown kind or
 * option, bad NAME), 5 DIR exists and is not empty or a file cannot be
 * written. */
int dkh_cli_new_plugin(int argc, char **argv);

#endif /* DKH_NEW_PLUGIN_H */
