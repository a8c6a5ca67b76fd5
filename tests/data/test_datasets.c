/* tests/data/test_datasets.c — the dataset plugins on real files written
 * here: FashionMNIST against the raw IDX bytes (and the installed dataset
 * when present), ImageFolder on JPEGs encoded with libjpeg, its class
 * order and layout, and corrupt or missing files reported with their path,
 * through the loader's worker threads too. */
#include "data_testing.h"

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <jpeglib.h>

#define REAL_FMNIST "/usr/share/datasets/fashion-mnist"

typedef struct fixture {
    dkh_registry *reg;
    char dir[512]; /* a fresh temporary folder */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->reg = dkh_registry_new();
    dkh_registry_set_current(f->reg);
    dt_load_plugin(f->reg, "fashion_mnist");
    dt_load_plugin(f->reg, "image_folder");
    dt_load_plugin(f->reg, "image_transforms");
    snprintf(f->dir, sizeof f->dir, "%s/datasets_XXXXXX", DK_TEST_BINARY_DIR);
    assert_non_null(mkdtemp(f->dir));
    dk_clear_error();
    dk_scope_begin();
    *state = f;
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int teardown(void **state)
{
    fixture *f = *state;
    dk_scope_end();
    nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    dkh_registry_free(f->reg);
    free(f);
    return 0;
}

/* "<dir>/<rel>", in a static buffer per call site's needs. */
static const char *at(const fixture *f, const char *rel, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", f->dir, rel);
    return buf;
}

static void make_dir(const fixture *f, const char *rel)
{
    char p[1024];
    assert_int_equal(mkdir(at(f, rel, p, sizeof p), 0755), 0);
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    fclose(fp);
}

static size_t read_file(const char *path, unsigned char *buf, size_t cap)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    size_t n = fread(buf, 1, cap, fp);
    fclose(fp);
    return n;
}

static const dk_dataset_vtable *dataset_vt(const dk_object *d)
{
    return dk_object_type(d)->vtable;
}

/* Sample i of dataset d, or NULL with the error recorded. */
static dk_dict *get(dk_object *d, int64_t i)
{
    dk_dict *s = dk_dict_new();
    if (dataset_vt(d)->get(dk_object_self(d), i, s) != DK_OK) {
        dk_dict_free(s);
        return NULL;
    }
    return s;
}

/* ---- FashionMNIST --------------------------------------------------------------- */

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void test_fashion_mnist_matches_idx_bytes(void **state)
{
    fixture *f = *state;
    /* Three 4x5 images, gzip-compressed as Debian ships them; labels plain. */
    unsigned char images[16 + 3 * 20], labels[8 + 3] = {0};
    put_be32(images, 0x803);
    put_be32(images + 4, 3);
    put_be32(images + 8, 4);
    put_be32(images + 12, 5);
    for (int i = 0; i < 60; i++)
        images[16 + i] = (unsigned char)(i * 37 + 5);
    put_be32(labels, 0x801);
    put_be32(labels + 4, 3);
    labels[8] = 3, labels[9] = 0, labels[10] = 9;
    char p[1024];
    gzFile gz = gzopen(at(f, "train-images-idx3-ubyte.gz", p, sizeof p), "wb");
    assert_non_null(gz);
    assert_int_equal(gzwrite(gz, images, sizeof images), (int)sizeof images);
    gzclose(gz);
    write_file(at(f, "train-labels-idx1-ubyte", p, sizeof p), labels, sizeof labels);

    char yaml[1024];
    snprintf(yaml, sizeof yaml, "{type: FashionMNIST, data_root: '%s'}", f->dir);
    dk_object *d = dt_build(yaml, "dataset");
    if (!d)
        fail_msg("%s", dk_last_error());
    const dk_dataset_vtable *vt = dataset_vt(d);
    assert_int_equal(vt->len(dk_object_self(d)), 3);
    for (int64_t i = 0; i < 3; i++) {
        dk_dict *s = get(d, i);
        assert_non_null(s);
        dk_tensor *img = dk_dict_tensor(s, "img");
        assert_int_equal(dk_tensor_dtype(img), DK_DTYPE_U8);
        assert_int_equal(dk_tensor_ndim(img), 3);
        const int64_t *shape = dk_tensor_shape(img);
        assert_true(shape[0] == 1 && shape[1] == 4 && shape[2] == 5);
        unsigned char got[20];
        CHECK_OK(dk_tensor_to_host(img, got, sizeof got));
        assert_memory_equal(got, images + 16 + 20 * i, 20);
        assert_true(dk_dict_number(s, "gt_label", -1) == labels[8 + i]);
        dk_dict_free(s);
    }
    assert_string_equal(vt->class_name(dk_object_self(d), 9), "Ankle boot");
    assert_null(vt->class_name(dk_object_self(d), 10));
    assert_null(get(d, 3));
    assert_contains(dk_last_error(), "FashionMNIST: index 3 is outside [0, 3)");
    dk_object_free(d);
}

