/* core/util/util.h — small helpers shared by every part of libdk.
 *
 * Growable string buffers (messages, YAML and JSON output), "did you mean"
 * suggestions, and the allocator's counters. Internal to libdk: names are
 * dkh_, nothing here is part of the plugin ABI.
 */
#ifndef DKH_UTIL_H
#define DKH_UTIL_H

#include <dk/types.h>
#include <dk/api.h>
#include <dk/log.h>
#include <dk/status.h>
#include <stdio.h>

/* Always-on invariant check for our own bugs (never for user input). */
#define DKH_ASSERT(cond)                                                        \
    do {                                                                        \
        if (!(cond))                                                            \
            dkh_assert_fail(#cond, __FILE__, __LINE__);                         \
    } while (0)
_Noreturn void dkh_assert_fail(const char *expr, const char *file, int line);

/* Counts changes of this thread's error message (every dk_fail, prefix and
 * clear), so a caller can tell whether the message changed since it last
 * looked without comparing text (module forwards name themselves once). */
uint64_t dkh_error_serial(void);

/* ---- exit codes ---------------------------------------------------------- */

/* dkhost's process exit codes (docs/cli.md, "Exit codes"). */
enum {
    DKH_EXIT_OK = 0,
    DKH_EXIT_RUNTIME = 1, /* training failed, diverged or was interrupted */
    DKH_EXIT_USAGE = 2,   /* bad command line or argument */
    DKH_EXIT_CONFIG = 3,  /* bad config */
    DKH_EXIT_PLUGIN = 4,  /* a plugin could not be loaded or registered */
    DKH_EXIT_DATA = 5,    /* a missing, unreadable or corrupt file */
};
/* The exit code for a failure with status s. */
int dkh_exit_code(dk_status s);

/* ---- string buffer ---------------------------------------------------- */

/* A growable NUL-terminated string. Zero-initialise (DKH_BUF_INIT) to start;
 * dkh_buf_fini frees. Allocation failure aborts: buffers hold messages and
 * small documents, and an out-of-memory there leaves nothing to report. */
typedef struct dkh_buf {
    char *data; /* NUL-terminated once anything was written; may be NULL before */
    size_t len;
    size_t cap;
} dkh_buf;

#define DKH_BUF_INIT {NULL, 0, 0}

void dkh_buf_fini(dkh_buf *b);
void dkh_buf_clear(dkh_buf *b);
void dkh_buf_putc(dkh_buf *b, char c);
void dkh_buf_puts(dkh_buf *b, const char *s);
void dkh_buf_putn(dkh_buf *b, const char *s, size_t n);
void dkh_buf_printf(dkh_buf *b, const char *fmt, ...) DK_PRINTF(2, 3);
void dkh_buf_vprintf(dkh_buf *b, const char *fmt, va_list ap);
/* Appends s as a JSON string literal, quotes included. */
void dkh_buf_json_str(dkh_buf *b, const char *s);
/* The text so far; "" when empty. Borrowed until the next write. */
const char *dkh_buf_str(const dkh_buf *b);
/* Hands the text over to the caller (free with free()); the buffer is reset. */
char *dkh_buf_take(dkh_buf *b);

/* ---- suggestions -------------------------------------------------------- */

/* Levenshtein distance, case-insensitive. */
size_t dkh_edit_distance(const char *a, const char *b);
/* The candidate closest to word if it is close enough to be a plausible typo
 * (distance <= max(2, len/3)), else NULL. Borrowed from cands. */
const char *dkh_closest(const char *word, const char *const *cands, size_t n);

/* ---- memory ------------------------------------------------------------- */

/* Bytes currently held through dk_malloc & co., and the high-water mark. */
size_t dkh_mem_current(void);
size_t dkh_mem_peak(void);
/* Fault injection for tests: the (n+1)-th dk_malloc from now fails, and every
 * later one too until reset with n < 0. */
void dkh_mem_fail_after(long n);

/* ---- strings --------------------------------------------------------------- */

/* strdup through plain malloc, aborting on failure (for host-internal copies). */
char *dkh_strdup(const char *s);
/* Formats into a new malloc'ed string; aborts on allocation failure. */
char *dkh_asprintf(const char *fmt, ...) DK_PRINTF(1, 2);

/* ---- logging ----------------------------------------------------------- */

/* Lines below `level` are dropped. Default DK_LOG_INFO. */
void dkh_log_set_level(dk_log_level level);
dk_log_level dkh_log_get_level(void);
/* Where log lines go: the terminal stream (default stderr) and optionally a
 * file (e.g. the run's log). Either may be NULL. Borrowed. */
void dkh_log_set_streams(FILE *terminal, FILE *file);
/* A text put before every line (e.g. "[rank 1] "), at most 31 bytes; NULL
 * or "" for none. Copied. */
void dkh_log_set_prefix(const char *prefix);
/* Parses "debug|info|warn|error". */
dk_status dkh_log_level_parse(const char *s, dk_log_level *out) DK_CHECK;

#endif /* DKH_UTIL_H */
