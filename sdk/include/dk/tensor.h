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
 * double dk_rng_uniform(dk_rng *rng);
 *     One uniform draw in [0, 1); advances rng by one. NULL: the default.
 * int64_t dk_rng_int(dk_rng *rng, int64_t n);
 *     One integer in [0, n) (0 when n <= 1); advances rng by one.
 */

/* ---- devices -------------------------------------------------------------------------
 *
 * dk_tensor *dk_to(dk_tensor *x, dk_device device);
 *     x's values on device (same dtype and shape, contiguous). When x already
 *     lives there, x itself (a new reference in the scope). Differentiable: the
 *     gradient moves back to x's device. Errors: DK_ERR_UNSUPPORTED ("no CUDA
 *     device: <reason>" when the build has no CUDA backend or the machine no
 *     usable device), DK_ERR_ARG (an invalid device or index), DK_ERR_RUNTIME
 *     (a failed copy, with the CUDA runtime's own message).
 * int dk_device_count(dk_device_type type);
 *     Devices of a type this process can use: 1 for the CPU; 0 when CUDA is
 *     absent (dk_device_check says why).
 * dk_status dk_device_check(dk_device device);
 *     DK_OK when tensors can be made on device; else DK_ERR_UNSUPPORTED with the
 *     reason ("no CUDA device: CUDA driver version is insufficient ...") or
 *     DK_ERR_ARG for an index past the last device.
 * dk_status dk_device_name(dk_device device, char *buf, size_t size);
 *     Writes a NUL-terminated description ("cpu", "cuda:0 NVIDIA H100 (sm_90,
 *     79.1 GiB)"), truncated to size. Errors as dk_device_check.
 * dk_status dk_device_capability(dk_device device, int *major, int *minor);
 *     A CUDA device's compute capability (9, 0 for sm_90). DK_ERR_ARG for the CPU.
 * dk_status dk_device_synchronize(dk_device device);
 *     Waits until every kernel and copy queued on device has finished (for
 *     timing; dk_tensor_to_host and dk_to already wait). The CPU is always done.
 *
 * ---- runtime settings ------------------------------------------------------------------
 *
 * dk_status dk_set_num_threads(int n);
 *     Threads the CPU kernels use, from the next op on, in every thread that runs
 *     ops. n >= 1, or 0 for the default: the DK_NUM_THREADS environment variable
 *     when set to a positive integer, else every core this process may run on.
 *     DK_ERR_ARG for n < 0.
 * int dk_get_num_threads(void);
 * bool dk_set_deterministic(bool on);
 *     Deterministic mode (off by default; the runner's --deterministic is meant to set it):
 *     every reduction adds in an order fixed by the shapes alone, so repeated
 *     runs, and runs with any thread count, give identical bits. Backends take
 *     the slower path where their fast one is not (e.g. atomics on a GPU).
 *     Returns the previous mode. Process-wide.
 * bool dk_deterministic(void);
 *
 * ---- custom ops ---------------------------------------------------------------------
 *
 * A plugin adds an op the way the host defines its own: a shape and dtype
 * rule, a forward kernel per device type (the CPU one is required and is the
 * reference), and a backward written with other ops or as a dedicated kernel.
 * Once registered it is called like a built-in: NULL inputs propagate, its
 * errors name it and its inputs, results belong to the scope, and autograd
 * records it. docs/custom-ops.md walks through a complete example.
 *
 *     static int32_t scale_id;                        // set by dk_op_register
 *     static const dk_op_kernel scale_kernels[] = {
 *         {.device_type = DK_DEVICE_CPU, .forward = scale_cpu},
 *     };
 *     static const dk_op_info scale_op = {
 *         DK_OP_INFO_HEAD, .name = "myplugin.scale", .summary = "x * attrs.k",
 *         .n_in = 1, .infer = scale_infer, .backward = scale_backward,
 *         DK_OP_KERNELS(scale_kernels),
 *     };
 *     // in init:     DK_TRY(dk_op_register(reg, &scale_op, &scale_id));
 *     // in forward:  float k = 2; y = dk_op_call(scale_id, 1, &x, &k, sizeof k, NULL);
 *
 * Structures the plugin fills (dk_op_info, the dk_op_kernel array) are read
 * only as far as their declared sizes; structures the host fills (dk_op_ctx,
 * dk_op_shapes, dk_op_grad) carry the host's size first, so a plugin built
 * against a newer SDK checks it before reading an appended field.
 *
 * dk_status dk_op_register(dk_registrar *reg, const dk_op_info *info, int32_t *id);
 *     Registers the op `info` from the plugin's init.
 *     The host copies what it keeps (strings, the kernel table), so info need
 *     not outlive the call. *id (when id is not NULL) receives the op's handle,
 *     valid once init has returned successfully. Like dk_register, a failure
 *     here refuses the whole plugin even if init ignores it, and a failing init
 *     leaves no op behind. Errors: DK_ERR_ARG (malformed info: name syntax,
 *     n_in outside [1, DK_OP_MAX_IN], no infer, no CPU forward kernel),
 *     DK_ERR_DUPLICATE (the name is taken; the message names both plugin files).
 * int32_t dk_op_find(const char *name);
 *     The handle of a loaded custom op, or -1 with DK_ERR_NOT_FOUND (and a "did
 *     you mean") recorded. Handles are never reused: after its plugin is
 *     unloaded an old handle fails cleanly instead of reaching another op.
 * dk_tensor *dk_op_call(int32_t op, int n_in, dk_tensor *const *in, const void *attrs,
 *                       size_t attrs_size, dk_tensor **aux_out);
 *     Runs op on n_in inputs. attrs (attrs_size bytes, may be NULL/0) are the
 *     op's own parameters as plain data: the host copies them and hands the
 *     copy to every callback, including the backward, long after the call.
 *     Inputs are made contiguous first unless the op has DK_OP_STRIDED.
 *     aux_out, when not NULL, receives the auxiliary outputs the rule asked
 *     for (new, scope-owned; never differentiated). Returns the result, new and
 *     scope-owned, or NULL: a NULL input keeps the earlier message; otherwise
 *     "<name>: <reason> (inputs: ...)" with DK_ERR_NOT_FOUND (unknown or
 *     unloaded op), DK_ERR_ARG (input count), or the status the rule or kernel
 *     returned. A recorded tape node keeps its plugin loaded: unloading the
 *     plugin fails until the node's output is freed.
 */
