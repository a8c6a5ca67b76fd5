/* bench/step_bench.c — the whole training step of LeNet-ish and ResNet-20,
 * written against the dk ops API the way a model plugin would write it.
 *
 * A step = zero_grad + forward + cross-entropy + backward + SGD (lr 0.05,
 * momentum 0.9), batch 128 of 1x28x28 inputs, f32. The models are those of
 * /work/shared/machine-peaks.md (and bench/torch_step.py, the PyTorch peer):
 *   lenet     conv(1->32,3x3,p1)+BN+ReLU+maxpool, conv(32->64)+BN+ReLU+maxpool,
 *             fc 3136->128+ReLU, fc 128->10
 *   resnet20  conv(1->16)+BN+ReLU, 3 stages x 3 basic blocks (16/32/64 ch,
 *             option-A shortcuts: subsample + zero-pad channels), global average
 *             pool, fc 64->10
 * The data are synthetic (normal inputs, uniform labels), pre-built before
 * the clock starts: throughput does not depend on pixel values. Reports the
 * median step time (img/s) after warm-up, the allocator's peak bytes
 * (dk_memory_stats_get) and the process's peak RSS.
 *
 *   step_bench --model lenet|resnet20 [--threads 2] [--warmup 10] [--steps 60]
 */
#include "bench_util.h"
#include "layers.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define BATCH 128
#define MAX_PARAMS 128
#define LR 0.05f
#define MOMENTUM 0.9f

/* ---- parameters and the optimizer ------------------------------------------------------ */

typedef struct param {
    dk_tensor *p;   /* retained leaf, requires grad */
    float *mom;     /* momentum buffer, numel floats */
} param;

static param params[MAX_PARAMS];
static int n_params;
static dk_tensor *buffers[MAX_PARAMS]; /* BN running stats, retained */
static int n_buffers;
static dk_rng rng;
static size_t n_weights;

/* A parameter initialised like PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
static dk_tensor *new_param(int ndim, const int64_t *shape, double fan_in, double fill)
{
    dk_tensor *t;
    if (isnan(fill)) {
        double bound = 1.0 / sqrt(fan_in);
        t = dk_add_scalar(dk_mul_scalar(dk_rand(ndim, shape, DK_DTYPE_F32, DK_CPU, &rng), 2 * bound),
                          -bound);
    } else {
        t = dk_full(ndim, shape, fill, DK_DTYPE_F32, DK_CPU);
    }
    if (!t || dk_tensor_set_requires_grad(t, true) != DK_OK || n_params == MAX_PARAMS) {
        fprintf(stderr, "step_bench: parameter: %s\n", dk_last_error());
        exit(1);
    }
    params[n_params].p = dk_tensor_retain(t);
    params[n_params].mom = calloc((size_t)dk_tensor_numel(t), sizeof(float));
    n_params++;
    n_weights += (size_t)dk_tensor_numel(t);
    return t;
}

static dk_tensor *new_buffer(int64_t c, double fill)
{
    dk_tensor *t = dk_full(1, &c, fill, DK_DTYPE_F32, DK_CPU);
    buffers[n_buffers++] = dk_tensor_retain(t);
    return t;
}

/* SGD with momentum (PyTorch's rule: v = m v + g; p -= lr v), in place on the
 * parameters' storage, as an optimizer in the host would do it. */
static void sgd_step(void)
{
    for (int i = 0; i < n_params; i++) {
        dk_tensor *g = dk_tensor_grad(params[i].p);
        if (!g)
            continue;
        float *p = dk_tensor_data(params[i].p), *v = params[i].mom;
        const float *gd = dk_tensor_data(g);
        int64_t n = dk_tensor_numel(params[i].p);
#pragma omp parallel for schedule(static) if (n > 32768)
        for (int64_t k = 0; k < n; k++) {
            v[k] = MOMENTUM * v[k] + gd[k];
            p[k] -= LR * v[k];
        }
    }
}

static void zero_grad(void)
{
    for (int i = 0; i < n_params; i++)
        if (dk_tensor_grad(params[i].p))
            dk_tensor_zero_grad(params[i].p);
}

/* ---- layers ------------------------------------------------------------------------------ */

typedef struct conv_l {
    dk_tensor *w, *b;
    int64_t stride;
} conv_l;

typedef struct bn_l {
    dk_tensor *g, *b, *rm, *rv;
} bn_l;

typedef struct fc_l {
    dk_tensor *w, *b;
} fc_l;

