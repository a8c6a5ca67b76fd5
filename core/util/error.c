/* core/util/error.c — the thread-local error slot behind dk_fail and friends.
 *
 * Each thread keeps the status and message of its last failure. Context is
 * prefixed on the way up, so the slot grows into one readable line. The slot
 * is a plain malloc'ed string: an allocation failure while recording an error
 * falls back to a static message rather than losing the status.
 */
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATUS_NAME_(name, text) "DK_" #name,
#define STATUS_TEXT_(name, text) text,
static const char *const status_names[] = {DK_STATUS_LIST(STATUS_NAME_)};
static const char *const status_texts[] = {DK_STATUS_LIST(STATUS_TEXT_)};
#undef STATUS_NAME_
#undef STATUS_TEXT_

static _Thread_local dk_status last_status;
static _Thread_local char *last_message;
static _Thread_local uint64_t message_serial;

const char *dk_status_name(dk_status status)
{
    if ((unsigned)status >= DK_STATUS_COUNT)
        return "DK_ERR_UNKNOWN";
    return status_names[status];
}

const char *dk_status_str(dk_status status)
{
    if ((unsigned)status >= DK_STATUS_COUNT)
        return "unknown status";
    return status_texts[status];
}

static void set_message(char *msg)
{
    free(last_message);
    last_message = msg;
    message_serial++;
}

uint64_t dkh_error_serial(void)
{
    return message_serial;
}

dk_status dk_failv(dk_status status, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    char *msg = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (msg)
        vsnprintf(msg, (size_t)n + 1, fmt, ap);
    set_message(msg);
    last_status = status;
    return status;
}

dk_status dk_fail(dk_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dk_status s = dk_failv(status, fmt, ap);
    va_end(ap);
    return s;
}

void dk_error_prefixv(const char *fmt, va_list ap)
{
    dkh_buf b = DKH_BUF_INIT;
    dkh_buf_vprintf(&b, fmt, ap);
    dkh_buf_puts(&b, ": ");
    dkh_buf_puts(&b, last_message ? last_message : "");
    set_message(dkh_buf_take(&b));
}

void dk_error_prefix(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dk_error_prefixv(fmt, ap);
    va_end(ap);
}

const char *dk_last_error(void)
{
    if (last_message)
        return last_message;
    return last_status == DK_OK ? "" : dk_status_str(last_status);
}

dk_status dk_last_status(void)
{
    return last_status;
}

void dk_clear_error(void)
{
    set_message(NULL);
    last_status = DK_OK;
}

void dkh_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "dkhost: internal error: %s:%d: assertion '%s' failed; please report this\n",
            file, line, expr);
    abort();
}

int dkh_exit_code(dk_status s)
{
    switch (s) {
    case DK_OK: return DKH_EXIT_OK;
    case DK_ERR_CONFIG:
    case DK_ERR_PARSE: return DKH_EXIT_CONFIG;
    case DK_ERR_PLUGIN:
    case DK_ERR_ABI:
    case DK_ERR_DUPLICATE: return DKH_EXIT_PLUGIN;
    case DK_ERR_IO:
    case DK_ERR_NOT_FOUND: return DKH_EXIT_DATA;
    case DK_ERR_ARG: return DKH_EXIT_USAGE;
    default: return DKH_EXIT_RUNTIME;
    }
}
