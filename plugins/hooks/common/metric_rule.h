/* plugins/hooks/common/metric_rule.h — which way a metric improves.
 *
 * CheckpointHook's save_best and EarlyStoppingHook compare validation
 * metrics. Their `rule` is "greater" or "less"; left null it is guessed from
 * the metric's name as mmengine does: names containing "loss" improve by
 * going down, everything else (accuracy, mAP, ...) by going up.
 */
#ifndef DK_HOOKS_METRIC_RULE_H
#define DK_HOOKS_METRIC_RULE_H

#include <dk/dk.h>

/* +1 when larger values of `key` are better, -1 when smaller are. `rule` is
 * "greater", "less" or NULL (guess from key). */
int metric_rule(const char *rule, const char *key);

/* Whether value beats best by more than min_delta in the rule's direction.
 * A non-finite value never does. */
bool metric_improves(int rule, double value, double best, double min_delta);

/* The numeric keys of a metrics dict, comma-separated, for error messages
 * (written into buf, truncated to size). */
void metric_keys(const dk_dict *metrics, char *buf, size_t size);

/* A nullable string option of a hook's config: its text, or NULL for null. */
static inline const char *cfg_opt_str(const dk_cfg *cfg, const char *key)
{
    const dk_cfg *node = dk_cfg_get(cfg, key);
    return dk_cfg_kind_of(node) == DK_CFG_STRING ? dk_cfg_scalar(node) : NULL;
}

#endif
