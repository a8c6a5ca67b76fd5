/* core/ckpt/ckpt.h — the `.dkpt` checkpoint container.
 *
 * A checkpoint holds a metadata block (YAML text the caller writes: resolved
 * config, epoch, iteration, RNG states, class names, versions, environment)
 * and named tensors, each stored as its own zstd frame with a checksum, so a
 * loader reads, verifies and decompresses tensors independently.
 * docs/checkpoint-format.md describes the file byte by byte.
 *
 *     dkh_ckpt_writer *w;
 *     DK_TRY(dkh_ckpt_writer_open("work/iter_500.dkpt", &w));
 *     dk_status s = dkh_ckpt_writer_meta(w, "epoch: 3\niteration: 500\n");
 *     for (size_t k = 0; s == DK_OK && k < n; k++)
 *         s = dkh_ckpt_writer_add(w, names[k], tensors[k]);
 *     if (s != DK_OK) {
 *         dkh_ckpt_writer_abort(w);                 // the old file stays as it was
 *         return s;
 *     }
 *     DK_TRY(dkh_ckpt_writer_commit(w));            // atomically replaces the file
 *
 *     dkh_ckpt *c;
 *     DK_TRY(dkh_ckpt_open("work/iter_500.dkpt", &c));  // header, meta, index checked
 *     int64_t i = dkh_ckpt_find(c, "backbone.conv1.weight");
 *     dk_status s = i < 0 ? dk_fail(DK_ERR_NOT_FOUND, "...") : dkh_ckpt_read(c, (size_t)i, w);
 *     dkh_ckpt_close(c);
 *
 * Safety. Loading is pure data: nothing in a checkpoint is executed, and
 * every length, offset, count and size is checked against the file's size
 * and fixed limits before it is used, so a damaged or hostile file is
 * refused with a message instead of crashing or exhausting memory.
 *
 * Crash safety. The writer fills "<path>.tmp.<pid>" in the same directory,
 * fsyncs it, renames it over path and fsyncs the directory: a crash at any
 * moment leaves either the previous file or the new one, never a mix. Temp
 * files left by writers that died are removed by the next writer of the same
 * path and by dkh_ckpt_latest (only those whose process is gone).
 *
 * Errors. Every failure records a message that starts with
 * "checkpoint <path>: " and says what is wrong (and, for a tensor, names it).
 * Statuses: DK_ERR_NOT_FOUND (no such file), DK_ERR_IO (unreadable, damaged,
 * truncated, not a checkpoint, another format version, a failed write or
 * sync: ENOSPC, EIO), DK_ERR_ARG (misuse: bad name, duplicate name, meta twice
 * or missing), DK_ERR_SHAPE (read into a tensor of another dtype or shape),
 * DK_ERR_NOMEM, DK_ERR_UNSUPPORTED (reading into a non-contiguous tensor on a
 * device other than the CPU).
 *
 * Threads. A writer or a reader is used by one thread at a time; separate
 * objects may be used concurrently.
 */
#ifndef DKH_CKPT_H
#define DKH_CKPT_H

#include <dk/types.h>

#include <stdint.h>

/* ---- writing ----------------------------------------------------------------------- */

typedef struct dkh_ckpt_writer dkh_ckpt_writer;

/* Starts a checkpoint that will replace path on commit. Creates
 * "<path>.tmp.<pid>" (the directory must exist) and removes temp files of
 * path that dead processes left. *out is new: finish it with exactly one of
 * dkh_ckpt_writer_commit or dkh_ckpt_writer_abort. One writer per path at a
 * time in a process (they would share the temp file). */
dk_status dkh_ckpt_writer_open(const char *path, dkh_ckpt_writer **out) DK_CHECK;

/* Sets the metadata: YAML text (UTF-8, one document), copied. Exactly once,
 * before or after the tensors. Its top-level integer `iteration:` key, when
 * present, is also recorded in the header, where dkh_ckpt_latest reads it.
 * DK_ERR_ARG for a second call, invalid UTF-8 or invalid YAML. */
dk_status dkh_ckpt_writer_meta(dkh_ckpt_writer *w, const char *yaml_text) DK_CHECK;

/* Compresses t (any dtype and strides, any device; borrowed) and appends it
 * under name (non-empty UTF-8, at most 4096 bytes, unique in this file). The
 * values are stored in C order, as if t were contiguous. DK_ERR_ARG for a bad
 * or duplicate name (the writer stays usable); DK_ERR_IO when writing fails,
 * after which the writer only accepts abort. */
dk_status dkh_ckpt_writer_add(dkh_ckpt_writer *w, const char *name, const dk_tensor *t) DK_CHECK;

