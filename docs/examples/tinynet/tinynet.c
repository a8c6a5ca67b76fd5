/* tinynet — the plugin of the plugin-author guide (docs/plugin-guide.md):
 * one backbone type, TinyNet, with a validated `width` parameter. */
#include <dk/dk.h>

typedef struct tinynet {
    int64_t width;
} tinynet;

static dk_status tinynet_create(const dk_cfg *cfg, void **self)
{
    tinynet *t = dk_calloc(1, sizeof *t);
    if (!t)
        return dk_fail(DK_ERR_NOMEM, "TinyNet: out of memory");
    /* Validated and defaulted already: width is an int in [1, 4096]. */
    dk_status s = dk_cfg_get_int(cfg, "width", &t->width);
    if (s != DK_OK) {
        dk_free(t);
        return s;
    }
    *self = t;
    return DK_OK;
}

static void tinynet_destroy(void *self)
{
    dk_free(self);
}

static const dk_param tinynet_params[] = {
    {.name = "width", .type = DK_PARAM_INT, .def = "16", .min = "1", .max = "4096",
     .doc = "channels of the first stage"},
};

static const dk_module_vtable tinynet_vtable = {
    .struct_size = sizeof(dk_module_vtable),
    .create = tinynet_create,
    .destroy = tinynet_destroy,
};

static const dk_type_info tinynet_type = {
    DK_TYPE_INFO_HEAD,
    .kind = "backbone",
    .name = "TinyNet",
    .summary = "A two-layer example backbone",
    .iface = DK_IFACE_MODULE,
    .vtable = &tinynet_vtable,
    DK_PARAMS(tinynet_params),
};

static dk_status tinynet_init(dk_registrar *reg)
{
    return dk_register(reg, &tinynet_type);
}

DK_PLUGIN_DEFINE(tinynet_init,
                 .name = "tinynet", .version = "1.0.0",
                 .summary = "An example backbone", .license = "MIT",
                 .source = "https://example.org/tinynet")
