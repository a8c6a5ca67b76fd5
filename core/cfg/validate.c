/* core/cfg/validate.c — checking a config against parameter schemas.
 *
 * The whole tree is walked once, against the top-level schema and, through
 * every nested `type:` map, against the schema of the type it names. Every
 * problem is collected rather than stopping at the first, because a user
 * fixing a config wants the full list in one run; the list is sorted by
 * file and line and returned as one DK_ERR_CONFIG message, one problem per
 * line. Defaults are filled in on the way, so a plugin's `create` reads
 * every parameter without repeating its default.
 *
 * The per-value rules (type, null, range, choices) live in
 * dkh_cfgi_check_value so that schema_check.c applies the very same rules
 * to the defaults a plugin declares.
 */
#include "../plugin/registry.h"
#include "cfg_impl.h"

#include <stdlib.h>
#include <string.h>

/* ---- per-value rules ------------------------------------------------------ */

const char *dkh_param_type_name(dk_param_type t)
{
    switch (t) {
    case DK_PARAM_ANY:
        return "any";
    case DK_PARAM_INT:
        return "int";
    case DK_PARAM_FLOAT:
        return "float";
    case DK_PARAM_BOOL:
        return "bool";
    case DK_PARAM_STRING:
        return "string";
    case DK_PARAM_LIST:
        return "list";
    case DK_PARAM_MAP:
        return "map";
    case DK_PARAM_OBJECT:
        return "object";
    case DK_PARAM_OBJECT_LIST:
        return "object_list";
    case DK_PARAM_OBJECT_MAP:
        return "object_map";
    case DK_PARAM_STRUCT:
        return "struct";
    default:
        return "?";
    }
}

/* What a parameter expects, for "expected X, got Y". */
static char *expected_text(const dk_param *p)
{
    switch (p->type) {
    case DK_PARAM_INT:
        return dkh_strdup("an integer");
    case DK_PARAM_FLOAT:
        return dkh_strdup("a number");
    case DK_PARAM_BOOL:
        return dkh_strdup("true or false");
    case DK_PARAM_STRING:
        return dkh_strdup("a string");
    case DK_PARAM_LIST:
        if (p->elem && p->elem != DK_PARAM_ANY)
            return dkh_asprintf("a list of %s", dkh_param_type_name(p->elem));
        return dkh_strdup("a list");
    case DK_PARAM_OBJECT:
        return dkh_asprintf("a map with 'type:' naming a %s", p->kind ? p->kind : "registered");
    case DK_PARAM_OBJECT_LIST:
        return dkh_asprintf("a list of maps with 'type:' naming a %s",
                            p->kind ? p->kind : "registered type");
    case DK_PARAM_OBJECT_MAP:
        return dkh_asprintf("a map of name: {type: <%s>, ...} entries", p->kind ? p->kind : "type");
    default:
        return dkh_strdup("a map");
    }
}

/* Compares a number node with a bound written as YAML text: <0, 0, >0.
 * Returns false when the bound is not a number. */
static bool compare_bound(const dk_cfg *v, const char *bound, int *cmp)
{
    int64_t bi = 0;
    double bf = 0;
    dk_cfg_kind bk = dkh_cfgi_classify(bound, &bi, &bf);
    if (bk != DK_CFG_INT && bk != DK_CFG_FLOAT)
        return false;
    if (v->kind == DK_CFG_INT && bk == DK_CFG_INT) {
        *cmp = v->v.i < bi ? -1 : v->v.i > bi;
        return true;
    }
    double a = v->kind == DK_CFG_INT ? (double)v->v.i : v->v.f;
    double b = bk == DK_CFG_INT ? (double)bi : bf;
    *cmp = a < b ? -1 : a > b;
    return true;
}

