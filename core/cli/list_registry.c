/* core/cli/list_registry.c — the body of `dkhost list-registry`.
 *
 * Shows a user, the way gst-inspect does for GStreamer, what the loaded
 * plugins offer: each plugin with its version, license, ABI and file; each
 * type grouped by kind with its parameters (type, default or "required",
 * range, choices, doc; STRUCT fields indented below their parameter); and
 * the custom ops plugins registered (without --kind); and every file that
 * was refused, with the reason. The JSON form carries the
 * same facts with a fixed key order so scripts and golden tests can rely on
 * it. Everything goes into a buffer; main decides where it is printed.
 */
#include "list_registry.h"

#include "../cfg/cfg.h"
#include "../tensor/custom_op.h"

#include <stdlib.h>
#include <string.h>

/* ---- shared helpers ------------------------------------------------------ */

/* How a user reads a parameter's type: "list[int]", "object<backbone>",
 * "list[object<transform>]", with "|null" when null is accepted. */
static char *type_text(const dk_param *p)
{
    dkh_buf b = DKH_BUF_INIT;
    const char *k = p->kind ? p->kind : "any";
    switch (p->type) {
    case DK_PARAM_LIST:
        if (p->elem)
            dkh_buf_printf(&b, "list[%s]", dkh_param_type_name(p->elem));
        else
            dkh_buf_puts(&b, "list");
        break;
    case DK_PARAM_OBJECT:
        dkh_buf_printf(&b, "object<%s>", k);
        break;
    case DK_PARAM_OBJECT_LIST:
        dkh_buf_printf(&b, "list[object<%s>]", k);
        break;
    case DK_PARAM_OBJECT_MAP:
        dkh_buf_printf(&b, "map[object<%s>]", k);
        break;
    default:
        dkh_buf_puts(&b, dkh_param_type_name(p->type));
        break;
    }
    if (p->flags & DK_PARAM_NULLABLE)
        dkh_buf_puts(&b, "|null");
    return dkh_buf_take(&b);
}

static bool kind_shown(const char *kind, const char *filter)
{
    return !filter || strcmp(kind, filter) == 0;
}

static bool plugin_shown(const dkh_registry *r, const dkh_plugin *p, const char *filter)
{
    if (!filter)
        return true;
    for (size_t i = 0; i < dkh_registry_n_types(r); i++) {
        const dkh_type *t = dkh_registry_type_at(r, i);
        if (t->plugin == p && strcmp(t->info.kind, filter) == 0)
            return true;
    }
    return false;
}

/* Every kind a filter may name: the builtin ones and those plugins added. */
static size_t known_kinds(const dkh_registry *r, const char ***out)
{
    size_t cap = dkh_registry_n_types(r) + 16, n = 0;
    const char **k = malloc(cap * sizeof *k);
    DKH_ASSERT(k != NULL);
#define KIND_(name, iface) k[n++] = #name;
    DK_BUILTIN_KIND_LIST(KIND_)
#undef KIND_
    for (size_t i = 0; i < dkh_registry_n_types(r); i++) {
        const char *kind = dkh_registry_type_at(r, i)->info.kind;
        bool seen = false;
        for (size_t j = 0; j < n && !seen; j++)
            seen = strcmp(k[j], kind) == 0;
        if (!seen)
            k[n++] = kind;
    }
    *out = k;
    return n;
}

/* ---- text -------------------------------------------------------------- */

/* A refusal's reason without its leading "<path>: ", which the listing
 * already shows on the line above. */
static const char *reason_tail(const dkh_refusal *f)
{
    size_t n = strlen(f->path);
    if (strncmp(f->reason, f->path, n) == 0 && strncmp(f->reason + n, ": ", 2) == 0)
        return f->reason + n + 2;
    return f->reason;
}

/* One parameter row, split into columns so a type's rows line up. */
typedef struct row {
    char *name; /* indented by nesting */
    char *type;
    char *dflt;
    char *rest; /* range, choices, doc */
} row;

typedef struct rows {
    row *v;
    size_t n, cap;
} rows;

