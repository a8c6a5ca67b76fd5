/* core/backends/cpu/resample.c — fast interpolate (nearest, bilinear),
 * forward and backward, for contiguous f32/f64 (N, C, H, W).
 *
 * The source rows and columns and their weights depend only on the output
 * position, so they are computed once per call (with the op's own coordinate
 * functions, dkh_nearest_src / dkh_linear_src) and every plane reuses them.
 * Planes are split across threads; the backward accumulates each plane's
 * gradient on one thread, so it does not depend on the thread count.
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

bool dkh_cpu_interpolate(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0];
    dk_tensor *o = c->out;
    if ((x->dtype != DK_DTYPE_F32 && x->dtype != DK_DTYPE_F64) || !dk_tensor_is_contiguous(x))
        return false;
    int64_t H = x->shape[2], W = x->shape[3], OH = o->shape[2], OW = o->shape[3];
    taps ty, tx;
    void *m = alloc_taps(OH, OW, &ty, &tx);
    if (!m)
        return false;
    make_taps(c->args, 0, H, OH, &ty);
    make_taps(c->args, 1, W, OW, &tx);
    int64_t planes = x->shape[0] * x->shape[1];
    if (x->dtype == DK_DTYPE_F32)
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

/* in = {x, NULL, g}; out = gx. */
bool dkh_cpu_interpolate_bwd(const dkh_kcall *c)
{
    const dk_tensor *g = c->in[2];
    dk_tensor *gx = c->out;
    if ((gx->dtype != DK_DTYPE_F32 && gx->dtype != DK_DTYPE_F64) || !dk_tensor_is_contiguous(g))
        return false;
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
