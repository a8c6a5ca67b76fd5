/* progress_hook — ProgressBarHook: a live progress bar on the terminal.
 *
 *     Epoch 2/3 [#########...........] 210/469, 152.3 it/s, eta 0:00:01, loss: 0.4321
 *
 * One line per training epoch (per training run when training counts
 * iterations) and per evaluation loop, redrawn in place with '\r' at most ten
 * times a second and always on its last iteration. Only when stdout is a
 * terminal, unless `force` is set: a log file or a pipe gets nothing. In a
 * distributed run only rank 0 draws.
 */
#include <dk/dk.h>

#include "../common/clock.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define BAR_WIDTH 24
#define REDRAW_S 0.1

typedef struct progress {
    bool force;
    bool on;          /* drawing in this run */
    bool open;        /* a bar line is on screen without its newline */
    char label[48];   /* "Epoch 2/3", "Train", "Val", "Test" */
    double start;     /* when the current bar began (its loop started) */
    bool has_base;    /* base is known (from the bar's first draw) */
    int64_t base;     /* iterations done before this process's first (a resumed run) */
    double last_draw; /* when it was last drawn */
    int last_len;     /* characters drawn last time, to blank a shorter line */
} progress;

static dk_status progress_create(const dk_cfg *cfg, void **self)
{
    progress *p = dk_calloc(1, sizeof *p);
    if (!p)
        return dk_fail(DK_ERR_NOMEM, "ProgressBarHook: out of memory");
    dk_status s = dk_cfg_get_bool(cfg, "force", &p->force);
    if (s != DK_OK) {
        dk_free(p);
        return s;
    }
    *self = p;
    return DK_OK;
}

static void progress_destroy(void *self)
{
    dk_free(self);
}

static void end_line(progress *p)
{
    if (p->open) {
        fputc('\n', stdout);
        fflush(stdout);
    }
    p->open = false;
    p->start = 0;
    p->last_len = 0;
}

/* A new bar; its clock starts now, with the loop. */
static void begin(progress *p, const char *label)
{
    end_line(p);
    snprintf(p->label, sizeof p->label, "%s", label);
    p->start = clock_now();
    p->has_base = false;
    p->last_draw = 0;
}

/* Draws `done` of `total`; `loss` < 0 is not shown. */
static void draw(progress *p, int64_t done, int64_t total, double loss)
{
    double now = clock_now();
    if (!p->has_base) {
        p->base = done - 1;
        p->has_base = true;
    }
    if (done < total && now - p->last_draw < REDRAW_S)
        return;
    p->last_draw = now;
    double elapsed = now - p->start;
    double rate = elapsed > 0 ? (double)(done - p->base) / elapsed : 0;
    char eta[48] = "-";
    if (rate > 0)
        clock_format((double)(total - done) / rate, eta, sizeof eta);
    char bar[BAR_WIDTH + 1];
    int fill = total > 0 ? (int)(BAR_WIDTH * (done < total ? done : total) / total) : 0;
    memset(bar, '#', (size_t)fill);
    memset(bar + fill, '.', (size_t)(BAR_WIDTH - fill));
    bar[BAR_WIDTH] = '\0';
    char line[256];
    int n = snprintf(line, sizeof line, "%s [%s] %lld/%lld, %.1f it/s, eta %s", p->label, bar,
                     (long long)done, (long long)total, rate, eta);
    if (loss >= 0 && n > 0 && (size_t)n < sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, ", loss: %.4f", loss);
    if (n < 0)
        return;
    if (n >= (int)sizeof line)
        n = (int)sizeof line - 1;
    fprintf(stdout, "\r%s%*s", line, p->last_len > n ? p->last_len - n : 0, "");
    fflush(stdout);
    p->last_len = n;
    p->open = true;
}

static dk_status progress_before_run(void *self, dk_runner *r)
{
    progress *p = self;
    /* Rank 0 draws for a distributed run (mpirun gives every rank a terminal). */
    p->on = dk_runner_rank(r) == 0 && (p->force || isatty(STDOUT_FILENO));
    return DK_OK;
}

