/* core/runner/sync_bn.c — the config key sync_bn: batch norm over the
 * global batch of a data-parallel run (docs/distributed.md, "SyncBN").
 *
 * The key takes three forms: false (the default), true, or a map
 * {exclude: [PREFIX, ...]} as in BEVFusion's train.py. Every batch-norm
 * layer is synchronised except those whose module path starts with an
 * excluded prefix, compared by whole path components ("backbone.layer1"
 * covers "backbone.layer1.0.bn1", not "backbone.layer10"). A batch-norm
 * layer here is a module path P with the buffers P.running_mean and
 * P.running_var, as the model names its tensors (dk_module_tensor_at).
 *
 * The tensor runtime does the arithmetic (core/tensor/bn_sync.h); this file
 * reads and checks the key against the model, and installs the
 * synchronisation for the training loop: a sum over the process group, and
 * a predicate that refuses a layer whose running mean or weight is one of
 * the tensors under an excluded prefix (known by their data pointers, taken
 * when it is installed, after weights are loaded and broadcast).
 */
#include "runner_impl.h"

#include "../tensor/bn_sync.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct dkh_sync_bn {
    dkh_pg *pg;
    const char **prefixes; /* borrowed from the config; trailing '.' not counted */
    size_t *prefix_len;
    size_t n_prefixes;
    const void **excluded; /* data of every tensor under an excluded prefix, sorted */
    size_t n_excluded;
    bool installed;
};

/* Whether module path or tensor name `name` lies under prefix p (n chars). */
static bool under(const char *name, const char *p, size_t n)
{
    return strncmp(name, p, n) == 0 && (name[n] == '\0' || name[n] == '.');
}

/* The module path of a batch-norm layer owning tensor i, or 0: the length
 * of its name without ".running_mean" when P.running_var exists too. */
static size_t bn_layer_of(const dk_object *model, size_t i, const char **name)
{
    static const char suffix[] = ".running_mean";
    size_t sl = sizeof suffix - 1;
    bool is_buffer = false;
    *name = NULL;
    if (!dk_module_tensor_at(model, i, name, &is_buffer) || !*name || !is_buffer)
        return 0;
    size_t len = strlen(*name);
    if (len <= sl || strcmp(*name + len - sl, suffix) != 0)
        return 0;
    char var[512];
    int k = snprintf(var, sizeof var, "%.*s.running_var", (int)(len - sl), *name);
    if (k < 0 || (size_t)k >= sizeof var || !dk_module_find(model, var))
        return 0;
    return len - sl;
}

static const char *kind_text(const dk_cfg *n)
{
    switch (dk_cfg_kind_of(n)) {
    case DK_CFG_LIST:
        return "a list";
    case DK_CFG_MAP:
        return "a map";
    case DK_CFG_STRING:
        return "a string";
    default:
        return "a number";
    }
}

/* Reads the map form's exclude list into s->prefixes (borrowed strings). */
static dk_status read_exclude(const dk_cfg *node, struct dkh_sync_bn *s)
{
    for (size_t i = 0; i < dk_cfg_len(node); i++) {
        const char *key = dk_cfg_key_at(node, i);
        if (strcmp(key, "exclude") != 0)
            return dk_fail(DK_ERR_CONFIG,
                           "%s (%s): unknown key '%s' (sync_bn takes only "
                           "exclude: a list of module path prefixes)",
                           dk_cfg_path(dk_cfg_at(node, i)), dk_cfg_where(dk_cfg_at(node, i)), key);
    }
    const dk_cfg *ex = dk_cfg_get(node, "exclude");
    if (!ex || dk_cfg_kind_of(ex) == DK_CFG_NULL)
        return DK_OK;
    if (dk_cfg_kind_of(ex) != DK_CFG_LIST)
        return dk_fail(DK_ERR_CONFIG, "%s (%s): expected a list of module path prefixes, got %s",
                       dk_cfg_path(ex), dk_cfg_where(ex), kind_text(ex));
    size_t n = dk_cfg_len(ex);
    s->prefixes = dk_calloc(n ? n : 1, sizeof *s->prefixes);
    s->prefix_len = dk_calloc(n ? n : 1, sizeof *s->prefix_len);
    if (!s->prefixes || !s->prefix_len)
        return dk_fail(DK_ERR_NOMEM, "sync_bn: out of memory");
    for (size_t i = 0; i < n; i++) {
        const dk_cfg *e = dk_cfg_at(ex, i);
        const char *p = dk_cfg_kind_of(e) == DK_CFG_STRING ? dk_cfg_scalar(e) : NULL;
        size_t len = p ? strlen(p) : 0;
        while (len > 0 && p[len - 1] == '.')
            len--;
        if (len == 0)
            return dk_fail(DK_ERR_CONFIG,
                           "%s (%s): expected a module path prefix such as "
                           "'backbone.layer1', got %s",
                           dk_cfg_path(e), dk_cfg_where(e), p ? "an empty string" : kind_text(e));
        s->prefixes[i] = p;
        s->prefix_len[i] = len;
        s->n_prefixes = i + 1;
    }
    return DK_OK;
}

