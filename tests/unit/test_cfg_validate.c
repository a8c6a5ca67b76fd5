/* tests/unit/test_cfg_validate.c — validating configs against registered
 * types' schemas (every error kind, at its exact file:line:col), filling
 * defaults, and checking the schemas plugins declare. The types are
 * registered as host builtins in a real registry. */
#include "cfg_testing.h"

#include "plugin/registry.h"

static dk_status noop_create(const dk_cfg *cfg, void **self)
{
    (void)cfg;
    *self = NULL;
    return DK_OK;
}

static void noop_destroy(void *self)
{
    (void)self;
}

static const dk_module_vtable module_vt = {
    .struct_size = sizeof(dk_module_vtable), .create = noop_create, .destroy = noop_destroy};
static const dk_transform_vtable transform_vt = {
    .struct_size = sizeof(dk_transform_vtable), .create = noop_create, .destroy = noop_destroy};
static const dk_hook_vtable hook_vt = {
    .struct_size = sizeof(dk_hook_vtable), .create = noop_create, .destroy = noop_destroy};
static const dk_optimizer_vtable optim_vt = {
    .struct_size = sizeof(dk_optimizer_vtable), .create = noop_create, .destroy = noop_destroy};

static const dk_param norm_fields[] = {
    {.name = "type", .type = DK_PARAM_STRING, .def = "BN", .choices = "BN|GN|SyncBN"},
    {.name = "eps", .type = DK_PARAM_FLOAT, .def = "1e-5", .min = "0"},
    {.name = "affine", .type = DK_PARAM_BOOL, .def = "true"},
};

static const dk_param stem_fields[] = {
    {.name = "channels", .type = DK_PARAM_INT, .def = "64", .min = "1"},
};

/* A struct with a required field is not made up when absent. */
static const dk_param head_fields[] = {
    {.name = "classes", .type = DK_PARAM_INT, .flags = DK_PARAM_REQUIRED},
};

static const dk_param resnet_params[] = {
    {.name = "depth",
     .type = DK_PARAM_INT,
     .def = "50",
     .choices = "18|34|50|101",
     .doc = "number of layers"},
    {.name = "in_channels",
     .type = DK_PARAM_INT,
     .flags = DK_PARAM_REQUIRED,
     .min = "1",
     .doc = "input channels"},
    {.name = "frozen_stages", .type = DK_PARAM_INT, .def = "-1", .min = "-1", .max = "4"},
    {.name = "norm", .type = DK_PARAM_STRUCT, .def = "{}", DK_FIELDS(norm_fields)},
    {.name = "stem", .type = DK_PARAM_STRUCT, DK_FIELDS(stem_fields)},
    {.name = "head", .type = DK_PARAM_STRUCT, DK_FIELDS(head_fields)},
    {.name = "out_indices",
     .type = DK_PARAM_LIST,
     .elem = DK_PARAM_INT,
     .def = "[0, 1, 2, 3]",
     .min = "0",
     .max = "3"},
    {.name = "init_cfg", .type = DK_PARAM_MAP, .flags = DK_PARAM_NULLABLE},
    {.name = "style", .type = DK_PARAM_STRING, .def = "pytorch", .choices = "pytorch|caffe"},
};

static const dk_param fpn_params[] = {
    {.name = "in_channels",
     .type = DK_PARAM_LIST,
     .elem = DK_PARAM_INT,
     .flags = DK_PARAM_REQUIRED},
    {.name = "out_channels", .type = DK_PARAM_INT, .def = "256"},
};

static const dk_param detector_params[] = {
    {.name = "backbone",
     .type = DK_PARAM_OBJECT,
     .kind = "backbone",
     .flags = DK_PARAM_REQUIRED,
     .doc = "the feature extractor"},
    {.name = "neck", .type = DK_PARAM_OBJECT, .kind = "neck", .flags = DK_PARAM_NULLABLE},
    {.name = "num_classes", .type = DK_PARAM_INT, .flags = DK_PARAM_REQUIRED, .min = "1"},
};

