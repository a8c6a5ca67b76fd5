/* core/tensor/op_norm_sync.c — synchronised batch norm (bn_sync.h): the
 * training forward and backward of a layer whose statistics are taken over
 * every process of a data-parallel run (docs/distributed.md, "SyncBN").
 *
 * It does not run the op's kernels (a fast backend kernel computes local
 * statistics only): it has its own loops, with sums in double, fast for f32
 * in plain NCHW and channels-last and per channel in double otherwise,
 * records a node of the batch_norm op marked by i[0] = 1, and that node's
 * backward sums its two per-channel terms over the processes before it forms
 * the input gradient. The ordinary op is in op_norm.c.
 */
#include "op_norm_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static dkh_bn_sync sync_hook;
static bool sync_installed;

void dkh_bn_sync_set(const dkh_bn_sync *s)
{
    if (s)
        sync_hook = *s;
    sync_installed = s != NULL;
}

const dkh_bn_sync *dkh_bn_sync_get(void)
{
    return sync_installed ? &sync_hook : NULL;
}

/* The element stride of t's trailing dims walked as one run (a contiguous or
 * channels-last tensor), or 0 when they do not form one. */
static int64_t run_stride(const dk_tensor *t)
{
    int64_t step = 1, expect = -1;
    for (int d = t->ndim - 1; d >= 2; d--) {
        if (t->shape[d] == 1)
            continue;
        if (expect < 0)
            step = t->strides[d];
        else if (t->strides[d] != expect)
            return 0;
        expect = t->strides[d] * t->shape[d];
    }
    return step;
}

/* Offset of value j of channel c's run in sample n; js from run_stride. */
static inline int64_t at(const dk_tensor *t, int64_t js, int64_t n, int64_t c, int64_t j)
{
    return js ? n * t->strides[0] + c * t->strides[1] + j * js : elem_off(t, n, c, j);
}

/* A tensor's element base and dtype, taken once per channel walk. */
typedef struct elems {
    char *base;
    dk_dtype dtype;
} elems;

static inline elems elems_of(const dk_tensor *t)
{
    return (elems){dkh_base(t), t->dtype};
}

static inline double ld(elems e, int64_t off)
{
    if (e.dtype == DK_DTYPE_F32)
        return ((const float *)(const void *)e.base)[off];
    return dkh_load(e.base, e.dtype, off);
}

static inline void st(elems e, int64_t off, double v)
{
    if (e.dtype == DK_DTYPE_F32)
        ((float *)(void *)e.base)[off] = (float)v;
    else
        dkh_store(e.base, e.dtype, off, v);
}

/* Channels are independent, each summed in a fixed order by one thread, so
 * the results do not depend on the thread count. Small layers stay serial.
 * The per-channel loops are functions of their arguments alone, which keeps
 * them fast inside the parallel regions. */
#define SYNC_PAR_MIN 32768

/* *s1 = sum x, *s2 = sum x^2 over channel ch of x, summed about the
 * channel's first value (see the f32 loops below) and moved back to zero. */
static void chan_sums(const dk_tensor *x, int64_t ch, double *s1, double *s2)
{
    int64_t N = x->shape[0], J = inner_count(x), js = run_stride(x);
    elems xe = elems_of(x);
    double s = 0, ss = 0, k = N * J > 0 ? ld(xe, at(x, js, 0, ch, 0)) : 0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < J; j++) {
            double d = ld(xe, at(x, js, n, ch, j)) - k;
            s += d;
            ss += d * d;
        }
    *s1 = s + (double)(N * J) * k;
    *s2 = ss + 2 * k * s + (double)(N * J) * k * k;
}

/* y = x * scale + shift over channel ch. */
static void chan_affine(dk_tensor *y, const dk_tensor *x, int64_t ch, double scale, double shift)
{
    int64_t N = x->shape[0], J = inner_count(x), js = run_stride(x), ys = run_stride(y);
    elems xe = elems_of(x), ye = elems_of(y);
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < J; j++)
            st(ye, at(y, ys, n, ch, j), ld(xe, at(x, js, n, ch, j)) * scale + shift);
}

