/* core/tensor/op_index.c — joining and indexing: cat (and stack, split,
 * chunk on top of it and of slice), index_select, index_put, gather,
 * scatter, masked_fill and nonzero.
 *
 * Index tensors are i64 or i32 and are read on the CPU by the ops' rules, so
 * an index out of range is a user's error with a message (naming the op, the
 * offending value and the dim), never a wild write in a kernel. Indices follow
 * PyTorch: index_put counts negative indices from the end (advanced
 * indexing); index_select, gather and scatter reject them.
 *
 * Gradients: cat's are slices of the output gradient (views, no copy);
 * index_select and gather scatter-add their gradient into zeros through a
 * dedicated backward kernel (one allocation instead of zeros + a copy);
 * index_put and scatter pass the gradient through with the overwritten
 * positions zeroed, and their sources take theirs back with index_select or
 * gather.
 *
 * Arguments: i[0] = dim (normalised); index_put and scatter i[1] = 1 to
 * accumulate; cat i[1] = how many of its DKH_MAX_IN inputs are real (the rest
 * are one detached placeholder, since an op has a fixed input count).
 */
#include "op_index_impl.h"

#include <stdint.h>
#include <string.h>

/* ---- shared helpers ------------------------------------------------------------------ */

bool dkh_is_index_dtype(dk_dtype d)
{
    return d == DK_DTYPE_I64 || d == DK_DTYPE_I32;
}

int64_t dkh_index_at(const dk_tensor *t, int64_t i)
{
    return (int64_t)dkh_load(dkh_base(t), t->dtype, dkh_offset_of(i, t->ndim, t->shape, t->strides));
}

void dkh_unravel(int64_t i, int ndim, const int64_t *shape, int64_t *coord)
{
    for (int d = ndim - 1; d >= 0; d--) {
        coord[d] = i % shape[d];
        i /= shape[d];
    }
}

int64_t dkh_dot_strides(int ndim, const int64_t *coord, const int64_t *strides)
{
    int64_t off = 0;
    for (int d = 0; d < ndim; d++)
        off += coord[d] * strides[d];
    return off;
}

dk_status dkh_check_indices(dkh_op_id op, int n_in, dk_tensor *const *in, const dk_tensor *idx,
                            int64_t size, int dim, bool allow_negative)
{
    if (!dkh_is_index_dtype(idx->dtype))
        return dkh_op_fail(op, n_in, in, DK_ERR_ARG, "indices must be i64 or i32");
    if (idx->storage->device.type != DK_DEVICE_CPU)
        return dkh_op_fail(op, n_in, in, DK_ERR_UNSUPPORTED, "indices must be on the CPU");
    int64_t n = dkh_numel(idx->ndim, idx->shape);
    int64_t lo = allow_negative ? -size : 0;
    /* The common contiguous i64 index is checked in one vectorised pass
     * (the rule runs on every call, so a per-element strided load would cost
     * more than many kernels); the loop below then only finds the culprit. */
    if (idx->dtype == DK_DTYPE_I64 && dk_tensor_is_contiguous(idx)) {
        const int64_t *p = (const int64_t *)dkh_base(idx);
        int64_t mn = INT64_MAX, mx = INT64_MIN;
#pragma omp simd reduction(min : mn) reduction(max : mx)
        for (int64_t i = 0; i < n; i++) {
            mn = p[i] < mn ? p[i] : mn;
            mx = p[i] > mx ? p[i] : mx;
        }
        if (n == 0 || (mn >= lo && mx < size))
            return DK_OK;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t v = dkh_index_at(idx, i);
        if (v < lo || v >= size)
            return dkh_op_fail(op, n_in, in, DK_ERR_ARG,
                               "index %lld is out of range for dim %d of size %lld",
                               (long long)v, dim, (long long)size);
    }
    return DK_OK;
}

static void meta_like(const dk_tensor *x, dkh_meta *m)
{
    m->dtype = x->dtype;
    m->ndim = x->ndim;
    memcpy(m->shape, x->shape, sizeof m->shape);
    dkh_contiguous_strides(m->ndim, m->shape, m->strides);
}