static char *check_range(const dk_param *p, const dk_cfg *v, const char *subject)
{
    int lo = 0, hi = 0;
    bool below = p->min && compare_bound(v, p->min, &lo) && lo < 0;
    bool above = p->max && compare_bound(v, p->max, &hi) && hi > 0;
    /* NaN compares neither below nor above, yet is never in a range. */
    bool nan = v->kind == DK_CFG_FLOAT && v->v.f != v->v.f && (p->min || p->max);
    if (!below && !above && !nan)
        return NULL;
    if (p->min && p->max)
        return dkh_asprintf("%s is out of range [%s, %s]", subject, p->min, p->max);
    if (p->min)
        return dkh_asprintf("%s is less than the minimum %s", subject, p->min);
    return dkh_asprintf("%s is greater than the maximum %s", subject, p->max);
}

static char *check_choices(const dk_param *p, const dk_cfg *v, const char *subject)
{
    if (!p->choices || (v->kind != DK_CFG_STRING && v->kind != DK_CFG_INT))
        return NULL;
    /* Copy the choices so they can be split in place. */
    char *all = dkh_strdup(p->choices);
    const char *cands[256];
    size_t n = 0;
    bool found = false;
    for (char *tok = all, *bar; tok && n < 256; tok = bar ? bar + 1 : NULL) {
        bar = strchr(tok, '|');
        if (bar)
            *bar = '\0';
        cands[n++] = tok;
        if (v->kind == DK_CFG_STRING) {
            found |= strcmp(tok, v->text) == 0;
        } else {
            int64_t ci;
            found |= dkh_cfgi_classify(tok, &ci, NULL) == DK_CFG_INT && ci == v->v.i;
        }
    }
    char *msg = NULL;
    if (!found) {
        const char *close = v->kind == DK_CFG_STRING ? dkh_closest(v->text, cands, n) : NULL;
        if (close)
            msg = dkh_asprintf("%s is not one of %s (did you mean '%s'?)", subject, p->choices,
                               close);
        else
            msg = dkh_asprintf("%s is not one of %s", subject, p->choices);
    }
    free(all);
    return msg;
}

static char *mismatch(const dk_param *p, const dk_cfg *v)
{
    char *want = expected_text(p);
    char *got = dkh_cfgi_describe(v);
    char *msg = dkh_asprintf("expected %s, got %s", want, got);
    free(want);
    free(got);
    return msg;
}

/* The rules of p applied to v alone; list elements are checked here only
 * when `elems` is set (validation checks them itself, to report each at its
 * own location). */
static char *check_value(const dk_param *p, const dk_cfg *v, const char *subject_in, bool elems)
{
    if (p->type == DK_PARAM_ANY)
        return NULL;
    if (v->kind == DK_CFG_NULL) {
        if (p->flags & DK_PARAM_NULLABLE)
            return NULL;
        return mismatch(p, v);
    }
    char *own_subject = NULL;
    const char *subject = subject_in;
    if (!subject)
        subject = own_subject = v->kind == DK_CFG_STRING ? dkh_asprintf("'%s'", v->text)
                                                         : dkh_strdup(v->text ? v->text : "");
    char *msg = NULL;
    switch (p->type) {
    case DK_PARAM_INT:
        if (v->kind != DK_CFG_INT)
            msg = mismatch(p, v);
        else if (!(msg = check_range(p, v, subject)))
            msg = check_choices(p, v, subject);
        break;
    case DK_PARAM_FLOAT:
        if (v->kind != DK_CFG_INT && v->kind != DK_CFG_FLOAT)
            msg = mismatch(p, v);
        else
            msg = check_range(p, v, subject);
        break;
    case DK_PARAM_BOOL:
        if (v->kind != DK_CFG_BOOL)
            msg = mismatch(p, v);
        break;
    case DK_PARAM_STRING:
        if (v->kind != DK_CFG_STRING)
            msg = mismatch(p, v);
        else
            msg = check_choices(p, v, subject);
        break;
    case DK_PARAM_LIST:
    case DK_PARAM_OBJECT_LIST:
        if (v->kind != DK_CFG_LIST) {
            msg = mismatch(p, v);
        } else if (elems && p->type == DK_PARAM_LIST && p->elem && p->elem != DK_PARAM_ANY) {
            dk_param ep = *p;
            ep.type = p->elem;
            ep.flags = 0;
            for (size_t i = 0; i < v->n && !msg; i++) {
                char *m = check_value(&ep, v->ents[i].val, NULL, false);
                if (m) {
                    msg = dkh_asprintf("element %zu: %s", i, m);
                    free(m);
                }
            }
        }
        break;
    default:
        if (v->kind != DK_CFG_MAP)
            msg = mismatch(p, v);
        break;
    }
    free(own_subject);
    return msg;
}

