/* tests/nn/test_module.c — the module system (core/nn) with module types
 * this test registers itself: names and order of the state walk, the
 * initialisers' statistics, seeding, declaration errors, training mode and how
 * forward errors name their module.
 *
 *   Leaf  (neck)     weight (out, in), bias (out), buffer count; y = x W^T + b
 *   Tree  (model)    child a, parameter scale, child b; y = b(a(x)) * scale
 *   Bad   (head)     one declaration mistake per `case`
 *   Init  (backbone) one parameter "w" filled by the init the config gives
 *   NoFwd (neck)     a module without a forward
 *   NotModule (metric)
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cfg/cfg.h"
#include "nn/nn.h"
#include "plugin/registry.h"

#include "dk_test.h"

/* ---- the test's module types ------------------------------------------------------ */

static bool leaf_saw_training;

typedef struct leaf {
    dk_tensor *w, *b, *count;
} leaf;

static void free_self(void *self)
{
    dk_free(self);
}

static dk_status leaf_create(const dk_cfg *cfg, void **self)
{
    int64_t in, out;
    DK_TRY(dk_cfg_get_int(cfg, "in", &in));
    DK_TRY(dk_cfg_get_int(cfg, "out", &out));
    leaf *l = dk_calloc(1, sizeof *l);
    l->w = dk_module_param("weight", 2, (int64_t[]){out, in},
                           &(dk_init){.kind = DK_INIT_KAIMING_UNIFORM, .a = sqrt(5.0)});
    l->b = dk_module_param("bias", 1, &out,
                           &(dk_init){.kind = DK_INIT_FAN_IN_UNIFORM, .b = (double)in});
    l->count = dk_module_buffer("count", 0, NULL, DK_DTYPE_I64, 3);
    if (!l->w || !l->b || !l->count) {
        dk_free(l);
        return dk_last_status();
    }
    *self = l;
    return DK_OK;
}

static dk_status leaf_forward(void *self, const dk_dict *in, dk_forward_mode mode, dk_dict *out)
{
    (void)mode;
    leaf *l = self;
    leaf_saw_training = dk_module_training();
    dk_tensor *y = dk_linear(dk_dict_tensor(in, "x"), l->w, l->b);
    if (!y)
        return dk_last_status();
    return dk_dict_set_tensor(out, "x", y);
}

typedef struct tree {
    dk_object *a, *b;
    dk_tensor *scale;
    bool fail_after;
} tree;

static dk_status tree_create(const dk_cfg *cfg, void **self)
{
    tree *t = dk_calloc(1, sizeof *t);
    dk_status s = dk_cfg_get_bool(cfg, "fail_after", &t->fail_after);
    if (s == DK_OK && !(t->a = dk_module_child(dk_cfg_get(cfg, "a"), "a", "neck")))
        s = dk_last_status();
    if (s == DK_OK && !(t->scale = dk_module_param("scale", 1, (int64_t[]){1},
                                                   &(dk_init){.kind = DK_INIT_CONSTANT, .a = 2})))
        s = dk_last_status();
    if (s == DK_OK && !(t->b = dk_module_child(dk_cfg_get(cfg, "b"), "b", "neck")))
        s = dk_last_status();
    if (s != DK_OK) {
        dk_free(t);
        return s;
    }
    *self = t;
    return DK_OK;
}

static dk_status tree_forward(void *self, const dk_dict *in, dk_forward_mode mode, dk_dict *out)
{
    tree *t = self;
    dk_dict *mid = dk_dict_new(), *end = dk_dict_new();
    dk_status s = dk_module_forward(t->a, in, mode, mid);
    if (s == DK_OK)
        s = dk_module_forward(t->b, mid, mode, end);
    if (s == DK_OK && t->fail_after)
        s = dk_fail(DK_ERR_RUNTIME, "Tree: asked to fail");
    if (s == DK_OK) {
        dk_tensor *y = dk_mul(dk_dict_tensor(end, "x"), t->scale);
        s = y ? dk_dict_set_tensor(out, "y", y) : dk_last_status();
    }
    dk_dict_free(mid);
    dk_dict_free(end);
    return s;
}

