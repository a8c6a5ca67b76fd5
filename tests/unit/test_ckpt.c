/* tests/unit/test_ckpt.c — the .dkpt container (core/ckpt).
 *
 * Round trips of every dtype, strided and empty tensors and a 50 MB tensor;
 * then every way a file can be wrong — cut short at each offset, a bit
 * flipped in each region, fields forged with valid checksums — each refused
 * with a message naming the file and the problem; failing writes (ENOSPC,
 * EIO) that leave the previous checkpoint intact; and dkh_ckpt_latest over a
 * directory with damaged and half-written files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "ckpt_testing.h"
#include "dk_test.h"

#include "ckpt/ckpt_impl.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];

#define CHECK_OK(expr)                                                                             \
    do {                                                                                           \
        dk_status s_ = (expr);                                                                     \
        if (s_ != DK_OK)                                                                           \
            fail_msg("%s failed: %s: %s", #expr, dk_status_name(s_), dk_last_error());             \
    } while (0)

/* Expects expr to fail with status st and a message holding every needle. */
#define CHECK_FAILS(expr, st, ...)                                                                 \
    do {                                                                                           \
        dk_status s_ = (expr);                                                                     \
        if (s_ != (st))                                                                            \
            fail_msg("%s gave %s (want %s): %s", #expr, dk_status_name(s_), dk_status_name(st),    \
                     dk_last_error());                                                             \
        const char *needles_[] = {__VA_ARGS__};                                                    \
        for (size_t k_ = 0; k_ < sizeof needles_ / sizeof *needles_; k_++)                         \
            assert_contains(dk_last_error(), needles_[k_]);                                        \
    } while (0)

/* A path in the test directory (rotating static buffers). */
static const char *P(const char *name)
{
    static char bufs[8][256];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

static uint8_t *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)n + 1);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return p;
}

