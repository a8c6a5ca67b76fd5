/* core/optim/optim_wrapper.c — the optimizer wrapper (mmengine's
 * OptimWrapper): which parameters are trained and with which multipliers,
 * gradient accumulation, clipping, the optimizer's step and zeroing.
 *
 * The optimizer type only sees one update at a time (dk_optim_param per
 * parameter with this step's lr, weight decay and momentum already worked
 * out); everything around it lives here, so every optimizer gets the same
 * accumulation, clipping and per-parameter rules. Parameters are grouped by
 * their (lr_mult, decay_mult) pair so that a schedule is evaluated once per
 * group, at the group's own base as mmengine does.
 */
#include "optim_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- construction -------------------------------------------------------------- */

static int ptr_order(const void *a, const void *b)
{
    const dkh_oparam *x = *(dkh_oparam *const *)a, *y = *(dkh_oparam *const *)b;
    uintptr_t px = (uintptr_t)x->param, py = (uintptr_t)y->param;
    if (px != py)
        return px < py ? -1 : 1;
    return x < y ? -1 : x > y; /* first occurrence first */
}

/* Drops (bypass) or refuses parameters that are the same tensor as an
 * earlier one: updating a tensor twice per step would be wrong. */
static dk_status drop_duplicates(dkh_optim *o, bool bypass)
{
    size_t n = o->n_params;
    if (n < 2)
        return DK_OK;
    dkh_oparam **by_ptr = malloc(n * sizeof *by_ptr);
    DKH_ASSERT(by_ptr != NULL);
    for (size_t i = 0; i < n; i++)
        by_ptr[i] = &o->params[i];
    qsort(by_ptr, n, sizeof *by_ptr, ptr_order);
    bool *dup = calloc(n, sizeof *dup);
    DKH_ASSERT(dup != NULL);
    dk_status s = DK_OK;
    for (size_t i = 1; i < n && s == DK_OK; i++) {
        if (by_ptr[i]->param != by_ptr[i - 1]->param)
            continue;
        size_t again = (size_t)(by_ptr[i] - o->params);
        if (!bypass)
            s = dk_fail(DK_ERR_CONFIG,
                        "optim_wrapper: parameter '%s' is the same tensor as '%s'; "
                        "set paramwise_cfg.bypass_duplicate: true to train it once",
                        o->params[again].name, by_ptr[i - 1]->name);
        dup[again] = true;
    }
    if (s == DK_OK) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (dup[i]) {
                dk_log(DK_LOG_INFO,
                       "optim_wrapper: '%s' shares its tensor with an earlier "
                       "parameter; trained once",
                       o->params[i].name);
                free(o->params[i].name);
                dk_tensor_release(o->params[i].param);
                continue;
            }
            o->params[k++] = o->params[i];
        }
        o->n_params = k;
    }
    free(dup);
    free(by_ptr);
    return s;
}

static size_t group_of(dkh_optim *o, double lr_mult, double decay_mult)
{
    for (size_t g = 0; g < o->n_groups; g++)
        if (o->groups[g].lr_mult == lr_mult && o->groups[g].decay_mult == decay_mult)
            return g;
    o->groups = realloc(o->groups, (o->n_groups + 1) * sizeof *o->groups);
    DKH_ASSERT(o->groups != NULL);
    o->groups[o->n_groups] = (dkh_ogroup){lr_mult, decay_mult, o->base_lr * lr_mult};
    return o->n_groups++;
}

static dk_status check_param(const char *name, const dk_tensor *t)
{
    if (dk_tensor_dtype(t) != DK_DTYPE_F32)
        return dk_fail(DK_ERR_ARG,
                       "optim_wrapper: parameter '%s' is %s; the optimizers update "
                       "f32 parameters",
                       name, dk_dtype_name(dk_tensor_dtype(t)));
    if (dk_tensor_device(t).type != DK_DEVICE_CPU)
        return dk_fail(DK_ERR_UNSUPPORTED,
                       "optim_wrapper: parameter '%s' is not on the CPU; the "
                       "optimizers run on CPU tensors only",
                       name);
    if (!dk_tensor_is_contiguous(t))
        return dk_fail(DK_ERR_ARG, "optim_wrapper: parameter '%s' is not contiguous", name);
    return DK_OK;
}

