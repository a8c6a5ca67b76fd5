/* tests/fuzz/fuzz_ckpt.c — libFuzzer target: any bytes as a checkpoint.
 *
 * Each input is opened twice from memory: as it is, which mostly exercises
 * the checks up to the first checksum, and as a copy whose checksums (and
 * recorded file size) this harness recomputes, so mutations reach the index
 * parser, the frame checks and zstd itself. Either way the reader must
 * refuse or accept without a crash, a leak or unbounded allocation, and
 * whatever it accepts must verify or fail with a message naming the file.
 */
#include "ckpt/ckpt_impl.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NAME "fuzz.dkpt"
#define MAX_DECODE (1u << 20) /* decode into a buffer only up to this size */

static void require(bool ok)
{
    if (!ok)
        abort();
}

static void require_message(void)
{
    require(strncmp(dk_last_error(), "checkpoint " NAME ": ", strlen("checkpoint " NAME ": ")) ==
            0);
}

static void exercise(const uint8_t *data, size_t size)
{
    dkh_ckpt *c;
    if (dkh_ckpt_open_mem(data, size, NAME, &c) != DK_OK) {
        require_message();
        return;
    }
    require(strlen(dkh_ckpt_meta(c)) <= size);
    for (size_t i = 0; i < dkh_ckpt_count(c); i++) {
        int64_t shape[DK_MAX_DIMS];
        int ndim = dkh_ckpt_shape(c, i, shape);
        require(ndim >= 0 && ndim <= DK_MAX_DIMS);
        require(dkh_ckpt_find(c, dkh_ckpt_name(c, i)) == (int64_t)i);
        require(dkh_ckpt_compressed_size(c, i) <= size);
        if (dkh_ckpt_verify_tensor(c, i) != DK_OK)
            require_message();
        uint64_t raw = dkh_ckpt_raw_size(c, i);
        if (raw <= MAX_DECODE) {
            void *buf = malloc(raw ? raw : 1);
            if (dkh_ckpt_decode(c, i, buf) != DK_OK)
                require_message();
            free(buf);
        }
    }
    dkh_ckpt_close(c);
}

/* Recomputes every checksum the layout fields point at, tolerating any
 * garbage in those fields. */
static void reseal(uint8_t *b, size_t n)
{
    if (n < DKH_CKPT_HEADER_SIZE)
        return;
    dkh_le_put64(b + 16, n);
    uint64_t mo = dkh_le_get64(b + 40), ms = dkh_le_get64(b + 48);
    uint64_t io = dkh_le_get64(b + 64), is = dkh_le_get64(b + 72);
    if (mo <= n && ms <= n - mo)
        dkh_le_put64(b + 56, dkh_xxh64(b + mo, (size_t)ms, 0));
    if (io <= n && is <= n - io) {
        size_t pos = (size_t)io, end = (size_t)(io + is);
        while (end - pos >= DKH_CKPT_ENTRY_FIXED) {
            uint64_t nl = dkh_le_get32(b + pos), nd = dkh_le_get32(b + pos + 4);
            uint64_t off = dkh_le_get64(b + pos + 16), cs = dkh_le_get64(b + pos + 24);
            if (off <= n && cs <= n - off)
                dkh_le_put64(b + pos + 40, dkh_xxh64(b + off, (size_t)cs, 0));
            if (nd > DK_MAX_DIMS || DKH_CKPT_ENTRY_FIXED + 8 * nd + nl > end - pos)
                break;
            pos += DKH_CKPT_ENTRY_FIXED + 8 * nd + nl;
        }
        dkh_le_put64(b + 80, dkh_xxh64(b + io, (size_t)is, 0));
    }
    dkh_le_put64(b + 88, dkh_xxh64(b, DKH_CKPT_HEADER_SUMMED, 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    exercise(data, size);
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    reseal(copy, size);
    exercise(copy, size);
    free(copy);
    dk_clear_error();
    return 0;
}
