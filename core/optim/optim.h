/* core/optim/optim.h — optimizers, the optimizer wrapper and parameter
 * schedules: what the training runner calls (internal to libdk).
 *
 * A run builds one wrapper from the config's `optim_wrapper` and one schedule
 * from its `param_scheduler` list, then every training iteration:
 *
 *     dkh_optim *o = dkh_optim_new(dk_cfg_get(cfg, "optim_wrapper"), model, &s);
 *     dkh_sched *sc = dkh_sched_new(dk_cfg_get(cfg, "param_scheduler"),
 *                                   max_epochs, max_iters, iters_per_epoch, &s);
 *     for each iteration (epoch, iter = finished epochs and iterations):
 *         dkh_optim_schedule(o, sc, epoch, iter, &lr, &momentum);   // log lr, momentum
 *         ... forward, dk_backward(loss) ...
 *         dkh_optim_step(o, &res);     // every accumulative_counts-th call updates
 *         if (res.has_grad_norm) log res.grad_norm;
 *     dkh_sched_free(sc);
 *     dkh_optim_free(o);
 *
 * The optimizers (SGD, Adam, AdamW) and the schedules (LinearLR, CosineAnnealingLR,
 * ... and their *Momentum twins) are types the host registers itself under
 * the kinds `optimizer` and `lr_scheduler` (dkh_optim_register_builtins), so
 * a config picks them with `type:` and `dkhost list-registry` lists them.
 * docs/training.md ("Optimizers and schedules") is the user's description.
 */
#ifndef DKH_OPTIM_H
#define DKH_OPTIM_H

#include <dk/dk.h>

#include "../dist/dist.h"
#include "../plugin/registry.h"

/* Registers the host's optimizer and schedule types into r. Call once per
 * registry, before configs are validated (they name these types). */
dk_status dkh_optim_register_builtins(dkh_registry *r) DK_CHECK;

/* ---- parameter schedules ------------------------------------------------- */

typedef struct dkh_sched dkh_sched;

/* The values a schedule drives. */
typedef enum dkh_sched_param {
    DKH_SCHED_LR = 0,
    DKH_SCHED_MOMENTUM, /* SGD's momentum, the Adam family's beta1 */
    DKH_SCHED_PARAM_COUNT
} dkh_sched_param;

/* Builds the schedules a `param_scheduler` list describes (validated, with
 * defaults; NULL or null for none). Types whose name ends in "Momentum"
 * drive the momentum, every other type the learning rate. max_epochs is 0
 * for iteration-based training; max_iters is the run's total iterations;
 * iters_per_epoch (> 0 when any schedule converts epochs to iterations) is
 * the training loader's length. `end: null` means the end of training.
 * Returns a new schedule (empty for no list), or NULL with *err set and a
 * message naming the entry and its file:line:col (begin not before end, an
 * epoch-based entry in iteration-based training, ...). */
dkh_sched *dkh_sched_new(const dk_cfg *list, int64_t max_epochs, int64_t max_iters,
                         int64_t iters_per_epoch, dk_status *err);
void dkh_sched_free(dkh_sched *s);

/* The value of `which` during the training iteration with `epoch` finished
 * epochs and `iter` finished iterations, for an optimizer whose configured
 * value is `base`: starting from base, every entry for `which` that has begun
 * (by_epoch entries count epochs, the others iterations) maps the value in
 * list order, each at its own step t = min(now - begin, end - begin - 1).
 * Closed form, so resuming needs no schedule state. NULL s: base. */
double dkh_sched_value(const dkh_sched *s, dkh_sched_param which, double base, int64_t epoch,
                       int64_t iter);

/* Entries in the schedule, and the run length it was built for. */
size_t dkh_sched_len(const dkh_sched *s);
int64_t dkh_sched_max_iters(const dkh_sched *s);

/* ---- the optimizer wrapper ------------------------------------------------ */

typedef struct dkh_optim dkh_optim;

/* Builds the wrapper an `optim_wrapper` node describes (validated, defaults
 * filled) over the trainable parameters of model: every parameter that
 * requires a gradient, buffers and frozen parameters left out. Reads
 *   optimizer             the optimizer object (`type:` SGD, Adam, AdamW, ...)
 *   paramwise_cfg         per-parameter lr and weight-decay multipliers by name
 *   clip_grad             {max_norm, norm_type} or {clip_value} (type norm|value)
 *   accumulative_counts   update once every N steps
 * Returns a new wrapper, or NULL with *err set and a message naming the key
 * and its file:line:col. The wrapper keeps a reference to every parameter. */
