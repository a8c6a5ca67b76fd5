/* core/backends/cpu/index.c — fast CPU kernels for joining, indexing,
 * selection, sorting and dropout, and the index group's slots in the kernel
 * table (dkh_cpu_fill_index).
 *
 * Data movement (cat, index_select, gather) copies whole elements by size, so
 * one loop serves every dtype. Tensors are viewed as (outer, n, inner) around
 * the op's dim; each kernel takes the contiguous layouts and declines the
 * rest to the reference kernel. Scatter-adds (gather's backward) split the
 * work by outer row, which no two threads share, so results do not depend on
 * the thread count.
 */
#include "../../tensor/op_index_impl.h"
#include "cpu_index.h"

#include <math.h>
#include <string.h>

void dkh_cpu_fill_index(dkh_backend *b)
{
    b->kernels[DKH_OP_CAT][DKH_FWD] = dkh_cpu_cat;
    b->kernels[DKH_OP_INDEX_SELECT][DKH_FWD] = dkh_cpu_index_select;
    b->kernels[DKH_OP_INDEX_SELECT][DKH_BWD] = dkh_cpu_index_select_bwd;
    b->kernels[DKH_OP_INDEX_PUT][DKH_FWD] = dkh_cpu_index_put;
    b->kernels[DKH_OP_SCATTER][DKH_FWD] = dkh_cpu_scatter;
    b->kernels[DKH_OP_GATHER][DKH_FWD] = dkh_cpu_gather;
    b->kernels[DKH_OP_GATHER][DKH_BWD] = dkh_cpu_gather_bwd;
    b->kernels[DKH_OP_MAX_DIM][DKH_FWD] = dkh_cpu_max_dim;
    b->kernels[DKH_OP_SORT][DKH_FWD] = dkh_cpu_sort;
    b->kernels[DKH_OP_TOPK][DKH_FWD] = dkh_cpu_sort;
    b->kernels[DKH_OP_CROSS_ENTROPY][DKH_FWD] = dkh_cpu_cross_entropy;
    b->kernels[DKH_OP_CROSS_ENTROPY][DKH_BWD] = dkh_cpu_cross_entropy_bwd;
    b->kernels[DKH_OP_NLL_LOSS][DKH_FWD] = dkh_cpu_cross_entropy;
    b->kernels[DKH_OP_NLL_LOSS][DKH_BWD] = dkh_cpu_cross_entropy_bwd;
    b->kernels[DKH_OP_INTERPOLATE][DKH_FWD] = dkh_cpu_interpolate;
    b->kernels[DKH_OP_INTERPOLATE][DKH_BWD] = dkh_cpu_interpolate_bwd;
    b->kernels[DKH_OP_DROPOUT][DKH_FWD] = dkh_cpu_dropout;
    b->kernels[DKH_OP_DROPOUT][DKH_BWD] = dkh_cpu_dropout;
}

/* Products of t's dims before and after d. */
static void outer_inner(const dk_tensor *t, int d, int64_t *outer, int64_t *inner)
{
    *outer = dkh_numel(d, t->shape);
    *inner = dkh_numel(t->ndim - d - 1, t->shape + d + 1);
}

/* ---- cat -------------------------------------------------------------------------------- */

bool dkh_cpu_cat(const dkh_kcall *c)
{
    int n = (int)c->args->i[1], d = (int)c->args->i[0];
    dk_tensor *o = c->out;
    for (int k = 0; k < n; k++)
        if (!dk_tensor_is_contiguous(c->in[k]))
            return false;
    size_t es = dk_dtype_size(o->dtype);
    int64_t outer, inner;
    outer_inner(o, d, &outer, &inner);
    int64_t orow = o->shape[d] * inner * (int64_t)es; /* bytes per outer row of out */
    char *ob = dkh_base(o);
#pragma omp parallel for schedule(static) if (outer * orow >= 4 * DKH_CPU_PAR_MIN && outer > 1)
    for (int64_t r = 0; r < outer; r++) {
        int64_t at = 0;
        for (int k = 0; k < n; k++) {
            int64_t len = c->in[k]->shape[d] * inner * (int64_t)es;
            memcpy(ob + r * orow + at, dkh_base(c->in[k]) + r * len, (size_t)len);
            at += len;
        }
    }
    return true;
}

/* ---- index_select, gather ----------------------------------------------------------------- */

static inline void copy_elem(char *dst, const char *src, size_t es)
{
    switch (es) {
    case 8: memcpy(dst, src, 8); break;
    case 4: memcpy(dst, src, 4); break;
    case 2: memcpy(dst, src, 2); break;
    default: memcpy(dst, src, 1);
    }
}

