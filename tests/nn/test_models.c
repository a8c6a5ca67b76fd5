/* tests/nn/test_models.c — the shipped model plugins (backbones, neck, head,
 * loss, ImageClassifier) built from config text through the build's own
 * plugins: PyTorch's tensor names, order and parameter counts; forward in
 * every mode and backward; batch norm in training and evaluation; the loss
 * options; and errors that name the module they happened in.
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

static int setup(void **state)
{
    dkh_registry *r = dkh_registry_new();
    dkh_registry_set_current(r);
    if (dkh_registry_load_dir(r, DK_BINARY_DIR "/plugins") != DK_OK) {
        fprintf(stderr, "setup: %s\n", dk_last_error());
        return -1;
    }
    dkh_module_seed(0);
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

static dk_status build_text(const char *text, const char *key, dk_object **out)
{
    dk_cfg *root = NULL;
    *out = NULL;
    assert_int_equal(dkh_cfg_parse(text, "t.yaml", &root), DK_OK);
    dk_status s = dk_object_build(dk_cfg_get(root, key), NULL, out);
    dkh_cfg_free(root);
    return s;
}

static dk_object *model_from_text(const char *text)
{
    dk_object *m = NULL;
    if (build_text(text, "model", &m) != DK_OK)
        fail_msg("building the model: %s", dk_last_error());
    return m;
}

/* The model of a shipped config file (configs/_base_/models/). */
static dk_object *model_from_file(const char *path)
{
    dk_cfg *root = NULL;
    dk_object *m = NULL;
    if (dkh_cfg_load(path, &root) != DK_OK ||
        dk_object_build(dk_cfg_get(root, "model"), "model", &m) != DK_OK)
        fail_msg("%s: %s", path, dk_last_error());
    dkh_cfg_free(root);
    return m;
}

static size_t count_params(const dk_object *m)
{
    size_t n = 0;
    for (size_t i = 0; i < dkh_module_n_params(m); i++)
        n += (size_t)dk_tensor_numel(dkh_module_param_at(m, i, NULL));
    return n;
}

static void check_shape(const dk_tensor *t, int ndim, const int64_t *shape)
{
    assert_non_null(t);
    assert_int_equal(dk_tensor_ndim(t), ndim);
    for (int d = 0; d < ndim; d++)
        if (dk_tensor_shape(t)[d] != shape[d])
            fail_msg("dim %d is %lld, want %lld", d, (long long)dk_tensor_shape(t)[d],
                     (long long)shape[d]);
}
#define CHECK_SHAPE(t, ...)                                                                        \
    check_shape((t), (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)),                    \
                (int64_t[]){__VA_ARGS__})

/* Expected names, generated the way PyTorch's state_dict lists them. */
typedef struct names {
    char **v;
    size_t n, cap;
} names;

