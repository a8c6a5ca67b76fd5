/* docs/examples/custom_op/segment_ops.c — a plugin that adds two tensor ops.
 *
 * The example of docs/custom-ops.md, built by the test suite exactly as a
 * third party builds it (SDK headers only, dk_add_plugin) and loaded by
 * tests/ops/test_custom_op.c.
 *
 *   example.scaled_tanh(x; a, b) = a * tanh(b * x)
 *       One input, float attrs, a backward written with host ops that reads
 *       the saved result (DK_OP_SAVE_OUT).
 *   example.segment_sum(x, seg; n_segments) -> out, counts
 *       x (N, C) float, seg (N,) i64 with values in [0, n_segments):
 *       out[s, c] = sum of x[n, c] over the rows n with seg[n] == s, and an
 *       auxiliary output counts[s] (i64) = number of such rows. The shape of
 *       BEVFusion's bev_pool: a scatter-add forward with a dedicated gather
 *       backward kernel, and a data-dependent failure (an index out of range).
 */
#include <dk/dk.h>

#include <math.h>
#include <string.h>

/* ---- example.scaled_tanh ------------------------------------------------------------ */

/* The attrs: plain data, copied by the host at each call. */
typedef struct scaled_tanh_attrs {
    double a, b;
} scaled_tanh_attrs;

static dk_status scaled_tanh_infer(const dk_op_ctx *ctx, int n_in, dk_tensor *const *in,
                                   dk_op_shapes *out)
{
    dk_dtype dt = dk_tensor_dtype(in[0]);
    if (dt != DK_DTYPE_F32 && dt != DK_DTYPE_F64)
        return dk_fail(DK_ERR_ARG, "x must be f32 or f64, not %s", dk_dtype_name(dt));
    if (ctx->attrs_size != sizeof(scaled_tanh_attrs))
        return dk_fail(DK_ERR_ARG, "attrs must be a scaled_tanh_attrs (%zu bytes), got %zu bytes",
                       sizeof(scaled_tanh_attrs), ctx->attrs_size);
    /* out[0] is preloaded with x's dtype and shape: nothing else to say. */
    return DK_OK;
}

static dk_status scaled_tanh_cpu(const dk_op_ctx *ctx, int n_in, const dk_tensor *const *in,
                                 int n_out, dk_tensor *const *out)
{
    const scaled_tanh_attrs *p = ctx->attrs;
    int64_t n = dk_tensor_numel(in[0]);
    /* Inputs and outputs are contiguous (no DK_OP_STRIDED). */
    if (dk_tensor_dtype(in[0]) == DK_DTYPE_F32) {
        const float *x = dk_tensor_data(in[0]);
        float *y = dk_tensor_data(out[0]);
        for (int64_t i = 0; i < n; i++)
            y[i] = (float)(p->a * tanh(p->b * x[i]));
    } else {
        const double *x = dk_tensor_data(in[0]);
        double *y = dk_tensor_data(out[0]);
        for (int64_t i = 0; i < n; i++)
            y[i] = p->a * tanh(p->b * x[i]);
    }
    return DK_OK;
}

/* dy/dx = a * b * (1 - tanh^2(b x)) = b * (a - y^2 / a), from the saved y. */
static dk_status scaled_tanh_backward(const dk_op_ctx *ctx, const dk_op_grad *g,
                                      dk_tensor **grads)
{
    const scaled_tanh_attrs *p = ctx->attrs;
    dk_tensor *y2 = dk_mul(g->out, g->out);
    dk_tensor *d = dk_add_scalar(dk_mul_scalar(y2, -p->b / p->a), p->a * p->b);
    grads[0] = dk_mul(g->grad_out, d);
    return grads[0] ? DK_OK : dk_last_status(); /* a NULL carries its own message */
}

static const dk_op_kernel scaled_tanh_kernels[] = {
    {.device_type = DK_DEVICE_CPU, .forward = scaled_tanh_cpu},
};

static const dk_op_info scaled_tanh_op = {
    DK_OP_INFO_HEAD,
    .name = "example.scaled_tanh",
    .summary = "a * tanh(b * x)",
    .flags = DK_OP_SAVE_OUT,
    .n_in = 1,
    .infer = scaled_tanh_infer,
    .backward = scaled_tanh_backward,
    DK_OP_KERNELS(scaled_tanh_kernels),
};

/* ---- example.segment_sum ------------------------------------------------------------- */

typedef struct segment_sum_attrs {
    int64_t n_segments;
} segment_sum_attrs;

static dk_status segment_sum_infer(const dk_op_ctx *ctx, int n_in, dk_tensor *const *in,
                                   dk_op_shapes *out)
{
    dk_tensor *x = in[0], *seg = in[1];
    dk_dtype dt = dk_tensor_dtype(x);
    if (dt != DK_DTYPE_F32 && dt != DK_DTYPE_F64)
        return dk_fail(DK_ERR_ARG, "x must be f32 or f64, not %s", dk_dtype_name(dt));
    if (dk_tensor_ndim(x) != 2)
        return dk_fail(DK_ERR_SHAPE, "x must be (N, C), it has %d dims", dk_tensor_ndim(x));
    if (dk_tensor_dtype(seg) != DK_DTYPE_I64 || dk_tensor_ndim(seg) != 1 ||
        dk_tensor_shape(seg)[0] != dk_tensor_shape(x)[0])
        return dk_fail(DK_ERR_SHAPE, "seg must be i64 (N,) with N = x's rows");
    const segment_sum_attrs *p = ctx->attrs;
    if (ctx->attrs_size != sizeof *p || p->n_segments < 1)
        return dk_fail(DK_ERR_ARG, "attrs must be a segment_sum_attrs with n_segments >= 1");
    out->out[0].ndim = 2; /* dtype: x's, preloaded */
    out->out[0].shape[0] = p->n_segments;
    out->out[0].shape[1] = dk_tensor_shape(x)[1];
    out->n_aux = 1;
    out->out[1].dtype = DK_DTYPE_I64;
    out->out[1].ndim = 1;
    out->out[1].shape[0] = p->n_segments;
    return DK_OK;
}

