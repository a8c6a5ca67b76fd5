/* core/backends/cpu/movement.c — fast kernels for ops that only move elements
 * and fill the rest: the backward of slice (a zero tensor with the gradient
 * scattered into the sliced positions) and pad, forward and backward, in all
 * three modes.
 *
 * All of them write a fresh contiguous output exactly once: each output row
 * (the last dim) is split into a filled part and a copied part, so nothing
 * is zero-filled first and then overwritten, and the copy runs as a unit-
 * stride loop whenever the source's last dim is contiguous (the common case:
 * ResNet's option-A shortcut, x[:, :, ::2, ::2] padded with zero channels,
 * would otherwise run on the per-element reference kernels). Elements are
 * moved as raw bits of their size, so every dtype takes the same path; rows
 * are shared among threads in contiguous ranges, and a thread steps its
 * row coordinates like an odometer instead of dividing per row.
 *
 * Reflect and replicate pad read some elements more than once, so their
 * backward adds several gradient elements into one. It is computed per
 * gradient row (each written by one thread) with every element's sum taken
 * in the order the reference kernel adds, the gradient's row-major order, so
 * the result has the reference's bits whatever the thread count.
 */
#include "cpu.h"

#include <omp.h>
#include <string.h>

/* Element widths the movers handle (every dtype has one of them). */
#define MOVE_ROW(T)                                                                           \
    static void fill_##T(T *restrict o, int64_t n, T v)                                       \
    {                                                                                         \
        for (int64_t i = 0; i < n; i++)                                                       \
            o[i] = v;                                                                         \
    }                                                                                         \
    static void copy_##T(T *restrict o, const T *restrict a, int64_t n, int64_t sa)          \
    {                                                                                         \
        if (sa == 1)                                                                          \
            for (int64_t i = 0; i < n; i++)                                                   \
                o[i] = a[i];                                                                  \
        else                                                                                  \
            for (int64_t i = 0; i < n; i++)                                                   \
                o[i] = a[i * sa];                                                             \
    }                                                                                         \
    /* o[j * so] = a[j * sa] for j < n (a strided scatter into a row). */                   \
    static void scatter_##T(T *restrict o, int64_t so, const T *restrict a, int64_t sa,       \
                            int64_t n)                                                        \
    {                                                                                         \
        for (int64_t j = 0; j < n; j++)                                                       \
            o[j * so] = a[j * sa];                                                            \
    }                                                                                         \
    /* o[j] = a[idx[j] * sa] for j < n (a row's few border elements). */                     \
    static void gather_##T(T *restrict o, const T *restrict a, const int64_t *idx, int64_t n, \
                           int64_t sa)                                                        \
    {                                                                                         \
        for (int64_t j = 0; j < n; j++)                                                       \
            o[j] = a[idx[j] * sa];                                                            \
    }

MOVE_ROW(uint8_t)
MOVE_ROW(uint16_t)
MOVE_ROW(uint32_t)
MOVE_ROW(uint64_t)

static void fill_row(char *o, int64_t n, size_t es, const char *v)
{
    switch (es) {
    case 1: fill_uint8_t((uint8_t *)o, n, *(const uint8_t *)v); break;
    case 2: {
        uint16_t x;
        memcpy(&x, v, 2);
        fill_uint16_t((uint16_t *)o, n, x);
        break;
    }
    case 4: {
        uint32_t x;
        memcpy(&x, v, 4);
        fill_uint32_t((uint32_t *)o, n, x);
        break;
    }
    default: {
        uint64_t x;
        memcpy(&x, v, 8);
        fill_uint64_t((uint64_t *)o, n, x);
        break;
    }
    }
}

static void copy_row(char *o, const char *a, int64_t n, int64_t sa, size_t es)
{
    switch (es) {
    case 1: copy_uint8_t((uint8_t *)o, (const uint8_t *)a, n, sa); break;
    case 2: copy_uint16_t((uint16_t *)o, (const uint16_t *)a, n, sa); break;
    case 4: copy_uint32_t((uint32_t *)o, (const uint32_t *)a, n, sa); break;
    default: copy_uint64_t((uint64_t *)o, (const uint64_t *)a, n, sa); break;
    }
}

static void scatter_row(char *o, int64_t so, const char *a, int64_t sa, int64_t n, size_t es)
{
    switch (es) {
    case 1: scatter_uint8_t((uint8_t *)o, so, (const uint8_t *)a, sa, n); break;
    case 2: scatter_uint16_t((uint16_t *)o, so, (const uint16_t *)a, sa, n); break;
    case 4: scatter_uint32_t((uint32_t *)o, so, (const uint32_t *)a, sa, n); break;
    default: scatter_uint64_t((uint64_t *)o, so, (const uint64_t *)a, sa, n); break;
    }
}

