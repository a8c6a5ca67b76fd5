/* early_stopping_hook — EarlyStoppingHook: end training when a validation
 * metric stops improving (mmengine's EarlyStoppingHook, Lightning's
 * EarlyStopping).
 *
 * After each validation the monitored metric either improves on the best so
 * far by more than min_delta, or one more round of patience is used up; when
 * patience runs out, when the metric reaches stopping_threshold, or when it
 * (or the training loss) is not finite, the hook asks the runner to stop with
 * a reason that names the metric and the epoch. Its counters travel in
 * checkpoints, so a resumed run keeps its patience.
 */
#include <dk/dk.h>

#include "../common/metric_rule.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct estop {
    /* options */
    char *monitor;
    char *rule; /* NULL: by the metric's name */
    double min_delta;
    int64_t patience;
    bool strict;
    bool check_finite;
    bool has_threshold;
    double threshold;
    /* state, saved in checkpoints */
    bool has_best;
    double best;
    int64_t best_at; /* the epoch (or iteration) of the best */
    int64_t wait;    /* validations since the best */
    /* this run */
    bool warned;
    bool stopping;
} estop;

static void estop_destroy(void *self)
{
    estop *e = self;
    dk_free(e->monitor);
    dk_free(e->rule);
    dk_free(e);
}

static dk_status estop_create(const dk_cfg *cfg, void **self)
{
    estop *e = dk_calloc(1, sizeof *e);
    if (!e)
        return dk_fail(DK_ERR_NOMEM, "EarlyStoppingHook: out of memory");
    const char *monitor = NULL, *rule = cfg_opt_str(cfg, "rule");
    dk_status s = dk_cfg_get_str(cfg, "monitor", &monitor);
    if (s == DK_OK && (!(e->monitor = dk_strdup(monitor)) || (rule && !(e->rule = dk_strdup(rule)))))
        s = dk_fail(DK_ERR_NOMEM, "EarlyStoppingHook: out of memory");
    if (s == DK_OK)
        s = dk_cfg_get_float(cfg, "min_delta", &e->min_delta);
    if (s == DK_OK)
        s = dk_cfg_get_int(cfg, "patience", &e->patience);
    if (s == DK_OK)
        s = dk_cfg_get_bool(cfg, "strict", &e->strict);
    if (s == DK_OK)
        s = dk_cfg_get_bool(cfg, "check_finite", &e->check_finite);
    if (s == DK_OK && dk_cfg_kind_of(dk_cfg_get(cfg, "stopping_threshold")) != DK_CFG_NULL) {
        e->has_threshold = true;
        s = dk_cfg_get_float(cfg, "stopping_threshold", &e->threshold);
    }
    if (s == DK_OK && !*e->monitor) {
        const dk_cfg *node = dk_cfg_get(cfg, "monitor");
        s = dk_fail(DK_ERR_CONFIG, "monitor (%s) is empty; name a validation metric such "
                    "as accuracy/top1", dk_cfg_where(node));
    }
    if (s != DK_OK) {
        estop_destroy(e);
        return s;
    }
    *self = e;
    return DK_OK;
}

/* "nan", "inf" or "-inf" (printf's NaN may carry a sign). */
static const char *non_finite(double v)
{
    return isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
}

static void stop(estop *e, dk_runner *r, const char *reason)
{
    e->stopping = true;
    dk_runner_request_stop(r, reason);
}

/* "epoch 3" or "iteration 1200": where a validation happened. */
static void where(dk_runner *r, char *buf, size_t size)
{
    if (dk_runner_by_epoch(r))
        snprintf(buf, size, "epoch %lld", (long long)dk_runner_epoch(r));
    else
        snprintf(buf, size, "iteration %lld", (long long)dk_runner_iter(r));
}

static dk_status estop_after_val_epoch(void *self, dk_runner *r)
{
    estop *e = self;
    const dk_dict *metrics = dk_runner_outputs(r);
    int64_t at = dk_dict_find(metrics, e->monitor);
    if (at < 0 || dk_dict_kind(metrics, (size_t)at) != DK_VALUE_NUMBER) {
        char keys[512];
        metric_keys(metrics, keys, sizeof keys);
        if (e->strict)
            return dk_fail(DK_ERR_CONFIG, "EarlyStoppingHook: monitor '%s' is not among the "
                           "validation metrics (%s)", e->monitor, keys);
        if (!e->warned)
            dk_log(DK_LOG_WARN, "EarlyStoppingHook: monitor '%s' is not among the validation "
                   "metrics (%s); early stopping is off", e->monitor, keys);
        e->warned = true;
        return DK_OK;
    }
    double v = dk_dict_number(metrics, e->monitor, NAN);
    int rule = metric_rule(e->rule, e->monitor);
    char here[64], reason[512];
    where(r, here, sizeof here);
    if (e->check_finite && !isfinite(v)) {
        snprintf(reason, sizeof reason, "EarlyStoppingHook: %s is %s at %s", e->monitor,
                 non_finite(v), here);
        stop(e, r, reason);
        return DK_OK;
    }
    if (e->has_threshold && metric_improves(rule, v, e->threshold, 0)) {
        snprintf(reason, sizeof reason, "EarlyStoppingHook: %s = %.4f is %s than "
                 "stopping_threshold %g at %s", e->monitor, v, rule > 0 ? "greater" : "less",
                 e->threshold, here);
        stop(e, r, reason);
        return DK_OK;
    }
    if (!e->has_best || metric_improves(rule, v, e->best, e->min_delta)) {
        e->has_best = isfinite(v);
        e->best = v;
        e->best_at = dk_runner_by_epoch(r) ? dk_runner_epoch(r) : dk_runner_iter(r);
        e->wait = 0;
        return DK_OK;
    }
    if (++e->wait >= e->patience) {
        snprintf(reason, sizeof reason, "EarlyStoppingHook: %s did not improve by more than %g "
                 "for %lld validations (best %.4f at %s %lld); stopping at %s", e->monitor,
                 e->min_delta, (long long)e->wait, e->best,
                 dk_runner_by_epoch(r) ? "epoch" : "iteration", (long long)e->best_at, here);
        stop(e, r, reason);
    }
    return DK_OK;
}

