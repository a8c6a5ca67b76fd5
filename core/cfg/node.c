/* core/cfg/node.c — the config tree itself: nodes, locations, paths, deep
 * copies, equality, and the read accessors plugins reach through the host
 * API (dk_cfg_get, dk_cfg_get_int, ...).
 *
 * Nodes use plain malloc: they are host memory, not plugin memory, and the
 * counted allocator is for what plugins hold.
 */
#include "cfg_impl.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- locations ------------------------------------------------------------ */

void dkh_loc_set(dkh_loc *loc, const char *file, int line, int col)
{
    char *f = dkh_strdup(file ? file : "<unknown>");
    char *w = line > 0 ? dkh_asprintf("%s:%d:%d", f, line, col) : dkh_strdup(f);
    dkh_loc_fini(loc);
    loc->file = f;
    loc->line = line;
    loc->col = col;
    loc->where = w;
}

void dkh_loc_copy(dkh_loc *dst, const dkh_loc *src)
{
    dkh_loc_set(dst, src->file, src->line, src->col);
}

void dkh_loc_fini(dkh_loc *loc)
{
    free(loc->file);
    free(loc->where);
    loc->file = loc->where = NULL;
}

/* ---- construction ------------------------------------------------------- */

dk_cfg *dkh_cfgi_new(dk_cfg_kind kind, const char *file, int line, int col)
{
    dk_cfg *c = calloc(1, sizeof *c);
    DKH_ASSERT(c != NULL);
    c->kind = kind;
    dkh_loc_set(&c->loc, file, line, col);
    return c;
}

static bool all_digits(const char *s, int base)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        int ch = (unsigned char)*s;
        bool ok = base == 16 ? isxdigit(ch) : base == 8 ? (ch >= '0' && ch <= '7') : isdigit(ch);
        if (!ok)
            return false;
    }
    return true;
}

/* A float in YAML 1.2 core form: [-+]? ( . digits | digits [ . digits? ] )
 * ( [eE] [-+]? digits )?  */
static bool is_float_text(const char *s)
{
    if (*s == '+' || *s == '-')
        s++;
    size_t lead = 0, frac = 0;
    while (isdigit((unsigned char)*s))
        s++, lead++;
    if (*s == '.') {
        s++;
        while (isdigit((unsigned char)*s))
            s++, frac++;
    }
    if (lead == 0 && frac == 0)
        return false;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!isdigit((unsigned char)*s))
            return false;
        while (isdigit((unsigned char)*s))
            s++;
    }
    return *s == '\0';
}

dk_cfg_kind dkh_cfgi_classify(const char *text, int64_t *iv, double *fv)
{
    const char *s = text;
    if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL"))
        return DK_CFG_NULL;
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
        if (iv)
            *iv = 1;
        return DK_CFG_BOOL;
    }
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
        if (iv)
            *iv = 0;
        return DK_CFG_BOOL;
    }
    bool neg = false;
    const char *d = s;
    if (*d == '+' || *d == '-')
        neg = *d++ == '-';
    int base = 0;
    const char *digits = d;
    if (d[0] == '0' && (d[1] == 'x' || d[1] == 'X'))
        base = 16, digits = d + 2;
    else if (d[0] == '0' && d[1] == 'o')
        base = 8, digits = d + 2;
    else if (all_digits(d, 10))
        base = 10;
    if (base && all_digits(digits, base)) {
        errno = 0;
        unsigned long long u = strtoull(digits, NULL, base);
        bool fits = errno == 0 && (neg ? u <= (unsigned long long)INT64_MAX + 1ull
                                       : u <= (unsigned long long)INT64_MAX);
        if (fits) {
            if (iv)
                *iv = neg ? (int64_t)(0 - u) : (int64_t)u;
            return DK_CFG_INT;
        }
        /* Too large for 64 bits: a decimal still reads as a number. */
        if (base == 10) {
            if (fv)
                *fv = strtod(s, NULL);
            return DK_CFG_FLOAT;
        }
        return DK_CFG_STRING;
    }
    const char *t = (*s == '+' || *s == '-') ? s + 1 : s;
    if (!strcmp(t, ".inf") || !strcmp(t, ".Inf") || !strcmp(t, ".INF")) {
        if (fv)
            *fv = *s == '-' ? -INFINITY : INFINITY;
        return DK_CFG_FLOAT;
    }
    if (!strcmp(s, ".nan") || !strcmp(s, ".NaN") || !strcmp(s, ".NAN")) {
        if (fv)
            *fv = NAN;
        return DK_CFG_FLOAT;
    }
    if (is_float_text(s)) {
        if (fv)
            *fv = strtod(s, NULL);
        return DK_CFG_FLOAT;
    }
    return DK_CFG_STRING;
}