/* Writes the metadata and the index, fsyncs the file, renames it over path
 * and fsyncs the directory. Frees w whatever the result; on failure the temp
 * file is removed and path is left as it was (DK_ERR_ARG when no metadata
 * was set; DK_ERR_IO naming the path and the system's reason otherwise). */
dk_status dkh_ckpt_writer_commit(dkh_ckpt_writer *w) DK_CHECK;

/* Removes the temp file and frees w. NULL is a no-op. */
void dkh_ckpt_writer_abort(dkh_ckpt_writer *w);

/* Fault injection for tests: once checkpoint writers in this process have
 * written `after_bytes` more bytes, the next write stores what still fits and
 * fails with errno `err` (ENOSPC, EIO, ...), as a full or failing disk does.
 * A negative after_bytes turns it off. Process-wide, not thread-safe. */
void dkh_ckpt_fail_writes_after(int64_t after_bytes, int err);

/* ---- reading ----------------------------------------------------------------------- */

typedef struct dkh_ckpt dkh_ckpt;

/* Opens path and validates the header, the metadata and the whole index
 * (checksums, every offset and size, names, dtypes, shapes); tensor data is
 * only checked when read or verified. *out is new (dkh_ckpt_close). */
dk_status dkh_ckpt_open(const char *path, dkh_ckpt **out) DK_CHECK;

/* The same over size bytes at data (borrowed: they must outlive the
 * checkpoint). name stands for the file in messages. For tests and fuzzing. */
dk_status dkh_ckpt_open_mem(const void *data, size_t size, const char *name,
                            dkh_ckpt **out) DK_CHECK;

/* The metadata YAML text, NUL-terminated. Borrowed, valid until close. */
const char *dkh_ckpt_meta(const dkh_ckpt *c);
/* The iteration the header records (the metadata's top-level `iteration:`),
 * or -1 when the metadata had none. */
int64_t dkh_ckpt_iteration(const dkh_ckpt *c);
/* The path (or open_mem name) and the file's size in bytes. */
const char *dkh_ckpt_path(const dkh_ckpt *c);
uint64_t dkh_ckpt_file_size(const dkh_ckpt *c);

/* Tensors, in the order they were added. For i < dkh_ckpt_count(c): */
size_t dkh_ckpt_count(const dkh_ckpt *c);
/* Borrowed, valid until close. */
const char *dkh_ckpt_name(const dkh_ckpt *c, size_t i);
dk_dtype dkh_ckpt_dtype(const dkh_ckpt *c, size_t i);
/* Fills shape[0..ndim) (room for DK_MAX_DIMS) and returns ndim (0 for a scalar). */
int dkh_ckpt_shape(const dkh_ckpt *c, size_t i, int64_t *shape);
/* Bytes of the values (numel x dtype size) and of their zstd frame. */
uint64_t dkh_ckpt_raw_size(const dkh_ckpt *c, size_t i);
uint64_t dkh_ckpt_compressed_size(const dkh_ckpt *c, size_t i);
/* The index of the tensor called name, or -1 when there is none. */
int64_t dkh_ckpt_find(const dkh_ckpt *c, const char *name);

/* Reads tensor i into dst, which must have the same dtype and shape (any
 * strides; CPU, or a contiguous tensor on another device). Checks the data
 * checksum before decompressing and the decompressed size after; on failure
 * dst may hold partial values. */
dk_status dkh_ckpt_read(dkh_ckpt *c, size_t i, dk_tensor *dst) DK_CHECK;

/* Checks tensor i's checksum and decompresses it (into a small scratch
 * buffer, whatever its size), checking the size. */
dk_status dkh_ckpt_verify_tensor(dkh_ckpt *c, size_t i) DK_CHECK;
/* dkh_ckpt_verify_tensor for every tensor; stops at the first damaged one. */
dk_status dkh_ckpt_verify(dkh_ckpt *c) DK_CHECK;

/* NULL is a no-op. */
void dkh_ckpt_close(dkh_ckpt *c);

/* ---- directories ------------------------------------------------------------------- */

/* The newest intact checkpoint among dir's *.dkpt files: the highest
 * iteration the headers record (files without one come last), then the
 * latest modification time, then the greater name. Each candidate is opened
 * and fully verified, newest first; damaged ones are skipped with a warning
 * (dk_log) naming them and the reason. Temp files ("*.dkpt.tmp.<pid>") are
 * never candidates; those of dead processes are removed. *path is new
 * ("<dir>/<name>", free with free()). DK_ERR_NOT_FOUND when dir holds no
 * intact checkpoint (the message counts the damaged ones) or does not exist;
 * DK_ERR_IO when it cannot be read. */
dk_status dkh_ckpt_latest(const char *dir, char **path) DK_CHECK;

#endif /* DKH_CKPT_H */
