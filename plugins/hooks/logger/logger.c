/* logger_hook — LoggerHook: a text line in mmcv's format every `interval`
 * iterations and a JSONL record per line in the work dir.
 *
 * The plugin holds no state beyond its hook instances, so it is flagged
 * unloadable: a sweep may reload a rebuilt copy between runs. Its hook-point
 * bodies land with the training runner, which provides what they log.
 */
#include <dk/dk.h>

typedef struct logger {
    int64_t interval;
    bool by_epoch;
    bool jsonl;
} logger;

static dk_status logger_create(const dk_cfg *cfg, void **self)
{
    logger *l = dk_calloc(1, sizeof *l);
    if (!l)
        return dk_fail(DK_ERR_NOMEM, "LoggerHook: out of memory");
    dk_status s = dk_cfg_get_int(cfg, "interval", &l->interval);
    if (s == DK_OK)
        s = dk_cfg_get_bool(cfg, "log_metric_by_epoch", &l->by_epoch);
    if (s == DK_OK)
        s = dk_cfg_get_bool(cfg, "jsonl", &l->jsonl);
    if (s != DK_OK) {
        dk_free(l);
        return s;
    }
    *self = l;
    return DK_OK;
}

static void logger_destroy(void *self)
{
    dk_free(self);
}

static const dk_param logger_params[] = {
    {.name = "interval", .type = DK_PARAM_INT, .def = "50", .min = "1",
     .doc = "log every this many iterations"},
    {.name = "log_metric_by_epoch", .type = DK_PARAM_BOOL, .def = "true",
     .doc = "label validation metrics by epoch rather than iteration"},
    {.name = "jsonl", .type = DK_PARAM_BOOL, .def = "true",
     .doc = "also write one JSON record per line to <work_dir>/<timestamp>.jsonl"},
};

static const dk_hook_vtable logger_vtable = {
    .struct_size = sizeof(dk_hook_vtable),
    .create = logger_create,
    .destroy = logger_destroy,
    .priority = 90, /* after the others, so it logs what they recorded */
};

static const dk_type_info logger_types[] = {{
    DK_TYPE_INFO_HEAD,
    .kind = "hook",
    .name = "LoggerHook",
    .summary = "Log losses, learning rate, timing and memory as text and JSONL",
    .iface = DK_IFACE_HOOK,
    .vtable = &logger_vtable,
    DK_PARAMS(logger_params),
}};

DK_PLUGIN_DEFINE_TYPES(logger_types,
                       .name = "logger_hook", .version = "0.1.0",
                       .summary = "Training log hook (text and JSONL)",
                       .license = "Apache-2.0", .source = "in-tree",
                       .flags = DK_PLUGIN_UNLOADABLE)