bool dkh_cpu_index_select(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0], *idx = c->in[1];
    dk_tensor *o = c->out;
    int d = (int)c->args->i[0];
    if (!dk_tensor_is_contiguous(x) || idx->dtype != DK_DTYPE_I64 || !dk_tensor_is_contiguous(idx))
        return false;
    size_t es = dk_dtype_size(x->dtype);
    int64_t outer, inner, L = o->shape[d], n = x->shape[d];
    outer_inner(x, d, &outer, &inner);
    const int64_t *ix = (const int64_t *)dkh_base(idx);
    const char *xb = dkh_base(x);
    char *ob = dkh_base(o);
    size_t blk = (size_t)inner * es;
#pragma omp parallel for schedule(static) if (outer * L * inner >= DKH_CPU_PAR_MIN && outer > 1)
    for (int64_t r = 0; r < outer; r++)
        for (int64_t j = 0; j < L; j++)
            memcpy(ob + (size_t)(r * L + j) * blk, xb + (size_t)(r * n + ix[j]) * blk, blk);
    return true;
}

/* gather's fast layout: contiguous x, index and out, the index shaped like x
 * outside dim d (the common case: picking along the class dim). */
static bool gather_layout(const dk_tensor *x, const dk_tensor *idx, const dk_tensor *o, int d)
{
    if (!dk_tensor_is_contiguous(x) || !dk_tensor_is_contiguous(idx) ||
        !dk_tensor_is_contiguous(o) || idx->dtype != DK_DTYPE_I64)
        return false;
    for (int e = 0; e < x->ndim; e++)
        if (e != d && idx->shape[e] != x->shape[e])
            return false;
    return true;
}

bool dkh_cpu_gather(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0], *idx = c->in[1];
    int d = (int)c->args->i[0];
    if (!gather_layout(x, idx, c->out, d))
        return false;
    size_t es = dk_dtype_size(x->dtype);
    int64_t outer, inner, L = idx->shape[d], n = x->shape[d];
    outer_inner(x, d, &outer, &inner);
    const int64_t *ix = (const int64_t *)dkh_base(idx);
    const char *xb = dkh_base(x);
    char *ob = dkh_base(c->out);
    if (inner == 1 && (es == 4 || es == 8)) {
        /* Picking along the last dim: typed loads the compiler turns into
         * vector gathers, instead of a per-element size switch. */
#pragma omp parallel for schedule(static) if (outer * L >= DKH_CPU_PAR_MIN && outer > 1)
        for (int64_t r = 0; r < outer; r++) {
            const int64_t *ir = ix + r * L;
            if (es == 4) {
                const uint32_t *xr = (const uint32_t *)xb + r * n;
                uint32_t *orow = (uint32_t *)ob + r * L;
#pragma omp simd
                for (int64_t j = 0; j < L; j++)
                    orow[j] = xr[ir[j]];
            } else {
                const uint64_t *xr = (const uint64_t *)xb + r * n;
                uint64_t *orow = (uint64_t *)ob + r * L;
#pragma omp simd
                for (int64_t j = 0; j < L; j++)
                    orow[j] = xr[ir[j]];
            }
        }
        return true;
    }
#pragma omp parallel for schedule(static) if (outer * L * inner >= DKH_CPU_PAR_MIN && outer > 1)
    for (int64_t r = 0; r < outer; r++)
        for (int64_t j = 0; j < L; j++)
            for (int64_t i = 0; i < inner; i++) {
                int64_t p = (r * L + j) * inner + i;
                copy_elem(ob + p * (int64_t)es, xb + ((r * n + ix[p]) * inner + i) * (int64_t)es, es);
            }
    return true;
}

/* Backward: in = {x, idx, g}; out = gx = zeros with g added at the indices. */
#define GATHER_BWD(T)                                                                           \
    static void gather_bwd_##T(int64_t outer, int64_t L, int64_t n, int64_t inner,              \
                               const int64_t *ix, const T *g, T *gx)                            \
    {                                                                                            \
        _Pragma("omp parallel for schedule(static) if (outer * n * inner >= DKH_CPU_PAR_MIN && outer > 1)") \
        for (int64_t r = 0; r < outer; r++) {                                                    \
            T *row = gx + r * n * inner;                                                         \
            memset(row, 0, (size_t)(n * inner) * sizeof(T));                                    \
            for (int64_t j = 0; j < L; j++)                                                      \
                for (int64_t i = 0; i < inner; i++) {                                            \
                    int64_t p = (r * L + j) * inner + i;                                         \
                    row[ix[p] * inner + i] += g[p];                                              \
                }                                                                                \
        }                                                                                        \
    }

