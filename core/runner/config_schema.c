/* core/runner/config_schema.c — the top level of a dkhost config.
 *
 * Everything below `model:`, a dataset or a hook is described by the schema
 * its plugin registered; this file describes the keys around them that the
 * host itself reads (mmengine's names, so configs read familiar). The
 * training runner reads these values; the schema is what validates them and
 * fills their defaults before anything is built.
 */
#include "config_schema.h"

#include "../cfg/cfg.h"

#include <stdlib.h>
#include <string.h>

static const dk_param dataloader_fields[] = {
    {.name = "batch_size", .type = DK_PARAM_INT, .def = "32", .min = "1",
     .doc = "samples per batch on each rank"},
    {.name = "num_workers", .type = DK_PARAM_INT, .def = "0", .min = "0", .max = "1024",
     .doc = "loader threads decoding and transforming samples"},
    {.name = "shuffle", .type = DK_PARAM_BOOL, .def = "false",
     .doc = "reshuffle the sample order every epoch"},
    {.name = "drop_last", .type = DK_PARAM_BOOL, .def = "false",
     .doc = "drop the last incomplete batch"},
    {.name = "persistent_workers", .type = DK_PARAM_BOOL, .def = "false",
     .doc = "keep the loader threads between epochs instead of restarting them"},
    {.name = "prefetch_factor", .type = DK_PARAM_INT, .def = "2", .min = "1", .max = "1024",
     .doc = "batches each worker may prepare ahead of the training step"},
    {.name = "dataset", .type = DK_PARAM_OBJECT, .kind = "dataset", .flags = DK_PARAM_REQUIRED,
     .doc = "the dataset, with its transform pipeline"},
};

static const dk_param train_cfg_fields[] = {
    {.name = "by_epoch", .type = DK_PARAM_BOOL, .def = "true",
     .doc = "count training in epochs (true) or iterations (false)"},
    {.name = "max_epochs", .type = DK_PARAM_INT, .def = "1", .min = "1",
     .doc = "epochs to train when by_epoch"},
    {.name = "max_iters", .type = DK_PARAM_INT, .flags = DK_PARAM_NULLABLE, .min = "1",
     .doc = "iterations to train when not by_epoch"},
    {.name = "val_interval", .type = DK_PARAM_INT, .def = "1", .min = "1",
     .doc = "validate every this many epochs (or iterations)"},
    {.name = "val_begin", .type = DK_PARAM_INT, .def = "1", .min = "1",
     .doc = "first epoch (or iteration) after which validation may run"},
};

static const dk_param env_cfg_fields[] = {
    {.name = "num_threads", .type = DK_PARAM_INT, .def = "0", .min = "0",
     .doc = "CPU threads for kernels; 0 = DK_NUM_THREADS or all cores"},
    {.name = "cudnn_benchmark", .type = DK_PARAM_BOOL, .def = "false",
     .doc = "let cuDNN pick algorithms by timing them"},
};

static const dk_param dist_cfg_fields[] = {
    {.name = "bucket_size_mb", .type = DK_PARAM_FLOAT, .def = "25", .min = "0.0001",
     .max = "4096",
     .doc = "data parallel: gradients are averaged across ranks in flat buckets of at most "
            "this many MiB"},
    {.name = "backend", .type = DK_PARAM_STRING, .def = "auto", .choices = "auto|mpi|nccl",
     .doc = "what moves the data between ranks: mpi (CPU tensors), nccl (CUDA tensors over "
            "NCCL, host data over MPI; needs a libdk built with DK_NCCL and one GPU per "
            "rank), auto (nccl for a run on CUDA when built, else mpi)"},
};

static const dk_param auto_scale_lr_fields[] = {
    {.name = "enable", .type = DK_PARAM_BOOL, .def = "false",
     .doc = "scale the learning rate by (world_size x batch_size) / base_batch_size"},
    {.name = "base_batch_size", .type = DK_PARAM_INT, .def = "0", .min = "0",
     .doc = "the global batch size the configured learning rate is meant for (required when "
            "enable is true)"},
};

