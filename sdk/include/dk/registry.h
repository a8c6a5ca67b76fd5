/* dk/registry.h — how a plugin describes the types it registers.
 *
 * A type is (kind, name): kind is a namespace such as "backbone" or
 * "dataset" (plugins may introduce new kinds, e.g. "fuser"), name is what a
 * config's `type:` key says. Each type brings a one-line summary, a parameter
 * schema that the host uses to validate configs and fill defaults before
 * anything is created, and a vtable of its interface.
 *
 * Every structure here that crosses the ABI starts with (or is stepped by) its
 * own size, so later SDK minors append fields without breaking old plugins.
 */
#ifndef DK_REGISTRY_H
#define DK_REGISTRY_H

#include <dk/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Parameter schemas                                                   */
/* ------------------------------------------------------------------ */

typedef enum dk_param_type {
    DK_PARAM_ANY = 1,     /* anything; not checked */
    DK_PARAM_INT,         /* integer; min/max apply */
    DK_PARAM_FLOAT,       /* number (an int is accepted); min/max apply */
    DK_PARAM_BOOL,        /* true/false */
    DK_PARAM_STRING,      /* string; choices apply */
    DK_PARAM_LIST,        /* list; elements checked against `elem` when set */
    DK_PARAM_MAP,         /* free-form map, not checked further */
    DK_PARAM_OBJECT,      /* a map with `type:` naming a type of `kind` */
    DK_PARAM_OBJECT_LIST, /* a list of such maps (e.g. a transform pipeline) */
    DK_PARAM_OBJECT_MAP,  /* a map of name -> such maps (e.g. default_hooks) */
    DK_PARAM_STRUCT,      /* a map with a fixed set of keys, described by `fields` */
    DK_PARAM_TYPE_COUNT
} dk_param_type;

/* Flags of a parameter. */
enum {
    DK_PARAM_REQUIRED = 1u << 0, /* must be given; no default */
    DK_PARAM_NULLABLE = 1u << 1, /* `null` is accepted (and is the default if none given) */
};

/* One parameter of a type. Plugins declare a static array of these; the host
 * steps through it by dk_type_info.param_size, so fields may be appended.
 * Values are written as YAML text so they read (and print) as a user writes
 * them: .def = "0.01", .def = "[3, 3]", .min = "1", .choices = "sum|mean". */
typedef struct dk_param {
    const char *name;    /* key in the config map */
    dk_param_type type;  /* what the value must be */
    const char *def;     /* default as YAML text; NULL = none */
    uint32_t flags;      /* DK_PARAM_REQUIRED, DK_PARAM_NULLABLE */
    const char *min;     /* inclusive lower bound (INT, FLOAT, and LIST elements); NULL = none */
    const char *max;     /* inclusive upper bound; NULL = none */
    const char *choices; /* allowed values separated by '|'; NULL = any */
    dk_param_type elem;  /* LIST: element type; 0 = any */
    const char *kind;    /* OBJECT*: the kind the nested `type:` must name */
    const char *doc;     /* one line for list-registry and the docs */
    const struct dk_param *fields; /* STRUCT: its keys, same layout as this array */
    uint32_t n_fields;
} dk_param;

/* Fills .fields and .n_fields of a STRUCT parameter from a static array. */
#define DK_FIELDS(array) \
    .fields = (array), .n_fields = (uint32_t)(sizeof(array) / sizeof((array)[0]))

/* ------------------------------------------------------------------ */
/* Interfaces and their vtables                                        */
/* ------------------------------------------------------------------ */

/* The few interfaces every kind maps onto. Backbones, necks, heads, models
 * and losses are all modules. */
typedef enum dk_iface {
    DK_IFACE_MODULE = 1,
    DK_IFACE_DATASET,
    DK_IFACE_TRANSFORM,
    DK_IFACE_HOOK,
    DK_IFACE_METRIC,
    DK_IFACE_OPTIMIZER,
    DK_IFACE_LR_SCHEDULER,
    DK_IFACE_COUNT
} dk_iface;

