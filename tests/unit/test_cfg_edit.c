/* tests/unit/test_cfg_edit.c — changing a loaded config: `--cfg-options`
 * overrides (typed values, nested keys, list indices, quoted segments, every
 * malformed form) and `${...}` interpolation (whole-node, in-string, chains,
 * escapes, missing references, cycles). */
#include "cfg_testing.h"

static void test_override_values(void **state)
{
    (void)state;
    dk_cfg *c = load_fixture("structure.yaml");
    CHECK_OK(dkh_cfg_override(c, "model.depth=101"));
    CHECK_OK(dkh_cfg_override(c, "model.neck.in_channels=[320,320]"));
    CHECK_OK(dkh_cfg_override(c, "pipeline.1.size=[640, 480]"));
    CHECK_OK(dkh_cfg_override(c, "pipeline.0={type: LoadImage, to_float: true}"));
    CHECK_OK(dkh_cfg_override(c, "name='50'"));
    CHECK_OK(dkh_cfg_override(c, "a.b.c=0.5"));
    CHECK_OK(dkh_cfg_override(c, "model.\"x.y\".z=1"));
    CHECK_OK(dkh_cfg_override(c, "title='a b=c'"));
    CHECK_OK(dkh_cfg_override(c, "empty="));
    CHECK_OK(dkh_cfg_override(c, "pipeline.2.1.0=-1"));
    CHECK_OK(dkh_cfg_override(c, "'key.with.dots'=2"));

    int64_t i;
    CHECK_OK(dk_cfg_get_int(c, "model.depth", &i));
    assert_int_equal(i, 101);
    const dk_cfg *depth = dk_cfg_get(c, "model.depth");
    assert_string_equal(dk_cfg_where(depth), "<cfg-options>");
    /* An override keeps the key's place. */
    assert_string_equal(dk_cfg_key_at(dk_cfg_get(c, "model"), 1), "depth");
    CHECK_OK(dk_cfg_get_int(c, "model.neck.in_channels.1", &i));
    assert_int_equal(i, 320);
    CHECK_OK(dk_cfg_get_int(c, "pipeline.1.size.0", &i));
    assert_int_equal(i, 640);
    assert_string_equal(dk_cfg_where(dk_cfg_get(c, "pipeline.1.size.0")), "<cfg-options>");
    const char *s;
    CHECK_OK(dk_cfg_get_str(c, "pipeline.0.type", &s));
    assert_string_equal(s, "LoadImage");
    CHECK_OK(dk_cfg_get_str(c, "name", &s));
    assert_string_equal(s, "50");
    double f;
    CHECK_OK(dk_cfg_get_float(c, "a.b.c", &f));
    assert_true(f == 0.5);
    assert_string_equal(dk_cfg_where(dk_cfg_get(c, "a.b")), "<cfg-options>");
    CHECK_OK(dk_cfg_get_int(c, "model.\"x.y\".z", &i));
    assert_int_equal(i, 1);
    assert_string_equal(dk_cfg_path(dk_cfg_get(c, "model.\"x.y\".z")), "model.\"x.y\".z");
    CHECK_OK(dk_cfg_get_str(c, "title", &s));
    assert_string_equal(s, "a b=c");
    assert_int_equal(dk_cfg_kind_of(dk_cfg_get(c, "empty")), DK_CFG_NULL);
    assert_non_null(dk_cfg_get(c, "empty"));
    CHECK_OK(dk_cfg_get_int(c, "pipeline.2.1.0", &i));
    assert_int_equal(i, -1);
    CHECK_OK(dk_cfg_get_int(c, "\"key.with.dots\"", &i));
    assert_int_equal(i, 2);
    check_round_trip(c);
    dkh_cfg_free(c);

    /* A null placeholder (as a base's `neck: null`) takes keys. */
    c = parse_text("neck: null\n");
    CHECK_OK(dkh_cfg_override(c, "neck.type=FPN"));
    CHECK_OK(dk_cfg_get_str(c, "neck.type", &s));
    assert_string_equal(s, "FPN");
    dkh_cfg_free(c);
}

