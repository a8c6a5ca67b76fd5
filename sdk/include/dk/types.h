/* dk/types.h — the small vocabulary every other SDK header shares.
 *
 * Opaque handles, the status codes and the ABI version. Nothing here
 * depends on anything else, so any header may include it first.
 */
#ifndef DK_TYPES_H
#define DK_TYPES_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The plugin ABI. A plugin built against ABI (M, m) loads into a host with
 * ABI (M, n) when n >= the minor the plugin requires. Structures and tables
 * only grow at their end within one major; every one starts with its size. */
#define DK_ABI_MAJOR 1
#define DK_ABI_MINOR 3

/* The SDK (and dkhost) release, independent of the ABI. */
#define DK_VERSION_MAJOR 0
#define DK_VERSION_MINOR 1
#define DK_VERSION_PATCH 0
#define DK_VERSION_STRING "0.1.0"

#if defined(__GNUC__)
#define DK_CHECK __attribute__((warn_unused_result))
#define DK_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define DK_HIDDEN __attribute__((visibility("hidden")))
#define DK_EXPORT __attribute__((visibility("default")))
#else
#define DK_CHECK
#define DK_PRINTF(f, a)
#define DK_HIDDEN
#define DK_EXPORT
#endif

/* Status codes: one list makes the enum, the names and the messages.
 * 0 is success; every fallible function returns one of these and leaves a
 * message with context in the calling thread's error slot (dk_last_error). */
#define DK_STATUS_LIST(X)                                              \
    X(OK, "success")                                                   \
    X(ERR_NOMEM, "out of memory")                                      \
    X(ERR_ARG, "invalid argument")                                     \
    X(ERR_IO, "input/output error")                                    \
    X(ERR_PARSE, "parse error")                                        \
    X(ERR_CONFIG, "invalid configuration")                             \
    X(ERR_NOT_FOUND, "not found")                                      \
    X(ERR_PLUGIN, "plugin error")                                      \
    X(ERR_ABI, "ABI mismatch")                                         \
    X(ERR_DUPLICATE, "duplicate registration")                         \
    X(ERR_SHAPE, "shape mismatch")                                     \
    X(ERR_UNSUPPORTED, "not supported")                                \
    X(ERR_RUNTIME, "runtime failure")                                  \
    X(ERR_INTERNAL, "internal error")

typedef enum dk_status {
#define DK_STATUS_ENUM_(name, text) DK_##name,
    DK_STATUS_LIST(DK_STATUS_ENUM_)
#undef DK_STATUS_ENUM_
    DK_STATUS_COUNT
} dk_status;

typedef enum dk_log_level {
    DK_LOG_DEBUG,
    DK_LOG_INFO,
    DK_LOG_WARN,
    DK_LOG_ERROR,
    DK_LOG_LEVEL_COUNT
} dk_log_level;

/* What a config node holds. Scalars keep their source text as well as their
 * typed value; a quoted YAML scalar is always a string. */
typedef enum dk_cfg_kind {
    DK_CFG_NULL,
    DK_CFG_BOOL,
    DK_CFG_INT,
    DK_CFG_FLOAT,
    DK_CFG_STRING,
    DK_CFG_LIST,
    DK_CFG_MAP,
    DK_CFG_KIND_COUNT
} dk_cfg_kind;

/* Tensor vocabulary (tensor.h documents the functions). It lives here
 * because the host API table (api_list.h) names these types.
 *
 * Element types: one list makes the enum, the names and the sizes.
 *   X(ENUM suffix, name, bytes per element) */
#define DK_DTYPE_LIST(X) \
    X(F32, "f32", 4)     \
    X(F64, "f64", 8)     \
    X(BF16, "bf16", 2)   \
    X(F16, "f16", 2)     \
    X(I32, "i32", 4)     \
    X(I64, "i64", 8)     \
    X(U8, "u8", 1)       \
    X(BOOL, "bool", 1)

typedef enum dk_dtype {
#define DK_DTYPE_ENUM_(e, name, size) DK_DTYPE_##e,
    DK_DTYPE_LIST(DK_DTYPE_ENUM_)
#undef DK_DTYPE_ENUM_
    DK_DTYPE_COUNT
} dk_dtype;

/* Where a tensor's bytes live. */
typedef enum dk_device_type { DK_DEVICE_CPU, DK_DEVICE_CUDA, DK_DEVICE_TYPE_COUNT } dk_device_type;

