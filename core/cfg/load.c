/* core/cfg/load.c — config files and `_base_` inheritance.
 *
 * A file may name one or more base files (relative to itself). Each base is
 * loaded the same way, recursively; the bases merge left to right, then the
 * file merges over them. Maps deep-merge, anything else replaces, and a map
 * carrying `_delete_: true` replaces the base's map wholesale. The chain of
 * files being loaded is kept so an inheritance cycle can be reported as the
 * list of files that form it.
 */
#include "cfg_impl.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The files being loaded, outermost first: display name and real path. */
typedef struct chain {
    const char *shown;
    const char *real;
    const struct chain *up;
} chain;

static dk_status read_file(const char *path, char **text, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return dk_fail(DK_ERR_IO, "cannot read config '%s': %s", path, strerror(errno));
    dkh_buf b = DKH_BUF_INIT;
    char chunk[8192];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        dkh_buf_putn(&b, chunk, got);
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        dkh_buf_fini(&b);
        return dk_fail(DK_ERR_IO, "cannot read config '%s': read error", path);
    }
    *len = b.len;
    *text = dkh_buf_take(&b);
    return DK_OK;
}

/* True when a map says `_delete_: true`. */
static bool wants_delete(const dk_cfg *map)
{
    long i = dkh_cfgi_find(map, "_delete_");
    return i >= 0 && map->ents[i].val->kind == DK_CFG_BOOL && map->ents[i].val->v.b;
}

/* Merges src over dst (both maps); src's nodes move into dst and src is
 * freed. A later key keeps the earlier key's position but takes the later
 * location, so messages point at the value that won. */
static void merge_into(dk_cfg *dst, dk_cfg *src)
{
    while (src->n > 0) {
        char *key = dkh_strdup(src->ents[0].key);
        dkh_loc kloc = {0};
        dkh_loc_copy(&kloc, &src->ents[0].kloc);
        dk_cfg *val = dkh_cfgi_take(src, 0);
        long j = dkh_cfgi_find(dst, key);
        if (j < 0) {
            dkh_cfgi_append(dst, key, &kloc, val);
        } else {
            dk_cfg *old = dst->ents[j].val;
            dkh_loc_copy(&dst->ents[j].kloc, &kloc);
            if (old->kind == DK_CFG_MAP && val->kind == DK_CFG_MAP && !wants_delete(val)) {
                /* The merged map takes the later file's location too. */
                dkh_loc_copy(&old->loc, &val->loc);
                merge_into(old, val);
            } else {
                dkh_cfgi_replace(dst, (size_t)j, val);
            }
        }
        free(key);
        dkh_loc_fini(&kloc);
    }
    dkh_cfg_free(src);
}

/* Removes every `_delete_` key below node: it has done its work. */
static void strip_delete(dk_cfg *node)
{
    if (node->kind == DK_CFG_MAP) {
        long i = dkh_cfgi_find(node, "_delete_");
        if (i >= 0)
            dkh_cfgi_remove(node, (size_t)i);
    }
    for (size_t i = 0; i < node->n; i++)
        strip_delete(node->ents[i].val);
}

/* dir of path + rel, unless rel is absolute. */
static char *resolve_rel(const char *path, const char *rel)
{
    if (rel[0] == '/')
        return dkh_strdup(rel);
    const char *slash = strrchr(path, '/');
    if (!slash)
        return dkh_strdup(rel);
    return dkh_asprintf("%.*s/%s", (int)(slash - path), path, rel);
}

static dk_status load_rec(const char *path, const chain *up, const dkh_loc *from, dk_cfg **out);

static dk_status cycle_error(const char *path, const chain *up, const char *real,
                             const dkh_loc *from)
{
    /* Find where the cycle starts, then list the chain from there. */
    const chain *links[256];
    size_t n = 0;
    for (const chain *c = up; c && n < 256; c = c->up)
        links[n++] = c;
    dkh_buf b = DKH_BUF_INIT;
    size_t start = n;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(links[i]->real, real)) {
            start = i;
            break;
        }
    for (size_t i = start + 1; i-- > 0;) {
        if (i >= n)
            continue;
        dkh_buf_printf(&b, "%s -> ", links[i]->shown);
    }
    dkh_buf_puts(&b, path);
    dk_status s =
        dk_fail(DK_ERR_CONFIG, "%s: _base_ inheritance cycle: %s", from->where, dkh_buf_str(&b));
    dkh_buf_fini(&b);
    return s;
}

