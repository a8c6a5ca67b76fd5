/* dk/api_list.h — THE list of host functions a plugin may call.
 *
 * This one list generates three things (see api.h and core/plugin/host_api.c):
 * the function-pointer table `dk_host_api` the host hands to every plugin's
 * init, the code in the host that fills it, and the static inline wrappers
 * that let plugin code call `dk_cfg_get(...)` as plain C.
 *
 * RULES: append only. Never reorder, remove or change an entry within one
 * ABI major; a new entry goes at the end and bumps DK_ABI_MINOR. A plugin that
 * calls an entry added in minor m must require minor m (DK_PLUGIN_REQUIRES_MINOR).
 *
 *   F(attr, return type, name, (parameters), (arguments))   returns a value
 *   V(name, (parameters), (arguments))                      returns nothing
 */
#ifndef DK_API_LIST_H
#define DK_API_LIST_H

#define DK_HOST_API_LIST(F, V)                                                          \
    /* --- errors (status.h) ------------------------------------------- since 1.0 */ \
    F(, dk_status, dk_failv, (dk_status status, const char *fmt, va_list ap),          \
      (status, fmt, ap))                                                               \
    F(, const char *, dk_last_error, (void), ())                                        \
    F(, dk_status, dk_last_status, (void), ())                                          \
    V(dk_clear_error, (void), ())                                                       \
    V(dk_error_prefixv, (const char *fmt, va_list ap), (fmt, ap))                       \
    F(, const char *, dk_status_name, (dk_status status), (status))                     \
    F(, const char *, dk_status_str, (dk_status status), (status))                      \
    /* --- memory (counted by the host) ---------------------------------- since 1.0 */ \
    F(, void *, dk_malloc, (size_t size), (size))                                       \
    F(, void *, dk_calloc, (size_t n, size_t size), (n, size))                          \
    F(, void *, dk_realloc, (void *ptr, size_t size), (ptr, size))                      \
    V(dk_free, (void *ptr), (ptr))                                                      \
    F(, char *, dk_strdup, (const char *s), (s))                                        \
    /* --- logging (log.h) ---------------------------------------------- since 1.0 */ \
    V(dk_logv, (dk_log_level level, const char *fmt, va_list ap), (level, fmt, ap))     \
    /* --- config nodes (cfg.h) ----------------------------------------- since 1.0 */ \
    F(, dk_cfg_kind, dk_cfg_kind_of, (const dk_cfg *node), (node))                      \
    F(, const dk_cfg *, dk_cfg_get, (const dk_cfg *node, const char *path), (node, path)) \
    F(, size_t, dk_cfg_len, (const dk_cfg *node), (node))                               \
    F(, const dk_cfg *, dk_cfg_at, (const dk_cfg *node, size_t i), (node, i))           \
    F(, const char *, dk_cfg_key_at, (const dk_cfg *node, size_t i), (node, i))         \
    F(, const char *, dk_cfg_scalar, (const dk_cfg *node), (node))                      \
    F(, const char *, dk_cfg_where, (const dk_cfg *node), (node))                       \
    F(, const char *, dk_cfg_path, (const dk_cfg *node), (node))                        \
    F(DK_CHECK, dk_status, dk_cfg_get_int,                                              \
      (const dk_cfg *node, const char *path, int64_t *out), (node, path, out))          \
    F(DK_CHECK, dk_status, dk_cfg_get_float,                                            \
      (const dk_cfg *node, const char *path, double *out), (node, path, out))           \
    F(DK_CHECK, dk_status, dk_cfg_get_bool,                                             \
      (const dk_cfg *node, const char *path, bool *out), (node, path, out))             \
    F(DK_CHECK, dk_status, dk_cfg_get_str,                                              \
      (const dk_cfg *node, const char *path, const char **out), (node, path, out))      \
    /* --- registry and instances (registry.h) -------------------------- since 1.0 */ \
    F(DK_CHECK, dk_status, dk_register, (dk_registrar *reg, const dk_type_info *info),  \
      (reg, info))                                                                      \
    F(DK_CHECK, dk_status, dk_object_build,                                             \
      (const dk_cfg *node, const char *kind, dk_object **out), (node, kind, out))       \
    V(dk_object_free, (dk_object *obj), (obj))                                          \
    F(, void *, dk_object_self, (const dk_object *obj), (obj))                          \
    F(, const dk_type_info *, dk_object_type, (const dk_object *obj), (obj))            \
    /* --- append new entries above this line, with their minor ----------------- */

#endif /* DK_API_LIST_H */
