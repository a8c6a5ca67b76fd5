/* core/backends/cpu/movement.c — fast kernels for ops that only move elements
 * and fill the rest: the backward of slice (a zero tensor with the gradient
 * scattered into the sliced positions) and constant-mode pad, forward and
 * backward.
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

static void move_run(const move_map *m, char *obase, const char *src)
{
    int L = m->ndim - 1;
    int64_t rows = dkh_numel(L, m->oshape), total = rows * m->oshape[L];
    if (total == 0)
        return;
#pragma omp parallel if (total >= DKH_CPU_PAR_MIN && rows > 1)
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int64_t r0 = rows * t / nt, r1 = rows * (t + 1) / nt;
        int64_t co[DK_MAX_DIMS];
        int64_t r = r0;
        for (int d = L - 1; d >= 0; d--) {
            co[d] = r % m->oshape[d];
            r /= m->oshape[d];
        }
        for (r = r0; r < r1; r++) {
            move_row(m, obase, src, co, r);
            for (int d = L - 1; d >= 0 && ++co[d] == m->oshape[d]; d--)
                co[d] = 0;
        }
    }
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
 * i[0] = mode; f[0] = the value. Other modes read an element more than
 * once (or add into one, backward) and stay on the reference kernel. */
static bool pad_shift(const dkh_kcall *c, int ndim, int64_t *lo)
{
    if (c->args->i[0] != DK_PAD_CONSTANT)
        return false;
    for (int d = 0; d < ndim; d++)
        lo[d] = 0;
    for (int k = 0; k < c->args->nv / 2; k++)
        lo[ndim - 1 - k] = c->args->v[2 * k];
    return true;
}

/* Forward: out coordinate o reads x at o - left. */
bool dkh_cpu_pad(const dkh_kcall *c)
{
    move_map m;
    const dk_tensor *x = c->in[0];
    if (!map_init(&m, c->out, x) || !pad_shift(c, x->ndim, m.lo))
        return false;
    dkh_store(m.fill, c->out->dtype, 0, c->args->f[0]);
    move_run(&m, dkh_base(c->out), dkh_base(x));
    return true;
}

/* Backward: in = {x, NULL, g}, out = gx in x's shape: gx at coordinate i is
 * g at i + left where that lies inside g (a negative pad cropped x; the
 * cropped elements get zero). */
bool dkh_cpu_pad_bwd(const dkh_kcall *c)
{
    move_map m;
    const dk_tensor *g = c->in[2];
    if (!map_init(&m, c->out, g) || !pad_shift(c, g->ndim, m.lo))
        return false;
    for (int d = 0; d < m.ndim; d++)
        m.lo[d] = -m.lo[d];
    dkh_store(m.fill, c->out->dtype, 0, 0.0);
    move_run(&m, dkh_base(c->out), dkh_base(g));
    return true;
}