/* The installed test split, sample by sample against gzread of the file,
 * and as batches: "img" (N, 1, 28, 28) f32 after Normalize, "gt_label" (N) i64. */
static void test_fashion_mnist_installed(void **state)
{
    fixture *f = *state;
    if (access(REAL_FMNIST "/t10k-images-idx3-ubyte.gz", R_OK) != 0)
        skip(); /* Debian's dataset-fashion-mnist is not installed */
    enum { N = 10000, PIX = 784 };
    unsigned char *raw = malloc(16 + (size_t)N * PIX), lab[8 + N];
    gzFile gz = gzopen(REAL_FMNIST "/t10k-images-idx3-ubyte.gz", "rb");
    assert_int_equal(gzread(gz, raw, 16 + N * PIX), 16 + N * PIX);
    gzclose(gz);
    gz = gzopen(REAL_FMNIST "/t10k-labels-idx1-ubyte.gz", "rb");
    assert_int_equal(gzread(gz, lab, sizeof lab), (int)sizeof lab);
    gzclose(gz);

    dk_cfg *cfg =
        dt_loader_cfg(f->reg, "train_dataloader:\n"
                              "  batch_size: 100\n  num_workers: 2\n"
                              "  dataset:\n    type: FashionMNIST\n    split: test\n"
                              "    pipeline: [{type: Normalize, mean: [10], std: [2]}]\n");
    const dk_cfg *lc = dk_cfg_get(cfg, "train_dataloader");
    dk_object *d = NULL;
    CHECK_OK(dk_object_build(dk_cfg_get(lc, "dataset"), "dataset", &d));
    const int64_t picks[] = {0, 1234, N - 1};
    for (size_t k = 0; k < 3; k++) {
        dk_dict *s = get(d, picks[k]);
        unsigned char got[PIX];
        CHECK_OK(dk_tensor_to_host(dk_dict_tensor(s, "img"), got, sizeof got));
        assert_memory_equal(got, raw + 16 + picks[k] * PIX, PIX);
        assert_true(dk_dict_number(s, "gt_label", -1) == lab[8 + picks[k]]);
        dk_dict_free(s);
    }

    dkh_loader *l = NULL;
    CHECK_OK(dkh_loader_new(lc, d, 0, &l));
    assert_int_equal(dkh_loader_len(l), N / 100);
    CHECK_OK(dkh_loader_start_epoch(l, 0, 12));
    dk_dict *b = NULL;
    CHECK_OK(dkh_loader_next(l, &b));
    dk_tensor *img = dk_dict_tensor(b, "img");
    const int64_t *shape = dk_tensor_shape(img);
    assert_int_equal(dk_tensor_dtype(img), DK_DTYPE_F32);
    assert_true(dk_tensor_ndim(img) == 4 && shape[0] == 100 && shape[1] == 1 && shape[2] == 28);
    float first[PIX];
    CHECK_OK(dk_tensor_to_host(dk_select(img, 0, 0), first, sizeof first));
    for (int j = 0; j < PIX; j++) /* batch 12 starts at sample 1200 */
        assert_true(first[j] == ((float)raw[16 + 1200 * PIX + j] - 10.0f) * 0.5f);
    int64_t labels[100];
    dt_i64s(dk_dict_tensor(b, "gt_label"), labels, 100);
    for (int j = 0; j < 100; j++)
        assert_int_equal(labels[j], lab[8 + 1200 + j]);
    dk_dict_free(b);
    dkh_loader_free(l);
    dk_object_free(d);
    dkh_cfg_free(cfg);
    free(raw);
}

/* ---- ImageFolder ---------------------------------------------------------------- */

/* Encodes (h, w, comps) pixels as a JPEG at path. */
static void write_jpeg(const char *path, int w, int h, int comps, const unsigned char *px)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    jpeg_stdio_dest(&c, fp);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = comps;
    c.in_color_space = comps == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 100, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)c.next_scanline * (size_t)(w * comps));
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(fp);
}

static void solid_jpeg(const fixture *f, const char *rel, int w, int h, int comps,
                       const unsigned char *color)
{
    unsigned char *px = malloc((size_t)(w * h * comps));
    for (int i = 0; i < w * h; i++)
        memcpy(px + i * comps, color, (size_t)comps);
    char p[1024];
    write_jpeg(at(f, rel, p, sizeof p), w, h, comps, px);
    free(px);
}