static void expect_bad(const char *assignment, dk_status st, const char *msg)
{
    dk_cfg *c = load_fixture("structure.yaml");
    dk_cfg *before = NULL;
    CHECK_OK(dkh_cfg_clone(c, &before));
    dk_status s = dkh_cfg_override(c, assignment);
    if (s != st)
        fail_msg("'%s': expected %s, got %s (%s)", assignment, dk_status_name(st),
                 dk_status_name(s), dk_last_error());
    assert_string_equal(dk_last_error(), msg);
    dkh_cfg_free(before);
    dkh_cfg_free(c);
}

static void test_override_errors(void **state)
{
    (void)state;
    expect_bad("model.depth", DK_ERR_ARG,
               "--cfg-options 'model.depth': expected KEY=VALUE, e.g. model.depth=50");
    expect_bad("=5", DK_ERR_ARG, "--cfg-options '=5': the key before '=' is empty");
    expect_bad("model..depth=5", DK_ERR_ARG,
               "--cfg-options 'model..depth=5': empty key segment in 'model..depth'");
    expect_bad("model.=5", DK_ERR_ARG, "--cfg-options 'model.=5': empty key segment in 'model.'");
    expect_bad("\"model.depth=5", DK_ERR_ARG,
               "--cfg-options '\"model.depth=5': expected KEY=VALUE, e.g. model.depth=50");
    expect_bad("\"mo\"del=5", DK_ERR_ARG,
               "--cfg-options '\"mo\"del=5': a quoted key segment must be followed by '.' in "
               "'\"mo\"del'");
    expect_bad("pipeline.3.size=1", DK_ERR_CONFIG,
               "--cfg-options 'pipeline.3.size=1': index 3 is out of range: 'pipeline' has 3 "
               "elements");
    expect_bad("pipeline.first=1", DK_ERR_CONFIG,
               "--cfg-options 'pipeline.first=1': 'pipeline' is a list; 'first' is not an index");
    expect_bad("pipeline.-1=1", DK_ERR_CONFIG,
               "--cfg-options 'pipeline.-1=1': 'pipeline' is a list; '-1' is not an index");
    expect_bad("model.depth.x=1", DK_ERR_CONFIG,
               "--cfg-options 'model.depth.x=1': cannot set key 'x' inside 'model.depth', which "
               "is int 50 (" CFG_DATA "structure.yaml:3:10)");
    expect_bad("model.depth=[1, 2", DK_ERR_ARG,
               "--cfg-options 'model.depth=[1, 2': the value is not valid YAML: "
               "<cfg-options>:2:1: did not find expected ',' or ']' (while parsing a flow "
               "sequence at line 1, column 1)");
    expect_bad("model.depth=a: b: c", DK_ERR_ARG,
               "--cfg-options 'model.depth=a: b: c': the value is not valid YAML: "
               "<cfg-options>:1:5: mapping values are not allowed in this context");
    expect_bad("x=1\n---\n2", DK_ERR_ARG,
               "--cfg-options 'x=1\n---\n2': the value is not valid YAML: <cfg-options>:2:1: a "
               "second YAML document; a config file holds exactly one");
}

