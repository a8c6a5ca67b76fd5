/* core/backends/cpu/nn_norm.c — batch normalisation, forward and backward, as
 * own OpenMP kernels (f32, f64).
 *
 * Measured against oneDNN's batch-normalization primitive on this machine (see
 * the nn report): both are bound by memory bandwidth, and ours needs no
 * reorder of plain NCHW data. Channels-last tensors (layout.c) have their own
 * kernels below. Plain NCHW: work is split over channels; each channel is N
 * runs of J contiguous elements (the trailing dims must collapse to one
 * unit-stride run, otherwise the kernel declines and the reference runs).
 * Each run is summed as an OpenMP simd reduction (vector lanes in the
 * element type), and runs add up in double; the variance is computed about a
 * shift (the channel's first value) so one pass stays accurate.
 */
#include "dnnl_cpu.h"

#include <math.h>
#include <stdlib.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define DKH_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define DKH_CLONES
#endif

/* Whether the trailing dims (2..) of t collapse to one run of stride 1. */
static bool inner_run(const dk_tensor *t, int64_t *J)
{
    int64_t expect = 1;
    for (int d = t->ndim - 1; d >= 2; d--) {
        if (t->shape[d] != 1 && t->strides[d] != expect)
            return false;
        expect *= t->shape[d];
    }
    *J = expect;
    return true;
}

