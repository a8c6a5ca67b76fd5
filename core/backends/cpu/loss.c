/* core/backends/cpu/loss.c — fast cross_entropy and nll_loss, forward and
 * backward, for f32/f64 scores laid out contiguously as (N, C, S) (S = the
 * product of the dims after the class dim; 1 for plain (N, C) logits) with a
 * contiguous target. Other layouts decline to the reference kernel.
 *
 * Positions are split across threads by sample. Each position's loss goes to
 * a buffer that one thread then sums in order, so the result does not depend
 * on the thread count. For S > 1 the class loop is outside the spatial loop,
 * so the inner loops run over contiguous memory.
 */
#include "../../tensor/op_index_impl.h"
#include "cpu_index.h"

#include <math.h>
#include <stdlib.h>

typedef struct ce_geom {
    int64_t N, C, S;
    bool ce;       /* cross_entropy (else nll_loss: x holds log-probabilities) */
    double eps;    /* label smoothing */
    int64_t ignore;
    const double *w; /* class weights as double, NULL for none */
    double wsum;
} ce_geom;

static bool geom_of(const dkh_kcall *c, const dk_tensor *t, ce_geom *g, double *wbuf)
{
    const dk_tensor *x = c->in[0];
    if ((x->dtype != DK_DTYPE_F32 && x->dtype != DK_DTYPE_F64) || !dk_tensor_is_contiguous(x) ||
        t->dtype != DK_DTYPE_I64 || !dk_tensor_is_contiguous(t))
        return false;
    int cd = x->ndim >= 2 ? 1 : 0;
    g->N = cd ? x->shape[0] : 1;
    g->C = x->shape[cd];
    g->S = dkh_numel(x->ndim - cd - 1, x->shape + cd + 1);
    g->ce = c->op == DKH_OP_CROSS_ENTROPY;
    g->eps = g->ce ? c->args->f[0] : 0;
    g->ignore = c->args->i[1];
    g->w = NULL;
    g->wsum = (double)g->C;
    if (c->args->i[2]) {
        const dk_tensor *w = c->in[2];
        g->wsum = 0;
        for (int64_t k = 0; k < g->C; k++) {
            wbuf[k] = dkh_load(dkh_base(w), w->dtype, k * w->strides[0]);
            g->wsum += wbuf[k];
        }
        g->w = wbuf;
    }
    return true;
}

/* e^x in single precision as a polynomial (Cephes' expf: range reduction by
 * ln 2, degree-6 polynomial, scale by 2^n through the exponent bits; about
 * 2e-7 relative error). Unlike libm's expf the compiler can vectorise it,
 * which is most of the f32 kernel's time. */
static inline float fast_expf(float x)
{
    x = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;
    float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float z = r * r;
    float y = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r +
                4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f;
    y = y * z + r + 1.0f;
    union { int32_t i; float f; } u = {.i = ((int32_t)n + 127) << 23};
    return y * u.f;
}

static inline double wt(const ce_geom *g, int64_t k)
{
    return g->w ? g->w[k] : 1.0;
}

/* Forward over sample n: loss[s] and lse[s] for its S positions, with mx and
 * sm as scratch of S doubles each. */
