/* core/tensor/tensor_impl.h — the tensor runtime's internals, shared by
 * core/tensor/ and the backends.
 *
 * The op list (DKH_OP_LIST) is the one place that names every op: it makes the
 * op enum and the name table, and each entry must have a dkh_op_def (shape and
 * dtype rule, backward, reference kernels) or libdk does not link. Backends
 * fill a kernel table [op][forward|backward]; an empty slot falls back to the
 * op's reference kernel on the CPU and is "unsupported" elsewhere.
 */
#ifndef DKH_TENSOR_IMPL_H
#define DKH_TENSOR_IMPL_H

#include "../util/util.h"

#include <dk/ops.h>
#include <dk/tensor.h>
#include <stdatomic.h>

/* ---- the op list -------------------------------------------------------------
 * X(ENUM, name). Order is irrelevant to the ABI (it never leaves libdk). The
 * list is the core group below plus one group per family of ops, each in its
 * own header next to the files that define its ops. */
#include "op_list_nn.h"
#include "op_list_index.h"

#define DKH_OP_LIST(X) DKH_OPS_CORE(X) DKH_OPS_NN(X) DKH_OPS_INDEX(X)

#define DKH_OPS_CORE(X)                                                                    \
    /* creation */                                                                        \
    X(FULL, full) X(ARANGE, arange) X(RAND, rand) X(RANDN, randn)                         \
    /* copy and cast */                                                                   \
    X(COPY, copy) X(CAST, cast)                                                           \
    /* views */                                                                           \
    X(VIEW, view) X(PERMUTE, permute) X(SLICE, slice) X(EXPAND, expand)                   \
    /* unary elementwise */                                                               \
    X(NEG, neg) X(ABS, abs) X(EXP, exp) X(LOG, log) X(SQRT, sqrt) X(RSQRT, rsqrt)         \
    X(RELU, relu) X(SIGMOID, sigmoid) X(TANH, tanh) X(GELU, gelu) X(SILU, silu)           \
    X(SOFTPLUS, softplus) X(LEAKY_RELU, leaky_relu) X(CLAMP, clamp)                       \
    X(POW_SCALAR, pow_scalar) X(AFFINE, affine)                                           \
    /* binary elementwise */                                                              \
    X(ADD, add) X(SUB, sub) X(MUL, mul) X(DIV, div) X(POW, pow) X(MAXIMUM, maximum)       \
    X(MINIMUM, minimum) X(EQ, eq) X(NE, ne) X(LT, lt) X(LE, le) X(GT, gt) X(GE, ge)       \
    X(WHERE, where)                                                                       \
    /* reductions */                                                                      \
    X(SUM, sum) X(AMAX, amax) X(AMIN, amin) X(ARGMAX, argmax)                             \
    /* products and normalisation */                                                      \
    X(MATMUL, matmul) X(SOFTMAX, softmax) X(LOG_SOFTMAX, log_softmax)

typedef enum dkh_op_id {
#define DKH_OP_ENUM_(e, n) DKH_OP_##e,
    DKH_OP_LIST(DKH_OP_ENUM_)
#undef DKH_OP_ENUM_
        DKH_OP_COUNT
} dkh_op_id;

/* Most tensor inputs of one op (cat of more is done in rounds), and most
 * auxiliary outputs: tensors an op's forward makes besides its result, kept
 * for its backward and optionally handed to the caller (batch statistics,
 * indices of a max). Auxiliary outputs are never differentiated. */
#define DKH_MAX_IN 8
#define DKH_MAX_AUX 3

/* ---- storage and allocators -------------------------------------------------- */

/* What a backend supplies to allocate raw device memory. The caching layer
 * above it (alloc.c) rounds to size classes and keeps freed blocks. */
typedef struct dkh_allocator {
    size_t struct_size;
    const char *name;
    void *(*alloc)(void *ctx, size_t nbytes); /* aligned for vector loads; NULL on failure */
    void (*free)(void *ctx, void *ptr, size_t nbytes);
    void *ctx;
} dkh_allocator;

typedef struct dkh_storage {
    atomic_int refs;
    dk_device device;
    void *data;
    size_t nbytes;    /* the size class: what the allocator counts */
    uint64_t version; /* bumped by every in-place op; nodes check it before backward */
} dkh_storage;

/* A new storage of at least nbytes (refs 1), or NULL with DK_ERR_NOMEM recorded. */
dkh_storage *dkh_storage_new(dk_device device, size_t nbytes);
void dkh_storage_unref(dkh_storage *s);
/* Installs the raw allocator of a device type (the CPU's is built in). */
void dkh_allocator_register(dk_device_type type, const dkh_allocator *a);
/* Returns every cached block of every device to its raw allocator. */
void dkh_allocator_empty_cache(void);

/* ---- tensors -------------------------------------------------------------------- */

