/* core/tensor/op_norm.c — batch normalisation.
 *
 * The op is the training-mode transform: statistics over every dim but the
 * channel dim 1, y = (x - mean) * invstd * w + b with the biased variance.
 * It keeps mean, invstd and the biased variance as auxiliary outputs; the
 * backward kernel reads the first two, and dk_batch_norm reads the mean and
 * variance to update the running statistics in place (momentum, unbiased
 * variance, like PyTorch). Evaluation mode is a per-channel affine map built
 * from the running statistics with ordinary ops, so it needs no op of its own.
 *
 * Arguments: f[0] eps; i[0] 1 for a synchronised node (below). Inputs x
 * (N, C, *), w (C), b (C); a layer without affine parameters passes ones and
 * zeros that do not require grad.
 *
 * Synchronised batch norm (bn_sync.h): when a dkh_bn_sync is installed and
 * accepts the layer, dk_batch_norm hands a training forward to
 * op_norm_sync.c, which records a node of this op marked by i[0] = 1; the
 * op's backward sends such a node there too.
 */
#include "op_norm_impl.h"

#include <math.h>
#include <string.h>

/* The rule's checks; a synchronised forward checks the count of values per
 * channel over every process instead of here (local_count false). */
dk_status dkh_bn_check(const dkh_args *a, dk_tensor *const *in, bool local_count)
{
    const dk_tensor *x = in[0], *w = in[1], *b = in[2];
    if (x->ndim < 2)
        return dkh_op_fail(DKH_OP_BATCH_NORM, 3, in, DK_ERR_SHAPE, "input needs (N, C, ...) dims");
    if (!dkh_is_float(x->dtype) || w->dtype != x->dtype || b->dtype != x->dtype)
        return dkh_op_fail(DKH_OP_BATCH_NORM, 3, in, DK_ERR_ARG,
                           "needs float tensors of one dtype");
    int64_t C = x->shape[1];
    if (w->ndim != 1 || b->ndim != 1 || w->shape[0] != C || b->shape[0] != C)
        return dkh_op_fail(DKH_OP_BATCH_NORM, 3, in, DK_ERR_SHAPE,
                           "weight and bias must be (%lld,)", (long long)C);
    if (local_count && x->shape[0] * inner_count(x) < 2 && C > 0)
        return dkh_op_fail(DKH_OP_BATCH_NORM, 3, in, DK_ERR_SHAPE,
                           "training needs more than one value per channel");
    if (!(a->f[0] > 0))
        return dkh_op_fail(DKH_OP_BATCH_NORM, 3, in, DK_ERR_ARG, "eps must be > 0");
    return DK_OK;
}

static dk_status bn_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    DK_TRY(dkh_bn_check(a, in, true));
    const dk_tensor *x = in[0];
    int64_t C = x->shape[1];
    m->dtype = x->dtype;
    m->ndim = x->ndim;
    memcpy(m->shape, x->shape, sizeof m->shape);
    dkh_contiguous_strides(m->ndim, m->shape, m->strides);
    m->n_aux = 3; /* mean, invstd, biased variance: (C) each */
    for (int k = 0; k < 3; k++)
        m->aux[k] = (dkh_aux_meta){.dtype = x->dtype, .ndim = 1, .shape = {C}};
    return DK_OK;
}

