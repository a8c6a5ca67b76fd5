/* logger_hook — LoggerHook (text and JSONL log) and IterTimerHook (iteration
 * times and the ETA that LoggerHook prints).
 *
 * The plugin keeps no state outside its hook instances and registers nothing
 * global, so it is flagged unloadable: a sweep may reload a rebuilt copy
 * between runs.
 */
#include "logger_types.h"

static dk_status logger_init(dk_registrar *reg)
{
    DK_TRY(dk_register(reg, &logger_hook_type));
    return dk_register(reg, &iter_timer_hook_type);
}

DK_PLUGIN_DEFINE(logger_init,
                 .name = "logger_hook", .version = "0.2.0",
                 .summary = "Training log (mmcv text lines, JSONL) and iteration timer hooks",
                 .license = "Apache-2.0", .source = "in-tree",
                 .flags = DK_PLUGIN_UNLOADABLE)
