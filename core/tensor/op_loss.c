/* core/tensor/op_loss.c — the L2 norm and the losses.
 *
 * cross_entropy is one fused op (log-softmax, the pick of the target class,
 * class weights, ignore_index, label smoothing and the reduction in one pass)
 * because it ends nearly every classifier's step: composed of ops it would
 * keep a (N, C) log-softmax for the backward and make several more
 * temporaries. The fused op keeps only each position's log-sum-exp and the
 * mean's denominator (auxiliary outputs) and recomputes the softmax in its
 * dedicated backward kernel. nll_loss shares the op's rule and kernels (its
 * input is already log-probabilities).
 *
 * The elementwise losses (binary cross-entropy with logits, sigmoid focal
 * loss, smooth L1, L1, MSE) are composed of elementwise ops, with the stable
 * forms: softplus(-x) = log(1 + e^-x) never overflows.
 *
 * Semantics are PyTorch's (torchvision's for the focal loss), including the
 * mean of a weighted cross-entropy: sum(w[t] * loss) / sum(w[t]) over the
 * positions that are not ignored (NaN when all are).
 *
 * cross_entropy / nll_loss arguments: i[0] = reduction, i[1] = ignore_index,
 * i[2] = 1 when input 2 is a class weight (else it is a placeholder), f[0] =
 * label smoothing. Inputs: x (N, C, d...) or (C), target (N, d...) or (),
 * weight (C). Auxiliary outputs: the denominator of the mean (scalar), and for
 * cross_entropy the log-sum-exp over classes at each position (target's shape).
 */
#include "op_index_impl.h"

#include <math.h>
#include <string.h>

bool dkh_reduction_ok(int reduction)
{
    return reduction == DK_REDUCTION_NONE || reduction == DK_REDUCTION_MEAN ||
           reduction == DK_REDUCTION_SUM;
}

/* ---- norm ------------------------------------------------------------------------------ */

/* Arguments as the reductions': v[d] != 0 marks a reduced dim, keepdim. */
static dk_status norm_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    const dk_tensor *x = in[0];
    if (!dkh_is_float(x->dtype))
        return dkh_op_fail(DKH_OP_NORM, 1, in, DK_ERR_ARG, "needs a float tensor");
    m->dtype = x->dtype;
    m->ndim = 0;
    for (int d = 0; d < x->ndim; d++)
        if (!a->v[d] || a->keepdim)
            m->shape[m->ndim++] = a->v[d] ? 1 : x->shape[d];
    dkh_contiguous_strides(m->ndim, m->shape, m->strides);
    return DK_OK;
}

static bool norm_ref(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0];
    int64_t ks[DK_MAX_DIMS], kst[DK_MAX_DIMS], rs[DK_MAX_DIMS], rst[DK_MAX_DIMS];
    int nk = 0, nr = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (c->args->v[d]) {
            rs[nr] = x->shape[d];
            rst[nr++] = x->strides[d];
        } else {
            ks[nk] = x->shape[d];
            kst[nk++] = x->strides[d];
        }
    }
    int64_t nout = dkh_numel(nk, ks), nred = dkh_numel(nr, rs);
    for (int64_t o = 0; o < nout; o++) {
        int64_t base = dkh_offset_of(o, nk, ks, kst);
        double acc = 0;
        for (int64_t r = 0; r < nred; r++) {
            double v = dkh_load(dkh_base(x), x->dtype, base + dkh_offset_of(r, nr, rs, rst));
            acc += v * v;
        }
        dkh_store(dkh_base(c->out), c->out->dtype, o, sqrt(acc));
    }
    return true;
}

/* g * x / norm, and 0 where the norm is 0 (PyTorch's subgradient). */
static dk_status norm_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out,
                          dk_tensor *const *aux, dk_tensor *g, const bool *needs, dk_tensor **gin)
{
    dk_tensor *x = in[0];
    int64_t shape[DK_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++)
        shape[d] = a->v[d] ? 1 : x->shape[d];
    dk_tensor *nk = dk_reshape(out, x->ndim, shape), *gk = dk_reshape(g, x->ndim, shape);
    dk_tensor *zero = dk_zeros(0, NULL, x->dtype, dk_tensor_device(x));
    dk_tensor *ratio = dk_where(dk_eq(nk, zero), zero, dk_div(gk, nk));
    gin[0] = dk_mul(x, ratio);
    return DK_OK;
}

