/* core/backends/cpu/softmax.c — fast f32/f64 softmax and log_softmax along
 * any dim of a contiguous tensor, forward and backward.
 *
 * The tensor is seen as (outer, n, inner) around the dim. With inner == 1
 * (the logits case) a row is contiguous: max, sum of exponentials and the
 * write are each one vectorised loop over the row. Otherwise (softmax over
 * the channels of an (N, C, H, W) map) the kernel takes BLK positions of the
 * inner dims at a time and runs the dim's loop outside, so the inner loops
 * are contiguous and their per-position max and sum stay in L1.
 *
 * f32 uses the polynomial exp of cpu_math.h; f64 keeps libm. Sums of
 * exponentials and of gradients accumulate in double for both (a row's in
 * pieces of PIECE, see below): an f32 sum of a 2000-long row drifted 1e-5
 * from the reference. Each row or position is summed by one thread in a
 * fixed order, so the result does not depend on the thread count.
 *
 * Backward (in = {x, y, g}, out = gx): softmax gx = y (g - sum(g y)),
 * log_softmax gx = g - e^y sum(g), with the same two loop shapes.
 */
#include "cpu.h"
#include "cpu_math.h"

#include <math.h>

#define BLK 256 /* inner positions per unit */
/* Forward rows shorter than this skip `omp simd`: setting up and folding
 * its 16-lane partial max and sum costs more than a short row's scalar
 * loops (measured on (128, 10) logits). */
#define SHORT 32
/* Long rows sum PIECE elements at a time in the tensor's type, spread over
 * the vector lanes, and add the pieces in double: converting every element
 * to double halved the vector width, while a whole 2000-long row summed in
 * f32 drifted 1e-5 from the reference. */
#define PIECE 128

static inline float exp_float(float v)
{
    return dkh_expf(v);
}

static inline double exp_double(double v)
{
    return exp(v);
}

/* Forward of unit u: a row (inner == 1) or BLK positions of one outer index. */
#define SOFTMAX_FWD(T)                                                                            \
    static void softmax_fwd_##T(bool log_, const T *x, T *y, int64_t n, int64_t inner,            \
                                int64_t i0, int64_t B)                                            \
    {                                                                                              \
        if (inner == 1 && n < SHORT) {                                                             \
            T m = -INFINITY;                                                                       \
            double s = 0;                                                                          \
            for (int64_t k = 0; k < n; k++)                                                        \
                m = x[k] > m ? x[k] : m;                                                           \
            for (int64_t k = 0; k < n; k++)                                                        \
                s += exp_##T(x[k] - m);                                                            \
            T ls = (T)(m + log(s)), inv = (T)(1 / s);                                              \
            for (int64_t k = 0; k < n; k++)                                                        \
                y[k] = log_ ? x[k] - ls : exp_##T(x[k] - m) * inv;                                 \
            return;                                                                                \
        }                                                                                          \
        if (inner == 1) {                                                                          \
            T m = -INFINITY;                                                                       \
            double s = 0;                                                                          \
            _Pragma("omp simd reduction(max : m)") for (int64_t k = 0; k < n; k++)                 \
                m = x[k] > m ? x[k] : m;                                                           \
            /* Pieces of PIECE elements sum in T across the vector lanes,      \
             * and the pieces in double, in a fixed order. */                   \
            for (int64_t k0 = 0; k0 < n; k0 += PIECE) {                                            \
                int64_t k1 = k0 + PIECE < n ? k0 + PIECE : n;                                      \
                T part = 0;                                                                        \
                if (log_) {                                                                        \
                    _Pragma("omp simd reduction(+ : part)") for (int64_t k = k0; k < k1; k++)      \
                        part += exp_##T(x[k] - m);                                                 \
                } else {                                                                           \
                    _Pragma("omp simd reduction(+ : part)") for (int64_t k = k0; k < k1; k++) {    \
                        T e = exp_##T(x[k] - m);                                                   \
                        y[k] = e;                                                                  \
                        part += e;                                                                 \
                    }                                                                              \
                }                                                                                  \
                s += part;                                                                         \
            }                                                                                      \
            if (log_) {                                                                            \
                T ls = (T)(m + log(s));                                                            \
                _Pragma("omp simd") for (int64_t k = 0; k < n; k++) y[k] = x[k] - ls;              \
            } else {                                                                               \
                T inv = (T)(1 / s);                                                                \
                _Pragma("omp simd") for (int64_t k = 0; k < n; k++) y[k] *= inv;                   \
            }                                                                                      \
            return;                                                                                \
        }                                                                                          \
        T mx[BLK], sm[BLK];                                                                        \
        double acc[BLK];                                                                           \
        x += i0;                                                                                   \
        y += i0;                                                                                   \
        for (int64_t s = 0; s < B; s++) {                                                          \
            mx[s] = -INFINITY;                                                                     \
            acc[s] = 0;                                                                            \
        }                                                                                          \
        for (int64_t k = 0; k < n; k++) {                                                          \
            const T *xk = x + k * inner;                                                           \
            _Pragma("omp simd") for (int64_t s = 0; s < B; s++)                                    \
                mx[s] = xk[s] > mx[s] ? xk[s] : mx[s];                                             \
        }                                                                                          \
        for (int64_t k = 0; k < n; k++) {                                                          \
            const T *xk = x + k * inner;                                                           \
            T *yk = y + k * inner;                                                                 \
            _Pragma("omp simd") for (int64_t s = 0; s < B; s++) {                                  \
                T e = exp_##T(xk[s] - mx[s]);                                                      \
                acc[s] += e;                                                                       \
                if (!log_)                                                                         \
                    yk[s] = e;                                                                     \
            }                                                                                      \
        }                                                                                          \
        for (int64_t s = 0; s < B; s++) /* the sum becomes what the write needs */                 \
            sm[s] = (T)(log_ ? mx[s] + log(acc[s]) : 1 / acc[s]);                                  \
        for (int64_t k = 0; k < n; k++) {                                                          \
            const T *xk = x + k * inner;                                                           \
            T *yk = y + k * inner;                                                                 \
            if (log_) {                                                                            \
                _Pragma("omp simd") for (int64_t s = 0; s < B; s++) yk[s] = xk[s] - sm[s];         \
            } else {                                                                               \
                _Pragma("omp simd") for (int64_t s = 0; s < B; s++) yk[s] *= sm[s];                \
            }                                                                                      \
        }                                                                                          \
    }

