/* tests/xcheck/xcheck_cases.h — the cases of the PyTorch cross-check, one line each.
 *
 *   X(name, OP, inputs, flags, expression)
 *
 * name   the case; xcheck.py holds the same name with the PyTorch expression.
 * OP     the DKH_OP_LIST entry the case exercises (the runner fails when an op
 *        of the list has no case).
 * inputs one spec per input, separated by ';' ("" = none):
 *          3,4     float, uniform in [-2, 2)          s      a float scalar
 *          p3,4    float, uniform in [0.5, 2)         q3,4   float on a 0.5 grid (ties)
 *          b3,4    bool                               i7:3,4 int64 in [0, 7)
 *          j7:3,4  int64 in [-7, 7)
 *        Float inputs have the runner's dtype (--dtype f64|f32) and require grad.
 * flags  XC_NOGRAD (no backward is run), XC_STATS (random numbers: only shape,
 *        dtype and range are compared).
 * expr   a dk expression over IN0, IN1, IN2 ... and DT (the runner's float dtype).
 *
 * Backward: the runner calls dk_backward(out, R) with a random R shaped like
 * out and writes every float input's gradient; xcheck.py does the same with
 * torch's out.backward(R).
 */
#ifndef DK_XCHECK_CASES_H
#define DK_XCHECK_CASES_H

#define XC_CASES(X) XC_CORE(X) XC_NN(X) XC_INDEX(X)