typedef struct dkh_node dkh_node;

struct dk_tensor {
    atomic_int refs;
    dk_dtype dtype;
    int ndim;
    int64_t shape[DK_MAX_DIMS];
    int64_t strides[DK_MAX_DIMS]; /* elements */
    int64_t offset;               /* elements from storage->data */
    dkh_storage *storage;
    bool requires_grad;
    dkh_node *grad_fn; /* the recorded op that made this tensor; NULL for a leaf */
    dk_tensor *grad;   /* a leaf's accumulated gradient, owned */
};

/* Shape and placement of an op's output, filled by the op's rule. For a view
 * op, strides and offset describe the view into input 0's storage. */
typedef struct dkh_aux_meta {
    dk_dtype dtype;
    int ndim;
    int64_t shape[DK_MAX_DIMS];
} dkh_aux_meta;

typedef struct dkh_meta {
    dk_dtype dtype;
    int ndim;
    int64_t shape[DK_MAX_DIMS];
    int64_t strides[DK_MAX_DIMS];
    int64_t offset;
    dk_device device;
    int n_aux;                      /* auxiliary outputs to allocate (contiguous) */
    dkh_aux_meta aux[DKH_MAX_AUX];
} dkh_meta;

/* An unowned tensor (refs 1, in no scope) over storage (a reference is taken). */
dk_tensor *dkh_tensor_wrap(dkh_storage *storage, const dkh_meta *m);
/* A new contiguous tensor with fresh storage, unowned. NULL + error on failure. */
dk_tensor *dkh_tensor_alloc(dk_dtype dtype, int ndim, const int64_t *shape, dk_device dev);
/* Hands t to the innermost scope (if any). Returns t. */
dk_tensor *dkh_scope_adopt(dk_tensor *t);
int64_t dkh_numel(int ndim, const int64_t *shape);
void dkh_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides);
bool dkh_same_shape(const dk_tensor *a, const dk_tensor *b);
bool dkh_is_float(dk_dtype d);
/* Appends "(2, 3) f32" to b. */
void dkh_describe(dkh_buf *b, const dk_tensor *t);
/* Normalises a possibly negative dim against ndim; false if out of range. */
bool dkh_wrap_dim(int64_t dim, int ndim, int *out);

/* ---- pad (op_resample.c) --------------------------------------------------------------- */

/* The input index along one dim that padded index o reads (left pad l, size
 * n) in mode (DK_PAD_*); -1 means the constant. Shared by the reference and
 * the fast pad kernels. */
int64_t dkh_pad_src(int mode, int64_t o, int64_t l, int64_t n);

/* ---- memory layout (layout.c) ------------------------------------------------------ */

/* Channels-last strides (HWC, 1, WC, C) of a 4-d shape. */
void dkh_channels_last_strides(const int64_t *shape, int64_t *strides);
/* t is 4-d and dense in (N, H, W, C) order (size-1 dims' strides ignored). */
bool dkh_is_channels_last(const dk_tensor *t);
/* ... and not also plain contiguous (C == 1 or H == W == 1 are both). */
bool dkh_is_strictly_channels_last(const dk_tensor *t);
/* Whether an op with these flags makes its output m channels-last from in. */
bool dkh_out_channels_last(unsigned flags, dk_tensor *const *in, int n_in, const dkh_meta *m);
/* Re-strides a new contiguous 4-d tensor as channels-last (same bytes). */
void dkh_tensor_make_channels_last(dk_tensor *t);

/* ---- dtype conversion (dtype.c) ----------------------------------------------- */

double dkh_load(const void *base, dk_dtype dtype, int64_t i);
void dkh_store(void *base, dk_dtype dtype, int64_t i, double v);
float dkh_bf16_to_f32(uint16_t h);
uint16_t dkh_f32_to_bf16(float f);
float dkh_f16_to_f32(uint16_t h);
uint16_t dkh_f32_to_f16(float f);

/* ---- op definitions ---------------------------------------------------------------- */

/* Arguments an op carries besides its tensors. Which fields mean what is the
 * op's business; they are recorded with the node for the backward. */
typedef struct dkh_args {
    int64_t v[DK_MAX_DIMS]; /* shape, perm, or reduced-dim mask */
    int nv;
    int64_t i[4]; /* dim, start, end, step ... */
    double f[3];  /* scalars */
    bool keepdim;
    dk_dtype dtype; /* creation and cast */
    dk_device device;
    dk_rng rng;
} dkh_args;

/* A kernel invocation. Forward: in = the op's inputs, out = the result and
 * aux = the auxiliary outputs the rule asked for, all already allocated.
 * Backward (a dedicated backward kernel): in = whatever the op's backward
 * passes (by default {input 0, output 0 or NULL, grad of output 0}), out =
 * the first gradient, aux = further gradients it asked for. */
