/* core/backends/cpu/reduce.c — fast f32/f64 sum, amax, amin and the L2 norm.
 *
 * The input's dims are first sorted into kept and reduced lists, merging
 * neighbours of the same kind that are contiguous with each other, so a mean
 * over (H, W) is one run of H * W per output. Then one of four loops runs:
 *
 *   short unit-stride runs, one per output (a plain (N, C, 7, 7) reduced
 *     over H, W): 8 outputs side by side, each in the reference's order;
 *   longer unit-stride runs (a plain tensor reduced over trailing dims):
 *     each output reduces its run in 8 fixed lanes, which vectorise; the
 *     lanes are combined in a fixed order, so the bits depend on the shape
 *     alone;
 *   kept run is unit-stride (a channels-last (N, C, H, W) reduced over H, W,
 *     or a plain tensor over a leading dim): a block of neighbouring outputs
 *     is accumulated together, one whole row of them per reduced position,
 *     in the reference kernel's order;
 *   anything else: each output walks its reduced sub-block.
 *
 * Sums (and the norm's sum of squares) accumulate in double, which keeps f32
 * results within rounding of the reference. Outputs are split across threads;
 * a reduction to a single value splits the reduced range instead, into chunks
 * fixed by the shape alone whose partial sums are added in chunk order: the
 * bits never depend on the thread count (dk_set_deterministic's promise).
 */
#include "cpu.h"

#include <math.h>

typedef struct red {
    int nk, nr;
    int64_t ks[DK_MAX_DIMS], kst[DK_MAX_DIMS], rs[DK_MAX_DIMS], rst[DK_MAX_DIMS];
} red;

enum { LANES = DKH_EXT_LANES, SUM_LANES = 16 };

/* The running extreme a after v: a NaN, once seen, sticks (nothing compares
 * above or below it), as in the reference. */
static inline double ext_step(double a, double v, bool mx)
{
    return (a == a && (v != v || (mx ? v > a : v < a))) ? v : a;
}

/* The start of a reduction's accumulator. */
static double red_init(dkh_op_id op)
{
    return op == DKH_OP_SUM || op == DKH_OP_NORM ? 0 : op == DKH_OP_AMAX ? -INFINITY : INFINITY;
}

/* Reductions of one run of n elements at stride s. Sums take 16 lanes of
 * double when the run is unit-stride (four AVX2 vectors: enough independent
 * chains to hide the add latency); the lanes are combined in a fixed order,
 * so the result depends on n alone. The extremes take 8 lanes of T and
 * return the first NaN if there is one, as the reference does. */
#define ROW_KERNELS(T)                                                                         \
    static double row_sum_##T(const T *p, int64_t n, int64_t s, bool sq)                       \
    {                                                                                          \
        double t = 0;                                                                          \
        int64_t i = 0;                                                                         \
        if (s == 1 && n >= SUM_LANES) {                                                        \
            /* The lanes start from the first elements: zeroing them costs a                   \
             * memset call where rows are short. */                                            \
            double a[SUM_LANES];                                                               \
            if (sq) {                                                                          \
                _Pragma("omp simd") for (int l = 0; l < SUM_LANES; l++)                        \
                    a[l] = (double)p[l] * p[l];                                                \
                for (i = SUM_LANES; i + SUM_LANES <= n; i += SUM_LANES)                        \
                    _Pragma("omp simd") for (int l = 0; l < SUM_LANES; l++)                    \
                        a[l] += (double)p[i + l] * p[i + l];                                   \
            } else {                                                                           \
                _Pragma("omp simd") for (int l = 0; l < SUM_LANES; l++)                        \
                    a[l] = p[l];                                                               \
                for (i = SUM_LANES; i + SUM_LANES <= n; i += SUM_LANES)                        \
                    _Pragma("omp simd") for (int l = 0; l < SUM_LANES; l++)                    \
                        a[l] += p[i + l];                                                      \
            }                                                                                  \
            for (int l = 0; l < SUM_LANES / 2; l++)                                            \
                a[l] += a[l + SUM_LANES / 2];                                                  \
            t = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));             \
        }                                                                                      \
        for (; i < n; i++) {                                                                   \
            double v = p[i * s];                                                               \
            t += sq ? v * v : v;                                                               \
        }                                                                                      \
        return t;                                                                              \
    }                                                                                          \
    static double row_ext_##T(const T *p, int64_t n, int64_t s, bool mx, double acc)           \
    {                                                                                          \
        int64_t i = 0;                                                                         \
        if (s == 1 && n >= 2 * LANES) {                                                        \
            T m;                                                                               \
            int any;                                                                           \
            i = dkh_lane_extreme_##T(p, n, mx, &m, &any);                                      \
            if (any) /* rare: find the first NaN */                                            \
                i = 0;                                                                         \
            else                                                                               \
                acc = (mx ? m > acc : m < acc) ? m : acc;                                      \
        }                                                                                      \
        for (; i < n; i++) {                                                                   \
            double v = p[i * s];                                                               \
            if (isnan(v))                                                                      \
                return v;                                                                      \
            acc = (mx ? v > acc : v < acc) ? v : acc;                                          \
        }                                                                                      \
        return acc;                                                                            \
    }

