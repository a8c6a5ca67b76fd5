/* core/nn/state.c — reading a built module's tensors: the state walk
 * (parameters and buffers, what a checkpoint holds), lookups by dotted name,
 * and the parameter list the optimizer steps.
 *
 * Everything reads the layout dkh_module_finish made once create succeeded,
 * so these are plain array reads that any thread may do.
 */
#include "module_impl.h"

#include <string.h>

size_t dk_module_n_tensors(const dk_object *module)
{
    const dkh_module *m = dkh_object_module(module);
    return m ? m->n_flat : 0;
}

dk_tensor *dk_module_tensor_at(const dk_object *module, size_t i, const char **name,
                               bool *is_buffer)
{
    const dkh_module *m = dkh_object_module(module);
    if (!m || i >= m->n_flat)
        return NULL;
    if (name)
        *name = m->flat[i].name;
    if (is_buffer)
        *is_buffer = m->flat[i].is_buffer;
    return m->flat[i].tensor;
}

dk_tensor *dk_module_find(const dk_object *module, const char *name)
{
    const dkh_module *m = dkh_object_module(module);
    if (!m || !name)
        return NULL;
    for (size_t i = 0; i < m->n_flat; i++)
        if (strcmp(m->flat[i].name, name) == 0)
            return m->flat[i].tensor;
    return NULL;
}

const char *dkh_module_path(const dk_object *module)
{
    const dkh_module *m = dkh_object_module(module);
    return m ? m->path : "";
}

size_t dkh_module_n_params(const dk_object *module)
{
    const dkh_module *m = dkh_object_module(module);
    return m ? m->n_params : 0;
}

dk_tensor *dkh_module_param_at(const dk_object *module, size_t i, const char **name)
{
    const dkh_module *m = dkh_object_module(module);
    if (!m || i >= m->n_params)
        return NULL;
    const dkh_flat *f = &m->flat[m->params[i]];
    if (name)
        *name = f->name;
    return f->tensor;
}

void dkh_module_zero_grad(const dk_object *module)
{
    const dkh_module *m = dkh_object_module(module);
    for (size_t i = 0; m && i < m->n_params; i++) {
        dk_tensor *p = m->flat[m->params[i]].tensor;
        if (dk_tensor_grad(p))
            dk_tensor_zero_grad(p);
    }
}
