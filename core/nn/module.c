/* core/nn/module.c — module records and what a module's create declares.
 *
 * dk_module_param, dk_module_buffer and dk_module_child attach to the record
 * whose create is running on this thread (set by dk_object_build through
 * dkh_module_enter). Names are checked as they are declared, so a duplicate or
 * a name that would shadow a child's tensors fails in the create that made
 * it, with a message naming the module. Parameters and buffers are made
 * outside every scope: the record holds the only reference and releases it
 * when the module is freed, after its children.
 */
#include "module_impl.h"

#include "../tensor/tensor_impl.h"

#include <stdlib.h>
#include <string.h>

static _Thread_local dkh_module *creating;

dkh_module *dkh_module_new(const char *path, const char *type_name)
{
    dkh_module *m = calloc(1, sizeof *m);
    DKH_ASSERT(m != NULL);
    m->path = dkh_strdup(path && path[0] ? path : type_name ? type_name : "<module>");
    m->training = true;
    return m;
}

dkh_module *dkh_module_enter(dkh_module *m)
{
    dkh_module *prev = creating;
    creating = m;
    return prev;
}

void dkh_module_free(dkh_module *m)
{
    if (!m)
        return;
    /* Children first (latest first, as they were built), so a child never
     * outlives what its parent declared after it; then the tensors. */
    for (size_t i = m->n_own; i-- > 0;)
        if (m->own[i].child)
            dk_object_free(m->own[i].child);
    for (size_t i = 0; i < m->n_own; i++) {
        dk_tensor_release(m->own[i].tensor);
        free(m->own[i].name);
    }
    for (size_t i = 0; i < m->n_flat; i++)
        free(m->flat[i].name);
    free(m->own);
    free(m->flat);
    free(m->params);
    free(m->path);
    free(m);
}

/* ---- names ------------------------------------------------------------------------- */

/* [A-Za-z0-9_] segments joined by single dots. */
static bool valid_name(const char *s)
{
    if (!s || !*s)
        return false;
    bool seg_empty = true;
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (c == '.') {
            if (seg_empty)
                return false;
            seg_empty = true;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '_') {
            seg_empty = false;
        } else {
            return false;
        }
    }
    return !seg_empty;
}

/* True when a is b, or a dotted prefix of b ("bn1" of "bn1.weight"). */
static bool covers(const char *a, const char *b)
{
    size_t n = strlen(a);
    return strncmp(a, b, n) == 0 && (b[n] == '\0' || b[n] == '.');
}

/* Checks that create is running and name can be declared in it. */
static dk_status check_new_name(const char *fn, const char *name)
{
    dkh_module *m = creating;
    if (!m)
        return dk_fail(DK_ERR_RUNTIME,
                       "%s('%s'): called outside a module's create (parameters, buffers and "
                       "children are declared while the module is built)",
                       fn, name ? name : "(null)");
    if (!valid_name(name))
        return dk_fail(DK_ERR_ARG,
                       "%s: %s: name '%s' is not valid (use [A-Za-z0-9_] segments joined by '.')",
                       m->path, fn, name ? name : "(null)");
    for (size_t i = 0; i < m->n_own; i++) {
        const char *old = m->own[i].name;
        if (strcmp(old, name) == 0)
            return dk_fail(DK_ERR_DUPLICATE, "%s: %s: '%s' is already declared", m->path, fn, name);
        if (covers(old, name) || covers(name, old))
            return dk_fail(DK_ERR_DUPLICATE,
                           "%s: %s: '%s' clashes with '%s' (a name may not be a dotted prefix "
                           "of another)",
                           m->path, fn, name, old);
    }
    return DK_OK;
}

/* Records a declaration (the name is copied). */
static void add_own(dkh_module *m, const char *name, dk_tensor *tensor, bool is_buffer,
                    dk_object *child)
{
    if (m->n_own == m->cap_own) {
        m->cap_own = m->cap_own ? 2 * m->cap_own : 16;
        m->own = realloc(m->own, m->cap_own * sizeof *m->own);
        DKH_ASSERT(m->own != NULL);
    }
    m->own[m->n_own++] = (dkh_own){
        .name = dkh_strdup(name), .tensor = tensor, .is_buffer = is_buffer, .child = child};
}

/* A new contiguous CPU tensor outside every scope, or NULL with a message. */
static dk_tensor *new_tensor(const char *fn, const char *name, int ndim, const int64_t *shape,
                             dk_dtype dtype)
{
    dkh_module *m = creating;
    if (ndim < 0 || ndim > DK_MAX_DIMS || (ndim > 0 && !shape)) {
        dk_fail(DK_ERR_ARG, "%s: %s('%s'): %d dims (give 0 to %d, and a shape)", m->path, fn, name,
                ndim, DK_MAX_DIMS);
        return NULL;
    }
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 0) {
            dk_fail(DK_ERR_ARG, "%s: %s('%s'): size %lld of dim %d is negative", m->path, fn, name,
                    (long long)shape[d], d);
            return NULL;
        }
    if ((unsigned)dtype >= DK_DTYPE_COUNT) {
        dk_fail(DK_ERR_ARG, "%s: %s('%s'): dtype %d is not valid", m->path, fn, name, (int)dtype);
        return NULL;
    }
    dk_tensor *t = dkh_tensor_alloc(dtype, ndim, shape, DK_CPU);
    if (!t)
        dk_error_prefix("%s: %s('%s')", m->path, fn, name);
    return t;
}