static void collect_rows(const dk_param *ps, size_t n, int depth, rows *out)
{
    for (size_t i = 0; i < n; i++) {
        const dk_param *p = &ps[i];
        if (out->n == out->cap) {
            out->cap = out->cap ? out->cap * 2 : 16;
            out->v = realloc(out->v, out->cap * sizeof *out->v);
            DKH_ASSERT(out->v != NULL);
        }
        row *w = &out->v[out->n++];
        w->name = dkh_asprintf("%*s%s", depth * 2, "", p->name);
        w->type = type_text(p);
        if (p->flags & DK_PARAM_REQUIRED)
            w->dflt = dkh_strdup("required");
        else if (p->def)
            w->dflt = dkh_asprintf("= %s", p->def);
        else if (p->flags & DK_PARAM_NULLABLE)
            w->dflt = dkh_strdup("= null");
        else
            w->dflt = dkh_strdup("");
        dkh_buf b = DKH_BUF_INIT;
        const char *sep = "";
        if (p->min || p->max) {
            bool list = p->type == DK_PARAM_LIST;
            if (p->min && p->max)
                dkh_buf_printf(&b, "%s [%s, %s]", list ? "elements in" : "range", p->min, p->max);
            else if (p->min)
                dkh_buf_printf(&b, "%s>= %s", list ? "elements " : "", p->min);
            else
                dkh_buf_printf(&b, "%s<= %s", list ? "elements " : "", p->max);
            sep = "; ";
        }
        if (p->choices) {
            dkh_buf_printf(&b, "%sone of %s", sep, p->choices);
            sep = "; ";
        }
        if (p->doc && p->doc[0])
            dkh_buf_printf(&b, "%s%s", sep, p->doc);
        w->rest = dkh_buf_take(&b);
        if (p->type == DK_PARAM_STRUCT && p->fields)
            collect_rows(p->fields, p->n_fields, depth + 1, out);
    }
}

static size_t widest(const rows *rs, size_t off)
{
    size_t w = 0;
    for (size_t i = 0; i < rs->n; i++) {
        size_t l = strlen(*(char **)((char *)&rs->v[i] + off));
        if (l > w)
            w = l;
    }
    return w;
}

static void text_params(const dk_type_info *t, dkh_buf *out)
{
    if (t->n_params == 0) {
        dkh_buf_puts(out, "      (no parameters)\n");
        return;
    }
    rows rs = {0};
    collect_rows(t->params, t->n_params, 0, &rs);
    int wn = (int)widest(&rs, offsetof(row, name));
    int wt = (int)widest(&rs, offsetof(row, type));
    int wd = (int)widest(&rs, offsetof(row, dflt));
    for (size_t i = 0; i < rs.n; i++) {
        row *w = &rs.v[i];
        dkh_buf line = DKH_BUF_INIT;
        dkh_buf_printf(&line, "      %-*s  %-*s  %-*s  %s", wn, w->name, wt, w->type, wd, w->dflt,
                       w->rest);
        /* Trailing blanks would make golden files fragile to edit. */
        while (line.len && line.data[line.len - 1] == ' ')
            line.data[--line.len] = '\0';
        dkh_buf_puts(out, dkh_buf_str(&line));
        dkh_buf_putc(out, '\n');
        dkh_buf_fini(&line);
        free(w->name);
        free(w->type);
        free(w->dflt);
        free(w->rest);
    }
    free(rs.v);
}