static const dk_param resize_params[] = {
    {.name = "size",
     .type = DK_PARAM_LIST,
     .elem = DK_PARAM_INT,
     .flags = DK_PARAM_REQUIRED,
     .doc = "output size"},
    {.name = "keep_ratio", .type = DK_PARAM_BOOL, .def = "true"},
};

static const dk_param checkpoint_params[] = {
    {.name = "interval", .type = DK_PARAM_INT, .def = "1", .min = "1"},
};

static const dk_param sgd_params[] = {
    {.name = "lr",
     .type = DK_PARAM_FLOAT,
     .flags = DK_PARAM_REQUIRED,
     .min = "0",
     .doc = "learning rate"},
    {.name = "momentum", .type = DK_PARAM_FLOAT, .def = "0.9", .min = "0", .max = "1"},
};

static const dk_param top_schema[] = {
    {.name = "model", .type = DK_PARAM_OBJECT, .kind = "model", .flags = DK_PARAM_REQUIRED},
    {.name = "pipeline", .type = DK_PARAM_OBJECT_LIST, .kind = "transform", .def = "[]"},
    {.name = "hooks",
     .type = DK_PARAM_OBJECT_MAP,
     .kind = "hook",
     .def = "{checkpoint: {type: Checkpoint}}"},
    {.name = "optimizer",
     .type = DK_PARAM_OBJECT,
     .kind = "optimizer",
     .def = "{type: SGD, lr: 0.01}"},
    {.name = "max_epochs", .type = DK_PARAM_INT, .def = "12", .min = "1"},
    {.name = "work_dir", .type = DK_PARAM_STRING, .flags = DK_PARAM_NULLABLE},
    {.name = "seed", .type = DK_PARAM_INT, .flags = DK_PARAM_NULLABLE},
    {.name = "name", .type = DK_PARAM_STRING, .def = "exp"},
};
#define N_TOP (sizeof top_schema / sizeof *top_schema)

#define TYPE(k, n, iface_, vt, params_)                                                            \
    {                                                                                              \
        DK_TYPE_INFO_HEAD, .kind = k, .name = n, .summary = n " for tests", .iface = iface_,       \
                           .vtable = &vt, DK_PARAMS(params_)                                       \
    }

static const dk_param no_params[1] = {{.name = "unused", .type = DK_PARAM_ANY}};

static int setup(void **state)
{
    dkh_registry *r = dkh_registry_new();
    const dk_type_info types[] = {
        TYPE("backbone", "ResNet", DK_IFACE_MODULE, module_vt, resnet_params),
        TYPE("neck", "FPN", DK_IFACE_MODULE, module_vt, fpn_params),
        TYPE("model", "Detector", DK_IFACE_MODULE, module_vt, detector_params),
        TYPE("transform", "Resize", DK_IFACE_TRANSFORM, transform_vt, resize_params),
        TYPE("hook", "Checkpoint", DK_IFACE_HOOK, hook_vt, checkpoint_params),
        TYPE("optimizer", "SGD", DK_IFACE_OPTIMIZER, optim_vt, sgd_params),
    };
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        CHECK_OK(dkh_registry_add_builtin(r, &types[i]));
    /* A type without parameters. */
    dk_type_info load = TYPE("transform", "Load", DK_IFACE_TRANSFORM, transform_vt, no_params);
    load.n_params = 0;
    load.params = NULL;
    CHECK_OK(dkh_registry_add_builtin(r, &load));
    *state = r;
    return 0;
}

static int teardown(void **state)
{
    dkh_registry_free(*state);
    return 0;
}

