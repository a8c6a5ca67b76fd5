/* core/data/collate.c — samples into a batch (PyTorch's default_collate,
 * for dk_dict values).
 *
 * Copies are plain loops over bytes, not tensor ops: collate runs on loader
 * threads next to a training step, and a kernel here would start a thread
 * team of its own that competes with the step's. data.h lists the rules.
 */
#include "data.h"

#include "../util/util.h"

#include <math.h>
#include <string.h>

/* Copies t's elements in C order to dst (t is CPU-readable). */
static void copy_dense(const dk_tensor *t, char *dst)
{
    int nd = dk_tensor_ndim(t);
    size_t es = dk_dtype_size(dk_tensor_dtype(t));
    const char *src = dk_tensor_data(t);
    if (dk_tensor_is_contiguous(t)) {
        memcpy(dst, src, (size_t)dk_tensor_numel(t) * es);
        return;
    }
    const int64_t *shape = dk_tensor_shape(t), *strides = dk_tensor_strides(t);
    int64_t numel = dk_tensor_numel(t), idx[DK_MAX_DIMS] = {0};
    for (int64_t e = 0; e < numel; e++) {
        int64_t off = 0;
        for (int d = 0; d < nd; d++)
            off += idx[d] * strides[d];
        memcpy(dst + (size_t)e * es, src + off * (int64_t)es, es);
        for (int d = nd - 1; d >= 0; d--) {
            if (++idx[d] < shape[d])
                break;
            idx[d] = 0;
        }
    }
}

static bool same_shape(const dk_tensor *a, const dk_tensor *b)
{
    int nd = dk_tensor_ndim(a);
    return nd == dk_tensor_ndim(b) &&
           memcmp(dk_tensor_shape(a), dk_tensor_shape(b), (size_t)nd * sizeof(int64_t)) == 0;
}

/* The stacked (n, ...) tensor of ts[0..n), all of one shape and dtype. */
static dk_status stack(dk_tensor *const *ts, size_t n, const char *key, const int64_t *indices,
                       dk_tensor **out)
{
    int nd = dk_tensor_ndim(ts[0]);
    dk_dtype dt = dk_tensor_dtype(ts[0]);
    for (size_t i = 0; i < n; i++) {
        if (dk_tensor_dtype(ts[i]) != dt)
            return dk_fail(DK_ERR_ARG, "collate: '%s' is %s in dataset index %lld but %s in "
                           "dataset index %lld", key, dk_dtype_name(dt), (long long)indices[0],
                           dk_dtype_name(dk_tensor_dtype(ts[i])), (long long)indices[i]);
        if (dk_tensor_device(ts[i]).type != DK_DEVICE_CPU)
            return dk_fail(DK_ERR_ARG, "collate: '%s' of dataset index %lld is not on the CPU; "
                           "datasets and transforms make CPU tensors", key,
                           (long long)indices[i]);
    }
    int64_t shape[DK_MAX_DIMS + 1];
    if (nd + 1 > DK_MAX_DIMS)
        return dk_fail(DK_ERR_SHAPE, "collate: '%s' has %d dims; a batch of it would exceed %d",
                       key, nd, DK_MAX_DIMS);
    shape[0] = (int64_t)n;
    memcpy(shape + 1, dk_tensor_shape(ts[0]), (size_t)nd * sizeof(int64_t));
    dk_tensor *b = dk_empty(nd + 1, shape, dt, DK_CPU);
    if (!b)
        return dk_last_status();
    size_t bytes = (size_t)dk_tensor_numel(ts[0]) * dk_dtype_size(dt);
    char *dst = dk_tensor_data(b);
    for (size_t i = 0; i < n; i++)
        copy_dense(ts[i], dst + i * bytes);
    *out = b;
    return DK_OK;
}

static dk_status collate_tensors(dk_dict *const *samples, const int64_t *indices, size_t n,
                                 const char *key, dk_tensor **ts, dk_dict *batch)
{
    bool ragged = false;
    for (size_t i = 0; i < n; i++) {
        ts[i] = dk_dict_tensor(samples[i], key);
        ragged |= !same_shape(ts[0], ts[i]);
    }
    if (ragged)
        return dk_dict_set_tensors(batch, key, ts, n);
    dk_tensor *b;
    DK_TRY(stack(ts, n, key, indices, &b));
    return dk_dict_set_tensor(batch, key, b);
}

static dk_status collate_numbers(dk_dict *const *samples, size_t n, const char *key,
                                 dk_dict *batch)
{
    bool integral = true;
    for (size_t i = 0; i < n; i++) {
        double v = dk_dict_number(samples[i], key, 0);
        integral &= v == floor(v) && fabs(v) <= 9007199254740992.0; /* 2^53: exact */
    }
    int64_t shape[1] = {(int64_t)n};
    dk_tensor *b = dk_empty(1, shape, integral ? DK_DTYPE_I64 : DK_DTYPE_F32, DK_CPU);
    if (!b)
        return dk_last_status();
    for (size_t i = 0; i < n; i++) {
        double v = dk_dict_number(samples[i], key, 0);
        if (integral)
            ((int64_t *)dk_tensor_data(b))[i] = (int64_t)v;
        else
            ((float *)dk_tensor_data(b))[i] = (float)v;
    }
    return dk_dict_set_tensor(batch, key, b);
}