GATHER_BWD(float)
GATHER_BWD(double)

bool dkh_cpu_gather_bwd(const dkh_kcall *c)
{
    const dk_tensor *idx = c->in[1], *g = c->in[2];
    dk_tensor *gx = c->out;
    int d = (int)c->args->i[0];
    if ((gx->dtype != DK_DTYPE_F32 && gx->dtype != DK_DTYPE_F64) || !gather_layout(gx, idx, g, d))
        return false;
    int64_t outer, inner;
    outer_inner(gx, d, &outer, &inner);
    if (gx->dtype == DK_DTYPE_F32)
        gather_bwd_float(outer, idx->shape[d], gx->shape[d], inner,
                         (const int64_t *)dkh_base(idx), (const float *)dkh_base(g),
                         (float *)dkh_base(gx));
    else
        gather_bwd_double(outer, idx->shape[d], gx->shape[d], inner,
                          (const int64_t *)dkh_base(idx), (const double *)dkh_base(g),
                          (double *)dkh_base(gx));
    return true;
}

/* ---- scatter-adds of whole rows: index_select's backward, index_put ----------------------- */

/* Column pieces (elements of the inner dims) the threads share. Every
 * element's updates still arrive in index order on one thread, so duplicates
 * add (or the last write wins) the same way on any thread count. */
#define COLS 64

/* dst (outer, n, inner) op= src (outer, L, inner) at rows ix[j] of dim 1;
 * negative indices count from the end. acc: add, else assign. dst already
 * holds its starting values. */
#define ROW_SCATTER(T)                                                                          \
    static void row_scatter_##T(int64_t outer, int64_t L, int64_t n, int64_t inner,            \
                                const int64_t *ix, const T *src, T *dst, bool acc)              \
    {                                                                                           \
        int64_t pieces = (inner + COLS - 1) / COLS, units = outer * pieces;                     \
        _Pragma("omp parallel for schedule(static) if (outer * L * inner >= DKH_CPU_PAR_MIN && units > 1)") \
        for (int64_t u = 0; u < units; u++) {                                                   \
            int64_t r = u / pieces, c0 = (u % pieces) * COLS;                                    \
            int64_t w = inner - c0 < COLS ? inner - c0 : COLS;                                   \
            for (int64_t j = 0; j < L; j++) {                                                   \
                int64_t k = ix[j] < 0 ? ix[j] + n : ix[j];                                       \
                const T *sr = src + (r * L + j) * inner + c0;                                    \
                T *dr = dst + (r * n + k) * inner + c0;                                          \
                if (acc) {                                                                       \
                    _Pragma("omp simd") for (int64_t i = 0; i < w; i++) dr[i] += sr[i];          \
                } else {                                                                         \
                    memcpy(dr, sr, (size_t)w * sizeof(T));                                       \
                }                                                                                \
            }                                                                                   \
        }                                                                                       \
    }

ROW_SCATTER(float)
ROW_SCATTER(double)

static void row_scatter(dk_dtype dt, int64_t outer, int64_t L, int64_t n, int64_t inner,
                        const int64_t *ix, const void *src, void *dst, bool acc)
{
    if (dt == DK_DTYPE_F32)
        row_scatter_float(outer, L, n, inner, ix, src, dst, acc);
    else
        row_scatter_double(outer, L, n, inner, ix, src, dst, acc);
}

/* Backward: in = {x, idx, g}; out = gx: zeros with g's rows added at idx. */
bool dkh_cpu_index_select_bwd(const dkh_kcall *c)
{
    const dk_tensor *idx = c->in[1], *g = c->in[2];
    dk_tensor *gx = c->out;
    int d = (int)c->args->i[0];
    if ((gx->dtype != DK_DTYPE_F32 && gx->dtype != DK_DTYPE_F64) || g->dtype != gx->dtype ||
        !dk_tensor_is_contiguous(g) || !dk_tensor_is_contiguous(gx) ||
        idx->dtype != DK_DTYPE_I64 || !dk_tensor_is_contiguous(idx))
        return false;
    int64_t outer, inner;
    outer_inner(gx, d, &outer, &inner);
    memset(dkh_base(gx), 0, (size_t)dkh_numel(gx->ndim, gx->shape) * dk_dtype_size(gx->dtype));
    row_scatter(gx->dtype, outer, g->shape[d], gx->shape[d], inner,
                (const int64_t *)dkh_base(idx), dkh_base(g), dkh_base(gx), true);
    return true;
}

/* in = {x, idx, values}: out = x with values' rows put (or added) at idx
 * along dim d. Values must come whole (no broadcasting) and contiguous. */