/* Copies x into the contiguous out (element by element, any strides). */
static void ref_copy_into(const dk_tensor *x, dk_tensor *out)
{
    int64_t n = dkh_numel(x->ndim, x->shape);
    for (int64_t i = 0; i < n; i++)
        dkh_store(dkh_base(out), out->dtype, i,
                  dkh_load(dkh_base(x), x->dtype, dkh_offset_of(i, x->ndim, x->shape, x->strides)));
}

static void ref_zero(dk_tensor *out)
{
    int64_t n = dkh_numel(out->ndim, out->shape);
    for (int64_t i = 0; i < n; i++)
        dkh_store(dkh_base(out), out->dtype, i, 0.0);
}

static bool wrap_dim_or_fail(dkh_op_id op, dk_tensor *x, int dim, int *d)
{
    if (x->ndim == 0 || !dkh_wrap_dim(dim, x->ndim, d)) {
        dkh_op_fail(op, 1, &x, DK_ERR_ARG, "dim %d is out of range", dim);
        return false;
    }
    return true;
}

/* ---- cat ---------------------------------------------------------------------------- */

static dk_status cat_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    int n = (int)a->i[1], d = (int)a->i[0];
    const dk_tensor *x0 = in[0];
    meta_like(x0, m);
    m->shape[d] = 0;
    for (int k = 0; k < n; k++) {
        const dk_tensor *x = in[k];
        if (x->dtype != x0->dtype)
            return dkh_op_fail(DKH_OP_CAT, n, in, DK_ERR_ARG, "dtypes differ (use dk_cast)");
        bool same = x->ndim == x0->ndim;
        for (int e = 0; same && e < x0->ndim; e++)
            same = e == d || x->shape[e] == x0->shape[e];
        if (!same)
            return dkh_op_fail(DKH_OP_CAT, n, in, DK_ERR_SHAPE,
                               "input %d differs from input 0 outside dim %d", k, d);
        m->shape[d] += x->shape[d];
    }
    dkh_contiguous_strides(m->ndim, m->shape, m->strides);
    return DK_OK;
}

static bool cat_ref(const dkh_kcall *c)
{
    int n = (int)c->args->i[1], d = (int)c->args->i[0];
    dk_tensor *o = c->out;
    int64_t start = 0;
    for (int k = 0; k < n; k++) {
        const dk_tensor *x = c->in[k];
        int64_t cnt = dkh_numel(x->ndim, x->shape);
        for (int64_t i = 0; i < cnt; i++) {
            int64_t oo = start * o->strides[d] + dkh_offset_of(i, x->ndim, x->shape, o->strides);
            double v = dkh_load(dkh_base(x), x->dtype, dkh_offset_of(i, x->ndim, x->shape, x->strides));
            dkh_store(dkh_base(o), o->dtype, oo, v);
        }
        start += x->shape[d];
    }
    return true;
}

static dk_status cat_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out,
                         dk_tensor *const *aux, dk_tensor *g, const bool *needs, dk_tensor **gin)
{
    int n = (int)a->i[1], d = (int)a->i[0];
    int64_t start = 0;
    for (int k = 0; k < n; k++) {
        int64_t len = in[k]->shape[d];
        if (needs[k])
            gin[k] = dk_slice(g, d, start, start + len, 1);
        start += len;
    }
    return DK_OK;
}

const dkh_op_def dkh_op_cat = {"cat", DKH_MAX_IN, DKH_F_DIFF, cat_infer, cat_bwd, {cat_ref, NULL}};

/* One round: at most DKH_MAX_IN inputs, the rest padded with one detached
 * alias of the first (it never requires grad, so the tape ignores it). */
