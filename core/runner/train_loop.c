/* core/runner/train_loop.c — training: epoch- or iteration-based loops and
 * one training step.
 *
 * A step: fetch a batch (its wait is `data_time`), before_train_iter, set
 * this step's lr and momentum from the schedules, forward in loss mode in a
 * tensor scope (under autocast for bf16), sum every "loss*" value, backward,
 * let the optimizer wrapper update (accumulation and clipping are its
 * business), close the scope, after_train_iter. Counters advance after the
 * after_* hooks, as in mmengine, so hooks see finished work.
 *
 * The NaN guard: a step whose loss or gradients are not finite is skipped —
 * no update, and the buffers the forward changed (batch-norm statistics) are
 * restored from a copy taken before it — so the model stays at the last good
 * step; the log names the batch (its dataset indices). Too many skips in a
 * row mean the run diverged: it rolls back to the newest intact checkpoint
 * in the work dir with the learning rate scaled down (the scale is kept in
 * later checkpoints), and the loop restarts there. Out of rollbacks, or with
 * no checkpoint to go back to, the run stops with the iteration named.
 *
 * In a distributed run (dist_train.c) the ranks agree after every step on
 * whether any of them saw a non-finite value, a failure or a signal, so all
 * skip, fail or stop together.
 *
 * Ctrl-C (SIGINT) or SIGTERM during training finishes the current step,
 * saves the run to interrupted.dkpt in the work dir and stops, so
 * `--resume-from auto` continues exactly there; a second signal kills at once.
 */
#include "runner_impl.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The buffers of the model, copied before a forward so a skipped step can
 * put them back. */
typedef struct buffer_snapshot {
    dk_tensor **live;
    void **copy;
    size_t *bytes;
    size_t n;
} buffer_snapshot;

static void snapshot_init(buffer_snapshot *b, dk_object *model)
{
    memset(b, 0, sizeof *b);
    size_t n = dk_module_n_tensors(model);
    b->live = calloc(n ? n : 1, sizeof *b->live);
    b->copy = calloc(n ? n : 1, sizeof *b->copy);
    b->bytes = calloc(n ? n : 1, sizeof *b->bytes);
    DKH_ASSERT(b->live && b->copy && b->bytes);
    for (size_t i = 0; i < n; i++) {
        bool is_buffer = false;
        dk_tensor *t = dk_module_tensor_at(model, i, NULL, &is_buffer);
        if (!is_buffer || !dk_tensor_is_contiguous(t))
            continue;
        b->live[b->n] = t;
        b->bytes[b->n] = (size_t)dk_tensor_numel(t) * dk_dtype_size(dk_tensor_dtype(t));
        b->copy[b->n] = malloc(b->bytes[b->n] ? b->bytes[b->n] : 1);
        DKH_ASSERT(b->copy[b->n] != NULL);
        b->n++;
    }
}

static void snapshot_take(buffer_snapshot *b)
{
    for (size_t i = 0; i < b->n; i++)
        memcpy(b->copy[i], dk_tensor_data(b->live[i]), b->bytes[i]);
}

static void snapshot_restore(buffer_snapshot *b)
{
    for (size_t i = 0; i < b->n; i++)
        memcpy(dk_tensor_data(b->live[i]), b->copy[i], b->bytes[i]);
}

static void snapshot_fini(buffer_snapshot *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->copy[i]);
    free(b->live);
    free(b->copy);
    free(b->bytes);
}

/* A loss value as one scalar: the mean of a non-scalar tensor (mmengine's
 * parse_losses), the sum of the means of a list. */
static dk_tensor *as_scalar(const dk_dict *out, size_t i)
{
    const char *key = dk_dict_key(out, i);
    if (dk_dict_kind(out, i) == DK_VALUE_TENSOR) {
        dk_tensor *t = dk_dict_tensor(out, key);
        return dk_tensor_numel(t) == 1 ? t : dk_mean(t, NULL, 0, false);
    }
    dk_tensor *sum = NULL;
    for (size_t j = 0; j < dk_dict_tensors_len(out, key); j++) {
        dk_tensor *m = dk_mean(dk_dict_tensors_at(out, key, j), NULL, 0, false);
        sum = sum ? dk_add(sum, m) : m;
    }
    return sum;
}

/* Sums the "loss*" values of a forward into *loss and logs every scalar of
 * it (losses and extras such as accuracies) into the outputs. */