ROW_KERNELS(float)
ROW_KERNELS(double)

#define REDUCE_BLOCK(T)                                                                       \
    static double reduce_block_##T(dkh_op_id op, const T *x, const red *r, int64_t lo,         \
                                   int64_t hi)                                                 \
    {                                                                                          \
        /* Runs of the innermost reduced dim, in [lo, hi) of the outer reduced index. */       \
        int64_t n = r->nr ? r->rs[r->nr - 1] : 1, s = r->nr ? r->rst[r->nr - 1] : 1;          \
        bool sum = op == DKH_OP_SUM || op == DKH_OP_NORM;                                      \
        double acc = red_init(op);                                                             \
        for (int64_t q = lo; q < hi; q++) {                                                    \
            const T *p = x + dkh_offset_of(q, r->nr - 1, r->rs, r->rst);                       \
            if (sum) {                                                                         \
                acc += row_sum_##T(p, n, s, op == DKH_OP_NORM);                                \
            } else {                                                                           \
                acc = row_ext_##T(p, n, s, op == DKH_OP_AMAX, acc);                            \
                if (isnan(acc))                                                                \
                    return acc;                                                                \
            }                                                                                  \
        }                                                                                      \
        return acc;                                                                            \
    }

REDUCE_BLOCK(float)
REDUCE_BLOCK(double)

/* The kept-run loop: outputs [c0, c0 + w) of kept block q (its elements at
 * x + c, unit stride) accumulated over every reduced position in order. */
enum { COLS = 256 };
#define KEPT_RUN(T)                                                                            \
    static void kept_run_##T(dkh_op_id op, const T *x, const red *r, int64_t nred, int64_t w,  \
                             T *y)                                                             \
    {                                                                                          \
        double acc[COLS];                                                                      \
        bool sum = op == DKH_OP_SUM || op == DKH_OP_NORM, sq = op == DKH_OP_NORM;              \
        bool mx = op == DKH_OP_AMAX;                                                           \
        for (int64_t c = 0; c < w; c++)                                                        \
            acc[c] = red_init(op);                                                             \
        for (int64_t q = 0; q < nred; q++) {                                                   \
            const T *p = x + dkh_offset_of(q, r->nr, r->rs, r->rst);                           \
            if (sq) {                                                                          \
                for (int64_t c = 0; c < w; c++)                                                \
                    acc[c] += (double)p[c] * p[c];                                             \
            } else if (sum) {                                                                  \
                for (int64_t c = 0; c < w; c++)                                                \
                    acc[c] += p[c];                                                            \
            } else {                                                                           \
                for (int64_t c = 0; c < w; c++)                                                \
                    acc[c] = ext_step(acc[c], p[c], mx);                                       \
            }                                                                                  \
        }                                                                                      \
        for (int64_t c = 0; c < w; c++)                                                        \
            y[c] = (T)(sq ? sqrt(acc[c]) : acc[c]);                                            \
    }

KEPT_RUN(float)
KEPT_RUN(double)

