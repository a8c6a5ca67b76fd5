/* tests/data/test_transforms.c — the image_transforms plugin's per-sample
 * work, built from YAML like a config builds it: values against hand
 * computations (bilinear against PyTorch's numbers), randomness through the
 * rng only, and the messages of bad inputs. */
#include "data_testing.h"

static int setup(void **state)
{
    dkh_registry *r = dkh_registry_new();
    dkh_registry_set_current(r);
    dt_load_plugin(r, "image_transforms");
    dk_clear_error();
    dk_scope_begin();
    *state = r;
    return 0;
}

static int teardown(void **state)
{
    dk_scope_end();
    dkh_registry_free(*state);
    return 0;
}

/* A sample whose "img" holds `n` values of dtype shaped `shape`. */
static dk_dict *sample_of(int ndim, const int64_t *shape, dk_dtype dtype, const void *values)
{
    dk_dict *s = dk_dict_new();
    CHECK_OK(dk_dict_set_tensor(s, "img", dk_from_data(ndim, shape, dtype, values)));
    CHECK_OK(dk_dict_set_number(s, "gt_label", 1));
    return s;
}

/* Runs the transform `yaml` on sample with a generator from seed. */
static dk_status apply(const char *yaml, dk_dict *sample, uint64_t seed)
{
    dk_object *t = dt_build(yaml, "transform");
    if (!t)
        fail_msg("building %s: %s", yaml, dk_last_error());
    const dk_transform_vtable *vt = dk_object_type(t)->vtable;
    dk_rng rng;
    dk_rng_seed(&rng, seed);
    dk_status s = vt->apply(dk_object_self(t), sample, &rng);
    dk_object_free(t);
    return s;
}

static void check_floats(const dk_tensor *t, const float *want, size_t n, float tol)
{
    assert_int_equal(dk_tensor_dtype(t), DK_DTYPE_F32);
    assert_int_equal(dk_tensor_numel(t), (int64_t)n);
    float got[64];
    CHECK_OK(dk_tensor_to_host(t, got, n * sizeof *got));
    for (size_t i = 0; i < n; i++)
        if (!(got[i] >= want[i] - tol && got[i] <= want[i] + tol))
            fail_msg("element %zu: got %g, want %g", i, (double)got[i], (double)want[i]);
}

static void get_bytes(const dk_tensor *t, uint8_t *out, size_t n)
{
    assert_int_equal(dk_tensor_dtype(t), DK_DTYPE_U8);
    assert_int_equal(dk_tensor_numel(t), (int64_t)n);
    CHECK_OK(dk_tensor_to_host(t, out, n));
}

static void test_normalize(void **state)
{
    const uint8_t px[8] = {0, 10, 20, 255, 1, 2, 3, 4}; /* (2, 2, 2) */
    dk_dict *s = sample_of(3, (int64_t[]){2, 2, 2}, DK_DTYPE_U8, px);
    CHECK_OK(apply("{type: Normalize, mean: [10, 2], std: [2, 0.5]}", s, 0));
    const float want[8] = {-5, 0, 5, 122.5f, -2, 0, 2, 4};
    check_floats(dk_dict_tensor(s, "img"), want, 8, 0);
    /* f32 in, f32 out. */
    CHECK_OK(apply("{type: Normalize, mean: [1, 0], std: [5, 1]}", s, 0));
    const float again[8] = {-1.2f, -0.2f, 0.8f, 24.3f, -2, 0, 2, 4};
    check_floats(dk_dict_tensor(s, "img"), again, 8, 1e-5f);

    assert_int_equal(apply("{type: Normalize, mean: [1, 2, 3], std: [1, 1, 1]}", s, 0),
                     DK_ERR_SHAPE);
    assert_contains(dk_last_error(), "Normalize: 'img' has 2 channels but mean and std give 3");
    dk_dict_remove(s, "img");
    assert_int_equal(apply("{type: Normalize, mean: [1], std: [1]}", s, 0), DK_ERR_ARG);
    assert_contains(dk_last_error(),
                    "Normalize: the sample has no tensor 'img' (its keys: gt_label)");
    dk_dict_free(s);

    assert_null(dt_build("{type: Normalize, mean: [1, 2], std: [1]}", "transform"));
    assert_contains(dk_last_error(), "Normalize: mean has 2 values and std has 1");
    assert_null(dt_build("{type: Normalize, mean: [1], std: [0]}", "transform"));
    assert_contains(dk_last_error(), "std must not be 0");
}

