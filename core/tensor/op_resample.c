/* core/tensor/op_resample.c — interpolate (nearest, bilinear), pad
 * (constant, reflect, replicate) and dropout.
 *
 * interpolate follows PyTorch's coordinate conventions exactly, since a
 * detector trained here must see the same pixels as one trained there:
 * nearest takes floor(o * scale) computed in single precision (as PyTorch
 * does, which matters where o * in / out is an integer), bilinear maps o to
 * (o + 0.5) * scale - 0.5 clamped at 0, or o * (in - 1) / (out - 1) with
 * align_corners; scale is in / out for a given size and 1 / scale_factor for a
 * given scale factor (PyTorch's default, recompute_scale_factor off). The
 * public function turns sizes and factors into the per-dim coordinate scale
 * (f[0] for H, f[1] for W) so kernels never see the choice.
 *
 * dropout keeps no mask: element i of a call is kept when the generator's
 * 32-bit value at (key, counter + i) is below (1 - p) 2^32 (two values per
 * hash, see dkh_dropout_u32), so the backward regenerates the same mask from
 * the generator state recorded in the arguments. Same seed, same mask,
 * whatever the thread count.
 *
 * Arguments. interpolate: i[0] = mode (DK_INTERP_*), i[1] = align_corners,
 * i[2], i[3] = output H, W; f[0], f[1] = coordinate scales. pad: v[0..nv) =
 * pads (last dim first, left then right, as PyTorch), i[0] = mode
 * (DK_PAD_*), f[0] = the constant. dropout: f[0] = p, rng = the state the
 * mask was drawn from.
 */
#include "op_index_impl.h"

#include <math.h>
#include <string.h>

/* ---- coordinates (shared with the CPU kernels) ----------------------------------------------- */

int64_t dkh_nearest_src(int64_t o, double scale, int64_t in, int64_t out)
{
    if (out == in)
        return o;
    if (out == 2 * in)
        return o >> 1;
    int64_t s = (int64_t)floorf((float)o * (float)scale);
    return s < in - 1 ? s : in - 1;
}

double dkh_linear_src(int64_t o, double scale, bool align_corners)
{
    if (align_corners)
        return scale * (double)o;
    double s = scale * ((double)o + 0.5) - 0.5;
    return s < 0 ? 0 : s;
}

/* ---- interpolate ---------------------------------------------------------------------------- */

static dk_status interp_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    const dk_tensor *x = in[0];
    if (!dkh_is_float(x->dtype))
        return dkh_op_fail(DKH_OP_INTERPOLATE, 1, in, DK_ERR_ARG, "needs a float tensor");
    m->dtype = x->dtype;
    m->ndim = 4;
    m->shape[0] = x->shape[0];
    m->shape[1] = x->shape[1];
    m->shape[2] = a->i[2];
    m->shape[3] = a->i[3];
    if ((x->shape[2] == 0 || x->shape[3] == 0) && dkh_numel(4, m->shape) > 0)
        return dkh_op_fail(DKH_OP_INTERPOLATE, 1, in, DK_ERR_SHAPE,
                           "cannot resample an empty image to a non-empty one");
    dkh_contiguous_strides(4, m->shape, m->strides);
    return DK_OK;
}

/* The two source rows (or columns) of output o and their weights. */
typedef struct tap {
    int64_t i0, i1;
    double w0, w1;
} tap;

static tap tap_of(const dkh_args *a, int dim, int64_t o, int64_t in, int64_t out)
{
    tap t;
    double scale = a->f[dim];
    if (a->i[0] == DK_INTERP_NEAREST) {
        t.i0 = t.i1 = dkh_nearest_src(o, scale, in, out);
        t.w0 = 1;
        t.w1 = 0;
        return t;
    }
    double s = dkh_linear_src(o, scale, a->i[1] != 0);
    t.i0 = (int64_t)s;
    t.i1 = t.i0 + (t.i0 < in - 1 ? 1 : 0);
    t.w1 = s - (double)t.i0;
    t.w0 = 1 - t.w1;
    return t;
}

static bool interp_ref(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0];
    dk_tensor *o = c->out;
    int64_t H = x->shape[2], W = x->shape[3], OH = o->shape[2], OW = o->shape[3];
    int64_t planes = x->shape[0] * x->shape[1];
    for (int64_t p = 0; p < planes; p++) {
        int64_t n = p / x->shape[1], ch = p % x->shape[1];
        int64_t xb = n * x->strides[0] + ch * x->strides[1];
        for (int64_t oy = 0; oy < OH; oy++) {
            tap ty = tap_of(c->args, 0, oy, H, OH);
            for (int64_t ox = 0; ox < OW; ox++) {
                tap tx = tap_of(c->args, 1, ox, W, OW);
#define X_(yy, xx) dkh_load(dkh_base(x), x->dtype, xb + (yy) * x->strides[2] + (xx) * x->strides[3])
                double v = ty.w0 * (tx.w0 * X_(ty.i0, tx.i0) + tx.w1 * X_(ty.i0, tx.i1)) +
                           ty.w1 * (tx.w0 * X_(ty.i1, tx.i0) + tx.w1 * X_(ty.i1, tx.i1));
#undef X_
                dkh_store(dkh_base(o), o->dtype, (p * OH + oy) * OW + ox, v);
            }
        }
    }
    return true;
}