/* *s1 = sum g, *s2 = sum g xhat over channel ch, xhat = (x - mean) invstd. */
static void chan_grad_sums(const dk_tensor *g, const dk_tensor *x, int64_t ch, double mean,
                           double invstd, double *s1, double *s2)
{
    int64_t N = x->shape[0], J = inner_count(x), js = run_stride(x), gs = run_stride(g);
    elems xe = elems_of(x), ge = elems_of(g);
    double sg = 0, sgx = 0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < J; j++) {
            double gv = ld(ge, at(g, gs, n, ch, j));
            sg += gv;
            sgx += gv * (ld(xe, at(x, js, n, ch, j)) - mean) * invstd;
        }
    *s1 = sg;
    *s2 = sgx;
}

/* gx = k (g - mg - xhat mgx) over channel ch. */
static void chan_grad_in(dk_tensor *gx, const dk_tensor *g, const dk_tensor *x, int64_t ch,
                         double k, double mg, double mgx, double mean, double invstd)
{
    int64_t N = x->shape[0], J = inner_count(x);
    int64_t js = run_stride(x), gs = run_stride(g), xs = run_stride(gx);
    elems xe = elems_of(x), ge = elems_of(g), oe = elems_of(gx);
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < J; j++) {
            double xh = (ld(xe, at(x, js, n, ch, j)) - mean) * invstd;
            st(oe, at(gx, xs, n, ch, j), k * (ld(ge, at(g, gs, n, ch, j)) - mg - xh * mgx));
        }
}

/* ---- the f32 loops of the synchronised path ----------------------------------------------
 * Two layouts have fast loops; any other (strided views, other dtypes) takes
 * the per-channel loops above.
 *   runs:  each (n, c) is a unit-stride run of J values (plain NCHW);
 *   rows:  the tensor is R = N * J rows of C adjacent channels, row r at r * C
 *          (channels-last, and (N, C)).
 * The values are f32 and their sums double. Partial sums in f32 cost too
 * much here: the mean's error would be f32 rounding times the spread of the
 * values, and the weight's gradient reads the mean through sum dy, which is
 * large (a mean off by 6e-8 std moved a weight gradient of 0.7 by 3e-4 in
 * the test), while the weight's gradient itself, a sum of terms of both
 * signs, would lose f32 rounding times the sum of their sizes. Loads are
 * still f32 and the loops vectorise, so the passes stay bound by memory.
 * In runs, value i of a run goes to lane i % LANES; the lanes keep their own
 * sums, added in a fixed tree at the end. In rows, the lanes are the
 * channels, and the rows are cut into chunks of a fixed size whose sums are
 * added in chunk order. Every order is fixed by the shapes alone, so the bits
 * do not depend on the thread count. The forward sums about a shift (the
 * channel's first local value), the backward about the mean; what crosses
 * the processes is moved back to zero in double (the shift differs between
 * processes). The elementwise passes work about the mean rounded to f32,
 * with the rounding taken up by their constant term. */
enum {
    LANES = 16,    /* lanes of a run's partial sums */
    CL_CHUNK = 256 /* rows per chunk: a thread's unit, with its own sums */
};

/* Per-lane double sums of two quantities. */
typedef struct lane_sums {
    double a[LANES], b[LANES];
} lane_sums;

/* The totals of l's lanes, added in a fixed tree. */
static void lane_totals(const lane_sums *l, double *a, double *b)
{
    lane_sums t = *l;
    for (int w = LANES / 2; w > 0; w /= 2)
        for (int i = 0; i < w; i++) {
            t.a[i] += t.a[i + w];
            t.b[i] += t.b[i + w];
        }
    *a = t.a[0];
    *b = t.b[0];
}

/* acc.a += x - k, acc.b += (x - k)^2 over the n values of a run. */
static void run_moments(const float *restrict x, int64_t n, double k, lane_sums *restrict acc)
{
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
#pragma omp simd
        for (int l = 0; l < LANES; l++) {
            double d = (double)x[i + l] - k;
            acc->a[l] += d;
            acc->b[l] += d * d;
        }
    for (int l = 0; i + l < n; l++) {
        double d = (double)x[i + l] - k;
        acc->a[l] += d;
        acc->b[l] += d * d;
    }
}

