/* core/ckpt/writer.c — writing a checkpoint so that a crash never loses the
 * previous one.
 *
 * Everything goes to "<path>.tmp.<pid>" next to path: tensor frames as they
 * are added, then the metadata, the index and finally the header, whose
 * checksum makes a half-written file unmistakable. Commit fsyncs the file,
 * renames it over path (atomic within a directory) and fsyncs the directory
 * so the rename itself survives a power cut. Until that rename, path still
 * names the previous checkpoint.
 */
#include "ckpt_impl.h"

#include "../cfg/cfg.h"
#include "../tensor/tensor_impl.h"
#include "../util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

/* zstd level 1: float weights barely compress at any level, and level 1
 * moves hundreds of MB/s, so saving never stalls training for long. */
#define ZSTD_LEVEL 1

struct dkh_ckpt_writer {
    char *path;
    char *tmp;
    int fd;
    uint64_t end; /* where the next frame goes */
    char *meta;   /* NULL until dkh_ckpt_writer_meta */
    size_t meta_len;
    int64_t iteration;
    dkh_ckpt_entry *entries;
    size_t n, cap;
    dkh_name_set names;
    ZSTD_CCtx *cctx;
    bool broken; /* a write failed: only abort is left */
};

/* ---- fault injection ------------------------------------------------------------------- */

static int64_t fault_budget = -1; /* bytes left before the injected failure; < 0: off */
static int fault_errno;

void dkh_ckpt_fail_writes_after(int64_t after_bytes, int err)
{
    fault_budget = after_bytes;
    fault_errno = err;
}

/* ---- I/O --------------------------------------------------------------------------- */

DK_PRINTF(3, 4)
static dk_status fail(dkh_ckpt_writer *w, dk_status s, const char *fmt, ...)
{
    dkh_buf b = DKH_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    dkh_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    dk_fail(s, "checkpoint %s: %s", w->path, dkh_buf_str(&b));
    dkh_buf_fini(&b);
    return s;
}

/* Writes all n bytes at off; a failure makes the writer unusable. */
static dk_status write_at(dkh_ckpt_writer *w, const void *p, size_t n, uint64_t off)
{
    size_t done = 0;
    while (done < n) {
        size_t want = n - done;
        int err = 0;
        if (fault_budget >= 0 && (uint64_t)fault_budget < want) {
            want = (size_t)fault_budget;
            err = fault_errno;
        }
        ssize_t r = want ? pwrite(w->fd, (const char *)p + done, want, (off_t)(off + done)) : 0;
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || (r == 0 && !err))
            err = r < 0 ? errno : EIO;
        if (r > 0) {
            done += (size_t)r;
            if (fault_budget >= 0)
                fault_budget -= r;
        }
        if (err && (r <= 0 || (size_t)r == want)) {
            w->broken = true;
            return fail(w, DK_ERR_IO, "writing %s failed: %s", w->tmp, strerror(err));
        }
    }
    return DK_OK;
}

/* ---- open -------------------------------------------------------------------------- */

/* Splits path into its directory ("." when none) and base name. New strings. */
static void split_path(const char *path, char **dir, char **base)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        *dir = dkh_strdup(".");
        *base = dkh_strdup(path);
    } else {
        *dir = slash == path ? dkh_strdup("/") : dkh_asprintf("%.*s", (int)(slash - path), path);
        *base = dkh_strdup(slash + 1);
    }
}

