/* core/runner/dist_train.c — data-parallel training: what the runner adds
 * when it runs as one of several ranks (dkhost train --launcher mpi|slurm).
 *
 * Every rank builds the same model and trains on its shard of each epoch
 * (the default sampler built for its rank and the world size), so the batch
 * size of the config is per rank. Rank 0's weights are copied to every rank
 * once everything is loaded; after each backward that ends an accumulation
 * block the gradients are averaged in buckets (core/optim), so every rank
 * takes the same optimizer step and the weights stay equal. Buffers that the
 * forward changes on each rank's own data (batch-norm statistics) drift
 * apart; they are copied from rank 0 before each evaluation and each save.
 * Only rank 0 writes files; the others log warnings and errors only.
 */
#include "runner_impl.h"

#include "../tensor/device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Ranks whose byte counts fit on the stack when gathering in evaluation. */
#define DKH_MAX_EVAL_RANKS 64

static bool distributed(const dk_runner *r)
{
    return r->pg && r->world_size > 1;
}

bool dkh_dist_active(const dk_runner *r)
{
    return distributed(r);
}

/* Ranks on one node share its cores: unless the config or DK_NUM_THREADS
 * names a count, each rank takes its share (as torchrun sets one OpenMP
 * thread per process), not all of them, which would oversubscribe. */
static dk_status share_cores(dk_runner *r)
{
    int64_t threads = 0;
    DK_TRY(dk_cfg_get_int(r->cfg, "env_cfg.num_threads", &threads));
    int local = dkh_pg_local_size(r->pg);
    if (threads > 0 || local <= 1 || getenv("DK_NUM_THREADS"))
        return DK_OK;
    int share = dk_get_num_threads() / local;
    return dk_set_num_threads(share > 0 ? share : 1);
}

/* dist_cfg.backend. auto means nccl for a run whose tensors live on a CUDA
 * device, in a libdk built with NCCL, and mpi otherwise; the runner builds
 * and trains models on the CPU (it has no device setting yet), so auto is
 * mpi for now and nccl must be named. nccl is refused without a launcher
 * here, since a single process would otherwise ignore it silently. */
static dk_status choose_backend(const dk_runner *r, dkh_pg_backend *out)
{
    const char *name = NULL;
    DK_TRY(dk_cfg_get_str(r->cfg, "dist_cfg.backend", &name));
    DK_TRY(dkh_pg_backend_parse(name, out));
    if (*out == DKH_PG_BACKEND_NCCL && r->opts.launcher == DKH_LAUNCHER_NONE) {
        const dk_cfg *n = dk_cfg_get(r->cfg, "dist_cfg.backend");
        return dk_fail(DK_ERR_CONFIG,
                       "%s (%s): nccl needs --launcher mpi or slurm (the NCCL id is broadcast "
                       "over MPI); a single process uses auto or mpi",
                       dk_cfg_path(n), dk_cfg_where(n));
    }
    if (*out == DKH_PG_BACKEND_AUTO)
        *out = DKH_PG_BACKEND_MPI;
    return DK_OK;
}

dk_status dkh_dist_begin(dk_runner *r)
{
    r->rank = 0;
    r->world_size = 1;
    r->auto_lr_scale = 1.0;
    double mb = 0; /* validated, with its default filled in */
    DK_TRY(dk_cfg_get_float(r->cfg, "dist_cfg.bucket_size_mb", &mb));
    r->bucket_bytes = (size_t)(mb * 1048576.0);
    dkh_pg_backend backend = DKH_PG_BACKEND_AUTO;
    DK_TRY(choose_backend(r, &backend));
    if (r->opts.launcher == DKH_LAUNCHER_NONE)
        return DK_OK;
    dk_status s = dkh_pg_new_backend((dkh_launcher)r->opts.launcher, backend, &r->pg);
    if (s != DK_OK) {
        dk_error_prefix("--launcher %s", dkh_launcher_name((dkh_launcher)r->opts.launcher));
        return s;
    }
    r->rank = dkh_pg_rank(r->pg);
    r->world_size = dkh_pg_world_size(r->pg);
    DK_TRY(share_cores(r));
    dkh_dist_rank_rng(r);
    if (r->rank > 0) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "[rank %d] ", r->rank);
        dkh_log_set_prefix(prefix);
        r->was_level = dkh_log_get_level();
        if (r->was_level < DK_LOG_WARN)
            dkh_log_set_level(DK_LOG_WARN);
    }
    return DK_OK;
}