#define DK_OP_MAX_IN 8  /* most tensor inputs of a custom op */
#define DK_OP_MAX_AUX 3 /* most auxiliary outputs */

/* dk_op_info.flags */
enum {
    /* The backward reads the forward's result (dk_op_grad.out). */
    DK_OP_SAVE_OUT = 1u << 0,
    /* The kernels take inputs with any strides; without it the host passes
     * contiguous inputs (copying those that are not). */
    DK_OP_STRIDED = 1u << 1,
};

/* What every callback receives. Host-filled; borrowed for the call. */
typedef struct dk_op_ctx {
    uint32_t struct_size; /* the host's sizeof(dk_op_ctx) */
    int32_t op;           /* the op's handle */
    const char *name;
    const void *attrs;    /* the call's attrs (the host's copy); NULL when none */
    size_t attrs_size;
    void *user_data;      /* dk_op_info.user_data */
    void *stream;         /* CUDA kernels: the cudaStream_t to queue on (NULL: default) */
} dk_op_ctx;

/* The dtype and shape of one output. */
typedef struct dk_op_meta {
    int32_t dtype; /* dk_dtype */
    int32_t ndim;  /* 0..DK_MAX_DIMS */
    int64_t shape[DK_MAX_DIMS];
} dk_op_meta;

/* What a shape rule fills. The host zero-fills it, sets struct_size and
 * preloads out[0] with input 0's dtype and shape (the common "same as the
 * input" case); the rule changes what differs and sets n_aux when the forward
 * makes auxiliary outputs out[1..n_aux]. */
typedef struct dk_op_shapes {
    uint32_t struct_size;
    int32_t n_aux; /* 0..DK_OP_MAX_AUX */
    dk_op_meta out[1 + DK_OP_MAX_AUX];
} dk_op_shapes;

/* What a backward written with ops receives. Host-filled; borrowed. */
typedef struct dk_op_grad {
    uint32_t struct_size;
    int32_t n_in;
    dk_tensor *const *in; /* the forward's inputs */
    dk_tensor *out;       /* the forward's result (detached); NULL without DK_OP_SAVE_OUT */
    int32_t n_aux;
    dk_tensor *const *aux; /* the forward's auxiliary outputs */
    dk_tensor *grad_out;   /* d(loss)/d(result), shaped like the result */
    const bool *needs;     /* needs[i]: input i wants a gradient */
} dk_op_grad;

/* The shape and dtype rule: checks the inputs (count, dtypes, shapes and the
 * attrs) and fills out, or returns dk_fail(...) with the reason; the host adds
 * the op's name and the inputs to the message. Must not make tensors. */
typedef dk_status (*dk_op_infer_fn)(const dk_op_ctx *ctx, int n_in, dk_tensor *const *in,
                                    dk_op_shapes *out);