/* acc.a += g, acc.b += g (x - m) over the n values of a run. */
static void run_grad_sums(const float *restrict g, const float *restrict x, int64_t n, double m,
                          lane_sums *restrict acc)
{
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
#pragma omp simd
        for (int l = 0; l < LANES; l++) {
            acc->a[l] += (double)g[i + l];
            acc->b[l] += (double)g[i + l] * ((double)x[i + l] - m);
        }
    for (int l = 0; i + l < n; l++) {
        acc->a[l] += (double)g[i + l];
        acc->b[l] += (double)g[i + l] * ((double)x[i + l] - m);
    }
}

/* y = (x - m) s + b over a run. */
static void run_affine(float *restrict y, const float *restrict x, int64_t n, float m, float s,
                       float b)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        y[i] = (x[i] - m) * s + b;
}

/* gx = g s + (x - m) u + t over a run. */
static void run_grad_in(float *restrict gx, const float *restrict g, const float *restrict x,
                        int64_t n, float m, float s, float u, float t)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        gx[i] = g[i] * s + (x[i] - m) * u + t;
}

/* Chunk q of R rows: its first row in *r0, its length returned. */
static int64_t cl_chunk(int64_t q, int64_t R, int64_t *r0)
{
    *r0 = q * CL_CHUNK;
    return R - *r0 < CL_CHUNK ? R - *r0 : CL_CHUNK;
}

/* p[0..C) = sum(x - k), p[C..2C) = sum((x - k)^2) over a chunk of rows. */
static void cl_moments(const float *restrict x, int64_t rows, int64_t C, const float *restrict k,
                       double *restrict p)
{
    for (int64_t j = 0; j < 2 * C; j++)
        p[j] = 0;
    for (int64_t r = 0; r < rows; r++)
#pragma omp simd
        for (int64_t c = 0; c < C; c++) {
            double d = (double)x[r * C + c] - (double)k[c];
            p[c] += d;
            p[C + c] += d * d;
        }
}

/* p[0..C) = sum(g), p[C..2C) = sum(g (x - m)) over a chunk of rows. */
static void cl_grad_sums(const float *restrict g, const float *restrict x, int64_t rows, int64_t C,
                         const double *restrict m, double *restrict p)
{
    for (int64_t j = 0; j < 2 * C; j++)
        p[j] = 0;
    for (int64_t r = 0; r < rows; r++)
#pragma omp simd
        for (int64_t c = 0; c < C; c++) {
            p[c] += (double)g[r * C + c];
            p[C + c] += (double)g[r * C + c] * ((double)x[r * C + c] - m[c]);
        }
}

/* y = (x - m) s + b over a chunk of rows, per channel. */
static void cl_affine(float *restrict y, const float *restrict x, int64_t rows, int64_t C,
                      const float *restrict m, const float *restrict s, const float *restrict b)
{
    for (int64_t r = 0; r < rows; r++)
#pragma omp simd
        for (int64_t c = 0; c < C; c++)
            y[r * C + c] = (x[r * C + c] - m[c]) * s[c] + b[c];
}

/* gx = g s + (x - m) u + t over a chunk of rows, per channel. */
static void cl_grad_in(float *restrict gx, const float *restrict g, const float *restrict x,
                       int64_t rows, int64_t C, const float *restrict m, const float *restrict s,
                       const float *restrict u, const float *restrict t)
{
    for (int64_t r = 0; r < rows; r++)
#pragma omp simd
        for (int64_t c = 0; c < C; c++)
            gx[r * C + c] = g[r * C + c] * s[c] + (x[r * C + c] - m[c]) * u[c] + t[c];
}

/* Whether t (N, C, *) is R = N * J rows of C adjacent channels, row r at r * C. */
static bool dense_rows(const dk_tensor *t)
{
    int64_t C = t->shape[1], J = inner_count(t);
    return (C <= 1 || t->strides[1] == 1) && (J <= 1 || run_stride(t) == C) &&
           (t->shape[0] <= 1 || t->strides[0] == J * C);
}