void dkh_dist_end(dk_runner *r, dk_status status)
{
    if (!r->pg)
        return;
    if (status != DK_OK && distributed(r) && !r->failure_shared)
        dkh_pg_abort(r->pg, dkh_exit_code(status)); /* does not return */
    if (r->rank > 0) {
        dkh_log_set_level(r->was_level);
        dkh_log_set_prefix(NULL);
    }
    dkh_pg_free(r->pg);
    r->pg = NULL;
}

void dkh_dist_rank_rng(const dk_runner *r)
{
    if (!distributed(r) || r->rank == 0)
        return;
    /* splitmix64 of the key and the rank: streams far apart, fixed per rank. */
    dk_rng *rng = dk_rng_default();
    uint64_t z = rng->key ^ (0x9e3779b97f4a7c15ull * (uint64_t)r->rank);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    rng->key = z ^ (z >> 31);
}

dk_status dkh_dist_setup_train(dk_runner *r)
{
    if (!distributed(r))
        return DK_OK;
    const dk_dataset_vtable *vt = dk_object_type(r->train.dataset)->vtable;
    int64_t n = vt->len ? vt->len(dk_object_self(r->train.dataset)) : 0;
    r->train.n_samples = n;
    bool shuffle = false;
    DK_TRY(dk_cfg_get_bool(r->train.cfg, "shuffle", &shuffle));
    /* Padded, as PyTorch's DistributedSampler: every rank takes as many steps. */
    dkh_sampler *sampler = NULL;
    DK_TRY(dkh_sampler_default_new(n, shuffle, r->seed, r->rank, r->world_size, DKH_SHARD_PAD,
                                   &sampler));
    dk_status s = dkh_loader_set_sampler(r->train.loader, sampler);
    if (s != DK_OK)
        sampler->free(sampler);
    return s;
}

/* Broadcasts nbytes of device memory that the group cannot move itself (a
 * CUDA tensor under the mpi backend) through a host copy: rank 0 copies its
 * bytes out, every rank receives them and copies them back in. */
static dk_status broadcast_staged(dk_runner *r, void *data, size_t nbytes, dk_device dev)
{
    const dkh_device_iface *d = dkh_device_iface_of(dev.type);
    DKH_ASSERT(d != NULL); /* a tensor exists on dev, so its type registered */
    void *host = malloc(nbytes ? nbytes : 1);
    dk_status local = host ? DK_OK : dk_fail(DK_ERR_NOMEM, "out of memory for %zu bytes", nbytes);
    if (local == DK_OK && r->rank == 0)
        local = d->copy(host, DK_CPU, data, dev, nbytes);
    /* Every rank learns whether any failed before the bytes move, so none
     * is left waiting in the broadcast. */
    int64_t bad = local != DK_OK;
    dk_status s = dkh_pg_all_reduce_buf(r->pg, &bad, 1, DK_DTYPE_I64, DKH_REDUCE_MAX);
    if (s == DK_OK && local != DK_OK)
        s = local;
    else if (s == DK_OK && bad)
        s = dk_fail(DK_ERR_RUNTIME, "another rank could not stage the bytes (see its message)");
    if (s == DK_OK)
        s = dkh_pg_broadcast_bytes(r->pg, host, nbytes, 0);
    if (s == DK_OK && r->rank != 0)
        s = d->copy(data, dev, host, DK_CPU, nbytes);
    free(host);
    return s;
}

