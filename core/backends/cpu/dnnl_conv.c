/* core/backends/cpu/dnnl_conv.c — conv2d, conv2d_bwd_data and conv2d_bwd_weight
 * through oneDNN convolution primitives (f32).
 *
 * Our tensors keep PyTorch's (N, C, H, W) order with any element strides; they
 * are handed to oneDNN as strided memory descriptors. The primitive itself is
 * created with layout "any", so oneDNN computes in the blocked layout its
 * direct kernels want (nChw16c here: 3–4x faster than its im2col path on plain
 * NCHW), and the cached reorders convert at the boundary. A group convolution
 * sees the weight (K, C/g, R, S) as (g, K/g, C/g, R, S) without a copy.
 * Channels-last activations are the exception: oneDNN's nhwc kernels take
 * them directly, so only the weights are reordered.
 *
 * Every kernel declines (returns false) for dtypes oneDNN does not take here
 * (f64 and the integers), for empty tensors, and when oneDNN refuses the
 * configuration; the reference kernel then runs.
 */
#include "dnnl_cpu.h"

#include <stdlib.h>
#include <string.h>

enum { K_FWD, K_BWD_DATA, K_BWD_WEIGHT };

typedef struct conv_ctx {
    int kind;
    const dk_tensor *x, *w, *y; /* the convolution's src, weights, dst (any of them may be a gradient) */
    int64_t s[2], p[2], d[2], g;
    bool blocked; /* let the primitive pick its layout */
    bool cl;      /* activations channels-last: used as they are, weights in any layout */
} conv_ctx;

/* The weight's descriptor: (g, K/g, C/g, R, S) for groups, else (K, C, R, S). */
static bool weight_md(dnnl_memory_desc_t *md, const dk_tensor *w, int64_t g, bool any)
{
    if (g == 1)
        return any ? dkh_dnnl_md_any(md, 4, w->shape, w->dtype) : dkh_dnnl_md(md, w);
    int64_t dims[5] = {g, w->shape[0] / g, w->shape[1], w->shape[2], w->shape[3]};
    int64_t st[5] = {w->strides[0] * (w->shape[0] / g), w->strides[0], w->strides[1],
                     w->strides[2], w->strides[3]};
    return any ? dkh_dnnl_md_any(md, 5, dims, w->dtype)
               : dkh_dnnl_md_strided(md, 5, dims, st, w->dtype);
}

/* An activation's descriptor: "any" for the primitive to choose; else its
 * strides, written out as channels-last in a channels-last call (a 1-channel
 * tensor is both layouts, and oneDNN must see the one its nhwc kernels take). */
static bool act_md(dnnl_memory_desc_t *md, const dk_tensor *t, bool any, bool cl)
{
    if (any)
        return dkh_dnnl_md_any(md, 4, t->shape, t->dtype);
    if (!cl)
        return dkh_dnnl_md(md, t);
    int64_t st[4];
    dkh_channels_last_strides(t->shape, st);
    return dkh_dnnl_md_strided(md, 4, t->shape, st, t->dtype);
}

static bool build_conv(dkh_dnnl_entry *e, const void *vctx)
{
    const conv_ctx *c = vctx;
    dnnl_memory_desc_t ux, uw, uy, px, pw, py;
    if (!act_md(&ux, c->x, false, c->cl) || !weight_md(&uw, c->w, c->g, false) ||
        !act_md(&uy, c->y, false, c->cl) || !act_md(&px, c->x, c->blocked, c->cl) ||
        !weight_md(&pw, c->w, c->g, c->blocked || c->cl) ||
        !act_md(&py, c->y, c->blocked, c->cl))
        return false;
    dnnl_dims_t st = {c->s[0], c->s[1]}, dl = {c->d[0] - 1, c->d[1] - 1},
                pd = {c->p[0], c->p[1]};
    dnnl_convolution_desc_t fd, bd;
    if (dnnl_dilated_convolution_forward_desc_init(&fd, dnnl_forward_training,
                                                   dnnl_convolution_direct, &px, &pw, NULL, &py,
                                                   st, dl, pd, pd) != dnnl_success)
        return false;
    dnnl_primitive_attr_t attr = dkh_dnnl_attr();
    if (!attr)
        return false;
    dnnl_engine_t eng = dkh_dnnl_engine();
    dnnl_primitive_desc_t fpd = NULL, bpd = NULL;
    bool ok = dnnl_primitive_desc_create(&fpd, &fd, attr, eng, NULL) == dnnl_success;
    if (!ok)
        fpd = NULL;
    if (ok && c->kind == K_BWD_DATA)
        ok = dnnl_dilated_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &px,
                                                              &pw, &py, st, dl, pd,
                                                              pd) == dnnl_success;
    if (ok && c->kind == K_BWD_WEIGHT)
        ok = dnnl_dilated_convolution_backward_weights_desc_init(&bd, dnnl_convolution_direct,
                                                                 &px, &pw, NULL, &py, st, dl, pd,
                                                                 pd) == dnnl_success;
    if (ok && c->kind != K_FWD) {
        ok = dnnl_primitive_desc_create(&bpd, &bd, attr, eng, fpd) == dnnl_success;
        if (!ok)
            bpd = NULL;
    }
    const_dnnl_primitive_desc_t use = c->kind == K_FWD ? fpd : bpd;
    /* Arguments in the order dkh_dnnl_run receives their pointers: x, w, y. */
    if (ok && c->kind == K_FWD)
        ok = dkh_dnnl_entry_arg(e, use, DNNL_ARG_SRC, false, &ux) &&
             dkh_dnnl_entry_arg(e, use, DNNL_ARG_WEIGHTS, false, &uw) &&
             dkh_dnnl_entry_arg(e, use, DNNL_ARG_DST, true, &uy);
    if (ok && c->kind == K_BWD_DATA)
        ok = dkh_dnnl_entry_arg(e, use, DNNL_ARG_DIFF_SRC, true, &ux) &&
             dkh_dnnl_entry_arg(e, use, DNNL_ARG_WEIGHTS, false, &uw) &&
             dkh_dnnl_entry_arg(e, use, DNNL_ARG_DIFF_DST, false, &uy);
    if (ok && c->kind == K_BWD_WEIGHT)
        ok = dkh_dnnl_entry_arg(e, use, DNNL_ARG_SRC, false, &ux) &&
             dkh_dnnl_entry_arg(e, use, DNNL_ARG_DIFF_WEIGHTS, true, &uw) &&
             dkh_dnnl_entry_arg(e, use, DNNL_ARG_DIFF_DST, false, &uy);
    if (ok)
        ok = dkh_dnnl_entry_prim(e, use);
    if (bpd)
        dnnl_primitive_desc_destroy(bpd);
    if (fpd)
        dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_attr_destroy(attr);
    return ok;
}