static void test_valid_config_gets_defaults(void **state)
{
    dkh_registry *r = *state;
    dk_cfg *c = load_fixture("validate.yaml");
    CHECK_OK(dkh_cfg_validate(c, top_schema, N_TOP, r));

    int64_t i;
    CHECK_OK(dk_cfg_get_int(c, "model.backbone.depth", &i));
    assert_int_equal(i, 50);
    assert_string_equal(dk_cfg_where(dk_cfg_get(c, "model.backbone.depth")),
                        "<default of ResNet.depth>");
    CHECK_OK(dk_cfg_get_int(c, "model.backbone.frozen_stages", &i));
    assert_int_equal(i, -1);
    double f;
    CHECK_OK(dk_cfg_get_float(c, "model.backbone.norm.eps", &f));
    assert_true(f == 1e-5);
    assert_string_equal(dk_cfg_where(dk_cfg_get(c, "model.backbone.norm.eps")),
                        "<default of ResNet.norm.eps>");
    const char *s;
    CHECK_OK(dk_cfg_get_str(c, "model.backbone.norm.type", &s));
    assert_string_equal(s, "GN"); /* given, not defaulted */
    bool b;
    CHECK_OK(dk_cfg_get_bool(c, "model.backbone.norm.affine", &b));
    assert_true(b);
    CHECK_OK(dk_cfg_get_int(c, "model.backbone.stem.channels", &i));
    assert_int_equal(i, 64);
    assert_null(dk_cfg_get(c, "model.backbone.head"));
    assert_int_equal(dk_cfg_len(dk_cfg_get(c, "model.backbone.out_indices")), 4);
    assert_int_equal(dk_cfg_kind_of(dk_cfg_get(c, "model.backbone.init_cfg")), DK_CFG_NULL);
    assert_non_null(dk_cfg_get(c, "model.backbone.init_cfg"));
    assert_int_equal(dk_cfg_kind_of(dk_cfg_get(c, "model.neck")), DK_CFG_NULL);
    CHECK_OK(dk_cfg_get_bool(c, "pipeline.1.keep_ratio", &b));
    assert_true(b);
    CHECK_OK(dk_cfg_get_int(c, "hooks.checkpoint.interval", &i));
    assert_int_equal(i, 2);
    CHECK_OK(dk_cfg_get_float(c, "optimizer.momentum", &f));
    assert_true(f == 0.9);
    CHECK_OK(dk_cfg_get_float(c, "optimizer.lr", &f));
    assert_true(f == 0.02);
    CHECK_OK(dk_cfg_get_str(c, "name", &s));
    assert_string_equal(s, "exp");
    assert_string_equal(dk_cfg_where(dk_cfg_get(c, "name")), "<default of config.name>");
    assert_int_equal(dk_cfg_kind_of(dk_cfg_get(c, "seed")), DK_CFG_NULL);
    /* Validation is idempotent: a validated tree validates unchanged. */
    dk_cfg *copy = NULL;
    CHECK_OK(dkh_cfg_clone(c, &copy));
    CHECK_OK(dkh_cfg_validate(copy, top_schema, N_TOP, r));
    assert_true(dkh_cfg_equal(c, copy));
    dkh_cfg_free(copy);
    check_round_trip(c);
    dkh_cfg_free(c);

    /* Defaults that are objects get their own defaults, and an int is a float. */
    c = parse_text("model: {type: Detector, num_classes: 1, backbone: {type: ResNet, "
                   "in_channels: 1}}\noptimizer: {type: SGD, lr: 1}\n");
    CHECK_OK(dkh_cfg_validate(c, top_schema, N_TOP, r));
    CHECK_OK(dk_cfg_get_int(c, "hooks.checkpoint.interval", &i));
    assert_int_equal(i, 1);
    assert_string_equal(dk_cfg_where(dk_cfg_get(c, "hooks.checkpoint.interval")),
                        "<default of Checkpoint.interval>");
    assert_int_equal(dk_cfg_len(dk_cfg_get(c, "pipeline")), 0);
    dkh_cfg_free(c);
}

