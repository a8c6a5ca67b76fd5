/* tests/integration/third_party/acme.c — a third party's plugin, built by
 * test_third_party.sh out of tree against an installed SDK only.
 *
 * One library registers one type of each kind a model author usually adds,
 * and an op the host does not have:
 *
 *   acme.softsign   op         y = x / (1 + |x|), f32 or f64, with a dedicated
 *                              backward kernel: dy/dx = 1 / (1 + |x|)^2
 *   AcmeNet         backbone   3x3 conv, acme.softsign, 2x2 max-pool; the op
 *                              sits between the conv weights and the loss, so
 *                              they learn only through its backward
 *   AcmeTag         transform  Gaussian noise on "img" (std), and a number
 *                              "acme_tag" = 1 in every sample it saw
 *   AcmeProbe       hook       before the run, checks the op's gradient
 *                              against central differences (the run fails
 *                              past 1e-6); logs the loss every `interval`
 *                              iterations; after the run, logs how far the
 *                              backbone's conv weights moved from their start
 *   AcmeError       metric     "error": percent of samples predicted wrong;
 *                              "tagged": percent that carry AcmeTag's mark
 *
 * The test reads the lines and values these leave in the run's log and
 * JSON-lines file.
 */
#include <dk/dk.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- acme.softsign ----------------------------------------------------------------- */

/* The handle dk_op_register returned; used by AcmeNet and AcmeProbe. */
static int32_t softsign_op = -1;

static dk_status softsign_infer(const dk_op_ctx *ctx, int n_in, dk_tensor *const *in,
                                dk_op_shapes *out)
{
    (void)ctx;
    (void)n_in;
    (void)out; /* the result is shaped and typed like x: preloaded */
    dk_dtype dt = dk_tensor_dtype(in[0]);
    if (dt != DK_DTYPE_F32 && dt != DK_DTYPE_F64)
        return dk_fail(DK_ERR_ARG, "x must be f32 or f64, not %s", dk_dtype_name(dt));
    return DK_OK;
}

static dk_status softsign_cpu(const dk_op_ctx *ctx, int n_in, const dk_tensor *const *in,
                              int n_out, dk_tensor *const *out)
{
    (void)ctx;
    (void)n_in;
    (void)n_out;
    int64_t n = dk_tensor_numel(in[0]);
    if (dk_tensor_dtype(in[0]) == DK_DTYPE_F32) {
        const float *x = dk_tensor_data(in[0]);
        float *y = dk_tensor_data(out[0]);
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] / (1.0f + fabsf(x[i]));
    } else {
        const double *x = dk_tensor_data(in[0]);
        double *y = dk_tensor_data(out[0]);
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] / (1.0 + fabs(x[i]));
    }
    return DK_OK;
}

/* in = {x, result (NULL: no DK_OP_SAVE_OUT), grad of the result};
 * out[0] = grad of x, zero-filled, or NULL when not wanted. */
static dk_status softsign_cpu_backward(const dk_op_ctx *ctx, int n_in,
                                       const dk_tensor *const *in, int n_out,
                                       dk_tensor *const *out)
{
    (void)ctx;
    (void)n_out;
    if (!out[0])
        return DK_OK;
    const dk_tensor *x = in[0], *gout = in[n_in - 1];
    int64_t n = dk_tensor_numel(x);
    if (dk_tensor_dtype(x) == DK_DTYPE_F32) {
        const float *xv = dk_tensor_data(x), *g = dk_tensor_data(gout);
        float *gx = dk_tensor_data(out[0]);
        for (int64_t i = 0; i < n; i++) {
            float d = 1.0f + fabsf(xv[i]);
            gx[i] = g[i] / (d * d);
        }
    } else {
        const double *xv = dk_tensor_data(x), *g = dk_tensor_data(gout);
        double *gx = dk_tensor_data(out[0]);
        for (int64_t i = 0; i < n; i++) {
            double d = 1.0 + fabs(xv[i]);
            gx[i] = g[i] / (d * d);
        }
    }
    return DK_OK;
}

static const dk_op_kernel softsign_kernels[] = {
    {.device_type = DK_DEVICE_CPU, .forward = softsign_cpu, .backward = softsign_cpu_backward},
};

