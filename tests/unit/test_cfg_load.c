/* tests/unit/test_cfg_load.c — YAML to config tree: typed scalars,
 * locations, aliases, the read accessors, YAML errors, `_base_` inheritance
 * and its errors, and dump -> parse round trips of every fixture. */
#include "cfg_testing.h"

#include <math.h>

static void test_typed_scalars(void **state)
{
    (void)state;
    dk_cfg *c = load_fixture("scalars.yaml");
    const char *nulls[] = {"nulls.a", "nulls.b", "nulls.c", "nulls.d"};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(dk_cfg_kind_of(dk_cfg_get(c, nulls[i])), DK_CFG_NULL);

    bool b;
    CHECK_OK(dk_cfg_get_bool(c, "bools.0", &b));
    assert_true(b);
    CHECK_OK(dk_cfg_get_bool(c, "bools.1", &b));
    assert_false(b);
    CHECK_OK(dk_cfg_get_bool(c, "bools.2", &b));
    assert_true(b);
    CHECK_OK(dk_cfg_get_bool(c, "bools.3", &b));
    assert_false(b);

    int64_t i;
    CHECK_OK(dk_cfg_get_int(c, "ints.dec", &i));
    assert_int_equal(i, 42);
    CHECK_OK(dk_cfg_get_int(c, "ints.neg", &i));
    assert_int_equal(i, -7);
    CHECK_OK(dk_cfg_get_int(c, "ints.pos", &i));
    assert_int_equal(i, 3);
    CHECK_OK(dk_cfg_get_int(c, "ints.hex", &i));
    assert_int_equal(i, 31);
    CHECK_OK(dk_cfg_get_int(c, "ints.zero", &i));
    assert_int_equal(i, 0);
    /* The source text is kept. */
    assert_string_equal(dk_cfg_scalar(dk_cfg_get(c, "ints.hex")), "0x1F");

    double f;
    CHECK_OK(dk_cfg_get_float(c, "floats.plain", &f));
    assert_true(f == 1.5);
    CHECK_OK(dk_cfg_get_float(c, "floats.exp", &f));
    assert_true(f == 1e-3);
    assert_int_equal(dk_cfg_kind_of(dk_cfg_get(c, "floats.exp")), DK_CFG_FLOAT);
    CHECK_OK(dk_cfg_get_float(c, "floats.dot", &f));
    assert_true(f == 2.0);
    CHECK_OK(dk_cfg_get_float(c, "floats.lead", &f));
    assert_true(f == 0.5);
    CHECK_OK(dk_cfg_get_float(c, "floats.inf", &f));
    assert_true(isinf(f) && f > 0);
    CHECK_OK(dk_cfg_get_float(c, "floats.ninf", &f));
    assert_true(isinf(f) && f < 0);
    CHECK_OK(dk_cfg_get_float(c, "floats.nan", &f));
    assert_true(isnan(f));
    /* An int reads as a float. */
    CHECK_OK(dk_cfg_get_float(c, "ints.dec", &f));
    assert_true(f == 42.0);

    const char *s;
    CHECK_OK(dk_cfg_get_str(c, "strings.word", &s));
    assert_string_equal(s, "hello world");
    const char *strs[] = {"qtrue", "qint", "qnull", "yes", "version", "colon", "empty", "tagged"};
    const char *vals[] = {"true", "42", "null", "yes", "1.2.3", "a: b", "", "5"};
    for (size_t k = 0; k < 8; k++) {
        char path[64];
        snprintf(path, sizeof path, "strings.%s", strs[k]);
        CHECK_OK(dk_cfg_get_str(c, path, &s));
        assert_string_equal(s, vals[k]);
    }
    check_round_trip(c);
    dkh_cfg_free(c);
}

