/* core/backends/cpu/dnnl_cpu.h — how the CPU kernels use oneDNN.
 *
 * A oneDNN primitive is expensive to create (it picks and JIT-compiles a
 * kernel) and cheap to run, so every primitive lives in one process-wide
 * cache keyed by everything that shaped it: the op, the sizes, the user's
 * element strides, the attributes and the dtype. A training step that repeats
 * the shapes of the previous one therefore creates no primitive.
 *
 * A cache entry is one compute primitive plus, for each tensor argument, the
 * layout the primitive wants. When that layout differs from the user's (a
 * blocked layout such as nChw16c chosen through format "any"), the entry also
 * holds the reorder primitive between the two, and dkh_dnnl_run moves the
 * argument through a scratch buffer from the caching allocator.
 */
#ifndef DKH_DNNL_CPU_H
#define DKH_DNNL_CPU_H

#include "cpu.h"

#include <dnnl.h>

/* Most int64 words in a key, and most tensor arguments of one primitive. */
#define DKH_DNNL_KEY 48
#define DKH_DNNL_ARGS 6

typedef struct dkh_dnnl_arg {
    int arg;                 /* DNNL_ARG_SRC, ... */
    bool output;             /* written by the primitive */
    dnnl_memory_desc_t user; /* the layout of our tensor */
    dnnl_memory_desc_t prim; /* the layout the primitive wants */
    dnnl_primitive_t reorder; /* user -> prim (input) or prim -> user (output); NULL if equal */
    size_t prim_bytes;
} dkh_dnnl_arg;

typedef struct dkh_dnnl_entry dkh_dnnl_entry;
struct dkh_dnnl_entry {
    int64_t key[DKH_DNNL_KEY];
    int nkey;
    atomic_int refs; /* the cache's and every running call's */
    uint64_t last_use;
    dkh_dnnl_entry *next;
    dnnl_primitive_t prim;
    size_t scratch_bytes;
    int n_args;
    dkh_dnnl_arg args[DKH_DNNL_ARGS];
};

/* The CPU engine, or NULL when oneDNN cannot make one (kernels then decline). */
dnnl_engine_t dkh_dnnl_engine(void);

/* A key under construction: kinds and sizes appended word by word. */
typedef struct dkh_dnnl_key {
    int64_t w[DKH_DNNL_KEY];
    int n;
} dkh_dnnl_key;

void dkh_dnnl_key_add(dkh_dnnl_key *k, int64_t v);
/* Appends ndim, shape and strides of t, and its dtype. */
void dkh_dnnl_key_tensor(dkh_dnnl_key *k, const dk_tensor *t);

/* Builds a cache entry: fills e->prim and calls dkh_dnnl_entry_arg for every
 * tensor argument. Returns false (leaving partial state for the cache to
 * free) when oneDNN refuses the configuration. */
typedef bool (*dkh_dnnl_build_fn)(dkh_dnnl_entry *e, const void *ctx);

/* The cached entry for key, built by build(ctx) on a miss; NULL when the
 * build fails. The caller holds a reference: release it with
 * dkh_dnnl_entry_release. */
dkh_dnnl_entry *dkh_dnnl_lookup(const dkh_dnnl_key *key, dkh_dnnl_build_fn build,
                                const void *ctx);
void dkh_dnnl_entry_release(dkh_dnnl_entry *e);

/* Registers argument arg (user layout `user`) of e's primitive, whose
 * descriptor pd supplies the primitive's layout; creates the reorder when
 * they differ. False on a oneDNN failure. */
bool dkh_dnnl_entry_arg(dkh_dnnl_entry *e, const_dnnl_primitive_desc_t pd, int arg,
                        bool output, const dnnl_memory_desc_t *user);
/* Records e's scratchpad size and creates e->prim from pd (which the caller
 * still destroys). */
bool dkh_dnnl_entry_prim(dkh_dnnl_entry *e, const_dnnl_primitive_desc_t pd);
/* A primitive attribute with a user-managed scratchpad (so its memory comes
 * from our counted allocator); NULL on failure. */
dnnl_primitive_attr_t dkh_dnnl_attr(void);

/* Runs e with data[i] the user pointer of e->args[i]: inputs are reordered in,
 * outputs out. False (nothing useful written) when scratch memory or oneDNN
 * fails, so the caller's kernel declines and the reference kernel runs. */
bool dkh_dnnl_run(dkh_dnnl_entry *e, void *const *data);

/* A plain memory descriptor over t's shape and element strides (f32/bf16);
 * false for a dtype oneDNN does not take. */
bool dkh_dnnl_md(dnnl_memory_desc_t *md, const dk_tensor *t);
/* The same from explicit dims and strides. */
bool dkh_dnnl_md_strided(dnnl_memory_desc_t *md, int ndim, const int64_t *dims,
                         const int64_t *strides, dk_dtype dtype);
/* A descriptor "any layout the primitive likes" with t's dims. */
bool dkh_dnnl_md_any(dnnl_memory_desc_t *md, int ndim, const int64_t *dims, dk_dtype dtype);

/* Primitives created since the process started (tests check that a repeated
 * step creates none). */
long dkh_dnnl_primitives_created(void);

/* Whether oneDNN runs bf16 convolutions and matmuls on this CPU (AVX-512 bf16
 * or AMX). Without, bf16 products fall back to the slow reference kernels. */
bool dkh_dnnl_bf16_native(void);

/* Kernels (dnnl_conv.c). */
bool dkh_dnnl_conv2d(const dkh_kcall *c);
bool dkh_dnnl_conv2d_bwd_data(const dkh_kcall *c);
bool dkh_dnnl_conv2d_bwd_weight(const dkh_kcall *c);
/* f32 matmul (dnnl_matmul.c); hands what oneDNN cannot express to dkh_cpu_matmul. */
bool dkh_dnnl_matmul(const dkh_kcall *c);

/* Own OpenMP kernels of the neural-network ops (nn_*.c). */
bool dkh_cpu_batch_norm(const dkh_kcall *c);
bool dkh_cpu_batch_norm_bwd(const dkh_kcall *c);
bool dkh_cpu_layer_norm(const dkh_kcall *c);
bool dkh_cpu_layer_norm_bwd(const dkh_kcall *c);
bool dkh_cpu_group_norm(const dkh_kcall *c);
bool dkh_cpu_group_norm_bwd(const dkh_kcall *c);
bool dkh_cpu_max_pool2d(const dkh_kcall *c);
bool dkh_cpu_max_pool2d_bwd(const dkh_kcall *c);
bool dkh_cpu_max_pool2d_cl(const dkh_kcall *c);
bool dkh_cpu_max_pool2d_bwd_cl(const dkh_kcall *c);
/* The first and one-past-last kernel taps r with 0 <= o*s - p + r*d < n,
 * clipped to [0, k). */
void dkh_pool_taps(int64_t o, int64_t s, int64_t p, int64_t d, int64_t k, int64_t n,
                   int64_t *r0, int64_t *r1);
bool dkh_cpu_avg_pool2d(const dkh_kcall *c);
bool dkh_cpu_avg_pool2d_bwd(const dkh_kcall *c);
bool dkh_cpu_adaptive_avg_pool2d(const dkh_kcall *c);
bool dkh_cpu_adaptive_avg_pool2d_bwd(const dkh_kcall *c);

#endif /* DKH_DNNL_CPU_H */
