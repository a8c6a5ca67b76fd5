/* core/runner/run_state.c — a whole run in one checkpoint, and back.
 *
 * The container (core/ckpt) stores a YAML metadata text and named tensors.
 * A run writes:
 *   metadata  kind: run, the finished counters (epoch, iteration, the batches of
 *             the current epoch, samples seen), seed and the training thread's
 *             random generator, class names, the optimizer's and each hook's
 *             numbers and strings, the environment, and the resolved config;
 *   tensors   "model.<name>" every parameter and buffer,
 *             "optim.<name>" the optimizer state (momentum buffers, ...),
 *             "hooks.<hook>.<name>" tensors a hook saved (EMA weights, ...).
 * A state is a dk_dict on both sides (the optimizer wrapper and the hooks
 * fill and read one), so this file is the only one that knows the layout.
 */
#include "runner_impl.h"

#include "../cfg/cfg.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- writing ------------------------------------------------------------------ */

static void put_number(dkh_buf *b, double v)
{
    if (isnan(v))
        dkh_buf_puts(b, ".nan");
    else if (isinf(v))
        dkh_buf_puts(b, v > 0 ? ".inf" : "-.inf");
    else if (v == (double)(int64_t)v && fabs(v) < 9e15)
        dkh_buf_printf(b, "%" PRId64, (int64_t)v);
    else
        dkh_buf_printf(b, "%.17g", v);
}

/* The numbers and strings of state as a YAML map at indent; tensors go to the
 * writer as "<prefix>.<key>". */
static dk_status put_state(dkh_buf *meta, int indent, const dk_dict *state, const char *prefix,
                           dkh_ckpt_writer *w)
{
    size_t scalars = 0;
    for (size_t i = 0; i < dk_dict_len(state); i++) {
        const char *key = dk_dict_key(state, i);
        dk_value_kind kind = dk_dict_kind(state, i);
        if (kind == DK_VALUE_TENSOR) {
            char *name = dkh_asprintf("%s.%s", prefix, key);
            dk_status s = dkh_ckpt_writer_add(w, name, dk_dict_tensor(state, key));
            free(name);
            DK_TRY(s);
            continue;
        }
        if (kind != DK_VALUE_NUMBER && kind != DK_VALUE_STRING)
            continue; /* tensor lists are not state */
        dkh_buf_printf(meta, "\n%*s", indent, "");
        dkh_buf_json_str(meta, key);
        dkh_buf_puts(meta, ": ");
        if (kind == DK_VALUE_NUMBER)
            put_number(meta, dk_dict_number(state, key, 0));
        else
            dkh_buf_json_str(meta, dk_dict_string(state, key));
        scalars++;
    }
    if (!scalars)
        dkh_buf_puts(meta, " {}");
    dkh_buf_putc(meta, '\n');
    return DK_OK;
}

/* Counters of finished work at this moment: the after_* hooks run before the
 * runner advances them. */
static void finished(const dk_runner *r, int64_t *epoch, int64_t *iter, int64_t *inner,
                     int64_t *samples)
{
    *epoch = r->epoch;
    *iter = r->iter;
    *inner = r->phase == DK_PHASE_TRAIN ? r->inner_iter : 0;
    *samples = r->samples_seen;
    if (r->point == DKH_POINT_after_train_iter) {
        *iter += 1;
        *inner += 1;
        *samples += r->train.batch_size;
    } else if (r->point == DKH_POINT_after_train_epoch && r->by_epoch) {
        *epoch += 1;
        *inner = 0;
    }
}

static void put_class_names(dkh_buf *meta, const dk_runner *r)
{
    dkh_buf_puts(meta, "class_names: [");
    dk_object *ds = r->train.dataset ? r->train.dataset : r->val.dataset;
    const dk_dataset_vtable *vt = ds ? dk_object_type(ds)->vtable : NULL;
    for (int64_t i = 0; vt && vt->class_name; i++) {
        const char *name = vt->class_name(dk_object_self(ds), i);
        if (!name)
            break;
        if (i)
            dkh_buf_puts(meta, ", ");
        dkh_buf_json_str(meta, name);
    }
    dkh_buf_puts(meta, "]\n");
}