/* Backward: in = {x, NULL, g}; out = gx: each output's gradient split over
 * the taps it read. */
static bool interp_ref_bwd(const dkh_kcall *c)
{
    const dk_tensor *g = c->in[2];
    dk_tensor *gx = c->out;
    int64_t H = gx->shape[2], W = gx->shape[3], OH = g->shape[2], OW = g->shape[3];
    int64_t planes = gx->shape[0] * gx->shape[1], n = dkh_numel(4, gx->shape);
    for (int64_t i = 0; i < n; i++)
        dkh_store(dkh_base(gx), gx->dtype, i, 0.0);
    for (int64_t p = 0; p < planes; p++) {
        int64_t gb = (p / g->shape[1]) * g->strides[0] + (p % g->shape[1]) * g->strides[1];
        for (int64_t oy = 0; oy < OH; oy++) {
            tap ty = tap_of(c->args, 0, oy, H, OH);
            for (int64_t ox = 0; ox < OW; ox++) {
                tap tx = tap_of(c->args, 1, ox, W, OW);
                double v = dkh_load(dkh_base(g), g->dtype, gb + oy * g->strides[2] + ox * g->strides[3]);
                int64_t ys[2] = {ty.i0, ty.i1}, xs[2] = {tx.i0, tx.i1};
                double wy[2] = {ty.w0, ty.w1}, wx[2] = {tx.w0, tx.w1};
                for (int u = 0; u < 2; u++)
                    for (int w = 0; w < 2; w++) {
                        int64_t k = (p * H + ys[u]) * W + xs[w];
                        dkh_store(dkh_base(gx), gx->dtype, k,
                                  dkh_load(dkh_base(gx), gx->dtype, k) + wy[u] * wx[w] * v);
                    }
            }
        }
    }
    return true;
}

static dk_status interp_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out,
                            dk_tensor *const *aux, dk_tensor *g, const bool *needs, dk_tensor **gin)
{
    /* The fast kernel reads g contiguously; a gradient that arrives as a
     * broadcast view (from a sum) is materialised once. */
    gin[0] = dkh_run_backward_kernel(DKH_OP_INTERPOLATE, a, in[0], NULL, dk_contiguous(g));
    return gin[0] ? DK_OK : dk_last_status();
}

const dkh_op_def dkh_op_interpolate = {"interpolate", 1, DKH_F_DIFF, interp_infer, interp_bwd,
                                       {interp_ref, interp_ref_bwd}};

dk_tensor *dk_interpolate(dk_tensor *x, const int64_t *size, const double *scale_factor, int mode,
                          bool align_corners)
{
    if (!x)
        return dkh_op_run(DKH_OP_INTERPOLATE, NULL, 1, &x);
    if (x->ndim != 4)
        return dkh_op_fail(DKH_OP_INTERPOLATE, 1, &x, DK_ERR_SHAPE, "needs (N, C, H, W)"), NULL;
    if (mode != DK_INTERP_NEAREST && mode != DK_INTERP_BILINEAR)
        return dkh_op_fail(DKH_OP_INTERPOLATE, 1, &x, DK_ERR_ARG, "unknown mode %d", mode), NULL;
    if (mode == DK_INTERP_NEAREST && align_corners)
        return dkh_op_fail(DKH_OP_INTERPOLATE, 1, &x, DK_ERR_ARG,
                           "align_corners applies only to bilinear"), NULL;
    if (!size == !scale_factor)
        return dkh_op_fail(DKH_OP_INTERPOLATE, 1, &x, DK_ERR_ARG,
                           "give exactly one of size and scale_factor"), NULL;
    dkh_args a = {.i = {mode, align_corners}};
    for (int k = 0; k < 2; k++) {
        int64_t in = x->shape[2 + k], out;
        if (size) {
            out = size[k];
        } else {
            if (!(scale_factor[k] > 0))
                return dkh_op_fail(DKH_OP_INTERPOLATE, 1, &x, DK_ERR_ARG,
                                   "scale factor %g must be > 0", scale_factor[k]), NULL;
            out = (int64_t)floor((double)in * scale_factor[k]);
        }
        if (out < 0)
            return dkh_op_fail(DKH_OP_INTERPOLATE, 1, &x, DK_ERR_ARG, "output size %lld",
                               (long long)out), NULL;
        a.i[2 + k] = out;
        if (align_corners && mode == DK_INTERP_BILINEAR)
            a.f[k] = out > 1 ? (double)(in - 1) / (double)(out - 1) : 0;
        else if (scale_factor)
            a.f[k] = 1.0 / scale_factor[k];
        else
            a.f[k] = out > 0 ? (double)in / (double)out : 0;
    }
    return dkh_op_run(DKH_OP_INTERPOLATE, &a, 1, &x);
}