#define CE_FWD(T, EXP, LOG)                                                                       \
    static void ce_fwd_##T(const ce_geom *g, const T *x, const int64_t *t, double *loss,         \
                           double *lse, double *mx, double *sm)                                   \
    {                                                                                              \
        int64_t C = g->C, S = g->S;                                                                \
        if (g->ce && S == 1) { /* plain logits: one contiguous row */                              \
            T m = C ? x[0] : (T)-INFINITY;                                                         \
            for (int64_t k = 1; k < C; k++)                                                        \
                m = x[k] > m || isnan(x[k]) ? x[k] : m;                                            \
            double acc = 0;                                                                        \
            for (int64_t k = 0; k < C; k++)                                                        \
                acc += EXP((T)(x[k] - m));                                                         \
            mx[0] = (double)m;                                                                     \
            sm[0] = acc;                                                                           \
            lse[0] = mx[0] + LOG(sm[0]);                                                           \
        } else if (g->ce) {                                                                        \
            for (int64_t s = 0; s < S; s++) {                                                      \
                mx[s] = -INFINITY;                                                                 \
                sm[s] = 0;                                                                         \
            }                                                                                      \
            for (int64_t k = 0; k < C; k++)                                                        \
                for (int64_t s = 0; s < S; s++)                                                    \
                    mx[s] = (double)x[k * S + s] > mx[s] ? (double)x[k * S + s] : mx[s];           \
            for (int64_t k = 0; k < C; k++)                                                        \
                for (int64_t s = 0; s < S; s++)                                                    \
                    sm[s] += EXP((T)(x[k * S + s] - (T)mx[s]));                                    \
            for (int64_t s = 0; s < S; s++)                                                        \
                lse[s] = mx[s] + LOG(sm[s]);                                                       \
        }                                                                                          \
        for (int64_t s = 0; s < S; s++) {                                                          \
            int64_t k = t[s];                                                                      \
            double l = g->ce ? lse[s] : 0, v = 0;                                                  \
            if (k != g->ignore) {                                                                  \
                v = -(1 - g->eps) * wt(g, k) * ((double)x[k * S + s] - l);                         \
                if (g->eps > 0) {                                                                  \
                    double smooth = 0;                                                             \
                    for (int64_t j = 0; j < C; j++)                                                \
                        smooth -= wt(g, j) * ((double)x[j * S + s] - l);                           \
                    v += g->eps / (double)C * smooth;                                              \
                }                                                                                  \
            }                                                                                      \
            loss[s] = v;                                                                           \
        }                                                                                          \
    }

CE_FWD(float, fast_expf, log)
CE_FWD(double, exp, log)

bool dkh_cpu_cross_entropy(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0], *t = c->in[1];
    double *wbuf = c->args->i[2] ? dk_malloc((size_t)(x->shape[x->ndim >= 2] + 1) * sizeof *wbuf)
                                 : NULL;
    ce_geom g;
    if ((c->args->i[2] && !wbuf) || !geom_of(c, t, &g, wbuf)) {
        dk_free(wbuf);
        return false;
    }
    int64_t P = g.N * g.S;
    /* loss, lse (when the aux is not there to hold it), max, sum: 4 per position. */
    double *buf = dk_malloc((size_t)(4 * P + 1) * sizeof *buf);
    if (!buf) {
        dk_free(wbuf);
        return false;
    }
    double *loss = buf, *lse = buf + P, *mx = buf + 2 * P, *sm = buf + 3 * P;
    const int64_t *tg = (const int64_t *)dkh_base(t);
    const char *xb = dkh_base(x);
    bool f32 = x->dtype == DK_DTYPE_F32;
#pragma omp parallel for schedule(static) if (P * g.C >= DKH_CPU_PAR_MIN && g.N > 1)
    for (int64_t n = 0; n < g.N; n++) {
        int64_t o = n * g.S, xo = n * g.C * g.S;
        if (f32)
            ce_fwd_float(&g, (const float *)xb + xo, tg + o, loss + o, lse + o, mx + o, sm + o);
        else
            ce_fwd_double(&g, (const double *)xb + xo, tg + o, loss + o, lse + o, mx + o, sm + o);
    }
    double total = 0, denom = 0;
    bool none = c->args->i[0] == DK_REDUCTION_NONE;
    for (int64_t p = 0; p < P; p++) {
        int64_t k = tg[p];
        if (k != g.ignore)
            denom += wt(&g, k);
        total += loss[p];
        if (none)
            dkh_store(dkh_base(c->out), c->out->dtype, p, loss[p]);
        if (g.ce)
            dkh_store(dkh_base(c->aux[1]), c->aux[1]->dtype, p, lse[p]);
    }
    dkh_store(dkh_base(c->aux[0]), c->aux[0]->dtype, 0, denom);
    if (!none)
        dkh_store(dkh_base(c->out), c->out->dtype, 0,
                  c->args->i[0] == DK_REDUCTION_MEAN ? total / denom : total);
    dk_free(buf);
    dk_free(wbuf);
    return true;
}

