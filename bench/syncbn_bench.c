/* bench/syncbn_bench.c — the synchronised batch norm (core/tensor/bn_sync.h)
 * against the ordinary one, forward and backward, on one process.
 *
 * A trivial hook is installed (every layer synchronised, the sum over the
 * processes a no-op), so the synchronised path computes the statistics of
 * the local batch, as the ordinary op does, and what is timed is its own
 * arithmetic without any communication. Each row is one layer shape of
 * ResNet-20 (batch 128, 28x28 inputs; and (64, 16, 32, 32)), f32, in plain
 * NCHW and channels-last (the view (N, C, H, W) of an (N, H, W, C) leaf, as
 * convolutions hand it over). One repetition is a forward (grad recording on)
 * and dk_backward of its output; the ordinary and the synchronised layer
 * alternate within the loop, so a load on the machine shifts both alike, and
 * each is the median of its repetitions (bench_util.h's rule, applied to the
 * pair). Every row also prints the largest difference between the two
 * paths' outputs and input gradients, which only rounding should separate.
 *
 *   OMP_WAIT_POLICY=passive syncbn_bench [--threads N]...     (default: 1 and 2)
 *
 * Passive: on a machine that other work keeps busy, a thread spinning at the
 * end of a parallel region waits for its descheduled partner, and both layers
 * then measure as multiples of the scheduler's slice (16 to 48 ms here).
 *
 * Output: one line per row and thread count:
 *   ROW shape=128,16,28,28 layout=nchw threads=1 plain_ms=... sync_ms=... ratio=... dy=... dgx=...
 */
#include "bench_util.h"

#include "tensor/bn_sync.h"

#include <dk/dk.h>

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool every_layer(void *ctx, const dk_tensor *running_mean, const dk_tensor *weight)
{
    (void)ctx;
    (void)running_mean;
    (void)weight;
    return true;
}

/* One process: the sum over the processes is the buffer itself. */
static dk_status sum_of_one(void *ctx, double *buf, size_t n)
{
    (void)ctx;
    (void)buf;
    (void)n;
    return DK_OK;
}

typedef struct layer {
    dk_tensor *x, *w, *b, *rm, *rv, *gy; /* x (N, C, H, W), possibly channels-last */
} layer;

/* Forward and backward of one training batch norm; false (message printed)
 * when either fails. *y and *gx: copies of the output and the input gradient
 * when asked for (new; the caller frees them). */
static bool fwd_bwd(layer *l, float **y, float **gx)
{
    dk_tensor_zero_grad(l->x);
    dk_tensor_zero_grad(l->w);
    dk_tensor_zero_grad(l->b);
    dk_scope_begin();
    dk_tensor *out = dk_batch_norm(l->x, l->w, l->b, l->rm, l->rv, true, 0.1, 1e-5);
    bool ok = out && dk_backward(out, l->gy, false) == DK_OK;
    if (!ok)
        fprintf(stderr, "syncbn_bench: %s\n", dk_last_error());
    if (ok && y && gx) {
        /* Both copied in (N, C, H, W) order, whatever the layout. */
        dk_tensor *yc = dk_contiguous(out), *gc = dk_contiguous(dk_tensor_grad(l->x));
        size_t n = (size_t)dk_tensor_numel(out) * sizeof(float);
        *y = malloc(n);
        *gx = malloc(n);
        ok = yc && gc && *y && *gx;
        if (ok) {
            memcpy(*y, dk_tensor_data(yc), n);
            memcpy(*gx, dk_tensor_data(gc), n);
        }
    }
    dk_scope_end();
    return ok;
}

static double max_diff(const float *a, const float *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++)
        m = fmax(m, fabs((double)a[i] - (double)b[i]));
    return m;
}

static dk_tensor *leaf(dk_tensor *t)
{
    if (!t || dk_tensor_set_requires_grad(t, true) != DK_OK) {
        fprintf(stderr, "syncbn_bench: %s\n", dk_last_error());
        exit(1);
    }
    return t;
}