/* The short-run loop: runs of n <= SHORT unit-stride elements, one per
 * output, the outputs' runs kst apart. Lanes within a run would cost more in
 * combining than they save, so 8 outputs are reduced side by side instead,
 * each in the reference's sequential order: 8 independent chains. */
enum { SHORT = 64, SIDE = 8 };
#define SHORT_RUNS(T)                                                                          \
    static void short_runs_##T(dkh_op_id op, const T *x, int64_t kst, int64_t n, int64_t o0,   \
                               int64_t o1, T *y)                                               \
    {                                                                                          \
        bool sum = op == DKH_OP_SUM || op == DKH_OP_NORM, sq = op == DKH_OP_NORM;              \
        bool mx = op == DKH_OP_AMAX;                                                           \
        double init = red_init(op);                                                            \
        for (int64_t o = o0; o < o1; o += SIDE) {                                              \
            int w = o1 - o < SIDE ? (int)(o1 - o) : SIDE;                                      \
            double acc[SIDE];                                                                  \
            const T *p[SIDE];                                                                  \
            for (int j = 0; j < SIDE; j++) {                                                   \
                acc[j] = init;                                                                 \
                p[j] = x + (o + (j < w ? j : 0)) * kst;                                        \
            }                                                                                  \
            if (sq) {                                                                          \
                for (int64_t i = 0; i < n; i++)                                                \
                    for (int j = 0; j < SIDE; j++)                                             \
                        acc[j] += (double)p[j][i] * p[j][i];                                   \
            } else if (sum) {                                                                  \
                for (int64_t i = 0; i < n; i++)                                                \
                    for (int j = 0; j < SIDE; j++)                                             \
                        acc[j] += p[j][i];                                                     \
            } else {                                                                           \
                for (int64_t i = 0; i < n; i++)                                                \
                    for (int j = 0; j < SIDE; j++)                                             \
                        acc[j] = ext_step(acc[j], p[j][i], mx);                                \
            }                                                                                  \
            for (int j = 0; j < w; j++)                                                        \
                y[o + j] = (T)(sq ? sqrt(acc[j]) : acc[j]);                                    \
        }                                                                                      \
    }

SHORT_RUNS(float)
SHORT_RUNS(double)

static double block(dk_dtype dt, dkh_op_id op, const char *x, const red *r, int64_t lo, int64_t hi)
{
    return dt == DK_DTYPE_F32 ? reduce_block_float(op, (const float *)x, r, lo, hi)
                              : reduce_block_double(op, (const double *)x, r, lo, hi);
}

/* Splits x's dims into r's kept and reduced lists; merge: see the top. */
static void split(const dk_tensor *x, const dkh_args *a, bool merge, red *r)
{
    int prev = -1; /* kind of the last dim kept in a list: 1 reduced, 0 kept */
    for (int d = 0; d < x->ndim; d++) {
        int64_t n = x->shape[d], st = x->strides[d];
        int kind = a->v[d] != 0;
        if (merge && n == 1)
            continue;
        int64_t *sh = kind ? r->rs : r->ks, *sst = kind ? r->rst : r->kst;
        int *cnt = kind ? &r->nr : &r->nk;
        if (merge && prev == kind && sst[*cnt - 1] == st * n) {
            sh[*cnt - 1] *= n;
            sst[*cnt - 1] = st;
            continue;
        }
        sh[*cnt] = n;
        sst[(*cnt)++] = st;
        prev = kind;
    }
}

/* The kept-run loop over all outputs: (outer, K) of them, K the kept run. */
static void reduce_kept_run(dk_dtype dt, dkh_op_id op, const char *xb, const red *r, int64_t nred,
                            char *ob)
{
    int64_t K = r->ks[r->nk - 1], outer = dkh_numel(r->nk - 1, r->ks);
    int64_t pieces = (K + COLS - 1) / COLS, units = outer * pieces;
    size_t es = dk_dtype_size(dt);
#pragma omp parallel for schedule(static) if (outer * K * nred >= DKH_CPU_PAR_MIN && units > 1)
    for (int64_t u = 0; u < units; u++) {
        int64_t q = u / pieces, c0 = (u % pieces) * COLS;
        int64_t w = K - c0 < COLS ? K - c0 : COLS;
        const char *x = xb + (dkh_offset_of(q, r->nk - 1, r->ks, r->kst) + c0) * (int64_t)es;
        char *y = ob + (q * K + c0) * (int64_t)es;
        if (dt == DK_DTYPE_F32)
            kept_run_float(op, (const float *)x, r, nred, w, (float *)y);
        else
            kept_run_double(op, (const double *)x, r, nred, w, (double *)y);
    }
}

