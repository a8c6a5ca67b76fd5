/* tests/ops/test_runtime.c — devices and runtime settings.
 *
 * dk_to and the device queries as they behave on any machine (a CUDA device,
 * when there is one, is exercised by tests/cuda), the thread-count setting
 * reaching OpenMP, and deterministic mode: the same computations with 1 and
 * 2 threads, and repeated, give identical bits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/tensor_impl.h"

#include "dk_test.h"

static bool have_cuda(void)
{
    return dk_device_count(DK_DEVICE_CUDA) > 0;
}

static void test_to_on_the_cpu(void **state)
{
    dk_scope_begin();
    dk_tensor *x = dk_ones(2, (int64_t[]){2, 3}, DK_DTYPE_F32, DK_CPU);
    assert_int_equal(dk_tensor_set_requires_grad(x, true), DK_OK);
    /* Already there: x itself, a new reference owned by the scope. */
    dk_tensor *y = dk_to(x, DK_CPU);
    assert_ptr_equal(y, x);
    assert_int_equal(dk_backward(dk_sum(y, NULL, 0, false), NULL, false), DK_OK);
    assert_true(dk_tensor_item(dk_sum(dk_tensor_grad(x), NULL, 0, false)) == 6);

    assert_null(dk_to(x, (dk_device){DK_DEVICE_CPU, 1}));
    assert_int_equal(dk_last_status(), DK_ERR_ARG);
    assert_contains(dk_last_error(), "to: invalid device (type 0, index 1)");
    assert_null(dk_to(x, (dk_device){9, 0}));
    assert_int_equal(dk_last_status(), DK_ERR_ARG);
    if (!have_cuda()) {
        assert_null(dk_to(x, DK_CUDA_DEV(0)));
        assert_int_equal(dk_last_status(), DK_ERR_UNSUPPORTED);
        assert_contains(dk_last_error(), "to: no CUDA device: ");
    }
    /* dk_to is a custom op of the host's own; called directly without its
     * attrs it refuses cleanly. */
    int32_t to = dk_op_find("to");
    assert_true(to >= 0);
    assert_null(dk_op_call(to, 1, &x, NULL, 0, NULL));
    assert_int_equal(dk_last_status(), DK_ERR_ARG);
    assert_contains(dk_last_error(), "to: attrs must be the target dk_device");
    dk_device cpu = DK_CPU;
    dk_tensor *c = dk_op_call(to, 1, &x, &cpu, sizeof cpu, NULL);
    assert_non_null(c);
    assert_ptr_not_equal(c, x); /* a copy, made by the op itself */
    /* NULL propagates. */
    dk_clear_error();
    assert_null(dk_to(NULL, DK_CPU));
    assert_contains(dk_last_error(), "to: input 0 is NULL");
    dk_scope_end();
}

static void test_device_queries(void **state)
{
    char name[128];
    assert_int_equal(dk_device_count(DK_DEVICE_CPU), 1);
    assert_int_equal(dk_device_check(DK_CPU), DK_OK);
    assert_int_equal(dk_device_name(DK_CPU, name, sizeof name), DK_OK);
    assert_string_equal(name, "cpu");
    assert_int_equal(dk_device_synchronize(DK_CPU), DK_OK);
    int major, minor;
    assert_int_equal(dk_device_capability(DK_CPU, &major, &minor), DK_ERR_ARG);
    assert_int_equal(dk_device_name(DK_CPU, NULL, 0), DK_ERR_ARG);
    if (have_cuda()) {
        skip(); /* tests/cuda covers a present device */
        return;
    }
    /* No GPU (or no CUDA backend): one clear reason everywhere. */
    assert_int_equal(dk_device_count(DK_DEVICE_CUDA), 0);
    assert_int_equal(dk_device_check(DK_CUDA_DEV(0)), DK_ERR_UNSUPPORTED);
    assert_contains(dk_last_error(), "no CUDA device: ");
    assert_int_equal(dk_device_name(DK_CUDA_DEV(0), name, sizeof name), DK_ERR_UNSUPPORTED);
    assert_string_equal(name, "");
    assert_int_equal(dk_device_capability(DK_CUDA_DEV(0), &major, &minor), DK_ERR_UNSUPPORTED);
    assert_int_equal(dk_device_synchronize(DK_CUDA_DEV(0)), DK_ERR_UNSUPPORTED);
    /* An op asked to make a CUDA tensor says so too, naming itself. */
    dk_scope_begin();
    assert_null(dk_zeros(1, (int64_t[]){3}, DK_DTYPE_F32, DK_CUDA_DEV(0)));
    assert_int_equal(dk_last_status(), DK_ERR_UNSUPPORTED);
    assert_contains(dk_last_error(), "full: no CUDA device: ");
    dk_scope_end();
}

static void test_num_threads(void **state)
{
    int def = dk_get_num_threads();
    assert_true(def >= 1);
    assert_int_equal(dk_set_num_threads(-1), DK_ERR_ARG);
    assert_contains(dk_last_error(), "dk_set_num_threads: -1 threads");
    assert_int_equal(dk_get_num_threads(), def);

    dk_scope_begin();
    dk_tensor *x = dk_ones(1, (int64_t[]){8}, DK_DTYPE_F32, DK_CPU);
    for (int n = 1; n <= 3; n++) {
        assert_int_equal(dk_set_num_threads(n), DK_OK);
        assert_int_equal(dk_get_num_threads(), n);
        /* The next op applies it to OpenMP on the thread that runs it. */
        assert_non_null(dk_add(x, x));
        assert_int_equal(omp_get_max_threads(), n);
    }
    /* 0 goes back to the default, which DK_NUM_THREADS chooses. */
    setenv("DK_NUM_THREADS", "3", 1);
    assert_int_equal(dk_set_num_threads(0), DK_OK);
    assert_int_equal(dk_get_num_threads(), 3);
    unsetenv("DK_NUM_THREADS");
    assert_int_equal(dk_set_num_threads(0), DK_OK);
    assert_int_equal(dk_get_num_threads(), def);
    dk_scope_end();
}

