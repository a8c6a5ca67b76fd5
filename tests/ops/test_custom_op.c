/* tests/ops/test_custom_op.c — ops that plugins register.
 *
 * Loads the documented example plugin (docs/examples/custom_op, built here
 * with dk_add_plugin like a third party would) through the registry and
 * calls its ops like built-ins: forward against a reference written here,
 * gradients against finite differences (a backward written with ops, and a
 * dedicated backward kernel), auxiliary outputs, errors naming the op, NULL
 * propagation, scopes. Then the lifecycle: registration checks, a failing or
 * colliding init leaving no op behind, and unloading while a tape node still
 * uses an op (refused, the backward still works) and after (the op is gone,
 * its old handle fails cleanly, a reload works).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/list_registry.h"
#include "plugin/registry.h"
#include "tensor/custom_op.h"

#define FIXTURES DK_TEST_BINARY_DIR "/fixtures"
#define EXAMPLE FIXTURES "/segment_ops.so"

#include "dk_test.h"

typedef struct scaled_tanh_attrs {
    double a, b;
} scaled_tanh_attrs;
typedef struct segment_sum_attrs {
    int64_t n_segments;
} segment_sum_attrs;

static int setup(void **state)
{
    dkh_registry *r = dkh_registry_new();
    dkh_registry_set_current(r);
    dk_clear_error();
    dk_status s = dkh_registry_load_file(r, EXAMPLE);
    if (s != DK_OK) {
        fprintf(stderr, "cannot load %s: %s\n", EXAMPLE, dk_last_error());
        return -1;
    }
    *state = r;
    return 0;
}

static int teardown(void **state)
{
    dkh_registry_free(*state);
    dk_clear_error();
    return 0;
}

static double at(const dk_tensor *t, int64_t i)
{
    return dkh_load(dkh_base(t), t->dtype, dkh_offset_of(i, t->ndim, t->shape, t->strides));
}

static dk_tensor *rand_f64(int ndim, const int64_t *shape, uint64_t seed)
{
    dk_rng g;
    dk_rng_seed(&g, seed);
    return dk_add_scalar(dk_mul_scalar(dk_rand(ndim, shape, DK_DTYPE_F64, DK_CPU, &g), 2), -1);
}

static int32_t find(const char *name)
{
    int32_t id = dk_op_find(name);
    if (id < 0)
        print_error("%s\n", dk_last_error());
    assert_true(id >= 0);
    return id;
}

/* ---- forward ------------------------------------------------------------------------ */

static void test_scaled_tanh_forward(void **state)
{
    dk_scope_begin();
    int32_t op = find("example.scaled_tanh");
    dk_tensor *x = rand_f64(2, (int64_t[]){3, 4}, 1);
    scaled_tanh_attrs p = {1.5, 0.7};
    dk_tensor *y = dk_op_call(op, 1, &x, &p, sizeof p, NULL);
    assert_non_null(y);
    assert_int_equal(y->ndim, 2);
    assert_int_equal(y->shape[1], 4);
    for (int64_t i = 0; i < 12; i++)
        assert_true(fabs(at(y, i) - 1.5 * tanh(0.7 * at(x, i))) < 1e-15);
    /* A strided input (a transpose) reaches the kernel contiguous. */
    dk_tensor *xt = dk_transpose(x, 0, 1);
    dk_tensor *yt = dk_op_call(op, 1, &xt, &p, sizeof p, NULL);
    assert_non_null(yt);
    for (int64_t i = 0; i < 12; i++)
        assert_true(fabs(at(yt, i) - 1.5 * tanh(0.7 * at(xt, i))) < 1e-15);
    /* f32 runs too. */
    dk_tensor *xf = dk_cast(x, DK_DTYPE_F32);
    dk_tensor *yf = dk_op_call(op, 1, &xf, &p, sizeof p, NULL);
    assert_int_equal(dk_tensor_dtype(yf), DK_DTYPE_F32);
    assert_true(fabs(at(yf, 5) - at(y, 5)) < 1e-6);
    dk_scope_end();
}

