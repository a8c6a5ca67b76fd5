/* core/plugin/register.c — dk_register: checking a type a plugin offers and
 * copying it into the host's own memory and layout.
 *
 * A dk_type_info comes from a plugin that may have been built with an older
 * or newer SDK minor, so every structure is read only as far as its declared
 * size covers (struct_size, param_size, the vtable's struct_size) and copied
 * into zero-filled host-layout structures; fields the plugin's SDK did not
 * have read as zero/NULL. Every string is copied with plain malloc, so after
 * registration nothing the registry keeps points into the plugin except the
 * vtable's function pointers. Types are staged in the registrar and reach the
 * registry only when the plugin's whole init succeeded (see loader.c).
 */
#include "internal.h"

#include "../cfg/cfg.h"
#include "../tensor/custom_op.h"

#include <dk/status.h>

#include <stdlib.h>
#include <string.h>

/* dk_type_info and dk_param as ABI 1.0 defined them end at these fields; a
 * plugin's declared sizes must cover at least that much. */
#define TYPE_INFO_MIN_SIZE (offsetof(dk_type_info, param_size) + sizeof(uint32_t))
#define PARAM_MIN_SIZE (offsetof(dk_param, n_fields) + sizeof(uint32_t))
/* Bounds that only a corrupt descriptor exceeds; they keep a garbage count
 * from turning into a huge allocation or an endless recursion. */
#define MAX_PARAMS 4096
#define MAX_STRUCT_DEPTH 16

static char *copy_str(const char *s)
{
    return s ? dkh_strdup(s) : NULL;
}

