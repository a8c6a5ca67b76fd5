/* dk/ops.h — the tensor ops a forward pass is written with.
 *
 *     dk_tensor *logits = dk_linear(dk_relu(dk_linear(x, w1, b1)), w2, b2);   // (N, 10)
 *     dk_tensor *logp = dk_log_softmax(logits, 1);                              // (N, 10)
 *
 * Common rules (tensor.h has ownership, errors and autograd):
 * - Every op returns a new tensor owned by the current scope, or NULL with the
 *   error slot naming the op, the input shapes and dtypes. A NULL input gives
 *   NULL and keeps the earlier message.
 * - Binary ops broadcast like PyTorch (align trailing dims; a dim of 1
 *   stretches). Both inputs must have the same dtype and device: there is no
 *   implicit type promotion (use dk_cast).
 * - Dims may be negative (counted from the end).
 * - Differentiable means: the op records itself on the tape for float inputs
 *   that require grad. docs/ops.md lists each op's semantics and gradient.
 *
 * ---- copy, cast, views --------------------------------------------------------
 * dk_copy(x)            contiguous copy (grad: identity)
 * dk_cast(x, dtype)     converted copy; float to float is differentiable. Float to
 *                       integer rounds toward zero; to bool is x != 0.
 * dk_contiguous(x)      x itself (a new reference in the scope) when already
 *                       contiguous, else dk_copy(x)
 * dk_reshape(x, n, shape)   one entry may be -1; a view when strides allow, else a copy
 * dk_permute(x, n, perm)    view; n == ndim, perm a permutation
 * dk_transpose(x, d0, d1)   view
 * dk_slice(x, dim, start, end, step)  view of [start, end) every step (step >= 1);
 *                       start/end clamp to the dim like Python slices; negatives count
 *                       from the end
 * dk_select(x, dim, i)  view with dim removed
 * dk_expand(x, n, shape)  view broadcasting size-1 dims (stride 0); -1 keeps a size
 * dk_squeeze(x, dim)    view removing dim, which must have size 1
 * dk_unsqueeze(x, dim)  view inserting a size-1 dim at dim in [-(ndim+1), ndim]
 * dk_flatten(x, s, e)   reshape merging dims s..e
 *
 * ---- elementwise (float dtypes unless noted; all differentiable except compares)
 * dk_neg dk_abs dk_exp dk_ln (natural log; dk_log is logging) dk_sqrt dk_rsqrt dk_relu dk_sigmoid dk_tanh
 * dk_gelu (exact, erf form) dk_silu dk_softplus (log(1 + e^x))
 * dk_leaky_relu(x, slope)  dk_clamp(x, lo, hi)  dk_pow_scalar(x, p)
 * dk_add_scalar(x, s) (x + s)  dk_mul_scalar(x, s) (x * s)
 * dk_neg, dk_abs, dk_relu, dk_clamp, dk_add_scalar, dk_mul_scalar also take integers.
 * dk_add dk_sub dk_mul dk_div dk_pow dk_maximum dk_minimum (a, b): broadcasting;
 *     add/sub/mul/maximum/minimum also take integers (computed exactly up to 2^53)
 * dk_eq dk_ne dk_lt dk_le dk_gt dk_ge (a, b): broadcasting, result DK_DTYPE_BOOL
 * dk_where(cond, a, b): cond bool, broadcasting over all three; grad flows to a, b
 *
 * ---- reductions --------------------------------------------------------------------
 * dims/ndims name the reduced dims (ndims 0 = all dims); keepdim keeps them as size 1.
 * dk_sum dk_mean (float) dk_amax dk_amin (float; ties share the gradient equally)
 * dk_var(x, dims, ndims, correction, keepdim)   sum((x - mean)^2) / (n - correction)
 * dk_logsumexp(x, dims, ndims, keepdim)         numerically stable
 * dk_argmax(x, dim, keepdim)                    index of the first maximum, DK_DTYPE_I64
 *
 * ---- matrix products ---------------------------------------------------------------
 * dk_matmul(a, b)   PyTorch semantics: 1-d operands gain a dim that is removed after;
 *                   (..., M, K) @ (..., K, N) with broadcast batch dims
 * dk_linear(x, w, b)  x (..., IN), w (OUT, IN), b (OUT) or NULL  ->  (..., OUT)
 *
 * ---- normalisation ------------------------------------------------------------------
 * dk_softmax(x, dim)  dk_log_softmax(x, dim)   stable (max subtracted)
 */
#ifndef DK_OPS_H
#define DK_OPS_H

#include <dk/types.h>
#include <dk/api.h>
#include <dk/tensor.h>

#endif /* DK_OPS_H */
