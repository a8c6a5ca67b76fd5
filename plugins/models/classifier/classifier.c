/* classifier — ImageClassifier: backbone, optional neck, head.
 *
 * The whole-model type of image classification configs. It owns its parts:
 * create builds each from its nested config map through the host, so any
 * registered backbone, neck or head can be plugged in by `type:`.
 */
#include <dk/dk.h>

typedef struct classifier {
    dk_object *backbone;
    dk_object *neck; /* NULL when the config has none */
    dk_object *head;
} classifier;

static void classifier_destroy(void *self)
{
    classifier *c = self;
    dk_object_free(c->head);
    dk_object_free(c->neck);
    dk_object_free(c->backbone);
    dk_free(c);
}

static dk_status classifier_create(const dk_cfg *cfg, void **self)
{
    classifier *c = dk_calloc(1, sizeof *c);
    if (!c)
        return dk_fail(DK_ERR_NOMEM, "ImageClassifier: out of memory");
    const dk_cfg *neck = dk_cfg_get(cfg, "neck");
    dk_status s = dk_object_build(dk_cfg_get(cfg, "backbone"), "backbone", &c->backbone);
    if (s == DK_OK && dk_cfg_kind_of(neck) != DK_CFG_NULL)
        s = dk_object_build(neck, "neck", &c->neck);
    if (s == DK_OK)
        s = dk_object_build(dk_cfg_get(cfg, "head"), "head", &c->head);
    if (s != DK_OK) {
        classifier_destroy(c);
        return s;
    }
    *self = c;
    return DK_OK;
}

static const dk_param classifier_params[] = {
    {.name = "backbone", .type = DK_PARAM_OBJECT, .kind = "backbone", .flags = DK_PARAM_REQUIRED,
     .doc = "feature extractor"},
    {.name = "neck", .type = DK_PARAM_OBJECT, .kind = "neck", .flags = DK_PARAM_NULLABLE,
     .doc = "optional feature transform between backbone and head (e.g. pooling)"},
    {.name = "head", .type = DK_PARAM_OBJECT, .kind = "head", .flags = DK_PARAM_REQUIRED,
     .doc = "classification head with its loss"},
};

static const dk_module_vtable classifier_vtable = {
    .struct_size = sizeof(dk_module_vtable),
    .create = classifier_create,
    .destroy = classifier_destroy,
};

static const dk_type_info classifier_types[] = {{
    DK_TYPE_INFO_HEAD,
    .kind = "model",
    .name = "ImageClassifier",
    .summary = "Backbone, optional neck and head for image classification",
    .iface = DK_IFACE_MODULE,
    .vtable = &classifier_vtable,
    DK_PARAMS(classifier_params),
}};

DK_PLUGIN_DEFINE_TYPES(classifier_types,
                       .name = "classifier", .version = "0.1.0",
                       .summary = "Image classification model (backbone + neck + head)",
                       .license = "Apache-2.0", .source = "in-tree")