static void test_segment_sum_forward_and_aux(void **state)
{
    dk_scope_begin();
    int32_t op = find("example.segment_sum");
    dk_tensor *x = rand_f64(2, (int64_t[]){6, 3}, 2);
    int64_t segv[6] = {2, 0, 2, 3, 0, 2};
    dk_tensor *seg = dk_from_data(1, (int64_t[]){6}, DK_DTYPE_I64, segv);
    dk_tensor *in[2] = {x, seg};
    segment_sum_attrs p = {4};
    dk_tensor *aux[1] = {NULL};
    dk_tensor *y = dk_op_call(op, 2, in, &p, sizeof p, aux);
    assert_non_null(y);
    assert_int_equal(y->shape[0], 4);
    assert_int_equal(y->shape[1], 3);
    for (int64_t s = 0; s < 4; s++)
        for (int64_t c = 0; c < 3; c++) {
            double want = 0;
            for (int64_t n = 0; n < 6; n++)
                want += segv[n] == s ? at(x, n * 3 + c) : 0;
            assert_true(fabs(at(y, s * 3 + c) - want) < 1e-15);
        }
    assert_non_null(aux[0]);
    assert_int_equal(dk_tensor_dtype(aux[0]), DK_DTYPE_I64);
    int64_t counts[4] = {2, 0, 3, 1};
    for (int s = 0; s < 4; s++)
        assert_true(at(aux[0], s) == (double)counts[s]);
    dk_scope_end();
}

/* ---- gradients ------------------------------------------------------------------------- */

/* Checks d(sum(w * f(x)))/dx from the tape against central differences. */
static void check_gradient(dk_tensor *(*f)(dk_tensor *x, const void *ctx), const void *ctx,
                           dk_tensor *x0)
{
    dk_scope_begin();
    dk_tensor *x = dk_copy(x0);
    assert_int_equal(dk_tensor_set_requires_grad(x, true), DK_OK);
    dk_tensor *y = f(x, ctx);
    assert_non_null(y);
    dk_tensor *w = rand_f64(y->ndim, y->shape, 99);
    dk_tensor *loss = dk_sum(dk_mul(y, w), NULL, 0, false);
    assert_int_equal(dk_backward(loss, NULL, false), DK_OK);
    dk_tensor *g = dk_tensor_grad(x);
    assert_non_null(g);
    bool was = dk_grad_set_enabled(false);
    int64_t n = dk_tensor_numel(x0);
    double *xv = malloc((size_t)n * sizeof *xv);
    assert_int_equal(dk_tensor_to_host(x0, xv, (size_t)n * sizeof *xv), DK_OK);
    const double h = 1e-6;
    for (int64_t i = 0; i < n; i++) {
        double keep = xv[i], l[2];
        for (int k = 0; k < 2; k++) {
            xv[i] = keep + (k ? -h : h);
            dk_tensor *xp = dk_from_data(x0->ndim, x0->shape, DK_DTYPE_F64, xv);
            l[k] = dk_tensor_item(dk_sum(dk_mul(f(xp, ctx), w), NULL, 0, false));
        }
        xv[i] = keep;
        double num = (l[0] - l[1]) / (2 * h);
        if (fabs(num - at(g, i)) > 1e-6 * (1 + fabs(num))) {
            print_error("element %lld: tape %.12g, finite differences %.12g\n", (long long)i,
                        at(g, i), num);
            fail();
        }
    }
    free(xv);
    dk_grad_set_enabled(was);
    dk_scope_end();
}

static int32_t tanh_id, segsum_id;

static dk_tensor *scaled_tanh(dk_tensor *x, const void *ctx)
{
    return dk_op_call(tanh_id, 1, &x, ctx, sizeof(scaled_tanh_attrs), NULL);
}

static dk_tensor *segment_sum(dk_tensor *x, const void *ctx)
{
    int64_t segv[5] = {1, 1, 0, 2, 1};
    dk_tensor *in[2] = {x, dk_from_data(1, (int64_t[]){5}, DK_DTYPE_I64, segv)};
    segment_sum_attrs p = {3};
    return dk_op_call(segsum_id, 2, in, &p, sizeof p, NULL);
}

