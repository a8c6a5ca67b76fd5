/* core/tensor/op_pool.c — 2-d pooling: max, average and adaptive average.
 *
 * Each op maps every (n, c) plane of x (N, C, H, W) on its own, so the
 * kernels (reference and CPU) loop over planes and then over output
 * positions. Output sizes follow PyTorch exactly, including ceil_mode's rule
 * that the last window must start inside the input or the left padding, and
 * avg_pool2d's divisor (count_include_pad counts padding cells but never the
 * cells a ceil_mode window hangs past the padded border).
 *
 * max_pool2d keeps the argmax of each window (i32, the flat h * W + w within
 * its plane, as PyTorch's indices) as an auxiliary output; its backward kernel
 * scatters the gradient there. The first maximum wins ties; NaN wins over
 * numbers, like PyTorch.
 *
 * Arguments: max_pool2d v[0..1] kernel, v[2..3] stride, v[4..5] padding,
 * v[6..7] dilation, i[0] ceil_mode. avg_pool2d v[0..5] the same without
 * dilation, i[0] ceil_mode, i[1] count_include_pad. adaptive_avg_pool2d
 * v[0..1] the output size.
 */
#include "tensor_impl.h"

#include <math.h>
#include <string.h>

/* PyTorch's pooling_output_shape. */
static int64_t pool_len(int64_t n, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode)
{
    int64_t span = d * (k - 1) + 1, num = n + 2 * p - span;
    if (num < 0)
        return 0;
    int64_t out = (num + (ceil_mode ? s - 1 : 0)) / s + 1;
    if (ceil_mode && (out - 1) * s >= n + p)
        out--;
    return out;
}

static double at4(const dk_tensor *t, int64_t a, int64_t b, int64_t c, int64_t d)
{
    return dkh_load(dkh_base(t), t->dtype,
                    a * t->strides[0] + b * t->strides[1] + c * t->strides[2] + d * t->strides[3]);
}

static void put4(dk_tensor *t, int64_t a, int64_t b, int64_t c, int64_t d, double v)
{
    dkh_store(dkh_base(t), t->dtype,
              a * t->strides[0] + b * t->strides[1] + c * t->strides[2] + d * t->strides[3], v);
}

static void zero(dk_tensor *t)
{
    int64_t n = dkh_numel(t->ndim, t->shape);
    for (int64_t i = 0; i < n; i++)
        dkh_store(dkh_base(t), t->dtype, dkh_offset_of(i, t->ndim, t->shape, t->strides), 0);
}

static void add4(dk_tensor *t, int64_t a, int64_t b, int64_t c, int64_t d, double v)
{
    put4(t, a, b, c, d, at4(t, a, b, c, d) + v);
}

/* Shared checks: x is a 4-d float tensor; sizes are sane; the output is not empty in H, W. */
static dk_status pool_check(dkh_op_id op, dk_tensor *const *in, const int64_t *k,
                            const int64_t *s, const int64_t *p, const int64_t *d, dkh_meta *m,
                            bool ceil_mode)
{
    const dk_tensor *x = in[0];
    if (x->ndim != 4)
        return dkh_op_fail(op, 1, in, DK_ERR_SHAPE, "needs a 4-d tensor (N, C, H, W)");
    if (!dkh_is_float(x->dtype))
        return dkh_op_fail(op, 1, in, DK_ERR_ARG, "needs a float tensor");
    for (int i = 0; i < 2; i++) {
        if (k[i] < 1 || s[i] < 1 || d[i] < 1 || p[i] < 0)
            return dkh_op_fail(op, 1, in, DK_ERR_ARG,
                               "kernel, stride and dilation must be >= 1 and padding >= 0");
        if (p[i] * 2 > k[i])
            return dkh_op_fail(op, 1, in, DK_ERR_ARG,
                               "padding %lld must be at most half the kernel size %lld",
                               (long long)p[i], (long long)k[i]);
    }
    int64_t P = pool_len(x->shape[2], k[0], s[0], p[0], d[0], ceil_mode);
    int64_t Q = pool_len(x->shape[3], k[1], s[1], p[1], d[1], ceil_mode);
    if (P < 1 || Q < 1)
        return dkh_op_fail(op, 1, in, DK_ERR_SHAPE, "the output would be empty (%lldx%lld)",
                           (long long)P, (long long)Q);
    m->dtype = x->dtype;
    m->ndim = 4;
    m->shape[0] = x->shape[0];
    m->shape[1] = x->shape[1];
    m->shape[2] = P;
    m->shape[3] = Q;
    dkh_contiguous_strides(4, m->shape, m->strides);
    return DK_OK;
}

