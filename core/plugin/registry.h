/* core/plugin/registry.h — the host's registry of plugins and types.
 *
 * The registry owns every loaded plugin library and a deep copy of every type
 * they registered (strings and parameter schemas copied into the host's own
 * layout, so nothing points into a plugin's memory except vtable functions).
 * It also remembers every file it refused and why, so a config that names a
 * missing type can be told which refused plugin may have provided it.
 *
 * Internal to libdk (dkh_ names); plugins see only dk_register and
 * dk_object_* through the host API table.
 */
#ifndef DKH_REGISTRY_H
#define DKH_REGISTRY_H

#include <dk/registry.h>
#include <dk/plugin.h>

#include "../util/util.h"

typedef struct dkh_registry dkh_registry;

/* A loaded plugin. All strings are host-owned copies. */
typedef struct dkh_plugin {
    char *path;     /* the file as found (e.g. "build/plugins/backbones.so") */
    char *loaded_path; /* the file mapped: path, or a private copy of it (sweeps) */
    char *name;
    char *version;  /* "" when the descriptor has none */
    char *summary;
    char *license;
    char *source;   /* "" when none */
    char *build;    /* "" for plugins older than ABI 1.1 */
    uint16_t abi_major;
    uint16_t abi_minor;
    uint16_t requires_minor;
    uint32_t flags;
    void *handle;   /* dlopen handle */
    const dk_plugin_desc *desc; /* inside the library; valid while loaded */
} dkh_plugin;

/* A registered type: info is a host-owned deep copy whose params point at a
 * host-layout array (stride sizeof(dk_param)); nested STRUCT fields likewise. */
typedef struct dkh_type {
    dk_type_info info;
    const dkh_plugin *plugin; /* NULL for types the host registers itself */
} dkh_type;

/* A file that was not loaded. */
typedef struct dkh_refusal {
    char *path;
    char *reason;       /* one line, naming the file */
    dk_status status;   /* DK_ERR_ABI, DK_ERR_PLUGIN, DK_ERR_DUPLICATE, ... */
    bool not_a_plugin;  /* a shared library without dk_plugin_entry: skipped quietly */
    char *plugin_name;  /* from the descriptor when it was readable, else NULL */
    /* The "kind/name" pairs it tried to register before it was refused
     * (empty when refused before init ran). */
    char **attempted;
    size_t n_attempted;
} dkh_refusal;

dkh_registry *dkh_registry_new(void);
/* Calls every plugin's shutdown, closes the libraries, frees everything.
 * NULL is a no-op. */
void dkh_registry_free(dkh_registry *r);

/* The registry the host API functions (dk_object_build) use. Set by dkhost's
 * main and by tests; borrowed. */
void dkh_registry_set_current(dkh_registry *r);
dkh_registry *dkh_registry_current(void);

/* Loads one file. On refusal returns its status with the reason as the error
 * message, and records a dkh_refusal; the registry is left as it was. */
dk_status dkh_registry_load_file(dkh_registry *r, const char *path) DK_CHECK;

/* Loads every "*.so" in dir, in name order; a refused file is recorded and
 * does not stop the others. A file whose base name was already loaded from
 * an earlier directory is skipped (earlier directories shadow later ones).
 * Fails only when dir cannot be read. */
dk_status dkh_registry_load_dir(dkh_registry *r, const char *dir) DK_CHECK;

/* Registers a type the host itself provides (no plugin). */
dk_status dkh_registry_add_builtin(dkh_registry *r, const dk_type_info *info) DK_CHECK;

/* Lookups. kind may be NULL to search every kind; then a name registered
 * under several kinds is ambiguous and NULL is returned. Borrowed. */
const dkh_type *dkh_registry_find(const dkh_registry *r, const char *kind, const char *name);

/* Appends to out the reason kind/name is not available, for a user:
 *   "unknown backbone type 'ResNt' (did you mean 'ResNet'?)"
 * followed, when a refused plugin tried to register it or any plugin was
 * refused, by "; plugin file X was refused: <reason>". */
void dkh_registry_explain_missing(const dkh_registry *r, const char *kind, const char *name,
                                  dkh_buf *out);

/* The interface a kind maps to (builtin kinds, or fixed by the first type
 * registered under a new kind); 0 when the kind is unknown. */
dk_iface dkh_registry_kind_iface(const dkh_registry *r, const char *kind);
/* "module", "dataset", ...; "?" for a value outside dk_iface. Static. */
const char *dkh_iface_name(dk_iface iface);

/* Iteration, in stable order: plugins in load order, types sorted by
 * (kind, name), refusals in the order they happened. Borrowed. */
size_t dkh_registry_n_plugins(const dkh_registry *r);
const dkh_plugin *dkh_registry_plugin_at(const dkh_registry *r, size_t i);
size_t dkh_registry_n_types(const dkh_registry *r);
const dkh_type *dkh_registry_type_at(const dkh_registry *r, size_t i);
size_t dkh_registry_n_refusals(const dkh_registry *r);
const dkh_refusal *dkh_registry_refusal_at(const dkh_registry *r, size_t i);

/* Unloads one plugin: removes its types, calls shutdown, dlcloses. Refused
 * while any dk_object of its types is alive. (Used by hook reloading.) */
dk_status dkh_registry_unload(dkh_registry *r, const char *plugin_name) DK_CHECK;

/* Sweeps (core/plugin/reload.h): from now on, plugins flagged
 * DK_PLUGIN_UNLOADABLE are loaded from private copies of their files, so a
 * rebuild of the file in place never touches a mapped library. */
void dkh_registry_set_private_copies(dkh_registry *r, bool on);

/* Marks a run as active (the runner calls these around every run; NULL is
 * a no-op). Plugins are never reloaded while a run is active. */
void dkh_registry_run_begin(dkh_registry *r);
void dkh_registry_run_end(dkh_registry *r);
bool dkh_registry_run_active(const dkh_registry *r);

/* Number of live dk_objects created from types of plugin p. */
size_t dkh_registry_live_objects(const dkh_registry *r, const dkh_plugin *p);

#endif /* DKH_REGISTRY_H */
