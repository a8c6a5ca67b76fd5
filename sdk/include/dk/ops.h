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
 * dk_relu_(x)  in place (ABI 1.2): writes relu(x) into x and returns x, saving the
 *     memory of a second activation (relu after batch_norm or add). x must not be a
 *     leaf that requires grad nor share its storage with another tensor; an op that
 *     used x before and needs its values for backward makes dk_backward fail.
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

/* ---- indexing, sorting, losses, resampling, geometry ------------------------------------
 * Index tensors are i64 (i32 accepted) and must lie in range: an index out of
 * range is an error naming the op, the index and the dim. Where PyTorch
 * returns two tensors, the second comes through an out-parameter (new,
 * scope-owned; may be NULL when not wanted).
 *
 * dk_cat(xs, n, dim)      any n >= 1; shapes equal outside dim (grad: slices)
 * dk_stack(xs, n, dim)    equal shapes; a new dim at dim in [-(ndim+1), ndim]
 * dk_split(x, size, dim, max_out, out, &n_out)   views of `size` along dim (the
 *                         last may be smaller; an empty dim gives one empty piece)
 * dk_split_sizes(x, sizes, n, dim, out)          views of the given sizes (sum = dim size)
 * dk_chunk(x, chunks, dim, out, &n_out)          PyTorch's chunk: pieces of
 *                         ceil(size / chunks), so possibly fewer than chunks
 *     out has room for max_out (chunk: chunks) tensors; DK_CHECK status.
 * dk_index_select(x, dim, index)        index 1-d, values in [0, size)
 * dk_index_put(x, dim, index, values, accumulate)
 *     x with the positions index along dim set to (or, accumulate, increased
 *     by) values, which broadcast to x's shape with dim sized like index.
 *     Negative indices count from the end. Duplicates: accumulate adds all;
 *     otherwise the last wins (PyTorch leaves it undefined). Grad to x and values.
 * dk_gather(x, dim, index)              out[i][j] = x[i][index[i][j]] (dim 1)
 * dk_scatter(x, dim, index, src)        x with x[i][index[i][j]] = src[i][j];
 *                                       src has index's shape; last duplicate wins
 * dk_scatter_add(x, dim, index, src)    the same, duplicates accumulating
 * dk_masked_fill(x, mask, value)        where(mask, value, x); mask bool, broadcasting
 * dk_nonzero(x)                         (K, ndim) i64 coordinates in C order; no grad
 *
 * dk_max_dim(x, dim, keepdim, &indices)  dk_min_dim(...)
 *     values and (i64) indices of the first extreme along dim; NaN is the
 *     extreme; grad to the chosen elements.
 * dk_sort(x, dim, descending, &indices)  stable; NaN sorts as the largest
 * dk_argsort(x, dim, descending)         the indices alone
 * dk_topk(x, k, dim, largest, &indices)  the k largest (smallest), always in
 *     sorted order, ties by index. Values are gather(x, indices): differentiable.
 *
 * dk_norm(x, dims, ndims, keepdim)       L2 norm; grad 0 where the norm is 0
 *
 * Losses take a reduction: DK_REDUCTION_NONE, _MEAN (PyTorch's default), _SUM.
 * dk_cross_entropy(logits, target, weight, ignore_index, label_smoothing, reduction)
 *     logits (N, C, d...) or (C); target class indices (N, d...) or ();
 *     weight (C) or NULL (takes no grad); pass -100 for PyTorch's default
 *     ignore_index. Mean divides by the summed weights of the targets not
 *     ignored. One fused op (stable log-sum-exp).
 * dk_nll_loss(log_probs, target, weight, ignore_index, reduction)
 * dk_binary_cross_entropy_with_logits(x, target, weight, pos_weight, reduction)
 *     weight broadcasts to x, pos_weight to x's last dim; either may be NULL.
 *     Differentiable in x and target.
 * dk_sigmoid_focal_loss(x, target, alpha, gamma, reduction)
 *     torchvision's: alpha < 0 disables the alpha weighting (default 0.25, gamma 2)
 * dk_smooth_l1_loss(x, target, beta, reduction)   beta 0 is L1
 * dk_l1_loss(x, target, reduction)  dk_mse_loss(x, target, reduction)
 *
 * dk_interpolate(x, size, scale_factor, mode, align_corners)
 *     x (N, C, H, W); exactly one of size {H, W} and scale_factor {sh, sw} is
 *     non-NULL (output floor(in * s)). DK_INTERP_NEAREST (PyTorch's "nearest")
 *     or DK_INTERP_BILINEAR; PyTorch's coordinates, a given scale factor used
 *     as is (recompute_scale_factor off).
 * dk_pad(x, pads, npads, mode, value)
 *     pads as PyTorch's F.pad: (left, right) of the last dim, then the one
 *     before, ...; DK_PAD_CONSTANT (negative pads crop), DK_PAD_REFLECT (pads
 *     < the dim's size), DK_PAD_REPLICATE. Any leading dims.
 * dk_dropout(x, p, training, rng)
 *     inverted dropout: kept elements scaled by 1 / (1 - p). Not training or
 *     p == 0: x itself. rng NULL uses the thread's default; it advances by
 *     numel, and the same state gives the same mask.
 *
 * dk_box_iou(a, b)            (N, 4) x (M, 4) xyxy -> (N, M); no grad
 * dk_batched_nms(boxes, scores, class_ids, iou_threshold)
 *     indices (i64) of the kept boxes by decreasing score; a box is dropped
 *     when a kept box of its class has IoU > threshold with it. class_ids NULL
 *     (or dk_nms) treats all boxes as one class. No grad.
 */
enum { DK_REDUCTION_NONE, DK_REDUCTION_MEAN, DK_REDUCTION_SUM };
enum { DK_INTERP_NEAREST, DK_INTERP_BILINEAR };
enum { DK_PAD_CONSTANT, DK_PAD_REFLECT, DK_PAD_REPLICATE };

#endif /* DK_OPS_H */