static void test_flip(void **state)
{
    const uint8_t px[6] = {1, 2, 3, 4, 5, 6}; /* (1, 2, 3) */
    dk_dict *s = sample_of(3, (int64_t[]){1, 2, 3}, DK_DTYPE_U8, px);
    uint8_t got[6];
    CHECK_OK(apply("{type: RandomFlip, prob: 1}", s, 0));
    get_bytes(dk_dict_tensor(s, "img"), got, 6);
    assert_memory_equal(got, ((uint8_t[]){3, 2, 1, 6, 5, 4}), 6);
    CHECK_OK(apply("{type: RandomFlip, prob: 1, direction: vertical}", s, 0));
    get_bytes(dk_dict_tensor(s, "img"), got, 6);
    assert_memory_equal(got, ((uint8_t[]){6, 5, 4, 3, 2, 1}), 6);
    dk_tensor *before = dk_dict_tensor(s, "img");
    CHECK_OK(apply("{type: RandomFlip, prob: 0}", s, 0));
    assert_ptr_equal(dk_dict_tensor(s, "img"), before);
    dk_dict_free(s);

    /* prob 0.5: whether a sample flips follows its generator's first draw. */
    int flipped = 0;
    for (uint64_t seed = 0; seed < 64; seed++) {
        const float v[2] = {1, 2};
        s = sample_of(2, (int64_t[]){1, 2}, DK_DTYPE_F32, v);
        CHECK_OK(apply("{type: RandomFlip}", s, seed));
        dk_rng rng;
        dk_rng_seed(&rng, seed);
        bool expect = dk_rng_uniform(&rng) < 0.5;
        float out[2];
        CHECK_OK(dk_tensor_to_host(dk_dict_tensor(s, "img"), out, sizeof out));
        assert_int_equal(out[0] == 2.0f, expect);
        flipped += expect;
        dk_dict_free(s);
    }
    assert_true(flipped > 16 && flipped < 48);
}

static void test_crop(void **state)
{
    /* (1, 3, 3) of 1..9, padding 1 with 0: every 3x3 window of the 5x5
     * padded image is one of 9 positions, chosen by two draws. */
    const float px[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    float padded[5][5] = {{0}};
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 3; x++)
            padded[y + 1][x + 1] = px[y * 3 + x];
    bool seen[3][3] = {{false}};
    for (uint64_t seed = 0; seed < 60; seed++) {
        dk_dict *s = sample_of(3, (int64_t[]){1, 3, 3}, DK_DTYPE_F32, px);
        CHECK_OK(apply("{type: RandomCrop, size: [3, 3], padding: 1}", s, seed));
        dk_rng rng;
        dk_rng_seed(&rng, seed);
        int64_t top = dk_rng_int(&rng, 3), left = dk_rng_int(&rng, 3);
        seen[top][left] = true;
        float want[9];
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 3; x++)
                want[y * 3 + x] = padded[top + y][left + x];
        check_floats(dk_dict_tensor(s, "img"), want, 9, 0);
        dk_dict_free(s);
    }
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 3; x++)
            assert_true(seen[y][x]);

    /* u8 with a pad value, 2-d kept 2-d. */
    const uint8_t small[4] = {1, 2, 3, 4};
    dk_dict *s = sample_of(2, (int64_t[]){2, 2}, DK_DTYPE_U8, small);
    CHECK_OK(apply("{type: RandomCrop, size: [4, 4], padding: 1, pad_val: 9}", s, 0));
    uint8_t got[16];
    get_bytes(dk_dict_tensor(s, "img"), got, 16);
    assert_int_equal(dk_tensor_ndim(dk_dict_tensor(s, "img")), 2);
    assert_memory_equal(got, ((uint8_t[]){9, 9, 9, 9, 9, 1, 2, 9, 9, 3, 4, 9, 9, 9, 9, 9}), 16);
    assert_int_equal(apply("{type: RandomCrop, size: [7, 4], padding: 1}", s, 0), DK_ERR_SHAPE);
    assert_contains(dk_last_error(),
                    "RandomCrop: the image is 4x4 (6x6 padded), smaller than the crop 7x4");
    dk_dict_free(s);
}

