/* bench/dk_compat.h — the ops bench/ calls that other families are still adding.
 *
 * bench/CMakeLists.txt compiles each call below against the current headers
 * and defines DKB_HAVE_<OP> when it compiles, so the benchmarks build whatever
 * the tree holds: a missing op (or one whose signature changed) makes its
 * wrapper fail with DK_ERR_UNSUPPORTED "not implemented", and the tables say
 * so instead of the build breaking. The CALL_* macros are the exact calls the
 * configure checks compile.
 */
#ifndef DK_BENCH_COMPAT_H
#define DK_BENCH_COMPAT_H

#include <dk/dk.h>

#define CALL_CONV2D(x, w, b, st, pd) dk_conv2d((x), (w), (b), (st), (pd), NULL, 1)
#define CALL_BATCH_NORM(x, g, b, rm, rv) dk_batch_norm((x), (g), (b), (rm), (rv), true, 0.1, 1e-5)
#define CALL_MAX_POOL2D(x, k) dk_max_pool2d((x), (k), NULL, NULL, NULL, false)
#define CALL_CROSS_ENTROPY(x, t) dk_cross_entropy((x), (t), NULL, -100, 0.0, DK_REDUCTION_MEAN)

static inline dk_tensor *dkb_missing(const char *what)
{
    (void)dk_fail(DK_ERR_UNSUPPORTED, "not implemented: %s", what);
    return NULL;
}

static inline dk_tensor *b_conv2d(dk_tensor *x, dk_tensor *w, dk_tensor *b, int64_t stride,
                                  int64_t pad)
{
#ifdef DKB_HAVE_CONV2D
    const int64_t st[2] = {stride, stride}, pd[2] = {pad, pad};
    return CALL_CONV2D(x, w, b, st, pd);
#else
    (void)x, (void)w, (void)b, (void)stride, (void)pad;
    return dkb_missing("dk_conv2d");
#endif
}

/* Training-mode batch norm (batch statistics; running stats updated when the op has them). */
static inline dk_tensor *b_batch_norm(dk_tensor *x, dk_tensor *g, dk_tensor *b, dk_tensor *rm,
                                      dk_tensor *rv)
{
#ifdef DKB_HAVE_BATCH_NORM
    return CALL_BATCH_NORM(x, g, b, rm, rv);
#else
    (void)x, (void)g, (void)b, (void)rm, (void)rv;
    return dkb_missing("dk_batch_norm");
#endif
}

static inline dk_tensor *b_max_pool2(dk_tensor *x)
{
#ifdef DKB_HAVE_MAX_POOL2D
    const int64_t k[2] = {2, 2};
    return CALL_MAX_POOL2D(x, k);
#else
    (void)x;
    return dkb_missing("dk_max_pool2d");
#endif
}

/* Mean cross-entropy of logits (N, K) against int64 labels (N). */
static inline dk_tensor *b_cross_entropy(dk_tensor *x, dk_tensor *t)
{
#ifdef DKB_HAVE_CROSS_ENTROPY
    return CALL_CROSS_ENTROPY(x, t);
#else
    (void)x, (void)t;
    return dkb_missing("dk_cross_entropy");
#endif
}

/* The same layers composed from core ops: what the whole-step benchmark uses
 * while a fused op is missing (slower, same values up to rounding). */
static inline dk_tensor *c_batch_norm(dk_tensor *x, dk_tensor *g, dk_tensor *b)
{
    int dims[3] = {0, 2, 3};
    int64_t cshape[4] = {1, -1, 1, 1};
    dk_tensor *m = dk_mean(x, dims, 3, true);
    dk_tensor *v = dk_var(x, dims, 3, 0, true);
    dk_tensor *xh = dk_mul(dk_sub(x, m), dk_rsqrt(dk_add_scalar(v, 1e-5)));
    return dk_add(dk_mul(xh, dk_reshape(g, 4, cshape)), dk_reshape(b, 4, cshape));
}

static inline dk_tensor *c_max_pool2(dk_tensor *x)
{
    const int64_t *s = dk_tensor_shape(x);
    if (!s)
        return NULL;
    int64_t sh[6] = {s[0], s[1], s[2] / 2, 2, s[3] / 2, 2};
    return dk_amax(dk_reshape(x, 6, sh), (int[]){3, 5}, 2, false);
}

static inline dk_tensor *c_cross_entropy(dk_tensor *x, dk_tensor *t)
{
    const int64_t *s = dk_tensor_shape(x);
    if (!s || !t)
        return NULL;
    dk_tensor *cls = dk_arange(0, (double)s[1], 1, DK_DTYPE_I64, DK_CPU);
    dk_tensor *onehot = dk_cast(dk_eq(dk_unsqueeze(t, 1), cls), dk_tensor_dtype(x));
    dk_tensor *nll = dk_sum(dk_mul(onehot, dk_log_softmax(x, 1)), (int[]){1}, 1, false);
    return dk_neg(dk_mean(nll, NULL, 0, false));
}

#endif /* DK_BENCH_COMPAT_H */