static void test_classify_edges(void **state)
{
    (void)state;
    dk_cfg *c = parse_text("a: 9223372036854775807\nb: -9223372036854775808\n"
                           "c: 99999999999999999999\nd: 0xZZ\ne: 1e\nf: +\ng: .\nh: 0o17\n"
                           "i: 1_000\n");
    int64_t i;
    CHECK_OK(dk_cfg_get_int(c, "a", &i));
    assert_true(i == INT64_MAX);
    CHECK_OK(dk_cfg_get_int(c, "b", &i));
    assert_true(i == INT64_MIN);
    assert_int_equal(dk_cfg_kind_of(dk_cfg_get(c, "c")), DK_CFG_FLOAT);
    assert_int_equal(dk_cfg_kind_of(dk_cfg_get(c, "d")), DK_CFG_STRING);
    assert_int_equal(dk_cfg_kind_of(dk_cfg_get(c, "e")), DK_CFG_STRING);
    assert_int_equal(dk_cfg_kind_of(dk_cfg_get(c, "f")), DK_CFG_STRING);
    assert_int_equal(dk_cfg_kind_of(dk_cfg_get(c, "g")), DK_CFG_STRING);
    CHECK_OK(dk_cfg_get_int(c, "h", &i));
    assert_int_equal(i, 15);
    assert_int_equal(dk_cfg_kind_of(dk_cfg_get(c, "i")), DK_CFG_STRING);
    check_round_trip(c);
    dkh_cfg_free(c);
}

static void test_locations_and_paths(void **state)
{
    (void)state;
    dk_cfg *c = load_fixture("structure.yaml");
    const dk_cfg *depth = dk_cfg_get(c, "model.depth");
    assert_non_null(depth);
    assert_non_null(strstr(dk_cfg_where(depth), "cfg_data/structure.yaml:3:10"));
    assert_string_equal(dk_cfg_path(depth), "model.depth");
    const dk_cfg *size1 = dk_cfg_get(c, "pipeline.1.size.1");
    assert_non_null(size1);
    assert_non_null(strstr(dk_cfg_where(size1), "structure.yaml:11:17"));
    assert_string_equal(dk_cfg_path(size1), "pipeline.1.size.1");
    const dk_cfg *neck = dk_cfg_get(c, "model.neck");
    assert_non_null(strstr(dk_cfg_where(neck), "structure.yaml:6:5"));
    assert_string_equal(dk_cfg_path(dk_cfg_get(c, "pipeline.2.1.0")), "pipeline.2.1.0");
    /* A key holding dots is reached and printed quoted. */
    const dk_cfg *dotted = dk_cfg_get(c, "\"key.with.dots\"");
    assert_non_null(dotted);
    assert_string_equal(dk_cfg_path(dotted), "\"key.with.dots\"");
    assert_string_equal(dk_cfg_path(c), "");

    /* Containers and their accessors. */
    assert_int_equal(dk_cfg_kind_of(c), DK_CFG_MAP);
    assert_string_equal(dk_cfg_key_at(c, 0), "model");
    assert_int_equal(dk_cfg_len(dk_cfg_get(c, "pipeline")), 3);
    assert_int_equal(dk_cfg_len(dk_cfg_get(c, "empty_map")), 0);
    assert_int_equal(dk_cfg_kind_of(dk_cfg_get(c, "empty_list")), DK_CFG_LIST);
    assert_null(dk_cfg_key_at(dk_cfg_get(c, "pipeline"), 0));
    assert_null(dk_cfg_at(dk_cfg_get(c, "pipeline"), 3));
    assert_null(dk_cfg_scalar(dk_cfg_get(c, "model")));
    assert_ptr_equal(dk_cfg_get(c, ""), c);
    assert_ptr_equal(dk_cfg_get(c, NULL), c);
    assert_null(dk_cfg_get(c, "model.nope"));
    assert_null(dk_cfg_get(c, "pipeline.9"));
    assert_null(dk_cfg_get(c, "pipeline.x"));
    assert_null(dk_cfg_get(c, "model.depth.x"));
    assert_null(dk_cfg_get(c, "model..depth"));
    assert_int_equal(dk_cfg_kind_of(NULL), DK_CFG_NULL);
    assert_int_equal(dk_cfg_len(NULL), 0);

    /* Anchors, aliases and merge keys. */
    double f;
    CHECK_OK(dk_cfg_get_float(c, "copy.momentum", &f));
    assert_true(f == 0.9);
    CHECK_OK(dk_cfg_get_float(c, "merged.lr", &f));
    assert_true(f == 0.1);
    CHECK_OK(dk_cfg_get_float(c, "merged.momentum", &f));
    assert_true(f == 0.9);
    assert_null(dk_cfg_get(c, "merged.<<"));
    assert_true(dkh_cfg_equal(dk_cfg_get(c, "copy"), dk_cfg_get(c, "defaults")));

    /* Clone is deep and equal; a changed clone is not. */
    dk_cfg *copy = NULL;
    CHECK_OK(dkh_cfg_clone(c, &copy));
    assert_true(dkh_cfg_equal(c, copy));
    assert_string_equal(dk_cfg_where(dk_cfg_get(copy, "model.depth")), dk_cfg_where(depth));
    CHECK_OK(dkh_cfg_override(copy, "model.depth=51"));
    assert_false(dkh_cfg_equal(c, copy));
    dkh_cfg_free(copy);

    check_round_trip(c);
    dkh_cfg_free(c);
}

