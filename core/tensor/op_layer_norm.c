/* core/tensor/op_layer_norm.c — per-sample normalisation: layer norm and group norm.
 *
 * Both normalise groups of elements that belong to one sample, so unlike batch
 * norm they need no running statistics and behave the same in training and
 * evaluation. Layer norm normalises each row of the last k dims (PyTorch's
 * normalized_shape) and applies an elementwise affine map of that shape;
 * group norm splits the channels of x (N, C, *) into G groups, normalises
 * each (sample, group) and applies a per-channel affine map. Both use the
 * biased variance, rstd = 1 / sqrt(var + eps), and keep the mean and rstd of
 * every normalised group as auxiliary outputs so their dedicated backward
 * kernels (one pass giving dx, dweight and dbias) need not recompute them.
 *
 * Arguments: layer_norm i[0] = k (normalised trailing dims), group_norm
 * i[0] = G; f[0] = eps for both. Inputs x, w, b; a call without affine
 * parameters passes ones and zeros that do not require grad (as batch norm).
 * The reference kernels below work through doubles with any strides; the CPU
 * backend's fast kernels are in core/backends/cpu/nn_layer_norm.c.
 */
#include "tensor_impl.h"

#include <math.h>
#include <string.h>

static double ld(const dk_tensor *t, int64_t off)
{
    return dkh_load(dkh_base(t), t->dtype, off);
}

static void st(dk_tensor *t, int64_t off, double v)
{
    dkh_store(dkh_base(t), t->dtype, off, v);
}

/* Checks shared by both rules: float tensors of one dtype, eps >= 0. */
static dk_status check_floats(dkh_op_id op, dk_tensor *const *in, double eps)
{
    if (!dkh_is_float(in[0]->dtype) || in[1]->dtype != in[0]->dtype ||
        in[2]->dtype != in[0]->dtype)
        return dkh_op_fail(op, 3, in, DK_ERR_ARG, "needs float tensors of one dtype");
    if (!(eps >= 0))
        return dkh_op_fail(op, 3, in, DK_ERR_ARG, "eps %g must be >= 0", eps);
    return DK_OK;
}

static void same_as_x(dkh_meta *m, const dk_tensor *x)
{
    m->dtype = x->dtype;
    m->ndim = x->ndim;
    memcpy(m->shape, x->shape, sizeof m->shape);
    dkh_contiguous_strides(m->ndim, m->shape, m->strides);
}

/* ---- layer_norm: x (*, D...), w (D...), b (D...) -> y like x ------------------------------ */

/* The row/column view of x: M rows (the leading dims) of D elements (the
 * last k dims); element (r, j) lives at row_off(r) + col_off(j). */
typedef struct ln_view {
    int no, k;
    int64_t M, D;
} ln_view;

static ln_view ln_view_of(const dk_tensor *x, int k)
{
    ln_view v = {x->ndim - k, k, dkh_numel(x->ndim - k, x->shape),
                 dkh_numel(k, x->shape + x->ndim - k)};
    return v;
}

static int64_t row_off(const dk_tensor *t, const ln_view *v, int64_t r)
{
    return dkh_offset_of(r, v->no, t->shape, t->strides);
}

static int64_t col_off(const dk_tensor *t, const ln_view *v, int64_t j)
{
    return dkh_offset_of(j, v->k, t->shape + t->ndim - v->k, t->strides + t->ndim - v->k);
}

static dk_status ln_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    const dk_tensor *x = in[0], *w = in[1], *b = in[2];
    int64_t k = a->i[0];
    if (k < 1 || k > x->ndim)
        return dkh_op_fail(DKH_OP_LAYER_NORM, 3, in, DK_ERR_SHAPE,
                           "normalized_shape has %lld dims; x has %d", (long long)k, x->ndim);
    dk_status s = check_floats(DKH_OP_LAYER_NORM, in, a->f[0]);
    if (s != DK_OK)
        return s;
    bool ok = w->ndim == k && b->ndim == k;
    for (int d = 0; ok && d < k; d++)
        ok = w->shape[d] == x->shape[x->ndim - k + d] && b->shape[d] == w->shape[d];
    if (!ok)
        return dkh_op_fail(DKH_OP_LAYER_NORM, 3, in, DK_ERR_SHAPE,
                           "weight and bias must have the shape of x's last %lld dims",
                           (long long)k);
    same_as_x(m, x);
    m->n_aux = 2; /* mean, rstd: x's leading dims */
    for (int i = 0; i < 2; i++) {
        m->aux[i] = (dkh_aux_meta){.dtype = x->dtype, .ndim = x->ndim - (int)k};
        memcpy(m->aux[i].shape, x->shape, sizeof(int64_t) * (size_t)(x->ndim - k));
    }
    return DK_OK;
}