static dk_status add_params(dkh_optim *o, dkh_paramwise *pw, const char *const *names,
                            dk_tensor *const *params, size_t n)
{
    o->params = calloc(n ? n : 1, sizeof *o->params);
    DKH_ASSERT(o->params != NULL);
    for (size_t i = 0; i < n; i++) {
        dk_tensor *t = params[i];
        if (!t || !dk_tensor_requires_grad(t))
            continue;
        DK_TRY(check_param(names[i], t));
        dkh_oparam *p = &o->params[o->n_params++];
        p->name = dkh_strdup(names[i]);
        p->param = dk_tensor_retain(t);
        double lr_mult, decay_mult;
        dkh_paramwise_mults(pw, names[i], dk_tensor_ndim(t), &lr_mult, &decay_mult);
        p->group = group_of(o, lr_mult, decay_mult);
    }
    DK_TRY(drop_duplicates(o, dkh_paramwise_bypass_duplicate(pw)));
    if (!o->n_params)
        return dk_fail(DK_ERR_CONFIG, "optim_wrapper: the model has no trainable parameters");
    for (size_t i = 0; i < o->n_params; i++) {
        o->params[i].state = calloc(o->n_state ? o->n_state : 1, sizeof *o->params[i].state);
        DKH_ASSERT(o->params[i].state != NULL);
    }
    o->scratch = calloc(o->n_params, sizeof *o->scratch);
    o->gviews = calloc(o->n_params, sizeof *o->gviews);
    DKH_ASSERT(o->scratch && o->gviews);
    return DK_OK;
}

/* A number under node.key: NAN when absent or null. */
static dk_status opt_number(const dk_cfg *node, const char *key, double *out)
{
    *out = NAN;
    const dk_cfg *v = dk_cfg_get(node, key);
    if (!v || dk_cfg_kind_of(v) == DK_CFG_NULL)
        return DK_OK;
    return dk_cfg_get_float(v, NULL, out);
}

static dk_status read_clip(dkh_optim *o, const dk_cfg *clip)
{
    if (!clip || dk_cfg_kind_of(clip) == DK_CFG_NULL)
        return DK_OK;
    double max_norm, norm_type, clip_value;
    DK_TRY(opt_number(clip, "max_norm", &max_norm));
    DK_TRY(opt_number(clip, "norm_type", &norm_type));
    DK_TRY(opt_number(clip, "clip_value", &clip_value));
    const char *type = NULL;
    const dk_cfg *tnode = dk_cfg_get(clip, "type");
    if (tnode && dk_cfg_kind_of(tnode) != DK_CFG_NULL)
        DK_TRY(dk_cfg_get_str(tnode, NULL, &type));
    if (!type)
        type = !isnan(clip_value) && isnan(max_norm) ? "value" : "norm";
    if (strcmp(type, "norm") == 0) {
        if (isnan(max_norm))
            return dkh_optim_cfg_fail(clip, "clipping by norm needs max_norm");
        if (isnan(norm_type))
            norm_type = 2;
        if (!(norm_type > 0))
            return dkh_optim_cfg_fail(dk_cfg_get(clip, "norm_type"), "must be > 0, got %g",
                                      norm_type);
        if (!(max_norm >= 0))
            return dkh_optim_cfg_fail(dk_cfg_get(clip, "max_norm"), "must be >= 0, got %g",
                                      max_norm);
        o->clip = DKH_CLIP_NORM;
        o->max_norm = max_norm;
        o->norm_type = norm_type;
    } else if (strcmp(type, "value") == 0) {
        if (isnan(clip_value))
            return dkh_optim_cfg_fail(clip, "clipping by value needs clip_value");
        if (!(clip_value >= 0))
            return dkh_optim_cfg_fail(dk_cfg_get(clip, "clip_value"), "must be >= 0, got %g",
                                      clip_value);
        o->clip = DKH_CLIP_VALUE;
        o->clip_value = clip_value;
    } else {
        return dkh_optim_cfg_fail(tnode, "'%s' is not one of norm|value", type);
    }
    return DK_OK;
}

