/* core/tensor/op_reduce.c — reductions over any set of dims: sum, amax,
 * amin, argmax, and the ones composed from them: mean, var, logsumexp.
 *
 * Arguments: v[d] != 0 marks input dim d as reduced (nv = input ndim),
 * keepdim keeps reduced dims as size 1. The reference kernel walks each
 * output element's reduced sub-block; the output is contiguous, so output
 * element o is the o-th combination of the kept dims in order.
 */
#include "tensor_impl.h"

#include <math.h>
#include <string.h>

static dk_status reduce_infer_for(dkh_op_id op, const dkh_args *a, dk_tensor *const *in,
                                  dkh_meta *m)
{
    const dk_tensor *x = in[0];
    if (x->dtype == DK_DTYPE_BOOL && op != DKH_OP_SUM)
        return dkh_op_fail(op, 1, in, DK_ERR_ARG, "does not take bool");
    m->dtype = op == DKH_OP_ARGMAX ? DK_DTYPE_I64 : x->dtype;
    if (op == DKH_OP_SUM && x->dtype == DK_DTYPE_BOOL)
        m->dtype = DK_DTYPE_I64; /* counting trues, as PyTorch does */
    m->ndim = 0;
    int64_t red = 1;
    for (int d = 0; d < x->ndim; d++) {
        if (a->v[d])
            red *= x->shape[d];
        if (!a->v[d])
            m->shape[m->ndim++] = x->shape[d];
        else if (a->keepdim)
            m->shape[m->ndim++] = 1;
    }
    if (op != DKH_OP_SUM && red == 0 && dkh_numel(m->ndim, m->shape) > 0)
        return dkh_op_fail(op, 1, in, DK_ERR_SHAPE, "cannot reduce over an empty dim");
    dkh_contiguous_strides(m->ndim, m->shape, m->strides);
    return DK_OK;
}

/* Splits x's dims into kept and reduced (shape, strides) lists. */
static void split_dims(const dk_tensor *x, const dkh_args *a, int *nk, int64_t *ks, int64_t *kst,
                       int *nr, int64_t *rs, int64_t *rst)
{
    *nk = *nr = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (a->v[d]) {
            rs[*nr] = x->shape[d];
            rst[(*nr)++] = x->strides[d];
        } else {
            ks[*nk] = x->shape[d];
            kst[(*nk)++] = x->strides[d];
        }
    }
}

static bool reduce_ref(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0];
    int nk, nr;
    int64_t ks[DK_MAX_DIMS], kst[DK_MAX_DIMS], rs[DK_MAX_DIMS], rst[DK_MAX_DIMS];
    split_dims(x, c->args, &nk, ks, kst, &nr, rs, rst);
    int64_t nout = dkh_numel(nk, ks), nred = dkh_numel(nr, rs);
    for (int64_t o = 0; o < nout; o++) {
        int64_t base = dkh_offset_of(o, nk, ks, kst);
        double acc = c->op == DKH_OP_SUM ? 0 : c->op == DKH_OP_AMIN ? INFINITY : -INFINITY;
        int64_t best = 0;
        for (int64_t r = 0; r < nred; r++) {
            double v = dkh_load(dkh_base(x), x->dtype, base + dkh_offset_of(r, nr, rs, rst));
            switch (c->op) {
            case DKH_OP_SUM: acc += v; break;
            case DKH_OP_AMAX: acc = (isnan(v) || v > acc) ? v : acc; break;
            case DKH_OP_AMIN: acc = (isnan(v) || v < acc) ? v : acc; break;
            default: /* argmax: the first maximum; a NaN counts as the maximum */
                if (r == 0 || (!isnan(acc) && (isnan(v) || v > acc))) {
                    acc = v;
                    best = r;
                }
            }
            if (c->op != DKH_OP_SUM && c->op != DKH_OP_ARGMAX && isnan(acc))
                break;
        }
        dkh_store(dkh_base(c->out), c->out->dtype, o, c->op == DKH_OP_ARGMAX ? (double)best : acc);
    }
    return true;
}

/* g with the reduced dims put back as size 1 (undoing keepdim = false). */
static dk_tensor *keep_form(dk_tensor *g, const dkh_args *a, const dk_tensor *x)
{
    if (a->keepdim)
        return g;
    int64_t shape[DK_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++)
        shape[d] = a->v[d] ? 1 : x->shape[d];
    return dk_reshape(g, x->ndim, shape);
}

static dk_status sum_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out, dk_tensor *const *aux, dk_tensor *g,
                         const bool *needs, dk_tensor **gin)
{
    gin[0] = dk_expand(keep_form(g, a, in[0]), in[0]->ndim, in[0]->shape);
    return DK_OK;
}

/* The gradient goes to the elements equal to the extreme, split among ties. */
static dk_status amax_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out, dk_tensor *const *aux, dk_tensor *g,
                          const bool *needs, dk_tensor **gin)
{
    dk_tensor *x = in[0];
    dk_tensor *mask = dk_cast(dk_eq(x, keep_form(out, a, x)), x->dtype);
    int dims[DK_MAX_DIMS], nd = 0;
    for (int d = 0; d < x->ndim; d++)
        if (a->v[d])
            dims[nd++] = d;
    dk_tensor *count = dk_sum(mask, dims, nd, true);
    gin[0] = dk_mul(mask, dk_div(keep_form(g, a, x), count));
    return DK_OK;
}

