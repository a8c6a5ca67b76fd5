/* core/tensor/op_matmul.c — batched matrix product, and linear on top of it.
 *
 * The op itself takes a (..., M, K) and b (..., K, N), both at least 2-d, with
 * broadcast batch dims; dk_matmul adds PyTorch's handling of 1-d operands by
 * unsqueezing and squeezing around it, so the tape sees only views and the
 * core op. The backward is two more matmuls on transposed views, each summed
 * back over the batch dims its input was broadcast along.
 *
 * Under an autocast scope (autocast.c) dk_matmul and dk_linear cast their f32
 * operands to the scope's dtype and the result back to f32; linear casts the
 * weight before transposing it so the cast reads contiguous memory. The
 * backward calls the op directly, never through autocast.
 */
#include "autocast.h"

static dk_status matmul_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    const dk_tensor *x = in[0], *y = in[1];
    if (x->ndim < 2 || y->ndim < 2)
        return dkh_op_fail(DKH_OP_MATMUL, 2, in, DK_ERR_SHAPE, "operands need 2 or more dims");
    if (x->dtype != y->dtype || !dkh_is_float(x->dtype))
        return dkh_op_fail(DKH_OP_MATMUL, 2, in, DK_ERR_ARG, "needs two float tensors of one dtype");
    int64_t k1 = x->shape[x->ndim - 1], k2 = y->shape[y->ndim - 2];
    if (k1 != k2)
        return dkh_op_fail(DKH_OP_MATMUL, 2, in, DK_ERR_SHAPE,
                           "inner dims differ (%lld vs %lld)", (long long)k1, (long long)k2);
    /* Broadcast the batch dims through two headers that drop the matrix dims. */
    dk_tensor bx = *x, by = *y;
    bx.ndim -= 2;
    by.ndim -= 2;
    dk_tensor *b[2] = {&bx, &by};
    if (dkh_broadcast_shape("matmul", 2, b, m) != DK_OK)
        return dkh_op_fail(DKH_OP_MATMUL, 2, in, DK_ERR_SHAPE, "batch dims do not broadcast");
    m->shape[m->ndim++] = x->shape[x->ndim - 2];
    m->shape[m->ndim++] = y->shape[y->ndim - 1];
    m->dtype = x->dtype;
    dkh_contiguous_strides(m->ndim, m->shape, m->strides);
    return DK_OK;
}

void dkh_mm_geom_of(const dkh_kcall *c, dkh_mm_geom *g)
{
    const dk_tensor *x = c->in[0], *y = c->in[1], *o = c->out;
    g->nb = o->ndim - 2;
    g->M = o->shape[g->nb];
    g->N = o->shape[g->nb + 1];
    g->K = x->shape[x->ndim - 1];
    dk_tensor bx = *x, by = *y;
    bx.ndim -= 2;
    by.ndim -= 2;
    dkh_broadcast_strides(&bx, g->nb, o->shape, g->xs);
    dkh_broadcast_strides(&by, g->nb, o->shape, g->ys);
    g->xm = x->strides[x->ndim - 2];
    g->xk = x->strides[x->ndim - 1];
    g->yk = y->strides[y->ndim - 2];
    g->yn = y->strides[y->ndim - 1];
    g->batches = dkh_numel(g->nb, o->shape);
}

static bool matmul_ref(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0], *y = c->in[1];
    dk_tensor *o = c->out;
    dkh_mm_geom g;
    dkh_mm_geom_of(c, &g);
    int nb = g.nb;
    int64_t M = g.M, N = g.N, K = g.K, batches = g.batches;
    const int64_t *xs = g.xs, *ys = g.ys;
    int64_t xm = g.xm, xk = g.xk, yk = g.yk, yn = g.yn;
    for (int64_t bi = 0; bi < batches; bi++) {
        int64_t xo = dkh_offset_of(bi, nb, o->shape, xs), yo = dkh_offset_of(bi, nb, o->shape, ys);
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double acc = 0;
                for (int64_t k = 0; k < K; k++)
                    acc += dkh_load(dkh_base(x), x->dtype, xo + i * xm + k * xk) *
                           dkh_load(dkh_base(y), y->dtype, yo + k * yk + j * yn);
                dkh_store(dkh_base(o), o->dtype, (bi * M + i) * N + j, acc);
            }
    }
    return true;
}

static dk_tensor *matmul_impl(dk_tensor *a, dk_tensor *b);

static dk_status matmul_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out, dk_tensor *const *aux,
                            dk_tensor *g, const bool *needs, dk_tensor **gin)
{
    if (needs[0])
        gin[0] = dkh_sum_to(matmul_impl(g, dk_transpose(in[1], -1, -2)), in[0]->ndim,
                            in[0]->shape);
    if (needs[1])
        gin[1] = dkh_sum_to(matmul_impl(dk_transpose(in[0], -1, -2), g), in[1]->ndim,
                            in[1]->shape);
    return DK_OK;
}

const dkh_op_def dkh_op_matmul = {"matmul", 2, DKH_F_DIFF, matmul_infer, matmul_bwd,
                                  {matmul_ref, NULL}};

/* dk_matmul without autocast. */
static dk_tensor *matmul_impl(dk_tensor *a, dk_tensor *b)
{
    dk_tensor *in[2] = {a, b};
    if (!a || !b)
        return dkh_op_run(DKH_OP_MATMUL, NULL, 2, in);
    if (a->ndim == 0 || b->ndim == 0) {
        dkh_op_fail(DKH_OP_MATMUL, 2, in, DK_ERR_SHAPE, "operands need at least 1 dim");
        return NULL;
    }
    dk_tensor *x = a->ndim == 1 ? dk_unsqueeze(a, 0) : a;  /* (K) -> (1, K) */
    dk_tensor *y = b->ndim == 1 ? dk_unsqueeze(b, -1) : b; /* (K) -> (K, 1) */
    dkh_args args = {.nv = 0};
    dk_tensor *xy[2] = {x, y};
    dk_tensor *r = dkh_op_run(DKH_OP_MATMUL, &args, 2, xy);
    if (r && a->ndim == 1)
        r = dk_squeeze(r, -2);
    if (r && b->ndim == 1)
        r = dk_squeeze(r, -1);
    return r;
}

/* The product of autocast operands, back in f32 when either was cast. */
static dk_tensor *autocast_out(dk_tensor *y, bool cast)
{
    return cast && y ? dk_cast(y, DK_DTYPE_F32) : y;
}

dk_tensor *dk_matmul(dk_tensor *a, dk_tensor *b)
{
    dk_dtype ac = dkh_autocast_target();
    dk_tensor *ac_a = dkh_autocast_in(a, ac), *ac_b = dkh_autocast_in(b, ac);
    return autocast_out(matmul_impl(ac_a, ac_b), ac_a != a || ac_b != b);
}

dk_tensor *dk_linear(dk_tensor *x, dk_tensor *w, dk_tensor *b)
{
    if (w && w->ndim != 2) {
        dk_tensor *in[2] = {x, w};
        dkh_op_fail(DKH_OP_MATMUL, 2, in, DK_ERR_SHAPE, "linear: weight must be (OUT, IN)");
        return NULL;
    }
    dk_dtype ac = dkh_autocast_target();
    dk_tensor *xc = dkh_autocast_in(x, ac), *wc = dkh_autocast_in(w, ac);
    /* (..., IN) @ (IN, OUT) */
    dk_tensor *y = autocast_out(matmul_impl(xc, dk_transpose(wc, 0, 1)), xc != x || wc != w);
    return b ? dk_add(y, b) : y;
}