static bool ln_ref(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0], *w = c->in[1], *b = c->in[2];
    dk_tensor *y = c->out;
    ln_view v = ln_view_of(x, (int)c->args->i[0]);
    for (int64_t r = 0; r < v.M; r++) {
        int64_t xr = row_off(x, &v, r), yr = row_off(y, &v, r);
        double s = 0, ss = 0;
        for (int64_t j = 0; j < v.D; j++)
            s += ld(x, xr + col_off(x, &v, j));
        double mean = s / (double)v.D;
        for (int64_t j = 0; j < v.D; j++) {
            double d = ld(x, xr + col_off(x, &v, j)) - mean;
            ss += d * d;
        }
        double rstd = 1 / sqrt(ss / (double)v.D + c->args->f[0]);
        for (int64_t j = 0; j < v.D; j++) {
            double xh = (ld(x, xr + col_off(x, &v, j)) - mean) * rstd;
            st(y, yr + col_off(y, &v, j),
               xh * ld(w, col_off(w, &v, j)) + ld(b, col_off(b, &v, j)));
        }
        st(c->aux[0], r, mean);
        st(c->aux[1], r, rstd);
    }
    return true;
}

/* Backward kernel: in = {x, w, gy, mean, rstd}; out = gx, aux = {gw, gb}.
 * Per row, with xhat = (x - mean) rstd and h = gy w:
 * gx = rstd (h - mean(h) - xhat mean(h xhat)); gw = sum over rows gy xhat,
 * gb = sum over rows gy. */
static bool ln_bwd_ref(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0], *w = c->in[1], *g = c->in[2], *mu = c->in[3], *rs = c->in[4];
    dk_tensor *gx = c->out, *gw = c->aux[0], *gb = c->aux[1];
    ln_view v = ln_view_of(x, (int)c->args->i[0]);
    for (int64_t j = 0; j < v.D; j++) {
        st(gw, col_off(gw, &v, j), 0);
        st(gb, col_off(gb, &v, j), 0);
    }
    for (int64_t r = 0; r < v.M; r++) {
        int64_t xr = row_off(x, &v, r), gr = row_off(g, &v, r), orow = row_off(gx, &v, r);
        double mean = ld(mu, row_off(mu, &v, r)), rstd = ld(rs, row_off(rs, &v, r));
        double sh = 0, shx = 0;
        for (int64_t j = 0; j < v.D; j++) {
            double gv = ld(g, gr + col_off(g, &v, j));
            double xh = (ld(x, xr + col_off(x, &v, j)) - mean) * rstd;
            double h = gv * ld(w, col_off(w, &v, j));
            sh += h;
            shx += h * xh;
            int64_t ow = col_off(gw, &v, j), ob = col_off(gb, &v, j);
            st(gw, ow, ld(gw, ow) + gv * xh);
            st(gb, ob, ld(gb, ob) + gv);
        }
        sh /= (double)v.D;
        shx /= (double)v.D;
        for (int64_t j = 0; j < v.D; j++) {
            double gv = ld(g, gr + col_off(g, &v, j));
            double xh = (ld(x, xr + col_off(x, &v, j)) - mean) * rstd;
            double h = gv * ld(w, col_off(w, &v, j));
            st(gx, orow + col_off(gx, &v, j), rstd * (h - sh - xh * shx));
        }
    }
    return true;
}

/* The backward of both ops: one dedicated kernel gives every gradient. */
static dk_status norm_bwd(dkh_op_id op, const dkh_args *a, dk_tensor *const *in,
                          dk_tensor *const *aux, dk_tensor *g, const bool *needs, dk_tensor **gin)
{
    dk_tensor *kin[5] = {in[0], in[1], g, aux[0], aux[1]};
    dk_tensor *outs[3];
    dk_status s = dkh_run_backward_kernel_n(op, a, 5, kin, 3, in, outs);
    if (s != DK_OK)
        return s;
    for (int i = 0; i < 3; i++)
        if (needs[i])
            gin[i] = outs[i];
    return DK_OK;
}

static dk_status ln_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out,
                        dk_tensor *const *aux, dk_tensor *g, const bool *needs, dk_tensor **gin)
{
    return norm_bwd(DKH_OP_LAYER_NORM, a, in, aux, g, needs, gin);
}

