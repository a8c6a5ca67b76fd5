/* ResNetCifar — the CIFAR ResNet of He et al. (2016, section 4.2): a 3x3 stem
 * (conv + BN + ReLU, no pooling), then three stages of 3x3 basic blocks at
 * 16/32/64 channels (times base_channels / 16), depth 6n+2, with option-A
 * (zero-padded identity) or option-B (1x1 projection) shortcuts.
 *
 * Parameter names follow the common PyTorch port (conv1, bn1, layer1.0.conv1,
 * ..., layer2.0.downsample.0 for option B), so ResNet-20 has 0.27M parameters
 * with a 10-class fc and is the network of bench/step_bench.c.
 */
#include "cifar.h"
#include "layers.h"

#include <string.h>

#define CIFAR_STAGES 3

typedef struct resnet_cifar {
    conv2d conv1;
    batch_norm bn1;
    res_stages stages;
} resnet_cifar;

static void resnet_cifar_destroy(void *self)
{
    resnet_cifar *r = self;
    res_stages_fini(&r->stages);
    dk_free(r);
}

static dk_status resnet_cifar_create(const dk_cfg *cfg, void **self)
{
    resnet_cifar *r = dk_calloc(1, sizeof *r);
    if (!r)
        return dk_fail(DK_ERR_NOMEM, "ResNetCifar: out of memory");
    int64_t depth, in_channels, base;
    const char *shortcut = NULL;
    uint32_t out_mask = 0;
    dk_status s = dk_cfg_get_int(cfg, "depth", &depth);
    if (s == DK_OK)
        s = dk_cfg_get_int(cfg, "in_channels", &in_channels);
    if (s == DK_OK)
        s = dk_cfg_get_int(cfg, "base_channels", &base);
    if (s == DK_OK)
        s = dk_cfg_get_str(cfg, "shortcut", &shortcut);
    if (s == DK_OK)
        s = read_out_indices(cfg, CIFAR_STAGES, &out_mask);
    if (s == DK_OK)
        s = conv2d_declare(&r->conv1, "conv1", in_channels, base, 3, 1, 1, false);
    if (s == DK_OK)
        s = batch_norm_declare(&r->bn1, "bn1", base);
    if (s == DK_OK) {
        /* The schema's choices keep depth at 6n+2. */
        int64_t n = (depth - 2) / 6;
        const int64_t blocks[CIFAR_STAGES] = {n, n, n};
        s = res_stages_declare(&r->stages, CIFAR_STAGES, blocks, BLOCK_BASIC, base, base,
                               strcmp(shortcut, "A") == 0, out_mask);
    }
    if (s != DK_OK) {
        resnet_cifar_destroy(r);
        return s;
    }
    *self = r;
    return DK_OK;
}

static dk_status resnet_cifar_forward(void *self, const dk_dict *in, dk_forward_mode mode,
                                      dk_dict *out)
{
    (void)mode; /* a backbone emits features in every mode */
    const resnet_cifar *r = self;
    dk_tensor *x = input_images(in, "ResNetCifar"); /* (N, C, H, W) */
    if (!x)
        return dk_last_status();
    x = dk_relu_(batch_norm_forward(&r->bn1, conv2d_forward(&r->conv1, x))); /* (N, 16, H, W) */
    return res_stages_forward(&r->stages, x, out); /* ..., (N, 64, H / 4, W / 4) */
}

static const dk_param resnet_cifar_params[] = {
    {.name = "depth", .type = DK_PARAM_INT, .def = "20", .choices = "20|32|44|56|110",
     .doc = "layers: 6n+2 with n basic blocks per stage"},
    {.name = "in_channels", .type = DK_PARAM_INT, .def = "3", .min = "1",
     .doc = "channels of the input images"},
    {.name = "base_channels", .type = DK_PARAM_INT, .def = "16", .min = "1", .max = "1024",
     .doc = "channels of the first stage (doubled at each later stage)"},
    {.name = "shortcut", .type = DK_PARAM_STRING, .def = "A", .choices = "A|B",
     .doc = "A: zero-padded identity, B: 1x1 projection where shapes change"},
    {.name = "out_indices", .type = DK_PARAM_LIST, .elem = DK_PARAM_INT, .def = "[2]",
     .min = "0", .max = "2", .doc = "stages (0-2) whose outputs go into 'feats', deepest last"},
};

static const dk_module_vtable resnet_cifar_vtable = {
    .struct_size = sizeof(dk_module_vtable),
    .create = resnet_cifar_create,
    .destroy = resnet_cifar_destroy,
    .forward = resnet_cifar_forward,
};

const dk_type_info resnet_cifar_type = {
    DK_TYPE_INFO_HEAD,
    .kind = "backbone",
    .name = "ResNetCifar",
    .summary = "CIFAR ResNet (depth 6n+2, 3 stages of basic blocks) for 32x32 images",
    .iface = DK_IFACE_MODULE,
    .vtable = &resnet_cifar_vtable,
    DK_PARAMS(resnet_cifar_params),
};