#define NORM_KERNELS(T)                                                                       \
    /* s1 += sum(x - k), s2 += sum((x - k)^2) over one run. */                            \
    DKH_CLONES static void moments_##T(const T *restrict x, int64_t n, T k, double *s1,       \
                                       double *s2)                                            \
    {                                                                                         \
        T p = 0, q = 0;                                                                       \
        _Pragma("omp simd reduction(+ : p, q)")                                               \
        for (int64_t i = 0; i < n; i++) {                                                     \
            T d = x[i] - k;                                                                   \
            p += d;                                                                           \
            q += d * d;                                                                       \
        }                                                                                     \
        *s1 += p;                                                                             \
        *s2 += q;                                                                             \
    }                                                                                         \
    DKH_CLONES static void affine_##T(T *restrict y, const T *restrict x, int64_t n, T m, T s, \
                                      T b)                                                    \
    {                                                                                         \
        for (int64_t i = 0; i < n; i++)                                                       \
            y[i] = (x[i] - m) * s + b;                                                        \
    }                                                                                         \
    /* sg += sum(g), sgx += sum(g * (x - mean)) over one run. */                            \
    DKH_CLONES static void gsums_##T(const T *restrict g, const T *restrict x, int64_t n,     \
                                     T mean, double *sg, double *sgx)                         \
    {                                                                                         \
        T p = 0, q = 0;                                                                       \
        _Pragma("omp simd reduction(+ : p, q)")                                               \
        for (int64_t i = 0; i < n; i++) {                                                     \
            p += g[i];                                                                        \
            q += g[i] * (x[i] - mean);                                                        \
        }                                                                                     \
        *sg += p;                                                                             \
        *sgx += q;                                                                            \
    }                                                                                         \
    /* gx = gy s - (x - mean) u - t: s = w invstd, u = s invstd^2 sgx / M, t = s sg / M,  \
     * with sgx = sum(gy (x - mean)). */ \
    DKH_CLONES static void gx_##T(T *restrict gx, const T *restrict g, const T *restrict x,   \
                                  int64_t n, T mean, T s, T u, T t)                           \
    {                                                                                         \
        for (int64_t i = 0; i < n; i++)                                                       \
            gx[i] = g[i] * s - (x[i] - mean) * u - t;                                         \
    }                                                                                         \
    static void bn_fwd_##T(const dkh_kcall *c, int64_t J)                                     \
    {                                                                                         \
        const dk_tensor *x = c->in[0], *w = c->in[1], *b = c->in[2];                          \
        dk_tensor *y = c->out;                                                                \
        int64_t N = x->shape[0], C = x->shape[1];                                             \
        double M = (double)(N * J), eps = c->args->f[0];                                      \
        const T *xb = (const T *)dkh_base(x);                                                 \
        T *yb = (T *)dkh_base(y);                                                             \
        T *mu = (T *)dkh_base(c->aux[0]), *is = (T *)dkh_base(c->aux[1]);                     \
        T *vr = (T *)dkh_base(c->aux[2]);                                                     \
        _Pragma("omp parallel for schedule(dynamic, 1) if (N * J * C >= DKH_CPU_PAR_MIN)")    \
        for (int64_t ch = 0; ch < C; ch++) {                                                  \
            const T *xc = xb + ch * x->strides[1];                                            \
            T k = xc[0];                                                                      \
            double s1 = 0, s2 = 0;                                                            \
            for (int64_t n = 0; n < N; n++)                                                   \
                moments_##T(xc + n * x->strides[0], J, k, &s1, &s2);                          \
            double dm = s1 / M, var = s2 / M - dm * dm;                                       \
            if (var < 0)                                                                      \
                var = 0;                                                                      \
            double mean = (double)k + dm, invstd = 1 / sqrt(var + eps);                       \
            double wc = ((const T *)dkh_base(w))[ch * w->strides[0]];                         \
            double bc = ((const T *)dkh_base(b))[ch * b->strides[0]];                         \
            double s = invstd * wc;                                                           \
            for (int64_t n = 0; n < N; n++)                                                   \
                affine_##T(yb + n * y->strides[0] + ch * y->strides[1],                       \
                           xc + n * x->strides[0], J, (T)mean, (T)s, (T)bc);                  \
            mu[ch] = (T)mean;                                                                 \
            is[ch] = (T)invstd;                                                               \
            vr[ch] = (T)var;                                                                  \
        }                                                                                     \
    }                                                                                         \
    static void bn_bwd_##T(const dkh_kcall *c, int64_t J)                                     \
    {                                                                                         \
        const dk_tensor *x = c->in[0], *w = c->in[1], *g = c->in[2];                          \
        const dk_tensor *mt = c->in[3], *it = c->in[4];                                       \
        dk_tensor *gx = c->out, *gw = c->aux[0], *gb = c->aux[1];                             \
        int64_t N = x->shape[0], C = x->shape[1];                                             \
        double M = (double)(N * J);                                                           \
        _Pragma("omp parallel for schedule(dynamic, 1) if (N * J * C >= DKH_CPU_PAR_MIN)")    \
        for (int64_t ch = 0; ch < C; ch++) {                                                  \
            const T *xc = (const T *)dkh_base(x) + ch * x->strides[1];                        \
            const T *gc = (const T *)dkh_base(g) + ch * g->strides[1];                        \
            T *oc = (T *)dkh_base(gx) + ch * gx->strides[1];                                  \
            double mean = ((const T *)dkh_base(mt))[ch * mt->strides[0]];                     \
            double invstd = ((const T *)dkh_base(it))[ch * it->strides[0]];                   \
            double wc = ((const T *)dkh_base(w))[ch * w->strides[0]];                         \
            double sg = 0, sgx = 0;                                                           \
            for (int64_t n = 0; n < N; n++)                                                   \
                gsums_##T(gc + n * g->strides[0], xc + n * x->strides[0], J, (T)mean, &sg,    \
                          &sgx);                                                              \
            double s = wc * invstd;                                                           \
            for (int64_t n = 0; n < N; n++)                                                   \
                gx_##T(oc + n * gx->strides[0], gc + n * g->strides[0],                       \
                       xc + n * x->strides[0], J, (T)mean, (T)s,                              \
                       (T)(s * invstd * invstd * sgx / M), (T)(s * sg / M));                  \
            ((T *)dkh_base(gw))[ch * gw->strides[0]] = (T)(sgx * invstd);                     \
            ((T *)dkh_base(gb))[ch * gb->strides[0]] = (T)sg;                                 \
        }                                                                                     \
    }

NORM_KERNELS(float)
NORM_KERNELS(double)

/* ---- channels-last ----------------------------------------------------------------------
 * x is R = N*H*W rows of C contiguous channels. The rows are cut into chunks
 * of a fixed size; each chunk's per-channel sums (double) go to its own slot
 * of part, and the slots are added in chunk order, so the bits do not depend
 * on the thread count. The inner loops run over channels and vectorise. */
