/* core/plugin/host_api.h — the one host API table handed to every plugin. */
#ifndef DKH_HOST_API_H
#define DKH_HOST_API_H

#include <dk/api.h>

/* The table generated from dk/api_list.h; static, borrowed for the process. */
const dk_host_api *dkh_host_api(void);

#endif /* DKH_HOST_API_H */