/* Backward over sample n. gp[s] is the incoming gradient per position
 * (already divided by the mean's denominator). */
#define CE_BWD(T, EXP)                                                                            \
    static void ce_bwd_##T(const ce_geom *g, const T *x, const int64_t *t, const T *lse,         \
                           const double *gp, T *gx)                                               \
    {                                                                                              \
        int64_t C = g->C, S = g->S;                                                                \
        for (int64_t k = 0; k < C; k++) {                                                          \
            double wk = wt(g, k);                                                                  \
            for (int64_t s = 0; s < S; s++) {                                                      \
                int64_t y = t[s];                                                                  \
                double v = 0;                                                                      \
                if (y != g->ignore) {                                                              \
                    if (g->ce) {                                                                   \
                        double p = EXP((T)(x[k * S + s] - lse[s]));                                \
                        v = (1 - g->eps) * wt(g, y) * (p - (k == y)) +                             \
                            g->eps / (double)C * (g->wsum * p - wk);                               \
                    } else {                                                                       \
                        v = k == y ? -wk : 0;                                                      \
                    }                                                                              \
                }                                                                                  \
                gx[k * S + s] = (T)(gp[s] * v);                                                    \
            }                                                                                      \
        }                                                                                          \
    }

CE_BWD(float, fast_expf)
CE_BWD(double, exp)

/* in = {x, target, weight, g, denom, lse (cross_entropy)}; out = gx. */
bool dkh_cpu_cross_entropy_bwd(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0], *t = c->in[1], *gt = c->in[3];
    const dk_tensor *lse = c->op == DKH_OP_CROSS_ENTROPY ? c->in[5] : NULL;
    if (lse && !dk_tensor_is_contiguous(lse))
        return false;
    double *wbuf = c->args->i[2] ? dk_malloc((size_t)(x->shape[x->ndim >= 2] + 1) * sizeof *wbuf)
                                 : NULL;
    ce_geom g;
    if ((c->args->i[2] && !wbuf) || !geom_of(c, t, &g, wbuf) || !dk_tensor_is_contiguous(c->out)) {
        dk_free(wbuf);
        return false;
    }
    int64_t P = g.N * g.S;
    double *gp = dk_malloc((size_t)(P + 1) * sizeof *gp);
    if (!gp) {
        dk_free(wbuf);
        return false;
    }
    double denom = dkh_load(dkh_base(c->in[4]), c->in[4]->dtype, 0);
    bool none = c->args->i[0] == DK_REDUCTION_NONE;
    double g0 = none ? 0 : dkh_load(dkh_base(gt), gt->dtype, 0);
    for (int64_t p = 0; p < P; p++) {
        double v = none ? dkh_load(dkh_base(gt), gt->dtype,
                                   dkh_offset_of(p, gt->ndim, gt->shape, gt->strides))
                        : g0;
        gp[p] = c->args->i[0] == DK_REDUCTION_MEAN ? v / denom : v;
    }
    const int64_t *tg = (const int64_t *)dkh_base(t);
    bool f32 = x->dtype == DK_DTYPE_F32;
#pragma omp parallel for schedule(static) if (P * g.C >= DKH_CPU_PAR_MIN && g.N > 1)
    for (int64_t n = 0; n < g.N; n++) {
        int64_t o = n * g.S, xo = n * g.C * g.S;
        if (f32)
            ce_bwd_float(&g, (const float *)dkh_base(x) + xo, tg + o,
                         lse ? (const float *)dkh_base(lse) + o : NULL, gp + o,
                         (float *)dkh_base(c->out) + xo);
        else
            ce_bwd_double(&g, (const double *)dkh_base(x) + xo, tg + o,
                          lse ? (const double *)dkh_base(lse) + o : NULL, gp + o,
                          (double *)dkh_base(c->out) + xo);
    }
    dk_free(gp);
    dk_free(wbuf);
    return true;
}
