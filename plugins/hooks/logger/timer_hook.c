/* plugins/hooks/logger/timer_hook.c — IterTimerHook: how long each iteration
 * took, and when the loop will end.
 *
 * An iteration's "time" runs from the end of the previous one (or the start
 * of the loop) to its own end, so it includes the wait for data, which the
 * runner reports separately as "data_time" (only it sees the loader). The
 * ETA ("eta_s") is the mean time of the iterations this process has run
 * times those left: of the whole training in training, of the current loop
 * in validation and test.
 */
#include "logger_types.h"

#include "../common/clock.h"

typedef struct timer {
    double mark;        /* end of the previous iteration, or the loop's start */
    double train_total; /* seconds of the training iterations timed */
    int64_t train_n;
    double eval_total; /* seconds of the current evaluation loop's iterations */
    int64_t eval_n;
} timer;

static dk_status timer_create(const dk_cfg *cfg, void **self)
{
    (void)cfg;
    timer *t = dk_calloc(1, sizeof *t);
    if (!t)
        return dk_fail(DK_ERR_NOMEM, "IterTimerHook: out of memory");
    *self = t;
    return DK_OK;
}

static void timer_destroy(void *self)
{
    dk_free(self);
}

/* Loop starts (and the end of a validation inside training) restart the
 * clock, so an iteration never includes the work between loops. */
static dk_status timer_mark(void *self, dk_runner *r)
{
    (void)r;
    ((timer *)self)->mark = clock_now();
    return DK_OK;
}

static dk_status timer_before_eval_epoch(void *self, dk_runner *r)
{
    timer *t = self;
    t->eval_total = 0;
    t->eval_n = 0;
    return timer_mark(self, r);
}

/* Logs this iteration's time and the ETA of `left` more iterations. */
static dk_status lap(timer *t, dk_runner *r, double *total, int64_t *n, int64_t left)
{
    double now = clock_now(), dt = now - t->mark;
    t->mark = now;
    *total += dt;
    (*n)++;
    DK_TRY(dk_runner_log(r, "time", dt));
    return dk_runner_log(r, "eta_s", *total / (double)*n * (double)(left > 0 ? left : 0));
}

static dk_status timer_after_train_iter(void *self, dk_runner *r)
{
    timer *t = self;
    return lap(t, r, &t->train_total, &t->train_n,
               dk_runner_max_iters(r) - dk_runner_iter(r) - 1);
}

static dk_status timer_after_eval_iter(void *self, dk_runner *r)
{
    timer *t = self;
    return lap(t, r, &t->eval_total, &t->eval_n,
               dk_runner_loop_len(r) - dk_runner_inner_iter(r) - 1);
}

static const dk_param timer_params[] = {
    DK_PARAM_HOOK_PRIORITY,
};

static const dk_hook_vtable timer_vtable = {
    .struct_size = sizeof(dk_hook_vtable),
    .create = timer_create,
    .destroy = timer_destroy,
    .priority = DK_PRIORITY_NORMAL,
    .before_run = timer_mark,
    .before_train_epoch = timer_mark,
    .after_train_iter = timer_after_train_iter,
    .before_val_epoch = timer_before_eval_epoch,
    .after_val_iter = timer_after_eval_iter,
    .after_val_epoch = timer_mark,
    .before_test_epoch = timer_before_eval_epoch,
    .after_test_iter = timer_after_eval_iter,
};

const dk_type_info iter_timer_hook_type = {
    DK_TYPE_INFO_HEAD,
    .kind = "hook",
    .name = "IterTimerHook",
    .summary = "Time each iteration (\"time\") and estimate the time left (\"eta_s\")",
    .iface = DK_IFACE_HOOK,
    .vtable = &timer_vtable,
    DK_PARAMS(timer_params),
};