/* ---- pad ------------------------------------------------------------------------------------ */

int64_t dkh_pad_src(int mode, int64_t o, int64_t l, int64_t n)
{
    int64_t s = o - l;
    if (s >= 0 && s < n)
        return s;
    switch (mode) {
    case DK_PAD_REFLECT: return s < 0 ? -s : 2 * (n - 1) - s;
    case DK_PAD_REPLICATE: return s < 0 ? 0 : n - 1;
    default: return -1;
    }
}

static dk_status pad_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    const dk_tensor *x = in[0];
    int mode = (int)a->i[0];
    if (x->dtype == DK_DTYPE_BOOL && mode == DK_PAD_CONSTANT && a->f[0] != 0 && a->f[0] != 1)
        return dkh_op_fail(DKH_OP_PAD, 1, in, DK_ERR_ARG, "bool pads with 0 or 1");
    m->dtype = x->dtype;
    m->ndim = x->ndim;
    memcpy(m->shape, x->shape, sizeof m->shape);
    for (int k = 0; k < a->nv / 2; k++) {
        int d = x->ndim - 1 - k;
        int64_t l = a->v[2 * k], r = a->v[2 * k + 1], n = x->shape[d];
        if (mode != DK_PAD_CONSTANT) {
            if (l < 0 || r < 0)
                return dkh_op_fail(DKH_OP_PAD, 1, in, DK_ERR_ARG,
                                   "negative padding is only for constant mode");
            if (mode == DK_PAD_REFLECT && (l >= n || r >= n))
                return dkh_op_fail(DKH_OP_PAD, 1, in, DK_ERR_ARG,
                                   "reflect padding (%lld, %lld) must be less than dim %d's size %lld",
                                   (long long)l, (long long)r, d, (long long)n);
            if (mode == DK_PAD_REPLICATE && n == 0 && l + r > 0)
                return dkh_op_fail(DKH_OP_PAD, 1, in, DK_ERR_ARG,
                                   "cannot replicate an empty dim %d", d);
        }
        m->shape[d] = n + l + r;
        if (m->shape[d] < 0)
            return dkh_op_fail(DKH_OP_PAD, 1, in, DK_ERR_SHAPE, "dim %d would have size %lld", d,
                               (long long)m->shape[d]);
    }
    dkh_contiguous_strides(m->ndim, m->shape, m->strides);
    return DK_OK;
}

/* The source offset in x of output coordinate co, or -1 for the constant. */
static int64_t pad_offset(const dkh_args *a, const dk_tensor *x, const int64_t *co)
{
    int64_t off = 0;
    int npad = a->nv / 2;
    for (int d = 0; d < x->ndim; d++) {
        int k = x->ndim - 1 - d;
        int64_t s = k < npad ? dkh_pad_src((int)a->i[0], co[d], a->v[2 * k], x->shape[d]) : co[d];
        if (s < 0)
            return -1;
        off += s * x->strides[d];
    }
    return off;
}

static bool pad_ref(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0];
    dk_tensor *o = c->out;
    int64_t n = dkh_numel(o->ndim, o->shape), co[DK_MAX_DIMS];
    for (int64_t i = 0; i < n; i++) {
        dkh_unravel(i, o->ndim, o->shape, co);
        int64_t s = pad_offset(c->args, x, co);
        dkh_store(dkh_base(o), o->dtype, i,
                  s < 0 ? c->args->f[0] : dkh_load(dkh_base(x), x->dtype, s));
    }
    return true;
}

/* Backward: in = {x, NULL, g}; out = gx (contiguous, x's shape). */
static bool pad_ref_bwd(const dkh_kcall *c)
{
    const dk_tensor *g = c->in[2];
    dk_tensor *gx = c->out;
    int64_t n = dkh_numel(gx->ndim, gx->shape), co[DK_MAX_DIMS];
    for (int64_t i = 0; i < n; i++)
        dkh_store(dkh_base(gx), gx->dtype, i, 0.0);
    n = dkh_numel(g->ndim, g->shape);
    for (int64_t i = 0; i < n; i++) {
        dkh_unravel(i, g->ndim, g->shape, co);
        int64_t s = pad_offset(c->args, gx, co);
        if (s < 0)
            continue;
        double v = dkh_load(dkh_base(g), g->dtype, dkh_dot_strides(g->ndim, co, g->strides));
        dkh_store(dkh_base(gx), gx->dtype, s, dkh_load(dkh_base(gx), gx->dtype, s) + v);
    }
    return true;
}

