/* core/backends/cpu/nn_norm.c — batch normalisation, forward and backward, as
 * own OpenMP kernels (f32, f64).
 *
 * Measured against oneDNN's batch-normalization primitive on this machine (see
 * the nn report): both are bound by memory bandwidth, and ours needs no
 * reorder of plain NCHW data. Work is split over channels; each channel is N
 * runs of J contiguous elements (the trailing dims must collapse to one
 * unit-stride run, otherwise the kernel declines and the reference runs).
 * Each run is summed as an OpenMP simd reduction (vector lanes in the
 * element type), and runs add up in double; the variance is computed about a
 * shift (the channel's first value) so one pass stays accurate.
 */
#include "dnnl_cpu.h"

#include <math.h>

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
    if (!runs_ok(c, 3, t, &J))
        return false;
    if (c->out->dtype == DK_DTYPE_F32)
        bn_bwd_float(c, J);
    else
        bn_bwd_double(c, J);
    return true;
}