static void test_interpolation(void **state)
{
    (void)state;
    dk_cfg *c = load_fixture("interp.yaml");
    CHECK_OK(dkh_cfg_resolve(c));
    double f;
    CHECK_OK(dk_cfg_get_float(c, "lr", &f));
    assert_true(f == 0.01);
    assert_int_equal(dk_cfg_kind_of(dk_cfg_get(c, "lr")), DK_CFG_FLOAT);
    /* The copy stands where the reference was written. */
    assert_non_null(strstr(dk_cfg_where(dk_cfg_get(c, "lr")), "interp.yaml:2:5"));
    const char *s;
    CHECK_OK(dk_cfg_get_str(c, "work_dir", &s));
    assert_string_equal(s, "work_dirs/run/d50");
    int64_t i;
    CHECK_OK(dk_cfg_get_int(c, "model.channels.1", &i));
    assert_int_equal(i, 128);
    assert_string_equal(dk_cfg_path(dk_cfg_get(c, "model.channels.1")), "model.channels.1");
    CHECK_OK(dk_cfg_get_int(c, "model.first", &i));
    assert_int_equal(i, 64);
    CHECK_OK(dk_cfg_get_float(c, "chain1", &f));
    assert_true(f == 0.01);
    CHECK_OK(dk_cfg_get_int(c, "ref_of_map.channels.0", &i));
    assert_int_equal(i, 64);
    CHECK_OK(dk_cfg_get_str(c, "escaped", &s));
    assert_string_equal(s, "literal ${name} here");
    CHECK_OK(dk_cfg_get_str(c, "quoted", &s));
    assert_string_equal(s, "run");
    /* Resolving again changes nothing: the escaped text stays literal. */
    dk_cfg *copy = NULL;
    CHECK_OK(dkh_cfg_clone(c, &copy));
    CHECK_OK(dkh_cfg_resolve(c));
    assert_true(dkh_cfg_equal(c, copy));
    /* A reference added by an override after resolving is resolved next time. */
    CHECK_OK(dkh_cfg_override(c, "new=${name}-x"));
    CHECK_OK(dkh_cfg_resolve(c));
    CHECK_OK(dk_cfg_get_str(c, "new", &s));
    assert_string_equal(s, "run-x");
    check_round_trip(c);
    dkh_cfg_free(copy);
    dkh_cfg_free(c);

    /* Overrides apply before interpolation, so a reference sees them. */
    c = load_fixture("interp.yaml");
    CHECK_OK(dkh_cfg_override(c, "base_lr=0.5"));
    CHECK_OK(dkh_cfg_resolve(c));
    CHECK_OK(dk_cfg_get_float(c, "chain1", &f));
    assert_true(f == 0.5);
    dkh_cfg_free(c);
}

static void expect_resolve_error(const char *yaml, const char *msg)
{
    dk_cfg *c = parse_text(yaml);
    assert_int_equal(dkh_cfg_resolve(c), DK_ERR_CONFIG);
    assert_string_equal(dk_last_error(), msg);
    dkh_cfg_free(c);
}

static void test_interpolation_errors(void **state)
{
    (void)state;
    expect_resolve_error("a: 1\nb: ${nope.x}\n",
                         "t.yaml:2:4: b: reference '${nope.x}' names no key in the config");
    expect_resolve_error("a: [1]\nb: x${a.3}y\n",
                         "t.yaml:2:4: b: reference '${a.3}' names no key in the config");
    expect_resolve_error("a: ${b}\nb: ${a}\n", "t.yaml:1:4: a: interpolation cycle: a -> b -> a");
    expect_resolve_error("a: ${a}\n", "t.yaml:1:4: a: interpolation cycle: a -> a");
    expect_resolve_error("x: 1\na: pre-${b}\nb: {c: '${d}'}\nd: ${a}\n",
                         "t.yaml:2:4: a: interpolation cycle: a -> b -> b.c -> d -> a");
    expect_resolve_error("m:\n  x: ${m}\n", "t.yaml:2:3: m: interpolation cycle: m -> m.x -> m");
    expect_resolve_error("a: {b: 1}\ns: x${a}\n",
                         "t.yaml:2:4: s: '${a}' is a map and cannot be inserted into a string");
    expect_resolve_error("a: [1]\ns: x${a}\n",
                         "t.yaml:2:4: s: '${a}' is a list and cannot be inserted into a string");
    expect_resolve_error("s: x${a\n", "t.yaml:1:4: s: unterminated '${' in 'x${a'");
    expect_resolve_error("s: x${a..b}\n",
                         "t.yaml:1:4: s: bad reference '${a..b}': empty key segment in 'a..b'");
    dk_status s = dkh_cfg_resolve(NULL);
    assert_int_equal(s, DK_ERR_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_override_values),
        cmocka_unit_test(test_override_errors),
        cmocka_unit_test(test_interpolation),
        cmocka_unit_test(test_interpolation_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
