/* image_transforms — per-sample image transforms: Normalize, RandomFlip,
 * RandomCrop, Resize, ToTensor.
 *
 * This file is the plugin's entry: it registers the types defined beside it.
 */
#include "image.h"

static dk_status image_transforms_init(dk_registrar *reg)
{
    DK_TRY(dk_register(reg, &normalize_type));
    DK_TRY(dk_register(reg, &flip_type));
    DK_TRY(dk_register(reg, &crop_type));
    DK_TRY(dk_register(reg, &resize_type));
    return dk_register(reg, &to_tensor_type);
}

DK_PLUGIN_DEFINE(image_transforms_init,
                 .name = "image_transforms", .version = "0.2.0",
                 .summary = "Per-sample image transforms",
                 .license = "Apache-2.0", .source = "in-tree")
