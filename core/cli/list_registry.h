/* core/cli/list_registry.h — `dkhost list-registry`: what the plugins offer. */
#ifndef DKH_LIST_REGISTRY_H
#define DKH_LIST_REGISTRY_H

#include "../plugin/registry.h"
#include "../util/util.h"

/* Appends to out a listing of r: the loaded plugins, the types grouped by
 * kind with their parameter schemas, and the refused files with reasons.
 * kind_filter (NULL = everything) keeps only types of that kind and the
 * plugins providing them; an unknown kind is DK_ERR_NOT_FOUND with a
 * message listing the known kinds. json selects one JSON object
 *   {"host": {...}, "plugins": [...], "types": [...], "refused": [...]}
 * with a stable key order instead of text. */
dk_status dkh_list_registry(const dkh_registry *r, const char *kind_filter, bool json,
                            dkh_buf *out) DK_CHECK;

#endif /* DKH_LIST_REGISTRY_H */
