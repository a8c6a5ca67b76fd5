/* core/runner/runner.h — the training runner: what dkhost's train, test and
 * predict commands call.
 *
 * A run takes a validated config (config_schema.h) and the options of the
 * command line, builds the model, data loaders, optimizer, schedules,
 * evaluators and hooks, prepares the work directory, and runs the loops
 * (train_loop.c, eval_loop.c), calling the hooks at mmengine's points.
 */
#ifndef DKH_RUNNER_H
#define DKH_RUNNER_H

#include <dk/dk.h>

typedef enum dkh_run_mode { DKH_RUN_TRAIN, DKH_RUN_TEST, DKH_RUN_PREDICT } dkh_run_mode;

/* What the command line adds to a config. NULL/negative = not given. */
typedef struct dkh_run_options {
    dkh_run_mode mode;
    const char *config_path;  /* names the default work dir: work_dirs/<stem> */
    const char *resume_from;  /* a checkpoint path, or "auto" */
    const char *load_from;    /* weights only (overrides the config's load_from) */
    const char *checkpoint;   /* test, predict: the weights to run */
    const char *out;          /* predict: the JSON-lines file (default <work_dir>/predictions.jsonl) */
    int64_t seed;             /* -1: the config's */
    int deterministic;        /* -1: the config's, else 0/1 */
    bool no_validate;
} dkh_run_options;

/* Runs a whole train, test or predict job. Errors carry the message of the first
 * cause (a hook, a data file, an op inside a module); the caller prints it
 * and picks the exit code from the status. */
dk_status dkh_run(const dk_cfg *root, const dkh_run_options *opts) DK_CHECK;

#endif /* DKH_RUNNER_H */