/* ---- max_pool2d -------------------------------------------------------------------------- */

static dk_status maxpool_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    const int64_t *v = a->v;
    dk_status st = pool_check(DKH_OP_MAX_POOL2D, in, v, v + 2, v + 4, v + 6, m, a->i[0] != 0);
    if (st != DK_OK)
        return st;
    m->n_aux = 1;
    m->aux[0] = (dkh_aux_meta){.dtype = DK_DTYPE_I32, .ndim = 4};
    memcpy(m->aux[0].shape, m->shape, 4 * sizeof m->shape[0]);
    return DK_OK;
}

static bool maxpool_ref(const dkh_kcall *c)
{
    const int64_t *v = c->args->v;
    const dk_tensor *x = c->in[0];
    dk_tensor *y = c->out, *idx = c->aux[0];
    int64_t H = x->shape[2], W = x->shape[3];
    for (int64_t n = 0; n < y->shape[0]; n++)
        for (int64_t ch = 0; ch < y->shape[1]; ch++)
            for (int64_t oh = 0; oh < y->shape[2]; oh++)
                for (int64_t ow = 0; ow < y->shape[3]; ow++) {
                    double best = -INFINITY;
                    int64_t arg = -1;
                    for (int64_t r = 0; r < v[0]; r++)
                        for (int64_t s = 0; s < v[1]; s++) {
                            int64_t h = oh * v[2] - v[4] + r * v[6];
                            int64_t w = ow * v[3] - v[5] + s * v[7];
                            if (h < 0 || h >= H || w < 0 || w >= W)
                                continue;
                            double e = at4(x, n, ch, h, w);
                            if (arg < 0 || e > best || (isnan(e) && !isnan(best))) {
                                best = e;
                                arg = h * W + w;
                            }
                        }
                    put4(y, n, ch, oh, ow, best);
                    put4(idx, n, ch, oh, ow, (double)arg);
                }
    return true;
}

/* Backward kernel: in = {x, gy, indices}; out = gx. */
static bool maxpool_bwd_ref(const dkh_kcall *c)
{
    const dk_tensor *g = c->in[1], *idx = c->in[2];
    dk_tensor *gx = c->out;
    int64_t W = gx->shape[3];
    zero(gx);
    for (int64_t n = 0; n < g->shape[0]; n++)
        for (int64_t ch = 0; ch < g->shape[1]; ch++)
            for (int64_t oh = 0; oh < g->shape[2]; oh++)
                for (int64_t ow = 0; ow < g->shape[3]; ow++) {
                    int64_t i = (int64_t)at4(idx, n, ch, oh, ow);
                    if (i >= 0) /* a window of padding only has no argmax */
                        add4(gx, n, ch, i / W, i % W, at4(g, n, ch, oh, ow));
                }
    return true;
}

static dk_status maxpool_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out,
                             dk_tensor *const *aux, dk_tensor *g, const bool *needs,
                             dk_tensor **gin)
{
    dk_tensor *kin[3] = {in[0], g, aux[0]};
    return dkh_run_backward_kernel_n(DKH_OP_MAX_POOL2D, a, 3, kin, 1, in, gin);
}

const dkh_op_def dkh_op_max_pool2d = {"max_pool2d", 1, DKH_F_DIFF | DKH_F_LAYOUT, maxpool_infer, maxpool_bwd,
                                      {maxpool_ref, maxpool_bwd_ref}};

/* ---- avg_pool2d -------------------------------------------------------------------------- */

static dk_status avgpool_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    const int64_t *v = a->v, dil[2] = {1, 1};
    return pool_check(DKH_OP_AVG_POOL2D, in, v, v + 2, v + 4, dil, m, a->i[0] != 0);
}

/* The clipped window of output (oh, ow) and its divisor. */
static void avg_window(const dkh_args *a, int64_t H, int64_t W, int64_t oh, int64_t ow,
                       int64_t *h0, int64_t *h1, int64_t *w0, int64_t *w1, double *div)
{
    const int64_t *v = a->v;
    int64_t hs = oh * v[2] - v[4], ws = ow * v[3] - v[5];
    int64_t he = hs + v[0] < H + v[4] ? hs + v[0] : H + v[4];
    int64_t we = ws + v[1] < W + v[5] ? ws + v[1] : W + v[5];
    int64_t pool = (he - hs) * (we - ws);
    *h0 = hs > 0 ? hs : 0;
    *w0 = ws > 0 ? ws : 0;
    *h1 = he < H ? he : H;
    *w1 = we < W ? we : W;
    *div = a->i[1] ? (double)pool : (double)((*h1 - *h0) * (*w1 - *w0));
}

