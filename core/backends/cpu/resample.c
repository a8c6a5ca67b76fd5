/* core/backends/cpu/resample.c — fast interpolate (nearest, bilinear),
 * forward and backward, for contiguous f32/f64 (N, C, H, W).
 *
 * The source rows and columns and their weights depend only on the output
 * position, so they are computed once per call (with the op's own coordinate
 * functions, dkh_nearest_src / dkh_linear_src) and every plane reuses them.
 * Planes are split across threads; the backward accumulates each plane's
 * gradient on one thread, so it does not depend on the thread count.
 *
 * Nearest's backward gathers instead of scattering: the source index is
 * monotone in the output index, so the outputs that read input row (column)
 * i are one range, and each input element sums its window, row by row and
 * left to right, which is the order the reference kernel adds in.
 */
#include "../../tensor/op_index_impl.h"
#include "cpu_index.h"

#include <string.h>

typedef struct taps {
    int64_t *i0, *i1;
    double *w1; /* weight of i1; i0 gets 1 - w1 */
} taps;

static void make_taps(const dkh_args *a, int dim, int64_t in, int64_t out, taps *t)
{
    for (int64_t o = 0; o < out; o++) {
        if (a->i[0] == DK_INTERP_NEAREST) {
            t->i0[o] = t->i1[o] = dkh_nearest_src(o, a->f[dim], in, out);
            t->w1[o] = 0;
        } else {
            double s = dkh_linear_src(o, a->f[dim], a->i[1] != 0);
            t->i0[o] = (int64_t)s;
            t->i1[o] = t->i0[o] + (t->i0[o] < in - 1 ? 1 : 0);
            t->w1[o] = s - (double)t->i0[o];
        }
    }
}

/* Scratch for the taps of both dims: i0, i1 (int64) and w1 (double) each. */
static void *alloc_taps(int64_t OH, int64_t OW, taps *ty, taps *tx)
{
    int64_t n = OH + OW;
    char *m = dk_malloc((size_t)(n + 1) * (2 * sizeof(int64_t) + sizeof(double)));
    if (!m)
        return NULL;
    ty->i0 = (int64_t *)m;
    ty->i1 = ty->i0 + OH;
    tx->i0 = ty->i1 + OH;
    tx->i1 = tx->i0 + OW;
    ty->w1 = (double *)(tx->i1 + OW);
    tx->w1 = ty->w1 + OH;
    return m;
}