static const dk_op_info softsign_info = {
    DK_OP_INFO_HEAD,
    .name = "acme.softsign",
    .summary = "x / (1 + |x|)",
    .n_in = 1,
    .infer = softsign_infer,
    DK_OP_KERNELS(softsign_kernels),
};

static dk_tensor *softsign(dk_tensor *x)
{
    return dk_op_call(softsign_op, 1, &x, NULL, 0, NULL);
}

/* ---- AcmeNet ------------------------------------------------------------------------- */

typedef struct acme_net {
    dk_tensor *weight, *bias; /* (channels, in_channels, 3, 3), (channels); module-owned */
} acme_net;

static dk_status acme_net_create(const dk_cfg *cfg, void **self)
{
    acme_net *b = dk_calloc(1, sizeof *b);
    if (!b)
        return dk_fail(DK_ERR_NOMEM, "AcmeNet: out of memory");
    int64_t in = 0, out = 0;
    dk_status s = dk_cfg_get_int(cfg, "in_channels", &in);
    if (s == DK_OK)
        s = dk_cfg_get_int(cfg, "channels", &out);
    if (s == DK_OK) {
        b->weight = dk_module_param("conv.weight", 4, (int64_t[]){out, in, 3, 3},
                                    &(dk_init){.kind = DK_INIT_KAIMING_UNIFORM, .a = sqrt(5.0)});
        b->bias = b->weight ? dk_module_param("conv.bias", 1, &out,
                                              &(dk_init){.kind = DK_INIT_FAN_IN_UNIFORM,
                                                         .b = (double)(in * 9)})
                            : NULL;
        if (!b->bias)
            s = dk_last_status();
    }
    if (s != DK_OK) {
        dk_free(b);
        return s;
    }
    *self = b;
    return DK_OK;
}

static void acme_net_destroy(void *self)
{
    dk_free(self);
}

static dk_status acme_net_forward(void *self, const dk_dict *in, dk_forward_mode mode,
                                  dk_dict *out)
{
    (void)mode;
    const acme_net *b = self;
    static const int64_t one[2] = {1, 1}, two[2] = {2, 2}, zero[2] = {0, 0};
    dk_tensor *x = dk_dict_tensor(in, "img"); /* (N, C, H, W) */
    if (!x)
        return dk_fail(DK_ERR_ARG, "AcmeNet: the input has no tensor 'img'");
    x = dk_conv2d(x, b->weight, b->bias, one, one, one, 1); /* (N, channels, H, W) */
    x = x ? softsign(x) : NULL;
    x = dk_max_pool2d(x, two, two, zero, one, false); /* (N, channels, H/2, W/2) */
    if (!x)
        return dk_last_status();
    return dk_dict_set_tensors(out, "feats", &x, 1);
}

static const dk_param acme_net_params[] = {
    {.name = "in_channels", .type = DK_PARAM_INT, .def = "1", .min = "1", .max = "64",
     .doc = "channels of the input image"},
    {.name = "channels", .type = DK_PARAM_INT, .def = "4", .min = "1", .max = "256",
     .doc = "output channels of the convolution"},
};

static const dk_module_vtable acme_net_vtable = {
    .struct_size = sizeof(dk_module_vtable),
    .create = acme_net_create,
    .destroy = acme_net_destroy,
    .forward = acme_net_forward,
};

/* ---- AcmeTag ------------------------------------------------------------------------- */

static dk_status acme_tag_create(const dk_cfg *cfg, void **self)
{
    double *std = dk_malloc(sizeof *std);
    if (!std)
        return dk_fail(DK_ERR_NOMEM, "AcmeTag: out of memory");
    dk_status s = dk_cfg_get_float(cfg, "std", std);
    if (s != DK_OK) {
        dk_free(std);
        return s;
    }
    *self = std;
    return DK_OK;
}

static void acme_tag_destroy(void *self)
{
    dk_free(self);
}

