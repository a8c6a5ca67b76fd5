/* checkpoint_hook — CheckpointHook: periodic, last and best checkpoints.
 *
 * mmengine's semantics: a checkpoint every `interval` epochs (or iterations)
 * named by a template with the count from 1 ("epoch_3.dkpt"), the oldest of
 * them removed beyond `max_keep_ckpts`, one after the final epoch with
 * `save_last`, and with `save_best` exactly one "best_<metric>_epoch_<n>.dkpt"
 * that is replaced whenever the metric improves. The hook's memory of what it
 * saved (the best score and file, the files it rotates) travels in every
 * checkpoint, so a resumed run keeps its best and its rotation.
 */
#include <dk/dk.h>

#include "../common/metric_rule.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct ckpt {
    /* options */
    int64_t interval; /* <= 0: no periodic checkpoints */
    int by_epoch_opt; /* 1, 0, or -1: as the training counts */
    int64_t max_keep; /* <= 0: keep all */
    bool save_last;
    char *save_best; /* NULL, "auto" or a metric key */
    char *rule;      /* NULL, "greater" or "less" */
    char *out_dir;
    char *tmpl; /* NULL: epoch_{}.dkpt or iter_{}.dkpt */
    /* this run */
    bool by_epoch;
    char *dir; /* absolute directory of the files, NULL: the work dir */
    /* state, saved in checkpoints */
    char *best_key;
    bool has_best;
    double best_score;
    char *best_file;
    char **kept; /* periodic files, oldest first */
    size_t n_kept;
} ckpt;

static void free_kept(ckpt *c)
{
    for (size_t i = 0; i < c->n_kept; i++)
        dk_free(c->kept[i]);
    dk_free(c->kept);
    c->kept = NULL;
    c->n_kept = 0;
}

static void ckpt_destroy(void *self)
{
    ckpt *c = self;
    free_kept(c);
    dk_free(c->save_best);
    dk_free(c->rule);
    dk_free(c->out_dir);
    dk_free(c->tmpl);
    dk_free(c->dir);
    dk_free(c->best_key);
    dk_free(c->best_file);
    dk_free(c);
}

static dk_status dup_opt(const dk_cfg *cfg, const char *key, char **out)
{
    const char *v = cfg_opt_str(cfg, key);
    *out = NULL;
    if (v && !(*out = dk_strdup(v)))
        return dk_fail(DK_ERR_NOMEM, "CheckpointHook: out of memory");
    return DK_OK;
}

/* A template is a file name with one "{}" where the count goes. */
static dk_status check_tmpl(const dk_cfg *cfg)
{
    const dk_cfg *node = dk_cfg_get(cfg, "filename_tmpl");
    const char *t = cfg_opt_str(cfg, "filename_tmpl");
    if (!t)
        return DK_OK;
    const char *at = strstr(t, "{}");
    if (!at || strstr(at + 2, "{}") || strchr(t, '/'))
        return dk_fail(DK_ERR_CONFIG,
                       "filename_tmpl (%s) must be a file name with one {} for the epoch or "
                       "iteration number, e.g. \"epoch_{}.dkpt\"; got \"%s\"",
                       dk_cfg_where(node), t);
    return DK_OK;
}

