/* core/runner/predict_loop.c — `dkhost predict`: the model's predict-mode
 * outputs for every sample of the test split, one JSON line per sample.
 *
 *     {"sample_idx": 17, "pred_label": 3, "pred_class": "Dress", "pred_score": [0.01, ...]}
 *
 * sample_idx is the sample's index in the dataset (the loader knows which
 * samples a batch holds), so lines can be matched to inputs whatever the
 * sampler's order. Every tensor the model's predict mode returns with one row
 * per sample becomes a field: a number when the row is a single value, else
 * the row's values flattened in row-major order; a tensor list with one
 * entry per sample (detections of different counts) likewise. Integer dtypes
 * print as integers, non-finite floats as null. A model output without a
 * per-sample row is skipped with one warning.
 *
 * The file is written next to its final name and renamed into place after
 * an fsync, so a crash or Ctrl-C never leaves half a prediction file that
 * looks complete.
 */
#include "runner_impl.h"

#include "../tensor/tensor_impl.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* t with the values as JSON writes them: i64 for integers and bools, f64
 * for floats, contiguous on the host. NULL when the conversion fails. */
static dk_tensor *as_json_values(dk_tensor *t)
{
    return dk_contiguous(dk_cast(t, dkh_is_float(dk_tensor_dtype(t)) ? DK_DTYPE_F64
                                                                     : DK_DTYPE_I64));
}

/* Values [start, start + len) of v (from as_json_values); a bracketed list
 * unless `list` is false (a single value). */
static void put_values(dkh_buf *line, const dk_tensor *v, int64_t start, int64_t len, bool list)
{
    bool integral = dk_tensor_dtype(v) == DK_DTYPE_I64;
    if (list)
        dkh_buf_putc(line, '[');
    for (int64_t k = start; k < start + len; k++) {
        if (k > start)
            dkh_buf_puts(line, ", ");
        if (integral) {
            dkh_buf_printf(line, "%lld", (long long)((const int64_t *)dk_tensor_data(v))[k]);
        } else {
            double x = ((const double *)dk_tensor_data(v))[k];
            if (isfinite(x))
                dkh_buf_printf(line, "%.7g", x);
            else
                dkh_buf_puts(line, "null");
        }
    }
    if (list)
        dkh_buf_putc(line, ']');
}

/* Whether field k of preds has one row (or list entry) per sample. */
static bool per_sample(const dk_dict *preds, size_t k, int64_t n)
{
    const char *key = dk_dict_key(preds, k);
    switch (dk_dict_kind(preds, k)) {
    case DK_VALUE_TENSOR: {
        dk_tensor *t = dk_dict_tensor(preds, key);
        return dk_tensor_ndim(t) >= 1 && dk_tensor_shape(t)[0] == n;
    }
    case DK_VALUE_TENSORS:
        return (int64_t)dk_dict_tensors_len(preds, key) == n;
    default:
        return false;
    }
}

/* Sample i's line. values[k] is field k of preds converted once for the
 * batch (as_json_values); a tensor list's entry is converted here, one
 * sample at a time. */
static dk_status put_sample(dkh_buf *line, const dk_runner *r, const dk_dict *preds,
                            dk_tensor *const *values, int64_t n, int64_t i, int64_t sample_idx)
{
    const dk_dataset_vtable *dvt = dk_object_type(r->test.dataset)->vtable;
    dkh_buf_printf(line, "{\"sample_idx\": %lld", (long long)sample_idx);
    for (size_t k = 0; k < dk_dict_len(preds); k++) {
        if (!per_sample(preds, k, n))
            continue;
        const char *key = dk_dict_key(preds, k);
        bool entry = dk_dict_kind(preds, k) == DK_VALUE_TENSORS;
        dk_tensor *v = entry ? as_json_values(dk_dict_tensors_at(preds, key, (size_t)i))
                             : values[k];
        if (!v)
            return dk_last_status();
        int64_t len = entry ? dk_tensor_numel(v) : dk_tensor_numel(v) / n;
        bool list = dk_tensor_ndim(v) > (entry ? 0 : 1);
        dkh_buf_puts(line, ", ");
        dkh_buf_json_str(line, key);
        dkh_buf_puts(line, ": ");
        put_values(line, v, entry ? 0 : i * len, len, list);
        if (strcmp(key, "pred_label") == 0 && !entry && !list && dvt->class_name &&
            dk_tensor_dtype(v) == DK_DTYPE_I64) {
            const char *name = dvt->class_name(dk_object_self(r->test.dataset),
                                               ((const int64_t *)dk_tensor_data(v))[i]);
            if (name) {
                dkh_buf_puts(line, ", \"pred_class\": ");
                dkh_buf_json_str(line, name);
            }
        }
    }
    dkh_buf_puts(line, "}\n");
    return DK_OK;
}

