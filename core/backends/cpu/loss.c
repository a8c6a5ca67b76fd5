/* core/backends/cpu/loss.c — fast cross_entropy and nll_loss, forward and
 * backward, for f32/f64 scores laid out contiguously as (N, C, S) (S = the
 * product of the dims after the class dim; 1 for plain (N, C) logits) with a
 * contiguous i64 target. Other layouts decline to the reference kernel.
 *
 * Two loop shapes, so the inner loop always runs over contiguous memory and
 * vectorises: plain logits (S == 1) go row by row with the class loop
 * innermost; spatial scores (segmentation, S > 1) go in blocks of BLK
 * positions with the class loop outside and the positions inside. f32 uses
 * the polynomial exp of cpu_math.h and sums in f32 lanes (as PyTorch does);
 * f64 keeps libm.
 *
 * Work is cut into units (a block of rows or of positions) whose bounds do
 * not depend on the thread count; each unit's loss sum and weight sum go to
 * its own slot and one thread adds the slots in order, so the result is the
 * same on any number of threads (what dk_deterministic() asks for).
 */
#include "../../tensor/op_index_impl.h"
#include "cpu_index.h"
#include "cpu_math.h"

#include <math.h>
#include <string.h>

/* Positions per unit of the spatial loop: its scratch (a few arrays of BLK)
 * stays in L1 while the class loop streams over the scores. */
#define BLK 512
/* Rows per unit of the plain-logits loop. */
#define ROWS 16
/* Rows with fewer classes skip `omp simd`: setting up and folding its 16-lane
 * partial max and sum costs more than a short row's scalar loops. */
#define SHORT 32

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

static inline double wt(const ce_geom *g, int64_t k)
{
    return g->w ? g->w[k] : 1.0;
}

static inline float exp_float(float v)
{
    return dkh_expf(v);
}

static inline double exp_double(double v)
{
    return exp(v);
}

/* The units of a call: blocks of ROWS rows (S == 1) or of BLK positions of
 * one sample (S > 1). Unit u covers positions [*p0, *p1) of the flattened
 * (N, S) target. */
static int64_t n_units(const ce_geom *g)
{
    if (g->S == 1)
        return (g->N + ROWS - 1) / ROWS;
    return g->N * ((g->S + BLK - 1) / BLK);
}

static void unit_range(const ce_geom *g, int64_t u, int64_t *p0, int64_t *p1)
{
    if (g->S == 1) {
        *p0 = u * ROWS;
        *p1 = *p0 + ROWS < g->N ? *p0 + ROWS : g->N;
        return;
    }
    int64_t per = (g->S + BLK - 1) / BLK, n = u / per, s0 = (u % per) * BLK;
    *p0 = n * g->S + s0;
    *p1 = n * g->S + (s0 + BLK < g->S ? s0 + BLK : g->S);
}

/* The loss of one position from its score at the target, its log-sum-exp and
 * (smoothing) the weighted sum of its scores. */
static inline double pos_loss(const ce_geom *g, int64_t k, double xk, double lse, double wx)
{
    if (k == g->ignore)
        return 0;
    double v = -(1 - g->eps) * wt(g, k) * (xk - lse);
    if (g->eps > 0) /* -sum_j w_j (x_j - lse) */
        v += g->eps / (double)g->C * -(wx - g->wsum * lse);
    return v;
}

/* Forward of positions [p0, p1) of one unit: writes lse (cross_entropy) and,
 * when loss is not NULL, each position's loss; returns the loss sum. */
