/* tests/plugin/test_objects.c — dk_register's checks (through the host's
 * own builtin registration, which shares them) and dk_object_build from
 * real config text: defaults filled, every error located, live objects
 * holding their plugin loaded. */
#include "plugin_test.h"

#include "cfg/cfg.h"

static int setup(void **state)
{
    dkh_registry *r = dkh_registry_new();
    dkh_registry_set_current(r);
    *state = r;
    dk_clear_error();
    return 0;
}

static int teardown(void **state)
{
    dkh_registry_free(*state);
    return 0;
}

/* ---- registration checks ------------------------------------------------ */

static dk_status ok_create(const dk_cfg *cfg, void **self)
{
    (void)cfg;
    *self = NULL;
    return DK_OK;
}

static void ok_destroy(void *self)
{
    (void)self;
}

static const dk_module_vtable module_vt = {
    .struct_size = sizeof(dk_module_vtable), .create = ok_create, .destroy = ok_destroy};
static const dk_module_vtable no_destroy_vt = {.struct_size = sizeof(dk_module_vtable),
                                               .create = ok_create};
static const dk_module_vtable tiny_vt = {
    .struct_size = 2, .create = ok_create, .destroy = ok_destroy};

static dk_type_info base_info(const char *kind, const char *name)
{
    dk_type_info t = {DK_TYPE_INFO_HEAD,        .kind = kind,        .name = name, .summary = "s",
                      .iface = DK_IFACE_MODULE, .vtable = &module_vt};
    return t;
}

static void expect_refused(dkh_registry *r, const dk_type_info *t, dk_status want, const char *text)
{
    size_t n = dkh_registry_n_types(r);
    assert_int_equal(dkh_registry_add_builtin(r, t), want);
    assert_contains(dk_last_error(), text);
    assert_int_equal(dkh_registry_n_types(r), n);
}

static void test_register_checks(void **state)
{
    dkh_registry *r = *state;
    dk_type_info t = base_info("Backbone", "X");
    expect_refused(r, &t, DK_ERR_ARG, "kind 'Backbone' of type 'X' is not valid");
    t = base_info("backbone", "1Net");
    expect_refused(r, &t, DK_ERR_ARG, "backbone type name '1Net' is not valid");
    t = base_info("backbone", "Net-1");
    expect_refused(r, &t, DK_ERR_ARG, "type name 'Net-1' is not valid");
    t = base_info("backbone", "X");
    t.summary = "";
    expect_refused(r, &t, DK_ERR_ARG, "backbone type 'X': no summary");
    t = base_info("backbone", "X");
    t.vtable = NULL;
    expect_refused(r, &t, DK_ERR_ARG, "backbone type 'X': vtable is NULL");
    t.vtable = &no_destroy_vt;
    expect_refused(r, &t, DK_ERR_ARG, "backbone type 'X': vtable has no destroy");
    t.vtable = &tiny_vt;
    expect_refused(r, &t, DK_ERR_ARG, "vtable struct_size 2 is smaller than its head");
    t = base_info("backbone", "X");
    t.iface = DK_IFACE_HOOK;
    expect_refused(r, &t, DK_ERR_ARG,
                   "backbone type 'X': declares the hook interface, but kind 'backbone' uses "
                   "module");
    t = base_info("backbone", "X");
    t.iface = (dk_iface)99;
    expect_refused(r, &t, DK_ERR_ARG, "interface 99 is not a known dk_iface");
    t = base_info("backbone", "X");
    t.struct_size = 8;
    expect_refused(r, &t, DK_ERR_ARG, "type info struct_size 8 is smaller than");
    t = base_info("backbone", "X");
    t.n_params = 2;
    t.param_size = sizeof(dk_param);
    expect_refused(r, &t, DK_ERR_ARG,
                   "backbone type 'X': 2 parameters declared but the array is NULL");
    expect_refused(r, NULL, DK_ERR_ARG, "type info is NULL");

    /* A new kind takes the interface of its first type. */
    t = base_info("fuser", "A.b_1");
    assert_int_equal(dkh_registry_add_builtin(r, &t), DK_OK);
    assert_int_equal(dkh_registry_kind_iface(r, "fuser"), DK_IFACE_MODULE);
    t = base_info("fuser", "B");
    t.iface = DK_IFACE_DATASET;
    expect_refused(r, &t, DK_ERR_ARG, "but kind 'fuser' uses module");
    t = base_info("fuser", "A.b_1");
    expect_refused(r, &t, DK_ERR_DUPLICATE, "fuser type 'A.b_1' is already registered by the host");
    assert_null(dkh_registry_find(r, "fuser", "A.b_1")->plugin);
}

static void test_register_schema_checked(void **state)
{
    static const dk_param fields[] = {{.name = "k", .type = DK_PARAM_INT, .def = "x"}};
    static const dk_param params[] = {
        {.name = "ok", .type = DK_PARAM_INT, .def = "1"},
        {.name = "inner", .type = DK_PARAM_STRUCT, DK_FIELDS(fields)},
    };
    dk_type_info t = base_info("neck", "SchemaNeck");
    t.params = params;
    t.n_params = 2;
    t.param_size = sizeof(dk_param);
    dkh_registry *r = *state;
    assert_int_not_equal(dkh_registry_add_builtin(r, &t), DK_OK);
    /* The message names the type and the nested parameter. */
    assert_contains(dk_last_error(), "neck type 'SchemaNeck': ");
    assert_contains(dk_last_error(), "k");
    assert_int_equal(dkh_registry_n_types(r), 0);
}

