/* core/tensor/op_conv.c — 2-d convolution and transposed convolution.
 *
 * Three ops carry all of it: conv2d (x, w) -> y, conv2d_bwd_data (gy, w) -> gx
 * and conv2d_bwd_weight (x, gy) -> gw. Each is linear in each input, so the
 * gradients of every one are the other two (PyTorch's convolution_backward is
 * built the same way), and conv_transpose2d is conv2d_bwd_data run forward.
 * Bias is a broadcast add on top, whose gradient the add's backward sums.
 *
 * Arguments: v[0..1] stride, v[2..3] padding, v[4..5] dilation (H then W);
 * i[0] groups; i[1..2] the spatial size an op cannot infer from its inputs
 * (x's H, W for bwd_data; the kernel's R, S for bwd_weight).
 *
 * The reference kernels are gathers over doubles: for each output element,
 * sum the products that reach it. The CPU backend runs f32 and bf16 through
 * oneDNN. Under an autocast scope (autocast.c) the public functions cast f32
 * x and w to the scope's dtype, convolve there and cast the result back to
 * f32 before the bias is added.
 */
#include "autocast.h"

#include <string.h>

typedef struct conv_p {
    int64_t sh, sw, ph, pw, dh, dw, g;
} conv_p;

static conv_p params_of(const dkh_args *a)
{
    return (conv_p){a->v[0], a->v[1], a->v[2], a->v[3], a->v[4], a->v[5], a->i[0]};
}

static dkh_args args_of(const conv_p *p, int64_t e0, int64_t e1)
{
    dkh_args a = {.nv = 6, .v = {p->sh, p->sw, p->ph, p->pw, p->dh, p->dw}, .i = {p->g, e0, e1}};
    return a;
}

/* Output length of a convolution over n with kernel k. */
static int64_t out_len(int64_t n, int64_t k, int64_t s, int64_t p, int64_t d)
{
    int64_t span = d * (k - 1) + 1;
    return n + 2 * p < span ? 0 : (n + 2 * p - span) / s + 1;
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

static void set4(dkh_meta *m, dk_dtype dt, int64_t a, int64_t b, int64_t c, int64_t d)
{
    m->dtype = dt;
    m->ndim = 4;
    m->shape[0] = a;
    m->shape[1] = b;
    m->shape[2] = c;
    m->shape[3] = d;
    dkh_contiguous_strides(4, m->shape, m->strides);
}

/* Checks shared by the three rules: two 4-d float tensors of one dtype, and
 * sane arguments. */
static dk_status check_common(dkh_op_id op, dk_tensor *const *in, const conv_p *p)
{
    if (in[0]->ndim != 4 || in[1]->ndim != 4)
        return dkh_op_fail(op, 2, in, DK_ERR_SHAPE, "needs 4-d tensors (N, C, H, W) and "
                                                    "(K, C/groups, R, S)");
    if (in[0]->dtype != in[1]->dtype || !dkh_is_float(in[0]->dtype))
        return dkh_op_fail(op, 2, in, DK_ERR_ARG, "needs two float tensors of one dtype");
    if (p->sh < 1 || p->sw < 1 || p->dh < 1 || p->dw < 1 || p->ph < 0 || p->pw < 0 || p->g < 1)
        return dkh_op_fail(op, 2, in, DK_ERR_ARG,
                           "stride (%lld, %lld) and dilation (%lld, %lld) must be >= 1, padding "
                           "(%lld, %lld) >= 0, groups %lld >= 1",
                           (long long)p->sh, (long long)p->sw, (long long)p->dh,
                           (long long)p->dw, (long long)p->ph, (long long)p->pw, (long long)p->g);
    return DK_OK;
}

/* Checks that channels C (of x) and K (of w/gy) split into groups with the
 * weight's C/groups, and that the spatial sizes H, W and P, Q agree. */
static dk_status check_sizes(dkh_op_id op, dk_tensor *const *in, const conv_p *p, int64_t C,
                             int64_t Cg, int64_t K, int64_t H, int64_t W, int64_t R, int64_t S,
                             int64_t P, int64_t Q)
{
    if (C != Cg * p->g || K % p->g != 0)
        return dkh_op_fail(op, 2, in, DK_ERR_SHAPE,
                           "%lld input channels and %lld output channels do not split into %lld "
                           "groups of %lld input channels",
                           (long long)C, (long long)K, (long long)p->g, (long long)Cg);
    int64_t eP = out_len(H, R, p->sh, p->ph, p->dh), eQ = out_len(W, S, p->sw, p->pw, p->dw);
    if (eP < 1 || eQ < 1)
        return dkh_op_fail(op, 2, in, DK_ERR_SHAPE,
                           "input %lldx%lld (padded by %lld, %lld) is smaller than the dilated "
                           "kernel %lldx%lld",
                           (long long)H, (long long)W, (long long)p->ph, (long long)p->pw,
                           (long long)(p->dh * (R - 1) + 1), (long long)(p->dw * (S - 1) + 1));
    if (P >= 0 && (eP != P || eQ != Q))
        return dkh_op_fail(op, 2, in, DK_ERR_SHAPE,
                           "output gradient is %lldx%lld, the convolution gives %lldx%lld",
                           (long long)P, (long long)Q, (long long)eP, (long long)eQ);
    return DK_OK;
}

/* ---- conv2d: x (N, C, H, W), w (K, C/g, R, S) -> y (N, K, P, Q) ------------------------ */

static dk_status conv2d_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    conv_p p = params_of(a);
    dk_status st = check_common(DKH_OP_CONV2D, in, &p);
    if (st != DK_OK)
        return st;
    const int64_t *xs = in[0]->shape, *ws = in[1]->shape;
    st = check_sizes(DKH_OP_CONV2D, in, &p, xs[1], ws[1], ws[0], xs[2], xs[3], ws[2], ws[3], -1,
                     -1);
    if (st != DK_OK)
        return st;
    set4(m, in[0]->dtype, xs[0], ws[0], out_len(xs[2], ws[2], p.sh, p.ph, p.dh),
         out_len(xs[3], ws[3], p.sw, p.pw, p.dw));
    return DK_OK;
}

