/* core/backends/cpu/nn_layer_norm.c — layer norm and group norm, forward and
 * fused backward, as own OpenMP kernels (f32, f64).
 *
 * Both ops normalise groups of elements that are contiguous runs in the
 * common layouts: a layer-norm row is the last k dims of x, a group-norm
 * group is Cg channels of one sample, each a run of the spatial dims. The
 * kernels need those runs to have unit stride (otherwise they decline and
 * the reference kernel runs); rows and channels may sit at any strides.
 *
 * Sums over one run are OpenMP simd reductions in the element type and runs
 * add up in double. The statistics take two passes over a group (mean, then
 * the squared deviations from it): a group is small enough to stay in cache
 * between them, and the second pass avoids the cancellation of sum(x^2).
 *
 * The backward is one kernel per op giving dx, dweight and dbias. Layer
 * norm's dweight/dbias sum over rows, which are split over threads, so each
 * thread accumulates its own row of partial sums (in double) and they are
 * added at the end; group norm first reduces each (sample, channel) run to
 * two sums, from which dweight, dbias and the per-group coefficients of dx
 * follow without touching x again.
 */
#include "dnnl_cpu.h"

#include <math.h>
#include <omp.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define DKH_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define DKH_CLONES
#endif

/* Whether dims [from, ndim) of t collapse to one run of stride 1; *n gets
 * its length. */
static bool unit_run(const dk_tensor *t, int from, int64_t *n)
{
    int64_t expect = 1;
    for (int d = t->ndim - 1; d >= from; d--) {
        if (t->shape[d] != 1 && t->strides[d] != expect)
            return false;
        expect *= t->shape[d];
    }
    *n = expect;
    return true;
}

static bool fast_dtype(const dkh_kcall *c, int n, const dk_tensor *const *t)
{
    dk_dtype dt = t[0]->dtype;
    if (dt != DK_DTYPE_F32 && dt != DK_DTYPE_F64)
        return false;
    for (int i = 0; i < n; i++)
        if (t[i]->dtype != dt)
            return false;
    return c != NULL;
}

