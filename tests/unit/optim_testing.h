/* tests/unit/optim_testing.h — helpers shared by the optimizer and schedule
 * tests: a registry holding the host's optimizer and schedule types, config
 * text validated against one top-level entry of the real config schema
 * (so defaults are filled exactly as for a run), and parameters whose
 * gradients are set to chosen values through a real backward. */
#ifndef DK_OPTIM_TESTING_H
#define DK_OPTIM_TESTING_H

#include "cfg_testing.h"

#include "dk_test.h"
#include "optim/optim.h"
#include "plugin/registry.h"
#include "runner/config_schema.h"

#include <math.h>

static inline int optim_registry_setup(void **state)
{
    dkh_registry *r = dkh_registry_new();
    CHECK_OK(dkh_optim_register_builtins(r));
    dkh_registry_set_current(r);
    *state = r;
    return 0;
}

static inline int optim_registry_teardown(void **state)
{
    dkh_registry_set_current(NULL);
    dkh_registry_free(*state);
    return 0;
}

/* The top-level schema entry `key` (e.g. "optim_wrapper"). */
static inline const dk_param *schema_entry(const char *key)
{
    size_t n;
    const dk_param *all = dkh_config_schema(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(all[i].name, key) == 0)
            return &all[i];
    fail_msg("no top-level key %s", key);
    return NULL;
}

/* Parses "key: <text>" as t.yaml and validates it against the schema entry
 * `key`; returns the status (root set on success, else NULL). */
static inline dk_status validated(const char *key, const char *text, dk_cfg **root)
{
    char *yaml = dkh_asprintf("%s: %s\n", key, text);
    dk_cfg *c = NULL;
    dk_status s = dkh_cfg_parse(yaml, "t.yaml", &c);
    free(yaml);
    if (s == DK_OK)
        s = dkh_cfg_validate(c, schema_entry(key), 1, dkh_registry_current());
    if (s != DK_OK) {
        dkh_cfg_free(c);
        c = NULL;
    }
    *root = c;
    return s;
}

/* An f32 parameter (requires grad) holding data; the caller releases it. */
static inline dk_tensor *make_param(int ndim, const int64_t *shape, const float *data)
{
    dk_tensor *t = dk_from_data(ndim, shape, DK_DTYPE_F32, data);
    assert_non_null(t);
    CHECK_OK(dk_tensor_set_requires_grad(t, true));
    return t;
}

/* Accumulates grads[i] into the gradient of params[i] (a backward of
 * sum_i sum(params[i] * grads[i])); a NULL grads[i] leaves params[i] out. */
static inline void add_grads(dk_tensor *const *params, const float *const *grads, size_t n)
{
    dk_scope_begin();
    dk_tensor *loss = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!grads[i])
            continue;
        dk_tensor *g = dk_from_data(dk_tensor_ndim(params[i]), dk_tensor_shape(params[i]),
                                    DK_DTYPE_F32, grads[i]);
        dk_tensor *term = dk_sum(dk_mul(params[i], g), NULL, 0, false);
        loss = loss ? dk_add(loss, term) : term;
    }
    assert_non_null(loss);
    CHECK_OK(dk_backward(loss, NULL, false));
    dk_scope_end();
}

/* Relative closeness for f32 results against a double reference. */
static inline void check_close(double got, double want, double rtol, const char *what, int i)
{
    double tol = rtol * (fabs(want) > 1e-3 ? fabs(want) : 1e-3);
    if (!(fabs(got - want) <= tol))
        fail_msg("%s[%d]: got %.9g, want %.9g (tolerance %.3g)", what, i, got, want, tol);
}

#endif /* DK_OPTIM_TESTING_H */
