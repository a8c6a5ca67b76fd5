/* core/cli/sweep.c — `dkhost sweep`: several training runs, one after
 * another, in one process (docs/sweeps.md).
 *
 * What a sweep adds to a row of `dkhost train` calls is what one process can
 * keep: datasets whose config did not change stay built (the runner's
 * dataset cache), and hook plugins rebuilt between runs are swapped in
 * without a restart (core/plugin/reload.h). Between two runs the sweep runs
 * the --between-runs command, then looks at every plugin file; a reload of
 * every hook plugin can also be asked for with SIGHUP or a RELOAD file.
 *
 * Each run is on its own: its own work dir and log, its failure reported in
 * one line without stopping the others. Only an interrupt (Ctrl-C, SIGTERM)
 * ends the sweep early.
 */
#include "sweep.h"

#include "../cfg/cfg.h"
#include "../plugin/reload.h"
#include "../runner/config_schema.h"
#include "../runner/runner.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t reload_asked;

static void on_hangup(int sig)
{
    (void)sig;
    reload_asked = 1;
}

typedef struct sweep {
    const dkh_sweep_args *a;
    dkh_registry *reg;
    dkh_dataset_cache *cache;
    size_t total;
    char **used_dirs; /* work dirs earlier runs wrote to */
    size_t n_used;
    char *control_dir; /* where a RELOAD file asks for a reload */
} sweep;

static bool dir_used(const sweep *w, const char *dir)
{
    for (size_t i = 0; i < w->n_used; i++)
        if (strcmp(w->used_dirs[i], dir) == 0)
            return true;
    return false;
}

/* The run's work dir: <--work-dir>/<k>_<stem>, else the one `dkhost train`
 * would use, with "_<k>" added when an earlier run of the sweep used it. */
static char *work_dir_for(const sweep *w, const dk_cfg *root, const char *config, size_t k)
{
    char *stem = dkh_config_stem(config);
    char *dir;
    if (w->a->work_dir) {
        size_t n = strlen(w->a->work_dir);
        const char *sep = n && w->a->work_dir[n - 1] == '/' ? "" : "/";
        dir = dkh_asprintf("%s%s%zu_%s", w->a->work_dir, sep, k, stem);
    } else {
        const dk_cfg *wd = dk_cfg_get(root, "work_dir");
        if (wd && dk_cfg_kind_of(wd) == DK_CFG_STRING)
            dir = dkh_strdup(dk_cfg_scalar(wd));
        else
            dir = dkh_asprintf("work_dirs/%s", stem);
        size_t n = strlen(dir);
        while (n > 1 && dir[n - 1] == '/')
            dir[--n] = '\0';
        if (dir_used(w, dir)) {
            char *again = dkh_asprintf("%s_%zu", dir, k);
            free(dir);
            dir = again;
        }
    }
    free(stem);
    return dir;
}

/* Runs --between-runs through /bin/sh. Its failure is reported and the
 * sweep goes on: a broken rebuild is caught by the reload, which keeps the
 * loaded build. */