typedef enum { LAYOUT_OTHER, LAYOUT_RUNS, LAYOUT_ROWS } sync_layout;

/* The fast layout that every tensor of t (f32, the same shape) has, if any. */
static sync_layout layout_of(int n, const dk_tensor *const *t)
{
    bool runs = inner_count(t[0]) > 1, rows = true;
    for (int i = 0; i < n; i++) {
        if (t[i]->dtype != DK_DTYPE_F32)
            return LAYOUT_OTHER;
        runs = runs && run_stride(t[i]) == 1;
        rows = rows && dense_rows(t[i]);
    }
    return runs ? LAYOUT_RUNS : rows ? LAYOUT_ROWS : LAYOUT_OTHER;
}

/* A row of a runs tensor: the J values of (n, c). */
static inline const float *run_at(const dk_tensor *t, int64_t n, int64_t c)
{
    return (const float *)(const void *)dkh_base(t) + n * t->strides[0] + c * t->strides[1];
}

static inline float *run_at_mut(dk_tensor *t, int64_t n, int64_t c)
{
    return (float *)(void *)dkh_base(t) + n * t->strides[0] + c * t->strides[1];
}

/* A new unowned tensor like t (a channels-last t gives a channels-last one,
 * as the op's kernels lay out their results). */
static dk_tensor *alloc_like(const dk_tensor *t)
{
    dk_tensor *r = dkh_tensor_alloc(t->dtype, t->ndim, t->shape, t->storage->device);
    if (r && dkh_is_strictly_channels_last(t))
        dkh_tensor_make_channels_last(r);
    return r;
}

/* Sums n doubles over the processes; a failure names the op and the pass. */
static dk_status sync_sum(const dkh_bn_sync *sync, double *buf, size_t n, const char *what)
{
    dk_status s = sync->all_reduce_sum(sync->ctx, buf, n);
    if (s != DK_OK)
        dk_error_prefix("batch_norm (synchronised, %s)", what);
    return s;
}

/* Scratch of a synchronised pass over x (N, C, *): the 2C + 1 sums that cross
 * the processes, the rows layout's per-chunk sums, and four f32 values per
 * channel (the shift and the coefficients of the elementwise pass). */
typedef struct sync_scratch {
    double *buf;  /* 2C + 1 */
    double *part; /* nq * 2C, rows layout only */
    float *vec;   /* 4C */
    int64_t nq;   /* chunks of the rows layout */
} sync_scratch;

static bool scratch_new(sync_scratch *s, int64_t C, int64_t R, sync_layout lay)
{
    s->nq = lay == LAYOUT_ROWS ? (R + CL_CHUNK - 1) / CL_CHUNK : 0;
    size_t nd = (size_t)(2 * C + 1 + s->nq * 2 * C);
    s->buf = dk_malloc(nd * sizeof(double) + (size_t)(4 * C) * sizeof(float));
    s->part = s->buf ? s->buf + 2 * C + 1 : NULL;
    s->vec = s->buf ? (float *)(void *)(s->buf + nd) : NULL;
    return s->buf != NULL;
}

/* buf[0..2C) = the rows layout's chunk sums, added in chunk order. */
static void chunk_totals(const sync_scratch *s, int64_t C)
{
    for (int64_t j = 0; j < 2 * C; j++)
        s->buf[j] = 0;
    for (int64_t q = 0; q < s->nq; q++)
        for (int64_t j = 0; j < 2 * C; j++)
            s->buf[j] += s->part[q * 2 * C + j];
}

/* buf = [sum x (C), sum x^2 (C)] over the local values of x, from sums about
 * the shift k[c] (vec[0..C)) over n values per channel. */
static void unshift_moments(double *buf, const float *k, int64_t C, double n)
{
    for (int64_t c = 0; c < C; c++) {
        double s1 = buf[c], s2 = buf[C + c], kc = k[c];
        buf[c] = s1 + n * kc;
        buf[C + c] = s2 + 2 * kc * s1 + n * kc * kc;
    }
}