static void test_gradients(void **state)
{
    tanh_id = find("example.scaled_tanh");
    segsum_id = find("example.segment_sum");
    scaled_tanh_attrs p = {1.3, -0.8};
    dk_scope_begin();
    check_gradient(scaled_tanh, &p, rand_f64(2, (int64_t[]){2, 3}, 3));
    check_gradient(segment_sum, NULL, rand_f64(2, (int64_t[]){5, 2}, 4));
    /* Through a strided input: the gradient flows back through the copy. */
    dk_tensor *x = dk_copy(rand_f64(2, (int64_t[]){3, 2}, 5));
    assert_int_equal(dk_tensor_set_requires_grad(x, true), DK_OK);
    dk_tensor *y = scaled_tanh(dk_transpose(x, 0, 1), &p);
    assert_int_equal(dk_backward(dk_sum(y, NULL, 0, false), NULL, false), DK_OK);
    for (int64_t i = 0; i < 6; i++) {
        double t = tanh(p.b * at(x, i));
        assert_true(fabs(at(dk_tensor_grad(x), i) - p.a * p.b * (1 - t * t)) < 1e-12);
    }
    dk_scope_end();
}

/* ---- errors, NULL propagation, scopes ----------------------------------------------- */

static void test_errors(void **state)
{
    dk_scope_begin();
    int32_t op = find("example.segment_sum");
    dk_tensor *x = rand_f64(2, (int64_t[]){4, 3}, 6);
    int64_t bad[4] = {0, 1, 7, 1};
    dk_tensor *seg = dk_from_data(1, (int64_t[]){4}, DK_DTYPE_I64, bad);
    dk_tensor *in[2] = {x, seg};
    segment_sum_attrs p = {3};

    /* The kernel's data-dependent failure, named after the op. */
    assert_null(dk_op_call(op, 2, in, &p, sizeof p, NULL));
    assert_int_equal(dk_last_status(), DK_ERR_ARG);
    assert_contains(dk_last_error(), "example.segment_sum: seg[2] = 7 is outside [0, 3) "
                                     "(inputs: (4, 3) f64, (4,) i64)");
    /* The shape rule's refusal. */
    dk_tensor *wrong[2] = {x, dk_cast(seg, DK_DTYPE_I32)};
    assert_null(dk_op_call(op, 2, wrong, &p, sizeof p, NULL));
    assert_int_equal(dk_last_status(), DK_ERR_SHAPE);
    assert_contains(dk_last_error(), "example.segment_sum: seg must be i64 (N,) with N = x's "
                                     "rows (inputs: (4, 3) f64, (4,) i32)");
    segment_sum_attrs zero = {0};
    assert_null(dk_op_call(op, 2, in, &zero, sizeof zero, NULL));
    assert_contains(dk_last_error(), "n_segments >= 1");
    assert_null(dk_op_call(op, 2, in, NULL, 8, NULL));
    assert_contains(dk_last_error(), "example.segment_sum: attrs is NULL but attrs_size is 8");
    /* Input count. */
    assert_null(dk_op_call(op, 1, in, &p, sizeof p, NULL));
    assert_int_equal(dk_last_status(), DK_ERR_ARG);
    assert_contains(dk_last_error(), "example.segment_sum: takes 2 inputs, got 1");
    /* Unknown handles and names. */
    assert_null(dk_op_call(123456, 1, in, NULL, 0, NULL));
    assert_int_equal(dk_last_status(), DK_ERR_NOT_FOUND);
    assert_contains(dk_last_error(), "123456 is not the handle of a registered custom op");
    assert_int_equal(dk_op_find("example.segment_summ"), -1);
    assert_int_equal(dk_last_status(), DK_ERR_NOT_FOUND);
    assert_contains(dk_last_error(),
                    "no custom op named 'example.segment_summ' (did you mean "
                    "'example.segment_sum'?)");
    dk_scope_end();
}

static void test_null_propagation(void **state)
{
    dk_scope_begin();
    int32_t op = find("example.scaled_tanh");
    scaled_tanh_attrs p = {1, 1};
    dk_tensor *a = dk_ones(1, (int64_t[]){3}, DK_DTYPE_F64, DK_CPU);
    dk_tensor *b = dk_ones(1, (int64_t[]){4}, DK_DTYPE_F64, DK_CPU);
    dk_tensor *bad = dk_add(a, b); /* the first cause */
    assert_null(bad);
    char *first = strdup(dk_last_error());
    dk_tensor *y = dk_op_call(op, 1, &bad, &p, sizeof p, NULL);
    assert_null(y);
    assert_string_equal(dk_last_error(), first);
    /* ... through a whole chain, and into backward. */
    dk_tensor *z = dk_sum(dk_op_call(op, 1, &y, &p, sizeof p, NULL), NULL, 0, false);
    assert_null(z);
    assert_int_equal(dk_backward(z, NULL, false), DK_ERR_SHAPE);
    assert_string_equal(dk_last_error(), first);
    free(first);
    /* A NULL nobody explained gets a message naming the op. */
    dk_clear_error();
    dk_tensor *none = NULL;
    assert_null(dk_op_call(op, 1, &none, &p, sizeof p, NULL));
    assert_contains(dk_last_error(), "example.scaled_tanh: input 0 is NULL");
    dk_scope_end();
}

