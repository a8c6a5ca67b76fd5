/* template_name.c — TemplateName, an evaluation metric for dkhost.
 *
 * Written by `dkhost new-plugin --kind metric`: a working metric to grow
 * into your own. The runner hands every evaluation batch and the model's
 * predictions to process, then asks compute for named numbers, which it logs
 * as "<prefix>/<name>" (the prefix is the type name in lower case,
 * "templatename", unless the config gives `prefix:`); reset starts over.
 * This one counts the samples whose "pred_label" differs from "gt_label" and
 * reports "error", in percent.
 *
 * Build:  make                      (pkg-config), or
 *         cmake -S . -B build && cmake --build build   (find_package(dk))
 * Use:    dkhost --plugins . list-registry --kind metric
 *         dkhost --plugins . check template_name.yaml
 */
#include <dk/dk.h>

typedef struct template_name_state {
    int64_t ignore_label;
    int64_t wrong, total;
} template_name_state;

static dk_status template_name_create(const dk_cfg *cfg, void **self)
{
    template_name_state *m = dk_calloc(1, sizeof *m);
    if (!m)
        return dk_fail(DK_ERR_NOMEM, "TemplateName: out of memory");
    dk_status s = dk_cfg_get_int(cfg, "ignore_label", &m->ignore_label);
    if (s != DK_OK) {
        dk_free(m);
        return s;
    }
    *self = m;
    return DK_OK;
}

static void template_name_destroy(void *self)
{
    dk_free(self);
}

static void template_name_reset(void *self)
{
    template_name_state *m = self;
    m->wrong = m->total = 0;
}

/* A (N) i64 tensor's values, copied to a new array (from any device). */
static dk_status read_labels(const dk_tensor *t, const char *key, int64_t n, int64_t **out)
{
    if (dk_tensor_dtype(t) != DK_DTYPE_I64 || dk_tensor_ndim(t) != 1 ||
        dk_tensor_shape(t)[0] != n)
        return dk_fail(DK_ERR_SHAPE, "TemplateName: '%s' must be (%lld) i64", key, (long long)n);
    int64_t *v = dk_malloc((size_t)n * sizeof *v + 1);
    if (!v)
        return dk_fail(DK_ERR_NOMEM, "TemplateName: out of memory");
    dk_status s = dk_tensor_to_host(t, v, (size_t)n * sizeof *v);
    if (s != DK_OK) {
        dk_free(v);
        return s;
    }
    *out = v;
    return DK_OK;
}

static dk_status template_name_process(void *self, const dk_dict *batch, const dk_dict *preds)
{
    template_name_state *m = self;
    dk_tensor *pred = dk_dict_tensor(preds, "pred_label"), *gt = dk_dict_tensor(batch, "gt_label");
    if (!pred || !gt)
        return dk_fail(DK_ERR_ARG, "TemplateName: needs the predictions' 'pred_label' and the "
                                   "batch's 'gt_label'");
    int64_t n = dk_tensor_ndim(gt) == 1 ? dk_tensor_shape(gt)[0] : -1;
    int64_t *p = NULL, *g = NULL;
    DK_TRY(read_labels(gt, "gt_label", n, &g));
    dk_status s = read_labels(pred, "pred_label", n, &p);
    for (int64_t i = 0; s == DK_OK && i < n; i++) {
        if (g[i] == m->ignore_label)
            continue;
        m->total++;
        m->wrong += p[i] != g[i];
    }
    dk_free(p);
    dk_free(g);
    return s;
}

static dk_status template_name_compute(void *self, dk_dict *results)
{
    const template_name_state *m = self;
    if (m->total == 0)
        return dk_fail(DK_ERR_ARG, "TemplateName: no samples were processed");
    return dk_dict_set_number(results, "error", 100.0 * (double)m->wrong / (double)m->total);
}

/* The schema: dkhost checks every config against it before anything is
 * created, and `dkhost list-registry` prints it as the type's documentation. */
static const dk_param template_name_params[] = {
    {.name = "ignore_label", .type = DK_PARAM_INT, .def = "-1",
     .doc = "samples with this gt_label are not counted"},
};

static const dk_metric_vtable template_name_vtable = {
    .struct_size = sizeof(dk_metric_vtable),
    .create = template_name_create,
    .destroy = template_name_destroy,
    .process = template_name_process,
    .compute = template_name_compute,
    .reset = template_name_reset,
};

static const dk_type_info template_name_types[] = {{
    DK_TYPE_INFO_HEAD,
    .kind = "metric",
    .name = "TemplateName",
    .summary = "Classification error: percent of samples predicted wrong",
    .iface = DK_IFACE_METRIC,
    .vtable = &template_name_vtable,
    DK_PARAMS(template_name_params),
}};

/* .license is an SPDX identifier: put yours. */
DK_PLUGIN_DEFINE_TYPES(template_name_types,
                       .name = "template_name", .version = "0.1.0",
                       .summary = "The TemplateName metric",
                       .license = "MIT", .source = "")