static dk_tensor *cat_round(dk_tensor *const *xs, int n, int d)
{
    dk_tensor *in[DKH_MAX_IN];
    dk_tensor *pad = n < DKH_MAX_IN ? dk_detach(xs[0]) : NULL;
    if (n < DKH_MAX_IN && !pad)
        return NULL;
    for (int k = 0; k < DKH_MAX_IN; k++)
        in[k] = k < n ? xs[k] : pad;
    dkh_args a = {.i = {d, n}};
    return dkh_op_run(DKH_OP_CAT, &a, DKH_MAX_IN, in);
}

dk_tensor *dk_cat(dk_tensor *const *xs, int n, int dim)
{
    if (n <= 0 || !xs) {
        dk_fail(DK_ERR_ARG, "cat: needs at least one tensor (got %d)", n);
        return NULL;
    }
    for (int k = 0; k < n; k++)
        if (!xs[k]) {
            if (dk_last_status() == DK_OK)
                dk_fail(DK_ERR_ARG, "cat: input %d is NULL", k);
            return NULL;
        }
    int d;
    if (xs[0]->ndim == 0 || !dkh_wrap_dim(dim, xs[0]->ndim, &d)) {
        dkh_op_fail(DKH_OP_CAT, 1, xs, DK_ERR_ARG,
                    "dim %d is out of range (zero-dim tensors cannot be joined)", dim);
        return NULL;
    }
    if (n <= DKH_MAX_IN)
        return cat_round(xs, n, d);
    /* More inputs than one op takes: join them in groups, then the groups.
     * Each element is copied once per round (two rounds up to 64 inputs). */
    int ng = (n + DKH_MAX_IN - 1) / DKH_MAX_IN;
    dk_tensor **parts = dk_malloc((size_t)ng * sizeof *parts);
    if (!parts) {
        dk_fail(DK_ERR_NOMEM, "cat: out of memory");
        return NULL;
    }
    dk_tensor *r = NULL;
    int k = 0;
    for (; k < ng; k++) {
        int cnt = n - k * DKH_MAX_IN < DKH_MAX_IN ? n - k * DKH_MAX_IN : DKH_MAX_IN;
        parts[k] = cat_round(xs + k * DKH_MAX_IN, cnt, d);
        if (!parts[k])
            break;
    }
    if (k == ng)
        r = dk_cat(parts, ng, d);
    dk_free(parts);
    return r;
}

dk_tensor *dk_stack(dk_tensor *const *xs, int n, int dim)
{
    if (n <= 0 || !xs) {
        dk_fail(DK_ERR_ARG, "stack: needs at least one tensor (got %d)", n);
        return NULL;
    }
    for (int k = 0; k < n; k++)
        if (!xs[k]) {
            if (dk_last_status() == DK_OK)
                dk_fail(DK_ERR_ARG, "stack: input %d is NULL", k);
            return NULL;
        }
    int d;
    if (!dkh_wrap_dim(dim, xs[0]->ndim + 1, &d) || xs[0]->ndim == DK_MAX_DIMS) {
        dkh_op_fail(DKH_OP_CAT, 1, xs, DK_ERR_ARG, "stack: dim %d is out of range", dim);
        return NULL;
    }
    dk_tensor **u = dk_malloc((size_t)n * sizeof *u);
    if (!u) {
        dk_fail(DK_ERR_NOMEM, "stack: out of memory");
        return NULL;
    }
    dk_tensor *r = NULL;
    int k = 0;
    for (; k < n; k++) {
        /* stack needs equal shapes, where cat allows dim d to differ. */
        if (!dkh_same_shape(xs[k], xs[0])) {
            dk_tensor *pair[2] = {xs[0], xs[k]};
            dkh_op_fail(DKH_OP_CAT, 2, pair, DK_ERR_SHAPE, "stack: input %d differs in shape", k);
            break;
        }
        u[k] = dk_unsqueeze(xs[k], d);
        if (!u[k])
            break;
    }
    if (k == n)
        r = dk_cat(u, n, d);
    dk_free(u);
    return r;
}

/* ---- split, chunk (slices) ----------------------------------------------------------------- */

