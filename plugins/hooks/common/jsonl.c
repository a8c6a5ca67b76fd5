/* plugins/hooks/common/jsonl.c — building and appending JSON-lines records. */
#include "jsonl.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

dk_status jsonl_open(dk_runner *r, const char *who, int *fd, char **path)
{
    const char *dir = dk_runner_work_dir(r), *stamp = dk_runner_timestamp(r);
    if (!dir && stamp) { /* a rank of a distributed run that writes no files */
        *fd = -1;
        *path = NULL;
        return DK_OK;
    }
    if (!dir || !stamp)
        return dk_fail(DK_ERR_RUNTIME, "%s: the runner has no work dir to write the JSONL log to",
                       who);
    size_t n = strlen(dir) + strlen(stamp) + 8;
    char *p = dk_malloc(n);
    if (!p)
        return dk_fail(DK_ERR_NOMEM, "%s: out of memory", who);
    snprintf(p, n, "%s/%s.jsonl", dir, stamp);
    int f = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (f < 0) {
        dk_status s = dk_fail(DK_ERR_IO, "%s: cannot open %s: %s", who, p, strerror(errno));
        dk_free(p);
        return s;
    }
    *fd = f;
    *path = p;
    return DK_OK;
}

static void reserve(jsonl_rec *rec, size_t more)
{
    if (rec->nomem || rec->len + more + 1 <= rec->cap)
        return;
    size_t cap = rec->cap ? rec->cap : 256;
    while (cap < rec->len + more + 1)
        cap *= 2;
    char *b = dk_realloc(rec->buf, cap);
    if (!b) {
        rec->nomem = true;
        return;
    }
    rec->buf = b;
    rec->cap = cap;
}

static void put(jsonl_rec *rec, const char *s, size_t n)
{
    reserve(rec, n);
    if (rec->nomem)
        return;
    memcpy(rec->buf + rec->len, s, n);
    rec->len += n;
    rec->buf[rec->len] = '\0';
}

static void putf(jsonl_rec *rec, const char *fmt, ...) DK_PRINTF(2, 3);

static void putf(jsonl_rec *rec, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(rec, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void put_string(jsonl_rec *rec, const char *s)
{
    put(rec, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') {
            char esc[2] = {'\\', (char)*c};
            put(rec, esc, 2);
        } else if (*c < 0x20) {
            putf(rec, "\\u%04x", *c);
        } else {
            put(rec, (const char *)c, 1);
        }
    }
    put(rec, "\"", 1);
}

static void put_key(jsonl_rec *rec, const char *key)
{
    if (rec->len > 1)
        put(rec, ", ", 2);
    put_string(rec, key);
    put(rec, ": ", 2);
}

void jsonl_begin(jsonl_rec *rec)
{
    *rec = (jsonl_rec){0};
    put(rec, "{", 1);
}

void jsonl_str(jsonl_rec *rec, const char *key, const char *value)
{
    put_key(rec, key);
    put_string(rec, value);
}

void jsonl_int(jsonl_rec *rec, const char *key, int64_t value)
{
    put_key(rec, key);
    putf(rec, "%lld", (long long)value);
}

void jsonl_num(jsonl_rec *rec, const char *key, double value)
{
    put_key(rec, key);
    if (!isfinite(value)) {
        put(rec, "null", 4);
        return;
    }
    /* The shortest of 15 or 17 digits that reads back as the same double. */
    char tmp[40];
    snprintf(tmp, sizeof tmp, "%.15g", value);
    if (strtod(tmp, NULL) != value)
        snprintf(tmp, sizeof tmp, "%.17g", value);
    put(rec, tmp, strlen(tmp));
}

dk_status jsonl_write(jsonl_rec *rec, int fd, const char *path)
{
    put(rec, "}\n", 2);
    dk_status s = DK_OK;
    if (rec->nomem) {
        s = dk_fail(DK_ERR_NOMEM, "out of memory writing a record to %s", path);
    } else {
        size_t done = 0;
        while (done < rec->len) {
            ssize_t w = write(fd, rec->buf + done, rec->len - done);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                s = dk_fail(DK_ERR_IO, "cannot write to %s: %s", path,
                            w < 0 ? strerror(errno) : "no space written");
                break;
            }
            done += (size_t)w;
        }
    }
    dk_free(rec->buf);
    *rec = (jsonl_rec){0};
    return s;
}
