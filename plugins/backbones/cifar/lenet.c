/* LeNet — two conv stages (3x3 convolution with bias and padding 1, optional
 * batch-norm, ReLU, 2x2 max-pool) followed by flattening: the small
 * Fashion-MNIST backbone of the benchmarks.
 *
 * The fully-connected layers of the benchmarks' "LeNet-ish" network
 * (bench/step_bench.c: fc 3136->128 + ReLU, fc 128->10) belong to the head:
 * LinearClsHead with hidden_channels [128] (configs/_base_/models/lenet.yaml),
 * so the backbone stays reusable under any head. Its one feature map in
 * "feats" is already flat: (N, channels[1] * (input_size / 4)^2).
 */
#include "cifar.h"
#include "layers.h"

#include <stdio.h>

typedef struct lenet {
    int64_t in_channels;
    int64_t channels[2]; /* output channels of the two conv stages */
    int64_t input_size;  /* square input side */
    bool batch_norm;
    int64_t out_features; /* flattened features the backbone emits */
    conv2d conv[2];       /* "conv1", "conv2" */
    batch_norm bn[2];     /* "bn1", "bn2" when batch_norm */
} lenet;

static dk_status declare_stages(lenet *n)
{
    int64_t cin = n->in_channels;
    for (int i = 0; i < 2; i++) {
        char name[8];
        snprintf(name, sizeof name, "conv%d", i + 1);
        DK_TRY(conv2d_declare(&n->conv[i], name, cin, n->channels[i], 3, 1, 1, true));
        snprintf(name, sizeof name, "bn%d", i + 1);
        if (n->batch_norm)
            DK_TRY(batch_norm_declare(&n->bn[i], name, n->channels[i]));
        cin = n->channels[i];
    }
    return DK_OK;
}

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
    if (s == DK_OK)
        s = declare_stages(n);
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

static dk_status lenet_forward(void *self, const dk_dict *in, dk_forward_mode mode, dk_dict *out)
{
    (void)mode; /* a backbone emits features in every mode */
    const lenet *n = self;
    dk_tensor *x = input_images(in, "LeNet"); /* (N, C, 28, 28) */
    if (!x)
        return dk_last_status();
    const int64_t pool[2] = {2, 2};
    for (int i = 0; i < 2; i++) {
        x = conv2d_forward(&n->conv[i], x);
        if (n->batch_norm)
            x = batch_norm_forward(&n->bn[i], x);
        x = dk_max_pool2d(dk_relu_(x), pool, NULL, NULL, NULL, false); /* (N, 32, 14, 14), ... */
    }
    x = dk_flatten(x, 1, -1); /* (N, 64 * 7 * 7) */
    if (!x)
        return dk_last_status();
    return dk_dict_set_tensors(out, "feats", &x, 1);
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
    .forward = lenet_forward,
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
