/* pooling_necks — GlobalAveragePooling: (N, C, H, W) -> (N, C). */
#include <dk/dk.h>

static dk_status gap_create(const dk_cfg *cfg, void **self)
{
    bool *flatten = dk_malloc(sizeof *flatten);
    if (!flatten)
        return dk_fail(DK_ERR_NOMEM, "GlobalAveragePooling: out of memory");
    dk_status s = dk_cfg_get_bool(cfg, "flatten", flatten);
    if (s != DK_OK) {
        dk_free(flatten);
        return s;
    }
    *self = flatten;
    return DK_OK;
}

static void gap_destroy(void *self)
{
    dk_free(self);
}

static const dk_param gap_params[] = {
    {.name = "flatten", .type = DK_PARAM_BOOL, .def = "true",
     .doc = "emit (N, C) rather than (N, C, 1, 1)"},
};

static const dk_module_vtable gap_vtable = {
    .struct_size = sizeof(dk_module_vtable),
    .create = gap_create,
    .destroy = gap_destroy,
};

static const dk_type_info gap_types[] = {{
    DK_TYPE_INFO_HEAD,
    .kind = "neck",
    .name = "GlobalAveragePooling",
    .summary = "Average over the spatial dimensions",
    .iface = DK_IFACE_MODULE,
    .vtable = &gap_vtable,
    DK_PARAMS(gap_params),
}};

DK_PLUGIN_DEFINE_TYPES(gap_types,
                       .name = "pooling_necks", .version = "0.1.0",
                       .summary = "Pooling necks",
                       .license = "Apache-2.0", .source = "in-tree")