static void test_typed_get_errors(void **state)
{
    (void)state;
    dk_cfg *c = load_fixture("structure.yaml");
    const dk_cfg *model = dk_cfg_get(c, "model");
    int64_t i;
    assert_int_equal(dk_cfg_get_int(model, "dept", &i), DK_ERR_NOT_FOUND);
    CHECK_MSG("structure.yaml:2:3: model.dept: key not found");
    const char *s;
    assert_int_equal(dk_cfg_get_str(model, "depth", &s), DK_ERR_CONFIG);
    CHECK_MSG("structure.yaml:3:10: model.depth: expected a string, got int 50");
    assert_int_equal(dk_cfg_get_int(model, "type", &i), DK_ERR_CONFIG);
    CHECK_MSG("structure.yaml:2:9: model.type: expected an integer, got string 'ResNet'");
    double f;
    assert_int_equal(dk_cfg_get_float(model, "stages", &f), DK_ERR_CONFIG);
    CHECK_MSG("model.stages: expected a number, got a list");
    bool b;
    assert_int_equal(dk_cfg_get_bool(c, "model", &b), DK_ERR_CONFIG);
    CHECK_MSG("model: expected true or false, got a map");
    dkh_cfg_free(c);
}

static void test_yaml_errors(void **state)
{
    (void)state;
    dk_cfg *c = NULL;
    assert_int_equal(dkh_cfg_load(CFG_DATA "dup_key.yaml", &c), DK_ERR_PARSE);
    assert_null(c);
    CHECK_MSG("dup_key.yaml:5:3: duplicate key 'c' (first given at ");
    CHECK_MSG("dup_key.yaml:3:3)");

    assert_int_equal(dkh_cfg_load(CFG_DATA "syntax.yaml", &c), DK_ERR_PARSE);
    CHECK_MSG("syntax.yaml:3:2: did not find expected ',' or ']' (while parsing a flow "
              "sequence at line 2, column 4)");

    assert_int_equal(dkh_cfg_load(CFG_DATA "multi_doc.yaml", &c), DK_ERR_PARSE);
    CHECK_MSG("multi_doc.yaml:2:1: a second YAML document; a config file holds exactly one");

    assert_int_equal(dkh_cfg_load(CFG_DATA "not_a_map.yaml", &c), DK_ERR_CONFIG);
    CHECK_MSG("not_a_map.yaml:1:1: a config file must hold a map of keys, got a list");

    assert_int_equal(dkh_cfg_load(CFG_DATA "does_not_exist.yaml", &c), DK_ERR_IO);
    CHECK_MSG("cannot read config '");
    CHECK_MSG("does_not_exist.yaml': No such file or directory");

    assert_int_equal(dkh_cfg_parse("a: 1\n b: 2\n", "t.yaml", &c), DK_ERR_PARSE);
    CHECK_MSG("t.yaml:2:3: mapping values are not allowed in this context");
    assert_int_equal(dkh_cfg_parse("a: *nope\n", "t.yaml", &c), DK_ERR_PARSE);
    CHECK_MSG("t.yaml:1:4: unknown alias '*nope'");
    assert_int_equal(dkh_cfg_parse("a: &x [1, *x]\n", "t.yaml", &c), DK_ERR_PARSE);
    CHECK_MSG("t.yaml:1:11: alias '*x' refers to a node that contains it");
    assert_int_equal(dkh_cfg_parse("? [1, 2]\n: 3\n", "t.yaml", &c), DK_ERR_PARSE);
    CHECK_MSG("t.yaml:1:3: map keys must be plain strings");
    assert_int_equal(dkh_cfg_parse("a: \"unterminated\n", "t.yaml", &c), DK_ERR_PARSE);
    CHECK_MSG("t.yaml:");
    assert_int_equal(dkh_cfg_parse("a:\n  <<: 5\n", "t.yaml", &c), DK_ERR_PARSE);
    CHECK_MSG("t.yaml:2:7: the merge key '<<' needs a map or a list of maps");
    assert_null(c);

    /* Absurd nesting is refused instead of exhausting the stack. */
    dkh_buf deep = DKH_BUF_INIT;
    for (int k = 0; k < 600; k++)
        dkh_buf_putc(&deep, '[');
    for (int k = 0; k < 600; k++)
        dkh_buf_putc(&deep, ']');
    assert_int_equal(dkh_cfg_parse(dkh_buf_str(&deep), "t.yaml", &c), DK_ERR_PARSE);
    CHECK_MSG("t.yaml:1:514: nesting deeper than 512 levels");
    dkh_buf_fini(&deep);

    /* An empty file is an empty config; empty text parses to null. */
    c = load_fixture("empty.yaml");
    assert_int_equal(dk_cfg_kind_of(c), DK_CFG_MAP);
    assert_int_equal(dk_cfg_len(c), 0);
    check_round_trip(c);
    dkh_cfg_free(c);
    c = parse_text("");
    assert_int_equal(dk_cfg_kind_of(c), DK_CFG_NULL);
    dkh_cfg_free(c);
    /* A scalar document is fine for parse (defaults, override values). */
    c = parse_text("[3, 3]");
    assert_int_equal(dk_cfg_len(c), 2);
    dkh_cfg_free(c);
}