const dkh_op_def dkh_op_norm = {"norm", 1, DKH_F_DIFF | DKH_F_SAVE_OUT, norm_infer, norm_bwd,
                                {norm_ref, NULL}};

dk_tensor *dk_norm(dk_tensor *x, const int *dims, int ndims, bool keepdim)
{
    if (!x)
        return dkh_op_run(DKH_OP_NORM, NULL, 1, &x);
    dkh_args a = {.nv = x->ndim, .keepdim = keepdim};
    if (ndims < 0 || ndims > DK_MAX_DIMS) {
        dkh_op_fail(DKH_OP_NORM, 1, &x, DK_ERR_ARG, "%d dims", ndims);
        return NULL;
    }
    for (int d = 0; d < x->ndim; d++)
        a.v[d] = ndims == 0 || !dims;
    for (int k = 0; dims && k < ndims; k++) {
        int d;
        if (!dkh_wrap_dim(dims[k], x->ndim, &d) || (x->ndim && a.v[d])) {
            dkh_op_fail(DKH_OP_NORM, 1, &x, DK_ERR_ARG, "dim %d is out of range or repeated",
                        dims[k]);
            return NULL;
        }
        if (x->ndim)
            a.v[d] = 1;
    }
    return dkh_op_run(DKH_OP_NORM, &a, 1, &x);
}

/* ---- cross_entropy, nll_loss ---------------------------------------------------------------- */

static dk_status ce_infer_for(dkh_op_id op, const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    const dk_tensor *x = in[0], *t = in[1], *w = in[2];
    int n_in = a->i[2] ? 3 : 2;
    if (!dkh_is_float(x->dtype))
        return dkh_op_fail(op, n_in, in, DK_ERR_ARG, "needs float scores");
    if (x->ndim == 0)
        return dkh_op_fail(op, n_in, in, DK_ERR_SHAPE, "the scores need a class dim");
    int cd = x->ndim >= 2 ? 1 : 0;
    int64_t C = x->shape[cd];
    bool shape_ok = t->ndim == x->ndim - 1;
    for (int d = 0, e = 0; shape_ok && d < x->ndim; d++)
        if (d != cd)
            shape_ok = t->shape[e++] == x->shape[d];
    if (!shape_ok)
        return dkh_op_fail(op, n_in, in, DK_ERR_SHAPE,
                           "the target must have the scores' shape without dim %d", cd);
    if (a->i[2] && (w->dtype != x->dtype || w->ndim != 1 || w->shape[0] != C))
        return dkh_op_fail(op, n_in, in, DK_ERR_SHAPE,
                           "the weight must be (%lld,) of the scores' dtype", (long long)C);
    if (!dkh_is_index_dtype(t->dtype))
        return dkh_op_fail(op, n_in, in, DK_ERR_ARG, "the target must hold class indices (i64)");
    int64_t n = dkh_numel(t->ndim, t->shape);
    /* One branch-free pass over the common contiguous i64 target; the loop
     * below then only names the first bad value. */
    bool bad = true;
    if (t->dtype == DK_DTYPE_I64 && dk_tensor_is_contiguous(t)) {
        const int64_t *p = (const int64_t *)dkh_base(t);
        int64_t ign = a->i[1];
        int nbad = 0;
#pragma omp simd reduction(+ : nbad)
        for (int64_t i = 0; i < n; i++)
            nbad += (p[i] != ign) & ((p[i] < 0) | (p[i] >= C));
        bad = nbad != 0;
    }
    for (int64_t i = 0; bad && i < n; i++) {
        int64_t v = dkh_index_at(t, i);
        if (v != a->i[1] && (v < 0 || v >= C))
            return dkh_op_fail(op, n_in, in, DK_ERR_ARG,
                               "target %lld is out of range for %lld classes", (long long)v,
                               (long long)C);
    }
    m->dtype = x->dtype;
    m->ndim = a->i[0] == DK_REDUCTION_NONE ? t->ndim : 0;
    memcpy(m->shape, t->shape, sizeof m->shape);
    dkh_contiguous_strides(m->ndim, m->shape, m->strides);
    m->n_aux = op == DKH_OP_CROSS_ENTROPY ? 2 : 1;
    m->aux[0].dtype = x->dtype;
    m->aux[0].ndim = 0;
    m->aux[1].dtype = x->dtype;
    m->aux[1].ndim = t->ndim;
    memcpy(m->aux[1].shape, t->shape, sizeof m->shape);
    return DK_OK;
}

