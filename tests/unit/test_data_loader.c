/* tests/unit/test_data_loader.c — the data loader (core/data): determinism
 * across worker counts, epochs and resumption, samplers and sharding,
 * collate rules, and failures carried from worker threads with their
 * message. The dataset and transforms are host builtins registered here, so
 * the test controls exactly what each sample holds. */
#include "../data/data_testing.h"

/* ---- a synthetic dataset ---------------------------------------------------
 * Sample i: "img" (2, 3) f32 = 100 i + j (ragged: (1 + i % 3, 2)), "index" i,
 * "gt_label" i % 5, "weight" i + 0.5, "name" a string, "parts" a list of a
 * (2) and a (1) tensor. fail_at makes get fail with a file name in the
 * message; mismatch_at leaves out "gt_label". */

typedef struct synth {
    int64_t len, fail_at, mismatch_at;
    bool ragged;
} synth;

static dk_status synth_create(const dk_cfg *cfg, void **self)
{
    synth *s = calloc(1, sizeof *s);
    DK_TRY(dk_cfg_get_int(cfg, "len", &s->len));
    DK_TRY(dk_cfg_get_int(cfg, "fail_at", &s->fail_at));
    DK_TRY(dk_cfg_get_int(cfg, "mismatch_at", &s->mismatch_at));
    DK_TRY(dk_cfg_get_bool(cfg, "ragged", &s->ragged));
    *self = s;
    return DK_OK;
}

static void plain_destroy(void *self)
{
    free(self);
}

static int64_t synth_len(void *self)
{
    return ((synth *)self)->len;
}

static dk_tensor *filled(int64_t rows, int64_t cols, double base)
{
    int64_t shape[2] = {rows, cols};
    dk_tensor *t = dk_empty(2, shape, DK_DTYPE_F32, DK_CPU);
    float *p = dk_tensor_data(t);
    for (int64_t j = 0; j < rows * cols; j++)
        p[j] = (float)(base + (double)j);
    return t;
}

static dk_status synth_get(void *self, int64_t i, dk_dict *sample)
{
    const synth *s = self;
    if (i == s->fail_at)
        return dk_fail(DK_ERR_IO, "Synth: cannot read /fake/sample_%lld.bin: corrupt record",
                       (long long)i);
    dk_tensor *img =
        s->ragged ? filled(1 + i % 3, 2, 100.0 * (double)i) : filled(2, 3, 100.0 * (double)i);
    DK_TRY(dk_dict_set_tensor(sample, "img", img));
    DK_TRY(dk_dict_set_number(sample, "index", (double)i));
    if (i != s->mismatch_at)
        DK_TRY(dk_dict_set_number(sample, "gt_label", (double)(i % 5)));
    DK_TRY(dk_dict_set_number(sample, "weight", (double)i + 0.5));
    DK_TRY(dk_dict_set_string(sample, "name", "a sample"));
    dk_tensor *parts[2] = {filled(1, 2, (double)i), filled(1, 1, -(double)i)};
    parts[0] = dk_reshape(parts[0], 1, (int64_t[]){2});
    parts[1] = dk_reshape(parts[1], 1, (int64_t[]){1});
    return dk_dict_set_tensors(sample, "parts", parts, 2);
}

static const dk_param synth_params[] = {
    {.name = "len", .type = DK_PARAM_INT, .def = "10", .min = "0"},
    {.name = "fail_at", .type = DK_PARAM_INT, .def = "-1"},
    {.name = "mismatch_at", .type = DK_PARAM_INT, .def = "-1"},
    {.name = "ragged", .type = DK_PARAM_BOOL, .def = "false"},
    DK_PARAM_PIPELINE,
};
static const dk_dataset_vtable synth_vt = {.struct_size = sizeof(dk_dataset_vtable),
                                           .create = synth_create,
                                           .destroy = plain_destroy,
                                           .len = synth_len,
                                           .get = synth_get};
static const dk_type_info synth_type = {
    DK_TYPE_INFO_HEAD,         .kind = "dataset",   .name = "Synth",        .summary = "test data",
    .iface = DK_IFACE_DATASET, .vtable = &synth_vt, DK_PARAMS(synth_params)};

/* A dataset that forgot its get. */
static const dk_dataset_vtable noget_vt = {.struct_size = sizeof(dk_dataset_vtable),
                                           .create = synth_create,
                                           .destroy = plain_destroy,
                                           .len = synth_len};