/* ---- core: creation, copies, views, elementwise, reductions, products ---- */
#define XC_CORE(X)                                                                      \
    X(full, FULL, "", XC_NOGRAD, dk_full(2, (int64_t[]){2, 3}, 1.5, DT, DK_CPU))      \
    X(zeros_i64, FULL, "", XC_NOGRAD, dk_zeros(1, (int64_t[]){4}, DK_DTYPE_I64, DK_CPU)) \
    X(arange, ARANGE, "", XC_NOGRAD, dk_arange(-1, 2, 0.25, DT, DK_CPU))              \
    X(arange_frac, ARANGE, "", XC_NOGRAD, dk_arange(0, 1, 0.3, DT, DK_CPU))           \
    X(arange_neg, ARANGE, "", XC_NOGRAD, dk_arange(5, -3, -2, DK_DTYPE_I64, DK_CPU))  \
    X(rand, RAND, "", XC_NOGRAD | XC_STATS, dk_rand(2, (int64_t[]){64, 64}, DT, DK_CPU, NULL)) \
    X(randn, RANDN, "", XC_NOGRAD | XC_STATS, dk_randn(2, (int64_t[]){64, 64}, DT, DK_CPU, NULL)) \
    X(copy, COPY, "3,4", 0, dk_copy(IN0))                                             \
    X(contiguous_t, COPY, "3,4", 0, dk_contiguous(dk_transpose(IN0, 0, 1)))           \
    X(cast_f32, CAST, "3,4", 0, dk_cast(IN0, DK_DTYPE_F32))                           \
    X(cast_f64, CAST, "3,4", 0, dk_cast(IN0, DK_DTYPE_F64))                           \
    X(cast_i64, CAST, "3,4", XC_NOGRAD, dk_cast(IN0, DK_DTYPE_I64))                   \
    X(cast_bool, CAST, "q3,4", XC_NOGRAD, dk_cast(IN0, DK_DTYPE_BOOL))                \
    X(cast_int_float, CAST, "j9:3,4", XC_NOGRAD, dk_cast(IN0, DT))                    \
    X(reshape, VIEW, "2,3,4", 0, dk_reshape(IN0, 2, (int64_t[]){-1, 6}))              \
    X(reshape_t, VIEW, "3,4", 0, dk_reshape(dk_transpose(IN0, 0, 1), 1, (int64_t[]){-1})) \
    X(flatten, VIEW, "2,3,4,5", 0, dk_flatten(IN0, 1, 2))                             \
    X(unsqueeze, VIEW, "3,4", 0, dk_unsqueeze(IN0, -1))                               \
    X(squeeze, VIEW, "3,1,4", 0, dk_squeeze(IN0, 1))                                  \
    X(permute, PERMUTE, "2,3,4", 0, dk_permute(IN0, 3, (int[]){2, 0, 1}))             \
    X(transpose, PERMUTE, "2,3,4", 0, dk_transpose(IN0, 0, -1))                       \
    X(slice, SLICE, "5,7", 0, dk_slice(IN0, -1, 1, 100, 2))                           \
    X(slice_neg, SLICE, "6,4", 0, dk_slice(IN0, 0, -4, -1, 1))                        \
    X(select, SLICE, "3,4,2", 0, dk_select(IN0, 1, -1))                               \
    X(expand, EXPAND, "1,3", 0, dk_expand(IN0, 3, (int64_t[]){2, 4, -1}))             \
    X(neg, NEG, "3,4", 0, dk_neg(IN0))                                                \
    X(neg_i64, NEG, "j9:5", XC_NOGRAD, dk_neg(IN0))                                   \
    X(abs, ABS, "3,4", 0, dk_abs(IN0))                                                \
    X(abs_i64, ABS, "j9:5", XC_NOGRAD, dk_abs(IN0))                                   \
    X(exp, EXP, "3,4", 0, dk_exp(IN0))                                                \
    X(ln, LOG, "p3,4", 0, dk_ln(IN0))                                                 \
    X(sqrt, SQRT, "p3,4", 0, dk_sqrt(IN0))                                            \
    X(rsqrt, RSQRT, "p3,4", 0, dk_rsqrt(IN0))                                         \
    X(relu, RELU, "3,4", 0, dk_relu(IN0))                                             \
    X(relu_i64, RELU, "j9:5", XC_NOGRAD, dk_relu(IN0))                                \
    X(sigmoid, SIGMOID, "3,4", 0, dk_sigmoid(IN0))                                    \
    X(sigmoid_big, SIGMOID, "s", 0, dk_sigmoid(dk_mul_scalar(IN0, 400)))              \
    X(tanh, TANH, "3,4", 0, dk_tanh(IN0))                                             \
    X(gelu, GELU, "3,4", 0, dk_gelu(IN0))                                             \
    X(silu, SILU, "3,4", 0, dk_silu(IN0))                                             \
    X(softplus, SOFTPLUS, "3,4", 0, dk_softplus(IN0))                                 \
    X(softplus_big, SOFTPLUS, "3,4", 0, dk_softplus(dk_mul_scalar(IN0, 30)))          \
    X(leaky_relu, LEAKY_RELU, "3,4", 0, dk_leaky_relu(IN0, 0.1))                      \
    X(clamp, CLAMP, "3,4", 0, dk_clamp(IN0, -0.7, 0.9))                               \
    X(clamp_i64, CLAMP, "j9:6", XC_NOGRAD, dk_clamp(IN0, -3, 4))                      \
    X(pow_scalar, POW_SCALAR, "p3,4", 0, dk_pow_scalar(IN0, 2.5))                     \
    X(pow_scalar_neg, POW_SCALAR, "3,4", 0, dk_pow_scalar(IN0, 3))                    \
    X(add_scalar, AFFINE, "3,4", 0, dk_add_scalar(IN0, 0.75))                         \
    X(mul_scalar, AFFINE, "3,4", 0, dk_mul_scalar(IN0, -1.25))                        \
    X(mul_scalar_i64, AFFINE, "j9:5", XC_NOGRAD, dk_mul_scalar(IN0, 3))               \
    X(add, ADD, "3,4;3,4", 0, dk_add(IN0, IN1))                                       \
    X(add_bcast, ADD, "3,1;1,4", 0, dk_add(IN0, IN1))                                 \
    X(add_scalar_t, ADD, "s;2,3", 0, dk_add(IN0, IN1))                                \
    X(add_i64, ADD, "j9:3,4;j9:4", XC_NOGRAD, dk_add(IN0, IN1))                       \
    X(sub, SUB, "2,3,4;3,1", 0, dk_sub(IN0, IN1))                                     \
    X(mul, MUL, "2,3,4;4", 0, dk_mul(IN0, IN1))                                       \
    X(div, DIV, "3,4;p3,1", 0, dk_div(IN0, IN1))                                      \
    X(pow, POW, "p3,4;1,4", 0, dk_pow(IN0, IN1))                                      \
    X(maximum, MAXIMUM, "3,4;1,4", 0, dk_maximum(IN0, IN1))                           \
    X(maximum_ties, MAXIMUM, "q4,5;q4,5", 0, dk_maximum(IN0, IN1))                    \
    X(minimum, MINIMUM, "3,4;3,1", 0, dk_minimum(IN0, IN1))                           \
    X(minimum_ties, MINIMUM, "q4,5;q4,5", 0, dk_minimum(IN0, IN1))                    \
    X(eq, EQ, "q4,5;q4,5", XC_NOGRAD, dk_eq(IN0, IN1))                                \
    X(ne, NE, "q4,5;q1,5", XC_NOGRAD, dk_ne(IN0, IN1))                                \
    X(lt, LT, "q4,5;q4,5", XC_NOGRAD, dk_lt(IN0, IN1))                                \
    X(le, LE, "q4,5;q4,1", XC_NOGRAD, dk_le(IN0, IN1))                                \
    X(gt, GT, "q4,5;q4,5", XC_NOGRAD, dk_gt(IN0, IN1))                                \
    X(ge, GE, "j3:4,5;j3:5", XC_NOGRAD, dk_ge(IN0, IN1))                              \
    X(where, WHERE, "b3,4;3,4;1,4", 0, dk_where(IN0, IN1, IN2))                       \
    X(sum_all, SUM, "3,4", 0, dk_sum(IN0, NULL, 0, false))                            \
    X(sum_dims, SUM, "2,3,4", 0, dk_sum(IN0, (int[]){0, -1}, 2, true))                \
    X(sum_bool, SUM, "b3,4", XC_NOGRAD, dk_sum(IN0, (int[]){1}, 1, false))            \
    X(sum_i64, SUM, "j9:3,4", XC_NOGRAD, dk_sum(IN0, NULL, 0, false))                 \
    X(mean, SUM, "2,3,4", 0, dk_mean(IN0, (int[]){1}, 1, false))                      \
    X(var, SUM, "5,4", 0, dk_var(IN0, (int[]){0}, 1, 1, false))                       \
    X(var_pop, SUM, "2,3,4", 0, dk_var(IN0, (int[]){1, 2}, 2, 0, true))               \
    X(logsumexp, SUM, "3,4", 0, dk_logsumexp(IN0, (int[]){-1}, 1, false))             \
    X(amax, AMAX, "3,5", 0, dk_amax(IN0, (int[]){1}, 1, false))                       \
    X(amax_ties, AMAX, "q4,6", 0, dk_amax(IN0, NULL, 0, false))                       \
    X(amin, AMIN, "3,5", 0, dk_amin(IN0, (int[]){0}, 1, true))                        \
    X(amin_ties, AMIN, "q4,6", 0, dk_amin(IN0, (int[]){1}, 1, false))                 \
    X(argmax, ARGMAX, "3,5", XC_NOGRAD, dk_argmax(IN0, -1, false))                    \
    X(argmax_ties, ARGMAX, "q6,4", XC_NOGRAD, dk_argmax(IN0, 0, true))                \
    X(matmul, MATMUL, "3,4;4,5", 0, dk_matmul(IN0, IN1))                              \
    X(matmul_batch, MATMUL, "2,1,3,4;5,4,3", 0, dk_matmul(IN0, IN1))                  \
    X(matmul_vec_mat, MATMUL, "4;4,3", 0, dk_matmul(IN0, IN1))                        \
    X(matmul_mat_vec, MATMUL, "2,3,4;4", 0, dk_matmul(IN0, IN1))                      \
    X(matmul_dot, MATMUL, "5;5", 0, dk_matmul(IN0, IN1))                              \
    X(matmul_big, MATMUL, "33,70;70,19", 0, dk_matmul(IN0, IN1))                      \
    X(linear, MATMUL, "4,3;5,3;5", 0, dk_linear(IN0, IN1, IN2))                       \
    X(linear_nobias, MATMUL, "2,3,6;4,6", 0, dk_linear(IN0, IN1, NULL))               \
    X(softmax, SOFTMAX, "3,5", 0, dk_softmax(IN0, -1))                                \
    X(softmax_dim0, SOFTMAX, "3,4,2", 0, dk_softmax(IN0, 0))                          \
    X(log_softmax, LOG_SOFTMAX, "3,5", 0, dk_log_softmax(IN0, -1))                    \
    X(log_softmax_dim1, LOG_SOFTMAX, "2,4,3", 0, dk_log_softmax(IN0, 1))              \
    X(softmax_rows_large, SOFTMAX, "64,300", 0, dk_softmax(IN0, -1))                  \
    X(log_softmax_rows_large, LOG_SOFTMAX, "64,300", 0, dk_log_softmax(IN0, -1))      \
    X(softmax_channels_large, SOFTMAX, "2,5,20,30", 0, dk_softmax(IN0, 1))

