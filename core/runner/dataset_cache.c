/* core/runner/dataset_cache.c — datasets kept across the runs of a sweep.
 *
 * Building a dataset can mean reading and indexing every file of it, so a
 * sweep (several runs in one process) keeps the dataset objects it built and
 * hands one to a later run whose config asks for exactly the same dataset.
 * "Exactly the same" is the canonical YAML dump of the dataset's config
 * subtree after resolution and validation (defaults filled in), so two
 * spellings of one dataset match and any changed option builds afresh.
 * Datasets are read-only once built (dk/registry.h: get is called from
 * several loader threads at once), which is what makes sharing one safe.
 *
 * An entry is lent to one split at a time; two splits of one run asking for
 * the same dataset get two objects. After each run the sweep trims the
 * entries that run did not use, so memory holds at most one run's datasets
 * (a run that failed before building any keeps what is there).
 * A data file changed on disk between runs is not noticed.
 */
#include "runner_impl.h"

#include "../cfg/cfg.h"

#include <stdlib.h>
#include <string.h>

typedef struct cache_entry {
    char *key;        /* dkh_cfg_dump of the dataset's config */
    dk_object *obj;
    bool lent;        /* in use by a split of the current run */
    uint64_t used_in; /* the generation (run) that used it last */
} cache_entry;

struct dkh_dataset_cache {
    cache_entry *entries;
    size_t n, cap;
    uint64_t generation; /* advances at every trim, i.e. once a run */
    size_t acquired;     /* datasets handed out in this generation */
};

dkh_dataset_cache *dkh_dataset_cache_new(void)
{
    dkh_dataset_cache *c = calloc(1, sizeof *c);
    DKH_ASSERT(c != NULL);
    c->generation = 1;
    return c;
}

static void entry_drop(cache_entry *e)
{
    dk_object_free(e->obj);
    free(e->key);
}

void dkh_dataset_cache_free(dkh_dataset_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        DKH_ASSERT(!c->entries[i].lent && "a cached dataset is still lent to a run");
        entry_drop(&c->entries[i]);
    }
    free(c->entries);
    free(c);
}

size_t dkh_dataset_cache_size(const dkh_dataset_cache *c)
{
    return c ? c->n : 0;
}

void dkh_dataset_cache_trim(dkh_dataset_cache *c)
{
    if (!c)
        return;
    /* A run that failed before it built any data (a missing config, a bad
     * model) says nothing about which datasets later runs want. */
    if (c->acquired == 0)
        return;
    c->acquired = 0;
    size_t w = 0;
    for (size_t i = 0; i < c->n; i++) {
        cache_entry *e = &c->entries[i];
        if (e->lent || e->used_in == c->generation)
            c->entries[w++] = *e;
        else
            entry_drop(e);
    }
    c->n = w;
    c->generation++;
}

dk_status dkh_dataset_cache_acquire(dkh_dataset_cache *c, const dk_cfg *node, dk_object **out,
                                    bool *reused)
{
    *out = NULL;
    *reused = false;
    if (!c || !node)
        return dk_object_build(node, "dataset", out);
    dkh_buf dump = DKH_BUF_INIT;
    dkh_cfg_dump(node, &dump);
    for (size_t i = 0; i < c->n; i++) {
        cache_entry *e = &c->entries[i];
        if (!e->lent && strcmp(e->key, dkh_buf_str(&dump)) == 0) {
            e->lent = true;
            e->used_in = c->generation;
            c->acquired++;
            *out = e->obj;
            *reused = true;
            dkh_buf_fini(&dump);
            return DK_OK;
        }
    }
    dk_object *obj = NULL;
    dk_status s = dk_object_build(node, "dataset", &obj);
    if (s != DK_OK) {
        dkh_buf_fini(&dump);
        return s;
    }
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 4;
        c->entries = realloc(c->entries, c->cap * sizeof *c->entries);
        DKH_ASSERT(c->entries != NULL);
    }
    c->entries[c->n++] = (cache_entry){
        .key = dkh_buf_take(&dump), .obj = obj, .lent = true, .used_in = c->generation};
    c->acquired++;
    *out = obj;
    return DK_OK;
}

void dkh_dataset_cache_release(dkh_dataset_cache *c, dk_object *obj)
{
    if (!obj)
        return;
    for (size_t i = 0; c && i < c->n; i++) {
        if (c->entries[i].obj == obj) {
            c->entries[i].lent = false;
            return;
        }
    }
    dk_object_free(obj);
}
