/* core/cli/sweep.h — `dkhost sweep`: several training runs in one process. */
#ifndef DKH_CLI_SWEEP_H
#define DKH_CLI_SWEEP_H

#include "../plugin/registry.h"

/* What the command line gives a sweep. Everything is borrowed. */
typedef struct dkh_sweep_args {
    const char *const *configs; /* the configs, run in this order */
    size_t n_configs;
    int64_t repeat;             /* the whole list runs this many times (>= 1) */
    const char *between_runs;   /* a /bin/sh command run before every run but the first; NULL: none */
    const char *const *overrides; /* --cfg-options, applied to every run */
    size_t n_overrides;
    const char *work_dir;       /* runs go to <work_dir>/<index>_<config stem>; NULL: their own */
    int64_t seed;               /* -1: each config's */
    int deterministic;          /* -1: each config's */
    bool no_validate;
    /* Prints the current error as "dkhost: <what>: <message>" and returns
     * the exit code its status maps to (main.c's report). */
    int (*report)(dk_status s, const char *what);
} dkh_sweep_args;

/* Runs the sweep with the plugins of reg (loaded with private copies, see
 * dkh_registry_set_private_copies). A failing run is reported and the
 * sweep goes on; an interrupted one (Ctrl-C, SIGTERM) ends the sweep.
 * Returns the exit code: the first failing run's, 0 when every run
 * succeeded. */
int dkh_cli_sweep(const dkh_sweep_args *a, dkh_registry *reg);

#endif /* DKH_CLI_SWEEP_H */