static const dk_type_info noget_type = {DK_TYPE_INFO_HEAD,         .kind = "dataset",
                                        .name = "NoGet",           .summary = "broken data",
                                        .iface = DK_IFACE_DATASET, .vtable = &noget_vt,
                                        DK_PARAMS(synth_params)};

/* ---- transforms ---------------------------------------------------------------- */

static dk_status none_create(const dk_cfg *cfg, void **self)
{
    *self = NULL;
    return DK_OK;
}

static void none_destroy(void *self) {}

/* Adds a uniform draw to every pixel, after a random number of throwaway
 * draws (so streams of different lengths are exercised). */
static dk_status jitter_apply(void *self, dk_dict *sample, dk_rng *rng)
{
    for (int64_t k = dk_rng_int(rng, 4); k > 0; k--)
        (void)dk_rng_uniform(rng);
    dk_tensor *img = dk_dict_tensor(sample, "img");
    dk_tensor *out = dk_copy(img);
    float *p = dk_tensor_data(out);
    for (int64_t j = 0; j < dk_tensor_numel(out); j++)
        p[j] += (float)dk_rng_uniform(rng);
    return dk_dict_set_tensor(sample, "img", out);
}

static const dk_transform_vtable jitter_vt = {.struct_size = sizeof(dk_transform_vtable),
                                              .create = none_create,
                                              .destroy = none_destroy,
                                              .apply = jitter_apply};
static const dk_type_info jitter_type = {
    DK_TYPE_INFO_HEAD,  .kind = "transform",         .name = "Jitter",
    .summary = "noise", .iface = DK_IFACE_TRANSFORM, .vtable = &jitter_vt};

typedef struct fail_if {
    int64_t index;
} fail_if;

static dk_status fail_if_create(const dk_cfg *cfg, void **self)
{
    fail_if *f = calloc(1, sizeof *f);
    DK_TRY(dk_cfg_get_int(cfg, "index", &f->index));
    *self = f;
    return DK_OK;
}

static dk_status fail_if_apply(void *self, dk_dict *sample, dk_rng *rng)
{
    if (dk_dict_number(sample, "index", -1) == (double)((fail_if *)self)->index)
        return dk_fail(DK_ERR_ARG, "FailIf: refused this sample");
    return DK_OK;
}

static const dk_param fail_if_params[] = {
    {.name = "index", .type = DK_PARAM_INT, .flags = DK_PARAM_REQUIRED},
};
static const dk_transform_vtable fail_if_vt = {.struct_size = sizeof(dk_transform_vtable),
                                               .create = fail_if_create,
                                               .destroy = plain_destroy,
                                               .apply = fail_if_apply};
static const dk_type_info fail_if_type = {
    DK_TYPE_INFO_HEAD,        .kind = "transform",         .name = "FailIf",
    .summary = "fails",       .iface = DK_IFACE_TRANSFORM, .vtable = &fail_if_vt,
    DK_PARAMS(fail_if_params)};

/* ---- fixture -------------------------------------------------------------------- */

typedef struct fixture {
    dkh_registry *reg;
    dk_cfg *cfg;
    dk_object *dataset;
    dkh_loader *loader;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->reg = dkh_registry_new();
    dkh_registry_set_current(f->reg);
    const dk_type_info *types[] = {&synth_type, &noget_type, &jitter_type, &fail_if_type};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        CHECK_OK(dkh_registry_add_builtin(f->reg, types[i]));
    dk_clear_error();
    dk_scope_begin(); /* tensors the checks make */
    *state = f;
    return 0;
}

static void close_loader(fixture *f)
{
    dkh_loader_free(f->loader);
    dk_object_free(f->dataset);
    dkh_cfg_free(f->cfg);
    f->loader = NULL;
    f->dataset = NULL;
    f->cfg = NULL;
}

static int teardown(void **state)
{
    fixture *f = *state;
    dk_scope_end();
    close_loader(f);
    dkh_registry_free(f->reg);
    free(f);
    return 0;
}

/* Opens f->loader from `fmt` (printf-style YAML of the train_dataloader map's
 * body); returns the status of dkh_loader_new. */
