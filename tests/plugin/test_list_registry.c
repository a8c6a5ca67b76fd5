/* tests/plugin/test_list_registry.c — list-registry's text and JSON output
 * over a fixture directory, compared with golden files.
 *
 * Paths and versions that differ between machines are normalised first: the
 * fixture directory becomes <FIXTURES>, the host version <VERSION>, the SDK
 * build string <BUILD> and the host's ABI <ABI> (it grows with every new
 * host function; the fixtures built with this SDK carry it too). On a mismatch the test prints a
 * unified diff. Run with DK_UPDATE_GOLDEN=1 to rewrite the golden files from this build.
 */
#include "plugin_test.h"

#include "cli/list_registry.h"

#define GOLDEN_DIR DK_TEST_SOURCE_DIR "/golden"
#define HOST_ABI DK_XSTR_(DK_ABI_MAJOR) "." DK_XSTR_(DK_ABI_MINOR)

static int setup(void **state)
{
    dkh_registry *r = dkh_registry_new();
    assert_int_equal(dkh_registry_load_dir(r, FIXTURE_DIR "/listing"), DK_OK);
    *state = r;
    return 0;
}

static int teardown(void **state)
{
    dkh_registry_free(*state);
    return 0;
}

/* Replaces every occurrence of from with to; returns a new string. */
static char *replace_all(const char *s, const char *from, const char *to)
{
    dkh_buf b = DKH_BUF_INIT;
    size_t n = strlen(from);
    for (const char *p; (p = strstr(s, from)) != NULL; s = p + n) {
        dkh_buf_putn(&b, s, (size_t)(p - s));
        dkh_buf_puts(&b, to);
    }
    dkh_buf_puts(&b, s);
    return dkh_buf_take(&b);
}

static char *normalise(const char *text)
{
    char *a = replace_all(text, FIXTURE_DIR, "<FIXTURES>");
    char *b = replace_all(a, DK_BUILD_STRING, "<BUILD>");
    char *c = replace_all(b, "dkhost " DK_VERSION_STRING, "dkhost <VERSION>");
    char *d = replace_all(c, "\"version\":\"" DK_VERSION_STRING "\"", "\"version\":\"<VERSION>\"");
    char *e = replace_all(d, "ABI " HOST_ABI, "ABI <ABI>");
    char *f = replace_all(e, "\"" HOST_ABI "\"", "\"<ABI>\"");
    free(a);
    free(b);
    free(c);
    free(d);
    free(e);
    return f;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    dkh_buf b = DKH_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        dkh_buf_putn(&b, chunk, n);
    fclose(f);
    return dkh_buf_take(&b);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

/* Compares text with the golden file name, or rewrites it on request. */
static void check_golden(const char *name, const char *text)
{
    char golden[1024], actual[1024];
    snprintf(golden, sizeof golden, "%s/%s", GOLDEN_DIR, name);
    snprintf(actual, sizeof actual, "%s/%s.actual", DK_TEST_BINARY_DIR, name);
    const char *update = getenv("DK_UPDATE_GOLDEN");
    if (update && strcmp(update, "1") == 0) {
        write_file(golden, text);
        print_message("rewrote %s\n", golden);
        return;
    }
    char *want = read_file(golden);
    if (want && strcmp(want, text) == 0) {
        free(want);
        return;
    }
    write_file(actual, text);
    if (!want) {
        print_error("golden file %s is missing; run with DK_UPDATE_GOLDEN=1 to create it\n",
                    golden);
    } else {
        print_error("output differs from %s (actual in %s; DK_UPDATE_GOLDEN=1 rewrites):\n", golden,
                    actual);
        char cmd[2200];
        snprintf(cmd, sizeof cmd, "diff -u '%s' '%s' 1>&2", golden, actual);
        int rc = system(cmd);
        (void)rc;
    }
    free(want);
    fail();
}

/* ---- a small strict JSON checker (RFC 8259 grammar, no extensions) ---- */

static const char *json_value(const char *p, int depth);

static const char *ws(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
        p++;
    return p;
}

static const char *json_string(const char *p)
{
    if (*p++ != '"')
        return NULL;
    while (*p != '"') {
        if ((unsigned char)*p < 0x20)
            return NULL;
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i])
                        return NULL;
                p += 4;
            } else if (!*p || !strchr("\"\\/bfnrt", *p)) {
                return NULL;
            }
        }
        p++;
    }
    return p + 1;
}

static const char *json_number(const char *p)
{
    const char *s = p;
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9')
            p++;
    else
        return NULL;
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9'))
            return NULL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return NULL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return p > s ? p : NULL;
}

