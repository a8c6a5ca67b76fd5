/* tests/unit/test_util.c — the error slot, string buffers, suggestions and
 * the counting allocator that every other part of libdk leans on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

static void test_status_names(void **state)
{
    assert_string_equal(dk_status_name(DK_OK), "DK_OK");
    assert_string_equal(dk_status_name(DK_ERR_CONFIG), "DK_ERR_CONFIG");
    assert_string_equal(dk_status_str(DK_ERR_ABI), "ABI mismatch");
    assert_string_equal(dk_status_name((dk_status)999), "DK_ERR_UNKNOWN");
    for (int s = 0; s < DK_STATUS_COUNT; s++) {
        assert_non_null(dk_status_name((dk_status)s));
        assert_true(strlen(dk_status_str((dk_status)s)) > 0);
    }
}

static void test_fail_and_prefix(void **state)
{
    dk_clear_error();
    assert_int_equal(dk_last_status(), DK_OK);
    assert_string_equal(dk_last_error(), "");
    dk_status s = dk_fail(DK_ERR_SHAPE, "conv2d: input has %d channels, weight expects %d", 3, 4);
    assert_int_equal(s, DK_ERR_SHAPE);
    assert_int_equal(dk_last_status(), DK_ERR_SHAPE);
    assert_string_equal(dk_last_error(), "conv2d: input has 3 channels, weight expects 4");
    dk_error_prefix("model.backbone");
    dk_error_prefix("config %s", "x.yaml");
    assert_string_equal(dk_last_error(),
                        "config x.yaml: model.backbone: conv2d: input has 3 channels, weight expects 4");
    assert_int_equal(dk_last_status(), DK_ERR_SHAPE);
    dk_clear_error();
    assert_string_equal(dk_last_error(), "");
}

static void *other_thread(void *arg)
{
    (void)arg;
    /* A fresh thread sees no error, and its failure stays its own. */
    const char *seen = dk_last_error();
    bool clean = seen[0] == '\0';
    (void)dk_fail(DK_ERR_IO, "thread-local");
    dk_clear_error();
    return clean ? (void *)1 : NULL;
}

static void test_error_is_per_thread(void **state)
{
    (void)dk_fail(DK_ERR_CONFIG, "main thread");
    pthread_t t;
    void *clean = NULL;
    assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
    pthread_join(t, &clean);
    assert_non_null(clean);
    assert_string_equal(dk_last_error(), "main thread");
    dk_clear_error();
}

static void test_buf(void **state)
{
    dkh_buf b = DKH_BUF_INIT;
    assert_string_equal(dkh_buf_str(&b), "");
    for (int i = 0; i < 1000; i++)
        dkh_buf_printf(&b, "%d,", i % 10);
    assert_int_equal(b.len, 2000);
    assert_int_equal(strlen(dkh_buf_str(&b)), 2000);
    dkh_buf_clear(&b);
    dkh_buf_json_str(&b, "a\"b\\c\n\t\x01");
    assert_string_equal(dkh_buf_str(&b), "\"a\\\"b\\\\c\\n\\t\\u0001\"");
    char *taken = dkh_buf_take(&b);
    assert_null(b.data);
    free(taken);
    dkh_buf_fini(&b);
}

static void test_suggestions(void **state)
{
    assert_int_equal(dkh_edit_distance("depth", "depth"), 0);
    assert_int_equal(dkh_edit_distance("dept", "depth"), 1);
    assert_int_equal(dkh_edit_distance("ResNet", "resnet"), 0);
    assert_int_equal(dkh_edit_distance("", "abc"), 3);
    const char *names[] = {"depth", "in_channels", "base_channels", "shortcut"};
    assert_string_equal(dkh_closest("dept", names, 4), "depth");
    assert_string_equal(dkh_closest("in_chanels", names, 4), "in_channels");
    assert_null(dkh_closest("learning_rate", names, 4));
    assert_null(dkh_closest("x", NULL, 0));
}

static void test_allocator_counts(void **state)
{
    size_t before = dkh_mem_current();
    char *p = dk_malloc(1000);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 64, 0);
    assert_int_equal(dkh_mem_current(), before + 1000);
    assert_true(dkh_mem_peak() >= before + 1000);
    memset(p, 7, 1000);
    p = dk_realloc(p, 5000);
    assert_int_equal(p[999], 7);
    assert_int_equal(dkh_mem_current(), before + 5000);
    int *z = dk_calloc(10, sizeof *z);
    for (int i = 0; i < 10; i++)
        assert_int_equal(z[i], 0);
    char *d = dk_strdup("hello");
    assert_string_equal(d, "hello");
    dk_free(d);
    dk_free(z);
    dk_free(p);
    dk_free(NULL);
    assert_int_equal(dkh_mem_current(), before);
    assert_null(dk_calloc(SIZE_MAX / 2, 4)); /* overflow is refused, not wrapped */
    assert_null(dk_malloc(SIZE_MAX));
}

static void test_log_levels(void **state)
{
    dk_log_level level;
    assert_int_equal(dkh_log_level_parse("WARN", &level), DK_OK);
    assert_int_equal(level, DK_LOG_WARN);
    assert_int_equal(dkh_log_level_parse("loud", &level), DK_ERR_ARG);
    assert_non_null(strstr(dk_last_error(), "'loud'"));

    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    dkh_log_set_streams(NULL, mem);
    dkh_log_set_level(DK_LOG_INFO);
    dk_log(DK_LOG_DEBUG, "hidden %d", 1);
    dk_log(DK_LOG_INFO, "shown %d\n", 2);
    dk_log(DK_LOG_WARN, "warned");
    dkh_log_set_streams(stderr, NULL);
    fclose(mem);
    assert_null(strstr(text, "hidden"));
    assert_non_null(strstr(text, " - dkhost - INFO - shown 2\n"));
    assert_non_null(strstr(text, " - dkhost - WARNING - warned\n"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_names),     cmocka_unit_test(test_fail_and_prefix),
        cmocka_unit_test(test_error_is_per_thread), cmocka_unit_test(test_buf),
        cmocka_unit_test(test_suggestions),      cmocka_unit_test(test_allocator_counts),
        cmocka_unit_test(test_log_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