/* x coordinates of target position p with class c: c inserted at the class dim. */
static int64_t x_offset(const dk_tensor *x, const int64_t *tc, int64_t c)
{
    int cd = x->ndim >= 2 ? 1 : 0;
    int64_t off = c * x->strides[cd];
    for (int d = 0, e = 0; d < x->ndim; d++)
        if (d != cd)
            off += tc[e++] * x->strides[d];
    return off;
}

static double weight_of(const dkh_kcall *c, int64_t k)
{
    const dk_tensor *w = c->in[2];
    return c->args->i[2] ? dkh_load(dkh_base(w), w->dtype, k * w->strides[0]) : 1.0;
}

static bool ce_ref(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0], *t = c->in[1];
    const dkh_args *a = c->args;
    bool ce = c->op == DKH_OP_CROSS_ENTROPY;
    double eps = ce ? a->f[0] : 0;
    int64_t C = x->shape[x->ndim >= 2 ? 1 : 0], P = dkh_numel(t->ndim, t->shape);
    int64_t tc[DK_MAX_DIMS];
    double total = 0, denom = 0;
    for (int64_t p = 0; p < P; p++) {
        dkh_unravel(p, t->ndim, t->shape, tc);
        int64_t k = dkh_index_at(t, p);
        double lse = 0, loss = 0;
        if (ce) {
            double mx = -INFINITY, s = 0;
            for (int64_t j = 0; j < C; j++)
                mx = fmax(mx, dkh_load(dkh_base(x), x->dtype, x_offset(x, tc, j)));
            for (int64_t j = 0; j < C; j++)
                s += exp(dkh_load(dkh_base(x), x->dtype, x_offset(x, tc, j)) - mx);
            lse = mx + log(s);
            dkh_store(dkh_base(c->aux[1]), c->aux[1]->dtype, p, lse);
        }
        if (k != a->i[1]) {
            double wk = weight_of(c, k);
            loss = -(1 - eps) * wk * (dkh_load(dkh_base(x), x->dtype, x_offset(x, tc, k)) - lse);
            if (eps > 0) {
                double smooth = 0;
                for (int64_t j = 0; j < C; j++)
                    smooth -= weight_of(c, j) *
                              (dkh_load(dkh_base(x), x->dtype, x_offset(x, tc, j)) - lse);
                loss += eps / (double)C * smooth;
            }
            denom += wk;
        }
        if (a->i[0] == DK_REDUCTION_NONE)
            dkh_store(dkh_base(c->out), c->out->dtype, p, loss);
        total += loss;
    }
    dkh_store(dkh_base(c->aux[0]), c->aux[0]->dtype, 0, denom);
    if (a->i[0] != DK_REDUCTION_NONE)
        dkh_store(dkh_base(c->out), c->out->dtype, 0,
                  a->i[0] == DK_REDUCTION_MEAN ? total / denom : total);
    return true;
}

/* Backward: in = {x, target, weight, g, denom, lse (cross_entropy)}; out = gx. */
static bool ce_ref_bwd(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0], *t = c->in[1], *g = c->in[3];
    const dkh_args *a = c->args;
    dk_tensor *gx = c->out;
    bool ce = c->op == DKH_OP_CROSS_ENTROPY;
    double eps = ce ? a->f[0] : 0;
    int64_t C = x->shape[x->ndim >= 2 ? 1 : 0], P = dkh_numel(t->ndim, t->shape);
    double denom = dkh_load(dkh_base(c->in[4]), c->in[4]->dtype, 0);
    double wsum = 0;
    for (int64_t j = 0; j < C; j++)
        wsum += weight_of(c, j);
    int64_t tc[DK_MAX_DIMS];
    for (int64_t p = 0; p < P; p++) {
        dkh_unravel(p, t->ndim, t->shape, tc);
        int64_t k = dkh_index_at(t, p);
        double gp = a->i[0] == DK_REDUCTION_NONE
                        ? dkh_load(dkh_base(g), g->dtype, dkh_offset_of(p, g->ndim, g->shape, g->strides))
                        : dkh_load(dkh_base(g), g->dtype, 0);
        if (a->i[0] == DK_REDUCTION_MEAN)
            gp /= denom;
        double lse = ce ? dkh_load(dkh_base(c->in[5]), c->in[5]->dtype, p) : 0;
        double wk = k != a->i[1] ? weight_of(c, k) : 0;
        /* gx offsets: gx is contiguous, x_offset with gx's strides. */
        for (int64_t j = 0; j < C; j++) {
            double v = 0;
            if (k != a->i[1]) {
                if (ce) {
                    double pj = exp(dkh_load(dkh_base(x), x->dtype, x_offset(x, tc, j)) - lse);
                    v = (1 - eps) * wk * (pj - (j == k)) +
                        eps / (double)C * (wsum * pj - weight_of(c, j));
                } else {
                    v = -wk * (j == k);
                }
            }
            dkh_store(dkh_base(gx), gx->dtype, x_offset(gx, tc, j), gp * v);
        }
    }
    return true;
}

