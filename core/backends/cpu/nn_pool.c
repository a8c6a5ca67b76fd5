/* core/backends/cpu/nn_pool.c — max, average and adaptive-average 2-d pooling
 * as own OpenMP kernels (f32, f64), forward and backward.
 *
 * machine-peaks.md measured oneDNN's max-pool as a quarter of a LeNet step
 * and a plain loop 1.4-6x faster; these are such loops. Work is split over
 * the N*C planes (no two threads touch one plane, so the backward scatters
 * without atomics). Each output's window is clipped to the input once, so the
 * inner loops carry no bounds checks, and the common 2x2 stride-2 max pool
 * over unit-stride rows has its own loop. Any strides are accepted.
 */
#include "dnnl_cpu.h"

#include <math.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define DKH_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define DKH_CLONES
#endif

void dkh_pool_taps(int64_t o, int64_t s, int64_t p, int64_t d, int64_t k, int64_t n,
                   int64_t *r0, int64_t *r1)
{
    int64_t start = o * s - p;
    int64_t lo = start >= 0 ? 0 : (-start + d - 1) / d;
    int64_t hi = n - start <= 0 ? 0 : (n - start + d - 1) / d;
    *r0 = lo;
    *r1 = hi < k ? hi : k;
    if (*r1 < *r0)
        *r1 = *r0;
}

static void avg_window(const dkh_args *a, int64_t H, int64_t W, int64_t oh, int64_t ow,
                       int64_t *h0, int64_t *h1, int64_t *w0, int64_t *w1, double *div)
{
    const int64_t *v = a->v;
    int64_t hs = oh * v[2] - v[4], ws = ow * v[3] - v[5];
    int64_t he = hs + v[0] < H + v[4] ? hs + v[0] : H + v[4];
    int64_t we = ws + v[1] < W + v[5] ? ws + v[1] : W + v[5];
    int64_t pool = (he - hs) * (we - ws);
    *h0 = hs > 0 ? hs : 0;
    *w0 = ws > 0 ? ws : 0;
    *h1 = he < H ? he : H;
    *w1 = we < W ? we : W;
    *div = a->i[1] ? (double)pool : (double)((*h1 - *h0) * (*w1 - *w0));
}