static const char *json_container(const char *p, char close, bool keyed, int depth)
{
    p = ws(p + 1);
    if (*p == close)
        return p + 1;
    for (;;) {
        if (keyed) {
            p = json_string(p);
            if (!p)
                return NULL;
            p = ws(p);
            if (*p++ != ':')
                return NULL;
        }
        p = json_value(ws(p), depth + 1);
        if (!p)
            return NULL;
        p = ws(p);
        if (*p == close)
            return p + 1;
        if (*p++ != ',')
            return NULL;
        p = ws(p);
    }
}

static const char *json_value(const char *p, int depth)
{
    if (depth > 64)
        return NULL;
    switch (*p) {
    case '{':
        return json_container(p, '}', true, depth);
    case '[':
        return json_container(p, ']', false, depth);
    case '"':
        return json_string(p);
    case 't':
        return strncmp(p, "true", 4) == 0 ? p + 4 : NULL;
    case 'f':
        return strncmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case 'n':
        return strncmp(p, "null", 4) == 0 ? p + 4 : NULL;
    default:
        return json_number(p);
    }
}

static bool json_valid(const char *text)
{
    const char *end = json_value(ws(text), 0);
    return end && *ws(end) == '\0';
}

/* ---- tests ------------------------------------------------------------ */

static void test_text_golden(void **state)
{
    dkh_buf out = DKH_BUF_INIT;
    assert_int_equal(dkh_list_registry(*state, NULL, false, &out), DK_OK);
    char *norm = normalise(dkh_buf_str(&out));
    check_golden("list_registry.txt", norm);
    free(norm);
    dkh_buf_fini(&out);
}

static void test_json_golden_and_valid(void **state)
{
    dkh_buf out = DKH_BUF_INIT;
    assert_int_equal(dkh_list_registry(*state, NULL, true, &out), DK_OK);
    assert_true(json_valid(dkh_buf_str(&out)));
    char *norm = normalise(dkh_buf_str(&out));
    check_golden("list_registry.json", norm);
    free(norm);

    /* Cross-check with Python's parser when there is one. */
    if (system("python3 -c '' >/dev/null 2>&1") == 0) {
        char path[1024], cmd[2200];
        snprintf(path, sizeof path, "%s/list_registry.check.json", DK_TEST_BINARY_DIR);
        write_file(path, dkh_buf_str(&out));
        snprintf(cmd, sizeof cmd, "python3 -m json.tool '%s' >/dev/null", path);
        assert_int_equal(system(cmd), 0);
    }
    dkh_buf_fini(&out);
}

static void test_json_checker_rejects(void **state)
{
    (void)state;
    assert_true(json_valid("{\"a\": [1, -2.5e3, true, null, \"x\\u00e9\"]}"));
    assert_false(json_valid("{\"a\": [1,]}"));
    assert_false(json_valid("{a: 1}"));
    assert_false(json_valid("\"tab\there\""));
    assert_false(json_valid("{} {}"));
}

static void test_kind_filter(void **state)
{
    dkh_buf out = DKH_BUF_INIT;
    assert_int_equal(dkh_list_registry(*state, "backbone", false, &out), DK_OK);
    assert_contains(dkh_buf_str(&out), "TinyNet");
    assert_contains(dkh_buf_str(&out), "OldNet");
    assert_null(strstr(dkh_buf_str(&out), "TinyNeck"));
    dkh_buf_clear(&out);
    assert_int_equal(dkh_list_registry(*state, "fuser", true, &out), DK_OK);
    assert_true(json_valid(dkh_buf_str(&out)));
    assert_contains(dkh_buf_str(&out), "\"AddFuser\"");
    assert_null(strstr(dkh_buf_str(&out), "\"name\":\"old\""));
    dkh_buf_clear(&out);
    /* A kind nothing provides still lists validly. */
    assert_int_equal(dkh_list_registry(*state, "hook", true, &out), DK_OK);
    assert_true(json_valid(dkh_buf_str(&out)));
    assert_contains(dkh_buf_str(&out), "\"plugins\": [],");
    dkh_buf_fini(&out);
}

static void test_unknown_kind(void **state)
{
    dkh_buf out = DKH_BUF_INIT;
    assert_int_equal(dkh_list_registry(*state, "bakbone", false, &out), DK_ERR_NOT_FOUND);
    assert_contains(dk_last_error(), "unknown kind 'bakbone' (did you mean 'backbone'?)");
    assert_contains(dk_last_error(), "; known kinds: model, backbone, neck,");
    assert_contains(dk_last_error(), ", fuser");
    assert_int_equal(out.len, 0);
    dkh_buf_fini(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_text_golden), T(test_json_golden_and_valid), T(test_json_checker_rejects),
        T(test_kind_filter), T(test_unknown_kind),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
