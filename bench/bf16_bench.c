/* bench/bf16_bench.c — what bf16 buys on this CPU: the convolution and linear
 * layers of LeNet-ish and ResNet-20 (28x28 inputs, batch 128), timed in f32
 * and under dk_autocast_begin(DK_DTYPE_BF16) (f32 tensors in and out, the
 * casts included). bf16 leaves would time the reference kernels that
 * accumulate their bf16 gradients, so there is no pure-bf16 column.
 *
 * Each pass is forward + backward of sum(y * R) with every input requiring
 * grad (as in a training step; the first layer's image does not), the median
 * of repeated runs after warm-up (bench_util.h). Output: one line per layer,
 * milliseconds per pass and the speedups over f32.
 *
 *   bf16_bench [--threads N]
 */
#include "bench_util.h"

#include <dk/dk.h>
#include <dk/nn.h>

#include <stdio.h>
#include <string.h>

enum { MODE_F32, MODE_AUTOCAST };

typedef struct layer {
    const char *name;
    bool conv;
    int64_t x[4], w[4]; /* conv: x (N, C, H, W), w (K, C, 3, 3); linear: x (N, IN), w (OUT, IN) */
    bool x_grad;
} layer;

static const layer layers[] = {
    {"lenet conv1 1->32 28x28", true, {128, 1, 28, 28}, {32, 1, 3, 3}, false},
    {"lenet conv2 32->64 14x14", true, {128, 32, 14, 14}, {64, 32, 3, 3}, true},
    {"lenet fc1 3136->128", false, {128, 3136}, {128, 3136}, true},
    {"lenet fc2 128->10", false, {128, 128}, {10, 128}, true},
    {"resnet conv 1->16 28x28", true, {128, 1, 28, 28}, {16, 1, 3, 3}, false},
    {"resnet conv 16->16 28x28", true, {128, 16, 28, 28}, {16, 16, 3, 3}, true},
    {"resnet conv 32->32 14x14", true, {128, 32, 14, 14}, {32, 32, 3, 3}, true},
    {"resnet conv 64->64 7x7", true, {128, 64, 7, 7}, {64, 64, 3, 3}, true},
    {"resnet fc 64->10", false, {128, 64}, {10, 64}, true},
};

static dk_tensor *run_layer(const layer *l, dk_tensor *x, dk_tensor *w)
{
    if (l->conv)
        return dk_conv2d(x, w, NULL, NULL, (int64_t[]){1, 1}, NULL, 1);
    return dk_linear(x, w, NULL);
}

/* Median milliseconds of one forward + backward. */
static double time_layer(const layer *l, int mode)
{
    dk_rng r;
    dk_rng_seed(&r, 1);
    int nd = l->conv ? 4 : 2;
    dk_tensor *x = dk_randn(nd, l->x, DK_DTYPE_F32, DK_CPU, &r);
    dk_tensor *w = dk_randn(nd, l->w, DK_DTYPE_F32, DK_CPU, &r);
    if (dk_tensor_set_requires_grad(w, true) != DK_OK ||
        (l->x_grad && dk_tensor_set_requires_grad(x, true) != DK_OK))
        return -1;
    dk_tensor *y0 = run_layer(l, x, w);
    if (!y0)
        return -1;
    dk_tensor *R = dk_randn(dk_tensor_ndim(y0), dk_tensor_shape(y0), DK_DTYPE_F32, DK_CPU, &r);
    double t[BENCH_MAX_REPS], total = 0;
    int n = 0;
    for (int rep = 0; rep < BENCH_WARMUP || bench_more(n, total); rep++) {
        dk_scope_begin();
        if (mode == MODE_AUTOCAST && dk_autocast_begin(DK_DTYPE_BF16) != DK_OK)
            return -1;
        double t0 = bench_now();
        dk_tensor *y = run_layer(l, x, w);
        dk_status st = dk_backward(dk_sum(dk_mul(y, R), NULL, 0, false), NULL, false);
        double dt_s = bench_now() - t0;
        if (mode == MODE_AUTOCAST && dk_autocast_end() != DK_OK)
            return -1;
        dk_tensor_zero_grad(w);
        if (l->x_grad)
            dk_tensor_zero_grad(x);
        dk_scope_end();
        if (st != DK_OK)
            return -1;
        if (rep >= BENCH_WARMUP) {
            t[n++] = dt_s * 1e3;
            total += dt_s;
        }
    }
    return bench_median(t, n);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--threads") == 0 &&
        dk_set_num_threads(atoi(argv[2])) != DK_OK) {
        fprintf(stderr, "bf16_bench: %s\n", dk_last_error());
        return 1;
    }
    printf("%-26s %9s %9s %8s   (ms per forward+backward, %d threads)\n", "layer", "f32",
           "autocast", "speedup", dk_get_num_threads());
    dk_scope_begin();
    for (size_t i = 0; i < sizeof layers / sizeof *layers; i++) {
        double ms[2];
        for (int m = 0; m < 2; m++)
            ms[m] = time_layer(&layers[i], m);
        if (ms[0] < 0 || ms[1] < 0) {
            fprintf(stderr, "bf16_bench: %s: %s\n", layers[i].name, dk_last_error());
            return 1;
        }
        printf("%-26s %9.3f %9.3f %7.2fx\n", layers[i].name, ms[0], ms[1], ms[0] / ms[1]);
    }
    dk_scope_end();
    return 0;
}
