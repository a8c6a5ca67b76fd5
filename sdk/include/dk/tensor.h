/* dk/tensor.h — tensors, their lifetime, scopes, autograd and random numbers.
 *
 * A forward pass in plugin code reads like PyTorch; the runtime records a
 * tape and computes every gradient:
 *
 *     dk_scope_begin();                                   // the runner does this per step
 *     dk_tensor *h = dk_relu(dk_linear(x, w1, b1));       // (N, 128)
 *     dk_tensor *loss = dk_mean(dk_mul(h, h), NULL, 0, false);
 *     if (!loss)                                          // any NULL input or bad shape
 *         return dk_last_status();                        // on the way: the first cause
 *     DK_TRY(dk_backward(loss, NULL, false));             // w1->grad, b1->grad filled
 *     dk_scope_end();                                     // frees h, loss and the tape
 *
 * Tensors. A dk_tensor is an n-d array (at most DK_MAX_DIMS dims) of one
 * dtype on one device, in PyTorch order ((N, C, H, W)), with element strides
 * and an element offset into refcounted storage, so reshape, permute, slice
 * and expand are views that share bytes. Storage comes from a per-device
 * caching allocator (64-byte aligned on the CPU) that counts current and
 * peak bytes (dk_memory_stats_get).
 *
 * Ownership. Every tensor a function here or in ops.h returns is new and
 * owned by the innermost open scope (dk_scope_begin), which releases it when
 * it ends; model code never frees an intermediate. With no scope open the
 * caller owns the result and releases it with dk_tensor_release. To keep a
 * tensor past its scope (a parameter, a buffer, a running statistic), take a
 * reference with dk_tensor_retain and drop it later with dk_tensor_release.
 *
 * Errors. A function returning a tensor returns NULL on failure and records
 * the reason (op name, shapes, dtypes) in the error slot (status.h). Every op
 * accepts NULL inputs and returns NULL without touching the message, so a
 * chain of calls reports the first cause.
 *
 * Autograd. Leaves with requires_grad accumulate gradients in their .grad
 * (dk_tensor_grad) when dk_backward runs. Ops record themselves on the tape
 * when grad mode is on (the default; dk_grad_set_enabled turns it off, e.g.
 * for validation) and any float input requires grad. The tape is freed by
 * dk_backward unless retain_graph; a second backward through a freed graph
 * fails with DK_ERR_RUNTIME. In-place ops are not offered.
 *
 * Threads. Scopes, grad mode and the error slot are per thread; a tensor may
 * be shared between threads for reading.
 */
#ifndef DK_TENSOR_H
#define DK_TENSOR_H

#include <dk/types.h>
#include <dk/api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The CPU device, for the creation functions. */
#define DK_CPU ((dk_device){DK_DEVICE_CPU, 0})
/* A CUDA device (a later backend). */
#define DK_CUDA_DEV(i) ((dk_device){DK_DEVICE_CUDA, (i)})

/* ---- creation -------------------------------------------------------------
 *
 * dk_tensor *dk_empty(int ndim, const int64_t *shape, dk_dtype dtype, dk_device device);
 *     Uninitialised contiguous tensor. ndim 0 makes a scalar (shape may be NULL).
 *     Errors: DK_ERR_ARG (ndim out of [0, DK_MAX_DIMS], negative size, bad dtype),
 *     DK_ERR_NOMEM, DK_ERR_UNSUPPORTED (no backend for device).
 * dk_tensor *dk_full(int ndim, const int64_t *shape, double value, dk_dtype dtype,
 *                    dk_device device);
 *     Every element = value converted to dtype (round to nearest; bool: value != 0).
 * dk_tensor *dk_arange(double start, double end, double step, dk_dtype dtype,
 *                      dk_device device);
 *     1-d, values start + i*step for i < ceil((end - start) / step). step != 0.
 * dk_tensor *dk_rand(int ndim, const int64_t *shape, dk_dtype dtype, dk_device device,
 *                    dk_rng *rng);
 * dk_tensor *dk_randn(...same...);
 *     Uniform [0, 1) / standard normal values of a float dtype. rng NULL uses
 *     the thread's default generator (dk_rng_default). Element i depends only on
 *     the generator state and i, never on the thread count; rng advances.
 * dk_tensor *dk_from_data(int ndim, const int64_t *shape, dk_dtype dtype, const void *data);
 *     A CPU tensor holding a copy of numel elements of dtype read from data
 *     (C order). data is borrowed.
 */
static inline dk_tensor *dk_zeros(int ndim, const int64_t *shape, dk_dtype dtype,
                                  dk_device device)
{
    return dk_full(ndim, shape, 0.0, dtype, device);
}