/* Every value the workload produces, as raw bytes. */
typedef struct bits {
    unsigned char *data;
    size_t n;
} bits;

static void append(bits *b, dk_tensor *t)
{
    assert_non_null(t);
    size_t n = (size_t)dk_tensor_numel(t) * dk_dtype_size(dk_tensor_dtype(t));
    b->data = realloc(b->data, b->n + n);
    assert_non_null(b->data);
    assert_int_equal(dk_tensor_to_host(t, b->data + b->n, n), DK_OK);
    b->n += n;
}

/* Reductions of every kind the CPU backend parallelises, forward and
 * backward, on inputs large enough to take the parallel paths. */
static bits workload(void)
{
    bits b = {NULL, 0};
    dk_scope_begin();
    dk_rng g;
    dk_rng_seed(&g, 42);
    dk_tensor *big = dk_randn(2, (int64_t[]){512, 1024}, DK_DTYPE_F32, DK_CPU, &g);
    append(&b, dk_sum(big, NULL, 0, false));                 /* all: split range */
    /* f64 sums show differences that rounding to f32 would hide. */
    dk_tensor *big64 = dk_cast(big, DK_DTYPE_F64);
    append(&b, dk_sum(big64, NULL, 0, false));
    append(&b, dk_mean(dk_mul(big64, big64), NULL, 0, false));
    append(&b, dk_sum(big, (int[]){1}, 1, false));           /* rows */
    append(&b, dk_sum(big, (int[]){0}, 1, false));           /* columns (strided) */
    append(&b, dk_mean(big, NULL, 0, false));
    append(&b, dk_var(big, (int[]){1}, 1, 1, false));
    append(&b, dk_amax(big, NULL, 0, false));
    append(&b, dk_logsumexp(big, (int[]){1}, 1, false));
    dk_tensor *x = dk_randn(2, (int64_t[]){192, 300}, DK_DTYPE_F32, DK_CPU, &g);
    dk_tensor *w = dk_randn(2, (int64_t[]){300, 160}, DK_DTYPE_F32, DK_CPU, &g);
    assert_int_equal(dk_tensor_set_requires_grad(x, true), DK_OK);
    assert_int_equal(dk_tensor_set_requires_grad(w, true), DK_OK);
    dk_tensor *p = dk_log_softmax(dk_matmul(x, w), 1);
    append(&b, p);
    dk_tensor *t = dk_randn(2, (int64_t[]){192, 160}, DK_DTYPE_F32, DK_CPU, &g);
    assert_int_equal(dk_backward(dk_sum(dk_mul(p, t), NULL, 0, false), NULL, false), DK_OK);
    append(&b, dk_tensor_grad(x));
    append(&b, dk_tensor_grad(w));
    dk_scope_end();
    return b;
}

static void test_deterministic_bits(void **state)
{
    bool was = dk_set_deterministic(true);
    assert_true(dk_deterministic());
    int keep = dk_get_num_threads();
    assert_int_equal(dk_set_num_threads(1), DK_OK);
    bits one = workload();
    assert_int_equal(dk_set_num_threads(2), DK_OK);
    bits two = workload(), again = workload();
    assert_int_equal(one.n, two.n);
    assert_int_equal(two.n, again.n);
    assert_memory_equal(one.data, two.data, one.n);
    assert_memory_equal(two.data, again.data, two.n);
    free(one.data);
    free(two.data);
    free(again.data);
    assert_int_equal(dk_set_num_threads(keep), DK_OK);
    assert_true(dk_set_deterministic(was));
    assert_false(dk_deterministic());
}

/* ReLU keeps NaN, as PyTorch's does: a NaN turned into 0 would hide a
 * diverged model from the NaN guard. Long rows take the vector kernel. */
static void test_relu_propagates_nan(void **state)
{
    (void)state;
    for (int64_t n = 3; n <= 4099; n += 4096) {
        float *v = calloc((size_t)n, sizeof *v);
        for (int64_t i = 0; i < n; i++)
            v[i] = i % 3 == 0 ? NAN : (i % 3 == 1 ? -1.0f : 2.0f);
        dk_tensor *x = dk_from_data(1, &n, DK_DTYPE_F32, v);
        assert_int_equal(dk_tensor_set_requires_grad(x, true), DK_OK);
        dk_scope_begin();
        dk_tensor *y = dk_relu(x);
        assert_non_null(y);
        const float *o = dk_tensor_data(y);
        for (int64_t i = 0; i < n; i++) {
            if (i % 3 == 0)
                assert_true(isnan(o[i]));
            else
                assert_true(o[i] == (i % 3 == 1 ? 0.0f : 2.0f));
        }
        assert_int_equal(dk_backward(dk_sum(y, NULL, 0, false), NULL, false), DK_OK);
        dk_scope_end();
        const float *g = dk_tensor_data(dk_tensor_grad(x));
        for (int64_t i = 0; i < n; i++)
            assert_true(g[i] == (i % 3 == 1 ? 0.0f : 1.0f));
        dk_tensor_release(x);
        free(v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_to_on_the_cpu),
        cmocka_unit_test(test_device_queries),
        cmocka_unit_test(test_num_threads),
        cmocka_unit_test(test_deterministic_bits),
        cmocka_unit_test(test_relu_propagates_nan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