#define LN_KERNELS(T)                                                                         \
    DKH_CLONES static double sum_##T(const T *restrict x, int64_t n)                          \
    {                                                                                         \
        T s = 0;                                                                              \
        _Pragma("omp simd reduction(+ : s)")                                                  \
        for (int64_t i = 0; i < n; i++)                                                       \
            s += x[i];                                                                        \
        return s;                                                                             \
    }                                                                                         \
    DKH_CLONES static double sqdev_##T(const T *restrict x, int64_t n, T m)                   \
    {                                                                                         \
        T s = 0;                                                                              \
        _Pragma("omp simd reduction(+ : s)")                                                  \
        for (int64_t i = 0; i < n; i++)                                                       \
            s += (x[i] - m) * (x[i] - m);                                                     \
        return s;                                                                             \
    }                                                                                         \
    /* y = (x - m) r w + b, elementwise w and b. */                                          \
    DKH_CLONES static void ln_row_##T(T *restrict y, const T *restrict x,                     \
                                      const T *restrict w, const T *restrict b, int64_t n,    \
                                      T m, T r)                                               \
    {                                                                                         \
        for (int64_t i = 0; i < n; i++)                                                       \
            y[i] = (x[i] - m) * r * w[i] + b[i];                                              \
    }                                                                                         \
    /* y = (x - m) s + b over one channel run. */                                            \
    DKH_CLONES static void gn_run_##T(T *restrict y, const T *restrict x, int64_t n, T m, T s, \
                                      T b)                                                    \
    {                                                                                         \
        for (int64_t i = 0; i < n; i++)                                                       \
            y[i] = (x[i] - m) * s + b;                                                        \
    }                                                                                         \
    /* Per row: sh = sum(g w), shx = sum(g w (x - m)); partial dweight and dbias. */        \
    DKH_CLONES static void ln_gsums_##T(const T *restrict g, const T *restrict x,             \
                                        const T *restrict w, int64_t n, T m, T r,             \
                                        double *restrict aw, double *restrict ab, double *sh, \
                                        double *shx)                                          \
    {                                                                                         \
        T p = 0, q = 0;                                                                       \
        _Pragma("omp simd reduction(+ : p, q)")                                               \
        for (int64_t i = 0; i < n; i++) {                                                     \
            T h = g[i] * w[i], d = x[i] - m;                                                  \
            p += h;                                                                           \
            q += h * d;                                                                       \
            aw[i] += (double)(g[i] * d * r);                                                  \
            ab[i] += (double)g[i];                                                            \
        }                                                                                     \
        *sh = p;                                                                              \
        *shx = q;                                                                             \
    }                                                                                         \
    /* gx = g w r - (x - m) u - t. */                                                        \
    DKH_CLONES static void ln_gx_##T(T *restrict gx, const T *restrict g, const T *restrict x, \
                                     const T *restrict w, int64_t n, T m, T r, T u, T t)      \
    {                                                                                         \
        for (int64_t i = 0; i < n; i++)                                                       \
            gx[i] = g[i] * w[i] * r - (x[i] - m) * u - t;                                     \
    }                                                                                         \
    /* sg = sum(g), sgx = sum(g (x - m)) over one run. */                                    \
    DKH_CLONES static void gn_gsums_##T(const T *restrict g, const T *restrict x, int64_t n,  \
                                        T m, double *sg, double *sgx)                         \
    {                                                                                         \
        T p = 0, q = 0;                                                                       \
        _Pragma("omp simd reduction(+ : p, q)")                                               \
        for (int64_t i = 0; i < n; i++) {                                                     \
            p += g[i];                                                                        \
            q += g[i] * (x[i] - m);                                                           \
        }                                                                                     \
        *sg = p;                                                                              \
        *sgx = q;                                                                             \
    }                                                                                         \
    /* gx = g s - (x - m) u - t over one channel run. */                                     \
    DKH_CLONES static void gn_gx_##T(T *restrict gx, const T *restrict g, const T *restrict x, \
                                     int64_t n, T m, T s, T u, T t)                           \
    {                                                                                         \
        for (int64_t i = 0; i < n; i++)                                                       \
            gx[i] = g[i] * s - (x[i] - m) * u - t;                                            \
    }                                                                                         \
                                                                                              \
    static void ln_fwd_##T(const dkh_kcall *c, int no, int64_t M, int64_t D)                  \
    {                                                                                         \
        const dk_tensor *x = c->in[0];                                                        \
        dk_tensor *y = c->out;                                                                \
        const T *w = (const T *)dkh_base(c->in[1]), *b = (const T *)dkh_base(c->in[2]);       \
        T *mu = (T *)dkh_base(c->aux[0]), *rs = (T *)dkh_base(c->aux[1]);                     \
        double eps = c->args->f[0];                                                           \
        _Pragma("omp parallel for schedule(static) if (M * D >= DKH_CPU_PAR_MIN)")            \
        for (int64_t r = 0; r < M; r++) {                                                     \
            const T *xr = (const T *)dkh_base(x) + dkh_offset_of(r, no, x->shape, x->strides); \
            T *yr = (T *)dkh_base(y) + dkh_offset_of(r, no, y->shape, y->strides);            \
            double mean = sum_##T(xr, D) / (double)D;                                         \
            double var = sqdev_##T(xr, D, (T)mean) / (double)D;                               \
            double rstd = 1 / sqrt(var + eps);                                                \
            ln_row_##T(yr, xr, w, b, D, (T)mean, (T)rstd);                                    \
            mu[r] = (T)mean;                                                                  \
            rs[r] = (T)rstd;                                                                  \
        }                                                                                     \
    }                                                                                         \
                                                                                              \
    static bool ln_bwd_##T(const dkh_kcall *c, int no, int64_t M, int64_t D)                  \
    {                                                                                         \
        const dk_tensor *x = c->in[0], *g = c->in[2];                                         \
        const T *w = (const T *)dkh_base(c->in[1]);                                           \
        const T *mu = (const T *)dkh_base(c->in[3]), *rs = (const T *)dkh_base(c->in[4]);     \
        dk_tensor *gx = c->out;                                                               \
        T *gw = (T *)dkh_base(c->aux[0]), *gb = (T *)dkh_base(c->aux[1]);                     \
        bool par = M * D >= DKH_CPU_PAR_MIN;                                                  \
        int nt = par ? omp_get_max_threads() : 1;                                             \
        double *acc = dk_calloc((size_t)nt * 2 * (size_t)D, sizeof *acc);                     \
        if (!acc)                                                                             \
            return false;                                                                     \
        int used = 1;                                                                         \
        _Pragma("omp parallel if (par) num_threads(nt)")                                      \
        {                                                                                     \
            int tid = omp_get_thread_num(), n = omp_get_num_threads();                        \
            _Pragma("omp single")                                                             \
            used = n;                                                                         \
            double *aw = acc + (size_t)tid * 2 * (size_t)D, *ab = aw + D;                     \
            int64_t r0 = M * tid / n, r1 = M * (tid + 1) / n;                                 \
            for (int64_t r = r0; r < r1; r++) {                                               \
                const T *xr = (const T *)dkh_base(x) +                                        \
                              dkh_offset_of(r, no, x->shape, x->strides);                     \
                const T *gr = (const T *)dkh_base(g) +                                        \
                              dkh_offset_of(r, no, g->shape, g->strides);                     \
                T *or_ = (T *)dkh_base(gx) + dkh_offset_of(r, no, gx->shape, gx->strides);    \
                double m = mu[r], rstd = rs[r], sh, shx;                                      \
                ln_gsums_##T(gr, xr, w, D, (T)m, (T)rstd, aw, ab, &sh, &shx);                 \
                /* gx = r (h - sh / D - xhat shx r / D), xhat = (x - m) r. */                \
                ln_gx_##T(or_, gr, xr, w, D, (T)m, (T)rstd,                                   \
                          (T)(rstd * rstd * rstd * shx / (double)D),                          \
                          (T)(rstd * sh / (double)D));                                        \
            }                                                                                 \
        }                                                                                     \
        for (int64_t j = 0; j < D; j++) {                                                     \
            double sw = 0, sb = 0;                                                            \
            for (int k = 0; k < used; k++) {                                                  \
                sw += acc[(size_t)k * 2 * (size_t)D + (size_t)j];                             \
                sb += acc[(size_t)k * 2 * (size_t)D + (size_t)(D + j)];                       \
            }                                                                                 \
            gw[j] = (T)sw;                                                                    \
            gb[j] = (T)sb;                                                                    \
        }                                                                                     \
        dk_free(acc);                                                                         \
        return true;                                                                          \
    }                                                                                         \
                                                                                              \
    static void gn_fwd_##T(const dkh_kcall *c, int64_t J)                                     \
    {                                                                                         \
        const dk_tensor *x = c->in[0], *w = c->in[1], *b = c->in[2];                          \
        dk_tensor *y = c->out;                                                                \
        int64_t N = x->shape[0], C = x->shape[1], G = c->args->i[0], Cg = C / G;              \
        double M = (double)(Cg * J), eps = c->args->f[0];                                     \
        T *mu = (T *)dkh_base(c->aux[0]), *rs = (T *)dkh_base(c->aux[1]);                     \
        const T *wb = (const T *)dkh_base(w), *bb = (const T *)dkh_base(b);                   \
        _Pragma("omp parallel for collapse(2) schedule(static) if (N * C * J >= DKH_CPU_PAR_MIN)") \
        for (int64_t n = 0; n < N; n++)                                                       \
            for (int64_t gi = 0; gi < G; gi++) {                                              \
                const T *xg = (const T *)dkh_base(x) + n * x->strides[0];                     \
                T *yg = (T *)dkh_base(y) + n * y->strides[0];                                 \
                double s = 0, ss = 0;                                                         \
                for (int64_t ch = gi * Cg; ch < (gi + 1) * Cg; ch++)                          \
                    s += sum_##T(xg + ch * x->strides[1], J);                                 \
                double mean = s / M;                                                          \
                for (int64_t ch = gi * Cg; ch < (gi + 1) * Cg; ch++)                          \
                    ss += sqdev_##T(xg + ch * x->strides[1], J, (T)mean);                     \
                double rstd = 1 / sqrt(ss / M + eps);                                         \
                for (int64_t ch = gi * Cg; ch < (gi + 1) * Cg; ch++)                          \
                    gn_run_##T(yg + ch * y->strides[1], xg + ch * x->strides[1], J, (T)mean,  \
                               (T)(rstd * wb[ch * w->strides[0]]), bb[ch * b->strides[0]]);   \
                mu[n * G + gi] = (T)mean;                                                     \
                rs[n * G + gi] = (T)rstd;                                                     \
            }                                                                                 \
    }                                                                                         \
                                                                                              \
    static bool gn_bwd_##T(const dkh_kcall *c, int64_t J)                                     \
    {                                                                                         \
        const dk_tensor *x = c->in[0], *w = c->in[1], *g = c->in[2];                          \
        const dk_tensor *mt = c->in[3], *rt = c->in[4];                                       \
        dk_tensor *gx = c->out, *gw = c->aux[0], *gb = c->aux[1];                             \
        int64_t N = x->shape[0], C = x->shape[1], G = c->args->i[0], Cg = C / G;              \
        double M = (double)(Cg * J);                                                          \
        const T *wb = (const T *)dkh_base(w);                                                 \
        const T *mb = (const T *)dkh_base(mt), *rb = (const T *)dkh_base(rt);                 \
        /* sg, sgx per (n, c); then A = sum w sg and B = sum w sgx per (n, g). */            \
        double *sg = dk_malloc(sizeof(double) * (size_t)(2 * N * C + 2 * N * G));             \
        if (!sg)                                                                              \
            return false;                                                                     \
        double *sgx = sg + N * C, *A = sgx + N * C, *B = A + N * G;                           \
        bool par = N * C * J >= DKH_CPU_PAR_MIN;                                              \
        _Pragma("omp parallel for collapse(2) schedule(static) if (par)")                     \
        for (int64_t n = 0; n < N; n++)                                                       \
            for (int64_t ch = 0; ch < C; ch++) {                                              \
                int64_t ng = n * mt->strides[0] + (ch / Cg) * mt->strides[1];                 \
                gn_gsums_##T((const T *)dkh_base(g) + n * g->strides[0] + ch * g->strides[1], \
                             (const T *)dkh_base(x) + n * x->strides[0] + ch * x->strides[1], \
                             J, mb[ng], &sg[n * C + ch], &sgx[n * C + ch]);                   \
            }                                                                                 \
        for (int64_t ch = 0; ch < C; ch++) {                                                  \
            double dw = 0, db = 0;                                                            \
            for (int64_t n = 0; n < N; n++) {                                                 \
                double r = rb[n * rt->strides[0] + (ch / Cg) * rt->strides[1]];               \
                dw += sgx[n * C + ch] * r;                                                    \
                db += sg[n * C + ch];                                                         \
            }                                                                                 \
            ((T *)dkh_base(gw))[ch * gw->strides[0]] = (T)dw;                                 \
            ((T *)dkh_base(gb))[ch * gb->strides[0]] = (T)db;                                 \
        }                                                                                     \
        for (int64_t n = 0; n < N; n++)                                                       \
            for (int64_t gi = 0; gi < G; gi++) {                                              \
                double a = 0, bsum = 0;                                                       \
                for (int64_t ch = gi * Cg; ch < (gi + 1) * Cg; ch++) {                        \
                    double wc = wb[ch * w->strides[0]];                                       \
                    a += wc * sg[n * C + ch];                                                 \
                    bsum += wc * sgx[n * C + ch];                                             \
                }                                                                             \
                A[n * G + gi] = a;                                                            \
                B[n * G + gi] = bsum;                                                         \
            }                                                                                 \
        _Pragma("omp parallel for collapse(2) schedule(static) if (par)")                     \
        for (int64_t n = 0; n < N; n++)                                                       \
            for (int64_t ch = 0; ch < C; ch++) {                                              \
                int64_t gi = ch / Cg, ng = n * mt->strides[0] + gi * mt->strides[1];          \
                double m = mb[ng], r = rb[n * rt->strides[0] + gi * rt->strides[1]];          \
                double s = r * wb[ch * w->strides[0]];                                        \
                gn_gx_##T((T *)dkh_base(gx) + n * gx->strides[0] + ch * gx->strides[1],       \
                          (const T *)dkh_base(g) + n * g->strides[0] + ch * g->strides[1],    \
                          (const T *)dkh_base(x) + n * x->strides[0] + ch * x->strides[1], J,  \
                          (T)m, (T)s, (T)(r * r * r * B[n * G + gi] / M),                     \
                          (T)(r * A[n * G + gi] / M));                                        \
            }                                                                                 \
        dk_free(sg);                                                                          \
        return true;                                                                          \
    }

