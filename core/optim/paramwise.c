/* core/optim/paramwise.c — per-parameter learning-rate and weight-decay
 * multipliers, chosen by name (mmengine's DefaultOptimWrapperConstructor).
 *
 * For a parameter with dotted name N (e.g. "backbone.layer1.0.bn1.weight"):
 *
 *   1. custom_keys: the longest key that is a substring of N wins (ties go to
 *      the alphabetically first); its lr_mult and decay_mult (default 1) are
 *      the multipliers and no other rule applies.
 *   2. otherwise, bias_lr_mult multiplies the lr of a parameter named "bias"
 *      (its last segment) that is not a normalisation layer's, and the first
 *      rule that applies sets the decay multiplier:
 *        norm_decay_mult   a normalisation layer's weight or bias
 *        bias_decay_mult   any other "bias"
 *        flat_decay_mult   any other 1-d parameter
 *
 * A rule left null does nothing. mmengine recognises normalisation layers by
 * their class; here the module's own name decides: a parameter belongs to a
 * normalisation layer when the segment before its last starts with "bn",
 * "gn" or "ln" followed by nothing, a digit or '_' (bn, bn1, gn, ln_2), or
 * contains "norm" (norm, norm1, layer_norm, BatchNorm), ignoring case. A
 * model that names its norms otherwise gets them through custom_keys.
 * mmengine's dwconv_decay_mult and dcn_offset_lr_mult need layer types and
 * are not offered.
 */
#include "optim_impl.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct custom_key {
    char *key;
    double lr_mult, decay_mult;
    size_t hits;
    char *where;
} custom_key;

struct dkh_paramwise {
    double bias_lr_mult, bias_decay_mult, norm_decay_mult, flat_decay_mult; /* NAN = unset */
    bool bypass_duplicate;
    custom_key *keys; /* longest first, then alphabetical */
    size_t n_keys;
};

static int key_order(const void *a, const void *b)
{
    const custom_key *x = a, *y = b;
    size_t lx = strlen(x->key), ly = strlen(y->key);
    if (lx != ly)
        return lx > ly ? -1 : 1;
    return strcmp(x->key, y->key);
}

/* An optional number under node.key, NAN when absent or null. */
static dk_status opt_mult(const dk_cfg *node, const char *key, double *out)
{
    *out = NAN;
    const dk_cfg *v = dk_cfg_get(node, key);
    if (!v || dk_cfg_kind_of(v) == DK_CFG_NULL)
        return DK_OK;
    DK_TRY(dk_cfg_get_float(v, NULL, out));
    if (!(*out >= 0))
        return dkh_optim_cfg_fail(v, "a multiplier must be >= 0, got %g", *out);
    return DK_OK;
}

static dk_status read_custom_key(const dk_cfg *entry, const char *key, custom_key *ck)
{
    ck->key = dkh_strdup(key);
    ck->where = dkh_strdup(dkh_optim_where(entry));
    ck->lr_mult = ck->decay_mult = 1;
    if (dk_cfg_kind_of(entry) != DK_CFG_MAP)
        return dkh_optim_cfg_fail(entry, "expected a map {lr_mult, decay_mult}");
    for (size_t i = 0; i < dk_cfg_len(entry); i++) {
        const char *k = dk_cfg_key_at(entry, i);
        if (strcmp(k, "lr_mult") != 0 && strcmp(k, "decay_mult") != 0) {
            static const char *const known[] = {"lr_mult", "decay_mult"};
            const char *close = dkh_closest(k, known, 2);
            const dk_cfg *v = dk_cfg_at(entry, i);
            if (close)
                return dkh_optim_cfg_fail(v, "unknown key '%s' (did you mean '%s'?)", k, close);
            return dkh_optim_cfg_fail(v,
                                      "unknown key '%s' (a custom key takes lr_mult and "
                                      "decay_mult)",
                                      k);
        }
    }
    double v;
    DK_TRY(opt_mult(entry, "lr_mult", &v));
    if (!isnan(v))
        ck->lr_mult = v;
    DK_TRY(opt_mult(entry, "decay_mult", &v));
    if (!isnan(v))
        ck->decay_mult = v;
    return DK_OK;
}

