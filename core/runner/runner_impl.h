/* core/runner/runner_impl.h — the runner's state, shared by the files of
 * core/runner/ (internal to libdk).
 *
 *   runner.c      build and tear down a run; dkh_run; the dk_runner_* API for hooks
 *   hooks.c       the hook list: default_hooks + custom_hooks, priorities, dispatch
 *   work_dir.c    the work directory, timestamp, log file, resolved config
 *   env_info.c    the environment report (log header, checkpoint metadata)
 *   train_loop.c  epoch- and iteration-based training, the NaN guard
 *   eval_loop.c   validation and test loops, metrics
 *   run_state.c   checkpoints of a whole run: save, resume, load weights
 */
#ifndef DKH_RUNNER_IMPL_H
#define DKH_RUNNER_IMPL_H

#include "runner.h"

#include "../ckpt/ckpt.h"
#include "../data/data.h"
#include "../dist/dist.h"
#include "../optim/optim.h"
#include "../util/util.h"

#include <stdio.h>

/* One hook of the run, in dispatch order. */
typedef struct dkh_hook {
    char *name;      /* default_hooks key, or "<type>" / "<type>_<n>" for custom hooks */
    dk_object *obj;
    const dk_hook_vtable *vt;
    void *self;
    int64_t priority;
} dkh_hook;

/* A data loader with what it reads from (val and test have metrics). */
typedef struct dkh_split {
    const dk_cfg *cfg;      /* the dataloader struct; NULL when the config has none */
    dk_object *dataset;
    dkh_loader *loader;
    int64_t batch_size;
    dk_object **metrics;
    char **metric_prefix;   /* "accuracy" for type Accuracy, or the metric's `prefix` */
    size_t n_metrics;
    int64_t n_samples; /* the dataset's length, when sharded for evaluation */
} dkh_split;

/* Which hook point is running: the completed-work counters of a checkpoint
 * depend on it (mmengine advances epoch/iter after the after_* hooks). */
typedef enum dkh_point {
    DKH_POINT_NONE = 0,
#define DKH_POINT_ENUM_(point) DKH_POINT_##point,
    DK_HOOK_POINT_LIST(DKH_POINT_ENUM_)
#undef DKH_POINT_ENUM_
} dkh_point;

struct dk_runner {
    const dk_cfg *cfg;
    dkh_run_options opts;
    uint64_t seed;
    bool deterministic;
    dk_dtype autocast; /* DK_DTYPE_F32 = off */

    /* data parallel (dist_train.c): pg NULL for one process */
    dkh_pg *pg;
    int rank, world_size;      /* 0 and 1 without pg */
    size_t bucket_bytes;       /* dist_cfg.bucket_size_mb */
    struct dkh_sync_bn *sync_bn; /* sync_bn.c: NULL unless batch norm is synchronised */
    dk_log_level was_level;    /* restored at the end on ranks > 0 */
    bool failure_shared;       /* every rank knows of the run's failure (an agreement said so) */

    /* work dir and logs (work_dir.c) */
    char *work_dir;
    char timestamp[32];
    FILE *log_file;
    char *env_yaml; /* env_info.c, as YAML map lines indented by two spaces */

    dk_object *model;
    dkh_split train, val, test;
    dkh_optim *optim;
    dkh_sched *sched;
    dkh_hook *hooks;
    size_t n_hooks;

    /* progress, with mmengine's meaning: finished work */
    bool by_epoch;
    int64_t max_epochs, max_iters, val_interval, val_begin;
    int64_t epoch, iter, inner_iter, loop_len;
    int64_t samples_seen;
    dk_runner_phase phase;
    dkh_point point;
    int64_t resume_skip; /* batches of the first epoch already trained (mid-epoch resume) */

    /* NaN guard (train_loop.c) */
    bool nan_guard, nan_rollback;
    int64_t nan_max_skips, nan_skips;
    double nan_lr_factor;
    int64_t nan_max_rollbacks, nan_rollbacks; /* rollbacks so far are in checkpoints */
    double lr_scale;   /* on top of the schedules: lr_factor^rollbacks */
    double auto_lr_scale; /* auto_scale_lr: world_size x batch_size / base_batch_size, or 1 */
    bool rolled_back;  /* the step just rolled back: the loop restarts at the checkpoint */

    dk_dict *outputs;   /* dk_runner_outputs */
    dk_dict *state;     /* dk_runner_state while a checkpoint hook point runs */
    bool stop;
    char *stop_reason;
};

/* hooks.c */
dk_status dkh_hooks_build(dk_runner *r) DK_CHECK;
void dkh_hooks_free(dk_runner *r);
/* Calls `point` on every hook that has it, in order; the first error stops
 * the run with "hook <name> (<Type>) <point>: <message>". */
dk_status dkh_hooks_call(dk_runner *r, dkh_point point) DK_CHECK;
/* Calls `point` on one hook (checkpoint state goes hook by hook). */
dk_status dkh_hook_call(dk_runner *r, dkh_hook *h, dkh_point point) DK_CHECK;