#define CE_FWD(T)                                                                                 \
    static double ce_fwd_##T(const ce_geom *g, const T *x, const int64_t *t, int64_t p0,         \
                             int64_t p1, T *lse, T *loss)                                         \
    {                                                                                              \
        int64_t C = g->C, S = g->S;                                                                \
        double total = 0;                                                                          \
        if (S == 1) {                                                                              \
            for (int64_t n = p0; n < p1; n++) {                                                    \
                const T *xr = x + n * C;                                                           \
                double l = 0, wx = 0;                                                              \
                if (g->ce && C < SHORT) {                                                          \
                    T m = -INFINITY, s = 0;                                                        \
                    for (int64_t k = 0; k < C; k++)                                                \
                        m = xr[k] > m ? xr[k] : m;                                                 \
                    for (int64_t k = 0; k < C; k++)                                                \
                        s += exp_##T(xr[k] - m);                                                   \
                    l = (double)m + log((double)s);                                                \
                    lse[n] = (T)l;                                                                 \
                } else if (g->ce) {                                                                \
                    T m = -INFINITY, s = 0;                                                        \
                    _Pragma("omp simd reduction(max : m)") for (int64_t k = 0; k < C; k++)         \
                        m = xr[k] > m ? xr[k] : m;                                                 \
                    _Pragma("omp simd reduction(+ : s)") for (int64_t k = 0; k < C; k++)           \
                        s += exp_##T(xr[k] - m);                                                   \
                    l = (double)m + log((double)s);                                                \
                    lse[n] = (T)l;                                                                 \
                }                                                                                  \
                if (g->eps > 0)                                                                    \
                    for (int64_t k = 0; k < C; k++)                                                \
                        wx += wt(g, k) * (double)xr[k];                                            \
                int64_t k = t[n];                                                                  \
                double v = pos_loss(g, k, k == g->ignore ? 0 : (double)xr[k], l, wx);              \
                if (loss)                                                                          \
                    loss[n] = (T)v;                                                                \
                total += v;                                                                        \
            }                                                                                      \
            return total;                                                                          \
        }                                                                                          \
        int64_t n = p0 / S, s0 = p0 % S, B = p1 - p0;                                              \
        const T *xb = x + n * C * S + s0;                                                          \
        T mx[BLK], sm[BLK];                                                                        \
        double wx[BLK];                                                                            \
        if (g->ce) {                                                                               \
            for (int64_t s = 0; s < B; s++) {                                                      \
                mx[s] = -INFINITY;                                                                 \
                sm[s] = 0;                                                                         \
            }                                                                                      \
            for (int64_t k = 0; k < C; k++) {                                                      \
                const T *xk = xb + k * S;                                                          \
                _Pragma("omp simd") for (int64_t s = 0; s < B; s++)                                \
                    mx[s] = xk[s] > mx[s] ? xk[s] : mx[s];                                         \
            }                                                                                      \
            for (int64_t k = 0; k < C; k++) {                                                      \
                const T *xk = xb + k * S;                                                          \
                _Pragma("omp simd") for (int64_t s = 0; s < B; s++)                                \
                    sm[s] += exp_##T(xk[s] - mx[s]);                                               \
            }                                                                                      \
        }                                                                                          \
        if (g->eps > 0) {                                                                          \
            for (int64_t s = 0; s < B; s++)                                                        \
                wx[s] = 0;                                                                         \
            for (int64_t k = 0; k < C; k++) {                                                      \
                const T *xk = xb + k * S;                                                          \
                double wk = wt(g, k);                                                              \
                for (int64_t s = 0; s < B; s++)                                                    \
                    wx[s] += wk * (double)xk[s];                                                   \
            }                                                                                      \
        }                                                                                          \
        for (int64_t s = 0; s < B; s++) {                                                          \
            double l = 0;                                                                          \
            if (g->ce) {                                                                           \
                l = (double)mx[s] + log((double)sm[s]);                                            \
                lse[p0 + s] = (T)l;                                                                \
            }                                                                                      \
            int64_t k = t[p0 + s];                                                                 \
            double v = pos_loss(g, k, k == g->ignore ? 0 : (double)xb[k * S + s], l,              \
                                g->eps > 0 ? wx[s] : 0);                                           \
            if (loss)                                                                              \
                loss[p0 + s] = (T)v;                                                               \
            total += v;                                                                            \
        }                                                                                          \
        return total;                                                                              \
    }