/* ---- objects ---------------------------------------------------------------- */

/* The fixture's instance layout (tests/plugin/fixtures/good.c). */
typedef struct tinynet {
    int64_t width;
    int64_t stem_channels;
    const char *act;
} tinynet;

static dk_cfg *parse(const char *text)
{
    dk_cfg *root = NULL;
    assert_int_equal(dkh_cfg_parse(text, "t.yaml", &root), DK_OK);
    return root;
}

static void load_good(dkh_registry *r)
{
    assert_int_equal(dkh_registry_load_file(r, FIXTURE("good", "good")), DK_OK);
}

static void test_build_fills_defaults(void **state)
{
    dkh_registry *r = *state;
    load_good(r);
    dk_cfg *root = parse("model:\n  backbone:\n    type: TinyNet\n    width: 32\n");
    dk_object *obj = NULL;
    assert_int_equal(dk_object_build(dk_cfg_get(root, "model.backbone"), "backbone", &obj), DK_OK);
    /* The object owns its own node: the caller's tree may go at once. */
    dkh_cfg_free(root);
    tinynet *t = dk_object_self(obj);
    assert_int_equal(t->width, 32);
    assert_int_equal(t->stem_channels, 8);
    assert_str_eq(t->act, "relu");
    assert_str_eq(dk_object_type(obj)->name, "TinyNet");

    const dkh_plugin *p = dkh_registry_plugin_at(r, 0);
    assert_int_equal(dkh_registry_live_objects(r, p), 1);
    assert_int_equal(dkh_registry_unload(r, "good"), DK_ERR_PLUGIN);
    assert_contains(dk_last_error(), "cannot unload plugin 'good'");
    assert_contains(dk_last_error(), "1 object of its types is still alive");
    dk_object_free(obj);
    dk_object_free(NULL);
    assert_int_equal(dkh_registry_live_objects(r, p), 0);
    assert_int_equal(dkh_registry_unload(r, "good"), DK_OK);
}

static void test_build_any_kind_and_old_plugin(void **state)
{
    dkh_registry *r = *state;
    assert_int_equal(dkh_registry_load_file(r, FIXTURE("old", "old")), DK_OK);
    dk_cfg *root = parse("backbone:\n  type: OldNet\n");
    dk_object *obj = NULL;
    assert_int_equal(dk_object_build(dk_cfg_get(root, "backbone"), NULL, &obj), DK_OK);
    assert_int_equal(*(int64_t *)dk_object_self(obj), 18);
    dk_object_free(obj);
    dkh_cfg_free(root);
}

/* Builds `text`'s "x" node as a kind and expects failure with status and text. */
static void expect_build_error(const char *text, const char *kind, dk_status want, const char *msg)
{
    dk_cfg *root = parse(text);
    dk_object *obj = (dk_object *)1;
    assert_int_equal(dk_object_build(dk_cfg_get(root, "x"), kind, &obj), want);
    assert_null(obj);
    assert_contains(dk_last_error(), msg);
    dkh_cfg_free(root);
}

static void test_build_errors(void **state)
{
    dkh_registry *r = *state;
    load_good(r);
    assert_int_equal(dkh_registry_load_file(r, FIXTURE("initfail", "initfail")), DK_ERR_RUNTIME);
    expect_build_error("x: 3\n", "backbone", DK_ERR_CONFIG,
                       "x (t.yaml:1:4): expected a map with a 'type' key naming the backbone, "
                       "got int");
    expect_build_error("x:\n  width: 3\n", "backbone", DK_ERR_CONFIG,
                       "x (t.yaml:2:3): no 'type' key (which backbone to build?)");
    expect_build_error("x:\n  type: [a]\n", "backbone", DK_ERR_CONFIG,
                       "'type' must be a string naming the backbone, got list");
    expect_build_error("x:\n  type: TinyNt\n", "backbone", DK_ERR_NOT_FOUND,
                       "x.type (t.yaml:2:9): unknown backbone type 'TinyNt' "
                       "(did you mean 'TinyNet'?); note: 1 plugin file was refused");
    expect_build_error("x:\n  type: FailNetA\n", "backbone", DK_ERR_NOT_FOUND,
                       "was refused: init failed: could not open its weights file");
    expect_build_error("x:\n  type: TinyNet\n  width: 13\n", "backbone", DK_ERR_CONFIG,
                       "x (t.yaml:2:3): TinyNet: width 13 is not supported");
    expect_build_error("x:\n  type: TinyNet\n  width: 0\n", "backbone", DK_ERR_CONFIG, "width");
    expect_build_error("x:\n  type: TinyNeck\n", "neck", DK_ERR_CONFIG, "in_channels");
    assert_int_equal(dkh_registry_live_objects(r, dkh_registry_plugin_at(r, 0)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_register_checks),      T(test_register_schema_checked),
        T(test_build_fills_defaults), T(test_build_any_kind_and_old_plugin),
        T(test_build_errors),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