#define INTERP(T)                                                                                \
    static void interp_##T(const taps *ty, const taps *tx, int64_t planes, int64_t H, int64_t W, \
                           int64_t OH, int64_t OW, const T *x, T *y)                             \
    {                                                                                             \
        _Pragma("omp parallel for schedule(static) if (planes * OH * OW >= DKH_CPU_PAR_MIN && planes > 1)") \
        for (int64_t p = 0; p < planes; p++) {                                                    \
            const T *xp = x + p * H * W;                                                          \
            T *yp = y + p * OH * OW;                                                              \
            for (int64_t oy = 0; oy < OH; oy++) {                                                 \
                const T *r0 = xp + ty->i0[oy] * W, *r1 = xp + ty->i1[oy] * W;                     \
                double wy1 = ty->w1[oy], wy0 = 1 - wy1;                                           \
                for (int64_t ox = 0; ox < OW; ox++) {                                             \
                    int64_t a = tx->i0[ox], b = tx->i1[ox];                                       \
                    double wx1 = tx->w1[ox], wx0 = 1 - wx1;                                       \
                    yp[oy * OW + ox] = (T)(wy0 * (wx0 * r0[a] + wx1 * r0[b]) +                    \
                                           wy1 * (wx0 * r1[a] + wx1 * r1[b]));                    \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
    }

INTERP(float)
INTERP(double)

/* Nearest forward: a gather per output row, and an output row whose source
 * row is the previous one's (every second row at a scale of 2) a copy of it.
 * The same values as the weighted sum above for every finite input. */
#define NEAREST(T)                                                                               \
    static void nearest_##T(const taps *ty, const taps *tx, int64_t planes, int64_t H,           \
                            int64_t W, int64_t OH, int64_t OW, const T *x, T *y)                 \
    {                                                                                             \
        _Pragma("omp parallel for schedule(static) if (planes * OH * OW >= DKH_CPU_PAR_MIN && planes > 1)") \
        for (int64_t p = 0; p < planes; p++) {                                                    \
            const T *xp = x + p * H * W;                                                          \
            T *yp = y + p * OH * OW;                                                              \
            for (int64_t oy = 0; oy < OH; oy++) {                                                 \
                T *restrict o = yp + oy * OW;                                                     \
                const T *restrict r = xp + ty->i0[oy] * W;                                        \
                if (oy > 0 && ty->i0[oy] == ty->i0[oy - 1])                                       \
                    memcpy(o, o - OW, (size_t)OW * sizeof(T));                                    \
                else if (OW == 2 * W)                                                             \
                    for (int64_t ox = 0; ox < OW; ox++)                                           \
                        o[ox] = r[ox >> 1];                                                       \
                else                                                                              \
                    for (int64_t ox = 0; ox < OW; ox++)                                           \
                        o[ox] = r[tx->i0[ox]];                                                    \
            }                                                                                     \
        }                                                                                         \
    }

NEAREST(float)
NEAREST(double)

bool dkh_cpu_interpolate(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0];
    dk_tensor *o = c->out;
    if ((x->dtype != DK_DTYPE_F32 && x->dtype != DK_DTYPE_F64) || o->dtype != x->dtype ||
        !dk_tensor_is_contiguous(x) || !dk_tensor_is_contiguous(o))
        return false;
    int64_t H = x->shape[2], W = x->shape[3], OH = o->shape[2], OW = o->shape[3];
    taps ty, tx;
    void *m = alloc_taps(OH, OW, &ty, &tx);
    if (!m)
        return false;
    make_taps(c->args, 0, H, OH, &ty);
    make_taps(c->args, 1, W, OW, &tx);
    int64_t planes = x->shape[0] * x->shape[1];
    if (c->args->i[0] == DK_INTERP_NEAREST && x->dtype == DK_DTYPE_F32)
        nearest_float(&ty, &tx, planes, H, W, OH, OW, (const float *)dkh_base(x),
                      (float *)dkh_base(o));
    else if (c->args->i[0] == DK_INTERP_NEAREST)
        nearest_double(&ty, &tx, planes, H, W, OH, OW, (const double *)dkh_base(x),
                       (double *)dkh_base(o));
    else if (x->dtype == DK_DTYPE_F32)
        interp_float(&ty, &tx, planes, H, W, OH, OW, (const float *)dkh_base(x),
                     (float *)dkh_base(o));
    else
        interp_double(&ty, &tx, planes, H, W, OH, OW, (const double *)dkh_base(x),
                      (double *)dkh_base(o));
    dk_free(m);
    return true;
}

/* The bilinear weights of the four taps, in the reference kernel's order so
 * the sums round the same way. */
#define INTERP_BWD(T)                                                                            \
    static void interp_bwd_##T(const taps *ty, const taps *tx, int64_t planes, int64_t H,        \
                               int64_t W, int64_t OH, int64_t OW, const T *g, T *gx)             \
    {                                                                                             \
        _Pragma("omp parallel for schedule(static) if (planes * OH * OW >= DKH_CPU_PAR_MIN && planes > 1)") \
        for (int64_t p = 0; p < planes; p++) {                                                    \
            const T *gp = g + p * OH * OW;                                                        \
            T *xp = gx + p * H * W;                                                               \
            memset(xp, 0, (size_t)(H * W) * sizeof(T));                                          \
            for (int64_t oy = 0; oy < OH; oy++) {                                                 \
                T *r0 = xp + ty->i0[oy] * W, *r1 = xp + ty->i1[oy] * W;                           \
                double wy1 = ty->w1[oy], wy0 = 1 - wy1;                                           \
                for (int64_t ox = 0; ox < OW; ox++) {                                             \
                    int64_t a = tx->i0[ox], b = tx->i1[ox];                                       \
                    double wx1 = tx->w1[ox], wx0 = 1 - wx1, v = gp[oy * OW + ox];                 \
                    r0[a] = (T)(r0[a] + wy0 * wx0 * v);                                           \
                    r0[b] = (T)(r0[b] + wy0 * wx1 * v);                                           \
                    r1[a] = (T)(r1[a] + wy1 * wx0 * v);                                           \
                    r1[b] = (T)(r1[b] + wy1 * wx1 * v);                                           \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
    }

INTERP_BWD(float)
INTERP_BWD(double)

/* Fills first[0 .. in]: the outputs that read input index i are
 * [first[i], first[i + 1]) (empty where none does). */
static void nearest_ranges(const dkh_args *a, int dim, int64_t in, int64_t out, int64_t *first)
{
    int64_t o = 0;
    for (int64_t i = 0; i < in; i++) {
        while (o < out && dkh_nearest_src(o, a->f[dim], in, out) < i)
            o++;
        first[i] = o;
    }
    first[in] = out;
}

/* gx plane p, row i: zero, then each g row of i's window added in; OW == 2W
 * (a scale of 2, source o >> 1) and OW == W get loops that vectorise. */
#define NEAREST_BWD(T)                                                                           \
    static void nearest_bwd_##T(const int64_t *ys, const int64_t *xs, int64_t planes,            \
                                int64_t H, int64_t W, int64_t OH, int64_t OW, const T *g, T *gx) \
    {                                                                                             \
        _Pragma("omp parallel for schedule(static) if (planes * OH * OW >= DKH_CPU_PAR_MIN && planes > 1)") \
        for (int64_t p = 0; p < planes; p++) {                                                    \
            for (int64_t i = 0; i < H; i++) {                                                     \
                T *restrict o = gx + (p * H + i) * W;                                             \
                for (int64_t j = 0; j < W; j++)                                                   \
                    o[j] = 0;                                                                     \
                for (int64_t oy = ys[i]; oy < ys[i + 1]; oy++) {                                  \
                    const T *restrict r = g + (p * OH + oy) * OW;                                 \
                    if (OW == 2 * W)                                                              \
                        for (int64_t j = 0; j < W; j++)                                           \
                            o[j] = o[j] + r[2 * j] + r[2 * j + 1];                                \
                    else if (OW == W)                                                             \
                        for (int64_t j = 0; j < W; j++)                                           \
                            o[j] += r[j];                                                         \
                    else                                                                          \
                        for (int64_t j = 0; j < W; j++) {                                         \
                            T v = o[j];                                                           \
                            for (int64_t ox = xs[j]; ox < xs[j + 1]; ox++)                        \
                                v += r[ox];                                                       \
                            o[j] = v;                                                             \
                        }                                                                         \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
    }

NEAREST_BWD(float)
NEAREST_BWD(double)

static bool nearest_bwd(const dkh_kcall *c)
{
    const dk_tensor *g = c->in[2];
    dk_tensor *gx = c->out;
    int64_t H = gx->shape[2], W = gx->shape[3], OH = g->shape[2], OW = g->shape[3];
    int64_t *ys = dk_malloc((size_t)(H + W + 2) * sizeof(int64_t));
    if (!ys)
        return false;
    int64_t *xs = ys + H + 1;
    nearest_ranges(c->args, 0, H, OH, ys);
    nearest_ranges(c->args, 1, W, OW, xs);
    int64_t planes = gx->shape[0] * gx->shape[1];
    if (gx->dtype == DK_DTYPE_F32)
        nearest_bwd_float(ys, xs, planes, H, W, OH, OW, (const float *)dkh_base(g),
                          (float *)dkh_base(gx));
    else
        nearest_bwd_double(ys, xs, planes, H, W, OH, OW, (const double *)dkh_base(g),
                           (double *)dkh_base(gx));
    dk_free(ys);
    return true;
}

/* in = {x, NULL, g}; out = gx. */
bool dkh_cpu_interpolate_bwd(const dkh_kcall *c)
{
    const dk_tensor *g = c->in[2];
    dk_tensor *gx = c->out;
    if ((gx->dtype != DK_DTYPE_F32 && gx->dtype != DK_DTYPE_F64) || g->dtype != gx->dtype ||
        !dk_tensor_is_contiguous(g) || !dk_tensor_is_contiguous(gx))
        return false;
    if (c->args->i[0] == DK_INTERP_NEAREST)
        return nearest_bwd(c);
    int64_t H = gx->shape[2], W = gx->shape[3], OH = g->shape[2], OW = g->shape[3];
    taps ty, tx;
    void *m = alloc_taps(OH, OW, &ty, &tx);
    if (!m)
        return false;
    make_taps(c->args, 0, H, OH, &ty);
    make_taps(c->args, 1, W, OW, &tx);
    int64_t planes = gx->shape[0] * gx->shape[1];
    if (gx->dtype == DK_DTYPE_F32)
        interp_bwd_float(&ty, &tx, planes, H, W, OH, OW, (const float *)dkh_base(g),
                         (float *)dkh_base(gx));
    else
        interp_bwd_double(&ty, &tx, planes, H, W, OH, OW, (const double *)dkh_base(g),
                          (double *)dkh_base(gx));
    dk_free(m);
    return true;
}
