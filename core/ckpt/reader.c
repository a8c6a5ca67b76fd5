/* core/ckpt/reader.c — opening a checkpoint: validating everything before
 * trusting it, the accessors, and checking and decompressing tensor frames.
 *
 * A checkpoint may come from anywhere, so the header, the metadata and every
 * index entry are checked against the file's real size, the format's limits
 * and their checksums before any length is used to allocate or read. Only
 * then are tensors touched, one frame at a time, each checked against its
 * own checksum before zstd sees it. Files are read with pread rather than
 * mapped, so a file that shrinks underneath us is an error, not a SIGBUS.
 */
#include "ckpt_impl.h"

#include "../util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

/* Decompression output chunk when the values are thrown away (verify). */
#define SCRATCH_SIZE (256u << 10)

struct dkh_ckpt {
    char *path;         /* the file, or the name open_mem was given */
    int fd;             /* -1 for a memory checkpoint */
    const uint8_t *mem; /* the bytes of a memory checkpoint */
    uint64_t size;
    dkh_ckpt_header h;
    char *meta;     /* NUL-terminated copy */
    uint8_t *index; /* the index bytes, kept for the names' storage */
    char *names;    /* NUL-terminated copies of every name */
    dkh_ckpt_entry *entries;
    dkh_name_set by_name;
    ZSTD_DCtx *dctx; /* made on first use */
    uint8_t *scratch;
};

/* Records "checkpoint <path>: <what>" and returns status s. */
DK_PRINTF(3, 4)
static dk_status bad(const dkh_ckpt *c, dk_status s, const char *fmt, ...)
{
    dkh_buf b = DKH_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    dkh_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    dk_fail(s, "checkpoint %s: %s", c->path, dkh_buf_str(&b));
    dkh_buf_fini(&b);
    return s;
}

#define DAMAGED(c, ...) bad((c), DK_ERR_IO, __VA_ARGS__)

/* Reads n bytes at off, already checked to lie inside the file. */
static dk_status read_at(const dkh_ckpt *c, uint64_t off, size_t n, void *dst)
{
    if (c->mem) {
        memcpy(dst, c->mem + off, n);
        return DK_OK;
    }
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(c->fd, (char *)dst + done, n - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return DAMAGED(c, "reading %zu bytes at offset %" PRIu64 " failed: %s", n, off,
                           strerror(errno));
        if (r == 0)
            return DAMAGED(c,
                           "the file ended at offset %" PRIu64 " while reading (was it "
                           "truncated while open?)",
                           off + done);
        done += (size_t)r;
    }
    return DK_OK;
}

/* A new buffer holding n bytes at off (n already checked against the file). */
static dk_status read_new(const dkh_ckpt *c, uint64_t off, size_t n, uint8_t **out)
{
    uint8_t *p = malloc(n ? n : 1);
    if (!p)
        return bad(c, DK_ERR_NOMEM, "out of memory reading %zu bytes", n);
    dk_status s = read_at(c, off, n, p);
    if (s != DK_OK) {
        free(p);
        return s;
    }
    *out = p;
    return DK_OK;
}

/* ---- header ------------------------------------------------------------------------ */