static const dk_param nan_guard_fields[] = {
    {.name = "enabled", .type = DK_PARAM_BOOL, .def = "true",
     .doc = "skip a step whose loss or gradients are not finite, restoring the buffers"},
    {.name = "max_consecutive", .type = DK_PARAM_INT, .def = "10", .min = "0",
     .doc = "after more skipped steps in a row, roll back (or stop the run)"},
    {.name = "rollback", .type = DK_PARAM_BOOL, .def = "true",
     .doc = "on a run of skips, go back to the newest intact checkpoint in the work dir"},
    {.name = "lr_factor", .type = DK_PARAM_FLOAT, .def = "0.5", .min = "0", .max = "1",
     .doc = "each rollback multiplies the learning rate by this"},
    {.name = "max_rollbacks", .type = DK_PARAM_INT, .def = "3", .min = "0",
     .doc = "stop the run instead of rolling back once more than this"},
};

/* optim_wrapper: mmengine's OptimWrapper keys (core/optim reads them). */
static const dk_param paramwise_fields[] = {
    {.name = "bias_lr_mult", .type = DK_PARAM_FLOAT, .flags = DK_PARAM_NULLABLE, .min = "0",
     .doc = "lr multiplier of biases outside normalisation layers"},
    {.name = "bias_decay_mult", .type = DK_PARAM_FLOAT, .flags = DK_PARAM_NULLABLE, .min = "0",
     .doc = "weight-decay multiplier of biases outside normalisation layers"},
    {.name = "norm_decay_mult", .type = DK_PARAM_FLOAT, .flags = DK_PARAM_NULLABLE, .min = "0",
     .doc = "weight-decay multiplier of normalisation layers' weights and biases"},
    {.name = "flat_decay_mult", .type = DK_PARAM_FLOAT, .flags = DK_PARAM_NULLABLE, .min = "0",
     .doc = "weight-decay multiplier of other 1-d parameters"},
    {.name = "custom_keys", .type = DK_PARAM_MAP, .def = "{}",
     .doc = "name substring -> {lr_mult, decay_mult}; the longest matching key wins"},
    {.name = "bypass_duplicate", .type = DK_PARAM_BOOL, .def = "false",
     .doc = "train a tensor listed under several names once instead of refusing it"},
};

static const dk_param clip_grad_fields[] = {
    {.name = "type", .type = DK_PARAM_STRING, .flags = DK_PARAM_NULLABLE, .choices = "norm|value",
     .doc = "clip the total norm or each value; null = value when only clip_value is given"},
    {.name = "max_norm", .type = DK_PARAM_FLOAT, .flags = DK_PARAM_NULLABLE, .min = "0",
     .doc = "largest total gradient norm"},
    {.name = "norm_type", .type = DK_PARAM_FLOAT, .def = "2", .min = "0",
     .doc = "p of the p-norm (.inf for the largest magnitude)"},
    {.name = "clip_value", .type = DK_PARAM_FLOAT, .flags = DK_PARAM_NULLABLE, .min = "0",
     .doc = "gradients are clamped to [-clip_value, clip_value]"},
};

static const dk_param optim_wrapper_fields[] = {
    {.name = "type", .type = DK_PARAM_STRING, .def = "OptimWrapper", .choices = "OptimWrapper",
     .doc = "the wrapper (mmengine's name)"},
    {.name = "optimizer", .type = DK_PARAM_OBJECT, .kind = "optimizer",
     .flags = DK_PARAM_REQUIRED, .doc = "the optimizer: SGD, Adam, AdamW, ..."},
    {.name = "paramwise_cfg", .type = DK_PARAM_STRUCT, .flags = DK_PARAM_NULLABLE,
     DK_FIELDS(paramwise_fields), .doc = "per-parameter lr and weight-decay multipliers by name"},
    {.name = "clip_grad", .type = DK_PARAM_STRUCT, .flags = DK_PARAM_NULLABLE,
     DK_FIELDS(clip_grad_fields), .doc = "gradient clipping: {max_norm, norm_type} or {clip_value}"},
    {.name = "accumulative_counts", .type = DK_PARAM_INT, .def = "1", .min = "1",
     .doc = "accumulate gradients over this many iterations per update"},
};