const dkh_op_def dkh_op_layer_norm = {"layer_norm", 3, DKH_F_DIFF, ln_infer, ln_bwd,
                                      {ln_ref, ln_bwd_ref}};

/* ---- group_norm: x (N, C, *), w (C), b (C) -> y like x --------------------------------------- */

/* Element (n, c, j) of x (N, C, *), j over the flattened trailing dims. */
static int64_t gn_off(const dk_tensor *t, int64_t n, int64_t c, int64_t j)
{
    return n * t->strides[0] + c * t->strides[1] +
           dkh_offset_of(j, t->ndim - 2, t->shape + 2, t->strides + 2);
}

static dk_status gn_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    const dk_tensor *x = in[0], *w = in[1], *b = in[2];
    if (x->ndim < 2)
        return dkh_op_fail(DKH_OP_GROUP_NORM, 3, in, DK_ERR_SHAPE, "input needs (N, C, ...) dims");
    dk_status s = check_floats(DKH_OP_GROUP_NORM, in, a->f[0]);
    if (s != DK_OK)
        return s;
    int64_t C = x->shape[1], G = a->i[0];
    if (G < 1 || C % G != 0)
        return dkh_op_fail(DKH_OP_GROUP_NORM, 3, in, DK_ERR_SHAPE,
                           "%lld channels do not split into %lld groups", (long long)C,
                           (long long)G);
    if (w->ndim != 1 || b->ndim != 1 || w->shape[0] != C || b->shape[0] != C)
        return dkh_op_fail(DKH_OP_GROUP_NORM, 3, in, DK_ERR_SHAPE,
                           "weight and bias must be (%lld,)", (long long)C);
    same_as_x(m, x);
    m->n_aux = 2; /* mean, rstd: (N, G) */
    for (int i = 0; i < 2; i++)
        m->aux[i] = (dkh_aux_meta){.dtype = x->dtype, .ndim = 2, .shape = {x->shape[0], G}};
    return DK_OK;
}

static bool gn_ref(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0], *w = c->in[1], *b = c->in[2];
    dk_tensor *y = c->out;
    int64_t N = x->shape[0], C = x->shape[1], G = c->args->i[0], Cg = C / G;
    int64_t J = dkh_numel(x->ndim - 2, x->shape + 2);
    double M = (double)(Cg * J);
    for (int64_t n = 0; n < N; n++)
        for (int64_t gi = 0; gi < G; gi++) {
            double s = 0, ss = 0;
            for (int64_t ch = gi * Cg; ch < (gi + 1) * Cg; ch++)
                for (int64_t j = 0; j < J; j++)
                    s += ld(x, gn_off(x, n, ch, j));
            double mean = s / M;
            for (int64_t ch = gi * Cg; ch < (gi + 1) * Cg; ch++)
                for (int64_t j = 0; j < J; j++) {
                    double d = ld(x, gn_off(x, n, ch, j)) - mean;
                    ss += d * d;
                }
            double rstd = 1 / sqrt(ss / M + c->args->f[0]);
            for (int64_t ch = gi * Cg; ch < (gi + 1) * Cg; ch++) {
                double wc = ld(w, ch * w->strides[0]), bc = ld(b, ch * b->strides[0]);
                for (int64_t j = 0; j < J; j++)
                    st(y, gn_off(y, n, ch, j), (ld(x, gn_off(x, n, ch, j)) - mean) * rstd * wc + bc);
            }
            st(c->aux[0], n * G + gi, mean);
            st(c->aux[1], n * G + gi, rstd);
        }
    return true;
}

/* Backward kernel: in = {x, w, gy, mean, rstd}; out = gx, aux = {gw, gb}.
 * The layer-norm formula per (sample, group) with h = gy w[c]; gw[c] and
 * gb[c] sum gy xhat and gy over samples and positions. */
