/* core/ckpt/ckpt_impl.h — what the files of core/ckpt share: the on-disk
 * layout of format version 1 (docs/checkpoint-format.md), its limits, the
 * checksum, a name index, and the reader's decoding step. Internal. */
#ifndef DKH_CKPT_IMPL_H
#define DKH_CKPT_IMPL_H

#include "ckpt.h"

#include <dk/api.h>
#include <dk/status.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- layout ------------------------------------------------------------------------ */

#define DKH_CKPT_MAGIC "DKPT\r\n\x1a\n" /* 8 bytes; the CR LF and ^Z catch text-mode copies */
#define DKH_CKPT_MAGIC_LEN 8
#define DKH_CKPT_VERSION 1
#define DKH_CKPT_HEADER_SIZE 96
#define DKH_CKPT_HEADER_SUMMED 88 /* the header checksum covers bytes [0, 88) */
#define DKH_CKPT_ENTRY_FIXED 48   /* an index entry before its shape and name */
#define DKH_CKPT_DTYPE_LEN 8      /* dtype name, NUL-padded */

/* Limits a reader enforces before allocating anything a length asks for. */
#define DKH_CKPT_MAX_NAME 4096u
#define DKH_CKPT_MAX_META (64ull << 20)
#define DKH_CKPT_MAX_INDEX (256ull << 20)
#define DKH_CKPT_MAX_TENSORS (1ull << 22)

/* The header as numbers (every field of the 96 bytes but the magic). */
typedef struct dkh_ckpt_header {
    uint32_t version;
    uint32_t header_size;
    uint64_t file_size;
    uint64_t count;
    int64_t iteration; /* -1: unknown */
    uint64_t meta_offset, meta_size, meta_sum;
    uint64_t index_offset, index_size, index_sum;
    uint64_t header_sum;
} dkh_ckpt_header;

/* One index entry. */
typedef struct dkh_ckpt_entry {
    char *name; /* NUL-terminated; owned by whoever holds the entry array */
    uint32_t name_len;
    dk_dtype dtype;
    int ndim;
    int64_t shape[DK_MAX_DIMS];
    uint64_t offset;    /* of the zstd frame, from the start of the file */
    uint64_t comp_size; /* bytes of the frame */
    uint64_t raw_size;  /* numel x dtype size */
    uint64_t sum;       /* checksum of the frame's bytes */
} dkh_ckpt_entry;

/* Little-endian fixed-width fields, whatever the host's byte order. */
static inline void dkh_le_put32(uint8_t *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}

static inline void dkh_le_put64(uint8_t *p, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}

static inline uint32_t dkh_le_get32(const uint8_t *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
#else
    uint32_t v = 0;
    for (int k = 3; k >= 0; k--)
        v = (v << 8) | p[k];
    return v;
#endif
}

static inline uint64_t dkh_le_get64(const uint8_t *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
#else
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--)
        v = (v << 8) | p[k];
    return v;
#endif
}

/* Fills the 96 header bytes from h, computing the header checksum. */
void dkh_ckpt_header_encode(const dkh_ckpt_header *h, uint8_t *out);
/* Reads the numeric fields of 96 header bytes (no checks). */
void dkh_ckpt_header_decode(const uint8_t *in, dkh_ckpt_header *h);
/* Bytes entry e takes in the index, and its encoding into out. */
size_t dkh_ckpt_entry_size(const dkh_ckpt_entry *e);
void dkh_ckpt_entry_encode(const dkh_ckpt_entry *e, uint8_t *out);
/* The dtype whose name the 8-byte field holds (NUL-padded), or DK_DTYPE_COUNT. */
dk_dtype dkh_ckpt_dtype_decode(const uint8_t *field);
const char *dkh_ckpt_dtype_name(dk_dtype d); /* "f32", ...; "?" when invalid */
size_t dkh_ckpt_dtype_size(dk_dtype d);      /* 0 when invalid */
/* True when s[0..n) is well-formed UTF-8 without NUL bytes. */
bool dkh_ckpt_text_ok(const char *s, size_t n);
/* Bytes of ndim x shape elements of an esize-byte dtype; false on overflow or a
 * negative size. */
bool dkh_ckpt_nbytes(int ndim, const int64_t *shape, size_t esize, uint64_t *out);

/* ---- checksum ---------------------------------------------------------------------- */

/* XXH64 (the xxHash 64-bit algorithm) of p[0..n) with the given seed. The
 * format uses seed 0 everywhere. */
uint64_t dkh_xxh64(const void *p, size_t n, uint64_t seed);

/* ---- name index -------------------------------------------------------------------- */

/* An open-addressing hash map from borrowed NUL-terminated names to indices.
 * Zero-initialise to start. */
typedef struct dkh_name_set {
    size_t cap; /* a power of two, or 0 */
    size_t n;
    const char **keys;
    size_t *vals;
} dkh_name_set;

/* Adds name -> value. *added is false (and nothing changes) when name is
 * already there. DK_ERR_NOMEM when the table cannot grow. */
dk_status dkh_name_set_add(dkh_name_set *s, const char *name, size_t value, bool *added) DK_CHECK;
/* The value of name, or -1. */
int64_t dkh_name_set_find(const dkh_name_set *s, const char *name);
void dkh_name_set_fini(dkh_name_set *s);

/* ---- reader internals -------------------------------------------------------------- */

/* Checks tensor i's checksum and frame, then decompresses it: into dst
 * (exactly raw_size bytes) when dst is not NULL, else into a scratch buffer
 * that is thrown away. Messages name the file and the tensor. */
dk_status dkh_ckpt_decode(dkh_ckpt *c, size_t i, void *dst) DK_CHECK;

/* ---- directories ------------------------------------------------------------------- */

/* Removes the temp files "<prefix>.tmp.<pid>" in dir whose process is gone;
 * prefix NULL matches any "*.dkpt" prefix. Best effort: failures are ignored. */
void dkh_ckpt_clean_stale(const char *dir, const char *prefix);

#endif /* DKH_CKPT_IMPL_H */