/* work_dir.c */
dk_status dkh_work_dir_open(dk_runner *r) DK_CHECK;
void dkh_work_dir_close(dk_runner *r);
/* "<work_dir>/<name>"; new string. */
char *dkh_work_path(const dk_runner *r, const char *name);

/* env_info.c: appends "key: value" YAML lines, each indented by `indent`. */
void dkh_env_info(dkh_buf *out, int indent);

/* train_loop.c, eval_loop.c, predict_loop.c */
dk_status dkh_train(dk_runner *r) DK_CHECK;
dk_status dkh_eval(dk_runner *r, dk_runner_phase phase) DK_CHECK;
/* One forward of the model in `mode`, under the run's autocast (runner.c). */
dk_status dkh_model_forward(dk_runner *r, const dk_dict *batch, dk_forward_mode mode,
                            dk_dict *out) DK_CHECK;
/* The model's predictions for every sample of r->test, as JSON lines in path. */
dk_status dkh_predict(dk_runner *r, const char *path) DK_CHECK;

/* dist_train.c. All are no-ops for one process. Every rank calls them at
 * the same points (they are collectives). */
/* Makes the process group of opts.launcher; ranks > 0 log only warnings and
 * errors, prefixed "[rank N] ". */
dk_status dkh_dist_begin(dk_runner *r) DK_CHECK;
/* Ends the group. A run that failed (status) where the other ranks cannot
 * know it (not at an agreement point: building, loading, a hook) ends the
 * whole job at once with the failure's exit code, since they would wait in
 * their next collective for ever; its message is logged before. */
void dkh_dist_end(dk_runner *r, dk_status status);
/* Gives ranks > 0 their own stream of the default generator (dropout): rank
 * 0 keeps the seed's, so one process and rank 0 draw the same. Called once
 * the group exists and again after a resume restored rank 0's state. */
void dkh_dist_rank_rng(const dk_runner *r);
/* Gives the train loader the default sampler for (rank, world_size) and the
 * optimizer the gradient averaging. */
dk_status dkh_dist_setup_train(dk_runner *r) DK_CHECK;
/* Gives an evaluation loader (val or test) the default sampler for (rank,
 * world_size), padded so every rank takes as many steps; the padded repeats
 * are dropped again by dkh_dist_gather_eval. */
dk_status dkh_dist_setup_eval(dk_runner *r, dkh_split *sp) DK_CHECK;
/* auto_scale_lr: sets r->auto_lr_scale (1 when off) and logs the rule used. */
dk_status dkh_dist_scale_lr(dk_runner *r) DK_CHECK;
/* The samples of batch b of sp (rows on this rank) across all ranks, each
 * counted once: rows on one process; without the padded repeats on several. */
int64_t dkh_dist_global_rows(const dk_runner *r, const dkh_split *sp, int64_t b, int64_t rows);
/* Whether this run has more than one rank. */
bool dkh_dist_active(const dk_runner *r);
/* One evaluation step's agreement and gathering, on every rank: `local` is
 * this rank's status so far (a failed rank still calls, so no rank waits);
 * if any rank failed, all fail. Otherwise every per-sample tensor of batch
 * and preds (f32/f64/i64 with the batch's N as first dim) is gathered from
 * every rank into gbatch and gpreds (other entries are this rank's own), in
 * the order of the evaluated dataset, without the sampler's padded repeats:
 * what a single process's batches hold, in the same order. Batch b of sp. */
dk_status dkh_dist_gather_eval(dk_runner *r, const dkh_split *sp, int64_t b, dk_status local,
                               const dk_dict *batch, const dk_dict *preds, dk_dict *gbatch,
                               dk_dict *gpreds) DK_CHECK;
/* Copies rank 0's parameters (with_params) and buffers to every rank. */
dk_status dkh_dist_broadcast_model(dk_runner *r, bool with_params) DK_CHECK;
/* The largest of every rank's flag (0 = all fine). */
dk_status dkh_dist_agree_max(dk_runner *r, double *flag) DK_CHECK;

/* sync_bn.c. begin reads and checks the key sync_bn against the model
 * (config errors name the key and file:line) and, on several ranks, prepares
 * the synchronisation; install turns it on for the training loop and off
 * again; end removes and frees it (any time, also after a failure). */
dk_status dkh_sync_bn_begin(dk_runner *r) DK_CHECK;
dk_status dkh_sync_bn_install(dk_runner *r, bool on) DK_CHECK;
void dkh_sync_bn_end(dk_runner *r);

/* run_state.c */
dk_status dkh_run_save(dk_runner *r, const char *path) DK_CHECK;
dk_status dkh_run_resume(dk_runner *r, const char *path) DK_CHECK;
/* Weights only; reports missing, unexpected and mismatched names. */
dk_status dkh_run_load_weights(dk_runner *r, const char *path) DK_CHECK;
/* The weights and the hooks' saved states, for a test (an EMAHook then
 * evaluates the averages it saved). */
dk_status dkh_run_load_weights_and_hooks(dk_runner *r, const char *path) DK_CHECK;

#endif /* DKH_RUNNER_IMPL_H */
