/* core/data/sampler.c — which dataset indices an epoch visits, in what order,
 * and the random streams of the loader.
 *
 * The default sampler follows PyTorch's DistributedSampler: every rank draws
 * the same permutation of the whole dataset from (seed, epoch), evens its
 * length out to a multiple of world_size (padding by repeating its start, or
 * dropping its tail), and takes every world_size-th entry from its rank on.
 * With one rank that is simply the permutation (or 0..n-1 without shuffle).
 */
#include "data.h"

#include "../util/util.h"

#include <string.h>

/* A child generator that depends only on the parent's key and n. */
static dk_rng child(dk_rng parent, int64_t n)
{
    parent.counter = (uint64_t)n;
    return dk_rng_split(&parent);
}

dk_rng dkh_data_rng(uint64_t seed, dkh_rng_stream stream, int64_t epoch, int64_t index)
{
    dk_rng root;
    dk_rng_seed(&root, seed);
    return child(child(child(root, stream), epoch), index);
}

typedef struct default_sampler {
    dkh_sampler base; /* first: a dkh_sampler * converts back */
    int64_t n;
    int64_t per_rank;
    bool shuffle;
    uint64_t seed;
    int rank, world_size;
} default_sampler;

static int64_t default_len(const dkh_sampler *s)
{
    return ((const default_sampler *)s)->per_rank;
}

/* The whole dataset's order for the epoch: identity or Fisher-Yates. */
static void whole_order(const default_sampler *d, int64_t epoch, int64_t *out)
{
    for (int64_t i = 0; i < d->n; i++)
        out[i] = i;
    if (!d->shuffle)
        return;
    dk_rng rng = dkh_data_rng(d->seed, DKH_RNG_SHUFFLE, epoch, 0);
    for (int64_t i = d->n - 1; i > 0; i--) {
        int64_t j = dk_rng_int(&rng, i + 1);
        int64_t t = out[i];
        out[i] = out[j];
        out[j] = t;
    }
}

static dk_status default_order(const dkh_sampler *s, int64_t epoch, int64_t *out)
{
    const default_sampler *d = (const default_sampler *)s;
    if (d->world_size == 1) {
        whole_order(d, epoch, out);
        return DK_OK;
    }
    if (d->per_rank == 0)
        return DK_OK;
    int64_t *all = dk_malloc((size_t)d->n * sizeof *all);
    if (!all)
        return dk_fail(DK_ERR_NOMEM, "sampler: out of memory ordering %lld samples",
                       (long long)d->n);
    whole_order(d, epoch, all);
    /* Position p of the evened-out order is all[p % n]: padding repeats the
     * start (as often as needed when n < world_size); trimming never wraps. */
    for (int64_t i = 0; i < d->per_rank; i++)
        out[i] = all[(d->rank + i * (int64_t)d->world_size) % d->n];
    dk_free(all);
    return DK_OK;
}

static void default_free(dkh_sampler *s)
{
    dk_free(s);
}

dk_status dkh_sampler_default_new(int64_t n, bool shuffle, uint64_t seed, int rank,
                                  int world_size, dkh_shard_mode mode, dkh_sampler **out)
{
    if (n < 0)
        return dk_fail(DK_ERR_ARG, "sampler: dataset length %lld is negative", (long long)n);
    if (world_size < 1 || rank < 0 || rank >= world_size)
        return dk_fail(DK_ERR_ARG, "sampler: rank %d is not in [0, %d)", rank, world_size);
    default_sampler *d = dk_calloc(1, sizeof *d);
    if (!d)
        return dk_fail(DK_ERR_NOMEM, "sampler: out of memory");
    d->base = (dkh_sampler){.len = default_len, .order = default_order, .free = default_free};
    d->n = n;
    d->shuffle = shuffle;
    d->seed = seed;
    d->rank = rank;
    d->world_size = world_size;
    if (mode == DKH_SHARD_DROP)
        d->per_rank = n / world_size;
    else
        d->per_rank = n == 0 ? 0 : (n + world_size - 1) / world_size;
    *out = &d->base;
    return DK_OK;
}
