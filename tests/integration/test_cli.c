/* tests/integration/test_cli.c — the real dkhost on real files.
 *
 * Every way a user can misuse the command line or a config ends in one clear
 * message and the documented exit code (docs/cli.md); these tests feed each
 * bad input and check both.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proc.h"

#include <dk/types.h>

#define CONFIGS DK_TEST_SOURCE_DIR "/configs"
#define LENET DK_SOURCE_DIR "/configs/fashion_mnist/lenet.yaml"
#define RESNET DK_SOURCE_DIR "/configs/fashion_mnist/resnet20.yaml"

enum { OK = 0, RUNTIME = 1, USAGE = 2, CONFIG = 3, PLUGIN = 4, DATA = 5 };

#define expect proc_expect

static void test_version_and_help(void **state)
{
    proc_result r = dkhost_run("--version", NULL);
    char abi[32];
    snprintf(abi, sizeof abi, "plugin ABI %d.%d", DK_ABI_MAJOR, DK_ABI_MINOR);
    expect(&r, OK, abi, NULL);
    proc_result_free(&r);
    r = dkhost_run("--help", NULL);
    expect(&r, OK, "list-registry", NULL);
    assert_non_null(strstr(r.out, "Exit codes"));
    proc_result_free(&r);
    r = dkhost_run("check", "--help", NULL);
    expect(&r, OK, "Usage: dkhost check CONFIG", NULL);
    proc_result_free(&r);
}

static void test_usage_errors(void **state)
{
    proc_result r = dkhost_run(NULL);
    expect(&r, USAGE, NULL, "Usage:");
    proc_result_free(&r);
    r = dkhost_run("lst-registry", NULL);
    expect(&r, USAGE, NULL, "unknown command 'lst-registry' (did you mean 'list-registry'?)");
    proc_result_free(&r);
    r = dkhost_run("--plugin", "x", "list-registry", NULL);
    expect(&r, USAGE, NULL, "unknown option '--plugin' (did you mean '--plugins'?)");
    proc_result_free(&r);
    r = dkhost_run("check", NULL);
    expect(&r, USAGE, NULL, "check needs a CONFIG file");
    proc_result_free(&r);
    r = dkhost_run("list-registry", "--kind", NULL);
    expect(&r, USAGE, NULL, "option --kind needs a value");
    proc_result_free(&r);
    r = dkhost_run("--log-level", "loud", "list-registry", NULL);
    expect(&r, USAGE, NULL, "unknown log level 'loud'");
    proc_result_free(&r);
    r = dkhost_run("print-config", LENET, "--cfg-options", NULL);
    expect(&r, USAGE, NULL, "--cfg-options needs at least one KEY=VALUE");
    proc_result_free(&r);
}

static void test_plugin_dir_errors(void **state)
{
    proc_result r = dkhost_run("--plugins", "/nonexistent/plugins", "list-registry", NULL);
    expect(&r, PLUGIN, NULL, "--plugins /nonexistent/plugins: No such file or directory");
    proc_result_free(&r);
    r = dkhost_run("--plugins", LENET, "list-registry", NULL);
    expect(&r, PLUGIN, NULL, "not a directory");
    proc_result_free(&r);
}

#define FIXTURES DK_BINARY_DIR "/tests/plugin/fixtures"

static void test_plugin_search_path(void **state)
{
    /* DK_PLUGIN_PATH adds directories; a missing entry is only a warning. */
    proc_result r = dkhost_run_with_path("/nonexistent/dir:" FIXTURES "/good", "list-registry",
                                         "--kind", "backbone", NULL);
    expect(&r, OK, "TinyNet", NULL);
    expect(&r, OK, "ResNet", NULL); /* the default directory still loads */
    expect(&r, OK, NULL, "DK_PLUGIN_PATH entry /nonexistent/dir is not a directory");
    proc_result_free(&r);

    /* --plugins comes first: its good.so shadows the one DK_PLUGIN_PATH names. */
    r = dkhost_run_with_path(FIXTURES "/shadow2", "--plugins", FIXTURES "/shadow1",
                             "list-registry", NULL);
    expect(&r, OK, FIXTURES "/shadow1/good.so", NULL);
    assert_null(strstr(r.out, FIXTURES "/shadow2/good.so"));
    expect(&r, OK, FIXTURES "/shadow2/old.so", NULL);
    proc_result_free(&r);
}

/* Refused plugin files do not stop a run; a config that needs what one of
 * them would have provided is told why it is missing. */