dk_status dkh_ckpt_writer_open(const char *path, dkh_ckpt_writer **out)
{
    if (!path || !out)
        return dk_fail(DK_ERR_ARG, "dkh_ckpt_writer_open: NULL argument");
    *out = NULL;
    char *dir, *base;
    split_path(path, &dir, &base);
    if (!*base || path[strlen(path) - 1] == '/') {
        free(dir);
        free(base);
        return dk_fail(DK_ERR_ARG, "checkpoint %s: the path names a directory, not a file", path);
    }
    dkh_ckpt_clean_stale(dir, base);
    free(dir);
    free(base);

    dkh_ckpt_writer *w = calloc(1, sizeof *w);
    if (!w)
        return dk_fail(DK_ERR_NOMEM, "checkpoint %s: out of memory", path);
    w->path = dkh_strdup(path);
    w->tmp = dkh_asprintf("%s.tmp.%ld", path, (long)getpid());
    w->end = DKH_CKPT_HEADER_SIZE;
    w->iteration = -1;
    w->fd = -1;
    w->cctx = ZSTD_createCCtx();
    if (!w->cctx) {
        dkh_ckpt_writer_abort(w);
        return dk_fail(DK_ERR_NOMEM, "checkpoint %s: out of memory creating a zstd encoder", path);
    }
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, ZSTD_LEVEL);
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        dk_status s = fail(w, DK_ERR_IO, "cannot create %s: %s", w->tmp, strerror(errno));
        free(w->tmp);
        w->tmp = NULL; /* not ours to remove */
        dkh_ckpt_writer_abort(w);
        return s;
    }
    *out = w;
    return DK_OK;
}

/* ---- metadata ---------------------------------------------------------------------- */

dk_status dkh_ckpt_writer_meta(dkh_ckpt_writer *w, const char *yaml_text)
{
    if (!w || !yaml_text)
        return dk_fail(DK_ERR_ARG, "dkh_ckpt_writer_meta: NULL argument");
    if (w->meta)
        return fail(w, DK_ERR_ARG, "the metadata was already set (it is written once)");
    size_t n = strlen(yaml_text);
    if (n > DKH_CKPT_MAX_META)
        return fail(w, DK_ERR_ARG, "the metadata has %zu bytes, more than the limit of %llu", n,
                    DKH_CKPT_MAX_META);
    if (!dkh_ckpt_text_ok(yaml_text, n))
        return fail(w, DK_ERR_ARG, "the metadata is not UTF-8 text");
    /* Parsed once here so a reader never has to: a malformed document is
     * the caller's bug, and the iteration goes into the fixed header. */
    dk_cfg *root = NULL;
    if (dkh_cfg_parse(yaml_text, "<checkpoint metadata>", &root) != DK_OK) {
        dk_error_prefix("checkpoint %s: the metadata is not valid YAML", w->path);
        return DK_ERR_ARG;
    }
    int64_t iteration = -1;
    const dk_cfg *it = dk_cfg_kind_of(root) == DK_CFG_MAP ? dk_cfg_get(root, "iteration") : NULL;
    if (dk_cfg_kind_of(it) != DK_CFG_INT || dk_cfg_get_int(it, NULL, &iteration) != DK_OK)
        iteration = -1;
    dkh_cfg_free(root);
    w->iteration = iteration < 0 ? -1 : iteration;
    w->meta = dkh_strdup(yaml_text);
    w->meta_len = n;
    return DK_OK;
}

/* ---- tensors ----------------------------------------------------------------------- */

static dk_status check_name(dkh_ckpt_writer *w, const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > DKH_CKPT_MAX_NAME)
        return fail(w, DK_ERR_ARG, "tensor name '%.64s' has %zu bytes; names have 1 to %u", name, n,
                    DKH_CKPT_MAX_NAME);
    if (!dkh_ckpt_text_ok(name, n))
        return fail(w, DK_ERR_ARG, "tensor name '%s' is not UTF-8 text", name);
    if (dkh_name_set_find(&w->names, name) >= 0)
        return fail(w, DK_ERR_ARG, "tensor name '%s' was already added", name);
    return DK_OK;
}

/* The values of t in C order on the CPU: t's own bytes when they already are,
 * else a new copy in *owned (free it). */
