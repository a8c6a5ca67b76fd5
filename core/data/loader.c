/* core/data/loader.c — epochs of batches, made by worker threads ahead of
 * the training step and handed out in order.
 *
 * Each worker claims the next batch number, makes the whole batch (get,
 * transforms, collate for each of its samples) and parks it in the ring slot
 * of that number; next() waits for the slot of the batch it owes. A worker
 * may run at most `slots` batches ahead of what was handed out, which bounds
 * memory (prefetch_factor x num_workers batches). Because a batch is a pure
 * function of (seed, epoch, batch number), which worker made it never shows.
 * With num_workers 0 the caller's thread makes each batch inside next().
 */
#include "data.h"

#include "../util/util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* One batch as a worker left it. */
typedef struct slot {
    bool filled;
    dk_status status;
    char *message; /* malloc; the cause when status != DK_OK */
    dk_dict *batch;
} slot;

struct dkh_loader {
    dkh_pipeline *pipe;
    dkh_sampler *sampler;
    uint64_t seed;
    int64_t batch_size;
    bool drop_last;
    int num_workers;
    bool persistent;
    bool started; /* an epoch was ever started */

    /* The epoch plan: rewritten only while no worker is making a batch. */
    int64_t epoch;
    int64_t *order; /* the sampler's indices for the epoch */
    int64_t order_len;
    int64_t n_batches;
    int64_t next_out; /* the batch next() hands out next */
    bool open;        /* between start_epoch and the end (or first failure) */

    /* Workers; everything below is guarded by mu. */
    pthread_mutex_t mu;
    pthread_cond_t work_cv;  /* a worker may claim a batch, or must stop */
    pthread_cond_t ready_cv; /* a slot was filled, or a worker went idle */
    pthread_t *threads;
    int n_threads;
    bool stop;
    int busy;            /* workers making a batch now */
    uint64_t generation; /* bumped when an epoch starts; stale batches are dropped */
    int64_t next_claim;  /* the batch the next idle worker makes */
    slot *slots;
    int64_t n_slots;
};

static void slot_clear(slot *s)
{
    dk_dict_free(s->batch);
    free(s->message);
    *s = (slot){0};
}

/* Makes batch b of the current plan into *out (never fails itself: the
 * failure is recorded in the slot). */
static void make_batch(const dkh_loader *l, int64_t b, slot *out)
{
    bool grad_was = dk_grad_set_enabled(false);
    int64_t count;
    const int64_t *indices = dkh_loader_batch_indices(l, b, &count);
    size_t n = (size_t)count;
    dk_dict **samples = dk_calloc(n, sizeof *samples);
    dk_dict *batch = NULL;
    dk_status s = samples ? DK_OK : dk_fail(DK_ERR_NOMEM, "data loader: out of memory");
    for (size_t i = 0; s == DK_OK && i < n; i++) {
        samples[i] = dk_dict_new();
        if (!samples[i]) {
            s = dk_last_status();
            break;
        }
        /* Tensors of one sample's work die here; the dict keeps what it holds. */
        dk_scope_begin();
        s = dkh_pipeline_sample(l->pipe, l->seed, l->epoch, indices[i], samples[i]);
        dk_scope_end();
    }
    if (s == DK_OK) {
        batch = dk_dict_new();
        s = batch ? DK_OK : dk_last_status();
    }
    if (s == DK_OK) {
        dk_scope_begin();
        s = dkh_collate(samples, indices, n, batch);
        dk_scope_end();
    }
    for (size_t i = 0; samples && i < n; i++)
        dk_dict_free(samples[i]);
    dk_free(samples);
    *out = (slot){.filled = true, .status = s};
    if (s == DK_OK) {
        out->batch = batch;
    } else {
        dk_dict_free(batch);
        out->message = dkh_strdup(dk_last_error());
    }
    dk_grad_set_enabled(grad_was);
}

/* May an idle worker claim a batch now? (mu held) */
static bool claimable(const dkh_loader *l)
{
    return l->open && l->next_claim < l->n_batches && l->next_claim < l->next_out + l->n_slots;
}

static void *worker_main(void *arg)
{
    dkh_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stop && !claimable(l))
            pthread_cond_wait(&l->work_cv, &l->mu);
        if (l->stop)
            break;
        int64_t b = l->next_claim++;
        uint64_t gen = l->generation;
        l->busy++;
        pthread_mutex_unlock(&l->mu);

        slot made;
        make_batch(l, b, &made);

        pthread_mutex_lock(&l->mu);
        l->busy--;
        if (gen == l->generation)
            l->slots[b % l->n_slots] = made;
        else
            slot_clear(&made);
        pthread_cond_broadcast(&l->ready_cv);
    }
    pthread_mutex_unlock(&l->mu);
    dk_clear_error(); /* the thread's message slot would outlive it otherwise */
    return NULL;
}