static bool avgpool_ref(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0];
    dk_tensor *y = c->out;
    for (int64_t n = 0; n < y->shape[0]; n++)
        for (int64_t ch = 0; ch < y->shape[1]; ch++)
            for (int64_t oh = 0; oh < y->shape[2]; oh++)
                for (int64_t ow = 0; ow < y->shape[3]; ow++) {
                    int64_t h0, h1, w0, w1;
                    double div, acc = 0;
                    avg_window(c->args, x->shape[2], x->shape[3], oh, ow, &h0, &h1, &w0, &w1,
                               &div);
                    for (int64_t h = h0; h < h1; h++)
                        for (int64_t w = w0; w < w1; w++)
                            acc += at4(x, n, ch, h, w);
                    put4(y, n, ch, oh, ow, h0 < h1 && w0 < w1 ? acc / div : 0);
                }
    return true;
}

/* Backward kernel: in = {x, NULL, gy}; out = gx. */
static bool avgpool_bwd_ref(const dkh_kcall *c)
{
    const dk_tensor *g = c->in[2];
    dk_tensor *gx = c->out;
    zero(gx);
    for (int64_t n = 0; n < g->shape[0]; n++)
        for (int64_t ch = 0; ch < g->shape[1]; ch++)
            for (int64_t oh = 0; oh < g->shape[2]; oh++)
                for (int64_t ow = 0; ow < g->shape[3]; ow++) {
                    int64_t h0, h1, w0, w1;
                    double div;
                    avg_window(c->args, gx->shape[2], gx->shape[3], oh, ow, &h0, &h1, &w0, &w1,
                               &div);
                    double v = at4(g, n, ch, oh, ow) / div;
                    for (int64_t h = h0; h < h1; h++)
                        for (int64_t w = w0; w < w1; w++)
                            add4(gx, n, ch, h, w, v);
                }
    return true;
}

static dk_status avgpool_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out,
                             dk_tensor *const *aux, dk_tensor *g, const bool *needs,
                             dk_tensor **gin)
{
    gin[0] = dkh_run_backward_kernel(DKH_OP_AVG_POOL2D, a, in[0], NULL, g);
    return gin[0] ? DK_OK : dk_last_status();
}

const dkh_op_def dkh_op_avg_pool2d = {"avg_pool2d", 1, DKH_F_DIFF, avgpool_infer, avgpool_bwd,
                                      {avgpool_ref, avgpool_bwd_ref}};

/* ---- adaptive_avg_pool2d ----------------------------------------------------------------- */

static dk_status adaptive_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    const dk_tensor *x = in[0];
    if (x->ndim != 4)
        return dkh_op_fail(DKH_OP_ADAPTIVE_AVG_POOL2D, 1, in, DK_ERR_SHAPE,
                           "needs a 4-d tensor (N, C, H, W)");
    if (!dkh_is_float(x->dtype))
        return dkh_op_fail(DKH_OP_ADAPTIVE_AVG_POOL2D, 1, in, DK_ERR_ARG, "needs a float tensor");
    if (a->v[0] < 1 || a->v[1] < 1 || x->shape[2] < 1 || x->shape[3] < 1)
        return dkh_op_fail(DKH_OP_ADAPTIVE_AVG_POOL2D, 1, in, DK_ERR_SHAPE,
                           "output size (%lld, %lld) and input H, W must be >= 1",
                           (long long)a->v[0], (long long)a->v[1]);
    m->dtype = x->dtype;
    m->ndim = 4;
    m->shape[0] = x->shape[0];
    m->shape[1] = x->shape[1];
    m->shape[2] = a->v[0];
    m->shape[3] = a->v[1];
    dkh_contiguous_strides(4, m->shape, m->strides);
    return DK_OK;
}

/* Output cell o of n_out over n_in covers [floor(o n_in / n_out), ceil((o + 1) n_in / n_out)). */
static void adaptive_range(int64_t o, int64_t n_out, int64_t n_in, int64_t *lo, int64_t *hi)
{
    *lo = o * n_in / n_out;
    *hi = ((o + 1) * n_in + n_out - 1) / n_out;
}

