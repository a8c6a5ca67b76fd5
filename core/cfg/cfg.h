/* core/cfg/cfg.h — the host side of configs: load, merge, override,
 * interpolate, validate, dump.
 *
 * The pipeline dkhost runs on a config file:
 *
 *     dkh_cfg_load(path)                 YAML -> tree, `_base_` merged recursively
 *     dkh_cfg_override(root, "a.b=v")    each --cfg-options assignment, in order
 *     dkh_cfg_resolve(root)              `${a.b.c}` interpolation, cycles are errors
 *     dkh_cfg_validate(root, schema,reg) every error at once; defaults filled in
 *
 * Every node keeps the file:line:column it came from (overrides say
 * "<cfg-options>"), so each message can point at the exact spot. The read
 * accessors plugins use are the dk_cfg_* entries of the host API (dk/cfg.h).
 */
#ifndef DKH_CFG_H
#define DKH_CFG_H

#include <dk/cfg.h>
#include <dk/registry.h>

#include "../util/util.h"

struct dkh_registry;

/* Loads a YAML file: parses it, then merges the files its `_base_` list
 * names (relative to it; recursively; maps deep-merge, lists and scalars
 * replace, `_delete_: true` in a map replaces the base's map wholesale) and
 * removes the `_base_` and `_delete_` keys. Cycles among bases are errors.
 * *out is new (dkh_cfg_free). Errors name the file and line. */
dk_status dkh_cfg_load(const char *path, dk_cfg **out) DK_CHECK;

/* Parses YAML text (one document) with `name` standing for the file name in
 * locations; no `_base_` processing. *out is new. */
dk_status dkh_cfg_parse(const char *text, const char *name, dk_cfg **out) DK_CHECK;

void dkh_cfg_free(dk_cfg *root);
/* Deep copy; *out is new. Its nodes keep the original's key paths
 * (dk_cfg_path), so messages about the copy point at the same keys. */
dk_status dkh_cfg_clone(const dk_cfg *node, dk_cfg **out) DK_CHECK;

/* Applies one `--cfg-options` assignment: "model.backbone.depth=50",
 * "data.train.pipeline.1.size=[320,320]", "name='a b'". The key is a dotted
 * path (list elements by index; a quoted segment may contain dots); the value
 * is YAML flow text, so 50 is an int and '50' a string. Missing map keys are
 * created; an index past a list's end is an error. */
dk_status dkh_cfg_override(dk_cfg *root, const char *assignment) DK_CHECK;

/* "key='value'": the assignment that sets key to the string value exactly as
 * it is (a YAML single-quoted scalar, quotes doubled), such as a work dir
 * from the command line. New string. */
char *dkh_cfg_string_assignment(const char *key, const char *value);

/* Replaces `${a.b.c}` references: a scalar that is exactly one reference
 * takes a copy of the referenced node (any type); references inside a longer
 * string are replaced by the referenced scalar's text. References resolve
 * against the root, recursively; a cycle is an error naming the chain. */
dk_status dkh_cfg_resolve(dk_cfg *root) DK_CHECK;

/* Validates root against `schema` (the top level's keys; n entries, host
 * layout) and, through every nested `type:` map, against the registered
 * types' schemas. Collects every error (unknown key with "did you mean",
 * wrong type, out of range, not among choices, missing required key, unknown
 * type with the closest registered names and refused plugins), one per line
 * as "file:line:col: key.path: message", and returns DK_ERR_CONFIG with all
 * of them. On success fills in every default so plugins read values without
 * repeating them. */
dk_status dkh_cfg_validate(dk_cfg *root, const dk_param *schema, size_t n,
                           const struct dkh_registry *reg) DK_CHECK;

/* Validates one type's map (as dk_object_build does for a nested object)
 * against that type's schema, filling defaults. */
dk_status dkh_cfg_validate_object(dk_cfg *node, const dk_type_info *type,
                                  const struct dkh_registry *reg) DK_CHECK;

/* Checks a schema declaration a plugin registers: names unique and
 * identifiers, types known, every default parses and satisfies its own
 * type, range and choices, min <= max, OBJECT* params name a kind, STRUCT
 * params have fields (checked recursively). Host layout, n entries. The
 * message names the parameter. */
dk_status dkh_schema_check(const dk_param *params, size_t n) DK_CHECK;

/* Writes node as block-style YAML that dkh_cfg_parse reads back to the same
 * tree (same kinds, values and key order). */
void dkh_cfg_dump(const dk_cfg *node, dkh_buf *out);

/* Structural equality (kinds, values, key order); locations ignored. */
bool dkh_cfg_equal(const dk_cfg *a, const dk_cfg *b);

/* A parameter type's name as schemas and list-registry spell it: "int",
 * "object_list", "struct"; "?" outside the enum. Static. */
const char *dkh_param_type_name(dk_param_type t);

/* Mutable lookup for the host (same path syntax as dk_cfg_get). */
dk_cfg *dkh_cfg_get_mut(dk_cfg *node, const char *path);

#endif /* DKH_CFG_H */
