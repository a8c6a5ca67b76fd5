/* core/tensor/op_sort.c — selection and sorting along one dim: max/min with
 * their indices, sort/argsort and topk.
 *
 * max_dim makes the values and keeps the indices as an auxiliary output (one
 * pass; the backward puts the gradient at those indices through gather's
 * backward kernel). sort and topk produce only indices (i64); the values are
 * gather(x, indices), which is differentiable, so neither needs a backward of
 * its own.
 *
 * Order: sorts are stable (equal values keep their input order, so the
 * first of equal maxima comes first), and NaN compares greater than every
 * number, as in PyTorch (last ascending, first descending; a NaN is the max).
 *
 * Arguments: i[0] = dim. max_dim: i[1] = 1 for min, keepdim. sort and topk:
 * i[1] = how many indices per row (sort: all), i[2] = 1 for descending
 * (topk: the largest).
 */
#include "op_index_impl.h"

#include <math.h>
#include <string.h>

/* a comes strictly before b in ascending order (NaN last). */
static bool before_asc(double a, double b)
{
    return isnan(b) ? !isnan(a) : a < b;
}

static bool before(double a, double b, bool desc)
{
    return desc ? before_asc(b, a) : before_asc(a, b);
}

/* Rows along dim d: shape with d set to 1 enumerates their first elements. */
static int64_t row_shape(const dk_tensor *x, int d, int64_t *shape)
{
    memcpy(shape, x->shape, sizeof x->shape);
    shape[d] = 1;
    return dkh_numel(x->ndim, shape);
}

static bool wrap_dim_or_fail(dkh_op_id op, dk_tensor *x, int dim, int *d)
{
    if (x->ndim == 0 || !dkh_wrap_dim(dim, x->ndim, d)) {
        dkh_op_fail(op, 1, &x, DK_ERR_ARG, "dim %d is out of range", dim);
        return false;
    }
    return true;
}

/* ---- max_dim / min_dim ----------------------------------------------------------------- */

static dk_status max_dim_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    const dk_tensor *x = in[0];
    int d = (int)a->i[0];
    if (x->dtype == DK_DTYPE_BOOL)
        return dkh_op_fail(DKH_OP_MAX_DIM, 1, in, DK_ERR_ARG, "does not take bool");
    m->dtype = x->dtype;
    m->ndim = 0;
    for (int e = 0; e < x->ndim; e++)
        if (e != d || a->keepdim)
            m->shape[m->ndim++] = e == d ? 1 : x->shape[e];
    if (x->shape[d] == 0 && dkh_numel(m->ndim, m->shape) > 0)
        return dkh_op_fail(DKH_OP_MAX_DIM, 1, in, DK_ERR_SHAPE, "cannot reduce over an empty dim");
    dkh_contiguous_strides(m->ndim, m->shape, m->strides);
    m->n_aux = 1;
    m->aux[0].dtype = DK_DTYPE_I64;
    m->aux[0].ndim = m->ndim;
    memcpy(m->aux[0].shape, m->shape, sizeof m->shape);
    return DK_OK;
}

static bool max_dim_ref(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0];
    int d = (int)c->args->i[0];
    bool mn = c->args->i[1] != 0;
    int64_t shape[DK_MAX_DIMS];
    int64_t rows = row_shape(x, d, shape), n = x->shape[d], st = x->strides[d];
    for (int64_t r = 0; r < rows; r++) {
        int64_t base = dkh_offset_of(r, x->ndim, shape, x->strides), best = 0;
        double bv = 0;
        for (int64_t k = 0; k < n; k++) {
            double v = dkh_load(dkh_base(x), x->dtype, base + k * st);
            /* The first extreme; the first NaN beats everything. */
            if (k == 0 || (!isnan(bv) && (isnan(v) || (mn ? v < bv : v > bv)))) {
                bv = v;
                best = k;
            }
        }
        dkh_store(dkh_base(c->out), c->out->dtype, r, bv);
        ((int64_t *)dkh_base(c->aux[0]))[r] = best;
    }
    return true;
}

/* g (and the indices) in keepdim form: the reduced dim back as size 1. */
static dk_tensor *keep_form(dk_tensor *t, const dkh_args *a, const dk_tensor *x)
{
    if (a->keepdim)
        return t;
    int64_t shape[DK_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[a->i[0]] = 1;
    return dk_reshape(t, x->ndim, shape);
}

static dk_status max_dim_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out,
                             dk_tensor *const *aux, dk_tensor *g, const bool *needs, dk_tensor **gin)
{
    /* gather's backward kernel: zeros with g added at the indices. */
    dkh_args ga = {.i = {a->i[0]}};
    dk_tensor *bin[3] = {in[0], keep_form(aux[0], a, in[0]), keep_form(g, a, in[0])};
    return dkh_run_backward_kernel_n(DKH_OP_GATHER, &ga, 3, bin, 1, &in[0], &gin[0]);
}

const dkh_op_def dkh_op_max_dim = {"max_dim", 1, DKH_F_DIFF, max_dim_infer, max_dim_bwd,
                                   {max_dim_ref, NULL}};

