/* core/data/dict.c — dk_dict, the ordered map of named values (dict.h).
 *
 * Entries live in one array in insertion order; lookups are linear, which is
 * the fastest choice for the handful of keys a sample or a loss map has.
 * Every tensor an entry holds carries a reference of the dict's own.
 */
#include "../util/util.h"

#include <dk/dk.h>

#include <stdlib.h>
#include <string.h>

typedef struct entry {
    char *key;
    dk_value_kind kind;
    double number;
    char *string;
    dk_tensor **tensors; /* one for TENSOR, n for TENSORS */
    size_t n, cap;
} entry;

struct dk_dict {
    entry *items;
    size_t n, cap;
};

dk_dict *dk_dict_new(void)
{
    dk_dict *d = dk_calloc(1, sizeof *d);
    if (!d)
        dk_fail(DK_ERR_NOMEM, "dict: out of memory");
    return d;
}

static void entry_clear_value(entry *e)
{
    for (size_t i = 0; i < e->n; i++)
        dk_tensor_release(e->tensors[i]);
    dk_free(e->tensors);
    dk_free(e->string);
    e->tensors = NULL;
    e->string = NULL;
    e->n = e->cap = 0;
    e->number = 0;
    e->kind = DK_VALUE_NONE;
}

void dk_dict_clear(dk_dict *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        entry_clear_value(&d->items[i]);
        dk_free(d->items[i].key);
    }
    d->n = 0;
}

void dk_dict_free(dk_dict *d)
{
    if (!d)
        return;
    dk_dict_clear(d);
    dk_free(d->items);
    dk_free(d);
}

int64_t dk_dict_find(const dk_dict *d, const char *key)
{
    if (!d || !key)
        return -1;
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->items[i].key, key) == 0)
            return (int64_t)i;
    return -1;
}

/* The entry for key, emptied of its old value, or a new one at the end. */
static dk_status slot(dk_dict *d, const char *key, entry **out)
{
    if (!d || !key || !*key)
        return dk_fail(DK_ERR_ARG, "dict: %s", !d ? "NULL dict" : "NULL or empty key");
    int64_t at = dk_dict_find(d, key);
    if (at >= 0) {
        entry_clear_value(&d->items[at]);
        *out = &d->items[at];
        return DK_OK;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        entry *items = dk_realloc(d->items, cap * sizeof *items);
        if (!items)
            return dk_fail(DK_ERR_NOMEM, "dict: out of memory adding '%s'", key);
        d->items = items;
        d->cap = cap;
    }
    entry *e = &d->items[d->n];
    memset(e, 0, sizeof *e);
    e->key = dk_strdup(key);
    if (!e->key)
        return dk_fail(DK_ERR_NOMEM, "dict: out of memory adding '%s'", key);
    d->n++;
    *out = e;
    return DK_OK;
}

/* Appends a reference to t to e's tensor list. */
static dk_status push_tensor(entry *e, dk_tensor *t)
{
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 4;
        dk_tensor **ts = dk_realloc(e->tensors, cap * sizeof *ts);
        if (!ts)
            return dk_fail(DK_ERR_NOMEM, "dict: out of memory adding to '%s'", e->key);
        e->tensors = ts;
        e->cap = cap;
    }
    e->tensors[e->n++] = dk_tensor_retain(t);
    return DK_OK;
}

dk_status dk_dict_set_tensor(dk_dict *d, const char *key, dk_tensor *t)
{
    if (!t)
        return dk_fail(DK_ERR_ARG, "dict: NULL tensor for '%s'", key ? key : "(null)");
    entry *e;
    DK_TRY(slot(d, key, &e));
    e->kind = DK_VALUE_TENSOR;
    return push_tensor(e, t);
}

dk_status dk_dict_set_number(dk_dict *d, const char *key, double v)
{
    entry *e;
    DK_TRY(slot(d, key, &e));
    e->kind = DK_VALUE_NUMBER;
    e->number = v;
    return DK_OK;
}

dk_status dk_dict_set_string(dk_dict *d, const char *key, const char *s)
{
    if (!s)
        return dk_fail(DK_ERR_ARG, "dict: NULL string for '%s'", key ? key : "(null)");
    entry *e;
    DK_TRY(slot(d, key, &e));
    e->string = dk_strdup(s);
    if (!e->string)
        return dk_fail(DK_ERR_NOMEM, "dict: out of memory setting '%s'", key);
    e->kind = DK_VALUE_STRING;
    return DK_OK;
}

