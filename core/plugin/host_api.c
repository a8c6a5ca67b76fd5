/* core/plugin/host_api.c — fills the dk_host_api table a plugin's init receives.
 *
 * The table is generated from the same list (dk/api_list.h) that generates
 * its type and the plugin-side wrappers, so the three can never disagree on
 * order: a new host function is appended to the list and appears here, in the
 * table type and in the SDK at once. The table is static and const because
 * every plugin shares it for the life of the process.
 */
#include "host_api.h"

#include "../util/util.h"

#define FILL_F_(attr, ret, name, params, args) .name = name,
#define FILL_V_(name, params, args) .name = name,
static const dk_host_api host_api = {.struct_size = (uint32_t)sizeof(dk_host_api),
                                     .abi_major = DK_ABI_MAJOR,
                                     .abi_minor = DK_ABI_MINOR,
                                     DK_HOST_API_LIST(FILL_F_, FILL_V_)};
#undef FILL_F_
#undef FILL_V_

const dk_host_api *dkh_host_api(void)
{
    return &host_api;
}
