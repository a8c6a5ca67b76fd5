/* core/cfg/override.c — `--cfg-options key.path=VALUE` assignments.
 *
 * The key is a dotted path (list elements by index, quoted segments for keys
 * holding dots); the value is YAML flow text, so it carries its own type.
 * Missing map keys are created, and a null on the way is replaced by a map
 * (a base often says `neck: null` and a run fills it in). Anything else on
 * the way that is not a container is an error: silently replacing a scalar
 * with a map would hide a typo in the key.
 */
#include "cfg_impl.h"

#include <stdlib.h>
#include <string.h>

#define OVERRIDE_LOC "<cfg-options>"

/* Position of the '=' that ends the key: the first one outside quotes. */
static const char *find_equals(const char *s)
{
    char q = 0;
    for (; *s; s++) {
        if (q) {
            if (*s == q)
                q = 0;
        } else if (*s == '"' || *s == '\'') {
            q = *s;
        } else if (*s == '=') {
            return s;
        }
    }
    return NULL;
}

static dk_status bad(dk_status st, const char *assignment, const char *fmt, const char *a,
                     const char *b)
{
    char *msg = dkh_asprintf(fmt, a, b);
    dk_status s = dk_fail(st, "--cfg-options '%s': %s", assignment, msg);
    free(msg);
    return s;
}

/* The path of segments [0, upto) for messages. */
static char *prefix_of(char **segs, size_t upto)
{
    dkh_buf b = DKH_BUF_INIT;
    for (size_t i = 0; i < upto; i++) {
        if (i)
            dkh_buf_putc(&b, '.');
        dkh_buf_puts(&b, segs[i]);
    }
    return dkh_buf_take(&b);
}

static dk_status apply(dk_cfg *root, const char *assignment, char **segs, size_t n, dk_cfg *value)
{
    dk_cfg *cur = root;
    for (size_t i = 0; i < n; i++) {
        bool last = i + 1 == n;
        if (cur->kind == DK_CFG_NULL && cur != root) {
            /* Turn a null placeholder into a map that can take the key. */
            dk_cfg *m = dkh_cfgi_new(DK_CFG_MAP, OVERRIDE_LOC, 0, 0);
            dkh_cfgi_become(cur, m);
            dkh_loc_set(&cur->loc, OVERRIDE_LOC, 0, 0);
        }
        if (cur->kind == DK_CFG_LIST) {
            size_t idx;
            char *where = prefix_of(segs, i);
            dk_status s = DK_OK;
            if (!dkh_cfgi_index(segs[i], &idx)) {
                s = bad(DK_ERR_CONFIG, assignment, "'%s' is a list; '%s' is not an index", where,
                        segs[i]);
            } else if (idx >= cur->n) {
                char *count = dkh_asprintf("%zu", cur->n);
                char *msg = dkh_asprintf("index %s is out of range: '%s' has %s elements", segs[i],
                                         where, count);
                s = dk_fail(DK_ERR_CONFIG, "--cfg-options '%s': %s", assignment, msg);
                free(msg);
                free(count);
            }
            free(where);
            if (s != DK_OK)
                return s;
            if (last) {
                dkh_cfgi_replace(cur, idx, value);
                return DK_OK;
            }
            cur = cur->ents[idx].val;
        } else if (cur->kind == DK_CFG_MAP) {
            long j = dkh_cfgi_find(cur, segs[i]);
            if (last) {
                if (j >= 0) {
                    dkh_cfgi_replace(cur, (size_t)j, value);
                    dkh_loc_set(&cur->ents[j].kloc, OVERRIDE_LOC, 0, 0);
                } else {
                    dkh_loc kloc = {0};
                    dkh_loc_set(&kloc, OVERRIDE_LOC, 0, 0);
                    dkh_cfgi_append(cur, segs[i], &kloc, value);
                    dkh_loc_fini(&kloc);
                }
                return DK_OK;
            }
            if (j < 0) {
                dkh_loc kloc = {0};
                dkh_loc_set(&kloc, OVERRIDE_LOC, 0, 0);
                dkh_cfgi_append(cur, segs[i], &kloc, dkh_cfgi_new(DK_CFG_MAP, OVERRIDE_LOC, 0, 0));
                dkh_loc_fini(&kloc);
                j = (long)cur->n - 1;
            }
            cur = cur->ents[j].val;
        } else {
            char *where = prefix_of(segs, i);
            char *got = dkh_cfgi_describe(cur);
            char *msg = dkh_asprintf("cannot set key '%s' inside '%s', which is %s (%s)", segs[i],
                                     where, got, cur->loc.where);
            dk_status s = dk_fail(DK_ERR_CONFIG, "--cfg-options '%s': %s", assignment, msg);
            free(msg);
            free(got);
            free(where);
            return s;
        }
    }
    return DK_OK;
}

dk_status dkh_cfg_override(dk_cfg *root, const char *assignment)
{
    if (!root || !assignment)
        return dk_fail(DK_ERR_ARG, "dkh_cfg_override: NULL argument");
    if (root->kind != DK_CFG_MAP)
        return dk_fail(DK_ERR_ARG, "--cfg-options '%s': the config is not a map", assignment);
    const char *eq = find_equals(assignment);
    if (!eq)
        return bad(DK_ERR_ARG, assignment, "expected KEY=VALUE, e.g. %s%s", "model.depth=50", "");
    if (eq == assignment)
        return bad(DK_ERR_ARG, assignment, "the key before '=' is empty%s%s", "", "");

    char *key = dkh_asprintf("%.*s", (int)(eq - assignment), assignment);
    char **segs;
    size_t n;
    char *err;
    if (!dkh_cfgi_split_path(key, &segs, &n, &err)) {
        dk_status s = bad(DK_ERR_ARG, assignment, "%s%s", err, "");
        free(err);
        free(key);
        return s;
    }
    free(key);

    dk_cfg *value;
    dk_status s = dkh_cfg_parse(eq + 1, OVERRIDE_LOC, &value);
    if (s != DK_OK) {
        /* The parser's message starts with "<cfg-options>:1:N: "; keep its detail. */
        char *detail = dkh_strdup(dk_last_error());
        s = dk_fail(DK_ERR_ARG, "--cfg-options '%s': the value is not valid YAML: %s", assignment,
                    detail);
        free(detail);
        dkh_cfgi_free_segs(segs, n);
        return s;
    }
    dkh_cfgi_relocate(value, OVERRIDE_LOC);
    s = apply(root, assignment, segs, n, value);
    if (s != DK_OK)
        dkh_cfg_free(value);
    dkh_cfgi_free_segs(segs, n);
    return s;
}

char *dkh_cfg_string_assignment(const char *key, const char *value)
{
    dkh_buf b = DKH_BUF_INIT;
    dkh_buf_printf(&b, "%s='", key);
    for (const char *p = value; *p; p++) {
        if (*p == '\'')
            dkh_buf_putc(&b, '\'');
        dkh_buf_putc(&b, *p);
    }
    dkh_buf_putc(&b, '\'');
    return dkh_buf_take(&b);
}
