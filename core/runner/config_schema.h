/* core/runner/config_schema.h — the keys a whole config may have at its top
 * level, and the pipeline that turns a config file into a validated tree and
 * the objects it describes. */
#ifndef DKH_CONFIG_SCHEMA_H
#define DKH_CONFIG_SCHEMA_H

#include <dk/registry.h>

#include "../plugin/registry.h"

/* The top-level schema (host layout); *n receives its length. Static. */
const dk_param *dkh_config_schema(size_t *n);

/* Loads path, applies each "key=value" override in order, resolves
 * interpolation and validates against the top-level schema and the
 * registry's types, filling defaults. *out is new (dkh_cfg_free). On failure
 * the message names the file (and every problem, one per line). */
dk_status dkh_config_prepare(const char *path, const char *const *overrides, size_t n_overrides,
                             const dkh_registry *reg, dk_cfg **out) DK_CHECK;

/* The objects a validated config describes at its top level (the model, the
 * datasets of each data loader, the evaluators and hooks), in schema order. */
typedef struct dkh_built {
    char *path;      /* e.g. "train_dataloader.dataset" */
    dk_object *obj;
} dkh_built;

/* Builds every top-level object of a validated root (nested objects are
 * built by their parents' create). On failure what was built is freed and
 * the message names the object's key path and location. */
dk_status dkh_config_build(const dk_cfg *root, dkh_built **out, size_t *n_out) DK_CHECK;
void dkh_config_built_free(dkh_built *built, size_t n);

#endif /* DKH_CONFIG_SCHEMA_H */