/* Loads one base named by the `_base_` entry `ref` of the file `including`. */
static dk_status load_base(const char *including, const dk_cfg *ref, const chain *up, dk_cfg **out)
{
    *out = NULL;
    if (ref->kind != DK_CFG_STRING || !*ref->text) {
        char *got = dkh_cfgi_describe(ref);
        dk_status s =
            dk_fail(DK_ERR_CONFIG, "%s: _base_: expected a file name, got %s", ref->loc.where, got);
        free(got);
        return s;
    }
    char *path = resolve_rel(including, ref->text);
    FILE *f = fopen(path, "rb");
    if (!f) {
        dk_status s = dk_fail(DK_ERR_CONFIG, "%s: _base_: cannot open base config '%s' (%s): %s",
                              ref->loc.where, ref->text, path, strerror(errno));
        free(path);
        return s;
    }
    fclose(f);
    dk_status s = load_rec(path, up, &ref->loc, out);
    free(path);
    return s;
}

static dk_status load_rec(const char *path, const chain *up, const dkh_loc *from, dk_cfg **out)
{
    *out = NULL;
    char real[PATH_MAX];
    if (!realpath(path, real))
        snprintf(real, sizeof real, "%s", path);
    for (const chain *c = up; c; c = c->up)
        if (!strcmp(c->real, real))
            return cycle_error(path, up, real, from);

    char *text = NULL;
    size_t len = 0;
    DK_TRY(read_file(path, &text, &len));
    dk_cfg *root;
    dk_status s = dkh_cfgi_parse(text, len, path, &root);
    free(text);
    if (s != DK_OK)
        return s;
    if (root->kind == DK_CFG_NULL && root->loc.line == 1 && root->text && !*root->text) {
        /* An empty file is an empty config. */
        dkh_cfg_free(root);
        root = dkh_cfgi_new(DK_CFG_MAP, path, 1, 1);
    }
    if (root->kind != DK_CFG_MAP) {
        char *got = dkh_cfgi_describe(root);
        s = dk_fail(DK_ERR_CONFIG, "%s: a config file must hold a map of keys, got %s",
                    root->loc.where, got);
        free(got);
        dkh_cfg_free(root);
        return s;
    }

    long bi = dkh_cfgi_find(root, "_base_");
    if (bi >= 0) {
        dk_cfg *bases = dkh_cfgi_take(root, (size_t)bi);
        chain link = {path, real, up};
        dk_cfg *acc = NULL;
        size_t nb = bases->kind == DK_CFG_LIST ? bases->n : 1;
        for (size_t i = 0; i < nb && s == DK_OK; i++) {
            const dk_cfg *ref = bases->kind == DK_CFG_LIST ? bases->ents[i].val : bases;
            dk_cfg *base;
            s = load_base(path, ref, &link, &base);
            if (s != DK_OK)
                break;
            if (!acc)
                acc = base;
            else
                merge_into(acc, base);
        }
        dkh_cfg_free(bases);
        if (s != DK_OK) {
            dkh_cfg_free(acc);
            dkh_cfg_free(root);
            return s;
        }
        if (acc && !wants_delete(root)) {
            /* The result is the file's own root (its location), holding the
             * bases' keys first and its own merged over them. */
            dk_cfg *own = dkh_cfgi_new(DK_CFG_MAP, path, root->loc.line, root->loc.col);
            dkh_cfgi_become(own, root); /* own now holds root's entries */
            root = dkh_cfgi_new(DK_CFG_MAP, path, own->loc.line, own->loc.col);
            dkh_cfgi_become(root, acc);
            merge_into(root, own);
        } else {
            dkh_cfg_free(acc);
        }
    }
    strip_delete(root);
    *out = root;
    return DK_OK;
}

dk_status dkh_cfg_load(const char *path, dk_cfg **out)
{
    *out = NULL;
    if (!path)
        return dk_fail(DK_ERR_ARG, "dkh_cfg_load: NULL path");
    dkh_loc none = {0};
    dkh_loc_set(&none, path, 0, 0);
    dk_status s = load_rec(path, NULL, &none, out);
    dkh_loc_fini(&none);
    return s;
}