dk_cfg *dkh_cfgi_new_plain(const char *text, const char *file, int line, int col)
{
    int64_t iv = 0;
    double fv = 0;
    dk_cfg_kind k = dkh_cfgi_classify(text, &iv, &fv);
    dk_cfg *c = dkh_cfgi_new(k, file, line, col);
    c->text = dkh_strdup(text);
    if (k == DK_CFG_BOOL)
        c->v.b = iv != 0;
    else if (k == DK_CFG_INT)
        c->v.i = iv;
    else if (k == DK_CFG_FLOAT)
        c->v.f = fv;
    return c;
}

dk_cfg *dkh_cfgi_new_string(const char *text, const char *file, int line, int col)
{
    dk_cfg *c = dkh_cfgi_new(DK_CFG_STRING, file, line, col);
    c->text = dkh_strdup(text);
    return c;
}

/* ---- freeing and editing ------------------------------------------------ */

static void clear_content(dk_cfg *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->ents[i].key);
        dkh_loc_fini(&c->ents[i].kloc);
        dkh_cfg_free(c->ents[i].val);
    }
    free(c->ents);
    free(c->text);
    c->ents = NULL;
    c->text = NULL;
    c->n = c->cap = 0;
}

void dkh_cfg_free(dk_cfg *root)
{
    if (!root)
        return;
    clear_content(root);
    dkh_loc_fini(&root->loc);
    free(root->path);
    free(root->base_path);
    free(root);
}

void dkh_cfgi_forget_paths(dk_cfg *node)
{
    free(node->path);
    node->path = NULL;
    for (size_t i = 0; i < node->n; i++)
        dkh_cfgi_forget_paths(node->ents[i].val);
}

void dkh_cfgi_append(dk_cfg *c, const char *key, const dkh_loc *kloc, dk_cfg *val)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4;
        dkh_cfg_entry *e = realloc(c->ents, cap * sizeof *e);
        DKH_ASSERT(e != NULL);
        c->ents = e;
        c->cap = cap;
    }
    dkh_cfg_entry *e = &c->ents[c->n++];
    memset(e, 0, sizeof *e);
    e->key = key ? dkh_strdup(key) : NULL;
    if (kloc)
        dkh_loc_copy(&e->kloc, kloc);
    else
        dkh_loc_copy(&e->kloc, &val->loc);
    e->val = val;
    val->parent = c;
    dkh_cfgi_forget_paths(val);
}

long dkh_cfgi_find(const dk_cfg *map, const char *key)
{
    if (!map || map->kind != DK_CFG_MAP)
        return -1;
    for (size_t i = 0; i < map->n; i++)
        if (!strcmp(map->ents[i].key, key))
            return (long)i;
    return -1;
}

void dkh_cfgi_replace(dk_cfg *c, size_t i, dk_cfg *val)
{
    dkh_cfg_free(c->ents[i].val);
    c->ents[i].val = val;
    val->parent = c;
    dkh_cfgi_forget_paths(val);
}

dk_cfg *dkh_cfgi_take(dk_cfg *c, size_t i)
{
    dk_cfg *v = c->ents[i].val;
    free(c->ents[i].key);
    dkh_loc_fini(&c->ents[i].kloc);
    memmove(&c->ents[i], &c->ents[i + 1], (c->n - i - 1) * sizeof *c->ents);
    c->n--;
    v->parent = NULL;
    /* Later list elements changed index, so their cached paths are stale. */
    for (size_t j = i; j < c->n; j++)
        dkh_cfgi_forget_paths(c->ents[j].val);
    dkh_cfgi_forget_paths(v);
    return v;
}

