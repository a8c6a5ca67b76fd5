/* tests/plugin/test_alloc_faults.c — the in-tree plugins under allocation
 * failure.
 *
 * Builds the model of every shipped config with the N-th dk_malloc failing,
 * for every N until the build succeeds: each attempt must end in a clean
 * DK_ERR_NOMEM with a message (never a crash), and must give back every byte
 * it took (the allocator's count returns to where it was; ASan checks the
 * host side too).
 */
#include "plugin_test.h"

#include "cfg/cfg.h"
#include "optim/optim.h"
#include "runner/config_schema.h"

static void build_under_faults(const char *config)
{
    dkh_registry *r = dkh_registry_new();
    dkh_registry_set_current(r);
    assert_int_equal(dkh_optim_register_builtins(r), DK_OK); /* configs name SGD */
    assert_int_equal(dkh_registry_load_dir(r, DK_BINARY_DIR "/plugins"), DK_OK);
    dk_cfg *root = NULL;
    assert_int_equal(dkh_config_prepare(config, NULL, 0, r, &root), DK_OK);
    const dk_cfg *model = dk_cfg_get(root, "model");

    size_t baseline = dkh_mem_current();
    long failures = 0;
    for (long n = 0;; n++) {
        dk_object *obj = NULL;
        dkh_mem_fail_after(n);
        dk_status s = dk_object_build(model, "model", &obj);
        dkh_mem_fail_after(-1);
        if (s == DK_OK) {
            dk_object_free(obj);
            assert_int_equal(dkh_mem_current(), baseline);
            break;
        }
        failures++;
        assert_int_equal(s, DK_ERR_NOMEM);
        assert_contains(dk_last_error(), "out of memory");
        assert_null(obj);
        assert_int_equal(dkh_mem_current(), baseline);
        assert_true(n < 10000);
    }
    /* The model has several parts, each allocating: every one was hit. */
    assert_true(failures >= 3);
    dkh_cfg_free(root);
    dkh_registry_set_current(NULL);
    dkh_registry_free(r);
}

static void test_lenet_model(void **state)
{
    build_under_faults(DK_SOURCE_DIR "/configs/fashion_mnist/lenet.yaml");
}

static void test_resnet_model(void **state)
{
    build_under_faults(DK_SOURCE_DIR "/configs/fashion_mnist/resnet20.yaml");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lenet_model),
        cmocka_unit_test(test_resnet_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
