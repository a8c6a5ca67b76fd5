/* fashion_mnist — the Fashion-MNIST dataset from its IDX files.
 *
 * Reads the four IDX files (gzip-compressed as Debian's dataset-fashion-mnist
 * ships them, or already decompressed) and checks them the way a user needs:
 * a missing file says where it looked and how to get it, a wrong file says
 * what its header holds, a truncated one says how much is missing. Images and
 * labels are kept in memory (70,000 x 28 x 28 bytes in all).
 *
 * A sample is "img", the (1, 28, 28) u8 pixels exactly as the file stores
 * them (0 = background), and "gt_label", the class index. Normalize (or
 * ToTensor) in the pipeline makes the f32 image a model reads.
 */
#include <dk/dk.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#define IMAGE_MAGIC 0x00000803u
#define LABEL_MAGIC 0x00000801u

typedef struct fmnist {
    int64_t count;
    int64_t rows, cols;
    uint8_t *images; /* (count, rows, cols) */
    uint8_t *labels; /* (count,) */
} fmnist;

static void fmnist_destroy(void *self)
{
    fmnist *d = self;
    dk_free(d->images);
    dk_free(d->labels);
    dk_free(d);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Opens root/name(.gz); gzopen reads plain files too. *path gets the name tried. */
static gzFile open_idx(const char *root, const char *name, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s.gz", root, name);
    gzFile f = gzopen(path, "rb");
    if (!f) {
        snprintf(path, cap, "%s/%s", root, name);
        f = gzopen(path, "rb");
    }
    if (!f)
        snprintf(path, cap, "%s/%s(.gz)", root, name);
    return f;
}

/* Reads an IDX file whose header has `dims` dimensions; allocates *data for
 * the payload and returns the dimensions in shape[]. */
static dk_status read_idx(const char *root, const char *name, uint32_t magic, int dims,
                          uint32_t shape[3], uint8_t **data)
{
    char path[4096];
    gzFile f = open_idx(root, name, path, sizeof path);
    if (!f)
        return dk_fail(DK_ERR_IO, "FashionMNIST: cannot open %s: %s (install Debian's "
                       "dataset-fashion-mnist package or set data_root)",
                       path, strerror(errno ? errno : ENOENT));
    unsigned char head[16];
    int want = 4 + 4 * dims;
    int got = gzread(f, head, (unsigned)want);
    dk_status s = DK_OK;
    if (got != want) {
        s = dk_fail(DK_ERR_IO, "FashionMNIST: %s: truncated header (%d of %d bytes)", path,
                    got < 0 ? 0 : got, want);
    } else if (be32(head) != magic) {
        s = dk_fail(DK_ERR_IO, "FashionMNIST: %s: not an IDX %s file (magic 0x%08x, expected "
                    "0x%08x)", path, dims == 1 ? "label" : "image", be32(head), magic);
    }
    size_t n = 1;
    for (int i = 0; s == DK_OK && i < dims; i++) {
        shape[i] = be32(head + 4 + 4 * i);
        n *= shape[i];
    }
    if (s == DK_OK) {
        *data = dk_malloc(n ? n : 1);
        if (!*data)
            s = dk_fail(DK_ERR_NOMEM, "FashionMNIST: out of memory reading %s", path);
    }
    if (s == DK_OK) {
        size_t done = 0;
        while (done < n) {
            size_t chunk = n - done > (1u << 30) ? (1u << 30) : n - done;
            int r = gzread(f, *data + done, (unsigned)chunk);
            if (r <= 0)
                break;
            done += (size_t)r;
        }
        if (done != n) {
            int zerr;
            const char *why = gzerror(f, &zerr);
            s = dk_fail(DK_ERR_IO, "FashionMNIST: %s: truncated: header promises %zu bytes of "
                        "data, file holds %zu%s%s", path, n, done,
                        zerr != Z_OK ? " — " : "", zerr != Z_OK ? why : "");
            dk_free(*data);
            *data = NULL;
        }
    }
    gzclose(f);
    return s;
}

static dk_status fmnist_create(const dk_cfg *cfg, void **self)
{
    fmnist *d = dk_calloc(1, sizeof *d);
    if (!d)
        return dk_fail(DK_ERR_NOMEM, "FashionMNIST: out of memory");
    const char *root = NULL, *split = NULL;
    dk_status s = dk_cfg_get_str(cfg, "data_root", &root);
    if (s == DK_OK)
        s = dk_cfg_get_str(cfg, "split", &split);
    const char *prefix = split && strcmp(split, "test") == 0 ? "t10k" : "train";
    char images[64], labels[64];
    snprintf(images, sizeof images, "%s-images-idx3-ubyte", prefix);
    snprintf(labels, sizeof labels, "%s-labels-idx1-ubyte", prefix);
    uint32_t ishape[3] = {0}, lshape[3] = {0};
    if (s == DK_OK)
        s = read_idx(root, images, IMAGE_MAGIC, 3, ishape, &d->images);
    if (s == DK_OK)
        s = read_idx(root, labels, LABEL_MAGIC, 1, lshape, &d->labels);
    if (s == DK_OK && ishape[0] != lshape[0])
        s = dk_fail(DK_ERR_IO, "FashionMNIST: %s has %u images but %s has %u labels", images,
                    ishape[0], labels, lshape[0]);
    for (uint32_t i = 0; s == DK_OK && i < lshape[0]; i++)
        if (d->labels[i] > 9)
            s = dk_fail(DK_ERR_IO, "FashionMNIST: %s: label %u of sample %u is not a class "
                        "0..9", labels, d->labels[i], i);
    if (s != DK_OK) {
        fmnist_destroy(d);
        return s;
    }
    d->count = ishape[0];
    d->rows = ishape[1];
    d->cols = ishape[2];
    dk_log(DK_LOG_DEBUG, "FashionMNIST: %s split: %lld images of %lldx%lld from %s", split,
           (long long)d->count, (long long)d->rows, (long long)d->cols, root);
    *self = d;
    return DK_OK;
}

static int64_t fmnist_len(void *self)
{
    return ((const fmnist *)self)->count;
}

static dk_status fmnist_get(void *self, int64_t index, dk_dict *sample)
{
    const fmnist *d = self;
    if (index < 0 || index >= d->count)
        return dk_fail(DK_ERR_ARG, "FashionMNIST: index %lld is outside [0, %lld)",
                       (long long)index, (long long)d->count);
    int64_t shape[3] = {1, d->rows, d->cols};
    dk_tensor *img = dk_from_data(3, shape, DK_DTYPE_U8,
                                  d->images + (size_t)index * (size_t)(d->rows * d->cols));
    if (!img)
        return dk_last_status();
    DK_TRY(dk_dict_set_tensor(sample, "img", img));
    return dk_dict_set_number(sample, "gt_label", d->labels[index]);
}

static const char *const class_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                            "Coat",        "Sandal",  "Shirt",    "Sneaker",
                                            "Bag",         "Ankle boot"};