/* Fails naming the first excluded prefix that covers no batch-norm layer (a
 * typo must not leave every layer synchronised); *n_bn and *n_out receive
 * the counts of batch-norm layers and of those excluded. */
static dk_status check_prefixes(const dk_runner *r, const struct dkh_sync_bn *s, const dk_cfg *node,
                                size_t *n_bn, size_t *n_out)
{
    *n_bn = *n_out = 0;
    size_t n_t = dk_module_n_tensors(r->model);
    for (size_t i = 0; i < n_t; i++) {
        const char *name;
        size_t len = bn_layer_of(r->model, i, &name);
        if (!len)
            continue;
        (*n_bn)++;
        for (size_t k = 0; k < s->n_prefixes; k++)
            if (len >= s->prefix_len[k] && under(name, s->prefixes[k], s->prefix_len[k])) {
                (*n_out)++;
                break;
            }
    }
    for (size_t k = 0; k < s->n_prefixes; k++) {
        bool hit = false;
        for (size_t i = 0; i < n_t && !hit; i++) {
            const char *name;
            size_t len = bn_layer_of(r->model, i, &name);
            hit = len >= s->prefix_len[k] && under(name, s->prefixes[k], s->prefix_len[k]);
        }
        if (hit)
            continue;
        /* Name a few layers, so the fix is in the message. */
        dkh_buf some = DKH_BUF_INIT;
        size_t shown = 0;
        for (size_t i = 0; i < n_t; i++) {
            const char *name;
            size_t len = bn_layer_of(r->model, i, &name);
            if (!len)
                continue;
            if (shown < 6)
                dkh_buf_printf(&some, "%s%.*s", shown ? ", " : "", (int)len, name);
            shown++;
        }
        if (shown > 6)
            dkh_buf_printf(&some, ", ... (%zu in all)", shown);
        const dk_cfg *e = dk_cfg_at(dk_cfg_get(node, "exclude"), k);
        dk_status st = dk_fail(DK_ERR_CONFIG,
                               "%s (%s): '%s' is the module path prefix of no batch-norm layer "
                               "of the model (its batch-norm layers: %s)",
                               dk_cfg_path(e), dk_cfg_where(e), s->prefixes[k],
                               shown ? dkh_buf_str(&some) : "none");
        dkh_buf_fini(&some);
        return st;
    }
    return DK_OK;
}

static void state_free(struct dkh_sync_bn *s)
{
    if (!s)
        return;
    dk_free(s->prefixes);
    dk_free(s->prefix_len);
    dk_free(s->excluded);
    dk_free(s);
}