char *dkh_cfgi_check_value(const dk_param *p, const dk_cfg *v, const char *subject)
{
    return check_value(p, v, subject, true);
}

/* ---- collecting errors ------------------------------------------------- */

typedef struct verr {
    char *file;
    int line, col;
    size_t seq;
    char *text;
} verr;

typedef struct vctx {
    const struct dkh_registry *reg;
    verr *errs;
    size_t n, cap;
} vctx;

static void add_err(vctx *v, const dkh_loc *loc, const dk_cfg *at, const char *fmt, ...)
    DK_PRINTF(4, 5);

static void add_err(vctx *v, const dkh_loc *loc, const dk_cfg *at, const char *fmt, ...)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 8;
        verr *e = realloc(v->errs, v->cap * sizeof *e);
        DKH_ASSERT(e != NULL);
        v->errs = e;
    }
    dkh_buf b = DKH_BUF_INIT;
    const char *path = dk_cfg_path(at);
    dkh_buf_printf(&b, "%s: ", loc->where);
    if (*path)
        dkh_buf_printf(&b, "%s: ", path);
    va_list ap;
    va_start(ap, fmt);
    dkh_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    v->errs[v->n] = (verr){dkh_strdup(loc->file), loc->line, loc->col, v->n, dkh_buf_take(&b)};
    v->n++;
}

static int cmp_err(const void *pa, const void *pb)
{
    const verr *a = pa, *b = pb;
    int c = strcmp(a->file, b->file);
    if (c)
        return c;
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    if (a->col != b->col)
        return a->col < b->col ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static dk_status finish(vctx *v)
{
    dk_status s = DK_OK;
    if (v->n) {
        qsort(v->errs, v->n, sizeof *v->errs, cmp_err);
        dkh_buf b = DKH_BUF_INIT;
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                dkh_buf_putc(&b, '\n');
            dkh_buf_puts(&b, v->errs[i].text);
        }
        s = dk_fail(DK_ERR_CONFIG, "%s", dkh_buf_str(&b));
        dkh_buf_fini(&b);
    }
    for (size_t i = 0; i < v->n; i++) {
        free(v->errs[i].file);
        free(v->errs[i].text);
    }
    free(v->errs);
    return s;
}

/* ---- the walk ------------------------------------------------------------ */

static void check_map(vctx *v, dk_cfg *map, const dk_param *params, size_t n, bool allow_type,
                      const char *owner);

static void check_object(vctx *v, dk_cfg *node, const char *kind)
{
    long ti = dkh_cfgi_find(node, "type");
    if (ti < 0) {
        add_err(v, &node->loc, node, "missing required key 'type' (which %s to build)",
                kind ? kind : "type");
        return;
    }
    const dk_cfg *tn = node->ents[ti].val;
    if (tn->kind != DK_CFG_STRING) {
        char *got = dkh_cfgi_describe(tn);
        add_err(v, &tn->loc, tn, "expected a %s type name, got %s", kind ? kind : "registered",
                got);
        free(got);
        return;
    }
    const dkh_type *t = v->reg ? dkh_registry_find(v->reg, kind, tn->text) : NULL;
    if (!t) {
        dkh_buf b = DKH_BUF_INIT;
        if (v->reg)
            dkh_registry_explain_missing(v->reg, kind, tn->text, &b);
        else
            dkh_buf_printf(&b, "unknown %s type '%s' (no plugins are loaded)", kind ? kind : "",
                           tn->text);
        add_err(v, &tn->loc, node, "%s", dkh_buf_str(&b));
        dkh_buf_fini(&b);
        return;
    }
    check_map(v, node, t->info.params, t->info.n_params, true, t->info.name);
}

