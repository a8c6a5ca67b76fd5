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

#define MAX_DIM(T)                                                                               \
    static void max_dim_##T(bool mn, int64_t outer, int64_t n, int64_t inner, const T *x, T *y, \
                            int64_t *ix)                                                         \
    {                                                                                            \
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
                    if (!isnan(b) && (isnan(v) || (mn ? v < b : v > b))) {                       \
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
    bool f32 = x->dtype == DK_DTYPE_F32;
#pragma omp parallel for schedule(dynamic, 16) if (rows * n >= DKH_CPU_PAR_MIN && rows > 1)
    for (int64_t r = 0; r < rows; r++) {
        int64_t xb = dkh_offset_of(r, x->ndim, shape, x->strides);
        int64_t ob = dkh_offset_of(r, o->ndim, shape, o->strides);
        double *k1 = kbuf + 2 * r * n, *k2 = k1 + n;
        int64_t *i1 = ibuf + 2 * r * n, *i2 = i1 + n;
        for (int64_t k = 0; k < n; k++) {
            k1[k] = f32 ? (double)((const float *)dkh_base(x))[xb + k * xs]
                        : ((const double *)dkh_base(x))[xb + k * xs];
            i1[k] = k;
        }
        int64_t *res = merge_sort(k1, i1, k2, i2, n, desc) ? i2 : i1;
        int64_t *ob_ = (int64_t *)dkh_base(o) + ob;
        for (int64_t k = 0; k < keep; k++)
            ob_[k * os] = res[k];
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
