/* bench/ops_bench.c — per-op throughput of libdk on the layers of LeNet-ish and
 * ResNet-20 (28x28 inputs, batch 128, f32), forward and backward.
 *
 * One row per layer shape (BENCH_ROWS below; adding an op is one row). For
 * each row the inputs are made once; then
 *   fwd  times the op call with grad recording on (as in a training step);
 *   bwd  re-runs the forward untimed and times dk_backward(out, R) alone,
 *        which computes every gradient the row's inputs ask for.
 * Each is the median of repeated runs after warm-up (bench_util.h). The
 * output is one META line per row (what it is, its unit and the work per
 * pass: FLOPs for conv/matmul, compulsory bytes — inputs read once, outputs
 * written once — for the rest) and one ROW line per pass, which
 * bench/report.py turns into RESULTS.md beside the peers' lines.
 *
 *   ops_bench [--threads N] [--only ID]
 */
#include "bench_util.h"
#include "layers.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Inputs: ';'-separated specs: "128,32,14,14" random normal f32 that requires
 * grad, "c..." the same without grad, "o..." a constant of ones, "iK:..." int64
 * labels in [0, K). */
#define F4 4.0 /* bytes per f32 */
#define CONV(n, c, k, r, oh, ow) (2.0 * (n) * (k) * (c) * (r) * (r) * (oh) * (ow))
#define MM(m, k, n) (2.0 * (m) * (k) * (n))