dk_status dk_split_sizes(dk_tensor *x, const int64_t *sizes, int n, int dim, dk_tensor **out)
{
    if (!x)
        return dk_last_status() != DK_OK ? dk_last_status()
                                         : dk_fail(DK_ERR_ARG, "split: input is NULL");
    int d;
    if (!wrap_dim_or_fail(DKH_OP_SLICE, x, dim, &d))
        return dk_last_status();
    if (n <= 0 || !sizes || !out)
        return dkh_op_fail(DKH_OP_SLICE, 1, &x, DK_ERR_ARG, "split: needs n >= 1 sizes and outputs");
    int64_t total = 0;
    for (int k = 0; k < n; k++) {
        if (sizes[k] < 0)
            return dkh_op_fail(DKH_OP_SLICE, 1, &x, DK_ERR_ARG, "split: size %d is negative", k);
        total += sizes[k];
    }
    if (total != x->shape[d])
        return dkh_op_fail(DKH_OP_SLICE, 1, &x, DK_ERR_SHAPE,
                           "split: sizes sum to %lld, dim %d has %lld", (long long)total, d,
                           (long long)x->shape[d]);
    int64_t start = 0;
    for (int k = 0; k < n; k++) {
        out[k] = dk_slice(x, d, start, start + sizes[k], 1);
        if (!out[k])
            return dk_last_status();
        start += sizes[k];
    }
    return DK_OK;
}

/* Pieces of `size` along d (the last may be smaller); an empty dim gives one
 * empty piece, as PyTorch does. */
static dk_status split_even(const char *what, dk_tensor *x, int64_t size, int d, int64_t count,
                            int max_out, dk_tensor **out, int *n_out)
{
    if (count > max_out)
        return dkh_op_fail(DKH_OP_SLICE, 1, &x, DK_ERR_ARG, "%s: makes %lld pieces, room for %d",
                           what, (long long)count, max_out);
    for (int64_t k = 0; k < count; k++) {
        out[k] = dk_slice(x, d, k * size, (k + 1) * size, 1);
        if (!out[k])
            return dk_last_status();
    }
    if (n_out)
        *n_out = (int)count;
    return DK_OK;
}

dk_status dk_split(dk_tensor *x, int64_t split_size, int dim, int max_out, dk_tensor **out,
                   int *n_out)
{
    if (!x)
        return dk_last_status() != DK_OK ? dk_last_status()
                                         : dk_fail(DK_ERR_ARG, "split: input is NULL");
    int d;
    if (!wrap_dim_or_fail(DKH_OP_SLICE, x, dim, &d))
        return dk_last_status();
    int64_t len = x->shape[d];
    if (split_size <= 0 || !out)
        return dkh_op_fail(DKH_OP_SLICE, 1, &x, DK_ERR_ARG, "split: size %lld must be >= 1",
                           (long long)split_size);
    int64_t count = len == 0 ? 1 : (len + split_size - 1) / split_size;
    return split_even("split", x, split_size, d, count, max_out, out, n_out);
}

dk_status dk_chunk(dk_tensor *x, int chunks, int dim, dk_tensor **out, int *n_out)
{
    if (!x)
        return dk_last_status() != DK_OK ? dk_last_status()
                                         : dk_fail(DK_ERR_ARG, "chunk: input is NULL");
    int d;
    if (!wrap_dim_or_fail(DKH_OP_SLICE, x, dim, &d))
        return dk_last_status();
    if (chunks <= 0 || !out)
        return dkh_op_fail(DKH_OP_SLICE, 1, &x, DK_ERR_ARG, "chunk: %d chunks", chunks);
    int64_t len = x->shape[d];
    if (len == 0)
        return split_even("chunk", x, 0, d, chunks, chunks, out, n_out);
    int64_t size = (len + chunks - 1) / chunks;
    return split_even("chunk", x, size, d, (len + size - 1) / size, chunks, out, n_out);
}

/* ---- index_select ---------------------------------------------------------------------------- */