static dk_status open_loader(fixture *f, uint64_t seed, const char *fmt, ...)
{
    close_loader(f);
    char body[2048], text[2304];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    snprintf(text, sizeof text, "train_dataloader:\n%s", body);
    f->cfg = dt_loader_cfg(f->reg, text);
    const dk_cfg *lc = dk_cfg_get(f->cfg, "train_dataloader");
    CHECK_OK(dk_object_build(dk_cfg_get(lc, "dataset"), "dataset", &f->dataset));
    return dkh_loader_new(lc, f->dataset, seed, &f->loader);
}

/* A shuffled, jittered 37-sample loader config with batch size bs. */
#define SHUFFLED_BS(bs, workers, extra)                                                            \
    "  batch_size: %d\n  shuffle: true\n  num_workers: %d\n" extra                                 \
    "  dataset:\n    type: Synth\n    len: 37\n    pipeline: [{type: Jitter}]\n",                  \
        (bs), (workers)
#define SHUFFLED(workers, extra) SHUFFLED_BS(4, workers, extra)

/* Every batch of one epoch; *n gets the count. Each is new. */
static dk_dict **one_epoch(dkh_loader *l, int64_t epoch, int64_t skip, size_t *n)
{
    CHECK_OK(dkh_loader_start_epoch(l, epoch, skip));
    dk_dict **out = calloc(1024, sizeof *out);
    size_t k = 0;
    for (;;) {
        dk_dict *b = NULL;
        CHECK_OK(dkh_loader_next(l, &b));
        if (!b)
            break;
        assert_true(k < 1024);
        out[k++] = b;
    }
    *n = k;
    return out;
}

static void free_epoch(dk_dict **batches, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dk_dict_free(batches[i]);
    free(batches);
}

/* The dataset indices of an epoch, in order. */
static size_t epoch_indices(dkh_loader *l, int64_t epoch, int64_t *out, size_t cap)
{
    size_t n, k = 0;
    dk_dict **bs = one_epoch(l, epoch, 0, &n);
    for (size_t i = 0; i < n; i++)
        k += (size_t)dt_i64s(dk_dict_tensor(bs[i], "index"), out + k, (int64_t)(cap - k));
    free_epoch(bs, n);
    return k;
}

/* ---- determinism ------------------------------------------------------------------ */

static void test_same_batches_any_worker_count(void **state)
{
    fixture *f = *state;
    size_t n_ref[2], n;
    dk_dict **ref[2];
    CHECK_OK(open_loader(f, 7, SHUFFLED(0, "")));
    assert_int_equal(dkh_loader_len(f->loader), 10);
    for (int e = 0; e < 2; e++)
        ref[e] = one_epoch(f->loader, e, 0, &n_ref[e]);
    assert_int_equal(n_ref[0], 10);

    const int workers[] = {1, 4};
    for (size_t w = 0; w < 2; w++) {
        CHECK_OK(open_loader(f, 7, SHUFFLED(workers[w], "  prefetch_factor: 1\n")));
        for (int e = 0; e < 2; e++) {
            dk_dict **got = one_epoch(f->loader, e, 0, &n);
            assert_int_equal(n, n_ref[e]);
            for (size_t i = 0; i < n; i++) {
                char what[96];
                snprintf(what, sizeof what, "%d workers, epoch %d, batch %zu", workers[w], e, i);
                dt_check_dicts_equal(got[i], ref[e][i], what);
            }
            free_epoch(got, n);
        }
    }
    /* The noise really is there and differs between epochs: a sample seen
     * in both epochs got different draws. */
    int64_t idx0[64], idx1[64];
    dt_i64s(dk_dict_tensor(ref[0][0], "index"), idx0, 64);
    bool found = false;
    for (size_t b = 0; b < n_ref[1] && !found; b++) {
        int64_t k = dt_i64s(dk_dict_tensor(ref[1][b], "index"), idx1, 64);
        for (int64_t j = 0; j < k && !found; j++) {
            if (idx1[j] != idx0[0])
                continue;
            float a[6], c[6];
            CHECK_OK(
                dk_tensor_to_host(dk_select(dk_dict_tensor(ref[0][0], "img"), 0, 0), a, sizeof a));
            CHECK_OK(
                dk_tensor_to_host(dk_select(dk_dict_tensor(ref[1][b], "img"), 0, j), c, sizeof c));
            assert_true(a[0] != c[0]);
            assert_true(a[0] > (float)(100 * idx0[0]) && a[0] < (float)(100 * idx0[0] + 1));
            found = true;
        }
    }
    assert_true(found);
    free_epoch(ref[0], n_ref[0]);
    free_epoch(ref[1], n_ref[1]);
}

