/* core/tensor/op_view.c — views: view (reshape), permute, slice, expand, and
 * the public shape functions built on them (reshape, transpose, select,
 * squeeze, unsqueeze, flatten).
 *
 * A view is a new header over the input's storage with its own shape,
 * strides and offset; no bytes move and no kernel runs. The tape still
 * records it, so gradients reach the leaf a view was taken from. reshape is
 * a view when the strides allow one and a contiguous copy otherwise, as in
 * PyTorch.
 */
#include "tensor_impl.h"

#include <string.h>

static void meta_from(const dk_tensor *x, dkh_meta *m)
{
    m->dtype = x->dtype;
    m->ndim = x->ndim;
    memcpy(m->shape, x->shape, sizeof m->shape);
    memcpy(m->strides, x->strides, sizeof m->strides);
    m->offset = x->offset;
}

/* Strides that let (nn, ns) view a tensor of shape os and strides ost, or
 * false. Walks the old dims from the innermost in runs that are contiguous
 * with each other; each run must be covered exactly by a run of new dims. */
static bool view_strides(int on, const int64_t *os, const int64_t *ost, int nn,
                         const int64_t *ns, int64_t *nst)
{
    if (on == 0 || dkh_numel(on, os) == 0) {
        dkh_contiguous_strides(nn, ns, nst);
        return true;
    }
    int vd = nn - 1;
    int64_t base = ost[on - 1], tn = 1, vn = 1;
    for (int td = on - 1; td >= 0; td--) {
        tn *= os[td];
        if (td == 0 || (os[td - 1] != 1 && ost[td - 1] != tn * base)) {
            while (vd >= 0 && (vn < tn || ns[vd] == 1)) {
                nst[vd] = vn * base;
                vn *= ns[vd];
                vd--;
            }
            if (vn != tn)
                return false;
            if (td > 0) {
                base = ost[td - 1];
                tn = 1;
                vn = 1;
            }
        }
    }
    return vd == -1;
}

/* ---- view ------------------------------------------------------------------------------ */

static dk_status view_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    const dk_tensor *x = in[0];
    meta_from(x, m);
    m->ndim = a->nv;
    memcpy(m->shape, a->v, sizeof m->shape);
    if (dkh_numel(a->nv, a->v) != dkh_numel(x->ndim, x->shape))
        return dkh_op_fail(DKH_OP_VIEW, 1, in, DK_ERR_SHAPE, "cannot view %lld elements as %lld",
                           (long long)dkh_numel(x->ndim, x->shape),
                           (long long)dkh_numel(a->nv, a->v));
    if (!view_strides(x->ndim, x->shape, x->strides, a->nv, a->v, m->strides))
        return dkh_op_fail(DKH_OP_VIEW, 1, in, DK_ERR_SHAPE,
                           "the strides do not allow a view of this shape");
    return DK_OK;
}

static dk_status view_backward(const dkh_args *a, dk_tensor *const *in, dk_tensor *out, dk_tensor *const *aux,
                               dk_tensor *g, const bool *needs, dk_tensor **gin)
{
    gin[0] = dk_reshape(g, in[0]->ndim, in[0]->shape);
    return DK_OK;
}

const dkh_op_def dkh_op_view = {"view", 1, DKH_F_DIFF | DKH_F_VIEW, view_infer, view_backward,
                                {NULL, NULL}};