static bool is_kind(const char *s)
{
    if (!s || !(*s >= 'a' && *s <= 'z'))
        return false;
    for (s++; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

static bool is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_type_name(const char *s)
{
    if (!s || !is_ident_start(*s))
        return false;
    for (s++; *s; s++)
        if (!is_ident_start(*s) && !(*s >= '0' && *s <= '9') && *s != '.')
            return false;
    return true;
}

/* The host's size of each interface's vtable: the copy is made this big so
 * the host can read every slot it knows without checking the plugin's size. */
static size_t iface_vtable_size(dk_iface i)
{
    switch (i) {
    case DK_IFACE_MODULE:
        return sizeof(dk_module_vtable);
    case DK_IFACE_DATASET:
        return sizeof(dk_dataset_vtable);
    case DK_IFACE_TRANSFORM:
        return sizeof(dk_transform_vtable);
    case DK_IFACE_HOOK:
        return sizeof(dk_hook_vtable);
    case DK_IFACE_METRIC:
        return sizeof(dk_metric_vtable);
    case DK_IFACE_OPTIMIZER:
        return sizeof(dk_optimizer_vtable);
    case DK_IFACE_LR_SCHEDULER:
        return sizeof(dk_lr_scheduler_vtable);
    default:
        return 0;
    }
}

static void free_params(dk_param *p, size_t n)
{
    if (!p)
        return;
    for (size_t i = 0; i < n; i++) {
        free((char *)p[i].name);
        free((char *)p[i].def);
        free((char *)p[i].min);
        free((char *)p[i].max);
        free((char *)p[i].choices);
        free((char *)p[i].kind);
        free((char *)p[i].doc);
        free_params((dk_param *)p[i].fields, p[i].n_fields);
    }
    free(p);
}

void dkh_type_free(dkh_type *t)
{
    if (!t)
        return;
    free((char *)t->info.kind);
    free((char *)t->info.name);
    free((char *)t->info.summary);
    free((void *)t->info.vtable);
    free_params((dk_param *)t->info.params, t->info.n_params);
    free(t);
}

/* Copies n parameters laid out `stride` bytes apart (the plugin's
 * sizeof(dk_param)) into a new host-layout array; STRUCT fields recurse
 * with the same stride, since they are arrays of the same struct. */
static dk_status copy_params(const void *src, uint32_t n, uint32_t stride, int depth,
                             const char *label, dk_param **out)
{
    *out = NULL;
    if (n == 0)
        return DK_OK;
    if (!src)
        return dk_fail(DK_ERR_ARG, "%s: %u parameters declared but the array is NULL", label, n);
    if (n > MAX_PARAMS)
        return dk_fail(DK_ERR_ARG, "%s: %u parameters is more than the %d allowed", label, n,
                       MAX_PARAMS);
    if (depth > MAX_STRUCT_DEPTH)
        return dk_fail(DK_ERR_ARG, "%s: STRUCT parameters nested deeper than %d", label,
                       MAX_STRUCT_DEPTH);
    dk_param *dst = calloc(n, sizeof *dst);
    DKH_ASSERT(dst != NULL);
    size_t take = stride < sizeof(dk_param) ? stride : sizeof(dk_param);
    for (uint32_t i = 0; i < n; i++) {
        dk_param p;
        memset(&p, 0, sizeof p);
        memcpy(&p, (const char *)src + (size_t)i * stride, take);
        dk_param *d = &dst[i];
        d->type = p.type;
        d->flags = p.flags;
        d->elem = p.elem;
        d->name = copy_str(p.name);
        d->def = copy_str(p.def);
        d->min = copy_str(p.min);
        d->max = copy_str(p.max);
        d->choices = copy_str(p.choices);
        d->kind = copy_str(p.kind);
        d->doc = copy_str(p.doc);
        if (!p.name) {
            free_params(dst, i + 1);
            return dk_fail(DK_ERR_ARG, "%s: parameter #%u has no name", label, i);
        }
        if (p.n_fields) {
            char *sub = dkh_asprintf("%s: parameter '%s'", label, p.name);
            dk_param *fields = NULL;
            dk_status s = copy_params(p.fields, p.n_fields, stride, depth + 1, sub, &fields);
            free(sub);
            if (s != DK_OK) {
                free_params(dst, i + 1);
                return s;
            }
            d->fields = fields;
            d->n_fields = p.n_fields;
        }
    }
    *out = dst;
    return DK_OK;
}

dk_status dkh_type_copy(const dkh_registry *r, const dk_registrar *g, const dk_type_info *info,
                        dkh_type **out)
{
    *out = NULL;
    if (!info)
        return dk_fail(DK_ERR_ARG, "dk_register: type info is NULL");
    if (info->struct_size < TYPE_INFO_MIN_SIZE)
        return dk_fail(DK_ERR_ARG,
                       "dk_register: type info struct_size %u is smaller than %zu (ABI 1.0); "
                       "was .struct_size set (DK_TYPE_INFO_HEAD)?",
                       info->struct_size, TYPE_INFO_MIN_SIZE);
    dk_type_info in;
    memset(&in, 0, sizeof in);
    memcpy(&in, info, info->struct_size < sizeof in ? info->struct_size : sizeof in);

    if (!in.kind || !in.name)
        return dk_fail(DK_ERR_ARG, "dk_register: type info has no %s", !in.kind ? "kind" : "name");
    if (!is_kind(in.kind))
        return dk_fail(DK_ERR_ARG,
                       "dk_register: kind '%s' of type '%s' is not valid "
                       "(lower-case letters, digits and '_', starting with a letter)",
                       in.kind, in.name);
    if (!is_type_name(in.name))
        return dk_fail(DK_ERR_ARG,
                       "dk_register: %s type name '%s' is not valid "
                       "(letters, digits, '_' and '.', not starting with a digit or '.')",
                       in.kind, in.name);
    /* From here on messages can name the type the way a user would. */
    char *label = dkh_asprintf("%s type '%s'", in.kind, in.name);
    dk_status s = DK_OK;
    dkh_type *t = NULL;

    if (!in.summary || !in.summary[0]) {
        s = dk_fail(DK_ERR_ARG, "%s: no summary (a one-line description is required)", label);
        goto done;
    }
    size_t host_vt = iface_vtable_size(in.iface);
    if (!host_vt) {
        s = dk_fail(DK_ERR_ARG, "%s: interface %d is not a known dk_iface", label, (int)in.iface);
        goto done;
    }
    dk_iface want = dkh_reg_kind_iface_staged(r, g, in.kind);
    if (want && want != in.iface) {
        s = dk_fail(DK_ERR_ARG, "%s: declares the %s interface, but kind '%s' uses %s", label,
                    dkh_iface_name(in.iface), in.kind, dkh_iface_name(want));
        goto done;
    }
    if (!in.vtable) {
        s = dk_fail(DK_ERR_ARG, "%s: vtable is NULL", label);
        goto done;
    }
    const dk_vtable *vt = in.vtable;
    if (vt->struct_size < sizeof(dk_vtable)) {
        s = dk_fail(DK_ERR_ARG, "%s: vtable struct_size %u is smaller than its head (%zu)", label,
                    vt->struct_size, sizeof(dk_vtable));
        goto done;
    }
    if (!vt->create || !vt->destroy) {
        s = dk_fail(DK_ERR_ARG, "%s: vtable has no %s", label, !vt->create ? "create" : "destroy");
        goto done;
    }
    if (in.n_params && in.param_size < PARAM_MIN_SIZE) {
        s = dk_fail(DK_ERR_ARG, "%s: param_size %u is smaller than %zu (ABI 1.0); use DK_PARAMS",
                    label, in.param_size, PARAM_MIN_SIZE);
        goto done;
    }

    t = calloc(1, sizeof *t);
    DKH_ASSERT(t != NULL);
    t->info.struct_size = (uint32_t)sizeof(dk_type_info);
    t->info.kind = dkh_strdup(in.kind);
    t->info.name = dkh_strdup(in.name);
    t->info.summary = dkh_strdup(in.summary);
    t->info.iface = in.iface;
    t->info.param_size = (uint32_t)sizeof(dk_param);
    /* The vtable copy has the host's size for this interface; slots the
     * plugin's SDK lacked stay NULL, which means "not implemented". */
    void *vcopy = calloc(1, host_vt);
    DKH_ASSERT(vcopy != NULL);
    memcpy(vcopy, vt, vt->struct_size < host_vt ? vt->struct_size : host_vt);
    ((dk_vtable *)vcopy)->struct_size = (uint32_t)host_vt;
    t->info.vtable = vcopy;

    dk_param *params = NULL;
    s = copy_params(in.params, in.n_params, in.param_size, 0, label, &params);
    if (s != DK_OK)
        goto done;
    t->info.params = params;
    t->info.n_params = in.n_params;
    s = dkh_schema_check(params, in.n_params);
    if (s != DK_OK)
        dk_error_prefix("%s", label);

done:
    free(label);
    if (s != DK_OK) {
        dkh_type_free(t);
        return s;
    }
    *out = t;
    return DK_OK;
}

/* Checks, copies and stages one type for the session g. */
static dk_status stage(dk_registrar *g, const dk_type_info *info)
{
    dkh_type *t = NULL;
    DK_TRY(dkh_type_copy(g->reg, g, info, &t));
    const char *self = g->path ? g->path : "the host";
    const dkh_type *old = dkh_reg_lookup(g->reg, t->info.kind, t->info.name);
    /* A reload registers the types of the build it replaces once more. */
    if (old && g->replacing && old->plugin == &g->replacing->pub)
        old = NULL;
    dk_status s = DK_OK;
    if (old) {
        if (old->plugin)
            s = dk_fail(DK_ERR_DUPLICATE,
                        "%s: %s type '%s' is already registered by %s (plugin '%s')", self,
                        t->info.kind, t->info.name, old->plugin->path, old->plugin->name);
        else
            s = dk_fail(DK_ERR_DUPLICATE, "%s: %s type '%s' is already registered by the host",
                        self, t->info.kind, t->info.name);
    }
    for (size_t i = 0; s == DK_OK && i < g->n_pending; i++)
        if (strcmp(g->pending[i]->info.kind, t->info.kind) == 0 &&
            strcmp(g->pending[i]->info.name, t->info.name) == 0)
            s = dk_fail(DK_ERR_DUPLICATE, "%s: %s type '%s' is registered twice", self,
                        t->info.kind, t->info.name);
    if (s != DK_OK) {
        dkh_type_free(t);
        return s;
    }
    t->plugin = g->plugin ? &g->plugin->pub : NULL;
    if (g->n_pending == g->cap_pending) {
        g->cap_pending = g->cap_pending ? g->cap_pending * 2 : 8;
        g->pending = realloc(g->pending, g->cap_pending * sizeof *g->pending);
        DKH_ASSERT(g->pending != NULL);
    }
    g->pending[g->n_pending++] = t;
    return DK_OK;
}

dk_status dk_register(dk_registrar *reg, const dk_type_info *info)
{
    if (!reg)
        return dk_fail(DK_ERR_ARG, "dk_register: registrar is NULL (call it from the plugin's "
                                   "init with the registrar init received)");
    /* Remember what was attempted, so a config naming it later can be told
     * this plugin tried to provide it and why it was refused. */
    if (info && info->struct_size >= TYPE_INFO_MIN_SIZE && info->kind && info->name) {
        if (reg->n_attempted == reg->cap_attempted) {
            reg->cap_attempted = reg->cap_attempted ? reg->cap_attempted * 2 : 8;
            reg->attempted = realloc(reg->attempted, reg->cap_attempted * sizeof *reg->attempted);
            DKH_ASSERT(reg->attempted != NULL);
        }
        reg->attempted[reg->n_attempted++] = dkh_asprintf("%s/%s", info->kind, info->name);
    }
    dk_status s = stage(reg, info);
    /* A plugin may ignore the status; the loader still refuses it. */
    if (s != DK_OK && reg->failed == DK_OK) {
        reg->failed = s;
        reg->fail_msg = dkh_strdup(dk_last_error());
    }
    return s;
}

/* Custom ops: checked and staged by core/tensor/custom_op.c, which owns the
 * op table; this side only knows the session and the plugin it belongs to. */
dk_status dk_op_register(dk_registrar *reg, const dk_op_info *info, int32_t *id)
{
    if (id)
        *id = -1;
    if (!reg)
        return dk_fail(DK_ERR_ARG, "dk_op_register: registrar is NULL (call it from the "
                                   "plugin's init with the registrar init received)");
    dkh_op_owner owner = {.serial = reg->plugin ? reg->plugin->serial : 0,
                          .path = reg->path,
                          .session = reg};
    dk_status s = dkh_custom_op_stage(info, &owner, id);
    /* As with types: an ignored failure still refuses the plugin. */
    if (s != DK_OK && reg->failed == DK_OK) {
        reg->failed = s;
        reg->fail_msg = dkh_strdup(dk_last_error());
    }
    return s;
}

bool dkh_plugin_hold(uint64_t serial, int delta, const char **path)
{
    const dkh_registry *r = dkh_registry_current();
    size_t n = r ? dkh_registry_n_plugins(r) : 0;
    for (size_t i = 0; i < n; i++) {
        /* Every plugin the registry hands out is the head of its record. */
        dkh_plugin_rec *p = (dkh_plugin_rec *)dkh_registry_plugin_at(r, i);
        if (p->serial != serial)
            continue;
        if (delta > 0)
            atomic_fetch_add(&p->live, (size_t)delta);
        else if (delta < 0)
            atomic_fetch_sub(&p->live, (size_t)-delta);
        if (path)
            *path = p->pub.path;
        return true;
    }
    return false;
}

dk_status dkh_registry_add_builtin(dkh_registry *r, const dk_type_info *info)
{
    dk_registrar g;
    dkh_registrar_init(&g, r, NULL, NULL);
    dk_status s = stage(&g, info);
    if (s == DK_OK)
        dkh_reg_commit(r, NULL, &g);
    dkh_custom_ops_finish(&g, s == DK_OK);
    dkh_registrar_fini(&g);
    return s;
}