static dk_status write_all(dk_runner *r, dkh_ckpt_writer *w)
{
    int64_t epoch, iter, inner, samples;
    finished(r, &epoch, &iter, &inner, &samples);
    const dk_rng *rng = dk_rng_default();
    dkh_buf meta = DKH_BUF_INIT;
    dkh_buf_printf(&meta,
                   "kind: run\n"
                   "epoch: %" PRId64 "\niteration: %" PRId64 "\ninner_iter: %" PRId64 "\n"
                   "samples_seen: %" PRId64 "\nby_epoch: %s\nmax_iters: %" PRId64 "\n"
                   "seed: %" PRIu64 "\ndeterministic: %s\n"
                   "rng: {key: '0x%016" PRIx64 "', counter: '0x%016" PRIx64 "'}\n"
                   "lr_scale: %.17g\nnan_rollbacks: %" PRId64 "\n"
                   "world_size: %d\ntrain_batch_size: %" PRId64 "\n",
                   epoch, iter, inner, samples, r->by_epoch ? "true" : "false", r->max_iters,
                   r->seed, r->deterministic ? "true" : "false", rng->key, rng->counter,
                   r->lr_scale, r->nan_rollbacks, r->world_size, r->train.batch_size);
    put_class_names(&meta, r);

    dk_status s = DK_OK;
    for (size_t i = 0; s == DK_OK && i < dk_module_n_tensors(r->model); i++) {
        const char *name = NULL;
        dk_tensor *t = dk_module_tensor_at(r->model, i, &name, NULL);
        char *full = dkh_asprintf("model.%s", name);
        s = dkh_ckpt_writer_add(w, full, t);
        free(full);
    }
    if (s == DK_OK && r->optim) {
        dk_dict *st = dk_dict_new();
        s = st ? dkh_optim_state_save(r->optim, st) : DK_ERR_NOMEM;
        dkh_buf_puts(&meta, "optimizer:");
        if (s == DK_OK)
            s = put_state(&meta, 2, st, "optim", w);
        dk_dict_free(st);
    }
    dkh_buf_puts(&meta, "hooks:");
    if (!r->n_hooks)
        dkh_buf_puts(&meta, " {}");
    dkh_buf_putc(&meta, '\n');
    for (size_t i = 0; s == DK_OK && i < r->n_hooks; i++) {
        dkh_hook *h = &r->hooks[i];
        r->state = dk_dict_new();
        s = r->state ? dkh_hook_call(r, h, DKH_POINT_before_save_checkpoint) : DK_ERR_NOMEM;
        if (s == DK_OK) {
            char *prefix = dkh_asprintf("hooks.%s", h->name);
            dkh_buf_printf(&meta, "  ");
            dkh_buf_json_str(&meta, h->name);
            dkh_buf_putc(&meta, ':');
            s = put_state(&meta, 4, r->state, prefix, w);
            free(prefix);
        }
        dk_dict_free(r->state);
        r->state = NULL;
    }
    if (s == DK_OK) {
        dkh_buf_printf(&meta, "env:\n%s", r->env_yaml ? r->env_yaml : "");
        dkh_buf cfg = DKH_BUF_INIT;
        dkh_cfg_dump(r->cfg, &cfg);
        dkh_buf_puts(&meta, "config:\n");
        for (const char *line = dkh_buf_str(&cfg); *line;) {
            const char *nl = strchr(line, '\n');
            size_t n = nl ? (size_t)(nl - line) : strlen(line);
            dkh_buf_printf(&meta, "  %.*s\n", (int)n, line);
            line += n + (nl ? 1 : 0);
        }
        dkh_buf_fini(&cfg);
        s = dkh_ckpt_writer_meta(w, dkh_buf_str(&meta));
    }
    dkh_buf_fini(&meta);
    return s;
}