dk_tensor *dk_reshape(dk_tensor *x, int ndim, const int64_t *shape)
{
    if (!x)
        return NULL;
    if (ndim < 0 || ndim > DK_MAX_DIMS || (ndim && !shape)) {
        dkh_op_fail(DKH_OP_VIEW, 1, &x, DK_ERR_ARG, "bad target ndim %d", ndim);
        return NULL;
    }
    dkh_args a = {.nv = ndim};
    int infer = -1;
    int64_t known = 1;
    for (int d = 0; d < ndim; d++) {
        a.v[d] = shape[d];
        if (shape[d] == -1 && infer < 0)
            infer = d;
        else if (shape[d] < 0) {
            dkh_op_fail(DKH_OP_VIEW, 1, &x, DK_ERR_SHAPE, "bad size %lld at dim %d",
                        (long long)shape[d], d);
            return NULL;
        } else
            known *= shape[d];
    }
    int64_t n = dkh_numel(x->ndim, x->shape);
    if (infer >= 0) {
        if (known == 0 || n % known) {
            dkh_op_fail(DKH_OP_VIEW, 1, &x, DK_ERR_SHAPE, "cannot infer dim %d from %lld elements",
                        infer, (long long)n);
            return NULL;
        }
        a.v[infer] = n / known;
    }
    int64_t st[DK_MAX_DIMS];
    if (dkh_numel(a.nv, a.v) == n && !view_strides(x->ndim, x->shape, x->strides, a.nv, a.v, st)) {
        dk_tensor *c = dk_contiguous(x);
        return dkh_op_run(DKH_OP_VIEW, &a, 1, &c);
    }
    return dkh_op_run(DKH_OP_VIEW, &a, 1, &x);
}

dk_tensor *dk_flatten(dk_tensor *x, int start_dim, int end_dim)
{
    if (!x)
        return NULL;
    int s, e;
    if (!dkh_wrap_dim(start_dim, x->ndim, &s) || !dkh_wrap_dim(end_dim, x->ndim, &e) || s > e) {
        dkh_op_fail(DKH_OP_VIEW, 1, &x, DK_ERR_ARG, "flatten: bad dims %d..%d", start_dim,
                    end_dim);
        return NULL;
    }
    if (x->ndim == 0)
        return dk_reshape(x, 1, (int64_t[]){1});
    int64_t shape[DK_MAX_DIMS];
    int n = 0;
    for (int d = 0; d < s; d++)
        shape[n++] = x->shape[d];
    shape[n++] = dkh_numel(e - s + 1, x->shape + s);
    for (int d = e + 1; d < x->ndim; d++)
        shape[n++] = x->shape[d];
    return dk_reshape(x, n, shape);
}

dk_tensor *dk_squeeze(dk_tensor *x, int dim)
{
    if (!x)
        return NULL;
    int d;
    if (!dkh_wrap_dim(dim, x->ndim, &d) || x->ndim == 0 || x->shape[d] != 1) {
        dkh_op_fail(DKH_OP_VIEW, 1, &x, DK_ERR_ARG, "squeeze: dim %d is not a dim of size 1", dim);
        return NULL;
    }
    int64_t shape[DK_MAX_DIMS];
    int n = 0;
    for (int k = 0; k < x->ndim; k++)
        if (k != d)
            shape[n++] = x->shape[k];
    return dk_reshape(x, n, shape);
}

dk_tensor *dk_unsqueeze(dk_tensor *x, int dim)
{
    if (!x)
        return NULL;
    int d;
    if (x->ndim == DK_MAX_DIMS || !dkh_wrap_dim(dim, x->ndim + 1, &d)) {
        dkh_op_fail(DKH_OP_VIEW, 1, &x, DK_ERR_ARG, "unsqueeze: bad dim %d", dim);
        return NULL;
    }
    int64_t shape[DK_MAX_DIMS];
    int n = 0;
    for (int k = 0; k <= x->ndim; k++) {
        if (k == d)
            shape[n++] = 1;
        if (k < x->ndim)
            shape[n++] = x->shape[k];
    }
    return dk_reshape(x, n, shape);
}

/* ---- permute ---------------------------------------------------------------------------- */

static dk_status permute_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    const dk_tensor *x = in[0];
    meta_from(x, m);
    bool seen[DK_MAX_DIMS] = {false};
    if (a->nv != x->ndim)
        return dkh_op_fail(DKH_OP_PERMUTE, 1, in, DK_ERR_ARG, "%d dims given for %d", a->nv,
                           x->ndim);
    for (int d = 0; d < a->nv; d++) {
        int64_t p = a->v[d];
        if (p < 0 || p >= x->ndim || seen[p])
            return dkh_op_fail(DKH_OP_PERMUTE, 1, in, DK_ERR_ARG, "not a permutation");
        seen[p] = true;
        m->shape[d] = x->shape[p];
        m->strides[d] = x->strides[p];
    }
    return DK_OK;
}

