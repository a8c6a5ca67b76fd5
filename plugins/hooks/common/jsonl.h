/* plugins/hooks/common/jsonl.h — the run's JSON-lines scalar file.
 *
 * Every hook that records scalars appends to <work_dir>/<timestamp>.jsonl,
 * one object per line. Each hook opens the file itself with O_APPEND and
 * writes each record with a single write(), so records of different hooks
 * never interleave and a reader sees every record as soon as it is written.
 *
 *     jsonl_rec rec;
 *     jsonl_begin(&rec);
 *     jsonl_str(&rec, "mode", "train");
 *     jsonl_int(&rec, "iter", 100);
 *     jsonl_num(&rec, "loss", 0.4321);
 *     DK_TRY(jsonl_write(&rec, fd, path));   // also frees the record
 */
#ifndef DK_HOOKS_JSONL_H
#define DK_HOOKS_JSONL_H

#include <dk/dk.h>

typedef struct jsonl_rec {
    char *buf;
    size_t len, cap;
    bool nomem; /* a growth failed: jsonl_write reports it */
} jsonl_rec;

/* Opens (creating) <work_dir>/<timestamp>.jsonl for appending. *path is new
 * (dk_free). `who` names the hook in error messages. On a rank of a
 * distributed run that writes no files (no work dir), *fd is -1 and *path
 * NULL: the caller writes nothing. */
dk_status jsonl_open(dk_runner *r, const char *who, int *fd, char **path) DK_CHECK;

void jsonl_begin(jsonl_rec *rec);
void jsonl_str(jsonl_rec *rec, const char *key, const char *value);
void jsonl_int(jsonl_rec *rec, const char *key, int64_t value);
/* Non-finite values are written as null: JSON has no NaN. */
void jsonl_num(jsonl_rec *rec, const char *key, double value);

/* Closes the object, writes it as one line to fd and frees the record. */
dk_status jsonl_write(jsonl_rec *rec, int fd, const char *path) DK_CHECK;

#endif
