/* tests/ops/cases_nn.c — op-suite rows for convolution, normalisation, pooling
 * and the other neural-network ops.
 *
 * Besides plain rows, a few rows check a property inside their function and
 * return NULL with a message when it fails (the suite then reports it): a
 * repeated training step creates no oneDNN primitive, and batch norm's
 * running statistics match a hand computation.
 */
#include "op_cases.h"

#include <dk/nn.h>
#include <math.h>

/* From core/backends/cpu/dnnl_common.c (its header needs oneDNN's). */
long dkh_dnnl_primitives_created(void);

static const int64_t one[2] = {1, 1}, two[2] = {2, 2};

F1(c_conv, dk_conv2d(IN0, IN1, IN2, NULL, one, NULL, 1))
F1(c_conv_sd, dk_conv2d(IN0, IN1, NULL, (int64_t[]){2, 1}, (int64_t[]){1, 2}, (int64_t[]){2, 1}, 1))
F1(c_conv_g2, dk_conv2d(IN0, IN1, NULL, NULL, (int64_t[]){0, 1}, NULL, 2))
F1(c_conv_dw, dk_conv2d(IN0, IN1, IN2, two, one, NULL, 3))
F1(c_convt, dk_conv_transpose2d(IN0, IN1, IN2, two, one, one, NULL, 1))
F1(c_convt_g, dk_conv_transpose2d(IN0, IN1, NULL, NULL, NULL, NULL, two, 2))

static dk_tensor *c_conv_bw(dk_tensor *const *in)
{
    /* The weight gradient op on its own: stride 2, padding 1, a 3x2 kernel. */
    dkh_args a = {.nv = 6, .v = {2, 2, 1, 1, 1, 1}, .i = {1, 3, 2}};
    return dkh_op_run(DKH_OP_CONV2D_BWD_WEIGHT, &a, 2, in);
}

static dk_tensor *c_conv_bw_g(dk_tensor *const *in)
{
    /* Groups 2, dilation 2, padding 2, a 3x3 kernel. */
    dkh_args a = {.nv = 6, .v = {1, 1, 2, 2, 2, 2}, .i = {2, 3, 3}};
    return dkh_op_run(DKH_OP_CONV2D_BWD_WEIGHT, &a, 2, in);
}

/* Two identical f32 training steps: the second must create no primitive (and
 * oneDNN must have run at all: the f32 run comes first). */
static dk_tensor *c_conv_steady(dk_tensor *const *in)
{
    bool was = dk_grad_set_enabled(true);
    dk_tensor *x = dk_detach(dk_cast(IN0, DK_DTYPE_F32)), *w = dk_detach(dk_cast(IN1, DK_DTYPE_F32));
    if (dk_tensor_set_requires_grad(x, true) != DK_OK ||
        dk_tensor_set_requires_grad(w, true) != DK_OK)
        return NULL;
    long before = 0;
    for (int step = 0; step < 2; step++) {
        if (step == 1)
            before = dkh_dnnl_primitives_created();
        dk_tensor *y = dk_conv2d(x, w, NULL, two, one, NULL, 1);
        if (dk_backward(dk_sum(y, NULL, 0, false), NULL, false) != DK_OK)
            return NULL;
    }
    dk_grad_set_enabled(was);
    long made = dkh_dnnl_primitives_created() - before;
    if (made != 0 || dkh_dnnl_primitives_created() == 0) {
        dk_fail(DK_ERR_INTERNAL, "a repeated step created %ld oneDNN primitives (%ld in all)",
                made, dkh_dnnl_primitives_created());
        return NULL;
    }
    return dk_conv2d(IN0, IN1, NULL, two, one, NULL, 1);
}

F1(c_bn, dk_batch_norm(IN0, IN1, IN2, NULL, NULL, true, 0.1, 1e-5))
F1(c_bn_plain, dk_batch_norm(IN0, NULL, NULL, NULL, NULL, true, 0.1, 1e-3))
F1(c_bn_eval, dk_batch_norm(IN0, IN1, IN2, in[3], in[4], false, 0.1, 1e-5))

/* Training with running statistics: checks the in-place update against
 * statistics computed here by hand (mean, unbiased variance, momentum 0.1). */