static void check_param(vctx *v, dk_cfg *val, const dk_param *p, const char *owner)
{
    char *msg = check_value(p, val, NULL, false);
    if (msg) {
        add_err(v, &val->loc, val, "%s", msg);
        free(msg);
        return;
    }
    if (val->kind == DK_CFG_NULL)
        return;
    switch (p->type) {
    case DK_PARAM_LIST:
        if (p->elem && p->elem != DK_PARAM_ANY) {
            dk_param ep = *p;
            ep.type = p->elem;
            ep.flags = 0;
            for (size_t i = 0; i < val->n; i++)
                check_param(v, val->ents[i].val, &ep, owner);
        }
        break;
    case DK_PARAM_OBJECT:
        check_object(v, val, p->kind);
        break;
    case DK_PARAM_OBJECT_LIST:
    case DK_PARAM_OBJECT_MAP:
        for (size_t i = 0; i < val->n; i++) {
            dk_cfg *e = val->ents[i].val;
            /* A null entry in a map switches off an entry a base config provides. */
            if (p->type == DK_PARAM_OBJECT_MAP && e->kind == DK_CFG_NULL)
                continue;
            if (e->kind != DK_CFG_MAP) {
                char *got = dkh_cfgi_describe(e);
                add_err(v, &e->loc, e, "expected a map with 'type:' naming a %s, got %s",
                        p->kind ? p->kind : "registered type", got);
                free(got);
            } else {
                check_object(v, e, p->kind);
            }
        }
        break;
    case DK_PARAM_STRUCT: {
        char *sub = dkh_asprintf("%s.%s", owner, p->name);
        check_map(v, val, p->fields, p->n_fields, false, sub);
        free(sub);
        break;
    }
    default:
        break;
    }
}

static void unknown_key(vctx *v, dk_cfg *map, size_t i, const dk_param *params, size_t n,
                        bool allow_type, const char *owner)
{
    const char **cands = malloc((n + 1) * sizeof *cands);
    DKH_ASSERT(cands != NULL);
    size_t nc = 0;
    for (size_t j = 0; j < n; j++)
        cands[nc++] = params[j].name;
    if (allow_type)
        cands[nc++] = "type";
    const char *key = map->ents[i].key;
    const char *close = dkh_closest(key, cands, nc);
    const char *top = *dk_cfg_path(map) ? "" : "top-level ";
    if (close) {
        add_err(v, &map->ents[i].kloc, map, "unknown %skey '%s' (did you mean '%s'?)", top, key,
                close);
    } else if (n > 0 && n <= 16) {
        dkh_buf b = DKH_BUF_INIT;
        for (size_t j = 0; j < n; j++)
            dkh_buf_printf(&b, "%s%s", j ? ", " : "", params[j].name);
        add_err(v, &map->ents[i].kloc, map, "unknown %skey '%s' (%s takes: %s)", top, key, owner,
                dkh_buf_str(&b));
        dkh_buf_fini(&b);
    } else {
        add_err(v, &map->ents[i].kloc, map, "unknown %skey '%s'", top, key);
    }
    free(cands);
}

/* How a parameter's type reads in "missing required key 'x' (<label>: doc)". */
static char *type_label(const dk_param *p)
{
    const char *kind = p->kind ? p->kind : "object";
    switch (p->type) {
    case DK_PARAM_LIST:
        if (p->elem && p->elem != DK_PARAM_ANY)
            return dkh_asprintf("list of %s", dkh_param_type_name(p->elem));
        return dkh_strdup("list");
    case DK_PARAM_OBJECT:
        return dkh_strdup(kind);
    case DK_PARAM_OBJECT_LIST:
        return dkh_asprintf("list of %s", kind);
    case DK_PARAM_OBJECT_MAP:
        return dkh_asprintf("map of %s", kind);
    default:
        return dkh_strdup(dkh_param_type_name(p->type));
    }
}