/* The head shared by every interface vtable. `create` receives the type's
 * config node, already validated with defaults filled in, and returns the
 * instance state in *self (allocated with dk_malloc). `destroy` frees it;
 * it is never called with NULL. */
#define DK_VTABLE_HEAD                                              \
    uint32_t struct_size; /* sizeof the vtable as the plugin built it */ \
    dk_status (*create)(const dk_cfg *cfg, void **self);           \
    void (*destroy)(void *self)

typedef struct dk_vtable {
    DK_VTABLE_HEAD;
} dk_vtable;

/* Slots after the head are optional: NULL (or beyond struct_size) means the
 * type does not implement it. */

/* Backbones, necks, heads, losses, models (module.h). forward maps `in` to
 * `out` in the given mode; tensors it puts into `out` may be scope-owned
 * (the dict keeps them alive). */
typedef struct dk_module_vtable {
    DK_VTABLE_HEAD;
    dk_status (*forward)(void *self, const dk_dict *in, dk_forward_mode mode, dk_dict *out);
} dk_module_vtable;

/* A dataset (data.h). get fills `sample` with sample `index` in [0, len);
 * the loader calls it from several threads at once. class_name gives the
 * name of class i, NULL past the last (optional). */
typedef struct dk_dataset_vtable {
    DK_VTABLE_HEAD;
    int64_t (*len)(void *self);
    dk_status (*get)(void *self, int64_t index, dk_dict *sample);
    const char *(*class_name)(void *self, int64_t i);
} dk_dataset_vtable;

/* One step of a pipeline (data.h): changes `sample` in place. Random draws
 * come from rng only (seeded per sample from the run seed, the epoch and
 * the index, so results do not depend on the number of loader threads). */
typedef struct dk_transform_vtable {
    DK_VTABLE_HEAD;
    dk_status (*apply)(void *self, dk_dict *sample, dk_rng *rng);
} dk_transform_vtable;

/* An evaluation metric (data.h): process sees every batch with the model's
 * predictions; compute fills `results` with named numbers ("top1", ...),
 * which the runner logs as "<metric prefix>/<name>"; reset starts over. */
typedef struct dk_metric_vtable {
    DK_VTABLE_HEAD;
    dk_status (*process)(void *self, const dk_dict *batch, const dk_dict *preds);
    dk_status (*compute)(void *self, dk_dict *results);
    void (*reset)(void *self);
} dk_metric_vtable;

/* One parameter as an optimizer's step sees it (optim.h). */
typedef struct dk_optim_param {
    const char *name;         /* dotted name, e.g. "backbone.conv1.weight" */
    dk_tensor *param;         /* contiguous f32; updated in place */
    dk_tensor *grad;          /* its gradient, contiguous, same shape */
    dk_tensor *const *state;  /* n_state tensors shaped like param, zeros before the first step */
    double lr;                /* this step's learning rate (schedule x lr_mult) */
    double weight_decay;      /* (x decay_mult) */
    double momentum;          /* this step's momentum (SGD) or beta1 (Adam family) */
} dk_optim_param;

/* An optimizer (optim.h). `base` reports the config's lr, weight decay and
 * momentum (or beta1), which schedules and per-parameter rules scale; step
 * updates every parameter in place; `step` counts updates from 1. State
 * tensors are the host's (saved in checkpoints as "<param>.<state name>").
 * n_state_used (optional) says how many of the first n_state states this
 * instance keeps, e.g. Adam without amsgrad 2 of its 3; the others are NULL
 * in dk_optim_param.state and never allocated. */
typedef struct dk_optimizer_vtable {
    DK_VTABLE_HEAD;
    uint32_t n_state;                /* state tensors per parameter */
    const char *const *state_names;  /* e.g. {"exp_avg", "exp_avg_sq"} */
    void (*base)(const void *self, double *lr, double *weight_decay, double *momentum);
    dk_status (*step)(void *self, const dk_optim_param *params, size_t n, int64_t step);
    uint32_t (*n_state_used)(const void *self);
} dk_optimizer_vtable;

