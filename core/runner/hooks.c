/* core/runner/hooks.c — the hooks of a run and their dispatch.
 *
 * The list is default_hooks (by name: a config replaces one by giving the
 * same key another type, removes one with `name: null`) followed by
 * custom_hooks, stably sorted by priority: a hook's `priority` key (a number
 * or one of mmengine's names) or its type's default. Lower runs first; ties
 * keep config order.
 */
#include "runner_impl.h"

#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    int64_t value;
} priority_names[] = {
#define DKH_PRIORITY_NAME_(name, value) {#name, value},
    DK_HOOK_PRIORITY_LIST(DKH_PRIORITY_NAME_)
#undef DKH_PRIORITY_NAME_
};

static dk_status hook_priority(const dk_cfg *cfg, const dk_hook_vtable *vt, int64_t *out)
{
    const dk_cfg *p = dk_cfg_get(cfg, "priority");
    *out = vt->priority;
    if (!p || dk_cfg_kind_of(p) == DK_CFG_NULL)
        return DK_OK;
    if (dk_cfg_kind_of(p) == DK_CFG_INT)
        return dk_cfg_get_int(p, NULL, out);
    const char *s = dk_cfg_scalar(p);
    for (size_t i = 0; s && i < sizeof priority_names / sizeof priority_names[0]; i++) {
        if (strcmp(s, priority_names[i].name) == 0) {
            *out = priority_names[i].value;
            return DK_OK;
        }
    }
    dkh_buf names = DKH_BUF_INIT;
    for (size_t i = 0; i < sizeof priority_names / sizeof priority_names[0]; i++)
        dkh_buf_printf(&names, "%s%s", i ? ", " : "", priority_names[i].name);
    dk_status st = dk_fail(DK_ERR_CONFIG, "%s (%s): priority must be a number or one of %s",
                           dk_cfg_path(p), dk_cfg_where(p), dkh_buf_str(&names));
    dkh_buf_fini(&names);
    return st;
}

static dk_status add_hook(dk_runner *r, const dk_cfg *cfg, char *name)
{
    dk_object *obj = NULL;
    dk_status s = dk_object_build(cfg, "hook", &obj);
    if (s != DK_OK) {
        free(name);
        return s;
    }
    const dk_hook_vtable *vt = dk_object_type(obj)->vtable;
    int64_t prio = 0;
    s = hook_priority(cfg, vt, &prio);
    if (s != DK_OK) {
        dk_object_free(obj);
        free(name);
        return s;
    }
    dkh_hook *hooks = realloc(r->hooks, (r->n_hooks + 1) * sizeof *hooks);
    DKH_ASSERT(hooks != NULL);
    r->hooks = hooks;
    r->hooks[r->n_hooks++] = (dkh_hook){.name = name, .obj = obj, .vt = vt,
                                        .self = dk_object_self(obj), .priority = prio};
    return DK_OK;
}

static bool name_taken(const dk_runner *r, const char *name)
{
    for (size_t i = 0; i < r->n_hooks; i++)
        if (strcmp(r->hooks[i].name, name) == 0)
            return true;
    return false;
}

dk_status dkh_hooks_build(dk_runner *r)
{
    const dk_cfg *defaults = dk_cfg_get(r->cfg, "default_hooks");
    for (size_t i = 0; i < dk_cfg_len(defaults); i++) {
        const dk_cfg *h = dk_cfg_at(defaults, i);
        if (dk_cfg_kind_of(h) == DK_CFG_NULL)
            continue;
        DK_TRY(add_hook(r, h, dkh_strdup(dk_cfg_key_at(defaults, i))));
    }
    const dk_cfg *custom = dk_cfg_get(r->cfg, "custom_hooks");
    for (size_t i = 0; i < dk_cfg_len(custom); i++) {
        const dk_cfg *h = dk_cfg_at(custom, i);
        const char *type = dk_cfg_scalar(dk_cfg_get(h, "type"));
        char *name = dkh_strdup(type ? type : "hook");
        for (int n = 2; name_taken(r, name); n++) {
            free(name);
            name = dkh_asprintf("%s_%d", type ? type : "hook", n);
        }
        DK_TRY(add_hook(r, h, name));
    }
    /* Insertion sort: stable, and the list is short. */
    for (size_t i = 1; i < r->n_hooks; i++) {
        dkh_hook h = r->hooks[i];
        size_t j = i;
        for (; j > 0 && r->hooks[j - 1].priority > h.priority; j--)
            r->hooks[j] = r->hooks[j - 1];
        r->hooks[j] = h;
    }
    return DK_OK;
}

void dkh_hooks_free(dk_runner *r)
{
    for (size_t i = r->n_hooks; i-- > 0;) {
        dk_object_free(r->hooks[i].obj);
        free(r->hooks[i].name);
    }
    free(r->hooks);
    r->hooks = NULL;
    r->n_hooks = 0;
}

static const char *const point_names[] = {
    "none",
#define DKH_POINT_NAME_(point) #point,
    DK_HOOK_POINT_LIST(DKH_POINT_NAME_)
#undef DKH_POINT_NAME_
};

/* The slot for point in a vtable the plugin built, or NULL when absent. */
static dk_status (*slot_of(const dk_hook_vtable *vt, dkh_point point))(void *, dk_runner *)
{
    switch (point) {
#define DKH_POINT_CASE_(p)                                                                  \
    case DKH_POINT_##p:                                                                     \
        return offsetof(dk_hook_vtable, p) + sizeof vt->p <= vt->struct_size ? vt->p : NULL;
        DK_HOOK_POINT_LIST(DKH_POINT_CASE_)
#undef DKH_POINT_CASE_
    default:
        return NULL;
    }
}

dk_status dkh_hook_call(dk_runner *r, dkh_hook *h, dkh_point point)
{
    dk_status (*fn)(void *, dk_runner *) = slot_of(h->vt, point);
    if (!fn)
        return DK_OK;
    dkh_point was = r->point;
    r->point = point;
    dk_status s = fn(h->self, r);
    r->point = was;
    if (s != DK_OK)
        dk_error_prefix("hook %s (%s) %s", h->name, dk_object_type(h->obj)->name,
                        point_names[point]);
    return s;
}

dk_status dkh_hooks_call(dk_runner *r, dkh_point point)
{
    for (size_t i = 0; i < r->n_hooks; i++)
        DK_TRY(dkh_hook_call(r, &r->hooks[i], point));
    return DK_OK;
}