static void spit(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* Names in dir containing ".tmp.". */
static int count_temps(void)
{
    return ckt_count_temps(dir);
}

static int setup(void **state)
{
    return ckt_dir_make(dir, sizeof dir, "dk_ckpt");
}

static int teardown(void **state)
{
    ckt_dir_remove(dir);
    dkh_ckpt_fail_writes_after(-1, 0);
    return 0;
}

/* Reads tensor name of c into a new contiguous tensor and checks its bytes
 * equal want's (C order). */
static void expect_tensor(dkh_ckpt *c, const char *name, dk_tensor *want)
{
    int64_t i = dkh_ckpt_find(c, name);
    assert_true(i >= 0);
    assert_int_equal(dkh_ckpt_dtype(c, (size_t)i), dk_tensor_dtype(want));
    int64_t shape[DK_MAX_DIMS];
    int ndim = dkh_ckpt_shape(c, (size_t)i, shape);
    assert_int_equal(ndim, dk_tensor_ndim(want));
    assert_memory_equal(shape, dk_tensor_shape(want), (size_t)ndim * sizeof *shape);
    size_t nbytes = (size_t)dk_tensor_numel(want) * dk_dtype_size(dk_tensor_dtype(want));
    assert_int_equal(dkh_ckpt_raw_size(c, (size_t)i), nbytes);
    dk_tensor *got = dk_empty(ndim, shape, dkh_ckpt_dtype(c, (size_t)i), DK_CPU);
    CHECK_OK(dkh_ckpt_read(c, (size_t)i, got));
    uint8_t *a = malloc(nbytes + 1), *b = malloc(nbytes + 1);
    CHECK_OK(dk_tensor_to_host(want, a, nbytes));
    CHECK_OK(dk_tensor_to_host(got, b, nbytes));
    assert_memory_equal(a, b, nbytes);
    free(a);
    free(b);
    dk_tensor_release(got);
}

/* ---- checksum ---------------------------------------------------------------------- */

static void test_xxh64_vectors(void **state)
{
    /* Published XXH64 values, and one long enough for the 32-byte stripes
     * (checked against the reference library). */
    assert_int_equal(dkh_xxh64("", 0, 0), 0xEF46DB3751D8E999ull);
    assert_int_equal(dkh_xxh64("abc", 3, 0), 0x44BC2CF5AD770999ull);
    uint8_t b[1000];
    for (int i = 0; i < 1000; i++)
        b[i] = (uint8_t)(i * 7 + 3);
    assert_int_equal(dkh_xxh64(b, 1000, 0), 0x5f235fa033f1a3fbull);
    assert_int_equal(dkh_xxh64(b, 33, 12345), 0x1edc993457cf1fd8ull);
}

/* ---- round trips ------------------------------------------------------------------- */

static void test_round_trip_every_dtype(void **state)
{
    const char *path = P("dtypes.dkpt");
    dk_tensor *t[2 * DK_DTYPE_COUNT];
    char names[2 * DK_DTYPE_COUNT][32];
    const char *name_ptrs[2 * DK_DTYPE_COUNT];
    static const int64_t shape[] = {2, 3, 5};
    for (int d = 0; d < DK_DTYPE_COUNT; d++) {
        t[2 * d] = ckt_pattern((dk_dtype)d, 3, shape, (uint32_t)d);
        t[2 * d + 1] = ckt_pattern((dk_dtype)d, 0, NULL, (uint32_t)d + 100);
        snprintf(names[2 * d], sizeof names[0], "block.%s", dk_dtype_name((dk_dtype)d));
        snprintf(names[2 * d + 1], sizeof names[0], "scalar.%s", dk_dtype_name((dk_dtype)d));
        name_ptrs[2 * d] = names[2 * d];
        name_ptrs[2 * d + 1] = names[2 * d + 1];
    }
    const char *meta = "epoch: 2\niteration: 1234\nclasses: [\"t-shirt\", \"trouser\"]\n"
                       "note: \"caf\xc3\xa9\"\n";
    CHECK_OK(ckt_write(path, meta, 2 * DK_DTYPE_COUNT, name_ptrs, t));
    assert_int_equal(count_temps(), 0);

    dkh_ckpt *c;
    CHECK_OK(dkh_ckpt_open(path, &c));
    assert_str_eq(dkh_ckpt_meta(c), meta);
    assert_int_equal(dkh_ckpt_iteration(c), 1234);
    assert_int_equal(dkh_ckpt_count(c), 2 * DK_DTYPE_COUNT);
    for (int k = 0; k < 2 * DK_DTYPE_COUNT; k++) {
        assert_str_eq(dkh_ckpt_name(c, (size_t)k), names[k]); /* in the order added */
        expect_tensor(c, names[k], t[k]);
    }
    assert_int_equal(dkh_ckpt_find(c, "block.f33"), -1);
    assert_int_equal(dkh_ckpt_find(c, ""), -1);
    CHECK_OK(dkh_ckpt_verify(c));
    dkh_ckpt_close(c);
    for (int k = 0; k < 2 * DK_DTYPE_COUNT; k++)
        dk_tensor_release(t[k]);
}

static void test_strided_sources_and_destinations(void **state)
{
    static const int64_t shape[] = {4, 6, 5};
    dk_tensor *base = ckt_pattern(DK_DTYPE_F32, 3, shape, 7);
    dk_tensor *permuted = dk_permute(base, 3, (const int[]){2, 0, 1}); /* (5, 4, 6) */
    dk_tensor *sliced = dk_slice(base, 1, 1, 6, 2);                    /* (4, 3, 5) */
    dk_tensor *col = ckt_pattern(DK_DTYPE_I32, 2, (const int64_t[]){3, 1}, 8);
    dk_tensor *expanded = dk_expand(col, 2, (const int64_t[]){3, 7}); /* stride 0 */
    assert_false(dk_tensor_is_contiguous(permuted));
    assert_false(dk_tensor_is_contiguous(sliced));
    dk_tensor *src[] = {permuted, sliced, expanded};
    const char *names[] = {"permuted", "sliced", "expanded"};
    const char *path = P("strided.dkpt");
    CHECK_OK(ckt_write(path, "iteration: 1\n", 3, names, src));

    dkh_ckpt *c;
    CHECK_OK(dkh_ckpt_open(path, &c));
    for (int k = 0; k < 3; k++)
        expect_tensor(c, names[k], src[k]); /* stored in C order of the view */

    /* Into a strided destination: a transposed view of a fresh tensor. */
    dk_tensor *store = dk_zeros(3, (const int64_t[]){6, 4, 5}, DK_DTYPE_F32, DK_CPU);
    dk_tensor *view = dk_permute(store, 3, (const int[]){2, 1, 0}); /* (5, 4, 6) */
    CHECK_OK(dkh_ckpt_read(c, (size_t)dkh_ckpt_find(c, "permuted"), view));
    size_t nbytes = 5 * 4 * 6 * sizeof(float);
    float *a = malloc(nbytes), *b = malloc(nbytes);
    CHECK_OK(dk_tensor_to_host(permuted, a, nbytes));
    CHECK_OK(dk_tensor_to_host(view, b, nbytes));
    assert_memory_equal(a, b, nbytes);
    free(a);
    free(b);
    dkh_ckpt_close(c);
    dk_tensor_release(view);
    dk_tensor_release(store);
    dk_tensor_release(expanded);
    dk_tensor_release(col);
    dk_tensor_release(sliced);
    dk_tensor_release(permuted);
    dk_tensor_release(base);
}

static void test_empty_tensors_and_no_tensors(void **state)
{
    dk_tensor *e1 = dk_empty(1, (const int64_t[]){0}, DK_DTYPE_F32, DK_CPU);
    dk_tensor *e2 = dk_empty(3, (const int64_t[]){3, 0, 2}, DK_DTYPE_I64, DK_CPU);
    dk_tensor *src[] = {e1, e2};
    const char *names[] = {"empty.a", "empty.b"};
    CHECK_OK(ckt_write(P("empty.dkpt"), "iteration: 5\n", 2, names, src));
    dkh_ckpt *c;
    CHECK_OK(dkh_ckpt_open(P("empty.dkpt"), &c));
    CHECK_OK(dkh_ckpt_verify(c));
    expect_tensor(c, "empty.a", e1);
    expect_tensor(c, "empty.b", e2);
    assert_int_equal(dkh_ckpt_raw_size(c, 1), 0);
    dkh_ckpt_close(c);

    /* Metadata only, and empty metadata. */
    CHECK_OK(ckt_write(P("none.dkpt"), "", 0, NULL, NULL));
    CHECK_OK(dkh_ckpt_open(P("none.dkpt"), &c));
    assert_int_equal(dkh_ckpt_count(c), 0);
    assert_str_eq(dkh_ckpt_meta(c), "");
    assert_int_equal(dkh_ckpt_iteration(c), -1);
    CHECK_OK(dkh_ckpt_verify(c));
    dkh_ckpt_close(c);
    dk_tensor_release(e1);
    dk_tensor_release(e2);
}

static void test_big_tensor(void **state)
{
    /* 50 MB of normal floats (barely compressible) and 50 MB of zeros. */
    const int64_t n = 50 * 1000 * 1000 / 4;
    dk_rng rng;
    dk_rng_seed(&rng, 42);
    dk_tensor *noise = dk_randn(1, &n, DK_DTYPE_F32, DK_CPU, &rng);
    dk_tensor *zeros = dk_zeros(1, &n, DK_DTYPE_F32, DK_CPU);
    dk_tensor *src[] = {noise, zeros};
    const char *names[] = {"noise", "zeros"};
    CHECK_OK(ckt_write(P("big.dkpt"), "iteration: 9\n", 2, names, src));
    dkh_ckpt *c;
    CHECK_OK(dkh_ckpt_open(P("big.dkpt"), &c));
    CHECK_OK(dkh_ckpt_verify(c));
    expect_tensor(c, "noise", noise);
    expect_tensor(c, "zeros", zeros);
    assert_true(dkh_ckpt_compressed_size(c, 0) <= dkh_ckpt_raw_size(c, 0) + 4096);
    assert_true(dkh_ckpt_compressed_size(c, 1) < dkh_ckpt_raw_size(c, 1) / 100);
    dkh_ckpt_close(c);
    dk_tensor_release(noise);
    dk_tensor_release(zeros);
}

/* ---- writer rules ------------------------------------------------------------------ */

static void test_writer_misuse(void **state)
{
    const char *path = P("misuse.dkpt");
    dk_tensor *t = ckt_pattern(DK_DTYPE_F32, 1, (const int64_t[]){3}, 1);
    dkh_ckpt_writer *w;
    CHECK_OK(dkh_ckpt_writer_open(path, &w));
    CHECK_OK(dkh_ckpt_writer_add(w, "a", t));
    CHECK_FAILS(dkh_ckpt_writer_add(w, "a", t), DK_ERR_ARG, path,
                "tensor name 'a' was already added");
    CHECK_FAILS(dkh_ckpt_writer_add(w, "", t), DK_ERR_ARG, path, "names have 1 to 4096");
    CHECK_FAILS(dkh_ckpt_writer_add(w, "bad\xff", t), DK_ERR_ARG, "is not UTF-8 text");
    CHECK_FAILS(dkh_ckpt_writer_meta(w, "a: [1, 2\n"), DK_ERR_ARG, path,
                "the metadata is not valid YAML");
    CHECK_FAILS(dkh_ckpt_writer_meta(w, "a: \"\xc3\x28\"\n"), DK_ERR_ARG,
                "the metadata is not UTF-8 text");
    /* Misuse leaves the writer usable. */
    CHECK_OK(dkh_ckpt_writer_meta(w, "iteration: 3\n"));
    CHECK_FAILS(dkh_ckpt_writer_meta(w, "iteration: 4\n"), DK_ERR_ARG, path,
                "the metadata was already set");
    CHECK_OK(dkh_ckpt_writer_add(w, "b", t));
    CHECK_OK(dkh_ckpt_writer_commit(w));
    dkh_ckpt *c;
    CHECK_OK(dkh_ckpt_open(path, &c));
    assert_int_equal(dkh_ckpt_count(c), 2);
    assert_int_equal(dkh_ckpt_iteration(c), 3);
    dkh_ckpt_close(c);

    /* Commit without metadata: refused, nothing replaced, no temp left. */
    CHECK_OK(dkh_ckpt_writer_open(path, &w));
    CHECK_OK(dkh_ckpt_writer_add(w, "only", t));
    CHECK_FAILS(dkh_ckpt_writer_commit(w), DK_ERR_ARG, path, "no metadata was set");
    assert_int_equal(count_temps(), 0);
    CHECK_OK(dkh_ckpt_open(path, &c));
    assert_int_equal(dkh_ckpt_count(c), 2);
    dkh_ckpt_close(c);

    /* Abort leaves the old file and no temp. */
    CHECK_OK(dkh_ckpt_writer_open(path, &w));
    CHECK_OK(dkh_ckpt_writer_meta(w, "iteration: 99\n"));
    assert_int_equal(count_temps(), 1);
    dkh_ckpt_writer_abort(w);
    dkh_ckpt_writer_abort(NULL);
    assert_int_equal(count_temps(), 0);
    CHECK_OK(dkh_ckpt_open(path, &c));
    assert_int_equal(dkh_ckpt_iteration(c), 3);
    dkh_ckpt_close(c);

    CHECK_FAILS(dkh_ckpt_writer_open(P("no/such/dir/x.dkpt"), &w), DK_ERR_IO, "checkpoint /tmp/",
                "cannot create", "No such file or directory");
    dk_tensor_release(t);
}

static void test_iteration_from_meta(void **state)
{
    static const struct {
        const char *meta;
        int64_t iteration;
    } cases[] = {
        {"epoch: 1\niteration: 700\n", 700},
        {"iteration: 0\n", 0},
        {"epoch: 1\n", -1},
        {"iteration: '12'\n", -1},        /* a string is not an iteration */
        {"train:\n  iteration: 5\n", -1}, /* only the top level counts */
        {"- 1\n- 2\n", -1},
        {"just text\n", -1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        CHECK_OK(ckt_write(P("it.dkpt"), cases[k].meta, 0, NULL, NULL));
        dkh_ckpt *c;
        CHECK_OK(dkh_ckpt_open(P("it.dkpt"), &c));
        assert_int_equal(dkh_ckpt_iteration(c), cases[k].iteration);
        assert_str_eq(dkh_ckpt_meta(c), cases[k].meta);
        dkh_ckpt_close(c);
    }
}

static void test_read_mismatch(void **state)
{
    CHECK_OK(ckt_write_sample(P("s.dkpt"), 10, 0));
    dkh_ckpt *c;
    CHECK_OK(dkh_ckpt_open(P("s.dkpt"), &c));
    size_t i = (size_t)dkh_ckpt_find(c, "conv.bias");
    dk_tensor *wrong_shape = dk_empty(1, (const int64_t[]){5}, DK_DTYPE_F32, DK_CPU);
    dk_tensor *wrong_dtype = dk_empty(1, (const int64_t[]){4}, DK_DTYPE_F64, DK_CPU);
    CHECK_FAILS(dkh_ckpt_read(c, i, wrong_shape), DK_ERR_SHAPE, P("s.dkpt"),
                "tensor 'conv.bias' is (4,) f32, the destination is (5,) f32");
    CHECK_FAILS(dkh_ckpt_read(c, i, wrong_dtype), DK_ERR_SHAPE,
                "tensor 'conv.bias' is (4,) f32, the destination is (4,) f64");
    CHECK_FAILS(dkh_ckpt_read(c, 6, wrong_shape), DK_ERR_ARG, "no tensor 6 (it has 6)");
    dkh_ckpt_close(c);
    dk_tensor_release(wrong_shape);
    dk_tensor_release(wrong_dtype);
}

/* ---- damaged files ----------------------------------------------------------------- */

/* A sample checkpoint's bytes and where its regions lie. */
typedef struct sample {
    uint8_t *bytes;
    size_t size;
    dkh_ckpt_header h;
} sample;

static sample load_sample(void)
{
    sample s;
    CHECK_OK(ckt_write_sample(P("sample.dkpt"), 77, 1));
    s.bytes = slurp(P("sample.dkpt"), &s.size);
    dkh_ckpt_header_decode(s.bytes, &s.h);
    return s;
}

/* Byte offset of index entry i. */
static size_t entry_at(const sample *s, size_t i)
{
    size_t off = (size_t)s->h.index_offset;
    for (size_t k = 0; k < i; k++)
        off += DKH_CKPT_ENTRY_FIXED + 8 * dkh_le_get32(s->bytes + off + 4) +
               dkh_le_get32(s->bytes + off);
    return off;
}

/* Recomputes the index and header checksums after a forged edit, so the
 * reader's other checks are what refuses it. */
static void reseal(uint8_t *b, size_t size)
{
    uint64_t io = dkh_le_get64(b + 64), is = dkh_le_get64(b + 72);
    if (io <= size && is <= size - io)
        dkh_le_put64(b + 80, dkh_xxh64(b + io, (size_t)is, 0));
    dkh_le_put64(b + 88, dkh_xxh64(b, DKH_CKPT_HEADER_SUMMED, 0));
}

static dk_status open_bytes(const uint8_t *b, size_t n, dkh_ckpt **c)
{
    return dkh_ckpt_open_mem(b, n, "forged.dkpt", c);
}

static void test_truncated_everywhere(void **state)
{
    sample s = load_sample();
    dkh_ckpt *c;
    for (size_t n = 0; n < s.size; n++) {
        dk_status st = open_bytes(s.bytes, n, &c);
        if (st != DK_ERR_IO)
            fail_msg("cut at %zu of %zu bytes: %s", n, s.size, dk_status_name(st));
        assert_contains(dk_last_error(), "checkpoint forged.dkpt: ");
        assert_contains(dk_last_error(), n == 0 ? "the file is empty" : "truncated");
    }
    /* The same through real files, at the edges of each region. */
    const size_t cuts[] = {1,
                           7,
                           8,
                           95,
                           96,
                           97,
                           (size_t)s.h.meta_offset,
                           (size_t)s.h.index_offset,
                           (size_t)s.h.index_offset + 1,
                           s.size - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        spit(P("cut.dkpt"), s.bytes, cuts[k]);
        CHECK_FAILS(dkh_ckpt_open(P("cut.dkpt"), &c), DK_ERR_IO, P("cut.dkpt"), "truncated");
    }
    /* Grown: data appended after the end. */
    uint8_t *grown = malloc(s.size + 3);
    memcpy(grown, s.bytes, s.size);
    memcpy(grown + s.size, "xyz", 3);
    CHECK_FAILS(open_bytes(grown, s.size + 3, &c), DK_ERR_IO, "data was appended after its end");
    free(grown);
    free(s.bytes);
}

static void test_bit_flips_everywhere(void **state)
{
    sample s = load_sample();
    uint8_t *b = malloc(s.size);
    for (size_t off = 0; off < s.size; off++) {
        memcpy(b, s.bytes, s.size);
        b[off] ^= (uint8_t)(1u << (off % 8));
        dkh_ckpt *c;
        dk_status st = open_bytes(b, s.size, &c);
        const char *want;
        if (off < 8)
            want = "not a dkhost checkpoint";
        else if (off < 12)
            want = "format version";
        else if (off < 16)
            want = "header size field";
        else if (off < DKH_CKPT_HEADER_SIZE)
            want = "header checksum mismatch";
        else if (off >= s.h.index_offset)
            want = "index checksum mismatch";
        else if (off >= s.h.meta_offset)
            want = "metadata checksum mismatch";
        else
            want = NULL; /* a tensor frame: found on read / verify */
        if (want) {
            if (st != DK_ERR_IO)
                fail_msg("flip at %zu opened: %s", off, dk_status_name(st));
            assert_contains(dk_last_error(), "checkpoint forged.dkpt: ");
            assert_contains(dk_last_error(), want);
            continue;
        }
        CHECK_OK(st);
        /* Which tensor holds the flipped byte. */
        size_t i = 0;
        uint64_t end = DKH_CKPT_HEADER_SIZE + dkh_ckpt_compressed_size(c, 0);
        while (off >= end)
            end += dkh_ckpt_compressed_size(c, ++i);
        char need[128];
        snprintf(need, sizeof need, "tensor '%s' (index entry %zu): data checksum mismatch",
                 dkh_ckpt_name(c, i), i);
        CHECK_FAILS(dkh_ckpt_verify(c), DK_ERR_IO, "checkpoint forged.dkpt: ", need);
        for (size_t k = 0; k < dkh_ckpt_count(c); k++)
            if (k != i)
                CHECK_OK(dkh_ckpt_verify_tensor(c, k));
        int64_t shape[DK_MAX_DIMS];
        int nd = dkh_ckpt_shape(c, i, shape);
        dk_tensor *dst = dk_empty(nd, shape, dkh_ckpt_dtype(c, i), DK_CPU);
        CHECK_FAILS(dkh_ckpt_read(c, i, dst), DK_ERR_IO, need);
        dk_tensor_release(dst);
        dkh_ckpt_close(c);
    }
    free(b);
    free(s.bytes);
}

static void test_forged_fields(void **state)
{
    sample s = load_sample();
    uint8_t *b = malloc(s.size + 64);
    dkh_ckpt *c;
    const size_t e0 = entry_at(&s, 0), e1 = entry_at(&s, 1), e5 = entry_at(&s, 5);
#define FORGE(edit, ...)                                                                           \
    do {                                                                                           \
        memcpy(b, s.bytes, s.size);                                                                \
        edit;                                                                                      \
        reseal(b, s.size);                                                                         \
        CHECK_FAILS(open_bytes(b, s.size, &c), DK_ERR_IO,                                          \
                    "checkpoint forged.dkpt: ", __VA_ARGS__);                                      \
    } while (0)
    FORGE(memcpy(b, "PK\x03\x04", 4), "not a dkhost checkpoint");
    FORGE(dkh_le_put32(b + 8, 2), "format version 2 is newer than this dkhost reads (version 1)");
    FORGE(dkh_le_put32(b + 8, 0), "unknown format version 0");
    FORGE(dkh_le_put32(b + 12, 4096), "header size field is 4096, format version 1 has 96");
    FORGE(dkh_le_put64(b + 16, 1ull << 50), "truncated: the file has",
          "header records 1125899906842624");
    FORGE(dkh_le_put64(b + 24, 1ull << 40), "the header records 1099511627776 tensors, more than");
    FORGE(dkh_le_put64(b + 48, 1ull << 62), "the metadata block (offset", "lies outside the file");
    FORGE(dkh_le_put64(b + 40, 3), "the metadata block (offset 3");
    FORGE(dkh_le_put64(b + 64, s.h.index_offset - 1), "not right after the metadata block");
    FORGE(dkh_le_put64(b + 72, s.h.index_size - 1), "does not end at the end of the file");
    FORGE(b[s.h.meta_offset] = 0xff;
          dkh_le_put64(b + 56, dkh_xxh64(b + s.h.meta_offset, (size_t)s.h.meta_size, 0)),
          "the metadata is not UTF-8 text");
    FORGE(dkh_le_put32(b + e0, 0xffffffffu), "index entry 0: name length 4294967295 is outside");
    FORGE(dkh_le_put32(b + e0, 0), "index entry 0: name length 0");
    FORGE(dkh_le_put32(b + e0, 60000), "index entry 0: name length 60000");
    FORGE(dkh_le_put32(b + e0 + 4, 9), "index entry 0: 9 dimensions, more than 8");
    FORGE(dkh_le_put32(b + e0, (uint32_t)s.h.index_size), "index entry 0 is cut short");
    FORGE(memcpy(b + e0 + 8, "f128", 4),
          "tensor 'conv.weight' (index entry 0): unknown dtype 'f128'");
    FORGE(memcpy(b + e0 + 8, "f32\0x", 5), "unknown dtype");
    FORGE(dkh_le_put64(b + e0 + 48, (uint64_t)-4), "tensor 'conv.weight' (index entry 0): invalid "
                                                   "shape (-4, 3, 3, 3)");
    FORGE(dkh_le_put64(b + e0 + 48, 1ull << 61), "invalid shape");
    FORGE(dkh_le_put64(b + e0 + 32, 1ull << 60), "raw size 1152921504606846976 bytes does not "
                                                 "match its shape and dtype (432 bytes)");
    FORGE(dkh_le_put64(b + e1 + 16, dkh_le_get64(b + e1 + 16) + 1),
          "tensor 'conv.bias' (index entry 1): data offset");
    FORGE(dkh_le_put64(b + e0 + 24, 1ull << 62), "tensor 'conv.weight' (index entry 0): its",
          "does not fit before the metadata block");
    FORGE(dkh_le_put64(b + e0 + 24, 0), "does not fit before the metadata block");
    FORGE(memcpy(b + e5 + DKH_CKPT_ENTRY_FIXED + 16, "embed", 5),
          "tensor name 'embed' appears twice in the index (entries 4 and 5)"); /* was "empty" */
    FORGE(dkh_le_put64(b + 24, s.h.count - 1), "bytes after its 5 entries");
    /* The last frame one byte shorter: a byte before the metadata is nobody's. */
    FORGE(dkh_le_put64(b + e5 + 24, dkh_le_get64(b + e5 + 24) - 1),
          "1 bytes before the metadata block belong to no tensor");
#undef FORGE

    /* Forged consistently: the index says 8 floats where the frame holds 4.
     * Open accepts it; decompression refuses. */
    memcpy(b, s.bytes, s.size);
    dkh_le_put64(b + e1 + DKH_CKPT_ENTRY_FIXED, 8);
    dkh_le_put64(b + e1 + 32, 32);
    reseal(b, s.size);
    CHECK_OK(open_bytes(b, s.size, &c));
    CHECK_FAILS(dkh_ckpt_verify(c), DK_ERR_IO,
                "tensor 'conv.bias' (index entry 1): the zstd frame does not declare the 32 bytes");
    dkh_ckpt_close(c);
    free(b);
    free(s.bytes);
}

static void test_open_errors(void **state)
{
    dkh_ckpt *c;
    CHECK_FAILS(dkh_ckpt_open(P("missing.dkpt"), &c), DK_ERR_NOT_FOUND, P("missing.dkpt"),
                "No such file or directory");
    CHECK_FAILS(dkh_ckpt_open(dir, &c), DK_ERR_IO, dir, "not a regular file");
    spit(P("text.dkpt"), "epoch: 1\n", 9);
    CHECK_FAILS(dkh_ckpt_open(P("text.dkpt"), &c), DK_ERR_IO, "text.dkpt: not a dkhost checkpoint");
    spit(P("empty.dkpt"), "", 0);
    CHECK_FAILS(dkh_ckpt_open(P("empty.dkpt"), &c), DK_ERR_IO, "empty.dkpt: the file is empty");
}

/* ---- failing writes ---------------------------------------------------------------- */

static void test_write_faults_keep_the_old_file(void **state)
{
    const char *path = P("faults.dkpt");
    CHECK_OK(ckt_write_sample(path, 1, 0));
    size_t full;
    uint8_t *old = slurp(path, &full);
    dkh_ckpt_header h;
    dkh_ckpt_header_decode(old, &h);
    free(old);
    /* Bytes go out as frames, metadata, index, then the header at offset 0:
     * fail at once, in the first frame, in the metadata, in the index, at
     * the header and in its last byte. */
    const int64_t data = (int64_t)h.meta_offset - DKH_CKPT_HEADER_SIZE;
    const int64_t budgets[] = {0,
                               100,
                               data + 5,
                               data + (int64_t)h.meta_size + 50,
                               (int64_t)full - DKH_CKPT_HEADER_SIZE,
                               (int64_t)full - 1};
    const int errs[] = {ENOSPC, EIO};
    for (size_t k = 0; k < sizeof budgets / sizeof budgets[0]; k++) {
        int err = errs[k % 2];
        dkh_ckpt_fail_writes_after(budgets[k], err);
        dk_status st = ckt_write_sample(path, 2, 5);
        dkh_ckpt_fail_writes_after(-1, 0);
        if (st != DK_ERR_IO)
            fail_msg("write with budget %" PRId64 ": %s", budgets[k], dk_status_name(st));
        assert_contains(dk_last_error(), path);
        assert_contains(dk_last_error(), ".tmp.");
        assert_contains(dk_last_error(), strerror(err));
        assert_int_equal(count_temps(), 0);
        dkh_ckpt *c;
        CHECK_OK(dkh_ckpt_open(path, &c));
        assert_int_equal(dkh_ckpt_iteration(c), 1); /* still the old one */
        CHECK_OK(dkh_ckpt_verify(c));
        dkh_ckpt_close(c);
    }
    /* After a failed write the writer refuses more work. */
    dkh_ckpt_writer *w;
    dk_tensor *t = ckt_pattern(DK_DTYPE_U8, 1, (const int64_t[]){1000}, 3);
    CHECK_OK(dkh_ckpt_writer_open(path, &w));
    dkh_ckpt_fail_writes_after(10, ENOSPC);
    CHECK_FAILS(dkh_ckpt_writer_add(w, "a", t), DK_ERR_IO, "No space left on device");
    dkh_ckpt_fail_writes_after(-1, 0);
    CHECK_FAILS(dkh_ckpt_writer_add(w, "b", t), DK_ERR_IO, "an earlier write failed");
    CHECK_OK(dkh_ckpt_writer_meta(w, "iteration: 3\n"));
    CHECK_FAILS(dkh_ckpt_writer_commit(w), DK_ERR_IO, path, "nothing was committed");
    assert_int_equal(count_temps(), 0);
    dk_tensor_release(t);
}

/* ---- directories ------------------------------------------------------------------- */

/* A pid that no process has (a child that already exited and was reaped). */
static long dead_pid(void)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    waitpid(pid, NULL, 0);
    return (long)pid;
}

static void set_mtime(const char *path, time_t t)
{
    struct timespec ts[2] = {{t, 0}, {t, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static char *logged_warnings(FILE *f)
{
    fflush(f);
    long n = ftell(f);
    rewind(f);
    char *s = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    return s;
}

static void test_latest(void **state)
{
    char *path = NULL;
    CHECK_FAILS(dkh_ckpt_latest(dir, &path), DK_ERR_NOT_FOUND, "no checkpoint (*.dkpt) in", dir);
    CHECK_FAILS(dkh_ckpt_latest(P("nowhere"), &path), DK_ERR_NOT_FOUND, "nowhere",
                "No such file or directory");

    CHECK_OK(ckt_write_sample(P("iter_100.dkpt"), 100, 0));
    CHECK_OK(ckt_write_sample(P("iter_200.dkpt"), 200, 1));
    CHECK_OK(ckt_write_sample(P("a_no_iteration.dkpt"), -1, 2));
    /* Newer but damaged: a flipped byte in its first tensor frame. */
    CHECK_OK(ckt_write_sample(P("iter_300.dkpt"), 300, 3));
    size_t n;
    uint8_t *b = slurp(P("iter_300.dkpt"), &n);
    b[DKH_CKPT_HEADER_SIZE + 10] ^= 0x40;
    spit(P("iter_300.dkpt"), b, n);
    free(b);
    /* Newest by mtime but not a checkpoint, and a half-written temp file. */
    spit(P("zzz.dkpt"), "garbage", 7);
    char stale[64], live[64];
    snprintf(stale, sizeof stale, "iter_400.dkpt.tmp.%ld", dead_pid());
    snprintf(live, sizeof live, "iter_500.dkpt.tmp.%ld", (long)getpid());
    spit(P(stale), "DKPT\r\n\x1a\n partial", 16);
    spit(P(live), "DKPT\r\n\x1a\n partial", 16);
    /* Older modification times must not matter: the iteration decides. */
    set_mtime(P("iter_200.dkpt"), 1000000);

    FILE *log = tmpfile();
    dkh_log_set_streams(log, NULL);
    CHECK_OK(dkh_ckpt_latest(dir, &path));
    dkh_log_set_streams(stderr, NULL);
    assert_str_eq(path, P("iter_200.dkpt"));
    free(path);
    char *warnings = logged_warnings(log);
    fclose(log);
    assert_contains(warnings, "skipping checkpoint ");
    assert_contains(warnings, "iter_300.dkpt: tensor 'conv.weight' (index entry 0): data "
                              "checksum mismatch");
    assert_contains(warnings, "zzz.dkpt: not a dkhost checkpoint");
    assert_null(strstr(warnings, "iter_200"));
    free(warnings);
    assert_false(exists(P(stale))); /* its writer is gone */
    assert_true(exists(P(live)));   /* ours: may still be written */
    unlink(P(live));

    /* Same iteration: the later modification time wins, then the name. */
    CHECK_OK(ckt_write_sample(P("b_200.dkpt"), 200, 4));
    set_mtime(P("b_200.dkpt"), 2000000);
    log = tmpfile();
    dkh_log_set_streams(log, NULL);
    CHECK_OK(dkh_ckpt_latest(dir, &path));
    assert_str_eq(path, P("b_200.dkpt"));
    free(path);
    set_mtime(P("b_200.dkpt"), 1000000);
    CHECK_OK(dkh_ckpt_latest(dir, &path));
    assert_str_eq(path, P("iter_200.dkpt")); /* same time: the greater name */
    free(path);
    dkh_log_set_streams(stderr, NULL);
    fclose(log);

    /* Only damaged ones left. */
    unlink(P("iter_100.dkpt"));
    unlink(P("iter_200.dkpt"));
    unlink(P("b_200.dkpt"));
    unlink(P("a_no_iteration.dkpt"));
    log = tmpfile();
    dkh_log_set_streams(log, NULL);
    CHECK_FAILS(dkh_ckpt_latest(dir, &path), DK_ERR_NOT_FOUND, "no intact checkpoint (*.dkpt) in",
                "2 damaged ones were skipped");
    dkh_log_set_streams(stderr, NULL);
    fclose(log);
    assert_null(path);
}

static void test_writer_cleans_its_stale_temps(void **state)
{
    char stale[64], other[64];
    long pid = dead_pid();
    snprintf(stale, sizeof stale, "model.dkpt.tmp.%ld", pid);
    snprintf(other, sizeof other, "other.dkpt.tmp.%ld", pid);
    spit(P(stale), "x", 1);
    spit(P(other), "x", 1);
    CHECK_OK(ckt_write_sample(P("model.dkpt"), 1, 0));
    assert_false(exists(P(stale)));
    assert_true(exists(P(other))); /* another path's: left to its own writer or latest */
    unlink(P(other));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xxh64_vectors),
        cmocka_unit_test_setup_teardown(test_round_trip_every_dtype, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strided_sources_and_destinations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_tensors_and_no_tensors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_tensor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_misuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iteration_from_meta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_everywhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bit_flips_everywhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_faults_keep_the_old_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_latest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_cleans_its_stale_temps, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
