/* plugins/hooks/logger/logger_hook.c — LoggerHook: mmcv's text log and a
 * JSON-lines file of the same values.
 *
 * Training: every `interval` iterations one line with the mean of each value
 * since the previous line (the latest lr, momentum, memory and ETA), through
 * dk_log so it reaches the terminal and the run's log file. Evaluation: a
 * line every `interval` iterations of the loop, and after the loop one line
 * with the metrics and the loop's mean times. Each training line and each
 * metrics line is also one record of <work_dir>/<timestamp>.jsonl.
 */
#include "log_line.h"
#include "logger_types.h"

#include "../common/jsonl.h"

#include <stdio.h>
#include <unistd.h>

typedef struct logger {
    int64_t interval;
    bool ignore_last;
    bool metric_by_epoch;
    bool out_jsonl;
    int fd; /* the JSONL file; -1 when closed */
    char *path;
    scalar_window train;  /* training values since the last line */
    scalar_window recent; /* evaluation values since the last iteration line */
    scalar_window loop;   /* evaluation values of the whole loop */
} logger;

static dk_status logger_create(const dk_cfg *cfg, void **self)
{
    logger *l = dk_calloc(1, sizeof *l);
    if (!l)
        return dk_fail(DK_ERR_NOMEM, "LoggerHook: out of memory");
    l->fd = -1;
    dk_status s = dk_cfg_get_int(cfg, "interval", &l->interval);
    if (s == DK_OK)
        s = dk_cfg_get_bool(cfg, "ignore_last", &l->ignore_last);
    if (s == DK_OK)
        s = dk_cfg_get_bool(cfg, "log_metric_by_epoch", &l->metric_by_epoch);
    if (s == DK_OK)
        s = dk_cfg_get_bool(cfg, "out_jsonl", &l->out_jsonl);
    if (s != DK_OK) {
        dk_free(l);
        return s;
    }
    *self = l;
    return DK_OK;
}

static void close_jsonl(logger *l)
{
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    dk_free(l->path);
    l->path = NULL;
}

static void logger_destroy(void *self)
{
    logger *l = self;
    close_jsonl(l);
    window_fini(&l->train);
    window_fini(&l->recent);
    window_fini(&l->loop);
    dk_free(l);
}

static dk_status logger_before_run(void *self, dk_runner *r)
{
    logger *l = self;
    if (l->out_jsonl && l->fd < 0)
        DK_TRY(jsonl_open(r, "LoggerHook", &l->fd, &l->path));
    return DK_OK;
}

static dk_status logger_after_run(void *self, dk_runner *r)
{
    (void)r;
    close_jsonl(self);
    return DK_OK;
}

/* Logs one line and, when `mode` is given, its JSONL record. */
static dk_status emit(logger *l, const char *prefix, const scalar_window *w,
                      const char *const *lead, const char *mode, int64_t epoch, int64_t iter)
{
    char *line = log_line_format(prefix, w, lead);
    if (!line)
        return dk_fail(DK_ERR_NOMEM, "LoggerHook: out of memory");
    dk_log(DK_LOG_INFO, "%s", line);
    dk_free(line);
    if (!mode || l->fd < 0)
        return DK_OK;
    jsonl_rec rec;
    jsonl_begin(&rec);
    jsonl_str(&rec, "mode", mode);
    jsonl_int(&rec, "epoch", epoch);
    jsonl_int(&rec, "iter", iter);
    for (size_t i = 0; i < w->n; i++)
        jsonl_num(&rec, w->v[i].key, window_value(&w->v[i]));
    dk_status s = jsonl_write(&rec, l->fd, l->path);
    if (s != DK_OK)
        dk_error_prefix("LoggerHook");
    return s;
}

static dk_status logger_after_train_iter(void *self, dk_runner *r)
{
    logger *l = self;
    DK_TRY(window_add_dict(&l->train, dk_runner_outputs(r)));
    long long epoch = dk_runner_epoch(r) + 1, iter = dk_runner_iter(r) + 1;
    long long i, n;
    char prefix[96];
    if (dk_runner_by_epoch(r)) {
        i = dk_runner_inner_iter(r) + 1;
        n = dk_runner_loop_len(r);
        snprintf(prefix, sizeof prefix, "Epoch [%lld][%lld/%lld]", epoch, i, n);
    } else {
        i = iter;
        n = dk_runner_max_iters(r);
        snprintf(prefix, sizeof prefix, "Iter [%lld/%lld]", i, n);
    }
    if (i % l->interval != 0 && (l->ignore_last || i != n))
        return DK_OK;
    dk_status s = emit(l, prefix, &l->train, log_line_train_lead, "train", epoch, iter);
    window_clear(&l->train);
    return s;
}

static dk_status logger_before_eval_epoch(void *self, dk_runner *r)
{
    logger *l = self;
    (void)r;
    window_clear(&l->recent);
    window_clear(&l->loop);
    return DK_OK;
}