static dk_tensor *c_bn_running(dk_tensor *const *in)
{
    const dk_tensor *x = IN0;
    int64_t N = x->shape[0], C = x->shape[1], J = x->shape[2] * x->shape[3];
    dk_tensor *rm = dk_full(1, &C, 0.5, x->dtype, DK_CPU), *rv = dk_full(1, &C, 2.0, x->dtype, DK_CPU);
    dk_tensor *y = dk_batch_norm(IN0, NULL, NULL, rm, rv, true, 0.1, 1e-5);
    if (!y)
        return NULL;
    double tol = x->dtype == DK_DTYPE_F64 ? 1e-12 : 1e-5;
    for (int64_t c = 0; c < C; c++) {
        double s = 0, ss = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t j = 0; j < J; j++)
                s += dkh_load(dkh_base(x), x->dtype,
                              n * x->strides[0] + c * x->strides[1] +
                                  (j / x->shape[3]) * x->strides[2] + (j % x->shape[3]) * x->strides[3]);
        double mean = s / (double)(N * J);
        for (int64_t n = 0; n < N; n++)
            for (int64_t j = 0; j < J; j++) {
                double d = dkh_load(dkh_base(x), x->dtype,
                                    n * x->strides[0] + c * x->strides[1] +
                                        (j / x->shape[3]) * x->strides[2] +
                                        (j % x->shape[3]) * x->strides[3]) - mean;
                ss += d * d;
            }
        double want_m = 0.9 * 0.5 + 0.1 * mean, want_v = 0.9 * 2.0 + 0.1 * ss / (double)(N * J - 1);
        double got_m = dkh_load(dkh_base(rm), rm->dtype, c), got_v = dkh_load(dkh_base(rv), rv->dtype, c);
        if (fabs(got_m - want_m) > tol * (1 + fabs(want_m)) || fabs(got_v - want_v) > tol * (1 + want_v)) {
            dk_fail(DK_ERR_INTERNAL, "running stats of channel %lld: (%.10g, %.10g), want (%.10g, %.10g)",
                    (long long)c, got_m, got_v, want_m, want_v);
            return NULL;
        }
    }
    return y;
}

/* Layer norm over w's shape (the last w->ndim dims of x). */
F1(c_ln, dk_layer_norm(IN0, IN1->shape, IN1->ndim, IN1, IN2, 1e-5))
F1(c_ln_plain, dk_layer_norm(IN0, IN0->shape + IN0->ndim - 2, 2, NULL, NULL, 1e-3))
/* Rows at uneven strides (a permuted x) with unit-stride rows: the fast path. */
F1(c_ln_perm, dk_layer_norm(dk_permute(IN0, 3, (int[]){1, 0, 2}), IN1->shape, 1, IN1, IN2, 1e-5))
F1(c_gn, dk_group_norm(IN0, 2, IN1, IN2, 1e-5))
F1(c_gn1, dk_group_norm(IN0, 1, IN1, IN2, 1e-5))
F1(c_gn_inst, dk_group_norm(IN0, IN0->shape[1], NULL, NULL, 1e-3))
F1(c_gn_perm, dk_group_norm(dk_permute(IN0, 4, (int[]){1, 0, 2, 3}), 3, IN1, IN2, 1e-5))

F1(c_maxpool, dk_max_pool2d(IN0, two, NULL, NULL, NULL, false))
F1(c_maxpool_ceil, dk_max_pool2d(IN0, (int64_t[]){3, 2}, two, one, NULL, true))
F1(c_maxpool_dil, dk_max_pool2d(IN0, (int64_t[]){3, 3}, (int64_t[]){1, 2}, one, two, false))
F1(c_avgpool, dk_avg_pool2d(IN0, (int64_t[]){3, 3}, two, one, false, true))
F1(c_avgpool_ceil, dk_avg_pool2d(IN0, (int64_t[]){3, 2}, two, one, true, false))
F1(c_avgpool_ceil_inc, dk_avg_pool2d(IN0, two, NULL, one, true, true))
F1(c_adaptive, dk_adaptive_avg_pool2d(IN0, (int64_t[]){3, 2}))
F1(c_adaptive1, dk_adaptive_avg_pool2d(IN0, one))