static void text_listing(const dkh_registry *r, const char *filter, dkh_buf *out)
{
    dkh_buf_printf(out, "dkhost %s (plugin ABI %d.%d)\n", DK_VERSION_STRING, DK_ABI_MAJOR,
                   DK_ABI_MINOR);

    size_t np = 0;
    for (size_t i = 0; i < dkh_registry_n_plugins(r); i++)
        np += plugin_shown(r, dkh_registry_plugin_at(r, i), filter);
    dkh_buf_printf(out, "\nPlugins (%zu)\n", np);
    for (size_t i = 0; i < dkh_registry_n_plugins(r); i++) {
        const dkh_plugin *p = dkh_registry_plugin_at(r, i);
        if (!plugin_shown(r, p, filter))
            continue;
        dkh_buf_printf(out, "  %s %s  [%s]  ABI %u.%u", p->name, p->version[0] ? p->version : "-",
                       p->license, p->abi_major, p->abi_minor);
        if (p->requires_minor != p->abi_minor)
            dkh_buf_printf(out, " (requires %u.%u)", p->abi_major, p->requires_minor);
        if (p->flags & DK_PLUGIN_UNLOADABLE)
            dkh_buf_puts(out, "  unloadable");
        dkh_buf_printf(out, "\n      %s\n      file:   %s\n", p->summary, p->path);
        if (p->source[0])
            dkh_buf_printf(out, "      source: %s\n", p->source);
        dkh_buf_printf(out, "      build:  %s\n",
                       p->build[0] ? p->build : "(not recorded by SDKs before 1.1)");
    }

    size_t nt = 0;
    for (size_t i = 0; i < dkh_registry_n_types(r); i++)
        nt += kind_shown(dkh_registry_type_at(r, i)->info.kind, filter);
    dkh_buf_printf(out, "\nTypes (%zu)\n", nt);
    const char *last_kind = NULL;
    for (size_t i = 0; i < dkh_registry_n_types(r); i++) {
        const dkh_type *t = dkh_registry_type_at(r, i);
        if (!kind_shown(t->info.kind, filter))
            continue;
        /* Types are sorted by kind, so a kind heading starts each group. */
        if (!last_kind || strcmp(last_kind, t->info.kind) != 0) {
            dkh_buf_printf(out, "  %s (%s)\n", t->info.kind, dkh_iface_name(t->info.iface));
            last_kind = t->info.kind;
        }
        dkh_buf_printf(out, "    %s  [%s]  %s\n", t->info.name,
                       t->plugin ? t->plugin->name : "host", t->info.summary);
        text_params(&t->info, out);
    }

    if (!filter) {
        dkh_custom_op_view op;
        size_t nops = 0;
        while (dkh_custom_op_at(nops, &op))
            nops++;
        dkh_buf_printf(out, "\nCustom ops (%zu)\n", nops);
        for (size_t i = 0; dkh_custom_op_at(i, &op); i++)
            dkh_buf_printf(out, "  %s  %d input%s, kernels: %s%s, backward: %s\n      %s\n"
                                "      file:   %s\n",
                           op.name, op.n_in, op.n_in == 1 ? "" : "s", op.cpu ? "cpu" : "",
                           op.cuda ? " cuda" : "", op.backward, op.summary, op.path);
    }

    dkh_buf_printf(out, "\nRefused (%zu)\n", dkh_registry_n_refusals(r));
    for (size_t i = 0; i < dkh_registry_n_refusals(r); i++) {
        const dkh_refusal *f = dkh_registry_refusal_at(r, i);
        dkh_buf_printf(out, "  %s%s\n      %s\n", f->path,
                       f->not_a_plugin ? "  (not a plugin)" : "", reason_tail(f));
    }
}

/* ---- JSON -------------------------------------------------------------- */

static void json_str_or_null(dkh_buf *b, const char *s)
{
    if (s)
        dkh_buf_json_str(b, s);
    else
        dkh_buf_puts(b, "null");
}

static void json_key(dkh_buf *b, const char *key)
{
    dkh_buf_json_str(b, key);
    dkh_buf_putc(b, ':');
}

static void json_params(const dk_param *ps, size_t n, dkh_buf *b)
{
    dkh_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        const dk_param *p = &ps[i];
        if (i)
            dkh_buf_putc(b, ',');
        dkh_buf_putc(b, '{');
        json_key(b, "name");
        dkh_buf_json_str(b, p->name);
        dkh_buf_putc(b, ',');
        json_key(b, "type");
        dkh_buf_json_str(b, dkh_param_type_name(p->type));
        dkh_buf_putc(b, ',');
        json_key(b, "elem");
        json_str_or_null(b, p->elem ? dkh_param_type_name(p->elem) : NULL);
        dkh_buf_putc(b, ',');
        json_key(b, "kind");
        json_str_or_null(b, p->kind);
        dkh_buf_putc(b, ',');
        json_key(b, "required");
        dkh_buf_puts(b, (p->flags & DK_PARAM_REQUIRED) ? "true" : "false");
        dkh_buf_putc(b, ',');
        json_key(b, "nullable");
        dkh_buf_puts(b, (p->flags & DK_PARAM_NULLABLE) ? "true" : "false");
        dkh_buf_putc(b, ',');
        json_key(b, "default");
        json_str_or_null(b, p->def);
        dkh_buf_putc(b, ',');
        json_key(b, "min");
        json_str_or_null(b, p->min);
        dkh_buf_putc(b, ',');
        json_key(b, "max");
        json_str_or_null(b, p->max);
        dkh_buf_putc(b, ',');
        json_key(b, "choices");
        if (p->choices) {
            /* Split on '|' so a script need not know the separator. */
            dkh_buf_putc(b, '[');
            const char *s = p->choices;
            for (bool first = true;; first = false) {
                const char *bar = strchr(s, '|');
                size_t len = bar ? (size_t)(bar - s) : strlen(s);
                char *one = malloc(len + 1);
                DKH_ASSERT(one != NULL);
                memcpy(one, s, len);
                one[len] = '\0';
                if (!first)
                    dkh_buf_putc(b, ',');
                dkh_buf_json_str(b, one);
                free(one);
                if (!bar)
                    break;
                s = bar + 1;
            }
            dkh_buf_putc(b, ']');
        } else {
            dkh_buf_puts(b, "null");
        }
        dkh_buf_putc(b, ',');
        json_key(b, "doc");
        json_str_or_null(b, p->doc);
        dkh_buf_putc(b, ',');
        json_key(b, "fields");
        if (p->type == DK_PARAM_STRUCT)
            json_params(p->fields, p->n_fields, b);
        else
            dkh_buf_puts(b, "null");
        dkh_buf_putc(b, '}');
    }
    dkh_buf_putc(b, ']');
}