dk_tensor *dk_module_param(const char *name, int ndim, const int64_t *shape, const dk_init *init)
{
    if (check_new_name("dk_module_param", name) != DK_OK)
        return NULL;
    dkh_module *m = creating;
    /* Every parameter takes its stream, zeros included, so adding an init to
     * one parameter does not shift the values of the ones after it. */
    dk_rng rng = dkh_module_next_stream();
    dk_tensor *t = new_tensor("dk_module_param", name, ndim, shape, DK_DTYPE_F32);
    if (!t)
        return NULL;
    char *what = dkh_asprintf("%s: parameter '%s'", m->path, name);
    dk_status s = dkh_init_fill(t, init, &rng, what);
    free(what);
    if (s == DK_OK)
        s = dk_tensor_set_requires_grad(t, true);
    if (s != DK_OK) {
        dk_tensor_release(t);
        return NULL;
    }
    add_own(m, name, t, false, NULL);
    return t;
}

dk_tensor *dk_module_buffer(const char *name, int ndim, const int64_t *shape, dk_dtype dtype,
                            double value)
{
    if (check_new_name("dk_module_buffer", name) != DK_OK)
        return NULL;
    dkh_module *m = creating;
    dk_tensor *t = new_tensor("dk_module_buffer", name, ndim, shape, dtype);
    if (!t)
        return NULL;
    int64_t n = dkh_numel(t->ndim, t->shape);
    void *base = dkh_base(t);
    if (value == 0.0)
        memset(base, 0, (size_t)n * dk_dtype_size(dtype));
    else
        for (int64_t i = 0; i < n; i++)
            dkh_store(base, dtype, i, value);
    add_own(m, name, t, true, NULL);
    return t;
}

dk_object *dk_module_child(const dk_cfg *cfg, const char *name, const char *kind)
{
    if (check_new_name("dk_module_child", name) != DK_OK)
        return NULL;
    dkh_module *m = creating;
    if (dk_cfg_kind_of(cfg) == DK_CFG_NULL) {
        const char *where = cfg ? dk_cfg_where(cfg) : NULL;
        dk_fail(DK_ERR_CONFIG, "%s: child '%s': no config%s%s%s (a missing or null key?)", m->path,
                name, where && *where ? " (" : "", where ? where : "", where && *where ? ")" : "");
        return NULL;
    }
    dk_object *child = NULL;
    /* dk_object_build makes the child's record current while its create runs
     * and restores this one after. */
    if (dk_object_build(cfg, kind, &child) != DK_OK)
        return NULL;
    if (!dkh_object_module(child)) {
        const dk_type_info *t = dk_object_type(child);
        dk_fail(DK_ERR_ARG, "%s: child '%s': %s is a %s type, not a module", m->path, name, t->name,
                t->kind);
        dk_object_free(child);
        return NULL;
    }
    add_own(m, name, NULL, false, child);
    return child;
}

/* ---- the flat layout ---------------------------------------------------------------- */

static void push_flat(dkh_module *m, size_t *cap, char *name, dk_tensor *t, bool is_buffer)
{
    if (m->n_flat == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        m->flat = realloc(m->flat, *cap * sizeof *m->flat);
        DKH_ASSERT(m->flat != NULL);
    }
    m->flat[m->n_flat++] = (dkh_flat){.name = name, .tensor = t, .is_buffer = is_buffer};
}

void dkh_module_finish(dkh_module *m)
{
    size_t cap = 0;
    for (size_t i = 0; i < m->n_own; i++) {
        const dkh_own *e = &m->own[i];
        if (e->tensor) {
            push_flat(m, &cap, dkh_strdup(e->name), e->tensor, e->is_buffer);
            continue;
        }
        /* A child was finished when its own create returned. */
        const dkh_module *c = dkh_object_module(e->child);
        for (size_t j = 0; j < c->n_flat; j++)
            push_flat(m, &cap, dkh_asprintf("%s.%s", e->name, c->flat[j].name), c->flat[j].tensor,
                      c->flat[j].is_buffer);
    }
    size_t n_params = 0;
    for (size_t i = 0; i < m->n_flat; i++)
        n_params += !m->flat[i].is_buffer;
    m->params = malloc((n_params ? n_params : 1) * sizeof *m->params);
    DKH_ASSERT(m->params != NULL);
    for (size_t i = 0; i < m->n_flat; i++)
        if (!m->flat[i].is_buffer)
            m->params[m->n_params++] = i;
}
