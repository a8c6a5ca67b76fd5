/* LeNet — two conv stages (conv 3x3, optional batch-norm, ReLU, 2x2 max-pool)
 * followed by flattening: the small Fashion-MNIST backbone of the benchmarks.
 *
 * The layer arithmetic (output channels and spatial size) is worked out at
 * create time so a head can be checked against it; the compute arrives with
 * the tensor runtime.
 */
#include "cifar.h"

typedef struct lenet {
    int64_t in_channels;
    int64_t channels[2]; /* output channels of the two conv stages */
    int64_t input_size;  /* square input side */
    bool batch_norm;
    int64_t out_features; /* flattened features the backbone emits */
} lenet;

static dk_status lenet_create(const dk_cfg *cfg, void **self)
{
    lenet *n = dk_calloc(1, sizeof *n);
    if (!n)
        return dk_fail(DK_ERR_NOMEM, "LeNet: out of memory");
    const dk_cfg *ch = dk_cfg_get(cfg, "channels");
    dk_status s = dk_cfg_get_int(cfg, "in_channels", &n->in_channels);
    if (s == DK_OK)
        s = dk_cfg_get_int(cfg, "input_size", &n->input_size);
    if (s == DK_OK)
        s = dk_cfg_get_bool(cfg, "batch_norm", &n->batch_norm);
    if (s == DK_OK && dk_cfg_len(ch) != 2)
        s = dk_fail(DK_ERR_CONFIG, "%s (%s): LeNet has two conv stages, got %zu channel counts",
                    dk_cfg_path(ch), dk_cfg_where(ch), dk_cfg_len(ch));
    for (size_t i = 0; s == DK_OK && i < 2; i++)
        s = dk_cfg_get_int(ch, i == 0 ? "0" : "1", &n->channels[i]);
    if (s == DK_OK && n->input_size % 4 != 0)
        s = dk_fail(DK_ERR_CONFIG, "%s (%s): LeNet halves the input twice; input_size %lld "
                    "is not a multiple of 4",
                    dk_cfg_path(cfg), dk_cfg_where(cfg), (long long)n->input_size);
    if (s != DK_OK) {
        dk_free(n);
        return s;
    }
    int64_t side = n->input_size / 4;
    n->out_features = n->channels[1] * side * side;
    *self = n;
    return DK_OK;
}

static void lenet_destroy(void *self)
{
    dk_free(self);
}

static const dk_param lenet_params[] = {
    {.name = "in_channels", .type = DK_PARAM_INT, .def = "1", .min = "1",
     .doc = "channels of the input images"},
    {.name = "input_size", .type = DK_PARAM_INT, .def = "28", .min = "4",
     .doc = "side of the square input images"},
    {.name = "channels", .type = DK_PARAM_LIST, .elem = DK_PARAM_INT, .def = "[32, 64]",
     .min = "1", .doc = "output channels of the two conv stages"},
    {.name = "batch_norm", .type = DK_PARAM_BOOL, .def = "true",
     .doc = "batch-norm after each convolution"},
};

static const dk_module_vtable lenet_vtable = {
    .struct_size = sizeof(dk_module_vtable),
    .create = lenet_create,
    .destroy = lenet_destroy,
};

const dk_type_info lenet_type = {
    DK_TYPE_INFO_HEAD,
    .kind = "backbone",
    .name = "LeNet",
    .summary = "Two conv+BN+ReLU+max-pool stages for 28x28 images",
    .iface = DK_IFACE_MODULE,
    .vtable = &lenet_vtable,
    DK_PARAMS(lenet_params),
};
