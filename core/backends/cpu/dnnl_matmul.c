/* core/backends/cpu/dnnl_matmul.c — f32 and bf16 matmul through oneDNN's matmul
 * primitive, in front of the blocked kernel of matmul.c.
 *
 * oneDNN takes any element strides for its plain operands, so a transposed
 * weight (linear's x @ w^T) or a transposed activation (the backward's
 * x^T @ g) needs no packing copy. The primitive is cached like every oneDNN
 * primitive (dnnl_cpu.h). Measured on LeNet's fc1 shapes it beats the blocked
 * kernel several times over (see the nn report), so it takes every f32 call it
 * can express: 2-d operands, or batch dims that flatten to one stride per
 * operand without broadcasting. Everything else (f64, broadcast batches)
 * goes to dkh_cpu_matmul as before. bf16 (autocast's dtype) takes the same
 * path: oneDNN multiplies bf16 operands with f32 accumulation (on AMX tiles
 * where the CPU has them) and rounds the result to bf16 once.
 */
#include "dnnl_cpu.h"

#include <string.h>

typedef struct mm_ctx {
    dk_dtype dt;
    int64_t B, M, N, K;
    int64_t xs[3], ys[3]; /* batch, row, column strides (elements) */
} mm_ctx;

static bool build_mm(dkh_dnnl_entry *e, const void *vctx)
{
    const mm_ctx *c = vctx;
    int64_t od[3] = {c->B, c->M, c->N}, os[3] = {c->M * c->N, c->N, 1};
    int64_t xd[3] = {c->B, c->M, c->K}, yd[3] = {c->B, c->K, c->N};
    dnnl_memory_desc_t xm, ym, om;
    if (!dkh_dnnl_md_strided(&xm, 3, xd, c->xs, c->dt) ||
        !dkh_dnnl_md_strided(&ym, 3, yd, c->ys, c->dt) ||
        !dkh_dnnl_md_strided(&om, 3, od, os, c->dt))
        return false;
    dnnl_matmul_desc_t md;
    if (dnnl_matmul_desc_init(&md, &xm, &ym, NULL, &om) != dnnl_success)
        return false;
    /* oneDNN keeps this primitive's small packing scratchpad itself: taking it
     * from our allocator would add a transient block to the counted peak at a
     * point of the step where more is live once gradients exist. */
    dnnl_primitive_desc_t pd;
    if (dnnl_primitive_desc_create(&pd, &md, NULL, dkh_dnnl_engine(), NULL) != dnnl_success)
        return false;
    bool ok;
    ok = dkh_dnnl_entry_arg(e, pd, DNNL_ARG_SRC, false, &xm) &&
         dkh_dnnl_entry_arg(e, pd, DNNL_ARG_WEIGHTS, false, &ym) &&
         dkh_dnnl_entry_arg(e, pd, DNNL_ARG_DST, true, &om) && dkh_dnnl_entry_prim(e, pd);
    dnnl_primitive_desc_destroy(pd);
    return ok;
}

/* The stride of t's batch dims (all but the last two) flattened to one, or
 * false when they do not flatten. */
static bool batch_stride(const dk_tensor *t, int nb, const int64_t *oshape, int64_t *st)
{
    if (t->ndim - 2 != nb)
        return false; /* broadcast over missing dims */
    int64_t expect = -1;
    for (int d = nb - 1; d >= 0; d--) {
        if (t->shape[d] != oshape[d])
            return false; /* broadcast along a size-1 dim */
        if (t->shape[d] == 1)
            continue;
        if (expect >= 0 && t->strides[d] != expect)
            return false;
        if (expect < 0)
            *st = t->strides[d];
        expect = t->strides[d] * t->shape[d];
    }
    if (expect < 0)
        *st = 0;
    return true;
}

static bool try_dnnl(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0], *y = c->in[1];
    dk_tensor *o = c->out;
    if (o->dtype != DK_DTYPE_F32 && o->dtype != DK_DTYPE_BF16)
        return false;
    int nb = o->ndim - 2;
    mm_ctx m = {.dt = o->dtype, .B = dkh_numel(nb, o->shape), .M = o->shape[nb], .N = o->shape[nb + 1],
                .K = x->shape[x->ndim - 1]};
    if (m.B * m.M * m.N == 0 || m.K == 0)
        return false;
    if (!batch_stride(x, nb, o->shape, &m.xs[0]) || !batch_stride(y, nb, o->shape, &m.ys[0]))
        return false;
    m.xs[1] = x->strides[x->ndim - 2];
    m.xs[2] = x->strides[x->ndim - 1];
    m.ys[1] = y->strides[y->ndim - 2];
    m.ys[2] = y->strides[y->ndim - 1];
    /* oneDNN wants real strides even along size-1 dims. */
    if (m.B == 1)
        m.xs[0] = m.M * m.K, m.ys[0] = m.K * m.N;
    if (m.M == 1)
        m.xs[1] = m.K;
    if (m.K == 1)
        m.xs[2] = 1, m.ys[1] = m.N;
    if (m.N == 1)
        m.ys[2] = 1;
    dkh_dnnl_key k = {.n = 0};
    dkh_dnnl_key_add(&k, DKH_OP_MATMUL);
    dkh_dnnl_key_add(&k, m.dt);
    dkh_dnnl_key_add(&k, m.B);
    dkh_dnnl_key_add(&k, m.M);
    dkh_dnnl_key_add(&k, m.N);
    dkh_dnnl_key_add(&k, m.K);
    for (int i = 0; i < 3; i++) {
        dkh_dnnl_key_add(&k, m.xs[i]);
        dkh_dnnl_key_add(&k, m.ys[i]);
    }
    dkh_dnnl_entry *e = dkh_dnnl_lookup(&k, build_mm, &m);
    if (!e)
        return false;
    void *data[3] = {dkh_base(x), dkh_base(y), dkh_base(o)};
    bool ok = dkh_dnnl_run(e, data);
    dkh_dnnl_entry_release(e);
    return ok;
}

bool dkh_dnnl_matmul(const dkh_kcall *c)
{
    return try_dnnl(c) || dkh_cpu_matmul(c);
}