static bool conv2d_ref(const dkh_kcall *c)
{
    conv_p p = params_of(c->args);
    const dk_tensor *x = c->in[0], *w = c->in[1];
    dk_tensor *y = c->out;
    int64_t N = y->shape[0], K = y->shape[1], P = y->shape[2], Q = y->shape[3];
    int64_t H = x->shape[2], W = x->shape[3], Cg = w->shape[1], R = w->shape[2], S = w->shape[3];
    int64_t Kg = K / p.g;
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t oh = 0; oh < P; oh++)
                for (int64_t ow = 0; ow < Q; ow++) {
                    double acc = 0;
                    int64_t c0 = (k / Kg) * Cg;
                    for (int64_t ci = 0; ci < Cg; ci++)
                        for (int64_t r = 0; r < R; r++) {
                            int64_t h = oh * p.sh - p.ph + r * p.dh;
                            if (h < 0 || h >= H)
                                continue;
                            for (int64_t s = 0; s < S; s++) {
                                int64_t ww = ow * p.sw - p.pw + s * p.dw;
                                if (ww >= 0 && ww < W)
                                    acc += at4(x, n, c0 + ci, h, ww) * at4(w, k, ci, r, s);
                            }
                        }
                    put4(y, n, k, oh, ow, acc);
                }
    return true;
}

/* ---- conv2d_bwd_data: gy (N, K, P, Q), w (K, C/g, R, S) -> gx (N, C, H, W) ------------- */

static dk_status bwd_data_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    conv_p p = params_of(a);
    dk_status st = check_common(DKH_OP_CONV2D_BWD_DATA, in, &p);
    if (st != DK_OK)
        return st;
    const int64_t *gs = in[0]->shape, *ws = in[1]->shape;
    int64_t H = a->i[1], W = a->i[2];
    if (gs[1] != ws[0])
        return dkh_op_fail(DKH_OP_CONV2D_BWD_DATA, 2, in, DK_ERR_SHAPE,
                           "gradient has %lld channels, the weight %lld outputs",
                           (long long)gs[1], (long long)ws[0]);
    st = check_sizes(DKH_OP_CONV2D_BWD_DATA, in, &p, ws[1] * p.g, ws[1], ws[0], H, W, ws[2],
                     ws[3], gs[2], gs[3]);
    if (st != DK_OK)
        return st;
    set4(m, in[0]->dtype, gs[0], ws[1] * p.g, H, W);
    return DK_OK;
}