static dk_status parse_losses(dk_runner *r, const dk_dict *out, dk_tensor **loss)
{
    dk_tensor *total = NULL;
    for (size_t i = 0; i < dk_dict_len(out); i++) {
        const char *key = dk_dict_key(out, i);
        dk_value_kind kind = dk_dict_kind(out, i);
        if (kind == DK_VALUE_NUMBER) {
            DK_TRY(dk_dict_set_number(r->outputs, key, dk_dict_number(out, key, 0)));
            continue;
        }
        if (kind != DK_VALUE_TENSOR && kind != DK_VALUE_TENSORS)
            continue;
        bool is_loss = strncmp(key, "loss", 4) == 0;
        if (!is_loss && (kind != DK_VALUE_TENSOR || dk_tensor_numel(dk_dict_tensor(out, key)) != 1))
            continue; /* a non-scalar extra: not logged */
        dk_tensor *v = as_scalar(out, i);
        if (!v)
            return dk_fail(dk_last_status() ? dk_last_status() : DK_ERR_RUNTIME,
                           "model output '%s': %s", key, dk_last_error());
        DK_TRY(dk_dict_set_number(r->outputs, key, dk_tensor_item(v)));
        if (is_loss)
            total = total ? dk_add(total, v) : v;
    }
    if (!total)
        return dk_fail(DK_ERR_RUNTIME, "model %s gave no loss: its loss-mode forward must return "
                                       "at least one value whose name starts with 'loss'",
                       dk_object_type(r->model)->name);
    *loss = total;
    return dk_dict_set_number(r->outputs, "loss", dk_tensor_item(total));
}

/* "3, 17, 250, ..." : the dataset indices of the batch being trained. */
static void batch_indices(const dk_runner *r, char *out, size_t size)
{
    int64_t n = 0;
    const int64_t *idx = dkh_loader_batch_indices(r->train.loader, r->inner_iter, &n);
    size_t len = 0;
    out[0] = '\0';
    for (int64_t i = 0; idx && i < n && i < 8 && len < size; i++)
        len += (size_t)snprintf(out + len, size - len, "%s%lld", i ? ", " : "", (long long)idx[i]);
    if (n > 8 && len < size)
        snprintf(out + len, size - len, ", ... (%lld samples)", (long long)n);
}

/* Too many non-finite steps in a row: back to the newest intact checkpoint
 * with the learning rate scaled down, or the end of the run. */
static dk_status nan_rollback(dk_runner *r)
{
    long long skips = (long long)r->nan_skips, at = (long long)r->iter + 1;
    if (!r->nan_rollback || r->nan_rollbacks >= r->nan_max_rollbacks)
        return dk_fail(DK_ERR_RUNTIME, "training diverged: %lld non-finite steps in a row, the "
                                       "last at iteration %lld (epoch %lld), after %lld "
                                       "rollback%s; the model keeps the weights of the last "
                                       "good step",
                       skips, at, (long long)r->epoch + 1, (long long)r->nan_rollbacks,
                       r->nan_rollbacks == 1 ? "" : "s");
    char *path = NULL;
    dk_status s = dkh_ckpt_latest(r->work_dir, &path);
    if (s == DK_ERR_NOT_FOUND)
        return dk_fail(DK_ERR_RUNTIME, "training diverged: %lld non-finite steps in a row, the "
                                       "last at iteration %lld (epoch %lld), and %s holds no "
                                       "checkpoint to roll back to; the model keeps the weights "
                                       "of the last good step",
                       skips, at, (long long)r->epoch + 1, r->work_dir);
    DK_TRY(s);
    double scale = r->lr_scale * r->nan_lr_factor;
    int64_t rollbacks = r->nan_rollbacks + 1;
    s = dkh_run_resume(r, path);
    if (s == DK_OK) {
        r->lr_scale = scale;
        r->nan_rollbacks = rollbacks;
        r->nan_skips = 0;
        r->rolled_back = true;
        dk_log(DK_LOG_WARN, "training diverged (%lld non-finite steps in a row, the last at "
                            "iteration %lld): rolled back to %s, iteration %lld, with the "
                            "learning rate scaled by %g (rollback %lld of at most %lld)",
               skips, at, path, (long long)r->iter, scale, (long long)rollbacks,
               (long long)r->nan_max_rollbacks);
    } else {
        dk_error_prefix("training diverged at iteration %lld and rolling back failed", at);
    }
    free(path);
    return s;
}

/* One training step on batch; the caller has cleared the outputs and logged
 * data_time. */
