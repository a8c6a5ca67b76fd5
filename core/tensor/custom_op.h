/* core/tensor/custom_op.h — ops that plugins register at run time.
 *
 * Custom ops get ids past the static op list (DKH_OP_COUNT and up), so the
 * dispatcher and the tape treat them as ordinary dkh_op_id values: dkh_op()
 * returns a host-built dkh_op_def whose rule, backward and kernels are
 * trampolines into the plugin's callbacks. What a call needs besides its
 * tensors (the op, a copy of the caller's attrs, a hold on the plugin) lives
 * in a refcounted call record that the call's dkh_args point to; a tape node
 * holds a reference for as long as it lives (dkh_custom_args_retain/release).
 * The device seam these ops and the backends share is in device.h.
 *
 * Internal to libdk.
 */
#ifndef DKH_CUSTOM_OP_H
#define DKH_CUSTOM_OP_H

#include "device.h"
#include "tensor_impl.h"

/* ---- custom ops (custom_op.c) ------------------------------------------------ */

static inline bool dkh_op_is_custom(dkh_op_id id)
{
    return (unsigned)id >= (unsigned)DKH_OP_COUNT;
}

/* The definition of custom op id, or NULL when no op ever had that id. A
 * definition stays valid for the life of the process (a retired op's
 * trampolines fail cleanly instead of calling into an unloaded plugin). */
const dkh_op_def *dkh_custom_op_def(dkh_op_id id);
/* Runs custom op c->op's forward (dir DKH_FWD) kernel for device_type. */
dk_status dkh_custom_run_kernel(int dir, const dkh_kcall *c, int device_type);
/* The tape's hold on a custom call's record (no-ops for built-in ops' args). */
void dkh_custom_args_retain(dkh_op_id op, const dkh_args *a);
void dkh_custom_args_release(dkh_op_id op, const dkh_args *a);

/* Registration sessions, driven by core/plugin. An op registered during a
 * session is staged; dkh_custom_ops_finish makes the session's ops callable
 * (commit) or drops them (a refused plugin leaves no op behind). */
typedef struct dkh_op_owner {
    uint64_t serial;     /* the owning plugin's load serial; 0 for the host */
    const char *path;    /* its file, for messages; NULL for the host */
    const void *session; /* the registrar of the session */
} dkh_op_owner;

dk_status dkh_custom_op_stage(const dk_op_info *info, const dkh_op_owner *owner, int32_t *id);
void dkh_custom_ops_finish(const void *session, bool commit);

/* A live custom op a plugin registered, as `dkhost list-registry` shows it.
 * The strings are borrowed and stay valid for the life of the process. */
typedef struct dkh_custom_op_view {
    const char *name, *summary;
    const char *path;     /* the registering plugin's file */
    int n_in;
    bool cpu, cuda;       /* forward kernels */
    const char *backward; /* "kernel", "ops" (a formula over ops) or "none" */
} dkh_custom_op_view;

/* The i-th (from 0, in registration order) op of a loaded plugin that is
 * callable now; false past the last. The host's own ops are not listed. */
bool dkh_custom_op_at(size_t i, dkh_custom_op_view *out);

/* Provided by core/plugin/register.c, which can see the plugin records: finds
 * the plugin with load serial `serial` in the current registry and adds delta
 * to its count of live holders (which blocks dkh_registry_unload while
 * positive). Returns false, changing nothing, when no such plugin is loaded;
 * *path (when not NULL) gets its file, borrowed while it stays loaded. */
bool dkh_plugin_hold(uint64_t serial, int delta, const char **path);

#endif /* DKH_CUSTOM_OP_H */