static dk_status ce_bwd_for(dkh_op_id op, const dkh_args *a, dk_tensor *const *in,
                            dk_tensor *const *aux, dk_tensor *g, dk_tensor **gin)
{
    dk_tensor *bin[6] = {in[0], in[1], in[2], g, aux[0], op == DKH_OP_CROSS_ENTROPY ? aux[1] : NULL};
    return dkh_run_backward_kernel_n(op, a, op == DKH_OP_CROSS_ENTROPY ? 6 : 5, bin, 1, &in[0],
                                     &gin[0]);
}

#define CE_DEF(OP, name)                                                                          \
    static dk_status name##_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)           \
    {                                                                                              \
        return ce_infer_for(DKH_OP_##OP, a, in, m);                                               \
    }                                                                                              \
    static dk_status name##_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out,          \
                                dk_tensor *const *aux, dk_tensor *g, const bool *needs,           \
                                dk_tensor **gin)                                                   \
    {                                                                                              \
        return ce_bwd_for(DKH_OP_##OP, a, in, aux, g, gin);                                       \
    }                                                                                              \
    const dkh_op_def dkh_op_##name = {#name, 3, DKH_F_DIFF, name##_infer, name##_bwd,            \
                                      {ce_ref, ce_ref_bwd}};

CE_DEF(CROSS_ENTROPY, cross_entropy)
CE_DEF(NLL_LOSS, nll_loss)

static dk_tensor *ce_run(dkh_op_id op, dk_tensor *x, dk_tensor *target, dk_tensor *weight,
                         int64_t ignore_index, double smoothing, int reduction)
{
    if (x && target && !dkh_reduction_ok(reduction)) {
        dk_tensor *in[2] = {x, target};
        dkh_op_fail(op, 2, in, DK_ERR_ARG, "unknown reduction %d", reduction);
        return NULL;
    }
    if (x && target && !(smoothing >= 0 && smoothing <= 1)) {
        dk_tensor *in[2] = {x, target};
        dkh_op_fail(op, 2, in, DK_ERR_ARG, "label smoothing %g is outside [0, 1]", smoothing);
        return NULL;
    }
    /* The weight takes no gradient (as in PyTorch): the op sees it detached. */
    dk_tensor *in[3] = {x, target, weight ? dk_detach(weight) : target};
    dkh_args a = {.i = {reduction, ignore_index, weight != NULL}, .f = {smoothing}};
    return dkh_op_run(op, &a, 3, in);
}

dk_tensor *dk_cross_entropy(dk_tensor *logits, dk_tensor *target, dk_tensor *weight,
                            int64_t ignore_index, double label_smoothing, int reduction)
{
    return ce_run(DKH_OP_CROSS_ENTROPY, logits, target, weight, ignore_index, label_smoothing,
                  reduction);
}

dk_tensor *dk_nll_loss(dk_tensor *log_probs, dk_tensor *target, dk_tensor *weight,
                       int64_t ignore_index, int reduction)
{
    return ce_run(DKH_OP_NLL_LOSS, log_probs, target, weight, ignore_index, 0, reduction);
}

/* ---- elementwise losses (composed) ------------------------------------------------------ */

static dk_tensor *reduce_loss(dk_tensor *loss, int reduction)
{
    switch (reduction) {
    case DK_REDUCTION_NONE: return loss;
    case DK_REDUCTION_SUM: return dk_sum(loss, NULL, 0, false);
    default: return dk_mean(loss, NULL, 0, false);
    }
}

