/* RandomCrop — pad every side by `padding` pixels of value pad_val, then cut
 * a window of `size` at a uniformly drawn position (torchvision's and
 * mmpretrain's RandomCrop with padding_mode 'constant'). Two draws per
 * sample: the top row, then the left column.
 */
#include "image.h"

#include <string.h>

typedef struct crop {
    int64_t height, width, padding;
    double pad_val;
} crop;

static dk_status crop_create(const dk_cfg *cfg, void **self)
{
    const dk_cfg *size = dk_cfg_get(cfg, "size");
    if (dk_cfg_len(size) != 2)
        return dk_fail(DK_ERR_CONFIG, "%s (%s): RandomCrop: size is [height, width], got %zu "
                       "values", dk_cfg_path(size), dk_cfg_where(size), dk_cfg_len(size));
    crop *c = dk_calloc(1, sizeof *c);
    if (!c)
        return dk_fail(DK_ERR_NOMEM, "RandomCrop: out of memory");
    dk_status s = dk_cfg_get_int(size, "0", &c->height);
    if (s == DK_OK)
        s = dk_cfg_get_int(size, "1", &c->width);
    if (s == DK_OK)
        s = dk_cfg_get_int(cfg, "padding", &c->padding);
    if (s == DK_OK)
        s = dk_cfg_get_float(cfg, "pad_val", &c->pad_val);
    if (s != DK_OK) {
        dk_free(c);
        return s;
    }
    *self = c;
    return DK_OK;
}

static void crop_destroy(void *self)
{
    dk_free(self);
}

static bool fillable(dk_dtype t)
{
    return t == DK_DTYPE_U8 || t == DK_DTYPE_I32 || t == DK_DTYPE_I64 || t == DK_DTYPE_F32 ||
           t == DK_DTYPE_F64;
}

static dk_status crop_apply(void *self, dk_dict *sample, dk_rng *rng)
{
    const crop *k = self;
    image im;
    DK_TRY(image_get(sample, "RandomCrop", &im));
    int64_t p = k->padding, ph = im.h + 2 * p, pw = im.w + 2 * p;
    if (ph < k->height || pw < k->width)
        return dk_fail(DK_ERR_SHAPE, "RandomCrop: the image is %lldx%lld (%lldx%lld padded), "
                       "smaller than the crop %lldx%lld", (long long)im.h, (long long)im.w,
                       (long long)ph, (long long)pw, (long long)k->height, (long long)k->width);
    if (p > 0 && !fillable(im.dtype))
        return dk_fail(DK_ERR_ARG, "RandomCrop: cannot pad a %s image; it pads u8, i32, i64, "
                       "f32 or f64", dk_dtype_name(im.dtype));
    /* Window position in padded coordinates. */
    int64_t top = dk_rng_int(rng, ph - k->height + 1);
    int64_t left = dk_rng_int(rng, pw - k->width + 1);
    dk_tensor *out = image_new(&im, im.c, k->height, k->width, im.dtype);
    if (!out)
        return dk_last_status();
    /* The source columns the window covers: [x0, x1) of the original. */
    int64_t x0 = left - p < 0 ? 0 : left - p;
    int64_t x1 = left - p + k->width > im.w ? im.w : left - p + k->width;
    bool inside = top >= p && left >= p && top - p + k->height <= im.h &&
                  left - p + k->width <= im.w;
    if (!inside)
        image_fill(out, k->pad_val);
    size_t es = dk_dtype_size(im.dtype);
    const char *src = dk_tensor_data(im.t);
    char *dst = dk_tensor_data(out);
    for (int64_t c = 0; c < im.c; c++) {
        for (int64_t i = 0; i < k->height; i++) {
            int64_t sy = top - p + i;
            if (sy < 0 || sy >= im.h || x1 <= x0)
                continue;
            char *d = dst + ((size_t)(c * k->height + i) * (size_t)k->width +
                             (size_t)(x0 - (left - p))) * es;
            memcpy(d, src + ((size_t)(c * im.h + sy) * (size_t)im.w + (size_t)x0) * es,
                   (size_t)(x1 - x0) * es);
        }
    }
    return dk_dict_set_tensor(sample, "img", out);
}

static const dk_param crop_params[] = {
    {.name = "size", .type = DK_PARAM_LIST, .elem = DK_PARAM_INT, .flags = DK_PARAM_REQUIRED,
     .min = "1", .doc = "[height, width] of the crop"},
    {.name = "padding", .type = DK_PARAM_INT, .def = "0", .min = "0",
     .doc = "pixels of pad_val added on every side before cropping"},
    {.name = "pad_val", .type = DK_PARAM_FLOAT, .def = "0",
     .doc = "value of the padding pixels (constant padding)"},
};

static const dk_transform_vtable crop_vtable = {
    .struct_size = sizeof(dk_transform_vtable),
    .create = crop_create,
    .destroy = crop_destroy,
    .apply = crop_apply,
};

const dk_type_info crop_type = {
    DK_TYPE_INFO_HEAD, .kind = "transform", .name = "RandomCrop",
    .summary = "Pad with a constant, then cut a random window of a fixed size",
    .iface = DK_IFACE_TRANSFORM, .vtable = &crop_vtable, DK_PARAMS(crop_params)};