static dk_status train_step(dk_runner *r, const dk_dict *batch, buffer_snapshot *snap)
{
    DK_TRY(dkh_hooks_call(r, DKH_POINT_before_train_iter));
    double lr = 0, momentum = 0;
    dkh_optim_schedule(r->optim, r->sched, r->epoch, r->iter, &lr, &momentum);
    double scale = r->lr_scale * r->auto_lr_scale;
    if (scale != 1.0) {
        dkh_optim_scale_lr(r->optim, scale);
        lr *= scale;
    }
    DK_TRY(dk_dict_set_number(r->outputs, "lr", lr));
    DK_TRY(dk_dict_set_number(r->outputs, "momentum", momentum));

    if (r->nan_guard)
        snapshot_take(snap);
    dk_scope_begin();
    dk_dict *out = dk_dict_new();
    dk_tensor *loss = NULL;
    dk_status s = out ? dkh_model_forward(r, batch, DK_MODE_LOSS, out) : DK_ERR_NOMEM;
    if (s == DK_OK)
        s = parse_losses(r, out, &loss);
    bool finite = s == DK_OK && isfinite(dk_dict_number(r->outputs, "loss", NAN));
    if (s == DK_OK && finite)
        s = dk_backward(loss, NULL, false);
    if (s == DK_OK && finite && r->nan_guard)
        finite = dkh_optim_grads_finite(r->optim);
    if (r->world_size > 1) {
        /* All ranks skip together, or fail together: one rank's non-finite
         * loss or failed step would otherwise leave the others waiting in
         * the gradients' all-reduce. */
        double flag = s != DK_OK ? 2 : finite ? 0 : 1;
        dk_status a = dkh_dist_agree_max(r, &flag);
        r->failure_shared = a == DK_OK && (flag >= 2 || (flag >= 1 && !r->nan_guard));
        if (s == DK_OK && a != DK_OK)
            s = a;
        else if (s == DK_OK && flag >= 2)
            s = dk_fail(DK_ERR_RUNTIME, "another rank failed at iteration %lld (epoch %lld); "
                                        "its message is in its output",
                        (long long)r->iter + 1, (long long)r->epoch + 1);
        else if (s == DK_OK && flag >= 1)
            finite = false;
    }
    if (s == DK_OK && finite) {
        dkh_optim_result res = {0};
        s = dkh_optim_step(r->optim, &res);
        if (s == DK_OK && res.has_grad_norm)
            s = dk_dict_set_number(r->outputs, "grad_norm", res.grad_norm);
        r->nan_skips = 0;
    }
    dk_dict_free(out);
    dk_scope_end();
    DK_TRY(s);

    if (!finite) {
        if (!r->nan_guard)
            return dk_fail(DK_ERR_RUNTIME, "non-finite loss at iteration %lld (epoch %lld); "
                                           "enable nan_guard to skip such steps",
                           (long long)r->iter + 1, (long long)r->epoch + 1);
        dkh_optim_zero_grad(r->optim);
        snapshot_restore(snap);
        r->nan_skips++;
        char idx[200];
        batch_indices(r, idx, sizeof idx);
        dk_log(DK_LOG_WARN, "non-finite loss or gradient at iteration %lld (epoch %lld, batch "
                            "%lld, dataset indices %s): step skipped, buffers restored (%lld in "
                            "a row)",
               (long long)r->iter + 1, (long long)r->epoch + 1, (long long)r->inner_iter + 1,
               idx, (long long)r->nan_skips);
        DK_TRY(dk_dict_set_number(r->outputs, "nan_skipped", 1));
        if (r->nan_skips > r->nan_max_skips)
            return nan_rollback(r);
    }
    dk_memory_stats mem;
    dk_memory_stats_get((dk_device){DK_DEVICE_CPU, 0}, &mem);
    DK_TRY(dk_dict_set_number(r->outputs, "memory", (double)(mem.peak >> 20)));
    DK_TRY(dkh_hooks_call(r, DKH_POINT_after_train_iter));
    r->iter++;
    /* Samples of this step across all ranks, each once (not the sampler's
     * padded repeats, nor rows a shorter last batch lacks), so the count
     * does not depend on the world size. */
    int64_t rows = 0;
    if (!dkh_loader_batch_indices(r->train.loader, r->inner_iter, &rows))
        rows = r->train.batch_size;
    r->samples_seen += dkh_dist_global_rows(r, &r->train, r->inner_iter, rows);
    r->inner_iter++;
    return DK_OK;
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    interrupted = sig;
}

/* After a step: a pending signal saves the run and ends it. */
static dk_status check_interrupt(dk_runner *r)
{
    if (r->world_size > 1) {
        /* The ranks stop at the same step, whichever one got the signal. */
        double sig = interrupted;
        DK_TRY(dkh_dist_agree_max(r, &sig));
        if (sig)
            interrupted = (sig_atomic_t)sig;
    }
    if (!interrupted)
        return DK_OK;
    r->failure_shared = true; /* every rank stops here */
    const char *name = interrupted == SIGTERM ? "SIGTERM" : "SIGINT";
    char *path = dkh_work_path(r, "interrupted.dkpt");
    dk_status s = dkh_run_save(r, path);
    if (s == DK_OK)
        s = dk_fail(DK_ERR_RUNTIME, "%s at iteration %lld (epoch %lld): the run is saved in %s; "
                                    "continue it with --resume-from auto",
                    name, (long long)r->iter, (long long)r->epoch + 1, path);
    else
        dk_error_prefix("%s at iteration %lld, and saving the run failed", name,
                        (long long)r->iter);
    free(path);
    return s;
}