static dk_status check_header(dkh_ckpt *c)
{
    const uint64_t size = c->size;
    if (size == 0)
        return DAMAGED(c, "the file is empty (0 bytes)");
    uint8_t raw[DKH_CKPT_HEADER_SIZE];
    size_t have = size < sizeof raw ? (size_t)size : sizeof raw;
    DK_TRY(read_at(c, 0, have, raw));
    size_t magic_have = have < DKH_CKPT_MAGIC_LEN ? have : DKH_CKPT_MAGIC_LEN;
    if (memcmp(raw, DKH_CKPT_MAGIC, magic_have) != 0)
        return DAMAGED(c, "not a dkhost checkpoint (the file does not start with the .dkpt "
                          "magic bytes)");
    if (have < sizeof raw)
        return DAMAGED(c,
                       "truncated: the file has %" PRIu64 " bytes, less than the %d-byte "
                       "header",
                       size, DKH_CKPT_HEADER_SIZE);
    dkh_ckpt_header *h = &c->h;
    dkh_ckpt_header_decode(raw, h);
    /* Magic, version and header size never move, so a newer file is told
     * apart from a damaged one before the version-specific checksum. */
    if (h->version > DKH_CKPT_VERSION)
        return DAMAGED(c,
                       "format version %" PRIu32 " is newer than this dkhost reads "
                       "(version %d); a newer dkhost wrote it",
                       h->version, DKH_CKPT_VERSION);
    if (h->version != DKH_CKPT_VERSION)
        return DAMAGED(c, "unknown format version %" PRIu32, h->version);
    if (h->header_size != DKH_CKPT_HEADER_SIZE)
        return DAMAGED(c, "header size field is %" PRIu32 ", format version %d has %d",
                       h->header_size, DKH_CKPT_VERSION, DKH_CKPT_HEADER_SIZE);
    if (dkh_xxh64(raw, DKH_CKPT_HEADER_SUMMED, 0) != h->header_sum)
        return DAMAGED(c, "header checksum mismatch (the file is damaged)");
    if (h->file_size > size)
        return DAMAGED(c, "truncated: the file has %" PRIu64 " bytes, its header records %" PRIu64,
                       size, h->file_size);
    if (h->file_size < size)
        return DAMAGED(c,
                       "the file has %" PRIu64 " bytes, its header records %" PRIu64
                       " (data was appended after its end)",
                       size, h->file_size);

    /* The regions in order: tensor frames, metadata, index, end of file. */
    if (h->meta_offset < DKH_CKPT_HEADER_SIZE || h->meta_offset > size ||
        h->meta_size > size - h->meta_offset)
        return DAMAGED(c,
                       "the metadata block (offset %" PRIu64 ", %" PRIu64 " bytes) lies "
                       "outside the file (%" PRIu64 " bytes)",
                       h->meta_offset, h->meta_size, size);
    if (h->meta_size > DKH_CKPT_MAX_META)
        return DAMAGED(c, "the metadata block has %" PRIu64 " bytes, more than the limit of %llu",
                       h->meta_size, DKH_CKPT_MAX_META);
    if (h->index_offset != h->meta_offset + h->meta_size)
        return DAMAGED(c,
                       "the index starts at offset %" PRIu64 ", not right after the metadata "
                       "block (%" PRIu64 ")",
                       h->index_offset, h->meta_offset + h->meta_size);
    if (h->index_size != size - h->index_offset)
        return DAMAGED(c,
                       "the index (offset %" PRIu64 ", %" PRIu64 " bytes) does not end at the "
                       "end of the file (%" PRIu64 " bytes)",
                       h->index_offset, h->index_size, size);
    if (h->index_size > DKH_CKPT_MAX_INDEX)
        return DAMAGED(c, "the index has %" PRIu64 " bytes, more than the limit of %llu",
                       h->index_size, DKH_CKPT_MAX_INDEX);
    if (h->count > DKH_CKPT_MAX_TENSORS || h->count > h->index_size / (DKH_CKPT_ENTRY_FIXED + 1))
        return DAMAGED(c,
                       "the header records %" PRIu64 " tensors, more than its %" PRIu64
                       "-byte index can hold",
                       h->count, h->index_size);
    return DK_OK;
}

/* ---- metadata ---------------------------------------------------------------------- */

static dk_status read_meta(dkh_ckpt *c)
{
    const dkh_ckpt_header *h = &c->h;
    c->meta = malloc((size_t)h->meta_size + 1);
    if (!c->meta)
        return bad(c, DK_ERR_NOMEM, "out of memory reading %" PRIu64 " bytes of metadata",
                   h->meta_size);
    DK_TRY(read_at(c, h->meta_offset, (size_t)h->meta_size, c->meta));
    c->meta[h->meta_size] = '\0';
    if (dkh_xxh64(c->meta, (size_t)h->meta_size, 0) != h->meta_sum)
        return DAMAGED(c, "metadata checksum mismatch (the file is damaged)");
    if (!dkh_ckpt_text_ok(c->meta, (size_t)h->meta_size))
        return DAMAGED(c, "the metadata is not UTF-8 text");
    return DK_OK;
}

