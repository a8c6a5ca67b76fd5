/* core/ckpt/names.c — a hash index of tensor names: the writer refuses a
 * duplicate, the reader refuses a file with one and finds names quickly in
 * checkpoints with many thousands of tensors. */
#include "ckpt_impl.h"

#include <stdlib.h>
#include <string.h>

static size_t hash(const char *name)
{
    return (size_t)dkh_xxh64(name, strlen(name), 0);
}

/* The slot holding name, or the empty slot where it would go. */
static size_t slot_of(const dkh_name_set *s, const char *name)
{
    size_t mask = s->cap - 1;
    for (size_t k = hash(name) & mask;; k = (k + 1) & mask)
        if (!s->keys[k] || strcmp(s->keys[k], name) == 0)
            return k;
}

static dk_status grow(dkh_name_set *s)
{
    size_t cap = s->cap ? s->cap * 2 : 16;
    dkh_name_set t = {.cap = cap, .n = s->n};
    t.keys = calloc(cap, sizeof *t.keys);
    t.vals = calloc(cap, sizeof *t.vals);
    if (!t.keys || !t.vals) {
        free(t.keys);
        free(t.vals);
        return dk_fail(DK_ERR_NOMEM, "out of memory indexing %zu tensor names", s->n + 1);
    }
    for (size_t k = 0; k < s->cap; k++)
        if (s->keys[k]) {
            size_t j = slot_of(&t, s->keys[k]);
            t.keys[j] = s->keys[k];
            t.vals[j] = s->vals[k];
        }
    free(s->keys);
    free(s->vals);
    *s = t;
    return DK_OK;
}

dk_status dkh_name_set_add(dkh_name_set *s, const char *name, size_t value, bool *added)
{
    /* At most half full, so probes stay short and an empty slot always exists. */
    if (2 * (s->n + 1) > s->cap)
        DK_TRY(grow(s));
    size_t k = slot_of(s, name);
    *added = s->keys[k] == NULL;
    if (*added) {
        s->keys[k] = name;
        s->vals[k] = value;
        s->n++;
    }
    return DK_OK;
}

int64_t dkh_name_set_find(const dkh_name_set *s, const char *name)
{
    if (!s->cap || !name)
        return -1;
    size_t k = slot_of(s, name);
    return s->keys[k] ? (int64_t)s->vals[k] : -1;
}

void dkh_name_set_fini(dkh_name_set *s)
{
    free(s->keys);
    free(s->vals);
    *s = (dkh_name_set){0};
}