static inline dk_tensor *dk_ones(int ndim, const int64_t *shape, dk_dtype dtype,
                                 dk_device device)
{
    return dk_full(ndim, shape, 1.0, dtype, device);
}

/* ---- reading ----------------------------------------------------------------
 *
 * int dk_tensor_ndim(const dk_tensor *t);             0 for a scalar, -1 for NULL
 * const int64_t *dk_tensor_shape(const dk_tensor *t); borrowed, valid while t lives
 * const int64_t *dk_tensor_strides(const dk_tensor *t);  in elements, borrowed
 * int64_t dk_tensor_numel(const dk_tensor *t);        product of the shape
 * dk_dtype dk_tensor_dtype(const dk_tensor *t);
 * dk_device dk_tensor_device(const dk_tensor *t);
 * void *dk_tensor_data(const dk_tensor *t);
 *     Address of the first element (storage + offset). Borrowed, valid while t
 *     lives; on a CPU device, readable with the strides above.
 * bool dk_tensor_is_contiguous(const dk_tensor *t);   C order, no gaps
 * dk_status dk_tensor_to_host(const dk_tensor *t, void *dst, size_t dst_bytes);
 *     Copies numel elements of t's dtype to dst in C order. DK_ERR_ARG if
 *     dst_bytes is smaller than numel * dk_dtype_size(dtype).
 * double dk_tensor_item(const dk_tensor *t);
 *     The value of a one-element tensor, as double; NAN (and an error) otherwise.
 * const char *dk_dtype_name(dk_dtype dtype);          "f32", ...; "?" if invalid
 * size_t dk_dtype_size(dk_dtype dtype);               bytes per element; 0 if invalid
 * void dk_memory_stats_get(dk_device device, dk_memory_stats *out);
 *     Bytes the device's tensor allocator holds (see types.h).
 */

/* ---- lifetime -----------------------------------------------------------------
 *
 * dk_tensor *dk_tensor_retain(dk_tensor *t);
 *     Takes a reference the caller owns, so t outlives its scope. Returns t.
 * void dk_tensor_release(dk_tensor *t);
 *     Drops a reference the caller owns. NULL is a no-op.
 * void dk_scope_begin(void);
 * void dk_scope_end(void);
 *     Open / close a scope on this thread. Scopes nest; ending one releases
 *     every tensor made while it was the innermost. Unbalanced ends are a bug
 *     and abort.
 */

/* ---- autograd -------------------------------------------------------------------
 *
 * bool dk_grad_set_enabled(bool enabled);
 *     Turns recording on or off for this thread; returns the previous mode.
 *     Restore it after a no-grad region:  bool was = dk_grad_set_enabled(false); ...
 *     dk_grad_set_enabled(was);
 * bool dk_grad_enabled(void);
 * dk_status dk_tensor_set_requires_grad(dk_tensor *t, bool on);
 *     Marks a leaf (a tensor no recorded op made) as a gradient target. Only
 *     floating dtypes. DK_ERR_ARG for a non-leaf or an integer tensor.
 * bool dk_tensor_requires_grad(const dk_tensor *t);
 * dk_tensor *dk_tensor_grad(const dk_tensor *t);
 *     The leaf's accumulated gradient (same shape and dtype), or NULL before
 *     any backward reached it. Borrowed: owned by t, valid until t is freed or
 *     dk_tensor_zero_grad; its values change with each backward.
 * void dk_tensor_zero_grad(dk_tensor *t);
 *     Sets the accumulated gradient to zeros (keeping its memory).
 * dk_status dk_backward(dk_tensor *root, dk_tensor *grad, bool retain_graph);
 *     Reverse mode from root. grad is d(loss)/d(root), same shape; NULL means 1
 *     and requires a one-element root. Leaves reached accumulate (+=) into .grad.
 *     Without retain_graph the tape behind root is freed; using it again fails.
 *     Errors: DK_ERR_ARG (root does not require grad, grad shape), DK_ERR_RUNTIME
 *     (graph already freed), errors of the ops the backward runs.
 * dk_tensor *dk_detach(dk_tensor *x);
 *     A view of x's storage outside the tape (no grad_fn, no requires_grad).
 */

/* ---- random numbers ---------------------------------------------------------------
 *
 * void dk_rng_seed(dk_rng *rng, uint64_t seed);
 * dk_rng dk_rng_split(dk_rng *rng);
 *     A statistically independent child generator (e.g. one per data-loader
 *     worker); advances rng so the next split differs.
 * dk_rng *dk_rng_default(void);
 *     This thread's default generator (seeded 0 until dk_rng_seed is called on it).
 */

#ifdef __cplusplus
}
#endif
#endif /* DK_TENSOR_H */