static bool loss_args_ok(const char *what, dk_tensor *x, dk_tensor *y, int reduction)
{
    if (!x || !y) {
        if (dk_last_status() == DK_OK)
            dk_fail(DK_ERR_ARG, "%s: input %d is NULL", what, x ? 1 : 0);
        return false;
    }
    if (!dkh_reduction_ok(reduction)) {
        dk_fail(DK_ERR_ARG, "%s: unknown reduction %d", what, reduction);
        return false;
    }
    return true;
}

static dk_tensor *scalar_like(dk_tensor *x, double v)
{
    return dk_full(0, NULL, v, dk_tensor_dtype(x), dk_tensor_device(x));
}

dk_tensor *dk_binary_cross_entropy_with_logits(dk_tensor *x, dk_tensor *target, dk_tensor *weight,
                                               dk_tensor *pos_weight, int reduction)
{
    if (!loss_args_ok("binary_cross_entropy_with_logits", x, target, reduction))
        return NULL;
    /* (1 - y) x + (1 + (pw - 1) y) log(1 + e^-x), the stable form. */
    dk_tensor *sp = dk_softplus(dk_neg(x));
    dk_tensor *one_m_y = dk_add_scalar(dk_neg(target), 1.0);
    dk_tensor *lw = pos_weight ? dk_add_scalar(dk_mul(dk_add_scalar(pos_weight, -1.0), target), 1.0)
                               : NULL;
    dk_tensor *loss = dk_add(dk_mul(one_m_y, x), lw ? dk_mul(lw, sp) : sp);
    if (weight)
        loss = dk_mul(loss, weight);
    return reduce_loss(loss, reduction);
}

dk_tensor *dk_sigmoid_focal_loss(dk_tensor *x, dk_tensor *target, double alpha, double gamma,
                                 int reduction)
{
    if (!loss_args_ok("sigmoid_focal_loss", x, target, reduction))
        return NULL;
    dk_tensor *p = dk_sigmoid(x);
    dk_tensor *ce = dk_binary_cross_entropy_with_logits(x, target, NULL, NULL, DK_REDUCTION_NONE);
    /* 1 - p_t with p_t = p t + (1 - p)(1 - t): p + t - 2 p t. */
    dk_tensor *one_m_pt = dk_sub(dk_add(p, target), dk_mul_scalar(dk_mul(p, target), 2.0));
    dk_tensor *loss = dk_mul(ce, dk_pow_scalar(one_m_pt, gamma));
    if (alpha >= 0) /* alpha_t = alpha t + (1 - alpha)(1 - t) */
        loss = dk_mul(loss, dk_add_scalar(dk_mul_scalar(target, 2 * alpha - 1), 1 - alpha));
    return reduce_loss(loss, reduction);
}

dk_tensor *dk_smooth_l1_loss(dk_tensor *x, dk_tensor *target, double beta, int reduction)
{
    if (!loss_args_ok("smooth_l1_loss", x, target, reduction))
        return NULL;
    if (!(beta >= 0)) {
        dk_fail(DK_ERR_ARG, "smooth_l1_loss: beta %g must be >= 0", beta);
        return NULL;
    }
    dk_tensor *d = dk_sub(x, target);
    dk_tensor *ad = dk_abs(d);
    if (beta == 0)
        return reduce_loss(ad, reduction);
    dk_tensor *quad = dk_mul_scalar(dk_mul(d, d), 0.5 / beta);
    dk_tensor *lin = dk_add_scalar(ad, -0.5 * beta);
    return reduce_loss(dk_where(dk_lt(ad, scalar_like(ad, beta)), quad, lin), reduction);
}

dk_tensor *dk_l1_loss(dk_tensor *x, dk_tensor *target, int reduction)
{
    if (!loss_args_ok("l1_loss", x, target, reduction))
        return NULL;
    return reduce_loss(dk_abs(dk_sub(x, target)), reduction);
}

dk_tensor *dk_mse_loss(dk_tensor *x, dk_tensor *target, int reduction)
{
    if (!loss_args_ok("mse_loss", x, target, reduction))
        return NULL;
    dk_tensor *d = dk_sub(x, target);
    return reduce_loss(dk_mul(d, d), reduction);
}