static void test_resize(void **state)
{
    /* PyTorch: F.interpolate(tensor([[[[0., 1.], [2., 3.]]]]), size=(4, 4),
     * mode='bilinear', align_corners=False). */
    const float px[4] = {0, 1, 2, 3};
    dk_dict *s = sample_of(3, (int64_t[]){1, 2, 2}, DK_DTYPE_F32, px);
    CHECK_OK(apply("{type: Resize, size: [4, 4]}", s, 0));
    const float up[16] = {0,    0.25f, 0.75f, 1,    0.5f, 0.75f, 1.25f, 1.5f,
                          1.5f, 1.75f, 2.25f, 2.5f, 2,    2.25f, 2.75f, 3};
    check_floats(dk_dict_tensor(s, "img"), up, 16, 1e-6f);
    assert_int_equal(dk_tensor_shape(dk_dict_tensor(s, "img"))[1], 4);
    /* Halving samples the centre of each 2x2 block: their mean. */
    CHECK_OK(apply("{type: Resize, size: [2, 2]}", s, 0));
    const float down[4] = {0.375f, 1.125f, 1.875f, 2.625f};
    check_floats(dk_dict_tensor(s, "img"), down, 4, 1e-6f);
    dk_dict_free(s);

    /* u8 stays u8, rounded; a non-square target, 3 channels. */
    uint8_t rgb[3 * 2 * 2] = {0, 100, 200, 255, 10, 10, 10, 10, 0, 0, 0, 1};
    s = sample_of(3, (int64_t[]){3, 2, 2}, DK_DTYPE_U8, rgb);
    CHECK_OK(apply("{type: Resize, size: [1, 1]}", s, 0));
    uint8_t got[3];
    get_bytes(dk_dict_tensor(s, "img"), got, 3);
    assert_memory_equal(got, ((uint8_t[]){139, 10, 0}), 3); /* 138.75, 10, 0.25 */
    dk_dict_free(s);

    const int32_t ints[4] = {1, 2, 3, 4};
    s = sample_of(2, (int64_t[]){2, 2}, DK_DTYPE_I32, ints);
    assert_int_equal(apply("{type: Resize, size: [3, 3]}", s, 0), DK_ERR_ARG);
    assert_contains(dk_last_error(), "Resize: 'img' is i32; it resizes u8 or f32");
    dk_dict_free(s);
}

static void test_to_tensor(void **state)
{
    /* (H, W, C) = (1, 2, 3): pixels (1, 2, 3) and (4, 5, 6). */
    const uint8_t hwc[6] = {1, 2, 3, 4, 5, 6};
    dk_dict *s = sample_of(3, (int64_t[]){1, 2, 3}, DK_DTYPE_U8, hwc);
    CHECK_OK(apply("{type: ToTensor, layout: hwc}", s, 0));
    const int64_t *shape = dk_tensor_shape(dk_dict_tensor(s, "img"));
    assert_true(shape[0] == 3 && shape[1] == 1 && shape[2] == 2);
    const float chw[6] = {1, 4, 2, 5, 3, 6};
    check_floats(dk_dict_tensor(s, "img"), chw, 6, 0);
    dk_dict_free(s);

    s = sample_of(2, (int64_t[]){2, 3}, DK_DTYPE_U8, hwc);
    CHECK_OK(apply("{type: ToTensor, scale: true}", s, 0));
    assert_int_equal(dk_tensor_ndim(dk_dict_tensor(s, "img")), 3);
    const float scaled[6] = {1 / 255.0f, 2 / 255.0f, 3 / 255.0f,
                             4 / 255.0f, 5 / 255.0f, 6 / 255.0f};
    check_floats(dk_dict_tensor(s, "img"), scaled, 6, 1e-7f);
    /* f32 input is not rescaled. */
    CHECK_OK(apply("{type: ToTensor, scale: true}", s, 0));
    check_floats(dk_dict_tensor(s, "img"), scaled, 6, 0);
    dk_dict_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_normalize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_to_tensor, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