static dk_tensor *max_min(dk_tensor *x, int dim, bool keepdim, dk_tensor **indices, bool mn)
{
    if (indices)
        *indices = NULL;
    int d = 0;
    if (x && !wrap_dim_or_fail(DKH_OP_MAX_DIM, x, dim, &d))
        return NULL;
    dkh_args a = {.i = {d, mn}, .keepdim = keepdim};
    dk_tensor *aux[1] = {NULL};
    dk_tensor *y = dkh_op_run_aux(DKH_OP_MAX_DIM, &a, 1, &x, aux);
    if (indices)
        *indices = aux[0];
    return y;
}

dk_tensor *dk_max_dim(dk_tensor *x, int dim, bool keepdim, dk_tensor **indices)
{
    return max_min(x, dim, keepdim, indices, false);
}

dk_tensor *dk_min_dim(dk_tensor *x, int dim, bool keepdim, dk_tensor **indices)
{
    return max_min(x, dim, keepdim, indices, true);
}

/* ---- sort, topk ---------------------------------------------------------------------------- */

static dk_status sort_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    const dk_tensor *x = in[0];
    int d = (int)a->i[0];
    m->dtype = DK_DTYPE_I64;
    m->ndim = x->ndim;
    memcpy(m->shape, x->shape, sizeof m->shape);
    if (a->i[1] < 0 || a->i[1] > x->shape[d])
        return dkh_op_fail(DKH_OP_TOPK, 1, in, DK_ERR_ARG, "k = %lld is out of range for dim %d",
                           (long long)a->i[1], d);
    m->shape[d] = a->i[1];
    dkh_contiguous_strides(m->ndim, m->shape, m->strides);
    /* Scratch for the kernels (which cannot fail, so their memory comes with
     * the outputs): keys and indices, two per element for a merge sort. It
     * is freed when the op returns, as nothing records these ops. */
    int64_t n = 2 * dkh_numel(x->ndim, x->shape);
    m->n_aux = 2;
    m->aux[0] = (dkh_aux_meta){DK_DTYPE_F64, 1, {n}};
    m->aux[1] = (dkh_aux_meta){DK_DTYPE_I64, 1, {n}};
    return DK_OK;
}

/* Stable insertion sort of row r's indices: the plain oracle. Writes the
 * first out->shape[d] of them. */
static void ref_sort_rows(const dkh_kcall *c, bool desc)
{
    const dk_tensor *x = c->in[0];
    dk_tensor *o = c->out;
    int d = (int)c->args->i[0];
    int64_t shape[DK_MAX_DIMS];
    int64_t rows = row_shape(x, d, shape), n = x->shape[d], keep = o->shape[d];
    double *val = (double *)dkh_base(c->aux[0]);
    int64_t *idx = (int64_t *)dkh_base(c->aux[1]);
    for (int64_t r = 0; r < rows; r++) {
        int64_t xb = dkh_offset_of(r, x->ndim, shape, x->strides);
        int64_t ob = dkh_offset_of(r, o->ndim, shape, o->strides);
        for (int64_t k = 0; k < n; k++) {
            double v = dkh_load(dkh_base(x), x->dtype, xb + k * x->strides[d]);
            int64_t j = k;
            while (j > 0 && before(v, val[j - 1], desc)) {
                val[j] = val[j - 1];
                idx[j] = idx[j - 1];
                j--;
            }
            val[j] = v;
            idx[j] = k;
        }
        for (int64_t k = 0; k < keep; k++)
            ((int64_t *)dkh_base(o))[ob + k * o->strides[d]] = idx[k];
    }
}

static bool sort_ref(const dkh_kcall *c)
{
    ref_sort_rows(c, c->args->i[2] != 0);
    return true;
}

const dkh_op_def dkh_op_sort = {"sort", 1, 0, sort_infer, NULL, {sort_ref, NULL}};
const dkh_op_def dkh_op_topk = {"topk", 1, 0, sort_infer, NULL, {sort_ref, NULL}};

/* Indices of the first k of each row in order; NULL on failure. */
static dk_tensor *sort_indices(dkh_op_id op, dk_tensor *x, int dim, int64_t k, bool desc, int *d)
{
    if (!x)
        return dkh_op_run(op, NULL, 1, &x);
    if (!wrap_dim_or_fail(op, x, dim, d))
        return NULL;
    if (op == DKH_OP_SORT)
        k = x->shape[*d];
    dkh_args a = {.i = {*d, k, desc}};
    return dkh_op_run(op, &a, 1, &x);
}

dk_tensor *dk_argsort(dk_tensor *x, int dim, bool descending)
{
    int d;
    return sort_indices(DKH_OP_SORT, x, dim, 0, descending, &d);
}

dk_tensor *dk_sort(dk_tensor *x, int dim, bool descending, dk_tensor **indices)
{
    int d = 0;
    dk_tensor *idx = sort_indices(DKH_OP_SORT, x, dim, 0, descending, &d);
    if (indices)
        *indices = idx;
    return idx ? dk_gather(x, d, idx) : NULL;
}

dk_tensor *dk_topk(dk_tensor *x, int64_t k, int dim, bool largest, dk_tensor **indices)
{
    int d = 0;
    dk_tensor *idx = sort_indices(DKH_OP_TOPK, x, dim, k, largest, &d);
    if (indices)
        *indices = idx;
    return idx ? dk_gather(x, d, idx) : NULL;
}
