/* core/runner/eval_loop.c — validation and test: the model in eval mode
 * without gradients, predict-mode forwards, every metric fed each batch, and
 * the metrics' results as the outputs of after_val_epoch / after_test_epoch
 * ("<prefix>/<name>", e.g. "accuracy/top1").
 */
#include "runner_impl.h"

#include "../tensor/tensor_impl.h"

#include <stdlib.h>
#include <string.h>

typedef struct phase_points {
    dkh_point before_epoch, after_epoch, before_iter, after_iter;
} phase_points;

static const phase_points val_points = {DKH_POINT_before_val_epoch, DKH_POINT_after_val_epoch,
                                        DKH_POINT_before_val_iter, DKH_POINT_after_val_iter};
static const phase_points test_points = {DKH_POINT_before_test_epoch, DKH_POINT_after_test_epoch,
                                         DKH_POINT_before_test_iter, DKH_POINT_after_test_iter};

/* One batch: the forward, then every metric. In a distributed run every
 * rank calls this for every step, also after a failure of its own (local),
 * and the metrics see the batch gathered from every rank. */
static dk_status eval_step(dk_runner *r, const dkh_split *sp, const dk_dict *batch, dk_status local)
{
    dk_scope_begin();
    dk_dict *preds = dk_dict_new();
    dk_dict *gbatch = NULL, *gpreds = NULL;
    dk_status s = local;
    if (s == DK_OK && !preds)
        s = DK_ERR_NOMEM;
    if (s == DK_OK)
        s = dkh_model_forward(r, batch, DK_MODE_PREDICT, preds);
    const dk_dict *mb = batch, *mp = preds;
    if (dkh_dist_active(r)) {
        gbatch = dk_dict_new();
        gpreds = dk_dict_new();
        if (s == DK_OK && (!gbatch || !gpreds))
            s = DK_ERR_NOMEM;
        s = dkh_dist_gather_eval(r, sp, r->inner_iter, s, batch, preds, gbatch, gpreds);
        mb = gbatch;
        mp = gpreds;
    }
    for (size_t i = 0; s == DK_OK && i < sp->n_metrics; i++) {
        const dk_metric_vtable *vt = dk_object_type(sp->metrics[i])->vtable;
        if (vt->process)
            s = vt->process(dk_object_self(sp->metrics[i]), mb, mp);
        if (s != DK_OK)
            dk_error_prefix("metric %s", dk_object_type(sp->metrics[i])->name);
    }
    dk_dict_free(gpreds);
    dk_dict_free(gbatch);
    dk_dict_free(preds);
    dk_scope_end();
    return s;
}

/* Every metric's results, prefixed, into the outputs. */
static dk_status compute_metrics(dk_runner *r, const dkh_split *sp)
{
    dk_dict_clear(r->outputs);
    for (size_t i = 0; i < sp->n_metrics; i++) {
        const dk_metric_vtable *vt = dk_object_type(sp->metrics[i])->vtable;
        if (!vt->compute)
            continue;
        dk_dict *res = dk_dict_new();
        if (!res)
            return DK_ERR_NOMEM;
        dk_status s = vt->compute(dk_object_self(sp->metrics[i]), res);
        for (size_t k = 0; s == DK_OK && k < dk_dict_len(res); k++) {
            const char *key = dk_dict_key(res, k);
            if (dk_dict_kind(res, k) != DK_VALUE_NUMBER)
                continue;
            char *name = dkh_asprintf("%s/%s", sp->metric_prefix[i], key);
            s = dk_dict_set_number(r->outputs, name, dk_dict_number(res, key, 0));
            free(name);
        }
        dk_dict_free(res);
        if (s != DK_OK) {
            dk_error_prefix("metric %s", dk_object_type(sp->metrics[i])->name);
            return s;
        }
    }
    return DK_OK;
}

dk_status dkh_eval(dk_runner *r, dk_runner_phase phase)
{
    const dkh_split *sp = phase == DK_PHASE_TEST ? &r->test : &r->val;
    const phase_points *pts = phase == DK_PHASE_TEST ? &test_points : &val_points;
    dk_runner_phase was_phase = r->phase;
    int64_t was_inner = r->inner_iter, was_len = r->loop_len;
    r->phase = phase;
    for (size_t i = 0; i < sp->n_metrics; i++) {
        const dk_metric_vtable *vt = dk_object_type(sp->metrics[i])->vtable;
        if (vt->reset)
            vt->reset(dk_object_self(sp->metrics[i]));
    }
    dk_dict_clear(r->outputs);
    /* Every rank evaluates its shard of the split with rank 0's batch-norm
     * statistics; the metrics see every rank's batches (eval_step), so all
     * compute a single process's metrics (and agree on what hooks decide). */
    DK_TRY(dkh_dist_broadcast_model(r, false));
    DK_TRY(dkh_hooks_call(r, pts->before_epoch));
    /* Evaluation allocates other sizes (its batch size, no gradients) than
     * training: hand the training step's cached blocks back first and the
     * evaluation's after, so the process never holds both sets. */
    dkh_allocator_empty_cache();
    dk_module_train(r->model, false);
    bool grad_was = dk_grad_set_enabled(false);
    r->inner_iter = 0;
    r->loop_len = dkh_loader_len(sp->loader);
    dk_status s = dkh_loader_start_epoch(sp->loader, 0, 0);
    /* Distributed: every rank has as many batches (the padded sampler), and
     * one that fails loading or in a hook still takes part in the step's
     * gathering, so the others fail with it instead of waiting. */
    bool dist = dkh_dist_active(r);
    while (s == DK_OK) {
        dk_dict *batch = NULL;
        s = dkh_loader_next(sp->loader, &batch);
        if (s == DK_OK && !batch)
            break;
        if (s != DK_OK && !dist)
            break;
        dk_dict_clear(r->outputs);
        if (s == DK_OK)
            s = dkh_hooks_call(r, pts->before_iter);
        s = eval_step(r, sp, batch, s);
        if (s == DK_OK)
            s = dkh_hooks_call(r, pts->after_iter);
        dk_dict_free(batch);
        r->inner_iter++;
    }
    dk_grad_set_enabled(grad_was);
    dk_module_train(r->model, true);
    dkh_allocator_empty_cache();
    if (s == DK_OK)
        s = compute_metrics(r, sp);
    if (s == DK_OK) {
        dkh_buf line = DKH_BUF_INIT;
        for (size_t i = 0; i < dk_dict_len(r->outputs); i++)
            dkh_buf_printf(&line, "%s%s: %.4f", i ? ", " : "", dk_dict_key(r->outputs, i),
                           dk_dict_number(r->outputs, dk_dict_key(r->outputs, i), 0));
        /* The logger hook prints validation results; a test run's are its product. */
        dk_log(phase == DK_PHASE_TEST ? DK_LOG_INFO : DK_LOG_DEBUG, "%s results: %s",
               phase == DK_PHASE_TEST ? "test" : "val", dkh_buf_str(&line));
        dkh_buf_fini(&line);
        s = dkh_hooks_call(r, pts->after_epoch);
    }
    r->phase = was_phase;
    r->inner_iter = was_inner;
    r->loop_len = was_len;
    return s;
}