/* A device: type and index (cuda:1 is {DK_DEVICE_CUDA, 1}; cpu is {DK_DEVICE_CPU, 0}).
 * Passed by value. */
typedef struct dk_device {
    int32_t type; /* dk_device_type */
    int32_t index;
} dk_device;

/* Most dimensions a tensor may have. */
#define DK_MAX_DIMS 8

/* A seeded, splittable, counter-based random generator (rng in tensor.h).
 * Plain data: copy it to snapshot, store it in a checkpoint to resume. */
typedef struct dk_rng {
    uint64_t key;     /* from the seed; a split derives a fresh key */
    uint64_t counter; /* advances by the number of values drawn */
} dk_rng;

/* Bytes a device's tensor allocator holds (dk_memory_stats). */
typedef struct dk_memory_stats {
    size_t current; /* bytes in live tensors' storage (size-class rounded) */
    size_t peak;    /* high-water mark of current */
    size_t cached;  /* bytes kept in free lists for reuse */
} dk_memory_stats;

typedef struct dk_tensor dk_tensor;       /* an n-d array with autograd (tensor.h) */
typedef struct dk_op_info dk_op_info;     /* a custom op a plugin registers (tensor.h) */

typedef struct dk_cfg dk_cfg;             /* a config node (cfg.h) */
typedef struct dk_registrar dk_registrar; /* handed to a plugin's init (registry.h) */
typedef struct dk_type_info dk_type_info; /* a registered type (registry.h) */
typedef struct dk_object dk_object;       /* an instance of a registered type */
typedef struct dk_dict dk_dict;           /* the one data type that flows (dict.h) */
typedef struct dk_runner dk_runner;       /* the training runner (runner.h) */

/* What a dk_dict value holds (dict.h). */
typedef enum dk_value_kind {
    DK_VALUE_NONE = 0,
    DK_VALUE_TENSOR,
    DK_VALUE_NUMBER,
    DK_VALUE_STRING,
    DK_VALUE_TENSORS, /* a list of tensors (ragged data) */
    DK_VALUE_KIND_COUNT
} dk_value_kind;

/* Module vocabulary (module.h). */
/* How a new parameter is filled. Fan-in is shape[1] x the product of
 * shape[2:], fan-out shape[0] x the same product (PyTorch's rule).
 *   ZEROS            0 (also what a NULL init means)
 *   CONSTANT         a
 *   UNIFORM          U(a, b)
 *   NORMAL           N(a, b^2)
 *   KAIMING_UNIFORM  U(-bound, bound), bound = gain sqrt(3 / fan), gain = sqrt(2 / (1 + a^2))
 *   KAIMING_NORMAL   N(0, (gain / sqrt(fan))^2)          fan = fan_in, or fan_out when fan_out
 *   XAVIER_UNIFORM   U(-bound, bound), bound = g sqrt(6 / (fan_in + fan_out)), g = a or 1 if a == 0
 *   XAVIER_NORMAL    N(0, (g sqrt(2 / (fan_in + fan_out)))^2)
 *   FAN_IN_UNIFORM   U(-1/sqrt(fan), 1/sqrt(fan)) with fan = b, or fan_in when b == 0:
 *                    PyTorch's default for biases (b = the weight's fan-in) and Linear */
typedef enum dk_init_kind {
    DK_INIT_ZEROS = 0,
    DK_INIT_CONSTANT,
    DK_INIT_UNIFORM,
    DK_INIT_NORMAL,
    DK_INIT_KAIMING_UNIFORM,
    DK_INIT_KAIMING_NORMAL,
    DK_INIT_XAVIER_UNIFORM,
    DK_INIT_XAVIER_NORMAL,
    DK_INIT_FAN_IN_UNIFORM,
    DK_INIT_KIND_COUNT
} dk_init_kind;

typedef struct dk_init {
    int32_t kind; /* dk_init_kind */
    bool fan_out; /* KAIMING: use fan-out (mode='fan_out') */
    double a;
    double b;
} dk_init;

typedef enum dk_forward_mode {
    DK_MODE_TENSOR = 0,
    DK_MODE_LOSS,
    DK_MODE_PREDICT,
    DK_MODE_COUNT
} dk_forward_mode;

/* Which loop is running. */
typedef enum dk_runner_phase {
    DK_PHASE_TRAIN = 0,
    DK_PHASE_VAL,
    DK_PHASE_TEST,
    DK_PHASE_COUNT
} dk_runner_phase;


#ifdef __cplusplus
}
#endif
#endif /* DK_TYPES_H */
