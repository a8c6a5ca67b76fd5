/* core/util/log.c — where dk_log lines go.
 *
 * One line per call, prefixed with a timestamp and level the way mmengine's
 * logger writes them, to the terminal stream and, once a run has a work dir,
 * to its log file too. The runner decides the file; libdk never opens one.
 */
#include "util.h"

#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static dk_log_level min_level = DK_LOG_INFO;
static FILE *term_stream;
static FILE *file_stream;
static bool term_set;
static char line_prefix[32]; /* "[rank 1] " on the other ranks of a distributed run */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[DK_LOG_LEVEL_COUNT] = {"DEBUG", "INFO", "WARNING", "ERROR"};

void dkh_log_set_level(dk_log_level level)
{
    min_level = level;
}

dk_log_level dkh_log_get_level(void)
{
    return min_level;
}

void dkh_log_set_streams(FILE *terminal, FILE *file)
{
    pthread_mutex_lock(&lock);
    term_stream = terminal;
    term_set = true;
    file_stream = file;
    pthread_mutex_unlock(&lock);
}

void dkh_log_set_prefix(const char *prefix)
{
    pthread_mutex_lock(&lock);
    snprintf(line_prefix, sizeof line_prefix, "%s", prefix ? prefix : "");
    pthread_mutex_unlock(&lock);
}

dk_status dkh_log_level_parse(const char *s, dk_log_level *out)
{
    static const char *const names[DK_LOG_LEVEL_COUNT] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < DK_LOG_LEVEL_COUNT; i++) {
        if (strcasecmp(s, names[i]) == 0) {
            *out = (dk_log_level)i;
            return DK_OK;
        }
    }
    return dk_fail(DK_ERR_ARG, "unknown log level '%s' (expected debug, info, warn or error)", s);
}

static void emit(FILE *f, const char *stamp, dk_log_level level, const char *line)
{
    fprintf(f, "%s%s - dkhost - %s - %s\n", line_prefix, stamp, level_names[level], line);
    fflush(f);
}

void dk_logv(dk_log_level level, const char *fmt, va_list ap)
{
    if ((unsigned)level >= DK_LOG_LEVEL_COUNT || level < min_level)
        return;
    dkh_buf line = DKH_BUF_INIT;
    dkh_buf_vprintf(&line, fmt, ap);
    while (line.len && line.data[line.len - 1] == '\n')
        line.data[--line.len] = '\0';

    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y/%m/%d %H:%M:%S", &tm);

    pthread_mutex_lock(&lock);
    FILE *term = term_set ? term_stream : stderr;
    if (term)
        emit(term, stamp, level, dkh_buf_str(&line));
    if (file_stream)
        emit(file_stream, stamp, level, dkh_buf_str(&line));
    pthread_mutex_unlock(&lock);
    dkh_buf_fini(&line);
}

void dk_log(dk_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dk_logv(level, fmt, ap);
    va_end(ap);
}
