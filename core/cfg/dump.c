/* core/cfg/dump.c — a config tree back to block-style YAML.
 *
 * What this writes is what print-config shows and what a work dir keeps, so
 * it must read back to the same tree: a string that would otherwise type as
 * something else ("true", "1", "", "null") or that YAML would read
 * differently (": ", leading '-', '#', ...) is double-quoted; floats are
 * written so they round-trip exactly and always look like floats.
 */
#include "cfg_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* True when s may be written as a plain scalar and reads back as the same
 * string. Deliberately conservative: quoting costs nothing. */
static bool plain_ok(const char *s)
{
    if (!*s || dkh_cfgi_classify(s, NULL, NULL) != DK_CFG_STRING)
        return false;
    unsigned char c0 = (unsigned char)s[0];
    if (!(c0 >= 'a' && c0 <= 'z') && !(c0 >= 'A' && c0 <= 'Z') && !(c0 >= '0' && c0 <= '9') &&
        !strchr("_/.$(+", c0) && c0 < 0x80)
        return false;
    if (s[strlen(s) - 1] == ' ' || s[strlen(s) - 1] == ':')
        return false;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x80)
            continue; /* UTF-8 text is fine in plain scalars */
        if (c < 0x20 || c == 0x7f)
            return false;
        if (strchr("#{}[],&*!|>'\"%@`", c) && !(c == '#' && p[-1] != ' '))
            return false;
        if (c == ':' && (p[1] == ' ' || p[1] == '\0'))
            return false;
        if (c == ' ' && p[1] == '#')
            return false;
    }
    /* '#' right after a non-space is plain text, but "a#b" reads fine only
     * when the '#' is not the first character, which the start rule covers. */
    return true;
}

static void put_quoted(dkh_buf *b, const char *s)
{
    dkh_buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            dkh_buf_puts(b, "\\\"");
            break;
        case '\\':
            dkh_buf_puts(b, "\\\\");
            break;
        case '\n':
            dkh_buf_puts(b, "\\n");
            break;
        case '\r':
            dkh_buf_puts(b, "\\r");
            break;
        case '\t':
            dkh_buf_puts(b, "\\t");
            break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                dkh_buf_printf(b, "\\x%02x", *p);
            else
                dkh_buf_putc(b, (char)*p);
        }
    }
    dkh_buf_putc(b, '"');
}

static void put_string(dkh_buf *b, const char *s)
{
    if (plain_ok(s))
        dkh_buf_puts(b, s);
    else
        put_quoted(b, s);
}

static void put_float(dkh_buf *b, double f)
{
    if (isnan(f)) {
        dkh_buf_puts(b, ".nan");
        return;
    }
    if (isinf(f)) {
        dkh_buf_puts(b, f < 0 ? "-.inf" : ".inf");
        return;
    }
    /* The shortest %g precision that reads back to the same double. */
    char text[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(text, sizeof text, "%.*g", prec, f);
        if (strtod(text, NULL) == f)
            break;
    }
    /* Make it look like a float: 1 -> 1.0, 1e+20 -> 1.0e+20. */
    if (!strpbrk(text, ".eEn")) {
        strcat(text, ".0");
    } else if (!strchr(text, '.')) {
        char *e = strpbrk(text, "eE");
        if (e) {
            char tail[40];
            snprintf(tail, sizeof tail, "%s", e);
            snprintf(e, sizeof text - (size_t)(e - text), ".0%s", tail);
        }
    }
    dkh_buf_puts(b, text);
}

static void put_scalar(dkh_buf *b, const dk_cfg *n)
{
    switch (n->kind) {
    case DK_CFG_NULL:
        dkh_buf_puts(b, "null");
        break;
    case DK_CFG_BOOL:
        dkh_buf_puts(b, n->v.b ? "true" : "false");
        break;
    case DK_CFG_INT:
        dkh_buf_printf(b, "%lld", (long long)n->v.i);
        break;
    case DK_CFG_FLOAT:
        put_float(b, n->v.f);
        break;
    case DK_CFG_STRING:
        put_string(b, n->text);
        break;
    default:
        break;
    }
}

static void indent(dkh_buf *b, int n)
{
    for (int i = 0; i < n; i++)
        dkh_buf_putc(b, ' ');
}

/* Short lists of scalars (sizes, means, channel lists) read best on one
 * line, as a user writes them: `size: [28, 28]`. */
#define FLOW_MAX 16

static bool flat_list(const dk_cfg *n)
{
    if (n->kind != DK_CFG_LIST || n->n > FLOW_MAX)
        return false;
    for (size_t i = 0; i < n->n; i++) {
        dk_cfg_kind k = n->ents[i].val->kind;
        if (k == DK_CFG_MAP || k == DK_CFG_LIST)
            return false;
    }
    return true;
}

static bool is_block(const dk_cfg *n)
{
    return (n->kind == DK_CFG_MAP || n->kind == DK_CFG_LIST) && n->n > 0 && !flat_list(n);
}

/* Scalars, empty containers and flat lists. plain_ok never passes the
 * characters that mean something in flow context (",[]{}"), so the same
 * scalar text is safe inside [...]. */
static void put_inline(dkh_buf *b, const dk_cfg *n)
{
    if (n->kind == DK_CFG_MAP) {
        dkh_buf_puts(b, "{}");
    } else if (n->kind == DK_CFG_LIST) {
        dkh_buf_putc(b, '[');
        for (size_t i = 0; i < n->n; i++) {
            if (i)
                dkh_buf_puts(b, ", ");
            put_scalar(b, n->ents[i].val);
        }
        dkh_buf_putc(b, ']');
    } else {
        put_scalar(b, n);
    }
}

/* Writes a non-empty container whose first line is already indented to
 * `ind` (the cursor sits there); later lines are indented to `ind`. */
static void put_block(dkh_buf *b, const dk_cfg *n, int ind)
{
    for (size_t i = 0; i < n->n; i++) {
        const dk_cfg *v = n->ents[i].val;
        if (i > 0)
            indent(b, ind);
        if (n->kind == DK_CFG_MAP) {
            put_string(b, n->ents[i].key);
            dkh_buf_putc(b, ':');
            if (is_block(v)) {
                dkh_buf_putc(b, '\n');
                indent(b, ind + 2);
                put_block(b, v, ind + 2);
                continue;
            }
            dkh_buf_putc(b, ' ');
        } else {
            dkh_buf_puts(b, "- ");
            if (is_block(v)) {
                /* "- key: v" keeps the map's first entry on the dash line. */
                put_block(b, v, ind + 2);
                continue;
            }
        }
        put_inline(b, v);
        dkh_buf_putc(b, '\n');
    }
}

void dkh_cfg_dump(const dk_cfg *node, dkh_buf *out)
{
    if (!node)
        return;
    if (is_block(node))
        put_block(out, node, 0);
    else {
        put_inline(out, node);
        dkh_buf_putc(out, '\n');
    }
}
