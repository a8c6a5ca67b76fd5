/* tests/data/data_testing.h — what the data tests share: checks with the
 * error shown, configs from YAML text validated like dkhost validates them,
 * and a bit-for-bit comparison of batches. */
#ifndef DK_DATA_TESTING_H
#define DK_DATA_TESTING_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dk_test.h"

#include "cfg/cfg.h"
#include "data/data.h"
#include "plugin/registry.h"
#include "runner/config_schema.h"

/* Fails the test, showing the error, when expr is not DK_OK. */
#define CHECK_OK(expr)                                                                             \
    do {                                                                                           \
        dk_status s_ = (expr);                                                                     \
        if (s_ != DK_OK)                                                                           \
            fail_msg("%s failed: %s: %s", #expr, dk_status_name(s_), dk_last_error());             \
    } while (0)

/* Parses `text` (a whole config with a `train_dataloader:` map) and
 * validates that entry as dkhost does, defaults filled. New tree. */
static inline dk_cfg *dt_loader_cfg(const dkh_registry *r, const char *text)
{
    dk_cfg *root = NULL;
    CHECK_OK(dkh_cfg_parse(text, "t.yaml", &root));
    size_t n;
    const dk_param *schema = dkh_config_schema(&n);
    const dk_param *entry = NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(schema[i].name, "train_dataloader") == 0)
            entry = &schema[i];
    assert_non_null(entry);
    CHECK_OK(dkh_cfg_validate(root, entry, 1, r));
    return root;
}

/* Builds the object a one-object YAML map describes (e.g. "{type: Resize,
 * size: [4, 4]}"); NULL with the error recorded when that fails. */
static inline dk_object *dt_build(const char *text, const char *kind)
{
    dk_cfg *node = NULL;
    CHECK_OK(dkh_cfg_parse(text, "t.yaml", &node));
    dk_object *obj = NULL;
    if (dk_object_build(node, kind, &obj) != DK_OK)
        obj = NULL;
    dkh_cfg_free(node);
    return obj;
}

/* Loads one in-tree plugin of this build into r. */
static inline void dt_load_plugin(dkh_registry *r, const char *file)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/plugins/%s.so", DK_BINARY_DIR, file);
    CHECK_OK(dkh_registry_load_file(r, path));
}

static inline bool dt_tensors_equal(const dk_tensor *a, const dk_tensor *b)
{
    int nd = dk_tensor_ndim(a);
    if (nd != dk_tensor_ndim(b) || dk_tensor_dtype(a) != dk_tensor_dtype(b) ||
        memcmp(dk_tensor_shape(a), dk_tensor_shape(b), (size_t)nd * sizeof(int64_t)) != 0)
        return false;
    size_t bytes = (size_t)dk_tensor_numel(a) * dk_dtype_size(dk_tensor_dtype(a));
    char *x = malloc(bytes + 1), *y = malloc(bytes + 1);
    assert_int_equal(dk_tensor_to_host(a, x, bytes), DK_OK);
    assert_int_equal(dk_tensor_to_host(b, y, bytes), DK_OK);
    bool same = memcmp(x, y, bytes) == 0;
    free(x);
    free(y);
    return same;
}

/* Fails unless a and b hold the same keys in the same order, with equal
 * values (tensors bit for bit). `what` names the pair in the failure. */
static inline void dt_check_dicts_equal(const dk_dict *a, const dk_dict *b, const char *what)
{
    if (dk_dict_len(a) != dk_dict_len(b))
        fail_msg("%s: %zu keys vs %zu", what, dk_dict_len(a), dk_dict_len(b));
    for (size_t i = 0; i < dk_dict_len(a); i++) {
        const char *key = dk_dict_key(a, i);
        if (strcmp(key, dk_dict_key(b, i)) != 0 || dk_dict_kind(a, i) != dk_dict_kind(b, i))
            fail_msg("%s: entry %zu is '%s' vs '%s'", what, i, key, dk_dict_key(b, i));
        bool same = true;
        switch (dk_dict_kind(a, i)) {
        case DK_VALUE_TENSOR:
            same = dt_tensors_equal(dk_dict_tensor(a, key), dk_dict_tensor(b, key));
            break;
        case DK_VALUE_TENSORS:
            same = dk_dict_tensors_len(a, key) == dk_dict_tensors_len(b, key);
            for (size_t j = 0; same && j < dk_dict_tensors_len(a, key); j++)
                same =
                    dt_tensors_equal(dk_dict_tensors_at(a, key, j), dk_dict_tensors_at(b, key, j));
            break;
        case DK_VALUE_NUMBER:
            same = dk_dict_number(a, key, 0) == dk_dict_number(b, key, 0);
            break;
        case DK_VALUE_STRING:
            same = strcmp(dk_dict_string(a, key), dk_dict_string(b, key)) == 0;
            break;
        default:
            break;
        }
        if (!same)
            fail_msg("%s: values of '%s' differ", what, key);
    }
}

/* The i64 values of a 1-d tensor, copied into out (n entries at most);
 * returns the count. */
static inline int64_t dt_i64s(const dk_tensor *t, int64_t *out, int64_t n)
{
    assert_int_equal(dk_tensor_dtype(t), DK_DTYPE_I64);
    assert_int_equal(dk_tensor_ndim(t), 1);
    int64_t len = dk_tensor_shape(t)[0];
    assert_true(len <= n);
    assert_int_equal(dk_tensor_to_host(t, out, (size_t)len * sizeof *out), DK_OK);
    return len;
}

#endif /* DK_DATA_TESTING_H */