static void test_inheritance(void **state)
{
    (void)state;
    dk_cfg *c = load_fixture("inherit/sub/child.yaml");
    dk_cfg *want = parse_text("model:\n  type: A\n  depth: 32\n  opts: {x: 1, y: 3, z: 9}\n"
                              "list: [9]\nname: other\nkeep: true\nextra: from_other\n");
    if (!dkh_cfg_equal(c, want)) {
        dkh_buf b = DKH_BUF_INIT;
        dkh_cfg_dump(c, &b);
        fail_msg("merged config differs:\n%s", dkh_buf_str(&b));
    }
    /* Locations point at the file that gave the winning value. */
    assert_non_null(
        strstr(dk_cfg_where(dk_cfg_get(c, "model.depth")), "inherit/sub/../base_b.yaml:3:10"));
    assert_non_null(
        strstr(dk_cfg_where(dk_cfg_get(c, "model.type")), "inherit/sub/../base_a.yaml"));
    assert_non_null(strstr(dk_cfg_where(dk_cfg_get(c, "model.opts.z")), "child.yaml:4:8"));
    assert_non_null(strstr(dk_cfg_where(dk_cfg_get(c, "list")), "child.yaml:5:7"));
    assert_null(dk_cfg_get(c, "_base_"));
    assert_string_equal(dk_cfg_path(dk_cfg_get(c, "model.opts.x")), "model.opts.x");
    check_round_trip(c);
    dkh_cfg_free(want);
    dkh_cfg_free(c);

    c = load_fixture("inherit/delete.yaml");
    want = parse_text("model: {type: B}\nlist: [1, 2, 3]\nname: base_a\nkeep: true\n");
    assert_true(dkh_cfg_equal(c, want));
    check_round_trip(c);
    dkh_cfg_free(want);
    dkh_cfg_free(c);

    c = load_fixture("inherit/base_b.yaml");
    assert_null(dk_cfg_get(c, "model._delete_"));
    check_round_trip(c);
    dkh_cfg_free(c);
}

