/* tests/data/test_accuracy.c — the Accuracy metric on a hand-made example:
 * top-1 and top-2 over two batches, reset, ties, and its messages. */
#include "data_testing.h"

typedef struct fixture {
    dkh_registry *reg;
    dk_object *metric;
    const dk_metric_vtable *vt;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->reg = dkh_registry_new();
    dkh_registry_set_current(f->reg);
    dt_load_plugin(f->reg, "accuracy_metric");
    f->metric = dt_build("{type: Accuracy, topk: [1, 2]}", "metric");
    if (!f->metric)
        fail_msg("%s", dk_last_error());
    f->vt = dk_object_type(f->metric)->vtable;
    dk_clear_error();
    dk_scope_begin();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    dk_scope_end();
    dk_object_free(f->metric);
    dkh_registry_free(f->reg);
    free(f);
    return 0;
}

/* Feeds n rows of 3 class scores with their labels. */
static dk_status feed(fixture *f, const float *scores, const int64_t *labels, int64_t n)
{
    dk_dict *batch = dk_dict_new(), *preds = dk_dict_new();
    CHECK_OK(dk_dict_set_tensor(preds, "pred_score",
                                dk_from_data(2, (int64_t[]){n, 3}, DK_DTYPE_F32, scores)));
    CHECK_OK(dk_dict_set_tensor(batch, "gt_label",
                                dk_from_data(1, (int64_t[]){n}, DK_DTYPE_I64, labels)));
    dk_status s = f->vt->process(dk_object_self(f->metric), batch, preds);
    dk_dict_free(batch);
    dk_dict_free(preds);
    return s;
}

static void expect(fixture *f, double top1, double top2)
{
    dk_dict *r = dk_dict_new();
    CHECK_OK(f->vt->compute(dk_object_self(f->metric), r));
    assert_int_equal(dk_dict_len(r), 2);
    assert_float_equal(dk_dict_number(r, "top1", -1), top1, 1e-9);
    assert_float_equal(dk_dict_number(r, "top2", -1), top2, 1e-9);
    dk_dict_free(r);
}

static void test_topk_over_batches(void **state)
{
    fixture *f = *state;
    /* Row by row: right at top-1; second best (top-2 only); last (neither). */
    const float a[9] = {0.1f, 0.7f, 0.2f, 0.5f, 0.3f, 0.2f, 0.6f, 0.3f, 0.1f};
    const int64_t la[3] = {1, 1, 2};
    CHECK_OK(feed(f, a, la, 3));
    expect(f, 100.0 / 3, 200.0 / 3);
    /* A second batch: both right at top-1; the second ties with another
     * class at the top, which counts in its favour. */
    const float b[6] = {3, 2, 1, 5, 5, 0};
    const int64_t lb[2] = {0, 1};
    CHECK_OK(feed(f, b, lb, 2));
    expect(f, 300.0 / 5, 400.0 / 5);
    f->vt->reset(dk_object_self(f->metric));
    CHECK_OK(feed(f, b, lb, 2));
    expect(f, 100, 100);
}

static void test_messages(void **state)
{
    fixture *f = *state;
    dk_dict *r = dk_dict_new();
    assert_int_equal(f->vt->compute(dk_object_self(f->metric), r), DK_ERR_ARG);
    assert_contains(dk_last_error(), "Accuracy: no samples were processed");
    dk_dict_free(r);

    const float s[3] = {1, 2, 3};
    const int64_t bad[1] = {3};
    assert_int_equal(feed(f, s, bad, 1), DK_ERR_ARG);
    assert_contains(dk_last_error(), "Accuracy: gt_label 3 of sample 0 is not a class in [0, 3)");

    dk_object *top5 = dt_build("{type: Accuracy, topk: [1, 5]}", "metric");
    dk_dict *batch = dk_dict_new(), *preds = dk_dict_new();
    CHECK_OK(dk_dict_set_tensor(preds, "pred_score",
                                dk_from_data(2, (int64_t[]){1, 3}, DK_DTYPE_F32, s)));
    CHECK_OK(
        dk_dict_set_tensor(batch, "gt_label", dk_from_data(1, (int64_t[]){1}, DK_DTYPE_I64, bad)));
    const dk_metric_vtable *vt = dk_object_type(top5)->vtable;
    assert_int_equal(vt->process(dk_object_self(top5), batch, preds), DK_ERR_ARG);
    assert_contains(dk_last_error(),
                    "Accuracy: top-5 asked for, but 'pred_score' has only 3 classes");
    assert_int_equal(vt->process(dk_object_self(top5), preds, batch), DK_ERR_ARG);
    assert_contains(dk_last_error(), "the predictions have no tensor 'pred_score' (N, C)");
    dk_dict_free(batch);
    dk_dict_free(preds);
    dk_object_free(top5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_topk_over_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_messages, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