#define POOL_KERNELS(T)                                                                       \
    /* 2x2, stride 2, no padding or dilation, unit-stride rows of x and y. */                 \
    DKH_CLONES static void max22_##T(const T *restrict x, int64_t xs, T *restrict y,          \
                                     int32_t *restrict id, int64_t P, int64_t Q, int64_t W)   \
    {                                                                                         \
        for (int64_t oh = 0; oh < P; oh++) {                                                  \
            const T *r0 = x + 2 * oh * xs, *r1 = r0 + xs;                                     \
            for (int64_t ow = 0; ow < Q; ow++) {                                              \
                T a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];     \
                int32_t base = (int32_t)(2 * oh * W + 2 * ow);                                \
                /* Selects, not branches: random data mispredicts every other compare. */ \
                T m = a;                                                                      \
                int32_t i = base;                                                             \
                bool t = b > m || (b != b && m == m);                                         \
                m = t ? b : m;                                                                \
                i = t ? base + 1 : i;                                                         \
                t = c > m || (c != c && m == m);                                              \
                m = t ? c : m;                                                                \
                i = t ? base + (int32_t)W : i;                                                \
                t = d > m || (d != d && m == m);                                              \
                m = t ? d : m;                                                                \
                i = t ? base + (int32_t)W + 1 : i;                                            \
                y[oh * Q + ow] = m;                                                           \
                id[oh * Q + ow] = i;                                                          \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
    static void maxpool_##T(const dkh_kcall *c)                                               \
    {                                                                                         \
        const int64_t *v = c->args->v;                                                        \
        const dk_tensor *x = c->in[0];                                                        \
        dk_tensor *y = c->out;                                                                \
        int64_t C = x->shape[1], H = x->shape[2], W = x->shape[3];                            \
        int64_t P = y->shape[2], Q = y->shape[3], planes = x->shape[0] * C;                   \
        int64_t s2 = x->strides[2], s3 = x->strides[3];                                       \
        bool fast = v[0] == 2 && v[1] == 2 && v[2] == 2 && v[3] == 2 && v[4] == 0 &&          \
                    v[5] == 0 && v[6] == 1 && v[7] == 1 && s3 == 1 && 2 * P <= H &&     \
                    2 * Q <= W;                                                               \
        _Pragma("omp parallel for schedule(static) if (planes * H * W >= DKH_CPU_PAR_MIN)")  \
        for (int64_t pl = 0; pl < planes; pl++) {                                             \
            const T *xp = (const T *)dkh_base(x) + (pl / C) * x->strides[0] +                 \
                          (pl % C) * x->strides[1];                                           \
            T *yp = (T *)dkh_base(y) + pl * P * Q;                                            \
            int32_t *ip = (int32_t *)dkh_base(c->aux[0]) + pl * P * Q;                        \
            if (fast) {                                                                       \
                max22_##T(xp, s2, yp, ip, P, Q, W);                                           \
                continue;                                                                     \
            }                                                                                 \
            for (int64_t oh = 0; oh < P; oh++) {                                              \
                int64_t r0, r1;                                                               \
                dkh_pool_taps(oh, v[2], v[4], v[6], v[0], H, &r0, &r1);                                \
                for (int64_t ow = 0; ow < Q; ow++) {                                          \
                    int64_t q0, q1;                                                           \
                    dkh_pool_taps(ow, v[3], v[5], v[7], v[1], W, &q0, &q1);                            \
                    T best = -INFINITY;                                                       \
                    int32_t arg = -1;                                                         \
                    for (int64_t r = r0; r < r1; r++) {                                       \
                        int64_t h = oh * v[2] - v[4] + r * v[6];                              \
                        for (int64_t q = q0; q < q1; q++) {                                   \
                            int64_t w = ow * v[3] - v[5] + q * v[7];                          \
                            T e = xp[h * s2 + w * s3];                                        \
                            if (arg < 0 || e > best || (e != e && best == best)) {            \
                                best = e;                                                     \
                                arg = (int32_t)(h * W + w);                                   \
                            }                                                                 \
                        }                                                                     \
                    }                                                                         \
                    yp[oh * Q + ow] = best;                                                   \
                    ip[oh * Q + ow] = arg;                                                    \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
    /* in = {x, gy, indices}; gx contiguous. */                                               \
    static void maxpool_bwd_##T(const dkh_kcall *c)                                           \
    {                                                                                         \
        const dk_tensor *g = c->in[1], *idx = c->in[2];                                       \
        dk_tensor *gx = c->out;                                                               \
        int64_t C = g->shape[1], P = g->shape[2], Q = g->shape[3];                            \
        int64_t HW = gx->shape[2] * gx->shape[3], planes = g->shape[0] * C;                   \
        _Pragma("omp parallel for schedule(static) if (planes * HW >= DKH_CPU_PAR_MIN)")     \
        for (int64_t pl = 0; pl < planes; pl++) {                                             \
            int64_t n = pl / C, ch = pl % C;                                                  \
            T *gp = (T *)dkh_base(gx) + pl * HW;                                              \
            const T *yp = (const T *)dkh_base(g) + n * g->strides[0] + ch * g->strides[1];    \
            const int32_t *ip = (const int32_t *)dkh_base(idx) + n * idx->strides[0] +        \
                                ch * idx->strides[1];                                         \
            memset(gp, 0, (size_t)HW * sizeof(T));                                            \
            for (int64_t oh = 0; oh < P; oh++)                                                \
                for (int64_t ow = 0; ow < Q; ow++) {                                          \
                    int32_t i = ip[oh * idx->strides[2] + ow * idx->strides[3]];              \
                    if (i >= 0)                                                               \
                        gp[i] += yp[oh * g->strides[2] + ow * g->strides[3]];                 \
                }                                                                             \
        }                                                                                     \
    }                                                                                         \
    static void avgpool_##T(const dkh_kcall *c)                                               \
    {                                                                                         \
        const dk_tensor *x = c->in[0];                                                        \
        dk_tensor *y = c->out;                                                                \
        int64_t C = x->shape[1], H = x->shape[2], W = x->shape[3];                            \
        int64_t P = y->shape[2], Q = y->shape[3], planes = x->shape[0] * C;                   \
        int64_t s2 = x->strides[2], s3 = x->strides[3];                                       \
        _Pragma("omp parallel for schedule(static) if (planes * H * W >= DKH_CPU_PAR_MIN)")  \
        for (int64_t pl = 0; pl < planes; pl++) {                                             \
            const T *xp = (const T *)dkh_base(x) + (pl / C) * x->strides[0] +                 \
                          (pl % C) * x->strides[1];                                           \
            T *yp = (T *)dkh_base(y) + pl * P * Q;                                            \
            for (int64_t oh = 0; oh < P; oh++)                                                \
                for (int64_t ow = 0; ow < Q; ow++) {                                          \
                    int64_t h0, h1, w0, w1;                                                   \
                    double div;                                                               \
                    avg_window(c->args, H, W, oh, ow, &h0, &h1, &w0, &w1, &div);              \
                    T acc = 0;                                                                \
                    for (int64_t h = h0; h < h1; h++)                                         \
                        for (int64_t w = w0; w < w1; w++)                                     \
                            acc += xp[h * s2 + w * s3];                                       \
                    yp[oh * Q + ow] = h0 < h1 && w0 < w1 ? (T)(acc / div) : 0;                \
                }                                                                             \
        }                                                                                     \
    }                                                                                         \
    /* in = {x, NULL, gy}; gx contiguous. */                                                  \
    static void avgpool_bwd_##T(const dkh_kcall *c)                                           \
    {                                                                                         \
        const dk_tensor *g = c->in[2];                                                        \
        dk_tensor *gx = c->out;                                                               \
        int64_t C = g->shape[1], P = g->shape[2], Q = g->shape[3];                            \
        int64_t H = gx->shape[2], W = gx->shape[3], planes = g->shape[0] * C;                 \
        _Pragma("omp parallel for schedule(static) if (planes * H * W >= DKH_CPU_PAR_MIN)")  \
        for (int64_t pl = 0; pl < planes; pl++) {                                             \
            T *gp = (T *)dkh_base(gx) + pl * H * W;                                           \
            const T *yp = (const T *)dkh_base(g) + (pl / C) * g->strides[0] +                 \
                          (pl % C) * g->strides[1];                                           \
            memset(gp, 0, (size_t)(H * W) * sizeof(T));                                       \
            for (int64_t oh = 0; oh < P; oh++)                                                \
                for (int64_t ow = 0; ow < Q; ow++) {                                          \
                    int64_t h0, h1, w0, w1;                                                   \
                    double div;                                                               \
                    avg_window(c->args, H, W, oh, ow, &h0, &h1, &w0, &w1, &div);              \
                    T v = (T)(yp[oh * g->strides[2] + ow * g->strides[3]] / div);             \
                    for (int64_t h = h0; h < h1; h++)                                         \
                        for (int64_t w = w0; w < w1; w++)                                     \
                            gp[h * W + w] += v;                                               \
                }                                                                             \
        }                                                                                     \
    }                                                                                         \
    static void adaptive_##T(const dkh_kcall *c, bool bwd)                                    \
    {                                                                                         \
        const dk_tensor *x = bwd ? c->in[2] : c->in[0]; /* the tensor read */                 \
        dk_tensor *y = c->out;                                                                \
        const dk_tensor *big = bwd ? y : x, *small = bwd ? x : y;                             \
        int64_t C = x->shape[1], H = big->shape[2], W = big->shape[3];                        \
        int64_t P = small->shape[2], Q = small->shape[3], planes = x->shape[0] * C;           \
        _Pragma("omp parallel for schedule(static) if (planes * H * W >= DKH_CPU_PAR_MIN)")  \
        for (int64_t pl = 0; pl < planes; pl++) {                                             \
            const T *xp = (const T *)dkh_base(x) + (pl / C) * x->strides[0] +                 \
                          (pl % C) * x->strides[1];                                           \
            T *yp = (T *)dkh_base(y) + pl * y->shape[2] * y->shape[3];                        \
            if (bwd)                                                                          \
                memset(yp, 0, (size_t)(H * W) * sizeof(T));                                   \
            for (int64_t oh = 0; oh < P; oh++) {                                              \
                int64_t h0 = oh * H / P, h1 = ((oh + 1) * H + P - 1) / P;                     \
                for (int64_t ow = 0; ow < Q; ow++) {                                          \
                    int64_t w0 = ow * W / Q, w1 = ((ow + 1) * W + Q - 1) / Q;                 \
                    double cnt = (double)((h1 - h0) * (w1 - w0));                             \
                    if (bwd) {                                                                \
                        T v = (T)(xp[oh * x->strides[2] + ow * x->strides[3]] / cnt);         \
                        for (int64_t h = h0; h < h1; h++)                                     \
                            for (int64_t w = w0; w < w1; w++)                                 \
                                yp[h * W + w] += v;                                           \
                    } else {                                                                  \
                        T acc = 0;                                                            \
                        for (int64_t h = h0; h < h1; h++)                                     \
                            for (int64_t w = w0; w < w1; w++)                                 \
                                acc += xp[h * x->strides[2] + w * x->strides[3]];             \
                        yp[oh * Q + ow] = (T)(acc / cnt);                                     \
                    }                                                                         \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    }

POOL_KERNELS(float)
POOL_KERNELS(double)

/* Every kernel here writes a contiguous output (max pooling also a
 * channels-last one, nn_pool_cl.c); inputs may have any strides. */
#define DISPATCH(name, t, ...)                                                                \
    do {                                                                                      \
        if ((t)->dtype == DK_DTYPE_F32)                                                       \
            name##_float(__VA_ARGS__);                                                        \
        else if ((t)->dtype == DK_DTYPE_F64)                                                  \
            name##_double(__VA_ARGS__);                                                       \
        else                                                                                  \
            return false;                                                                     \
        return true;                                                                          \
    } while (0)

bool dkh_cpu_max_pool2d(const dkh_kcall *c)
{
    if ((int64_t)c->in[0]->shape[2] * c->in[0]->shape[3] > INT32_MAX)
        return false;
    if (dkh_is_strictly_channels_last(c->out))
        return dkh_cpu_max_pool2d_cl(c);
    if (!dk_tensor_is_contiguous(c->out) || !dk_tensor_is_contiguous(c->aux[0]))
        return false;
    DISPATCH(maxpool, c->out, c);
}

bool dkh_cpu_max_pool2d_bwd(const dkh_kcall *c)
{
    if (dkh_is_strictly_channels_last(c->out))
        return dkh_cpu_max_pool2d_bwd_cl(c);
    if (!dk_tensor_is_contiguous(c->out))
        return false;
    DISPATCH(maxpool_bwd, c->out, c);
}

bool dkh_cpu_avg_pool2d(const dkh_kcall *c)
{
    DISPATCH(avgpool, c->out, c);
}

bool dkh_cpu_avg_pool2d_bwd(const dkh_kcall *c)
{
    DISPATCH(avgpool_bwd, c->out, c);
}

bool dkh_cpu_adaptive_avg_pool2d(const dkh_kcall *c)
{
    DISPATCH(adaptive, c->out, c, false);
}

bool dkh_cpu_adaptive_avg_pool2d_bwd(const dkh_kcall *c)
{
    DISPATCH(adaptive, c->out, c, true);
}