/* ---- index ------------------------------------------------------------------------- */

/* Appends "(2, 3)" to b. */
static void put_shape(dkh_buf *b, int ndim, const int64_t *shape)
{
    dkh_buf_putc(b, '(');
    for (int d = 0; d < ndim; d++)
        dkh_buf_printf(b, "%s%" PRId64, d ? ", " : "", shape[d]);
    dkh_buf_puts(b, ndim == 1 ? ",)" : ")");
}

/* Parses and checks entry i at index byte *pos; advances *pos. *data_end is
 * where the previous frame ended: frames follow each other without gaps. */
static dk_status parse_entry(dkh_ckpt *c, size_t i, size_t *pos, uint64_t *data_end,
                             char **name_out)
{
    const uint8_t *p = c->index + *pos;
    const size_t left = (size_t)c->h.index_size - *pos;
    dkh_ckpt_entry *e = &c->entries[i];
    if (left < DKH_CKPT_ENTRY_FIXED)
        return DAMAGED(c,
                       "index entry %zu is cut short (%zu bytes left, an entry needs at "
                       "least %d)",
                       i, left, DKH_CKPT_ENTRY_FIXED);
    uint32_t name_len = dkh_le_get32(p), ndim = dkh_le_get32(p + 4);
    if (name_len == 0 || name_len > DKH_CKPT_MAX_NAME)
        return DAMAGED(c, "index entry %zu: name length %" PRIu32 " is outside [1, %u]", i,
                       name_len, DKH_CKPT_MAX_NAME);
    if (ndim > DK_MAX_DIMS)
        return DAMAGED(c, "index entry %zu: %" PRIu32 " dimensions, more than %d", i, ndim,
                       DK_MAX_DIMS);
    size_t need = DKH_CKPT_ENTRY_FIXED + 8 * (size_t)ndim + name_len;
    if (left < need)
        return DAMAGED(c, "index entry %zu is cut short (%zu bytes left, it needs %zu)", i, left,
                       need);
    /* The name first, so later messages can say which tensor is wrong. */
    const char *name_bytes = (const char *)p + DKH_CKPT_ENTRY_FIXED + 8 * ndim;
    if (!dkh_ckpt_text_ok(name_bytes, name_len))
        return DAMAGED(c, "index entry %zu: the name is not UTF-8 text", i);
    char *name = *name_out;
    memcpy(name, name_bytes, name_len);
    name[name_len] = '\0';
    *name_out += name_len + 1;
    e->name = name;
    e->name_len = name_len;
    e->ndim = (int)ndim;

    e->dtype = dkh_ckpt_dtype_decode(p + 8);
    if (e->dtype == DK_DTYPE_COUNT)
        return DAMAGED(c, "tensor '%s' (index entry %zu): unknown dtype '%.8s'", name, i,
                       (const char *)(p + 8));
    e->offset = dkh_le_get64(p + 16);
    e->comp_size = dkh_le_get64(p + 24);
    e->raw_size = dkh_le_get64(p + 32);
    e->sum = dkh_le_get64(p + 40);
    for (uint32_t d = 0; d < ndim; d++)
        e->shape[d] = (int64_t)dkh_le_get64(p + DKH_CKPT_ENTRY_FIXED + 8 * d);
    uint64_t nbytes;
    if (!dkh_ckpt_nbytes(e->ndim, e->shape, dkh_ckpt_dtype_size(e->dtype), &nbytes)) {
        dkh_buf b = DKH_BUF_INIT;
        put_shape(&b, e->ndim, e->shape);
        dk_status s =
            DAMAGED(c, "tensor '%s' (index entry %zu): invalid shape %s", name, i, dkh_buf_str(&b));
        dkh_buf_fini(&b);
        return s;
    }
    if (nbytes != e->raw_size)
        return DAMAGED(c,
                       "tensor '%s' (index entry %zu): raw size %" PRIu64 " bytes does not "
                       "match its shape and dtype (%" PRIu64 " bytes)",
                       name, i, e->raw_size, nbytes);
    if (e->offset != *data_end)
        return DAMAGED(c,
                       "tensor '%s' (index entry %zu): data offset %" PRIu64 " should be "
                       "%" PRIu64 " (right after the previous frame)",
                       name, i, e->offset, *data_end);
    if (e->comp_size == 0 || e->comp_size > c->h.meta_offset - e->offset)
        return DAMAGED(c,
                       "tensor '%s' (index entry %zu): its %" PRIu64 "-byte frame at offset "
                       "%" PRIu64 " does not fit before the metadata block (offset %" PRIu64 ")",
                       name, i, e->comp_size, e->offset, c->h.meta_offset);
    *data_end = e->offset + e->comp_size;
    bool added;
    DK_TRY(dkh_name_set_add(&c->by_name, name, i, &added));
    if (!added)
        return DAMAGED(c,
                       "tensor name '%s' appears twice in the index (entries %" PRId64 " and %zu)",
                       name, dkh_name_set_find(&c->by_name, name), i);
    *pos += need;
    return DK_OK;
}