SOFTMAX_FWD(float)
SOFTMAX_FWD(double)

#define SOFTMAX_BWD(T)                                                                            \
    static void softmax_bwd_##T(bool log_, const T *y, const T *g, T *gx, int64_t n,              \
                                int64_t inner, int64_t i0, int64_t B)                             \
    {                                                                                              \
        if (inner == 1) {                                                                          \
            double acc = 0;                                                                        \
            if (log_) {                                                                            \
                for (int64_t k0 = 0; k0 < n; k0 += PIECE) {                                        \
                    int64_t k1 = k0 + PIECE < n ? k0 + PIECE : n;                                  \
                    T part = 0;                                                                    \
                    _Pragma("omp simd reduction(+ : part)") for (int64_t k = k0; k < k1; k++)      \
                        part += g[k];                                                              \
                    acc += part;                                                                   \
                }                                                                                  \
                T s = (T)acc;                                                                      \
                _Pragma("omp simd") for (int64_t k = 0; k < n; k++)                                \
                    gx[k] = g[k] - exp_##T(y[k]) * s;                                              \
            } else {                                                                               \
                for (int64_t k0 = 0; k0 < n; k0 += PIECE) {                                        \
                    int64_t k1 = k0 + PIECE < n ? k0 + PIECE : n;                                  \
                    T part = 0;                                                                    \
                    _Pragma("omp simd reduction(+ : part)") for (int64_t k = k0; k < k1; k++)      \
                        part += g[k] * y[k];                                                       \
                    acc += part;                                                                   \
                }                                                                                  \
                T s = (T)acc;                                                                      \
                _Pragma("omp simd") for (int64_t k = 0; k < n; k++) gx[k] = y[k] * (g[k] - s);     \
            }                                                                                      \
            return;                                                                                \
        }                                                                                          \
        T sm[BLK];                                                                                 \
        double acc[BLK];                                                                           \
        y += i0;                                                                                   \
        g += i0;                                                                                   \
        gx += i0;                                                                                  \
        for (int64_t s = 0; s < B; s++)                                                            \
            acc[s] = 0;                                                                            \
        for (int64_t k = 0; k < n; k++) {                                                          \
            const T *yk = y + k * inner, *gk = g + k * inner;                                      \
            if (log_) {                                                                            \
                _Pragma("omp simd") for (int64_t s = 0; s < B; s++) acc[s] += gk[s];               \
            } else {                                                                               \
                _Pragma("omp simd") for (int64_t s = 0; s < B; s++) acc[s] += gk[s] * yk[s];       \
            }                                                                                      \
        }                                                                                          \
        for (int64_t s = 0; s < B; s++)                                                            \
            sm[s] = (T)acc[s];                                                                     \
        for (int64_t k = 0; k < n; k++) {                                                          \
            const T *yk = y + k * inner, *gk = g + k * inner;                                      \
            T *ok = gx + k * inner;                                                                \
            if (log_) {                                                                            \
                _Pragma("omp simd") for (int64_t s = 0; s < B; s++)                                \
                    ok[s] = gk[s] - exp_##T(yk[s]) * sm[s];                                        \
            } else {                                                                               \
                _Pragma("omp simd") for (int64_t s = 0; s < B; s++)                                \
                    ok[s] = yk[s] * (gk[s] - sm[s]);                                               \
            }                                                                                      \
        }                                                                                          \
    }