/* s->buf[0..2C) = [sum x, sum x^2] per channel over the local values. */
static void local_moments(const dk_tensor *x, sync_layout lay, const sync_scratch *s, bool par)
{
    int64_t N = x->shape[0], C = x->shape[1], J = inner_count(x), R = N * J;
    double *buf = s->buf;
    float *k = s->vec;
    if (lay == LAYOUT_RUNS) {
#pragma omp parallel for schedule(static) if (par)
        for (int64_t ch = 0; ch < C; ch++) {
            lane_sums acc = {{0}, {0}};
            k[ch] = run_at(x, 0, ch)[0];
            for (int64_t n = 0; n < N; n++)
                run_moments(run_at(x, n, ch), J, (double)k[ch], &acc);
            lane_totals(&acc, &buf[ch], &buf[C + ch]);
        }
        unshift_moments(buf, k, C, (double)R);
    } else if (lay == LAYOUT_ROWS) {
        const float *xb = (const float *)(const void *)dkh_base(x);
        for (int64_t ch = 0; ch < C; ch++)
            k[ch] = xb[ch];
#pragma omp parallel for schedule(static) if (par)
        for (int64_t q = 0; q < s->nq; q++) {
            int64_t r0, n = cl_chunk(q, R, &r0);
            cl_moments(xb + r0 * C, n, C, k, s->part + q * 2 * C);
        }
        chunk_totals(s, C);
        unshift_moments(buf, k, C, (double)R);
    } else {
#pragma omp parallel for schedule(static) if (par)
        for (int64_t ch = 0; ch < C; ch++)
            chan_sums(x, ch, buf + ch, buf + C + ch);
    }
}

/* s->buf[0..2C) = [sum g, sum g xhat] per channel over the local values,
 * xhat = (x - mean) invstd. */
static void local_grad_sums(const dk_tensor *g, const dk_tensor *x, sync_layout lay,
                            const double *mean, const double *invstd, const sync_scratch *s,
                            bool par)
{
    int64_t N = x->shape[0], C = x->shape[1], J = inner_count(x), R = N * J;
    double *buf = s->buf;
    if (lay == LAYOUT_RUNS) {
#pragma omp parallel for schedule(static) if (par)
        for (int64_t ch = 0; ch < C; ch++) {
            lane_sums acc = {{0}, {0}};
            for (int64_t n = 0; n < N; n++)
                run_grad_sums(run_at(g, n, ch), run_at(x, n, ch), J, mean[ch], &acc);
            lane_totals(&acc, &buf[ch], &buf[C + ch]);
        }
    } else if (lay == LAYOUT_ROWS) {
        const float *xb = (const float *)(const void *)dkh_base(x);
        const float *gb = (const float *)(const void *)dkh_base(g);
#pragma omp parallel for schedule(static) if (par)
        for (int64_t q = 0; q < s->nq; q++) {
            int64_t r0, n = cl_chunk(q, R, &r0);
            cl_grad_sums(gb + r0 * C, xb + r0 * C, n, C, mean, s->part + q * 2 * C);
        }
        chunk_totals(s, C);
    } else {
#pragma omp parallel for schedule(static) if (par)
        for (int64_t ch = 0; ch < C; ch++)
            chan_grad_sums(g, x, ch, mean[ch], invstd[ch], buf + ch, buf + C + ch);
        return;
    }
    for (int64_t ch = 0; ch < C; ch++)
        buf[C + ch] *= invstd[ch];
}

/* Training forward over every process. Each process has its own N (they may
 * differ); the statistics are those of the concatenated batch:
 *   buf = [sum x (C), sum x^2 (C), N * J]  summed over the processes,
 *   mean = S / M, var = SS / M - mean^2 (biased), M = the global count,
 * in double. Each process sums its values about a local shift and moves the
 * sums to zero in double (see the f32 loops above), so the cancellation in
 * var costs about 1e-16 (mean / std)^2 relative: 1e-10 at mean / std = 1e3.
 * y = (x - mean) invstd w + b locally. The node records mean and invstd (f64,
 * (C) each) and the biased variance for its backward. */