static conv_l conv_new(int64_t cin, int64_t cout, int64_t stride, bool bias)
{
    int64_t ws[4] = {cout, cin, 3, 3};
    conv_l c = {new_param(4, ws, (double)cin * 9, NAN), NULL, stride};
    if (bias)
        c.b = new_param(1, &cout, (double)cin * 9, NAN);
    return c;
}

static bn_l bn_new(int64_t c)
{
    bn_l b = {new_param(1, &c, 1, 1.0), new_param(1, &c, 1, 0.0), new_buffer(c, 0.0),
              new_buffer(c, 1.0)};
    return b;
}

static fc_l fc_new(int64_t in, int64_t out)
{
    int64_t ws[2] = {out, in};
    fc_l f = {new_param(2, ws, (double)in, NAN), new_param(1, &out, (double)in, NAN)};
    return f;
}

static dk_tensor *conv_fwd(const conv_l *c, dk_tensor *x)
{
    return b_conv2d(x, c->w, c->b, c->stride, 1);
}

static dk_tensor *bn_fwd(const bn_l *b, dk_tensor *x)
{
    return b_batch_norm(x, b->g, b->b, b->rm, b->rv);
}

static dk_tensor *pool_fwd(dk_tensor *x)
{
    return b_max_pool2(x);
}

static dk_tensor *xent(dk_tensor *logits, dk_tensor *labels)
{
    return b_cross_entropy(logits, labels);
}

/* ---- LeNet-ish ------------------------------------------------------------------------------ */

static struct {
    conv_l c1, c2;
    bn_l b1, b2;
    fc_l f1, f2;
} lenet;

static void lenet_build(void)
{
    lenet.c1 = conv_new(1, 32, 1, true);
    lenet.b1 = bn_new(32);
    lenet.c2 = conv_new(32, 64, 1, true);
    lenet.b2 = bn_new(64);
    lenet.f1 = fc_new(64 * 7 * 7, 128);
    lenet.f2 = fc_new(128, 10);
}

static dk_tensor *lenet_fwd(dk_tensor *x) /* (N, 1, 28, 28) -> (N, 10) */
{
    x = pool_fwd(dk_relu(bn_fwd(&lenet.b1, conv_fwd(&lenet.c1, x)))); /* (N, 32, 14, 14) */
    x = pool_fwd(dk_relu(bn_fwd(&lenet.b2, conv_fwd(&lenet.c2, x)))); /* (N, 64, 7, 7) */
    x = dk_relu(dk_linear(dk_flatten(x, 1, -1), lenet.f1.w, lenet.f1.b)); /* (N, 128) */
    return dk_linear(x, lenet.f2.w, lenet.f2.b);
}

/* ---- ResNet-20 ------------------------------------------------------------------------------ */

typedef struct block {
    conv_l c1, c2;
    bn_l b1, b2;
    int64_t cin, cout;
    bool down; /* option-A shortcut: subsample and zero-pad the channels */
} block;

static struct {
    conv_l c;
    bn_l b;
    block blocks[9];
    fc_l fc;
} r20;

static void resnet20_build(void)
{
    r20.c = conv_new(1, 16, 1, false);
    r20.b = bn_new(16);
    int64_t cin = 16;
    int k = 0;
    for (int s = 0; s < 3; s++) {
        int64_t cout = 16 << s;
        for (int i = 0; i < 3; i++, k++) {
            block *b = &r20.blocks[k];
            int64_t stride = (s > 0 && i == 0) ? 2 : 1;
            b->c1 = conv_new(cin, cout, stride, false);
            b->b1 = bn_new(cout);
            b->c2 = conv_new(cout, cout, 1, false);
            b->b2 = bn_new(cout);
            b->cin = cin;
            b->cout = cout;
            b->down = stride != 1 || cin != cout;
            cin = cout;
        }
    }
    r20.fc = fc_new(64, 10);
}

static dk_tensor *block_fwd(const block *b, dk_tensor *x)
{
    dk_tensor *out = bn_fwd(&b->b2, conv_fwd(&b->c2, dk_relu(bn_fwd(&b->b1, conv_fwd(&b->c1, x)))));
    dk_tensor *sc = x;
    if (b->down) {
        /* F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, p / 2, p - p / 2)), p = cout - cin. */
        int64_t p = b->cout - b->cin;
        dk_tensor *s = dk_slice(dk_slice(x, 2, 0, INT64_MAX, 2), 3, 0, INT64_MAX, 2);
        sc = dk_pad(s, (int64_t[]){0, 0, 0, 0, p / 2, p - p / 2}, 6, DK_PAD_CONSTANT, 0);
    }
    return dk_relu(dk_add(out, sc));
}