static dk_status ckpt_create(const dk_cfg *cfg, void **self)
{
    ckpt *c = dk_calloc(1, sizeof *c);
    if (!c)
        return dk_fail(DK_ERR_NOMEM, "CheckpointHook: out of memory");
    c->by_epoch_opt = -1;
    dk_status s = DK_OK;
    if (dk_cfg_kind_of(dk_cfg_get(cfg, "by_epoch")) == DK_CFG_BOOL) {
        bool on = false;
        s = dk_cfg_get_bool(cfg, "by_epoch", &on);
        c->by_epoch_opt = on;
    }
    if (s == DK_OK)
        s = dk_cfg_get_int(cfg, "interval", &c->interval);
    if (s == DK_OK)
        s = dk_cfg_get_int(cfg, "max_keep_ckpts", &c->max_keep);
    if (s == DK_OK)
        s = dk_cfg_get_bool(cfg, "save_last", &c->save_last);
    if (s == DK_OK)
        s = check_tmpl(cfg);
    if (s == DK_OK)
        s = dup_opt(cfg, "save_best", &c->save_best);
    if (s == DK_OK)
        s = dup_opt(cfg, "rule", &c->rule);
    if (s == DK_OK)
        s = dup_opt(cfg, "out_dir", &c->out_dir);
    if (s == DK_OK)
        s = dup_opt(cfg, "filename_tmpl", &c->tmpl);
    if (s != DK_OK) {
        ckpt_destroy(c);
        return s;
    }
    *self = c;
    return DK_OK;
}

/* mkdir -p. */
static dk_status make_dirs(const char *path)
{
    char *p = dk_strdup(path);
    if (!p)
        return dk_fail(DK_ERR_NOMEM, "CheckpointHook: out of memory");
    dk_status s = DK_OK;
    for (char *q = p + 1;; q++) {
        if (*q != '/' && *q != '\0')
            continue;
        char was = *q;
        *q = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            s = dk_fail(DK_ERR_IO, "CheckpointHook: cannot create out_dir %s: %s", p,
                        strerror(errno));
        *q = was;
        if (s != DK_OK || was == '\0')
            break;
    }
    dk_free(p);
    return s;
}

/* mmengine's out_dir: <out_dir>/<last part of the work dir>, made absolute
 * so the runner and this hook agree on where the files are. */
static dk_status resolve_dir(ckpt *c, dk_runner *r)
{
    const char *work = dk_runner_work_dir(r);
    if (!c->out_dir || !work)
        return DK_OK;
    const char *base = strrchr(work, '/');
    base = base ? base + 1 : work;
    size_t n = strlen(c->out_dir) + strlen(base) + 2;
    char *dir = dk_malloc(n);
    if (!dir)
        return dk_fail(DK_ERR_NOMEM, "CheckpointHook: out of memory");
    snprintf(dir, n, "%s/%s", c->out_dir, base);
    dk_status s = make_dirs(dir);
    char *abs = s == DK_OK ? realpath(dir, NULL) : NULL;
    if (s == DK_OK && !abs)
        s = dk_fail(DK_ERR_IO, "CheckpointHook: out_dir %s: %s", dir, strerror(errno));
    dk_free(dir);
    if (abs) {
        dk_free(c->dir);
        c->dir = dk_strdup(abs);
        free(abs);
        if (!c->dir)
            s = dk_fail(DK_ERR_NOMEM, "CheckpointHook: out of memory");
    }
    return s;
}

static dk_status ckpt_before_run(void *self, dk_runner *r)
{
    ckpt *c = self;
    c->by_epoch = c->by_epoch_opt < 0 ? dk_runner_by_epoch(r) : c->by_epoch_opt == 1;
    return resolve_dir(c, r);
}

/* The name handed to the runner: bare (in the work dir) or under c->dir. */
static char *file_name(const ckpt *c, const char *base)
{
    size_t n = strlen(base) + (c->dir ? strlen(c->dir) + 1 : 0) + 1;
    char *name = dk_malloc(n);
    if (name)
        snprintf(name, n, "%s%s%s", c->dir ? c->dir : "", c->dir ? "/" : "", base);
    return name;
}

static dk_status push_kept(ckpt *c, char *name)
{
    char **k = dk_realloc(c->kept, (c->n_kept + 1) * sizeof *k);
    if (!k)
        return dk_fail(DK_ERR_NOMEM, "CheckpointHook: out of memory");
    c->kept = k;
    c->kept[c->n_kept++] = name;
    return DK_OK;
}