static void gather_row(char *o, const char *a, const int64_t *idx, int64_t n, int64_t sa,
                       size_t es)
{
    switch (es) {
    case 1: gather_uint8_t((uint8_t *)o, (const uint8_t *)a, idx, n, sa); break;
    case 2: gather_uint16_t((uint16_t *)o, (const uint16_t *)a, idx, n, sa); break;
    case 4: gather_uint32_t((uint32_t *)o, (const uint32_t *)a, idx, n, sa); break;
    default: gather_uint64_t((uint64_t *)o, (const uint64_t *)a, idx, n, sa); break;
    }
}

static bool width_ok(size_t es)
{
    return es == 1 || es == 2 || es == 4 || es == 8;
}

/* ---- the row walker ------------------------------------------------------------------------ */

/* Where each output row takes its elements from. Output coordinate c along
 * dim d reads source coordinate (c - lo[d]) / step[d] when c - lo[d] is a
 * non-negative multiple of step[d] and the quotient is below the source's
 * size; every other output element is the fill value. */
typedef struct move_map {
    int ndim;
    int64_t oshape[DK_MAX_DIMS]; /* output, contiguous */
    int64_t sshape[DK_MAX_DIMS], sstride[DK_MAX_DIMS];
    int64_t lo[DK_MAX_DIMS], step[DK_MAX_DIMS];
    size_t es;
    char fill[8];
} move_map;

/* Source coordinate of output coordinate c along dim d, or -1. */
static inline int64_t src_coord(const move_map *m, int d, int64_t c)
{
    int64_t s = c - m->lo[d];
    if (s < 0 || s % m->step[d])
        return -1;
    s /= m->step[d];
    return s < m->sshape[d] ? s : -1;
}

/* Writes output row r (coordinates co over the leading dims) from src. */
static void move_row(const move_map *m, char *obase, const char *src, const int64_t *co, int64_t r)
{
    int L = m->ndim - 1;
    int64_t W = m->oshape[L];
    char *o = obase + r * W * (int64_t)m->es;
    int64_t off = 0;
    for (int d = 0; d < L; d++) {
        int64_t s = src_coord(m, d, co[d]);
        if (s < 0) {
            fill_row(o, W, m->es, m->fill);
            return;
        }
        off += s * m->sstride[d];
    }
    /* The last dim: [0, a) fill, then the source's elements every step-th
     * position from a up to b, then fill. first is the first source index
     * that lands inside the row (a negative lo crops). */
    int64_t lo = m->lo[L], step = m->step[L], n = m->sshape[L];
    int64_t first = lo < 0 ? (-lo + step - 1) / step : 0;
    int64_t a = lo + first * step, count = 0;
    if (a < W && first < n) {
        count = (W - 1 - a) / step + 1;
        if (count > n - first)
            count = n - first;
    }
    if (count == 0) {
        fill_row(o, W, m->es, m->fill);
        return;
    }
    int64_t b = a + (count - 1) * step + 1;
    const char *s0 = src + (off + first * m->sstride[L]) * (int64_t)m->es;
    if (step == 1) {
        fill_row(o, a, m->es, m->fill);
        copy_row(o + a * (int64_t)m->es, s0, count, m->sstride[L], m->es);
    } else {
        /* Fill the whole span first: the row is in L1, so the second write
         * of the scattered elements costs nothing next to the memory traffic. */
        fill_row(o, b, m->es, m->fill);
        scatter_row(o + a * (int64_t)m->es, step, s0, m->sstride[L], count, m->es);
    }
    fill_row(o + b * (int64_t)m->es, W - b, m->es, m->fill);
}

typedef void (*row_fn)(const void *ctx, const int64_t *co, int64_t r);

/* Calls row(ctx, co, r) for every row r of a contiguous output of shape
 * (shape[0], ..., shape[L - 1], W), co being r's coordinates over the leading
 * L dims; total is the output's element count. */