static bool is_permutation(const int64_t *v, size_t n)
{
    bool seen[256] = {false};
    for (size_t i = 0; i < n; i++) {
        if (v[i] < 0 || v[i] >= (int64_t)n || seen[v[i]])
            return false;
        seen[v[i]] = true;
    }
    return true;
}

static void test_epoch_orders(void **state)
{
    fixture *f = *state;
    int64_t e0[64], e1[64], again[64], other_seed[64];
    CHECK_OK(open_loader(f, 3, SHUFFLED(2, "")));
    assert_int_equal(epoch_indices(f->loader, 0, e0, 64), 37);
    assert_int_equal(epoch_indices(f->loader, 1, e1, 64), 37);
    assert_int_equal(epoch_indices(f->loader, 0, again, 64), 37);
    assert_true(is_permutation(e0, 37));
    assert_true(is_permutation(e1, 37));
    assert_memory_not_equal(e0, e1, 37 * sizeof(int64_t));
    assert_memory_equal(e0, again, 37 * sizeof(int64_t));

    CHECK_OK(open_loader(f, 4, SHUFFLED(0, "")));
    assert_int_equal(epoch_indices(f->loader, 0, other_seed, 64), 37);
    assert_memory_not_equal(e0, other_seed, 37 * sizeof(int64_t));

    CHECK_OK(open_loader(f, 3, "  batch_size: 5\n  dataset: {type: Synth, len: 12}\n"));
    int64_t seq[64];
    assert_int_equal(epoch_indices(f->loader, 5, seq, 64), 12);
    for (int64_t i = 0; i < 12; i++)
        assert_int_equal(seq[i], i);
}

static void test_drop_last(void **state)
{
    fixture *f = *state;
    const char *fmt = "  batch_size: 4\n  drop_last: %s\n  num_workers: %d\n"
                      "  dataset: {type: Synth, len: 10}\n";
    for (int workers = 0; workers <= 2; workers += 2) {
        size_t n;
        CHECK_OK(open_loader(f, 0, fmt, "false", workers));
        assert_int_equal(dkh_loader_len(f->loader), 3);
        dk_dict **bs = one_epoch(f->loader, 0, 0, &n);
        assert_int_equal(n, 3);
        assert_int_equal(dk_tensor_shape(dk_dict_tensor(bs[0], "img"))[0], 4);
        assert_int_equal(dk_tensor_shape(dk_dict_tensor(bs[2], "img"))[0], 2);
        free_epoch(bs, n);

        CHECK_OK(open_loader(f, 0, fmt, "true", workers));
        assert_int_equal(dkh_loader_len(f->loader), 2);
        bs = one_epoch(f->loader, 0, 0, &n);
        assert_int_equal(n, 2);
        assert_int_equal(dk_tensor_shape(dk_dict_tensor(bs[1], "img"))[0], 4);
        free_epoch(bs, n);
    }
    /* Fewer samples than one batch, dropped: an empty epoch. */
    size_t n;
    CHECK_OK(open_loader(f, 0,
                         "  batch_size: 8\n  drop_last: true\n"
                         "  dataset: {type: Synth, len: 5}\n"));
    assert_int_equal(dkh_loader_len(f->loader), 0);
    dk_dict **none = one_epoch(f->loader, 0, 0, &n);
    assert_int_equal(n, 0);
    free_epoch(none, n);
}

static void test_resume_mid_epoch(void **state)
{
    fixture *f = *state;
    size_t n_full, n;
    CHECK_OK(open_loader(f, 11, SHUFFLED(0, "")));
    dk_dict **full = one_epoch(f->loader, 1, 0, &n_full);
    for (int workers = 0; workers <= 3; workers += 3) {
        for (int64_t k = 0; k <= (int64_t)n_full; k += 3) {
            CHECK_OK(open_loader(f, 11, SHUFFLED(workers, "")));
            dk_dict **rest = one_epoch(f->loader, 1, k, &n);
            assert_int_equal(n, n_full - (size_t)k);
            for (size_t i = 0; i < n; i++) {
                char what[96];
                snprintf(what, sizeof what, "%d workers, resumed at %lld, batch %zu", workers,
                         (long long)k, i);
                dt_check_dicts_equal(rest[i], full[(size_t)k + i], what);
            }
            free_epoch(rest, n);
        }
    }
    free_epoch(full, n_full);
    assert_int_equal(dkh_loader_start_epoch(f->loader, 0, 11), DK_ERR_ARG);
    assert_contains(dk_last_error(), "cannot resume epoch 0 at batch 11: it has 10 batches");
}