static dk_status permute_backward(const dkh_args *a, dk_tensor *const *in, dk_tensor *out, dk_tensor *const *aux,
                                  dk_tensor *g, const bool *needs, dk_tensor **gin)
{
    int inv[DK_MAX_DIMS];
    for (int d = 0; d < a->nv; d++)
        inv[a->v[d]] = d;
    gin[0] = dk_permute(g, a->nv, inv);
    return DK_OK;
}

const dkh_op_def dkh_op_permute = {"permute", 1, DKH_F_DIFF | DKH_F_VIEW, permute_infer,
                                   permute_backward, {NULL, NULL}};

dk_tensor *dk_permute(dk_tensor *x, int ndim, const int *perm)
{
    if (!x)
        return NULL;
    dkh_args a = {.nv = ndim};
    if (ndim != x->ndim || (ndim && !perm)) {
        dkh_op_fail(DKH_OP_PERMUTE, 1, &x, DK_ERR_ARG, "%d dims given for %d", ndim, x->ndim);
        return NULL;
    }
    for (int d = 0; d < ndim; d++) {
        int p;
        if (!dkh_wrap_dim(perm[d], ndim, &p)) {
            dkh_op_fail(DKH_OP_PERMUTE, 1, &x, DK_ERR_ARG, "dim %d out of range", perm[d]);
            return NULL;
        }
        a.v[d] = p;
    }
    return dkh_op_run(DKH_OP_PERMUTE, &a, 1, &x);
}

dk_tensor *dk_transpose(dk_tensor *x, int dim0, int dim1)
{
    if (!x)
        return NULL;
    int d0, d1;
    if (!dkh_wrap_dim(dim0, x->ndim, &d0) || !dkh_wrap_dim(dim1, x->ndim, &d1)) {
        dkh_op_fail(DKH_OP_PERMUTE, 1, &x, DK_ERR_ARG, "transpose: dims %d, %d out of range",
                    dim0, dim1);
        return NULL;
    }
    if (x->ndim == 0)
        return dk_permute(x, 0, NULL);
    int perm[DK_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++)
        perm[d] = d;
    perm[d0] = d1;
    perm[d1] = d0;
    return dk_permute(x, x->ndim, perm);
}

/* ---- slice ------------------------------------------------------------------------------ */

/* a->i = {dim, start, end, step}, already normalised (0 <= start <= end <= size). */
static dk_status slice_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    const dk_tensor *x = in[0];
    meta_from(x, m);
    int d = (int)a->i[0];
    int64_t start = a->i[1], end = a->i[2], step = a->i[3];
    m->shape[d] = end > start ? (end - start + step - 1) / step : 0;
    m->strides[d] = x->strides[d] * step;
    if (m->shape[d] > 0)
        m->offset = x->offset + start * x->strides[d];
    return DK_OK;
}

static dk_status slice_backward(const dkh_args *a, dk_tensor *const *in, dk_tensor *out, dk_tensor *const *aux,
                                dk_tensor *g, const bool *needs, dk_tensor **gin)
{
    gin[0] = dkh_run_backward_kernel(DKH_OP_SLICE, a, in[0], NULL, g);
    return gin[0] ? DK_OK : dk_last_status();
}

/* Backward: zeros, then g into the sliced positions. */
static bool slice_ref_bwd(const dkh_kcall *c)
{
    dk_tensor *gx = c->out;
    const dk_tensor *g = c->in[2];
    int64_t n = dkh_numel(gx->ndim, gx->shape);
    for (int64_t i = 0; i < n; i++)
        dkh_store(dkh_base(gx), gx->dtype, i, 0.0);
    int d = (int)c->args->i[0];
    int64_t st[DK_MAX_DIMS];
    memcpy(st, gx->strides, sizeof st);
    int64_t off = g->shape[d] > 0 ? c->args->i[1] * st[d] : 0;
    st[d] *= c->args->i[3];
    int64_t ng = dkh_numel(g->ndim, g->shape);
    for (int64_t i = 0; i < ng; i++)
        dkh_store(dkh_base(gx), gx->dtype, off + dkh_offset_of(i, g->ndim, g->shape, st),
                  dkh_load(dkh_base(g), g->dtype, dkh_offset_of(i, g->ndim, g->shape, g->strides)));
    return true;
}

