/* core/data/data.h — the data loader: dataset -> pipeline -> collate -> batches
 * (internal to libdk; the runner is its user).
 *
 *     dkh_loader *l;
 *     DK_TRY(dkh_loader_new(dataloader_cfg, dataset, seed, &l));
 *     for (int64_t epoch = 0; epoch < max_epochs; epoch++) {
 *         DK_TRY(dkh_loader_start_epoch(l, epoch, 0));
 *         dk_dict *batch;
 *         while ((s = dkh_loader_next(l, &batch)) == DK_OK && batch) {
 *             ...                                  // "img" (N, C, H, W), "gt_label" (N) i64
 *             dk_dict_free(batch);
 *         }
 *     }
 *     dkh_loader_free(l);
 *
 * Determinism. What a batch holds is a pure function of (seed, epoch, batch
 * number): the sampler's order comes from (seed, epoch), and every sample's
 * transforms draw from a generator derived from (seed, epoch, dataset index)
 * alone. So 0 or 16 workers, a resumed epoch (skip_batches) and an
 * uninterrupted one give the same bits. docs/data.md states the rules.
 *
 * Files: sampler.c (orders and shards), pipeline.c (one sample: get and
 * transforms), collate.c (samples -> batch), loader.c (epochs, workers,
 * the prefetch queue).
 */
#ifndef DKH_DATA_H
#define DKH_DATA_H

#include <dk/dk.h>

/* ---- samplers ---------------------------------------------------------------
 *
 * A sampler decides which dataset indices one rank visits in an epoch and in
 * what order. The loader owns one; the default is built from the config's
 * `shuffle` (rank 0 of 1). A distributed run replaces it before the first
 * epoch with dkh_loader_set_sampler, e.g. with the default sampler built for
 * (rank, world_size), or with a sampler of its own filling these slots. */
typedef struct dkh_sampler dkh_sampler;
struct dkh_sampler {
    /* Indices this rank visits per epoch (the same every epoch). */
    int64_t (*len)(const dkh_sampler *s);
    /* Writes the len() dataset indices of `epoch`, in visiting order, to
     * out. Must depend only on its settings and epoch (the loader calls it
     * again when an epoch is resumed). */
    dk_status (*order)(const dkh_sampler *s, int64_t epoch, int64_t *out);
    void (*free)(dkh_sampler *s);
};

/* How the default sampler evens out a dataset whose length is not a multiple
 * of world_size, so every rank runs the same number of steps. */
typedef enum dkh_shard_mode {
    DKH_SHARD_PAD,  /* repeat indices from the start of the epoch's order (PyTorch's
                       DistributedSampler with drop_last=False) */
    DKH_SHARD_DROP, /* drop the tail of the epoch's order (drop_last=True) */
} dkh_shard_mode;

/* The default sampler over a dataset of n samples: 0..n-1 in order, or (with
 * shuffle) a permutation drawn from (seed, epoch) — the same on every rank —
 * of which rank takes every world_size-th index starting at `rank`, after
 * padding or trimming per `mode`. With world_size 1 every index is visited
 * once per epoch. *out is new (its free slot). Errors: DK_ERR_ARG for n < 0
 * or rank outside [0, world_size). */
dk_status dkh_sampler_default_new(int64_t n, bool shuffle, uint64_t seed, int rank,
                                  int world_size, dkh_shard_mode mode,
                                  dkh_sampler **out) DK_CHECK;

/* ---- one sample ----------------------------------------------------------------
 *
 * A dataset with its transform pipeline. */
typedef struct dkh_pipeline dkh_pipeline;

/* Builds the transforms listed in `pipeline_cfg` (a list of `type:` maps;
 * NULL or empty means none) and pairs them with dataset, which stays
 * borrowed. Checks that the dataset implements len and get. *out is new. */
dk_status dkh_pipeline_new(dk_object *dataset, const dk_cfg *pipeline_cfg,
                           dkh_pipeline **out) DK_CHECK;
void dkh_pipeline_free(dkh_pipeline *p);
int64_t dkh_pipeline_dataset_len(const dkh_pipeline *p);

/* The loader's random streams. Each generator is a pure function of (seed,
 * stream, epoch, index), so no draw depends on which thread asks or when. */
typedef enum dkh_rng_stream {
    DKH_RNG_SHUFFLE = 1, /* the epoch's permutation (index unused: 0) */
    DKH_RNG_SAMPLE,      /* the transforms of dataset item `index` */
} dkh_rng_stream;
dk_rng dkh_data_rng(uint64_t seed, dkh_rng_stream stream, int64_t epoch, int64_t index);