/* Warns once per model output that has no per-sample row. */
static void warn_skipped(const dk_dict *preds, int64_t n, bool *warned)
{
    if (*warned)
        return;
    for (size_t k = 0; k < dk_dict_len(preds); k++) {
        if (per_sample(preds, k, n))
            continue;
        dk_log(DK_LOG_WARN, "predict: the model's output '%s' has no row per sample; it is not "
                            "written", dk_dict_key(preds, k));
        *warned = true;
    }
}

static dk_status predict_batches(dk_runner *r, FILE *f, const char *tmp, int64_t *written)
{
    const dkh_split *sp = &r->test;
    bool warned = false;
    dk_status s = dkh_loader_start_epoch(sp->loader, 0, 0);
    while (s == DK_OK) {
        int64_t b = dkh_loader_position(sp->loader);
        dk_dict *batch = NULL;
        s = dkh_loader_next(sp->loader, &batch);
        if (s != DK_OK || !batch)
            break;
        int64_t n;
        const int64_t *idx = dkh_loader_batch_indices(sp->loader, b, &n);
        dk_scope_begin();
        dk_dict *preds = dk_dict_new();
        s = preds ? dkh_model_forward(r, batch, DK_MODE_PREDICT, preds) : dk_last_status();
        dkh_buf line = DKH_BUF_INIT;
        if (s == DK_OK) {
            warn_skipped(preds, n, &warned);
            size_t nk = dk_dict_len(preds);
            dk_tensor **values = dk_calloc(nk ? nk : 1, sizeof *values);
            if (!values)
                s = dk_fail(DK_ERR_NOMEM, "predict: out of memory");
            for (size_t k = 0; s == DK_OK && k < nk; k++)
                if (dk_dict_kind(preds, k) == DK_VALUE_TENSOR && per_sample(preds, k, n) &&
                    !(values[k] = as_json_values(dk_dict_tensor(preds, dk_dict_key(preds, k)))))
                    s = dk_last_status();
            for (int64_t i = 0; s == DK_OK && i < n; i++)
                s = put_sample(&line, r, preds, values, n, i, idx[i]);
            dk_free(values);
        }
        if (s == DK_OK) {
            if (fputs(dkh_buf_str(&line), f) == EOF)
                s = dk_fail(DK_ERR_IO, "predict: cannot write %s: %s", tmp, strerror(errno));
            *written += n;
        }
        dkh_buf_fini(&line);
        dk_dict_free(preds);
        dk_scope_end();
        dk_dict_free(batch);
    }
    return s;
}

dk_status dkh_predict(dk_runner *r, const char *path)
{
    char *tmp = dkh_asprintf("%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        dk_status s = dk_fail(DK_ERR_IO, "predict: cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return s;
    }
    dk_module_train(r->model, false);
    bool grad_was = dk_grad_set_enabled(false);
    int64_t written = 0;
    dk_status s = predict_batches(r, f, tmp, &written);
    dk_grad_set_enabled(grad_was);
    if (s == DK_OK && (fflush(f) != 0 || fsync(fileno(f)) != 0))
        s = dk_fail(DK_ERR_IO, "predict: cannot write %s: %s", tmp, strerror(errno));
    if (fclose(f) != 0 && s == DK_OK)
        s = dk_fail(DK_ERR_IO, "predict: cannot write %s: %s", tmp, strerror(errno));
    if (s == DK_OK && rename(tmp, path) != 0)
        s = dk_fail(DK_ERR_IO, "predict: cannot rename %s to %s: %s", tmp, path,
                    strerror(errno));
    if (s != DK_OK)
        unlink(tmp);
    else
        dk_log(DK_LOG_INFO, "predict: %lld predictions written to %s", (long long)written, path);
    free(tmp);
    return s;
}