LN_KERNELS(float)
LN_KERNELS(double)

/* ---- layer_norm ------------------------------------------------------------------------- */

/* The row length D when x-like tensors t[0..n) all have their last k dims
 * as one unit-stride run and w (and b, when given) are contiguous; else false. */
static bool ln_layout(const dkh_kcall *c, int n, const dk_tensor *const *t, const dk_tensor *w,
                      const dk_tensor *b, int64_t *D)
{
    int k = (int)c->args->i[0];
    int64_t d = 0, e;
    for (int i = 0; i < n; i++)
        if (!unit_run(t[i], t[i]->ndim - k, &d))
            return false;
    if (!unit_run(w, 0, &e) || (b && !unit_run(b, 0, &e)))
        return false;
    *D = d;
    return d > 0;
}

bool dkh_cpu_layer_norm(const dkh_kcall *c)
{
    const dk_tensor *t[5] = {c->in[0], c->out, c->in[1], c->in[2], c->aux[0]};
    int64_t D;
    if (!fast_dtype(c, 5, t) || !ln_layout(c, 2, t, c->in[1], c->in[2], &D))
        return false;
    int no = c->in[0]->ndim - (int)c->args->i[0];
    int64_t M = dkh_numel(no, c->in[0]->shape);
    if (c->out->dtype == DK_DTYPE_F32)
        ln_fwd_float(c, no, M, D);
    else
        ln_fwd_double(c, no, M, D);
    return true;
}