/* X(id, op, description, unit, fwd work, bwd work, inputs, expression over IN0..) */
#define BENCH_ROWS(X)                                                                         \
    /* LeNet-ish */                                                                          \
    X(lenet_conv1, conv2d, "x(128,1,28,28) w(32,1,3,3)+b p1", GFLOPS,                       \
      CONV(128, 1, 32, 3, 28, 28), CONV(128, 1, 32, 3, 28, 28),                              \
      "c128,1,28,28;32,1,3,3;32", b_conv2d(IN0, IN1, IN2, 1, 1))                             \
    X(lenet_bn1, batch_norm, "(128,32,28,28) train", GBPS, 2 * F4 * 128 * 32 * 784,          \
      3 * F4 * 128 * 32 * 784, "128,32,28,28;32;32;c32;o32",                             \
      b_batch_norm(IN0, IN1, IN2, IN3, IN4))                                                 \
    X(lenet_relu1, relu, "(128,32,28,28)", GBPS, 2 * F4 * 128 * 32 * 784,                    \
      3 * F4 * 128 * 32 * 784, "128,32,28,28", dk_relu(IN0))                                 \
    X(lenet_pool1, max_pool2d, "(128,32,28,28) 2x2/2", GBPS, 1.25 * F4 * 128 * 32 * 784,    \
      1.25 * F4 * 128 * 32 * 784, "128,32,28,28", b_max_pool2(IN0))                          \
    X(lenet_conv2, conv2d, "x(128,32,14,14) w(64,32,3,3)+b p1", GFLOPS,                     \
      CONV(128, 32, 64, 3, 14, 14), 2 * CONV(128, 32, 64, 3, 14, 14),                        \
      "128,32,14,14;64,32,3,3;64", b_conv2d(IN0, IN1, IN2, 1, 1))                            \
    X(lenet_bn2, batch_norm, "(128,64,14,14) train", GBPS, 2 * F4 * 128 * 64 * 196,          \
      3 * F4 * 128 * 64 * 196, "128,64,14,14;64;64;c64;o64", b_batch_norm(IN0, IN1, IN2, IN3, IN4)) \
    X(lenet_relu2, relu, "(128,64,14,14)", GBPS, 2 * F4 * 128 * 64 * 196,                    \
      3 * F4 * 128 * 64 * 196, "128,64,14,14", dk_relu(IN0))                                \
    X(lenet_pool2, max_pool2d, "(128,64,14,14) 2x2/2", GBPS, 1.25 * F4 * 128 * 64 * 196,    \
      1.25 * F4 * 128 * 64 * 196, "128,64,14,14", b_max_pool2(IN0))                          \
    X(lenet_fc1, linear, "x(128,3136) w(128,3136)+b", GFLOPS, MM(128, 3136, 128),            \
      2 * MM(128, 3136, 128), "128,3136;128,3136;128", dk_linear(IN0, IN1, IN2))             \
    X(lenet_fc2, linear, "x(128,128) w(10,128)+b", GFLOPS, MM(128, 128, 10),                 \
      2 * MM(128, 128, 10), "128,128;10,128;10", dk_linear(IN0, IN1, IN2))                   \
    X(lenet_xent, cross_entropy, "(128,10) mean", GBPS, F4 * 128 * 10, 2 * F4 * 128 * 10,    \
      "128,10;i10:128", b_cross_entropy(IN0, IN1))                                           \
    X(lenet_log_softmax, log_softmax, "(128,10) dim 1", GBPS, 2 * F4 * 128 * 10,             \
      3 * F4 * 128 * 10, "128,10", dk_log_softmax(IN0, 1))                                   \
    /* ResNet-20 */                                                                          \
    X(r20_conv_stem, conv2d, "x(128,1,28,28) w(16,1,3,3) p1", GFLOPS,                        \
      CONV(128, 1, 16, 3, 28, 28), CONV(128, 1, 16, 3, 28, 28), "c128,1,28,28;16,1,3,3",    \
      b_conv2d(IN0, IN1, NULL, 1, 1))                                                        \
    X(r20_conv16, conv2d, "x(128,16,28,28) w(16,16,3,3) p1", GFLOPS,                         \
      CONV(128, 16, 16, 3, 28, 28), 2 * CONV(128, 16, 16, 3, 28, 28),                        \
      "128,16,28,28;16,16,3,3", b_conv2d(IN0, IN1, NULL, 1, 1))                              \
    X(r20_conv16to32s2, conv2d, "x(128,16,28,28) w(32,16,3,3) s2 p1", GFLOPS,                \
      CONV(128, 16, 32, 3, 14, 14), 2 * CONV(128, 16, 32, 3, 14, 14),                        \
      "128,16,28,28;32,16,3,3", b_conv2d(IN0, IN1, NULL, 2, 1))                              \
    X(r20_conv32, conv2d, "x(128,32,14,14) w(32,32,3,3) p1", GFLOPS,                         \
      CONV(128, 32, 32, 3, 14, 14), 2 * CONV(128, 32, 32, 3, 14, 14),                        \
      "128,32,14,14;32,32,3,3", b_conv2d(IN0, IN1, NULL, 1, 1))                              \
    X(r20_conv32to64s2, conv2d, "x(128,32,14,14) w(64,32,3,3) s2 p1", GFLOPS,                \
      CONV(128, 32, 64, 3, 7, 7), 2 * CONV(128, 32, 64, 3, 7, 7),                            \
      "128,32,14,14;64,32,3,3", b_conv2d(IN0, IN1, NULL, 2, 1))                              \
    X(r20_conv64, conv2d, "x(128,64,7,7) w(64,64,3,3) p1", GFLOPS,                           \
      CONV(128, 64, 64, 3, 7, 7), 2 * CONV(128, 64, 64, 3, 7, 7), "128,64,7,7;64,64,3,3",   \
      b_conv2d(IN0, IN1, NULL, 1, 1))                                                        \
    X(r20_bn16, batch_norm, "(128,16,28,28) train", GBPS, 2 * F4 * 128 * 16 * 784,           \
      3 * F4 * 128 * 16 * 784, "128,16,28,28;16;16;c16;o16", b_batch_norm(IN0, IN1, IN2, IN3, IN4)) \
    X(r20_bn32, batch_norm, "(128,32,14,14) train", GBPS, 2 * F4 * 128 * 32 * 196,           \
      3 * F4 * 128 * 32 * 196, "128,32,14,14;32;32;c32;o32", b_batch_norm(IN0, IN1, IN2, IN3, IN4)) \
    X(r20_bn64, batch_norm, "(128,64,7,7) train", GBPS, 2 * F4 * 128 * 64 * 49,              \
      3 * F4 * 128 * 64 * 49, "128,64,7,7;64;64;c64;o64", b_batch_norm(IN0, IN1, IN2, IN3, IN4)) \
    X(r20_relu16, relu, "(128,16,28,28)", GBPS, 2 * F4 * 128 * 16 * 784,                     \
      3 * F4 * 128 * 16 * 784, "128,16,28,28", dk_relu(IN0))                                 \
    X(r20_add16, add, "(128,16,28,28) + same", GBPS, 3 * F4 * 128 * 16 * 784,                \
      3 * F4 * 128 * 16 * 784, "128,16,28,28;128,16,28,28", dk_add(IN0, IN1))                \
    X(r20_avgpool, mean, "(128,64,7,7) over H,W", GBPS, F4 * 128 * 64 * 50,                  \
      F4 * 128 * 64 * 50, "128,64,7,7", dk_mean(IN0, (int[]){2, 3}, 2, false))               \
    X(r20_shortcut_a, slice, "(128,16,28,28)[:,:,::2,::2] copy", GBPS,                       \
      1.25 * F4 * 128 * 16 * 784, 1.25 * F4 * 128 * 16 * 784, "128,16,28,28",               \
      dk_contiguous(dk_slice(dk_slice(IN0, 2, 0, 28, 2), 3, 0, 28, 2)))                      \
    /* The same on a channels-last input, as it arrives in training: the leaf is  \
     * (N, H, W, C) and the permuted view (N, C, H, W) with strides (HWC, 1, WC, C). */    \
    X(r20_shortcut_a_cl, slice, "(128,16,28,28) channels-last [:,:,::2,::2] copy", GBPS,     \
      1.25 * F4 * 128 * 16 * 784, 1.25 * F4 * 128 * 16 * 784, "128,28,28,16",                \
      dk_contiguous(dk_slice(dk_slice(dk_permute(IN0, 4, (int[]){0, 3, 1, 2}), 2, 0, 28, 2), \
                             3, 0, 28, 2)))                                                  \
    X(r20_fc, linear, "x(128,64) w(10,64)+b", GFLOPS, MM(128, 64, 10), 2 * MM(128, 64, 10),  \
      "128,64;10,64;10", dk_linear(IN0, IN1, IN2))                                           \
    /* Classifier heads, detectors and segmentation: losses, softmax, indexing, resampling */ \
    X(cls_xent_64x1000, cross_entropy, "(64,1000) mean", GBPS, F4 * 64 * 1000,               \
      2 * F4 * 64 * 1000, "64,1000;i1000:64", b_cross_entropy(IN0, IN1))                     \
    X(cls_xent_256x1000, cross_entropy, "(256,1000) mean", GBPS, F4 * 256 * 1000,            \
      2 * F4 * 256 * 1000, "256,1000;i1000:256", b_cross_entropy(IN0, IN1))                  \
    X(seg_xent, cross_entropy, "(8,21,128,128) mean", GBPS, F4 * 8 * 21 * 16384,             \
      2 * F4 * 8 * 21 * 16384, "8,21,128,128;i21:8,128,128", b_cross_entropy(IN0, IN1))      \
    X(cls_nll_64x1000, nll_loss, "(64,1000) mean", GBPS, F4 * 64, 2 * F4 * 64 * 1000,        \
      "64,1000;i1000:64", dk_nll_loss(IN0, IN1, NULL, -100, DK_REDUCTION_MEAN))              \
    X(cls_softmax_64x1000, softmax, "(64,1000) dim 1", GBPS, 2 * F4 * 64 * 1000,             \
      3 * F4 * 64 * 1000, "64,1000", dk_softmax(IN0, 1))                                     \
    X(cls_log_softmax_64x1000, log_softmax, "(64,1000) dim 1", GBPS, 2 * F4 * 64 * 1000,     \
      3 * F4 * 64 * 1000, "64,1000", dk_log_softmax(IN0, 1))                                 \
    X(seg_softmax, softmax, "(8,21,128,128) dim 1", GBPS, 2 * F4 * 8 * 21 * 16384,           \
      3 * F4 * 8 * 21 * 16384, "8,21,128,128", dk_softmax(IN0, 1))                           \
    X(det_dropout, dropout, "(8,64,64,64) p 0.5", GBPS, 2 * F4 * 8 * 64 * 4096,              \
      2 * F4 * 8 * 64 * 4096, "8,64,64,64", dk_dropout(IN0, 0.5, true, &rng))                \
    X(det_nearest_x2, interpolate, "(8,64,64,64) nearest x2", GBPS, 5 * F4 * 8 * 64 * 4096,  \
      5 * F4 * 8 * 64 * 4096, "8,64,64,64",                                                  \
      dk_interpolate(IN0, NULL, (double[]){2, 2}, DK_INTERP_NEAREST, false))                 \
    X(det_bilinear_x2, interpolate, "(8,64,64,64) bilinear x2", GBPS,                        \
      5 * F4 * 8 * 64 * 4096, 5 * F4 * 8 * 64 * 4096, "8,64,64,64",                         \
      dk_interpolate(IN0, NULL, (double[]){2, 2}, DK_INTERP_BILINEAR, false))                \
    X(det_pad, pad, "(8,64,64,64) constant 1", GBPS, 2 * F4 * 8 * 64 * 4096,                 \
      2 * F4 * 8 * 64 * 4096, "8,64,64,64",                                                  \
      dk_pad(IN0, (int64_t[]){1, 1, 1, 1}, 4, DK_PAD_CONSTANT, 0))                           \
    X(det_pad_reflect, pad, "(8,64,64,64) reflect 1", GBPS, 2 * F4 * 8 * 64 * 4096,          \
      2 * F4 * 8 * 64 * 4096, "8,64,64,64",                                                  \
      dk_pad(IN0, (int64_t[]){1, 1, 1, 1}, 4, DK_PAD_REFLECT, 0))                            \
    X(idx_gather, gather, "x(128,4096) dim 1 idx(128,1024)", GBPS, 3 * F4 * 128 * 1024,      \
      3 * F4 * 128 * 1024, "128,4096;i4096:128,1024", dk_gather(IN0, 1, IN1))                \
    X(idx_scatter_add, scatter, "x(128,4096) dim 1 idx(128,1024) add", GBPS,                 \
      2 * F4 * 128 * 4096, 2 * F4 * 128 * 4096, "128,4096;i4096:128,1024;128,1024",          \
      dk_scatter_add(IN0, 1, IN1, IN2))                                                      \
    X(idx_index_select, index_select, "x(16384,256) dim 0 idx(4096)", GBPS,                  \
      2 * F4 * 4096 * 256, 2 * F4 * 4096 * 256, "16384,256;i16384:4096",                     \
      dk_index_select(IN0, 0, IN1))                                                          \
    X(idx_index_put, index_put, "x(16384,256) dim 0 idx(4096) accumulate", GBPS,             \
      2 * F4 * 16384 * 256, 2 * F4 * 16384 * 256, "16384,256;i16384:4096;4096,256",          \
      dk_index_put(IN0, 0, IN1, IN2, true))                                                  \
    X(det_sort, sort, "(8,20000) dim 1 desc", GBPS, 2 * F4 * 8 * 20000, 2 * F4 * 8 * 20000,  \
      "8,20000", dk_sort(IN0, 1, true, NULL))                                                \
    X(det_topk, topk, "(8,20000) k 1000", GBPS, F4 * 8 * 20000, 2 * F4 * 8 * 20000,          \
      "8,20000", dk_topk(IN0, 1000, 1, true, NULL))                                          \
    X(cls_max_dim, max_dim, "(256,1000) dim 1", GBPS, F4 * 256 * 1000, F4 * 256 * 1000,      \
      "256,1000", dk_max_dim(IN0, 1, false, NULL))                                           \
    X(emb_norm, norm, "(4096,256) dim 1", GBPS, F4 * 4096 * 256, 2 * F4 * 4096 * 256,        \
      "4096,256", dk_norm(IN0, (int[]){1}, 1, false))

