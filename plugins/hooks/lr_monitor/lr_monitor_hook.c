/* lr_monitor_hook — LrMonitorHook: a record of the learning rate (and
 * momentum) schedule (Lightning's LearningRateMonitor).
 *
 * LoggerHook prints the lr of the iterations it logs; this hook records the
 * schedule itself, at the granularity it moves: by epoch, the values the
 * first iteration of every `interval`-th epoch used; by iteration, those of
 * every `interval`-th iteration. Each is one record in the run's JSONL file
 * with "mode": "lr", so a plot of the schedule needs no filtering of the
 * training records, and optionally an INFO line.
 */
#include <dk/dk.h>

#include "../common/jsonl.h"

#include <stdio.h>
#include <unistd.h>

typedef struct lr_monitor {
    int64_t interval;
    int by_epoch_opt; /* 1, 0, or -1: as the training counts */
    bool log_momentum;
    bool log_text;
    int fd; /* -1 when closed */
    char *path;
    bool warned;
} lr_monitor;

static dk_status lrm_create(const dk_cfg *cfg, void **self)
{
    lr_monitor *m = dk_calloc(1, sizeof *m);
    if (!m)
        return dk_fail(DK_ERR_NOMEM, "LrMonitorHook: out of memory");
    m->fd = -1;
    m->by_epoch_opt = -1;
    dk_status s = dk_cfg_get_int(cfg, "interval", &m->interval);
    if (s == DK_OK && dk_cfg_kind_of(dk_cfg_get(cfg, "by_epoch")) == DK_CFG_BOOL) {
        bool on = false;
        s = dk_cfg_get_bool(cfg, "by_epoch", &on);
        m->by_epoch_opt = on;
    }
    if (s == DK_OK)
        s = dk_cfg_get_bool(cfg, "log_momentum", &m->log_momentum);
    if (s == DK_OK)
        s = dk_cfg_get_bool(cfg, "log_text", &m->log_text);
    if (s != DK_OK) {
        dk_free(m);
        return s;
    }
    *self = m;
    return DK_OK;
}

static void close_file(lr_monitor *m)
{
    if (m->fd >= 0)
        close(m->fd);
    m->fd = -1;
    dk_free(m->path);
    m->path = NULL;
}

static void lrm_destroy(void *self)
{
    close_file(self);
    dk_free(self);
}

static dk_status lrm_before_run(void *self, dk_runner *r)
{
    lr_monitor *m = self;
    if (m->fd < 0)
        DK_TRY(jsonl_open(r, "LrMonitorHook", &m->fd, &m->path));
    return DK_OK;
}

static dk_status lrm_after_run(void *self, dk_runner *r)
{
    close_file(self);
    return DK_OK;
}

static dk_status lrm_after_train_iter(void *self, dk_runner *r)
{
    lr_monitor *m = self;
    bool by_epoch = m->by_epoch_opt < 0 ? dk_runner_by_epoch(r) : m->by_epoch_opt == 1;
    int64_t epoch = dk_runner_epoch(r) + 1, iter = dk_runner_iter(r) + 1;
    bool due = by_epoch ? dk_runner_inner_iter(r) == 0 && (epoch - 1) % m->interval == 0
                        : iter % m->interval == 0;
    if (!due || m->fd < 0)
        return DK_OK;
    const dk_dict *out = dk_runner_outputs(r);
    int64_t lr_at = dk_dict_find(out, "lr"), mom_at = dk_dict_find(out, "momentum");
    if (lr_at < 0)
        return DK_OK;
    double lr = dk_dict_number(out, "lr", 0), momentum = dk_dict_number(out, "momentum", 0);
    bool with_momentum = m->log_momentum && mom_at >= 0;
    if (m->log_momentum && mom_at < 0 && !m->warned) {
        dk_log(DK_LOG_WARN, "LrMonitorHook: log_momentum is set but the optimizer reports no "
                            "momentum; logging the learning rate only");
        m->warned = true;
    }
    jsonl_rec rec;
    jsonl_begin(&rec);
    jsonl_str(&rec, "mode", "lr");
    jsonl_int(&rec, "epoch", epoch);
    jsonl_int(&rec, "iter", iter);
    jsonl_num(&rec, "lr", lr);
    if (with_momentum)
        jsonl_num(&rec, "momentum", momentum);
    dk_status s = jsonl_write(&rec, m->fd, m->path);
    if (s != DK_OK) {
        dk_error_prefix("LrMonitorHook");
        return s;
    }
    if (m->log_text) {
        char where[64], mom[48] = "";
        if (by_epoch)
            snprintf(where, sizeof where, "Epoch [%lld]", (long long)epoch);
        else
            snprintf(where, sizeof where, "Iter [%lld]", (long long)iter);
        if (with_momentum)
            snprintf(mom, sizeof mom, ", momentum: %.3e", momentum);
        dk_log(DK_LOG_INFO, "%s  lr: %.3e%s", where, lr, mom);
    }
    return DK_OK;
}

static const dk_param lrm_params[] = {
    {.name = "interval", .type = DK_PARAM_INT, .def = "1", .min = "1",
     .doc = "record every this many epochs (or iterations)"},
    {.name = "by_epoch", .type = DK_PARAM_BOOL, .flags = DK_PARAM_NULLABLE,
     .doc = "record once per epoch (its first iteration's values) rather than per iteration; "
            "null: as the training counts"},
    {.name = "log_momentum", .type = DK_PARAM_BOOL, .def = "false",
     .doc = "also record the momentum (SGD) or beta1 (Adam) the optimizer used"},
    {.name = "log_text", .type = DK_PARAM_BOOL, .def = "false",
     .doc = "also write each record as an INFO log line"},
    DK_PARAM_HOOK_PRIORITY,
};

static const dk_hook_vtable lrm_vtable = {
    .struct_size = sizeof(dk_hook_vtable),
    .create = lrm_create,
    .destroy = lrm_destroy,
    .priority = DK_PRIORITY_BELOW_NORMAL,
    .before_run = lrm_before_run,
    .after_run = lrm_after_run,
    .after_train_iter = lrm_after_train_iter,
};

static const dk_type_info lrm_types[] = {{
    DK_TYPE_INFO_HEAD,
    .kind = "hook",
    .name = "LrMonitorHook",
    .summary = "Record the learning rate (and momentum) schedule per epoch or iteration",
    .iface = DK_IFACE_HOOK,
    .vtable = &lrm_vtable,
    DK_PARAMS(lrm_params),
}};

DK_PLUGIN_DEFINE_TYPES(lrm_types,
                       .name = "lr_monitor_hook", .version = "0.1.0",
                       .summary = "Learning-rate schedule monitor hook",
                       .license = "Apache-2.0", .source = "in-tree",
                       .flags = DK_PLUGIN_UNLOADABLE)