const dkh_op_def dkh_op_slice = {"slice", 1, DKH_F_DIFF | DKH_F_VIEW, slice_infer,
                                 slice_backward, {NULL, slice_ref_bwd}};

dk_tensor *dk_slice(dk_tensor *x, int dim, int64_t start, int64_t end, int64_t step)
{
    if (!x)
        return NULL;
    int d;
    if (x->ndim == 0 || !dkh_wrap_dim(dim, x->ndim, &d) || step < 1) {
        dkh_op_fail(DKH_OP_SLICE, 1, &x, DK_ERR_ARG, "bad dim %d or step %lld", dim,
                    (long long)step);
        return NULL;
    }
    int64_t n = x->shape[d];
    if (start < 0)
        start += n;
    if (end < 0)
        end += n;
    start = start < 0 ? 0 : start > n ? n : start;
    end = end < start ? start : end > n ? n : end;
    dkh_args a = {.i = {d, start, end, step}};
    return dkh_op_run(DKH_OP_SLICE, &a, 1, &x);
}

dk_tensor *dk_select(dk_tensor *x, int dim, int64_t index)
{
    if (!x)
        return NULL;
    int d;
    if (x->ndim == 0 || !dkh_wrap_dim(dim, x->ndim, &d) || index < -x->shape[d] ||
        index >= x->shape[d]) {
        dkh_op_fail(DKH_OP_SLICE, 1, &x, DK_ERR_ARG, "select: index %lld out of range for dim %d",
                    (long long)index, dim);
        return NULL;
    }
    if (index < 0)
        index += x->shape[d];
    return dk_squeeze(dk_slice(x, d, index, index + 1, 1), d);
}

/* ---- expand ------------------------------------------------------------------------------- */

static dk_status expand_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    const dk_tensor *x = in[0];
    meta_from(x, m);
    if (a->nv < x->ndim)
        return dkh_op_fail(DKH_OP_EXPAND, 1, in, DK_ERR_SHAPE, "target has fewer dims (%d)",
                           a->nv);
    m->ndim = a->nv;
    int lead = a->nv - x->ndim;
    for (int d = 0; d < a->nv; d++) {
        int k = d - lead;
        int64_t want = a->v[d];
        int64_t have = k >= 0 ? x->shape[k] : 1;
        if (want == -1 && k >= 0)
            want = have;
        if (want < 0 || (have != want && have != 1))
            return dkh_op_fail(DKH_OP_EXPAND, 1, in, DK_ERR_SHAPE,
                               "cannot expand dim %d of size %lld to %lld", d, (long long)have,
                               (long long)a->v[d]);
        m->shape[d] = want;
        m->strides[d] = (k < 0 || have != want) ? 0 : x->strides[k];
    }
    return DK_OK;
}

static dk_status expand_backward(const dkh_args *a, dk_tensor *const *in, dk_tensor *out, dk_tensor *const *aux,
                                 dk_tensor *g, const bool *needs, dk_tensor **gin)
{
    gin[0] = dkh_sum_to(g, in[0]->ndim, in[0]->shape);
    return DK_OK;
}

const dkh_op_def dkh_op_expand = {"expand", 1, DKH_F_DIFF | DKH_F_VIEW, expand_infer,
                                  expand_backward, {NULL, NULL}};

dk_tensor *dk_expand(dk_tensor *x, int ndim, const int64_t *shape)
{
    if (!x)
        return NULL;
    if (ndim < 0 || ndim > DK_MAX_DIMS || (ndim && !shape)) {
        dkh_op_fail(DKH_OP_EXPAND, 1, &x, DK_ERR_ARG, "bad target ndim %d", ndim);
        return NULL;
    }
    dkh_args a = {.nv = ndim};
    for (int d = 0; d < ndim; d++)
        a.v[d] = shape[d];
    return dkh_op_run(DKH_OP_EXPAND, &a, 1, &x);
}
