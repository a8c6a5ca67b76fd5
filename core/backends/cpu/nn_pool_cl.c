/* core/backends/cpu/nn_pool_cl.c — max pooling of channels-last tensors
 * (layout.c), forward and backward, as own OpenMP kernels (f32, f64).
 *
 * Channels-last activations keep their layout through a max pool, so the
 * convolution after it needs no reorder either. The inner loops run over the
 * C contiguous channels of one pixel and vectorise; the window taps are the
 * outer loops. Semantics are those of the plain kernels (nn_pool.c): the
 * first tap of a window initialises, a later one wins when it is greater or
 * NaN over a number, and an index is the tap's h * W + w in its plane.
 */
#include "dnnl_cpu.h"

#include <math.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define DKH_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define DKH_CLONES
#endif

#define POOL_CL_KERNELS(T)                                                                    \
    /* One tap over a pixel's C channels: y, id hold the running max and its index. */       \
    DKH_CLONES static void tap_##T(T *restrict y, int32_t *restrict id,                       \
                                   const T *restrict x, int64_t C, int32_t at, bool first)    \
    {                                                                                         \
        if (first) {                                                                          \
            for (int64_t ch = 0; ch < C; ch++) {                                              \
                y[ch] = x[ch];                                                                \
                id[ch] = at;                                                                  \
            }                                                                                 \
            return;                                                                           \
        }                                                                                     \
        for (int64_t ch = 0; ch < C; ch++) {                                                  \
            T e = x[ch], m = y[ch];                                                           \
            bool t = e > m || (e != e && m == m);                                             \
            y[ch] = t ? e : m;                                                                \
            id[ch] = t ? at : id[ch];                                                         \
        }                                                                                     \
    }                                                                                         \
    static void maxpool_cl_##T(const dkh_kcall *c)                                            \
    {                                                                                         \
        const int64_t *v = c->args->v;                                                        \
        const dk_tensor *x = c->in[0];                                                        \
        dk_tensor *y = c->out;                                                                \
        int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];          \
        int64_t P = y->shape[2], Q = y->shape[3];                                             \
        const T *xb = (const T *)dkh_base(x);                                                 \
        T *yb = (T *)dkh_base(y);                                                             \
        int32_t *ib = (int32_t *)dkh_base(c->aux[0]);                                         \
        _Pragma("omp parallel for schedule(static) if (N * H * W * C >= DKH_CPU_PAR_MIN)")    \
        for (int64_t row = 0; row < N * P; row++) {                                           \
            int64_t n = row / P, oh = row % P, r0, r1;                                        \
            dkh_pool_taps(oh, v[2], v[4], v[6], v[0], H, &r0, &r1);                               \
            for (int64_t ow = 0; ow < Q; ow++) {                                              \
                int64_t q0, q1;                                                               \
                dkh_pool_taps(ow, v[3], v[5], v[7], v[1], W, &q0, &q1);                           \
                T *yp = yb + ((n * P + oh) * Q + ow) * C;                                     \
                int32_t *ip = ib + ((n * P + oh) * Q + ow) * C;                               \
                bool first = true;                                                            \
                for (int64_t r = r0; r < r1; r++) {                                           \
                    int64_t h = oh * v[2] - v[4] + r * v[6];                                  \
                    for (int64_t q = q0; q < q1; q++, first = false) {                        \
                        int64_t w = ow * v[3] - v[5] + q * v[7];                              \
                        tap_##T(yp, ip, xb + ((n * H + h) * W + w) * C, C,                    \
                                (int32_t)(h * W + w), first);                                 \
                    }                                                                         \
                }                                                                             \
                if (first) /* a window of padding only */                                    \
                    for (int64_t ch = 0; ch < C; ch++) {                                      \
                        yp[ch] = -INFINITY;                                                   \
                        ip[ch] = -1;                                                          \
                    }                                                                         \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
    /* in = {x, gy, indices}; gx channels-last. Images are independent. */                  \
    static void maxpool_bwd_cl_##T(const dkh_kcall *c)                                        \
    {                                                                                         \
        const dk_tensor *g = c->in[1], *idx = c->in[2];                                       \
        dk_tensor *gx = c->out;                                                               \
        int64_t N = g->shape[0], C = g->shape[1], P = g->shape[2], Q = g->shape[3];          \
        int64_t HW = gx->shape[2] * gx->shape[3];                                             \
        _Pragma("omp parallel for schedule(static) if (N * HW * C >= DKH_CPU_PAR_MIN)")       \
        for (int64_t n = 0; n < N; n++) {                                                     \
            T *gp = (T *)dkh_base(gx) + n * HW * C;                                           \
            memset(gp, 0, (size_t)(HW * C) * sizeof(T));                                      \
            for (int64_t oh = 0; oh < P; oh++)                                                \
                for (int64_t ow = 0; ow < Q; ow++) {                                          \
                    const T *gy = (const T *)dkh_base(g) + n * g->strides[0] +                \
                                  oh * g->strides[2] + ow * g->strides[3];                    \
                    const int32_t *ip = (const int32_t *)dkh_base(idx) + n * idx->strides[0] + \
                                        oh * idx->strides[2] + ow * idx->strides[3];          \
                    for (int64_t ch = 0; ch < C; ch++) {                                      \
                        int32_t i = ip[ch * idx->strides[1]];                                 \
                        if (i >= 0)                                                           \
                            gp[i * C + ch] += gy[ch * g->strides[1]];                         \
                    }                                                                         \
                }                                                                             \
        }                                                                                     \
    }

POOL_CL_KERNELS(float)
POOL_CL_KERNELS(double)

bool dkh_cpu_max_pool2d_cl(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0], *y = c->out, *id = c->aux[0];
    if (!dkh_is_channels_last(x) || !dkh_is_channels_last(y) || !dkh_is_channels_last(id))
        return false;
    if (y->dtype == DK_DTYPE_F32)
        maxpool_cl_float(c);
    else if (y->dtype == DK_DTYPE_F64)
        maxpool_cl_double(c);
    else
        return false;
    return true;
}

bool dkh_cpu_max_pool2d_bwd_cl(const dkh_kcall *c)
{
    if (!dkh_is_channels_last(c->out))
        return false;
    if (c->out->dtype == DK_DTYPE_F32)
        maxpool_bwd_cl_float(c);
    else if (c->out->dtype == DK_DTYPE_F64)
        maxpool_bwd_cl_double(c);
    else
        return false;
    return true;
}
