/* classifier — ImageClassifier: backbone, optional neck, head.
 *
 * The whole-model type of image classification configs. Its parts are child
 * modules built from their nested config maps, so any registered backbone,
 * neck or head can be plugged in by `type:`, and their parameters are named
 * "backbone.*", "neck.*" and "head.*". The forward passes the batch through:
 * the backbone reads "img" and emits "feats", the neck maps "feats" to
 * "feats", and the head gets the batch plus the features in the caller's
 * mode.
 */
#include <dk/dk.h>

typedef struct classifier {
    dk_object *backbone; /* children: the host frees them */
    dk_object *neck;     /* NULL when the config has none */
    dk_object *head;
} classifier;

static void classifier_destroy(void *self)
{
    dk_free(self);
}

static dk_status classifier_create(const dk_cfg *cfg, void **self)
{
    classifier *c = dk_calloc(1, sizeof *c);
    if (!c)
        return dk_fail(DK_ERR_NOMEM, "ImageClassifier: out of memory");
    const dk_cfg *neck = dk_cfg_get(cfg, "neck");
    dk_status s = DK_OK;
    if (!(c->backbone = dk_module_child(dk_cfg_get(cfg, "backbone"), "backbone", "backbone")))
        s = dk_last_status();
    if (s == DK_OK && dk_cfg_kind_of(neck) != DK_CFG_NULL &&
        !(c->neck = dk_module_child(neck, "neck", "neck")))
        s = dk_last_status();
    if (s == DK_OK && !(c->head = dk_module_child(dk_cfg_get(cfg, "head"), "head", "head")))
        s = dk_last_status();
    if (s != DK_OK) {
        classifier_destroy(c);
        return s;
    }
    *self = c;
    return DK_OK;
}

/* backbone -> neck -> head; the head sees the batch and the features. */
static dk_status classifier_forward(void *self, const dk_dict *in, dk_forward_mode mode,
                                    dk_dict *out)
{
    const classifier *c = self;
    dk_dict *feats = dk_dict_new(), *pooled = NULL, *head_in = dk_dict_new();
    dk_status s = feats && head_in ? DK_OK : dk_last_status();
    if (s == DK_OK)
        s = dk_module_forward(c->backbone, in, DK_MODE_TENSOR, feats); /* "feats" */
    if (s == DK_OK && c->neck) {
        s = (pooled = dk_dict_new()) ? DK_OK : dk_last_status();
        if (s == DK_OK)
            s = dk_module_forward(c->neck, feats, DK_MODE_TENSOR, pooled);
    }
    if (s == DK_OK)
        s = dk_dict_update(head_in, in);
    if (s == DK_OK)
        s = dk_dict_update(head_in, pooled ? pooled : feats);
    if (s == DK_OK)
        s = dk_module_forward(c->head, head_in, mode, out);
    dk_dict_free(feats);
    dk_dict_free(pooled);
    dk_dict_free(head_in);
    return s;
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
    .forward = classifier_forward,
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