/* One declaration mistake per case; each returns the failing call's status. */
static dk_status bad_create(const dk_cfg *cfg, void **self)
{
    const char *c = NULL;
    DK_TRY(dk_cfg_get_str(cfg, "case", &c));
    const int64_t four = 4;
    bool ok = true;
    if (!strcmp(c, "dup"))
        ok = dk_module_param("w", 1, &four, NULL) && dk_module_param("w", 1, &four, NULL);
    else if (!strcmp(c, "empty_segment"))
        ok = dk_module_param("a..b", 1, &four, NULL);
    else if (!strcmp(c, "bad_char"))
        ok = dk_module_buffer("conv-1.weight", 1, &four, DK_DTYPE_F32, 0);
    else if (!strcmp(c, "prefix"))
        ok = dk_module_param("x", 1, &four, NULL) &&
             dk_module_buffer("x.y", 1, &four, DK_DTYPE_F32, 0);
    else if (!strcmp(c, "child_prefix"))
        ok = dk_module_param("c.w", 1, &four, NULL) &&
             dk_module_child(dk_cfg_get(cfg, "sub"), "c", NULL);
    else if (!strcmp(c, "not_module"))
        ok = dk_module_child(dk_cfg_get(cfg, "sub"), "c", NULL);
    else if (!strcmp(c, "null_child"))
        ok = dk_module_child(dk_cfg_get(cfg, "sub"), "c", NULL);
    else if (!strcmp(c, "bad_shape"))
        ok = dk_module_param("w", 1, (int64_t[]){-1}, NULL);
    else if (!strcmp(c, "too_many_dims"))
        ok = dk_module_param("w", 9, (int64_t[9]){1}, NULL);
    if (!ok)
        return dk_last_status();
    *self = NULL;
    return DK_OK;
}

static dk_status init_create(const dk_cfg *cfg, void **self)
{
    int64_t kind, shape[DK_MAX_DIMS];
    dk_init init = {0};
    const dk_cfg *sh = dk_cfg_get(cfg, "shape");
    DK_TRY(dk_cfg_get_int(cfg, "kind", &kind));
    DK_TRY(dk_cfg_get_float(cfg, "a", &init.a));
    DK_TRY(dk_cfg_get_float(cfg, "b", &init.b));
    DK_TRY(dk_cfg_get_bool(cfg, "fan_out", &init.fan_out));
    init.kind = (int32_t)kind;
    int n = (int)dk_cfg_len(sh);
    for (int i = 0; i < n; i++)
        DK_TRY(dk_cfg_get_int(dk_cfg_at(sh, (size_t)i), NULL, &shape[i]));
    *self = NULL;
    return dk_module_param("w", n, shape, &init) ? DK_OK : dk_last_status();
}

static dk_status none_create(const dk_cfg *cfg, void **self)
{
    (void)cfg;
    *self = NULL;
    return DK_OK;
}

static const dk_param leaf_params[] = {
    {.name = "in", .type = DK_PARAM_INT, .def = "3"},
    {.name = "out", .type = DK_PARAM_INT, .def = "4"},
};
static const dk_param tree_params[] = {
    {.name = "a", .type = DK_PARAM_OBJECT, .kind = "neck", .flags = DK_PARAM_REQUIRED},
    {.name = "b", .type = DK_PARAM_OBJECT, .kind = "neck", .flags = DK_PARAM_REQUIRED},
    {.name = "fail_after", .type = DK_PARAM_BOOL, .def = "false"},
};
static const dk_param bad_params[] = {
    {.name = "case", .type = DK_PARAM_STRING, .flags = DK_PARAM_REQUIRED},
    {.name = "sub", .type = DK_PARAM_MAP, .flags = DK_PARAM_NULLABLE},
};
static const dk_param init_params[] = {
    {.name = "kind", .type = DK_PARAM_INT, .def = "0"},
    {.name = "a", .type = DK_PARAM_FLOAT, .def = "0"},
    {.name = "b", .type = DK_PARAM_FLOAT, .def = "0"},
    {.name = "fan_out", .type = DK_PARAM_BOOL, .def = "false"},
    {.name = "shape", .type = DK_PARAM_LIST, .elem = DK_PARAM_INT, .def = "[4]"},
};

