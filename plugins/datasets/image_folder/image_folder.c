/* image_folder — ImageFolder: a classification dataset laid out as
 * root/<class>/<image>.jpg (torchvision's and mmpretrain's layout).
 *
 * create finds the files (scan.c) and fails at once on a missing or empty
 * tree; get decodes one image (jpeg_read.c), so a corrupt file is found when
 * its sample is loaded and the message names its path. A sample is "img"
 * (3, H, W) u8 RGB, or (1, H, W) with color_type grayscale, "gt_label" (the
 * class index, folders in sorted order) and "img_path".
 */
#include "image_folder.h"

#include <stdio.h>
#include <string.h>

typedef struct image_folder {
    char *root;
    int channels;
    folder_index ix;
} image_folder;

static void folder_destroy(void *self)
{
    image_folder *d = self;
    folder_index_fini(&d->ix);
    dk_free(d->root);
    dk_free(d);
}

static dk_status folder_create(const dk_cfg *cfg, void **self)
{
    image_folder *d = dk_calloc(1, sizeof *d);
    if (!d)
        return dk_fail(DK_ERR_NOMEM, "ImageFolder: out of memory");
    const char *root = NULL, *color = NULL;
    dk_status s = dk_cfg_get_str(cfg, "data_root", &root);
    if (s == DK_OK)
        s = dk_cfg_get_str(cfg, "color_type", &color);
    if (s == DK_OK) {
        d->channels = strcmp(color, "grayscale") == 0 ? 1 : 3;
        /* Trailing slashes would double up in every path. */
        d->root = dk_strdup(root);
        size_t n = d->root ? strlen(d->root) : 0;
        while (n > 1 && d->root[n - 1] == '/')
            d->root[--n] = '\0';
        s = d->root ? folder_index_scan(d->root, &d->ix)
                    : dk_fail(DK_ERR_NOMEM, "ImageFolder: out of memory");
    }
    if (s != DK_OK) {
        folder_destroy(d);
        return s;
    }
    dk_log(DK_LOG_DEBUG, "ImageFolder: %lld images of %lld classes under %s", (long long)d->ix.n,
           (long long)d->ix.n_classes, d->root);
    *self = d;
    return DK_OK;
}

static int64_t folder_len(void *self)
{
    return ((const image_folder *)self)->ix.n;
}

static dk_status folder_get(void *self, int64_t index, dk_dict *sample)
{
    const image_folder *d = self;
    if (index < 0 || index >= d->ix.n)
        return dk_fail(DK_ERR_ARG, "ImageFolder: index %lld is outside [0, %lld)",
                       (long long)index, (long long)d->ix.n);
    char path[4096];
    const char *rel = d->ix.paths + d->ix.offsets[index];
    int n = snprintf(path, sizeof path, "%s/%s", d->root, rel);
    if (n < 0 || (size_t)n >= sizeof path)
        return dk_fail(DK_ERR_IO, "ImageFolder: path %s/%s is longer than 4095 bytes", d->root,
                       rel);
    dk_tensor *img = NULL;
    DK_TRY(jpeg_read(path, d->channels, &img));
    DK_TRY(dk_dict_set_tensor(sample, "img", img));
    DK_TRY(dk_dict_set_number(sample, "gt_label", d->ix.labels[index]));
    return dk_dict_set_string(sample, "img_path", path);
}

static const char *folder_class_name(void *self, int64_t i)
{
    const image_folder *d = self;
    return i >= 0 && i < d->ix.n_classes ? d->ix.classes[i] : NULL;
}

static const dk_param folder_params[] = {
    {.name = "data_root", .type = DK_PARAM_STRING, .flags = DK_PARAM_REQUIRED,
     .doc = "folder holding one sub-folder of .jpg/.jpeg images per class"},
    {.name = "color_type", .type = DK_PARAM_STRING, .def = "color", .choices = "color|grayscale",
     .doc = "decode to 3-channel RGB or 1-channel luma"},
    DK_PARAM_PIPELINE,
};

static const dk_dataset_vtable folder_vtable = {
    .struct_size = sizeof(dk_dataset_vtable),
    .create = folder_create,
    .destroy = folder_destroy,
    .len = folder_len,
    .get = folder_get,
    .class_name = folder_class_name,
};

static const dk_type_info folder_types[] = {{
    DK_TYPE_INFO_HEAD,
    .kind = "dataset",
    .name = "ImageFolder",
    .summary = "JPEG images in one folder per class (root/<class>/<image>.jpg)",
    .iface = DK_IFACE_DATASET,
    .vtable = &folder_vtable,
    DK_PARAMS(folder_params),
}};

DK_PLUGIN_DEFINE_TYPES(folder_types,
                       .name = "image_folder", .version = "0.1.0",
                       .summary = "Image classification data in class folders (JPEG)",
                       .license = "Apache-2.0", .source = "in-tree")