void dkh_cfgi_remove(dk_cfg *c, size_t i)
{
    dkh_cfg_free(dkh_cfgi_take(c, i));
}

void dkh_cfgi_become(dk_cfg *dst, dk_cfg *src)
{
    clear_content(dst);
    dst->kind = src->kind;
    dst->text = src->text;
    dst->v = src->v;
    dst->ents = src->ents;
    dst->n = src->n;
    dst->cap = src->cap;
    dst->rstate = src->rstate;
    for (size_t i = 0; i < dst->n; i++)
        dst->ents[i].val->parent = dst;
    dkh_cfgi_forget_paths(dst);
    src->text = NULL;
    src->ents = NULL;
    src->n = src->cap = 0;
    dkh_cfg_free(src);
}

void dkh_cfgi_relocate(dk_cfg *node, const char *file)
{
    dkh_loc_set(&node->loc, file, 0, 0);
    for (size_t i = 0; i < node->n; i++) {
        if (node->ents[i].key)
            dkh_loc_set(&node->ents[i].kloc, file, 0, 0);
        dkh_cfgi_relocate(node->ents[i].val, file);
    }
}

dk_cfg *dkh_cfgi_clone(const dk_cfg *node)
{
    dk_cfg *c = dkh_cfgi_new(node->kind, node->loc.file, node->loc.line, node->loc.col);
    c->text = node->text ? dkh_strdup(node->text) : NULL;
    c->v = node->v;
    c->rstate = node->rstate;
    for (size_t i = 0; i < node->n; i++)
        dkh_cfgi_append(c, node->ents[i].key, &node->ents[i].kloc,
                        dkh_cfgi_clone(node->ents[i].val));
    return c;
}

dk_status dkh_cfg_clone(const dk_cfg *node, dk_cfg **out)
{
    *out = NULL;
    if (!node)
        return dk_fail(DK_ERR_ARG, "dkh_cfg_clone: NULL node");
    *out = dkh_cfgi_clone(node);
    /* The clone keeps its original's place in messages ("model.backbone.width"),
     * although it is a tree of its own. */
    if (*dk_cfg_path(node))
        (*out)->base_path = dkh_strdup(dk_cfg_path(node));
    return DK_OK;
}

bool dkh_cfg_equal(const dk_cfg *a, const dk_cfg *b)
{
    if (!a || !b)
        return a == b;
    if (a->kind != b->kind || a->n != b->n)
        return false;
    switch (a->kind) {
    case DK_CFG_NULL:
        return true;
    case DK_CFG_BOOL:
        return a->v.b == b->v.b;
    case DK_CFG_INT:
        return a->v.i == b->v.i;
    case DK_CFG_FLOAT:
        return a->v.f == b->v.f || (isnan(a->v.f) && isnan(b->v.f));
    case DK_CFG_STRING:
        return strcmp(a->text, b->text) == 0;
    case DK_CFG_MAP:
    case DK_CFG_LIST:
        for (size_t i = 0; i < a->n; i++) {
            if (a->kind == DK_CFG_MAP && strcmp(a->ents[i].key, b->ents[i].key))
                return false;
            if (!dkh_cfg_equal(a->ents[i].val, b->ents[i].val))
                return false;
        }
        return true;
    default:
        return false;
    }
}

/* ---- paths ----------------------------------------------------------------- */

void dkh_cfgi_free_segs(char **segs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(segs[i]);
    free(segs);
}