static void json_listing(const dkh_registry *r, const char *filter, dkh_buf *b)
{
    dkh_buf_puts(b, "{\n  \"host\": {");
    json_key(b, "version");
    dkh_buf_json_str(b, DK_VERSION_STRING);
    dkh_buf_putc(b, ',');
    json_key(b, "abi");
    dkh_buf_printf(b, "\"%d.%d\"},\n  \"plugins\": [", DK_ABI_MAJOR, DK_ABI_MINOR);

    const char *sep = "\n    ";
    for (size_t i = 0; i < dkh_registry_n_plugins(r); i++) {
        const dkh_plugin *p = dkh_registry_plugin_at(r, i);
        if (!plugin_shown(r, p, filter))
            continue;
        dkh_buf_printf(b, "%s{", sep);
        sep = ",\n    ";
        json_key(b, "name");
        dkh_buf_json_str(b, p->name);
        dkh_buf_putc(b, ',');
        json_key(b, "version");
        dkh_buf_json_str(b, p->version);
        dkh_buf_putc(b, ',');
        json_key(b, "license");
        dkh_buf_json_str(b, p->license);
        dkh_buf_putc(b, ',');
        json_key(b, "abi");
        dkh_buf_printf(b, "\"%u.%u\",", p->abi_major, p->abi_minor);
        json_key(b, "requires_abi");
        dkh_buf_printf(b, "\"%u.%u\",", p->abi_major, p->requires_minor);
        json_key(b, "file");
        dkh_buf_json_str(b, p->path);
        dkh_buf_putc(b, ',');
        json_key(b, "summary");
        dkh_buf_json_str(b, p->summary);
        dkh_buf_putc(b, ',');
        json_key(b, "source");
        dkh_buf_json_str(b, p->source);
        dkh_buf_putc(b, ',');
        json_key(b, "build");
        json_str_or_null(b, p->build[0] ? p->build : NULL);
        dkh_buf_putc(b, ',');
        json_key(b, "unloadable");
        dkh_buf_puts(b, (p->flags & DK_PLUGIN_UNLOADABLE) ? "true}" : "false}");
    }
    dkh_buf_puts(b, sep[0] == ',' ? "\n  ],\n  \"types\": [" : "],\n  \"types\": [");

    sep = "\n    ";
    for (size_t i = 0; i < dkh_registry_n_types(r); i++) {
        const dkh_type *t = dkh_registry_type_at(r, i);
        if (!kind_shown(t->info.kind, filter))
            continue;
        dkh_buf_printf(b, "%s{", sep);
        sep = ",\n    ";
        json_key(b, "kind");
        dkh_buf_json_str(b, t->info.kind);
        dkh_buf_putc(b, ',');
        json_key(b, "name");
        dkh_buf_json_str(b, t->info.name);
        dkh_buf_putc(b, ',');
        json_key(b, "iface");
        dkh_buf_json_str(b, dkh_iface_name(t->info.iface));
        dkh_buf_putc(b, ',');
        json_key(b, "plugin");
        json_str_or_null(b, t->plugin ? t->plugin->name : NULL);
        dkh_buf_putc(b, ',');
        json_key(b, "summary");
        dkh_buf_json_str(b, t->info.summary);
        dkh_buf_putc(b, ',');
        json_key(b, "params");
        json_params(t->info.params, t->info.n_params, b);
        dkh_buf_putc(b, '}');
    }
    dkh_buf_puts(b, sep[0] == ',' ? "\n  ],\n  \"custom_ops\": [" : "],\n  \"custom_ops\": [");

    sep = "\n    ";
    dkh_custom_op_view op;
    for (size_t i = 0; !filter && dkh_custom_op_at(i, &op); i++) {
        dkh_buf_printf(b, "%s{", sep);
        sep = ",\n    ";
        json_key(b, "name");
        dkh_buf_json_str(b, op.name);
        dkh_buf_putc(b, ',');
        json_key(b, "summary");
        dkh_buf_json_str(b, op.summary);
        dkh_buf_putc(b, ',');
        json_key(b, "inputs");
        dkh_buf_printf(b, "%d,", op.n_in);
        json_key(b, "kernels");
        dkh_buf_printf(b, "[%s%s%s],", op.cpu ? "\"cpu\"" : "", op.cpu && op.cuda ? "," : "",
                       op.cuda ? "\"cuda\"" : "");
        json_key(b, "backward");
        dkh_buf_json_str(b, op.backward);
        dkh_buf_putc(b, ',');
        json_key(b, "file");
        dkh_buf_json_str(b, op.path);
        dkh_buf_putc(b, '}');
    }
    dkh_buf_puts(b, sep[0] == ',' ? "\n  ],\n  \"refused\": [" : "],\n  \"refused\": [");

    sep = "\n    ";
    for (size_t i = 0; i < dkh_registry_n_refusals(r); i++) {
        const dkh_refusal *f = dkh_registry_refusal_at(r, i);
        dkh_buf_printf(b, "%s{", sep);
        sep = ",\n    ";
        json_key(b, "file");
        dkh_buf_json_str(b, f->path);
        dkh_buf_putc(b, ',');
        json_key(b, "status");
        dkh_buf_json_str(b, dk_status_name(f->status));
        dkh_buf_putc(b, ',');
        json_key(b, "not_a_plugin");
        dkh_buf_puts(b, f->not_a_plugin ? "true," : "false,");
        json_key(b, "plugin");
        json_str_or_null(b, f->plugin_name);
        dkh_buf_putc(b, ',');
        json_key(b, "reason");
        dkh_buf_json_str(b, f->reason);
        dkh_buf_putc(b, ',');
        json_key(b, "attempted");
        dkh_buf_putc(b, '[');
        for (size_t k = 0; k < f->n_attempted; k++) {
            if (k)
                dkh_buf_putc(b, ',');
            dkh_buf_json_str(b, f->attempted[k]);
        }
        dkh_buf_puts(b, "]}");
    }
    dkh_buf_puts(b, sep[0] == ',' ? "\n  ]\n}\n" : "]\n}\n");
}