static dk_status host_values(dkh_ckpt_writer *w, const char *name, const dk_tensor *t,
                             size_t nbytes, const void **values, void **owned)
{
    *owned = NULL;
    if (t->storage->device.type == DK_DEVICE_CPU && dk_tensor_is_contiguous(t)) {
        *values = dkh_base(t);
        return DK_OK;
    }
    void *buf = malloc(nbytes ? nbytes : 1);
    if (!buf)
        return fail(w, DK_ERR_NOMEM, "tensor '%s': out of memory copying %zu bytes", name, nbytes);
    dk_status s;
    if (t->storage->device.type == DK_DEVICE_CPU) {
        s = dk_tensor_to_host(t, buf, nbytes);
    } else {
        /* Through dk_to, outside the tape and in a scope of our own. */
        bool was = dk_grad_set_enabled(false);
        dk_scope_begin();
        dk_tensor *h = dk_to((dk_tensor *)t, DK_CPU);
        s = h ? dk_tensor_to_host(h, buf, nbytes) : dk_last_status();
        dk_scope_end();
        dk_grad_set_enabled(was);
    }
    if (s != DK_OK) {
        free(buf);
        dk_error_prefix("checkpoint %s: tensor '%s'", w->path, name);
        return s;
    }
    *values = buf;
    *owned = buf;
    return DK_OK;
}

static dk_status append_entry(dkh_ckpt_writer *w, const dkh_ckpt_entry *e)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        dkh_ckpt_entry *p = realloc(w->entries, cap * sizeof *p);
        if (!p)
            return fail(w, DK_ERR_NOMEM, "out of memory adding tensor '%s'", e->name);
        w->entries = p;
        w->cap = cap;
    }
    w->entries[w->n] = *e;
    bool added;
    DK_TRY(dkh_name_set_add(&w->names, w->entries[w->n].name, w->n, &added));
    w->n++;
    return DK_OK;
}

dk_status dkh_ckpt_writer_add(dkh_ckpt_writer *w, const char *name, const dk_tensor *t)
{
    if (!w || !name || !t)
        return dk_fail(DK_ERR_ARG, "dkh_ckpt_writer_add: NULL argument");
    if (w->broken)
        return fail(w, DK_ERR_IO, "an earlier write failed; the checkpoint must be aborted");
    DK_TRY(check_name(w, name));
    if (w->n >= DKH_CKPT_MAX_TENSORS)
        return fail(w, DK_ERR_ARG, "more than %llu tensors", DKH_CKPT_MAX_TENSORS);
    dkh_ckpt_entry e = {.dtype = t->dtype, .ndim = t->ndim, .offset = w->end};
    memcpy(e.shape, t->shape, sizeof e.shape);
    size_t esize = dkh_ckpt_dtype_size(t->dtype);
    if (!esize || !dkh_ckpt_nbytes(t->ndim, t->shape, esize, &e.raw_size))
        return fail(w, DK_ERR_ARG, "tensor '%s' has an invalid dtype or shape", name);

    const void *values = NULL;
    void *owned = NULL;
    DK_TRY(host_values(w, name, t, (size_t)e.raw_size, &values, &owned));
    size_t bound = ZSTD_compressBound((size_t)e.raw_size);
    void *frame = malloc(bound);
    if (!frame) {
        free(owned);
        return fail(w, DK_ERR_NOMEM, "tensor '%s': out of memory compressing %" PRIu64 " bytes",
                    name, e.raw_size);
    }
    size_t comp = ZSTD_compress2(w->cctx, frame, bound, values ? values : "", (size_t)e.raw_size);
    free(owned);
    dk_status s = DK_OK;
    if (ZSTD_isError(comp))
        s = fail(w, DK_ERR_RUNTIME, "tensor '%s': zstd: %s", name, ZSTD_getErrorName(comp));
    if (s == DK_OK) {
        e.comp_size = comp;
        e.sum = dkh_xxh64(frame, comp, 0);
        s = write_at(w, frame, comp, w->end);
    }
    free(frame);
    DK_TRY(s);
    e.name = dkh_strdup(name);
    e.name_len = (uint32_t)strlen(name);
    s = append_entry(w, &e);
    if (s != DK_OK) {
        free(e.name);
        w->broken = true;
        return s;
    }
    w->end += comp;
    return DK_OK;
}