bool dkh_cpu_index_put(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0], *idx = c->in[1], *v = c->in[2];
    dk_tensor *o = c->out;
    int d = (int)c->args->i[0];
    if ((x->dtype != DK_DTYPE_F32 && x->dtype != DK_DTYPE_F64) || !dk_tensor_is_contiguous(x) ||
        !dk_tensor_is_contiguous(v) || !dk_tensor_is_contiguous(o) ||
        idx->dtype != DK_DTYPE_I64 || !dk_tensor_is_contiguous(idx) || v->ndim != x->ndim)
        return false;
    int64_t L = dkh_numel(idx->ndim, idx->shape);
    for (int e = 0; e < x->ndim; e++)
        if (v->shape[e] != (e == d ? L : x->shape[e]))
            return false;
    int64_t outer, inner;
    outer_inner(x, d, &outer, &inner);
    size_t bytes = (size_t)dkh_numel(x->ndim, x->shape) * dk_dtype_size(x->dtype);
    memcpy(dkh_base(o), dkh_base(x), bytes);
    row_scatter(x->dtype, outer, L, x->shape[d], inner, (const int64_t *)dkh_base(idx),
                dkh_base(v), dkh_base(o), c->args->i[1] != 0);
    return true;
}

/* scatter / scatter_add: in = {x, idx, src}, idx and src shaped like x
 * outside dim d (the common case). Each outer row is copied and updated by
 * one thread, so duplicates resolve in index order. */
#define SCATTER(T)                                                                              \
    static void scatter_##T(int64_t outer, int64_t L, int64_t n, int64_t inner,                \
                            const int64_t *ix, const T *x, const T *src, T *o, bool acc)        \
    {                                                                                           \
        _Pragma("omp parallel for schedule(static) if (outer * (n + L) * inner >= DKH_CPU_PAR_MIN && outer > 1)") \
        for (int64_t r = 0; r < outer; r++) {                                                   \
            T *orow = o + r * n * inner;                                                        \
            memcpy(orow, x + r * n * inner, (size_t)(n * inner) * sizeof(T));                   \
            const int64_t *ir = ix + r * L * inner;                                             \
            const T *sr = src + r * L * inner;                                                  \
            if (inner == 1 && acc) {                                                            \
                for (int64_t j = 0; j < L; j++)                                                 \
                    orow[ir[j]] += sr[j];                                                       \
                continue;                                                                       \
            }                                                                                   \
            for (int64_t j = 0; j < L; j++)                                                     \
                for (int64_t i = 0; i < inner; i++) {                                           \
                    int64_t p = j * inner + i;                                                  \
                    T *t = orow + ir[p] * inner + i;                                            \
                    *t = acc ? *t + sr[p] : sr[p];                                              \
                }                                                                               \
        }                                                                                       \
    }

SCATTER(float)
SCATTER(double)

bool dkh_cpu_scatter(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0], *idx = c->in[1], *src = c->in[2];
    dk_tensor *o = c->out;
    int d = (int)c->args->i[0];
    if ((x->dtype != DK_DTYPE_F32 && x->dtype != DK_DTYPE_F64) || !dk_tensor_is_contiguous(o) ||
        !gather_layout(x, idx, src, d))
        return false;
    int64_t outer, inner;
    outer_inner(x, d, &outer, &inner);
    bool acc = c->args->i[1] != 0;
    if (x->dtype == DK_DTYPE_F32)
        scatter_float(outer, idx->shape[d], x->shape[d], inner, (const int64_t *)dkh_base(idx),
                      (const float *)dkh_base(x), (const float *)dkh_base(src),
                      (float *)dkh_base(o), acc);
    else
        scatter_double(outer, idx->shape[d], x->shape[d], inner, (const int64_t *)dkh_base(idx),
                       (const double *)dkh_base(x), (const double *)dkh_base(src),
                       (double *)dkh_base(o), acc);
    return true;
}

/* ---- max_dim ---------------------------------------------------------------------------------- */

enum { LANES = DKH_EXT_LANES };

/* Index of the first extreme of a unit-stride row (the first NaN when there
 * is one, as the reference). The extreme is found in 8 lanes, which
 * vectorise, then a second pass finds where it first occurs; -0 and 0 compare
 * equal, so the first of them is taken, as the reference does. */