/* SUM, AMAX, AMIN, NORM: in = {x}; v[d] marks reduced dims; out contiguous. */
bool dkh_cpu_reduce(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0];
    dk_dtype dt = x->dtype;
    if ((dt != DK_DTYPE_F32 && dt != DK_DTYPE_F64) || c->out->dtype != dt)
        return false;
    int64_t nout = 1;
    for (int d = 0; d < x->ndim; d++)
        if (!c->args->v[d])
            nout *= x->shape[d];
    /* A reduction to one value keeps its dims: its chunks, and so its bits,
     * are fixed by the shape as given. */
    red r = {0, 0, {0}, {0}, {0}, {0}};
    split(x, c->args, nout > 1, &r);
    int64_t nred = dkh_numel(r.nr, r.rs);
    int64_t outer = r.nr ? nred / (r.rs[r.nr - 1] ? r.rs[r.nr - 1] : 1) : 1;
    if (nred == 0)
        outer = 0;
    const char *xb = dkh_base(x);
    size_t es = dk_dtype_size(dt);
    char *ob = dkh_base(c->out);
    dkh_op_id op = c->op;
    bool sum = op == DKH_OP_SUM || op == DKH_OP_NORM;
    if (nout == 1 && sum && outer > 1 && nred >= DKH_CPU_PAR_MIN) {
        /* An OpenMP reduction would add per-thread partials, so the result
         * would change with the thread count. */
        enum { CHUNKS = 64 };
        int64_t nch = outer < CHUNKS ? outer : CHUNKS;
        double part[CHUNKS];
#pragma omp parallel for schedule(static)
        for (int64_t k = 0; k < nch; k++)
            part[k] = block(dt, op, xb, &r, outer * k / nch, outer * (k + 1) / nch);
        double acc = 0;
        for (int64_t k = 0; k < nch; k++)
            acc += part[k];
        dkh_store(ob, dt, 0, op == DKH_OP_NORM ? sqrt(acc) : acc);
        return true;
    }
    if (nout > 1 && nred > 0 && r.nk > 0 && r.nr > 0 && r.kst[r.nk - 1] == 1 &&
        r.rst[r.nr - 1] != 1) {
        reduce_kept_run(dt, op, xb, &r, nred, ob);
        return true;
    }
    if (nout >= SIDE && r.nk == 1 && r.nr == 1 && r.rst[0] == 1 && nred <= SHORT) {
        /* Blocks of outputs fixed by the shape; a thread takes whole blocks. */
        int64_t blocks = (nout + 255) / 256;
#pragma omp parallel for schedule(static) if (nout * nred >= DKH_CPU_PAR_MIN && blocks > 1)
        for (int64_t b = 0; b < blocks; b++) {
            int64_t o0 = b * 256, o1 = o0 + 256 < nout ? o0 + 256 : nout;
            if (dt == DK_DTYPE_F32)
                short_runs_float(op, (const float *)xb, r.kst[0], nred, o0, o1, (float *)ob);
            else
                short_runs_double(op, (const double *)xb, r.kst[0], nred, o0, o1, (double *)ob);
        }
        return true;
    }
#pragma omp parallel for schedule(static) if (nout * nred >= DKH_CPU_PAR_MIN && nout > 1)
    for (int64_t o = 0; o < nout; o++) {
        int64_t at = r.nk == 1 ? o * r.kst[0] : dkh_offset_of(o, r.nk, r.ks, r.kst);
        double v = block(dt, op, xb + at * (int64_t)es, &r, 0, outer);
        v = op == DKH_OP_NORM ? sqrt(v) : v;
        if (dt == DK_DTYPE_F32)
            ((float *)ob)[o] = (float)v;
        else
            ((double *)ob)[o] = v;
    }
    return true;
}