static dk_status save_file(dk_runner *r, const char *path)
{
    dkh_ckpt_writer *w = NULL;
    DK_TRY(dkh_ckpt_writer_open(path, &w));
    dk_status s = write_all(r, w);
    if (s != DK_OK) {
        dkh_ckpt_writer_abort(w);
        dk_error_prefix("saving checkpoint %s", path);
        return s;
    }
    DK_TRY(dkh_ckpt_writer_commit(w));
    dk_log(DK_LOG_INFO, "saved checkpoint %s", path);
    return DK_OK;
}

/* Collective in a distributed run: the buffers come from rank 0 first (so
 * the file holds what rank 0 evaluates and every rank keeps training
 * alike), rank 0 writes, and every rank learns whether it could. */
dk_status dkh_run_save(dk_runner *r, const char *path)
{
    DK_TRY(dkh_dist_broadcast_model(r, false));
    dk_status s = r->rank == 0 ? save_file(r, path) : DK_OK;
    double failed = s != DK_OK;
    dk_status agreed = dkh_dist_agree_max(r, &failed);
    if (s != DK_OK)
        return s;
    DK_TRY(agreed);
    if (failed)
        return dk_fail(DK_ERR_IO, "rank 0 could not save checkpoint %s (its message says why)",
                       path);
    return dkh_hooks_call(r, DKH_POINT_after_save_checkpoint);
}

/* ---- reading ------------------------------------------------------------------ */

/* The state saved under meta_key (a YAML map of numbers and strings) and
 * tensors named "<prefix>.*", as a new dict. */
static dk_status get_state(dkh_ckpt *c, const dk_cfg *map, const char *prefix, dk_dict **out)
{
    dk_dict *d = dk_dict_new();
    if (!d)
        return DK_ERR_NOMEM;
    dk_status s = DK_OK;
    for (size_t i = 0; s == DK_OK && i < dk_cfg_len(map); i++) {
        const dk_cfg *v = dk_cfg_at(map, i);
        const char *key = dk_cfg_key_at(map, i);
        double num;
        if (dk_cfg_kind_of(v) == DK_CFG_INT || dk_cfg_kind_of(v) == DK_CFG_FLOAT) {
            s = dk_cfg_get_float(v, NULL, &num);
            if (s == DK_OK)
                s = dk_dict_set_number(d, key, num);
        } else if (dk_cfg_kind_of(v) == DK_CFG_STRING) {
            s = dk_dict_set_string(d, key, dk_cfg_scalar(v));
        }
    }
    size_t plen = strlen(prefix);
    for (size_t i = 0; s == DK_OK && i < dkh_ckpt_count(c); i++) {
        const char *name = dkh_ckpt_name(c, i);
        if (strncmp(name, prefix, plen) != 0 || name[plen] != '.')
            continue;
        int64_t shape[DK_MAX_DIMS];
        int ndim = dkh_ckpt_shape(c, i, shape);
        dk_tensor *t = dk_empty(ndim, shape, dkh_ckpt_dtype(c, i), (dk_device){DK_DEVICE_CPU, 0});
        s = t ? dkh_ckpt_read(c, i, t) : dk_last_status();
        if (s == DK_OK)
            s = dk_dict_set_tensor(d, name + plen + 1, t);
        dk_tensor_release(t);
    }
    if (s != DK_OK) {
        dk_dict_free(d);
        return s;
    }
    *out = d;
    return DK_OK;
}

static dk_status meta_int(const dk_cfg *meta, const char *key, const char *path, int64_t *out)
{
    const dk_cfg *n = dk_cfg_get(meta, key);
    if (!n || dk_cfg_get_int(n, NULL, out) != DK_OK)
        return dk_fail(DK_ERR_IO, "checkpoint %s: metadata has no integer '%s'", path, key);
    return DK_OK;
}

static dk_status meta_float(const dk_cfg *meta, const char *key, const char *path, double *out)
{
    const dk_cfg *n = dk_cfg_get(meta, key);
    if (!n || dk_cfg_get_float(n, NULL, out) != DK_OK)
        return dk_fail(DK_ERR_IO, "checkpoint %s: metadata has no number '%s'", path, key);
    return DK_OK;
}