static dk_object *image_folder(const fixture *f, const char *root, const char *extra)
{
    char yaml[1024];
    snprintf(yaml, sizeof yaml, "{type: ImageFolder, data_root: '%s/%s'%s}", f->dir, root, extra);
    return dt_build(yaml, "dataset");
}

/* Every pixel of t within tol of want[channel]. */
static void check_solid(const dk_tensor *t, const unsigned char *want, int tol)
{
    int64_t c = dk_tensor_shape(t)[0], plane = dk_tensor_numel(t) / c;
    unsigned char *px = malloc((size_t)dk_tensor_numel(t));
    CHECK_OK(dk_tensor_to_host(t, px, (size_t)dk_tensor_numel(t)));
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t i = 0; i < plane; i++)
            if (abs(px[ch * plane + i] - want[ch]) > tol)
                fail_msg("channel %lld pixel %lld: %d, want %d", (long long)ch, (long long)i,
                         px[ch * plane + i], want[ch]);
    free(px);
}

static void test_image_folder_layout_and_pixels(void **state)
{
    fixture *f = *state;
    const unsigned char red[3] = {200, 30, 40}, grey[1] = {77}, blue[3] = {20, 60, 220};
    make_dir(f, "imgs");
    make_dir(f, "imgs/dog");
    make_dir(f, "imgs/cat");
    make_dir(f, "imgs/cat/sub");
    make_dir(f, "imgs/.hidden");
    solid_jpeg(f, "imgs/dog/c.jpeg", 16, 16, 3, blue);
    solid_jpeg(f, "imgs/cat/sub/b.JPEG", 5, 4, 1, grey);
    solid_jpeg(f, "imgs/cat/a.jpg", 8, 6, 3, red);
    solid_jpeg(f, "imgs/.hidden/x.jpg", 8, 8, 3, red);
    char p[1024];
    write_file(at(f, "imgs/dog/notes.txt", p, sizeof p), "x", 1);
    write_file(at(f, "imgs/readme.txt", p, sizeof p), "x", 1);

    dk_object *d = image_folder(f, "imgs/", "");
    if (!d)
        fail_msg("%s", dk_last_error());
    const dk_dataset_vtable *vt = dataset_vt(d);
    assert_int_equal(vt->len(dk_object_self(d)), 3);
    assert_string_equal(vt->class_name(dk_object_self(d), 0), "cat");
    assert_string_equal(vt->class_name(dk_object_self(d), 1), "dog");
    assert_null(vt->class_name(dk_object_self(d), 2));

    const char *files[] = {"imgs/cat/a.jpg", "imgs/cat/sub/b.JPEG", "imgs/dog/c.jpeg"};
    const int64_t shapes[3][3] = {{3, 6, 8}, {3, 4, 5}, {3, 16, 16}};
    const unsigned char *colors[] = {red, (const unsigned char[]){77, 77, 77}, blue};
    for (int64_t i = 0; i < 3; i++) {
        dk_dict *s = get(d, i);
        if (!s)
            fail_msg("%s", dk_last_error());
        assert_string_equal(dk_dict_string(s, "img_path"), at(f, files[i], p, sizeof p));
        assert_true(dk_dict_number(s, "gt_label", -1) == (i < 2 ? 0 : 1));
        dk_tensor *img = dk_dict_tensor(s, "img");
        assert_int_equal(dk_tensor_dtype(img), DK_DTYPE_U8);
        assert_memory_equal(dk_tensor_shape(img), shapes[i], sizeof shapes[i]);
        check_solid(img, colors[i], 4);
        dk_dict_free(s);
    }
    dk_object_free(d);

    /* Grayscale: luma of the colour, one channel. */
    d = image_folder(f, "imgs", ", color_type: grayscale");
    dk_dict *s = get(d, 0);
    const int64_t grey_shape[3] = {1, 6, 8};
    assert_memory_equal(dk_tensor_shape(dk_dict_tensor(s, "img")), grey_shape, sizeof grey_shape);
    check_solid(dk_dict_tensor(s, "img"), (const unsigned char[]){82}, 4);
    dk_dict_free(s);
    dk_object_free(d);
}