dk_tensor *dkh_bn_sync_forward(const dkh_bn_sync *sync, dk_tensor *x, dk_tensor *w, dk_tensor *b,
                               dk_tensor *rm, dk_tensor *rv, double momentum, double eps)
{
    dk_tensor *in[3] = {x, w, b};
    for (int i = 0; i < 3; i++)
        if (in[i]->storage->device.type != DK_DEVICE_CPU) {
            dkh_op_fail(DKH_OP_BATCH_NORM, 3, in, DK_ERR_UNSUPPORTED,
                        "synchronised batch norm (sync_bn) runs on CPU tensors only; "
                        "turn sync_bn off for this model");
            return NULL;
        }
    dkh_args a = {.f = {eps}, .i = {1}};
    if (dkh_bn_check(&a, in, false) != DK_OK)
        return NULL;
    int64_t N = x->shape[0], C = x->shape[1], J = inner_count(x), R = N * J;
    const dk_tensor *xs[1] = {x};
    sync_layout lay = R > 0 ? layout_of(1, xs) : LAYOUT_OTHER;
    sync_scratch sc;
    if (!scratch_new(&sc, C, R, lay)) {
        dkh_op_fail(DKH_OP_BATCH_NORM, 3, in, DK_ERR_NOMEM, "out of memory");
        return NULL;
    }
    double *buf = sc.buf;
    bool par = R * C >= SYNC_PAR_MIN;
    local_moments(x, lay, &sc, par);
    buf[2 * C] = (double)R;
    if (sync_sum(sync, buf, (size_t)(2 * C + 1), "forward") != DK_OK) {
        dk_free(buf);
        return NULL;
    }
    double M = buf[2 * C];
    if (M < 2 && C > 0) {
        dk_free(buf);
        dkh_op_fail(DKH_OP_BATCH_NORM, 3, in, DK_ERR_SHAPE,
                    "training needs more than one value per channel over all processes "
                    "(%.0f)",
                    M);
        return NULL;
    }
    dk_device cpu = x->storage->device;
    dk_tensor *y = alloc_like(x);
    dk_tensor *aux[3] = {NULL};
    for (int k = 0; k < 3; k++)
        aux[k] = y ? dkh_tensor_alloc(DK_DTYPE_F64, 1, &C, cpu) : NULL;
    bool ok = y && aux[0] && aux[1] && aux[2];
    /* y = (x - m) s + t in f32, m the mean rounded to f32 and t taking up
     * the rounding: (x - mean) s + b = (x - m) s + (m - mean) s + b. */
    float *m = sc.vec + C, *s = sc.vec + 2 * C, *t = sc.vec + 3 * C;
    double *mean = ok ? (double *)(void *)dkh_base(aux[0]) : NULL;
    double *invstd = ok ? (double *)(void *)dkh_base(aux[1]) : NULL;
    for (int64_t ch = 0; ch < (ok ? C : 0); ch++) {
        double mu = buf[ch] / M, var = fmax(buf[C + ch] / M - mu * mu, 0.0);
        double is = 1 / sqrt(var + eps);
        double scale = is * dkh_load(dkh_base(w), w->dtype, ch * w->strides[0]);
        double bias = dkh_load(dkh_base(b), b->dtype, ch * b->strides[0]);
        m[ch] = (float)mu;
        s[ch] = (float)scale;
        t[ch] = (float)(bias + ((double)m[ch] - mu) * scale);
        mean[ch] = mu;
        invstd[ch] = is;
        ((double *)(void *)dkh_base(aux[2]))[ch] = var;
        if (rm)
            dkh_bn_update_running(rm, rv, ch, mu, var, M, momentum);
    }
    const dk_tensor *xy[2] = {x, y};
    sync_layout out_lay = ok && R > 0 ? layout_of(2, xy) : LAYOUT_OTHER;
    if (ok && out_lay == LAYOUT_RUNS) {
#pragma omp parallel for schedule(static) if (par)
        for (int64_t r = 0; r < N * C; r++)
            run_affine(run_at_mut(y, r / C, r % C), run_at(x, r / C, r % C), J, m[r % C], s[r % C],
                       t[r % C]);
    } else if (ok && out_lay == LAYOUT_ROWS) {
        const float *xb = (const float *)(const void *)dkh_base(x);
        float *yb = (float *)(void *)dkh_base(y);
        int64_t nq = (R + CL_CHUNK - 1) / CL_CHUNK;
#pragma omp parallel for schedule(static) if (par)
        for (int64_t q = 0; q < nq; q++) {
            int64_t r0, n = cl_chunk(q, R, &r0);
            cl_affine(yb + r0 * C, xb + r0 * C, n, C, m, s, t);
        }
    } else if (ok) {
#pragma omp parallel for schedule(static) if (par)
        for (int64_t ch = 0; ch < C; ch++) {
            double scale = invstd[ch] * dkh_load(dkh_base(w), w->dtype, ch * w->strides[0]);
            double shift = dkh_load(dkh_base(b), b->dtype, ch * b->strides[0]) - mean[ch] * scale;
            chan_affine(y, x, ch, scale, shift);
        }
    }
    dk_free(buf);
    if (ok && dk_grad_enabled() && (x->requires_grad || w->requires_grad || b->requires_grad) &&
        dkh_record(DKH_OP_BATCH_NORM, &a, 3, in, y, 3, aux) != DK_OK)
        ok = false;
    for (int k = 0; k < 3; k++)
        if (aux[k])
            dkh_tensor_unref(aux[k]);
    if (!ok) {
        if (y)
            dkh_tensor_unref(y);
        return NULL;
    }
    return dkh_scope_adopt(y);
}

