/* accuracy_metric — Accuracy: top-k classification accuracy, one value per k.
 *
 * process reads the model's "pred_score" (N, C) and the batch's "gt_label"
 * (N) and counts, for each k, the samples whose true class is among the k
 * highest scores; compute reports "top<k>" in percent (mmpretrain's Accuracy).
 * A true class tied with others counts in its favour: it is in the top k
 * when fewer than k classes score strictly higher.
 */
#include <dk/dk.h>

#include <math.h> /* isnan, a macro: no libm */
#include <stdio.h>

#define MAX_TOPK 8

typedef struct accuracy {
    size_t n_topk;
    int64_t topk[MAX_TOPK];
    int64_t correct[MAX_TOPK];
    int64_t total;
} accuracy;

static dk_status accuracy_create(const dk_cfg *cfg, void **self)
{
    const dk_cfg *topk = dk_cfg_get(cfg, "topk");
    accuracy *a = dk_calloc(1, sizeof *a);
    if (!a)
        return dk_fail(DK_ERR_NOMEM, "Accuracy: out of memory");
    a->n_topk = dk_cfg_len(topk);
    dk_status s = DK_OK;
    if (a->n_topk == 0 || a->n_topk > MAX_TOPK)
        s = dk_fail(DK_ERR_CONFIG, "%s (%s): Accuracy: give 1 to %d values of k, got %zu",
                    dk_cfg_path(topk), dk_cfg_where(topk), MAX_TOPK, a->n_topk);
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

static void accuracy_reset(void *self)
{
    accuracy *a = self;
    for (size_t i = 0; i < a->n_topk; i++)
        a->correct[i] = 0;
    a->total = 0;
}

/* t's values as doubles in C order into a new array (any device, the
 * dtypes a score or a label comes in). */
static dk_status read_values(const dk_tensor *t, const char *key, double **out)
{
    int64_t n = dk_tensor_numel(t);
    dk_dtype dt = dk_tensor_dtype(t);
    size_t es = dk_dtype_size(dt);
    if (dt != DK_DTYPE_F32 && dt != DK_DTYPE_F64 && dt != DK_DTYPE_I32 && dt != DK_DTYPE_I64 &&
        dt != DK_DTYPE_U8)
        return dk_fail(DK_ERR_ARG, "Accuracy: '%s' is %s; it reads f32, f64, i32, i64 or u8",
                       key, dk_dtype_name(dt));
    void *raw = dk_malloc((size_t)n * es + 1);
    double *v = dk_malloc((size_t)n * sizeof *v + 1);
    dk_status s = raw && v ? DK_OK : dk_fail(DK_ERR_NOMEM, "Accuracy: out of memory");
    if (s == DK_OK)
        s = dk_tensor_to_host(t, raw, (size_t)n * es);
    for (int64_t i = 0; s == DK_OK && i < n; i++) {
        switch (dt) {
        case DK_DTYPE_F32: v[i] = ((const float *)raw)[i]; break;
        case DK_DTYPE_F64: v[i] = ((const double *)raw)[i]; break;
        case DK_DTYPE_I32: v[i] = ((const int32_t *)raw)[i]; break;
        case DK_DTYPE_I64: v[i] = (double)((const int64_t *)raw)[i]; break;
        default: v[i] = ((const uint8_t *)raw)[i]; break;
        }
    }
    dk_free(raw);
    if (s != DK_OK) {
        dk_free(v);
        return s;
    }
    *out = v;
    return DK_OK;
}

static dk_status accuracy_process(void *self, const dk_dict *batch, const dk_dict *preds)
{
    accuracy *a = self;
    dk_tensor *score = dk_dict_tensor(preds, "pred_score");
    dk_tensor *label = dk_dict_tensor(batch, "gt_label");
    if (!score)
        return dk_fail(DK_ERR_ARG, "Accuracy: the predictions have no tensor 'pred_score' (N, C)");
    if (!label)
        return dk_fail(DK_ERR_ARG, "Accuracy: the batch has no tensor 'gt_label' (N)");
    if (dk_tensor_ndim(score) != 2 || dk_tensor_ndim(label) != 1 ||
        dk_tensor_shape(score)[0] != dk_tensor_shape(label)[0])
        return dk_fail(DK_ERR_SHAPE, "Accuracy: 'pred_score' must be (N, C) and 'gt_label' (N); "
                       "got %d dims of %lld and %d dims of %lld", dk_tensor_ndim(score),
                       (long long)dk_tensor_shape(score)[0], dk_tensor_ndim(label),
                       dk_tensor_ndim(label) > 0 ? (long long)dk_tensor_shape(label)[0] : 0LL);
    int64_t n = dk_tensor_shape(score)[0], c = dk_tensor_shape(score)[1];
    for (size_t i = 0; i < a->n_topk; i++)
        if (a->topk[i] > c)
            return dk_fail(DK_ERR_ARG, "Accuracy: top-%lld asked for, but 'pred_score' has only "
                           "%lld classes", (long long)a->topk[i], (long long)c);
    double *sv = NULL, *lv = NULL;
    DK_TRY(read_values(score, "pred_score", &sv));
    dk_status s = read_values(label, "gt_label", &lv);
    for (int64_t r = 0; s == DK_OK && r < n; r++) {
        double l = lv[r];
        if (!(l >= 0 && l < (double)c) || l != (double)(int64_t)l) {
            s = dk_fail(DK_ERR_ARG, "Accuracy: gt_label %g of sample %lld is not a class in "
                        "[0, %lld)", l, (long long)r, (long long)c);
            break;
        }
        const double *row = sv + r * c;
        double truth = row[(int64_t)l];
        int64_t higher = isnan(truth) ? c : 0; /* a NaN score is never right */
        for (int64_t j = 0; j < c && !isnan(truth); j++)
            higher += row[j] > truth;
        for (size_t i = 0; i < a->n_topk; i++)
            a->correct[i] += higher < a->topk[i];
    }
    if (s == DK_OK)
        a->total += n;
    dk_free(sv);
    dk_free(lv);
    return s;
}

static dk_status accuracy_compute(void *self, dk_dict *results)
{
    const accuracy *a = self;
    if (a->total == 0)
        return dk_fail(DK_ERR_ARG, "Accuracy: no samples were processed");
    for (size_t i = 0; i < a->n_topk; i++) {
        char key[32];
        snprintf(key, sizeof key, "top%lld", (long long)a->topk[i]);
        DK_TRY(dk_dict_set_number(results, key, 100.0 * (double)a->correct[i] / (double)a->total));
    }
    return DK_OK;
}

static const dk_param accuracy_params[] = {
    {.name = "topk", .type = DK_PARAM_LIST, .elem = DK_PARAM_INT, .def = "[1]", .min = "1",
     .doc = "report accuracy/top1, accuracy/top5, ... for each k"},
};

static const dk_metric_vtable accuracy_vtable = {
    .struct_size = sizeof(dk_metric_vtable),
    .create = accuracy_create,
    .destroy = accuracy_destroy,
    .process = accuracy_process,
    .compute = accuracy_compute,
    .reset = accuracy_reset,
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
                       .name = "accuracy_metric", .version = "0.2.0",
                       .summary = "Classification metrics",
                       .license = "Apache-2.0", .source = "in-tree")