dk_status dkh_list_registry(const dkh_registry *r, const char *kind_filter, bool json, dkh_buf *out)
{
    if (!r)
        return dk_fail(DK_ERR_ARG, "list-registry: no registry");
    if (kind_filter) {
        const char **kinds = NULL;
        size_t n = known_kinds(r, &kinds);
        bool known = false;
        for (size_t i = 0; i < n && !known; i++)
            known = strcmp(kinds[i], kind_filter) == 0;
        if (!known) {
            dkh_buf msg = DKH_BUF_INIT;
            dkh_buf_printf(&msg, "unknown kind '%s'", kind_filter);
            const char *best = dkh_closest(kind_filter, kinds, n);
            if (best)
                dkh_buf_printf(&msg, " (did you mean '%s'?)", best);
            dkh_buf_puts(&msg, "; known kinds:");
            for (size_t i = 0; i < n; i++)
                dkh_buf_printf(&msg, "%s %s", i ? "," : "", kinds[i]);
            free(kinds);
            dk_status s = dk_fail(DK_ERR_NOT_FOUND, "%s", dkh_buf_str(&msg));
            dkh_buf_fini(&msg);
            return s;
        }
        free(kinds);
    }
    if (json)
        json_listing(r, kind_filter, out);
    else
        text_listing(r, kind_filter, out);
    return DK_OK;
}