static dk_status index_select_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    const dk_tensor *x = in[0], *idx = in[1];
    int d = (int)a->i[0];
    if (idx->ndim > 1)
        return dkh_op_fail(DKH_OP_INDEX_SELECT, 2, in, DK_ERR_SHAPE, "the index must be 1-d");
    if (dkh_check_indices(DKH_OP_INDEX_SELECT, 2, in, idx, x->shape[d], d, false) != DK_OK)
        return dk_last_status();
    meta_like(x, m);
    m->shape[d] = dkh_numel(idx->ndim, idx->shape);
    dkh_contiguous_strides(m->ndim, m->shape, m->strides);
    return DK_OK;
}

/* index_select and gather read x at the same coordinates as the output
 * element, except along dim d, where the index comes from idx: at the
 * element's own coordinate along d (index_select, idx is 1-d) or at the
 * element's position (gather, idx has the output's shape). */
static int64_t source_index(const dk_tensor *idx, bool per_element, int64_t i, int64_t cd)
{
    return dkh_index_at(idx, per_element ? i : cd);
}

static bool take_ref(const dkh_kcall *c, bool per_element)
{
    const dk_tensor *x = c->in[0], *idx = c->in[1];
    dk_tensor *o = c->out;
    int d = (int)c->args->i[0];
    int64_t n = dkh_numel(o->ndim, o->shape), co[DK_MAX_DIMS];
    for (int64_t i = 0; i < n; i++) {
        dkh_unravel(i, o->ndim, o->shape, co);
        co[d] = source_index(idx, per_element, i, co[d]);
        dkh_store(dkh_base(o), o->dtype, i,
                  dkh_load(dkh_base(x), x->dtype, dkh_dot_strides(x->ndim, co, x->strides)));
    }
    return true;
}

/* Backward: in = {x, idx, g}; out = gx, zeros with g added where it was read. */
static bool take_ref_bwd(const dkh_kcall *c, bool per_element)
{
    const dk_tensor *idx = c->in[1], *g = c->in[2];
    dk_tensor *gx = c->out;
    int d = (int)c->args->i[0];
    ref_zero(gx);
    int64_t n = dkh_numel(g->ndim, g->shape), co[DK_MAX_DIMS];
    for (int64_t i = 0; i < n; i++) {
        dkh_unravel(i, g->ndim, g->shape, co);
        double v = dkh_load(dkh_base(g), g->dtype, dkh_dot_strides(g->ndim, co, g->strides));
        co[d] = source_index(idx, per_element, i, co[d]);
        int64_t o = dkh_dot_strides(gx->ndim, co, gx->strides);
        dkh_store(dkh_base(gx), gx->dtype, o, dkh_load(dkh_base(gx), gx->dtype, o) + v);
    }
    return true;
}

/* Both backwards run their op's dedicated kernel on {x, idx, g}. */
static dk_status take_bwd(dkh_op_id op, const dkh_args *a, dk_tensor *const *in, dk_tensor *g,
                          dk_tensor **gin)
{
    dk_tensor *bin[3] = {in[0], in[1], g};
    return dkh_run_backward_kernel_n(op, a, 3, bin, 1, &in[0], &gin[0]);
}

static bool index_select_ref(const dkh_kcall *c)
{
    return take_ref(c, false);
}

static bool index_select_ref_bwd(const dkh_kcall *c)
{
    return take_ref_bwd(c, false);
}

static dk_status index_select_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out,
                                  dk_tensor *const *aux, dk_tensor *g, const bool *needs,
                                  dk_tensor **gin)
{
    return take_bwd(DKH_OP_INDEX_SELECT, a, in, g, gin);
}

const dkh_op_def dkh_op_index_select = {"index_select", 2, DKH_F_DIFF, index_select_infer,
                                        index_select_bwd, {index_select_ref, index_select_ref_bwd}};

dk_tensor *dk_index_select(dk_tensor *x, int dim, dk_tensor *index)
{
    dk_tensor *in[2] = {x, index};
    int d = 0;
    if (x && !wrap_dim_or_fail(DKH_OP_INDEX_SELECT, x, dim, &d))
        return NULL;
    dkh_args a = {.i = {d}};
    return dkh_op_run(DKH_OP_INDEX_SELECT, &a, 2, in);
}

