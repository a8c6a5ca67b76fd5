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

/* Forward: in = {x}; backward: in = {x, NULL, g}. Both out = src * scale(i). */
bool dkh_cpu_dropout(const dkh_kcall *c)
{
    const dk_tensor *src = c->n_in == 1 ? c->in[0] : c->in[2];
    dk_tensor *o = c->out;
    if ((src->dtype != DK_DTYPE_F32 && src->dtype != DK_DTYPE_F64) ||
        !dk_tensor_is_contiguous(src) || !dk_tensor_is_contiguous(o))
        return false;
    int64_t n = dkh_numel(o->ndim, o->shape);
    double p = c->args->f[0], keep = 1 - p, scale = p < 1 ? 1 / keep : 0;
    uint64_t key = c->args->rng.key, ctr = c->args->rng.counter;
    bool f32 = src->dtype == DK_DTYPE_F32;
    const char *sb = dkh_base(src);
    char *ob = dkh_base(o);
#pragma omp parallel for schedule(static) if (n >= DKH_CPU_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        bool k = dkh_rng_uniform(key, ctr + (uint64_t)i) < keep;
        if (f32)
            ((float *)ob)[i] = k ? (float)(((const float *)sb)[i] * scale) : 0.0f;
        else
            ((double *)ob)[i] = k ? ((const double *)sb)[i] * scale : 0.0;
    }
    return true;
}