typedef struct dkh_kcall {
    dkh_op_id op;
    const dkh_args *args;
    int n_in;
    const dk_tensor *in[DKH_MAX_IN];
    dk_tensor *out;
    int n_aux;
    dk_tensor *aux[DKH_MAX_AUX];
} dkh_kcall;

/* Returns false when it does not handle this call (e.g. its dtype); the
 * dispatcher then uses the reference kernel. Kernels cannot fail otherwise:
 * shapes were checked and memory allocated before. */
typedef bool (*dkh_kernel)(const dkh_kcall *c);

enum { DKH_FWD = 0, DKH_BWD = 1 };

enum {
    DKH_F_DIFF = 1u << 0,     /* has a backward */
    DKH_F_VIEW = 1u << 1,     /* output shares input 0's storage; no kernel */
    DKH_F_SAVE_OUT = 1u << 2, /* backward reads the output */
    DKH_F_CREATE = 1u << 3,   /* no tensor inputs */
    DKH_F_LAYOUT = 1u << 4,   /* output (and a dedicated backward's gradients) follow a
                               * channels-last input 0; its kernels take any output strides */
    DKH_F_LAYOUT_SEED = 1u << 5, /* a 1-channel input 0 counts as channels-last (layout.c) */
};

typedef struct dkh_op_def {
    const char *name;
    int n_in;
    unsigned flags;
    /* Shape and dtype rule: checks the inputs (non-NULL, same device) and
     * fills *out, or records a message and returns its status. */
    dk_status (*infer)(const dkh_args *a, dk_tensor *const *in, dkh_meta *out);
    /* Gradients of the inputs that need one (needs[i]) from gout, the gradient
     * of output 0, written with other ops (or dkh_run_backward_kernel). out is
     * a detached alias of the output when DKH_F_SAVE_OUT, else NULL; aux are
     * the auxiliary outputs the forward made (NULL beyond meta.n_aux). */
    dk_status (*backward)(const dkh_args *a, dk_tensor *const *in, dk_tensor *out,
                          dk_tensor *const *aux, dk_tensor *gout, const bool *needs,
                          dk_tensor **gin);
    dkh_kernel ref[2]; /* plain reference kernels (CPU): forward, dedicated backward */
} dkh_op_def;

#define DKH_OP_DECL_(e, n) extern const dkh_op_def dkh_op_##n;
DKH_OP_LIST(DKH_OP_DECL_)
#undef DKH_OP_DECL_

const dkh_op_def *dkh_op(dkh_op_id id);
const char *dkh_op_name(dkh_op_id id);

/* A backend: its kernel table. */
typedef struct dkh_backend {
    size_t struct_size;
    const char *name;
    dkh_kernel kernels[DKH_OP_COUNT][2];
} dkh_backend;

void dkh_backend_register(dk_device_type type, const dkh_backend *b);
/* Registers the optional (non-CPU) backends built into this libdk, once;
 * called before anything consults a non-CPU device. */
void dkh_backends_init(void);
const dkh_backend *dkh_cpu_backend(void);

/* Runs op on inputs (NULL-propagating): checks, allocates, dispatches, and
 * records a tape node when grad mode is on and an input requires grad.
 * Returns a new tensor owned by the current scope, or NULL. */
dk_tensor *dkh_op_run(dkh_op_id op, const dkh_args *a, int n_in, dk_tensor *const *in);
/* The same, also handing the op's auxiliary outputs to the caller: aux_out[i]
 * (i < the rule's n_aux) become new tensors owned by the current scope. */
dk_tensor *dkh_op_run_aux(dkh_op_id op, const dkh_args *a, int n_in, dk_tensor *const *in,
                          dk_tensor **aux_out);
/* Runs op's forward kernel into a preallocated out (no tape), e.g. to
 * accumulate a gradient in place. Inputs must already satisfy the op's rule. */
dk_status dkh_op_run_into(dkh_op_id op, const dkh_args *a, int n_in, dk_tensor *const *in,
                          dk_tensor *out);
/* Records "op: <message> (inputs: (2, 3) f32, (3,) f32)" and returns st. */
dk_status dkh_op_fail(dkh_op_id op, int n_in, dk_tensor *const *in, dk_status st,
                      const char *fmt, ...) DK_PRINTF(5, 6);
/* Runs op's dedicated backward kernel: returns a new tensor shaped like in0. */
dk_tensor *dkh_run_backward_kernel(dkh_op_id op, const dkh_args *a, dk_tensor *in0,
                                   dk_tensor *out, dk_tensor *gout);
/* The general form: the kernel reads in[0..n_in) and writes n_out new
 * gradients, outs[k] shaped and typed like like[k] (outs[0] is kcall.out, the
 * rest kcall.aux). On failure every outs[k] is NULL. Scope-owned. */