/* The generator of the random inputs; dropout rows draw their masks from it too. */
static dk_rng rng;

#define IN0 in[0]
#define IN1 in[1]
#define IN2 in[2]
#define IN3 in[3]
#define IN4 in[4]

typedef dk_tensor *(*row_fn)(dk_tensor *const *in);

typedef struct bench_row {
    const char *id, *op, *desc, *unit;
    double work_fwd, work_bwd;
    const char *inputs;
    row_fn fn;
} bench_row;

#define GFLOPS "GFLOP/s"
#define GBPS "GB/s"

#define ROW_DEF_(id, op, desc, unit, wf, wb, inputs, expr) \
    static dk_tensor *row_##id(dk_tensor *const *in) { return (expr); }
BENCH_ROWS(ROW_DEF_)
#undef ROW_DEF_

static const bench_row ROWS[] = {
#define ROW_ROW_(id, op, desc, unit, wf, wb, inputs, expr) {#id, #op, desc, unit, wf, wb, inputs, row_##id},
    BENCH_ROWS(ROW_ROW_)
#undef ROW_ROW_
};

static dk_tensor *make_input(const char *p, size_t len)
{
    const char *end = p + len;
    char kind = 'f';
    int64_t range = 0;
    if (strchr("cio", *p))
        kind = *p++;
    if (kind == 'i') {
        range = strtoll(p, (char **)&p, 10);
        p++; /* ':' */
    }
    int nd = 0;
    int64_t shape[DK_MAX_DIMS];
    while (p < end) {
        shape[nd++] = strtoll(p, (char **)&p, 10);
        if (p < end && *p == ',')
            p++;
    }
    dk_tensor *t;
    if (kind == 'o')
        t = dk_ones(nd, shape, DK_DTYPE_F32, DK_CPU);
    else if (kind == 'i')
        t = dk_cast(dk_mul_scalar(dk_rand(nd, shape, DK_DTYPE_F64, DK_CPU, &rng), (double)range),
                    DK_DTYPE_I64);
    else
        t = dk_randn(nd, shape, DK_DTYPE_F32, DK_CPU, &rng);
    if (t && kind == 'f' && dk_tensor_set_requires_grad(t, true) != DK_OK)
        return NULL;
    return t;
}