static dk_status meta_hex(const dk_cfg *meta, const char *key, const char *path, uint64_t *out)
{
    const char *s = dk_cfg_scalar(dk_cfg_get(meta, key));
    char *end = NULL;
    if (s)
        *out = strtoull(s, &end, 16);
    if (!s || !end || *end)
        return dk_fail(DK_ERR_IO, "checkpoint %s: metadata has no valid '%s'", path, key);
    return DK_OK;
}

/* Reads model.<name> into every parameter and buffer; all must be there. */
static dk_status read_model_exact(dk_runner *r, dkh_ckpt *c, const char *path)
{
    for (size_t i = 0; i < dk_module_n_tensors(r->model); i++) {
        const char *name = NULL;
        dk_tensor *t = dk_module_tensor_at(r->model, i, &name, NULL);
        char *full = dkh_asprintf("model.%s", name);
        int64_t at = dkh_ckpt_find(c, full);
        free(full);
        if (at < 0)
            return dk_fail(DK_ERR_NOT_FOUND, "resume from %s: the checkpoint has no '%s' (was "
                                             "it saved from another model?)",
                           path, name);
        DK_TRY(dkh_ckpt_read(c, (size_t)at, t));
    }
    return DK_OK;
}

/* Every hook's after_load_checkpoint with its saved state (none: an empty
 * one, and the hook starts afresh). */
static dk_status load_hooks(dk_runner *r, dkh_ckpt *c, const char *path, const dk_cfg *meta)
{
    (void)path;
    const dk_cfg *hooks = dk_cfg_get(meta, "hooks");
    for (size_t i = 0; i < r->n_hooks; i++) {
        dkh_hook *h = &r->hooks[i];
        char *prefix = dkh_asprintf("hooks.%s", h->name);
        const dk_cfg *saved = NULL;
        for (size_t k = 0; k < dk_cfg_len(hooks); k++)
            if (strcmp(dk_cfg_key_at(hooks, k), h->name) == 0)
                saved = dk_cfg_at(hooks, k);
        dk_status s = get_state(c, saved, prefix, &r->state);
        free(prefix);
        if (s == DK_OK)
            s = dkh_hook_call(r, h, DKH_POINT_after_load_checkpoint);
        dk_dict_free(r->state);
        r->state = NULL;
        DK_TRY(s);
    }
    return DK_OK;
}