dkh_optim *dkh_optim_new(const dk_cfg *optim_wrapper, dk_object *model, dk_status *err);

/* The same over n named parameters given directly (tests, tools): names and
 * tensors are borrowed (names copied, tensors retained); each must be a CPU
 * f32 tensor. Parameters that do not require a gradient are left out. */
dkh_optim *dkh_optim_new_params(const dk_cfg *optim_wrapper, const char *const *names,
                                dk_tensor *const *params, size_t n, dk_status *err);
void dkh_optim_free(dkh_optim *o);

/* Sets this iteration's learning rate and momentum from the schedule (NULL:
 * the optimizer's own values), each parameter group evaluated at its own base
 * (lr x lr_mult), as mmengine's schedules treat groups. *lr and *momentum
 * (either may be NULL) receive the values at multiplier 1, for the log.
 * Also tells the wrapper which iteration runs, so gradient accumulation stays
 * aligned with the run (after a resume too) and the last, shorter block of
 * accumulation is averaged over its own length. */
void dkh_optim_schedule(dkh_optim *o, const dkh_sched *s, int64_t epoch, int64_t iter, double *lr,
                        double *momentum);

/* Multiplies the learning rate of every group (after dkh_optim_schedule),
 * e.g. to damp a run the NaN guard rolled back. */
void dkh_optim_scale_lr(dkh_optim *o, double factor);

/* Sets the learning rate (at multiplier 1; each group gets lr x lr_mult) and
 * momentum directly, for use without a schedule. */
void dkh_optim_set_values(dkh_optim *o, double lr, double momentum);

/* What one dkh_optim_step did. */
typedef struct dkh_optim_result {
    bool updated;       /* the parameters changed (false inside an accumulation block) */
    bool has_grad_norm; /* clipping by norm ran */
    double grad_norm;   /* the total norm of the gradients before clipping */
} dkh_optim_result;

/* Called after every backward. Gradients accumulate (dk_backward adds into
 * them) until the last step of a block of accumulative_counts steps; then,
 * mmengine's OptimWrapper in order: the gradients are divided by the block's
 * length (the same as scaling each loss by 1/N), clipped, the optimizer
 * updates every parameter that has a gradient (its state tensors allocated,
 * zeros, on its first update), and the gradients are zeroed. Errors: a
 * gradient that is not a contiguous CPU f32 tensor shaped like its
 * parameter (DK_ERR_ARG), errors of the optimizer's step. */
dk_status dkh_optim_step(dkh_optim *o, dkh_optim_result *res) DK_CHECK;

/* Data-parallel training: on every step that updates, before the gradients
 * are scaled and clipped, they are averaged across the ranks of pg (borrowed;
 * it must outlive o) in buckets of at most bucket_bytes. A pg of one rank, or
 * NULL, turns it off. Every rank's wrapper must see the same parameters. */
void dkh_optim_set_dist(dkh_optim *o, dkh_pg *pg, size_t bucket_bytes);

/* Whether every gradient accumulated so far is finite (for a NaN guard). */
bool dkh_optim_grads_finite(const dkh_optim *o);
/* Zeroes the gradients of every parameter (drops an accumulated block). */
void dkh_optim_zero_grad(dkh_optim *o);

/* Optimizer state for checkpoints. save puts into out, for every parameter
 * that has been updated, its state tensors as "<param>.<state>" (shared, not
 * copied: store them before the next step), the number "step" (updates of
 * the optimizer) and "<param>.step" for a parameter updated a different
 * number of times. load reads such a dict back into fresh copies: every key
 * must name a parameter and a state of this optimizer with the parameter's
 * shape; otherwise nothing changes and DK_ERR_SHAPE / DK_ERR_NOT_FOUND come
 * back with every mismatch listed. Parameters the dict does not mention
 * start afresh. */
dk_status dkh_optim_state_save(const dkh_optim *o, dk_dict *out) DK_CHECK;
dk_status dkh_optim_state_load(dkh_optim *o, const dk_dict *in) DK_CHECK;

/* Introspection (tests, logs). Borrowed. */
size_t dkh_optim_n_params(const dkh_optim *o);
const char *dkh_optim_param_name(const dkh_optim *o, size_t i);
/* The multipliers the paramwise rules gave parameter i. */
void dkh_optim_param_mults(const dkh_optim *o, size_t i, double *lr_mult, double *decay_mult);
/* Updates done so far (steps that changed the parameters). */
int64_t dkh_optim_updates(const dkh_optim *o);
/* The optimizer object (its type names the optimizer). */
const dk_object *dkh_optim_optimizer(const dkh_optim *o);

#endif /* DKH_OPTIM_H */