static bool bwd_data_ref(const dkh_kcall *c)
{
    conv_p p = params_of(c->args);
    const dk_tensor *gy = c->in[0], *w = c->in[1];
    dk_tensor *gx = c->out;
    int64_t N = gx->shape[0], C = gx->shape[1], H = gx->shape[2], W = gx->shape[3];
    int64_t K = gy->shape[1], P = gy->shape[2], Q = gy->shape[3];
    int64_t Cg = w->shape[1], R = w->shape[2], S = w->shape[3], Kg = K / p.g;
    for (int64_t n = 0; n < N; n++)
        for (int64_t ch = 0; ch < C; ch++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t ww = 0; ww < W; ww++) {
                    double acc = 0;
                    int64_t grp = ch / Cg, ci = ch % Cg;
                    for (int64_t k = grp * Kg; k < (grp + 1) * Kg; k++)
                        for (int64_t r = 0; r < R; r++) {
                            int64_t th = h + p.ph - r * p.dh;
                            if (th < 0 || th % p.sh || th / p.sh >= P)
                                continue;
                            for (int64_t s = 0; s < S; s++) {
                                int64_t tw = ww + p.pw - s * p.dw;
                                if (tw < 0 || tw % p.sw || tw / p.sw >= Q)
                                    continue;
                                acc += at4(gy, n, k, th / p.sh, tw / p.sw) * at4(w, k, ci, r, s);
                            }
                        }
                    put4(gx, n, ch, h, ww, acc);
                }
    return true;
}

/* ---- conv2d_bwd_weight: x (N, C, H, W), gy (N, K, P, Q) -> gw (K, C/g, R, S) ----------- */

static dk_status bwd_weight_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    conv_p p = params_of(a);
    dk_status st = check_common(DKH_OP_CONV2D_BWD_WEIGHT, in, &p);
    if (st != DK_OK)
        return st;
    const int64_t *xs = in[0]->shape, *gs = in[1]->shape;
    int64_t R = a->i[1], S = a->i[2];
    if (xs[0] != gs[0] || R < 1 || S < 1 || xs[1] % p.g)
        return dkh_op_fail(DKH_OP_CONV2D_BWD_WEIGHT, 2, in, DK_ERR_SHAPE,
                           "batch sizes differ, kernel %lldx%lld is empty or channels do not "
                           "split into %lld groups",
                           (long long)R, (long long)S, (long long)p.g);
    st = check_sizes(DKH_OP_CONV2D_BWD_WEIGHT, in, &p, xs[1], xs[1] / p.g, gs[1], xs[2], xs[3],
                     R, S, gs[2], gs[3]);
    if (st != DK_OK)
        return st;
    set4(m, in[0]->dtype, gs[1], xs[1] / p.g, R, S);
    return DK_OK;
}

static bool bwd_weight_ref(const dkh_kcall *c)
{
    conv_p p = params_of(c->args);
    const dk_tensor *x = c->in[0], *gy = c->in[1];
    dk_tensor *gw = c->out;
    int64_t K = gw->shape[0], Cg = gw->shape[1], R = gw->shape[2], S = gw->shape[3];
    int64_t N = x->shape[0], H = x->shape[2], W = x->shape[3], P = gy->shape[2], Q = gy->shape[3];
    int64_t Kg = K / p.g;
    for (int64_t k = 0; k < K; k++)
        for (int64_t ci = 0; ci < Cg; ci++)
            for (int64_t r = 0; r < R; r++)
                for (int64_t s = 0; s < S; s++) {
                    double acc = 0;
                    int64_t ch = (k / Kg) * Cg + ci;
                    for (int64_t n = 0; n < N; n++)
                        for (int64_t oh = 0; oh < P; oh++) {
                            int64_t h = oh * p.sh - p.ph + r * p.dh;
                            if (h < 0 || h >= H)
                                continue;
                            for (int64_t ow = 0; ow < Q; ow++) {
                                int64_t ww = ow * p.sw - p.pw + s * p.dw;
                                if (ww >= 0 && ww < W)
                                    acc += at4(x, n, ch, h, ww) * at4(gy, n, k, oh, ow);
                            }
                        }
                    put4(gw, k, ci, r, s, acc);
                }
    return true;
}

