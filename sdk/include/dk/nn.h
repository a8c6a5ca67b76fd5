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
 *     for x, w and b. f32 runs through oneDNN.
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
 */

#ifdef __cplusplus
}
#endif
#endif /* DK_NN_H */