static const dk_module_vtable leaf_vt = {.struct_size = sizeof(dk_module_vtable),
                                         .create = leaf_create,
                                         .destroy = free_self,
                                         .forward = leaf_forward};
static const dk_module_vtable tree_vt = {.struct_size = sizeof(dk_module_vtable),
                                         .create = tree_create,
                                         .destroy = free_self,
                                         .forward = tree_forward};
static const dk_module_vtable bad_vt = {
    .struct_size = sizeof(dk_module_vtable), .create = bad_create, .destroy = free_self};
static const dk_module_vtable init_vt = {
    .struct_size = sizeof(dk_module_vtable), .create = init_create, .destroy = free_self};
static const dk_module_vtable nofwd_vt = {
    .struct_size = sizeof(dk_module_vtable), .create = none_create, .destroy = free_self};
static const dk_metric_vtable metric_vt = {
    .struct_size = sizeof(dk_metric_vtable), .create = none_create, .destroy = free_self};

#define TYPE(k, n, i, vt, ps)                                                                      \
    {                                                                                              \
        DK_TYPE_INFO_HEAD, .kind = k, .name = n, .summary = "test type", .iface = i,               \
                           .vtable = &vt, DK_PARAMS(ps)                                            \
    }

static int setup(void **state)
{
    dkh_registry *r = dkh_registry_new();
    dkh_registry_set_current(r);
    const dk_type_info types[] = {
        TYPE("neck", "Leaf", DK_IFACE_MODULE, leaf_vt, leaf_params),
        TYPE("model", "Tree", DK_IFACE_MODULE, tree_vt, tree_params),
        TYPE("head", "Bad", DK_IFACE_MODULE, bad_vt, bad_params),
        TYPE("backbone", "Init", DK_IFACE_MODULE, init_vt, init_params),
        {DK_TYPE_INFO_HEAD, .kind = "neck", .name = "NoFwd", .summary = "test type",
         .iface = DK_IFACE_MODULE, .vtable = &nofwd_vt},
        {DK_TYPE_INFO_HEAD, .kind = "metric", .name = "NotModule", .summary = "test type",
         .iface = DK_IFACE_METRIC, .vtable = &metric_vt},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (dkh_registry_add_builtin(r, &types[i]) != DK_OK) {
            fprintf(stderr, "setup: %s\n", dk_last_error());
            return -1;
        }
    *state = r;
    return 0;
}

static int teardown(void **state)
{
    dkh_registry_set_current(NULL);
    dkh_registry_free(*state);
    return 0;
}

/* ---- helpers ----------------------------------------------------------------------- */

/* Builds the object at `key` of YAML text. The parsed tree is freed at once:
 * an object keeps its own copy of its node. */
static dk_status build(const char *text, const char *key, dk_object **out)
{
    dk_cfg *root = NULL;
    *out = NULL;
    dk_status s = dkh_cfg_parse(text, "t.yaml", &root);
    assert_int_equal(s, DK_OK);
    s = dk_object_build(dk_cfg_get(root, key), NULL, out);
    dkh_cfg_free(root);
    return s;
}

static dk_object *build_ok(const char *text, const char *key)
{
    dk_object *obj = NULL;
    if (build(text, key, &obj) != DK_OK)
        fail_msg("building %s: %s", key, dk_last_error());
    return obj;
}

static void expect_build_error(const char *text, dk_status want, const char *needle)
{
    dk_object *obj = NULL;
    assert_int_equal(build(text, "x", &obj), want);
    assert_null(obj);
    assert_contains(dk_last_error(), needle);
}

static const char *const tree_text = "model:\n"
                                     "  type: Tree\n"
                                     "  a: {type: Leaf, in: 3, out: 4}\n"
                                     "  b: {type: Leaf, in: 4, out: 2}\n";

typedef struct stats {
    double mean, std, min, max;
} stats;

static stats stats_of(const dk_tensor *t)
{
    const float *p = dk_tensor_data(t);
    int64_t n = dk_tensor_numel(t);
    stats s = {0, 0, INFINITY, -INFINITY};
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < n; i++) {
        sum += p[i];
        sq += (double)p[i] * p[i];
        s.min = fmin(s.min, p[i]);
        s.max = fmax(s.max, p[i]);
    }
    s.mean = sum / (double)n;
    s.std = sqrt(fmax(sq / (double)n - s.mean * s.mean, 0));
    return s;
}