dk_status dk_dict_set_tensors(dk_dict *d, const char *key, dk_tensor *const *ts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!ts[i])
            return dk_fail(DK_ERR_ARG, "dict: NULL tensor %zu of list '%s'", i,
                           key ? key : "(null)");
    entry *e;
    DK_TRY(slot(d, key, &e));
    e->kind = DK_VALUE_TENSORS;
    for (size_t i = 0; i < n; i++)
        DK_TRY(push_tensor(e, ts[i]));
    return DK_OK;
}

dk_status dk_dict_append_tensor(dk_dict *d, const char *key, dk_tensor *t)
{
    if (!t)
        return dk_fail(DK_ERR_ARG, "dict: NULL tensor appended to '%s'", key ? key : "(null)");
    int64_t at = dk_dict_find(d, key);
    if (at < 0)
        return dk_dict_set_tensors(d, key, &t, 1);
    entry *e = &d->items[at];
    if (e->kind != DK_VALUE_TENSORS)
        return dk_fail(DK_ERR_ARG, "dict: '%s' is not a tensor list", key);
    return push_tensor(e, t);
}

bool dk_dict_remove(dk_dict *d, const char *key)
{
    int64_t at = dk_dict_find(d, key);
    if (at < 0)
        return false;
    entry_clear_value(&d->items[at]);
    dk_free(d->items[at].key);
    memmove(&d->items[at], &d->items[at + 1], (d->n - (size_t)at - 1) * sizeof *d->items);
    d->n--;
    return true;
}

dk_status dk_dict_update(dk_dict *dst, const dk_dict *src)
{
    if (!dst || !src)
        return dk_fail(DK_ERR_ARG, "dict update: NULL dict");
    for (size_t i = 0; i < src->n; i++) {
        const entry *e = &src->items[i];
        switch (e->kind) {
        case DK_VALUE_TENSOR:
            DK_TRY(dk_dict_set_tensor(dst, e->key, e->tensors[0]));
            break;
        case DK_VALUE_NUMBER:
            DK_TRY(dk_dict_set_number(dst, e->key, e->number));
            break;
        case DK_VALUE_STRING:
            DK_TRY(dk_dict_set_string(dst, e->key, e->string));
            break;
        case DK_VALUE_TENSORS:
            DK_TRY(dk_dict_set_tensors(dst, e->key, e->tensors, e->n));
            break;
        default:
            break;
        }
    }
    return DK_OK;
}

size_t dk_dict_len(const dk_dict *d)
{
    return d ? d->n : 0;
}

const char *dk_dict_key(const dk_dict *d, size_t i)
{
    return d && i < d->n ? d->items[i].key : NULL;
}

dk_value_kind dk_dict_kind(const dk_dict *d, size_t i)
{
    return d && i < d->n ? d->items[i].kind : DK_VALUE_NONE;
}

/* The entry under key when it holds `kind`, else NULL. */
static const entry *typed(const dk_dict *d, const char *key, dk_value_kind kind)
{
    int64_t at = dk_dict_find(d, key);
    return at >= 0 && d->items[at].kind == kind ? &d->items[at] : NULL;
}

dk_tensor *dk_dict_tensor(const dk_dict *d, const char *key)
{
    const entry *e = typed(d, key, DK_VALUE_TENSOR);
    return e ? e->tensors[0] : NULL;
}

double dk_dict_number(const dk_dict *d, const char *key, double fallback)
{
    const entry *e = typed(d, key, DK_VALUE_NUMBER);
    return e ? e->number : fallback;
}

const char *dk_dict_string(const dk_dict *d, const char *key)
{
    const entry *e = typed(d, key, DK_VALUE_STRING);
    return e ? e->string : NULL;
}

size_t dk_dict_tensors_len(const dk_dict *d, const char *key)
{
    const entry *e = typed(d, key, DK_VALUE_TENSORS);
    return e ? e->n : 0;
}

dk_tensor *dk_dict_tensors_at(const dk_dict *d, const char *key, size_t j)
{
    const entry *e = typed(d, key, DK_VALUE_TENSORS);
    return e && j < e->n ? e->tensors[j] : NULL;
}