enum { CL_ROWS = 256 };

static int64_t cl_rows(const dk_tensor *x)
{
    return x->shape[0] * x->shape[2] * x->shape[3];
}

/* Chunk q of R rows: its first row in *r0, its length returned. */
static int64_t cl_chunk(int64_t q, int64_t R, int64_t *r0)
{
    *r0 = q * CL_ROWS;
    return R - *r0 < CL_ROWS ? R - *r0 : CL_ROWS;
}

#define NORM_CL_KERNELS(T)                                                                    \
    /* p[0..C) = sum(x - k), p[C..2C) = sum((x - k)^2) over a chunk. */                     \
    DKH_CLONES static void cl_moments_##T(const T *restrict x, int64_t rows, int64_t C,        \
                                          const T *restrict k, double *restrict p)            \
    {                                                                                         \
        for (int64_t j = 0; j < 2 * C; j++)                                                   \
            p[j] = 0;                                                                         \
        for (int64_t r = 0; r < rows; r++)                                                    \
            for (int64_t ch = 0; ch < C; ch++) {                                              \
                double d = (double)(x[r * C + ch] - k[ch]);                                   \
                p[ch] += d;                                                                   \
                p[C + ch] += d * d;                                                           \
            }                                                                                 \
    }                                                                                         \
    DKH_CLONES static void cl_affine_##T(T *restrict y, const T *restrict x, int64_t rows,     \
                                         int64_t C, const T *restrict m, const T *restrict s,  \
                                         const T *restrict b)                                  \
    {                                                                                         \
        for (int64_t r = 0; r < rows; r++)                                                    \
            for (int64_t ch = 0; ch < C; ch++)                                                \
                y[r * C + ch] = (x[r * C + ch] - m[ch]) * s[ch] + b[ch];                      \
    }                                                                                         \
    /* p[0..C) = sum(g), p[C..2C) = sum(g (x - mean)) over a chunk. */                      \
    DKH_CLONES static void cl_gsums_##T(const T *restrict g, const T *restrict x,              \
                                        int64_t rows, int64_t C, const T *restrict m,          \
                                        double *restrict p)                                    \
    {                                                                                         \
        for (int64_t j = 0; j < 2 * C; j++)                                                   \
            p[j] = 0;                                                                         \
        for (int64_t r = 0; r < rows; r++)                                                    \
            for (int64_t ch = 0; ch < C; ch++) {                                              \
                T gv = g[r * C + ch];                                                         \
                p[ch] += (double)gv;                                                          \
                p[C + ch] += (double)(gv * (x[r * C + ch] - m[ch]));                          \
            }                                                                                 \
    }                                                                                         \
    DKH_CLONES static void cl_gx_##T(T *restrict gx, const T *restrict g, const T *restrict x, \
                                     int64_t rows, int64_t C, const T *restrict m,             \
                                     const T *restrict s, const T *restrict u,                 \
                                     const T *restrict t)                                      \
    {                                                                                         \
        for (int64_t r = 0; r < rows; r++)                                                    \
            for (int64_t ch = 0; ch < C; ch++)                                                \
                gx[r * C + ch] = g[r * C + ch] * s[ch] - (x[r * C + ch] - m[ch]) * u[ch] - t[ch]; \
    }                                                                                         \
    /* Sums chunk partials (2C doubles per chunk) in chunk order into tot. */                 \
    static void cl_total_##T(const double *part, int64_t nq, int64_t C, double *tot)          \
    {                                                                                         \
        for (int64_t j = 0; j < 2 * C; j++)                                                   \
            tot[j] = 0;                                                                       \
        for (int64_t q = 0; q < nq; q++)                                                      \
            for (int64_t j = 0; j < 2 * C; j++)                                               \
                tot[j] += part[q * 2 * C + j];                                                \
    }                                                                                         \
    /* scratch: part (nq * 2C doubles), tot (2C doubles), vec (4C T). */                    \
    static void bn_fwd_cl_##T(const dkh_kcall *c, double *part, double *tot, T *vec)          \
    {                                                                                         \
        const dk_tensor *x = c->in[0], *w = c->in[1], *b = c->in[2];                          \
        int64_t C = x->shape[1], R = cl_rows(x), nq = (R + CL_ROWS - 1) / CL_ROWS;            \
        const T *xb = (const T *)dkh_base(x);                                                 \
        T *yb = (T *)dkh_base(c->out);                                                        \
        T *k = vec, *m = vec + C, *s = vec + 2 * C, *bb = vec + 3 * C;                        \
        for (int64_t ch = 0; ch < C; ch++)                                                    \
            k[ch] = xb[ch];                                                                   \
        _Pragma("omp parallel for schedule(static) if (R * C >= DKH_CPU_PAR_MIN)")            \
        for (int64_t q = 0; q < nq; q++) {                                                    \
            int64_t r0, n = cl_chunk(q, R, &r0);                                              \
            cl_moments_##T(xb + r0 * C, n, C, k, part + q * 2 * C);                           \
        }                                                                                     \
        cl_total_##T(part, nq, C, tot);                                                       \
        T *mu = (T *)dkh_base(c->aux[0]), *is = (T *)dkh_base(c->aux[1]);                     \
        T *vr = (T *)dkh_base(c->aux[2]);                                                     \
        double eps = c->args->f[0];                                                           \
        for (int64_t ch = 0; ch < C; ch++) {                                                  \
            double dm = tot[ch] / (double)R, var = tot[C + ch] / (double)R - dm * dm;         \
            if (var < 0)                                                                      \
                var = 0;                                                                      \
            double mean = (double)k[ch] + dm, invstd = 1 / sqrt(var + eps);                   \
            double wc = ((const T *)dkh_base(w))[ch * w->strides[0]];                         \
            m[ch] = (T)mean;                                                                  \
            s[ch] = (T)(invstd * wc);                                                         \
            bb[ch] = ((const T *)dkh_base(b))[ch * b->strides[0]];                            \
            mu[ch] = (T)mean;                                                                 \
            is[ch] = (T)invstd;                                                               \
            vr[ch] = (T)var;                                                                  \
        }                                                                                     \
        _Pragma("omp parallel for schedule(static) if (R * C >= DKH_CPU_PAR_MIN)")            \
        for (int64_t q = 0; q < nq; q++) {                                                    \
            int64_t r0, n = cl_chunk(q, R, &r0);                                              \
            cl_affine_##T(yb + r0 * C, xb + r0 * C, n, C, m, s, bb);                          \
        }                                                                                     \
    }                                                                                         \
    static void bn_bwd_cl_##T(const dkh_kcall *c, double *part, double *tot, T *vec)          \
    {                                                                                         \
        const dk_tensor *x = c->in[0], *w = c->in[1], *g = c->in[2];                          \
        const dk_tensor *mt = c->in[3], *it = c->in[4];                                       \
        dk_tensor *gw = c->aux[0], *gb = c->aux[1];                                           \
        int64_t C = x->shape[1], R = cl_rows(x), nq = (R + CL_ROWS - 1) / CL_ROWS;            \
        const T *xb = (const T *)dkh_base(x), *gb_ = (const T *)dkh_base(g);                  \
        T *ob = (T *)dkh_base(c->out);                                                        \
        T *m = vec, *s = vec + C, *u = vec + 2 * C, *t = vec + 3 * C;                         \
        for (int64_t ch = 0; ch < C; ch++)                                                    \
            m[ch] = ((const T *)dkh_base(mt))[ch * mt->strides[0]];                           \
        _Pragma("omp parallel for schedule(static) if (R * C >= DKH_CPU_PAR_MIN)")            \
        for (int64_t q = 0; q < nq; q++) {                                                    \
            int64_t r0, n = cl_chunk(q, R, &r0);                                              \
            cl_gsums_##T(gb_ + r0 * C, xb + r0 * C, n, C, m, part + q * 2 * C);               \
        }                                                                                     \
        cl_total_##T(part, nq, C, tot);                                                       \
        double M = (double)R;                                                                 \
        for (int64_t ch = 0; ch < C; ch++) {                                                  \
            double invstd = ((const T *)dkh_base(it))[ch * it->strides[0]];                   \
            double wc = ((const T *)dkh_base(w))[ch * w->strides[0]];                         \
            double sg = tot[ch], sgx = tot[C + ch], sc = wc * invstd;                         \
            s[ch] = (T)sc;                                                                    \
            u[ch] = (T)(sc * invstd * invstd * sgx / M);                                      \
            t[ch] = (T)(sc * sg / M);                                                         \
            ((T *)dkh_base(gw))[ch * gw->strides[0]] = (T)(sgx * invstd);                     \
            ((T *)dkh_base(gb))[ch * gb->strides[0]] = (T)sg;                                 \
        }                                                                                     \
        _Pragma("omp parallel for schedule(static) if (R * C >= DKH_CPU_PAR_MIN)")            \
        for (int64_t q = 0; q < nq; q++) {                                                    \
            int64_t r0, n = cl_chunk(q, R, &r0);                                              \
            cl_gx_##T(ob + r0 * C, gb_ + r0 * C, xb + r0 * C, n, C, m, s, u, t);              \
        }                                                                                     \
    }