static void run_rows(int L, const int64_t *shape, int64_t total, row_fn row, const void *ctx)
{
    int64_t rows = dkh_numel(L, shape);
    if (total == 0)
        return;
#pragma omp parallel if (total >= DKH_CPU_PAR_MIN && rows > 1)
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int64_t r0 = rows * t / nt, r1 = rows * (t + 1) / nt;
        int64_t co[DK_MAX_DIMS];
        int64_t r = r0;
        for (int d = L - 1; d >= 0; d--) {
            co[d] = r % shape[d];
            r /= shape[d];
        }
        for (r = r0; r < r1; r++) {
            row(ctx, co, r);
            for (int d = L - 1; d >= 0 && ++co[d] == shape[d]; d--)
                co[d] = 0;
        }
    }
}

typedef struct move_job {
    const move_map *m;
    char *obase;
    const char *src;
} move_job;

static void move_job_row(const void *ctx, const int64_t *co, int64_t r)
{
    const move_job *j = ctx;
    move_row(j->m, j->obase, j->src, co, r);
}

static void move_run(const move_map *m, char *obase, const char *src)
{
    move_job j = {m, obase, src};
    run_rows(m->ndim - 1, m->oshape, dkh_numel(m->ndim, m->oshape), move_job_row, &j);
}

/* A map from dst (contiguous) to src with no shift, step 1 and fill 0. */
static bool map_init(move_map *m, const dk_tensor *dst, const dk_tensor *src)
{
    size_t es = dk_dtype_size(dst->dtype);
    if (!width_ok(es) || src->dtype != dst->dtype || !dk_tensor_is_contiguous(dst) ||
        dst->ndim != src->ndim || dst->ndim == 0)
        return false;
    memset(m, 0, sizeof *m);
    m->ndim = dst->ndim;
    m->es = es;
    for (int d = 0; d < dst->ndim; d++) {
        m->oshape[d] = dst->shape[d];
        m->sshape[d] = src->shape[d];
        m->sstride[d] = src->strides[d];
        m->step[d] = 1;
    }
    return true;
}

/* ---- slice backward ---------------------------------------------------------------------- */

/* in = {x, NULL, g}; out = gx, contiguous in x's shape; args->i = {dim,
 * start, end, step}. gx is g at start + k * step along dim, zero elsewhere. */
bool dkh_cpu_slice_bwd(const dkh_kcall *c)
{
    move_map m;
    const dk_tensor *g = c->in[2];
    if (!map_init(&m, c->out, g))
        return false;
    int d = (int)c->args->i[0];
    m.lo[d] = c->args->i[1];
    m.step[d] = c->args->i[3];
    dkh_store(m.fill, c->out->dtype, 0, 0.0);
    move_run(&m, dkh_base(c->out), dkh_base(g));
    return true;
}

/* ---- constant pad ---------------------------------------------------------------------- */

/* args: v = pads (left, right) from the last dim backwards, nv of them;
 * i[0] = mode; f[0] = the value. */
static void pad_shift(const dkh_kcall *c, int ndim, int64_t *lo)
{
    for (int d = 0; d < ndim; d++)
        lo[d] = 0;
    for (int k = 0; k < c->args->nv / 2; k++)
        lo[ndim - 1 - k] = c->args->v[2 * k];
}

/* Forward: out coordinate o reads x at o - left. */
static bool pad_constant(const dkh_kcall *c)
{
    move_map m;
    const dk_tensor *x = c->in[0];
    if (!map_init(&m, c->out, x))
        return false;
    pad_shift(c, x->ndim, m.lo);
    dkh_store(m.fill, c->out->dtype, 0, c->args->f[0]);
    move_run(&m, dkh_base(c->out), dkh_base(x));
    return true;
}

/* Backward: in = {x, NULL, g}, out = gx in x's shape: gx at coordinate i is
 * g at i + left where that lies inside g (a negative pad cropped x; the
 * cropped elements get zero). */
static bool pad_constant_bwd(const dkh_kcall *c)
{
    move_map m;
    const dk_tensor *g = c->in[2];
    if (!map_init(&m, c->out, g))
        return false;
    pad_shift(c, g->ndim, m.lo);
    for (int d = 0; d < m.ndim; d++)
        m.lo[d] = -m.lo[d];
    dkh_store(m.fill, c->out->dtype, 0, 0.0);
    move_run(&m, dkh_base(c->out), dkh_base(g));
    return true;
}

/* ---- reflect and replicate pad ----------------------------------------------------------- */

/* Per dim d of x (size n[d], padded to pn[d] with lo[d] in front): src[d][o]
 * is the x index padded index o reads; from[d][first[d][i] .. first[d][i + 1])
 * are the padded indices that read x index i, ascending. */