/* An epoch abandoned half-way (prefetched batches in flight), then the
 * next one: it gives what a fresh loader gives; with persistent workers too. */
static void test_abandoned_epoch_and_persistent_workers(void **state)
{
    fixture *f = *state;
    size_t n_ref, n;
    CHECK_OK(open_loader(f, 5, SHUFFLED(0, "")));
    dk_dict **ref = one_epoch(f->loader, 2, 0, &n_ref);
    const char *modes[] = {"  persistent_workers: false\n", "  persistent_workers: true\n"};
    for (int m = 0; m < 2; m++) {
        CHECK_OK(open_loader(f, 5,
                             "  batch_size: 4\n  shuffle: true\n  num_workers: 3\n%s"
                             "  dataset:\n    type: Synth\n    len: 37\n"
                             "    pipeline: [{type: Jitter}]\n",
                             modes[m]));
        CHECK_OK(dkh_loader_start_epoch(f->loader, 0, 0));
        dk_dict *b = NULL;
        CHECK_OK(dkh_loader_next(f->loader, &b));
        assert_non_null(b);
        dk_dict_free(b);
        assert_int_equal(dkh_loader_position(f->loader), 1);
        for (int rep = 0; rep < 2; rep++) {
            dk_dict **got = one_epoch(f->loader, 2, 0, &n);
            assert_int_equal(n, n_ref);
            for (size_t i = 0; i < n; i++)
                dt_check_dicts_equal(got[i], ref[i], modes[m]);
            free_epoch(got, n);
        }
        /* Ends with batches still prefetched: freeing must not leak them. */
        CHECK_OK(dkh_loader_start_epoch(f->loader, 3, 0));
    }
    free_epoch(ref, n_ref);
}

/* ---- samplers ------------------------------------------------------------------------ */

static void test_sampler_sharding(void **state)
{
    (void)state;
    int64_t whole[10], pos[3][4];
    dkh_sampler *s;
    CHECK_OK(dkh_sampler_default_new(10, true, 9, 0, 1, DKH_SHARD_PAD, &s));
    assert_int_equal(s->len(s), 10);
    CHECK_OK(s->order(s, 4, whole));
    s->free(s);
    assert_true(is_permutation(whole, 10));

    /* Three ranks, padded: 4 each; together they cover the permutation in
     * order, then repeat its first two entries. */
    for (int r = 0; r < 3; r++) {
        CHECK_OK(dkh_sampler_default_new(10, true, 9, r, 3, DKH_SHARD_PAD, &s));
        assert_int_equal(s->len(s), 4);
        CHECK_OK(s->order(s, 4, pos[r]));
        s->free(s);
    }
    for (int i = 0; i < 12; i++)
        assert_int_equal(pos[i % 3][i / 3], whole[i % 10]);

    /* Trimmed: 3 each, nine distinct indices, the permutation's last left out. */
    for (int r = 0; r < 3; r++) {
        CHECK_OK(dkh_sampler_default_new(10, true, 9, r, 3, DKH_SHARD_DROP, &s));
        assert_int_equal(s->len(s), 3);
        CHECK_OK(s->order(s, 4, pos[r]));
        s->free(s);
    }
    for (int i = 0; i < 9; i++)
        assert_int_equal(pos[i % 3][i / 3], whole[i]);

    assert_int_equal(dkh_sampler_default_new(10, true, 9, 3, 3, DKH_SHARD_PAD, &s), DK_ERR_ARG);
    assert_contains(dk_last_error(), "rank 3 is not in [0, 3)");
}

/* A loader with a sharded sampler sees only its rank's samples, and the
 * same sample gets the same augmentation on any rank. */