#define ROW_ARGEXT(T)                                                                            \
    static int64_t row_argext_##T(const T *p, int64_t n, bool mn)                                \
    {                                                                                            \
        int64_t i = 0;                                                                           \
        if (n >= 2 * LANES) {                                                                    \
            T m;                                                                                 \
            int any;                                                                             \
            i = dkh_lane_extreme_##T(p, n, !mn, &m, &any);                                       \
            for (; i < n; i++) {                                                                 \
                m = (mn ? p[i] < m : p[i] > m) ? p[i] : m;                                       \
                any |= p[i] != p[i];                                                             \
            }                                                                                    \
            for (i = 0; i < n; i++)                                                              \
                if (any ? p[i] != p[i] : p[i] == m)                                              \
                    return i;                                                                    \
        }                                                                                        \
        int64_t best = 0;                                                                        \
        for (i = 1; i < n; i++) {                                                                \
            T v = p[i], b = p[best];                                                             \
            if (b == b && (v != v || (mn ? v < b : v > b)))                                      \
                best = i;                                                                        \
        }                                                                                        \
        return best;                                                                             \
    }

ROW_ARGEXT(float)
ROW_ARGEXT(double)

#define MAX_DIM(T)                                                                               \
    static void max_dim_##T(bool mn, int64_t outer, int64_t n, int64_t inner, const T *x, T *y, \
                            int64_t *ix)                                                         \
    {                                                                                            \
        if (inner == 1) {                                                                        \
            _Pragma("omp parallel for schedule(static) if (outer * n >= DKH_CPU_PAR_MIN && outer > 1)") \
            for (int64_t r = 0; r < outer; r++) {                                                \
                int64_t k = row_argext_##T(x + r * n, n, mn);                                    \
                y[r] = x[r * n + k];                                                             \
                ix[r] = k;                                                                       \
            }                                                                                    \
            return;                                                                              \
        }                                                                                        \
        _Pragma("omp parallel for schedule(static) if (outer * n * inner >= DKH_CPU_PAR_MIN && outer > 1)") \
        for (int64_t r = 0; r < outer; r++) {                                                    \
            const T *xr = x + r * n * inner;                                                     \
            T *yr = y + r * inner;                                                               \
            int64_t *ir = ix + r * inner;                                                        \
            for (int64_t i = 0; i < inner; i++) {                                                \
                yr[i] = xr[i];                                                                   \
                ir[i] = 0;                                                                       \
            }                                                                                    \
            for (int64_t k = 1; k < n; k++)                                                      \
                for (int64_t i = 0; i < inner; i++) {                                            \
                    T v = xr[k * inner + i], b = yr[i];                                          \
                    if (b == b && (v != v || (mn ? v < b : v > b))) {                            \
                        yr[i] = v;                                                               \
                        ir[i] = k;                                                               \
                    }                                                                            \
                }                                                                                \
        }                                                                                        \
    }

MAX_DIM(float)
MAX_DIM(double)

bool dkh_cpu_max_dim(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0];
    int d = (int)c->args->i[0];
    if ((x->dtype != DK_DTYPE_F32 && x->dtype != DK_DTYPE_F64) || !dk_tensor_is_contiguous(x))
        return false;
    int64_t outer, inner;
    outer_inner(x, d, &outer, &inner);
    bool mn = c->args->i[1] != 0;
    int64_t *ix = (int64_t *)dkh_base(c->aux[0]);
    if (x->dtype == DK_DTYPE_F32)
        max_dim_float(mn, outer, x->shape[d], inner, (const float *)dkh_base(x),
                      (float *)dkh_base(c->out), ix);
    else
        max_dim_double(mn, outer, x->shape[d], inner, (const double *)dkh_base(x),
                       (double *)dkh_base(c->out), ix);
    return true;
}

/* ---- sort, topk --------------------------------------------------------------------------------- */

/* f32 rows are sorted as packed words: the value's order key in the high 32
 * bits, its index in the low 32. The words are distinct and their order is
 * the stable order (equal keys by index), so any sort or selection of the
 * words, stable or not, gives the reference's result, moving 8 bytes per
 * element. Whole rows use an LSD radix sort on the key; topk narrows the row
 * to about k words with a histogram of the keys, selects the k smallest
 * (quickselect) and sorts only those. f64 rows, whose keys need all 64 bits,
 * keep a stable merge sort of (value, index) pairs. */

/* Unsigned key in the order of sort's comparison: NaN above every number
 * (all NaNs equal), -0 equal to 0; descending reverses it. */
static inline uint32_t f32_key(float v, bool desc)
{
    uint32_t u;
    if (v == 0)
        v = 0; /* -0 sorts as 0 */
    memcpy(&u, &v, sizeof u);
    if (v != v)
        u = 0xffffffffu;
    else
        u = (u & 0x80000000u) ? ~u : u | 0x80000000u;
    return desc ? ~u : u;
}