const op_case dkt_cases_nn[] = {
    {DKH_OP_CONV2D, "conv2d", 3, "2,3,5,6;4,3,3,3;4|1,2,4,4;3,2,1,1;3|0,3,4,4;2,3,3,3;2", 0,
     c_conv},
    {DKH_OP_CONV2D, "conv2d_stride_dilation", 2, "2,2,7,6;3,2,3,2|1,1,5,5;2,1,2,3", 0, c_conv_sd},
    {DKH_OP_CONV2D, "conv2d_groups", 2, "2,4,5,5;6,2,3,3|1,6,4,5;4,3,2,2", 0, c_conv_g2},
    {DKH_OP_CONV2D, "conv2d_depthwise", 3, "1,3,6,5;3,1,3,3;3|2,3,3,3;6,1,2,2;6", 0, c_conv_dw},
    {DKH_OP_CONV2D, "conv2d_steady_state", 2, "4,3,9,9;5,3,3,3", NOGRAD, c_conv_steady},
    {DKH_OP_CONV2D_BWD_DATA, "conv_transpose2d", 3, "2,3,4,3;3,2,3,3;2|1,2,3,3;2,3,2,2;3", 0,
     c_convt},
    {DKH_OP_CONV2D_BWD_DATA, "conv_transpose2d_groups", 2, "1,4,3,4;4,1,2,2|2,2,2,3;2,3,3,1", 0,
     c_convt_g},
    {DKH_OP_CONV2D_BWD_WEIGHT, "conv2d_bwd_weight", 2, "2,3,5,6;2,4,3,4|1,2,7,7;1,3,4,4", 0,
     c_conv_bw},
    {DKH_OP_CONV2D_BWD_WEIGHT, "conv2d_bwd_weight_groups", 2, "2,4,5,6;2,6,5,6", 0,
     c_conv_bw_g},
    {DKH_OP_BATCH_NORM, "batch_norm", 3, "4,3,5;3;3|2,3,4,5;3;3|5,2;2;2|1,2,3,1;2;2", 0, c_bn},
    {DKH_OP_BATCH_NORM, "batch_norm_no_affine", 1, "3,4,2,3|2,1,1,5", 0, c_bn_plain},
    {DKH_OP_BATCH_NORM, "batch_norm_eval", 5, "2,3,4,5;3;3;3;3|3,2;2;2;2;2", POS, c_bn_eval},
    {DKH_OP_BATCH_NORM, "batch_norm_running_stats", 1, "4,3,5,6|2,2,1,3", NOGRAD, c_bn_running},
    {DKH_OP_LAYER_NORM, "layer_norm", 3, "4,5;5;5|2,3,4;3,4;3,4|3,1,6;6;6|1,7;7;7|0,3;3;3", 0,
     c_ln},
    {DKH_OP_LAYER_NORM, "layer_norm_no_affine", 1, "3,4,5|2,1,6", 0, c_ln_plain},
    {DKH_OP_LAYER_NORM, "layer_norm_strided_rows", 3, "3,4,5;5;5|2,1,7;7;7", 0, c_ln_perm},
    {DKH_OP_GROUP_NORM, "group_norm", 3, "2,6,3,4;6;6|1,4,5;4;4|3,4;4;4|0,2,3;2;2", 0, c_gn},
    {DKH_OP_GROUP_NORM, "group_norm_one_group", 3, "2,3,2,3;3;3", 0, c_gn1},
    {DKH_OP_GROUP_NORM, "group_norm_instance", 1, "2,3,4,3|1,2,5", 0, c_gn_inst},
    {DKH_OP_GROUP_NORM, "group_norm_strided_samples", 3, "6,2,3,4;6;6", 0, c_gn_perm},
    {DKH_OP_MAX_POOL2D, "max_pool2d", 1, "2,3,6,8|1,2,5,7|2,1,4,4", APART, c_maxpool},
    {DKH_OP_MAX_POOL2D, "max_pool2d_ceil_pad", 1, "2,2,6,7|1,3,5,5", APART, c_maxpool_ceil},
    {DKH_OP_MAX_POOL2D, "max_pool2d_dilation", 1, "1,2,7,8|2,2,6,6", APART, c_maxpool_dil},
    {DKH_OP_AVG_POOL2D, "avg_pool2d", 1, "2,3,6,8|1,2,5,7", 0, c_avgpool},
    {DKH_OP_AVG_POOL2D, "avg_pool2d_ceil_exclude_pad", 1, "2,2,6,7|1,3,5,5", 0, c_avgpool_ceil},
    {DKH_OP_AVG_POOL2D, "avg_pool2d_ceil_include_pad", 1, "1,2,5,6|2,1,3,3", 0, c_avgpool_ceil_inc},
    {DKH_OP_ADAPTIVE_AVG_POOL2D, "adaptive_avg_pool2d", 1, "2,3,7,5|1,2,3,2|1,1,2,4", 0, c_adaptive},
    {DKH_OP_ADAPTIVE_AVG_POOL2D, "global_avg_pool2d", 1, "2,3,4,5", 0, c_adaptive1},
    {.name = NULL},
};