#define REDUCE_DEF(OP, name, flags, bwd)                                                    \
    static dk_status name##_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)     \
    {                                                                                        \
        return reduce_infer_for(DKH_OP_##OP, a, in, m);                                     \
    }                                                                                        \
    const dkh_op_def dkh_op_##name = {#name, 1, flags, name##_infer, bwd, {reduce_ref, NULL}};

REDUCE_DEF(SUM, sum, DKH_F_DIFF, sum_bwd)
REDUCE_DEF(AMAX, amax, DKH_F_DIFF | DKH_F_SAVE_OUT, amax_bwd)
REDUCE_DEF(AMIN, amin, DKH_F_DIFF | DKH_F_SAVE_OUT, amax_bwd)
REDUCE_DEF(ARGMAX, argmax, 0, NULL)

/* Builds the reduced-dim mask; ndims 0 (or dims NULL) means all dims. */
static bool dims_mask(dkh_op_id op, dk_tensor *x, const int *dims, int ndims, dkh_args *a)
{
    memset(a, 0, sizeof *a);
    a->nv = x->ndim;
    if (ndims == 0 || !dims) {
        for (int d = 0; d < x->ndim; d++)
            a->v[d] = 1;
        return true;
    }
    if (ndims < 0 || ndims > DK_MAX_DIMS) {
        dkh_op_fail(op, 1, &x, DK_ERR_ARG, "%d dims", ndims);
        return false;
    }
    for (int k = 0; k < ndims; k++) {
        int d;
        if (!dkh_wrap_dim(dims[k], x->ndim, &d) || (x->ndim && a->v[d])) {
            dkh_op_fail(op, 1, &x, DK_ERR_ARG, "dim %d is out of range or repeated", dims[k]);
            return false;
        }
        if (x->ndim)
            a->v[d] = 1;
    }
    return true;
}

static dk_tensor *reduce(dkh_op_id op, dk_tensor *x, const int *dims, int ndims, bool keepdim)
{
    if (!x)
        return dkh_op_run(op, NULL, 1, &x);
    dkh_args a;
    if (!dims_mask(op, x, dims, ndims, &a))
        return NULL;
    a.keepdim = keepdim;
    return dkh_op_run(op, &a, 1, &x);
}

dk_tensor *dk_sum(dk_tensor *x, const int *dims, int ndims, bool keepdim)
{
    return reduce(DKH_OP_SUM, x, dims, ndims, keepdim);
}

dk_tensor *dk_amax(dk_tensor *x, const int *dims, int ndims, bool keepdim)
{
    return reduce(DKH_OP_AMAX, x, dims, ndims, keepdim);
}

dk_tensor *dk_amin(dk_tensor *x, const int *dims, int ndims, bool keepdim)
{
    return reduce(DKH_OP_AMIN, x, dims, ndims, keepdim);
}

dk_tensor *dk_argmax(dk_tensor *x, int dim, bool keepdim)
{
    return reduce(DKH_OP_ARGMAX, x, &dim, 1, keepdim);
}

/* Number of elements the dims reduce over. */
static int64_t reduced_count(dk_tensor *x, const int *dims, int ndims)
{
    dkh_args a;
    if (!dims_mask(DKH_OP_SUM, x, dims, ndims, &a))
        return -1;
    int64_t n = 1;
    for (int d = 0; d < x->ndim; d++)
        if (a.v[d])
            n *= x->shape[d];
    return n;
}

dk_tensor *dk_mean(dk_tensor *x, const int *dims, int ndims, bool keepdim)
{
    if (x && !dkh_is_float(x->dtype)) {
        dkh_op_fail(DKH_OP_SUM, 1, &x, DK_ERR_ARG, "mean needs a float tensor");
        return NULL;
    }
    int64_t n = x ? reduced_count(x, dims, ndims) : 1;
    if (n < 0)
        return NULL;
    return dk_mul_scalar(dk_sum(x, dims, ndims, keepdim), n ? 1.0 / (double)n : NAN);
}

dk_tensor *dk_var(dk_tensor *x, const int *dims, int ndims, int64_t correction, bool keepdim)
{
    if (x && !dkh_is_float(x->dtype)) {
        dkh_op_fail(DKH_OP_SUM, 1, &x, DK_ERR_ARG, "var needs a float tensor");
        return NULL;
    }
    int64_t n = x ? reduced_count(x, dims, ndims) : 1;
    if (n < 0)
        return NULL;
    dk_tensor *d = dk_sub(x, dk_mean(x, dims, ndims, true));
    double denom = (double)(n - correction);
    return dk_mul_scalar(dk_sum(dk_mul(d, d), dims, ndims, keepdim), denom > 0 ? 1.0 / denom : NAN);
}

/* m + log(sum(exp(x - m))) with m the (detached) max: no overflow. An
 * all -inf slice gives -inf - -inf = NaN here; PyTorch returns -inf. */
dk_tensor *dk_logsumexp(dk_tensor *x, const int *dims, int ndims, bool keepdim)
{
    if (x && !dkh_is_float(x->dtype)) {
        dkh_op_fail(DKH_OP_SUM, 1, &x, DK_ERR_ARG, "logsumexp needs a float tensor");
        return NULL;
    }
    dk_tensor *m = dk_detach(dk_amax(x, dims, ndims, true));
    dk_tensor *s = dk_ln(dk_sum(dk_exp(dk_sub(x, m)), dims, ndims, true));
    dk_tensor *r = dk_add(s, m);
    if (keepdim || !r)
        return r;
    dkh_args a;
    if (!dims_mask(DKH_OP_SUM, x, dims, ndims, &a))
        return NULL;
    int64_t shape[DK_MAX_DIMS];
    int n = 0;
    for (int d = 0; d < x->ndim; d++)
        if (!a.v[d])
            shape[n++] = x->shape[d];
    return dk_reshape(r, n, shape);
}