/* ---- nn: convolution, normalisation, pooling (nn.h) ---- */
#define XC_NN(X)                                                                        \
    X(conv2d, CONV2D, "2,3,7,6;4,3,3,3;4", 0,                                             \
      dk_conv2d(IN0, IN1, IN2, (int64_t[]){2, 1}, (int64_t[]){1, 0}, NULL, 1))            \
    X(conv2d_group_dil, CONV2D_BWD_WEIGHT, "2,4,9,9;6,2,3,3", 0,                          \
      dk_conv2d(IN0, IN1, NULL, NULL, (int64_t[]){2, 2}, (int64_t[]){2, 2}, 2))           \
    X(conv_transpose2d, CONV2D_BWD_DATA, "2,4,5,5;4,3,3,3;3", 0,                          \
      dk_conv_transpose2d(IN0, IN1, IN2, (int64_t[]){2, 2}, (int64_t[]){1, 1},            \
                          (int64_t[]){1, 1}, NULL, 1))                                     \
    X(batch_norm_train, BATCH_NORM, "4,3,5,5;3;3", 0,                                     \
      dk_batch_norm(IN0, IN1, IN2, dk_zeros(1, (int64_t[]){3}, DT, DK_CPU),               \
                    dk_ones(1, (int64_t[]){3}, DT, DK_CPU), true, 0.1, 1e-5))             \
    X(batch_norm_eval, BATCH_NORM, "4,3,5;3;3", 0,                                        \
      dk_batch_norm(IN0, IN1, IN2, dk_full(1, (int64_t[]){3}, 0.3, DT, DK_CPU),           \
                    dk_full(1, (int64_t[]){3}, 1.7, DT, DK_CPU), false, 0.1, 1e-5))       \
    X(layer_norm, LAYER_NORM, "3,4,5;4,5;4,5", 0,                                         \
      dk_layer_norm(IN0, (int64_t[]){4, 5}, 2, IN1, IN2, 1e-5))                           \
    X(layer_norm_plain, LAYER_NORM, "6,7", 0,                                             \
      dk_layer_norm(IN0, (int64_t[]){7}, 1, NULL, NULL, 1e-5))                            \
    X(group_norm, GROUP_NORM, "2,6,4,3;6;6", 0, dk_group_norm(IN0, 3, IN1, IN2, 1e-5))    \
    X(group_norm_plain, GROUP_NORM, "3,4,5", 0, dk_group_norm(IN0, 2, NULL, NULL, 1e-5))  \
    X(max_pool2d, MAX_POOL2D, "2,3,7,7", 0,                                               \
      dk_max_pool2d(IN0, (int64_t[]){3, 3}, (int64_t[]){2, 2}, (int64_t[]){1, 1}, NULL, false)) \
    X(max_pool2d_ceil, MAX_POOL2D, "2,3,7,7", 0,                                          \
      dk_max_pool2d(IN0, (int64_t[]){2, 2}, NULL, NULL, NULL, true))                      \
    X(avg_pool2d, AVG_POOL2D, "2,3,7,7", 0,                                               \
      dk_avg_pool2d(IN0, (int64_t[]){3, 3}, (int64_t[]){2, 2}, (int64_t[]){1, 1}, false, true)) \
    X(avg_pool2d_nopad, AVG_POOL2D, "2,3,7,7", 0,                                         \
      dk_avg_pool2d(IN0, (int64_t[]){3, 3}, (int64_t[]){2, 2}, (int64_t[]){1, 1}, true, false)) \
    X(adaptive_avg_pool2d, ADAPTIVE_AVG_POOL2D, "2,3,7,5", 0,                             \
      dk_adaptive_avg_pool2d(IN0, (int64_t[]){3, 2}))

