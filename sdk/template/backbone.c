/* template_name.c — TemplateName, a backbone for dkhost.
 *
 * Written by `dkhost new-plugin --kind backbone`: a working backbone to grow
 * into your own. Each of `num_stages` stages is a 3x3 convolution (with bias,
 * padding 1), a ReLU and a 2x2 max-pool, so an (N, in_channels, H, W) image
 * becomes one feature map (N, channels, H / 2^num_stages, W / 2^num_stages),
 * handed on as "feats" (a list of maps, shallowest first) to a neck or head.
 *
 * Build:  make                      (pkg-config), or
 *         cmake -S . -B build && cmake --build build   (find_package(dk))
 * Use:    dkhost --plugins . list-registry --kind backbone
 *         dkhost --plugins . check template_name.yaml
 */
#include <dk/dk.h>

#include <math.h>
#include <stdio.h>

#define MAX_STAGES 4

typedef struct template_name_state {
    int64_t num_stages;
    dk_tensor *weight[MAX_STAGES]; /* (channels, in, 3, 3); borrowed: the module owns it */
    dk_tensor *bias[MAX_STAGES];   /* (channels) */
} template_name_state;

static void template_name_destroy(void *self)
{
    /* Parameters belong to the module: only the state struct is ours. */
    dk_free(self);
}

/* Declares stage i's parameters with PyTorch's nn.Conv2d initialisation. */
static dk_status declare_stage(template_name_state *b, int64_t i, int64_t in, int64_t out)
{
    char w[32], bias[32];
    snprintf(w, sizeof w, "stages.%lld.weight", (long long)i);
    snprintf(bias, sizeof bias, "stages.%lld.bias", (long long)i);
    b->weight[i] = dk_module_param(w, 4, (int64_t[]){out, in, 3, 3},
                                   &(dk_init){.kind = DK_INIT_KAIMING_UNIFORM, .a = sqrt(5.0)});
    if (!b->weight[i])
        return dk_last_status();
    b->bias[i] = dk_module_param(bias, 1, &out,
                                 &(dk_init){.kind = DK_INIT_FAN_IN_UNIFORM, .b = (double)(in * 9)});
    return b->bias[i] ? DK_OK : dk_last_status();
}

static dk_status template_name_create(const dk_cfg *cfg, void **self)
{
    template_name_state *b = dk_calloc(1, sizeof *b);
    if (!b)
        return dk_fail(DK_ERR_NOMEM, "TemplateName: out of memory");
    /* The host validated the config against the schema below and filled in
     * the defaults: every value is there and in its range. */
    int64_t in_channels = 0, channels = 0;
    dk_status s = dk_cfg_get_int(cfg, "in_channels", &in_channels);
    if (s == DK_OK)
        s = dk_cfg_get_int(cfg, "channels", &channels);
    if (s == DK_OK)
        s = dk_cfg_get_int(cfg, "num_stages", &b->num_stages);
    for (int64_t i = 0; s == DK_OK && i < b->num_stages; i++)
        s = declare_stage(b, i, i == 0 ? in_channels : channels, channels);
    if (s != DK_OK) {
        template_name_destroy(b); /* what was declared is freed by the host */
        return s;
    }
    *self = b;
    return DK_OK;
}

static dk_status template_name_forward(void *self, const dk_dict *in, dk_forward_mode mode,
                                       dk_dict *out)
{
    (void)mode; /* a backbone gives the same features in every mode */
    const template_name_state *b = self;
    static const int64_t one[2] = {1, 1}, two[2] = {2, 2}, zero[2] = {0, 0};
    dk_tensor *x = dk_dict_tensor(in, "img"); /* (N, in_channels, H, W) */
    if (!x)
        return dk_fail(DK_ERR_ARG, "TemplateName: the input has no tensor 'img' (N, C, H, W)");
    for (int64_t i = 0; i < b->num_stages; i++) {
        x = dk_conv2d(x, b->weight[i], b->bias[i], one, one, one, 1); /* (N, channels, H, W) */
        x = dk_max_pool2d(dk_relu(x), two, two, zero, one, false);    /* (N, channels, H/2, W/2) */
    }
    /* An op given NULL returns NULL and keeps the first cause: check once. */
    if (!x)
        return dk_last_status();
    return dk_dict_set_tensors(out, "feats", &x, 1);
}

/* The schema: dkhost checks every config against it before anything is
 * created, and `dkhost list-registry` prints it as the type's documentation. */
static const dk_param template_name_params[] = {
    {.name = "in_channels", .type = DK_PARAM_INT, .def = "3", .min = "1", .max = "4096",
     .doc = "channels of the input image"},
    {.name = "channels", .type = DK_PARAM_INT, .def = "16", .min = "1", .max = "4096",
     .doc = "channels of every stage"},
    {.name = "num_stages", .type = DK_PARAM_INT, .def = "2", .min = "1", .max = "4",
     .doc = "conv + ReLU + 2x2 max-pool stages; each halves the height and width"},
};

static const dk_module_vtable template_name_vtable = {
    .struct_size = sizeof(dk_module_vtable),
    .create = template_name_create,
    .destroy = template_name_destroy,
    .forward = template_name_forward,
};

static const dk_type_info template_name_types[] = {{
    DK_TYPE_INFO_HEAD,
    .kind = "backbone",
    .name = "TemplateName",
    .summary = "Stages of 3x3 conv, ReLU and 2x2 max-pool",
    .iface = DK_IFACE_MODULE,
    .vtable = &template_name_vtable,
    DK_PARAMS(template_name_params),
}};

/* .license is an SPDX identifier: put yours. */
DK_PLUGIN_DEFINE_TYPES(template_name_types,
                       .name = "template_name", .version = "0.1.0",
                       .summary = "The TemplateName backbone",
                       .license = "MIT", .source = "")
