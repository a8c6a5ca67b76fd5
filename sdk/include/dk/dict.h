/* dk/dict.h — the one data type that flows: an ordered map of named values.
 *
 * A sample, a batch, a module's inputs and outputs, a loss map, metric results
 * and a log record are all dk_dicts:
 *
 *     dk_dict *s = dk_dict_new();
 *     DK_TRY(dk_dict_set_tensor(s, "img", img));        // the dict takes a reference
 *     DK_TRY(dk_dict_set_number(s, "gt_label", 3));
 *     dk_tensor *x = dk_dict_tensor(s, "img");           // borrowed
 *     dk_dict_free(s);                                   // drops its references
 *
 * A value is a tensor, a number (double), a string, or a list of tensors (for
 * ragged data such as the boxes of each image). Keys keep the order they were
 * first set in; setting an existing key replaces its value in place. Keys and
 * strings are copied. Tensors are shared, never copied: the dict holds its
 * own reference (dk_tensor_retain) and releases it when the value is replaced
 * or removed or the dict freed, so a tensor put into a dict outlives the
 * scope that made it.
 *
 * Conventions the shipped plugins and the runner share (documented in
 * docs/plugin-guide.md): "img" (N, C, H, W) f32 images; "gt_label" (N) i64
 * class indices; "feats" a tensor list of feature maps, deepest last;
 * "loss*" keys of a loss map are summed into the loss that is minimised;
 * "pred_score" (N, C) and "pred_label" (N) the predictions of a classifier.
 *
 * A dict is not thread-safe; one thread uses it at a time (the data loader
 * hands each batch over under its queue's lock).
 */
#ifndef DK_DICT_H
#define DK_DICT_H

#include <dk/types.h>
#include <dk/api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The functions are entries of the host API table (api_list.h, section
 * "dicts"); their declarations come from api.h.
 *
 * dk_dict *dk_dict_new(void);
 *     An empty dict, or NULL (DK_ERR_NOMEM) when out of memory.
 * void dk_dict_free(dk_dict *d);
 *     Releases every value; NULL is a no-op.
 * dk_status dk_dict_set_tensor(dk_dict *d, const char *key, dk_tensor *t);
 * dk_status dk_dict_set_number(dk_dict *d, const char *key, double v);
 * dk_status dk_dict_set_string(dk_dict *d, const char *key, const char *s);
 * dk_status dk_dict_set_tensors(dk_dict *d, const char *key, dk_tensor *const *ts, size_t n);
 *     Set (or replace) a value. Errors: DK_ERR_ARG for a NULL dict, key or
 *     tensor, or an empty key; DK_ERR_NOMEM.
 * dk_status dk_dict_append_tensor(dk_dict *d, const char *key, dk_tensor *t);
 *     Appends to the tensor list under key, creating it. DK_ERR_ARG when key
 *     holds something other than a list.
 * bool dk_dict_remove(dk_dict *d, const char *key);
 *     Removes a value (order of the rest kept); false when absent.
 * void dk_dict_clear(dk_dict *d);
 * dk_status dk_dict_update(dk_dict *dst, const dk_dict *src);
 *     Sets every value of src into dst (tensors shared, strings copied).
 *
 * size_t dk_dict_len(const dk_dict *d);
 * int64_t dk_dict_find(const dk_dict *d, const char *key);   index, or -1
 * const char *dk_dict_key(const dk_dict *d, size_t i);       borrowed
 * dk_value_kind dk_dict_kind(const dk_dict *d, size_t i);    DK_VALUE_NONE past the end
 *
 * Typed lookups by key (borrowed results; "absent or another kind" gives the
 * stated fallback, so optional values read in one line):
 * dk_tensor *dk_dict_tensor(const dk_dict *d, const char *key);        NULL
 * double dk_dict_number(const dk_dict *d, const char *key, double fallback);
 * const char *dk_dict_string(const dk_dict *d, const char *key);       NULL
 * size_t dk_dict_tensors_len(const dk_dict *d, const char *key);      0
 * dk_tensor *dk_dict_tensors_at(const dk_dict *d, const char *key, size_t j);  NULL
 */

#ifdef __cplusplus
}
#endif
#endif /* DK_DICT_H */
