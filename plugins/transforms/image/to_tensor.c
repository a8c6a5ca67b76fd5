/* ToTensor — the image as the (C, H, W) f32 tensor a model reads.
 *
 * Input is u8 or f32, laid out (C, H, W) (what the shipped datasets give),
 * (H, W, C) (`layout: hwc`, what image decoders elsewhere produce), or
 * (H, W) (one channel). Values are kept in pixel units, 0..255, as
 * mmpretrain keeps them (its Normalize then takes means like 123.675);
 * `scale: true` divides u8 values by 255 as torchvision's ToTensor does.
 * f32 input is never rescaled.
 */
#include "image.h"

#include <string.h>

typedef struct to_tensor {
    bool hwc;
    bool scale;
} to_tensor;

static dk_status to_tensor_create(const dk_cfg *cfg, void **self)
{
    to_tensor *t = dk_calloc(1, sizeof *t);
    if (!t)
        return dk_fail(DK_ERR_NOMEM, "ToTensor: out of memory");
    const char *layout = NULL;
    dk_status s = dk_cfg_get_str(cfg, "layout", &layout);
    if (s == DK_OK)
        s = dk_cfg_get_bool(cfg, "scale", &t->scale);
    if (s != DK_OK) {
        dk_free(t);
        return s;
    }
    t->hwc = strcmp(layout, "hwc") == 0;
    *self = t;
    return DK_OK;
}

static void to_tensor_destroy(void *self)
{
    dk_free(self);
}

static dk_status to_tensor_apply(void *self, dk_dict *sample, dk_rng *rng)
{
    const to_tensor *t = self;
    image im;
    DK_TRY(image_get(sample, "ToTensor", &im));
    if (im.dtype != DK_DTYPE_U8 && im.dtype != DK_DTYPE_F32)
        return dk_fail(DK_ERR_ARG, "ToTensor: 'img' is %s; it reads u8 or f32",
                       dk_dtype_name(im.dtype));
    /* image_get read a 3-d tensor as (C, H, W); for hwc it is (H, W, C). */
    int64_t c = im.c, h = im.h, w = im.w;
    bool hwc = t->hwc && im.ndim == 3;
    if (hwc) {
        c = im.w;
        h = im.c;
        w = im.h;
    }
    image like = im;
    like.ndim = 3;
    dk_tensor *out = image_new(&like, c, h, w, DK_DTYPE_F32);
    if (!out)
        return dk_last_status();
    /* A division, not a multiply by 1/255: the same bits as torchvision's div(255). */
    float k = t->scale && im.dtype == DK_DTYPE_U8 ? 255.0f : 1.0f;
    const uint8_t *s8 = dk_tensor_data(im.t);
    const float *s32 = dk_tensor_data(im.t);
    float *dst = dk_tensor_data(out);
    int64_t n = c * h * w;
    for (int64_t o = 0; o < n; o++) {
        /* o indexes the (C, H, W) result; i the same pixel in the input. */
        int64_t i = o;
        if (hwc) {
            int64_t ci = o / (h * w), yx = o % (h * w);
            i = yx * c + ci;
        }
        dst[o] = (im.dtype == DK_DTYPE_U8 ? (float)s8[i] : s32[i]) / k;
    }
    return dk_dict_set_tensor(sample, "img", out);
}

static const dk_param to_tensor_params[] = {
    {.name = "layout", .type = DK_PARAM_STRING, .def = "chw", .choices = "chw|hwc",
     .doc = "how a 3-d input is laid out: (C, H, W) or (H, W, C)"},
    {.name = "scale", .type = DK_PARAM_BOOL, .def = "false",
     .doc = "divide u8 values by 255 (torchvision); false keeps 0..255 (mmpretrain)"},
};

static const dk_transform_vtable to_tensor_vtable = {
    .struct_size = sizeof(dk_transform_vtable),
    .create = to_tensor_create,
    .destroy = to_tensor_destroy,
    .apply = to_tensor_apply,
};

const dk_type_info to_tensor_type = {
    DK_TYPE_INFO_HEAD, .kind = "transform", .name = "ToTensor",
    .summary = "Turn a u8 image (CHW or HWC) into a (C, H, W) f32 tensor",
    .iface = DK_IFACE_TRANSFORM, .vtable = &to_tensor_vtable, DK_PARAMS(to_tensor_params)};