static dk_status resume_from(dk_runner *r, dkh_ckpt *c, const char *path, const dk_cfg *meta)
{
    const char *kind = dk_cfg_scalar(dk_cfg_get(meta, "kind"));
    if (!kind || strcmp(kind, "run") != 0)
        return dk_fail(DK_ERR_IO, "resume from %s: not a checkpoint of a training run "
                                     "(kind '%s'); use --load-from for weights only",
                       path, kind ? kind : "?");
    int64_t epoch = 0, iter = 0, inner = 0, samples = 0;
    uint64_t key = 0, counter = 0;
    DK_TRY(meta_int(meta, "epoch", path, &epoch));
    DK_TRY(meta_int(meta, "iteration", path, &iter));
    DK_TRY(meta_int(meta, "inner_iter", path, &inner));
    DK_TRY(meta_int(meta, "samples_seen", path, &samples));
    DK_TRY(meta_hex(meta, "rng.key", path, &key));
    DK_TRY(meta_hex(meta, "rng.counter", path, &counter));
    if (epoch < 0 || iter < 0 || inner < 0 || samples < 0)
        return dk_fail(DK_ERR_IO, "resume from %s: negative counters in the metadata", path);
    DK_TRY(read_model_exact(r, c, path));

    dk_dict *st = NULL;
    DK_TRY(get_state(c, dk_cfg_get(meta, "optimizer"), "optim", &st));
    dk_status s = dkh_optim_state_load(r->optim, st);
    dk_dict_free(st);
    if (s != DK_OK) {
        dk_error_prefix("resume from %s: optimizer state", path);
        return s;
    }
    DK_TRY(load_hooks(r, c, path, meta));
    /* The NaN guard's damping survives a resume (absent before it existed). */
    double lr_scale = 1.0;
    int64_t rollbacks = 0;
    if (dk_cfg_get(meta, "lr_scale")) {
        DK_TRY(meta_float(meta, "lr_scale", path, &lr_scale));
        DK_TRY(meta_int(meta, "nan_rollbacks", path, &rollbacks));
        if (!(lr_scale >= 0 && lr_scale <= 1) || rollbacks < 0)
            return dk_fail(DK_ERR_IO, "resume from %s: lr_scale %g or nan_rollbacks %lld out "
                                      "of range in the metadata", path, lr_scale,
                           (long long)rollbacks);
    }
    /* Another world size or batch size (absent before they were saved): the
     * epoch's position is counted in global batches of world_size x
     * batch_size samples, and every global batch holds the same positions of
     * the epoch's order whatever the world size, so a position inside an
     * epoch carries over when it falls on a global batch boundary of this
     * run. The sample count and the epoch are global already. */
    int64_t saved_world = r->world_size, saved_batch = r->train.batch_size;
    if (dk_cfg_get(meta, "world_size")) {
        DK_TRY(meta_int(meta, "world_size", path, &saved_world));
        DK_TRY(meta_int(meta, "train_batch_size", path, &saved_batch));
    }
    int64_t global = (int64_t)r->world_size * r->train.batch_size;
    int64_t saved_global = saved_world * saved_batch;
    if (saved_global != global) {
        dk_log(DK_LOG_INFO,
               "resume from %s: saved by %lld ranks x batch %lld, resuming on %d "
               "ranks x batch %lld: counters are kept (epoch, iteration, samples "
               "seen); an epoch from now on takes %lld iterations",
               path, (long long)saved_world, (long long)saved_batch, r->world_size,
               (long long)r->train.batch_size, (long long)dkh_loader_len(r->train.loader));
        if (inner > 0) {
            int64_t done = inner * saved_global;
            if (saved_global <= 0 || global <= 0 || done % global != 0)
                return dk_fail(DK_ERR_CONFIG,
                               "resume from %s: saved %lld batches into epoch %lld "
                               "by %lld ranks x batch %lld (%lld samples), which is not a whole "
                               "number of global batches of %d ranks x batch %lld; resume from "
                               "an end-of-epoch checkpoint, or with a global batch that divides "
                               "%lld",
                               path, (long long)inner, (long long)epoch + 1, (long long)saved_world,
                               (long long)saved_batch, (long long)done, r->world_size,
                               (long long)r->train.batch_size, (long long)done);
            inner = done / global;
        }
    }
    r->lr_scale = lr_scale;
    r->nan_rollbacks = rollbacks;
    r->epoch = epoch;
    r->iter = iter;
    r->resume_skip = inner;
    r->samples_seen = samples;
    dk_rng *rng = dk_rng_default();
    rng->key = key;
    rng->counter = counter;
    dkh_dist_rank_rng(r);
    dk_log(DK_LOG_INFO, "resumed from %s: epoch %lld, iteration %lld (%lld batches into the "
                        "epoch), %lld samples seen",
           path, (long long)epoch, (long long)iter, (long long)inner, (long long)samples);
    return DK_OK;
}

/* Opens path, parses its metadata and calls fn. */
static dk_status with_ckpt(dk_runner *r, const char *path,
                           dk_status (*fn)(dk_runner *, dkh_ckpt *, const char *, const dk_cfg *))
{
    dkh_ckpt *c = NULL;
    DK_TRY(dkh_ckpt_open(path, &c));
    dk_cfg *meta = NULL;
    dk_status s = dkh_cfg_parse(dkh_ckpt_meta(c), path, &meta);
    if (s != DK_OK)
        s = dk_fail(DK_ERR_IO, "checkpoint %s: unreadable metadata: %s", path, dk_last_error());
    if (s == DK_OK)
        s = fn(r, c, path, meta);
    dkh_cfg_free(meta);
    dkh_ckpt_close(c);
    return s;
}

dk_status dkh_run_resume(dk_runner *r, const char *path)
{
    return with_ckpt(r, path, resume_from);
}