dk_status dkh_dist_broadcast_model(dk_runner *r, bool with_params)
{
    if (!distributed(r))
        return DK_OK;
    for (size_t i = 0; i < dk_module_n_tensors(r->model); i++) {
        const char *name = NULL;
        bool is_buffer = false;
        dk_tensor *t = dk_module_tensor_at(r->model, i, &name, &is_buffer);
        if (!is_buffer && !with_params)
            continue;
        if (!dk_tensor_is_contiguous(t))
            return dk_fail(DK_ERR_UNSUPPORTED,
                           "data parallel: %s '%s' is not a contiguous tensor (only those "
                           "can be broadcast yet)",
                           is_buffer ? "buffer" : "parameter", name ? name : "?");
        size_t bytes = (size_t)dk_tensor_numel(t) * dk_dtype_size(dk_tensor_dtype(t));
        dk_device dev = dk_tensor_device(t);
        dk_status s = dkh_pg_moves(r->pg, dev)
                          ? dkh_pg_broadcast_bytes_on(r->pg, dk_tensor_data(t), bytes, 0, dev)
                          : broadcast_staged(r, dk_tensor_data(t), bytes, dev);
        if (s != DK_OK) {
            dk_error_prefix("data parallel: copying %s '%s' from rank 0",
                            is_buffer ? "buffer" : "parameter", name ? name : "?");
            return s;
        }
    }
    return DK_OK;
}

dk_status dkh_dist_agree_max(dk_runner *r, double *flag)
{
    if (!distributed(r))
        return DK_OK;
    return dkh_pg_all_reduce_buf(r->pg, flag, 1, DK_DTYPE_F64, DKH_REDUCE_MAX);
}

dk_status dkh_dist_setup_eval(dk_runner *r, dkh_split *sp)
{
    if (!distributed(r) || !sp->cfg)
        return DK_OK;
    const dk_dataset_vtable *vt = dk_object_type(sp->dataset)->vtable;
    sp->n_samples = vt->len ? vt->len(dk_object_self(sp->dataset)) : 0;
    bool shuffle = false;
    DK_TRY(dk_cfg_get_bool(sp->cfg, "shuffle", &shuffle));
    /* Padded, so every rank takes as many steps (each step gathers); the
     * repeats are left out of what the metrics see. */
    dkh_sampler *sampler = NULL;
    DK_TRY(dkh_sampler_default_new(sp->n_samples, shuffle, r->seed, r->rank, r->world_size,
                                   DKH_SHARD_PAD, &sampler));
    dk_status s = dkh_loader_set_sampler(sp->loader, sampler);
    if (s != DK_OK)
        sampler->free(sampler);
    return s;
}

/* Whether the entry at k of d is gathered: a tensor of a dtype the process
 * group moves whose first dim is the batch's n. */
static bool per_sample(const dk_dict *d, size_t k, int64_t n)
{
    if (dk_dict_kind(d, k) != DK_VALUE_TENSOR)
        return false;
    dk_tensor *t = dk_dict_tensor(d, dk_dict_key(d, k));
    dk_dtype dt = dk_tensor_dtype(t);
    return (dt == DK_DTYPE_F32 || dt == DK_DTYPE_F64 || dt == DK_DTYPE_I64) &&
           dk_tensor_ndim(t) >= 1 && dk_tensor_shape(t)[0] == n;
}

/* "<dict>.<key>:<dtype>:<shape after the first dim>;" for every gathered
 * entry of d: what every rank must agree on. */
static void describe(dkh_buf *sig, const char *what, const dk_dict *d, int64_t n)
{
    for (size_t k = 0; k < dk_dict_len(d); k++) {
        if (!per_sample(d, k, n))
            continue;
        dk_tensor *t = dk_dict_tensor(d, dk_dict_key(d, k));
        dkh_buf_printf(sig, "%s.%s:%s:", what, dk_dict_key(d, k),
                       dk_dtype_name(dk_tensor_dtype(t)));
        for (int i = 1; i < dk_tensor_ndim(t); i++)
            dkh_buf_printf(sig, "%s%lld", i > 1 ? "x" : "", (long long)dk_tensor_shape(t)[i]);
        dkh_buf_printf(sig, ";");
    }
}