/* True when a struct has a required field: then it cannot be made up. */
static bool any_required(const dk_param *p)
{
    for (uint32_t i = 0; i < p->n_fields; i++)
        if (p->fields[i].flags & DK_PARAM_REQUIRED)
            return true;
    return false;
}

static void check_map(vctx *v, dk_cfg *map, const dk_param *params, size_t n, bool allow_type,
                      const char *owner)
{
    for (size_t i = 0; i < map->n; i++) {
        const char *key = map->ents[i].key;
        if (allow_type && !strcmp(key, "type"))
            continue;
        const dk_param *p = NULL;
        for (size_t j = 0; j < n && !p; j++)
            if (!strcmp(params[j].name, key))
                p = &params[j];
        if (!p)
            unknown_key(v, map, i, params, n, allow_type, owner);
        else
            check_param(v, map->ents[i].val, p, owner);
    }
    for (size_t j = 0; j < n; j++) {
        const dk_param *p = &params[j];
        if (dkh_cfgi_find(map, p->name) >= 0)
            continue;
        if (p->flags & DK_PARAM_REQUIRED) {
            char *tn = type_label(p);
            if (p->doc && *p->doc)
                add_err(v, &map->loc, map, "missing required key '%s' (%s: %s)", p->name, tn,
                        p->doc);
            else
                add_err(v, &map->loc, map, "missing required key '%s' (%s)", p->name, tn);
            free(tn);
            continue;
        }
        /* A struct with no default still gets its fields' defaults, so a
         * plugin can read `stem.channels` without the user writing `stem:`. */
        bool empty_struct = p->type == DK_PARAM_STRUCT && !p->def &&
                            !(p->flags & DK_PARAM_NULLABLE) && !any_required(p);
        if (!p->def && !(p->flags & DK_PARAM_NULLABLE) && !empty_struct)
            continue;
        char *where = dkh_asprintf("<default of %s.%s>", owner, p->name);
        dk_cfg *d = NULL;
        if (empty_struct) {
            d = dkh_cfgi_new(DK_CFG_MAP, where, 0, 0);
        } else if (!p->def || dkh_cfg_parse(p->def, where, &d) != DK_OK) {
            /* schema_check refuses unparsable defaults at registration, so
             * only a NULLABLE parameter without default gets here. */
            d = dkh_cfgi_new_plain("null", where, 0, 0);
        }
        dkh_cfgi_relocate(d, where);
        dkh_loc kloc = {0};
        dkh_loc_set(&kloc, where, 0, 0);
        dkh_cfgi_append(map, p->name, &kloc, d);
        dkh_loc_fini(&kloc);
        free(where);
        /* A default may itself be an object or struct with defaults below. */
        check_param(v, d, p, owner);
    }
}

dk_status dkh_cfg_validate(dk_cfg *root, const dk_param *schema, size_t n,
                           const struct dkh_registry *reg)
{
    if (!root)
        return dk_fail(DK_ERR_ARG, "dkh_cfg_validate: NULL config");
    if (root->kind != DK_CFG_MAP) {
        char *got = dkh_cfgi_describe(root);
        dk_status s = dk_fail(DK_ERR_CONFIG, "%s: a config must be a map of keys, got %s",
                              root->loc.where, got);
        free(got);
        return s;
    }
    vctx v = {.reg = reg};
    check_map(&v, root, schema, n, false, "config");
    return finish(&v);
}

dk_status dkh_cfg_validate_object(dk_cfg *node, const dk_type_info *type,
                                  const struct dkh_registry *reg)
{
    if (!node || !type)
        return dk_fail(DK_ERR_ARG, "dkh_cfg_validate_object: NULL argument");
    vctx v = {.reg = reg};
    if (node->kind != DK_CFG_MAP) {
        char *got = dkh_cfgi_describe(node);
        add_err(&v, &node->loc, node, "expected a map of %s parameters, got %s", type->name, got);
        free(got);
    } else {
        check_map(&v, node, type->params, type->n_params, true, type->name);
    }
    return finish(&v);
}
