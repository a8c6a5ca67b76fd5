/* core/plugin/internal.h — what the registry's files share among themselves.
 *
 * registry.c owns the store (plugins, types, kinds, refusals), register.c
 * checks and deep-copies one dk_type_info, loader.c opens libraries and runs
 * their init, object.c builds instances. These declarations are for those
 * files only; the rest of libdk uses registry.h.
 */
#ifndef DKH_PLUGIN_INTERNAL_H
#define DKH_PLUGIN_INTERNAL_H

#include "registry.h"

#include <stdatomic.h>

/* What a plugin file held when it was loaded: stat's identity, and a hash of
 * the bytes when the registry keeps private copies (a sweep), so a file
 * rewritten with the same contents is not mistaken for a new build. */
typedef struct dkh_file_id {
    bool valid;
    uint64_t dev, ino, size;
    int64_t mtime_ns;
    bool hashed;
    uint64_t hash; /* FNV-1a, 64 bits */
} dkh_file_id;

/* Reads path's identity; with_hash also reads the whole file. false (errno
 * set) when it cannot be read. */
bool dkh_file_id_read(const char *path, bool with_hash, dkh_file_id *out);
/* Same device, inode, size and modification time. */
bool dkh_file_id_same_stat(const dkh_file_id *a, const dkh_file_id *b);

/* Copies path into the process's private plugin directory under a name used
 * once (reload.c). *copy is new; *id is the identity and hash of the bytes
 * copied, taken from the same open file so they match the copy. */
dk_status dkh_private_copy(const char *path, char **copy, dkh_file_id *id) DK_CHECK;

/* A loaded plugin as the registry keeps it: the public record first, so a
 * `const dkh_plugin *` handed out converts back to this. */
typedef struct dkh_plugin_rec {
    dkh_plugin pub;
    char *base;         /* file name without directory, for shadowing */
    atomic_size_t live; /* dk_objects of its types still alive, and custom-op
                           calls and tape nodes that hold its code */
    uint64_t serial;    /* unique per load, never reused: how custom ops
                           (core/tensor/custom_op.c) find their plugin */
    bool private_copy;  /* pub.loaded_path is our copy: deleted after close */
    dkh_file_id file;   /* what pub.path held when this build was loaded */
    dkh_file_id rejected; /* a later build of pub.path that failed to reload */
    bool change_reported; /* a resident plugin's change was reported */
} dkh_plugin_rec;

/* The state of one registration session: the init of one plugin file, or a
 * builtin registration by the host. Types are staged here and only reach the
 * registry when the whole session succeeds, so a failing or colliding plugin
 * leaves nothing behind without any undo step. */
struct dk_registrar {
    dkh_registry *reg;
    const dkh_plugin_rec *plugin; /* NULL for host builtins */
    const char *path;             /* the plugin file, for messages */
    dkh_type **pending;
    size_t n_pending, cap_pending;
    char **attempted; /* "kind/name" of every dk_register call */
    size_t n_attempted, cap_attempted;
    const dkh_plugin_rec *replacing; /* a reload: its types may be registered again */
    dk_status failed; /* first dk_register failure, kept even if ignored */
    char *fail_msg;   /* its message (malloc) */
};

void dkh_registrar_init(dk_registrar *g, dkh_registry *r, const dkh_plugin_rec *p,
                        const char *path);
/* Frees whatever is still staged (after a failure, or after a commit moved
 * the types out). */
void dkh_registrar_fini(dk_registrar *g);

/* Checks info and returns a new host-layout deep copy in *out. Messages start
 * with "<kind> type '<name>'" when those are readable. */
dk_status dkh_type_copy(const dkh_registry *r, const dk_registrar *g, const dk_type_info *info,
                        dkh_type **out) DK_CHECK;
void dkh_type_free(dkh_type *t);

/* Store access for the other files of this part. */
const dkh_type *dkh_reg_lookup(const dkh_registry *r, const char *kind, const char *name);
const dkh_plugin_rec *dkh_reg_plugin_by_name(const dkh_registry *r, const char *name);
bool dkh_reg_has_base(const dkh_registry *r, const char *base);
/* Moves the session's staged types (and, for a plugin, the plugin record)
 * into the store. Cannot fail: every check ran before. p may be NULL. */
void dkh_reg_commit(dkh_registry *r, dkh_plugin_rec *p, dk_registrar *g);
/* A reload's commit: old's types leave the store, p takes old's place in the
 * load order and the session's types go in. old is detached, not closed. */
void dkh_reg_replace(dkh_registry *r, dkh_plugin_rec *old, dkh_plugin_rec *p, dk_registrar *g);
/* Whether the registry loads unloadable plugins from private copies. */
bool dkh_reg_private_copies(const dkh_registry *r);
/* Loads path as the next build of the loaded plugin old (reload.c): from the
 * private copy open_path, whose contents id describes. On success old is
 * detached from the registry for the caller to close; on failure nothing
 * changed, no refusal is recorded, and the message names path and why. */
dk_status dkh_registry_load_replacement(dkh_registry *r, dkh_plugin_rec *old,
                                        const char *open_path, const dkh_file_id *id) DK_CHECK;
/* Frees what a refusal owns (one that is not recorded). */
void dkh_refusal_fini(dkh_refusal *f);
/* Records a refusal; takes ownership of the strings and the attempted list. */
void dkh_reg_add_refusal(dkh_registry *r, dkh_refusal *ref);
/* The interface a kind maps to, looking at the staged types of g too. */
dk_iface dkh_reg_kind_iface_staged(const dkh_registry *r, const dk_registrar *g, const char *kind);

/* Plugin records: free everything host-owned (not the library). */
void dkh_plugin_rec_free(dkh_plugin_rec *p);
/* dlclose unless DK_NO_DLCLOSE=1 asks to keep libraries mapped (leak
 * checkers need the code to symbolise stacks). */
void dkh_library_close(void *handle);

/* Live object accounting, used by object.c. */
void dkh_reg_object_created(const dkh_type *t);
void dkh_reg_object_destroyed(const dkh_type *t);

#endif /* DKH_PLUGIN_INTERNAL_H */