/* Positions of the epoch's evened-out order that rows [first, first + rows)
 * of every rank hold and that are not padding. */
static int64_t unpadded(const dk_runner *r, const dkh_split *sp, int64_t first, int64_t rows)
{
    int64_t kept = 0;
    for (int64_t j = 0; j < rows; j++)
        for (int q = 0; q < r->world_size; q++)
            kept += q + (first + j) * r->world_size < sp->n_samples;
    return kept;
}

/* Gathers every per-sample entry of d into out, rows in dataset order. */
static dk_status gather_dict(dk_runner *r, const dkh_split *sp, int64_t b, int64_t n,
                             const dk_dict *d, dk_dict *out)
{
    int w = r->world_size;
    int64_t first = b * dkh_loader_batch_size(sp->loader); /* rank order position of row 0 */
    DK_TRY(dk_dict_update(out, d));
    for (size_t k = 0; k < dk_dict_len(d); k++) {
        if (!per_sample(d, k, n))
            continue;
        const char *key = dk_dict_key(d, k);
        dk_tensor *t = dk_contiguous(dk_dict_tensor(d, key));
        if (!t)
            return DK_ERR_NOMEM;
        dk_tensor *all = NULL;
        dk_status s = dkh_pg_all_gather(r->pg, t, &all, NULL);
        if (s != DK_OK) {
            dk_error_prefix("evaluation: gathering '%s'", key);
            return s;
        }
        /* Every rank's batch has n rows (the padded sampler gives each rank
         * as many samples). Row j of rank q is position q + (first + j) * w
         * of the epoch's order; positions from n_samples on are repeats. */
        int64_t shape[DK_MAX_DIMS];
        int ndim = dk_tensor_ndim(t);
        memcpy(shape, dk_tensor_shape(t), (size_t)ndim * sizeof *shape);
        size_t row = (size_t)(n ? dk_tensor_numel(t) / n : 0) * dk_dtype_size(dk_tensor_dtype(t));
        shape[0] = unpadded(r, sp, first, n);
        dk_tensor *g = dk_empty(ndim, shape, dk_tensor_dtype(t), (dk_device){DK_DEVICE_CPU, 0});
        if (!g)
            return DK_ERR_NOMEM;
        const char *src = dk_tensor_data(all);
        char *dst = dk_tensor_data(g);
        for (int64_t j = 0; j < n; j++)
            for (int q = 0; q < w; q++) {
                if (q + (first + j) * w >= sp->n_samples)
                    continue;
                memcpy(dst, src + ((size_t)q * (size_t)n + (size_t)j) * row, row);
                dst += row;
            }
        DK_TRY(dk_dict_set_tensor(out, key, g));
    }
    return DK_OK;
}