static dk_status acme_tag_apply(void *self, dk_dict *sample, dk_rng *rng)
{
    double std = *(const double *)self;
    dk_tensor *img = dk_dict_tensor(sample, "img");
    if (!img || dk_tensor_dtype(img) != DK_DTYPE_F32)
        return dk_fail(DK_ERR_ARG, "AcmeTag: the sample needs an f32 tensor 'img'");
    img = dk_contiguous(img);
    dk_tensor *out = img ? dk_empty(dk_tensor_ndim(img), dk_tensor_shape(img), DK_DTYPE_F32,
                                    dk_tensor_device(img))
                         : NULL;
    if (!out)
        return dk_last_status();
    const float *src = dk_tensor_data(img);
    float *dst = dk_tensor_data(out);
    for (int64_t i = 0, n = dk_tensor_numel(img); i < n; i++) {
        double u1 = dk_rng_uniform(rng), u2 = dk_rng_uniform(rng);
        dst[i] = src[i] + (float)(std * sqrt(-2.0 * log(u1 + 1e-300)) *
                                  cos(6.283185307179586 * u2));
    }
    DK_TRY(dk_dict_set_tensor(sample, "img", out));
    return dk_dict_set_number(sample, "acme_tag", 1);
}

static const dk_param acme_tag_params[] = {
    {.name = "std", .type = DK_PARAM_FLOAT, .def = "0.0", .min = "0",
     .doc = "standard deviation of the noise added to img"},
};

static const dk_transform_vtable acme_tag_vtable = {
    .struct_size = sizeof(dk_transform_vtable),
    .create = acme_tag_create,
    .destroy = acme_tag_destroy,
    .apply = acme_tag_apply,
};

/* ---- AcmeProbe ----------------------------------------------------------------------- */

#define PROBE_WEIGHT "backbone.conv.weight"
#define GRADCHECK_TOL 1e-6

typedef struct acme_probe {
    int64_t interval;
    float *start; /* PROBE_WEIGHT at before_run, or NULL when the model has none */
    int64_t n;
} acme_probe;

static dk_status acme_probe_create(const dk_cfg *cfg, void **self)
{
    acme_probe *p = dk_calloc(1, sizeof *p);
    if (!p)
        return dk_fail(DK_ERR_NOMEM, "AcmeProbe: out of memory");
    dk_status s = dk_cfg_get_int(cfg, "interval", &p->interval);
    if (s != DK_OK) {
        dk_free(p);
        return s;
    }
    *self = p;
    return DK_OK;
}

static void acme_probe_destroy(void *self)
{
    acme_probe *p = self;
    dk_free(p->start);
    dk_free(p);
}

/* acme.softsign's backward against central differences of its forward, in
 * f64, on points on both sides of the kink at 0; the worst difference. */
static dk_status gradcheck(double *max_err)
{
    enum { N = 7 };
    static const double xs[N] = {-3.0, -1.1, -0.4, -0.05, 0.1, 0.9, 2.5};
    static const double ws[N] = {1, -2, 3, 0.5, -1.5, 2, 0.25}; /* loss = sum(w * y) */
    const double h = 1e-6;
    double xp[N], xm[N];
    for (int i = 0; i < N; i++) {
        xp[i] = xs[i] + h;
        xm[i] = xs[i] - h;
    }
    int64_t shape[1] = {N};
    dk_scope_begin();
    bool was = dk_grad_set_enabled(true);
    dk_tensor *x = dk_from_data(1, shape, DK_DTYPE_F64, xs);
    dk_tensor *w = dk_from_data(1, shape, DK_DTYPE_F64, ws);
    dk_status s = x && w ? dk_tensor_set_requires_grad(x, true) : dk_last_status();
    dk_tensor *loss = s == DK_OK ? dk_sum(dk_mul(softsign(x), w), NULL, 0, false) : NULL;
    if (s == DK_OK && !loss)
        s = dk_last_status();
    if (s == DK_OK)
        s = dk_backward(loss, NULL, false);
    const dk_tensor *g = s == DK_OK ? dk_tensor_grad(x) : NULL;
    if (s == DK_OK && !g)
        s = dk_fail(DK_ERR_RUNTIME, "AcmeProbe: no gradient reached x through acme.softsign");
    dk_grad_set_enabled(false);
    dk_tensor *yp = s == DK_OK ? softsign(dk_from_data(1, shape, DK_DTYPE_F64, xp)) : NULL;
    dk_tensor *ym = s == DK_OK ? softsign(dk_from_data(1, shape, DK_DTYPE_F64, xm)) : NULL;
    if (s == DK_OK && (!yp || !ym))
        s = dk_last_status();
    if (s == DK_OK) {
        const double *gv = dk_tensor_data(g), *p = dk_tensor_data(yp), *m = dk_tensor_data(ym);
        *max_err = 0;
        for (int i = 0; i < N; i++) {
            double numeric = ws[i] * (p[i] - m[i]) / (2 * h);
            *max_err = fmax(*max_err, fabs(gv[i] - numeric));
        }
    }
    dk_grad_set_enabled(was);
    dk_scope_end();
    return s;
}