dk_status dkh_run_backward_kernel_n(dkh_op_id op, const dkh_args *a, int n_in,
                                    dk_tensor *const *in, int n_out, dk_tensor *const *like,
                                    dk_tensor **outs);
/* For a backend kernel that cannot run a call it accepted (a failed CUDA
 * launch): it records the message (dk_fail), passes the status here and
 * returns false. The dispatcher then fails the op with that message instead
 * of falling back to another kernel. */
void dkh_kernel_failed(dk_status st);
/* Forces reference kernels on this thread (tests compare fast vs reference). */
bool dkh_force_reference(bool on);

/* The shape of a (batched) matmul call x @ y -> out: M, N, K, the batch
 * count and each input's batch strides under broadcasting, and each input's
 * matrix strides. Shared by the reference and the fast kernels. */
typedef struct dkh_mm_geom {
    int nb; /* batch dims of out */
    int64_t M, N, K, batches;
    int64_t xs[DK_MAX_DIMS], ys[DK_MAX_DIMS]; /* batch strides of x and y */
    int64_t xm, xk, yk, yn;                   /* matrix strides */
} dkh_mm_geom;
void dkh_mm_geom_of(const dkh_kcall *c, dkh_mm_geom *g);

/* Broadcast helpers (elementwise and their backward). */
dk_status dkh_broadcast_shape(const char *op, int n, dk_tensor *const *in, dkh_meta *out);
/* Strides of t read as a tensor of shape (ndim, shape) under broadcasting. */
void dkh_broadcast_strides(const dk_tensor *t, int ndim, const int64_t *shape, int64_t *strides);
/* Sums g down to shape (the reverse of broadcasting). New tensor or NULL. */
dk_tensor *dkh_sum_to(dk_tensor *g, int ndim, const int64_t *shape);

/* ---- autograd internals ------------------------------------------------------------- */

struct dkh_node {
    int refs;
    dkh_op_id op;
    dkh_args args;
    int n_in;
    dk_tensor *in[DKH_MAX_IN]; /* strong references; NULL once the graph is freed */
    bool needs[DKH_MAX_IN];
    uint64_t in_version[DKH_MAX_IN]; /* their storages' versions when recorded */
    dk_tensor *out;       /* detached alias of the output (DKH_F_SAVE_OUT) */
    uint64_t out_version;
    int n_aux;
    dk_tensor *aux[DKH_MAX_AUX]; /* the forward's auxiliary outputs, owned */
    bool freed;     /* the graph was released by a backward */
    /* Backward scratch. */
    dk_tensor *gacc;
    int pending;
    bool visited;
};

void dkh_node_unref(dkh_node *n);
/* Records a node for op making out (and aux) from in; the node takes its
 * own references to in and aux. */
dk_status dkh_record(dkh_op_id op, const dkh_args *a, int n_in, dk_tensor *const *in,
                     dk_tensor *out, int n_aux, dk_tensor *const *aux);
/* After op ran in place on x (its storage version already bumped), makes x
 * the output of a new node of op whose input is an alias of x's old self:
 * the alias takes x's place in the graph, x gets the new node. op's backward
 * must work from the values the op wrote (relu's does). */
dk_status dkh_record_inplace(dkh_op_id op, const dkh_args *a, dk_tensor *x);
/* Drops the reference a scope or owner held (tensor.c). */
void dkh_tensor_unref(dk_tensor *t);

/* ---- random (rng.c) ------------------------------------------------------------------ */

/* The 64 random bits for counter value c under key. */
uint64_t dkh_rng_bits(uint64_t key, uint64_t c);
double dkh_rng_uniform(uint64_t key, uint64_t c);
double dkh_rng_normal(uint64_t key, uint64_t c);

/* ---- CPU iteration helpers (shared by reference and CPU kernels) ------------------------- */

/* Offset (elements) of linear index i of shape under strides. */
static inline int64_t dkh_offset_of(int64_t i, int ndim, const int64_t *shape,
                                    const int64_t *strides)
{
    int64_t off = 0;
    for (int d = ndim - 1; d >= 0; d--) {
        int64_t n = shape[d];
        off += (i % n) * strides[d];
        i /= n;
    }
    return off;
}

/* Reference elementwise map: out[i] = fn(inputs at i under broadcasting),
 * every value through double. */
typedef double (*dkh_ref_fn)(const double *x, const dkh_args *a);
void dkh_ref_map(const dkh_kcall *c, dkh_ref_fn fn);
/* Views of output-like index math for reductions: the reduced-dim mask is
 * a->v[d] != 0 over the input's dims. */

/* Element pointer base of t (storage + offset, in bytes). */
static inline char *dkh_base(const dk_tensor *t)
{
    return (char *)t->storage->data + t->offset * (int64_t)dk_dtype_size(t->dtype);
}

#endif /* DKH_TENSOR_IMPL_H */