static void test_scopes_free_everything(void **state)
{
    int32_t op = find("example.segment_sum");
    dk_memory_stats before, after;
    dk_memory_stats_get(DK_CPU, &before);
    size_t host_before = dkh_mem_current();
    dk_scope_begin();
    dk_tensor *x = dk_copy(rand_f64(2, (int64_t[]){5, 2}, 7));
    assert_int_equal(dk_tensor_set_requires_grad(x, true), DK_OK);
    dk_tensor *in[2] = {x, dk_zeros(1, (int64_t[]){5}, DK_DTYPE_I64, DK_CPU)};
    segment_sum_attrs p = {2};
    dk_tensor *aux[1];
    dk_tensor *y = dk_op_call(op, 2, in, &p, sizeof p, aux);
    assert_non_null(y);
    /* The result is still recorded: end the scope without a backward. */
    dk_scope_end();
    dk_memory_stats_get(DK_CPU, &after);
    assert_int_equal(after.current, before.current);
    assert_int_equal(dkh_mem_current(), host_before);
}

/* ---- registration and lifecycle -------------------------------------------------------- */

static void test_not_differentiable_and_buggy_callbacks(void **state)
{
    dkh_registry *r = *state;
    assert_int_equal(dkh_registry_load_file(r, FIXTURES "/buggy/buggy.so"), DK_OK);
    dk_scope_begin();
    dk_tensor *x = dk_copy(rand_f64(1, (int64_t[]){3}, 8));
    assert_int_equal(dk_tensor_set_requires_grad(x, true), DK_OK);

    int32_t rank = find("buggy.rank");
    assert_null(dk_op_call(rank, 1, &x, NULL, 0, NULL));
    assert_int_equal(dk_last_status(), DK_ERR_PLUGIN);
    assert_contains(dk_last_error(), "buggy.rank: the shape rule gave output 0 an invalid dtype");
    assert_contains(dk_last_error(), "buggy.so)");

    int32_t silent = find("buggy.silent");
    assert_null(dk_op_call(silent, 1, &x, NULL, 0, NULL));
    assert_int_equal(dk_last_status(), DK_ERR_RUNTIME);
    assert_contains(dk_last_error(),
                    "buggy.silent: its kernel failed with DK_ERR_RUNTIME and left no message");

    /* No backward: the result does not join the tape. */
    dk_tensor *y = dk_op_call(find("buggy.nobwd"), 1, &x, NULL, 0, NULL);
    assert_non_null(y);
    assert_false(dk_tensor_requires_grad(y));

    /* A backward returning a wrong shape is caught, not asserted on. */
    dk_tensor *g = dk_op_call(find("buggy.grad"), 1, &x, NULL, 0, NULL);
    assert_true(dk_tensor_requires_grad(g));
    assert_int_equal(dk_backward(dk_sum(g, NULL, 0, false), NULL, false), DK_ERR_PLUGIN);
    assert_contains(dk_last_error(), "buggy.grad: the backward gave input 0 a gradient () f64");
    dk_scope_end();
}

static void test_failed_init_leaves_no_op(void **state)
{
    dkh_registry *r = *state;
    assert_int_equal(dkh_registry_load_file(r, FIXTURES "/initfails/initfails.so"), DK_ERR_CONFIG);
    assert_contains(dk_last_error(), "init gives up after registering bad.leftover");
    assert_int_equal(dk_op_find("bad.leftover"), -1);

    /* A collision refuses the whole plugin, naming both files, and drops the
     * op it had registered before the collision. */
    assert_int_equal(dkh_registry_load_file(r, FIXTURES "/duplicate/duplicate.so"),
                     DK_ERR_DUPLICATE);
    assert_contains(dk_last_error(), "duplicate.so: op 'example.scaled_tanh' is already "
                                     "registered by " EXAMPLE);
    assert_int_equal(dk_op_find("dup.fine"), -1);

    /* A failure the init ignored still refuses it. */
    assert_int_equal(dkh_registry_load_file(r, FIXTURES "/ignored/ignored.so"), DK_ERR_ARG);
    assert_contains(dk_last_error(), "op 'ignored.nocpu': no CPU forward kernel");
    assert_int_equal(dk_op_find("ignored.nocpu"), -1);
    /* The example's ops are untouched. */
    find("example.scaled_tanh");
}

