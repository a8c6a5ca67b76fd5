/* core/cfg/schema_check.c — checking the parameter schema a plugin declares.
 *
 * The registry calls this when a type registers, so a mistake in a plugin's
 * schema (a default outside its own range, a min above its max, a STRUCT
 * without fields) is reported once, naming the parameter, instead of
 * surfacing later as a confusing error in some user's config.
 */
#include "cfg_impl.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* Nesting of STRUCT fields deeper than this is a schema bug (or a loop). */
#define MAX_STRUCT_DEPTH 16

static bool is_ident(const char *s)
{
    if (!s || !(isalpha((unsigned char)*s) || *s == '_'))
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return false;
    return true;
}

static bool is_kind_name(const char *s)
{
    if (!s || !(*s >= 'a' && *s <= 'z'))
        return false;
    for (; *s; s++)
        if (!(*s >= 'a' && *s <= 'z') && !isdigit((unsigned char)*s) && *s != '_')
            return false;
    return true;
}

static bool numeric_type(dk_param_type t)
{
    return t == DK_PARAM_INT || t == DK_PARAM_FLOAT;
}

static dk_status fail_param(const char *prefix, const char *name, const char *fmt, const char *a,
                            const char *b)
{
    char *msg = dkh_asprintf(fmt, a, b);
    dk_status s = dk_fail(DK_ERR_ARG, "parameter '%s%s': %s", prefix, name, msg);
    free(msg);
    return s;
}

/* Checks a min or max bound; `t` is the type the bound applies to. */
static dk_status check_bound(const char *prefix, const dk_param *p, dk_param_type t,
                             const char *which, const char *text)
{
    dk_cfg_kind k = dkh_cfgi_classify(text, NULL, NULL);
    bool ok = t == DK_PARAM_INT ? k == DK_CFG_INT : (k == DK_CFG_INT || k == DK_CFG_FLOAT);
    if (!ok)
        return fail_param(prefix, p->name, "%s '%s' is not a valid bound", which, text);
    return DK_OK;
}

static dk_status check_params(const dk_param *params, size_t n, const char *prefix, int depth);