dk_status dkh_sync_bn_begin(dk_runner *r)
{
    const dk_cfg *node = dk_cfg_get(r->cfg, "sync_bn");
    dk_cfg_kind kind = dk_cfg_kind_of(node);
    bool on = kind == DK_CFG_MAP;
    if (kind == DK_CFG_BOOL)
        DK_TRY(dk_cfg_get_bool(node, NULL, &on));
    else if (kind != DK_CFG_MAP && kind != DK_CFG_NULL)
        return dk_fail(DK_ERR_CONFIG,
                       "%s (%s): expected true, false or {exclude: [module path "
                       "prefix, ...]}, got %s",
                       dk_cfg_path(node), dk_cfg_where(node), kind_text(node));
    if (!on)
        return DK_OK;
    struct dkh_sync_bn *s = dk_calloc(1, sizeof *s);
    if (!s)
        return dk_fail(DK_ERR_NOMEM, "sync_bn: out of memory");
    size_t n_bn = 0, n_out = 0;
    dk_status st = kind == DK_CFG_MAP ? read_exclude(node, s) : DK_OK;
    if (st == DK_OK)
        st = check_prefixes(r, s, node, &n_bn, &n_out);
    if (st != DK_OK || !dkh_dist_active(r)) {
        if (st == DK_OK)
            dk_log(DK_LOG_INFO, "sync_bn: one process, so batch norm is the ordinary one "
                                "(nothing to synchronise)");
        state_free(s);
        return st;
    }
    /* The synchronised forward runs on the CPU only: say so now rather than
     * at the first step. */
    for (size_t i = 0; i < dk_module_n_tensors(r->model); i++) {
        const char *name;
        size_t len = bn_layer_of(r->model, i, &name);
        bool skip = len == 0;
        for (size_t k = 0; !skip && k < s->n_prefixes; k++)
            skip = len >= s->prefix_len[k] && under(name, s->prefixes[k], s->prefix_len[k]);
        if (skip)
            continue;
        bool is_buffer;
        dk_device dev = dk_tensor_device(dk_module_tensor_at(r->model, i, &name, &is_buffer));
        if (dev.type != DK_DEVICE_CPU) {
            state_free(s);
            return dk_fail(DK_ERR_UNSUPPORTED,
                           "%s (%s): synchronised batch norm runs on CPU "
                           "tensors only, and %s is not on the CPU",
                           dk_cfg_path(node), dk_cfg_where(node), name);
        }
    }
    s->pg = r->pg;
    r->sync_bn = s;
    dk_log(DK_LOG_INFO,
           "sync_bn: batch norm over the global batch of %d ranks in %zu of %zu "
           "batch-norm layers (%zu excluded)",
           r->world_size, n_bn - n_out, n_bn, n_out);
    return DK_OK;
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (const void *const *)a, y = (uintptr_t) * (const void *const *)b;
    return x < y ? -1 : x > y;
}

static bool is_excluded(const struct dkh_sync_bn *s, const dk_tensor *t)
{
    if (!t || !s->n_excluded)
        return false;
    const void *p = dk_tensor_data(t);
    return bsearch(&p, s->excluded, s->n_excluded, sizeof *s->excluded, cmp_ptr) != NULL;
}

static bool sync_applies(void *ctx, const dk_tensor *running_mean, const dk_tensor *weight)
{
    const struct dkh_sync_bn *s = ctx;
    return !is_excluded(s, running_mean) && !is_excluded(s, weight);
}

static dk_status sync_all_reduce_sum(void *ctx, double *buf, size_t n)
{
    const struct dkh_sync_bn *s = ctx;
    return dkh_pg_all_reduce_buf(s->pg, buf, n, DK_DTYPE_F64, DKH_REDUCE_SUM);
}

dk_status dkh_sync_bn_install(dk_runner *r, bool on)
{
    struct dkh_sync_bn *s = r->sync_bn;
    if (!s || on == s->installed)
        return DK_OK;
    if (!on) {
        dkh_bn_sync_set(NULL);
        s->installed = false;
        return DK_OK;
    }
    /* The tensors under an excluded prefix, as they are now (after loading). */
    size_t n_t = dk_module_n_tensors(r->model), n = 0;
    dk_free(s->excluded);
    s->excluded = dk_calloc(n_t ? n_t : 1, sizeof *s->excluded);
    if (!s->excluded)
        return dk_fail(DK_ERR_NOMEM, "sync_bn: out of memory");
    for (size_t i = 0; i < n_t; i++) {
        const char *name = NULL;
        bool is_buffer = false;
        dk_tensor *t = dk_module_tensor_at(r->model, i, &name, &is_buffer);
        for (size_t k = 0; t && name && k < s->n_prefixes; k++)
            if (under(name, s->prefixes[k], s->prefix_len[k])) {
                s->excluded[n++] = dk_tensor_data(t);
                break;
            }
    }
    qsort(s->excluded, n, sizeof *s->excluded, cmp_ptr);
    s->n_excluded = n;
    dkh_bn_sync sync = {.ctx = s, .applies = sync_applies, .all_reduce_sum = sync_all_reduce_sum};
    dkh_bn_sync_set(&sync);
    s->installed = true;
    return DK_OK;
}

void dkh_sync_bn_end(dk_runner *r)
{
    if (!r->sync_bn)
        return;
    if (r->sync_bn->installed)
        dkh_bn_sync_set(NULL);
    state_free(r->sync_bn);
    r->sync_bn = NULL;
}
