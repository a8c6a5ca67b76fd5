/* accuracy_metric — Accuracy: top-k classification accuracy, one value per k. */
#include <dk/dk.h>

typedef struct accuracy {
    size_t n_topk;
    int64_t topk[8];
} accuracy;

static dk_status accuracy_create(const dk_cfg *cfg, void **self)
{
    const dk_cfg *topk = dk_cfg_get(cfg, "topk");
    accuracy *a = dk_calloc(1, sizeof *a);
    if (!a)
        return dk_fail(DK_ERR_NOMEM, "Accuracy: out of memory");
    a->n_topk = dk_cfg_len(topk);
    dk_status s = DK_OK;
    if (a->n_topk == 0 || a->n_topk > sizeof a->topk / sizeof a->topk[0])
        s = dk_fail(DK_ERR_CONFIG, "%s (%s): Accuracy: give 1 to 8 values of k, got %zu",
                    dk_cfg_path(topk), dk_cfg_where(topk), a->n_topk);
    for (size_t i = 0; s == DK_OK && i < a->n_topk; i++)
        s = dk_cfg_get_int(dk_cfg_at(topk, i), NULL, &a->topk[i]);
    if (s != DK_OK) {
        dk_free(a);
        return s;
    }
    *self = a;
    return DK_OK;
}

static void accuracy_destroy(void *self)
{
    dk_free(self);
}

static const dk_param accuracy_params[] = {
    {.name = "topk", .type = DK_PARAM_LIST, .elem = DK_PARAM_INT, .def = "[1]", .min = "1",
     .doc = "report accuracy/top1, accuracy/top5, ... for each k"},
};

static const dk_metric_vtable accuracy_vtable = {
    .struct_size = sizeof(dk_metric_vtable),
    .create = accuracy_create,
    .destroy = accuracy_destroy,
};

static const dk_type_info accuracy_types[] = {{
    DK_TYPE_INFO_HEAD,
    .kind = "metric",
    .name = "Accuracy",
    .summary = "Top-k classification accuracy",
    .iface = DK_IFACE_METRIC,
    .vtable = &accuracy_vtable,
    DK_PARAMS(accuracy_params),
}};

DK_PLUGIN_DEFINE_TYPES(accuracy_types,
                       .name = "accuracy_metric", .version = "0.1.0",
                       .summary = "Classification metrics",
                       .license = "Apache-2.0", .source = "in-tree")