static bool gn_bwd_ref(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0], *w = c->in[1], *g = c->in[2], *mu = c->in[3], *rs = c->in[4];
    dk_tensor *gx = c->out, *gw = c->aux[0], *gb = c->aux[1];
    int64_t N = x->shape[0], C = x->shape[1], G = c->args->i[0], Cg = C / G;
    int64_t J = dkh_numel(x->ndim - 2, x->shape + 2);
    double M = (double)(Cg * J);
    for (int64_t ch = 0; ch < C; ch++) {
        st(gw, ch * gw->strides[0], 0);
        st(gb, ch * gb->strides[0], 0);
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t gi = 0; gi < G; gi++) {
            double mean = ld(mu, n * mu->strides[0] + gi * mu->strides[1]);
            double rstd = ld(rs, n * rs->strides[0] + gi * rs->strides[1]);
            double sh = 0, shx = 0;
            for (int64_t ch = gi * Cg; ch < (gi + 1) * Cg; ch++) {
                double wc = ld(w, ch * w->strides[0]), sgx = 0, sg = 0;
                for (int64_t j = 0; j < J; j++) {
                    double gv = ld(g, gn_off(g, n, ch, j));
                    double xh = (ld(x, gn_off(x, n, ch, j)) - mean) * rstd;
                    sg += gv;
                    sgx += gv * xh;
                }
                sh += wc * sg;
                shx += wc * sgx;
                st(gw, ch * gw->strides[0], ld(gw, ch * gw->strides[0]) + sgx);
                st(gb, ch * gb->strides[0], ld(gb, ch * gb->strides[0]) + sg);
            }
            sh /= M;
            shx /= M;
            for (int64_t ch = gi * Cg; ch < (gi + 1) * Cg; ch++) {
                double wc = ld(w, ch * w->strides[0]);
                for (int64_t j = 0; j < J; j++) {
                    double gv = ld(g, gn_off(g, n, ch, j));
                    double xh = (ld(x, gn_off(x, n, ch, j)) - mean) * rstd;
                    st(gx, gn_off(gx, n, ch, j), rstd * (gv * wc - sh - xh * shx));
                }
            }
        }
    return true;
}

static dk_status gn_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out,
                        dk_tensor *const *aux, dk_tensor *g, const bool *needs, dk_tensor **gin)
{
    return norm_bwd(DKH_OP_GROUP_NORM, a, in, aux, g, needs, gin);
}

const dkh_op_def dkh_op_group_norm = {"group_norm", 3, DKH_F_DIFF, gn_infer, gn_bwd,
                                      {gn_ref, gn_bwd_ref}};

/* ---- public functions ------------------------------------------------------------------- */

/* Weight or bias, or the constant that stands in for a missing one. */
static dk_tensor *or_const(dk_tensor *t, int ndim, const int64_t *shape, double v,
                           const dk_tensor *x)
{
    return t ? t : dk_full(ndim, shape, v, x->dtype, x->storage->device);
}

dk_tensor *dk_layer_norm(dk_tensor *x, const int64_t *normalized_shape, int n,
                         dk_tensor *weight, dk_tensor *bias, double eps)
{
    dk_tensor *in[3] = {x, weight, bias};
    if (!x)
        return dkh_op_run(DKH_OP_LAYER_NORM, NULL, 3, in);
    bool ok = normalized_shape && n >= 1 && n <= x->ndim;
    for (int d = 0; ok && d < n; d++)
        ok = normalized_shape[d] == x->shape[x->ndim - n + d];
    if (!ok) {
        dkh_buf b = DKH_BUF_INIT;
        for (int d = 0; normalized_shape && d < n && d < DK_MAX_DIMS; d++)
            dkh_buf_printf(&b, d ? ", %lld" : "%lld", (long long)normalized_shape[d]);
        dkh_op_fail(DKH_OP_LAYER_NORM, 3, in, DK_ERR_SHAPE,
                    "normalized_shape (%s) must be 1 to %d trailing dims of x",
                    dkh_buf_str(&b), x->ndim);
        dkh_buf_fini(&b);
        return NULL;
    }
    const int64_t *ns = x->shape + x->ndim - n;
    dk_tensor *xin[3] = {x, or_const(weight, n, ns, 1, x), or_const(bias, n, ns, 0, x)};
    dkh_args a = {.i = {n}, .f = {eps}};
    return dkh_op_run(DKH_OP_LAYER_NORM, &a, 3, xin);
}

dk_tensor *dk_group_norm(dk_tensor *x, int64_t num_groups, dk_tensor *weight, dk_tensor *bias,
                         double eps)
{
    dk_tensor *in[3] = {x, weight, bias};
    if (!x)
        return dkh_op_run(DKH_OP_GROUP_NORM, NULL, 3, in);
    if (x->ndim < 2) {
        dkh_op_fail(DKH_OP_GROUP_NORM, 3, in, DK_ERR_SHAPE, "input needs (N, C, ...) dims");
        return NULL;
    }
    int64_t C = x->shape[1];
    dk_tensor *xin[3] = {x, or_const(weight, 1, &C, 1, x), or_const(bias, 1, &C, 0, x)};
    dkh_args a = {.i = {num_groups}, .f = {eps}};
    return dkh_op_run(DKH_OP_GROUP_NORM, &a, 3, xin);
}
