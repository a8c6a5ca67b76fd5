/* image.c — the helpers every image transform uses (image.h). */
#include "image.h"

#include <stdio.h>
#include <string.h>

/* "img, gt_label" into buf, for a message about a missing key. */
static void list_keys(const dk_dict *sample, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < dk_dict_len(sample) && used < cap; i++) {
        int n = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", dk_dict_key(sample, i));
        if (n < 0)
            break;
        used += (size_t)n;
    }
    if (!buf[0])
        snprintf(buf, cap, "none");
}

dk_status image_get(const dk_dict *sample, const char *who, image *out)
{
    dk_tensor *t = dk_dict_tensor(sample, "img");
    if (!t) {
        char keys[256];
        list_keys(sample, keys, sizeof keys);
        return dk_fail(DK_ERR_ARG, "%s: the sample has no tensor 'img' (its keys: %s)", who,
                       keys);
    }
    int nd = dk_tensor_ndim(t);
    const int64_t *shape = dk_tensor_shape(t);
    if (nd != 2 && nd != 3)
        return dk_fail(DK_ERR_SHAPE, "%s: 'img' must be (C, H, W) or (H, W), got %d dims", who,
                       nd);
    if (dk_tensor_device(t).type != DK_DEVICE_CPU)
        return dk_fail(DK_ERR_ARG, "%s: 'img' must be a CPU tensor", who);
    if (!dk_tensor_is_contiguous(t)) {
        t = dk_contiguous(t);
        if (!t)
            return dk_last_status();
    }
    *out = (image){.t = t, .ndim = nd, .c = nd == 3 ? shape[0] : 1, .h = shape[nd - 2],
                   .w = shape[nd - 1], .dtype = dk_tensor_dtype(t)};
    return DK_OK;
}

dk_tensor *image_new(const image *like, int64_t c, int64_t h, int64_t w, dk_dtype dtype)
{
    int64_t shape[3] = {c, h, w};
    if (like->ndim == 3)
        return dk_empty(3, shape, dtype, DK_CPU);
    return dk_empty(2, shape + 1, dtype, DK_CPU);
}

void image_fill(dk_tensor *t, double v)
{
    int64_t n = dk_tensor_numel(t);
    void *p = dk_tensor_data(t);
    switch (dk_tensor_dtype(t)) {
    case DK_DTYPE_U8: {
        double c = v < 0 ? 0 : v > 255 ? 255 : v;
        memset(p, (int)(c + 0.5), (size_t)n);
        break;
    }
    case DK_DTYPE_I32:
        for (int64_t i = 0; i < n; i++)
            ((int32_t *)p)[i] = (int32_t)v;
        break;
    case DK_DTYPE_I64:
        for (int64_t i = 0; i < n; i++)
            ((int64_t *)p)[i] = (int64_t)v;
        break;
    case DK_DTYPE_F64:
        for (int64_t i = 0; i < n; i++)
            ((double *)p)[i] = v;
        break;
    default: /* f32; the callers accept no other dtype */
        for (int64_t i = 0; i < n; i++)
            ((float *)p)[i] = (float)v;
        break;
    }
}

dk_status image_cfg_numbers(const dk_cfg *cfg, const char *key, double **out, size_t *n)
{
    const dk_cfg *list = dk_cfg_get(cfg, key);
    *n = dk_cfg_len(list);
    *out = dk_calloc(*n + 1, sizeof **out);
    if (!*out)
        return dk_fail(DK_ERR_NOMEM, "out of memory reading %s", key);
    for (size_t i = 0; i < *n; i++) {
        dk_status s = dk_cfg_get_float(dk_cfg_at(list, i), NULL, &(*out)[i]);
        if (s != DK_OK) {
            dk_free(*out);
            *out = NULL;
            return s;
        }
    }
    return DK_OK;
}
