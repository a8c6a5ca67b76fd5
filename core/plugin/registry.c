/* core/plugin/registry.c — the store behind the registry: plugins, types,
 * refusals, lookups, and the user-facing "why is this type missing" text.
 *
 * Types live in one array sorted by (kind, name), so lookups are a binary
 * search and listings come out in a stable order without sorting again.
 * Each dkh_type is allocated on its own so pointers handed out (and held by
 * live objects) stay valid while other types come and go. Registration and
 * loading live in register.c and loader.c; this file never calls a plugin
 * except its shutdown on unload.
 */
#include "internal.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct dkh_registry {
    dkh_plugin_rec **plugins; /* load order */
    size_t n_plugins, cap_plugins;
    dkh_type **types; /* sorted by (kind, name) */
    size_t n_types, cap_types;
    dkh_refusal *refusals; /* in the order they happened */
    size_t n_refusals, cap_refusals;
    bool private_copies; /* unloadable plugins load from private copies (sweeps) */
    int active_runs;     /* dkh_registry_run_begin minus _end: no reloads while > 0 */
};

/* Set by main and tests; a plain pointer because it is set once before any
 * plugin code runs and only read afterwards. */
static dkh_registry *current_registry;

/* Grows a malloc'ed array to hold one more element; buffers of the registry
 * are small and an allocation failure here leaves nothing sensible to do. */
static void *grow(void *p, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return p;
    size_t c = *cap ? *cap * 2 : 8;
    void *q = realloc(p, c * elem);
    DKH_ASSERT(q != NULL);
    *cap = c;
    return q;
}

dkh_registry *dkh_registry_new(void)
{
    dkh_registry *r = calloc(1, sizeof *r);
    DKH_ASSERT(r != NULL);
    return r;
}

void dkh_plugin_rec_free(dkh_plugin_rec *p)
{
    if (!p)
        return;
    free(p->pub.path);
    free(p->pub.loaded_path);
    free(p->pub.name);
    free(p->pub.version);
    free(p->pub.summary);
    free(p->pub.license);
    free(p->pub.source);
    free(p->pub.build);
    free(p->base);
    free(p);
}

void dkh_library_close(void *handle)
{
    if (!handle)
        return;
    const char *keep = getenv("DK_NO_DLCLOSE");
    if (keep && strcmp(keep, "1") == 0)
        return;
    dlclose(handle);
}

/* Shuts one plugin down and closes its library; its types must be gone. */
static void plugin_close(dkh_plugin_rec *p)
{
    if (p->pub.desc && p->pub.desc->shutdown)
        p->pub.desc->shutdown();
    dkh_library_close(p->pub.handle);
    /* The mapping (if DK_NO_DLCLOSE keeps one) survives the unlink. */
    if (p->private_copy)
        unlink(p->pub.loaded_path);
    dkh_plugin_rec_free(p);
}

void dkh_refusal_fini(dkh_refusal *f)
{
    free(f->path);
    free(f->reason);
    free(f->plugin_name);
    for (size_t i = 0; i < f->n_attempted; i++)
        free(f->attempted[i]);
    free(f->attempted);
}

void dkh_registry_free(dkh_registry *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_types; i++)
        dkh_type_free(r->types[i]);
    free(r->types);
    /* Later plugins may depend on what earlier ones set up; close in reverse. */
    for (size_t i = r->n_plugins; i-- > 0;)
        plugin_close(r->plugins[i]);
    free(r->plugins);
    for (size_t i = 0; i < r->n_refusals; i++)
        dkh_refusal_fini(&r->refusals[i]);
    free(r->refusals);
    if (current_registry == r)
        current_registry = NULL;
    free(r);
}

void dkh_registry_set_current(dkh_registry *r)
{
    current_registry = r;
}

dkh_registry *dkh_registry_current(void)
{
    return current_registry;
}

/* ---- types ---------------------------------------------------------- */

static int cmp_kn(const char *k1, const char *n1, const char *k2, const char *n2)
{
    int c = strcmp(k1, k2);
    return c ? c : strcmp(n1, n2);
}