/* ---- index_put ------------------------------------------------------------------------------- */

/* The shape values must broadcast to: x's with dim d sized like the index. */
static void put_shape(const dk_tensor *x, const dk_tensor *idx, int d, int64_t *shape)
{
    memcpy(shape, x->shape, sizeof x->shape);
    shape[d] = dkh_numel(idx->ndim, idx->shape);
}

static dk_status index_put_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    const dk_tensor *x = in[0], *idx = in[1], *v = in[2];
    int d = (int)a->i[0];
    if (idx->ndim > 1)
        return dkh_op_fail(DKH_OP_INDEX_PUT, 3, in, DK_ERR_SHAPE, "the index must be 1-d");
    if (v->dtype != x->dtype)
        return dkh_op_fail(DKH_OP_INDEX_PUT, 3, in, DK_ERR_ARG, "dtypes differ (use dk_cast)");
    if (dkh_check_indices(DKH_OP_INDEX_PUT, 3, in, idx, x->shape[d], d, true) != DK_OK)
        return dk_last_status();
    int64_t shape[DK_MAX_DIMS];
    put_shape(x, idx, d, shape);
    bool ok = v->ndim <= x->ndim;
    for (int e = 0; ok && e < v->ndim; e++) {
        int64_t want = shape[x->ndim - v->ndim + e];
        ok = v->shape[e] == want || v->shape[e] == 1;
    }
    if (!ok)
        return dkh_op_fail(DKH_OP_INDEX_PUT, 3, in, DK_ERR_SHAPE,
                           "values do not broadcast to the indexed shape");
    meta_like(x, m);
    return DK_OK;
}

static bool index_put_ref(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0], *idx = c->in[1], *v = c->in[2];
    dk_tensor *o = c->out;
    int d = (int)c->args->i[0];
    bool acc = c->args->i[1] != 0;
    ref_copy_into(x, o);
    int64_t shape[DK_MAX_DIMS], vst[DK_MAX_DIMS], co[DK_MAX_DIMS];
    put_shape(x, idx, d, shape);
    dkh_broadcast_strides(v, x->ndim, shape, vst);
    int64_t n = dkh_numel(x->ndim, shape), size = x->shape[d];
    /* In index order, so with duplicates the last write wins (or all add). */
    for (int64_t i = 0; i < n; i++) {
        dkh_unravel(i, x->ndim, shape, co);
        double val = dkh_load(dkh_base(v), v->dtype, dkh_dot_strides(x->ndim, co, vst));
        int64_t j = dkh_index_at(idx, co[d]);
        co[d] = j < 0 ? j + size : j;
        int64_t oo = dkh_dot_strides(o->ndim, co, o->strides);
        dkh_store(dkh_base(o), o->dtype, oo, acc ? dkh_load(dkh_base(o), o->dtype, oo) + val : val);
    }
    return true;
}

static dk_status index_put_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out,
                               dk_tensor *const *aux, dk_tensor *g, const bool *needs,
                               dk_tensor **gin)
{
    int d = (int)a->i[0];
    dk_tensor *x = in[0], *idx = in[1], *v = in[2];
    if (needs[0])
        gin[0] = a->i[1] ? g
                         : dk_index_put(g, d, idx, dk_zeros(0, NULL, g->dtype, dk_tensor_device(g)),
                                        false);
    if (needs[2]) {
        /* Negative indices were legal here; index_select wants them wrapped. */
        dk_tensor *size = dk_full(0, NULL, (double)x->shape[d], idx->dtype, dk_tensor_device(idx));
        dk_tensor *zero = dk_zeros(0, NULL, idx->dtype, dk_tensor_device(idx));
        dk_tensor *wrapped = dk_where(dk_lt(idx, zero), dk_add(idx, size), idx);
        gin[2] = dkh_sum_to(dk_index_select(g, d, wrapped), v->ndim, v->shape);
    }
    return DK_OK;
}

const dkh_op_def dkh_op_index_put = {"index_put", 3, DKH_F_DIFF, index_put_infer, index_put_bwd,
                                     {index_put_ref, NULL}};

