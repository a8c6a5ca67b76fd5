/* tests/ckpt_testing.h — making small checkpoints with known contents, for
 * the checkpoint tests and the fuzzer's seed corpus. Needs libdk. */
#ifndef DK_CKPT_TESTING_H
#define DK_CKPT_TESTING_H

#include <dk/dk.h>

#include "ckpt/ckpt.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

/* A new CPU tensor (caller releases) whose bytes follow a pattern fixed by
 * seed; bool elements are 0 or 1. Any bit pattern is fine for the float
 * dtypes: the tests compare bytes, never values. */
static inline dk_tensor *ckt_pattern(dk_dtype dtype, int ndim, const int64_t *shape, uint32_t seed)
{
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++)
        numel *= shape[d];
    size_t nbytes = (size_t)numel * dk_dtype_size(dtype);
    uint8_t *bytes = malloc(nbytes + 1);
    uint32_t x = seed * 2654435761u + 12345u;
    for (size_t k = 0; k < nbytes; k++) {
        x = x * 1664525u + 1013904223u;
        bytes[k] = dtype == DK_DTYPE_BOOL ? (uint8_t)((x >> 16) & 1) : (uint8_t)(x >> 24);
    }
    dk_tensor *t = dk_from_data(ndim, shape, dtype, bytes);
    free(bytes);
    return t;
}

/* Writes n named tensors and meta to path, aborting the writer on failure. */
static inline dk_status ckt_write(const char *path, const char *meta, size_t n,
                                  const char *const *names, dk_tensor *const *tensors)
{
    dkh_ckpt_writer *w;
    DK_TRY(dkh_ckpt_writer_open(path, &w));
    dk_status s = dkh_ckpt_writer_meta(w, meta);
    for (size_t i = 0; s == DK_OK && i < n; i++)
        s = dkh_ckpt_writer_add(w, names[i], tensors[i]);
    if (s != DK_OK) {
        dkh_ckpt_writer_abort(w);
        return s;
    }
    return dkh_ckpt_writer_commit(w);
}

/* The tensors of ckt_write_sample, in order. */
#define CKT_SAMPLE_COUNT 6
static const char *const ckt_sample_names[CKT_SAMPLE_COUNT] = {
    "conv.weight", "conv.bias", "bn.num_batches_tracked", "mask", "embed", "empty"};

/* A small checkpoint like the runner's: metadata with an `iteration:` key
 * (omitted when iteration < 0) and six tensors of several dtypes, one a
 * scalar and one empty, whose values depend on variant. */
static inline dk_status ckt_write_sample(const char *path, int64_t iteration, uint32_t variant)
{
    static const int64_t s_w[] = {4, 3, 3, 3}, s_b[] = {4}, s_m[] = {5}, s_e[] = {3, 2},
                         s_z[] = {0, 4};
    dk_tensor *t[CKT_SAMPLE_COUNT] = {
        ckt_pattern(DK_DTYPE_F32, 4, s_w, variant),
        ckt_pattern(DK_DTYPE_F32, 1, s_b, variant + 1),
        ckt_pattern(DK_DTYPE_I64, 0, NULL, variant + 2),
        ckt_pattern(DK_DTYPE_BOOL, 1, s_m, variant + 3),
        ckt_pattern(DK_DTYPE_BF16, 2, s_e, variant + 4),
        ckt_pattern(DK_DTYPE_F16, 2, s_z, variant + 5),
    };
    char meta[256];
    if (iteration >= 0)
        snprintf(meta, sizeof meta,
                 "epoch: 3\niteration: %" PRId64 "\nsamples_seen: %" PRId64
                 "\nclasses: [cat, dog]\nvariant: %" PRIu32 "\n",
                 iteration, iteration * 32, variant);
    else
        snprintf(meta, sizeof meta, "epoch: 3\nclasses: [cat, dog]\nvariant: %" PRIu32 "\n",
                 variant);
    dk_status s = ckt_write(path, meta, CKT_SAMPLE_COUNT, ckt_sample_names, t);
    for (int i = 0; i < CKT_SAMPLE_COUNT; i++)
        dk_tensor_release(t[i]);
    return s;
}


/* A fresh temporary directory for a test's files: fills dir (size >= 32)
 * from a mkdtemp template "/tmp/<prefix>_XXXXXX"; 0 on success. */
static inline int ckt_dir_make(char *dir, size_t size, const char *prefix)
{
    snprintf(dir, size, "/tmp/%s_XXXXXX", prefix);
    return mkdtemp(dir) ? 0 : -1;
}

/* Removes dir and the plain files in it. */
static inline void ckt_dir_remove(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.')
            unlinkat(dirfd(d), e->d_name, 0);
    if (d)
        closedir(d);
    rmdir(dir);
}

/* Writers' temporary files ("*.tmp.<pid>") left in dir. */
static inline int ckt_count_temps(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strstr(e->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    return n;
}

#endif /* DK_CKPT_TESTING_H */
