/* image_transforms — per-sample image transforms: Normalize, RandomFlip,
 * RandomCrop. create reads and cross-checks the parameters (e.g. mean and std
 * of equal length, no zero std); the per-sample work arrives with the loader.
 */
#include <dk/dk.h>

#include <string.h>

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
    if (dk_cfg_len(mean) != dk_cfg_len(std))
        return dk_fail(DK_ERR_CONFIG, "%s (%s): Normalize: mean has %zu values but std has %zu",
                       dk_cfg_path(cfg), dk_cfg_where(cfg), dk_cfg_len(mean), dk_cfg_len(std));
    normalize *n = dk_calloc(1, sizeof *n);
    if (!n)
        return dk_fail(DK_ERR_NOMEM, "Normalize: out of memory");
    n->channels = dk_cfg_len(mean);
    n->mean = dk_calloc(n->channels + 1, sizeof(double));
    n->inv_std = dk_calloc(n->channels + 1, sizeof(double));
    dk_status s = n->mean && n->inv_std ? DK_OK : dk_fail(DK_ERR_NOMEM, "Normalize: out of memory");
    for (size_t i = 0; s == DK_OK && i < n->channels; i++) {
        double sd = 0;
        s = dk_cfg_get_float(dk_cfg_at(mean, i), NULL, &n->mean[i]);
        if (s == DK_OK)
            s = dk_cfg_get_float(dk_cfg_at(std, i), NULL, &sd);
        if (s == DK_OK && sd == 0)
            s = dk_fail(DK_ERR_CONFIG, "%s (%s): Normalize: std must not be 0",
                        dk_cfg_path(dk_cfg_at(std, i)), dk_cfg_where(dk_cfg_at(std, i)));
        if (s == DK_OK)
            n->inv_std[i] = 1.0 / sd;
    }
    if (s != DK_OK) {
        normalize_destroy(n);
        return s;
    }
    *self = n;
    return DK_OK;
}

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

typedef struct crop {
    int64_t height, width, padding;
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
    if (s != DK_OK) {
        dk_free(c);
        return s;
    }
    *self = c;
    return DK_OK;
}

static void plain_destroy(void *self)
{
    dk_free(self);
}

static const dk_param normalize_params[] = {
    {.name = "mean", .type = DK_PARAM_LIST, .elem = DK_PARAM_FLOAT, .flags = DK_PARAM_REQUIRED,
     .doc = "per-channel mean subtracted (in pixel units, 0..255)"},
    {.name = "std", .type = DK_PARAM_LIST, .elem = DK_PARAM_FLOAT, .flags = DK_PARAM_REQUIRED,
     .min = "0", .doc = "per-channel standard deviation divided by"},
};
static const dk_param flip_params[] = {
    {.name = "prob", .type = DK_PARAM_FLOAT, .def = "0.5", .min = "0", .max = "1",
     .doc = "probability of flipping a sample"},
    {.name = "direction", .type = DK_PARAM_STRING, .def = "horizontal",
     .choices = "horizontal|vertical", .doc = "axis to mirror"},
};
static const dk_param crop_params[] = {
    {.name = "size", .type = DK_PARAM_LIST, .elem = DK_PARAM_INT, .flags = DK_PARAM_REQUIRED,
     .min = "1", .doc = "[height, width] of the crop"},
    {.name = "padding", .type = DK_PARAM_INT, .def = "0", .min = "0",
     .doc = "zero padding added on every side before cropping"},
};

static const dk_transform_vtable normalize_vtable = {
    .struct_size = sizeof(dk_transform_vtable), .create = normalize_create,
    .destroy = normalize_destroy};
static const dk_transform_vtable flip_vtable = {
    .struct_size = sizeof(dk_transform_vtable), .create = flip_create, .destroy = plain_destroy};
static const dk_transform_vtable crop_vtable = {
    .struct_size = sizeof(dk_transform_vtable), .create = crop_create, .destroy = plain_destroy};

static const dk_type_info transform_types[] = {
    {DK_TYPE_INFO_HEAD, .kind = "transform", .name = "Normalize",
     .summary = "Subtract a per-channel mean and divide by a per-channel std",
     .iface = DK_IFACE_TRANSFORM, .vtable = &normalize_vtable, DK_PARAMS(normalize_params)},
    {DK_TYPE_INFO_HEAD, .kind = "transform", .name = "RandomFlip",
     .summary = "Mirror an image with a given probability", .iface = DK_IFACE_TRANSFORM,
     .vtable = &flip_vtable, DK_PARAMS(flip_params)},
    {DK_TYPE_INFO_HEAD, .kind = "transform", .name = "RandomCrop",
     .summary = "Pad, then cut a random window of a fixed size", .iface = DK_IFACE_TRANSFORM,
     .vtable = &crop_vtable, DK_PARAMS(crop_params)},
};

DK_PLUGIN_DEFINE_TYPES(transform_types,
                       .name = "image_transforms", .version = "0.1.0",
                       .summary = "Per-sample image transforms",
                       .license = "Apache-2.0", .source = "in-tree")