/* ---- the three ops and their gradients ------------------------------------------------- */

static dk_tensor *run2(dkh_op_id op, const dkh_args *a, dk_tensor *x0, dk_tensor *x1)
{
    dk_tensor *in[2] = {x0, x1};
    return dkh_op_run(op, a, 2, in);
}

static dk_tensor *conv_fwd(dk_tensor *x, dk_tensor *w, const conv_p *p)
{
    dkh_args a = args_of(p, 0, 0);
    return run2(DKH_OP_CONV2D, &a, x, w);
}

static dk_tensor *conv_bwd_data(dk_tensor *gy, dk_tensor *w, const conv_p *p, int64_t H,
                                int64_t W)
{
    dkh_args a = args_of(p, H, W);
    return run2(DKH_OP_CONV2D_BWD_DATA, &a, gy, w);
}

static dk_tensor *conv_bwd_weight(dk_tensor *x, dk_tensor *gy, const conv_p *p, int64_t R,
                                  int64_t S)
{
    dkh_args a = args_of(p, R, S);
    return run2(DKH_OP_CONV2D_BWD_WEIGHT, &a, x, gy);
}

static dk_status conv2d_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out,
                            dk_tensor *const *aux, dk_tensor *g, const bool *needs,
                            dk_tensor **gin)
{
    conv_p p = params_of(a);
    if (needs[0])
        gin[0] = conv_bwd_data(g, in[1], &p, in[0]->shape[2], in[0]->shape[3]);
    if (needs[1])
        gin[1] = conv_bwd_weight(in[0], g, &p, in[1]->shape[2], in[1]->shape[3]);
    return DK_OK;
}

/* gx = A(w)^T gy, bilinear in (gy, w): its gradients are a convolution of
 * the incoming gradient (for gy) and a weight gradient (for w). */
static dk_status bwd_data_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out,
                              dk_tensor *const *aux, dk_tensor *g, const bool *needs,
                              dk_tensor **gin)
{
    conv_p p = params_of(a);
    if (needs[0])
        gin[0] = conv_fwd(g, in[1], &p);
    if (needs[1])
        gin[1] = conv_bwd_weight(g, in[0], &p, in[1]->shape[2], in[1]->shape[3]);
    return DK_OK;
}

static dk_status bwd_weight_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out,
                                dk_tensor *const *aux, dk_tensor *g, const bool *needs,
                                dk_tensor **gin)
{
    conv_p p = params_of(a);
    if (needs[0])
        gin[0] = conv_bwd_data(in[1], g, &p, in[0]->shape[2], in[0]->shape[3]);
    if (needs[1])
        gin[1] = conv_fwd(in[0], g, &p);
    return DK_OK;
}

const dkh_op_def dkh_op_conv2d = {"conv2d", 2, DKH_F_DIFF | DKH_F_LAYOUT | DKH_F_LAYOUT_SEED,
                                  conv2d_infer, conv2d_bwd,
                                  {conv2d_ref, NULL}};
const dkh_op_def dkh_op_conv2d_bwd_data = {"conv2d_bwd_data", 2, DKH_F_DIFF | DKH_F_LAYOUT,
                                           bwd_data_infer,
                                           bwd_data_bwd, {bwd_data_ref, NULL}};
const dkh_op_def dkh_op_conv2d_bwd_weight = {"conv2d_bwd_weight", 2, DKH_F_DIFF,
                                             bwd_weight_infer, bwd_weight_bwd,
                                             {bwd_weight_ref, NULL}};

/* ---- public functions ------------------------------------------------------------------- */