/* Backward of a synchronised node. M values per channel over all processes;
 * with xhat = (x - mean) invstd and dy the incoming gradient:
 *   buf = [sum dy (C), sum dy xhat (C), N * J]  summed over the processes,
 *   gx = w invstd (dy - sum_dy / M - xhat sum_dy_xhat / M),
 *   gw = local sum dy xhat, gb = local sum dy.
 * Why gw and gb stay local, and why gx needs the global sums: data parallel
 * training minimises the mean of the processes' losses, L = (1/P) sum_p L_p,
 * and averages the processes' gradients. Every process's backward computes
 * its own part of d(sum_p L_p)/d(theta): y of a sample on process p reaches
 * only L_p, so the local dy is that part for the local samples, and the local
 * sums over them are process p's part of the gradient of w and b; the mean
 * over the processes (the gradient all-reduce) makes them dL/dw and dL/db.
 * x of a sample moves the global mean and variance, which every y of every
 * process reads, so its gradient needs the sums over all processes; with the
 * global sums gx is exactly d(sum_p L_p)/dx, and the parameters upstream of
 * x again get their part of d(sum_p L_p) that the mean over processes scales
 * by 1/P. So a parameter sees the same gradient as one process training on
 * the whole global batch whose loss is the mean over it. Without dx (needs[0]
 * false on every process alike) nothing is exchanged. */
