/* ResNet (CIFAR variant) — three stages of 3x3 basic blocks at 16/32/64
 * channels (times width), depth 6n+2, with option-A (zero-padded identity)
 * or option-B (1x1 projection) shortcuts.
 *
 * create checks the depth rule and derives the block count; the compute
 * arrives with the tensor runtime.
 */
#include "cifar.h"

#include <string.h>

typedef struct resnet {
    int64_t depth;
    int64_t blocks_per_stage;
    int64_t in_channels;
    int64_t base_channels;
    bool projection_shortcut; /* option B */
    int64_t out_channels;
} resnet;

static dk_status resnet_create(const dk_cfg *cfg, void **self)
{
    resnet *r = dk_calloc(1, sizeof *r);
    if (!r)
        return dk_fail(DK_ERR_NOMEM, "ResNet: out of memory");
    const char *shortcut = NULL;
    dk_status s = dk_cfg_get_int(cfg, "depth", &r->depth);
    if (s == DK_OK)
        s = dk_cfg_get_int(cfg, "in_channels", &r->in_channels);
    if (s == DK_OK)
        s = dk_cfg_get_int(cfg, "base_channels", &r->base_channels);
    if (s == DK_OK)
        s = dk_cfg_get_str(cfg, "shortcut", &shortcut);
    if (s != DK_OK) {
        dk_free(r);
        return s;
    }
    r->blocks_per_stage = (r->depth - 2) / 6;
    r->projection_shortcut = strcmp(shortcut, "B") == 0;
    r->out_channels = r->base_channels * 4;
    *self = r;
    return DK_OK;
}

static void resnet_destroy(void *self)
{
    dk_free(self);
}

static const dk_param resnet_params[] = {
    {.name = "depth", .type = DK_PARAM_INT, .def = "20", .choices = "20|32|44|56|110",
     .doc = "layers: 6n+2 with n basic blocks per stage"},
    {.name = "in_channels", .type = DK_PARAM_INT, .def = "3", .min = "1",
     .doc = "channels of the input images"},
    {.name = "base_channels", .type = DK_PARAM_INT, .def = "16", .min = "1", .max = "1024",
     .doc = "channels of the first stage (doubled at each later stage)"},
    {.name = "shortcut", .type = DK_PARAM_STRING, .def = "A", .choices = "A|B",
     .doc = "A: zero-padded identity, B: 1x1 projection where shapes change"},
};

static const dk_module_vtable resnet_vtable = {
    .struct_size = sizeof(dk_module_vtable),
    .create = resnet_create,
    .destroy = resnet_destroy,
};

const dk_type_info resnet_type = {
    DK_TYPE_INFO_HEAD,
    .kind = "backbone",
    .name = "ResNet",
    .summary = "CIFAR ResNet (depth 6n+2, 3 stages of basic blocks)",
    .iface = DK_IFACE_MODULE,
    .vtable = &resnet_vtable,
    DK_PARAMS(resnet_params),
};
