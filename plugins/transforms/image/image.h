/* image.h — what the image transforms share: the sample's "img" read as
 * (C, H, W), a new image of the same layout, and each type's registration
 * record (defined in the type's own file, registered by plugin.c).
 *
 * Images are (C, H, W) or (H, W) tensors on the CPU; a (H, W) image counts
 * as one channel and keeps its two dims. The transforms are plain loops:
 * they run on loader threads beside the training step.
 */
#ifndef IMAGE_TRANSFORMS_H
#define IMAGE_TRANSFORMS_H

#include <dk/dk.h>

typedef struct image {
    dk_tensor *t; /* contiguous; borrowed from the sample or the scope */
    int ndim;     /* 2 or 3 */
    int64_t c, h, w;
    dk_dtype dtype;
} image;

/* Reads the sample's "img". `who` names the transform in messages, which
 * list the sample's keys when "img" is missing. */
dk_status image_get(const dk_dict *sample, const char *who, image *out);

/* A new (scope-owned) image laid out like `like` ((c, h, w), or (h, w) when
 * like is 2-d) of dtype; NULL with the error recorded. */
dk_tensor *image_new(const image *like, int64_t c, int64_t h, int64_t w, dk_dtype dtype);

/* Sets every element of t (u8, i32, i64, f32 or f64) to v. */
void image_fill(dk_tensor *t, double v);

/* Reads a list of numbers from cfg[key] into a new array (dk_malloc) of
 * *n values. */
dk_status image_cfg_numbers(const dk_cfg *cfg, const char *key, double **out, size_t *n);

extern const dk_type_info normalize_type;
extern const dk_type_info flip_type;
extern const dk_type_info crop_type;
extern const dk_type_info resize_type;
extern const dk_type_info to_tensor_type;

#endif /* IMAGE_TRANSFORMS_H */