static void test_refused_plugins(void **state)
{
    proc_result r = dkhost_run("--plugins", FIXTURES "/listing", "list-registry", NULL);
    expect(&r, OK, "Refused (3)", NULL);
    expect(&r, OK, "requires dk ABI >= 1.99", NULL);
    expect(&r, OK, "not a dkhost plugin", NULL);
    expect(&r, OK, "init failed: could not open its weights file", NULL);
    proc_result_free(&r);

    r = dkhost_run("--plugins", FIXTURES "/listing", "print-config", RESNET, "--cfg-options",
                   "model.neck.type=FailNetB", NULL);
    expect(&r, CONFIG, NULL, "unknown neck type 'FailNetB'");
    expect(&r, CONFIG, NULL, "initfail.so was refused: init failed: could not open its weights");
    proc_result_free(&r);

    r = dkhost_run("--plugins", FIXTURES "/major", "print-config", RESNET, NULL);
    expect(&r, OK, "type: ResNet", NULL);
    proc_result_free(&r);
}

static void test_list_registry_in_tree(void **state)
{
    proc_result r = dkhost_run("list-registry", NULL);
    expect(&r, OK, "LeNet", NULL);
    const char *types[] = {"ResNet", "ImageClassifier", "LinearClsHead", "CrossEntropyLoss",
                           "GlobalAveragePooling", "FashionMNIST", "Normalize", "RandomFlip",
                           "RandomCrop", "LoggerHook", "Accuracy"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        expect(&r, OK, types[i], NULL);
    proc_result_free(&r);

    r = dkhost_run("list-registry", "--kind", "backbone", NULL);
    expect(&r, OK, "ResNet", NULL);
    assert_null(strstr(r.out, "FashionMNIST"));
    proc_result_free(&r);

    r = dkhost_run("list-registry", "--json", NULL);
    expect(&r, OK, "\"FashionMNIST\"", NULL);
    assert_int_equal(r.out[0], '{');
    proc_result_free(&r);

    r = dkhost_run("list-registry", "--kind", "backbones", NULL);
    assert_int_not_equal(r.status, OK);
    expect(&r, r.status, NULL, "backbones");
    proc_result_free(&r);

    /* Without the default directory nothing is registered. */
    r = dkhost_run("--no-default-plugins", "list-registry", "--json", NULL);
    expect(&r, OK, NULL, NULL);
    assert_null(strstr(r.out, "LeNet"));
    proc_result_free(&r);
}

static void test_print_config_round_trip(void **state)
{
    proc_result r = dkhost_run("print-config", LENET, NULL);
    expect(&r, OK, "type: LeNet", NULL);
    /* Defaults are filled in, interpolation resolved, bases merged. */
    expect(&r, OK, "batch_norm: true", NULL);
    expect(&r, OK, "/usr/share/datasets/fashion-mnist", NULL);
    expect(&r, OK, "interval: 50", NULL);
    assert_null(strstr(r.out, "_base_"));
    assert_null(strstr(r.out, "${"));

    /* The dump loads back to the same config: printing it again is a fixpoint. */
    char path[] = "/tmp/dk_test_cfg_XXXXXX.yaml";
    int fd = mkstemps(path, 5);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(write_file(path, r.out), 0);
    proc_result again = dkhost_run("print-config", path, NULL);
    expect(&again, OK, NULL, NULL);
    assert_string_equal(again.out, r.out);
    proc_result_free(&again);
    proc_result_free(&r);
    unlink(path);
}

static void test_print_config_overrides(void **state)
{
    proc_result r = dkhost_run("print-config", RESNET, "--cfg-options",
                               "model.backbone.depth=32", "train_cfg.max_epochs=5",
                               "train_dataloader.dataset.pipeline.1.prob=0.25",
                               "--work-dir", "/tmp/it's here", NULL);
    expect(&r, OK, "depth: 32", NULL);
    expect(&r, OK, "max_epochs: 5", NULL);
    expect(&r, OK, "prob: 0.25", NULL);
    expect(&r, OK, "it's here", NULL);
    proc_result_free(&r);

    r = dkhost_run("print-config", RESNET, "--cfg-options", "model.backbone.depth=33", NULL);
    expect(&r, CONFIG, NULL, "<cfg-options>");
    expect(&r, CONFIG, NULL, "model.backbone.depth");
    proc_result_free(&r);

    r = dkhost_run("print-config", RESNET, "--cfg-options",
                   "train_dataloader.dataset.pipeline.9.prob=1", NULL);
    expect(&r, CONFIG, NULL, "pipeline.9");
    proc_result_free(&r);
}

static void test_config_errors_all_reported(void **state)
{
    proc_result r = dkhost_run("check", CONFIGS "/errors.yaml", NULL);
    expect(&r, CONFIG, NULL, "invalid config");
    expect(&r, CONFIG, NULL, "errors.yaml:6:12: model.backbone.depth");
    expect(&r, CONFIG, NULL, "errors.yaml:7:5: model.backbone");
    expect(&r, CONFIG, NULL, "did you mean 'depth'?");
    expect(&r, CONFIG, NULL, "errors.yaml:11:18: model.head.num_classes");
    expect(&r, CONFIG, NULL, "errors.yaml:13:15: train_dataloader.batch_size");
    expect(&r, CONFIG, NULL, "errors.yaml:14:");
    expect(&r, CONFIG, NULL, "did you mean 'FashionMNIST'?");
    proc_result_free(&r);
}

static void test_yaml_and_file_errors(void **state)
{
    proc_result r = dkhost_run("check", CONFIGS "/syntax.yaml", NULL);
    expect(&r, CONFIG, NULL, "syntax.yaml:");
    proc_result_free(&r);
    r = dkhost_run("check", CONFIGS "/bad_base.yaml", NULL);
    assert_int_not_equal(r.status, OK);
    expect(&r, r.status, NULL, "does_not_exist.yaml");
    expect(&r, r.status, NULL, "bad_base.yaml:1");
    proc_result_free(&r);
    r = dkhost_run("check", "/nonexistent/x.yaml", NULL);
    assert_true(r.status == DATA || r.status == CONFIG);
    expect(&r, r.status, NULL, "/nonexistent/x.yaml");
    proc_result_free(&r);
}

static void test_check_builds_everything(void **state)
{
    struct stat st;
    if (stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", &st) != 0)
        skip(); /* scripts/setup.sh installs it; CI always has it */
    proc_result r = dkhost_run("check", LENET, NULL);
    expect(&r, OK, "config valid", NULL);
    expect(&r, OK, "model ", NULL);
    expect(&r, OK, "ImageClassifier", NULL);
    expect(&r, OK, "train_dataloader.dataset", NULL);
    expect(&r, OK, "default_hooks.logger", NULL);
    proc_result_free(&r);

    /* The real config trains: three iterations, then a checkpoint. */
    const char *wd = DK_TEST_BINARY_DIR "/cli_train_work";
    r = dkhost_run(LENET, "--work-dir", wd, "--no-validate", "--cfg-options",
                   "train_cfg.by_epoch=false", "train_cfg.max_iters=3", "param_scheduler=[]",
                   "default_hooks.checkpoint.by_epoch=false", "default_hooks.checkpoint.interval=3",
                   NULL);
    expect(&r, OK, NULL, "saved checkpoint " DK_TEST_BINARY_DIR "/cli_train_work/iter_3.dkpt");
    proc_result_free(&r);
    assert_int_equal(stat(DK_TEST_BINARY_DIR "/cli_train_work/iter_3.dkpt", &st), 0);
    assert_int_equal(system("rm -rf '" DK_TEST_BINARY_DIR "/cli_train_work'"), 0);
}

static void test_missing_and_corrupt_data(void **state)
{
    proc_result r = dkhost_run("check", LENET, "--cfg-options", "vars.data_root=/nonexistent/fm",
                               NULL);
    expect(&r, DATA, NULL, "/nonexistent/fm/train-images-idx3-ubyte");
    expect(&r, DATA, NULL, "train_dataloader.dataset");
    expect(&r, DATA, NULL, "dataset-fashion-mnist");
    proc_result_free(&r);

    /* A truncated image file: the header promises more than it holds. */
    char dir[] = "/tmp/dk_test_fm_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], opt[300];
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
    FILE *f = fopen(path, "wb");
    const unsigned char head[16] = {0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28};
    fwrite(head, 1, sizeof head, f);
    fwrite(head, 1, sizeof head, f); /* 16 of 7840 payload bytes */
    fclose(f);
    snprintf(opt, sizeof opt, "vars.data_root=%s", dir);
    r = dkhost_run("check", LENET, "--cfg-options", opt, NULL);
    expect(&r, DATA, NULL, "truncated");
    expect(&r, DATA, NULL, path);
    proc_result_free(&r);

    /* Not an IDX file at all. */
    assert_int_equal(write_file(path, "this is not an idx file"), 0);
    r = dkhost_run("check", LENET, "--cfg-options", opt, NULL);
    expect(&r, DATA, NULL, "not an IDX image file");
    proc_result_free(&r);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_and_help),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_plugin_dir_errors),
        cmocka_unit_test(test_plugin_search_path),
        cmocka_unit_test(test_refused_plugins),
        cmocka_unit_test(test_list_registry_in_tree),
        cmocka_unit_test(test_print_config_round_trip),
        cmocka_unit_test(test_print_config_overrides),
        cmocka_unit_test(test_config_errors_all_reported),
        cmocka_unit_test(test_yaml_and_file_errors),
        cmocka_unit_test(test_check_builds_everything),
        cmocka_unit_test(test_missing_and_corrupt_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