static void run_between(const sweep *w, size_t next)
{
    char run[32], runs[32];
    snprintf(run, sizeof run, "%zu", next);
    snprintf(runs, sizeof runs, "%zu", w->total);
    setenv("DKHOST_SWEEP_RUN", run, 1);
    setenv("DKHOST_SWEEP_RUNS", runs, 1);
    fflush(stdout);
    fflush(stderr);
    int st = system(w->a->between_runs);
    if (st == -1)
        fprintf(stderr, "dkhost: sweep: cannot run the --between-runs command: %s; the sweep "
                        "goes on\n", strerror(errno));
    else if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
        fprintf(stderr, "dkhost: sweep: the --between-runs command before run %zu could not be "
                        "run by /bin/sh (exit status 127); the sweep goes on\n", next);
    else if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
        fprintf(stderr, "dkhost: sweep: the --between-runs command before run %zu failed with "
                        "exit status %d; the sweep goes on with the plugins as they are\n",
                next, WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        fprintf(stderr, "dkhost: sweep: the --between-runs command before run %zu was killed by "
                        "signal %d; the sweep goes on with the plugins as they are\n",
                next, WTERMSIG(st));
}

/* True when a reload was asked for since the last check: SIGHUP, or a
 * RELOAD file in the control directory (removed once seen). */
static bool reload_requested(const sweep *w)
{
    bool asked = false;
    if (reload_asked) {
        reload_asked = 0;
        dk_log(DK_LOG_INFO, "sweep: SIGHUP received: reloading every hook plugin");
        asked = true;
    }
    if (w->control_dir) {
        char *path = dkh_asprintf("%s/RELOAD", w->control_dir);
        struct stat st;
        if (stat(path, &st) == 0) {
            unlink(path);
            dk_log(DK_LOG_INFO, "sweep: %s found: reloading every hook plugin", path);
            asked = true;
        }
        free(path);
    }
    return asked;
}

static void between_runs(sweep *w, size_t next)
{
    if (w->a->between_runs)
        run_between(w, next);
    bool force = reload_requested(w);
    dkh_plugins_refresh(w->reg, force);
}

/* One run; returns its exit code. */
static int run_one(sweep *w, const char *config, size_t k)
{
    const dkh_sweep_args *a = w->a;
    char *what = dkh_asprintf("run %zu (%s)", k, config);
    dk_cfg *root = NULL;
    dk_status s = dkh_config_prepare(config, a->overrides, a->n_overrides, w->reg, &root);
    if (s != DK_OK) {
        int rc = a->report(s, what);
        free(what);
        return rc;
    }
    char *dir = work_dir_for(w, root, config, k);
    char *assign = dkh_cfg_string_assignment("work_dir", dir);
    s = dkh_cfg_override(root, assign);
    free(assign);
    int rc = 0;
    if (s == DK_OK) {
        dk_log(DK_LOG_INFO, "sweep: run %zu of %zu: %s, work dir %s", k, w->total, config, dir);
        dkh_run_options ro = {
            .mode = DKH_RUN_TRAIN,
            .config_path = config,
            .seed = a->seed,
            .deterministic = a->deterministic,
            .no_validate = a->no_validate,
            .dataset_cache = w->cache,
        };
        s = dkh_run(root, &ro);
        w->used_dirs = realloc(w->used_dirs, (w->n_used + 1) * sizeof *w->used_dirs);
        DKH_ASSERT(w->used_dirs != NULL);
        w->used_dirs[w->n_used++] = dkh_strdup(dir);
        if (!a->work_dir) {
            free(w->control_dir);
            w->control_dir = dkh_strdup(dir);
        }
    }
    if (s != DK_OK)
        rc = a->report(s, what);
    dk_log(DK_LOG_INFO, "sweep: run %zu of %zu (%s) %s", k, w->total, config,
           rc == 0 ? "succeeded" : "failed");
    dkh_cfg_free(root);
    free(dir);
    free(what);
    return rc;
}

int dkh_cli_sweep(const dkh_sweep_args *a, dkh_registry *reg)
{
    sweep w = {.a = a, .reg = reg, .cache = dkh_dataset_cache_new()};
    w.total = a->n_configs * (size_t)(a->repeat > 0 ? a->repeat : 1);
    if (a->work_dir)
        w.control_dir = dkh_strdup(a->work_dir);

    struct sigaction sa = {.sa_handler = on_hangup}, old_hup;
    sigemptyset(&sa.sa_mask);
    reload_asked = 0;
    sigaction(SIGHUP, &sa, &old_hup);
    dk_log(DK_LOG_INFO,
           "sweep: %zu run%s; between runs, rebuilt hook plugins are reloaded (ask for a reload "
           "of all with SIGHUP to pid %d or a RELOAD file in %s)",
           w.total, w.total == 1 ? "" : "s", (int)getpid(),
           a->work_dir ? a->work_dir : "the last run's work dir");

    int first_fail = 0;
    size_t failed = 0, done = 0;
    for (size_t k = 1; k <= w.total; k++) {
        if (k > 1)
            between_runs(&w, k);
        int rc = run_one(&w, a->configs[(k - 1) % a->n_configs], k);
        done++;
        dkh_dataset_cache_trim(w.cache);
        if (rc != 0) {
            failed++;
            if (!first_fail)
                first_fail = rc;
        }
        int sig = dkh_train_interrupted();
        if (rc != 0 && sig) {
            fprintf(stderr, "dkhost: sweep: %s during run %zu: the sweep stops (%zu of %zu runs "
                            "not started)\n",
                    sig == SIGTERM ? "SIGTERM" : "SIGINT", k, w.total - k, w.total);
            break;
        }
    }
    dk_log(DK_LOG_INFO, "sweep: %zu of %zu run%s done, %zu failed", done, w.total,
           w.total == 1 ? "" : "s", failed);

    sigaction(SIGHUP, &old_hup, NULL);
    dkh_dataset_cache_free(w.cache);
    for (size_t i = 0; i < w.n_used; i++)
        free(w.used_dirs[i]);
    free(w.used_dirs);
    free(w.control_dir);
    return first_fail;
}