static void test_every_error_at_its_location(void **state)
{
    dkh_registry *r = *state;
    dk_cfg *c = load_fixture("validate_bad.yaml");
    assert_int_equal(dkh_cfg_validate(c, top_schema, N_TOP, r), DK_ERR_CONFIG);
    const char *lines[] = {
        "4:5: model.backbone: missing required key 'in_channels' (int: input channels)",
        "5:5: model.backbone: unknown key 'dept' (did you mean 'depth'?)",
        "6:12: model.backbone.depth: 21 is not one of 18|34|50|101",
        "7:20: model.backbone.frozen_stages: 7 is out of range [-1, 4]",
        "9:13: model.backbone.norm.type: 'LN' is not one of BN|GN|SyncBN (did you mean 'BN'?)",
        "10:12: model.backbone.norm.eps: expected a number, got string 'small'",
        "11:7: model.backbone.norm: unknown key 'afine' (did you mean 'affine'?)",
        "12:22: model.backbone.out_indices.1: 5 is out of range [0, 3]",
        "12:25: model.backbone.out_indices.2: expected an integer, got string 'x'",
        "13:12: model.backbone.style: expected a string, got int 3",
        "15:11: model.neck: unknown neck type 'FPNN' (did you mean 'FPN'?)",
        "16:16: model.num_classes: expected an integer, got float 0.5",
        "19:5: pipeline.1: missing required key 'size' (list of int: output size)",
        "20:17: pipeline.1.keep_ratio: expected true or false, got string 'yes'",
        "21:5: pipeline.2: expected a map with 'type:' naming a transform, got int 5",
        "22:5: pipeline.3: missing required key 'type' (which transform to build)",
        "24:44: hooks.checkpoint.interval: 0 is less than the minimum 1",
        "26:17: hooks.timer.type: expected a hook type name, got int 7",
        "27:12: optimizer: missing required key 'lr' (float: learning rate)",
        "28:13: max_epochs: -1 is less than the minimum 1",
        "30:7: seed: expected an integer, got a list",
        "31:1: unknown top-level key 'nmae' (did you mean 'name'?)",
    };
    dkh_buf want = DKH_BUF_INIT;
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++)
        dkh_buf_printf(&want, "%s%s%s", i ? "\n" : "", CFG_DATA "validate_bad.yaml:", lines[i]);
    assert_string_equal(dk_last_error(), dkh_buf_str(&want));
    dkh_buf_fini(&want);
    dkh_cfg_free(c);
}

static void expect_one(dkh_registry *r, const char *yaml, const char *msg)
{
    dk_cfg *c = parse_text(yaml);
    dk_status s = dkh_cfg_validate(c, top_schema, N_TOP, r);
    if (s != DK_ERR_CONFIG)
        fail_msg("expected DK_ERR_CONFIG for\n%s\ngot %s", yaml, dk_status_name(s));
    assert_string_equal(dk_last_error(), msg);
    dkh_cfg_free(c);
}

#define MODEL_OK                                                                                   \
    "model: {type: Detector, num_classes: 1, backbone: {type: ResNet, in_channels: 1}}\n"