static dk_status acme_probe_before_run(void *self, dk_runner *r)
{
    acme_probe *p = self;
    double err = 0;
    DK_TRY(gradcheck(&err));
    dk_log(DK_LOG_INFO, "AcmeProbe: gradcheck of acme.softsign: max error %.3e", err);
    if (!(err < GRADCHECK_TOL))
        return dk_fail(DK_ERR_RUNTIME, "AcmeProbe: acme.softsign's gradient is off by %g", err);
    dk_tensor *wt = dk_module_find(dk_runner_model(r), PROBE_WEIGHT);
    if (!wt)
        return DK_OK;
    p->n = dk_tensor_numel(wt);
    if (!(p->start = dk_malloc((size_t)p->n * sizeof(float))))
        return dk_fail(DK_ERR_NOMEM, "AcmeProbe: out of memory");
    return dk_tensor_to_host(wt, p->start, (size_t)p->n * sizeof(float));
}

static dk_status acme_probe_after_train_iter(void *self, dk_runner *r)
{
    const acme_probe *p = self;
    if ((dk_runner_iter(r) + 1) % p->interval == 0)
        dk_log(DK_LOG_INFO, "AcmeProbe: iteration %lld: loss %.4f",
               (long long)(dk_runner_iter(r) + 1),
               dk_dict_number(dk_runner_outputs(r), "loss", NAN));
    return DK_OK;
}

static dk_status acme_probe_after_run(void *self, dk_runner *r)
{
    const acme_probe *p = self;
    dk_tensor *wt = dk_module_find(dk_runner_model(r), PROBE_WEIGHT);
    if (!p->start || !wt || dk_tensor_numel(wt) != p->n)
        return DK_OK;
    float *now = dk_malloc((size_t)p->n * sizeof *now);
    if (!now)
        return dk_fail(DK_ERR_NOMEM, "AcmeProbe: out of memory");
    dk_status s = dk_tensor_to_host(wt, now, (size_t)p->n * sizeof *now);
    double moved = 0;
    for (int64_t i = 0; s == DK_OK && i < p->n; i++)
        moved += ((double)now[i] - p->start[i]) * ((double)now[i] - p->start[i]);
    if (s == DK_OK)
        dk_log(DK_LOG_INFO, "AcmeProbe: %s moved %.6f from its start", PROBE_WEIGHT, sqrt(moved));
    dk_free(now);
    return s;
}

static const dk_param acme_probe_params[] = {
    {.name = "interval", .type = DK_PARAM_INT, .def = "10", .min = "1",
     .doc = "log the loss every this many iterations"},
    DK_PARAM_HOOK_PRIORITY,
};

static const dk_hook_vtable acme_probe_vtable = {
    .struct_size = sizeof(dk_hook_vtable),
    .create = acme_probe_create,
    .destroy = acme_probe_destroy,
    .priority = DK_PRIORITY_NORMAL,
    .before_run = acme_probe_before_run,
    .after_train_iter = acme_probe_after_train_iter,
    .after_run = acme_probe_after_run,
};

/* ---- AcmeError ----------------------------------------------------------------------- */

typedef struct acme_error {
    int64_t wrong, tagged, total;
} acme_error;

static dk_status acme_error_create(const dk_cfg *cfg, void **self)
{
    (void)cfg;
    acme_error *m = dk_calloc(1, sizeof *m);
    if (!m)
        return dk_fail(DK_ERR_NOMEM, "AcmeError: out of memory");
    *self = m;
    return DK_OK;
}

static void acme_error_destroy(void *self)
{
    dk_free(self);
}

static void acme_error_reset(void *self)
{
    acme_error *m = self;
    m->wrong = m->tagged = m->total = 0;
}