static bool bn_ref(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0], *w = c->in[1], *b = c->in[2];
    dk_tensor *y = c->out;
    int64_t N = x->shape[0], C = x->shape[1], J = inner_count(x);
    double M = (double)(N * J);
    for (int64_t ch = 0; ch < C; ch++) {
        double s = 0, ss = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t j = 0; j < J; j++)
                s += dkh_load(dkh_base(x), x->dtype, elem_off(x, n, ch, j));
        double mean = s / M;
        for (int64_t n = 0; n < N; n++)
            for (int64_t j = 0; j < J; j++) {
                double d = dkh_load(dkh_base(x), x->dtype, elem_off(x, n, ch, j)) - mean;
                ss += d * d;
            }
        double var = ss / M, invstd = 1 / sqrt(var + c->args->f[0]);
        double wc = dkh_load(dkh_base(w), w->dtype, ch * w->strides[0]);
        double bc = dkh_load(dkh_base(b), b->dtype, ch * b->strides[0]);
        for (int64_t n = 0; n < N; n++)
            for (int64_t j = 0; j < J; j++) {
                double v = dkh_load(dkh_base(x), x->dtype, elem_off(x, n, ch, j));
                dkh_store(dkh_base(y), y->dtype, elem_off(y, n, ch, j),
                          (v - mean) * invstd * wc + bc);
            }
        dkh_store(dkh_base(c->aux[0]), c->aux[0]->dtype, ch, mean);
        dkh_store(dkh_base(c->aux[1]), c->aux[1]->dtype, ch, invstd);
        dkh_store(dkh_base(c->aux[2]), c->aux[2]->dtype, ch, var);
    }
    return true;
}

/* Backward kernel: in = {x, w, gy, mean, invstd}; out = gx, aux = {gw, gb}.
 * With xhat = (x - mean) invstd and M values per channel:
 * gb = sum gy, gw = sum gy xhat, gx = w invstd (gy - gb / M - xhat gw / M). */
static bool bn_bwd_ref(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0], *w = c->in[1], *g = c->in[2], *mu = c->in[3], *is = c->in[4];
    dk_tensor *gx = c->out, *gw = c->aux[0], *gb = c->aux[1];
    int64_t N = x->shape[0], C = x->shape[1], J = inner_count(x);
    double M = (double)(N * J);
    for (int64_t ch = 0; ch < C; ch++) {
        double mean = dkh_load(dkh_base(mu), mu->dtype, ch * mu->strides[0]);
        double invstd = dkh_load(dkh_base(is), is->dtype, ch * is->strides[0]);
        double wc = dkh_load(dkh_base(w), w->dtype, ch * w->strides[0]);
        double sg = 0, sgx = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t j = 0; j < J; j++) {
                double gv = dkh_load(dkh_base(g), g->dtype, elem_off(g, n, ch, j));
                double xh =
                    (dkh_load(dkh_base(x), x->dtype, elem_off(x, n, ch, j)) - mean) * invstd;
                sg += gv;
                sgx += gv * xh;
            }
        for (int64_t n = 0; n < N; n++)
            for (int64_t j = 0; j < J; j++) {
                double gv = dkh_load(dkh_base(g), g->dtype, elem_off(g, n, ch, j));
                double xh =
                    (dkh_load(dkh_base(x), x->dtype, elem_off(x, n, ch, j)) - mean) * invstd;
                dkh_store(dkh_base(gx), gx->dtype, elem_off(gx, n, ch, j),
                          wc * invstd * (gv - sg / M - xh * sgx / M));
            }
        dkh_store(dkh_base(gw), gw->dtype, ch * gw->strides[0], sgx);
        dkh_store(dkh_base(gb), gb->dtype, ch * gb->strides[0], sg);
    }
    return true;
}

/* The running statistics, updated in place outside autograd with a batch's
 * mean and biased variance over M values (momentum, unbiased variance). */
void dkh_bn_update_running(dk_tensor *rm, dk_tensor *rv, int64_t ch, double mean, double var,
                           double M, double momentum)
{
    int64_t om = ch * rm->strides[0], ov = ch * rv->strides[0];
    double m0 = dkh_load(dkh_base(rm), rm->dtype, om);
    double v0 = dkh_load(dkh_base(rv), rv->dtype, ov);
    dkh_store(dkh_base(rm), rm->dtype, om, (1 - momentum) * m0 + momentum * mean);
    dkh_store(dkh_base(rv), rv->dtype, ov, (1 - momentum) * v0 + momentum * var * (M / (M - 1)));
}