/* A kernel. Forward: in = the inputs; out[0] = the result, out[1..] = the
 * auxiliary outputs, all allocated on the inputs' device with the shapes the
 * rule gave, contiguous. A dedicated backward kernel: in = the forward's
 * inputs, then its result (NULL without DK_OP_SAVE_OUT), then its auxiliary
 * outputs, then the result's gradient, so n_in = n_fwd + 2 + n_aux; out[i] =
 * the gradient of input i, zero-filled and shaped like it, or NULL where no
 * gradient is wanted (n_out = n_fwd). Read tensors with dk_tensor_data and
 * dk_tensor_shape; make no tensors. Return DK_OK, or dk_fail(...) for a
 * data-dependent failure (an index out of range): the op then returns NULL. */
typedef dk_status (*dk_op_kernel_fn)(const dk_op_ctx *ctx, int n_in,
                                     const dk_tensor *const *in, int n_out,
                                     dk_tensor *const *out);
/* A backward written with other ops: sets grads[i], shaped and typed like
 * in[i], for every i with needs[i] (tensors from ops are scope-owned; the
 * host keeps them). Runs with recording off. */
typedef dk_status (*dk_op_backward_fn)(const dk_op_ctx *ctx, const dk_op_grad *g,
                                       dk_tensor **grads);

/* One device type's kernels. An array of these is stepped by
 * dk_op_info.kernel_size, so fields may be appended. */
typedef struct dk_op_kernel {
    int32_t device_type;      /* dk_device_type */
    uint32_t reserved;        /* zero */
    dk_op_kernel_fn forward;  /* required */
    dk_op_kernel_fn backward; /* dedicated backward kernel; NULL when none */
} dk_op_kernel;

/* A custom op, as a plugin declares it (usually a static const). */
struct dk_op_info {
    uint32_t struct_size; /* sizeof(dk_op_info) as built: DK_OP_INFO_HEAD */
    uint32_t flags;       /* DK_OP_SAVE_OUT, DK_OP_STRIDED */
    const char *name;     /* [a-z][a-z0-9_.]*, unique; "plugin.op" keeps it so */
    const char *summary;  /* one line */
    int32_t n_in;         /* tensor inputs, 1..DK_OP_MAX_IN */
    uint32_t kernel_size; /* sizeof(dk_op_kernel) as built: DK_OP_KERNELS */
    dk_op_infer_fn infer; /* required */
    /* Gradients: `backward` written with ops; else the dedicated backward
     * kernels in `kernels`; with neither, the op is not differentiable. */
    dk_op_backward_fn backward;
    const dk_op_kernel *kernels; /* one per device type; the CPU is required */
    uint32_t n_kernels;
    uint32_t reserved; /* zero */
    void *user_data;   /* handed to every callback as ctx->user_data */
};

#define DK_OP_INFO_HEAD .struct_size = (uint32_t)sizeof(dk_op_info)
/* Fills .kernels, .n_kernels and .kernel_size from a static array. */
#define DK_OP_KERNELS(array)                                                          \
    .kernels = (array), .n_kernels = (uint32_t)(sizeof(array) / sizeof((array)[0])), \
    .kernel_size = (uint32_t)sizeof(dk_op_kernel)

/* The pinned layouts (LP64): existing fields never move; new ones go at the end. */
#if UINTPTR_MAX == 0xffffffffffffffffu
_Static_assert(offsetof(dk_op_info, struct_size) == 0 && offsetof(dk_op_info, name) == 8 &&
                   offsetof(dk_op_info, summary) == 16 && offsetof(dk_op_info, n_in) == 24 &&
                   offsetof(dk_op_info, kernel_size) == 28 && offsetof(dk_op_info, infer) == 32 &&
                   offsetof(dk_op_info, backward) == 40 && offsetof(dk_op_info, kernels) == 48 &&
                   offsetof(dk_op_info, n_kernels) == 56 &&
                   offsetof(dk_op_info, user_data) == 64 && sizeof(dk_op_info) == 72,
               "dk_op_info layout changed");
_Static_assert(offsetof(dk_op_kernel, device_type) == 0 && offsetof(dk_op_kernel, forward) == 8 &&
                   offsetof(dk_op_kernel, backward) == 16 && sizeof(dk_op_kernel) == 24,
               "dk_op_kernel layout changed");
_Static_assert(offsetof(dk_op_ctx, op) == 4 && offsetof(dk_op_ctx, name) == 8 &&
                   offsetof(dk_op_ctx, attrs) == 16 && offsetof(dk_op_ctx, stream) == 40,
               "dk_op_ctx layout changed");
_Static_assert(offsetof(dk_op_shapes, out) == 8 && sizeof(dk_op_meta) == 72,
               "dk_op_shapes layout changed");
_Static_assert(offsetof(dk_op_grad, in) == 8 && offsetof(dk_op_grad, needs) == 48,
               "dk_op_grad layout changed");
#endif

#ifdef __cplusplus
}
#endif
#endif /* DK_TENSOR_H */