/* Which layout the primitive computes in. Blocked (plus reorders) measured
 * 1.3-2x faster than plain NCHW on 16-64 channels, but with very few input
 * channels (a first layer on grey images) oneDNN has no good blocked
 * data-side kernel: N128 C1 28x28 K32 took 9.8 ms backward-data blocked, 1.6
 * ms plain. DKH_CONV_LAYOUT=plain|blocked forces one (for measuring). */
static bool use_blocked(int kind, int64_t C)
{
    static int forced = -1; /* -1 unread, 0 none, 1 plain, 2 blocked */
    if (forced < 0) {
        const char *s = getenv("DKH_CONV_LAYOUT");
        forced = !s ? 0 : strcmp(s, "plain") == 0 ? 1 : strcmp(s, "blocked") == 0 ? 2 : 0;
    }
    if (forced)
        return forced == 2;
    return kind == K_BWD_WEIGHT || C >= 8;
}

static bool run_conv(const dkh_kcall *c, int kind, const dk_tensor *x, const dk_tensor *w,
                     const dk_tensor *y)
{
    if (y->dtype != DK_DTYPE_F32 && y->dtype != DK_DTYPE_BF16)
        return false;
    if (dkh_numel(4, x->shape) == 0 || dkh_numel(4, w->shape) == 0 || dkh_numel(4, y->shape) == 0)
        return false;
    const dkh_args *a = c->args;
    /* Channels-last activations (layout.c) go to oneDNN's nhwc kernels as they
     * are: no reorder of x, y or their gradients, only of the small weights. */
    bool cl = dkh_is_channels_last(x) && dkh_is_channels_last(y);
    conv_ctx ctx = {kind, x, w, y, {a->v[0], a->v[1]}, {a->v[2], a->v[3]}, {a->v[4], a->v[5]},
                    a->i[0], !cl && use_blocked(kind, x->shape[1]), cl};
    dkh_dnnl_key k = {.n = 0};
    dkh_dnnl_key_add(&k, DKH_OP_CONV2D);
    dkh_dnnl_key_add(&k, kind);
    dkh_dnnl_key_add(&k, ctx.blocked);
    dkh_dnnl_key_add(&k, ctx.cl);
    for (int i = 0; i < 6; i++)
        dkh_dnnl_key_add(&k, a->v[i]);
    dkh_dnnl_key_add(&k, ctx.g);
    dkh_dnnl_key_tensor(&k, x);
    dkh_dnnl_key_tensor(&k, w);
    dkh_dnnl_key_tensor(&k, y);
    dkh_dnnl_entry *e = dkh_dnnl_lookup(&k, build_conv, &ctx);
    if (!e)
        return false;
    void *data[3] = {dkh_base(x), dkh_base(w), dkh_base(y)};
    bool ok = dkh_dnnl_run(e, data);
    dkh_dnnl_entry_release(e);
    return ok;
}

bool dkh_dnnl_conv2d(const dkh_kcall *c)
{
    return run_conv(c, K_FWD, c->in[0], c->in[1], c->out);
}

bool dkh_dnnl_conv2d_bwd_data(const dkh_kcall *c)
{
    return run_conv(c, K_BWD_DATA, c->out, c->in[1], c->in[0]);
}

bool dkh_dnnl_conv2d_bwd_weight(const dkh_kcall *c)
{
    return run_conv(c, K_BWD_WEIGHT, c->in[0], c->out, c->in[1]);
}
