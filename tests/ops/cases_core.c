/* tests/ops/cases_core.c — op-suite rows for creation, copies, views,
 * elementwise ops, reductions, matmul and softmax. */
#include "op_cases.h"

static const int64_t shp23[] = {2, 3};
F1(c_full, dk_full(2, shp23, 1.5, DK_DTYPE_F64, DK_CPU))
F1(c_zeros, dk_zeros(2, shp23, DK_DTYPE_F32, DK_CPU))
F1(c_arange, dk_arange(-1, 2, 0.25, DK_DTYPE_F64, DK_CPU))
static dk_tensor *c_rand(dk_tensor *const *in)
{
    dk_rng r;
    dk_rng_seed(&r, 7);
    return dk_rand(2, shp23, DK_DTYPE_F64, DK_CPU, &r);
}
static dk_tensor *c_randn(dk_tensor *const *in)
{
    dk_rng r;
    dk_rng_seed(&r, 8);
    return dk_randn(2, shp23, DK_DTYPE_F32, DK_CPU, &r);
}
F1(c_copy, dk_copy(IN0))
F1(c_contig, dk_contiguous(IN0))
F1(c_cast, dk_cast(IN0, DK_DTYPE_F64))
F1(c_reshape, dk_reshape(IN0, 2, (int64_t[]){-1, 1}))
F1(c_flatten, dk_flatten(IN0, 0, -1))
F1(c_unsqueeze, dk_unsqueeze(IN0, 1))
F1(c_squeeze, dk_squeeze(dk_unsqueeze(IN0, 0), 0))
F1(c_permute, dk_permute(IN0, 3, (int[]){2, 0, 1}))
F1(c_transpose, dk_transpose(IN0, 0, -1))
F1(c_slice, dk_slice(IN0, -1, 1, 100, 2))
F1(c_select, dk_select(IN0, 0, -1))
/* Large shapes: the fast kernels' parallel paths (a contiguous tensor is one
 * long row the elementwise kernels cut into pieces), forward and backward. */
static dk_tensor *f_subsample(dk_tensor *x) /* x[:, :, ::2, ::2], ResNet's shortcut */
{
    return dk_slice(dk_slice(x, 2, 0, INT64_MAX, 2), 3, 0, INT64_MAX, 2);
}
static dk_tensor *f_slice_odd(dk_tensor *x) /* offset starts, steps that do not divide */
{
    return dk_slice(dk_slice(x, 1, 1, 15, 3), -1, 2, -1, 3);
}
static dk_tensor *f_relu(dk_tensor *x)
{
    return dk_relu(x);
}
static dk_tensor *f_add_bcast(dk_tensor *x)
{
    return dk_mul(dk_add(x, dk_select(x, 0, 1)), dk_transpose(x, 0, 1));
}
F1(c_big_subsample, dkt_grad_of(IN0, f_subsample))
F1(c_big_slice_odd, dkt_grad_of(IN0, f_slice_odd))
F1(c_big_relu, dkt_grad_of(IN0, f_relu))
F1(c_big_add, dkt_grad_of(IN0, f_add_bcast))
F1(c_big_copy, dk_contiguous(dk_transpose(IN0, 0, 1)))
/* Pooling-style reductions over (H, W): unit-stride runs per output, and
 * channels-last (the "cl" pass) whole rows of channels per position. The
 * amax/amin rows hold NaN (ln of -0.25) in some outputs, not all. */
