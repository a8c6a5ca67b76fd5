/* core/cfg/resolve.c — `${a.b.c}` interpolation.
 *
 * A string that is exactly one reference becomes a copy of the referenced
 * node (keeping its type: `lr: ${base_lr}` stays a float); references inside
 * a longer string are replaced by the referenced scalar's text. `\${` stands
 * for a literal `${`. A referenced node is resolved before it is used, so
 * references chain; a stack of the paths in progress turns a cycle into a
 * message such as "a -> b -> a".
 */
#include "cfg_impl.h"

#include <stdlib.h>
#include <string.h>

enum { RS_TODO = 0, RS_BUSY = 1, RS_DONE = 2 };

typedef struct rctx {
    dk_cfg *root;
    const dk_cfg **stack; /* nodes in progress, outermost first */
    size_t n, cap;
} rctx;

static void push(rctx *r, const dk_cfg *node)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        const dk_cfg **s = realloc(r->stack, r->cap * sizeof *s);
        DKH_ASSERT(s != NULL);
        r->stack = s;
    }
    r->stack[r->n++] = node;
}

static const char *shown_path(const dk_cfg *node)
{
    const char *p = dk_cfg_path(node);
    return *p ? p : "<root>";
}

static dk_status cycle(rctx *r, const dk_cfg *again)
{
    size_t start = 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->stack[i] == again) {
            start = i;
            break;
        }
    dkh_buf b = DKH_BUF_INIT;
    for (size_t i = start; i < r->n; i++)
        dkh_buf_printf(&b, "%s -> ", shown_path(r->stack[i]));
    dkh_buf_puts(&b, shown_path(again));
    const dk_cfg *first = r->stack[start];
    dk_status s = dk_fail(DK_ERR_CONFIG, "%s: %s: interpolation cycle: %s", first->loc.where,
                          shown_path(first), dkh_buf_str(&b));
    dkh_buf_fini(&b);
    return s;
}

static dk_status resolve_tree(rctx *r, dk_cfg *node);

/* Finds and fully resolves the target of reference `ref` made by `from`. */
static dk_status lookup(rctx *r, const dk_cfg *from, const char *ref, dk_cfg **out)
{
    char **segs;
    size_t n;
    char *err;
    *out = NULL;
    if (!dkh_cfgi_split_path(ref, &segs, &n, &err)) {
        dk_status s = dk_fail(DK_ERR_CONFIG, "%s: %s: bad reference '${%s}': %s", from->loc.where,
                              shown_path(from), ref, err);
        free(err);
        return s;
    }
    dkh_cfgi_free_segs(segs, n);
    dk_cfg *t = dkh_cfg_get_mut(r->root, ref);
    if (!t)
        return dk_fail(DK_ERR_CONFIG, "%s: %s: reference '${%s}' names no key in the config",
                       from->loc.where, shown_path(from), ref);
    DK_TRY(resolve_tree(r, t));
    *out = t;
    return DK_OK;
}

/* Resolves one string node. */
static dk_status resolve_string(rctx *r, dk_cfg *node)
{
    const char *s = node->text;
    size_t len = strlen(s);
    /* Whole-node reference: exactly "${path}" with no nested braces. */
    if (len > 3 && s[0] == '$' && s[1] == '{' && s[len - 1] == '}' &&
        !memchr(s + 2, '}', len - 3) && !memchr(s + 2, '$', len - 3)) {
        char *ref = dkh_asprintf("%.*s", (int)(len - 3), s + 2);
        dk_cfg *t;
        dk_status st = lookup(r, node, ref, &t);
        free(ref);
        DK_TRY(st);
        dk_cfg *copy = dkh_cfgi_clone(t);
        /* The copy stands where the reference was written. */
        dkh_loc_copy(&copy->loc, &node->loc);
        dkh_cfgi_become(node, copy);
        return DK_OK;
    }
    if (!strstr(s, "${"))
        return DK_OK;
    dkh_buf b = DKH_BUF_INIT;
    const char *p = s;
    while (*p) {
        if (p[0] == '\\' && p[1] == '$' && p[2] == '{') {
            dkh_buf_puts(&b, "${");
            p += 3;
            continue;
        }
        if (p[0] == '$' && p[1] == '{') {
            const char *end = strchr(p + 2, '}');
            if (!end) {
                dkh_buf_fini(&b);
                return dk_fail(DK_ERR_CONFIG, "%s: %s: unterminated '${' in '%s'", node->loc.where,
                               shown_path(node), s);
            }
            char *ref = dkh_asprintf("%.*s", (int)(end - p - 2), p + 2);
            dk_cfg *t;
            dk_status st = lookup(r, node, ref, &t);
            if (st == DK_OK && (t->kind == DK_CFG_MAP || t->kind == DK_CFG_LIST))
                st = dk_fail(DK_ERR_CONFIG,
                             "%s: %s: '${%s}' is %s and cannot be inserted into a string",
                             node->loc.where, shown_path(node), ref,
                             t->kind == DK_CFG_MAP ? "a map" : "a list");
            free(ref);
            if (st != DK_OK) {
                dkh_buf_fini(&b);
                return st;
            }
            dkh_buf_puts(&b, t->text);
            p = end + 1;
            continue;
        }
        dkh_buf_putc(&b, *p++);
    }
    free(node->text);
    node->text = dkh_buf_take(&b);
    return DK_OK;
}

static dk_status resolve_tree(rctx *r, dk_cfg *node)
{
    if (node->rstate == RS_DONE)
        return DK_OK;
    if (node->rstate == RS_BUSY)
        return cycle(r, node);
    bool container = node->kind == DK_CFG_MAP || node->kind == DK_CFG_LIST;
    if (!container && node->kind != DK_CFG_STRING) {
        node->rstate = RS_DONE;
        return DK_OK;
    }
    node->rstate = RS_BUSY;
    push(r, node);
    dk_status s = DK_OK;
    if (container) {
        for (size_t i = 0; i < node->n && s == DK_OK; i++)
            s = resolve_tree(r, node->ents[i].val);
    } else {
        s = resolve_string(r, node);
    }
    r->n--;
    /* Whatever a reference copied in is resolved already. */
    node->rstate = s == DK_OK ? RS_DONE : RS_TODO;
    return s;
}

/* Containers are walked again on every call (an override may have added a
 * reference below them); strings already resolved stay resolved, so a
 * literal `${` made from `\${` is never read as a reference later. */
static void reopen_containers(dk_cfg *node)
{
    if (node->kind != DK_CFG_MAP && node->kind != DK_CFG_LIST)
        return;
    node->rstate = RS_TODO;
    for (size_t i = 0; i < node->n; i++)
        reopen_containers(node->ents[i].val);
}

dk_status dkh_cfg_resolve(dk_cfg *root)
{
    if (!root)
        return dk_fail(DK_ERR_ARG, "dkh_cfg_resolve: NULL config");
    reopen_containers(root);
    rctx r = {.root = root};
    dk_status s = resolve_tree(&r, root);
    free(r.stack);
    return s;
}