static dk_status read_index(dkh_ckpt *c)
{
    const dkh_ckpt_header *h = &c->h;
    DK_TRY(read_new(c, h->index_offset, (size_t)h->index_size, &c->index));
    if (dkh_xxh64(c->index, (size_t)h->index_size, 0) != h->index_sum)
        return DAMAGED(c, "index checksum mismatch (the file is damaged)");
    /* count and every name length are bounded by the index size (checked). */
    c->entries = calloc(h->count ? (size_t)h->count : 1, sizeof *c->entries);
    c->names = malloc((size_t)h->index_size + 1);
    if (!c->entries || !c->names)
        return bad(c, DK_ERR_NOMEM, "out of memory reading an index of %" PRIu64 " tensors",
                   h->count);
    size_t pos = 0;
    uint64_t data_end = DKH_CKPT_HEADER_SIZE;
    char *names = c->names;
    for (size_t i = 0; i < h->count; i++)
        DK_TRY(parse_entry(c, i, &pos, &data_end, &names));
    if (pos != h->index_size)
        return DAMAGED(c, "the index has %" PRIu64 " bytes after its %" PRIu64 " entries",
                       h->index_size - pos, h->count);
    if (data_end != h->meta_offset)
        return DAMAGED(c, "%" PRIu64 " bytes before the metadata block belong to no tensor",
                       h->meta_offset - data_end);
    return DK_OK;
}

/* ---- open / close ------------------------------------------------------------------ */

static dk_status new_ckpt(const char *path, dkh_ckpt **out)
{
    dkh_ckpt *c = calloc(1, sizeof *c);
    char *p = c ? strdup(path) : NULL;
    if (!p) {
        free(c);
        return dk_fail(DK_ERR_NOMEM, "checkpoint %s: out of memory", path);
    }
    c->path = p;
    c->fd = -1;
    *out = c;
    return DK_OK;
}

static dk_status validate(dkh_ckpt *c)
{
    DK_TRY(check_header(c));
    DK_TRY(read_meta(c));
    return read_index(c);
}

/* Validates c and hands it over, or frees it. */
static dk_status finish_open(dkh_ckpt *c, dkh_ckpt **out)
{
    dk_status s = validate(c);
    if (s != DK_OK) {
        dkh_ckpt_close(c);
        return s;
    }
    *out = c;
    return DK_OK;
}

dk_status dkh_ckpt_open(const char *path, dkh_ckpt **out)
{
    if (!path || !out)
        return dk_fail(DK_ERR_ARG, "dkh_ckpt_open: NULL argument");
    *out = NULL;
    dkh_ckpt *c = NULL;
    DK_TRY(new_ckpt(path, &c));
    /* Non-blocking so a FIFO cannot hang the open; it is refused below. */
    c->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (c->fd < 0 || fstat(c->fd, &st) != 0) {
        int e = errno;
        dk_status s = bad(c, e == ENOENT ? DK_ERR_NOT_FOUND : DK_ERR_IO, "%s", strerror(e));
        dkh_ckpt_close(c);
        return s;
    }
    if (!S_ISREG(st.st_mode)) {
        dk_status s = DAMAGED(c, "not a regular file");
        dkh_ckpt_close(c);
        return s;
    }
    c->size = (uint64_t)st.st_size;
    return finish_open(c, out);
}