static void stop_workers(dkh_loader *l)
{
    if (!l->n_threads)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_broadcast(&l->work_cv);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->n_threads; i++)
        pthread_join(l->threads[i], NULL);
    l->n_threads = 0;
    l->stop = false;
}

static dk_status start_workers(dkh_loader *l)
{
    for (int i = l->n_threads; i < l->num_workers; i++) {
        int e = pthread_create(&l->threads[i], NULL, worker_main, l);
        if (e != 0) {
            stop_workers(l);
            return dk_fail(DK_ERR_RUNTIME, "data loader: cannot start worker thread %d of %d: %s",
                           i + 1, l->num_workers, strerror(e));
        }
        l->n_threads = i + 1;
    }
    return DK_OK;
}

/* Closes the current epoch: no new claims, waits out the batches being made,
 * drops every parked one. */
static void quiesce(dkh_loader *l)
{
    pthread_mutex_lock(&l->mu);
    l->open = false;
    l->generation++;
    while (l->busy > 0)
        pthread_cond_wait(&l->ready_cv, &l->mu);
    for (int64_t i = 0; i < l->n_slots; i++)
        slot_clear(&l->slots[i]);
    pthread_mutex_unlock(&l->mu);
}

/* The epoch ended or failed: workers go unless they persist. */
static void finish_epoch(dkh_loader *l)
{
    quiesce(l);
    if (!l->persistent)
        stop_workers(l);
}

static dk_status read_settings(dkh_loader *l, const dk_cfg *cfg, int64_t *prefetch)
{
    int64_t workers;
    DK_TRY(dk_cfg_get_int(cfg, "batch_size", &l->batch_size));
    DK_TRY(dk_cfg_get_int(cfg, "num_workers", &workers));
    DK_TRY(dk_cfg_get_bool(cfg, "drop_last", &l->drop_last));
    DK_TRY(dk_cfg_get_bool(cfg, "persistent_workers", &l->persistent));
    DK_TRY(dk_cfg_get_int(cfg, "prefetch_factor", prefetch));
    /* The schema bounds these; messages here guard direct callers. */
    if (l->batch_size < 1 || workers < 0 || workers > 1024 || *prefetch < 1 || *prefetch > 1024)
        return dk_fail(DK_ERR_CONFIG, "%s (%s): batch_size %lld, num_workers %lld, "
                       "prefetch_factor %lld: need batch_size >= 1, num_workers in [0, 1024], "
                       "prefetch_factor in [1, 1024]", dk_cfg_path(cfg), dk_cfg_where(cfg),
                       (long long)l->batch_size, (long long)workers, (long long)*prefetch);
    l->num_workers = (int)workers;
    return DK_OK;
}

static dk_status loader_init(dkh_loader *l, const dk_cfg *cfg, dk_object *dataset)
{
    int64_t prefetch;
    bool shuffle;
    DK_TRY(read_settings(l, cfg, &prefetch));
    DK_TRY(dk_cfg_get_bool(cfg, "shuffle", &shuffle));
    DK_TRY(dkh_pipeline_new(dataset, dk_cfg_get(cfg, "dataset.pipeline"), &l->pipe));
    DK_TRY(dkh_sampler_default_new(dkh_pipeline_dataset_len(l->pipe), shuffle, l->seed, 0, 1,
                                   DKH_SHARD_PAD, &l->sampler));
    if (l->num_workers > 0) {
        l->n_slots = prefetch * l->num_workers;
        l->slots = dk_calloc((size_t)l->n_slots, sizeof *l->slots);
        l->threads = dk_calloc((size_t)l->num_workers, sizeof *l->threads);
        if (!l->slots || !l->threads)
            return dk_fail(DK_ERR_NOMEM, "data loader: out of memory");
    }
    return DK_OK;
}

dk_status dkh_loader_new(const dk_cfg *cfg, dk_object *dataset, uint64_t seed, dkh_loader **out)
{
    dkh_loader *l = dk_calloc(1, sizeof *l);
    if (!l)
        return dk_fail(DK_ERR_NOMEM, "data loader: out of memory");
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->work_cv, NULL);
    pthread_cond_init(&l->ready_cv, NULL);
    l->seed = seed;
    dk_status s = loader_init(l, cfg, dataset);
    if (s != DK_OK) {
        dkh_loader_free(l);
        return s;
    }
    *out = l;
    return DK_OK;
}