static void run_row(const int64_t *shape, bool channels_last, int threads, dk_rng *rng)
{
    const dkh_bn_sync sync = {.ctx = NULL, .applies = every_layer, .all_reduce_sum = sum_of_one};
    int64_t C = shape[1], numel = shape[0] * shape[1] * shape[2] * shape[3];
    int64_t nhwc[4] = {shape[0], shape[2], shape[3], shape[1]};
    bool was = dk_grad_set_enabled(false);
    layer l;
    if (channels_last) {
        /* The leaf is (N, H, W, C); the layer sees the view (N, C, H, W). */
        const int perm[4] = {0, 3, 1, 2};
        l.x = leaf(
            dk_permute(dk_add_scalar(dk_randn(4, nhwc, DK_DTYPE_F32, DK_CPU, rng), 1.5), 4, perm));
        l.gy = dk_permute(dk_randn(4, nhwc, DK_DTYPE_F32, DK_CPU, rng), 4, perm);
    } else {
        l.x = leaf(dk_add_scalar(dk_randn(4, shape, DK_DTYPE_F32, DK_CPU, rng), 1.5));
        l.gy = dk_randn(4, shape, DK_DTYPE_F32, DK_CPU, rng);
    }
    l.w = leaf(dk_add_scalar(dk_rand(1, &C, DK_DTYPE_F32, DK_CPU, rng), 0.5));
    l.b = leaf(dk_rand(1, &C, DK_DTYPE_F32, DK_CPU, rng));
    l.rm = dk_zeros(1, &C, DK_DTYPE_F32, DK_CPU);
    l.rv = dk_ones(1, &C, DK_DTYPE_F32, DK_CPU);
    dk_grad_set_enabled(was);
    omp_set_num_threads(threads);

    float *y[2] = {NULL}, *gx[2] = {NULL};
    bool ok = fwd_bwd(&l, &y[0], &gx[0]);
    dkh_bn_sync_set(&sync);
    ok = ok && fwd_bwd(&l, &y[1], &gx[1]);
    dkh_bn_sync_set(NULL);
    if (!ok)
        exit(1);
    double dy = max_diff(y[0], y[1], numel), dg = max_diff(gx[0], gx[1], numel);

    double t[2][BENCH_MAX_REPS], total = 0;
    int n = 0;
    for (int w = -BENCH_WARMUP; bench_more(n, total); w++) {
        double dt[2];
        for (int k = 0; k < 2; k++) {
            dkh_bn_sync_set(k ? &sync : NULL);
            double t0 = bench_now();
            if (!fwd_bwd(&l, NULL, NULL))
                exit(1);
            dt[k] = bench_now() - t0;
        }
        dkh_bn_sync_set(NULL);
        if (w >= 0) {
            t[0][n] = dt[0];
            t[1][n] = dt[1];
            total += dt[0] + dt[1];
            n++;
        }
    }
    double plain = bench_median(t[0], n), synced = bench_median(t[1], n);
    printf("ROW shape=%lld,%lld,%lld,%lld layout=%s threads=%d plain_ms=%.3f sync_ms=%.3f "
           "ratio=%.2f dy=%.2g dgx=%.2g\n",
           (long long)shape[0], (long long)shape[1], (long long)shape[2], (long long)shape[3],
           channels_last ? "nhwc" : "nchw", threads, 1e3 * plain, 1e3 * synced, synced / plain, dy,
           dg);
    fflush(stdout);
    for (int k = 0; k < 2; k++) {
        free(y[k]);
        free(gx[k]);
    }
}

int main(int argc, char **argv)
{
    int threads[8] = {1, 2}, n_threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc && n_threads < 8)
            threads[n_threads++] = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: syncbn_bench [--threads N]...\n");
            return 2;
        }
    }
    if (!n_threads)
        n_threads = 2;
    static const int64_t shapes[][4] = {
        {128, 16, 28, 28}, {128, 32, 14, 14}, {128, 64, 7, 7}, {64, 16, 32, 32}};
    dk_rng rng;
    dk_rng_seed(&rng, 1);
    printf("DK version=%s\n", DK_VERSION_STRING);
    for (int ti = 0; ti < n_threads; ti++)
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
            for (int cl = 0; cl < 2; cl++) {
                dk_scope_begin();
                run_row(shapes[s], cl, threads[ti], &rng);
                dk_scope_end();
            }
    return 0;
}