static void run_row(const bench_row *r)
{
    printf("META id=%s op=%s unit=%s work_fwd=%.6g work_bwd=%.6g desc=\"%s\"\n", r->id, r->op, r->unit,
           r->work_fwd, r->work_bwd, r->desc);
    dk_tensor *in[8] = {0};
    int n_in = 0;
    bool was = dk_grad_set_enabled(false);
    for (const char *p = r->inputs; *p;) {
        size_t len = strcspn(p, ";");
        in[n_in++] = make_input(p, len);
        p += len + (p[len] == ';');
    }
    dk_grad_set_enabled(was);

    /* A row whose op fails is reported, not timed. */
    dk_scope_begin();
    dk_tensor *probe = r->fn(in);
    dk_scope_end();
    if (!probe) {
        const char *why = dk_last_error();
        printf("ROW dk id=%s pass=fwd status=error reason=%s\n", r->id, why);
        printf("ROW dk id=%s pass=bwd status=error reason=%s\n", r->id, why);
        goto done;
    }

    double t[BENCH_MAX_REPS], total = 0;
    int n = 0;
    for (int w = -BENCH_WARMUP; bench_more(n, total); w++) {
        dk_scope_begin();
        double t0 = bench_now();
        dk_tensor *out = r->fn(in);
        double dt = bench_now() - t0;
        (void)out;
        dk_scope_end();
        if (w >= 0) {
            t[n++] = dt;
            total += dt;
        }
    }
    printf("ROW dk id=%s pass=fwd ms=%.4f\n", r->id, 1e3 * bench_median(t, n));

    n = 0;
    total = 0;
    bool has_bwd = false;
    for (int w = -BENCH_WARMUP; bench_more(n, total); w++) {
        dk_scope_begin();
        for (int i = 0; i < n_in; i++)
            if (dk_tensor_grad(in[i]))
                dk_tensor_zero_grad(in[i]);
        dk_tensor *out = r->fn(in);
        if (!dk_tensor_requires_grad(out)) {
            dk_scope_end();
            break;
        }
        has_bwd = true;
        bool g = dk_grad_set_enabled(false);
        dk_tensor *gout = dk_ones(dk_tensor_ndim(out), dk_tensor_shape(out), DK_DTYPE_F32, DK_CPU);
        dk_grad_set_enabled(g);
        double t0 = bench_now();
        dk_status st = dk_backward(out, gout, false);
        double dt = bench_now() - t0;
        dk_scope_end();
        if (st != DK_OK) {
            printf("ROW dk id=%s pass=bwd status=error reason=%s\n", r->id, dk_last_error());
            has_bwd = false;
            n = -1;
            break;
        }
        if (w >= 0) {
            t[n++] = dt;
            total += dt;
        }
    }
    if (has_bwd && n > 0)
        printf("ROW dk id=%s pass=bwd ms=%.4f\n", r->id, 1e3 * bench_median(t, n));
done:
    for (int i = 0; i < n_in; i++)
        dk_tensor_release(in[i]);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int threads = 2;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr, "usage: ops_bench [--threads N] [--only ID]\n");
            return 2;
        }
    }
    omp_set_num_threads(threads);
    dk_rng_seed(&rng, 1);
    printf("DK threads=%d version=%s\n", threads, DK_VERSION_STRING);
    for (size_t i = 0; i < sizeof ROWS / sizeof *ROWS; i++)
        if (!only || !strcmp(only, ROWS[i].id))
            run_row(&ROWS[i]);
    return 0;
}
