/* Resize — bilinear resampling to a fixed [height, width].
 *
 * The sampling grid is PyTorch's interpolate(mode='bilinear',
 * align_corners=False): output pixel i looks at source coordinate
 * (i + 0.5) * in / out - 0.5, clamped at the edges, without antialiasing.
 * u8 images stay u8 (rounded to nearest); f32 images stay f32.
 */
#include "image.h"

typedef struct resize {
    int64_t height, width;
} resize;

static dk_status resize_create(const dk_cfg *cfg, void **self)
{
    const dk_cfg *size = dk_cfg_get(cfg, "size");
    if (dk_cfg_len(size) != 2)
        return dk_fail(DK_ERR_CONFIG, "%s (%s): Resize: size is [height, width], got %zu values",
                       dk_cfg_path(size), dk_cfg_where(size), dk_cfg_len(size));
    resize *r = dk_calloc(1, sizeof *r);
    if (!r)
        return dk_fail(DK_ERR_NOMEM, "Resize: out of memory");
    dk_status s = dk_cfg_get_int(size, "0", &r->height);
    if (s == DK_OK)
        s = dk_cfg_get_int(size, "1", &r->width);
    if (s != DK_OK) {
        dk_free(r);
        return s;
    }
    *self = r;
    return DK_OK;
}

static void resize_destroy(void *self)
{
    dk_free(self);
}

/* Where output position i of n samples an input of m: the two source
 * indices and the weight of the second. */
typedef struct tap {
    int64_t i0, i1;
    float w1;
} tap;

static void taps(int64_t n, int64_t m, tap *out)
{
    double scale = (double)m / (double)n;
    for (int64_t i = 0; i < n; i++) {
        double src = ((double)i + 0.5) * scale - 0.5;
        if (src < 0)
            src = 0;
        int64_t i0 = (int64_t)src;
        if (i0 > m - 1)
            i0 = m - 1;
        int64_t i1 = i0 + 1 < m ? i0 + 1 : m - 1;
        out[i] = (tap){.i0 = i0, .i1 = i1, .w1 = (float)(src - (double)i0)};
    }
}

static float pixel(const void *p, dk_dtype t, int64_t i)
{
    return t == DK_DTYPE_U8 ? (float)((const uint8_t *)p)[i] : ((const float *)p)[i];
}

static dk_status resize_apply(void *self, dk_dict *sample, dk_rng *rng)
{
    const resize *r = self;
    image im;
    DK_TRY(image_get(sample, "Resize", &im));
    if (im.dtype != DK_DTYPE_U8 && im.dtype != DK_DTYPE_F32)
        return dk_fail(DK_ERR_ARG, "Resize: 'img' is %s; it resizes u8 or f32",
                       dk_dtype_name(im.dtype));
    if (im.h == 0 || im.w == 0)
        return dk_fail(DK_ERR_SHAPE, "Resize: the image is empty (%lldx%lld)", (long long)im.h,
                       (long long)im.w);
    dk_tensor *out = image_new(&im, im.c, r->height, r->width, im.dtype);
    tap *ty = dk_malloc((size_t)(r->height + r->width) * sizeof *ty);
    if (!out || !ty) {
        dk_free(ty);
        return out ? dk_fail(DK_ERR_NOMEM, "Resize: out of memory") : dk_last_status();
    }
    tap *tx = ty + r->height;
    taps(r->height, im.h, ty);
    taps(r->width, im.w, tx);
    const void *src = dk_tensor_data(im.t);
    void *dst = dk_tensor_data(out);
    for (int64_t c = 0; c < im.c; c++) {
        int64_t base = c * im.h * im.w;
        for (int64_t i = 0; i < r->height; i++) {
            int64_t r0 = base + ty[i].i0 * im.w, r1 = base + ty[i].i1 * im.w;
            float wy = ty[i].w1;
            int64_t o = (c * r->height + i) * r->width;
            for (int64_t j = 0; j < r->width; j++) {
                float wx = tx[j].w1;
                float top = pixel(src, im.dtype, r0 + tx[j].i0) * (1 - wx) +
                            pixel(src, im.dtype, r0 + tx[j].i1) * wx;
                float bot = pixel(src, im.dtype, r1 + tx[j].i0) * (1 - wx) +
                            pixel(src, im.dtype, r1 + tx[j].i1) * wx;
                float v = top * (1 - wy) + bot * wy;
                if (im.dtype == DK_DTYPE_U8)
                    ((uint8_t *)dst)[o + j] = v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)(v + 0.5f);
                else
                    ((float *)dst)[o + j] = v;
            }
        }
    }
    dk_free(ty);
    return dk_dict_set_tensor(sample, "img", out);
}

static const dk_param resize_params[] = {
    {.name = "size", .type = DK_PARAM_LIST, .elem = DK_PARAM_INT, .flags = DK_PARAM_REQUIRED,
     .min = "1", .doc = "[height, width] of the result"},
};

static const dk_transform_vtable resize_vtable = {
    .struct_size = sizeof(dk_transform_vtable),
    .create = resize_create,
    .destroy = resize_destroy,
    .apply = resize_apply,
};

const dk_type_info resize_type = {
    DK_TYPE_INFO_HEAD, .kind = "transform", .name = "Resize",
    .summary = "Bilinear resize to a fixed [height, width]", .iface = DK_IFACE_TRANSFORM,
    .vtable = &resize_vtable, DK_PARAMS(resize_params)};
