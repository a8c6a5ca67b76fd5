/* core/backends/cpu/reduce.c — fast f32/f64 sum, amax, amin.
 *
 * Outputs are independent, so they are split across threads; each walks its
 * reduced sub-block with the innermost reduced dim as the inner loop (unit
 * stride when the reduction is over trailing dims, the common case). Sums
 * accumulate in double, which keeps f32 results within rounding of the
 * reference. A reduction to a single value splits the reduced range instead,
 * into chunks fixed by the shape alone whose partial sums are added in chunk
 * order: the bits never depend on the thread count (dk_set_deterministic's
 * promise), at no cost, since the chunks are as parallel as the threads.
 */
#include "cpu.h"

#include <math.h>

typedef struct red {
    int nk, nr;
    int64_t ks[DK_MAX_DIMS], kst[DK_MAX_DIMS], rs[DK_MAX_DIMS], rst[DK_MAX_DIMS];
} red;

#define REDUCE_BLOCK(T)                                                                       \
    static double reduce_block_##T(dkh_op_id op, const T *x, const red *r, int64_t lo,         \
                                   int64_t hi)                                                 \
    {                                                                                          \
        /* Rows of the innermost reduced dim, in [lo, hi) of the outer reduced index. */       \
        int64_t n = r->nr ? r->rs[r->nr - 1] : 1, s = r->nr ? r->rst[r->nr - 1] : 1;          \
        double acc = op == DKH_OP_SUM ? 0 : op == DKH_OP_AMIN ? INFINITY : -INFINITY;          \
        for (int64_t q = lo; q < hi; q++) {                                                    \
            const T *p = x + dkh_offset_of(q, r->nr - 1, r->rs, r->rst);                       \
            if (op == DKH_OP_SUM) {                                                            \
                double t = 0;                                                                  \
                if (s == 1)                                                                    \
                    for (int64_t i = 0; i < n; i++)                                            \
                        t += p[i];                                                             \
                else                                                                           \
                    for (int64_t i = 0; i < n; i++)                                            \
                        t += p[i * s];                                                         \
                acc += t;                                                                      \
            } else {                                                                           \
                for (int64_t i = 0; i < n; i++) {                                              \
                    double v = p[i * s];                                                       \
                    if (isnan(v))                                                              \
                        return v;                                                              \
                    acc = op == DKH_OP_AMAX ? (v > acc ? v : acc) : (v < acc ? v : acc);       \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
        return acc;                                                                            \
    }

REDUCE_BLOCK(float)
REDUCE_BLOCK(double)

static double block(dk_dtype dt, dkh_op_id op, const char *x, const red *r, int64_t lo, int64_t hi)
{
    return dt == DK_DTYPE_F32 ? reduce_block_float(op, (const float *)x, r, lo, hi)
                              : reduce_block_double(op, (const double *)x, r, lo, hi);
}

bool dkh_cpu_reduce(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0];
    dk_dtype dt = x->dtype;
    if ((dt != DK_DTYPE_F32 && dt != DK_DTYPE_F64) || c->out->dtype != dt)
        return false;
    red r = {0, 0, {0}, {0}, {0}, {0}};
    int64_t nout = 1;
    for (int d = 0; d < x->ndim; d++)
        if (!c->args->v[d])
            nout *= x->shape[d];
    /* With several outputs, neighbouring dims of the same kind that are
     * contiguous with each other merge (and size-1 dims drop), so a mean over
     * (H, W) is one unit-stride run per output instead of H runs of W found
     * by division. A reduction to one value keeps its dims: its chunks, and
     * so its bits, are fixed by the shape as given. */
    bool merge = nout > 1;
    int prev = -1; /* kind of the last dim kept in a list: 1 reduced, 0 kept */
    for (int d = 0; d < x->ndim; d++) {
        int64_t n = x->shape[d], st = x->strides[d];
        int kind = c->args->v[d] != 0;
        if (merge && n == 1)
            continue;
        int64_t *sh = kind ? r.rs : r.ks, *sst = kind ? r.rst : r.kst;
        int *cnt = kind ? &r.nr : &r.nk;
        if (merge && prev == kind && sst[*cnt - 1] == st * n) {
            sh[*cnt - 1] *= n;
            sst[*cnt - 1] = st;
            continue;
        }
        sh[*cnt] = n;
        sst[(*cnt)++] = st;
        prev = kind;
    }
    int64_t nred = dkh_numel(r.nr, r.rs);
    int64_t outer = r.nr ? nred / (r.rs[r.nr - 1] ? r.rs[r.nr - 1] : 1) : 1;
    if (nred == 0)
        outer = 0;
    const char *xb = dkh_base(x);
    size_t es = dk_dtype_size(dt);
    char *ob = dkh_base(c->out);
    dkh_op_id op = c->op;
    if (nout == 1 && op == DKH_OP_SUM && outer > 1 && nred >= DKH_CPU_PAR_MIN) {
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
        dkh_store(ob, dt, 0, acc);
        return true;
    }
#pragma omp parallel for schedule(static) if (nout * nred >= DKH_CPU_PAR_MIN && nout > 1)
    for (int64_t o = 0; o < nout; o++) {
        const char *base = xb + dkh_offset_of(o, r.nk, r.ks, r.kst) * (int64_t)es;
        dkh_store(ob, dt, o, block(dt, op, base, &r, 0, outer));
    }
    return true;
}