static dk_status check_one(const dk_param *p, const char *prefix, int depth)
{
    const char *name = p->name;
    if (p->type < DK_PARAM_ANY || p->type >= DK_PARAM_TYPE_COUNT) {
        char num[24];
        snprintf(num, sizeof num, "%d", (int)p->type);
        return fail_param(prefix, name, "unknown parameter type %s%s", num, "");
    }
    if (p->flags & ~(uint32_t)(DK_PARAM_REQUIRED | DK_PARAM_NULLABLE))
        return fail_param(prefix, name, "unknown flags%s%s", "", "");
    if ((p->flags & DK_PARAM_REQUIRED) && p->def)
        return fail_param(prefix, name, "is required and also has a default ('%s')%s", p->def, "");

    /* Which type do min/max/choices apply to: the value or, for lists, the elements. */
    dk_param_type vt = p->type == DK_PARAM_LIST && p->elem ? p->elem : p->type;
    if (p->type == DK_PARAM_LIST && p->elem) {
        if (p->elem < DK_PARAM_ANY || p->elem > DK_PARAM_MAP)
            return fail_param(prefix, name,
                              "list elements must be a plain type (any, int, float, bool, "
                              "string, list or map)%s%s",
                              "", "");
    } else if (p->elem) {
        return fail_param(prefix, name, "'elem' is only for list parameters%s%s", "", "");
    }
    if ((p->min || p->max) && !numeric_type(vt))
        return fail_param(prefix, name, "min/max apply only to int and float values, not %s%s",
                          dkh_param_type_name(vt), "");
    if (p->min)
        DK_TRY(check_bound(prefix, p, vt, "min", p->min));
    if (p->max)
        DK_TRY(check_bound(prefix, p, vt, "max", p->max));
    if (p->min && p->max) {
        dk_cfg *lo = dkh_cfgi_new_plain(p->min, "<schema>", 0, 0);
        dk_param only_max = {.name = name, .type = vt, .max = p->max};
        char *m = dkh_cfgi_check_value(&only_max, lo, "min");
        dkh_cfg_free(lo);
        if (m) {
            free(m);
            return fail_param(prefix, name, "min %s is greater than max %s", p->min, p->max);
        }
    }
    if (p->choices) {
        if (vt != DK_PARAM_STRING && vt != DK_PARAM_INT)
            return fail_param(prefix, name, "choices apply only to string and int values%s%s", "",
                              "");
        const char *s = p->choices;
        for (;;) {
            const char *bar = strchr(s, '|');
            size_t len = bar ? (size_t)(bar - s) : strlen(s);
            char *tok = dkh_asprintf("%.*s", (int)len, s);
            bool bad = len == 0 ||
                       (vt == DK_PARAM_INT && dkh_cfgi_classify(tok, NULL, NULL) != DK_CFG_INT);
            free(tok);
            if (bad)
                return fail_param(prefix, name,
                                  "choices '%s' must be non-empty %s values "
                                  "separated by '|'",
                                  p->choices, vt == DK_PARAM_INT ? "integer" : "string");
            if (!bar)
                break;
            s = bar + 1;
        }
    }
    bool object = p->type == DK_PARAM_OBJECT || p->type == DK_PARAM_OBJECT_LIST ||
                  p->type == DK_PARAM_OBJECT_MAP;
    if (object && !is_kind_name(p->kind))
        return fail_param(prefix, name,
                          "an object parameter must name its kind "
                          "([a-z][a-z0-9_]*), got '%s'%s",
                          p->kind ? p->kind : "(none)", "");
    if (!object && p->kind)
        return fail_param(prefix, name, "'kind' is only for object parameters%s%s", "", "");
    if (p->type == DK_PARAM_STRUCT) {
        if (!p->fields || p->n_fields == 0)
            return fail_param(prefix, name, "a struct parameter needs fields%s%s", "", "");
        if (depth >= MAX_STRUCT_DEPTH)
            return fail_param(prefix, name, "struct fields nest too deeply%s%s", "", "");
        char *sub = dkh_asprintf("%s%s.", prefix, name);
        dk_status s = check_params(p->fields, p->n_fields, sub, depth + 1);
        free(sub);
        DK_TRY(s);
    } else if (p->fields || p->n_fields) {
        return fail_param(prefix, name, "'fields' is only for struct parameters%s%s", "", "");
    }

    if (p->def) {
        dk_cfg *d;
        if (dkh_cfg_parse(p->def, "<default>", &d) != DK_OK) {
            char *why = dkh_strdup(dk_last_error());
            dk_status s =
                fail_param(prefix, name, "default '%s' is not valid YAML: %s", p->def, why);
            free(why);
            return s;
        }
        char *subject = dkh_asprintf("default '%s'", p->def);
        char *m = dkh_cfgi_check_value(p, d, subject);
        dk_status s = DK_OK;
        if (m && !strncmp(m, subject, strlen(subject)))
            s = fail_param(prefix, name, "%s%s", m, "");
        else if (m)
            s = fail_param(prefix, name, "%s: %s", subject, m);
        free(m);
        free(subject);
        dkh_cfg_free(d);
        DK_TRY(s);
    }
    return DK_OK;
}

static dk_status check_params(const dk_param *params, size_t n, const char *prefix, int depth)
{
    if (n > 0 && !params)
        return dk_fail(DK_ERR_ARG, "schema: %zu parameters declared but the array is NULL", n);
    for (size_t i = 0; i < n; i++) {
        const dk_param *p = &params[i];
        if (!is_ident(p->name))
            return dk_fail(
                DK_ERR_ARG,
                "parameter %s#%zu: name '%s' is not an identifier ([A-Za-z_][A-Za-z0-9_]*)", prefix,
                i, p->name ? p->name : "(null)");
        for (size_t j = 0; j < i; j++)
            if (!strcmp(params[j].name, p->name))
                return dk_fail(DK_ERR_ARG, "parameter '%s%s' is declared twice", prefix, p->name);
        DK_TRY(check_one(p, prefix, depth));
    }
    return DK_OK;
}

dk_status dkh_schema_check(const dk_param *params, size_t n)
{
    return check_params(params, n, "", 0);
}
