/* Normalize — (img - mean) / std per channel, giving an f32 image.
 *
 * Reads u8 or f32 images, so it can follow the dataset directly (mmpretrain's
 * habit: mean and std in pixel units, 0..255) or a ToTensor that scaled to
 * 0..1 (then give mean and std in that unit).
 */
#include "image.h"

typedef struct normalize {
    size_t channels;
    double *mean;
    double *inv_std;
} normalize;

static void normalize_destroy(void *self)
{
    normalize *n = self;
    dk_free(n->mean);
    dk_free(n->inv_std);
    dk_free(n);
}

static dk_status normalize_create(const dk_cfg *cfg, void **self)
{
    const dk_cfg *mean = dk_cfg_get(cfg, "mean"), *std = dk_cfg_get(cfg, "std");
    if (dk_cfg_len(mean) != dk_cfg_len(std) || dk_cfg_len(mean) == 0)
        return dk_fail(DK_ERR_CONFIG, "%s (%s): Normalize: mean has %zu values and std has %zu; "
                       "give one per channel, as many of each", dk_cfg_path(cfg),
                       dk_cfg_where(cfg), dk_cfg_len(mean), dk_cfg_len(std));
    normalize *n = dk_calloc(1, sizeof *n);
    if (!n)
        return dk_fail(DK_ERR_NOMEM, "Normalize: out of memory");
    size_t n_std = 0;
    dk_status s = image_cfg_numbers(cfg, "mean", &n->mean, &n->channels);
    if (s == DK_OK)
        s = image_cfg_numbers(cfg, "std", &n->inv_std, &n_std);
    for (size_t i = 0; s == DK_OK && i < n->channels; i++) {
        if (n->inv_std[i] == 0)
            s = dk_fail(DK_ERR_CONFIG, "%s (%s): Normalize: std must not be 0",
                        dk_cfg_path(dk_cfg_at(std, i)), dk_cfg_where(dk_cfg_at(std, i)));
        else
            n->inv_std[i] = 1.0 / n->inv_std[i];
    }
    if (s != DK_OK) {
        normalize_destroy(n);
        return s;
    }
    *self = n;
    return DK_OK;
}

static dk_status normalize_apply(void *self, dk_dict *sample, dk_rng *rng)
{
    const normalize *n = self;
    image im;
    DK_TRY(image_get(sample, "Normalize", &im));
    if ((size_t)im.c != n->channels)
        return dk_fail(DK_ERR_SHAPE, "Normalize: 'img' has %lld channels but mean and std give "
                       "%zu", (long long)im.c, n->channels);
    if (im.dtype != DK_DTYPE_U8 && im.dtype != DK_DTYPE_F32)
        return dk_fail(DK_ERR_ARG, "Normalize: 'img' is %s; it reads u8 or f32",
                       dk_dtype_name(im.dtype));
    dk_tensor *out = image_new(&im, im.c, im.h, im.w, DK_DTYPE_F32);
    if (!out)
        return dk_last_status();
    int64_t plane = im.h * im.w;
    float *dst = dk_tensor_data(out);
    const void *src = dk_tensor_data(im.t);
    for (int64_t c = 0; c < im.c; c++) {
        float m = (float)n->mean[c], k = (float)n->inv_std[c];
        float *d = dst + c * plane;
        if (im.dtype == DK_DTYPE_U8) {
            const uint8_t *p = (const uint8_t *)src + c * plane;
            for (int64_t i = 0; i < plane; i++)
                d[i] = ((float)p[i] - m) * k;
        } else {
            const float *p = (const float *)src + c * plane;
            for (int64_t i = 0; i < plane; i++)
                d[i] = (p[i] - m) * k;
        }
    }
    return dk_dict_set_tensor(sample, "img", out);
}

static const dk_param normalize_params[] = {
    {.name = "mean", .type = DK_PARAM_LIST, .elem = DK_PARAM_FLOAT, .flags = DK_PARAM_REQUIRED,
     .doc = "per-channel mean subtracted (in the image's unit: 0..255 for u8 pixels)"},
    {.name = "std", .type = DK_PARAM_LIST, .elem = DK_PARAM_FLOAT, .flags = DK_PARAM_REQUIRED,
     .min = "0", .doc = "per-channel standard deviation divided by"},
};

static const dk_transform_vtable normalize_vtable = {
    .struct_size = sizeof(dk_transform_vtable),
    .create = normalize_create,
    .destroy = normalize_destroy,
    .apply = normalize_apply,
};

const dk_type_info normalize_type = {
    DK_TYPE_INFO_HEAD, .kind = "transform", .name = "Normalize",
    .summary = "Subtract a per-channel mean and divide by a per-channel std (f32 out)",
    .iface = DK_IFACE_TRANSFORM, .vtable = &normalize_vtable, DK_PARAMS(normalize_params)};