static bool adaptive_ref(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0];
    dk_tensor *y = c->out;
    for (int64_t n = 0; n < y->shape[0]; n++)
        for (int64_t ch = 0; ch < y->shape[1]; ch++)
            for (int64_t oh = 0; oh < y->shape[2]; oh++)
                for (int64_t ow = 0; ow < y->shape[3]; ow++) {
                    int64_t h0, h1, w0, w1;
                    adaptive_range(oh, y->shape[2], x->shape[2], &h0, &h1);
                    adaptive_range(ow, y->shape[3], x->shape[3], &w0, &w1);
                    double acc = 0;
                    for (int64_t h = h0; h < h1; h++)
                        for (int64_t w = w0; w < w1; w++)
                            acc += at4(x, n, ch, h, w);
                    put4(y, n, ch, oh, ow, acc / (double)((h1 - h0) * (w1 - w0)));
                }
    return true;
}

static bool adaptive_bwd_ref(const dkh_kcall *c)
{
    const dk_tensor *g = c->in[2];
    dk_tensor *gx = c->out;
    zero(gx);
    for (int64_t n = 0; n < g->shape[0]; n++)
        for (int64_t ch = 0; ch < g->shape[1]; ch++)
            for (int64_t oh = 0; oh < g->shape[2]; oh++)
                for (int64_t ow = 0; ow < g->shape[3]; ow++) {
                    int64_t h0, h1, w0, w1;
                    adaptive_range(oh, g->shape[2], gx->shape[2], &h0, &h1);
                    adaptive_range(ow, g->shape[3], gx->shape[3], &w0, &w1);
                    double v = at4(g, n, ch, oh, ow) / (double)((h1 - h0) * (w1 - w0));
                    for (int64_t h = h0; h < h1; h++)
                        for (int64_t w = w0; w < w1; w++)
                            add4(gx, n, ch, h, w, v);
                }
    return true;
}

static dk_status adaptive_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out,
                              dk_tensor *const *aux, dk_tensor *g, const bool *needs,
                              dk_tensor **gin)
{
    gin[0] = dkh_run_backward_kernel(DKH_OP_ADAPTIVE_AVG_POOL2D, a, in[0], NULL, g);
    return gin[0] ? DK_OK : dk_last_status();
}

const dkh_op_def dkh_op_adaptive_avg_pool2d = {"adaptive_avg_pool2d", 1, DKH_F_DIFF,
                                               adaptive_infer, adaptive_bwd,
                                               {adaptive_ref, adaptive_bwd_ref}};

/* ---- public functions ----------------------------------------------------------------------- */

static void pair(int64_t *dst, const int64_t *src, int64_t dflt0, int64_t dflt1)
{
    dst[0] = src ? src[0] : dflt0;
    dst[1] = src ? src[1] : dflt1;
}

dk_tensor *dk_max_pool2d(dk_tensor *x, const int64_t *kernel, const int64_t *stride,
                         const int64_t *padding, const int64_t *dilation, bool ceil_mode)
{
    if (x && !kernel) {
        dkh_op_fail(DKH_OP_MAX_POOL2D, 1, &x, DK_ERR_ARG, "kernel size is required");
        return NULL;
    }
    dkh_args a = {.nv = 8, .i = {ceil_mode}};
    if (kernel) {
        pair(a.v, kernel, 1, 1);
        pair(a.v + 2, stride, kernel[0], kernel[1]); /* stride defaults to the kernel */
    }
    pair(a.v + 4, padding, 0, 0);
    pair(a.v + 6, dilation, 1, 1);
    return dkh_op_run(DKH_OP_MAX_POOL2D, &a, 1, &x);
}

dk_tensor *dk_avg_pool2d(dk_tensor *x, const int64_t *kernel, const int64_t *stride,
                         const int64_t *padding, bool ceil_mode, bool count_include_pad)
{
    if (x && !kernel) {
        dkh_op_fail(DKH_OP_AVG_POOL2D, 1, &x, DK_ERR_ARG, "kernel size is required");
        return NULL;
    }
    dkh_args a = {.nv = 6, .i = {ceil_mode, count_include_pad}};
    if (kernel) {
        pair(a.v, kernel, 1, 1);
        pair(a.v + 2, stride, kernel[0], kernel[1]);
    }
    pair(a.v + 4, padding, 0, 0);
    return dkh_op_run(DKH_OP_AVG_POOL2D, &a, 1, &x);
}

dk_tensor *dk_adaptive_avg_pool2d(dk_tensor *x, const int64_t *output_size)
{
    if (x && !output_size) {
        dkh_op_fail(DKH_OP_ADAPTIVE_AVG_POOL2D, 1, &x, DK_ERR_ARG, "output size is required");
        return NULL;
    }
    dkh_args a = {.nv = 2};
    if (output_size)
        pair(a.v, output_size, 1, 1);
    return dkh_op_run(DKH_OP_ADAPTIVE_AVG_POOL2D, &a, 1, &x);
}
