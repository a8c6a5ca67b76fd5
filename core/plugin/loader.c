/* core/plugin/loader.c — opening plugin files and deciding whether to trust
 * them.
 *
 * Each step of a load is checked before the next one relies on it, in the
 * order that keeps every read safe: the library opens, it has the entry
 * symbol, the entry returns a descriptor, the descriptor has our magic, an
 * ABI major we speak, a size that covers the fields we read, an ABI minor we
 * provide, the required strings and an init. Only then does plugin code run.
 * Every refusal is one line naming the file, is recorded in the registry,
 * and leaves the registry as it was: types registered during init are staged
 * (see register.c) and simply dropped, and the library is closed again.
 *
 * In a sweep the registry maps unloadable plugins from private copies, and a
 * reload (reload.c) loads the next build of a plugin through the same steps:
 * its types may take the place of the old build's, and a refusal is only a
 * message, since the old build stays.
 */
#include "host_api.h"
#include "internal.h"

#include "../tensor/custom_op.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What a refusal needs besides its message. */
typedef struct refusal_ctx {
    dkh_registry *r;
    const char *path;
    const char *plugin_name; /* from the descriptor once readable */
    dk_registrar *g;         /* the init session, for what it attempted */
    bool not_a_plugin;
    bool quiet;              /* a reload: the message only, no refusal recorded */
} refusal_ctx;

/* One load: a file found in a plugin directory, or the next build of a
 * loaded plugin (a reload). */
typedef struct load_req {
    const char *path;         /* the plugin file as found: messages, pub.path */
    const char *open_path;    /* a private copy of path to map instead; NULL: path */
    const dkh_file_id *id;    /* what open_path holds; NULL: read path's */
    dkh_plugin_rec *replaces; /* a reload: the plugin the new build replaces */
} load_req;

/* Records the refusal and sets the error slot to "<path>: <message>". A
 * message that already starts with the path (one dk_register wrote) is
 * kept as it is rather than naming the file twice. */