static dk_status pad_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out,
                         dk_tensor *const *aux, dk_tensor *g, const bool *needs, dk_tensor **gin)
{
    gin[0] = dkh_run_backward_kernel(DKH_OP_PAD, a, in[0], NULL, g);
    return gin[0] ? DK_OK : dk_last_status();
}

const dkh_op_def dkh_op_pad = {"pad", 1, DKH_F_DIFF, pad_infer, pad_bwd, {pad_ref, pad_ref_bwd}};

dk_tensor *dk_pad(dk_tensor *x, const int64_t *pads, int npads, int mode, double value)
{
    if (!x)
        return dkh_op_run(DKH_OP_PAD, NULL, 1, &x);
    if (npads < 0 || npads % 2 || npads / 2 > x->ndim || (npads && !pads))
        return dkh_op_fail(DKH_OP_PAD, 1, &x, DK_ERR_ARG,
                           "%d pads: give two per padded dim, at most two per dim", npads), NULL;
    if (mode != DK_PAD_CONSTANT && mode != DK_PAD_REFLECT && mode != DK_PAD_REPLICATE)
        return dkh_op_fail(DKH_OP_PAD, 1, &x, DK_ERR_ARG, "unknown mode %d", mode), NULL;
    dkh_args a = {.nv = npads, .i = {mode}, .f = {mode == DK_PAD_CONSTANT ? value : 0}};
    for (int k = 0; k < npads; k++)
        a.v[k] = pads[k];
    return dkh_op_run(DKH_OP_PAD, &a, 1, &x);
}

/* ---- dropout -------------------------------------------------------------------------------- */

static dk_status dropout_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    const dk_tensor *x = in[0];
    if (!dkh_is_float(x->dtype))
        return dkh_op_fail(DKH_OP_DROPOUT, 1, in, DK_ERR_ARG, "needs a float tensor");
    m->dtype = x->dtype;
    m->ndim = x->ndim;
    memcpy(m->shape, x->shape, sizeof m->shape);
    dkh_contiguous_strides(m->ndim, m->shape, m->strides);
    return DK_OK;
}

double dkh_dropout_scale(const dkh_args *a, int64_t i)
{
    double p = a->f[0];
    bool keep = dkh_dropout_u32(a->rng.key, a->rng.counter + (uint64_t)i) <
                dkh_dropout_threshold(p);
    return keep ? 1 / (1 - p) : 0;
}

/* Forward: y = x * scale(i). Backward: in = {x, NULL, g}, gx = g * scale(i). */
static bool dropout_ref(const dkh_kcall *c)
{
    const dk_tensor *x = c->n_in == 1 ? c->in[0] : c->in[2];
    int64_t n = dkh_numel(x->ndim, x->shape);
    for (int64_t i = 0; i < n; i++) {
        double v = dkh_load(dkh_base(x), x->dtype, dkh_offset_of(i, x->ndim, x->shape, x->strides));
        double s = dkh_dropout_scale(c->args, i);
        dkh_store(dkh_base(c->out), c->out->dtype, i, s == 0 ? 0 : v * s);
    }
    return true;
}

static dk_status dropout_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out,
                             dk_tensor *const *aux, dk_tensor *g, const bool *needs, dk_tensor **gin)
{
    gin[0] = dkh_run_backward_kernel(DKH_OP_DROPOUT, a, in[0], NULL, dk_contiguous(g));
    return gin[0] ? DK_OK : dk_last_status();
}

const dkh_op_def dkh_op_dropout = {"dropout", 1, DKH_F_DIFF, dropout_infer, dropout_bwd,
                                   {dropout_ref, dropout_ref}};

dk_tensor *dk_dropout(dk_tensor *x, double p, bool training, dk_rng *rng)
{
    if (!x)
        return dkh_op_run(DKH_OP_DROPOUT, NULL, 1, &x);
    if (!(p >= 0 && p <= 1))
        return dkh_op_fail(DKH_OP_DROPOUT, 1, &x, DK_ERR_ARG, "p = %g is outside [0, 1]", p), NULL;
    if (!training || p == 0) /* the identity: x itself, a new reference in the scope */
        return dkh_scope_adopt(dk_tensor_retain(x));
    if (!rng)
        rng = dk_rng_default();
    dkh_args a = {.f = {p}, .rng = *rng};
    dk_tensor *y = dkh_op_run(DKH_OP_DROPOUT, &a, 1, &x);
    if (y)
        rng->counter += (uint64_t)dkh_numel(x->ndim, x->shape);
    return y;
}
