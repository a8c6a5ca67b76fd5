/* template_name.c — TemplateName, a classification head for dkhost.
 *
 * Written by `dkhost new-plugin --kind head`: a working head to grow into
 * your own. It flattens the deepest map of "feats" to (N, in_channels),
 * applies one linear layer and, by mode, gives
 *   DK_MODE_LOSS     "loss_cls", computed by its child module "loss"
 *   DK_MODE_PREDICT  "pred_score" (N, num_classes) softmax, "pred_label" (N) i64
 *   DK_MODE_TENSOR   "logits" (N, num_classes)
 * Every key starting with "loss" is summed into the loss the optimizer
 * minimises; the metrics (Accuracy, ...) read "pred_score" and "pred_label".
 *
 * Build:  make                      (pkg-config), or
 *         cmake -S . -B build && cmake --build build   (find_package(dk))
 * Use:    dkhost --plugins . list-registry --kind head
 *         dkhost --plugins . check template_name.yaml
 */
#include <dk/dk.h>

#include <math.h>

typedef struct template_name_state {
    int64_t in_channels;
    dk_tensor *weight, *bias; /* (num_classes, in_channels), (num_classes); module-owned */
    dk_object *loss;          /* the child "loss"; the module owns it */
} template_name_state;

static void template_name_destroy(void *self)
{
    dk_free(self);
}

static dk_status template_name_create(const dk_cfg *cfg, void **self)
{
    template_name_state *h = dk_calloc(1, sizeof *h);
    if (!h)
        return dk_fail(DK_ERR_NOMEM, "TemplateName: out of memory");
    int64_t num_classes = 0;
    dk_status s = dk_cfg_get_int(cfg, "in_channels", &h->in_channels);
    if (s == DK_OK)
        s = dk_cfg_get_int(cfg, "num_classes", &num_classes);
    if (s == DK_OK) {
        /* nn.Linear(in_channels, num_classes) with PyTorch's initialisation. */
        h->weight = dk_module_param("fc.weight", 2, (int64_t[]){num_classes, h->in_channels},
                                    &(dk_init){.kind = DK_INIT_KAIMING_UNIFORM, .a = sqrt(5.0)});
        h->bias = h->weight ? dk_module_param("fc.bias", 1, &num_classes,
                                              &(dk_init){.kind = DK_INIT_FAN_IN_UNIFORM,
                                                         .b = (double)h->in_channels})
                            : NULL;
        if (!h->bias)
            s = dk_last_status();
    }
    if (s == DK_OK && !(h->loss = dk_module_child(dk_cfg_get(cfg, "loss"), "loss", "loss")))
        s = dk_last_status();
    if (s != DK_OK) {
        template_name_destroy(h); /* what was declared is freed by the host */
        return s;
    }
    *self = h;
    return DK_OK;
}

/* The deepest feature map as (N, in_channels), or NULL with the reason. */
static dk_tensor *features(const template_name_state *h, const dk_dict *in)
{
    size_t n = dk_dict_tensors_len(in, "feats");
    dk_tensor *x = n ? dk_dict_tensors_at(in, "feats", n - 1) : NULL;
    if (!x) {
        dk_fail(DK_ERR_ARG, "TemplateName: the input has no 'feats' list");
        return NULL;
    }
    if (dk_tensor_ndim(x) > 2)
        x = dk_flatten(x, 1, -1);
    if (x && dk_tensor_shape(x)[1] != h->in_channels) {
        dk_fail(DK_ERR_SHAPE, "TemplateName: the features have %lld values per sample, "
                              "in_channels is %lld",
                (long long)dk_tensor_shape(x)[1], (long long)h->in_channels);
        return NULL;
    }
    return x;
}

/* Runs the loss child on the logits and the batch's labels. */
static dk_status loss_outputs(const template_name_state *h, const dk_dict *in, dk_tensor *logits,
                              dk_dict *out)
{
    dk_tensor *label = dk_dict_tensor(in, "gt_label"); /* (N) i64 */
    if (!label)
        return dk_fail(DK_ERR_ARG, "TemplateName: loss mode needs 'gt_label' in the input");
    dk_dict *loss_in = dk_dict_new(), *loss_out = dk_dict_new();
    dk_status s = loss_in && loss_out ? DK_OK : dk_last_status();
    if (s == DK_OK)
        s = dk_dict_set_tensor(loss_in, "cls_score", logits);
    if (s == DK_OK)
        s = dk_dict_set_tensor(loss_in, "gt_label", label);
    if (s == DK_OK)
        s = dk_module_forward(h->loss, loss_in, DK_MODE_LOSS, loss_out);
    dk_tensor *loss = s == DK_OK ? dk_dict_tensor(loss_out, "loss") : NULL;
    if (s == DK_OK && !loss)
        s = dk_fail(DK_ERR_RUNTIME, "TemplateName: the loss module gave no 'loss'");
    if (s == DK_OK)
        s = dk_dict_set_tensor(out, "loss_cls", loss);
    dk_dict_free(loss_in);
    dk_dict_free(loss_out);
    return s;
}

static dk_status template_name_forward(void *self, const dk_dict *in, dk_forward_mode mode,
                                       dk_dict *out)
{
    const template_name_state *h = self;
    dk_tensor *x = features(h, in);                        /* (N, in_channels) */
    dk_tensor *logits = dk_linear(x, h->weight, h->bias);  /* (N, num_classes) */
    if (!logits)
        return dk_last_status();
    switch (mode) {
    case DK_MODE_LOSS:
        return loss_outputs(h, in, logits, out);
    case DK_MODE_PREDICT: {
        dk_tensor *score = dk_softmax(logits, 1), *label = dk_argmax(logits, 1, false);
        if (!score || !label)
            return dk_last_status();
        DK_TRY(dk_dict_set_tensor(out, "pred_score", score));
        return dk_dict_set_tensor(out, "pred_label", label);
    }
    default:
        return dk_dict_set_tensor(out, "logits", logits);
    }
}

/* The schema: dkhost checks every config against it before anything is
 * created, and `dkhost list-registry` prints it as the type's documentation. */
static const dk_param template_name_params[] = {
    {.name = "in_channels", .type = DK_PARAM_INT, .flags = DK_PARAM_REQUIRED, .min = "1",
     .doc = "values per sample in the features (a map is flattened)"},
    {.name = "num_classes", .type = DK_PARAM_INT, .flags = DK_PARAM_REQUIRED, .min = "1",
     .doc = "number of classes"},
    {.name = "loss", .type = DK_PARAM_OBJECT, .kind = "loss", .def = "{type: CrossEntropyLoss}",
     .doc = "the training loss"},
};

static const dk_module_vtable template_name_vtable = {
    .struct_size = sizeof(dk_module_vtable),
    .create = template_name_create,
    .destroy = template_name_destroy,
    .forward = template_name_forward,
};

static const dk_type_info template_name_types[] = {{
    DK_TYPE_INFO_HEAD,
    .kind = "head",
    .name = "TemplateName",
    .summary = "A linear classification head with its loss",
    .iface = DK_IFACE_MODULE,
    .vtable = &template_name_vtable,
    DK_PARAMS(template_name_params),
}};

/* .license is an SPDX identifier: put yours. */
DK_PLUGIN_DEFINE_TYPES(template_name_types,
                       .name = "template_name", .version = "0.1.0",
                       .summary = "The TemplateName head",
                       .license = "MIT", .source = "")