/* ---- commit / abort ---------------------------------------------------------------- */

/* Metadata, index and header, in that order: the header goes last so a file
 * cut short anywhere before it has no valid header at all. */
static dk_status write_tail(dkh_ckpt_writer *w)
{
    dkh_ckpt_header h = {
        .version = DKH_CKPT_VERSION,
        .header_size = DKH_CKPT_HEADER_SIZE,
        .count = w->n,
        .iteration = w->iteration,
        .meta_offset = w->end,
        .meta_size = w->meta_len,
        .meta_sum = dkh_xxh64(w->meta, w->meta_len, 0),
    };
    DK_TRY(write_at(w, w->meta, w->meta_len, h.meta_offset));
    size_t index_size = 0;
    for (size_t i = 0; i < w->n; i++)
        index_size += dkh_ckpt_entry_size(&w->entries[i]);
    uint8_t *index = malloc(index_size ? index_size : 1);
    if (!index)
        return fail(w, DK_ERR_NOMEM, "out of memory building an index of %zu tensors", w->n);
    uint8_t *p = index;
    for (size_t i = 0; i < w->n; i++) {
        dkh_ckpt_entry_encode(&w->entries[i], p);
        p += dkh_ckpt_entry_size(&w->entries[i]);
    }
    h.index_offset = h.meta_offset + h.meta_size;
    h.index_size = index_size;
    h.index_sum = dkh_xxh64(index, index_size, 0);
    h.file_size = h.index_offset + index_size;
    dk_status s = write_at(w, index, index_size, h.index_offset);
    free(index);
    DK_TRY(s);
    uint8_t header[DKH_CKPT_HEADER_SIZE];
    dkh_ckpt_header_encode(&h, header);
    return write_at(w, header, sizeof header, 0);
}

static dk_status sync_dir(dkh_ckpt_writer *w)
{
    char *dir, *base;
    split_path(w->path, &dir, &base);
    free(base);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    dk_status s = DK_OK;
    if (fd < 0 || fsync(fd) != 0)
        s = fail(w, DK_ERR_IO, "written, but syncing its directory %s failed: %s", dir,
                 strerror(errno));
    if (fd >= 0)
        close(fd);
    free(dir);
    return s;
}

static dk_status commit(dkh_ckpt_writer *w)
{
    if (w->broken)
        return fail(w, DK_ERR_IO, "an earlier write failed; nothing was committed");
    if (!w->meta)
        return fail(w, DK_ERR_ARG,
                    "no metadata was set (dkh_ckpt_writer_meta); nothing was "
                    "committed");
    DK_TRY(write_tail(w));
    if (fsync(w->fd) != 0)
        return fail(w, DK_ERR_IO, "syncing %s failed: %s", w->tmp, strerror(errno));
    int fd = w->fd;
    w->fd = -1;
    if (close(fd) != 0)
        return fail(w, DK_ERR_IO, "closing %s failed: %s", w->tmp, strerror(errno));
    if (rename(w->tmp, w->path) != 0)
        return fail(w, DK_ERR_IO, "renaming %s over it failed: %s", w->tmp, strerror(errno));
    /* The temp name is gone now; abort must not remove anything. */
    free(w->tmp);
    w->tmp = NULL;
    return sync_dir(w);
}

dk_status dkh_ckpt_writer_commit(dkh_ckpt_writer *w)
{
    if (!w)
        return dk_fail(DK_ERR_ARG, "dkh_ckpt_writer_commit: NULL writer");
    dk_status s = commit(w);
    dkh_ckpt_writer_abort(w);
    return s;
}

void dkh_ckpt_writer_abort(dkh_ckpt_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp)
        unlink(w->tmp);
    for (size_t i = 0; i < w->n; i++)
        free(w->entries[i].name);
    free(w->entries);
    dkh_name_set_fini(&w->names);
    ZSTD_freeCCtx(w->cctx);
    free(w->meta);
    free(w->tmp);
    free(w->path);
    free(w);
}