bool dkh_cfgi_split_path(const char *path, char ***segs_out, size_t *n_out, char **err)
{
    char **segs = NULL;
    size_t n = 0, cap = 0;
    const char *p = path;
    *err = NULL;
    while (1) {
        dkh_buf seg = DKH_BUF_INIT;
        bool quoted = false;
        if (*p == '"' || *p == '\'') {
            char q = *p++;
            quoted = true;
            while (*p && *p != q)
                dkh_buf_putc(&seg, *p++);
            if (*p != q) {
                *err = dkh_asprintf("unterminated quote in key '%s'", path);
                dkh_buf_fini(&seg);
                break;
            }
            p++;
            if (*p && *p != '.') {
                *err = dkh_asprintf("a quoted key segment must be followed by '.' in '%s'", path);
                dkh_buf_fini(&seg);
                break;
            }
        } else {
            while (*p && *p != '.')
                dkh_buf_putc(&seg, *p++);
        }
        if (!quoted && seg.len == 0) {
            *err = dkh_asprintf("empty key segment in '%s'", path);
            dkh_buf_fini(&seg);
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            char **s = realloc(segs, cap * sizeof *s);
            DKH_ASSERT(s != NULL);
            segs = s;
        }
        segs[n++] = dkh_buf_take(&seg);
        if (!*p)
            break;
        p++; /* the '.' */
    }
    if (*err) {
        dkh_cfgi_free_segs(segs, n);
        return false;
    }
    *segs_out = segs;
    *n_out = n;
    return true;
}