/* ---- names, order, ownership ----------------------------------------------------------- */

static void test_names_and_order(void **state)
{
    (void)state;
    dk_object *m = build_ok(tree_text, "model");
    static const char *const names[] = {"a.weight", "a.bias", "a.count", "scale",
                                        "b.weight", "b.bias", "b.count"};
    static const bool buffers[] = {false, false, true, false, false, false, true};
    assert_int_equal(dk_module_n_tensors(m), 7);
    for (size_t i = 0; i < 7; i++) {
        const char *name = NULL;
        bool is_buffer = !buffers[i];
        dk_tensor *t = dk_module_tensor_at(m, i, &name, &is_buffer);
        assert_non_null(t);
        assert_str_eq(name, names[i]);
        assert_int_equal(is_buffer, buffers[i]);
        assert_int_equal(dk_tensor_requires_grad(t), !buffers[i]);
        assert_ptr_equal(dk_module_find(m, names[i]), t);
    }
    assert_null(dk_module_tensor_at(m, 7, NULL, NULL));
    assert_null(dk_module_find(m, "a"));
    assert_null(dk_module_find(m, "c.weight"));

    /* Shapes and buffer values as declared. */
    dk_tensor *w = dk_module_find(m, "b.weight");
    assert_int_equal(dk_tensor_ndim(w), 2);
    assert_int_equal(dk_tensor_shape(w)[0], 2);
    assert_int_equal(dk_tensor_shape(w)[1], 4);
    dk_tensor *count = dk_module_find(m, "a.count");
    assert_int_equal(dk_tensor_dtype(count), DK_DTYPE_I64);
    assert_int_equal(dk_tensor_ndim(count), 0);
    assert_int_equal(*(int64_t *)dk_tensor_data(count), 3);
    assert_true(((float *)dk_tensor_data(dk_module_find(m, "scale")))[0] == 2.0f);

    /* The parameter list skips buffers and keeps the order. */
    static const char *const params[] = {"a.weight", "a.bias", "scale", "b.weight", "b.bias"};
    assert_int_equal(dkh_module_n_params(m), 5);
    for (size_t i = 0; i < 5; i++) {
        const char *name = NULL;
        assert_non_null(dkh_module_param_at(m, i, &name));
        assert_str_eq(name, params[i]);
    }
    assert_null(dkh_module_param_at(m, 5, NULL));
    assert_str_eq(dkh_module_path(m), "model");
    dk_object_free(m);

    /* A non-module object has no tensors; NULL is harmless everywhere. */
    dk_object *metric = build_ok("x: {type: NotModule}\n", "x");
    assert_int_equal(dk_module_n_tensors(metric), 0);
    assert_null(dk_module_tensor_at(metric, 0, NULL, NULL));
    assert_null(dk_module_find(metric, "w"));
    dk_object_free(metric);
    assert_int_equal(dk_module_n_tensors(NULL), 0);
    assert_null(dk_module_find(NULL, "w"));
    dk_module_train(NULL, false);
}

/* Freeing a module gives back every byte of its tensors (children first). */
static void test_free_returns_memory(void **state)
{
    (void)state;
    dk_memory_stats before, after;
    dk_memory_stats_get(DK_CPU, &before);
    dk_object *m = build_ok(tree_text, "model");
    dk_memory_stats_get(DK_CPU, &after);
    assert_true(after.current > before.current);
    dk_object_free(m);
    dk_memory_stats_get(DK_CPU, &after);
    assert_int_equal(after.current, before.current);
}

/* ---- initialisers ---------------------------------------------------------------------- */

typedef struct init_case {
    const char *cfg; /* the Init type's parameters */
    double mean, std;
    double lo, hi; /* every value in [lo, hi] */
} init_case;