/* Index of the first type not less than (kind, name). */
static size_t lower_bound(const dkh_registry *r, const char *kind, const char *name)
{
    size_t lo = 0, hi = r->n_types;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const dk_type_info *t = &r->types[mid]->info;
        if (cmp_kn(t->kind, t->name, kind, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const dkh_type *dkh_reg_lookup(const dkh_registry *r, const char *kind, const char *name)
{
    size_t i = lower_bound(r, kind, name);
    if (i < r->n_types && cmp_kn(r->types[i]->info.kind, r->types[i]->info.name, kind, name) == 0)
        return r->types[i];
    return NULL;
}

const dkh_type *dkh_registry_find(const dkh_registry *r, const char *kind, const char *name)
{
    if (!r || !name)
        return NULL;
    if (kind)
        return dkh_reg_lookup(r, kind, name);
    const dkh_type *found = NULL;
    for (size_t i = 0; i < r->n_types; i++) {
        if (strcmp(r->types[i]->info.name, name) == 0) {
            if (found)
                return NULL; /* ambiguous without a kind */
            found = r->types[i];
        }
    }
    return found;
}

static dk_iface builtin_iface(const char *kind)
{
#define BUILTIN_(k, iface)                                                                         \
    if (strcmp(kind, #k) == 0)                                                                     \
        return iface;
    DK_BUILTIN_KIND_LIST(BUILTIN_)
#undef BUILTIN_
    return (dk_iface)0;
}

dk_iface dkh_registry_kind_iface(const dkh_registry *r, const char *kind)
{
    if (!kind)
        return (dk_iface)0;
    dk_iface b = builtin_iface(kind);
    if (b)
        return b;
    /* A new kind's interface was fixed by its first type, and every later
     * type was checked against it, so any one of them tells. */
    size_t i = lower_bound(r, kind, "");
    if (i < r->n_types && strcmp(r->types[i]->info.kind, kind) == 0)
        return r->types[i]->info.iface;
    return (dk_iface)0;
}

dk_iface dkh_reg_kind_iface_staged(const dkh_registry *r, const dk_registrar *g, const char *kind)
{
    dk_iface i = dkh_registry_kind_iface(r, kind);
    if (i || !g)
        return i;
    for (size_t k = 0; k < g->n_pending; k++)
        if (strcmp(g->pending[k]->info.kind, kind) == 0)
            return g->pending[k]->info.iface;
    return (dk_iface)0;
}

static void insert_type(dkh_registry *r, dkh_type *t)
{
    r->types = grow(r->types, &r->cap_types, r->n_types, sizeof *r->types);
    size_t i = lower_bound(r, t->info.kind, t->info.name);
    memmove(&r->types[i + 1], &r->types[i], (r->n_types - i) * sizeof *r->types);
    r->types[i] = t;
    r->n_types++;
}

/* ---- plugins and sessions -------------------------------------------- */

const dkh_plugin_rec *dkh_reg_plugin_by_name(const dkh_registry *r, const char *name)
{
    for (size_t i = 0; i < r->n_plugins; i++)
        if (strcmp(r->plugins[i]->pub.name, name) == 0)
            return r->plugins[i];
    return NULL;
}

bool dkh_reg_has_base(const dkh_registry *r, const char *base)
{
    for (size_t i = 0; i < r->n_plugins; i++)
        if (strcmp(r->plugins[i]->base, base) == 0)
            return true;
    return false;
}

void dkh_registrar_init(dk_registrar *g, dkh_registry *r, const dkh_plugin_rec *p, const char *path)
{
    memset(g, 0, sizeof *g);
    g->reg = r;
    g->plugin = p;
    g->path = path;
}

void dkh_registrar_fini(dk_registrar *g)
{
    for (size_t i = 0; i < g->n_pending; i++)
        dkh_type_free(g->pending[i]);
    free(g->pending);
    for (size_t i = 0; i < g->n_attempted; i++)
        free(g->attempted[i]);
    free(g->attempted);
    free(g->fail_msg);
    memset(g, 0, sizeof *g);
}

void dkh_reg_commit(dkh_registry *r, dkh_plugin_rec *p, dk_registrar *g)
{
    if (p) {
        r->plugins = grow(r->plugins, &r->cap_plugins, r->n_plugins, sizeof *r->plugins);
        r->plugins[r->n_plugins++] = p;
    }
    for (size_t i = 0; i < g->n_pending; i++)
        insert_type(r, g->pending[i]);
    g->n_pending = 0;
}

void dkh_reg_replace(dkh_registry *r, dkh_plugin_rec *old, dkh_plugin_rec *p, dk_registrar *g)
{
    size_t w = 0;
    for (size_t i = 0; i < r->n_types; i++) {
        if (r->types[i]->plugin == &old->pub)
            dkh_type_free(r->types[i]);
        else
            r->types[w++] = r->types[i];
    }
    r->n_types = w;
    size_t at = r->n_plugins;
    for (size_t i = 0; i < r->n_plugins; i++)
        if (r->plugins[i] == old)
            at = i;
    DKH_ASSERT(at < r->n_plugins && "replacing a plugin the registry does not hold");
    r->plugins[at] = p;
    for (size_t i = 0; i < g->n_pending; i++)
        insert_type(r, g->pending[i]);
    g->n_pending = 0;
}

void dkh_registry_set_private_copies(dkh_registry *r, bool on)
{
    r->private_copies = on;
}

bool dkh_reg_private_copies(const dkh_registry *r)
{
    return r->private_copies;
}

void dkh_registry_run_begin(dkh_registry *r)
{
    if (r)
        r->active_runs++;
}

void dkh_registry_run_end(dkh_registry *r)
{
    if (r) {
        DKH_ASSERT(r->active_runs > 0 && "run_end without run_begin");
        r->active_runs--;
    }
}

bool dkh_registry_run_active(const dkh_registry *r)
{
    return r && r->active_runs > 0;
}

void dkh_reg_add_refusal(dkh_registry *r, dkh_refusal *ref)
{
    r->refusals = grow(r->refusals, &r->cap_refusals, r->n_refusals, sizeof *r->refusals);
    r->refusals[r->n_refusals++] = *ref;
    memset(ref, 0, sizeof *ref);
}

/* ---- iteration --------------------------------------------------------- */

size_t dkh_registry_n_plugins(const dkh_registry *r)
{
    return r->n_plugins;
}

const dkh_plugin *dkh_registry_plugin_at(const dkh_registry *r, size_t i)
{
    return i < r->n_plugins ? &r->plugins[i]->pub : NULL;
}

size_t dkh_registry_n_types(const dkh_registry *r)
{
    return r->n_types;
}

const dkh_type *dkh_registry_type_at(const dkh_registry *r, size_t i)
{
    return i < r->n_types ? r->types[i] : NULL;
}

size_t dkh_registry_n_refusals(const dkh_registry *r)
{
    return r->n_refusals;
}

const dkh_refusal *dkh_registry_refusal_at(const dkh_registry *r, size_t i)
{
    return i < r->n_refusals ? &r->refusals[i] : NULL;
}

/* ---- live objects and unloading ---------------------------------------- */

void dkh_reg_object_created(const dkh_type *t)
{
    if (t->plugin)
        atomic_fetch_add(&((dkh_plugin_rec *)t->plugin)->live, 1);
}

void dkh_reg_object_destroyed(const dkh_type *t)
{
    if (t->plugin)
        atomic_fetch_sub(&((dkh_plugin_rec *)t->plugin)->live, 1);
}

size_t dkh_registry_live_objects(const dkh_registry *r, const dkh_plugin *p)
{
    (void)r;
    return p ? atomic_load(&((const dkh_plugin_rec *)p)->live) : 0;
}

dk_status dkh_registry_unload(dkh_registry *r, const char *plugin_name)
{
    size_t at = r->n_plugins;
    for (size_t i = 0; i < r->n_plugins; i++)
        if (strcmp(r->plugins[i]->pub.name, plugin_name) == 0)
            at = i;
    if (at == r->n_plugins)
        return dk_fail(DK_ERR_NOT_FOUND, "cannot unload plugin '%s': no such plugin is loaded",
                       plugin_name);
    dkh_plugin_rec *p = r->plugins[at];
    size_t live = atomic_load(&p->live);
    /* Closing the library under a live object would leave it calling into
     * unmapped code; the caller must destroy every instance first. */
    if (live > 0)
        return dk_fail(DK_ERR_PLUGIN,
                       "cannot unload plugin '%s' (%s): %zu object%s of its types %s still alive",
                       plugin_name, p->pub.path, live, live == 1 ? "" : "s",
                       live == 1 ? "is" : "are");
    size_t w = 0;
    for (size_t i = 0; i < r->n_types; i++) {
        if (r->types[i]->plugin == &p->pub)
            dkh_type_free(r->types[i]);
        else
            r->types[w++] = r->types[i];
    }
    r->n_types = w;
    memmove(&r->plugins[at], &r->plugins[at + 1], (r->n_plugins - at - 1) * sizeof *r->plugins);
    r->n_plugins--;
    plugin_close(p);
    return DK_OK;
}

/* ---- explaining a missing type ---------------------------------------- */

/* The part of a refusal reason after "<path>: ", so it reads well after
 * "plugin file <path> was refused: ". */
static const char *reason_tail(const dkh_refusal *f)
{
    size_t n = strlen(f->path);
    if (strncmp(f->reason, f->path, n) == 0 && strncmp(f->reason + n, ": ", 2) == 0)
        return f->reason + n + 2;
    return f->reason;
}

static bool attempted(const dkh_refusal *f, const char *kind, const char *name)
{
    for (size_t i = 0; i < f->n_attempted; i++) {
        const char *a = f->attempted[i];
        const char *slash = strchr(a, '/');
        if (!slash || strcmp(slash + 1, name) != 0)
            continue;
        if (!kind || ((size_t)(slash - a) == strlen(kind) && strncmp(a, kind, strlen(kind)) == 0))
            return true;
    }
    return false;
}

/* Appends " (did you mean 'X'?)" when one of cands is close to word. */
static void suggest(const char *word, const char **cands, size_t n, dkh_buf *out)
{
    const char *best = dkh_closest(word, cands, n);
    if (best)
        dkh_buf_printf(out, " (did you mean '%s'?)", best);
}

void dkh_registry_explain_missing(const dkh_registry *r, const char *kind, const char *name,
                                  dkh_buf *out)
{
    const char **cands = malloc((r->n_types + 16) * sizeof *cands);
    DKH_ASSERT(cands != NULL);
    size_t n = 0;

    if (kind && !dkh_registry_kind_iface(r, kind)) {
        /* The kind itself is unknown: the likelier typo is in the kind. */
#define KIND_(k, iface) cands[n++] = #k;
        DK_BUILTIN_KIND_LIST(KIND_)
#undef KIND_
        dkh_buf_printf(out, "unknown type '%s': no plugin provides kind '%s'", name, kind);
        suggest(kind, cands, n, out);
    } else {
        const char *other_kind = NULL;
        size_t n_same = 0;
        for (size_t i = 0; i < r->n_types; i++) {
            const dk_type_info *t = &r->types[i]->info;
            if (!kind || strcmp(t->kind, kind) == 0)
                cands[n++] = t->name;
            if (strcmp(t->name, name) == 0) {
                other_kind = t->kind;
                n_same++;
            }
        }
        if (!kind && n_same > 1) {
            dkh_buf_printf(out, "type '%s' is ambiguous: it is registered under", name);
            const char *sep = " ";
            for (size_t i = 0; i < r->n_types; i++) {
                if (strcmp(r->types[i]->info.name, name) == 0) {
                    dkh_buf_printf(out, "%s%s", sep, r->types[i]->info.kind);
                    sep = ", ";
                }
            }
            dkh_buf_puts(out, " kinds");
        } else {
            if (kind)
                dkh_buf_printf(out, "unknown %s type '%s'", kind, name);
            else
                dkh_buf_printf(out, "unknown type '%s'", name);
            if (kind && other_kind)
                dkh_buf_printf(out, " (there is a %s type '%s', which is not a %s)", other_kind,
                               name, kind);
            else
                suggest(name, cands, n, out);
        }
    }
    free(cands);

    /* Refused plugins that tried to register exactly this name are the
     * likeliest cause; otherwise any refusal may be (it never got to init). */
    size_t named = 0, n_refused = 0;
    const dkh_refusal *first = NULL;
    for (size_t i = 0; i < r->n_refusals; i++) {
        const dkh_refusal *f = &r->refusals[i];
        if (f->not_a_plugin)
            continue;
        n_refused++;
        if (!first)
            first = f;
        if (attempted(f, kind, name)) {
            dkh_buf_printf(out, "; plugin file %s was refused: %s", f->path, reason_tail(f));
            named++;
        }
    }
    if (!named && n_refused)
        dkh_buf_printf(out, "; note: %zu plugin file%s refused, first: %s", n_refused,
                       n_refused == 1 ? " was" : "s were", first->reason);
}

const char *dkh_iface_name(dk_iface iface)
{
    switch (iface) {
    case DK_IFACE_MODULE:
        return "module";
    case DK_IFACE_DATASET:
        return "dataset";
    case DK_IFACE_TRANSFORM:
        return "transform";
    case DK_IFACE_HOOK:
        return "hook";
    case DK_IFACE_METRIC:
        return "metric";
    case DK_IFACE_OPTIMIZER:
        return "optimizer";
    case DK_IFACE_LR_SCHEDULER:
        return "lr_scheduler";
    default:
        return "?";
    }
}
