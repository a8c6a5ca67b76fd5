/* dk/nn.h — the neural-network layers as ops: convolution, normalisation, pooling.
 *
 *     int64_t pad[2] = {1, 1};
 *     dk_tensor *y = dk_conv2d(x, w, NULL, NULL, pad, NULL, 1);        // (N, K, H, W)
 *     y = dk_batch_norm(y, gamma, beta, run_mean, run_var, train, 0.1, 1e-5);
 *     y = dk_max_pool2d(dk_relu(y), (int64_t[]){2, 2}, NULL, NULL, NULL, false);
 *
 * The rules of ops.h hold here: results are new tensors owned by the current
 * scope, errors return NULL and name the op and the input shapes, a NULL input
 * gives NULL. Tensors are in PyTorch order (N, C, H, W); any element strides
 * are accepted. Argument meanings, defaults and edge cases follow PyTorch's
 * torch.nn.functional; docs/ops.md lists where they differ.
 *
 * Pairs of sizes (stride, padding, dilation, kernel) are `const int64_t *`
 * arrays of two values, height then width; NULL means the default the
 * function states. No function here takes ownership of anything.
 */
#ifndef DK_NN_H
#define DK_NN_H

#include <dk/types.h>
#include <dk/api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The functions are entries of the host API table (api_list.h, section
 * "neural-network layers"); their declarations come from api.h. Each is
 * documented here.
 *
 * ---- convolution ------------------------------------------------------------------
 * dk_conv2d(x, w, b, stride, padding, dilation, groups)
 *     x (N, C, H, W), w (K, C/groups, R, S), b (K) or NULL -> (N, K, P, Q) with
 *     P = (H + 2 pad - dil (R - 1) - 1) / stride + 1. stride and dilation default
 *     to 1, padding to 0; groups >= 1 divides C and K. Float dtypes; gradients
 *     for x, w and b. f32 and bf16 run through oneDNN.
 * dk_conv_transpose2d(x, w, b, stride, padding, output_padding, dilation, groups)
 *     x (N, C, H, W), w (C, K/groups, R, S), b (K) or NULL -> (N, K, Ho, Wo) with
 *     Ho = (H - 1) stride - 2 pad + dil (R - 1) + output_padding + 1; output_padding
 *     (default 0) must be smaller than stride or dilation. The gradient of a
 *     convolution with the same arguments; gradients for x, w and b.
 *     (Argument order differs from PyTorch's, which puts groups before dilation.)
 *
 * ---- normalisation -----------------------------------------------------------------
 * dk_batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps)
 *     x (N, C, ...) normalised per channel over every other dim; weight and bias
 *     (C) or NULL (no affine). Training (or no running statistics): batch
 *     statistics with the biased variance, and when running_mean/running_var
 *     (C) are given they are updated in place, outside autograd:
 *     r = (1 - momentum) r + momentum s, with the unbiased variance. Training
 *     needs more than one value per channel. Evaluation with running
 *     statistics normalises with them. PyTorch's defaults: momentum 0.1,
 *     eps 1e-5. Gradients for x, weight and bias in both modes.
 * dk_layer_norm(x, normalized_shape, n, weight, bias, eps)
 *     Normalises every row of x's last n dims: normalized_shape (n values) must
 *     equal them, as in PyTorch's F.layer_norm. y = (x - mean) / sqrt(var + eps)
 *     * weight + bias with the biased variance; weight and bias have the shape
 *     normalized_shape, or are NULL (no affine). No running statistics: the
 *     same in training and evaluation. PyTorch's default eps is 1e-5.
 *     Gradients for x, weight and bias.
 * dk_group_norm(x, num_groups, weight, bias, eps)
 *     x (N, C, ...); num_groups divides C. Each sample's channels split into
 *     num_groups groups of C / num_groups consecutive channels, each normalised
 *     over its channels and the trailing dims; weight and bias (C) or NULL.
 *     num_groups = 1 normalises a whole sample, num_groups = C is instance
 *     norm. Gradients for x, weight and bias.
 *
 * ---- pooling (x (N, C, H, W), float; gradient for x) -------------------------------
 * dk_max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)
 *     kernel required; stride defaults to kernel, padding to 0 (at most half the
 *     kernel), dilation to 1. Padding never wins a window (it is -inf). The
 *     gradient goes to the first maximum of each window; NaN propagates.
 * dk_avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad)
 *     PyTorch's divisor rules (count_include_pad counts padding cells, never
 *     cells past the padded border). No divisor_override.
 * dk_adaptive_avg_pool2d(x, output_size)
 *     output (N, C, oh, ow); cell i averages [floor(i H / oh), ceil((i + 1) H / oh)).
 *
 * ---- mixed precision (autocast) ---------------------------------------------------
 *     if (dk_autocast_begin(DK_DTYPE_BF16) != DK_OK) ...
 *     dk_tensor *loss = forward(model, x);          // convs and linears in bf16
 *     dk_autocast_end();
 *     dk_backward(loss, NULL, false);               // parameter grads are f32
 *
 * dk_status dk_autocast_begin(dk_dtype dtype)
 *     Opens an autocast scope on the calling thread (scopes are per thread and
 *     nest). Inside a DK_DTYPE_BF16 scope dk_conv2d, dk_conv_transpose2d,
 *     dk_matmul and dk_linear cast their f32 inputs (x, weight) to bf16,
 *     compute in bf16 with f32 accumulation (oneDNN; AMX where present) and
 *     return f32: the result is rounded to bf16 once and widened back, and the
 *     bias is added in f32. Every other op, parameters, their gradients and
 *     reductions stay f32; f64 and bf16 inputs are never cast. The casts are
 *     differentiable, so gradients reach the f32 parameters in f32 (computed
 *     by the bf16 backward, as PyTorch's autocast does). DK_DTYPE_F32 opens a
 *     scope with autocast off (PyTorch's autocast(enabled=False)). Errors:
 *     DK_ERR_ARG for another dtype, DK_ERR_RUNTIME past 32 nested scopes.
 * dk_status dk_autocast_end(void)
 *     Closes the innermost scope; DK_ERR_RUNTIME when none is open.
 * dk_dtype dk_autocast_dtype(void)
 *     The innermost scope's dtype, DK_DTYPE_F32 when none is open.
 * dk_backward ignores autocast: each gradient is computed in the dtype its
 * forward ran in, whether or not the backward is called inside a scope.
 * bf16 tensors can also be used directly: conv2d and matmul on bf16 inputs run
 * through oneDNN's bf16 primitives and return bf16; other ops take bf16 through
 * their (slow) reference kernels.
 */

#ifdef __cplusplus
}
#endif
#endif /* DK_NN_H */