static dk_status refuse(refusal_ctx *c, dk_status status, const char *fmt, ...) DK_PRINTF(3, 4);
static dk_status refuse(refusal_ctx *c, dk_status status, const char *fmt, ...)
{
    dkh_buf msg = DKH_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    dkh_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    size_t n = strlen(c->path);
    const char *text = dkh_buf_str(&msg);
    char *reason = strncmp(text, c->path, n) == 0 && text[n] == ':'
                       ? dkh_strdup(text)
                       : dkh_asprintf("%s: %s", c->path, text);
    dkh_buf_fini(&msg);

    dkh_refusal f;
    memset(&f, 0, sizeof f);
    f.path = dkh_strdup(c->path);
    f.reason = reason;
    f.status = status;
    f.not_a_plugin = c->not_a_plugin;
    f.plugin_name = c->plugin_name ? dkh_strdup(c->plugin_name) : NULL;
    if (c->g) {
        /* The attempted list moves to the refusal; the session forgets it. */
        f.attempted = c->g->attempted;
        f.n_attempted = c->g->n_attempted;
        c->g->attempted = NULL;
        c->g->n_attempted = c->g->cap_attempted = 0;
    }
    dk_fail(status, "%s", f.reason);
    if (c->quiet) {
        dkh_refusal_fini(&f);
        return status;
    }
    dkh_reg_add_refusal(c->r, &f);
    return status;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static bool missing(const char *s)
{
    return !s || !s[0];
}

/* The four magic bytes as hex and as text, for a message a user can compare
 * with what `xxd` shows. */
static void describe_magic(const unsigned char *b, char out[48])
{
    char text[5];
    for (int i = 0; i < 4; i++)
        text[i] = (b[i] >= 0x20 && b[i] < 0x7f) ? (char)b[i] : '.';
    text[4] = '\0';
    snprintf(out, 48, "%02x %02x %02x %02x (\"%s\")", b[0], b[1], b[2], b[3], text);
}

/* Runs init in a registration session and either commits what it
 * registered together with the plugin, or refuses and drops it all. A
 * failed init gets no shutdown call: it never finished initialising, so
 * undoing its partial work is its own job before it returns. */
static dk_status run_init(dkh_registry *r, dkh_plugin_rec *p, const dk_plugin_desc *d,
                          refusal_ctx *c, dkh_plugin_rec *replaces)
{
    dk_registrar g;
    dkh_registrar_init(&g, r, p, p->pub.path);
    g.replacing = replaces;
    c->g = &g;
    dk_clear_error();
    dk_status s = d->init(dkh_host_api(), &g);
    dk_status out = DK_OK;
    if (g.failed != DK_OK) {
        /* A dk_register call failed (a duplicate, a malformed type): that
         * message says what is wrong, whether init passed the failure on or
         * ignored it. A plugin that ignored it did initialise, so it gets its
         * shutdown call before closing. */
        out = refuse(c, g.failed, "%s", g.fail_msg);
        if (s == DK_OK && d->shutdown)
            d->shutdown();
    } else if (s != DK_OK) {
        const char *msg = dk_last_error();
        if (missing(msg) || dk_last_status() == DK_OK)
            out = refuse(c, s, "init failed with %s and left no message", dk_status_name(s));
        else
            out = refuse(c, s, "init failed: %s", msg);
    }
    if (out == DK_OK && replaces)
        dkh_reg_replace(r, replaces, p, &g);
    else if (out == DK_OK)
        dkh_reg_commit(r, p, &g);
    /* Custom ops staged by this init become callable with the plugin, or go
     * with its refusal. */
    dkh_custom_ops_finish(&g, out == DK_OK);
    dkh_registrar_fini(&g);
    c->g = NULL;
    return out;
}

static dk_status load(dkh_registry *r, const load_req *q)
{
    const char *path = q->path;
    refusal_ctx c = {.r = r, .path = path, .quiet = q->replaces != NULL};
    dkh_file_id id;
    if (q->id) {
        id = *q->id;
    } else if (!dkh_file_id_read(path, dkh_reg_private_copies(r), &id)) {
        memset(&id, 0, sizeof id);
    }
    const char *target = q->open_path ? q->open_path : path;
    /* dlopen searches the library path for a bare name; a plugin file is
     * always meant literally. */
    char *open_path = strchr(target, '/') ? dkh_strdup(target) : dkh_asprintf("./%s", target);
    dlerror();
    void *h = dlopen(open_path, RTLD_NOW | RTLD_LOCAL);
    free(open_path);
    if (!h) {
        const char *e = dlerror();
        return refuse(&c, DK_ERR_PLUGIN, "cannot load: %s", e ? e : "dlopen failed");
    }
    dk_plugin_entry_fn entry;
    /* POSIX sanctions this conversion of dlsym's result to a function pointer. */
    *(void **)(&entry) = dlsym(h, DK_PLUGIN_ENTRY_SYMBOL);
    if (!entry) {
        dkh_library_close(h);
        c.not_a_plugin = true;
        return refuse(&c, DK_ERR_PLUGIN, "not a dkhost plugin (no %s)", DK_PLUGIN_ENTRY_SYMBOL);
    }

    dk_status s = DK_OK;
    dkh_plugin_rec *p = NULL;
    const dk_plugin_desc *d = entry();
    if (!d) {
        s = refuse(&c, DK_ERR_PLUGIN, "%s returned NULL", DK_PLUGIN_ENTRY_SYMBOL);
        goto fail;
    }
    uint32_t magic;
    memcpy(&magic, d, sizeof magic);
    if (magic != DK_PLUGIN_MAGIC) {
        char found[48];
        describe_magic((const unsigned char *)d, found);
        s = refuse(&c, DK_ERR_PLUGIN,
                   "bad descriptor magic %s, expected 44 4b 50 4c (\"DKPL\"); "
                   "not a dkhost plugin descriptor",
                   found);
        goto fail;
    }
    /* Within one major the first fields never move; across majors nothing
     * else can be trusted, so the major is checked before the size. */
    if (d->abi_major != DK_ABI_MAJOR) {
        s = refuse(&c, DK_ERR_ABI,
                   "built for dk ABI %u.%u, this dkhost has ABI %d.%d; "
                   "rebuild the plugin against this SDK",
                   d->abi_major, d->abi_minor, DK_ABI_MAJOR, DK_ABI_MINOR);
        goto fail;
    }
    if (d->struct_size < DK_PLUGIN_DESC_MIN_SIZE) {
        s = refuse(&c, DK_ERR_PLUGIN,
                   "descriptor struct_size %u is smaller than the %zu bytes of ABI %d.0; "
                   "the descriptor is corrupt (use DK_PLUGIN_DEFINE)",
                   d->struct_size, (size_t)DK_PLUGIN_DESC_MIN_SIZE, DK_ABI_MAJOR);
        goto fail;
    }
    /* Read only what the plugin's descriptor covers: a 1.0 plugin has no
     * `build`, and a newer one has fields we do not know. Within the major
     * the layout is shared, so the name can already label a refusal. */
    dk_plugin_desc dd;
    memset(&dd, 0, sizeof dd);
    memcpy(&dd, d, d->struct_size < sizeof dd ? d->struct_size : sizeof dd);
    c.plugin_name = missing(dd.name) ? NULL : dd.name;
    if (dd.requires_minor > DK_ABI_MINOR) {
        s = refuse(&c, DK_ERR_ABI,
                   "requires dk ABI >= %u.%u (built with %u.%u), this dkhost has ABI %d.%d; "
                   "rebuild it against this SDK or upgrade dkhost",
                   dd.abi_major, dd.requires_minor, dd.abi_major, dd.abi_minor, DK_ABI_MAJOR,
                   DK_ABI_MINOR);
        goto fail;
    }
    if (missing(dd.name) || missing(dd.summary) || missing(dd.license)) {
        const char *what = missing(dd.name)      ? "name"
                           : missing(dd.summary) ? "summary (one line)"
                                                 : "license (an SPDX identifier such as \"MIT\")";
        s = refuse(&c, DK_ERR_PLUGIN, "descriptor has no %s; it is required", what);
        goto fail;
    }
    if (!dd.init) {
        s = refuse(&c, DK_ERR_PLUGIN, "descriptor has no init function");
        goto fail;
    }
    if (q->replaces && strcmp(dd.name, q->replaces->pub.name) != 0) {
        s = refuse(&c, DK_ERR_PLUGIN,
                   "the new build is named '%s', the loaded one '%s'; a reload must keep the "
                   "plugin's name (restart dkhost to load it under the new name)",
                   dd.name, q->replaces->pub.name);
        goto fail;
    }
    const dkh_plugin_rec *twin = dkh_reg_plugin_by_name(r, dd.name);
    if (twin && twin != q->replaces) {
        s = refuse(&c, DK_ERR_DUPLICATE, "plugin name '%s' is already used by %s", dd.name,
                   twin->pub.path);
        goto fail;
    }

    /* In a sweep an unloadable plugin runs from a private copy, so that a
     * rebuild of its file cannot change a mapped library under it. Only
     * the entry function has run so far: closing and mapping the copy
     * instead is safe. */
    if (!q->open_path && !q->replaces && dkh_reg_private_copies(r) &&
        (dd.flags & DK_PLUGIN_UNLOADABLE)) {
        char *copy = NULL;
        dkh_file_id cid;
        s = dkh_private_copy(path, &copy, &cid);
        if (s != DK_OK) {
            s = refuse(&c, s, "%s", dk_last_error());
            goto fail;
        }
        /* Closed for real even under DK_NO_DLCLOSE: a probe that stayed
         * mapped would be the very mapping a rebuild in place corrupts. */
        dlclose(h);
        load_req q2 = *q;
        q2.open_path = copy;
        q2.id = &cid;
        s = load(r, &q2);
        if (s != DK_OK)
            unlink(copy);
        free(copy);
        return s;
    }

    p = calloc(1, sizeof *p);
    DKH_ASSERT(p != NULL);
    p->pub.path = dkh_strdup(path);
    p->pub.loaded_path = dkh_strdup(target);
    p->private_copy = q->open_path != NULL;
    p->file = id;
    p->pub.name = dkh_strdup(dd.name);
    p->pub.version = dkh_strdup(dd.version ? dd.version : "");
    p->pub.summary = dkh_strdup(dd.summary);
    p->pub.license = dkh_strdup(dd.license);
    p->pub.source = dkh_strdup(dd.source ? dd.source : "");
    p->pub.build = dkh_strdup(dd.build ? dd.build : "");
    p->pub.abi_major = dd.abi_major;
    p->pub.abi_minor = dd.abi_minor;
    p->pub.requires_minor = dd.requires_minor;
    p->pub.flags = dd.flags;
    p->pub.handle = h;
    p->pub.desc = d;
    p->base = dkh_strdup(base_name(path));
    atomic_init(&p->live, 0);
    static atomic_uint_fast64_t next_serial = 1;
    p->serial = atomic_fetch_add(&next_serial, 1);

    s = run_init(r, p, &dd, &c, q->replaces);
    if (s == DK_OK)
        return DK_OK;

fail:
    dkh_plugin_rec_free(p);
    dkh_library_close(h);
    return s;
}

dk_status dkh_registry_load_file(dkh_registry *r, const char *path)
{
    load_req q = {.path = path};
    return load(r, &q);
}

dk_status dkh_registry_load_replacement(dkh_registry *r, dkh_plugin_rec *old,
                                        const char *open_path, const dkh_file_id *id)
{
    load_req q = {.path = old->pub.path, .open_path = open_path, .id = id, .replaces = old};
    return load(r, &q);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool ends_with_so(const char *name)
{
    size_t n = strlen(name);
    return n > 3 && strcmp(name + n - 3, ".so") == 0;
}

dk_status dkh_registry_load_dir(dkh_registry *r, const char *dir)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return dk_fail(DK_ERR_IO, "cannot read plugin directory '%s': %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        if (!ends_with_so(e->d_name))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            names = realloc(names, cap * sizeof *names);
            DKH_ASSERT(names != NULL);
        }
        names[n++] = dkh_strdup(e->d_name);
    }
    closedir(dp);
    /* Name order makes loading, and so duplicate resolution and listings,
     * the same on every file system. */
    qsort(names, n, sizeof *names, cmp_names);
    size_t dl = strlen(dir);
    const char *sep = dl && dir[dl - 1] == '/' ? "" : "/";
    for (size_t i = 0; i < n; i++) {
        char *path = dkh_asprintf("%s%s%s", dir, sep, names[i]);
        struct stat st;
        /* Earlier directories shadow later ones, like PATH. */
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && !dkh_reg_has_base(r, names[i])) {
            /* A refusal is recorded in the registry and must not stop the
             * rest of the directory. */
            dk_status s = dkh_registry_load_file(r, path);
            (void)s;
        }
        free(path);
        free(names[i]);
    }
    free(names);
    dk_clear_error();
    return DK_OK;
}