CE_FWD(float)
CE_FWD(double)

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
    int64_t U = n_units(&g), P = g.N * g.S;
    double *part = dk_malloc((size_t)(U + 1) * sizeof *part); /* each unit's loss sum */
    if (!part) {
        dk_free(wbuf);
        return false;
    }
    const int64_t *tg = (const int64_t *)dkh_base(t);
    const char *xb = dkh_base(x);
    bool none = c->args->i[0] == DK_REDUCTION_NONE;
    char *lse = g.ce ? dkh_base(c->aux[1]) : NULL;
    char *loss = none ? dkh_base(c->out) : NULL;
    bool f32 = x->dtype == DK_DTYPE_F32;
#pragma omp parallel for schedule(static) if (P * g.C >= DKH_CPU_PAR_MIN && U > 1)
    for (int64_t u = 0; u < U; u++) {
        int64_t p0, p1;
        unit_range(&g, u, &p0, &p1);
        part[u] = f32 ? ce_fwd_float(&g, (const float *)xb, tg, p0, p1, (float *)lse, (float *)loss)
                      : ce_fwd_double(&g, (const double *)xb, tg, p0, p1, (double *)lse,
                                      (double *)loss);
    }
    double total = 0, denom = 0;
    for (int64_t u = 0; u < U; u++)
        total += part[u];
    if (g.w) {
        for (int64_t p = 0; p < P; p++)
            denom += tg[p] != g.ignore ? g.w[tg[p]] : 0;
    } else {
        int64_t cnt = 0;
        for (int64_t p = 0; p < P; p++)
            cnt += tg[p] != g.ignore;
        denom = (double)cnt;
    }
    dkh_store(dkh_base(c->aux[0]), c->aux[0]->dtype, 0, denom);
    if (!none)
        dkh_store(dkh_base(c->out), c->out->dtype, 0,
                  c->args->i[0] == DK_REDUCTION_MEAN ? total / denom : total);
    dk_free(part);
    dk_free(wbuf);
    return true;
}

/* Backward of positions [p0, p1). gp[p] is the incoming gradient of position
 * p (already divided by the mean's denominator; 0 where ignored). With
 * p = e^(x - lse): gx = gp (1 - eps) w[y] (p - [k == y]) + gp eps / C
 * (wsum p - w[k]), computed as a p - b w[k] - [k == y] c. */