static void insertion_sort(uint64_t *a, int64_t n)
{
    for (int64_t i = 1; i < n; i++) {
        uint64_t v = a[i];
        int64_t j = i;
        for (; j > 0 && a[j - 1] > v; j--)
            a[j] = a[j - 1];
        a[j] = v;
    }
}

static void sift_down(uint64_t *a, int64_t i, int64_t n)
{
    uint64_t v = a[i];
    for (int64_t c; (c = 2 * i + 1) < n; i = c) {
        if (c + 1 < n && a[c + 1] > a[c])
            c++;
        if (a[c] <= v)
            break;
        a[i] = a[c];
    }
    a[i] = v;
}

/* The fallback that bounds quicksort's and quickselect's worst case. */
static void heap_sort(uint64_t *a, int64_t n)
{
    for (int64_t i = n / 2 - 1; i >= 0; i--)
        sift_down(a, i, n);
    for (int64_t e = n - 1; e > 0; e--) {
        uint64_t t = a[0];
        a[0] = a[e];
        a[e] = t;
        sift_down(a, 0, e);
    }
}

/* Hoare partition of distinct words a[0, n), n >= 3, around the median of
 * three: returns m, 0 < m < n, with a[< m] <= pivot <= a[>= m]. An element
 * below and one above the pivot exist, so neither side is empty, and each
 * scan stops at the pivot or at an element swapped behind it. */