static conv_p make_p(const int64_t *stride, const int64_t *padding, const int64_t *dilation,
                     int64_t groups)
{
    conv_p p = {1, 1, 0, 0, 1, 1, groups};
    if (stride) {
        p.sh = stride[0];
        p.sw = stride[1];
    }
    if (padding) {
        p.ph = padding[0];
        p.pw = padding[1];
    }
    if (dilation) {
        p.dh = dilation[0];
        p.dw = dilation[1];
    }
    return p;
}

/* y + b over channel dim 1: b (K) viewed as (K, 1, 1). */
static dk_tensor *add_bias(dkh_op_id op, dk_tensor *y, dk_tensor *b, int64_t K)
{
    if (!b || !y)
        return y;
    if (b->ndim != 1 || b->shape[0] != K) {
        dk_tensor *in[2] = {y, b};
        dkh_op_fail(op, 2, in, DK_ERR_SHAPE, "bias must be (%lld,)", (long long)K);
        return NULL;
    }
    return dk_add(y, dk_reshape(b, 3, (int64_t[]){K, 1, 1}));
}

/* The result of a product computed from autocast inputs, back in f32 when
 * any input was cast (cast is true). */
static dk_tensor *autocast_out(dk_tensor *y, bool cast)
{
    return cast && y ? dk_cast(y, DK_DTYPE_F32) : y;
}

dk_tensor *dk_conv2d(dk_tensor *x, dk_tensor *w, dk_tensor *b, const int64_t *stride,
                     const int64_t *padding, const int64_t *dilation, int64_t groups)
{
    conv_p p = make_p(stride, padding, dilation, groups);
    dk_dtype ac = dkh_autocast_target();
    dk_tensor *xc = dkh_autocast_in(x, ac), *wc = dkh_autocast_in(w, ac);
    dk_tensor *y = autocast_out(conv_fwd(xc, wc, &p), xc != x || wc != w);
    return add_bias(DKH_OP_CONV2D, y, b, y ? y->shape[1] : 0);
}

dk_tensor *dk_conv_transpose2d(dk_tensor *x, dk_tensor *w, dk_tensor *b, const int64_t *stride,
                               const int64_t *padding, const int64_t *output_padding,
                               const int64_t *dilation, int64_t groups)
{
    conv_p p = make_p(stride, padding, dilation, groups);
    dk_tensor *in[2] = {x, w};
    if (!x || !w)
        return dkh_op_run(DKH_OP_CONV2D_BWD_DATA, NULL, 2, in);
    if (x->ndim != 4 || w->ndim != 4) {
        dkh_op_fail(DKH_OP_CONV2D_BWD_DATA, 2, in, DK_ERR_SHAPE,
                    "conv_transpose2d needs (N, C, H, W) and (C, K/groups, R, S)");
        return NULL;
    }
    int64_t oph = output_padding ? output_padding[0] : 0, opw = output_padding ? output_padding[1] : 0;
    if (oph < 0 || opw < 0 || (oph >= p.sh && oph >= p.dh) || (opw >= p.sw && opw >= p.dw)) {
        dkh_op_fail(DKH_OP_CONV2D_BWD_DATA, 2, in, DK_ERR_ARG,
                    "conv_transpose2d: output_padding (%lld, %lld) must be smaller than stride "
                    "or dilation",
                    (long long)oph, (long long)opw);
        return NULL;
    }
    /* The output size the matching convolution maps back onto x's size. */
    int64_t H = (x->shape[2] - 1) * p.sh - 2 * p.ph + p.dh * (w->shape[2] - 1) + oph + 1;
    int64_t W = (x->shape[3] - 1) * p.sw - 2 * p.pw + p.dw * (w->shape[3] - 1) + opw + 1;
    dk_dtype ac = dkh_autocast_target();
    dk_tensor *xc = dkh_autocast_in(x, ac), *wc = dkh_autocast_in(w, ac);
    dk_tensor *y = autocast_out(conv_bwd_data(xc, wc, &p, H, W), xc != x || wc != w);
    return add_bias(DKH_OP_CONV2D_BWD_DATA, y, b, y ? y->shape[1] : 0);
}