dk_tensor *dk_index_put(dk_tensor *x, int dim, dk_tensor *index, dk_tensor *values, bool accumulate)
{
    dk_tensor *in[3] = {x, index, values};
    int d = 0;
    if (x && !wrap_dim_or_fail(DKH_OP_INDEX_PUT, x, dim, &d))
        return NULL;
    dkh_args a = {.i = {d, accumulate}};
    return dkh_op_run(DKH_OP_INDEX_PUT, &a, 3, in);
}

/* ---- gather, scatter ------------------------------------------------------------------------- */

/* PyTorch's rule: same ndim; index.size(e) <= x.size(e) for e != d, and
 * (scatter) index.size(e) <= src.size(e) for every e. */
static dk_status gather_like_check(dkh_op_id op, int n_in, dk_tensor *const *in, int d)
{
    const dk_tensor *x = in[0], *idx = in[1];
    if (idx->ndim != x->ndim)
        return dkh_op_fail(op, n_in, in, DK_ERR_SHAPE, "the index must have the input's ndim");
    for (int e = 0; e < x->ndim; e++)
        if (e != d && idx->shape[e] > x->shape[e])
            return dkh_op_fail(op, n_in, in, DK_ERR_SHAPE,
                               "the index is larger than the input in dim %d", e);
    return dkh_check_indices(op, n_in, in, idx, x->shape[d], d, false);
}

static dk_status gather_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    if (gather_like_check(DKH_OP_GATHER, 2, in, (int)a->i[0]) != DK_OK)
        return dk_last_status();
    meta_like(in[1], m);
    m->dtype = in[0]->dtype;
    return DK_OK;
}

static bool gather_ref(const dkh_kcall *c)
{
    return take_ref(c, true);
}

static bool gather_ref_bwd(const dkh_kcall *c)
{
    return take_ref_bwd(c, true);
}

static dk_status gather_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out,
                            dk_tensor *const *aux, dk_tensor *g, const bool *needs, dk_tensor **gin)
{
    return take_bwd(DKH_OP_GATHER, a, in, g, gin);
}

const dkh_op_def dkh_op_gather = {"gather", 2, DKH_F_DIFF, gather_infer, gather_bwd,
                                  {gather_ref, gather_ref_bwd}};

static dk_status scatter_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    const dk_tensor *x = in[0], *idx = in[1], *src = in[2];
    if (src->dtype != x->dtype)
        return dkh_op_fail(DKH_OP_SCATTER, 3, in, DK_ERR_ARG, "dtypes differ (use dk_cast)");
    if (!dkh_same_shape(src, idx))
        return dkh_op_fail(DKH_OP_SCATTER, 3, in, DK_ERR_SHAPE,
                           "the source must have the index's shape");
    if (gather_like_check(DKH_OP_SCATTER, 3, in, (int)a->i[0]) != DK_OK)
        return dk_last_status();
    meta_like(x, m);
    return DK_OK;
}

static bool scatter_ref(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0], *idx = c->in[1], *src = c->in[2];
    dk_tensor *o = c->out;
    int d = (int)c->args->i[0];
    bool acc = c->args->i[1] != 0;
    ref_copy_into(x, o);
    int64_t n = dkh_numel(idx->ndim, idx->shape), co[DK_MAX_DIMS];
    for (int64_t i = 0; i < n; i++) {
        dkh_unravel(i, idx->ndim, idx->shape, co);
        double v = dkh_load(dkh_base(src), src->dtype, dkh_dot_strides(src->ndim, co, src->strides));
        co[d] = dkh_index_at(idx, i);
        int64_t oo = dkh_dot_strides(o->ndim, co, o->strides);
        dkh_store(dkh_base(o), o->dtype, oo, acc ? dkh_load(dkh_base(o), o->dtype, oo) + v : v);
    }
    return true;
}

