/* cls_head — LinearClsHead: optional hidden layers, then a linear layer to
 * class scores, with its classification loss.
 */
#include <dk/dk.h>

typedef struct cls_head {
    int64_t num_classes;
    int64_t in_channels;
    double dropout;
    dk_object *loss;
} cls_head;

static void cls_head_destroy(void *self)
{
    cls_head *h = self;
    dk_object_free(h->loss);
    dk_free(h);
}

static dk_status cls_head_create(const dk_cfg *cfg, void **self)
{
    cls_head *h = dk_calloc(1, sizeof *h);
    if (!h)
        return dk_fail(DK_ERR_NOMEM, "LinearClsHead: out of memory");
    dk_status s = dk_cfg_get_int(cfg, "num_classes", &h->num_classes);
    if (s == DK_OK)
        s = dk_cfg_get_int(cfg, "in_channels", &h->in_channels);
    if (s == DK_OK)
        s = dk_cfg_get_float(cfg, "dropout", &h->dropout);
    if (s == DK_OK)
        s = dk_object_build(dk_cfg_get(cfg, "loss"), "loss", &h->loss);
    if (s != DK_OK) {
        cls_head_destroy(h);
        return s;
    }
    *self = h;
    return DK_OK;
}

static const dk_param cls_head_params[] = {
    {.name = "num_classes", .type = DK_PARAM_INT, .flags = DK_PARAM_REQUIRED, .min = "1",
     .doc = "number of classes"},
    {.name = "in_channels", .type = DK_PARAM_INT, .flags = DK_PARAM_REQUIRED, .min = "1",
     .doc = "features coming from the backbone or neck"},
    {.name = "hidden_channels", .type = DK_PARAM_LIST, .elem = DK_PARAM_INT, .def = "[]",
     .min = "1", .doc = "widths of hidden fully-connected layers (each followed by ReLU)"},
    {.name = "dropout", .type = DK_PARAM_FLOAT, .def = "0.0", .min = "0", .max = "1",
     .doc = "dropout probability before the last layer"},
    {.name = "loss", .type = DK_PARAM_OBJECT, .kind = "loss", .def = "{type: CrossEntropyLoss}",
     .doc = "the training loss"},
};

static const dk_module_vtable cls_head_vtable = {
    .struct_size = sizeof(dk_module_vtable),
    .create = cls_head_create,
    .destroy = cls_head_destroy,
};

static const dk_type_info cls_head_types[] = {{
    DK_TYPE_INFO_HEAD,
    .kind = "head",
    .name = "LinearClsHead",
    .summary = "Fully-connected classification head with its loss",
    .iface = DK_IFACE_MODULE,
    .vtable = &cls_head_vtable,
    DK_PARAMS(cls_head_params),
}};

DK_PLUGIN_DEFINE_TYPES(cls_head_types,
                       .name = "cls_head", .version = "0.1.0",
                       .summary = "Classification heads",
                       .license = "Apache-2.0", .source = "in-tree")
