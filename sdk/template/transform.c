/* template_name.c — TemplateName, a data transform for dkhost.
 *
 * Written by `dkhost new-plugin --kind transform`: a working transform to
 * grow into your own. A dataset lists its transforms under `pipeline:`; the
 * loader applies them to every sample, from several threads at once. This
 * one adds Gaussian noise of standard deviation `std` to an f32 "img" (put
 * it after Normalize or ToTensor, which make f32), with probability `prob`.
 *
 * Threads and randomness: `self` is shared by the loader's threads, so apply
 * only reads it; every random draw comes from the rng apply receives, seeded
 * from the run seed, the epoch and the sample index, so a sample looks the
 * same whatever the number of threads, and a resumed run repeats it.
 *
 * Build:  make                      (pkg-config), or
 *         cmake -S . -B build && cmake --build build   (find_package(dk))
 * Use:    dkhost --plugins . list-registry --kind transform
 *         dkhost --plugins . check template_name.yaml
 */
#include <dk/dk.h>

#include <math.h>

typedef struct template_name_state {
    double std, prob;
} template_name_state;

static dk_status template_name_create(const dk_cfg *cfg, void **self)
{
    template_name_state *t = dk_calloc(1, sizeof *t);
    if (!t)
        return dk_fail(DK_ERR_NOMEM, "TemplateName: out of memory");
    dk_status s = dk_cfg_get_float(cfg, "std", &t->std);
    if (s == DK_OK)
        s = dk_cfg_get_float(cfg, "prob", &t->prob);
    if (s != DK_OK) {
        dk_free(t);
        return s;
    }
    *self = t;
    return DK_OK;
}

static void template_name_destroy(void *self)
{
    dk_free(self);
}

/* A standard normal draw (Box-Muller). */
static double normal(dk_rng *rng)
{
    double u1 = dk_rng_uniform(rng), u2 = dk_rng_uniform(rng);
    return sqrt(-2.0 * log(u1 + 1e-300)) * cos(6.283185307179586 * u2);
}

static dk_status template_name_apply(void *self, dk_dict *sample, dk_rng *rng)
{
    const template_name_state *t = self;
    if (!(dk_rng_uniform(rng) < t->prob))
        return DK_OK;
    dk_tensor *img = dk_dict_tensor(sample, "img"); /* (C, H, W) */
    if (!img)
        return dk_fail(DK_ERR_ARG, "TemplateName: the sample has no tensor 'img'");
    if (dk_tensor_dtype(img) != DK_DTYPE_F32)
        return dk_fail(DK_ERR_ARG, "TemplateName: 'img' is %s, not f32: put TemplateName after "
                                   "Normalize or ToTensor",
                       dk_dtype_name(dk_tensor_dtype(img)));
    img = dk_contiguous(img);
    dk_tensor *out = img ? dk_empty(dk_tensor_ndim(img), dk_tensor_shape(img), DK_DTYPE_F32,
                                    dk_tensor_device(img))
                         : NULL;
    if (!out)
        return dk_last_status();
    /* A new tensor: the input may be shared (a dataset's cache). Tensors made
     * here belong to the sample's scope; the dict keeps what it holds. */
    const float *src = dk_tensor_data(img);
    float *dst = dk_tensor_data(out);
    for (int64_t i = 0, n = dk_tensor_numel(img); i < n; i++)
        dst[i] = src[i] + (float)(t->std * normal(rng));
    return dk_dict_set_tensor(sample, "img", out);
}

/* The schema: dkhost checks every config against it before anything is
 * created, and `dkhost list-registry` prints it as the type's documentation. */
static const dk_param template_name_params[] = {
    {.name = "std", .type = DK_PARAM_FLOAT, .def = "0.1", .min = "0",
     .doc = "standard deviation of the noise"},
    {.name = "prob", .type = DK_PARAM_FLOAT, .def = "1.0", .min = "0", .max = "1",
     .doc = "probability that a sample gets noise"},
};

static const dk_transform_vtable template_name_vtable = {
    .struct_size = sizeof(dk_transform_vtable),
    .create = template_name_create,
    .destroy = template_name_destroy,
    .apply = template_name_apply,
};

static const dk_type_info template_name_types[] = {{
    DK_TYPE_INFO_HEAD,
    .kind = "transform",
    .name = "TemplateName",
    .summary = "Adds Gaussian noise to an f32 image",
    .iface = DK_IFACE_TRANSFORM,
    .vtable = &template_name_vtable,
    DK_PARAMS(template_name_params),
}};

/* .license is an SPDX identifier: put yours. */
DK_PLUGIN_DEFINE_TYPES(template_name_types,
                       .name = "template_name", .version = "0.1.0",
                       .summary = "The TemplateName transform",
                       .license = "MIT", .source = "")