SOFTMAX_BWD(float)
SOFTMAX_BWD(double)

/* The (outer, n, inner) view of t around dim d. */
static void view_of(const dk_tensor *t, int d, int64_t *outer, int64_t *n, int64_t *inner)
{
    *outer = t->ndim ? dkh_numel(d, t->shape) : 1;
    *n = t->ndim ? t->shape[d] : 1;
    *inner = t->ndim ? dkh_numel(t->ndim - d - 1, t->shape + d + 1) : 1;
}

/* Runs fwd (in = {x}) or bwd (in = {x, y, g}) over units: rows when inner ==
 * 1, else (outer index, block of BLK inner positions). */
static bool run(const dkh_kcall *c, bool bwd)
{
    const dk_tensor *x = c->in[0];
    dk_dtype dt = x->dtype;
    if ((dt != DK_DTYPE_F32 && dt != DK_DTYPE_F64) || !dk_tensor_is_contiguous(c->out))
        return false;
    for (int k = bwd ? 1 : 0; k < (bwd ? 3 : 1); k++)
        if (!c->in[k] || c->in[k]->dtype != dt || !dk_tensor_is_contiguous(c->in[k]))
            return false;
    int64_t outer, n, inner;
    view_of(x, (int)c->args->i[0], &outer, &n, &inner);
    int64_t per = inner == 1 ? 1 : (inner + BLK - 1) / BLK, units = outer * per;
    bool log_ = c->op == DKH_OP_LOG_SOFTMAX, f32 = dt == DK_DTYPE_F32;
    const char *a = dkh_base(c->in[bwd ? 1 : 0]), *b = bwd ? dkh_base(c->in[2]) : NULL;
    char *o = dkh_base(c->out);
#pragma omp parallel for schedule(static) if (outer * n * inner >= DKH_CPU_PAR_MIN && units > 1)
    for (int64_t u = 0; u < units; u++) {
        int64_t r = u / per, i0 = inner == 1 ? 0 : (u % per) * BLK;
        int64_t B = inner - i0 < BLK ? inner - i0 : BLK, off = r * n * inner;
        if (f32 && !bwd)
            softmax_fwd_float(log_, (const float *)a + off, (float *)o + off, n, inner, i0, B);
        else if (!bwd)
            softmax_fwd_double(log_, (const double *)a + off, (double *)o + off, n, inner, i0, B);
        else if (f32)
            softmax_bwd_float(log_, (const float *)a + off, (const float *)b + off,
                              (float *)o + off, n, inner, i0, B);
        else
            softmax_bwd_double(log_, (const double *)a + off, (const double *)b + off,
                               (double *)o + off, n, inner, i0, B);
    }
    return true;
}

bool dkh_cpu_softmax(const dkh_kcall *c)
{
    return run(c, false);
}

bool dkh_cpu_softmax_bwd(const dkh_kcall *c)
{
    return run(c, true);
}