static void check_init(const init_case *c)
{
    char text[512];
    snprintf(text, sizeof text, "x: {type: Init, %s}\n", c->cfg);
    dk_object *m = build_ok(text, "x");
    stats s = stats_of(dk_module_find(m, "w"));
    double tol = c->std > 0 ? c->std : 1e-12;
    if (fabs(s.mean - c->mean) > 0.02 * tol || fabs(s.std - c->std) > 0.02 * tol || s.min < c->lo ||
        s.max > c->hi)
        fail_msg("%s: mean %g std %g in [%g, %g]; want mean %g std %g in [%g, %g]", c->cfg, s.mean,
                 s.std, s.min, s.max, c->mean, c->std, c->lo, c->hi);
    /* Bounded draws reach close to their bounds. */
    if (c->std > 0 && isfinite(c->lo) &&
        (s.min > c->lo + 0.01 * (c->hi - c->lo) || s.max < c->hi - 0.01 * (c->hi - c->lo)))
        fail_msg("%s: values span only [%g, %g] of [%g, %g]", c->cfg, s.min, s.max, c->lo, c->hi);
    dk_object_free(m);
}

static void test_initialisers(void **state)
{
    (void)state;
    const double sq12 = sqrt(12.0);
    /* (256, 64, 3, 3): fan_in 576, fan_out 2304; 147456 values. */
#define CONV "shape: [256, 64, 3, 3]"
    const double kb = 1.0 / sqrt(576.0);             /* kaiming_uniform, a = sqrt(5) */
    const double kn = sqrt(2.0) / sqrt(2304.0);      /* kaiming_normal, fan_out, ReLU */
    const double xb = sqrt(6.0 / (576.0 + 2304.0));  /* xavier_uniform */
    const double xn = 0.5 * sqrt(2.0 / 2880.0);      /* xavier_normal, gain 0.5 */
    const double lb = sqrt(2.0) * sqrt(3.0 / 576.0); /* kaiming_uniform, a = 0 */
    const init_case cases[] = {
        {"kind: 0, " CONV, 0, 0, 0, 0},
        {"kind: 1, a: 0.25, " CONV, 0.25, 0, 0.25, 0.25},
        {"kind: 2, a: -2, b: 3, " CONV, 0.5, 5 / sq12, -2, 3},
        {"kind: 3, a: 1, b: 2, " CONV, 1, 2, -INFINITY, INFINITY},
        {"kind: 4, a: 2.2360679774997896, " CONV, 0, 2 * kb / sq12, -kb, kb},
        {"kind: 4, " CONV, 0, 2 * lb / sq12, -lb, lb},
        {"kind: 5, fan_out: true, " CONV, 0, kn, -INFINITY, INFINITY},
        {"kind: 6, " CONV, 0, 2 * xb / sq12, -xb, xb},
        {"kind: 7, a: 0.5, " CONV, 0, xn, -INFINITY, INFINITY},
        {"kind: 8, " CONV, 0, 2 * kb / sq12, -kb, kb},
        {"kind: 8, b: 16, " CONV, 0, 2 * 0.25 / sq12, -0.25, 0.25},
        /* FAN_IN_UNIFORM with a given fan works on a 1-d bias. */
        {"kind: 8, b: 4, shape: [100000]", 0, 2 * 0.5 / sq12, -0.5, 0.5},
    };
#undef CONV
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_init(&cases[i]);
}

static void test_init_errors(void **state)
{
    (void)state;
    expect_build_error("x: {type: Init, kind: 4, shape: [8]}\n", DK_ERR_ARG,
                       "x: parameter 'w': KAIMING_UNIFORM needs a tensor of at least 2 dims");
    expect_build_error("x: {type: Init, kind: 8, shape: [8]}\n", DK_ERR_ARG,
                       "FAN_IN_UNIFORM needs a tensor of at least 2 dims");
    expect_build_error("x: {type: Init, kind: 2, a: 1, b: 0}\n", DK_ERR_ARG,
                       "x: parameter 'w': UNIFORM needs a <= b, got U(1, 0)");
    expect_build_error("x: {type: Init, kind: 3, a: 0, b: -1}\n", DK_ERR_ARG,
                       "NORMAL needs a standard deviation b >= 0");
    expect_build_error("x: {type: Init, kind: 42}\n", DK_ERR_ARG,
                       "x: parameter 'w': init kind 42 is not a dk_init_kind");
    expect_build_error("x: {type: Init, kind: 8, b: -4}\n", DK_ERR_ARG,
                       "FAN_IN_UNIFORM needs a positive fan b, got -4");
}