#define CE_BWD(T)                                                                                 \
    static void ce_bwd_##T(const ce_geom *g, const T *x, const int64_t *t, const T *lse,         \
                           const T *gp, int64_t p0, int64_t p1, T *gx)                           \
    {                                                                                              \
        int64_t C = g->C, S = g->S;                                                                \
        double sc = g->eps / (double)C;                                                            \
        if (S == 1) {                                                                              \
            for (int64_t n = p0; n < p1; n++) {                                                    \
                const T *xr = x + n * C;                                                           \
                T *gr = gx + n * C;                                                                \
                int64_t y = t[n];                                                                  \
                if (y == g->ignore) {                                                \
                    memset(gr, 0, (size_t)C * sizeof(T));                                          \
                    continue;                                                                      \
                }                                                                                  \
                double wy = (1 - g->eps) * wt(g, y) * (double)gp[n];                               \
                if (!g->ce) {                                                                      \
                    memset(gr, 0, (size_t)C * sizeof(T));                                          \
                    gr[y] = (T)-wy;                                                                \
                    continue;                                                                      \
                }                                                                                  \
                T a = (T)(wy + sc * g->wsum * (double)gp[n]), b = (T)(sc * (double)gp[n]);         \
                T l = lse[n];                                                                      \
                if (g->w && g->eps > 0) {                                                          \
                    const double *w = g->w;                                                        \
                    _Pragma("omp simd") for (int64_t k = 0; k < C; k++)                            \
                        gr[k] = a * exp_##T(xr[k] - l) - b * (T)w[k];                              \
                } else {                                                                           \
                    _Pragma("omp simd") for (int64_t k = 0; k < C; k++)                            \
                        gr[k] = a * exp_##T(xr[k] - l) - b;                                        \
                }                                                                                  \
                gr[y] = (T)((double)gr[y] - wy);                                                   \
            }                                                                                      \
            return;                                                                                \
        }                                                                                          \
        int64_t n = p0 / S, s0 = p0 % S, B = p1 - p0;                                              \
        const T *xb = x + n * C * S + s0;                                                          \
        T *gb = gx + n * C * S + s0;                                                               \
        T ca[BLK], cb[BLK], cc[BLK];                                                               \
        for (int64_t s = 0; s < B; s++) {                                                          \
            int64_t y = t[p0 + s];                                                                 \
            double gs = y == g->ignore ? 0 : (double)gp[p0 + s];                                   \
            double wy = y == g->ignore ? 0 : (1 - g->eps) * wt(g, y) * gs;                         \
            ca[s] = (T)(wy + sc * g->wsum * gs);                                                   \
            cb[s] = (T)(sc * gs);                                                                  \
            cc[s] = (T)wy;                                                                         \
        }                                                                                          \
        const int64_t *tb = t + p0;                                                                \
        for (int64_t k = 0; k < C; k++) {                                                          \
            const T *xk = xb + k * S;                                                              \
            T *gk = gb + k * S;                                                                    \
            if (g->ce) {                                                                           \
                const T *lb = lse + p0;                                                            \
                T wk = (T)wt(g, k);                                                                \
                _Pragma("omp simd") for (int64_t s = 0; s < B; s++)                                \
                    gk[s] = ca[s] * exp_##T(xk[s] - lb[s]) - cb[s] * wk -                          \
                            (tb[s] == k ? cc[s] : (T)0);                                           \
            } else {                                                                               \
                _Pragma("omp simd") for (int64_t s = 0; s < B; s++)                                \
                    gk[s] = tb[s] == k ? -cc[s] : (T)0;                                            \
            }                                                                                      \
        }                                                                                          \
    }

CE_BWD(float)
CE_BWD(double)

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
    int64_t P = g.N * g.S, U = n_units(&g);
    size_t es = dk_dtype_size(x->dtype);
    char *gp = dk_malloc((size_t)(P + 1) * es);
    if (!gp) {
        dk_free(wbuf);
        return false;
    }
    double denom = dkh_load(dkh_base(c->in[4]), c->in[4]->dtype, 0);
    bool none = c->args->i[0] == DK_REDUCTION_NONE;
    bool f32 = x->dtype == DK_DTYPE_F32;
    double g0 = none ? 0 : dkh_load(dkh_base(gt), gt->dtype, 0);
    if (c->args->i[0] == DK_REDUCTION_MEAN)
        g0 /= denom;
    bool gt_flat = none && dk_tensor_is_contiguous(gt);
    for (int64_t p = 0; p < P; p++) {
        double v = !none  ? g0
                   : gt_flat ? dkh_load(dkh_base(gt), gt->dtype, p)
                             : dkh_load(dkh_base(gt), gt->dtype,
                                        dkh_offset_of(p, gt->ndim, gt->shape, gt->strides));
        if (f32)
            ((float *)gp)[p] = (float)v;
        else
            ((double *)gp)[p] = v;
    }
    const int64_t *tg = (const int64_t *)dkh_base(t);
#pragma omp parallel for schedule(static) if (P * g.C >= DKH_CPU_PAR_MIN && U > 1)
    for (int64_t u = 0; u < U; u++) {
        int64_t p0, p1;
        unit_range(&g, u, &p0, &p1);
        if (f32)
            ce_bwd_float(&g, (const float *)dkh_base(x), tg,
                         lse ? (const float *)dkh_base(lse) : NULL, (const float *)gp, p0, p1,
                         (float *)dkh_base(c->out));
        else
            ce_bwd_double(&g, (const double *)dkh_base(x), tg,
                          lse ? (const double *)dkh_base(lse) : NULL, (const double *)gp, p0, p1,
                          (double *)dkh_base(c->out));
    }
    dk_free(gp);
    dk_free(wbuf);
    return true;
}