static dk_status read_optimizer(dkh_optim *o, const dk_cfg *cfg)
{
    DK_TRY(dk_object_build(dk_cfg_get(cfg, "optimizer"), "optimizer", &o->optimizer));
    const dk_type_info *info = dk_object_type(o->optimizer);
    o->type_name = info->name;
    o->vt = info->vtable;
    o->self = dk_object_self(o->optimizer);
    if (info->iface != DK_IFACE_OPTIMIZER || !o->vt->step || !o->vt->base)
        return dk_fail(DK_ERR_PLUGIN,
                       "optim_wrapper.optimizer: type %s has no step or base "
                       "function",
                       o->type_name);
    o->n_state = o->vt->n_state;
    if (o->n_state && !o->vt->state_names)
        return dk_fail(DK_ERR_PLUGIN,
                       "optim_wrapper.optimizer: type %s keeps %u states but "
                       "names none",
                       o->type_name, o->n_state);
    o->n_state_used = o->n_state;
    if (o->vt->n_state_used) {
        uint32_t used = o->vt->n_state_used(o->self);
        o->n_state_used = used < o->n_state ? used : o->n_state;
    }
    o->vt->base(o->self, &o->base_lr, &o->base_wd, &o->base_momentum);
    o->lr = o->base_lr;
    o->momentum = o->base_momentum;
    return DK_OK;
}

static dk_status build(dkh_optim *o, const dk_cfg *cfg, const char *const *names,
                       dk_tensor *const *params, size_t n)
{
    if (!cfg || dk_cfg_kind_of(cfg) != DK_CFG_MAP)
        return dk_fail(DK_ERR_CONFIG, "optim_wrapper: expected a map with an optimizer");
    DK_TRY(read_optimizer(o, cfg));
    DK_TRY(read_clip(o, dk_cfg_get(cfg, "clip_grad")));
    o->accumulate = 1;
    const dk_cfg *acc = dk_cfg_get(cfg, "accumulative_counts");
    if (acc && dk_cfg_kind_of(acc) != DK_CFG_NULL)
        DK_TRY(dk_cfg_get_int(acc, NULL, &o->accumulate));
    if (o->accumulate < 1)
        return dkh_optim_cfg_fail(acc, "must be >= 1, got %lld", (long long)o->accumulate);
    dkh_paramwise *pw = NULL;
    DK_TRY(dkh_paramwise_new(dk_cfg_get(cfg, "paramwise_cfg"), &pw));
    dk_status s = add_params(o, pw, names, params, n);
    if (s == DK_OK)
        dkh_paramwise_report_unused(pw);
    dkh_paramwise_free(pw);
    return s;
}

dkh_optim *dkh_optim_new_params(const dk_cfg *optim_wrapper, const char *const *names,
                                dk_tensor *const *params, size_t n, dk_status *err)
{
    dkh_optim *o = calloc(1, sizeof *o);
    DKH_ASSERT(o != NULL);
    dk_status s = build(o, optim_wrapper, names, params, n);
    if (err)
        *err = s;
    if (s != DK_OK) {
        dkh_optim_free(o);
        return NULL;
    }
    return o;
}

dkh_optim *dkh_optim_new(const dk_cfg *optim_wrapper, dk_object *model, dk_status *err)
{
    size_t n = model ? dk_module_n_tensors(model) : 0;
    const char **names = calloc(n ? n : 1, sizeof *names);
    dk_tensor **params = calloc(n ? n : 1, sizeof *params);
    DKH_ASSERT(names && params);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = NULL;
        bool is_buffer = false;
        dk_tensor *t = dk_module_tensor_at(model, i, &name, &is_buffer);
        if (!t || is_buffer)
            continue;
        names[k] = name;
        params[k++] = t;
    }
    dkh_optim *o = dkh_optim_new_params(optim_wrapper, names, params, k, err);
    free(names);
    free(params);
    return o;
}

void dkh_optim_free(dkh_optim *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n_params; i++) {
        dkh_oparam *p = &o->params[i];
        if (p->state)
            dkh_optim_state_drop(o, p);
        free(p->state);
        free(p->name);
        dk_tensor_release(p->param);
    }
    free(o->params);
    free(o->groups);
    free(o->scratch);
    free(o->gviews);
    free(o->bucket);
    dk_object_free(o->optimizer);
    free(o);
}

/* ---- schedules ------------------------------------------------------------------ */

void dkh_optim_schedule(dkh_optim *o, const dkh_sched *s, int64_t epoch, int64_t iter, double *lr,
                        double *momentum)
{
    o->iter = iter;
    if (s)
        o->max_iters = dkh_sched_max_iters(s);
    for (size_t g = 0; g < o->n_groups; g++)
        o->groups[g].lr =
            dkh_sched_value(s, DKH_SCHED_LR, o->base_lr * o->groups[g].lr_mult, epoch, iter);
    o->lr = dkh_sched_value(s, DKH_SCHED_LR, o->base_lr, epoch, iter);
    o->momentum = dkh_sched_value(s, DKH_SCHED_MOMENTUM, o->base_momentum, epoch, iter);
    if (lr)
        *lr = o->lr;
    if (momentum)
        *momentum = o->momentum;
}