F1(c_big_mean_hw, dk_mean(IN0, (int[]){2, 3}, 2, false))
F1(c_big_amax_hw, dk_amax(dk_ln(dk_add_scalar(IN0, 1.25)), (int[]){2, 3}, 2, true))
F1(c_big_amin_0, dk_amin(dk_ln(dk_add_scalar(IN0, 1.25)), (int[]){0}, 1, false))
F1(c_expand, dk_expand(IN0, 3, (int64_t[]){2, -1, -1}))
F1(c_neg, dk_neg(IN0))
F1(c_abs, dk_abs(IN0))
F1(c_exp, dk_exp(IN0))
F1(c_ln, dk_ln(IN0))
F1(c_sqrt, dk_sqrt(IN0))
F1(c_rsqrt, dk_rsqrt(IN0))
F1(c_relu, dk_relu(IN0))
F1(c_sigmoid, dk_sigmoid(IN0))
F1(c_tanh, dk_tanh(IN0))
F1(c_gelu, dk_gelu(IN0))
F1(c_silu, dk_silu(IN0))
F1(c_softplus, dk_softplus(IN0))
F1(c_leaky, dk_leaky_relu(IN0, 0.1))
F1(c_clamp, dk_clamp(IN0, -0.7, 0.9))
F1(c_pows, dk_pow_scalar(IN0, 2.5))
F1(c_adds, dk_add_scalar(IN0, 0.75))
F1(c_muls, dk_mul_scalar(IN0, -1.25))
F1(c_add, dk_add(IN0, IN1))
F1(c_sub, dk_sub(IN0, IN1))
F1(c_mul, dk_mul(IN0, IN1))
F1(c_div, dk_div(IN0, IN1))
F1(c_pow, dk_pow(IN0, IN1))
F1(c_max, dk_maximum(IN0, IN1))
F1(c_min, dk_minimum(IN0, IN1))
F1(c_eq, dk_eq(IN0, IN1))
F1(c_ne, dk_ne(IN0, IN1))
F1(c_lt, dk_lt(IN0, IN1))
F1(c_le, dk_le(IN0, IN1))
F1(c_gt, dk_gt(IN0, IN1))
F1(c_ge, dk_ge(IN0, IN1))
F1(c_where, dk_where(IN0, IN1, IN2))
F1(c_sum_all, dk_sum(IN0, NULL, 0, false))
F1(c_sum_d, dk_sum(IN0, (int[]){0, -1}, 2, true))
F1(c_sum_1, dk_sum(IN0, (int[]){1}, 1, false))
F1(c_mean, dk_mean(IN0, (int[]){-1}, 1, true))
F1(c_var, dk_var(IN0, (int[]){0}, 1, 1, false))
F1(c_lse, dk_logsumexp(IN0, (int[]){-1}, 1, false))
F1(c_amax, dk_amax(IN0, (int[]){1}, 1, false))
F1(c_amax_all, dk_amax(IN0, NULL, 0, true))
F1(c_amin, dk_amin(IN0, (int[]){0}, 1, true))
F1(c_argmax, dk_argmax(IN0, -1, false))
F1(c_matmul, dk_matmul(IN0, IN1))
F1(c_linear, dk_linear(IN0, IN1, IN2))
F1(c_softmax, dk_softmax(IN0, -1))
F1(c_softmax0, dk_softmax(IN0, 0))
F1(c_lsm, dk_log_softmax(IN0, -1))


