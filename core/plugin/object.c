/* core/plugin/object.c — dk_object: an instance of a registered type, built
 * from the config map that describes it.
 *
 * Building is where a user's config meets plugin code, so everything that
 * can be checked is checked before `create` runs: the node is a map, names a
 * type that exists (with a "did you mean" and any refused plugin that could
 * have provided it), and validates against the type's schema with defaults
 * filled in. The object owns a private clone of its node because plugins may
 * keep pointers into it (dk/cfg.h promises the node lives until destroy) while
 * the caller's tree may be edited or freed.
 *
 * An object of a module type also carries its module record (core/nn): made
 * before create so the parameters, buffers and children create declares
 * attach to it, and freed after destroy, since plugin state points at them.
 */
#include "internal.h"

#include "../cfg/cfg.h"
#include "../nn/nn.h"

#include <stdlib.h>
#include <string.h>

struct dk_object {
    const dkh_type *type; /* registry-owned; its plugin is kept loaded by `live` */
    dk_cfg *cfg;          /* the validated clone create received */
    void *self;           /* what create made */
    dkh_module *module;   /* module types only: parameters, buffers, children */
};

static bool blank(const char *s)
{
    return !s || !s[0];
}

/* "model.backbone (cfg.yaml:3:5)": where a message about node points. */
static char *locate(const dk_cfg *node)
{
    const char *path = dk_cfg_path(node);
    const char *where = dk_cfg_where(node);
    if (blank(path))
        path = "<config>";
    if (blank(where))
        return dkh_strdup(path);
    return dkh_asprintf("%s (%s)", path, where);
}

static const char *kind_text(dk_cfg_kind k)
{
    switch (k) {
    case DK_CFG_NULL:
        return "null";
    case DK_CFG_BOOL:
        return "bool";
    case DK_CFG_INT:
        return "int";
    case DK_CFG_FLOAT:
        return "float";
    case DK_CFG_STRING:
        return "string";
    case DK_CFG_LIST:
        return "list";
    case DK_CFG_MAP:
        return "map";
    default:
        return "?";
    }
}

dk_status dk_object_build(const dk_cfg *node, const char *kind, dk_object **out)
{
    if (!out)
        return dk_fail(DK_ERR_ARG, "dk_object_build: out is NULL");
    *out = NULL;
    const dkh_registry *r = dkh_registry_current();
    if (!r)
        return dk_fail(DK_ERR_INTERNAL, "dk_object_build: no registry is current");
    if (!node)
        return dk_fail(DK_ERR_CONFIG, "dk_object_build: no config node (a missing key?)");

    char *at = locate(node);
    const char *what = kind ? kind : "object";
    dk_status s = DK_OK;
    dk_cfg *clone = NULL;
    dk_object *obj = NULL;

    if (dk_cfg_kind_of(node) != DK_CFG_MAP) {
        s = dk_fail(DK_ERR_CONFIG, "%s: expected a map with a 'type' key naming the %s, got %s", at,
                    what, kind_text(dk_cfg_kind_of(node)));
        goto done;
    }
    const dk_cfg *tnode = dk_cfg_get(node, "type");
    if (!tnode) {
        s = dk_fail(DK_ERR_CONFIG, "%s: no 'type' key (which %s to build?)", at, what);
        goto done;
    }
    if (dk_cfg_kind_of(tnode) != DK_CFG_STRING) {
        char *tat = locate(tnode);
        s = dk_fail(DK_ERR_CONFIG, "%s: 'type' must be a string naming the %s, got %s", tat, what,
                    kind_text(dk_cfg_kind_of(tnode)));
        free(tat);
        goto done;
    }
    const char *name = dk_cfg_scalar(tnode);
    const dkh_type *t = dkh_registry_find(r, kind, name);
    if (!t) {
        dkh_buf why = DKH_BUF_INIT;
        dkh_registry_explain_missing(r, kind, name, &why);
        char *tat = locate(tnode);
        s = dk_fail(DK_ERR_NOT_FOUND, "%s: %s", tat, dkh_buf_str(&why));
        free(tat);
        dkh_buf_fini(&why);
        goto done;
    }

    s = dkh_cfg_clone(node, &clone);
    if (s != DK_OK)
        goto done;
    /* Validation reports with its own file:line:col locations. */
    s = dkh_cfg_validate_object(clone, &t->info, r);
    if (s != DK_OK)
        goto done;

    obj = calloc(1, sizeof *obj);
    DKH_ASSERT(obj != NULL);
    obj->type = t;
    obj->cfg = clone;
    if (t->info.iface == DK_IFACE_MODULE)
        obj->module = dkh_module_new(dk_cfg_path(clone), t->info.name);
    const dk_vtable *vt = t->info.vtable;
    void *self = NULL;
    dk_clear_error();
    /* Every object's create runs with its own record current (none for a
     * non-module), so declarations never land in an enclosing module. */
    dkh_module *outer = dkh_module_enter(obj->module);
    s = vt->create(clone, &self);
    dkh_module_enter(outer);
    if (s != DK_OK) {
        if (blank(dk_last_error()) || dk_last_status() == DK_OK)
            dk_fail(s, "create failed with %s and left no message", dk_status_name(s));
        dk_error_prefix("%s: %s", at, t->info.name);
        dkh_module_free(obj->module);
        free(obj);
        obj = NULL;
        goto done;
    }
    obj->self = self;
    if (obj->module)
        dkh_module_finish(obj->module);
    clone = NULL;
    /* Counted so the plugin cannot be unloaded under the object. */
    dkh_reg_object_created(t);
    *out = obj;

done:
    if (clone)
        dkh_cfg_free(clone);
    free(at);
    return s;
}

void dk_object_free(dk_object *obj)
{
    if (!obj)
        return;
    const dk_vtable *vt = obj->type->info.vtable;
    /* The SDK promises destroy never sees NULL (a stateless create may
     * leave self NULL). */
    if (obj->self)
        vt->destroy(obj->self);
    dkh_module_free(obj->module);
    /* The node goes only after destroy: plugin state may point into it. */
    dkh_cfg_free(obj->cfg);
    dkh_reg_object_destroyed(obj->type);
    free(obj);
}

dkh_module *dkh_object_module(const dk_object *obj)
{
    return obj ? obj->module : NULL;
}

void *dk_object_self(const dk_object *obj)
{
    return obj ? obj->self : NULL;
}

const dk_type_info *dk_object_type(const dk_object *obj)
{
    return obj ? &obj->type->info : NULL;
}
