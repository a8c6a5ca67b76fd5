/* RandomFlip — mirror the image left-right (or top-bottom) with probability
 * `prob`. Any dtype: pixels are moved, never converted. One draw per sample,
 * flipped or not, so the stream is the same length either way.
 */
#include "image.h"

#include <string.h>

typedef struct flip {
    double prob;
    bool vertical;
} flip;

static dk_status flip_create(const dk_cfg *cfg, void **self)
{
    flip *f = dk_calloc(1, sizeof *f);
    if (!f)
        return dk_fail(DK_ERR_NOMEM, "RandomFlip: out of memory");
    const char *dir = NULL;
    dk_status s = dk_cfg_get_float(cfg, "prob", &f->prob);
    if (s == DK_OK)
        s = dk_cfg_get_str(cfg, "direction", &dir);
    if (s != DK_OK) {
        dk_free(f);
        return s;
    }
    f->vertical = strcmp(dir, "vertical") == 0;
    *self = f;
    return DK_OK;
}

static void flip_destroy(void *self)
{
    dk_free(self);
}

static dk_status flip_apply(void *self, dk_dict *sample, dk_rng *rng)
{
    const flip *f = self;
    if (!(dk_rng_uniform(rng) < f->prob))
        return DK_OK;
    image im;
    DK_TRY(image_get(sample, "RandomFlip", &im));
    dk_tensor *out = image_new(&im, im.c, im.h, im.w, im.dtype);
    if (!out)
        return dk_last_status();
    size_t es = dk_dtype_size(im.dtype), row = (size_t)im.w * es;
    const char *src = dk_tensor_data(im.t);
    char *dst = dk_tensor_data(out);
    for (int64_t c = 0; c < im.c; c++) {
        for (int64_t y = 0; y < im.h; y++) {
            char *d = dst + (size_t)(c * im.h + y) * row;
            if (f->vertical) {
                memcpy(d, src + (size_t)(c * im.h + (im.h - 1 - y)) * row, row);
                continue;
            }
            const char *s = src + (size_t)(c * im.h + y) * row;
            for (int64_t x = 0; x < im.w; x++)
                memcpy(d + (size_t)x * es, s + (size_t)(im.w - 1 - x) * es, es);
        }
    }
    return dk_dict_set_tensor(sample, "img", out);
}

static const dk_param flip_params[] = {
    {.name = "prob", .type = DK_PARAM_FLOAT, .def = "0.5", .min = "0", .max = "1",
     .doc = "probability of flipping a sample"},
    {.name = "direction", .type = DK_PARAM_STRING, .def = "horizontal",
     .choices = "horizontal|vertical", .doc = "horizontal mirrors left-right, vertical top-bottom"},
};

static const dk_transform_vtable flip_vtable = {
    .struct_size = sizeof(dk_transform_vtable),
    .create = flip_create,
    .destroy = flip_destroy,
    .apply = flip_apply,
};

const dk_type_info flip_type = {
    DK_TYPE_INFO_HEAD, .kind = "transform", .name = "RandomFlip",
    .summary = "Mirror an image with a given probability", .iface = DK_IFACE_TRANSFORM,
    .vtable = &flip_vtable, DK_PARAMS(flip_params)};