/* Saves the periodic checkpoint for count n, then drops the oldest beyond
 * max_keep_ckpts. The list is trimmed before saving so the checkpoint's own
 * record of the rotation matches what will be on disk. A file already gone
 * (deleted by a user) is not an error. */
static dk_status save_periodic(ckpt *c, dk_runner *r, int64_t n)
{
    const char *tmpl = c->tmpl ? c->tmpl : c->by_epoch ? "epoch_{}.dkpt" : "iter_{}.dkpt";
    const char *at = strstr(tmpl, "{}");
    char base[1024];
    snprintf(base, sizeof base, "%.*s%lld%s", (int)(at - tmpl), tmpl, (long long)n, at + 2);
    char *name = file_name(c, base);
    if (!name)
        return dk_fail(DK_ERR_NOMEM, "CheckpointHook: out of memory");
    if (c->n_kept && !strcmp(c->kept[c->n_kept - 1], name)) {
        dk_free(name); /* saved again (a resumed run): overwrite, keep one entry */
        return dk_runner_save_checkpoint(r, c->kept[c->n_kept - 1]);
    }
    DK_TRY(push_kept(c, name));
    size_t drop = c->max_keep > 0 && c->n_kept > (size_t)c->max_keep
                      ? c->n_kept - (size_t)c->max_keep
                      : 0;
    char **dropped = NULL;
    if (drop) {
        dropped = dk_malloc(drop * sizeof *dropped);
        if (!dropped)
            return dk_fail(DK_ERR_NOMEM, "CheckpointHook: out of memory");
        memcpy(dropped, c->kept, drop * sizeof *dropped);
        memmove(c->kept, c->kept + drop, (c->n_kept - drop) * sizeof *c->kept);
        c->n_kept -= drop;
    }
    dk_status s = dk_runner_save_checkpoint(r, name);
    for (size_t i = 0; i < drop; i++) {
        if (s == DK_OK)
            s = dk_runner_remove_checkpoint(r, dropped[i]);
        dk_free(dropped[i]);
    }
    dk_free(dropped);
    return s;
}

static dk_status ckpt_after_train_epoch(void *self, dk_runner *r)
{
    ckpt *c = self;
    if (!c->by_epoch)
        return DK_OK;
    int64_t n = dk_runner_epoch(r) + 1;
    if ((c->interval > 0 && n % c->interval == 0) || (c->save_last && n == dk_runner_max_epochs(r)))
        return save_periodic(c, r, n);
    return DK_OK;
}

static dk_status ckpt_after_train_iter(void *self, dk_runner *r)
{
    ckpt *c = self;
    if (c->by_epoch)
        return DK_OK;
    int64_t n = dk_runner_iter(r) + 1;
    if ((c->interval > 0 && n % c->interval == 0) || (c->save_last && n == dk_runner_max_iters(r)))
        return save_periodic(c, r, n);
    return DK_OK;
}

/* "best_accuracy_top1_epoch_3.dkpt": the metric's name made a file name. */
static char *best_name(const ckpt *c, int64_t n)
{
    char base[512];
    int len = snprintf(base, sizeof base, "best_%s", c->best_key);
    for (int i = 5; i < len && i < (int)sizeof base; i++) {
        char ch = base[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '.'))
            base[i] = '_';
    }
    size_t used = strlen(base);
    snprintf(base + used, sizeof base - used, "_%s_%lld.dkpt", c->by_epoch ? "epoch" : "iter",
             (long long)n);
    return file_name(c, base);
}