/* Checks every index before writing anything, so a bad one fails cleanly. */
static dk_status check_segments(const dk_op_ctx *ctx, const int64_t *seg, int64_t n)
{
    const segment_sum_attrs *p = ctx->attrs;
    for (int64_t i = 0; i < n; i++)
        if (seg[i] < 0 || seg[i] >= p->n_segments)
            return dk_fail(DK_ERR_ARG, "seg[%lld] = %lld is outside [0, %lld)", (long long)i,
                           (long long)seg[i], (long long)p->n_segments);
    return DK_OK;
}

#define SEGMENT_SUM(T)                                                                      \
    static void segment_sum_##T(const T *x, const int64_t *seg, int64_t n, int64_t c, T *out,  \
                                int64_t s)                                                   \
    {                                                                                        \
        memset(out, 0, (size_t)(s * c) * sizeof(T));                                        \
        for (int64_t i = 0; i < n; i++)                                                      \
            for (int64_t j = 0; j < c; j++)                                                  \
                out[seg[i] * c + j] += x[i * c + j];                                         \
    }                                                                                        \
    static void segment_gather_##T(const T *gout, const int64_t *seg, int64_t n, int64_t c,  \
                                   T *gx)                                                    \
    {                                                                                        \
        for (int64_t i = 0; i < n; i++)                                                      \
            for (int64_t j = 0; j < c; j++)                                                  \
                gx[i * c + j] = gout[seg[i] * c + j];                                        \
    }
SEGMENT_SUM(float)
SEGMENT_SUM(double)

static dk_status segment_sum_cpu(const dk_op_ctx *ctx, int n_in, const dk_tensor *const *in,
                                 int n_out, dk_tensor *const *out)
{
    const int64_t *seg = dk_tensor_data(in[1]);
    int64_t n = dk_tensor_shape(in[0])[0], c = dk_tensor_shape(in[0])[1];
    int64_t s = dk_tensor_shape(out[0])[0];
    DK_TRY(check_segments(ctx, seg, n));
    if (dk_tensor_dtype(in[0]) == DK_DTYPE_F32)
        segment_sum_float(dk_tensor_data(in[0]), seg, n, c, dk_tensor_data(out[0]), s);
    else
        segment_sum_double(dk_tensor_data(in[0]), seg, n, c, dk_tensor_data(out[0]), s);
    int64_t *counts = dk_tensor_data(out[1]);
    memset(counts, 0, (size_t)s * sizeof *counts);
    for (int64_t i = 0; i < n; i++)
        counts[seg[i]]++;
    return DK_OK;
}

/* The dedicated backward: in = {x, seg, result (NULL: no DK_OP_SAVE_OUT),
 * counts, grad of the result}; out = {grad of x, NULL (seg is an index)}. */
static dk_status segment_sum_cpu_backward(const dk_op_ctx *ctx, int n_in,
                                          const dk_tensor *const *in, int n_out,
                                          dk_tensor *const *out)
{
    const dk_tensor *x = in[0], *seg = in[1], *gout = in[n_in - 1];
    if (!out[0])
        return DK_OK;
    int64_t n = dk_tensor_shape(x)[0], c = dk_tensor_shape(x)[1];
    if (dk_tensor_dtype(x) == DK_DTYPE_F32)
        segment_gather_float(dk_tensor_data(gout), dk_tensor_data(seg), n, c,
                             dk_tensor_data(out[0]));
    else
        segment_gather_double(dk_tensor_data(gout), dk_tensor_data(seg), n, c,
                              dk_tensor_data(out[0]));
    return DK_OK;
}

static const dk_op_kernel segment_sum_kernels[] = {
    {.device_type = DK_DEVICE_CPU,
     .forward = segment_sum_cpu,
     .backward = segment_sum_cpu_backward},
};

static const dk_op_info segment_sum_op = {
    DK_OP_INFO_HEAD,
    .name = "example.segment_sum",
    .summary = "sums the rows of x that share a segment id; counts them",
    .n_in = 2,
    .infer = segment_sum_infer,
    DK_OP_KERNELS(segment_sum_kernels),
};

/* ---- the plugin ------------------------------------------------------------------------ */

static dk_status segment_ops_init(dk_registrar *reg)
{
    /* The handles could be kept for calls from this plugin's own modules;
     * other code finds the ops by name (dk_op_find). */
    DK_TRY(dk_op_register(reg, &scaled_tanh_op, NULL));
    DK_TRY(dk_op_register(reg, &segment_sum_op, NULL));
    return DK_OK;
}

DK_PLUGIN_DEFINE(segment_ops_init, .name = "segment_ops", .version = "1.0.0",
                 .summary = "Example custom ops: scaled_tanh and segment_sum",
                 .license = "MIT", .source = "docs/examples/custom_op")