static void test_image_folder_tree_errors(void **state)
{
    fixture *f = *state;
    char p[1024];
    assert_null(image_folder(f, "missing", ""));
    assert_contains(dk_last_error(), at(f, "missing", p, sizeof p));
    assert_contains(dk_last_error(), "No such file or directory");

    make_dir(f, "flat");
    solid_jpeg(f, "flat/a.jpg", 4, 4, 3, (const unsigned char[]){1, 2, 3});
    assert_null(image_folder(f, "flat", ""));
    assert_contains(dk_last_error(), "has no class folders (expected <root>/<class>/<image>.jpg)");

    make_dir(f, "flat/full");
    make_dir(f, "flat/empty");
    solid_jpeg(f, "flat/full/a.jpg", 4, 4, 3, (const unsigned char[]){1, 2, 3});
    assert_null(image_folder(f, "flat", ""));
    assert_contains(dk_last_error(), "class folder");
    assert_contains(dk_last_error(), "flat/empty holds no .jpg or .jpeg image");
}

/* A valid JPEG, a truncated copy and a garbled copy: the damaged ones fail
 * when loaded, named by path, also when a worker thread loads them. */
static void test_image_folder_corrupt_jpeg(void **state)
{
    fixture *f = *state;
    make_dir(f, "bad");
    make_dir(f, "bad/a");
    make_dir(f, "bad/b");
    unsigned char px[32 * 32 * 3];
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (unsigned char)(i * 7 % 251);
    char p[1024], q[1024];
    write_jpeg(at(f, "bad/a/good.jpg", p, sizeof p), 32, 32, 3, px);
    static unsigned char bytes[1 << 16];
    size_t n = read_file(p, bytes, sizeof bytes);
    assert_true(n > 200 && n < sizeof bytes);
    write_file(at(f, "bad/a/truncated.jpg", q, sizeof q), bytes, n / 2);
    bytes[0] = 'G', bytes[1] = 'I'; /* no longer starts with the SOI marker */
    write_file(at(f, "bad/b/garbled.jpg", q, sizeof q), bytes, n);

    dk_object *d = image_folder(f, "bad", "");
    if (!d)
        fail_msg("%s", dk_last_error());
    dk_dict *s = get(d, 0); /* bad/a/good.jpg */
    assert_non_null(s);
    dk_dict_free(s);
    assert_null(get(d, 1));
    assert_contains(dk_last_error(), at(f, "bad/a/truncated.jpg", p, sizeof p));
    assert_contains(dk_last_error(), "not a readable JPEG: Premature end of JPEG file");
    assert_null(get(d, 2));
    assert_contains(dk_last_error(), at(f, "bad/b/garbled.jpg", p, sizeof p));
    assert_contains(dk_last_error(), "Not a JPEG file");
    dk_object_free(d);

    /* Through the loader, from worker threads. */
    char text[1024];
    snprintf(text, sizeof text,
             "train_dataloader:\n  batch_size: 1\n  num_workers: 2\n"
             "  dataset:\n    type: ImageFolder\n    data_root: '%s/bad'\n"
             "    pipeline: [{type: Resize, size: [8, 8]}]\n",
             f->dir);
    dk_cfg *cfg = dt_loader_cfg(f->reg, text);
    const dk_cfg *lc = dk_cfg_get(cfg, "train_dataloader");
    CHECK_OK(dk_object_build(dk_cfg_get(lc, "dataset"), "dataset", &d));
    dkh_loader *l = NULL;
    CHECK_OK(dkh_loader_new(lc, d, 0, &l));
    CHECK_OK(dkh_loader_start_epoch(l, 0, 0));
    dk_dict *b = NULL;
    CHECK_OK(dkh_loader_next(l, &b));
    const int64_t shape[4] = {1, 3, 8, 8};
    assert_memory_equal(dk_tensor_shape(dk_dict_tensor(b, "img")), shape, sizeof shape);
    assert_int_equal(dk_dict_find(b, "img_path"), -1); /* strings do not batch */
    dk_dict_free(b);
    assert_int_equal(dkh_loader_next(l, &b), DK_ERR_IO);
    assert_contains(dk_last_error(), "ImageFolder index 1: ");
    assert_contains(dk_last_error(), at(f, "bad/a/truncated.jpg", p, sizeof p));
    CHECK_OK(dkh_loader_start_epoch(l, 0, 2));
    assert_int_equal(dkh_loader_next(l, &b), DK_ERR_IO);
    assert_contains(dk_last_error(), "ImageFolder index 2: ");
    assert_contains(dk_last_error(), at(f, "bad/b/garbled.jpg", p, sizeof p));
    dkh_loader_free(l);
    dk_object_free(d);
    dkh_cfg_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fashion_mnist_matches_idx_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fashion_mnist_installed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_image_folder_layout_and_pixels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_image_folder_tree_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_image_folder_corrupt_jpeg, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
