/* core/runner/runner.c — a run from start to end, and what hooks may ask.
 *
 * dkh_run builds everything a config describes in dependency order (work
 * dir and log first, so every later message lands in the log; then the
 * model, data, optimizer, schedules, hooks), restores a checkpoint when
 * asked, runs the loops and tears down in reverse. The dk_runner_* functions
 * at the end are the hooks' view of the run (sdk/include/dk/runner.h).
 */
#include "runner_impl.h"

#include "../backends/cpu/dnnl_cpu.h"
#include "../nn/nn.h"
#include "../plugin/registry.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int64_t cfg_int(const dk_cfg *c, const char *path, int64_t fallback)
{
    int64_t v;
    const dk_cfg *n = dk_cfg_get(c, path);
    if (!n || dk_cfg_kind_of(n) != DK_CFG_INT || dk_cfg_get_int(n, NULL, &v) != DK_OK)
        return fallback;
    return v;
}

static double cfg_float(const dk_cfg *c, const char *path, double fallback)
{
    double v;
    const dk_cfg *n = dk_cfg_get(c, path);
    if (!n || dk_cfg_get_float(n, NULL, &v) != DK_OK) {
        dk_clear_error();
        return fallback;
    }
    return v;
}

static bool cfg_bool(const dk_cfg *c, const char *path, bool fallback)
{
    bool v;
    const dk_cfg *n = dk_cfg_get(c, path);
    if (!n || dk_cfg_kind_of(n) != DK_CFG_BOOL || dk_cfg_get_bool(n, NULL, &v) != DK_OK)
        return fallback;
    return v;
}