static dk_status read_rules(dkh_paramwise *pw, const dk_cfg *cfg)
{
    DK_TRY(opt_mult(cfg, "bias_lr_mult", &pw->bias_lr_mult));
    DK_TRY(opt_mult(cfg, "bias_decay_mult", &pw->bias_decay_mult));
    DK_TRY(opt_mult(cfg, "norm_decay_mult", &pw->norm_decay_mult));
    DK_TRY(opt_mult(cfg, "flat_decay_mult", &pw->flat_decay_mult));
    const dk_cfg *bd = dk_cfg_get(cfg, "bypass_duplicate");
    if (bd && dk_cfg_kind_of(bd) != DK_CFG_NULL)
        DK_TRY(dk_cfg_get_bool(bd, NULL, &pw->bypass_duplicate));

    const dk_cfg *keys = dk_cfg_get(cfg, "custom_keys");
    if (!keys || dk_cfg_kind_of(keys) == DK_CFG_NULL)
        return DK_OK;
    if (dk_cfg_kind_of(keys) != DK_CFG_MAP)
        return dkh_optim_cfg_fail(keys, "expected a map of name substring -> "
                                        "{lr_mult, decay_mult}");
    size_t n = dk_cfg_len(keys);
    pw->keys = calloc(n ? n : 1, sizeof *pw->keys);
    DKH_ASSERT(pw->keys != NULL);
    for (size_t i = 0; i < n; i++) {
        pw->n_keys++;
        DK_TRY(read_custom_key(dk_cfg_at(keys, i), dk_cfg_key_at(keys, i), &pw->keys[i]));
    }
    qsort(pw->keys, pw->n_keys, sizeof *pw->keys, key_order);
    return DK_OK;
}

dk_status dkh_paramwise_new(const dk_cfg *cfg, dkh_paramwise **out)
{
    *out = NULL;
    dkh_paramwise *pw = calloc(1, sizeof *pw);
    DKH_ASSERT(pw != NULL);
    pw->bias_lr_mult = pw->bias_decay_mult = pw->norm_decay_mult = pw->flat_decay_mult = NAN;
    if (cfg && dk_cfg_kind_of(cfg) != DK_CFG_NULL) {
        dk_status s = read_rules(pw, cfg);
        if (s != DK_OK) {
            dkh_paramwise_free(pw);
            return s;
        }
    }
    *out = pw;
    return DK_OK;
}

void dkh_paramwise_free(dkh_paramwise *pw)
{
    if (!pw)
        return;
    for (size_t i = 0; i < pw->n_keys; i++) {
        free(pw->keys[i].key);
        free(pw->keys[i].where);
    }
    free(pw->keys);
    free(pw);
}

bool dkh_paramwise_bypass_duplicate(const dkh_paramwise *pw)
{
    return pw->bypass_duplicate;
}

/* Case-insensitive: does s[0, n) start with prefix / contain needle? */
static bool seg_starts(const char *s, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    if (k > n)
        return false;
    for (size_t i = 0; i < k; i++)
        if (tolower((unsigned char)s[i]) != prefix[i])
            return false;
    return true;
}

static bool seg_contains(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (seg_starts(s + i, n - i, needle))
            return true;
    return false;
}

bool dkh_paramwise_is_norm(const char *name)
{
    const char *last = strrchr(name, '.');
    if (!last)
        return false; /* a parameter of the root module itself */
    const char *seg = last;
    while (seg > name && seg[-1] != '.')
        seg--;
    size_t n = (size_t)(last - seg);
    static const char *const short_names[] = {"bn", "gn", "ln"};
    for (size_t i = 0; i < 3; i++) {
        if (!seg_starts(seg, n, short_names[i]))
            continue;
        char next = n > 2 ? seg[2] : '\0';
        if (next == '\0' || next == '_' || isdigit((unsigned char)next))
            return true;
    }
    return seg_contains(seg, n, "norm");
}

void dkh_paramwise_mults(dkh_paramwise *pw, const char *name, int ndim, double *lr_mult,
                         double *decay_mult)
{
    *lr_mult = 1;
    *decay_mult = 1;
    for (size_t i = 0; i < pw->n_keys; i++) {
        if (strstr(name, pw->keys[i].key)) {
            pw->keys[i].hits++;
            *lr_mult = pw->keys[i].lr_mult;
            *decay_mult = pw->keys[i].decay_mult;
            return;
        }
    }
    const char *dot = strrchr(name, '.');
    bool is_bias = strcmp(dot ? dot + 1 : name, "bias") == 0;
    bool is_norm = dkh_paramwise_is_norm(name);
    if (is_bias && !is_norm && !isnan(pw->bias_lr_mult))
        *lr_mult = pw->bias_lr_mult;
    if (is_norm && !isnan(pw->norm_decay_mult))
        *decay_mult = pw->norm_decay_mult;
    else if (is_bias && !isnan(pw->bias_decay_mult))
        *decay_mult = pw->bias_decay_mult;
    else if (ndim == 1 && !isnan(pw->flat_decay_mult))
        *decay_mult = pw->flat_decay_mult;
}

void dkh_paramwise_report_unused(const dkh_paramwise *pw)
{
    for (size_t i = 0; i < pw->n_keys; i++)
        if (!pw->keys[i].hits)
            dk_log(DK_LOG_WARN,
                   "%s: paramwise_cfg.custom_keys: '%s' matches no trainable "
                   "parameter",
                   pw->keys[i].where, pw->keys[i].key);
}