/* A diverged training loss ends the run (after this iteration) rather than
 * after the next validation, also when the runner's NaN guard skipped the
 * step: check_finite asks to stop, not to skip. */
static dk_status estop_after_train_iter(void *self, dk_runner *r)
{
    estop *e = self;
    if (!e->check_finite || e->stopping)
        return DK_OK;
    const dk_dict *out = dk_runner_outputs(r);
    double loss = dk_dict_number(out, "loss", 0);
    if (isfinite(loss))
        return DK_OK;
    char reason[256];
    snprintf(reason, sizeof reason, "EarlyStoppingHook: the training loss is %s at epoch %lld, "
             "iteration %lld", non_finite(loss), (long long)dk_runner_epoch(r) + 1,
             (long long)dk_runner_iter(r) + 1);
    stop(e, r, reason);
    return DK_OK;
}

static dk_status estop_before_save_checkpoint(void *self, dk_runner *r)
{
    estop *e = self;
    dk_dict *state = dk_runner_state(r);
    if (!state)
        return DK_OK;
    DK_TRY(dk_dict_set_number(state, "wait_count", (double)e->wait));
    if (!e->has_best)
        return DK_OK;
    DK_TRY(dk_dict_set_number(state, "best_score", e->best));
    return dk_dict_set_number(state, "best_at", (double)e->best_at);
}

static dk_status estop_after_load_checkpoint(void *self, dk_runner *r)
{
    estop *e = self;
    const dk_dict *state = dk_runner_state(r);
    if (!state || dk_dict_len(state) == 0)
        return DK_OK;
    double best = dk_dict_number(state, "best_score", NAN);
    e->has_best = isfinite(best);
    e->best = e->has_best ? best : 0;
    e->best_at = (int64_t)dk_dict_number(state, "best_at", 0);
    e->wait = (int64_t)dk_dict_number(state, "wait_count", 0);
    return DK_OK;
}

static const dk_param estop_params[] = {
    {.name = "monitor", .type = DK_PARAM_STRING, .flags = DK_PARAM_REQUIRED,
     .doc = "the validation metric to watch, e.g. accuracy/top1"},
    {.name = "rule", .type = DK_PARAM_STRING, .flags = DK_PARAM_NULLABLE,
     .choices = "greater|less",
     .doc = "whether greater or smaller values are better; null: less for names containing "
            "\"loss\", else greater"},
    {.name = "min_delta", .type = DK_PARAM_FLOAT, .def = "0.0", .min = "0",
     .doc = "an improvement must exceed this much to reset the patience"},
    {.name = "patience", .type = DK_PARAM_INT, .def = "5", .min = "1",
     .doc = "stop after this many validations without improvement"},
    {.name = "strict", .type = DK_PARAM_BOOL, .def = "false",
     .doc = "fail the run when the monitored metric is missing (else warn once)"},
    {.name = "check_finite", .type = DK_PARAM_BOOL, .def = "true",
     .doc = "stop when the monitored metric or the training loss is NaN or infinite"},
    {.name = "stopping_threshold", .type = DK_PARAM_FLOAT, .flags = DK_PARAM_NULLABLE,
     .doc = "stop as soon as the metric is better than this value"},
    DK_PARAM_HOOK_PRIORITY,
};

static const dk_hook_vtable estop_vtable = {
    .struct_size = sizeof(dk_hook_vtable),
    .create = estop_create,
    .destroy = estop_destroy,
    .priority = DK_PRIORITY_LOWEST, /* after the checkpoint of the epoch it may end on */
    .after_train_iter = estop_after_train_iter,
    .after_val_epoch = estop_after_val_epoch,
    .before_save_checkpoint = estop_before_save_checkpoint,
    .after_load_checkpoint = estop_after_load_checkpoint,
};

static const dk_type_info estop_types[] = {{
    DK_TYPE_INFO_HEAD,
    .kind = "hook",
    .name = "EarlyStoppingHook",
    .summary = "Stop training when a validation metric stops improving",
    .iface = DK_IFACE_HOOK,
    .vtable = &estop_vtable,
    DK_PARAMS(estop_params),
}};

DK_PLUGIN_DEFINE_TYPES(estop_types,
                       .name = "early_stopping_hook", .version = "0.1.0",
                       .summary = "Early stopping hook",
                       .license = "Apache-2.0", .source = "in-tree",
                       .flags = DK_PLUGIN_UNLOADABLE)