bool dkh_cpu_layer_norm_bwd(const dkh_kcall *c)
{
    /* in = {x, w, gy, mean, rstd}: w sits where the forward's b was checked. */
    const dk_tensor *t[4] = {c->in[0], c->in[2], c->out, c->in[1]};
    int64_t D;
    if (!fast_dtype(c, 4, t) || !ln_layout(c, 3, t, c->in[1], NULL, &D))
        return false;
    int no = c->in[0]->ndim - (int)c->args->i[0];
    int64_t M = dkh_numel(no, c->in[0]->shape);
    if (c->out->dtype == DK_DTYPE_F32)
        return ln_bwd_float(c, no, M, D);
    return ln_bwd_double(c, no, M, D);
}

/* ---- group_norm ------------------------------------------------------------------------- */

static bool gn_layout(int n, const dk_tensor *const *t, int64_t *J)
{
    for (int i = 0; i < n; i++)
        if (!unit_run(t[i], 2, J))
            return false;
    return true;
}

bool dkh_cpu_group_norm(const dkh_kcall *c)
{
    const dk_tensor *t[5] = {c->in[0], c->out, c->in[1], c->in[2], c->aux[0]};
    int64_t J;
    if (!fast_dtype(c, 5, t) || !gn_layout(2, t, &J))
        return false;
    if (c->out->dtype == DK_DTYPE_F32)
        gn_fwd_float(c, J);
    else
        gn_fwd_double(c, J);
    return true;
}

bool dkh_cpu_group_norm_bwd(const dkh_kcall *c)
{
    const dk_tensor *t[4] = {c->in[0], c->in[2], c->out, c->in[1]};
    int64_t J;
    if (!fast_dtype(c, 4, t) || !gn_layout(3, t, &J))
        return false;
    if (c->out->dtype == DK_DTYPE_F32)
        return gn_bwd_float(c, J);
    return gn_bwd_double(c, J);
}