static int64_t split_at_pivot(uint64_t *a, int64_t n)
{
    uint64_t x = a[0], y = a[n / 2], z = a[n - 1];
    uint64_t p = x < y ? (y < z ? y : x < z ? z : x) : (x < z ? x : y < z ? z : y);
    int64_t i = -1, j = n;
    for (;;) {
        do
            i++;
        while (a[i] < p);
        do
            j--;
        while (a[j] > p);
        if (i >= j)
            return j + 1;
        uint64_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

static int depth_limit(int64_t n)
{
    int d = 0;
    while (n > 1) {
        n >>= 1;
        d += 2;
    }
    return d;
}

static void intro_sort(uint64_t *a, int64_t n, int depth)
{
    while (n > 16) {
        if (depth-- == 0) {
            heap_sort(a, n);
            return;
        }
        int64_t m = split_at_pivot(a, n);
        /* Recurse into the smaller side: the stack stays O(log n). */
        if (m < n - m) {
            intro_sort(a, m, depth);
            a += m;
            n -= m;
        } else {
            intro_sort(a + m, n - m, depth);
            n = m;
        }
    }
    insertion_sort(a, n);
}

/* Moves the k smallest words of a[0, n) to a[0, k), 0 < k < n, in any order. */
static void select_smallest(uint64_t *a, int64_t n, int64_t k)
{
    int depth = depth_limit(n);
    while (n > 16) {
        if (depth-- == 0) {
            heap_sort(a, n);
            return;
        }
        int64_t m = split_at_pivot(a, n);
        if (m == k)
            return;
        if (m > k) {
            n = m;
        } else {
            a += m;
            n -= m;
            k -= m;
        }
    }
    insertion_sort(a, n);
}

/* LSD radix sort of a[0, n) by the high 32 bits (11 + 11 + 10 bit digits),
 * using b as the second buffer; returns the buffer holding the result. Each
 * pass is stable, so words with equal keys keep their (index) order. A digit
 * every word shares is skipped. */
static uint64_t *radix_sort_keys(uint64_t *a, uint64_t *b, int64_t n)
{
    enum { BITS = 11, BINS = 1 << BITS, PASSES = 3 };
    uint32_t cnt[PASSES][BINS];
    memset(cnt, 0, sizeof cnt);
    for (int64_t i = 0; i < n; i++) {
        uint32_t k = (uint32_t)(a[i] >> 32);
        cnt[0][k & (BINS - 1)]++;
        cnt[1][(k >> BITS) & (BINS - 1)]++;
        cnt[2][k >> (2 * BITS)]++;
    }
    for (int p = 0; p < PASSES; p++) {
        int shift = 32 + p * BITS;
        uint32_t *c = cnt[p];
        if (c[(a[0] >> shift) & (BINS - 1)] == (uint32_t)n)
            continue;
        uint32_t at = 0;
        for (int d = 0; d < BINS; d++) {
            uint32_t t = c[d];
            c[d] = at;
            at += t;
        }
        for (int64_t i = 0; i < n; i++)
            b[c[(a[i] >> shift) & (BINS - 1)]++] = a[i];
        uint64_t *t = a;
        a = b;
        b = t;
    }
    return a;
}

/* Moves the k smallest words of a[0, n), 0 < k < n, to the front of a or b
 * (in any order) and returns which. A histogram of the keys' top 11 bits
 * finds the bucket holding the k-th smallest; only the words up to that
 * bucket (about k plus one bucket) go on to the quickselect. */
static uint64_t *top_words(uint64_t *a, uint64_t *b, int64_t n, int64_t k)
{
    enum { SHIFT = 64 - 11, BINS = 1 << 11 };
    uint32_t cnt[BINS];
    memset(cnt, 0, sizeof cnt);
    for (int64_t i = 0; i < n; i++)
        cnt[a[i] >> SHIFT]++;
    int64_t below = 0;
    uint64_t t = 0;
    while (below + cnt[t] < k)
        below += cnt[t++];
    int64_t m = below + cnt[t];
    if (m == n) {
        select_smallest(a, n, k);
        return a;
    }
    int64_t j = 0;
    for (int64_t i = 0; i < n; i++) {
        b[j] = a[i];
        j += (a[i] >> SHIFT) <= t;
    }
    if (m > k)
        select_smallest(b, m, k);
    return b;
}

/* One f32 row: x[k * xs], k < n, to its first keep indices in order at
 * o[k * os]. a and b hold n words each. */
static void sort_row_f32(const float *x, int64_t xs, int64_t n, int64_t keep, bool desc,
                         uint64_t *a, uint64_t *b, int64_t *o, int64_t os)
{
    for (int64_t k = 0; k < n; k++)
        a[k] = (uint64_t)f32_key(x[k * xs], desc) << 32 | (uint64_t)k;
    uint64_t *res = a;
    /* Selection pays while the kept part is small; radix beyond a few
     * hundred elements, where its fixed cost is spread thin. */
    if (keep < n && keep <= n / 4) {
        if (keep > 0)
            res = top_words(a, b, n, keep);
        intro_sort(res, keep, depth_limit(keep));
    } else if (n < 512) {
        intro_sort(a, n, depth_limit(n));
    } else {
        res = radix_sort_keys(a, b, n);
    }
    for (int64_t k = 0; k < keep; k++)
        o[k * os] = (int64_t)(uint32_t)res[k];
}

static inline bool before(double a, double b, bool desc)
{
    if (desc) {
        double t = a;
        a = b;
        b = t;
    }
    return isnan(b) ? !isnan(a) : a < b;
}

/* Stable bottom-up merge sort of (key, idx)[0, n) using (k2, i2) as the
 * second buffer; returns which buffer holds the result (0: first). */
static int merge_sort(double *k1, int64_t *i1, double *k2, int64_t *i2, int64_t n, bool desc)
{
    int which = 0;
    for (int64_t w = 1; w < n; w *= 2) {
        double *ks = which ? k2 : k1, *kd = which ? k1 : k2;
        int64_t *is = which ? i2 : i1, *id = which ? i1 : i2;
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t a = lo, b = mid, o = lo;
            while (a < mid && b < hi) {
                /* Take from the right only when strictly before: stable. */
                if (before(ks[b], ks[a], desc)) {
                    kd[o] = ks[b];
                    id[o++] = is[b++];
                } else {
                    kd[o] = ks[a];
                    id[o++] = is[a++];
                }
            }
            while (a < mid) {
                kd[o] = ks[a];
                id[o++] = is[a++];
            }
            while (b < hi) {
                kd[o] = ks[b];
                id[o++] = is[b++];
            }
        }
        which ^= 1;
    }
    return which;
}

/* sort and topk: in = {x}; out = the first keep indices of each row along
 * dim d in order; aux = the op's scratch (2 keys and 2 indices per element). */
bool dkh_cpu_sort(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0];
    dk_tensor *o = c->out;
    if (x->dtype != DK_DTYPE_F32 && x->dtype != DK_DTYPE_F64)
        return false;
    int d = (int)c->args->i[0];
    bool desc = c->args->i[2] != 0;
    int64_t shape[DK_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[d] = 1;
    int64_t rows = dkh_numel(x->ndim, shape), n = x->shape[d], keep = o->shape[d];
    int64_t xs = x->strides[d], os = o->strides[d];
    double *kbuf = (double *)dkh_base(c->aux[0]);
    int64_t *ibuf = (int64_t *)dkh_base(c->aux[1]);
    bool packed = x->dtype == DK_DTYPE_F32 && n <= (int64_t)UINT32_MAX;
    /* Rows cost alike: a static split balances them. */
#pragma omp parallel for schedule(static) if (rows * n >= DKH_CPU_PAR_MIN && rows > 1)
    for (int64_t r = 0; r < rows; r++) {
        int64_t xb = dkh_offset_of(r, x->ndim, shape, x->strides);
        int64_t *orow = (int64_t *)dkh_base(o) + dkh_offset_of(r, o->ndim, shape, o->strides);
        double *k1 = kbuf + 2 * r * n, *k2 = k1 + n;
        if (packed) {
            /* The key buffer's 2n doubles hold the row's 2n words. */
            sort_row_f32((const float *)dkh_base(x) + xb, xs, n, keep, desc, (uint64_t *)k1,
                         (uint64_t *)k2, orow, os);
            continue;
        }
        int64_t *i1 = ibuf + 2 * r * n, *i2 = i1 + n;
        for (int64_t k = 0; k < n; k++) {
            k1[k] = x->dtype == DK_DTYPE_F32 ? (double)((const float *)dkh_base(x))[xb + k * xs]
                                             : ((const double *)dkh_base(x))[xb + k * xs];
            i1[k] = k;
        }
        int64_t *res = merge_sort(k1, i1, k2, i2, n, desc) ? i2 : i1;
        for (int64_t k = 0; k < keep; k++)
            orow[k * os] = res[k];
    }
    return true;
}

/* ---- dropout --------------------------------------------------------------------------------- */

/* Blocks of 16 stream elements (dkh_dropout_u32): 8 hashes, each giving
 * element l its low half and element 8 + l its high half. o and s point at
 * the block's first element. */
#define DROPOUT_BLOCK(T)                                                                         \
    static inline void dropout_block_##T(uint64_t key, uint64_t blk, uint64_t thr, T scale,    \
                                         const T *restrict s, T *restrict o)                    \
    {                                                                                            \
        _Pragma("omp simd") for (int l = 0; l < 8; l++) {                                        \
            uint64_t h = dkh_dropout_hash(key, blk * 8 + (uint64_t)l);                          \
            o[l] = (uint64_t)(uint32_t)h < thr ? s[l] * scale : (T)0;                            \
            o[l + 8] = (h >> 32) < thr ? s[l + 8] * scale : (T)0;                                \
        }                                                                                        \
    }                                                                                            \
    static void dropout_##T(uint64_t key, uint64_t ctr, int64_t n, double p, const T *s, T *o)  \
    {                                                                                            \
        uint64_t thr = dkh_dropout_threshold(p);                                                 \
        T scale = (T)(p < 1 ? 1 / (1 - p) : 0);                                                  \
        /* Elements before the first whole block and after the last go one by one. */          \
        int64_t head = (int64_t)((16 - (ctr & 15)) & 15);                                        \
        head = head < n ? head : n;                                                              \
        int64_t nblk = (n - head) / 16, tail = head + nblk * 16;                                 \
        for (int64_t i = 0; i < head; i++)                                                       \
            o[i] = dkh_dropout_u32(key, ctr + (uint64_t)i) < thr ? s[i] * scale : (T)0;          \
        uint64_t b0 = (ctr + (uint64_t)head) >> 4;                                               \
        _Pragma("omp parallel for schedule(static) if (n >= DKH_CPU_PAR_MIN)")                   \
        for (int64_t b = 0; b < nblk; b++)                                                       \
            dropout_block_##T(key, b0 + (uint64_t)b, thr, scale, s + head + 16 * b,              \
                              o + head + 16 * b);                                                \
        for (int64_t i = tail; i < n; i++)                                                       \
            o[i] = dkh_dropout_u32(key, ctr + (uint64_t)i) < thr ? s[i] * scale : (T)0;          \
    }

DROPOUT_BLOCK(float)
DROPOUT_BLOCK(double)

/* Forward: in = {x}; backward: in = {x, NULL, g}. Both out = src * scale(i). */
bool dkh_cpu_dropout(const dkh_kcall *c)
{
    const dk_tensor *src = c->n_in == 1 ? c->in[0] : c->in[2];
    dk_tensor *o = c->out;
    if ((src->dtype != DK_DTYPE_F32 && src->dtype != DK_DTYPE_F64) ||
        !dk_tensor_is_contiguous(src) || !dk_tensor_is_contiguous(o))
        return false;
    int64_t n = dkh_numel(o->ndim, o->shape);
    uint64_t key = c->args->rng.key, ctr = c->args->rng.counter;
    if (src->dtype == DK_DTYPE_F32)
        dropout_float(key, ctr, n, c->args->f[0], (const float *)dkh_base(src),
                      (float *)dkh_base(o));
    else
        dropout_double(key, ctr, n, c->args->f[0], (const double *)dkh_base(src),
                       (double *)dkh_base(o));
    return true;
}