/* ---- seeding ----------------------------------------------------------------------------- */

static bool same_values(const dk_tensor *a, const dk_tensor *b)
{
    return dk_tensor_numel(a) == dk_tensor_numel(b) &&
           memcmp(dk_tensor_data(a), dk_tensor_data(b),
                  (size_t)dk_tensor_numel(a) * sizeof(float)) == 0;
}

static void test_seed(void **state)
{
    (void)state;
    dkh_module_seed(5);
    dk_object *m1 = build_ok(tree_text, "model");
    dkh_module_seed(5);
    dk_object *m2 = build_ok(tree_text, "model");
    dkh_module_seed(6);
    dk_object *m3 = build_ok(tree_text, "model");
    for (size_t i = 0; i < dk_module_n_tensors(m1); i++) {
        bool is_buffer;
        dk_tensor *t1 = dk_module_tensor_at(m1, i, NULL, &is_buffer);
        assert_true(same_values(t1, dk_module_tensor_at(m2, i, NULL, NULL)));
    }
    assert_false(same_values(dk_module_find(m1, "a.weight"), dk_module_find(m3, "a.weight")));
    assert_false(same_values(dk_module_find(m1, "b.weight"), dk_module_find(m3, "b.weight")));
    /* Without a reseed the next build draws new values. */
    dk_object *m4 = build_ok(tree_text, "model");
    assert_false(same_values(dk_module_find(m3, "a.weight"), dk_module_find(m4, "a.weight")));

    /* A parameter's values depend on its position, not on the sizes of the
     * parameters made before it. */
    dkh_module_seed(5);
    dk_object *m5 = build_ok("model:\n  type: Tree\n  a: {type: Leaf, in: 7, out: 4}\n"
                             "  b: {type: Leaf, in: 4, out: 2}\n",
                             "model");
    assert_false(same_values(dk_module_find(m1, "a.weight"), dk_module_find(m5, "a.weight")));
    assert_true(same_values(dk_module_find(m1, "b.weight"), dk_module_find(m5, "b.weight")));
    assert_true(same_values(dk_module_find(m1, "b.bias"), dk_module_find(m5, "b.bias")));
    dk_object_free(m1);
    dk_object_free(m2);
    dk_object_free(m3);
    dk_object_free(m4);
    dk_object_free(m5);
    dkh_module_seed(0);
}

/* ---- declaration errors ------------------------------------------------------------------ */

static void test_declare_errors(void **state)
{
    (void)state;
    expect_build_error("x: {type: Bad, case: dup}\n", DK_ERR_DUPLICATE,
                       "x: dk_module_param: 'w' is already declared");
    expect_build_error("x: {type: Bad, case: empty_segment}\n", DK_ERR_ARG,
                       "x: dk_module_param: name 'a..b' is not valid");
    expect_build_error("x: {type: Bad, case: bad_char}\n", DK_ERR_ARG,
                       "x: dk_module_buffer: name 'conv-1.weight' is not valid");
    expect_build_error("x: {type: Bad, case: prefix}\n", DK_ERR_DUPLICATE,
                       "'x.y' clashes with 'x'");
    expect_build_error("x: {type: Bad, case: child_prefix, sub: {type: Leaf}}\n", DK_ERR_DUPLICATE,
                       "x: dk_module_child: 'c' clashes with 'c.w'");
    expect_build_error("x: {type: Bad, case: not_module, sub: {type: NotModule}}\n", DK_ERR_ARG,
                       "x: child 'c': NotModule is a metric type, not a module");
    expect_build_error("x: {type: Bad, case: null_child}\n", DK_ERR_CONFIG,
                       "x: child 'c': no config");
    expect_build_error("x: {type: Bad, case: bad_shape}\n", DK_ERR_ARG,
                       "x: dk_module_param('w'): size -1 of dim 0 is negative");
    expect_build_error("x: {type: Bad, case: too_many_dims}\n", DK_ERR_ARG,
                       "x: dk_module_param('w'): 9 dims");
    /* Every message also says where the failing object is configured. */
    expect_build_error("x: {type: Bad, case: dup}\n", DK_ERR_DUPLICATE, "x (t.yaml:1:4): Bad: ");
}

