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

#include <stdio.h>
#include <string.h>

static bool distributed(const dk_runner *r)
{
    return r->pg && r->world_size > 1;
}

dk_status dkh_dist_begin(dk_runner *r)
{
    r->rank = 0;
    r->world_size = 1;
    double mb = 25;
    const dk_cfg *b = dk_cfg_get(r->cfg, "dist_cfg.bucket_size_mb");
    if (b && dk_cfg_get_float(b, NULL, &mb) != DK_OK) {
        dk_clear_error();
        mb = 25;
    }
    r->bucket_bytes = (size_t)(mb * 1048576.0);
    if (r->opts.launcher == DKH_LAUNCHER_NONE)
        return DK_OK;
    dk_status s = dkh_pg_new((dkh_launcher)r->opts.launcher, &r->pg);
    if (s != DK_OK) {
        dk_error_prefix("--launcher %s", dkh_launcher_name((dkh_launcher)r->opts.launcher));
        return s;
    }
    r->rank = dkh_pg_rank(r->pg);
    r->world_size = dkh_pg_world_size(r->pg);
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

void dkh_dist_end(dk_runner *r)
{
    if (!r->pg)
        return;
    if (r->rank > 0) {
        dkh_log_set_level(r->was_level);
        dkh_log_set_prefix(NULL);
    }
    dkh_pg_free(r->pg);
    r->pg = NULL;
}

dk_status dkh_dist_setup_train(dk_runner *r)
{
    if (!distributed(r))
        return DK_OK;
    const dk_dataset_vtable *vt = dk_object_type(r->train.dataset)->vtable;
    int64_t n = vt->len ? vt->len(dk_object_self(r->train.dataset)) : 0;
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
        if (dk_tensor_device(t).type != DK_DEVICE_CPU || !dk_tensor_is_contiguous(t))
            return dk_fail(DK_ERR_UNSUPPORTED,
                           "data parallel: %s '%s' is not a contiguous CPU "
                           "tensor (only those can be broadcast yet)",
                           is_buffer ? "buffer" : "parameter", name ? name : "?");
        size_t bytes = (size_t)dk_tensor_numel(t) * dk_dtype_size(dk_tensor_dtype(t));
        dk_status s = dkh_pg_broadcast_bytes(r->pg, dk_tensor_data(t), bytes, 0);
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