/* A schedule of a value (optim.h): `in` is the value the schedules before it
 * produced at this step, `base` the optimizer's, t the step within this
 * schedule's [begin, end) and span = end - begin, so 0 <= t < span (after the
 * end t stays at span - 1: the value holds, as in mmengine). Returns the
 * value to use. */
typedef struct dk_lr_scheduler_vtable {
    DK_VTABLE_HEAD;
    double (*value)(const void *self, double in, double base, int64_t t, int64_t span);
} dk_lr_scheduler_vtable;

/* Hook points, in the order a run reaches them (mmengine's set). One list
 * makes the slots below and the names the runner logs. */
#define DK_HOOK_POINT_LIST(X) \
    X(before_run)             \
    X(after_run)              \
    X(before_train_epoch)     \
    X(after_train_epoch)      \
    X(before_train_iter)      \
    X(after_train_iter)       \
    X(before_val_epoch)       \
    X(after_val_epoch)        \
    X(before_val_iter)        \
    X(after_val_iter)         \
    X(before_test_epoch)      \
    X(after_test_epoch)       \
    X(before_test_iter)       \
    X(after_test_iter)        \
    X(before_save_checkpoint) \
    X(after_save_checkpoint)  \
    X(after_load_checkpoint)

typedef struct dk_hook_vtable {
    DK_VTABLE_HEAD;
    /* Default priority when the config gives none (lower runs first). */
    int32_t priority;
#define DK_HOOK_SLOT_(point) dk_status (*point)(void *self, dk_runner *runner);
    DK_HOOK_POINT_LIST(DK_HOOK_SLOT_)
#undef DK_HOOK_SLOT_
} dk_hook_vtable;

/* Hook priorities by name (mmengine's values; lower runs first). */
#define DK_HOOK_PRIORITY_LIST(X) \
    X(HIGHEST, 0)                \
    X(VERY_HIGH, 10)             \
    X(HIGH, 30)                  \
    X(ABOVE_NORMAL, 40)          \
    X(NORMAL, 50)                \
    X(BELOW_NORMAL, 60)          \
    X(LOW, 70)                   \
    X(VERY_LOW, 90)              \
    X(LOWEST, 100)

enum {
#define DK_PRIORITY_ENUM_(name, value) DK_PRIORITY_##name = value,
    DK_HOOK_PRIORITY_LIST(DK_PRIORITY_ENUM_)
#undef DK_PRIORITY_ENUM_
};

/* The schema entry every hook type lists, so that a config may reorder it:
 * `priority: 45` or `priority: LOW`. The runner reads it; null (the default)
 * keeps the vtable's priority. */
#define DK_PARAM_HOOK_PRIORITY                                                        \
    {.name = "priority", .type = DK_PARAM_ANY, .flags = DK_PARAM_NULLABLE,            \
     .doc = "run order among hooks, lower first: an integer, or a name from HIGHEST " \
            "(0) to LOWEST (100); null: the type's default"}

/* ------------------------------------------------------------------ */
/* Type registration                                                   */
/* ------------------------------------------------------------------ */

struct dk_type_info {
    uint32_t struct_size;      /* sizeof(dk_type_info) as built */
    const char *kind;          /* e.g. "backbone"; [a-z][a-z0-9_]* */
    const char *name;          /* e.g. "ResNet"; what `type:` says */
    const char *summary;       /* one line */
    dk_iface iface;            /* which vtable `vtable` points to */
    const void *vtable;        /* starts with DK_VTABLE_HEAD */
    const dk_param *params;    /* schema; may be NULL when n_params is 0 */
    uint32_t n_params;
    uint32_t param_size;       /* sizeof(dk_param) as built */
};

/* Fills .params, .n_params and .param_size from a static array. */
#define DK_PARAMS(array) \
    .params = (array), .n_params = (uint32_t)(sizeof(array) / sizeof((array)[0])), \
    .param_size = (uint32_t)sizeof(dk_param)

/* The pieces of a dk_type_info that are the same for every type. */
#define DK_TYPE_INFO_HEAD .struct_size = (uint32_t)sizeof(dk_type_info)

