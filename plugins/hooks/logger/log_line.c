/* plugins/hooks/logger/log_line.c — formatting one text log line. */
#include "log_line.h"

#include "../common/clock.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *const log_line_train_lead[] = {"lr", "eta_s", "time", "data_time", "memory", NULL};
const char *const log_line_eval_lead[] = {"eta_s", "time", "data_time", NULL};

typedef struct strbuf {
    char *s;
    size_t len, cap;
    bool nomem;
} strbuf;

static void sb_printf(strbuf *b, const char *fmt, ...) DK_PRINTF(2, 3);

static void sb_printf(strbuf *b, const char *fmt, ...)
{
    if (b->nomem)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 128;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *p = dk_realloc(b->s, cap);
        if (!p) {
            b->nomem = true;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void item(strbuf *b, const scalar *v, bool *first)
{
    double x = window_value(v);
    const char *k = v->key;
    sb_printf(b, "%s", *first ? "  " : ", ");
    *first = false;
    if (!strcmp(k, "eta_s")) {
        char eta[48];
        clock_format(x, eta, sizeof eta);
        sb_printf(b, "eta: %s", eta);
    } else if (!strcmp(k, "lr") || !strncmp(k, "lr/", 3) || !strcmp(k, "momentum") ||
               !strncmp(k, "momentum/", 9)) {
        sb_printf(b, "%s: %.3e", k, x);
    } else if (!strcmp(k, "time") || !strcmp(k, "data_time")) {
        sb_printf(b, "%s: %.3f", k, x);
    } else if (!strcmp(k, "memory")) {
        sb_printf(b, "%s: %.0f", k, x);
    } else {
        sb_printf(b, "%s: %.4f", k, x);
    }
}

static bool in_lead(const char *const *lead, const char *key)
{
    for (size_t i = 0; lead && lead[i]; i++)
        if (!strcmp(lead[i], key))
            return true;
    return false;
}

char *log_line_format(const char *prefix, const scalar_window *w, const char *const *lead)
{
    strbuf b = {0};
    bool first = true;
    sb_printf(&b, "%s", prefix);
    for (size_t i = 0; lead && lead[i]; i++) {
        const scalar *v = window_find(w, lead[i]);
        if (v)
            item(&b, v, &first);
    }
    for (size_t i = 0; i < w->n; i++)
        if (!in_lead(lead, w->v[i].key))
            item(&b, &w->v[i], &first);
    if (b.nomem) {
        dk_free(b.s);
        return NULL;
    }
    return b.s;
}