NORM_CL_KERNELS(float)
NORM_CL_KERNELS(double)

/* Whether the channels-last kernels take t: all channels-last, one float dtype. */
static bool cl_ok(int n_t, const dk_tensor *const *t)
{
    dk_dtype dt = t[0]->dtype;
    if (!dkh_is_strictly_channels_last(t[0]) || (dt != DK_DTYPE_F32 && dt != DK_DTYPE_F64) ||
        cl_rows(t[0]) == 0 || t[0]->shape[1] == 0)
        return false;
    for (int i = 1; i < n_t; i++)
        if (!dkh_is_channels_last(t[i]) || t[i]->dtype != dt)
            return false;
    return true;
}

/* Runs the forward or backward channels-last kernel; false (the reference
 * runs) only when its scratch cannot be allocated. */
static bool run_cl(const dkh_kcall *c, bool fwd)
{
    const dk_tensor *x = c->in[0];
    dk_dtype dt = x->dtype;
    int64_t C = x->shape[1], nq = (cl_rows(x) + CL_ROWS - 1) / CL_ROWS;
    double *part = malloc((size_t)(nq + 1) * 2 * (size_t)C * sizeof *part);
    void *vec = malloc(4 * (size_t)C * dk_dtype_size(dt));
    bool ok = part && vec;
    if (ok) {
        double *tot = part + nq * 2 * C;
        if (dt == DK_DTYPE_F32)
            (fwd ? bn_fwd_cl_float : bn_bwd_cl_float)(c, part, tot, vec);
        else
            (fwd ? bn_fwd_cl_double : bn_bwd_cl_double)(c, part, tot, vec);
    }
    free(part);
    free(vec);
    return ok;
}

