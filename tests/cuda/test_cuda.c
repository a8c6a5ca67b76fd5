/* tests/cuda/test_cuda.c — the CUDA backend on a real device.
 *
 * Skips (exit 77, with the reason on stdout) when no CUDA device is usable.
 * Otherwise: device discovery, dk_to round trips of every dtype, add on the
 * GPU against the CPU bit for bit, gradients moving between devices, the
 * caching allocator's accounting, and clean errors for what the backend does
 * not do yet.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dk/dk.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CUDA0 DK_CUDA_DEV(0)

#include "dk_test.h"

/* The bytes of a CPU tensor. */
static void *host_bytes(dk_tensor *t, size_t *n)
{
    assert_non_null(t);
    *n = (size_t)dk_tensor_numel(t) * dk_dtype_size(dk_tensor_dtype(t));
    void *p = malloc(*n ? *n : 1);
    assert_int_equal(dk_tensor_to_host(t, p, *n), DK_OK);
    return p;
}

static void test_discovery(void **state)
{
    int n = dk_device_count(DK_DEVICE_CUDA);
    assert_true(n > 0);
    for (int i = 0; i < n; i++) {
        char name[256];
        int major, minor;
        assert_int_equal(dk_device_name(DK_CUDA_DEV(i), name, sizeof name), DK_OK);
        assert_int_equal(dk_device_capability(DK_CUDA_DEV(i), &major, &minor), DK_OK);
        printf("# %s, compute capability %d.%d\n", name, major, minor);
        assert_true(major >= 7);
    }
    assert_int_equal(dk_device_check(DK_CUDA_DEV(n)), DK_ERR_ARG);
    assert_contains(dk_last_error(), "does not exist");
    assert_int_equal(dk_device_synchronize(CUDA0), DK_OK);
}

static void test_round_trip(void **state)
{
    static const dk_dtype dts[] = {DK_DTYPE_F32, DK_DTYPE_F64, DK_DTYPE_I64, DK_DTYPE_U8,
                                   DK_DTYPE_BF16};
    dk_scope_begin();
    dk_rng g;
    dk_rng_seed(&g, 3);
    for (size_t k = 0; k < sizeof dts / sizeof dts[0]; k++) {
        dk_tensor *x = dk_cast(dk_mul_scalar(dk_randn(2, (int64_t[]){33, 65}, DK_DTYPE_F32, DK_CPU,
                                                      &g), 50),
                               dts[k]);
        dk_tensor *d = dk_to(x, CUDA0);
        assert_non_null(d);
        assert_int_equal(dk_tensor_device(d).type, DK_DEVICE_CUDA);
        dk_tensor *back = dk_to(d, DK_CPU);
        size_t n1, n2;
        void *a = host_bytes(x, &n1), *b = host_bytes(back, &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(a, b, n1);
        free(a);
        free(b);
    }
    /* A strided input arrives contiguous. */
    dk_tensor *x = dk_randn(2, (int64_t[]){4, 5}, DK_DTYPE_F32, DK_CPU, &g);
    dk_tensor *xt = dk_transpose(x, 0, 1);
    size_t n1, n2;
    void *a = host_bytes(dk_contiguous(xt), &n1);
    void *b = host_bytes(dk_to(dk_to(xt, CUDA0), DK_CPU), &n2);
    assert_memory_equal(a, b, n1);
    free(a);
    free(b);
    dk_scope_end();
}

static void test_add_matches_cpu(void **state)
{
    dk_scope_begin();
    dk_rng g;
    dk_rng_seed(&g, 4);
    int64_t shape[2] = {1000, 37};
    dk_tensor *a = dk_randn(2, shape, DK_DTYPE_F32, DK_CPU, &g);
    dk_tensor *b = dk_randn(2, shape, DK_DTYPE_F32, DK_CPU, &g);
    dk_tensor *gpu = dk_to(dk_add(dk_to(a, CUDA0), dk_to(b, CUDA0)), DK_CPU);
    size_t n1, n2;
    void *want = host_bytes(dk_add(a, b), &n1), *got = host_bytes(gpu, &n2);
    assert_memory_equal(want, got, n1);
    free(want);
    free(got);
    /* What the backend has no kernel for fails cleanly, naming the op. */
    dk_tensor *row = dk_to(dk_ones(1, (int64_t[]){37}, DK_DTYPE_F32, DK_CPU), CUDA0);
    assert_null(dk_add(dk_to(a, CUDA0), row));
    assert_int_equal(dk_last_status(), DK_ERR_UNSUPPORTED);
    assert_contains(dk_last_error(), "add: no forward kernel for this call on cuda");
    /* Mixing devices is an error too. */
    assert_null(dk_add(a, dk_to(b, CUDA0)));
    assert_contains(dk_last_error(), "add: inputs are on different devices");
    dk_scope_end();
}

static void test_gradient_crosses_devices(void **state)
{
    dk_scope_begin();
    dk_tensor *x = dk_full(1, (int64_t[]){5}, 1.5, DK_DTYPE_F32, DK_CPU);
    assert_int_equal(dk_tensor_set_requires_grad(x, true), DK_OK);
    dk_tensor *y = dk_to(x, CUDA0);
    assert_true(dk_tensor_requires_grad(y));
    dk_tensor *z = dk_to(dk_add(y, y), DK_CPU); /* 2x, computed on the GPU */
    assert_int_equal(dk_backward(dk_sum(z, NULL, 0, false), NULL, false), DK_OK);
    dk_tensor *gx = dk_tensor_grad(x);
    assert_int_equal(dk_tensor_device(gx).type, DK_DEVICE_CPU);
    float g[5];
    assert_int_equal(dk_tensor_to_host(gx, g, sizeof g), DK_OK);
    for (int i = 0; i < 5; i++)
        assert_true(g[i] == 2.0f);
    dk_scope_end();
}

static void test_caching_allocator(void **state)
{
    dk_memory_stats before, during, after;
    dk_memory_stats_get(CUDA0, &before);
    dk_scope_begin();
    dk_tensor *d = dk_to(dk_zeros(1, (int64_t[]){1 << 20}, DK_DTYPE_F32, DK_CPU), CUDA0);
    assert_non_null(d);
    dk_memory_stats_get(CUDA0, &during);
    assert_true(during.current >= before.current + (4u << 20));
    dk_scope_end();
    dk_memory_stats_get(CUDA0, &after);
    assert_int_equal(after.current, before.current);
    assert_true(after.cached >= 4u << 20); /* kept for the next step */
    /* The next allocation of that size reuses the block. */
    dk_scope_begin();
    assert_non_null(dk_to(dk_zeros(1, (int64_t[]){1 << 20}, DK_DTYPE_F32, DK_CPU), CUDA0));
    dk_memory_stats s;
    dk_memory_stats_get(CUDA0, &s);
    assert_true(s.cached + (4u << 20) == after.cached);
    dk_scope_end();
}

int main(void)
{
    if (dk_device_check(CUDA0) != DK_OK) {
        printf("test_cuda skipped: %s\n", dk_last_error());
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_discovery),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_add_matches_cpu),
        cmocka_unit_test(test_gradient_crosses_devices),
        cmocka_unit_test(test_caching_allocator),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