void dkh_optim_scale_lr(dkh_optim *o, double factor)
{
    o->lr *= factor;
    for (size_t g = 0; g < o->n_groups; g++)
        o->groups[g].lr *= factor;
}

void dkh_optim_set_values(dkh_optim *o, double lr, double momentum)
{
    o->lr = lr;
    o->momentum = momentum;
    for (size_t g = 0; g < o->n_groups; g++)
        o->groups[g].lr = lr * o->groups[g].lr_mult;
}

/* ---- the step -------------------------------------------------------------------- */

dk_status dkh_optim_grad_view(const dkh_oparam *p, dkh_gview *g)
{
    *g = (dkh_gview){NULL, 0};
    dk_tensor *grad = dk_tensor_grad(p->param);
    if (!grad)
        return DK_OK;
    int nd = dk_tensor_ndim(p->param);
    bool same = dk_tensor_ndim(grad) == nd &&
                (nd == 0 || memcmp(dk_tensor_shape(grad), dk_tensor_shape(p->param),
                                   (size_t)nd * sizeof(int64_t)) == 0);
    if (!same || dk_tensor_dtype(grad) != DK_DTYPE_F32 ||
        dk_tensor_device(grad).type != DK_DEVICE_CPU || !dk_tensor_is_contiguous(grad))
        return dk_fail(DK_ERR_ARG,
                       "optimizer: the gradient of '%s' is not a contiguous CPU f32 "
                       "tensor shaped like the parameter",
                       p->name);
    *g = (dkh_gview){dk_tensor_data(grad), dk_tensor_numel(grad)};
    return DK_OK;
}

/* How many steps this block of accumulation has: accumulative_counts, or
 * fewer for the last block when the run's length is not a multiple
 * (mmengine divides those losses by the remainder). */
static int64_t block_length(const dkh_optim *o, int64_t iter)
{
    int64_t n = o->accumulate;
    if (n > 1 && o->max_iters > 0) {
        int64_t whole = o->max_iters / n * n;
        if (iter >= whole && o->max_iters > whole)
            return o->max_iters - whole;
    }
    return n;
}

/* Clips and scales the gathered gradients (m of them) in one pass. */
static void prepare_grads(dkh_optim *o, size_t m, double scale, dkh_optim_result *res)
{
    if (o->clip == DKH_CLIP_NORM) {
        double total = dkh_grads_norm(o->gviews, m, o->norm_type) * scale;
        double coef = o->max_norm / (total + 1e-6);
        /* torch clamps the coefficient at 1; a NaN norm makes NaN gradients
         * there too, which the caller's NaN guard sees. */
        double mult = scale * (isnan(coef) ? coef : coef < 1 ? coef : 1);
        if (mult != 1)
            dkh_grads_scale(o->gviews, m, (float)mult);
        res->has_grad_norm = true;
        res->grad_norm = total;
    } else if (o->clip == DKH_CLIP_VALUE) {
        dkh_grads_scale_clamp(o->gviews, m, (float)scale, (float)o->clip_value);
    } else if (scale != 1) {
        dkh_grads_scale(o->gviews, m, (float)scale);
    }
}

/* Runs the optimizer over params [0, m) of the scratch list, in runs that
 * share a step count (parameters that missed updates for want of a gradient
 * count their own, as PyTorch's per-parameter state does). */
static dk_status run_optimizer(dkh_optim *o, size_t m, const size_t *which)
{
    bool same = true;
    for (size_t k = 1; k < m; k++)
        same &= o->params[which[k]].steps == o->params[which[0]].steps;
    if (same)
        return o->vt->step(o->self, o->scratch, m, o->params[which[0]].steps + 1);
    dk_optim_param *run = malloc(m * sizeof *run);
    bool *done = calloc(m, sizeof *done);
    DKH_ASSERT(run && done);
    dk_status s = DK_OK;
    for (size_t k = 0; k < m && s == DK_OK; k++) {
        if (done[k])
            continue;
        int64_t steps = o->params[which[k]].steps;
        size_t len = 0;
        for (size_t j = k; j < m; j++) {
            if (!done[j] && o->params[which[j]].steps == steps) {
                run[len++] = o->scratch[j];
                done[j] = true;
            }
        }
        s = o->vt->step(o->self, run, len, steps + 1);
    }
    free(done);
    free(run);
    return s;
}

