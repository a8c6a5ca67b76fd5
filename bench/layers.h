/* bench/layers.h — the layer calls the benchmarks share, with the arguments
 * the LeNet-ish and ResNet-20 steps use (so ops_bench and step_bench time the
 * exact same calls). */
#ifndef DK_BENCH_LAYERS_H
#define DK_BENCH_LAYERS_H

#include <dk/dk.h>

/* 3x3-style convolution with a square stride and padding. */
static inline dk_tensor *b_conv2d(dk_tensor *x, dk_tensor *w, dk_tensor *b, int64_t stride,
                                  int64_t pad)
{
    const int64_t st[2] = {stride, stride}, pd[2] = {pad, pad};
    return dk_conv2d(x, w, b, st, pd, NULL, 1);
}

/* Training-mode batch norm: batch statistics, running statistics updated. */
static inline dk_tensor *b_batch_norm(dk_tensor *x, dk_tensor *g, dk_tensor *b, dk_tensor *rm,
                                      dk_tensor *rv)
{
    return dk_batch_norm(x, g, b, rm, rv, true, 0.1, 1e-5);
}

/* 2x2 max-pool, stride 2. */
static inline dk_tensor *b_max_pool2(dk_tensor *x)
{
    const int64_t k[2] = {2, 2};
    return dk_max_pool2d(x, k, NULL, NULL, NULL, false);
}

/* Mean cross-entropy of logits (N, K) against int64 labels (N). */
static inline dk_tensor *b_cross_entropy(dk_tensor *x, dk_tensor *t)
{
    return dk_cross_entropy(x, t, NULL, -100, 0.0, DK_REDUCTION_MEAN);
}

#endif /* DK_BENCH_LAYERS_H */