/* The kernels index x, y (and g, gx) with one set of run strides: all must
 * have their trailing dims as one unit-stride run. */
static bool runs_ok(const dkh_kcall *c, int n_t, const dk_tensor *const *t, int64_t *J)
{
    dk_dtype dt = t[0]->dtype;
    if (dt != DK_DTYPE_F32 && dt != DK_DTYPE_F64)
        return false;
    for (int i = 0; i < n_t; i++) {
        int64_t j;
        if (t[i]->dtype != dt || !inner_run(t[i], &j))
            return false;
        *J = j;
    }
    return c != NULL;
}

bool dkh_cpu_batch_norm(const dkh_kcall *c)
{
    int64_t J;
    const dk_tensor *t[2] = {c->in[0], c->out};
    if (cl_ok(2, t))
        return run_cl(c, true);
    if (!runs_ok(c, 2, t, &J))
        return false;
    if (c->out->dtype == DK_DTYPE_F32)
        bn_fwd_float(c, J);
    else
        bn_fwd_double(c, J);
    return true;
}

bool dkh_cpu_batch_norm_bwd(const dkh_kcall *c)
{
    int64_t J;
    const dk_tensor *t[3] = {c->in[0], c->in[2], c->out};
    if (cl_ok(3, t))
        return run_cl(c, false);
    if (!runs_ok(c, 3, t, &J))
        return false;
    if (c->out->dtype == DK_DTYPE_F32)
        bn_bwd_float(c, J);
    else
        bn_bwd_double(c, J);
    return true;
}