static dk_status ckpt_after_val_epoch(void *self, dk_runner *r)
{
    ckpt *c = self;
    const dk_dict *metrics = dk_runner_outputs(r);
    if (!c->save_best)
        return DK_OK;
    if (!c->best_key) {
        const char *key = NULL;
        if (!strcmp(c->save_best, "auto")) {
            for (size_t i = 0; i < dk_dict_len(metrics) && !key; i++)
                if (dk_dict_kind(metrics, i) == DK_VALUE_NUMBER)
                    key = dk_dict_key(metrics, i);
            if (!key) {
                dk_log(DK_LOG_WARN, "CheckpointHook: save_best: auto found no validation "
                                    "metric; no best checkpoint saved");
                return DK_OK;
            }
        } else {
            key = c->save_best;
        }
        if (!(c->best_key = dk_strdup(key)))
            return dk_fail(DK_ERR_NOMEM, "CheckpointHook: out of memory");
    }
    int64_t at = dk_dict_find(metrics, c->best_key);
    if (at < 0 || dk_dict_kind(metrics, (size_t)at) != DK_VALUE_NUMBER) {
        char keys[512];
        metric_keys(metrics, keys, sizeof keys);
        return dk_fail(DK_ERR_CONFIG,
                       "CheckpointHook: save_best '%s' is not among the validation metrics (%s)",
                       c->best_key, keys);
    }
    double v = dk_dict_number(metrics, c->best_key, NAN);
    int rule = metric_rule(c->rule, c->best_key);
    if (!isfinite(v) || (c->has_best && !metric_improves(rule, v, c->best_score, 0)))
        return DK_OK;
    int64_t n = c->by_epoch ? dk_runner_epoch(r) : dk_runner_iter(r);
    char *name = best_name(c, n);
    if (!name)
        return dk_fail(DK_ERR_NOMEM, "CheckpointHook: out of memory");
    char *old = c->best_file;
    c->best_file = name;
    c->best_score = v;
    c->has_best = true;
    dk_status s = dk_runner_save_checkpoint(r, name);
    if (s == DK_OK && old && strcmp(old, name) != 0)
        s = dk_runner_remove_checkpoint(r, old);
    if (s == DK_OK)
        dk_log(DK_LOG_INFO, "The best checkpoint with %.4f %s at %s %lld is saved to %s", v,
               c->best_key, c->by_epoch ? "epoch" : "iter", (long long)n, name);
    dk_free(old);
    return s;
}

static dk_status ckpt_before_save_checkpoint(void *self, dk_runner *r)
{
    ckpt *c = self;
    dk_dict *state = dk_runner_state(r);
    if (!state)
        return DK_OK;
    size_t len = 1;
    for (size_t i = 0; i < c->n_kept; i++)
        len += strlen(c->kept[i]) + 1;
    char *kept = dk_malloc(len);
    if (!kept)
        return dk_fail(DK_ERR_NOMEM, "CheckpointHook: out of memory");
    kept[0] = '\0';
    for (size_t i = 0; i < c->n_kept; i++) {
        strcat(kept, c->kept[i]);
        strcat(kept, "\n");
    }
    dk_status s = dk_dict_set_string(state, "kept", kept);
    dk_free(kept);
    if (s == DK_OK && c->best_key)
        s = dk_dict_set_string(state, "best_key", c->best_key);
    if (s == DK_OK && c->has_best)
        s = dk_dict_set_number(state, "best_score", c->best_score);
    if (s == DK_OK && c->best_file)
        s = dk_dict_set_string(state, "best_file", c->best_file);
    return s;
}

static dk_status set_str(char **dst, const char *src)
{
    dk_free(*dst);
    *dst = NULL;
    if (src && !(*dst = dk_strdup(src)))
        return dk_fail(DK_ERR_NOMEM, "CheckpointHook: out of memory");
    return DK_OK;
}

