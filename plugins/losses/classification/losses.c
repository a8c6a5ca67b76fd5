/* classification_losses — CrossEntropyLoss with PyTorch's options (class
 * weights, ignore_index, label smoothing, reduction) and a loss weight.
 *
 * A loss is a module: its forward reads "cls_score" (N, C) and "gt_label"
 * (N) and writes "loss" (a scalar unless reduction is 'none'), in any mode.
 */
#include <dk/dk.h>

#include <string.h>

typedef struct ce_loss {
    int64_t ignore_index;
    double label_smoothing;
    double loss_weight;
    int reduction; /* DK_REDUCTION_* */
    int64_t n_class_weight;
    float *class_weight; /* NULL when unweighted */
} ce_loss;

static void ce_destroy(void *self)
{
    ce_loss *l = self;
    dk_free(l->class_weight);
    dk_free(l);
}

static dk_status ce_create(const dk_cfg *cfg, void **self)
{
    ce_loss *l = dk_calloc(1, sizeof *l);
    if (!l)
        return dk_fail(DK_ERR_NOMEM, "CrossEntropyLoss: out of memory");
    const char *red = NULL;
    dk_status s = dk_cfg_get_int(cfg, "ignore_index", &l->ignore_index);
    if (s == DK_OK)
        s = dk_cfg_get_float(cfg, "label_smoothing", &l->label_smoothing);
    if (s == DK_OK)
        s = dk_cfg_get_float(cfg, "loss_weight", &l->loss_weight);
    if (s == DK_OK)
        s = dk_cfg_get_str(cfg, "reduction", &red);
    const dk_cfg *w = dk_cfg_get(cfg, "class_weight");
    if (s == DK_OK && dk_cfg_kind_of(w) == DK_CFG_LIST) {
        l->n_class_weight = (int64_t)dk_cfg_len(w);
        l->class_weight = dk_calloc(l->n_class_weight ? (size_t)l->n_class_weight : 1,
                                    sizeof(float));
        if (!l->class_weight)
            s = dk_fail(DK_ERR_NOMEM, "CrossEntropyLoss: out of memory");
        for (int64_t i = 0; s == DK_OK && i < l->n_class_weight; i++) {
            double v;
            s = dk_cfg_get_float(dk_cfg_at(w, (size_t)i), NULL, &v);
            l->class_weight[i] = (float)v;
        }
    }
    if (s != DK_OK) {
        ce_destroy(l);
        return s;
    }
    l->reduction = strcmp(red, "none") == 0 ? DK_REDUCTION_NONE
                 : strcmp(red, "sum") == 0  ? DK_REDUCTION_SUM
                                            : DK_REDUCTION_MEAN;
    *self = l;
    return DK_OK;
}

static dk_status ce_forward(void *self, const dk_dict *in, dk_forward_mode mode, dk_dict *out)
{
    (void)mode; /* a loss is computed the same way in every mode */
    const ce_loss *l = self;
    dk_tensor *score = dk_dict_tensor(in, "cls_score"); /* (N, C) */
    dk_tensor *label = dk_dict_tensor(in, "gt_label");  /* (N) */
    if (!score || !label)
        return dk_fail(DK_ERR_ARG, "CrossEntropyLoss: the input has no '%s' tensor",
                       !score ? "cls_score" : "gt_label");
    dk_tensor *weight = NULL;
    if (l->class_weight) {
        /* Made per call: a scope-owned constant, on the scores' device. */
        weight = dk_to(dk_from_data(1, &l->n_class_weight, DK_DTYPE_F32, l->class_weight),
                       dk_tensor_device(score));
        if (!weight)
            return dk_last_status();
    }
    dk_tensor *loss = dk_cross_entropy(score, label, weight, l->ignore_index, l->label_smoothing,
                                       l->reduction);
    if (l->loss_weight != 1.0)
        loss = dk_mul_scalar(loss, l->loss_weight);
    if (!loss)
        return dk_last_status();
    return dk_dict_set_tensor(out, "loss", loss);
}

static const dk_param ce_params[] = {
    {.name = "class_weight", .type = DK_PARAM_LIST, .elem = DK_PARAM_FLOAT,
     .flags = DK_PARAM_NULLABLE, .min = "0", .doc = "per-class weights (one per class)"},
    {.name = "ignore_index", .type = DK_PARAM_INT, .def = "-100",
     .doc = "targets with this value contribute nothing"},
    {.name = "label_smoothing", .type = DK_PARAM_FLOAT, .def = "0.0", .min = "0", .max = "1",
     .doc = "mass moved from the target class to a uniform distribution"},
    {.name = "reduction", .type = DK_PARAM_STRING, .def = "mean", .choices = "none|mean|sum",
     .doc = "how per-sample losses are combined"},
    {.name = "loss_weight", .type = DK_PARAM_FLOAT, .def = "1.0", .min = "0",
     .doc = "factor applied to the reduced loss"},
};

static const dk_module_vtable ce_vtable = {
    .struct_size = sizeof(dk_module_vtable),
    .create = ce_create,
    .destroy = ce_destroy,
    .forward = ce_forward,
};

static const dk_type_info ce_types[] = {{
    DK_TYPE_INFO_HEAD,
    .kind = "loss",
    .name = "CrossEntropyLoss",
    .summary = "Softmax cross-entropy over class scores",
    .iface = DK_IFACE_MODULE,
    .vtable = &ce_vtable,
    DK_PARAMS(ce_params),
}};

DK_PLUGIN_DEFINE_TYPES(ce_types,
                       .name = "classification_losses", .version = "0.1.0",
                       .summary = "Losses for classification",
                       .license = "Apache-2.0", .source = "in-tree")