/* "Epoch(val) [2][50/79]", "Iter(val) [2000][50/79]" or "Epoch(test) [50/79]". */
static void eval_prefix(const logger *l, dk_runner *r, bool val, long long i, char *buf,
                        size_t size)
{
    long long n = dk_runner_loop_len(r);
    if (!val)
        snprintf(buf, size, "Epoch(test) [%lld/%lld]", i, n);
    else if (l->metric_by_epoch && dk_runner_by_epoch(r))
        snprintf(buf, size, "Epoch(val) [%lld][%lld/%lld]", (long long)dk_runner_epoch(r), i, n);
    else
        snprintf(buf, size, "Iter(val) [%lld][%lld/%lld]", (long long)dk_runner_iter(r), i, n);
}

static dk_status after_eval_iter(logger *l, dk_runner *r, bool val)
{
    const dk_dict *out = dk_runner_outputs(r);
    DK_TRY(window_add_dict(&l->recent, out));
    DK_TRY(window_add_dict(&l->loop, out));
    long long i = dk_runner_inner_iter(r) + 1;
    if (i % l->interval != 0)
        return DK_OK;
    char prefix[96];
    eval_prefix(l, r, val, i, prefix, sizeof prefix);
    dk_status s = emit(l, prefix, &l->recent, log_line_eval_lead, NULL, 0, 0);
    window_clear(&l->recent);
    return s;
}

static dk_status logger_after_val_iter(void *self, dk_runner *r)
{
    return after_eval_iter(self, r, true);
}

static dk_status logger_after_test_iter(void *self, dk_runner *r)
{
    return after_eval_iter(self, r, false);
}

/* The metrics line: every metric, then the loop's mean data_time and time. */
static dk_status after_eval_epoch(logger *l, dk_runner *r, bool val)
{
    scalar_window w = {0};
    dk_status s = window_add_dict(&w, dk_runner_outputs(r));
    static const char *const times[] = {"data_time", "time"};
    for (size_t k = 0; s == DK_OK && k < 2; k++) {
        const scalar *v = window_find(&l->loop, times[k]);
        if (v && !window_find(&w, times[k]))
            s = window_add(&w, times[k], window_value(v));
    }
    if (s == DK_OK) {
        char prefix[96];
        long long n = dk_runner_loop_len(r);
        eval_prefix(l, r, val, n, prefix, sizeof prefix);
        s = emit(l, prefix, &w, NULL, val ? "val" : "test", dk_runner_epoch(r),
                 dk_runner_iter(r));
    }
    window_fini(&w);
    return s;
}

static dk_status logger_after_val_epoch(void *self, dk_runner *r)
{
    return after_eval_epoch(self, r, true);
}

static dk_status logger_after_test_epoch(void *self, dk_runner *r)
{
    return after_eval_epoch(self, r, false);
}

static const dk_param logger_params[] = {
    {.name = "interval", .type = DK_PARAM_INT, .def = "50", .min = "1",
     .doc = "write a line every this many iterations (of the epoch, or of training when "
            "training counts iterations)"},
    {.name = "ignore_last", .type = DK_PARAM_BOOL, .def = "true",
     .doc = "skip the line for an epoch's last iterations when they do not fill an interval"},
    {.name = "log_metric_by_epoch", .type = DK_PARAM_BOOL, .def = "true",
     .doc = "label validation lines by epoch (Epoch(val) [3]) rather than by iteration "
            "(Iter(val) [1400])"},
    {.name = "out_jsonl", .type = DK_PARAM_BOOL, .def = "true",
     .doc = "also append each logged record to <work_dir>/<timestamp>.jsonl"},
    DK_PARAM_HOOK_PRIORITY,
};

static const dk_hook_vtable logger_vtable = {
    .struct_size = sizeof(dk_hook_vtable),
    .create = logger_create,
    .destroy = logger_destroy,
    .priority = DK_PRIORITY_BELOW_NORMAL, /* after the timer, so it logs what that recorded */
    .before_run = logger_before_run,
    .after_run = logger_after_run,
    .after_train_iter = logger_after_train_iter,
    .before_val_epoch = logger_before_eval_epoch,
    .after_val_iter = logger_after_val_iter,
    .after_val_epoch = logger_after_val_epoch,
    .before_test_epoch = logger_before_eval_epoch,
    .after_test_iter = logger_after_test_iter,
    .after_test_epoch = logger_after_test_epoch,
};

const dk_type_info logger_hook_type = {
    DK_TYPE_INFO_HEAD,
    .kind = "hook",
    .name = "LoggerHook",
    .summary = "Log losses, learning rate, timing and metrics as mmcv text lines and JSONL",
    .iface = DK_IFACE_HOOK,
    .vtable = &logger_vtable,
    DK_PARAMS(logger_params),
};
