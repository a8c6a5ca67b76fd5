/* core/optim/optim_impl.h — what the files of core/optim share (internal).
 *
 *   builtins.c       dkh_optim_register_builtins: the list of host types
 *   sgd.c, adam.c    the optimizer types and their update kernels
 *   paramwise.c      per-parameter lr / weight-decay multipliers by name
 *   grads.c          gradient norms, scaling, clipping, finiteness
 *   optim_wrapper.c  the wrapper: parameters, groups, accumulation, step
 *   optim_state.c    the wrapper's state for checkpoints
 *   sched.c          a param_scheduler list and its closed-form composition
 *   sched_types.c    the schedule types (LinearLR, CosineAnnealingLR, ...)
 */
#ifndef DKH_OPTIM_IMPL_H
#define DKH_OPTIM_IMPL_H

#include "optim.h"

#include "../dist/dist.h"
#include "../util/util.h"

/* Loops over fewer elements than this run on one thread: a parallel region
 * costs more than it saves on small parameters (biases, norms). */
#define DKH_OPTIM_PAR_MIN 32768

/* ---- the types (builtins.c lists them) --------------------------------------- */

extern const dk_type_info dkh_sgd_type;
extern const dk_type_info dkh_adam_type;
extern const dk_type_info dkh_adamw_type;
/* The schedule types; *n receives the count. Static. */
const dk_type_info *dkh_sched_types(size_t *n);

/* ---- per-parameter rules (paramwise.c) ---------------------------------------- */

typedef struct dkh_paramwise dkh_paramwise;

/* Reads a `paramwise_cfg` struct (NULL or null: no rules). *out is new.
 * Errors name the offending key and its file:line:col. */
dk_status dkh_paramwise_new(const dk_cfg *cfg, dkh_paramwise **out) DK_CHECK;
void dkh_paramwise_free(dkh_paramwise *pw);
/* The multipliers for the parameter `name` with ndim dims (mmengine's
 * DefaultOptimWrapperConstructor rules; see paramwise.c). */
void dkh_paramwise_mults(dkh_paramwise *pw, const char *name, int ndim, double *lr_mult,
                         double *decay_mult);
/* Whether duplicates of one tensor are skipped (bypass_duplicate). */
bool dkh_paramwise_bypass_duplicate(const dkh_paramwise *pw);
/* Warns about custom_keys that matched no parameter. */
void dkh_paramwise_report_unused(const dkh_paramwise *pw);
/* True when name is a normalisation layer's parameter by the naming rule. */
bool dkh_paramwise_is_norm(const char *name);

/* ---- gradients (grads.c) ------------------------------------------------------- */

/* A contiguous f32 buffer: one parameter's gradient. */
typedef struct dkh_gview {
    float *data;
    int64_t n;
} dkh_gview;

/* The total p-norm of all gradients together (p may be INFINITY), summed in
 * double in an order fixed by the sizes alone, so the result does not depend
 * on the thread count. */
double dkh_grads_norm(const dkh_gview *g, size_t n, double p);
/* g *= scale. */
void dkh_grads_scale(const dkh_gview *g, size_t n, float scale);
/* g = clamp(g * scale, -limit, limit). */
void dkh_grads_scale_clamp(const dkh_gview *g, size_t n, float scale, float limit);
bool dkh_grads_finite(const dkh_gview *g, size_t n);
/* Averages the n gradients across the ranks of pg: they are packed in order
 * into a flat buffer of bucket_elems floats (a gradient may straddle two
 * buckets), each full bucket is all-reduced with DKH_REDUCE_MEAN and copied
 * back. bucket: room for bucket_elems floats. Every rank passes gradients of
 * the same sizes in the same order (dkh_pg checks the counts). */
dk_status dkh_grads_all_reduce_mean(dkh_pg *pg, const dkh_gview *g, size_t n, float *bucket,
                                    size_t bucket_elems) DK_CHECK;

/* ---- the wrapper's layout (optim_wrapper.c, optim_state.c) --------------------- */

typedef struct dkh_oparam {
    char *name;
    dk_tensor *param;  /* a reference the wrapper holds */
    size_t group;      /* index into groups */
    int64_t steps;     /* updates this parameter has had */
    dk_tensor **state; /* n_state; NULL until its first update (and unused slots) */
} dkh_oparam;

/* Parameters with the same multipliers share a group: a schedule is
 * evaluated once per group. */
typedef struct dkh_ogroup {
    double lr_mult, decay_mult;
    double lr; /* this iteration's */
} dkh_ogroup;

typedef enum dkh_clip { DKH_CLIP_NONE = 0, DKH_CLIP_NORM, DKH_CLIP_VALUE } dkh_clip;

struct dkh_optim {
    dk_object *optimizer;
    const dk_optimizer_vtable *vt;
    void *self;
    const char *type_name;
    uint32_t n_state;      /* the type's */
    uint32_t n_state_used; /* this instance's (n_state_used slot, else n_state) */
    double base_lr, base_wd, base_momentum;
    double lr, momentum; /* at multiplier 1, this iteration's */

    dkh_oparam *params;
    size_t n_params;
    dkh_ogroup *groups;
    size_t n_groups;

    int64_t accumulate; /* accumulative_counts */
    int64_t iter;       /* the iteration the next step finishes (0-based) */
    int64_t max_iters;  /* 0 = unknown */
    int64_t updates;

    dkh_clip clip;
    double max_norm, norm_type, clip_value;

    dk_optim_param *scratch; /* n_params, for the optimizer's step */
    dkh_gview *gviews;       /* n_params */

    /* data parallel (dkh_optim_set_dist): NULL pg = one process */
    dkh_pg *pg;
    float *bucket;
    size_t bucket_elems;
};

/* The gradient of p as a view after checking it (contiguous CPU f32, p's
 * shape); g->data NULL when p has none yet. */
dk_status dkh_optim_grad_view(const dkh_oparam *p, dkh_gview *g) DK_CHECK;
/* Allocates p's state tensors (zeros) when it has none. */
dk_status dkh_optim_state_alloc(const dkh_optim *o, dkh_oparam *p) DK_CHECK;
/* Drops p's state (back to "never updated"). */
void dkh_optim_state_drop(const dkh_optim *o, dkh_oparam *p);

/* "file.yaml:3:5" of node, or "<config>" when it has none. Static or borrowed. */
const char *dkh_optim_where(const dk_cfg *node);
/* Fails with DK_ERR_CONFIG and "file:line:col: key.path: <message>" about node. */
dk_status dkh_optim_cfg_fail(const dk_cfg *node, const char *fmt, ...) DK_PRINTF(2, 3);

/* ---- schedule entries (sched.c) -------------------------------------------------- */

/* The parameters every schedule type shares (sched_types.c declares them). */
typedef struct dkh_sched_common {
    double begin;
    double end; /* NAN: the end of training */
    bool by_epoch;
    bool convert; /* convert_to_iter_based */
} dkh_sched_common;

/* Reads them from a schedule's node (defaults where absent) and checks what
 * needs no run length: convert_to_iter_based only with by_epoch, whole
 * begin/end unless converted, end after begin. Each schedule type's create
 * calls it, so `dkhost check` finds these too. */
dk_status dkh_sched_common_read(const dk_cfg *cfg, dkh_sched_common *c) DK_CHECK;
dk_status dkh_sched_check_common(const dk_cfg *cfg) DK_CHECK;

#endif /* DKH_OPTIM_IMPL_H */
