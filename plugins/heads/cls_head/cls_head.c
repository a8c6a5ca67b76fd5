/* cls_head — LinearClsHead: optional hidden layers, then a linear layer to
 * class scores, with its classification loss.
 *
 * Input: "feats" (the deepest map is used, flattened to (N, in_channels)),
 * and "gt_label" (N) in loss mode. Output by mode:
 *   DK_MODE_LOSS     "loss_cls" (from the loss child) and "accuracy_top1"
 *                    (percent of the batch classified right, for the log)
 *   DK_MODE_PREDICT  "pred_score" (N, C) softmax and "pred_label" (N) i64
 *   DK_MODE_TENSOR   "logits" (N, C)
 * Parameters are named "hidden.<i>.weight/bias" and "fc.weight/bias"; the
 * loss is the child "loss". Linear layers start from PyTorch's nn.Linear
 * init.
 */
#include <dk/dk.h>

#include <math.h>
#include <stdio.h>

#define MAX_HIDDEN 8

typedef struct linear {
    dk_tensor *weight, *bias; /* borrowed: the module owns them */
} linear;

typedef struct cls_head {
    int64_t num_classes;
    int64_t in_channels;
    double dropout;
    bool cal_acc;
    size_t n_hidden;
    linear hidden[MAX_HIDDEN];
    linear fc;
    dk_object *loss; /* a child: the host frees it */
} cls_head;

static void cls_head_destroy(void *self)
{
    dk_free(self);
}

static dk_status linear_declare(linear *l, const char *name, int64_t in, int64_t out)
{
    char w[64], b[64];
    snprintf(w, sizeof w, "%s.weight", name);
    snprintf(b, sizeof b, "%s.bias", name);
    l->weight = dk_module_param(w, 2, (int64_t[]){out, in},
                                &(dk_init){.kind = DK_INIT_KAIMING_UNIFORM, .a = sqrt(5.0)});
    l->bias = l->weight ? dk_module_param(b, 1, &out,
                                          &(dk_init){.kind = DK_INIT_FAN_IN_UNIFORM, .b = (double)in})
                        : NULL;
    return l->bias ? DK_OK : dk_last_status();
}

static dk_status declare_layers(cls_head *h, const dk_cfg *cfg)
{
    const dk_cfg *hid = dk_cfg_get(cfg, "hidden_channels");
    h->n_hidden = dk_cfg_len(hid);
    if (h->n_hidden > MAX_HIDDEN)
        return dk_fail(DK_ERR_CONFIG, "%s (%s): LinearClsHead takes at most %d hidden layers, "
                                      "got %zu",
                       dk_cfg_path(hid), dk_cfg_where(hid), MAX_HIDDEN, h->n_hidden);
    int64_t in = h->in_channels;
    for (size_t i = 0; i < h->n_hidden; i++) {
        int64_t width;
        char name[32];
        DK_TRY(dk_cfg_get_int(dk_cfg_at(hid, i), NULL, &width));
        snprintf(name, sizeof name, "hidden.%zu", i);
        DK_TRY(linear_declare(&h->hidden[i], name, in, width));
        in = width;
    }
    return linear_declare(&h->fc, "fc", in, h->num_classes);
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
        s = dk_cfg_get_bool(cfg, "cal_acc", &h->cal_acc);
    if (s == DK_OK)
        s = declare_layers(h, cfg);
    if (s == DK_OK && !(h->loss = dk_module_child(dk_cfg_get(cfg, "loss"), "loss", "loss")))
        s = dk_last_status();
    if (s != DK_OK) {
        cls_head_destroy(h);
        return s;
    }
    *self = h;
    return DK_OK;
}

/* The deepest feature map, as (N, in_channels). */
static dk_tensor *features(const cls_head *h, const dk_dict *in)
{
    size_t n = dk_dict_tensors_len(in, "feats");
    dk_tensor *x = n ? dk_dict_tensors_at(in, "feats", n - 1) : NULL;
    if (!x) {
        dk_fail(DK_ERR_ARG, "LinearClsHead: the input has no 'feats' list");
        return NULL;
    }
    if (dk_tensor_ndim(x) > 2)
        x = dk_flatten(x, 1, -1);
    if (x && (dk_tensor_ndim(x) != 2 || dk_tensor_shape(x)[1] != h->in_channels)) {
        dk_fail(DK_ERR_SHAPE, "LinearClsHead: features have %lld values per sample; "
                              "in_channels is %lld",
                (long long)(dk_tensor_ndim(x) == 2 ? dk_tensor_shape(x)[1] : -1),
                (long long)h->in_channels);
        return NULL;
    }
    return x;
}

/* Percent of rows whose largest score is at their label; NAN on failure. */
static double top1_accuracy(dk_tensor *logits, dk_tensor *label)
{
    bool was = dk_grad_set_enabled(false);
    if (label && dk_tensor_dtype(label) != DK_DTYPE_I64)
        label = dk_cast(label, DK_DTYPE_I64);
    dk_tensor *hit = dk_cast(dk_eq(dk_argmax(logits, 1, false), label), DK_DTYPE_F32);
    double acc = hit ? 100.0 * dk_tensor_item(dk_mean(hit, NULL, 0, false)) : NAN;
    dk_grad_set_enabled(was);
    return acc;
}

static dk_status loss_outputs(const cls_head *h, const dk_dict *in, dk_tensor *logits,
                              dk_dict *out)
{
    dk_tensor *label = dk_dict_tensor(in, "gt_label"); /* (N) */
    if (!label)
        return dk_fail(DK_ERR_ARG, "LinearClsHead: loss mode needs 'gt_label' in the input");
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
        s = dk_fail(DK_ERR_RUNTIME, "LinearClsHead: the loss module gave no 'loss'");
    if (s == DK_OK)
        s = dk_dict_set_tensor(out, "loss_cls", loss);
    if (s == DK_OK && h->cal_acc)
        s = dk_dict_set_number(out, "accuracy_top1", top1_accuracy(logits, label));
    dk_dict_free(loss_in);
    dk_dict_free(loss_out);
    return s;
}

static dk_status cls_head_forward(void *self, const dk_dict *in, dk_forward_mode mode,
                                  dk_dict *out)
{
    const cls_head *h = self;
    dk_tensor *x = features(h, in); /* (N, in_channels) */
    for (size_t i = 0; i < h->n_hidden; i++)
        x = dk_relu(dk_linear(x, h->hidden[i].weight, h->hidden[i].bias)); /* (N, width) */
    if (h->dropout > 0)
        x = dk_dropout(x, h->dropout, dk_module_training(), NULL);
    dk_tensor *logits = dk_linear(x, h->fc.weight, h->fc.bias); /* (N, num_classes) */
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
    {.name = "cal_acc", .type = DK_PARAM_BOOL, .def = "true",
     .doc = "log the batch's top-1 accuracy (accuracy_top1, percent) in loss mode"},
};

static const dk_module_vtable cls_head_vtable = {
    .struct_size = sizeof(dk_module_vtable),
    .create = cls_head_create,
    .destroy = cls_head_destroy,
    .forward = cls_head_forward,
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