/* Fills `sample` (empty) with dataset item `index` passed through every
 * transform, drawing from dkh_data_rng(seed, DKH_RNG_SAMPLE, epoch, index)
 * (transform t gets its own child of it, so one transform's draws never shift
 * another's). Safe to call
 * from several threads at once (datasets and transforms promise that).
 * Tensors made here belong to the caller's scope; the dict holds its own
 * references. Errors are prefixed with the dataset type and index (and the
 * sample's "img_path" when it has one) and the transform that failed. */
dk_status dkh_pipeline_sample(const dkh_pipeline *p, uint64_t seed, int64_t epoch,
                              int64_t index, dk_dict *sample) DK_CHECK;

/* ---- batches ---------------------------------------------------------------------
 *
 * Collates n samples (every one with the same keys) into `batch`:
 *   tensors of one shape and dtype   -> stacked into a new leading dim (N, ...)
 *   tensors of different shapes      -> a tensor list (DK_VALUE_TENSORS), one per sample
 *   numbers                          -> an (N) tensor: i64 when all are integers, else f32
 *   tensor lists of equal length     -> a tensor list whose element j collates the
 *                                       samples' element j (stacked; ragged is an error)
 *   strings                          -> left out (per-sample text does not batch)
 * Keys keep the first sample's order. `indices` (the dataset index of each
 * sample) only serve messages: a missing key or a kind or dtype mismatch
 * names the key and both dataset indices. Tensors made here belong to the
 * caller's scope. Plain loops, no kernels: workers run it next to training. */
dk_status dkh_collate(dk_dict *const *samples, const int64_t *indices, size_t n,
                      dk_dict *batch) DK_CHECK;

/* ---- the loader ---------------------------------------------------------------- */

typedef struct dkh_loader dkh_loader;

/* A loader over `dataset` (borrowed; it must outlive the loader) configured
 * by `cfg`, a validated dataloader struct (config_schema.c: batch_size,
 * num_workers, shuffle, drop_last, persistent_workers, prefetch_factor, and
 * dataset, whose `pipeline` list it builds). No thread starts before the
 * first epoch. *out is new. Errors: the pipeline's (a transform that cannot
 * be built, a dataset without get), DK_ERR_NOMEM. */
dk_status dkh_loader_new(const dk_cfg *cfg, dk_object *dataset, uint64_t seed,
                         dkh_loader **out) DK_CHECK;

/* Replaces the sampler (takes ownership). Only before the first
 * dkh_loader_start_epoch; DK_ERR_ARG afterwards. */
dk_status dkh_loader_set_sampler(dkh_loader *l, dkh_sampler *sampler) DK_CHECK;

/* Batches per epoch: ceil(sampler len / batch_size), or floor with drop_last. */
int64_t dkh_loader_len(const dkh_loader *l);
int64_t dkh_loader_batch_size(const dkh_loader *l);

/* Starts epoch `epoch` at batch skip_batches (0 for a whole epoch; k to
 * resume after k batches, continuing with exactly the batch an uninterrupted
 * epoch gives next). An epoch still running is abandoned: its prefetched
 * batches are dropped. Workers start here (or keep running with
 * persistent_workers). Errors: DK_ERR_ARG for skip_batches outside
 * [0, len], the sampler's. */
dk_status dkh_loader_start_epoch(dkh_loader *l, int64_t epoch, int64_t skip_batches) DK_CHECK;

/* The next batch of the epoch in *batch (new: the caller frees it with
 * dk_dict_free), or NULL once the epoch is over. Waits only while the batch
 * is not ready yet. A failure (a corrupt file, a transform error, a collate
 * mismatch) comes back with the message of its cause, e.g. "ImageFolder index
 * 17: /data/pets/cat/3.jpg: not a readable JPEG: Premature end of JPEG file";
 * the epoch is over after it (next() then gives NULL until the next
 * dkh_loader_start_epoch). */
dk_status dkh_loader_next(dkh_loader *l, dk_dict **batch) DK_CHECK;

/* Batches of the current epoch handed out so far, skipped ones included
 * (what a checkpoint records to resume mid-epoch). */
int64_t dkh_loader_position(const dkh_loader *l);

/* The dataset indices of batch b of the current epoch, *n of them (which
 * samples the batch holds, e.g. to label predictions); NULL when b is not a
 * batch of it. Valid until the next dkh_loader_start_epoch. */
const int64_t *dkh_loader_batch_indices(const dkh_loader *l, int64_t b, int64_t *n);

/* Stops and joins the workers, frees every undelivered batch. NULL is a no-op. */
void dkh_loader_free(dkh_loader *l);

#endif /* DKH_DATA_H */
