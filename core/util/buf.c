/* core/util/buf.c — growable strings and the small text helpers around them. */
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reserve(dkh_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    DKH_ASSERT(p != NULL);
    b->data = p;
    b->cap = cap;
}

void dkh_buf_fini(dkh_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void dkh_buf_clear(dkh_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void dkh_buf_putn(dkh_buf *b, const char *s, size_t n)
{
    reserve(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void dkh_buf_putc(dkh_buf *b, char c)
{
    dkh_buf_putn(b, &c, 1);
}

void dkh_buf_puts(dkh_buf *b, const char *s)
{
    dkh_buf_putn(b, s, strlen(s));
}

void dkh_buf_vprintf(dkh_buf *b, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    DKH_ASSERT(n >= 0);
    reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void dkh_buf_printf(dkh_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dkh_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void dkh_buf_json_str(dkh_buf *b, const char *s)
{
    dkh_buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': dkh_buf_puts(b, "\\\""); break;
        case '\\': dkh_buf_puts(b, "\\\\"); break;
        case '\n': dkh_buf_puts(b, "\\n"); break;
        case '\r': dkh_buf_puts(b, "\\r"); break;
        case '\t': dkh_buf_puts(b, "\\t"); break;
        default:
            if (*p < 0x20)
                dkh_buf_printf(b, "\\u%04x", *p);
            else
                dkh_buf_putc(b, (char)*p);
        }
    }
    dkh_buf_putc(b, '"');
}

const char *dkh_buf_str(const dkh_buf *b)
{
    return b->data ? b->data : "";
}

char *dkh_buf_take(dkh_buf *b)
{
    char *s = b->data ? b->data : dkh_strdup("");
    b->data = NULL;
    b->len = b->cap = 0;
    return s;
}

char *dkh_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    DKH_ASSERT(p != NULL);
    memcpy(p, s, n);
    return p;
}

char *dkh_asprintf(const char *fmt, ...)
{
    dkh_buf b = DKH_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    dkh_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    return dkh_buf_take(&b);
}

size_t dkh_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t *row = malloc((lb + 1) * sizeof *row);
    DKH_ASSERT(row != NULL);
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    size_t d = row[lb];
    free(row);
    return d;
}

const char *dkh_closest(const char *word, const char *const *cands, size_t n)
{
    size_t limit = strlen(word) / 3;
    if (limit < 2)
        limit = 2;
    const char *best = NULL;
    size_t best_d = limit + 1;
    for (size_t i = 0; i < n; i++) {
        size_t d = dkh_edit_distance(word, cands[i]);
        if (d < best_d) {
            best_d = d;
            best = cands[i];
        }
    }
    return best;
}