typedef struct edge_map {
    int ndim;
    int64_t n[DK_MAX_DIMS], pn[DK_MAX_DIMS], lo[DK_MAX_DIMS];
    int64_t *src[DK_MAX_DIMS], *first[DK_MAX_DIMS], *from[DK_MAX_DIMS];
    int64_t st[DK_MAX_DIMS]; /* strides of the tensor read: x forward, g backward */
    /* Backward, last dim: x indices in [a, b) are read by padded index i + lo
     * alone, so that span is one unit-stride add; the rest go by the lists. */
    int64_t a, b;
    size_t es;
    const char *in;
    char *out;
} edge_map;

/* Fills m's index tables for x of shape xs padded by the call's pads;
 * returns the scratch block to free, or NULL when out of memory. */
static void *edge_init(edge_map *m, const dkh_kcall *c, int ndim, const int64_t *xs)
{
    int mode = (int)c->args->i[0];
    memset(m, 0, sizeof *m);
    m->ndim = ndim;
    int64_t cells = 0;
    for (int d = 0; d < ndim; d++) {
        int k = ndim - 1 - d;
        m->n[d] = xs[d];
        m->lo[d] = k < c->args->nv / 2 ? c->args->v[2 * k] : 0;
        m->pn[d] = xs[d] + m->lo[d] + (k < c->args->nv / 2 ? c->args->v[2 * k + 1] : 0);
        cells += 2 * m->pn[d] + m->n[d] + 1;
    }
    int64_t *mem = dk_malloc((size_t)cells * sizeof(int64_t));
    if (!mem)
        return NULL;
    int64_t *p = mem;
    for (int d = 0; d < ndim; d++) {
        int64_t n = m->n[d], pn = m->pn[d];
        m->src[d] = p;
        m->first[d] = p + pn;
        m->from[d] = p + pn + n + 1;
        p += 2 * pn + n + 1;
        /* Counting sort of the padded indices by the x index they read. */
        int64_t *first = m->first[d];
        for (int64_t i = 0; i <= n; i++)
            first[i] = 0;
        for (int64_t o = 0; o < pn; o++) {
            m->src[d][o] = dkh_pad_src(mode, o, m->lo[d], n);
            first[m->src[d][o] + 1]++;
        }
        for (int64_t i = 0; i < n; i++)
            first[i + 1] += first[i];
        for (int64_t o = 0; o < pn; o++)
            m->from[d][first[m->src[d][o]]++] = o;
        for (int64_t i = n; i > 0; i--) /* the placing moved each start to the next one's */
            first[i] = first[i - 1];
        first[0] = 0;
    }
    /* The longest span of the last dim whose elements each have one reader. */
    int L = ndim - 1;
    const int64_t *first = m->first[L], *from = m->from[L];
    for (int64_t i = 0, run = 0; i < m->n[L]; i++) {
        bool plain = first[i + 1] - first[i] == 1 && from[first[i]] == i + m->lo[L];
        run = plain ? run + 1 : 0;
        if (run > m->b - m->a) {
            m->a = i + 1 - run;
            m->b = i + 1;
        }
    }
    return mem;
}

/* Forward row r: the leading dims pick one x row; the last dim copies its
 * span and gathers the few border elements. */
static void edge_row(const void *ctx, const int64_t *co, int64_t r)
{
    const edge_map *m = ctx;
    int L = m->ndim - 1;
    size_t es = m->es;
    int64_t off = 0;
    for (int d = 0; d < L; d++)
        off += m->src[d][co[d]] * m->st[d];
    int64_t lo = m->lo[L], n = m->n[L], sa = m->st[L];
    char *o = m->out + r * m->pn[L] * (int64_t)es;
    const char *x = m->in + off * (int64_t)es;
    gather_row(o, x, m->src[L], lo, sa, es);
    copy_row(o + lo * (int64_t)es, x, n, sa, es);
    gather_row(o + (lo + n) * (int64_t)es, x, m->src[L] + lo + n, m->pn[L] - lo - n, sa, es);
}

/* Backward: adds one g row into gx row o (x's last dim long), or sets o from
 * it when init. Each element's readers come in ascending order, as in the
 * reference; (T)0 + v keeps its signed zero too. */