static dk_status bn_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out,
                        dk_tensor *const *aux, dk_tensor *g, const bool *needs, dk_tensor **gin)
{
    if (a->i[0] == 1)
        return dkh_bn_sync_backward(in, aux, g, needs, gin);
    dk_tensor *kin[5] = {in[0], in[1], g, aux[0], aux[1]};
    dk_tensor *outs[3];
    dk_status st = dkh_run_backward_kernel_n(DKH_OP_BATCH_NORM, a, 5, kin, 3, in, outs);
    if (st != DK_OK)
        return st;
    for (int i = 0; i < 3; i++)
        if (needs[i])
            gin[i] = outs[i];
    return DK_OK;
}

const dkh_op_def dkh_op_batch_norm = {"batch_norm", 3, DKH_F_DIFF | DKH_F_LAYOUT, bn_infer, bn_bwd,
                                      {bn_ref, bn_bwd_ref}};

/* ---- public function ------------------------------------------------------------------- */

static bool stat_ok(const dk_tensor *t, int64_t C)
{
    return !t || (t->ndim == 1 && t->shape[0] == C && dkh_is_float(t->dtype));
}

/* A (C) tensor viewed as (C, 1, ..., 1) to broadcast over x (N, C, *). */
static dk_tensor *chan_view(dk_tensor *t, int ndim)
{
    int64_t shape[DK_MAX_DIMS];
    shape[0] = t ? t->shape[0] : 0;
    for (int d = 1; d < ndim - 1; d++)
        shape[d] = 1;
    return dk_reshape(t, ndim - 1, shape);
}

dk_tensor *dk_batch_norm(dk_tensor *x, dk_tensor *weight, dk_tensor *bias,
                         dk_tensor *running_mean, dk_tensor *running_var, bool training,
                         double momentum, double eps)
{
    dk_tensor *in[5] = {x, weight, bias, running_mean, running_var};
    if (!x)
        return dkh_op_run(DKH_OP_BATCH_NORM, NULL, 3, in);
    int64_t C = x->ndim >= 2 ? x->shape[1] : 0;
    if (x->ndim < 2 || !stat_ok(weight, C) || !stat_ok(bias, C) || !stat_ok(running_mean, C) ||
        !stat_ok(running_var, C) || (!running_mean) != (!running_var)) {
        dkh_op_fail(DKH_OP_BATCH_NORM, 5, in, DK_ERR_SHAPE,
                    "needs x (N, C, ...) and (C,) float weight, bias and running statistics "
                    "(NULL or both given)");
        return NULL;
    }
    if (!training && running_mean) {
        /* y = x * scale + shift with scale = w / sqrt(rv + eps), shift = b - rm * scale. */
        dk_tensor *scale = dk_rsqrt(dk_add_scalar(running_var, eps));
        if (weight)
            scale = dk_mul(scale, weight);
        dk_tensor *shift = dk_neg(dk_mul(running_mean, scale));
        if (bias)
            shift = dk_add(shift, bias);
        return dk_add(dk_mul(x, chan_view(scale, x->ndim)), chan_view(shift, x->ndim));
    }
    dk_tensor *w = weight ? weight : dk_ones(1, &C, x->dtype, x->storage->device);
    dk_tensor *b = bias ? bias : dk_zeros(1, &C, x->dtype, x->storage->device);
    const dkh_bn_sync *sync = training ? dkh_bn_sync_get() : NULL;
    if (sync && w && b && sync->applies(sync->ctx, running_mean, weight))
        return dkh_bn_sync_forward(sync, x, w, b, running_mean, running_var, momentum, eps);
    dkh_args a = {.f = {eps}};
    dk_tensor *aux[3] = {NULL};
    dk_tensor *xin[3] = {x, w, b};
    dk_tensor *y = dkh_op_run_aux(DKH_OP_BATCH_NORM, &a, 3, xin, aux);
    if (!y || !training || !running_mean)
        return y;
    /* The running statistics are buffers: updated in place, outside autograd. */
    double M = (double)(x->shape[0] * inner_count(x));
    for (int64_t ch = 0; ch < C; ch++)
        dkh_bn_update_running(running_mean, running_var, ch,
                              dkh_load(dkh_base(aux[0]), aux[0]->dtype, ch),
                              dkh_load(dkh_base(aux[2]), aux[2]->dtype, ch), M, momentum);
    return y;
}