dk_status dkh_loader_set_sampler(dkh_loader *l, dkh_sampler *sampler)
{
    if (l->started)
        return dk_fail(DK_ERR_ARG, "data loader: the sampler can only change before the first "
                                   "epoch");
    l->sampler->free(l->sampler);
    l->sampler = sampler;
    return DK_OK;
}

int64_t dkh_loader_len(const dkh_loader *l)
{
    int64_t n = l->sampler->len(l->sampler);
    return l->drop_last ? n / l->batch_size : (n + l->batch_size - 1) / l->batch_size;
}

int64_t dkh_loader_batch_size(const dkh_loader *l)
{
    return l->batch_size;
}

int64_t dkh_loader_position(const dkh_loader *l)
{
    return l->next_out;
}

const int64_t *dkh_loader_batch_indices(const dkh_loader *l, int64_t b, int64_t *n)
{
    *n = 0;
    if (!l->order || b < 0 || b >= dkh_loader_len(l))
        return NULL;
    int64_t start = b * l->batch_size;
    *n = start + l->batch_size < l->order_len ? l->batch_size : l->order_len - start;
    return l->order + start;
}

dk_status dkh_loader_start_epoch(dkh_loader *l, int64_t epoch, int64_t skip_batches)
{
    int64_t n_batches = dkh_loader_len(l);
    if (skip_batches < 0 || skip_batches > n_batches)
        return dk_fail(DK_ERR_ARG, "data loader: cannot resume epoch %lld at batch %lld: it has "
                       "%lld batches", (long long)epoch, (long long)skip_batches,
                       (long long)n_batches);
    quiesce(l);
    if (!l->persistent)
        stop_workers(l);
    l->started = true;
    /* The sampler is fixed from the first epoch on, and so is its length. */
    int64_t len = l->sampler->len(l->sampler);
    if (!l->order) {
        l->order = dk_malloc((size_t)(len ? len : 1) * sizeof *l->order);
        if (!l->order)
            return dk_fail(DK_ERR_NOMEM, "data loader: out of memory ordering %lld samples",
                           (long long)len);
        l->order_len = len;
    }
    DK_TRY(l->sampler->order(l->sampler, epoch, l->order));
    int64_t n = dkh_pipeline_dataset_len(l->pipe);
    for (int64_t i = 0; i < len; i++)
        if (l->order[i] < 0 || l->order[i] >= n)
            return dk_fail(DK_ERR_INTERNAL, "data loader: the sampler gave index %lld for a "
                           "dataset of %lld", (long long)l->order[i], (long long)n);
    if (l->num_workers > 0)
        DK_TRY(start_workers(l));
    pthread_mutex_lock(&l->mu);
    l->epoch = epoch;
    l->n_batches = n_batches;
    l->next_out = l->next_claim = skip_batches;
    l->open = true;
    pthread_cond_broadcast(&l->work_cv);
    pthread_mutex_unlock(&l->mu);
    return DK_OK;
}

dk_status dkh_loader_next(dkh_loader *l, dk_dict **batch)
{
    *batch = NULL;
    if (!l->started)
        return dk_fail(DK_ERR_ARG, "data loader: next batch asked before any epoch started");
    if (!l->open)
        return DK_OK;
    if (l->next_out >= l->n_batches) {
        finish_epoch(l);
        return DK_OK;
    }
    slot got;
    if (l->num_workers == 0) {
        make_batch(l, l->next_out, &got);
        l->next_out++;
    } else {
        pthread_mutex_lock(&l->mu);
        slot *s = &l->slots[l->next_out % l->n_slots];
        while (!s->filled)
            pthread_cond_wait(&l->ready_cv, &l->mu);
        got = *s;
        *s = (slot){0};
        l->next_out++;
        pthread_cond_broadcast(&l->work_cv);
        pthread_mutex_unlock(&l->mu);
    }
    if (got.status != DK_OK) {
        dk_fail(got.status, "%s", got.message ? got.message : dk_status_str(got.status));
        slot_clear(&got);
        finish_epoch(l);
        return dk_last_status();
    }
    *batch = got.batch;
    return DK_OK;
}

void dkh_loader_free(dkh_loader *l)
{
    if (!l)
        return;
    if (l->slots)
        quiesce(l);
    stop_workers(l);
    dk_free(l->slots);
    dk_free(l->threads);
    dk_free(l->order);
    if (l->sampler)
        l->sampler->free(l->sampler);
    dkh_pipeline_free(l->pipe);
    pthread_cond_destroy(&l->ready_cv);
    pthread_cond_destroy(&l->work_cv);
    pthread_mutex_destroy(&l->mu);
    dk_free(l);
}