dk_status dkh_ckpt_open_mem(const void *data, size_t size, const char *name, dkh_ckpt **out)
{
    if ((!data && size) || !out)
        return dk_fail(DK_ERR_ARG, "dkh_ckpt_open_mem: NULL argument");
    *out = NULL;
    dkh_ckpt *c = NULL;
    DK_TRY(new_ckpt(name ? name : "<memory>", &c));
    static const uint8_t nothing[1];
    c->mem = data ? data : nothing;
    c->size = size;
    return finish_open(c, out);
}

void dkh_ckpt_close(dkh_ckpt *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    ZSTD_freeDCtx(c->dctx);
    dkh_name_set_fini(&c->by_name);
    free(c->scratch);
    free(c->entries);
    free(c->names);
    free(c->index);
    free(c->meta);
    free(c->path);
    free(c);
}

/* ---- accessors --------------------------------------------------------------------- */

const char *dkh_ckpt_meta(const dkh_ckpt *c)
{
    return c->meta;
}

int64_t dkh_ckpt_iteration(const dkh_ckpt *c)
{
    return c->h.iteration < 0 ? -1 : c->h.iteration;
}

const char *dkh_ckpt_path(const dkh_ckpt *c)
{
    return c->path;
}

uint64_t dkh_ckpt_file_size(const dkh_ckpt *c)
{
    return c->size;
}

size_t dkh_ckpt_count(const dkh_ckpt *c)
{
    return (size_t)c->h.count;
}

static const dkh_ckpt_entry *entry(const dkh_ckpt *c, size_t i)
{
    DKH_ASSERT(i < c->h.count);
    return &c->entries[i];
}

const char *dkh_ckpt_name(const dkh_ckpt *c, size_t i)
{
    return entry(c, i)->name;
}

dk_dtype dkh_ckpt_dtype(const dkh_ckpt *c, size_t i)
{
    return entry(c, i)->dtype;
}

int dkh_ckpt_shape(const dkh_ckpt *c, size_t i, int64_t *shape)
{
    const dkh_ckpt_entry *e = entry(c, i);
    memcpy(shape, e->shape, (size_t)e->ndim * sizeof *shape);
    return e->ndim;
}

uint64_t dkh_ckpt_raw_size(const dkh_ckpt *c, size_t i)
{
    return entry(c, i)->raw_size;
}

uint64_t dkh_ckpt_compressed_size(const dkh_ckpt *c, size_t i)
{
    return entry(c, i)->comp_size;
}

int64_t dkh_ckpt_find(const dkh_ckpt *c, const char *name)
{
    return dkh_name_set_find(&c->by_name, name);
}

/* ---- tensor data ------------------------------------------------------------------- */

DK_PRINTF(4, 5)
static dk_status tensor_bad(const dkh_ckpt *c, const dkh_ckpt_entry *e, size_t i, const char *fmt,
                            ...)
{
    dkh_buf b = DKH_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    dkh_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    dk_status s = DAMAGED(c, "tensor '%s' (index entry %zu): %s", e->name, i, dkh_buf_str(&b));
    dkh_buf_fini(&b);
    return s;
}

/* Decompresses a checked frame, chunk by chunk, into nowhere: only its size
 * and integrity matter. Memory use does not depend on what the index claims. */