dk_status dkh_bn_sync_backward(dk_tensor *const *in, dk_tensor *const *aux, dk_tensor *g,
                               const bool *needs, dk_tensor **gin)
{
    const dk_tensor *x = in[0], *w = in[1], *mu = aux[0], *is = aux[1];
    const dkh_bn_sync *sync = dkh_bn_sync_get();
    if (!sync && needs[0])
        return dkh_op_fail(DKH_OP_BATCH_NORM, 3, in, DK_ERR_RUNTIME,
                           "backward of a synchronised batch norm after the synchronisation "
                           "was removed (every process must run it while installed)");
    int64_t N = x->shape[0], C = x->shape[1], J = inner_count(x), R = N * J;
    const dk_tensor *xg[2] = {x, g};
    sync_layout lay = R > 0 ? layout_of(2, xg) : LAYOUT_OTHER;
    sync_scratch sc;
    if (!scratch_new(&sc, C, R, lay))
        return dkh_op_fail(DKH_OP_BATCH_NORM, 3, in, DK_ERR_NOMEM, "out of memory");
    double *buf = sc.buf;
    const double *mean = (const double *)(const void *)dkh_base(mu);
    const double *invstd = (const double *)(const void *)dkh_base(is);
    /* gx = dy s + (x - m) u + t in f32, m the mean rounded to f32: with
     * k = w invstd, u = -k invstd sum_dy_xhat / M and
     * t = -k sum_dy / M + (m - mean) u. */
    float *m = sc.vec, *s = sc.vec + C, *u = sc.vec + 2 * C, *t = sc.vec + 3 * C;
    for (int64_t ch = 0; ch < C; ch++)
        m[ch] = (float)mean[ch];
    bool par = R * C >= SYNC_PAR_MIN;
    local_grad_sums(g, x, lay, mean, invstd, &sc, par);
    buf[2 * C] = (double)R;
    dk_tensor *gw = needs[1] ? dkh_tensor_alloc(w->dtype, 1, &C, w->storage->device) : NULL;
    dk_tensor *gb = needs[2] ? dkh_tensor_alloc(w->dtype, 1, &C, w->storage->device) : NULL;
    dk_status st = (needs[1] && !gw) || (needs[2] && !gb) ? dk_last_status() : DK_OK;
    for (int64_t ch = 0; st == DK_OK && ch < C; ch++) {
        if (gw)
            dkh_store(dkh_base(gw), gw->dtype, ch, buf[C + ch]);
        if (gb)
            dkh_store(dkh_base(gb), gb->dtype, ch, buf[ch]);
    }
    dk_tensor *gx = NULL;
    if (st == DK_OK && needs[0])
        st = sync_sum(sync, buf, (size_t)(2 * C + 1), "backward");
    if (st == DK_OK && needs[0]) {
        double M = buf[2 * C];
        gx = alloc_like(x);
        st = gx ? DK_OK : dk_last_status();
        for (int64_t ch = 0; ch < C; ch++) {
            double k = dkh_load(dkh_base(w), w->dtype, ch * w->strides[0]) * invstd[ch];
            double uc = -k * invstd[ch] * (buf[C + ch] / M);
            s[ch] = (float)k;
            u[ch] = (float)uc;
            t[ch] = (float)(-k * (buf[ch] / M) + ((double)m[ch] - mean[ch]) * uc);
        }
        const dk_tensor *xgo[3] = {x, g, gx};
        sync_layout out_lay = st == DK_OK && R > 0 ? layout_of(3, xgo) : LAYOUT_OTHER;
        if (st == DK_OK && out_lay == LAYOUT_RUNS) {
#pragma omp parallel for schedule(static) if (par)
            for (int64_t r = 0; r < N * C; r++) {
                int64_t n = r / C, ch = r % C;
                run_grad_in(run_at_mut(gx, n, ch), run_at(g, n, ch), run_at(x, n, ch), J, m[ch],
                            s[ch], u[ch], t[ch]);
            }
        } else if (st == DK_OK && out_lay == LAYOUT_ROWS) {
            const float *xb = (const float *)(const void *)dkh_base(x);
            const float *gyb = (const float *)(const void *)dkh_base(g);
            float *ob = (float *)(void *)dkh_base(gx);
            int64_t nq = (R + CL_CHUNK - 1) / CL_CHUNK;
#pragma omp parallel for schedule(static) if (par)
            for (int64_t q = 0; q < nq; q++) {
                int64_t r0, n = cl_chunk(q, R, &r0);
                cl_grad_in(ob + r0 * C, gyb + r0 * C, xb + r0 * C, n, C, m, s, u, t);
            }
        } else if (st == DK_OK) {
#pragma omp parallel for schedule(static) if (par)
            for (int64_t ch = 0; ch < C; ch++) {
                double k = dkh_load(dkh_base(w), w->dtype, ch * w->strides[0]) * invstd[ch];
                chan_grad_in(gx, g, x, ch, k, buf[ch] / M, buf[C + ch] / M, mean[ch], invstd[ch]);
            }
        }
    }
    dk_free(buf);
    dk_tensor *res[3] = {gx, gw, gb};
    for (int i = 0; i < 3; i++) {
        if (st == DK_OK && needs[i])
            gin[i] = dkh_scope_adopt(res[i]);
        else if (res[i])
            dkh_tensor_unref(res[i]);
    }
    return st;
}