static const dk_param top_level[] = {
    {.name = "model", .type = DK_PARAM_OBJECT, .kind = "model", .flags = DK_PARAM_REQUIRED,
     .doc = "the model to train"},
    {.name = "train_dataloader", .type = DK_PARAM_STRUCT, .flags = DK_PARAM_NULLABLE,
     DK_FIELDS(dataloader_fields), .doc = "training data"},
    {.name = "val_dataloader", .type = DK_PARAM_STRUCT, .flags = DK_PARAM_NULLABLE,
     DK_FIELDS(dataloader_fields), .doc = "validation data"},
    {.name = "test_dataloader", .type = DK_PARAM_STRUCT, .flags = DK_PARAM_NULLABLE,
     DK_FIELDS(dataloader_fields), .doc = "test data"},
    {.name = "val_evaluator", .type = DK_PARAM_OBJECT_LIST, .kind = "metric", .def = "[]",
     .doc = "metrics computed on the validation predictions"},
    {.name = "test_evaluator", .type = DK_PARAM_OBJECT_LIST, .kind = "metric", .def = "[]",
     .doc = "metrics computed on the test predictions"},
    {.name = "train_cfg", .type = DK_PARAM_STRUCT, DK_FIELDS(train_cfg_fields),
     .def = "{}", .doc = "how long to train and when to validate"},
    {.name = "optim_wrapper", .type = DK_PARAM_STRUCT, .flags = DK_PARAM_NULLABLE,
     DK_FIELDS(optim_wrapper_fields),
     .doc = "the optimizer and how gradients reach it (docs/training.md)"},
    {.name = "param_scheduler", .type = DK_PARAM_OBJECT_LIST, .kind = "lr_scheduler",
     .def = "[]", .doc = "learning-rate and momentum schedules, applied in order"},
    {.name = "default_hooks", .type = DK_PARAM_OBJECT_MAP, .kind = "hook", .def = "{}",
     .doc = "the standard hooks by name; replace or disable (null) any of them"},
    {.name = "custom_hooks", .type = DK_PARAM_OBJECT_LIST, .kind = "hook", .def = "[]",
     .doc = "further hooks, run in priority order"},
    {.name = "env_cfg", .type = DK_PARAM_STRUCT, DK_FIELDS(env_cfg_fields), .def = "{}",
     .doc = "threads and device settings"},
    {.name = "work_dir", .type = DK_PARAM_STRING, .flags = DK_PARAM_NULLABLE,
     .doc = "where logs and checkpoints go (default work_dirs/<config name>)"},
    {.name = "seed", .type = DK_PARAM_INT, .def = "0", .min = "0",
     .doc = "seed of every random draw"},
    {.name = "deterministic", .type = DK_PARAM_BOOL, .def = "false",
     .doc = "fixed reduction order: repeated runs give identical bits"},
    {.name = "precision", .type = DK_PARAM_STRING, .def = "fp32", .choices = "fp32|bf16|fp16",
     .doc = "compute type of convolutions and matmuls (bf16: autocast; weights stay f32)"},
    {.name = "nan_guard", .type = DK_PARAM_STRUCT, DK_FIELDS(nan_guard_fields), .def = "{}",
     .doc = "what to do with a non-finite loss or gradient"},
    {.name = "dist_cfg", .type = DK_PARAM_STRUCT, DK_FIELDS(dist_cfg_fields), .def = "{}",
     .doc = "data-parallel training (dkhost train --launcher mpi|slurm)"},
    {.name = "auto_scale_lr", .type = DK_PARAM_STRUCT, DK_FIELDS(auto_scale_lr_fields),
     .def = "{}", .doc = "scale the learning rate with the global batch size (as mmengine)"},
    {.name = "sync_bn", .type = DK_PARAM_ANY, .def = "false",
     .doc = "data parallel: batch norm over the global batch: true, false, or {exclude: "
            "[module path prefix, ...]} (checked when training starts)"},
    {.name = "launcher", .type = DK_PARAM_STRING, .def = "none", .choices = "none|mpi|slurm",
     .doc = "how the processes of a data-parallel run were started"},
    {.name = "load_from", .type = DK_PARAM_STRING, .flags = DK_PARAM_NULLABLE,
     .doc = "checkpoint whose weights initialise the model"},
    {.name = "resume", .type = DK_PARAM_BOOL, .def = "false",
     .doc = "continue from the last checkpoint in work_dir"},
    {.name = "vars", .type = DK_PARAM_MAP, .def = "{}",
     .doc = "free-form values for ${vars.name} interpolation (paths, sizes, ...)"},
};