static dk_status reg_cpu(const dk_op_ctx *c, int n, const dk_tensor *const *in, int no,
                         dk_tensor *const *out)
{
    return DK_OK;
}

static dk_status reg_infer(const dk_op_ctx *c, int n, dk_tensor *const *in, dk_op_shapes *o)
{
    return DK_OK;
}

/* dk_op_register's checks, through a registrar the test drives directly. */
static void test_register_checks(void **state)
{
    assert_int_equal(dk_op_register(NULL, NULL, NULL), DK_ERR_ARG);
    assert_contains(dk_last_error(), "registrar is NULL");
    static const dk_op_kernel cpu[] = {{.device_type = DK_DEVICE_CPU, .forward = reg_cpu}};
    static const dk_op_kernel cuda_only[] = {{.device_type = DK_DEVICE_CUDA, .forward = reg_cpu}};
    dk_op_info good = {DK_OP_INFO_HEAD, .name = "t.ok", .summary = "s", .n_in = 1,
                       .infer = reg_infer, DK_OP_KERNELS(cpu)};
    struct {
        dk_op_info info;
        const char *msg;
    } cases[] = {
        {good, NULL},
        {good, "is not valid"},
        {good, "no summary"},
        {good, "n_in 9 is outside [1, 8]"},
        {good, "no shape rule"},
        {good, "no CPU forward kernel"},
        {good, "struct_size 8 is smaller"},
        {good, "is a built-in op of the host"},
        {good, "kernel_size 4 is smaller"},
    };
    cases[1].info.name = "Bad-Name";
    cases[2].info.summary = "";
    cases[3].info.n_in = 9;
    cases[4].info.infer = NULL;
    cases[5].info.kernels = cuda_only;
    cases[6].info.struct_size = 8;
    cases[7].info.name = "matmul";
    cases[8].info.kernel_size = 4;
    /* A session of its own: what it staged is dropped when it finishes
     * uncommitted, like a refused plugin's. */
    static const char session = 0;
    dkh_op_owner owner = {.serial = 0, .path = "checks.so", .session = &session};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t id = 7;
        dk_status st = dkh_custom_op_stage(&cases[i].info, &owner, &id);
        if (!cases[i].msg) {
            assert_int_equal(st, DK_OK);
            assert_true(id >= DKH_OP_COUNT);
        } else {
            assert_int_not_equal(st, DK_OK);
            assert_contains(dk_last_error(), cases[i].msg);
            assert_int_equal(id, -1);
        }
    }
    assert_int_equal(dkh_custom_op_stage(&good, &owner, NULL), DK_ERR_DUPLICATE);
    assert_contains(dk_last_error(), "checks.so: op 't.ok' is registered twice");
    dkh_custom_ops_finish(&session, false);
    assert_int_equal(dk_op_find("t.ok"), -1);
}

