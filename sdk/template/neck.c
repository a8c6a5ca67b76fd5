/* template_name.c — TemplateName, a neck for dkhost.
 *
 * Written by `dkhost new-plugin --kind neck`: a working neck to grow into
 * your own. A neck maps the backbone's "feats" (a list of maps, shallowest
 * first) to a new "feats" for the head. This one averages each map over its
 * spatial dimensions ((N, C, H, W) -> (N, C); an (N, C) map is kept), then
 * projects it with a linear layer and a ReLU to (N, out_channels).
 *
 * Build:  make                      (pkg-config), or
 *         cmake -S . -B build && cmake --build build   (find_package(dk))
 * Use:    dkhost --plugins . list-registry --kind neck
 *         dkhost --plugins . check template_name.yaml
 */
#include <dk/dk.h>

#include <math.h>

#define MAX_MAPS 8

typedef struct template_name_state {
    int64_t in_channels;
    dk_tensor *weight, *bias; /* (out_channels, in_channels), (out_channels); module-owned */
} template_name_state;

static void template_name_destroy(void *self)
{
    dk_free(self);
}

static dk_status template_name_create(const dk_cfg *cfg, void **self)
{
    template_name_state *n = dk_calloc(1, sizeof *n);
    if (!n)
        return dk_fail(DK_ERR_NOMEM, "TemplateName: out of memory");
    int64_t out_channels = 0;
    dk_status s = dk_cfg_get_int(cfg, "in_channels", &n->in_channels);
    if (s == DK_OK)
        s = dk_cfg_get_int(cfg, "out_channels", &out_channels);
    if (s == DK_OK) {
        n->weight = dk_module_param("proj.weight", 2, (int64_t[]){out_channels, n->in_channels},
                                    &(dk_init){.kind = DK_INIT_KAIMING_UNIFORM, .a = sqrt(5.0)});
        n->bias = n->weight ? dk_module_param("proj.bias", 1, &out_channels,
                                              &(dk_init){.kind = DK_INIT_FAN_IN_UNIFORM,
                                                         .b = (double)n->in_channels})
                            : NULL;
        if (!n->bias)
            s = dk_last_status();
    }
    if (s != DK_OK) {
        template_name_destroy(n);
        return s;
    }
    *self = n;
    return DK_OK;
}

/* One map: (N, C, ...) -> (N, out_channels). */
static dk_tensor *project(const template_name_state *n, dk_tensor *x)
{
    int nd = dk_tensor_ndim(x);
    if (nd > 2) {
        int dims[DK_MAX_DIMS];
        for (int d = 2; d < nd; d++)
            dims[d - 2] = d;
        x = dk_mean(x, dims, nd - 2, false); /* (N, C) */
    }
    if (x && (dk_tensor_ndim(x) != 2 || dk_tensor_shape(x)[1] != n->in_channels)) {
        dk_fail(DK_ERR_SHAPE, "TemplateName: a feature map has %lld channels, in_channels is %lld",
                (long long)(dk_tensor_ndim(x) >= 2 ? dk_tensor_shape(x)[1] : -1),
                (long long)n->in_channels);
        return NULL;
    }
    return dk_relu(dk_linear(x, n->weight, n->bias)); /* (N, out_channels) */
}

static dk_status template_name_forward(void *self, const dk_dict *in, dk_forward_mode mode,
                                       dk_dict *out)
{
    (void)mode; /* a neck does the same in every mode */
    const template_name_state *n = self;
    size_t count = dk_dict_tensors_len(in, "feats");
    if (count == 0 || count > MAX_MAPS)
        return dk_fail(DK_ERR_ARG, "TemplateName: expected 1 to %d maps in 'feats', got %zu",
                       MAX_MAPS, count);
    dk_tensor *maps[MAX_MAPS];
    for (size_t i = 0; i < count; i++)
        if (!(maps[i] = project(n, dk_dict_tensors_at(in, "feats", i))))
            return dk_last_status();
    return dk_dict_set_tensors(out, "feats", maps, count);
}

/* The schema: dkhost checks every config against it before anything is
 * created, and `dkhost list-registry` prints it as the type's documentation. */
static const dk_param template_name_params[] = {
    {.name = "in_channels", .type = DK_PARAM_INT, .flags = DK_PARAM_REQUIRED, .min = "1",
     .doc = "channels of every incoming map"},
    {.name = "out_channels", .type = DK_PARAM_INT, .def = "64", .min = "1", .max = "65536",
     .doc = "channels of every outgoing map"},
};

static const dk_module_vtable template_name_vtable = {
    .struct_size = sizeof(dk_module_vtable),
    .create = template_name_create,
    .destroy = template_name_destroy,
    .forward = template_name_forward,
};

static const dk_type_info template_name_types[] = {{
    DK_TYPE_INFO_HEAD,
    .kind = "neck",
    .name = "TemplateName",
    .summary = "Spatial average, then a linear projection and ReLU",
    .iface = DK_IFACE_MODULE,
    .vtable = &template_name_vtable,
    DK_PARAMS(template_name_params),
}};

/* .license is an SPDX identifier: put yours. */
DK_PLUGIN_DEFINE_TYPES(template_name_types,
                       .name = "template_name", .version = "0.1.0",
                       .summary = "The TemplateName neck",
                       .license = "MIT", .source = "")