/* "accuracy" for type Accuracy, unless the metric's config names a prefix. */
static char *metric_prefix(const dk_cfg *mcfg)
{
    const dk_cfg *p = dk_cfg_get(mcfg, "prefix");
    if (p && dk_cfg_kind_of(p) == DK_CFG_STRING)
        return dkh_strdup(dk_cfg_scalar(p));
    char *s = dkh_strdup(dk_cfg_scalar(dk_cfg_get(mcfg, "type")));
    for (char *c = s; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return s;
}

static dk_status split_open(dk_runner *r, dkh_split *sp, const char *key, const char *evaluator)
{
    sp->cfg = dk_cfg_get(r->cfg, key);
    if (!sp->cfg || dk_cfg_kind_of(sp->cfg) == DK_CFG_NULL) {
        sp->cfg = NULL;
        return DK_OK;
    }
    bool reused = false;
    const dk_cfg *ds = dk_cfg_get(sp->cfg, "dataset");
    DK_TRY(dkh_dataset_cache_acquire(r->opts.dataset_cache, ds, &sp->dataset, &reused));
    if (reused)
        dk_log(DK_LOG_INFO, "%s.dataset: reusing the %s dataset an earlier run of this sweep "
                            "built (its config is unchanged)",
               key, dk_object_type(sp->dataset)->name);
    DK_TRY(dk_cfg_get_int(sp->cfg, "batch_size", &sp->batch_size));
    DK_TRY(dkh_loader_new(sp->cfg, sp->dataset, r->seed, &sp->loader));
    const dk_cfg *metrics = evaluator ? dk_cfg_get(r->cfg, evaluator) : NULL;
    size_t n = dk_cfg_len(metrics);
    sp->metrics = calloc(n ? n : 1, sizeof *sp->metrics);
    sp->metric_prefix = calloc(n ? n : 1, sizeof *sp->metric_prefix);
    DKH_ASSERT(sp->metrics && sp->metric_prefix);
    for (size_t i = 0; i < n; i++) {
        const dk_cfg *m = dk_cfg_at(metrics, i);
        DK_TRY(dk_object_build(m, "metric", &sp->metrics[i]));
        sp->metric_prefix[i] = metric_prefix(m);
        sp->n_metrics++;
    }
    return DK_OK;
}

static void split_close(dk_runner *r, dkh_split *sp)
{
    for (size_t i = sp->n_metrics; i-- > 0;) {
        dk_object_free(sp->metrics[i]);
        free(sp->metric_prefix[i]);
    }
    free(sp->metrics);
    free(sp->metric_prefix);
    dkh_loader_free(sp->loader);
    dkh_dataset_cache_release(r->opts.dataset_cache, sp->dataset);
    memset(sp, 0, sizeof *sp);
}

static dk_status read_settings(dk_runner *r)
{
    const dk_cfg *c = r->cfg;
    int64_t seed = r->opts.seed >= 0 ? r->opts.seed : cfg_int(c, "seed", 0);
    r->seed = (uint64_t)seed;
    r->deterministic = r->opts.deterministic >= 0 ? r->opts.deterministic != 0
                                                  : cfg_bool(c, "deterministic", false);
    dk_set_deterministic(r->deterministic);
    int64_t threads = cfg_int(c, "env_cfg.num_threads", 0);
    if (threads > 0)
        DK_TRY(dk_set_num_threads((int)threads));
    dk_rng_seed(dk_rng_default(), r->seed ^ 0x7472616e696e67ull);
    dkh_module_seed(r->seed);

    const char *precision = dk_cfg_scalar(dk_cfg_get(c, "precision"));
    r->autocast = DK_DTYPE_F32;
    if (precision && strcmp(precision, "bf16") == 0) {
        r->autocast = DK_DTYPE_BF16;
        if (!dkh_dnnl_bf16_native())
            dk_log(DK_LOG_WARN, "precision bf16: this CPU has no bf16 instructions oneDNN uses "
                                "(AVX-512 bf16 or AMX), so bf16 convolutions and matmuls run "
                                "on the slow reference kernels; fp32 is faster here");
    }
    else if (precision && strcmp(precision, "fp16") == 0) {
        const dk_cfg *n = dk_cfg_get(c, "precision");
        return dk_fail(DK_ERR_CONFIG, "%s (%s): precision fp16 (with loss scaling) runs on CUDA "
                                      "devices; on the CPU use bf16",
                       dk_cfg_path(n), dk_cfg_where(n));
    }

    r->nan_guard = cfg_bool(c, "nan_guard.enabled", true);
    r->nan_max_skips = cfg_int(c, "nan_guard.max_consecutive", 10);
    r->nan_rollback = cfg_bool(c, "nan_guard.rollback", true);
    r->nan_max_rollbacks = cfg_int(c, "nan_guard.max_rollbacks", 3);
    r->nan_lr_factor = cfg_float(c, "nan_guard.lr_factor", 0.5);
    r->lr_scale = 1.0;

    r->by_epoch = cfg_bool(c, "train_cfg.by_epoch", true);
    r->max_epochs = cfg_int(c, "train_cfg.max_epochs", 1);
    r->max_iters = cfg_int(c, "train_cfg.max_iters", 0);
    r->val_interval = cfg_int(c, "train_cfg.val_interval", 1);
    r->val_begin = cfg_int(c, "train_cfg.val_begin", 1);
    return DK_OK;
}

static int64_t dataset_len(dk_object *ds)
{
    const dk_dataset_vtable *vt = dk_object_type(ds)->vtable;
    return vt->len ? vt->len(dk_object_self(ds)) : 0;
}

/* Sizes the training loops once the train loader exists. */
static dk_status plan_training(dk_runner *r)
{
    int64_t per_epoch = dkh_loader_len(r->train.loader);
    if (per_epoch <= 0)
        return dk_fail(DK_ERR_CONFIG, "train_dataloader: the dataset gives no batches (%lld "
                                      "samples, batch_size %lld%s)",
                       (long long)dataset_len(r->train.dataset),
                       (long long)r->train.batch_size,
                       cfg_bool(r->train.cfg, "drop_last", false) ? ", drop_last" : "");
    if (r->by_epoch) {
        r->max_iters = r->max_epochs * per_epoch;
    } else {
        if (r->max_iters <= 0) {
            const dk_cfg *n = dk_cfg_get(r->cfg, "train_cfg");
            return dk_fail(DK_ERR_CONFIG, "%s (%s): iteration-based training (by_epoch: false) "
                                          "needs train_cfg.max_iters",
                           dk_cfg_path(n), dk_cfg_where(n));
        }
        r->max_epochs = 0;
    }
    r->loop_len = per_epoch;
    return DK_OK;
}

/* The process group's lines of the environment report (with a group only). */
static void dist_info(const dk_runner *r, dkh_buf *out, int indent)
{
    if (!r->pg)
        return;
    dkh_buf_printf(out, "%*srank: %d\n%*sworld_size: %d\n%*slocal_rank: %d\n", indent, "",
                   r->rank, indent, "", r->world_size, indent, "", dkh_pg_local_rank(r->pg));
    dkh_buf_printf(out, "%*sdist_backend: %s\n%*slauncher: %s\n", indent, "",
                   dkh_pg_backend_name(r->pg), indent, "",
                   dkh_launcher_name(dkh_pg_launcher(r->pg)));
}

static void log_header(dk_runner *r)
{
    dkh_buf env = DKH_BUF_INIT;
    dkh_env_info(&env, 4);
    dist_info(r, &env, 4);
    char where[160] = "";
    if (r->pg)
        snprintf(where, sizeof where, ", rank %d of %d (backend %s, launcher %s)", r->rank,
                 r->world_size, dkh_pg_backend_name(r->pg),
                 dkh_launcher_name(dkh_pg_launcher(r->pg)));
    dk_log(DK_LOG_INFO, "dkhost %s: %s, work dir %s%s\nEnvironment:\n%s",
           r->opts.mode == DKH_RUN_TRAIN ? "train" : "test",
           r->opts.config_path ? r->opts.config_path : "(config)", r->work_dir, where,
           dkh_buf_str(&env));
    dkh_buf_fini(&env);
    dkh_buf mine = DKH_BUF_INIT;
    dkh_env_info(&mine, 2);
    dist_info(r, &mine, 2);
    r->env_yaml = dkh_buf_take(&mine);
    dk_log(DK_LOG_INFO, "seed %llu, deterministic %s, %d threads, precision %s",
           (unsigned long long)r->seed, r->deterministic ? "true" : "false",
           dk_get_num_threads(), dk_dtype_name(r->autocast));
}

static void log_model(dk_runner *r)
{
    int64_t params = 0, trainable = 0;
    for (size_t i = 0; i < dk_module_n_tensors(r->model); i++) {
        bool buffer = false;
        dk_tensor *t = dk_module_tensor_at(r->model, i, NULL, &buffer);
        if (!buffer) {
            params += dk_tensor_numel(t);
            if (dk_tensor_requires_grad(t))
                trainable += dk_tensor_numel(t);
        }
    }
    dk_log(DK_LOG_INFO, "model %s: %lld parameters (%lld trainable)",
           dk_object_type(r->model)->name, (long long)params, (long long)trainable);
}

static dk_status run_train(dk_runner *r)
{
    DK_TRY(split_open(r, &r->train, "train_dataloader", NULL));
    if (!r->train.cfg)
        return dk_fail(DK_ERR_CONFIG, "%s: training needs a train_dataloader",
                       r->opts.config_path ? r->opts.config_path : "config");
    DK_TRY(dkh_dist_setup_train(r));
    if (!r->opts.no_validate) {
        DK_TRY(split_open(r, &r->val, "val_dataloader", "val_evaluator"));
        DK_TRY(dkh_dist_setup_eval(r, &r->val));
    }
    DK_TRY(plan_training(r));
    const dk_cfg *ow = dk_cfg_get(r->cfg, "optim_wrapper");
    if (!ow || dk_cfg_kind_of(ow) == DK_CFG_NULL)
        return dk_fail(DK_ERR_CONFIG, "%s: training needs an optim_wrapper with an optimizer",
                       r->opts.config_path ? r->opts.config_path : "config");
    dk_status s = DK_OK;
    r->optim = dkh_optim_new(ow, r->model, &s);
    if (!r->optim)
        return s;
    dkh_optim_set_dist(r->optim, r->pg, r->bucket_bytes);
    DK_TRY(dkh_dist_scale_lr(r));
    DK_TRY(dkh_sync_bn_begin(r));
    r->sched = dkh_sched_new(dk_cfg_get(r->cfg, "param_scheduler"), r->by_epoch ? r->max_epochs : 0,
                             r->max_iters, r->loop_len, &s);
    if (!r->sched)
        return s;
    DK_TRY(dkh_hooks_build(r));

    const char *load_from = r->opts.load_from;
    if (!load_from && dk_cfg_kind_of(dk_cfg_get(r->cfg, "load_from")) == DK_CFG_STRING)
        load_from = dk_cfg_scalar(dk_cfg_get(r->cfg, "load_from"));
    if (load_from)
        DK_TRY(dkh_run_load_weights(r, load_from));

    const char *resume = r->opts.resume_from;
    if (!resume && cfg_bool(r->cfg, "resume", false))
        resume = "auto";
    if (resume) {
        char *path = NULL;
        if (strcmp(resume, "auto") == 0) {
            s = dkh_ckpt_latest(r->work_dir, &path);
            if (s == DK_ERR_NOT_FOUND) {
                dk_log(DK_LOG_INFO, "resume: no checkpoint in %s; starting from scratch",
                       r->work_dir);
                dk_clear_error();
                s = DK_OK;
            }
        } else {
            path = dkh_strdup(resume);
        }
        if (s == DK_OK && path)
            s = dkh_run_resume(r, path);
        free(path);
        DK_TRY(s);
    }
    /* Every rank starts from rank 0's weights, whatever it initialised or loaded. */
    DK_TRY(dkh_dist_broadcast_model(r, true));

    DK_TRY(dkh_hooks_call(r, DKH_POINT_before_run));
    DK_TRY(dkh_sync_bn_install(r, true));
    s = dkh_train(r);
    dkh_sync_bn_end(r);
    if (s != DK_OK)
        return s;
    if (r->stop)
        dk_log(DK_LOG_INFO, "training stopped early: %s", r->stop_reason);
    DK_TRY(dkh_hooks_call(r, DKH_POINT_after_run));
    dk_log(DK_LOG_INFO, "done: the log is %s/%s.log; checkpoints (*.dkpt) and the resolved "
                        "config are in %s",
           r->work_dir, r->timestamp, r->work_dir);
    return DK_OK;
}

dk_status dkh_model_forward(dk_runner *r, const dk_dict *batch, dk_forward_mode mode,
                            dk_dict *out)
{
    if (r->autocast != DK_DTYPE_F32)
        DK_TRY(dk_autocast_begin(r->autocast));
    dk_status s = dk_module_forward(r->model, batch, mode, out);
    if (r->autocast != DK_DTYPE_F32) {
        dk_status e = dk_autocast_end();
        if (s == DK_OK)
            s = e;
    }
    return s;
}

/* Test and predict: the test split (or the validation one) with its
 * metrics when `metrics`, and which weights to run (*weights). */
static dk_status open_eval(dk_runner *r, const char *what, bool metrics, const char **weights)
{
    DK_TRY(split_open(r, &r->test, "test_dataloader", metrics ? "test_evaluator" : NULL));
    if (!r->test.cfg)
        DK_TRY(split_open(r, &r->test, "val_dataloader", metrics ? "val_evaluator" : NULL));
    if (!r->test.cfg)
        return dk_fail(DK_ERR_CONFIG, "%s: %s needs a test_dataloader (or a val_dataloader)",
                       r->opts.config_path ? r->opts.config_path : "config", what);
    if (metrics)
        DK_TRY(dkh_dist_setup_eval(r, &r->test));
    *weights = r->opts.checkpoint ? r->opts.checkpoint : r->opts.load_from;
    if (!*weights && dk_cfg_kind_of(dk_cfg_get(r->cfg, "load_from")) == DK_CFG_STRING)
        *weights = dk_cfg_scalar(dk_cfg_get(r->cfg, "load_from"));
    if (!*weights)
        return dk_fail(DK_ERR_ARG, "%s: which weights? give --checkpoint FILE", what);
    return DK_OK;
}

/* Hooks get their saved states (as mmengine's test does), so an EMAHook
 * evaluates the averages that validation reported during training. */
static dk_status run_test(dk_runner *r)
{
    const char *weights = NULL;
    DK_TRY(open_eval(r, "test", true, &weights));
    DK_TRY(dkh_hooks_build(r));
    DK_TRY(dkh_run_load_weights_and_hooks(r, weights));
    DK_TRY(dkh_hooks_call(r, DKH_POINT_before_run));
    DK_TRY(dkh_eval(r, DK_PHASE_TEST));
    return dkh_hooks_call(r, DKH_POINT_after_run);
}

static dk_status run_predict(dk_runner *r)
{
    const char *weights = NULL;
    DK_TRY(open_eval(r, "predict", false, &weights));
    DK_TRY(dkh_run_load_weights(r, weights));
    char *path = r->opts.out ? dkh_strdup(r->opts.out) : dkh_work_path(r, "predictions.jsonl");
    dk_status s = dkh_predict(r, path);
    free(path);
    return s;
}

dk_status dkh_run(const dk_cfg *root, const dkh_run_options *opts)
{
    dk_runner *r = calloc(1, sizeof *r);
    DKH_ASSERT(r != NULL);
    r->cfg = root;
    r->opts = *opts;
    r->outputs = dk_dict_new();
    DKH_ASSERT(r->outputs != NULL);
    /* No plugin may be swapped while this run holds its objects. */
    dkh_registry *reg = dkh_registry_current();
    dkh_registry_run_begin(reg);

    dk_status s = read_settings(r);
    if (s == DK_OK && (opts->mode == DKH_RUN_TRAIN || opts->mode == DKH_RUN_TEST))
        s = dkh_dist_begin(r);
    if (s == DK_OK)
        s = dkh_work_dir_open(r);
    if (s == DK_OK) {
        log_header(r);
        s = dk_object_build(dk_cfg_get(root, "model"), "model", &r->model);
    }
    if (s == DK_OK) {
        log_model(r);
        s = opts->mode == DKH_RUN_TRAIN  ? run_train(r)
            : opts->mode == DKH_RUN_TEST ? run_test(r)
                                         : run_predict(r);
    }
    if (s != DK_OK)
        dk_log(DK_LOG_ERROR, "%s", dk_last_error());

    /* Tear down in reverse; keep the first error's message. */
    char *msg = s != DK_OK ? dkh_strdup(dk_last_error()) : NULL;
    dkh_sync_bn_end(r);
    dkh_hooks_free(r);
    dkh_sched_free(r->sched);
    dkh_optim_free(r->optim);
    split_close(r, &r->test);
    split_close(r, &r->val);
    split_close(r, &r->train);
    dk_object_free(r->model);
    dkh_work_dir_close(r);
    dkh_dist_end(r, s);
    dk_dict_free(r->outputs);
    free(r->env_yaml);
    free(r->stop_reason);
    free(r);
    dkh_registry_run_end(reg);
    if (msg) {
        dk_fail(s, "%s", msg);
        free(msg);
    }
    return s;
}

/* ------------------------------------------------------------------------ */
/* The hooks' view (sdk/include/dk/runner.h)                                */

int64_t dk_runner_epoch(const dk_runner *r)
{
    return r ? r->epoch : 0;
}

int64_t dk_runner_iter(const dk_runner *r)
{
    return r ? r->iter : 0;
}

int64_t dk_runner_inner_iter(const dk_runner *r)
{
    return r ? r->inner_iter : 0;
}

int64_t dk_runner_max_epochs(const dk_runner *r)
{
    return r ? r->max_epochs : 0;
}

int64_t dk_runner_max_iters(const dk_runner *r)
{
    return r ? r->max_iters : 0;
}

int64_t dk_runner_loop_len(const dk_runner *r)
{
    return r ? r->loop_len : 0;
}

dk_runner_phase dk_runner_phase_of(const dk_runner *r)
{
    return r ? r->phase : DK_PHASE_TRAIN;
}

bool dk_runner_by_epoch(const dk_runner *r)
{
    return r && r->by_epoch;
}

/* NULL on the ranks of a distributed run that write no files (all but 0). */
const char *dk_runner_work_dir(const dk_runner *r)
{
    return r && r->rank == 0 ? r->work_dir : NULL;
}

int dk_runner_rank(const dk_runner *r)
{
    return r ? r->rank : 0;
}

int dk_runner_world_size(const dk_runner *r)
{
    return r && r->world_size > 0 ? r->world_size : 1;
}

const char *dk_runner_timestamp(const dk_runner *r)
{
    return r ? r->timestamp : NULL;
}

const dk_cfg *dk_runner_cfg(const dk_runner *r)
{
    return r ? r->cfg : NULL;
}

dk_object *dk_runner_model(dk_runner *r)
{
    return r ? r->model : NULL;
}

const dk_dict *dk_runner_outputs(const dk_runner *r)
{
    return r ? r->outputs : NULL;
}

dk_status dk_runner_log(dk_runner *r, const char *key, double value)
{
    if (!r)
        return dk_fail(DK_ERR_ARG, "dk_runner_log: NULL runner");
    return dk_dict_set_number(r->outputs, key, value);
}

dk_dict *dk_runner_state(dk_runner *r)
{
    return r ? r->state : NULL;
}

/* A checkpoint file name inside the work dir; absolute paths are kept. */
static char *ckpt_path(const dk_runner *r, const char *filename)
{
    return filename[0] == '/' ? dkh_strdup(filename) : dkh_work_path(r, filename);
}

dk_status dk_runner_save_checkpoint(dk_runner *r, const char *filename)
{
    if (!r || !filename || !*filename || strchr(filename, '\n'))
        return dk_fail(DK_ERR_ARG, "save checkpoint: bad file name");
    char *path = ckpt_path(r, filename);
    dk_status s = dkh_run_save(r, path);
    free(path);
    return s;
}

dk_status dk_runner_remove_checkpoint(dk_runner *r, const char *filename)
{
    if (!r || !filename || !*filename)
        return dk_fail(DK_ERR_ARG, "remove checkpoint: bad file name");
    if (r->rank > 0)
        return DK_OK; /* rank 0 owns the files */
    char *path = ckpt_path(r, filename);
    dk_status s = DK_OK;
    if (unlink(path) != 0 && errno != ENOENT)
        s = dk_fail(DK_ERR_IO, "cannot remove checkpoint %s: %s", path, strerror(errno));
    free(path);
    return s;
}

void dk_runner_request_stop(dk_runner *r, const char *reason)
{
    if (!r)
        return;
    r->stop = true;
    if (!r->stop_reason)
        r->stop_reason = dkh_strdup(reason ? reason : "requested by a hook");
}