const op_case dkt_cases_core[] = {
    {DKH_OP_FULL, "full", 0, "", NOGRAD, c_full},
    {DKH_OP_FULL, "zeros", 0, "", NOGRAD, c_zeros},
    {DKH_OP_ARANGE, "arange", 0, "", NOGRAD, c_arange},
    {DKH_OP_RAND, "rand", 0, "", NOGRAD, c_rand},
    {DKH_OP_RANDN, "randn", 0, "", NOGRAD, c_randn},
    {DKH_OP_COPY, "copy", 1, U2 "|s", 0, c_copy},
    {DKH_OP_COPY, "contiguous", 1, U3, 0, c_contig},
    {DKH_OP_CAST, "cast", 1, U2, 0, c_cast},
    {DKH_OP_VIEW, "reshape", 1, U2 "|" U3, 0, c_reshape},
    {DKH_OP_VIEW, "flatten", 1, U3, 0, c_flatten},
    {DKH_OP_VIEW, "unsqueeze", 1, U2, 0, c_unsqueeze},
    {DKH_OP_VIEW, "squeeze", 1, U2 "|s", 0, c_squeeze},
    {DKH_OP_PERMUTE, "permute", 1, U3, 0, c_permute},
    {DKH_OP_PERMUTE, "transpose", 1, U2 "|" U3, 0, c_transpose},
    {DKH_OP_SLICE, "slice", 1, U2 "|" U3, 0, c_slice},
    {DKH_OP_SLICE, "large_subsample", 1, "16,16,28,28|5,3,9,4100", NOGRAD, c_big_subsample},
    {DKH_OP_SLICE, "large_slice_odd", 1, "8,16,28,28|2,17,3,2000", NOGRAD, c_big_slice_odd},
    {DKH_OP_RELU, "large_relu", 1, "64,1000|40000", NOGRAD, c_big_relu},
    {DKH_OP_ADD, "large_add_mul", 1, "300,300", NOGRAD, c_big_add},
    {DKH_OP_COPY, "large_copy", 1, "300,300|2,200,90", NOGRAD, c_big_copy},
    {DKH_OP_SUM, "large_mean_hw", 1, "8,16,7,7|2,300,3,3|3,5,40,40", NOGRAD, c_big_mean_hw},
    {DKH_OP_AMAX, "large_amax_hw", 1, "8,16,4,4|3,300,2,3", NOGRAD | QUANT, c_big_amax_hw},
    {DKH_OP_AMIN, "large_amin_dim0", 1, "12,300|12,3,80", NOGRAD | QUANT, c_big_amin_0},
    {DKH_OP_SLICE, "select", 1, "3,4|1,5|2,3,4", 0, c_select},
    {DKH_OP_EXPAND, "expand", 1, "1,3|4,1|1,1|0,2", 0, c_expand},
    {DKH_OP_NEG, "neg", 1, U2 "|s", 0, c_neg},
    {DKH_OP_ABS, "abs", 1, U2, 0, c_abs},
    {DKH_OP_EXP, "exp", 1, U2 "|" U3, 0, c_exp},
    {DKH_OP_LOG, "ln", 1, U2, POS, c_ln},
    {DKH_OP_SQRT, "sqrt", 1, U2, POS, c_sqrt},
    {DKH_OP_RSQRT, "rsqrt", 1, U2, POS, c_rsqrt},
    {DKH_OP_RELU, "relu", 1, U2 "|" U3, 0, c_relu},
    {DKH_OP_SIGMOID, "sigmoid", 1, U2, 0, c_sigmoid},
    {DKH_OP_TANH, "tanh", 1, U2, 0, c_tanh},
    {DKH_OP_GELU, "gelu", 1, U2, 0, c_gelu},
    {DKH_OP_SILU, "silu", 1, U2, 0, c_silu},
    {DKH_OP_SOFTPLUS, "softplus", 1, U2, 0, c_softplus},
    {DKH_OP_LEAKY_RELU, "leaky_relu", 1, U2, 0, c_leaky},
    {DKH_OP_CLAMP, "clamp", 1, U2, 0, c_clamp},
    {DKH_OP_POW_SCALAR, "pow_scalar", 1, U2, POS, c_pows},
    {DKH_OP_AFFINE, "add_scalar", 1, U2, 0, c_adds},
    {DKH_OP_AFFINE, "mul_scalar", 1, U2 "|s", 0, c_muls},
    {DKH_OP_ADD, "add", 2, B2, 0, c_add},
    {DKH_OP_SUB, "sub", 2, B2, 0, c_sub},
    {DKH_OP_MUL, "mul", 2, B2, 0, c_mul},
    {DKH_OP_DIV, "div", 2, B2, POS, c_div},
    {DKH_OP_POW, "pow", 2, B2, POS, c_pow},
    {DKH_OP_MAXIMUM, "maximum", 2, B2, 0, c_max},
    {DKH_OP_MINIMUM, "minimum", 2, B2, 0, c_min},
    {DKH_OP_EQ, "eq", 2, B2, NOGRAD | QUANT, c_eq},
    {DKH_OP_NE, "ne", 2, B2, NOGRAD | QUANT, c_ne},
    {DKH_OP_LT, "lt", 2, B2, NOGRAD | QUANT, c_lt},
    {DKH_OP_LE, "le", 2, B2, NOGRAD | QUANT, c_le},
    {DKH_OP_GT, "gt", 2, B2, NOGRAD | QUANT, c_gt},
    {DKH_OP_GE, "ge", 2, B2, NOGRAD | QUANT, c_ge},
    {DKH_OP_WHERE, "where", 3, "3,4;3,4;3,4|3,1;1,4;3,4|2,3;s;2,3|0,2;0,2;1,2", COND0, c_where},
    {DKH_OP_SUM, "sum_all", 1, U2 "|" U3 "|s", 0, c_sum_all},
    {DKH_OP_SUM, "sum_dims", 1, U2 "|" U3, 0, c_sum_d},
    {DKH_OP_SUM, "sum_1", 1, U2 "|" U3, 0, c_sum_1},
    {DKH_OP_SUM, "mean", 1, U2 "|" U3, 0, c_mean},
    {DKH_OP_SUM, "var", 1, "3,4|2,5,3|5,1", 0, c_var},
    {DKH_OP_SUM, "logsumexp", 1, U2 "|" U3, 0, c_lse},
    {DKH_OP_AMAX, "amax", 1, "1,5|3,7|4,1|2,3,5", 0, c_amax},
    {DKH_OP_AMAX, "amax_all", 1, "1,5|3,7|2,3,5|s", 0, c_amax_all},
    {DKH_OP_AMIN, "amin", 1, "1,5|3,7|4,1|2,3,5", 0, c_amin},
    {DKH_OP_ARGMAX, "argmax", 1, U2 "|" U3, NOGRAD, c_argmax},
    {DKH_OP_MATMUL, "matmul", 2,
     "3,4;4,5|1,7;7,1|2,3,4;4,2|2,1,3,4;5,4,3|4;4,3|2,3,4;4|5;5|0,3;3,2|2,0;0,3", 0, c_matmul},
    {DKH_OP_MATMUL, "linear", 3, "4,3;5,3;5|1,6;2,6;2|2,3,4;3,4;3", 0, c_linear},
    {DKH_OP_SOFTMAX, "softmax", 1, U2 "|" U3, 0, c_softmax},
    {DKH_OP_SOFTMAX, "softmax_dim0", 1, "3,4|1,5|2,3,2", 0, c_softmax0},
    {DKH_OP_LOG_SOFTMAX, "log_softmax", 1, U2 "|" U3, 0, c_lsm},
    {.name = NULL},
};