static void test_loader_with_sharded_sampler(void **state)
{
    fixture *f = *state;
    size_t n_one, n;
    CHECK_OK(open_loader(f, 21, SHUFFLED_BS(1, 0, "")));
    dk_dict **one = one_epoch(f->loader, 0, 0, &n_one);
    assert_int_equal(n_one, 37);
    int64_t whole[37];
    dkh_sampler *s;
    CHECK_OK(dkh_sampler_default_new(37, true, 21, 0, 1, DKH_SHARD_PAD, &s));
    CHECK_OK(s->order(s, 0, whole));
    s->free(s);

    CHECK_OK(open_loader(f, 21, SHUFFLED_BS(1, 2, "")));
    CHECK_OK(dkh_sampler_default_new(37, true, 21, 1, 2, DKH_SHARD_PAD, &s));
    CHECK_OK(dkh_loader_set_sampler(f->loader, s));
    assert_int_equal(dkh_loader_len(f->loader), 19);
    dk_dict **mine = one_epoch(f->loader, 0, 0, &n);
    assert_int_equal(n, 19);
    for (size_t i = 0; i < n; i++) {
        int64_t idx;
        dt_i64s(dk_dict_tensor(mine[i], "index"), &idx, 1);
        assert_int_equal(idx, whole[(1 + 2 * i) % 37]);
        /* Rank 1's batch i is rank-of-one's batch 1 + 2i (mod 37). */
        dt_check_dicts_equal(mine[i], one[(1 + 2 * i) % 37], "sharded sample");
    }
    free_epoch(mine, n);
    free_epoch(one, n_one);

    dkh_sampler *late;
    CHECK_OK(dkh_sampler_default_new(37, false, 0, 0, 1, DKH_SHARD_PAD, &late));
    assert_int_equal(dkh_loader_set_sampler(f->loader, late), DK_ERR_ARG);
    late->free(late);
}

/* ---- collate ---------------------------------------------------------------------------- */