static void append_name(dkh_buf *b, size_t *count, const char *name)
{
    if (*count < 10)
        dkh_buf_printf(b, "%s%s", *count ? ", " : "", name);
    else if (*count == 10)
        dkh_buf_puts(b, ", ...");
    (*count)++;
}

static dk_status load_weights(dk_runner *r, dkh_ckpt *c, const char *path, const dk_cfg *meta)
{
    (void)meta;
    dkh_buf missing = DKH_BUF_INIT, mismatched = DKH_BUF_INIT, unexpected = DKH_BUF_INIT;
    size_t n_missing = 0, n_mismatched = 0, n_unexpected = 0, n_loaded = 0;
    dk_status s = DK_OK;
    for (size_t i = 0; s == DK_OK && i < dk_module_n_tensors(r->model); i++) {
        const char *name = NULL;
        dk_tensor *t = dk_module_tensor_at(r->model, i, &name, NULL);
        char *full = dkh_asprintf("model.%s", name);
        int64_t at = dkh_ckpt_find(c, full);
        if (at < 0)
            at = dkh_ckpt_find(c, name); /* a bare state dict */
        free(full);
        if (at < 0) {
            append_name(&missing, &n_missing, name);
            continue;
        }
        int64_t shape[DK_MAX_DIMS];
        int ndim = dkh_ckpt_shape(c, (size_t)at, shape);
        bool same = ndim == dk_tensor_ndim(t) && dkh_ckpt_dtype(c, (size_t)at) == dk_tensor_dtype(t);
        for (int d = 0; same && d < ndim; d++)
            same = shape[d] == dk_tensor_shape(t)[d];
        if (!same) {
            append_name(&mismatched, &n_mismatched, name);
            continue;
        }
        s = dkh_ckpt_read(c, (size_t)at, t);
        n_loaded++;
    }
    for (size_t i = 0; s == DK_OK && i < dkh_ckpt_count(c); i++) {
        const char *name = dkh_ckpt_name(c, i);
        const char *bare = strncmp(name, "model.", 6) == 0 ? name + 6 : NULL;
        if (!bare && (strncmp(name, "optim.", 6) == 0 || strncmp(name, "hooks.", 6) == 0))
            continue;
        if (!dk_module_find(r->model, bare ? bare : name))
            append_name(&unexpected, &n_unexpected, bare ? bare : name);
    }
    if (s == DK_OK) {
        dk_log(DK_LOG_INFO, "loaded %zu tensors from %s", n_loaded, path);
        if (n_missing)
            dk_log(DK_LOG_WARN, "load_from %s: %zu missing keys (left as initialised): %s", path,
                   n_missing, dkh_buf_str(&missing));
        if (n_unexpected)
            dk_log(DK_LOG_WARN, "load_from %s: %zu unexpected keys (ignored): %s", path,
                   n_unexpected, dkh_buf_str(&unexpected));
        if (n_mismatched)
            dk_log(DK_LOG_WARN, "load_from %s: %zu keys with another shape or dtype (left as "
                                "initialised): %s",
                   path, n_mismatched, dkh_buf_str(&mismatched));
        if (!n_loaded)
            s = dk_fail(DK_ERR_NOT_FOUND, "load_from %s: no tensor of the checkpoint matches "
                                          "the model's parameters",
                        path);
    }
    dkh_buf_fini(&missing);
    dkh_buf_fini(&mismatched);
    dkh_buf_fini(&unexpected);
    return s;
}

dk_status dkh_run_load_weights(dk_runner *r, const char *path)
{
    return with_ckpt(r, path, load_weights);
}

static dk_status load_weights_and_hooks(dk_runner *r, dkh_ckpt *c, const char *path,
                                        const dk_cfg *meta)
{
    DK_TRY(load_weights(r, c, path, meta));
    return load_hooks(r, c, path, meta);
}

dk_status dkh_run_load_weights_and_hooks(dk_runner *r, const char *path)
{
    return with_ckpt(r, path, load_weights_and_hooks);
}
