/* core/data/pipeline.c — one sample: the dataset's get, then each transform.
 *
 * The loader, not the dataset, builds the transforms a dataset's `pipeline:`
 * lists (mmengine's layout), so every dataset plugin gets pipelines for free
 * and the loader can seed each sample's randomness itself. Failures are
 * prefixed with what a user needs to find the culprit: the dataset type, the
 * sample's index (and its file when the sample names one) and the transform.
 */
#include "data.h"

#include "../util/util.h"

#include <string.h>

struct dkh_pipeline {
    const dk_dataset_vtable *vt;
    void *self;
    const char *name; /* the dataset's type name, registry-owned */
    dk_object **transforms;
    const dk_transform_vtable **tvt;
    size_t n;
};

void dkh_pipeline_free(dkh_pipeline *p)
{
    if (!p)
        return;
    for (size_t i = p->n; i-- > 0;)
        dk_object_free(p->transforms[i]);
    dk_free(p->transforms);
    dk_free(p->tvt);
    dk_free(p);
}

static dk_status add_transforms(dkh_pipeline *p, const dk_cfg *list)
{
    size_t n = dk_cfg_len(list);
    if (n == 0)
        return DK_OK;
    p->transforms = dk_calloc(n, sizeof *p->transforms);
    p->tvt = dk_calloc(n, sizeof *p->tvt);
    if (!p->transforms || !p->tvt)
        return dk_fail(DK_ERR_NOMEM, "pipeline: out of memory");
    for (size_t i = 0; i < n; i++) {
        const dk_cfg *item = dk_cfg_at(list, i);
        dk_object *t = NULL;
        DK_TRY(dk_object_build(item, "transform", &t));
        p->transforms[p->n] = t;
        p->tvt[p->n++] = dk_object_type(t)->vtable;
        if (!p->tvt[p->n - 1]->apply)
            return dk_fail(DK_ERR_PLUGIN, "%s (%s): transform %s implements no apply",
                           dk_cfg_path(item), dk_cfg_where(item), dk_object_type(t)->name);
    }
    return DK_OK;
}

dk_status dkh_pipeline_new(dk_object *dataset, const dk_cfg *pipeline_cfg, dkh_pipeline **out)
{
    const dk_type_info *type = dk_object_type(dataset);
    if (!type || type->iface != DK_IFACE_DATASET)
        return dk_fail(DK_ERR_ARG, "data loader: %s is not a dataset",
                       type ? type->name : "(no object)");
    const dk_dataset_vtable *vt = type->vtable;
    if (!vt->len || !vt->get)
        return dk_fail(DK_ERR_PLUGIN, "dataset %s implements no %s", type->name,
                       !vt->len ? "len" : "get");
    dkh_pipeline *p = dk_calloc(1, sizeof *p);
    if (!p)
        return dk_fail(DK_ERR_NOMEM, "pipeline: out of memory");
    p->vt = vt;
    p->self = dk_object_self(dataset);
    p->name = type->name;
    dk_status s = add_transforms(p, pipeline_cfg);
    if (s != DK_OK) {
        dkh_pipeline_free(p);
        return s;
    }
    *out = p;
    return DK_OK;
}

int64_t dkh_pipeline_dataset_len(const dkh_pipeline *p)
{
    int64_t n = p->vt->len(p->self);
    return n > 0 ? n : 0;
}

/* Makes sure a failed plugin call left a message, then prefixes where:
 * "<Dataset> index <i> (<file>): [transform <t> (<Type>): ]<message>". */
static dk_status located(dk_status s, const dkh_pipeline *p, int64_t index, const dk_dict *sample,
                         int64_t t)
{
    const char *tname = t >= 0 ? dk_object_type(p->transforms[t])->name : NULL;
    if (dk_last_status() == DK_OK || !dk_last_error()[0])
        dk_fail(s, "%s failed with %s and left no message", tname ? "apply" : "get",
                dk_status_name(s));
    if (tname)
        dk_error_prefix("transform %lld (%s)", (long long)t, tname);
    const char *file = dk_dict_string(sample, "img_path");
    if (file && !strstr(dk_last_error(), file))
        dk_error_prefix("%s index %lld (%s)", p->name, (long long)index, file);
    else
        dk_error_prefix("%s index %lld", p->name, (long long)index);
    return s;
}

dk_status dkh_pipeline_sample(const dkh_pipeline *p, uint64_t seed, int64_t epoch,
                              int64_t index, dk_dict *sample)
{
    dk_clear_error();
    dk_status s = p->vt->get(p->self, index, sample);
    if (s != DK_OK)
        return located(s, p, index, sample, -1);
    dk_rng rng = dkh_data_rng(seed, DKH_RNG_SAMPLE, epoch, index);
    for (size_t t = 0; t < p->n; t++) {
        /* Each transform has its own stream: a change in how many values
         * one draws leaves the next one's draws as they were. */
        dk_rng own = rng;
        own.counter = t;
        own = dk_rng_split(&own);
        dk_clear_error();
        s = p->tvt[t]->apply(dk_object_self(p->transforms[t]), sample, &own);
        if (s != DK_OK)
            return located(s, p, index, sample, (int64_t)t);
    }
    return DK_OK;
}