static const char *fmnist_class_name(void *self, int64_t i)
{
    return i >= 0 && i < 10 ? class_names[i] : NULL;
}

static const dk_param fmnist_params[] = {
    {.name = "data_root", .type = DK_PARAM_STRING, .def = "/usr/share/datasets/fashion-mnist",
     .doc = "directory holding the four IDX files (.gz or plain)"},
    {.name = "split", .type = DK_PARAM_STRING, .def = "train", .choices = "train|test",
     .doc = "60,000 training or 10,000 test images"},
    DK_PARAM_PIPELINE,
};

static const dk_dataset_vtable fmnist_vtable = {
    .struct_size = sizeof(dk_dataset_vtable),
    .create = fmnist_create,
    .destroy = fmnist_destroy,
    .len = fmnist_len,
    .get = fmnist_get,
    .class_name = fmnist_class_name,
};

static const dk_type_info fmnist_types[] = {{
    DK_TYPE_INFO_HEAD,
    .kind = "dataset",
    .name = "FashionMNIST",
    .summary = "Fashion-MNIST: 28x28 grey images of 10 clothing classes (IDX files)",
    .iface = DK_IFACE_DATASET,
    .vtable = &fmnist_vtable,
    DK_PARAMS(fmnist_params),
}};

DK_PLUGIN_DEFINE_TYPES(fmnist_types,
                       .name = "fashion_mnist", .version = "0.1.0",
                       .summary = "The Fashion-MNIST dataset",
                       .license = "Apache-2.0", .source = "in-tree")