static void test_more_error_kinds(void **state)
{
    dkh_registry *r = *state;
    /* Missing required top-level object; a top-level key with no close match. */
    expect_one(r, "max_epochs: 3\n", "t.yaml:1:1: missing required key 'model' (model)");
    expect_one(r, MODEL_OK "zzzzzzzzzz: 1\n",
               "t.yaml:2:1: unknown top-level key 'zzzzzzzzzz' (config takes: model, pipeline, "
               "hooks, optimizer, max_epochs, work_dir, seed, name)");
    /* An object given as a scalar; a missing type; an unknown type of a kind. */
    expect_one(r, MODEL_OK "optimizer: sgd\n",
               "t.yaml:2:12: optimizer: expected a map with 'type:' naming a optimizer, got "
               "string 'sgd'");
    expect_one(r, MODEL_OK "optimizer: {lr: 1}\n",
               "t.yaml:2:12: optimizer: missing required key 'type' (which optimizer to build)");
    expect_one(r, MODEL_OK "optimizer: {type: Adam}\n",
               "t.yaml:2:19: optimizer: unknown optimizer type 'Adam'");
    /* Unknown key inside a type with nothing close: the type's keys are listed. */
    expect_one(r,
               "model: {type: Detector, num_classes: 1, backbone: {type: ResNet, in_channels: "
               "1, qqqqqqqq: 2}}\n",
               "t.yaml:1:82: model.backbone: unknown key 'qqqqqqqq' (ResNet takes: depth, "
               "in_channels, frozen_stages, norm, stem, head, out_indices, init_cfg, style)");
    /* null where not nullable; an OBJECT_MAP entry of the wrong shape; a list of scalars. */
    expect_one(r, MODEL_OK "max_epochs: null\n",
               "t.yaml:2:13: max_epochs: expected an integer, got null");
    expect_one(r, MODEL_OK "hooks: {a: 1}\n",
               "t.yaml:2:12: hooks.a: expected a map with 'type:' naming a hook, got int 1");
    expect_one(r, MODEL_OK "hooks: [1]\n",
               "t.yaml:2:8: hooks: expected a map of name: {type: <hook>, ...} entries, got a "
               "list");
    expect_one(r, MODEL_OK "pipeline: {type: Load}\n",
               "t.yaml:2:11: pipeline: expected a list of maps with 'type:' naming a transform, "
               "got a map");
    expect_one(r,
               "model: {type: Detector, num_classes: 1, backbone: {type: ResNet, in_channels: "
               "1, norm: 3, out_indices: 1}}\n",
               "t.yaml:1:88: model.backbone.norm: expected a map, got int 3\n"
               "t.yaml:1:104: model.backbone.out_indices: expected a list of int, got int 1");
    expect_one(r, MODEL_OK "name: 5\n", "t.yaml:2:7: name: expected a string, got int 5");
    expect_one(r, MODEL_OK "optimizer: {type: SGD, lr: 0.1, momentum: 1.5}\n",
               "t.yaml:2:43: optimizer.momentum: 1.5 is out of range [0, 1]");
    expect_one(r, MODEL_OK "optimizer: {type: SGD, lr: -.inf}\n",
               "t.yaml:2:28: optimizer.lr: -.inf is less than the minimum 0");
    expect_one(r, MODEL_OK "optimizer: {type: SGD, lr: .nan}\n",
               "t.yaml:2:28: optimizer.lr: .nan is less than the minimum 0");
    /* A wrong kind: a backbone where a model is expected. */
    expect_one(r, "model: {type: ResNet}\n",
               "t.yaml:1:15: model: unknown model type 'ResNet' (there is a backbone type "
               "'ResNet', which is not a model)");
    /* Errors in files that came through an override say so. */
    dk_cfg *c = parse_text(MODEL_OK);
    CHECK_OK(dkh_cfg_override(c, "model.backbone.depth=19"));
    assert_int_equal(dkh_cfg_validate(c, top_schema, N_TOP, r), DK_ERR_CONFIG);
    assert_string_equal(dk_last_error(),
                        "<cfg-options>: model.backbone.depth: 19 is not one of 18|34|50|101");
    dkh_cfg_free(c);
    /* A config that is not a map. */
    c = parse_text("[1]");
    assert_int_equal(dkh_cfg_validate(c, top_schema, N_TOP, r), DK_ERR_CONFIG);
    CHECK_MSG("t.yaml:1:1: a config must be a map of keys, got a list");
    dkh_cfg_free(c);
}

static void test_validate_object(void **state)
{
    dkh_registry *r = *state;
    const dkh_type *t = dkh_registry_find(r, "backbone", "ResNet");
    assert_non_null(t);
    dk_cfg *c = parse_text("type: ResNet\nin_channels: 3\n");
    CHECK_OK(dkh_cfg_validate_object(c, &t->info, r));
    int64_t i;
    CHECK_OK(dk_cfg_get_int(c, "depth", &i));
    assert_int_equal(i, 50);
    dkh_cfg_free(c);
    c = parse_text("type: ResNet\ndepth: 20\n");
    assert_int_equal(dkh_cfg_validate_object(c, &t->info, r), DK_ERR_CONFIG);
    assert_string_equal(dk_last_error(),
                        "t.yaml:1:1: missing required key 'in_channels' (int: input channels)\n"
                        "t.yaml:2:8: depth: 20 is not one of 18|34|50|101");
    dkh_cfg_free(c);
    c = parse_text("5");
    assert_int_equal(dkh_cfg_validate_object(c, &t->info, r), DK_ERR_CONFIG);
    assert_string_equal(dk_last_error(),
                        "t.yaml:1:1: expected a map of ResNet parameters, got int 5");
    dkh_cfg_free(c);
}

/* ---- schema checks --------------------------------------------------------- */

static void expect_schema(const dk_param *p, size_t n, const char *msg)
{
    dk_status s = dkh_schema_check(p, n);
    if (s == DK_OK)
        fail_msg("schema accepted; expected: %s", msg);
    assert_int_equal(s, DK_ERR_ARG);
    assert_string_equal(dk_last_error(), msg);
}