static dk_status progress_after_run(void *self, dk_runner *r)
{
    (void)r;
    end_line(self);
    return DK_OK;
}

static dk_status progress_before_train_epoch(void *self, dk_runner *r)
{
    progress *p = self;
    if (!p->on)
        return DK_OK;
    char label[48] = "Train"; /* iteration-based: one bar for the whole training */
    if (dk_runner_by_epoch(r))
        snprintf(label, sizeof label, "Epoch %lld/%lld", (long long)dk_runner_epoch(r) + 1,
                 (long long)dk_runner_max_epochs(r));
    begin(p, label);
    return DK_OK;
}

static dk_status progress_after_train_iter(void *self, dk_runner *r)
{
    progress *p = self;
    if (!p->on)
        return DK_OK;
    const dk_dict *out = dk_runner_outputs(r);
    double loss = dk_dict_number(out, "loss", -1);
    if (dk_runner_by_epoch(r)) {
        draw(p, dk_runner_inner_iter(r) + 1, dk_runner_loop_len(r), loss);
    } else {
        draw(p, dk_runner_iter(r) + 1, dk_runner_max_iters(r), loss);
    }
    return DK_OK;
}

static dk_status progress_after_train_epoch(void *self, dk_runner *r)
{
    if (dk_runner_by_epoch(r))
        end_line(self);
    return DK_OK;
}

static dk_status before_eval(progress *p, const char *label)
{
    if (p->on)
        begin(p, label);
    return DK_OK;
}

static dk_status progress_before_val_epoch(void *self, dk_runner *r)
{
    (void)r;
    return before_eval(self, "Val");
}

static dk_status progress_before_test_epoch(void *self, dk_runner *r)
{
    (void)r;
    return before_eval(self, "Test");
}

static dk_status progress_after_eval_iter(void *self, dk_runner *r)
{
    progress *p = self;
    if (p->on)
        draw(p, dk_runner_inner_iter(r) + 1, dk_runner_loop_len(r), -1);
    return DK_OK;
}

static dk_status progress_after_eval_epoch(void *self, dk_runner *r)
{
    progress *p = self;
    end_line(p);
    return DK_OK;
}

/* Iteration-based training goes on after a validation: a new bar. */
static dk_status progress_after_val_epoch(void *self, dk_runner *r)
{
    progress *p = self;
    end_line(p);
    if (p->on && !dk_runner_by_epoch(r))
        begin(p, "Train");
    return DK_OK;
}

static const dk_param progress_params[] = {
    {.name = "force", .type = DK_PARAM_BOOL, .def = "false",
     .doc = "draw even when stdout is not a terminal (a pipe or a file)"},
    DK_PARAM_HOOK_PRIORITY,
};

static const dk_hook_vtable progress_vtable = {
    .struct_size = sizeof(dk_hook_vtable),
    .create = progress_create,
    .destroy = progress_destroy,
    .priority = DK_PRIORITY_LOW,
    .before_run = progress_before_run,
    .after_run = progress_after_run,
    .before_train_epoch = progress_before_train_epoch,
    .after_train_iter = progress_after_train_iter,
    .after_train_epoch = progress_after_train_epoch,
    .before_val_epoch = progress_before_val_epoch,
    .after_val_iter = progress_after_eval_iter,
    .after_val_epoch = progress_after_val_epoch,
    .before_test_epoch = progress_before_test_epoch,
    .after_test_iter = progress_after_eval_iter,
    .after_test_epoch = progress_after_eval_epoch,
};

static const dk_type_info progress_types[] = {{
    DK_TYPE_INFO_HEAD,
    .kind = "hook",
    .name = "ProgressBarHook",
    .summary = "A live progress bar (count, it/s, ETA) when stdout is a terminal",
    .iface = DK_IFACE_HOOK,
    .vtable = &progress_vtable,
    DK_PARAMS(progress_params),
}};

DK_PLUGIN_DEFINE_TYPES(progress_types,
                       .name = "progress_hook", .version = "0.1.0",
                       .summary = "Terminal progress bar hook",
                       .license = "Apache-2.0", .source = "in-tree",
                       .flags = DK_PLUGIN_UNLOADABLE)
