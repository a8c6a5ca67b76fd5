/* core/ckpt/format.c — the bytes of format version 1: header and index entry
 * encoding, the dtype names the file stores, and the checks on names and
 * metadata text that the writer and the reader both apply. */
#include "ckpt_impl.h"

#include <string.h>

#define DTYPE_NAME_(e, name, size) name,
#define DTYPE_SIZE_(e, name, size) size,
static const char *const dtype_names[] = {DK_DTYPE_LIST(DTYPE_NAME_)};
static const size_t dtype_sizes[] = {DK_DTYPE_LIST(DTYPE_SIZE_)};
#undef DTYPE_NAME_
#undef DTYPE_SIZE_

const char *dkh_ckpt_dtype_name(dk_dtype d)
{
    return (unsigned)d < DK_DTYPE_COUNT ? dtype_names[d] : "?";
}

size_t dkh_ckpt_dtype_size(dk_dtype d)
{
    return (unsigned)d < DK_DTYPE_COUNT ? dtype_sizes[d] : 0;
}

dk_dtype dkh_ckpt_dtype_decode(const uint8_t *field)
{
    /* The name, then NUL padding to the end of the field: nothing else. */
    size_t n = 0;
    while (n < DKH_CKPT_DTYPE_LEN && field[n])
        n++;
    for (size_t k = n; k < DKH_CKPT_DTYPE_LEN; k++)
        if (field[k])
            return DK_DTYPE_COUNT;
    for (int d = 0; d < DK_DTYPE_COUNT; d++)
        if (strlen(dtype_names[d]) == n && memcmp(dtype_names[d], field, n) == 0)
            return (dk_dtype)d;
    return DK_DTYPE_COUNT;
}

void dkh_ckpt_header_encode(const dkh_ckpt_header *h, uint8_t *out)
{
    memcpy(out, DKH_CKPT_MAGIC, DKH_CKPT_MAGIC_LEN);
    dkh_le_put32(out + 8, h->version);
    dkh_le_put32(out + 12, h->header_size);
    dkh_le_put64(out + 16, h->file_size);
    dkh_le_put64(out + 24, h->count);
    dkh_le_put64(out + 32, (uint64_t)h->iteration);
    dkh_le_put64(out + 40, h->meta_offset);
    dkh_le_put64(out + 48, h->meta_size);
    dkh_le_put64(out + 56, h->meta_sum);
    dkh_le_put64(out + 64, h->index_offset);
    dkh_le_put64(out + 72, h->index_size);
    dkh_le_put64(out + 80, h->index_sum);
    dkh_le_put64(out + 88, dkh_xxh64(out, DKH_CKPT_HEADER_SUMMED, 0));
}

void dkh_ckpt_header_decode(const uint8_t *in, dkh_ckpt_header *h)
{
    h->version = dkh_le_get32(in + 8);
    h->header_size = dkh_le_get32(in + 12);
    h->file_size = dkh_le_get64(in + 16);
    h->count = dkh_le_get64(in + 24);
    h->iteration = (int64_t)dkh_le_get64(in + 32);
    h->meta_offset = dkh_le_get64(in + 40);
    h->meta_size = dkh_le_get64(in + 48);
    h->meta_sum = dkh_le_get64(in + 56);
    h->index_offset = dkh_le_get64(in + 64);
    h->index_size = dkh_le_get64(in + 72);
    h->index_sum = dkh_le_get64(in + 80);
    h->header_sum = dkh_le_get64(in + 88);
}

size_t dkh_ckpt_entry_size(const dkh_ckpt_entry *e)
{
    return DKH_CKPT_ENTRY_FIXED + 8 * (size_t)e->ndim + e->name_len;
}

void dkh_ckpt_entry_encode(const dkh_ckpt_entry *e, uint8_t *out)
{
    dkh_le_put32(out, e->name_len);
    dkh_le_put32(out + 4, (uint32_t)e->ndim);
    memset(out + 8, 0, DKH_CKPT_DTYPE_LEN);
    const char *dt = dkh_ckpt_dtype_name(e->dtype);
    memcpy(out + 8, dt, strlen(dt));
    dkh_le_put64(out + 16, e->offset);
    dkh_le_put64(out + 24, e->comp_size);
    dkh_le_put64(out + 32, e->raw_size);
    dkh_le_put64(out + 40, e->sum);
    uint8_t *p = out + DKH_CKPT_ENTRY_FIXED;
    for (int d = 0; d < e->ndim; d++, p += 8)
        dkh_le_put64(p, (uint64_t)e->shape[d]);
    memcpy(p, e->name, e->name_len);
}

bool dkh_ckpt_text_ok(const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s, *end = p + n;
    while (p < end) {
        uint8_t b = *p++;
        if (b == 0)
            return false;
        if (b < 0x80)
            continue;
        /* Lead byte: how many continuation bytes, and the smallest code point
         * that needs this length (longer encodings are overlong, hence invalid). */
        int more;
        uint32_t cp, min;
        if ((b & 0xE0) == 0xC0) {
            more = 1, cp = b & 0x1F, min = 0x80;
        } else if ((b & 0xF0) == 0xE0) {
            more = 2, cp = b & 0x0F, min = 0x800;
        } else if ((b & 0xF8) == 0xF0) {
            more = 3, cp = b & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (end - p < more)
            return false;
        for (int k = 0; k < more; k++, p++) {
            if ((*p & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (*p & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
    }
    return true;
}

bool dkh_ckpt_nbytes(int ndim, const int64_t *shape, size_t esize, uint64_t *out)
{
    /* Kept below 2^62 so offsets and sums built from it cannot overflow. */
    uint64_t n = esize;
    bool zero = false;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0)
            return false;
        if (shape[d] == 0)
            zero = true;
        else if (__builtin_mul_overflow(n, (uint64_t)shape[d], &n) || n > (1ull << 62))
            return false;
    }
    *out = zero ? 0 : n;
    return true;
}