#define EDGE_ACC(T)                                                                             \
    static void edge_acc_##T(const edge_map *m, T *restrict o, const T *restrict g, bool init) \
    {                                                                                          \
        int L = m->ndim - 1;                                                                   \
        int64_t n = m->n[L], a = m->a, b = m->b, sg = m->st[L];                                \
        const int64_t *first = m->first[L], *from = m->from[L];                                \
        for (int part = 0; part < 2; part++) /* [0, a), then [b, n) */                        \
            for (int64_t i = part ? b : 0; i < (part ? n : a); i++) {                          \
                T v = init ? (T)0 : o[i];                                                      \
                for (int64_t k = first[i]; k < first[i + 1]; k++)                              \
                    v += g[from[k] * sg];                                                      \
                o[i] = v;                                                                      \
            }                                                                                  \
        const T *gm = g + m->lo[L] * sg;                                                       \
        if (init && sg == 1)                                                                   \
            for (int64_t i = a; i < b; i++)                                                    \
                o[i] = (T)0 + gm[i];                                                           \
        else if (sg == 1)                                                                      \
            for (int64_t i = a; i < b; i++)                                                    \
                o[i] += gm[i];                                                                 \
        else                                                                                   \
            for (int64_t i = a; i < b; i++)                                                    \
                o[i] = (init ? (T)0 : o[i]) + gm[i * sg];                                      \
    }

EDGE_ACC(float)
EDGE_ACC(double)

/* Backward row r of gx: the g rows that read it, in row-major order (the
 * leading dims' reader lists stepped like an odometer), each added in. */
static void edge_row_bwd(const void *ctx, const int64_t *co, int64_t r)
{
    const edge_map *m = ctx;
    int L = m->ndim - 1;
    int64_t W = m->n[L], k[DK_MAX_DIMS];
    char *o = m->out + r * W * (int64_t)m->es;
    for (int d = 0; d < L; d++) {
        k[d] = m->first[d][co[d]];
        if (k[d] == m->first[d][co[d] + 1]) { /* read by nothing */
            memset(o, 0, (size_t)W * m->es);
            return;
        }
    }
    for (bool init = true;; init = false) {
        int64_t off = 0;
        for (int d = 0; d < L; d++)
            off += m->from[d][k[d]] * m->st[d];
        if (m->es == 4)
            edge_acc_float(m, (float *)o, (const float *)m->in + off, init);
        else
            edge_acc_double(m, (double *)o, (const double *)m->in + off, init);
        int d = L - 1;
        for (; d >= 0; d--) {
            if (++k[d] < m->first[d][co[d] + 1])
                break;
            k[d] = m->first[d][co[d]];
        }
        if (d < 0)
            return;
    }
}

static bool pad_edge(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0];
    dk_tensor *out = c->out;
    size_t es = dk_dtype_size(x->dtype);
    if (!width_ok(es) || out->dtype != x->dtype || !dk_tensor_is_contiguous(out) || x->ndim == 0)
        return false;
    edge_map m;
    void *mem = edge_init(&m, c, x->ndim, x->shape);
    if (!mem)
        return false;
    m.es = es;
    for (int d = 0; d < x->ndim; d++)
        m.st[d] = x->strides[d];
    m.in = dkh_base(x);
    m.out = dkh_base(out);
    run_rows(m.ndim - 1, m.pn, dkh_numel(m.ndim, m.pn), edge_row, &m);
    dk_free(mem);
    return true;
}

/* in = {x, NULL, g}; out = gx (x's shape). f32 and f64 only: the sums. */
static bool pad_edge_bwd(const dkh_kcall *c)
{
    const dk_tensor *g = c->in[2];
    dk_tensor *gx = c->out;
    dk_dtype dt = gx->dtype;
    if ((dt != DK_DTYPE_F32 && dt != DK_DTYPE_F64) || g->dtype != dt ||
        !dk_tensor_is_contiguous(gx) || gx->ndim == 0)
        return false;
    edge_map m;
    void *mem = edge_init(&m, c, gx->ndim, gx->shape);
    if (!mem)
        return false;
    m.es = dk_dtype_size(dt);
    for (int d = 0; d < g->ndim; d++)
        m.st[d] = g->strides[d];
    m.in = dkh_base(g);
    m.out = dkh_base(gx);
    run_rows(m.ndim - 1, m.n, dkh_numel(m.ndim, m.n), edge_row_bwd, &m);
    dk_free(mem);
    return true;
}

bool dkh_cpu_pad(const dkh_kcall *c)
{
    return c->args->i[0] == DK_PAD_CONSTANT ? pad_constant(c) : pad_edge(c);
}

bool dkh_cpu_pad_bwd(const dkh_kcall *c)
{
    return c->args->i[0] == DK_PAD_CONSTANT ? pad_constant_bwd(c) : pad_edge_bwd(c);
}
