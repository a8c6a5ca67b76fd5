/* core/nn/forward.c — running a module's forward, and training mode.
 *
 * dk_module_forward makes the module "running" on this thread for the
 * duration of its plugin's forward: dk_module_training reads its flag, and a
 * failure coming out of it is prefixed with its config path. Only the
 * innermost module names itself: it notes the error slot's serial after
 * prefixing, and an enclosing forward that finds the message unchanged passes
 * it up as it is ("model.backbone: conv2d: ..." rather than
 * "model: model.backbone: ..."). Nothing extra runs on the success path.
 */
#include "module_impl.h"

#include <stddef.h>

static _Thread_local const dkh_module *running;
static _Thread_local uint64_t named_serial; /* slot serial after the last prefix; 0: none */

static bool has_forward(const dk_module_vtable *vt)
{
    return vt->struct_size >= offsetof(dk_module_vtable, forward) + sizeof vt->forward &&
           vt->forward != NULL;
}

static void name_failure(const dkh_module *m, const dk_type_info *t, dk_status s)
{
    if (named_serial != 0 && dkh_error_serial() == named_serial)
        return;
    if (dk_last_status() == DK_OK || !dk_last_error()[0])
        dk_fail(s, "%s: forward failed with %s and left no message", t->name, dk_status_name(s));
    dk_error_prefix("%s", m->path);
    named_serial = dkh_error_serial();
}

dk_status dk_module_forward(dk_object *module, const dk_dict *in, dk_forward_mode mode,
                            dk_dict *out)
{
    if (!module)
        return dk_fail(DK_ERR_ARG, "dk_module_forward: module is NULL");
    const dkh_module *m = dkh_object_module(module);
    const dk_type_info *t = dk_object_type(module);
    if (!m)
        return dk_fail(DK_ERR_ARG, "dk_module_forward: %s is a %s type, not a module", t->name,
                       t->kind);
    if (!has_forward(t->vtable))
        return dk_fail(DK_ERR_UNSUPPORTED, "%s: %s has no forward", m->path, t->name);
    if (!in || !out)
        return dk_fail(DK_ERR_ARG, "%s: dk_module_forward: %s dict is NULL", m->path,
                       !in ? "the input" : "the output");
    if ((unsigned)mode >= DK_MODE_COUNT)
        return dk_fail(DK_ERR_ARG, "%s: dk_module_forward: mode %d is not a dk_forward_mode",
                       m->path, (int)mode);
    const dk_module_vtable *vt = t->vtable;
    const dkh_module *outer = running;
    /* Ops keep the first recorded cause, so a whole forward starts from a
     * clear slot: an earlier, unrelated failure must not pass for its cause. */
    if (!outer)
        dk_clear_error();
    running = m;
    dk_status s = vt->forward(dk_object_self(module), in, mode, out);
    running = outer;
    if (s != DK_OK)
        name_failure(m, t, s);
    return s;
}

bool dk_module_training(void)
{
    return running ? running->training : false;
}

void dk_module_train(dk_object *module, bool on)
{
    dkh_module *m = dkh_object_module(module);
    if (!m)
        return;
    m->training = on;
    for (size_t i = 0; i < m->n_own; i++)
        if (m->own[i].child)
            dk_module_train(m->own[i].child, on);
}

bool dkh_module_is_training(const dk_object *module)
{
    const dkh_module *m = dkh_object_module(module);
    return m ? m->training : false;
}