static dk_status ckpt_after_load_checkpoint(void *self, dk_runner *r)
{
    ckpt *c = self;
    const dk_dict *state = dk_runner_state(r);
    if (!state || dk_dict_len(state) == 0)
        return DK_OK;
    DK_TRY(set_str(&c->best_key, dk_dict_string(state, "best_key")));
    DK_TRY(set_str(&c->best_file, dk_dict_string(state, "best_file")));
    double best = dk_dict_number(state, "best_score", NAN);
    c->has_best = isfinite(best);
    c->best_score = c->has_best ? best : 0;
    free_kept(c);
    const char *kept = dk_dict_string(state, "kept");
    for (const char *p = kept; p && *p;) {
        const char *end = strchr(p, '\n');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char *name = dk_malloc(n + 1);
        if (!name)
            return dk_fail(DK_ERR_NOMEM, "CheckpointHook: out of memory");
        memcpy(name, p, n);
        name[n] = '\0';
        dk_status s = push_kept(c, name);
        if (s != DK_OK) {
            dk_free(name);
            return s;
        }
        p += n + (end ? 1 : 0);
    }
    return DK_OK;
}

static const dk_param ckpt_params[] = {
    {.name = "interval", .type = DK_PARAM_INT, .def = "1", .min = "-1",
     .doc = "save every this many epochs (or iterations); -1 or 0: only save_last and "
            "save_best"},
    {.name = "by_epoch", .type = DK_PARAM_BOOL, .flags = DK_PARAM_NULLABLE,
     .doc = "count interval in epochs (true) or iterations (false); null: as the training "
            "counts"},
    {.name = "max_keep_ckpts", .type = DK_PARAM_INT, .def = "-1", .min = "-1",
     .doc = "keep only the newest this many periodic checkpoints, removing older ones this "
            "hook saved; -1 or 0: keep all"},
    {.name = "save_last", .type = DK_PARAM_BOOL, .def = "true",
     .doc = "also save after the final epoch (or iteration) when it is off the interval"},
    {.name = "save_best", .type = DK_PARAM_STRING, .flags = DK_PARAM_NULLABLE,
     .doc = "keep one best_<metric>_epoch_<n>.dkpt for this validation metric "
            "(e.g. accuracy/top1), or \"auto\" for the first metric; null: none"},
    {.name = "rule", .type = DK_PARAM_STRING, .flags = DK_PARAM_NULLABLE,
     .choices = "greater|less",
     .doc = "whether a greater or a smaller save_best metric is better; null: less for names "
            "containing \"loss\", else greater"},
    {.name = "out_dir", .type = DK_PARAM_STRING, .flags = DK_PARAM_NULLABLE,
     .doc = "save into <out_dir>/<work dir's last part> instead of the work dir"},
    {.name = "filename_tmpl", .type = DK_PARAM_STRING, .flags = DK_PARAM_NULLABLE,
     .doc = "file name with {} for the count; null: epoch_{}.dkpt or iter_{}.dkpt"},
    DK_PARAM_HOOK_PRIORITY,
};

static const dk_hook_vtable ckpt_vtable = {
    .struct_size = sizeof(dk_hook_vtable),
    .create = ckpt_create,
    .destroy = ckpt_destroy,
    .priority = DK_PRIORITY_VERY_LOW, /* after the hooks whose state goes into the file */
    .before_run = ckpt_before_run,
    .after_train_epoch = ckpt_after_train_epoch,
    .after_train_iter = ckpt_after_train_iter,
    .after_val_epoch = ckpt_after_val_epoch,
    .before_save_checkpoint = ckpt_before_save_checkpoint,
    .after_load_checkpoint = ckpt_after_load_checkpoint,
};

static const dk_type_info ckpt_types[] = {{
    DK_TYPE_INFO_HEAD,
    .kind = "hook",
    .name = "CheckpointHook",
    .summary = "Save checkpoints periodically, after the last epoch and for the best metric",
    .iface = DK_IFACE_HOOK,
    .vtable = &ckpt_vtable,
    DK_PARAMS(ckpt_params),
}};

DK_PLUGIN_DEFINE_TYPES(ckpt_types,
                       .name = "checkpoint_hook", .version = "0.1.0",
                       .summary = "Checkpoint saving hook (interval, rotation, last, best)",
                       .license = "Apache-2.0", .source = "in-tree",
                       .flags = DK_PLUGIN_UNLOADABLE)