static void test_schema_check(void **state)
{
    (void)state;
    CHECK_OK(dkh_schema_check(resnet_params, sizeof resnet_params / sizeof *resnet_params));
    CHECK_OK(dkh_schema_check(top_schema, N_TOP));
    CHECK_OK(dkh_schema_check(NULL, 0));

    const dk_param bad_choice[] = {
        {.name = "depth", .type = DK_PARAM_INT, .def = "21", .choices = "20|32|44"}};
    expect_schema(bad_choice, 1, "parameter 'depth': default '21' is not one of 20|32|44");
    const dk_param bad_range[] = {{.name = "lr", .type = DK_PARAM_FLOAT, .def = "2", .max = "1"}};
    expect_schema(bad_range, 1, "parameter 'lr': default '2' is greater than the maximum 1");
    const dk_param bad_type[] = {{.name = "lr", .type = DK_PARAM_FLOAT, .def = "fast"}};
    expect_schema(bad_type, 1,
                  "parameter 'lr': default 'fast': expected a number, got string 'fast'");
    const dk_param bad_yaml[] = {{.name = "size", .type = DK_PARAM_LIST, .def = "[1, 2"}};
    expect_schema(bad_yaml, 1,
                  "parameter 'size': default '[1, 2' is not valid YAML: "
                  "<default>:2:1: did not find expected ',' or ']' (while parsing a "
                  "flow sequence at line 1, column 1)");
    const dk_param bad_elem_default[] = {
        {.name = "idx", .type = DK_PARAM_LIST, .elem = DK_PARAM_INT, .def = "[0, 9]", .max = "3"}};
    expect_schema(bad_elem_default, 1,
                  "parameter 'idx': default '[0, 9]': element 1: 9 is greater than the maximum 3");
    const dk_param null_default[] = {{.name = "x", .type = DK_PARAM_INT, .def = "null"}};
    expect_schema(null_default, 1, "parameter 'x': default 'null': expected an integer, got null");
    const dk_param dup[] = {{.name = "a", .type = DK_PARAM_INT},
                            {.name = "a", .type = DK_PARAM_INT}};
    expect_schema(dup, 2, "parameter 'a' is declared twice");
    const dk_param bad_name[] = {{.name = "a-b", .type = DK_PARAM_INT}};
    expect_schema(bad_name, 1,
                  "parameter #0: name 'a-b' is not an identifier ([A-Za-z_][A-Za-z0-9_]*)");
    const dk_param no_name[] = {{.name = NULL, .type = DK_PARAM_INT}};
    expect_schema(no_name, 1,
                  "parameter #0: name '(null)' is not an identifier ([A-Za-z_][A-Za-z0-9_]*)");
    const dk_param bad_ptype[] = {{.name = "a", .type = (dk_param_type)99}};
    expect_schema(bad_ptype, 1, "parameter 'a': unknown parameter type 99");
    const dk_param zero_ptype[] = {{.name = "a"}};
    expect_schema(zero_ptype, 1, "parameter 'a': unknown parameter type 0");
    const dk_param req_def[] = {
        {.name = "a", .type = DK_PARAM_INT, .def = "1", .flags = DK_PARAM_REQUIRED}};
    expect_schema(req_def, 1, "parameter 'a': is required and also has a default ('1')");
    const dk_param bad_flags[] = {{.name = "a", .type = DK_PARAM_INT, .flags = 1u << 7}};
    expect_schema(bad_flags, 1, "parameter 'a': unknown flags");
    const dk_param min_max[] = {{.name = "a", .type = DK_PARAM_INT, .min = "5", .max = "1"}};
    expect_schema(min_max, 1, "parameter 'a': min 5 is greater than max 1");
    const dk_param bad_bound[] = {{.name = "a", .type = DK_PARAM_INT, .min = "1.5"}};
    expect_schema(bad_bound, 1, "parameter 'a': min '1.5' is not a valid bound");
    const dk_param str_bound[] = {{.name = "a", .type = DK_PARAM_STRING, .max = "3"}};
    expect_schema(str_bound, 1,
                  "parameter 'a': min/max apply only to int and float values, not string");
    const dk_param float_choices[] = {{.name = "a", .type = DK_PARAM_FLOAT, .choices = "1|2"}};
    expect_schema(float_choices, 1, "parameter 'a': choices apply only to string and int values");
    const dk_param int_choices[] = {{.name = "a", .type = DK_PARAM_INT, .choices = "1|two"}};
    expect_schema(
        int_choices, 1,
        "parameter 'a': choices '1|two' must be non-empty integer values separated by '|'");
    const dk_param empty_choice[] = {{.name = "a", .type = DK_PARAM_STRING, .choices = "x||y"}};
    expect_schema(empty_choice, 1,
                  "parameter 'a': choices 'x||y' must be non-empty string values separated by '|'");
    const dk_param no_kind[] = {{.name = "bb", .type = DK_PARAM_OBJECT}};
    expect_schema(no_kind, 1,
                  "parameter 'bb': an object parameter must name its kind ([a-z][a-z0-9_]*), got "
                  "'(none)'");
    const dk_param bad_kind[] = {{.name = "bb", .type = DK_PARAM_OBJECT_LIST, .kind = "Back Bone"}};
    expect_schema(bad_kind, 1,
                  "parameter 'bb': an object parameter must name its kind ([a-z][a-z0-9_]*), got "
                  "'Back Bone'");
    const dk_param stray_kind[] = {{.name = "a", .type = DK_PARAM_INT, .kind = "backbone"}};
    expect_schema(stray_kind, 1, "parameter 'a': 'kind' is only for object parameters");
    const dk_param stray_elem[] = {{.name = "a", .type = DK_PARAM_INT, .elem = DK_PARAM_INT}};
    expect_schema(stray_elem, 1, "parameter 'a': 'elem' is only for list parameters");
    const dk_param obj_elem[] = {{.name = "a", .type = DK_PARAM_LIST, .elem = DK_PARAM_OBJECT}};
    expect_schema(obj_elem, 1,
                  "parameter 'a': list elements must be a plain type (any, int, float, bool, "
                  "string, list or map)");
    const dk_param no_fields[] = {{.name = "s", .type = DK_PARAM_STRUCT}};
    expect_schema(no_fields, 1, "parameter 's': a struct parameter needs fields");
    const dk_param stray_fields[] = {{.name = "s", .type = DK_PARAM_MAP, DK_FIELDS(norm_fields)}};
    expect_schema(stray_fields, 1, "parameter 's': 'fields' is only for struct parameters");
    static const dk_param bad_inner[] = {
        {.name = "eps", .type = DK_PARAM_FLOAT, .def = "-1", .min = "0"}};
    const dk_param nested[] = {{.name = "norm", .type = DK_PARAM_STRUCT, DK_FIELDS(bad_inner)}};
    expect_schema(nested, 1, "parameter 'norm.eps': default '-1' is less than the minimum 0");
    const dk_param struct_def[] = {
        {.name = "norm", .type = DK_PARAM_STRUCT, .def = "[]", DK_FIELDS(norm_fields)}};
    expect_schema(struct_def, 1, "parameter 'norm': default '[]': expected a map, got a list");
}

static void test_registry_refuses_bad_schema(void **state)
{
    dkh_registry *r = *state;
    static const dk_param bad[] = {
        {.name = "depth", .type = DK_PARAM_INT, .def = "21", .choices = "20|32|44"}};
    dk_type_info t = TYPE("backbone", "BadNet", DK_IFACE_MODULE, module_vt, bad);
    assert_int_not_equal(dkh_registry_add_builtin(r, &t), DK_OK);
    CHECK_MSG("parameter 'depth': default '21' is not one of 20|32|44");
    assert_null(dkh_registry_find(r, "backbone", "BadNet"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_valid_config_gets_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_error_at_its_location, setup, teardown),
        cmocka_unit_test_setup_teardown(test_more_error_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validate_object, setup, teardown),
        cmocka_unit_test(test_schema_check),
        cmocka_unit_test_setup_teardown(test_registry_refuses_bad_schema, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