/* The kinds the host knows and the interface each maps to. A plugin may
 * register other kinds; the first type registered under a new kind fixes
 * its interface. */
#define DK_BUILTIN_KIND_LIST(X)              \
    X(model, DK_IFACE_MODULE)                \
    X(backbone, DK_IFACE_MODULE)             \
    X(neck, DK_IFACE_MODULE)                 \
    X(head, DK_IFACE_MODULE)                 \
    X(loss, DK_IFACE_MODULE)                 \
    X(dataset, DK_IFACE_DATASET)             \
    X(transform, DK_IFACE_TRANSFORM)         \
    X(hook, DK_IFACE_HOOK)                   \
    X(metric, DK_IFACE_METRIC)               \
    X(optimizer, DK_IFACE_OPTIMIZER)         \
    X(lr_scheduler, DK_IFACE_LR_SCHEDULER)

/* The pinned layouts (LP64): a change to an existing field is an ABI break;
 * new fields go at the end, where the size fields above make them optional. */
#if UINTPTR_MAX == 0xffffffffffffffffu
_Static_assert(offsetof(dk_param, name) == 0 && offsetof(dk_param, type) == 8 &&
                   offsetof(dk_param, def) == 16 && offsetof(dk_param, flags) == 24 &&
                   offsetof(dk_param, min) == 32 && offsetof(dk_param, max) == 40 &&
                   offsetof(dk_param, choices) == 48 && offsetof(dk_param, elem) == 56 &&
                   offsetof(dk_param, kind) == 64 && offsetof(dk_param, doc) == 72 &&
                   offsetof(dk_param, fields) == 80 && offsetof(dk_param, n_fields) == 88,
               "dk_param layout changed");
_Static_assert(offsetof(dk_type_info, struct_size) == 0 && offsetof(dk_type_info, kind) == 8 &&
                   offsetof(dk_type_info, name) == 16 && offsetof(dk_type_info, summary) == 24 &&
                   offsetof(dk_type_info, iface) == 32 && offsetof(dk_type_info, vtable) == 40 &&
                   offsetof(dk_type_info, params) == 48 &&
                   offsetof(dk_type_info, n_params) == 56 &&
                   offsetof(dk_type_info, param_size) == 60,
               "dk_type_info layout changed");
_Static_assert(offsetof(dk_vtable, struct_size) == 0 && offsetof(dk_vtable, create) == 8 &&
                   offsetof(dk_vtable, destroy) == 16 && sizeof(dk_vtable) == 24,
               "the vtable head changed");
_Static_assert(offsetof(dk_hook_vtable, priority) == 24 &&
                   offsetof(dk_hook_vtable, before_run) == 32,
               "dk_hook_vtable layout changed");
#endif

/* Functions (from the host API table, see api_list.h):
 *
 *   dk_status dk_register(dk_registrar *reg, const dk_type_info *info);
 *       Registers a type; call from the plugin's init only. The host checks
 *       the info (kind and name syntax, summary, vtable head, every parameter:
 *       its default parses and fits its own type, range and choices) and
 *       deep-copies every string, so `info` need not outlive the call.
 *       Errors: DK_ERR_ARG for a malformed info, DK_ERR_DUPLICATE when
 *       (kind, name) is taken (the message names both plugin files).
 *
 *   dk_status dk_object_build(const dk_cfg *node, const char *kind, dk_object **out);
 *       Creates the instance a config map describes (`type:` plus its
 *       parameters), e.g. a model building its backbone from
 *       dk_cfg_get(cfg, "backbone"). kind may be NULL to accept any kind.
 *       *out is new; free it with dk_object_free.
 *   void dk_object_free(dk_object *obj);       destroys it; NULL is a no-op
 *   void *dk_object_self(const dk_object *obj);         the state create made; borrowed
 *   const dk_type_info *dk_object_type(const dk_object *obj);  borrowed, registry-owned
 */

#ifdef __cplusplus
}
#endif

#include <dk/api.h>

#endif /* DK_REGISTRY_H */