static dk_status drain(dkh_ckpt *c, const dkh_ckpt_entry *e, size_t i, const uint8_t *src)
{
    if (!c->scratch && !(c->scratch = malloc(SCRATCH_SIZE)))
        return bad(c, DK_ERR_NOMEM, "out of memory");
    ZSTD_DCtx_reset(c->dctx, ZSTD_reset_session_only);
    ZSTD_inBuffer in = {src, (size_t)e->comp_size, 0};
    uint64_t total = 0;
    size_t ret = 1;
    while (ret != 0) {
        ZSTD_outBuffer out = {c->scratch, SCRATCH_SIZE, 0};
        size_t in_before = in.pos;
        ret = ZSTD_decompressStream(c->dctx, &out, &in);
        if (ZSTD_isError(ret))
            return tensor_bad(c, e, i, "zstd: %s", ZSTD_getErrorName(ret));
        total += out.pos;
        if (total > e->raw_size)
            return tensor_bad(c, e, i,
                              "decompresses to more than the %" PRIu64 " bytes its "
                              "index records",
                              e->raw_size);
        if (ret != 0 && in.pos == in_before && out.pos == 0)
            return tensor_bad(c, e, i, "the zstd frame ends early");
    }
    if (in.pos != in.size || total != e->raw_size)
        return tensor_bad(c, e, i, "decompressed to %" PRIu64 " bytes, the index records %" PRIu64,
                          total, e->raw_size);
    return DK_OK;
}

static dk_status decode_frame(dkh_ckpt *c, const dkh_ckpt_entry *e, size_t i, const uint8_t *src,
                              void *dst)
{
    size_t comp = (size_t)e->comp_size;
    if (dkh_xxh64(src, comp, 0) != e->sum)
        return tensor_bad(c, e, i, "data checksum mismatch (the file is damaged)");
    /* The checksum matched, so the writer made these bytes, unless the
     * index itself was forged: keep checking what zstd is given. */
    size_t frame = ZSTD_findFrameCompressedSize(src, comp);
    if (ZSTD_isError(frame) || frame != comp)
        return tensor_bad(c, e, i, "its %zu bytes are not one zstd frame", comp);
    unsigned long long content = ZSTD_getFrameContentSize(src, comp);
    if (content == ZSTD_CONTENTSIZE_UNKNOWN || content == ZSTD_CONTENTSIZE_ERROR ||
        content != e->raw_size)
        return tensor_bad(c, e, i,
                          "the zstd frame does not declare the %" PRIu64 " bytes its "
                          "index records",
                          e->raw_size);
    if (!c->dctx && !(c->dctx = ZSTD_createDCtx()))
        return bad(c, DK_ERR_NOMEM, "out of memory creating a zstd decoder");
    if (!dst)
        return drain(c, e, i, src);
    size_t got = ZSTD_decompressDCtx(c->dctx, dst, (size_t)e->raw_size, src, comp);
    if (ZSTD_isError(got))
        return tensor_bad(c, e, i, "zstd: %s", ZSTD_getErrorName(got));
    if (got != e->raw_size)
        return tensor_bad(c, e, i, "decompressed to %zu bytes, the index records %" PRIu64, got,
                          e->raw_size);
    return DK_OK;
}

dk_status dkh_ckpt_decode(dkh_ckpt *c, size_t i, void *dst)
{
    if (!c || i >= c->h.count)
        return dk_fail(DK_ERR_ARG, "checkpoint %s: no tensor %zu (it has %" PRIu64 ")",
                       c ? c->path : "?", i, c ? c->h.count : 0);
    const dkh_ckpt_entry *e = &c->entries[i];
    if (c->mem)
        return decode_frame(c, e, i, c->mem + e->offset, dst);
    /* comp_size lies inside the file (checked at open), so it is allocatable. */
    uint8_t *src = NULL;
    DK_TRY(read_new(c, e->offset, (size_t)e->comp_size, &src));
    dk_status s = decode_frame(c, e, i, src, dst);
    free(src);
    return s;
}

dk_status dkh_ckpt_verify_tensor(dkh_ckpt *c, size_t i)
{
    return dkh_ckpt_decode(c, i, NULL);
}

dk_status dkh_ckpt_verify(dkh_ckpt *c)
{
    if (!c)
        return dk_fail(DK_ERR_ARG, "dkh_ckpt_verify: NULL checkpoint");
    for (size_t i = 0; i < c->h.count; i++)
        DK_TRY(dkh_ckpt_verify_tensor(c, i));
    return DK_OK;
}
