/* dk/cfg.h — reading config nodes.
 *
 * A config is a tree of nodes loaded from YAML (with `_base_` inheritance,
 * command-line overrides and `${...}` interpolation already applied). Every
 * node remembers where it came from, so any message can name file:line:col.
 * A type's `create` receives its own node, validated against its schema with
 * defaults filled in, so plugin code reads values without repeating defaults.
 *
 * Nodes are owned by the host and are borrowed by plugins; a node stays valid
 * until the object it was handed to is destroyed.
 *
 *   dk_cfg_kind dk_cfg_kind_of(const dk_cfg *node);   DK_CFG_NULL for NULL
 *   const dk_cfg *dk_cfg_get(const dk_cfg *node, const char *path);
 *       Child by dotted path ("backbone.depth", "pipeline.1.size"; list
 *       elements by index). NULL or "" yields node itself; NULL if absent.
 *   size_t dk_cfg_len(const dk_cfg *node);            entries of a map or list, else 0
 *   const dk_cfg *dk_cfg_at(const dk_cfg *node, size_t i);   i-th value, or NULL
 *   const char *dk_cfg_key_at(const dk_cfg *node, size_t i); i-th key of a map, or NULL
 *   const char *dk_cfg_scalar(const dk_cfg *node);    a scalar's text, else NULL
 *   const char *dk_cfg_where(const dk_cfg *node);     "file.yaml:12:7" (or "<override>")
 *   const char *dk_cfg_path(const dk_cfg *node);      "model.backbone.depth"
 *
 *   dk_status dk_cfg_get_int(const dk_cfg *node, const char *path, int64_t *out);
 *   dk_status dk_cfg_get_float(const dk_cfg *node, const char *path, double *out);
 *   dk_status dk_cfg_get_bool(const dk_cfg *node, const char *path, bool *out);
 *   dk_status dk_cfg_get_str(const dk_cfg *node, const char *path, const char **out);
 *       Typed reads. DK_ERR_NOT_FOUND if absent, DK_ERR_CONFIG if of another
 *       type (an int is accepted as a float); the message names the key path
 *       and file:line:col. Strings are borrowed like nodes.
 */
#ifndef DK_CFG_H
#define DK_CFG_H

#include <dk/types.h>
#include <dk/api.h>

#endif /* DK_CFG_H */