static void test_inheritance_errors(void **state)
{
    (void)state;
    dk_cfg *c = NULL;
    assert_int_equal(dkh_cfg_load(CFG_DATA "inherit/cyc_a.yaml", &c), DK_ERR_CONFIG);
    assert_null(c);
    CHECK_MSG("cyc_b.yaml:1:9: _base_ inheritance cycle: ");
    CHECK_MSG("inherit/cyc_a.yaml -> ");
    CHECK_MSG("inherit/cyc_b.yaml -> ");
    const char *msg = dk_last_error();
    const char *arrow = strstr(msg, "cycle: ");
    assert_non_null(arrow);
    /* a -> b -> a: the chain starts and ends with the same file. */
    assert_non_null(strstr(arrow, "cyc_a.yaml -> "));
    assert_true(strlen(msg) > 10 && strcmp(msg + strlen(msg) - 10, "cyc_a.yaml") == 0);

    assert_int_equal(dkh_cfg_load(CFG_DATA "inherit/cyc_self.yaml", &c), DK_ERR_CONFIG);
    CHECK_MSG("cyc_self.yaml:2:23: _base_ inheritance cycle: ");
    CHECK_MSG("cyc_self.yaml -> ");

    assert_int_equal(dkh_cfg_load(CFG_DATA "inherit/missing_base.yaml", &c), DK_ERR_CONFIG);
    CHECK_MSG("inherit/missing_base.yaml:2:9: _base_: cannot open base config 'nope.yaml' (");
    CHECK_MSG("inherit/nope.yaml): No such file or directory");

    assert_int_equal(dkh_cfg_load(CFG_DATA "inherit/bad_base.yaml", &c), DK_ERR_CONFIG);
    CHECK_MSG("bad_base.yaml:1:9: _base_: expected a file name, got int 5");
}

static void test_round_trip_all_fixtures(void **state)
{
    (void)state;
    const char *files[] = {"scalars.yaml",       "structure.yaml",         "interp.yaml",
                           "empty.yaml",         "inherit/base_a.yaml",    "inherit/base_b.yaml",
                           "inherit/other.yaml", "inherit/sub/child.yaml", "inherit/delete.yaml",
                           "validate.yaml"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        dk_cfg *c = load_fixture(files[i]);
        check_round_trip(c);
        dkh_cfg_free(c);
    }
}

static void test_dump_format(void **state)
{
    (void)state;
    dk_cfg *c = parse_text("a: 1.0\nb: 1e20\nc: '1'\nd: ''\ne: 'true'\nf: 'x: y'\ng: [[1, 2], {h: "
                           "1, i: []}]\nj: {}\nk: -.inf\nl: 0.1\nm: '- x'\nn: \"tab\\there\"\n"
                           "o: 'a #b'\np: a#b\nq: '~'\nr: '0x10'\n");
    dkh_buf b = DKH_BUF_INIT;
    dkh_cfg_dump(c, &b);
    assert_string_equal(dkh_buf_str(&b), "a: 1.0\n"
                                         "b: 1.0e+20\n"
                                         "c: \"1\"\n"
                                         "d: \"\"\n"
                                         "e: \"true\"\n"
                                         "f: \"x: y\"\n"
                                         "g:\n"
                                         "  - [1, 2]\n"
                                         "  - h: 1\n"
                                         "    i: []\n"
                                         "j: {}\n"
                                         "k: -.inf\n"
                                         "l: 0.1\n"
                                         "m: \"- x\"\n"
                                         "n: \"tab\\there\"\n"
                                         "o: \"a #b\"\n"
                                         "p: a#b\n"
                                         "q: \"~\"\n"
                                         "r: \"0x10\"\n");
    check_round_trip(c);
    dkh_buf_fini(&b);
    dkh_cfg_free(c);

    /* Long lists and lists holding containers stay in block style; strings
     * that are special in flow context are quoted inside [...]. */
    c = parse_text("long: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]\n"
                   "nested: [[1], [2, [3]]]\nodd: ['a,b', '[x]', '{y}', 'p: q', '', ~, 1.5]\n");
    dkh_cfg_dump(c, &b);
    assert_non_null(strstr(dkh_buf_str(&b), "  - 17\n"));
    assert_non_null(
        strstr(dkh_buf_str(&b), "odd: [\"a,b\", \"[x]\", \"{y}\", \"p: q\", \"\", null, 1.5]\n"));
    check_round_trip(c);
    dkh_buf_fini(&b);
    dkh_cfg_free(c);

    /* A float made by arithmetic-like text keeps every bit. */
    c = parse_text("x: 0.30000000000000004\ny: 123456789.123456789\nz: 5e-324\n");
    check_round_trip(c);
    dkh_cfg_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_typed_scalars),       cmocka_unit_test(test_classify_edges),
        cmocka_unit_test(test_locations_and_paths), cmocka_unit_test(test_typed_get_errors),
        cmocka_unit_test(test_yaml_errors),         cmocka_unit_test(test_inheritance),
        cmocka_unit_test(test_inheritance_errors),  cmocka_unit_test(test_round_trip_all_fixtures),
        cmocka_unit_test(test_dump_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