static void test_child_errors(void **state)
{
    (void)state;
    dk_object *obj = NULL;
    /* An unknown child type is reported at the child's key. */
    assert_int_equal(
        build("model:\n  type: Tree\n  a: {type: Leaf}\n  b: {type: Nope}\n", "model", &obj),
        DK_ERR_CONFIG);
    assert_contains(dk_last_error(), "t.yaml:4:13: model.b: unknown neck type 'Nope'");
    /* A child whose create fails names its own path, inside the parent's. */
    assert_int_equal(build("model:\n  type: Tree\n  a: {type: Leaf}\n  b: {type: Leaf, out: -1}\n",
                           "model", &obj),
                     DK_ERR_ARG);
    assert_contains(dk_last_error(), "model (t.yaml:2:3): Tree: model.b (t.yaml:4:6): Leaf: "
                                     "model.b: dk_module_param('bias'): size -1 of dim 0 is "
                                     "negative");
    assert_null(obj);
}

static void test_outside_create(void **state)
{
    (void)state;
    const int64_t four = 4;
    dk_clear_error();
    assert_null(dk_module_param("w", 1, &four, NULL));
    assert_int_equal(dk_last_status(), DK_ERR_RUNTIME);
    assert_contains(dk_last_error(), "dk_module_param('w'): called outside a module's create");
    assert_null(dk_module_buffer("b", 1, &four, DK_DTYPE_F32, 0));
    assert_contains(dk_last_error(), "dk_module_buffer('b'): called outside a module's create");
    assert_null(dk_module_child(NULL, "c", NULL));
    assert_int_equal(dk_last_status(), DK_ERR_RUNTIME);

    /* Nor inside a forward: the module is built by then. */
    dk_object *m = build_ok(tree_text, "model");
    assert_null(dk_module_param("w", 1, &four, NULL));
    assert_int_equal(dk_last_status(), DK_ERR_RUNTIME);
    dk_object_free(m);
}

/* ---- forward ------------------------------------------------------------------------------ */

static dk_status run(dk_object *m, int64_t cols, dk_dict *out)
{
    dk_dict *in = dk_dict_new();
    dk_tensor *x = dk_ones(2, (int64_t[]){2, cols}, DK_DTYPE_F32, DK_CPU);
    assert_int_equal(dk_dict_set_tensor(in, "x", x), DK_OK);
    dk_status s = dk_module_forward(m, in, DK_MODE_TENSOR, out);
    dk_dict_free(in);
    return s;
}

static void test_forward_and_training(void **state)
{
    (void)state;
    dk_object *m = build_ok(tree_text, "model");
    dk_scope_begin();
    dk_dict *out = dk_dict_new();
    assert_false(dk_module_training());
    assert_true(dkh_module_is_training(m));
    assert_int_equal(run(m, 3, out), DK_OK);
    assert_true(leaf_saw_training);
    dk_tensor *y = dk_dict_tensor(out, "y");
    assert_non_null(y);
    assert_int_equal(dk_tensor_shape(y)[0], 2);
    assert_int_equal(dk_tensor_shape(y)[1], 2);

    dk_module_train(m, false);
    assert_false(dkh_module_is_training(m));
    assert_int_equal(run(m, 3, out), DK_OK);
    assert_false(leaf_saw_training); /* the children followed */
    dk_module_train(m, true);
    assert_int_equal(run(m, 3, out), DK_OK);
    assert_true(leaf_saw_training);
    assert_false(dk_module_training()); /* restored after the forward */

    /* Gradients reach every parameter of every child. */
    dk_tensor *loss = dk_sum(dk_dict_tensor(out, "y"), NULL, 0, false);
    assert_int_equal(dk_backward(loss, NULL, false), DK_OK);
    for (size_t i = 0; i < dkh_module_n_params(m); i++)
        assert_non_null(dk_tensor_grad(dkh_module_param_at(m, i, NULL)));
    dkh_module_zero_grad(m);
    dk_tensor *g = dk_tensor_grad(dk_module_find(m, "scale"));
    assert_true(((float *)dk_tensor_data(g))[0] == 0.0f);
    dk_dict_free(out);
    dk_scope_end();
    dk_object_free(m);
}