dk_status dkh_optim_step(dkh_optim *o, dkh_optim_result *res)
{
    *res = (dkh_optim_result){.grad_norm = NAN};
    int64_t iter = o->iter++;
    bool last = o->max_iters > 0 && iter + 1 >= o->max_iters;
    if ((iter + 1) % o->accumulate != 0 && !last)
        return DK_OK;

    size_t *which = malloc(o->n_params * sizeof *which);
    DKH_ASSERT(which != NULL);
    size_t m = 0;
    dk_status s = DK_OK;
    for (size_t i = 0; i < o->n_params && s == DK_OK; i++) {
        dkh_oparam *p = &o->params[i];
        s = dkh_optim_grad_view(p, &o->gviews[m]);
        if (s != DK_OK || !o->gviews[m].data)
            continue;
        s = dkh_optim_state_alloc(o, p);
        const dkh_ogroup *g = &o->groups[p->group];
        o->scratch[m] = (dk_optim_param){
            .name = p->name,
            .param = p->param,
            .grad = dk_tensor_grad(p->param),
            .state = p->state,
            .lr = g->lr,
            .weight_decay = o->base_wd * g->decay_mult,
            .momentum = o->momentum,
        };
        which[m++] = i;
    }
    if (s == DK_OK && m && o->pg) {
        s = dkh_grads_all_reduce_mean(o->pg, o->gviews, m, o->bucket, o->bucket_elems);
        if (s != DK_OK)
            dk_error_prefix("averaging the gradients across %d ranks",
                            dkh_pg_world_size(o->pg));
    }
    if (s == DK_OK && m) {
        prepare_grads(o, m, 1.0 / (double)block_length(o, iter), res);
        s = run_optimizer(o, m, which);
        if (s != DK_OK)
            dk_error_prefix("optimizer %s", o->type_name);
    }
    if (s == DK_OK) {
        for (size_t k = 0; k < m; k++)
            o->params[which[k]].steps++;
        o->updates += m > 0;
        res->updated = m > 0;
        dkh_optim_zero_grad(o);
    }
    free(which);
    return s;
}

void dkh_optim_set_dist(dkh_optim *o, dkh_pg *pg, size_t bucket_bytes)
{
    free(o->bucket);
    o->bucket = NULL;
    o->bucket_elems = 0;
    o->pg = pg && dkh_pg_world_size(pg) > 1 ? pg : NULL;
    if (!o->pg)
        return;
    /* No bucket larger than all the gradients together. */
    size_t total = 0;
    for (size_t i = 0; i < o->n_params; i++)
        total += (size_t)dk_tensor_numel(o->params[i].param);
    size_t elems = bucket_bytes / sizeof(float);
    elems = elems < 1 ? 1 : elems;
    elems = total && total < elems ? total : elems;
    o->bucket = malloc(elems * sizeof *o->bucket);
    DKH_ASSERT(o->bucket != NULL);
    o->bucket_elems = elems;
}

bool dkh_optim_grads_finite(const dkh_optim *o)
{
    for (size_t i = 0; i < o->n_params; i++) {
        dkh_gview g;
        if (dkh_optim_grad_view(&o->params[i], &g) != DK_OK)
            return false;
        if (g.data && !dkh_grads_finite(&g, 1))
            return false;
    }
    return true;
}

void dkh_optim_zero_grad(dkh_optim *o)
{
    for (size_t i = 0; i < o->n_params; i++)
        if (dk_tensor_grad(o->params[i].param))
            dk_tensor_zero_grad(o->params[i].param);
}

/* ---- introspection ----------------------------------------------------------------- */

size_t dkh_optim_n_params(const dkh_optim *o)
{
    return o->n_params;
}

const char *dkh_optim_param_name(const dkh_optim *o, size_t i)
{
    return i < o->n_params ? o->params[i].name : NULL;
}

void dkh_optim_param_mults(const dkh_optim *o, size_t i, double *lr_mult, double *decay_mult)
{
    DKH_ASSERT(i < o->n_params);
    const dkh_ogroup *g = &o->groups[o->params[i].group];
    if (lr_mult)
        *lr_mult = g->lr_mult;
    if (decay_mult)
        *decay_mult = g->decay_mult;
}

int64_t dkh_optim_updates(const dkh_optim *o)
{
    return o->updates;
}

const dk_object *dkh_optim_optimizer(const dkh_optim *o)
{
    return o->optimizer;
}