dk_status dkh_dist_gather_eval(dk_runner *r, const dkh_split *sp, int64_t b, dk_status local,
                               const dk_dict *batch, const dk_dict *preds, dk_dict *gbatch,
                               dk_dict *gpreds)
{
    int w = r->world_size;
    int64_t n = 0;
    dkh_buf sig = DKH_BUF_INIT;
    if (local == DK_OK) {
        /* n: the batch's rows, from its first tensor with a first dim. */
        for (size_t k = 0; k < dk_dict_len(batch) && n == 0; k++)
            if (dk_dict_kind(batch, k) == DK_VALUE_TENSOR) {
                dk_tensor *t = dk_dict_tensor(batch, dk_dict_key(batch, k));
                if (dk_tensor_ndim(t) >= 1)
                    n = dk_tensor_shape(t)[0];
            }
        dkh_buf_printf(&sig, "ok %lld|", (long long)n);
        describe(&sig, "batch", batch, n);
        describe(&sig, "predictions", preds, n);
    } else {
        dkh_buf_printf(&sig, "failed");
    }
    /* One gather tells every rank what every other has: whether it failed,
     * and the entries it would gather (which must be the same everywhere). */
    const char *mine = dkh_buf_str(&sig);
    size_t counts[DKH_MAX_EVAL_RANKS], total = 0;
    void *every = NULL;
    size_t *cnt = w <= DKH_MAX_EVAL_RANKS ? counts : dk_malloc((size_t)w * sizeof *cnt);
    dk_status s = cnt ? DK_OK : DK_ERR_NOMEM;
    if (s == DK_OK)
        s = dkh_pg_all_gather_bytes(r->pg, mine, strlen(mine) + 1, &every, &total, cnt);
    if (s != DK_OK) {
        dkh_buf_fini(&sig);
        if (cnt != counts)
            dk_free(cnt);
        if (local != DK_OK)
            return local;
        dk_error_prefix("evaluation: batch %lld", (long long)b);
        return s;
    }
    const char *p = every;
    int failed = -1, differs = -1;
    const char *theirs = NULL;
    for (int q = 0; q < w; p += cnt[q], q++) {
        if (strcmp(p, "failed") == 0) {
            if (failed < 0)
                failed = q;
        } else if (strcmp(p, mine) != 0 && local == DK_OK && differs < 0) {
            differs = q;
            theirs = p;
        }
    }
    r->failure_shared = local != DK_OK || failed >= 0 || differs >= 0;
    if (local != DK_OK)
        s = local; /* keeps this rank's own message */
    else if (failed >= 0)
        s = dk_fail(DK_ERR_RUNTIME, "evaluation: rank %d failed at batch %lld", failed,
                    (long long)b);
    else if (differs >= 0)
        s = dk_fail(DK_ERR_ARG,
                    "evaluation: the ranks' batches %lld differ: this rank (%d) "
                    "has [%s], rank %d [%s]",
                    (long long)b, r->rank, mine, differs, theirs);
    free(every);
    dkh_buf_fini(&sig);
    if (cnt != counts)
        dk_free(cnt);
    if (s != DK_OK)
        return s;
    s = gather_dict(r, sp, b, n, batch, gbatch);
    if (s == DK_OK)
        s = gather_dict(r, sp, b, n, preds, gpreds);
    return s;
}

int64_t dkh_dist_global_rows(const dk_runner *r, const dkh_split *sp, int64_t b, int64_t rows)
{
    if (!distributed(r))
        return rows;
    return unpadded(r, sp, b * dkh_loader_batch_size(sp->loader), rows);
}

dk_status dkh_dist_scale_lr(dk_runner *r)
{
    r->auto_lr_scale = 1.0;
    bool enable = false;
    int64_t base = 0;
    const dk_cfg *a = dk_cfg_get(r->cfg, "auto_scale_lr");
    if (a && dk_cfg_kind_of(a) != DK_CFG_NULL) {
        DK_TRY(dk_cfg_get_bool(a, "enable", &enable));
        DK_TRY(dk_cfg_get_int(a, "base_batch_size", &base));
    }
    int64_t real = (int64_t)r->world_size * r->train.batch_size;
    if (!enable) {
        if (r->world_size > 1)
            dk_log(DK_LOG_INFO,
                   "learning rate: as configured, not scaled (auto_scale_lr off); "
                   "global batch %lld = %d ranks x batch %lld",
                   (long long)real, r->world_size, (long long)r->train.batch_size);
        return DK_OK;
    }
    if (base < 1)
        return dk_fail(DK_ERR_CONFIG, "auto_scale_lr: enable is true, so base_batch_size must be "
                                      "given (the global batch the configured lr is meant for)");
    r->auto_lr_scale = (double)real / (double)base;
    dk_log(DK_LOG_INFO,
           "learning rate: scaled by %g (auto_scale_lr): global batch %lld = %d "
           "ranks x batch %lld, base_batch_size %lld",
           r->auto_lr_scale, (long long)real, r->world_size, (long long)r->train.batch_size,
           (long long)base);
    return DK_OK;
}