const dk_param *dkh_config_schema(size_t *n)
{
    *n = sizeof top_level / sizeof top_level[0];
    return top_level;
}

dk_status dkh_config_prepare(const char *path, const char *const *overrides, size_t n_overrides,
                             const dkh_registry *reg, dk_cfg **out)
{
    dk_cfg *root = NULL;
    dk_status s = dkh_cfg_load(path, &root);
    for (size_t i = 0; s == DK_OK && i < n_overrides; i++)
        s = dkh_cfg_override(root, overrides[i]);
    if (s == DK_OK)
        s = dkh_cfg_resolve(root);
    if (s == DK_OK) {
        size_t n;
        const dk_param *schema = dkh_config_schema(&n);
        s = dkh_cfg_validate(root, schema, n, reg);
    }
    if (s != DK_OK) {
        dkh_cfg_free(root);
        return s;
    }
    *out = root;
    return DK_OK;
}

/* Appends one built object; the list grows by doubling. */
static void push(dkh_built **list, size_t *n, size_t *cap, const char *path, dk_object *obj)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        dkh_built *p = realloc(*list, *cap * sizeof **list);
        DKH_ASSERT(p != NULL);
        *list = p;
    }
    (*list)[*n].path = dkh_strdup(path);
    (*list)[(*n)++].obj = obj;
}

/* Builds the objects under one schema entry: an OBJECT, each element of an
 * OBJECT_LIST or OBJECT_MAP, and the OBJECTs among a STRUCT's fields. */
static dk_status build_param(const dk_cfg *value, const dk_param *p, const char *path,
                             dkh_built **list, size_t *n, size_t *cap)
{
    if (!value || dk_cfg_kind_of(value) == DK_CFG_NULL)
        return DK_OK;
    dk_object *obj = NULL;
    switch (p->type) {
    case DK_PARAM_OBJECT:
        DK_TRY(dk_object_build(value, p->kind, &obj));
        push(list, n, cap, path, obj);
        return DK_OK;
    case DK_PARAM_OBJECT_LIST:
    case DK_PARAM_OBJECT_MAP:
        for (size_t i = 0; i < dk_cfg_len(value); i++) {
            const dk_cfg *item = dk_cfg_at(value, i);
            if (dk_cfg_kind_of(item) == DK_CFG_NULL)
                continue; /* a default hook disabled with `name: null` */
            DK_TRY(dk_object_build(item, p->kind, &obj));
            push(list, n, cap, dk_cfg_path(item), obj);
        }
        return DK_OK;
    case DK_PARAM_STRUCT:
        for (uint32_t f = 0; f < p->n_fields; f++) {
            const dk_param *field = &p->fields[f];
            char *sub = dkh_asprintf("%s.%s", path, field->name);
            dk_status s = build_param(dk_cfg_get(value, field->name), field, sub, list, n, cap);
            free(sub);
            DK_TRY(s);
        }
        return DK_OK;
    default:
        return DK_OK;
    }
}

dk_status dkh_config_build(const dk_cfg *root, dkh_built **out, size_t *n_out)
{
    size_t n_schema, n = 0, cap = 0;
    const dk_param *schema = dkh_config_schema(&n_schema);
    dkh_built *list = NULL;
    for (size_t i = 0; i < n_schema; i++) {
        const dk_param *p = &schema[i];
        dk_status s = build_param(dk_cfg_get(root, p->name), p, p->name, &list, &n, &cap);
        if (s != DK_OK) {
            dkh_config_built_free(list, n);
            return s;
        }
    }
    *out = list;
    *n_out = n;
    return DK_OK;
}

void dkh_config_built_free(dkh_built *built, size_t n)
{
    /* Destroy in reverse: later objects (hooks) may refer to earlier ones. */
    for (size_t i = n; i-- > 0;) {
        dk_object_free(built[i].obj);
        free(built[i].path);
    }
    free(built);
}