static void test_unload_with_live_tape_node(void **state)
{
    dkh_registry *r = *state;
    int32_t op = find("example.scaled_tanh");
    scaled_tanh_attrs p = {2, 0.5};
    dk_scope_begin();
    dk_tensor *x = dk_copy(rand_f64(1, (int64_t[]){4}, 9));
    assert_int_equal(dk_tensor_set_requires_grad(x, true), DK_OK);
    dk_tensor *loss = dk_sum(dk_op_call(op, 1, &x, &p, sizeof p, NULL), NULL, 0, false);
    assert_non_null(loss);
    /* The tape node holds the plugin's code: the unload is refused. */
    assert_int_equal(dkh_registry_unload(r, "segment_ops"), DK_ERR_PLUGIN);
    assert_contains(dk_last_error(), "cannot unload plugin 'segment_ops'");
    /* ... so the backward still runs the plugin's code safely. */
    assert_int_equal(dk_backward(loss, NULL, false), DK_OK);
    double t = tanh(0.5 * at(x, 0));
    assert_true(fabs(at(dk_tensor_grad(x), 0) - (1 - t * t)) < 1e-12);
    dk_scope_end(); /* frees the node and its hold */

    assert_int_equal(dkh_registry_unload(r, "segment_ops"), DK_OK);
    /* The op is gone; its old handle fails cleanly and names why. */
    assert_int_equal(dk_op_find("example.scaled_tanh"), -1);
    assert_contains(dk_last_error(), "which has been unloaded");
    dk_scope_begin();
    dk_tensor *y = dk_ones(1, (int64_t[]){2}, DK_DTYPE_F64, DK_CPU);
    assert_null(dk_op_call(op, 1, &y, &p, sizeof p, NULL));
    assert_int_equal(dk_last_status(), DK_ERR_NOT_FOUND);
    assert_contains(dk_last_error(), "example.scaled_tanh: the op is no longer available: its "
                                     "plugin (" EXAMPLE ") was unloaded");
    /* Loading it again gives the op a new handle, and it works. */
    assert_int_equal(dkh_registry_load_file(r, EXAMPLE), DK_OK);
    int32_t again = find("example.scaled_tanh");
    assert_true(again != op);
    assert_non_null(dk_op_call(again, 1, &y, &p, sizeof p, NULL));
    dk_scope_end();
}

/* `dkhost list-registry` shows a plugin's ops (text and JSON), and only
 * while the plugin is loaded. */
static void test_listed(void **state)
{
    dkh_registry *r = *state;
    dkh_buf out = DKH_BUF_INIT;
    assert_int_equal(dkh_list_registry(r, NULL, false, &out), DK_OK);
    assert_contains(dkh_buf_str(&out), "Custom ops (2)\n  example.scaled_tanh  1 input, kernels: "
                                       "cpu, backward: ops\n      a * tanh(b * x)\n      file:   "
                                       EXAMPLE "\n");
    assert_contains(dkh_buf_str(&out), "  example.segment_sum  2 inputs, kernels: cpu, backward: "
                                       "kernel\n");
    dkh_buf_fini(&out);
    assert_int_equal(dkh_list_registry(r, NULL, true, &out), DK_OK);
    assert_contains(dkh_buf_str(&out), "{\"name\":\"example.segment_sum\",");
    assert_contains(dkh_buf_str(&out), "\"inputs\":2,\"kernels\":[\"cpu\"],\"backward\":"
                                       "\"kernel\",\"file\":\"" EXAMPLE "\"}");
    dkh_buf_fini(&out);
    assert_int_equal(dkh_registry_unload(r, "segment_ops"), DK_OK);
    assert_int_equal(dkh_list_registry(r, NULL, false, &out), DK_OK);
    assert_contains(dkh_buf_str(&out), "Custom ops (0)\n");
    dkh_buf_fini(&out);
}

/* Freeing the whole registry closes every plugin regardless of holds (it is
 * the end of the process's use of them); a tape node left over must then
 * fail its backward cleanly rather than call unmapped code. */
static void test_registry_freed_under_a_tape_node(void **state)
{
    int32_t op = find("example.scaled_tanh");
    scaled_tanh_attrs p = {1, 1};
    dk_scope_begin();
    dk_tensor *x = dk_copy(rand_f64(1, (int64_t[]){3}, 10));
    assert_int_equal(dk_tensor_set_requires_grad(x, true), DK_OK);
    dk_tensor *loss = dk_sum(dk_op_call(op, 1, &x, &p, sizeof p, NULL), NULL, 0, false);
    assert_non_null(loss);
    dkh_registry_free(*state);
    *state = dkh_registry_new();
    dkh_registry_set_current(*state);
    assert_int_equal(dk_backward(loss, NULL, false), DK_ERR_NOT_FOUND);
    assert_contains(dk_last_error(), "example.scaled_tanh: the op is no longer available");
    dk_scope_end(); /* releasing the node's hold finds no plugin: nothing to do */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scaled_tanh_forward, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segment_sum_forward_and_aux, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gradients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null_propagation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scopes_free_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_differentiable_and_buggy_callbacks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failed_init_leaves_no_op, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unload_with_live_tape_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registry_freed_under_a_tape_node, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
