/* pooling_necks — GlobalAveragePooling: every feature map in "feats",
 * (N, C, H, W) -> (N, C) (or (N, C, 1, 1) without flatten): PyTorch's
 * adaptive_avg_pool2d to 1x1 and flatten, written as one mean over the
 * spatial dims (the same values, one op; also for 1-d and 3-d maps).
 */
#include <dk/dk.h>

static dk_status gap_create(const dk_cfg *cfg, void **self)
{
    bool *flatten = dk_malloc(sizeof *flatten);
    if (!flatten)
        return dk_fail(DK_ERR_NOMEM, "GlobalAveragePooling: out of memory");
    dk_status s = dk_cfg_get_bool(cfg, "flatten", flatten);
    if (s != DK_OK) {
        dk_free(flatten);
        return s;
    }
    *self = flatten;
    return DK_OK;
}

static void gap_destroy(void *self)
{
    dk_free(self);
}

static dk_tensor *pool_one(dk_tensor *x, bool flatten)
{
    int nd = dk_tensor_ndim(x);
    if (nd < 3) {
        dk_fail(DK_ERR_SHAPE, "GlobalAveragePooling: a feature map has %d dims; expected (N, C, "
                              "H, W) or another (N, C, ...) map", nd);
        return NULL;
    }
    int dims[DK_MAX_DIMS];
    for (int d = 2; d < nd; d++)
        dims[d - 2] = d;
    return dk_mean(x, dims, nd - 2, !flatten); /* (N, C) */
}

static dk_status gap_forward(void *self, const dk_dict *in, dk_forward_mode mode, dk_dict *out)
{
    (void)mode; /* the same in every mode */
    const bool *flatten = self;
    size_t n = dk_dict_tensors_len(in, "feats");
    if (n == 0)
        return dk_fail(DK_ERR_ARG, "GlobalAveragePooling: the input has no 'feats' list");
    dk_tensor **pooled = dk_malloc(n * sizeof *pooled);
    if (!pooled)
        return dk_fail(DK_ERR_NOMEM, "GlobalAveragePooling: out of memory");
    dk_status s = DK_OK;
    for (size_t i = 0; s == DK_OK && i < n; i++)
        if (!(pooled[i] = pool_one(dk_dict_tensors_at(in, "feats", i), *flatten)))
            s = dk_last_status();
    if (s == DK_OK)
        s = dk_dict_set_tensors(out, "feats", pooled, n);
    dk_free(pooled);
    return s;
}

static const dk_param gap_params[] = {
    {.name = "flatten", .type = DK_PARAM_BOOL, .def = "true",
     .doc = "emit (N, C) rather than (N, C, 1, 1)"},
};

static const dk_module_vtable gap_vtable = {
    .struct_size = sizeof(dk_module_vtable),
    .create = gap_create,
    .destroy = gap_destroy,
    .forward = gap_forward,
};

static const dk_type_info gap_types[] = {{
    DK_TYPE_INFO_HEAD,
    .kind = "neck",
    .name = "GlobalAveragePooling",
    .summary = "Average over the spatial dimensions",
    .iface = DK_IFACE_MODULE,
    .vtable = &gap_vtable,
    DK_PARAMS(gap_params),
}};

DK_PLUGIN_DEFINE_TYPES(gap_types,
                       .name = "pooling_necks", .version = "0.1.0",
                       .summary = "Pooling necks",
                       .license = "Apache-2.0", .source = "in-tree")