/* Fetches the next batch, timing the wait; *batch is NULL at the epoch's end. */
static dk_status next_batch(dk_runner *r, dk_dict **batch)
{
    double t0 = now_s();
    DK_TRY(dkh_loader_next(r->train.loader, batch));
    dk_dict_clear(r->outputs);
    return dk_dict_set_number(r->outputs, "data_time", now_s() - t0);
}

static bool val_due(const dk_runner *r, int64_t done, int64_t last)
{
    return r->val.cfg && done >= r->val_begin &&
           (done % r->val_interval == 0 || done == last);
}

/* Starts the data of epoch r->epoch at the batch a resume (or a rollback)
 * left off, which then counts as done. */
static dk_status start_epoch(dk_runner *r)
{
    r->inner_iter = r->resume_skip;
    DK_TRY(dkh_loader_start_epoch(r->train.loader, r->epoch, r->resume_skip));
    r->resume_skip = 0;
    return DK_OK;
}

static dk_status run_epoch_loop(dk_runner *r, buffer_snapshot *snap)
{
    while (r->epoch < r->max_epochs && !r->stop) {
        r->phase = DK_PHASE_TRAIN;
        dk_module_train(r->model, true);
        DK_TRY(dkh_hooks_call(r, DKH_POINT_before_train_epoch));
        DK_TRY(start_epoch(r));
        r->loop_len = dkh_loader_len(r->train.loader);
        while (!r->stop) {
            dk_dict *batch = NULL;
            DK_TRY(next_batch(r, &batch));
            if (!batch)
                break;
            dk_status s = train_step(r, batch, snap);
            dk_dict_free(batch);
            DK_TRY(s);
            if (r->rolled_back)
                break;
            DK_TRY(check_interrupt(r));
        }
        if (r->rolled_back) { /* restart at the checkpoint's epoch and batch */
            r->rolled_back = false;
            continue;
        }
        dk_dict_clear(r->outputs);
        DK_TRY(dkh_hooks_call(r, DKH_POINT_after_train_epoch));
        r->epoch++;
        r->inner_iter = 0;
        if (val_due(r, r->epoch, r->max_epochs) && !r->stop)
            DK_TRY(dkh_eval(r, DK_PHASE_VAL));
    }
    return DK_OK;
}

/* Iteration-based: the data restarts (a new epoch of the sampler) whenever it
 * runs out; the train "epoch" hooks bracket the whole run, as in mmengine. */
static dk_status run_iter_loop(dk_runner *r, buffer_snapshot *snap)
{
    r->phase = DK_PHASE_TRAIN;
    dk_module_train(r->model, true);
    DK_TRY(dkh_hooks_call(r, DKH_POINT_before_train_epoch));
    DK_TRY(start_epoch(r));
    while (r->iter < r->max_iters && !r->stop) {
        dk_dict *batch = NULL;
        DK_TRY(next_batch(r, &batch));
        if (!batch) {
            r->epoch++;
            r->inner_iter = 0;
            DK_TRY(dkh_loader_start_epoch(r->train.loader, r->epoch, 0));
            continue;
        }
        dk_status s = train_step(r, batch, snap);
        dk_dict_free(batch);
        DK_TRY(s);
        if (r->rolled_back) { /* continue from the checkpoint's epoch and batch */
            r->rolled_back = false;
            DK_TRY(start_epoch(r));
            continue;
        }
        DK_TRY(check_interrupt(r));
        if (val_due(r, r->iter, r->max_iters) && !r->stop) {
            DK_TRY(dkh_eval(r, DK_PHASE_VAL));
            r->phase = DK_PHASE_TRAIN;
            r->loop_len = dkh_loader_len(r->train.loader);
        }
    }
    dk_dict_clear(r->outputs);
    return dkh_hooks_call(r, DKH_POINT_after_train_epoch);
}

int dkh_train_interrupted(void)
{
    return interrupted;
}

dk_status dkh_train(dk_runner *r)
{
    dk_log(DK_LOG_INFO, "start training: %s%lld iterations of batch %lld, %lld per epoch",
           r->by_epoch ? "" : "iteration-based, ", (long long)r->max_iters,
           (long long)r->train.batch_size, (long long)r->loop_len);
    buffer_snapshot snap;
    snapshot_init(&snap, r->model);
    struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESETHAND}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    interrupted = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    dk_status s = r->by_epoch ? run_epoch_loop(r, &snap) : run_iter_loop(r, &snap);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    snapshot_fini(&snap);
    return s;
}
