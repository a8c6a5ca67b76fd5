/* dk/api.h — the host API table, and how plugin code reaches it.
 *
 * A plugin never links against the host. Its init receives a pointer to a
 * `dk_host_api` table filled by the host; DK_PLUGIN_DEFINE stores it, and the
 * static inline wrappers below make every entry callable by its plain name,
 * so plugin code reads `dk_cfg_get(cfg, "depth")`.
 *
 * Inside the host (libdk, built with DK_BUILDING_HOST) the same names are
 * ordinary exported functions and this header only declares them.
 */
#ifndef DK_API_H
#define DK_API_H

#include <dk/types.h>
#include <dk/api_list.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The table. Its first three fields never move; entries follow in list order
 * and the table only grows at its end. */
typedef struct dk_host_api {
    uint32_t struct_size; /* sizeof(dk_host_api) in the host */
    uint16_t abi_major;
    uint16_t abi_minor;
#define DK_API_FIELD_F_(attr, ret, name, params, args) ret(*name) params;
#define DK_API_FIELD_V_(name, params, args) void(*name) params;
    DK_HOST_API_LIST(DK_API_FIELD_F_, DK_API_FIELD_V_)
#undef DK_API_FIELD_F_
#undef DK_API_FIELD_V_
} dk_host_api;

_Static_assert(offsetof(dk_host_api, struct_size) == 0 && offsetof(dk_host_api, abi_major) == 4 &&
                   offsetof(dk_host_api, abi_minor) == 6 && offsetof(dk_host_api, dk_failv) == 8,
               "the head of dk_host_api moved");

#ifdef DK_BUILDING_HOST

#define DK_API_DECL_F_(attr, ret, name, params, args) DK_EXPORT attr ret name params;
#define DK_API_DECL_V_(name, params, args) DK_EXPORT void name params;
DK_HOST_API_LIST(DK_API_DECL_F_, DK_API_DECL_V_)
#undef DK_API_DECL_F_
#undef DK_API_DECL_V_

/* Variadic conveniences over the *v entries (see status.h, log.h). */
DK_EXPORT dk_status dk_fail(dk_status status, const char *fmt, ...) DK_PRINTF(2, 3);
DK_EXPORT void dk_error_prefix(const char *fmt, ...) DK_PRINTF(1, 2);
DK_EXPORT void dk_log(dk_log_level level, const char *fmt, ...) DK_PRINTF(2, 3);

#else /* plugin side */

/* Set by the init trampoline DK_PLUGIN_DEFINE generates; hidden, so every
 * plugin has its own and none is exported. */
extern DK_HIDDEN const dk_host_api *dk__host;

/* True when the host's table has entry `name` (it may be older than the SDK
 * this plugin was built with). */
#define DK_HOST_HAS(name)                                                 \
    (dk__host != NULL &&                                                  \
     offsetof(dk_host_api, name) + sizeof(dk__host->name) <= dk__host->struct_size)

#define DK_API_WRAP_F_(attr, ret, name, params, args) \
    static inline attr ret name params { return dk__host->name args; }
#define DK_API_WRAP_V_(name, params, args) \
    static inline void name params { dk__host->name args; }
DK_HOST_API_LIST(DK_API_WRAP_F_, DK_API_WRAP_V_)
#undef DK_API_WRAP_F_
#undef DK_API_WRAP_V_

static inline DK_PRINTF(2, 3) dk_status dk_fail(dk_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dk_status s = dk_failv(status, fmt, ap);
    va_end(ap);
    return s;
}

static inline DK_PRINTF(1, 2) void dk_error_prefix(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dk_error_prefixv(fmt, ap);
    va_end(ap);
}

static inline DK_PRINTF(2, 3) void dk_log(dk_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dk_logv(level, fmt, ap);
    va_end(ap);
}

#endif /* DK_BUILDING_HOST */

#ifdef __cplusplus
}
#endif
#endif /* DK_API_H */