static void test_forward_errors(void **state)
{
    (void)state;
    dk_object *m = build_ok(tree_text, "model");
    dk_scope_begin();
    dk_dict *out = dk_dict_new();

    /* An op error inside a child names the child, once. */
    dk_clear_error();
    assert_int_not_equal(run(m, 5, out), DK_OK);
    assert_contains(dk_last_error(), "model.a: matmul: inner dims differ");
    assert_true(strncmp(dk_last_error(), "model.a: matmul: ", 17) == 0);

    /* An earlier failure does not pass for the cause of this one: the
     * missing input is reported, not the stale message. */
    dk_fail(DK_ERR_IO, "stale");
    dk_dict *empty = dk_dict_new();
    assert_int_equal(dk_module_forward(m, empty, DK_MODE_TENSOR, out), DK_ERR_ARG);
    assert_contains(dk_last_error(), "model.a: ");
    assert_contains(dk_last_error(), "input 0 is NULL");
    dk_dict_free(empty);

    /* A failure in the parent's own code names the parent. */
    dk_object *f = build_ok("model:\n  type: Tree\n  fail_after: true\n  a: {type: Leaf}\n"
                            "  b: {type: Leaf, in: 4}\n",
                            "model");
    assert_int_equal(run(f, 3, out), DK_ERR_RUNTIME);
    assert_str_eq(dk_last_error(), "model: Tree: asked to fail");
    /* ... and after an earlier failure was named, a new one is named too. */
    assert_int_not_equal(run(m, 5, out), DK_OK);
    assert_int_equal(run(f, 3, out), DK_ERR_RUNTIME);
    assert_str_eq(dk_last_error(), "model: Tree: asked to fail");
    dk_object_free(f);

    /* Misuse. */
    dk_dict *in = dk_dict_new();
    assert_int_equal(dk_module_forward(NULL, in, DK_MODE_TENSOR, out), DK_ERR_ARG);
    assert_int_equal(dk_module_forward(m, NULL, DK_MODE_TENSOR, out), DK_ERR_ARG);
    assert_contains(dk_last_error(), "model: dk_module_forward: the input dict is NULL");
    assert_int_equal(dk_module_forward(m, in, DK_MODE_COUNT, out), DK_ERR_ARG);
    dk_object *nofwd = build_ok("x: {type: NoFwd}\n", "x");
    assert_int_equal(dk_module_forward(nofwd, in, DK_MODE_TENSOR, out), DK_ERR_UNSUPPORTED);
    assert_contains(dk_last_error(), "x: NoFwd has no forward");
    dk_object *metric = build_ok("x: {type: NotModule}\n", "x");
    assert_int_equal(dk_module_forward(metric, in, DK_MODE_TENSOR, out), DK_ERR_ARG);
    assert_contains(dk_last_error(), "NotModule is a metric type, not a module");
    dk_object_free(nofwd);
    dk_object_free(metric);
    dk_dict_free(in);
    dk_dict_free(out);
    dk_scope_end();
    dk_object_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_order),
        cmocka_unit_test(test_free_returns_memory),
        cmocka_unit_test(test_initialisers),
        cmocka_unit_test(test_init_errors),
        cmocka_unit_test(test_seed),
        cmocka_unit_test(test_declare_errors),
        cmocka_unit_test(test_child_errors),
        cmocka_unit_test(test_outside_create),
        cmocka_unit_test(test_forward_and_training),
        cmocka_unit_test(test_forward_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