/* An (n) i64 tensor's values into a new array. */
static dk_status read_i64(const dk_tensor *t, const char *key, int64_t n, int64_t **out)
{
    if (dk_tensor_dtype(t) != DK_DTYPE_I64 || dk_tensor_ndim(t) != 1 ||
        dk_tensor_shape(t)[0] != n)
        return dk_fail(DK_ERR_SHAPE, "AcmeError: '%s' must be (%lld) i64", key, (long long)n);
    int64_t *v = dk_malloc((size_t)n * sizeof *v + 1);
    if (!v)
        return dk_fail(DK_ERR_NOMEM, "AcmeError: out of memory");
    dk_status s = dk_tensor_to_host(t, v, (size_t)n * sizeof *v);
    if (s != DK_OK) {
        dk_free(v);
        return s;
    }
    *out = v;
    return DK_OK;
}

static dk_status acme_error_process(void *self, const dk_dict *batch, const dk_dict *preds)
{
    acme_error *m = self;
    dk_tensor *pred = dk_dict_tensor(preds, "pred_label"), *gt = dk_dict_tensor(batch, "gt_label");
    dk_tensor *tag = dk_dict_tensor(batch, "acme_tag");
    if (!pred || !gt || dk_tensor_ndim(gt) != 1)
        return dk_fail(DK_ERR_ARG, "AcmeError: needs 'pred_label' and 'gt_label' (N)");
    int64_t n = dk_tensor_shape(gt)[0], *p = NULL, *g = NULL, *t = NULL;
    DK_TRY(read_i64(gt, "gt_label", n, &g));
    dk_status s = read_i64(pred, "pred_label", n, &p);
    if (s == DK_OK && tag)
        s = read_i64(tag, "acme_tag", n, &t);
    for (int64_t i = 0; s == DK_OK && i < n; i++) {
        m->wrong += p[i] != g[i];
        m->tagged += t && t[i] == 1;
    }
    if (s == DK_OK)
        m->total += n;
    dk_free(g);
    dk_free(p);
    dk_free(t);
    return s;
}

static dk_status acme_error_compute(void *self, dk_dict *results)
{
    const acme_error *m = self;
    if (m->total == 0)
        return dk_fail(DK_ERR_ARG, "AcmeError: no samples were processed");
    DK_TRY(dk_dict_set_number(results, "error", 100.0 * (double)m->wrong / (double)m->total));
    return dk_dict_set_number(results, "tagged", 100.0 * (double)m->tagged / (double)m->total);
}

static const dk_metric_vtable acme_error_vtable = {
    .struct_size = sizeof(dk_metric_vtable),
    .create = acme_error_create,
    .destroy = acme_error_destroy,
    .process = acme_error_process,
    .compute = acme_error_compute,
    .reset = acme_error_reset,
};

/* ---- the plugin ------------------------------------------------------------------------ */

static const dk_type_info acme_types[] = {
    {DK_TYPE_INFO_HEAD, .kind = "backbone", .name = "AcmeNet",
     .summary = "3x3 conv, acme.softsign, 2x2 max-pool", .iface = DK_IFACE_MODULE,
     .vtable = &acme_net_vtable, DK_PARAMS(acme_net_params)},
    {DK_TYPE_INFO_HEAD, .kind = "transform", .name = "AcmeTag",
     .summary = "Adds noise to img and marks the sample", .iface = DK_IFACE_TRANSFORM,
     .vtable = &acme_tag_vtable, DK_PARAMS(acme_tag_params)},
    {DK_TYPE_INFO_HEAD, .kind = "hook", .name = "AcmeProbe",
     .summary = "Checks acme.softsign's gradient, logs the loss and how far weights moved",
     .iface = DK_IFACE_HOOK, .vtable = &acme_probe_vtable, DK_PARAMS(acme_probe_params)},
    {DK_TYPE_INFO_HEAD, .kind = "metric", .name = "AcmeError",
     .summary = "Percent of samples predicted wrong, and of samples AcmeTag marked",
     .iface = DK_IFACE_METRIC, .vtable = &acme_error_vtable},
};

static dk_status acme_init(dk_registrar *reg)
{
    DK_TRY(dk_op_register(reg, &softsign_info, &softsign_op));
    for (size_t i = 0; i < sizeof acme_types / sizeof acme_types[0]; i++)
        DK_TRY(dk_register(reg, &acme_types[i]));
    return DK_OK;
}

DK_PLUGIN_DEFINE(acme_init, .name = "acme", .version = "1.0.0",
                 .summary = "A third party's backbone, transform, hook, metric and op",
                 .license = "MIT", .source = "tests/integration/third_party")