static void test_collate_kinds(void **state)
{
    fixture *f = *state;
    CHECK_OK(open_loader(f, 0, "  batch_size: 3\n  dataset: {type: Synth, len: 3}\n"));
    size_t n;
    dk_dict **bs = one_epoch(f->loader, 0, 0, &n);
    assert_int_equal(n, 1);
    const dk_dict *b = bs[0];
    /* Keys in sample order, the string left out. */
    const char *keys[] = {"img", "index", "gt_label", "weight", "parts"};
    assert_int_equal(dk_dict_len(b), 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(dk_dict_key(b, i), keys[i]);
    dk_tensor *img = dk_dict_tensor(b, "img");
    assert_int_equal(dk_tensor_ndim(img), 3);
    assert_int_equal(dk_tensor_shape(img)[0], 3);
    float px[18];
    CHECK_OK(dk_tensor_to_host(img, px, sizeof px));
    assert_true(px[0] == 0.0f && px[5] == 5.0f && px[6] == 100.0f && px[17] == 205.0f);
    int64_t labels[3];
    dt_i64s(dk_dict_tensor(b, "gt_label"), labels, 3);
    assert_true(labels[0] == 0 && labels[1] == 1 && labels[2] == 2);
    dk_tensor *w = dk_dict_tensor(b, "weight");
    assert_int_equal(dk_tensor_dtype(w), DK_DTYPE_F32);
    float wv[3];
    CHECK_OK(dk_tensor_to_host(w, wv, sizeof wv));
    assert_true(wv[0] == 0.5f && wv[2] == 2.5f);
    /* A list per position: (3, 2) and (3, 1). */
    assert_int_equal(dk_dict_tensors_len(b, "parts"), 2);
    assert_int_equal(dk_tensor_shape(dk_dict_tensors_at(b, "parts", 0))[1], 2);
    assert_int_equal(dk_tensor_shape(dk_dict_tensors_at(b, "parts", 1))[0], 3);
    free_epoch(bs, n);
}

static void test_collate_ragged_tensors_make_lists(void **state)
{
    fixture *f = *state;
    CHECK_OK(open_loader(f, 0,
                         "  batch_size: 4\n  num_workers: 2\n"
                         "  dataset: {type: Synth, len: 4, ragged: true}\n"));
    size_t n;
    dk_dict **bs = one_epoch(f->loader, 0, 0, &n);
    assert_int_equal(n, 1);
    int64_t at = dk_dict_find(bs[0], "img");
    assert_int_equal(dk_dict_kind(bs[0], (size_t)at), DK_VALUE_TENSORS);
    assert_int_equal(dk_dict_tensors_len(bs[0], "img"), 4);
    for (size_t i = 0; i < 4; i++) {
        dk_tensor *t = dk_dict_tensors_at(bs[0], "img", i);
        assert_int_equal(dk_tensor_shape(t)[0], 1 + (int64_t)i % 3);
        assert_int_equal(dk_tensor_item(dk_select(dk_select(t, 0, 0), 0, 1)),
                         100.0 * (double)i + 1);
    }
    assert_int_equal(dk_tensor_ndim(dk_dict_tensor(bs[0], "gt_label")), 1);
    free_epoch(bs, n);
}

static void test_collate_key_mismatch(void **state)
{
    fixture *f = *state;
    for (int workers = 0; workers <= 2; workers += 2) {
        CHECK_OK(open_loader(f, 0,
                             "  batch_size: 4\n  num_workers: %d\n"
                             "  dataset: {type: Synth, len: 8, mismatch_at: 5}\n",
                             workers));
        CHECK_OK(dkh_loader_start_epoch(f->loader, 0, 0));
        dk_dict *b = NULL;
        CHECK_OK(dkh_loader_next(f->loader, &b));
        dk_dict_free(b);
        assert_int_equal(dkh_loader_next(f->loader, &b), DK_ERR_ARG);
        assert_null(b);
        assert_contains(dk_last_error(),
                        "collate: dataset index 5 has no key 'gt_label' that dataset index 4 has");
    }
    /* The reverse: the first sample of the batch lacks the key. */
    CHECK_OK(
        open_loader(f, 0, "  batch_size: 4\n  dataset: {type: Synth, len: 8, mismatch_at: 4}\n"));
    CHECK_OK(dkh_loader_start_epoch(f->loader, 0, 1));
    dk_dict *b = NULL;
    assert_int_equal(dkh_loader_next(f->loader, &b), DK_ERR_ARG);
    assert_contains(dk_last_error(),
                    "dataset index 5 has a key 'gt_label' that dataset index 4 lacks");
}

/* dkh_collate directly: the mismatches a loader run cannot easily stage. */
static void test_collate_mismatches(void **state)
{
    dk_dict *s[2] = {dk_dict_new(), dk_dict_new()}, *b = dk_dict_new();
    const int64_t idx[2] = {40, 41};
    int64_t two[1] = {2};
    CHECK_OK(dk_dict_set_tensor(s[0], "x", dk_zeros(1, two, DK_DTYPE_F32, DK_CPU)));
    CHECK_OK(dk_dict_set_tensor(s[1], "x", dk_zeros(1, two, DK_DTYPE_U8, DK_CPU)));
    assert_int_equal(dkh_collate(s, idx, 2, b), DK_ERR_ARG);
    assert_contains(dk_last_error(),
                    "collate: 'x' is f32 in dataset index 40 but u8 in dataset index 41");

    CHECK_OK(dk_dict_set_number(s[1], "x", 1));
    assert_int_equal(dkh_collate(s, idx, 2, b), DK_ERR_ARG);
    assert_contains(dk_last_error(),
                    "'x' is a tensor in dataset index 40 but a number in dataset index 41");

    dk_tensor *a = dk_zeros(1, two, DK_DTYPE_F32, DK_CPU),
              *c = dk_zeros(1, (int64_t[]){3}, DK_DTYPE_F32, DK_CPU);
    CHECK_OK(dk_dict_set_tensors(s[0], "x", (dk_tensor *[]){a, a}, 2));
    CHECK_OK(dk_dict_set_tensors(s[1], "x", (dk_tensor *[]){a}, 1));
    assert_int_equal(dkh_collate(s, idx, 2, b), DK_ERR_SHAPE);
    assert_contains(dk_last_error(),
                    "tensor list 'x' has 2 entries in dataset index 40 but 1 in dataset index 41");
    CHECK_OK(dk_dict_set_tensors(s[1], "x", (dk_tensor *[]){a, c}, 2));
    assert_int_equal(dkh_collate(s, idx, 2, b), DK_ERR_SHAPE);
    assert_contains(dk_last_error(),
                    "entry 1 of tensor list 'x' has different shapes in dataset index 40 and 41");

    /* A non-contiguous view is copied in its logical order. */
    dk_dict_clear(b);
    dk_tensor *m = dk_arange(0, 6, 1, DK_DTYPE_F32, DK_CPU);
    dk_tensor *t = dk_transpose(dk_reshape(m, 2, (int64_t[]){2, 3}), 0, 1); /* (3, 2) */
    CHECK_OK(dk_dict_set_tensor(s[0], "x", t));
    CHECK_OK(dk_dict_set_tensor(s[1], "x", t));
    CHECK_OK(dkh_collate(s, idx, 2, b));
    float got[12];
    CHECK_OK(dk_tensor_to_host(dk_dict_tensor(b, "x"), got, sizeof got));
    const float want[6] = {0, 3, 1, 4, 2, 5};
    assert_memory_equal(got, want, sizeof want);
    assert_memory_equal(got + 6, want, sizeof want);
    dk_dict_free(s[0]);
    dk_dict_free(s[1]);
    dk_dict_free(b);
}

/* ---- failures from workers --------------------------------------------------------------- */

static void test_worker_error_propagates(void **state)
{
    fixture *f = *state;
    for (int workers = 0; workers <= 3; workers += 3) {
        CHECK_OK(open_loader(f, 0,
                             "  batch_size: 2\n  num_workers: %d\n"
                             "  dataset: {type: Synth, len: 20, fail_at: 13}\n",
                             workers));
        for (int rep = 0; rep < 2; rep++) {
            CHECK_OK(dkh_loader_start_epoch(f->loader, rep, 0));
            dk_dict *b = NULL;
            int good = 0;
            dk_status s;
            while ((s = dkh_loader_next(f->loader, &b)) == DK_OK && b) {
                dk_dict_free(b);
                good++;
            }
            assert_int_equal(s, DK_ERR_IO);
            assert_int_equal(good, 6); /* batches 0..5; batch 6 holds index 13 */
            assert_contains(
                dk_last_error(),
                "Synth index 13: Synth: cannot read /fake/sample_13.bin: corrupt record");
            /* The epoch is over after a failure. */
            CHECK_OK(dkh_loader_next(f->loader, &b));
            assert_null(b);
        }
    }
}

static void test_transform_error_names_transform(void **state)
{
    fixture *f = *state;
    CHECK_OK(open_loader(f, 0,
                         "  batch_size: 2\n  num_workers: 2\n"
                         "  dataset:\n    type: Synth\n    len: 6\n"
                         "    pipeline: [{type: Jitter}, {type: FailIf, index: 3}]\n"));
    CHECK_OK(dkh_loader_start_epoch(f->loader, 0, 0));
    dk_dict *b = NULL;
    CHECK_OK(dkh_loader_next(f->loader, &b));
    dk_dict_free(b);
    assert_int_equal(dkh_loader_next(f->loader, &b), DK_ERR_ARG);
    assert_contains(dk_last_error(),
                    "Synth index 3: transform 1 (FailIf): FailIf: refused this sample");
}

static void test_misuse(void **state)
{
    fixture *f = *state;
    assert_int_equal(open_loader(f, 0, "  dataset: {type: NoGet}\n"), DK_ERR_PLUGIN);
    assert_contains(dk_last_error(), "dataset NoGet implements no get");
    CHECK_OK(open_loader(f, 0, "  dataset: {type: Synth}\n"));
    dk_dict *b = NULL;
    assert_int_equal(dkh_loader_next(f->loader, &b), DK_ERR_ARG);
    assert_contains(dk_last_error(), "before any epoch started");
}

static void test_rng_streams_are_pure(void **state)
{
    (void)state;
    dk_rng a = dkh_data_rng(1, DKH_RNG_SAMPLE, 2, 3), b = dkh_data_rng(1, DKH_RNG_SAMPLE, 2, 3);
    assert_memory_equal(&a, &b, sizeof a);
    dk_rng c = dkh_data_rng(1, DKH_RNG_SAMPLE, 2, 4), d = dkh_data_rng(1, DKH_RNG_SAMPLE, 3, 3);
    dk_rng e = dkh_data_rng(2, DKH_RNG_SAMPLE, 2, 3), g = dkh_data_rng(1, DKH_RNG_SHUFFLE, 2, 3);
    assert_true(a.key != c.key && a.key != d.key && a.key != e.key && a.key != g.key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_same_batches_any_worker_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_epoch_orders, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_last, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_mid_epoch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abandoned_epoch_and_persistent_workers, setup,
                                        teardown),
        cmocka_unit_test(test_sampler_sharding),
        cmocka_unit_test_setup_teardown(test_loader_with_sharded_sampler, setup, teardown),
        cmocka_unit_test_setup_teardown(test_collate_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_collate_ragged_tensors_make_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_collate_key_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_collate_mismatches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_error_propagates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transform_error_names_transform, setup, teardown),
        cmocka_unit_test_setup_teardown(test_misuse, setup, teardown),
        cmocka_unit_test(test_rng_streams_are_pure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
