/* ResNet — the ImageNet ResNet of He et al. (2016) as torchvision builds it:
 * a 7x7 stride-2 stem (conv + BN + ReLU) and a 3x3 stride-2 max-pool, then
 * four stages of basic blocks (depth 18, 34) or bottleneck blocks (50, 101,
 * 152) at 64/128/256/512 planes, with 1x1 projection shortcuts where shapes
 * change and the stride on the 3x3 convolution of a bottleneck (v1.5).
 *
 * Parameter names are torchvision's (conv1, bn1, layer1.0.conv1, ...,
 * layer2.0.downsample.0), so ResNet-18 with a 1000-class LinearClsHead has
 * torchvision's 11.69M parameters. A 224x224 image gives 7x7 features at
 * the last stage.
 */
#include "cifar.h"
#include "layers.h"

#define RESNET_STAGES 4

typedef struct resnet {
    conv2d conv1;
    batch_norm bn1;
    res_stages stages;
} resnet;

/* Blocks per stage and block kind of each depth. */
static dk_status depth_layout(const dk_cfg *cfg, int64_t depth, int64_t blocks[RESNET_STAGES],
                              block_kind *kind)
{
    static const struct {
        int64_t depth;
        block_kind kind;
        int64_t blocks[RESNET_STAGES];
    } layouts[] = {
        {18, BLOCK_BASIC, {2, 2, 2, 2}},       {34, BLOCK_BASIC, {3, 4, 6, 3}},
        {50, BLOCK_BOTTLENECK, {3, 4, 6, 3}},  {101, BLOCK_BOTTLENECK, {3, 4, 23, 3}},
        {152, BLOCK_BOTTLENECK, {3, 8, 36, 3}},
    };
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++)
        if (layouts[i].depth == depth) {
            for (int s = 0; s < RESNET_STAGES; s++)
                blocks[s] = layouts[i].blocks[s];
            *kind = layouts[i].kind;
            return DK_OK;
        }
    const dk_cfg *d = dk_cfg_get(cfg, "depth");
    return dk_fail(DK_ERR_CONFIG, "%s (%s): ResNet has no depth %lld", dk_cfg_path(d),
                   dk_cfg_where(d), (long long)depth);
}

static void resnet_destroy(void *self)
{
    resnet *r = self;
    res_stages_fini(&r->stages);
    dk_free(r);
}

static dk_status resnet_create(const dk_cfg *cfg, void **self)
{
    resnet *r = dk_calloc(1, sizeof *r);
    if (!r)
        return dk_fail(DK_ERR_NOMEM, "ResNet: out of memory");
    int64_t depth, in_channels, base, blocks[RESNET_STAGES];
    block_kind kind = BLOCK_BASIC;
    uint32_t out_mask = 0;
    dk_status s = dk_cfg_get_int(cfg, "depth", &depth);
    if (s == DK_OK)
        s = dk_cfg_get_int(cfg, "in_channels", &in_channels);
    if (s == DK_OK)
        s = dk_cfg_get_int(cfg, "base_channels", &base);
    if (s == DK_OK)
        s = depth_layout(cfg, depth, blocks, &kind);
    if (s == DK_OK)
        s = read_out_indices(cfg, RESNET_STAGES, &out_mask);
    if (s == DK_OK)
        s = conv2d_declare(&r->conv1, "conv1", in_channels, base, 7, 2, 3, false);
    if (s == DK_OK)
        s = batch_norm_declare(&r->bn1, "bn1", base);
    if (s == DK_OK)
        s = res_stages_declare(&r->stages, RESNET_STAGES, blocks, kind, base, base, false,
                               out_mask);
    if (s != DK_OK) {
        resnet_destroy(r);
        return s;
    }
    *self = r;
    return DK_OK;
}

static dk_status resnet_forward(void *self, const dk_dict *in, dk_forward_mode mode, dk_dict *out)
{
    (void)mode; /* a backbone emits features in every mode */
    const resnet *r = self;
    dk_tensor *x = input_images(in, "ResNet"); /* (N, C, 224, 224) */
    if (!x)
        return dk_last_status();
    x = dk_relu_(batch_norm_forward(&r->bn1, conv2d_forward(&r->conv1, x))); /* (N, 64, 112, 112) */
    const int64_t k[2] = {3, 3}, st[2] = {2, 2}, pad[2] = {1, 1};
    x = dk_max_pool2d(x, k, st, pad, NULL, false); /* (N, 64, 56, 56) */
    return res_stages_forward(&r->stages, x, out); /* ..., (N, 512 or 2048, 7, 7) */
}

static const dk_param resnet_params[] = {
    {.name = "depth", .type = DK_PARAM_INT, .def = "50", .choices = "18|34|50|101|152",
     .doc = "18 and 34: basic blocks; 50, 101 and 152: bottleneck blocks"},
    {.name = "in_channels", .type = DK_PARAM_INT, .def = "3", .min = "1",
     .doc = "channels of the input images"},
    {.name = "base_channels", .type = DK_PARAM_INT, .def = "64", .min = "1", .max = "1024",
     .doc = "planes of the first stage (doubled at each later stage)"},
    {.name = "out_indices", .type = DK_PARAM_LIST, .elem = DK_PARAM_INT, .def = "[3]",
     .min = "0", .max = "3", .doc = "stages (0-3) whose outputs go into 'feats', deepest last"},
};

static const dk_module_vtable resnet_vtable = {
    .struct_size = sizeof(dk_module_vtable),
    .create = resnet_create,
    .destroy = resnet_destroy,
    .forward = resnet_forward,
};

const dk_type_info resnet_type = {
    DK_TYPE_INFO_HEAD,
    .kind = "backbone",
    .name = "ResNet",
    .summary = "ImageNet ResNet (depth 18-152, 7x7 stem, basic or bottleneck blocks)",
    .iface = DK_IFACE_MODULE,
    .vtable = &resnet_vtable,
    DK_PARAMS(resnet_params),
};