static void add_name(names *ns, const char *fmt, ...)
{
    if (ns->n == ns->cap) {
        ns->cap = ns->cap ? 2 * ns->cap : 64;
        ns->v = realloc(ns->v, ns->cap * sizeof *ns->v);
    }
    char buf[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    ns->v[ns->n++] = strdup(buf);
}

/* The five tensors of a BatchNorm2d under the prefix fmt makes. */
static void add_bn(names *ns, const char *fmt, ...)
{
    static const char *const leaves[] = {"weight", "bias", "running_mean", "running_var",
                                         "num_batches_tracked"};
    char prefix[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < 5; i++)
        add_name(ns, "%s.%s", prefix, leaves[i]);
}

static void check_names(const dk_object *m, names *ns)
{
    for (size_t i = 0; i < ns->n || i < dk_module_n_tensors(m); i++) {
        const char *got = NULL;
        dk_module_tensor_at(m, i, &got, NULL);
        if (i >= ns->n || !got || strcmp(got, ns->v[i]) != 0)
            fail_msg("tensor %zu is '%s', want '%s'", i, got ? got : "(none)",
                     i < ns->n ? ns->v[i] : "(none)");
    }
    for (size_t i = 0; i < ns->n; i++)
        free(ns->v[i]);
    free(ns->v);
}

static dk_rng data_rng;

/* A batch of n random images (C, S, S) with labels 0, 1, 2, ... (mod 10). */
static dk_dict *batch(int64_t n, int64_t c, int64_t s)
{
    dk_dict *b = dk_dict_new();
    int64_t labels[16];
    for (int64_t i = 0; i < n; i++)
        labels[i] = i % 10;
    assert_int_equal(
        dk_dict_set_tensor(b, "img",
                           dk_randn(4, (int64_t[]){n, c, s, s}, DK_DTYPE_F32, DK_CPU, &data_rng)),
        DK_OK);
    assert_int_equal(dk_dict_set_tensor(b, "gt_label", dk_from_data(1, &n, DK_DTYPE_I64, labels)),
                     DK_OK);
    return b;
}

static dk_dict *forward_ok(dk_object *m, const dk_dict *in, dk_forward_mode mode)
{
    dk_dict *out = dk_dict_new();
    if (dk_module_forward(m, in, mode, out) != DK_OK)
        fail_msg("forward: %s", dk_last_error());
    return out;
}

static float *copy_values(const dk_tensor *t)
{
    size_t n = (size_t)dk_tensor_numel(t);
    float *v = malloc(n * sizeof *v);
    memcpy(v, dk_tensor_data(t), n * sizeof *v);
    return v;
}

static bool equal_values(const float *a, const dk_tensor *t)
{
    return memcmp(a, dk_tensor_data(t), (size_t)dk_tensor_numel(t) * sizeof(float)) == 0;
}

static int64_t batches_tracked(const dk_object *m, const char *bn)
{
    char name[128];
    snprintf(name, sizeof name, "%s.num_batches_tracked", bn);
    return *(const int64_t *)dk_tensor_data(dk_module_find(m, name));
}

#define RESNET20_TEXT(extra_backbone, head_in)                                                     \
    "model:\n"                                                                                     \
    "  type: ImageClassifier\n"                                                                    \
    "  backbone: {type: ResNetCifar, depth: 20" extra_backbone "}\n"                               \
    "  neck: {type: GlobalAveragePooling}\n"                                                       \
    "  head: {type: LinearClsHead, in_channels: " head_in ", num_classes: 10}\n"

/* ---- names and counts ---------------------------------------------------------------------- */

static void test_resnet20_names(void **state)
{
    (void)state;
    dk_object *m = model_from_text(RESNET20_TEXT("", "64"));
    names ns = {0};
    add_name(&ns, "backbone.conv1.weight");
    add_bn(&ns, "backbone.bn1");
    for (int s = 1; s <= 3; s++)
        for (int i = 0; i < 3; i++) {
            char p[64];
            snprintf(p, sizeof p, "backbone.layer%d.%d", s, i);
            add_name(&ns, "%s.conv1.weight", p);
            add_bn(&ns, "%s.bn1", p);
            add_name(&ns, "%s.conv2.weight", p);
            add_bn(&ns, "%s.bn2", p);
        }
    add_name(&ns, "head.fc.weight");
    add_name(&ns, "head.fc.bias");
    check_names(m, &ns);
    /* The 0.27M of the paper's ResNet-20 (option A, 10 classes). */
    assert_int_equal(count_params(m), 269722);
    CHECK_SHAPE(dk_module_find(m, "backbone.layer2.0.conv1.weight"), 32, 16, 3, 3);
    CHECK_SHAPE(dk_module_find(m, "backbone.layer3.2.bn2.running_var"), 64);
    CHECK_SHAPE(dk_module_find(m, "backbone.bn1.num_batches_tracked"));
    CHECK_SHAPE(dk_module_find(m, "head.fc.weight"), 10, 64);
    dk_object_free(m);

    /* Option B adds the 1x1 projections (and their batch norms). */
    m = model_from_text(RESNET20_TEXT(", shortcut: B", "64"));
    CHECK_SHAPE(dk_module_find(m, "backbone.layer2.0.downsample.0.weight"), 32, 16, 1, 1);
    CHECK_SHAPE(dk_module_find(m, "backbone.layer3.0.downsample.1.running_mean"), 64);
    assert_null(dk_module_find(m, "backbone.layer1.0.downsample.0.weight"));
    assert_int_equal(count_params(m), 272474);
    dk_object_free(m);
}

static void test_resnet_imagenet(void **state)
{
    (void)state;
    dk_object *m = model_from_text("model:\n  type: ImageClassifier\n"
                                   "  backbone: {type: ResNet, depth: 18}\n"
                                   "  neck: {type: GlobalAveragePooling}\n"
                                   "  head: {type: LinearClsHead, in_channels: 512, "
                                   "num_classes: 1000}\n");
    assert_int_equal(count_params(m), 11689512); /* torchvision's resnet18 */
    CHECK_SHAPE(dk_module_find(m, "backbone.conv1.weight"), 64, 3, 7, 7);
    CHECK_SHAPE(dk_module_find(m, "backbone.layer2.0.downsample.0.weight"), 128, 64, 1, 1);
    CHECK_SHAPE(dk_module_find(m, "backbone.layer4.1.bn2.num_batches_tracked"));
    assert_null(dk_module_find(m, "backbone.layer1.0.downsample.0.weight"));
    assert_null(dk_module_find(m, "backbone.layer1.0.conv3.weight"));
    dk_object_free(m);

    m = model_from_text("model:\n  type: ImageClassifier\n"
                        "  backbone: {type: ResNet, depth: 50}\n"
                        "  neck: {type: GlobalAveragePooling}\n"
                        "  head: {type: LinearClsHead, in_channels: 2048, num_classes: 1000}\n");
    assert_int_equal(count_params(m), 25557032); /* torchvision's resnet50 */
    /* A bottleneck block in torchvision's order, projection last. */
    names ns = {0};
    add_name(&ns, "backbone.conv1.weight");
    add_bn(&ns, "backbone.bn1");
    add_name(&ns, "backbone.layer1.0.conv1.weight");
    add_bn(&ns, "backbone.layer1.0.bn1");
    add_name(&ns, "backbone.layer1.0.conv2.weight");
    add_bn(&ns, "backbone.layer1.0.bn2");
    add_name(&ns, "backbone.layer1.0.conv3.weight");
    add_bn(&ns, "backbone.layer1.0.bn3");
    add_name(&ns, "backbone.layer1.0.downsample.0.weight");
    add_bn(&ns, "backbone.layer1.0.downsample.1");
    for (size_t i = 0; i < ns.n; i++) {
        const char *got = NULL;
        dk_module_tensor_at(m, i, &got, NULL);
        assert_str_eq(got, ns.v[i]);
        free(ns.v[i]);
    }
    free(ns.v);
    CHECK_SHAPE(dk_module_find(m, "backbone.layer1.0.downsample.0.weight"), 256, 64, 1, 1);
    CHECK_SHAPE(dk_module_find(m, "backbone.layer2.0.conv2.weight"), 128, 128, 3, 3);
    CHECK_SHAPE(dk_module_find(m, "backbone.layer4.2.conv3.weight"), 2048, 512, 1, 1);
    dk_object_free(m);
}

/* The shipped LeNet and ResNet-20 models are the networks of
 * bench/step_bench.c: the same layers, so the same parameter counts. */
static void test_shipped_models_match_bench(void **state)
{
    (void)state;
    dk_object *m = model_from_file(DK_SOURCE_DIR "/configs/_base_/models/lenet.yaml");
    assert_int_equal(count_params(m), 421834);
    names ns = {0};
    for (int i = 1; i <= 2; i++) {
        add_name(&ns, "backbone.conv%d.weight", i);
        add_name(&ns, "backbone.conv%d.bias", i);
        add_bn(&ns, "backbone.bn%d", i);
    }
    add_name(&ns, "head.hidden.0.weight");
    add_name(&ns, "head.hidden.0.bias");
    add_name(&ns, "head.fc.weight");
    add_name(&ns, "head.fc.bias");
    check_names(m, &ns);
    dk_object_free(m);

    m = model_from_file(DK_SOURCE_DIR "/configs/_base_/models/resnet20.yaml");
    assert_int_equal(count_params(m), 269722 - 16 * 2 * 9); /* one input channel */
    dk_object_free(m);
}

/* ---- forward ----------------------------------------------------------------------------------
 */

static void test_backbone_features(void **state)
{
    (void)state;
    dk_object *b = NULL;
    assert_int_equal(build_text("b: {type: ResNet, depth: 18, out_indices: [1, 2, 3]}\n", "b", &b),
                     DK_OK);
    dk_scope_begin();
    dk_dict *in = batch(2, 3, 64);
    dk_dict *out = forward_ok(b, in, DK_MODE_TENSOR);
    assert_int_equal(dk_dict_tensors_len(out, "feats"), 3);
    CHECK_SHAPE(dk_dict_tensors_at(out, "feats", 0), 2, 128, 8, 8);
    CHECK_SHAPE(dk_dict_tensors_at(out, "feats", 1), 2, 256, 4, 4);
    CHECK_SHAPE(dk_dict_tensors_at(out, "feats", 2), 2, 512, 2, 2);
    dk_dict_free(out);
    dk_dict_free(in);
    dk_scope_end();
    dk_object_free(b);

    assert_int_equal(
        build_text("b: {type: ResNetCifar, depth: 20, out_indices: [0, 2]}\n", "b", &b), DK_OK);
    dk_scope_begin();
    in = batch(2, 3, 32);
    out = forward_ok(b, in, DK_MODE_TENSOR);
    assert_int_equal(dk_dict_tensors_len(out, "feats"), 2);
    CHECK_SHAPE(dk_dict_tensors_at(out, "feats", 0), 2, 16, 32, 32);
    CHECK_SHAPE(dk_dict_tensors_at(out, "feats", 1), 2, 64, 8, 8);
    dk_dict_free(out);
    dk_dict_free(in);
    dk_scope_end();
    dk_object_free(b);
}

/* Loss mode gives a finite scalar; backward reaches every parameter. (A
 * convolution bias in front of a training-mode batch norm gets a gradient of
 * zero up to rounding, so only weights must have non-zero ones.) */
static void check_training_step(dk_object *m, int64_t channels, int64_t side)
{
    dk_scope_begin();
    dk_dict *in = batch(4, channels, side);
    dk_dict *out = forward_ok(m, in, DK_MODE_LOSS);
    dk_tensor *loss = dk_dict_tensor(out, "loss_cls");
    CHECK_SHAPE(loss);
    double l = dk_tensor_item(loss);
    assert_true(isfinite(l) && l > 0.5 && l < 10);
    double acc = dk_dict_number(out, "accuracy_top1", -1);
    assert_true(acc >= 0 && acc <= 100);
    assert_int_equal(dk_backward(loss, NULL, false), DK_OK);
    for (size_t i = 0; i < dkh_module_n_params(m); i++) {
        const char *name = NULL;
        dk_tensor *g = dk_tensor_grad(dkh_module_param_at(m, i, &name));
        if (!g)
            fail_msg("%s has no gradient", name);
        const float *v = dk_tensor_data(g);
        size_t len = strlen(name);
        bool any = len < 7 || strcmp(name + len - 7, ".weight") != 0;
        for (int64_t k = 0; k < dk_tensor_numel(g) && !any; k++)
            any = v[k] != 0.0f;
        if (!any)
            fail_msg("the gradient of %s is all zeros", name);
    }
    dkh_module_zero_grad(m);
    dk_dict_free(out);
    dk_dict_free(in);
    dk_scope_end();
}

static void test_loss_and_backward(void **state)
{
    (void)state;
    dk_object *m = model_from_file(DK_SOURCE_DIR "/configs/_base_/models/lenet.yaml");
    check_training_step(m, 1, 28);
    assert_int_equal(batches_tracked(m, "backbone.bn2"), 1);
    dk_object_free(m);
    m = model_from_file(DK_SOURCE_DIR "/configs/_base_/models/resnet20.yaml");
    check_training_step(m, 1, 28);
    assert_int_equal(batches_tracked(m, "backbone.layer3.2.bn2"), 1);
    dk_object_free(m);
}

static void test_predict_and_tensor_modes(void **state)
{
    (void)state;
    dk_object *m = model_from_text(RESNET20_TEXT("", "64"));
    dk_module_train(m, false);
    dk_scope_begin();
    bool was = dk_grad_set_enabled(false);
    dk_dict *in = batch(3, 3, 32);
    dk_dict *pred = forward_ok(m, in, DK_MODE_PREDICT);
    dk_dict *raw = forward_ok(m, in, DK_MODE_TENSOR);
    dk_tensor *score = dk_dict_tensor(pred, "pred_score"),
              *label = dk_dict_tensor(pred, "pred_label");
    dk_tensor *logits = dk_dict_tensor(raw, "logits");
    CHECK_SHAPE(score, 3, 10);
    CHECK_SHAPE(label, 3);
    CHECK_SHAPE(logits, 3, 10);
    assert_int_equal(dk_tensor_dtype(label), DK_DTYPE_I64);
    assert_null(dk_dict_tensor(pred, "loss_cls"));
    const float *p = dk_tensor_data(score), *z = dk_tensor_data(logits);
    const int64_t *lab = dk_tensor_data(label);
    for (int i = 0; i < 3; i++) {
        double sum = 0, zmax = -INFINITY;
        int64_t best = 0;
        for (int c = 0; c < 10; c++) {
            sum += p[i * 10 + c];
            if (z[i * 10 + c] > zmax) {
                zmax = z[i * 10 + c];
                best = c;
            }
        }
        assert_true(fabs(sum - 1) < 1e-5);
        assert_int_equal(lab[i], best);
    }
    dk_grad_set_enabled(was);
    dk_dict_free(pred);
    dk_dict_free(raw);
    dk_dict_free(in);
    dk_scope_end();
    dk_object_free(m);
}

/* Training mode normalises with batch statistics and updates the running
 * ones; evaluation normalises with the running statistics and leaves them. */
static void test_batch_norm_modes(void **state)
{
    (void)state;
    dk_object *m = model_from_text(RESNET20_TEXT("", "64"));
    dk_tensor *mean = dk_module_find(m, "backbone.bn1.running_mean");
    dk_tensor *var = dk_module_find(m, "backbone.layer2.1.bn1.running_var");
    float *mean0 = copy_values(mean), *var0 = copy_values(var);
    dk_scope_begin();
    dk_dict *ab = batch(2, 3, 32), *ac = batch(2, 3, 32);
    /* ac = (a, c): the same first image as ab. */
    dk_tensor *a = dk_slice(dk_dict_tensor(ab, "img"), 0, 0, 1, 1);
    dk_tensor *c = dk_slice(dk_dict_tensor(ac, "img"), 0, 1, 2, 1);
    assert_int_equal(dk_dict_set_tensor(ac, "img", dk_cat((dk_tensor *[]){a, c}, 2, 0)), DK_OK);

    /* Evaluation: the statistics stay, and a sample's output does not depend
     * on the rest of its batch. */
    dk_module_train(m, false);
    dk_dict *o1 = forward_ok(m, ab, DK_MODE_TENSOR), *o2 = forward_ok(m, ac, DK_MODE_TENSOR);
    assert_true(equal_values(mean0, mean) && equal_values(var0, var));
    assert_int_equal(batches_tracked(m, "backbone.bn1"), 0);
    const float *l1 = dk_tensor_data(dk_dict_tensor(o1, "logits"));
    const float *l2 = dk_tensor_data(dk_dict_tensor(o2, "logits"));
    assert_memory_equal(l1, l2, 10 * sizeof(float));
    assert_memory_not_equal(l1 + 10, l2 + 10, 10 * sizeof(float));

    /* Training: batch statistics (the first row now depends on the second),
     * running statistics updated, one batch counted. */
    dk_module_train(m, true);
    dk_dict *o3 = forward_ok(m, ab, DK_MODE_TENSOR), *o4 = forward_ok(m, ac, DK_MODE_TENSOR);
    assert_memory_not_equal(dk_tensor_data(dk_dict_tensor(o3, "logits")),
                            dk_tensor_data(dk_dict_tensor(o4, "logits")), 10 * sizeof(float));
    assert_false(equal_values(mean0, mean));
    assert_false(equal_values(var0, var));
    assert_int_equal(batches_tracked(m, "backbone.bn1"), 2);
    assert_int_equal(batches_tracked(m, "backbone.layer3.2.bn2"), 2);
    dk_dict_free(o1);
    dk_dict_free(o2);
    dk_dict_free(o3);
    dk_dict_free(o4);
    dk_dict_free(ab);
    dk_dict_free(ac);
    dk_scope_end();
    free(mean0);
    free(var0);
    dk_object_free(m);
}

/* The head's loss child applies label smoothing, class weights and the loss
 * weight exactly as cross_entropy does. */
static void test_loss_options(void **state)
{
    (void)state;
    dk_object *m = model_from_text(
        "model:\n  type: ImageClassifier\n"
        "  backbone: {type: ResNetCifar, depth: 20}\n"
        "  neck: {type: GlobalAveragePooling}\n"
        "  head:\n    type: LinearClsHead\n    in_channels: 64\n    num_classes: 10\n"
        "    loss: {type: CrossEntropyLoss, label_smoothing: 0.1, loss_weight: 2.0,\n"
        "           class_weight: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}\n");
    dk_module_train(m, false); /* so both forwards see the same logits */
    dk_scope_begin();
    dk_dict *in = batch(4, 3, 32);
    dk_dict *raw = forward_ok(m, in, DK_MODE_TENSOR), *losses = forward_ok(m, in, DK_MODE_LOSS);
    float w[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    dk_tensor *weight = dk_from_data(1, (int64_t[]){10}, DK_DTYPE_F32, w);
    dk_tensor *want = dk_mul_scalar(dk_cross_entropy(dk_dict_tensor(raw, "logits"),
                                                     dk_dict_tensor(in, "gt_label"), weight, -100,
                                                     0.1, DK_REDUCTION_MEAN),
                                    2.0);
    double got = dk_tensor_item(dk_dict_tensor(losses, "loss_cls"));
    assert_true(fabs(got - dk_tensor_item(want)) < 1e-6 * fabs(got));
    /* Without the options the value differs. */
    dk_tensor *plain =
        dk_cross_entropy(dk_dict_tensor(raw, "logits"), dk_dict_tensor(in, "gt_label"), NULL, -100,
                         0, DK_REDUCTION_MEAN);
    assert_true(fabs(got - dk_tensor_item(plain)) > 1e-3);
    dk_dict_free(raw);
    dk_dict_free(losses);
    dk_dict_free(in);
    dk_scope_end();
    dk_object_free(m);
}

/* ---- errors -----------------------------------------------------------------------------------
 */

static void expect_forward_error(dk_object *m, dk_dict *in, dk_forward_mode mode,
                                 const char *prefix)
{
    dk_dict *out = dk_dict_new();
    dk_clear_error();
    assert_int_not_equal(dk_module_forward(m, in, mode, out), DK_OK);
    if (strncmp(dk_last_error(), prefix, strlen(prefix)) != 0)
        fail_msg("expected a message starting with\n    \"%s\"\ngot\n    \"%s\"", prefix,
                 dk_last_error());
    dk_dict_free(out);
}

static void test_forward_errors(void **state)
{
    (void)state;
    dk_object *m = model_from_text(RESNET20_TEXT("", "64"));
    dk_scope_begin();
    /* An op error inside the backbone names the backbone. */
    dk_dict *gray = batch(2, 1, 32);
    expect_forward_error(m, gray, DK_MODE_LOSS, "model.backbone: conv2d: ");
    dk_dict *no_img = dk_dict_new();
    expect_forward_error(m, no_img, DK_MODE_TENSOR,
                         "model.backbone: ResNetCifar: the input has no 'img' tensor");
    /* The head checks its labels; the loss child reports bad ones. */
    dk_dict *rgb = batch(2, 3, 32);
    dk_dict *unlabelled = dk_dict_new();
    assert_int_equal(dk_dict_set_tensor(unlabelled, "img", dk_dict_tensor(rgb, "img")), DK_OK);
    expect_forward_error(m, unlabelled, DK_MODE_LOSS,
                         "model.head: LinearClsHead: loss mode needs 'gt_label' in the input");
    int64_t bad[2] = {3, 12}, two = 2;
    assert_int_equal(dk_dict_set_tensor(rgb, "gt_label", dk_from_data(1, &two, DK_DTYPE_I64, bad)),
                     DK_OK);
    expect_forward_error(m, rgb, DK_MODE_LOSS, "model.head.loss: cross_entropy: ");
    dk_dict_free(gray);
    dk_dict_free(no_img);
    dk_dict_free(rgb);
    dk_dict_free(unlabelled);
    dk_scope_end();
    dk_object_free(m);

    /* A head that does not fit its features says so. */
    m = model_from_text(RESNET20_TEXT("", "32"));
    dk_scope_begin();
    dk_dict *in = batch(2, 3, 32);
    expect_forward_error(m, in, DK_MODE_TENSOR,
                         "model.head: LinearClsHead: features have 64 values per sample; "
                         "in_channels is 32");
    dk_dict_free(in);
    dk_scope_end();
    dk_object_free(m);

    /* Pooling a flat feature. */
    m = model_from_text("model:\n  type: ImageClassifier\n  backbone: {type: LeNet}\n"
                        "  neck: {type: GlobalAveragePooling}\n"
                        "  head: {type: LinearClsHead, in_channels: 3136, num_classes: 10}\n");
    dk_scope_begin();
    in = batch(2, 1, 28);
    expect_forward_error(m, in, DK_MODE_TENSOR,
                         "model.neck: GlobalAveragePooling: a feature map has 2 dims");
    dk_dict_free(in);
    dk_scope_end();
    dk_object_free(m);
}

static void test_build_errors(void **state)
{
    (void)state;
    dk_object *m = NULL;
    assert_int_equal(build_text("model:\n  type: ImageClassifier\n  backbone: {type: ResNt}\n"
                                "  head: {type: LinearClsHead, in_channels: 64, num_classes: 10}\n",
                                "model", &m),
                     DK_ERR_CONFIG);
    assert_contains(dk_last_error(), "model.backbone");
    assert_contains(dk_last_error(), "unknown backbone type 'ResNt'");
    assert_int_equal(build_text(RESNET20_TEXT(", out_indices: []", "64"), "model", &m),
                     DK_ERR_CONFIG);
    assert_contains(dk_last_error(), "model.backbone.out_indices (t.yaml:3:");
    assert_contains(dk_last_error(), "give at least one stage");
    assert_int_equal(build_text(RESNET20_TEXT(", out_indices: [3]", "64"), "model", &m),
                     DK_ERR_CONFIG);
    assert_contains(dk_last_error(), "model.backbone.out_indices");
    assert_null(m);
}

int main(void)
{
    dk_rng_seed(&data_rng, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resnet20_names),
        cmocka_unit_test(test_resnet_imagenet),
        cmocka_unit_test(test_shipped_models_match_bench),
        cmocka_unit_test(test_backbone_features),
        cmocka_unit_test(test_loss_and_backward),
        cmocka_unit_test(test_predict_and_tensor_modes),
        cmocka_unit_test(test_batch_norm_modes),
        cmocka_unit_test(test_loss_options),
        cmocka_unit_test(test_forward_errors),
        cmocka_unit_test(test_build_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
