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

/* Datasets kept across the runs of a sweep (dataset_cache.c). */
typedef struct dkh_dataset_cache dkh_dataset_cache;

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
    int launcher;             /* train: a dkh_launcher (0 = none, one process) */
    dkh_dataset_cache *dataset_cache; /* sweeps: reuse unchanged datasets; NULL: build each */
} dkh_run_options;

/* Runs a whole train, test or predict job. Errors carry the message of the first
 * cause (a hook, a data file, an op inside a module); the caller prints it
 * and picks the exit code from the status. */
dk_status dkh_run(const dk_cfg *root, const dkh_run_options *opts) DK_CHECK;

/* A config file's name without directory and extension, what names its
 * default work dir: "configs/fashion_mnist/lenet.yaml" -> "lenet". New string. */
char *dkh_config_stem(const char *path);

/* The signal (SIGINT, SIGTERM) that interrupted the last training loop, or
 * 0 when it ran to its end: a sweep stops instead of starting the next run. */
int dkh_train_interrupted(void);

/* A cache of built datasets, keyed by the dump of each dataset's resolved
 * config. New; free with dkh_dataset_cache_free before the registry (the
 * objects' code lives in plugins). NULL is a no-op for _free and _trim. */
dkh_dataset_cache *dkh_dataset_cache_new(void);
void dkh_dataset_cache_free(dkh_dataset_cache *c);
/* Called after each run: frees the datasets that run did not use (nothing
 * when it used none, having failed before building its data). */
void dkh_dataset_cache_trim(dkh_dataset_cache *c);
/* Number of datasets held. */
size_t dkh_dataset_cache_size(const dkh_dataset_cache *c);
/* The dataset node describes: a cached one not lent to anyone else
 * (*reused true) or a new one the cache keeps. Borrowed until
 * dkh_dataset_cache_release. With c NULL: dk_object_build. */
dk_status dkh_dataset_cache_acquire(dkh_dataset_cache *c, const dk_cfg *node, dk_object **out,
                                    bool *reused) DK_CHECK;
/* Gives obj back to c; an object c does not hold (or c NULL) is freed. */
void dkh_dataset_cache_release(dkh_dataset_cache *c, dk_object *obj);

#endif /* DKH_RUNNER_H */
