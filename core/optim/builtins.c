/* core/optim/builtins.c — the optimizer and schedule types the host itself
 * registers (no plugin provides them), and the config-message helpers the
 * files of core/optim share.
 */
#include "optim_impl.h"

#include <stdarg.h>

dk_status dkh_optim_register_builtins(dkh_registry *r)
{
    static const dk_type_info *const optimizers[] = {&dkh_sgd_type, &dkh_adam_type,
                                                     &dkh_adamw_type};
    for (size_t i = 0; i < sizeof optimizers / sizeof optimizers[0]; i++)
        DK_TRY(dkh_registry_add_builtin(r, optimizers[i]));
    size_t n;
    const dk_type_info *scheds = dkh_sched_types(&n);
    for (size_t i = 0; i < n; i++)
        DK_TRY(dkh_registry_add_builtin(r, &scheds[i]));
    return DK_OK;
}

const char *dkh_optim_where(const dk_cfg *node)
{
    const char *w = node ? dk_cfg_where(node) : NULL;
    return w && *w ? w : "<config>";
}

dk_status dkh_optim_cfg_fail(const dk_cfg *node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dkh_buf b = DKH_BUF_INIT;
    dkh_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    const char *path = node ? dk_cfg_path(node) : NULL;
    dk_status s = dk_fail(DK_ERR_CONFIG, "%s: %s: %s", dkh_optim_where(node),
                          path && *path ? path : "<config>", dkh_buf_str(&b));
    dkh_buf_fini(&b);
    return s;
}