bool dkh_cfgi_index(const char *seg, size_t *out)
{
    if (!*seg || strlen(seg) > 18)
        return false;
    for (const char *s = seg; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    *out = (size_t)strtoull(seg, NULL, 10);
    return true;
}

static dk_cfg *child_of(const dk_cfg *node, const char *seg)
{
    if (node->kind == DK_CFG_MAP) {
        long i = dkh_cfgi_find(node, seg);
        return i < 0 ? NULL : node->ents[i].val;
    }
    size_t idx;
    if (node->kind == DK_CFG_LIST && dkh_cfgi_index(seg, &idx) && idx < node->n)
        return node->ents[idx].val;
    return NULL;
}

dk_cfg *dkh_cfg_get_mut(dk_cfg *node, const char *path)
{
    if (!node || !path || !*path)
        return node;
    char **segs;
    size_t n;
    char *err;
    if (!dkh_cfgi_split_path(path, &segs, &n, &err)) {
        free(err);
        return NULL;
    }
    dk_cfg *cur = node;
    for (size_t i = 0; i < n && cur; i++)
        cur = child_of(cur, segs[i]);
    dkh_cfgi_free_segs(segs, n);
    return cur;
}

static bool needs_key_quotes(const char *key)
{
    return !*key || strchr(key, '.') != NULL;
}

static void build_path(const dk_cfg *node, dkh_buf *b)
{
    const dk_cfg *p = node->parent;
    if (!p) {
        if (node->base_path)
            dkh_buf_puts(b, node->base_path);
        return;
    }
    build_path(p, b);
    size_t i = 0;
    while (i < p->n && p->ents[i].val != node)
        i++;
    DKH_ASSERT(i < p->n);
    if (b->len)
        dkh_buf_putc(b, '.');
    if (p->kind == DK_CFG_LIST)
        dkh_buf_printf(b, "%zu", i);
    else if (needs_key_quotes(p->ents[i].key))
        dkh_buf_printf(b, "\"%s\"", p->ents[i].key);
    else
        dkh_buf_puts(b, p->ents[i].key);
}

/* ---- the host API accessors -------------------------------------------- */

dk_cfg_kind dk_cfg_kind_of(const dk_cfg *node)
{
    return node ? node->kind : DK_CFG_NULL;
}

const dk_cfg *dk_cfg_get(const dk_cfg *node, const char *path)
{
    return dkh_cfg_get_mut((dk_cfg *)node, path);
}

size_t dk_cfg_len(const dk_cfg *node)
{
    if (!node || (node->kind != DK_CFG_MAP && node->kind != DK_CFG_LIST))
        return 0;
    return node->n;
}

const dk_cfg *dk_cfg_at(const dk_cfg *node, size_t i)
{
    if (!node || i >= dk_cfg_len(node))
        return NULL;
    return node->ents[i].val;
}

const char *dk_cfg_key_at(const dk_cfg *node, size_t i)
{
    if (!node || node->kind != DK_CFG_MAP || i >= node->n)
        return NULL;
    return node->ents[i].key;
}

const char *dk_cfg_scalar(const dk_cfg *node)
{
    if (!node || node->kind == DK_CFG_MAP || node->kind == DK_CFG_LIST)
        return NULL;
    return node->text;
}

const char *dk_cfg_where(const dk_cfg *node)
{
    return node ? node->loc.where : "<none>";
}

const char *dk_cfg_path(const dk_cfg *node)
{
    if (!node)
        return "";
    if (!node->path) {
        dkh_buf b = DKH_BUF_INIT;
        build_path(node, &b);
        /* The cache is logically const: it never changes what the node holds. */
        ((dk_cfg *)node)->path = dkh_buf_take(&b);
    }
    return node->path;
}

const char *dkh_cfgi_kind_name(dk_cfg_kind k)
{
    static const char *const names[] = {"null", "bool", "int", "float", "string", "list", "map"};
    return (unsigned)k < DK_CFG_KIND_COUNT ? names[k] : "?";
}

char *dkh_cfgi_describe(const dk_cfg *node)
{
    switch (node->kind) {
    case DK_CFG_NULL:
        return dkh_strdup("null");
    case DK_CFG_STRING:
        return dkh_asprintf("string '%s'", node->text);
    case DK_CFG_LIST:
        return dkh_strdup("a list");
    case DK_CFG_MAP:
        return dkh_strdup("a map");
    default:
        return dkh_asprintf("%s %s", dkh_cfgi_kind_name(node->kind), node->text);
    }
}

/* The full path of `path` under node, for messages about a missing key. */
static char *joined_path(const dk_cfg *node, const char *path)
{
    const char *base = dk_cfg_path(node);
    if (!path || !*path)
        return dkh_strdup(*base ? base : "<root>");
    return *base ? dkh_asprintf("%s.%s", base, path) : dkh_strdup(path);
}

static dk_status typed_get(const dk_cfg *node, const char *path, const dk_cfg **out)
{
    *out = NULL;
    if (!node)
        return dk_fail(DK_ERR_ARG, "config read of '%s' from a NULL node", path ? path : "");
    const dk_cfg *v = dk_cfg_get(node, path);
    if (!v) {
        char *full = joined_path(node, path);
        dk_status s = dk_fail(DK_ERR_NOT_FOUND, "%s: %s: key not found", node->loc.where, full);
        free(full);
        return s;
    }
    *out = v;
    return DK_OK;
}

static dk_status wrong_type(const dk_cfg *v, const char *want)
{
    char *got = dkh_cfgi_describe(v);
    const char *p = dk_cfg_path(v);
    dk_status s = dk_fail(DK_ERR_CONFIG, "%s: %s: expected %s, got %s", v->loc.where,
                          *p ? p : "<root>", want, got);
    free(got);
    return s;
}

dk_status dk_cfg_get_int(const dk_cfg *node, const char *path, int64_t *out)
{
    const dk_cfg *v;
    DK_TRY(typed_get(node, path, &v));
    if (v->kind != DK_CFG_INT)
        return wrong_type(v, "an integer");
    *out = v->v.i;
    return DK_OK;
}

dk_status dk_cfg_get_float(const dk_cfg *node, const char *path, double *out)
{
    const dk_cfg *v;
    DK_TRY(typed_get(node, path, &v));
    if (v->kind == DK_CFG_INT)
        *out = (double)v->v.i;
    else if (v->kind == DK_CFG_FLOAT)
        *out = v->v.f;
    else
        return wrong_type(v, "a number");
    return DK_OK;
}

dk_status dk_cfg_get_bool(const dk_cfg *node, const char *path, bool *out)
{
    const dk_cfg *v;
    DK_TRY(typed_get(node, path, &v));
    if (v->kind != DK_CFG_BOOL)
        return wrong_type(v, "true or false");
    *out = v->v.b;
    return DK_OK;
}

dk_status dk_cfg_get_str(const dk_cfg *node, const char *path, const char **out)
{
    const dk_cfg *v;
    DK_TRY(typed_get(node, path, &v));
    if (v->kind != DK_CFG_STRING)
        return wrong_type(v, "a string");
    *out = v->text;
    return DK_OK;
}