static dk_tensor *resnet20_fwd(dk_tensor *x) /* (N, 1, 28, 28) -> (N, 10) */
{
    x = dk_relu(bn_fwd(&r20.b, conv_fwd(&r20.c, x))); /* (N, 16, 28, 28) */
    for (int k = 0; k < 9; k++)
        x = block_fwd(&r20.blocks[k], x); /* ... (N, 64, 7, 7) */
    x = dk_mean(x, (int[]){2, 3}, 2, false); /* (N, 64) */
    return dk_linear(x, r20.fc.w, r20.fc.b);
}

/* ---- main ------------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    const char *model = "lenet";
    int threads = 2, warmup = 10, steps = 60;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc)
            warmup = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: step_bench --model lenet|resnet20 [--threads N] [--warmup N] "
                            "[--steps N]\n");
            return 2;
        }
    }
    bool is_lenet = !strcmp(model, "lenet");
    if (!is_lenet && strcmp(model, "resnet20")) {
        fprintf(stderr, "step_bench: unknown model %s\n", model);
        return 2;
    }
    if (steps < 1 || steps > BENCH_MAX_REPS || warmup < 0) {
        fprintf(stderr, "step_bench: --steps in [1, %d], --warmup >= 0\n", BENCH_MAX_REPS);
        return 2;
    }
    omp_set_num_threads(threads);
    dk_rng_seed(&rng, 0);
    bool was = dk_grad_set_enabled(false);
    dk_scope_begin(); /* building: what is kept is retained */
    if (is_lenet)
        lenet_build();
    else
        resnet20_build();

    /* A few pre-built batches, cycled. */
    enum { NB = 4 };
    dk_tensor *xs[NB], *ys[NB];
    int64_t xshape[4] = {BATCH, 1, 28, 28}, yshape[1] = {BATCH};
    for (int i = 0; i < NB; i++) {
        xs[i] = dk_tensor_retain(dk_randn(4, xshape, DK_DTYPE_F32, DK_CPU, &rng));
        ys[i] = dk_tensor_retain(dk_cast(dk_mul_scalar(dk_rand(1, yshape, DK_DTYPE_F32, DK_CPU, &rng), 9.999),
                        DK_DTYPE_I64));
    }
    dk_scope_end();
    dk_grad_set_enabled(was);

    double t[BENCH_MAX_REPS];
    int n = 0;
    double first_loss = NAN, last_loss = NAN;
    for (int it = 0; it < warmup + steps; it++) {
        double t0 = bench_now();
        dk_scope_begin();
        zero_grad();
        dk_tensor *logits = is_lenet ? lenet_fwd(xs[it % NB]) : resnet20_fwd(xs[it % NB]);
        dk_tensor *loss = xent(logits, ys[it % NB]);
        dk_status st = dk_backward(loss, NULL, false);
        if (st != DK_OK) {
            printf("RESULT engine=dk model=%s status=error reason=\"%s\"\n", model,
                   dk_last_error());
            dk_scope_end();
            return 1;
        }
        double l = dk_tensor_item(loss);
        sgd_step();
        dk_scope_end();
        double dt = bench_now() - t0;
        if (it == 0)
            first_loss = l;
        last_loss = l;
        if (it >= warmup)
            t[n++] = dt;
    }
    double ms_min = t[0], ms_max = t[0];
    for (int i = 0; i < n; i++) {
        ms_min = t[i] < ms_min ? t[i] : ms_min;
        ms_max = t[i] > ms_max ? t[i] : ms_max;
    }
    double med = bench_median(t, n);
    dk_memory_stats ms;
    dk_memory_stats_get(DK_CPU, &ms);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("RESULT engine=dk model=%s status=ok threads=%d batch=%d params=%zu steps=%d warmup=%d "
           "median_step_ms=%.3f min_step_ms=%.3f max_step_ms=%.3f img_per_s=%.1f "
           "alloc_peak_mib=%.1f peak_rss_mib=%.1f loss_first=%.4f loss_last=%.4f\n",
           model, threads, BATCH, n_weights, steps, warmup, 1e3 * med, 1e3 * ms_min, 1e3 * ms_max,
           BATCH / med, (double)ms.peak / 1048576.0, (double)ru.ru_maxrss / 1024.0, first_loss,
           last_loss);
    for (int i = 0; i < n_params; i++) {
        dk_tensor_release(params[i].p);
        free(params[i].mom);
    }
    for (int i = 0; i < n_buffers; i++)
        dk_tensor_release(buffers[i]);
    for (int i = 0; i < NB; i++) {
        dk_tensor_release(xs[i]);
        dk_tensor_release(ys[i]);
    }
    return 0;
}