static dk_status scatter_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out,
                             dk_tensor *const *aux, dk_tensor *g, const bool *needs, dk_tensor **gin)
{
    int d = (int)a->i[0];
    if (needs[0])
        gin[0] = a->i[1] ? g : dk_scatter(g, d, in[1], dk_zeros(in[2]->ndim, in[2]->shape,
                                                                g->dtype, dk_tensor_device(g)));
    if (needs[2])
        gin[2] = dk_gather(g, d, in[1]);
    return DK_OK;
}

const dkh_op_def dkh_op_scatter = {"scatter", 3, DKH_F_DIFF, scatter_infer, scatter_bwd,
                                   {scatter_ref, NULL}};

dk_tensor *dk_gather(dk_tensor *x, int dim, dk_tensor *index)
{
    dk_tensor *in[2] = {x, index};
    int d = 0;
    if (x && !wrap_dim_or_fail(DKH_OP_GATHER, x, dim, &d))
        return NULL;
    dkh_args a = {.i = {d}};
    return dkh_op_run(DKH_OP_GATHER, &a, 2, in);
}

static dk_tensor *scatter_run(dk_tensor *x, int dim, dk_tensor *index, dk_tensor *src, bool acc)
{
    dk_tensor *in[3] = {x, index, src};
    int d = 0;
    if (x && !wrap_dim_or_fail(DKH_OP_SCATTER, x, dim, &d))
        return NULL;
    dkh_args a = {.i = {d, acc}};
    return dkh_op_run(DKH_OP_SCATTER, &a, 3, in);
}

dk_tensor *dk_scatter(dk_tensor *x, int dim, dk_tensor *index, dk_tensor *src)
{
    return scatter_run(x, dim, index, src, false);
}

dk_tensor *dk_scatter_add(dk_tensor *x, int dim, dk_tensor *index, dk_tensor *src)
{
    return scatter_run(x, dim, index, src, true);
}

/* ---- masked_fill, nonzero -------------------------------------------------------------------- */

dk_tensor *dk_masked_fill(dk_tensor *x, dk_tensor *mask, double value)
{
    if (!x || !mask)
        return dk_where(mask, x, x); /* NULL: keeps or records the cause */
    return dk_where(mask, dk_full(0, NULL, value, x->dtype, dk_tensor_device(x)), x);
}

static int64_t count_nonzero(const dk_tensor *x)
{
    int64_t n = dkh_numel(x->ndim, x->shape), k = 0;
    for (int64_t i = 0; i < n; i++)
        k += dkh_load(dkh_base(x), x->dtype, dkh_offset_of(i, x->ndim, x->shape, x->strides)) != 0;
    return k;
}

static dk_status nonzero_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    if (in[0]->storage->device.type != DK_DEVICE_CPU)
        return dkh_op_fail(DKH_OP_NONZERO, 1, in, DK_ERR_UNSUPPORTED, "needs a CPU tensor");
    m->dtype = DK_DTYPE_I64;
    m->ndim = 2;
    m->shape[0] = count_nonzero(in[0]);
    m->shape[1] = in[0]->ndim;
    dkh_contiguous_strides(2, m->shape, m->strides);
    return DK_OK;
}

static bool nonzero_ref(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0];
    int64_t n = dkh_numel(x->ndim, x->shape), k = 0, co[DK_MAX_DIMS];
    int64_t *o = (int64_t *)dkh_base(c->out);
    for (int64_t i = 0; i < n; i++) {
        if (dkh_load(dkh_base(x), x->dtype, dkh_offset_of(i, x->ndim, x->shape, x->strides)) == 0)
            continue;
        dkh_unravel(i, x->ndim, x->shape, co);
        for (int e = 0; e < x->ndim; e++)
            o[k * x->ndim + e] = co[e];
        k++;
    }
    return true;
}

const dkh_op_def dkh_op_nonzero = {"nonzero", 1, 0, nonzero_infer, NULL, {nonzero_ref, NULL}};

dk_tensor *dk_nonzero(dk_tensor *x)
{
    dkh_args a = {0};
    return dkh_op_run(DKH_OP_NONZERO, &a, 1, &x);
}