/* Element j of every sample's list, stacked; the batch's list gets one
 * entry per element. */
static dk_status collate_lists(dk_dict *const *samples, const int64_t *indices, size_t n,
                               const char *key, dk_tensor **ts, dk_dict *batch)
{
    size_t len = dk_dict_tensors_len(samples[0], key);
    for (size_t i = 1; i < n; i++)
        if (dk_dict_tensors_len(samples[i], key) != len)
            return dk_fail(DK_ERR_SHAPE, "collate: tensor list '%s' has %zu entries in dataset "
                           "index %lld but %zu in dataset index %lld", key, len,
                           (long long)indices[0], dk_dict_tensors_len(samples[i], key),
                           (long long)indices[i]);
    DK_TRY(dk_dict_set_tensors(batch, key, NULL, 0));
    for (size_t j = 0; j < len; j++) {
        for (size_t i = 0; i < n; i++) {
            ts[i] = dk_dict_tensors_at(samples[i], key, j);
            if (!same_shape(ts[0], ts[i]))
                return dk_fail(DK_ERR_SHAPE, "collate: entry %zu of tensor list '%s' has "
                               "different shapes in dataset index %lld and %lld (a list "
                               "entry is stacked, so it cannot be ragged)", j, key,
                               (long long)indices[0], (long long)indices[i]);
        }
        dk_tensor *b;
        DK_TRY(stack(ts, n, key, indices, &b));
        DK_TRY(dk_dict_append_tensor(batch, key, b));
    }
    return DK_OK;
}

static const char *kind_name(dk_value_kind k)
{
    switch (k) {
    case DK_VALUE_TENSOR:
        return "a tensor";
    case DK_VALUE_NUMBER:
        return "a number";
    case DK_VALUE_STRING:
        return "a string";
    case DK_VALUE_TENSORS:
        return "a tensor list";
    default:
        return "nothing";
    }
}

/* Every sample has exactly sample 0's keys, each of the same kind. */
static dk_status check_keys(dk_dict *const *samples, const int64_t *indices, size_t n)
{
    size_t nk = dk_dict_len(samples[0]);
    for (size_t i = 1; i < n; i++) {
        for (size_t k = 0; k < nk; k++) {
            const char *key = dk_dict_key(samples[0], k);
            int64_t at = dk_dict_find(samples[i], key);
            if (at < 0)
                return dk_fail(DK_ERR_ARG, "collate: dataset index %lld has no key '%s' that "
                               "dataset index %lld has (every sample of a batch needs the same "
                               "keys)", (long long)indices[i], key, (long long)indices[0]);
            dk_value_kind a = dk_dict_kind(samples[0], k), b = dk_dict_kind(samples[i], (size_t)at);
            if (a != b)
                return dk_fail(DK_ERR_ARG, "collate: '%s' is %s in dataset index %lld but %s in "
                               "dataset index %lld", key, kind_name(a), (long long)indices[0],
                               kind_name(b), (long long)indices[i]);
        }
        if (dk_dict_len(samples[i]) != nk) {
            for (size_t k = 0; k < dk_dict_len(samples[i]); k++) {
                const char *key = dk_dict_key(samples[i], k);
                if (dk_dict_find(samples[0], key) < 0)
                    return dk_fail(DK_ERR_ARG, "collate: dataset index %lld has a key '%s' that "
                                   "dataset index %lld lacks (every sample of a batch needs "
                                   "the same keys)", (long long)indices[i], key,
                                   (long long)indices[0]);
            }
        }
    }
    return DK_OK;
}

dk_status dkh_collate(dk_dict *const *samples, const int64_t *indices, size_t n, dk_dict *batch)
{
    if (n == 0)
        return DK_OK;
    DK_TRY(check_keys(samples, indices, n));
    dk_tensor **ts = dk_malloc(n * sizeof *ts);
    if (!ts)
        return dk_fail(DK_ERR_NOMEM, "collate: out of memory");
    dk_status s = DK_OK;
    for (size_t k = 0; s == DK_OK && k < dk_dict_len(samples[0]); k++) {
        const char *key = dk_dict_key(samples[0], k);
        switch (dk_dict_kind(samples[0], k)) {
        case DK_VALUE_TENSOR:
            s = collate_tensors(samples, indices, n, key, ts, batch);
            break;
        case DK_VALUE_NUMBER:
            s = collate_numbers(samples, n, key, batch);
            break;
        case DK_VALUE_TENSORS:
            s = collate_lists(samples, indices, n, key, ts, batch);
            break;
        default: /* strings: per-sample text has no batched form */
            break;
        }
    }
    dk_free(ts);
    return s;
}