/* ---- index: indexing, sorting, losses, geometry ---- */
#define XC_INDEX(X)                                                                     \
    X(cat, CAT, "2,3;4,3", 0, dk_cat((dk_tensor *[]){IN0, IN1}, 2, 0))                    \
    X(index_select, INDEX_SELECT, "4,5;i4:6", 0, dk_index_select(IN0, 0, IN1))            \
    X(gather, GATHER, "3,5;i5:3,4", 0, dk_gather(IN0, 1, IN1))                            \
    X(max_dim, MAX_DIM, "3,5", 0, dk_max_dim(IN0, 1, false, NULL))                        \
    X(sort, SORT, "3,6", 0, dk_sort(IN0, -1, true, NULL))                                 \
    X(topk, TOPK, "3,6", 0, dk_topk(IN0, 2, 1, true, NULL))                               \
    X(norm, NORM, "3,4", 0, dk_norm(IN0, (int[]){1}, 1, false))                           \
    X(nonzero, NONZERO, "q3,4", XC_NOGRAD, dk_nonzero(IN0))                               \
    X(cross_entropy, CROSS_ENTROPY, "5,4;i4:5", 0,                                        \
      dk_cross_entropy(IN0, IN1, NULL, -100, 0.0, DK_REDUCTION_MEAN))                     \
    X(cross_entropy_ls_ignore, CROSS_ENTROPY, "6,4;i4:6", 0,                              \
      dk_cross_entropy(IN0, IN1, NULL, 1, 0.1, DK_REDUCTION_SUM))                         \
    X(cross_entropy_large, CROSS_ENTROPY, "64,300;i300:64", 0,                            \
      dk_cross_entropy(IN0, IN1, NULL, -100, 0.0, DK_REDUCTION_MEAN))                     \
    X(cross_entropy_seg_large, CROSS_ENTROPY, "2,5,40,30;i5:2,40,30", 0,                  \
      dk_cross_entropy(IN0, IN1, NULL, 1, 0.1, DK_REDUCTION_MEAN))                        \
    X(index_put_acc, INDEX_PUT, "5,3;i5:4;4,3", 0, dk_index_put(IN0, 0, IN1, IN2, true))  \
    X(scatter_add, SCATTER, "3,5;i5:3,2;3,2", 0, dk_scatter_add(IN0, 1, IN1, IN2))        \
    X(interp_nearest, INTERPOLATE, "1,2,3,4", 0,                                          \
      dk_interpolate(IN0, (int64_t[]){5, 7}, NULL, DK_INTERP_NEAREST, false))             \
    X(interp_bilinear, INTERPOLATE, "1,2,3,4", 0,                                         \
      dk_interpolate(IN0, (int64_t[]){5, 7}, NULL, DK_INTERP_BILINEAR, false))            \
    X(interp_bilinear_ac, INTERPOLATE, "1,2,3,4", 0,                                      \
      dk_interpolate(IN0, (int64_t[]){5, 7}, NULL, DK_INTERP_BILINEAR, true))             \
    X(pad_constant, PAD, "2,3,4", 0, dk_pad(IN0, (int64_t[]){1, 2, -1, 1}, 4, DK_PAD_CONSTANT, 0.5)) \
    X(pad_reflect, PAD, "1,2,3,4", 0, dk_pad(IN0, (int64_t[]){2, 1, 1, 2}, 4, DK_PAD_REFLECT, 0)) \
    X(dropout_eval, DROPOUT, "3,4", 0, dk_dropout(IN0, 0.5, false, NULL))                 \
    X(box_iou, BOX_IOU, "p3,4;p2,4", XC_NOGRAD,                                           \
      dk_box_iou(dk_cat((dk_tensor *[]){dk_slice(IN0, 1, 0, 2, 1),                        \
                                         dk_add(dk_slice(IN0, 1, 0, 2, 1), dk_slice(IN0, 1, 2, 4, 1))}, 2, 1), \
                 dk_cat((dk_tensor *[]){dk_slice(IN1, 1, 0, 2, 1),                        \
                                         dk_add(dk_slice(IN1, 1, 0, 2, 1), dk_slice(IN1, 1, 2, 4, 1))}, 2, 1))) \
    X(nms, NMS, "p8,4;8", XC_NOGRAD,                                                      \
      dk_nms(dk_cat((dk_tensor *[]){dk_slice(IN0, 1, 0, 2, 1),                            \
                                     dk_add(dk_slice(IN0, 1, 0, 2, 1), dk_slice(IN0, 1, 2, 4, 1))}, 2, 1), \
             IN1, 0.3))                                                                    \
    X(nll_loss, NLL_LOSS, "5,4;i4:5", 0,                                                  \
      dk_nll_loss(dk_log_softmax(IN0, 1), IN1, NULL, -100, DK_REDUCTION_MEAN))

#endif /* DK_XCHECK_CASES_H */
