/* tests/ops/test_memory.c — a long training loop neither leaks nor grows.
 *
 * A small conv net (conv2d + batch_norm + relu + max_pool2d + linear +
 * cross_entropy) trains for 1000 steps of forward, backward and a plain SGD
 * update written on the parameters' storage, the way an optimizer in the host
 * does it. After every step the tensor allocator's bytes in use
 * (dk_memory_stats_get) and the bytes taken through dk_malloc (tape nodes,
 * storages, oneDNN's primitive cache) must equal those after step 1, which
 * made the gradients and cached the primitives: a step that keeps anything
 * is a leak. The allocator's peak must not move after step 2: a step that
 * needs more each time is growth. The shapes are
 * tiny so the loop runs in seconds, also under AddressSanitizer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>

#include "tensor/tensor_impl.h"

enum { STEPS = 1000, N = 4, CIN = 2, COUT = 4, HW = 8, CLASSES = 3 };

/* A retained leaf that requires grad, values U(-b, b). */
static dk_tensor *param(int ndim, const int64_t *shape, double b, dk_rng *r)
{
    dk_tensor *u = dk_rand(ndim, shape, DK_DTYPE_F32, DK_CPU, r);
    dk_tensor *t = dk_add_scalar(dk_mul_scalar(u, 2 * b), -b);
    assert_non_null(t);
    assert_int_equal(dk_tensor_set_requires_grad(t, true), DK_OK);
    return dk_tensor_retain(t);
}

static void sgd(dk_tensor *p, float lr)
{
    dk_tensor *g = dk_tensor_grad(p);
    assert_non_null(g);
    float *pd = dk_tensor_data(p);
    const float *gd = dk_tensor_data(g);
    for (int64_t i = 0; i < dk_tensor_numel(p); i++)
        pd[i] -= lr * gd[i];
}

static void test_training_loop_is_flat(void **state)
{
    (void)state;
    dk_rng r;
    dk_rng_seed(&r, 11);
    bool was = dk_grad_set_enabled(false);
    dk_scope_begin();
    dk_tensor *w = param(4, (int64_t[]){COUT, CIN, 3, 3}, 0.3, &r);
    dk_tensor *cb = param(1, (int64_t[]){COUT}, 0.3, &r);
    dk_tensor *gamma = dk_full(1, (int64_t[]){COUT}, 1.0, DK_DTYPE_F32, DK_CPU);
    dk_tensor *beta = dk_zeros(1, (int64_t[]){COUT}, DK_DTYPE_F32, DK_CPU);
    assert_int_equal(dk_tensor_set_requires_grad(gamma, true), DK_OK);
    assert_int_equal(dk_tensor_set_requires_grad(beta, true), DK_OK);
    dk_tensor_retain(gamma);
    dk_tensor_retain(beta);
    dk_tensor *rm = dk_tensor_retain(dk_zeros(1, (int64_t[]){COUT}, DK_DTYPE_F32, DK_CPU));
    dk_tensor *rv = dk_tensor_retain(dk_full(1, (int64_t[]){COUT}, 1.0, DK_DTYPE_F32, DK_CPU));
    int64_t feat = COUT * (HW / 2) * (HW / 2);
    dk_tensor *fw = param(2, (int64_t[]){CLASSES, feat}, 1 / sqrt((double)feat), &r);
    dk_tensor *fb = param(1, (int64_t[]){CLASSES}, 1 / sqrt((double)feat), &r);
    dk_tensor *x = dk_tensor_retain(
        dk_randn(4, (int64_t[]){N, CIN, HW, HW}, DK_DTYPE_F32, DK_CPU, &r));
    dk_tensor *y = dk_tensor_retain(dk_cast(
        dk_mul_scalar(dk_rand(1, (int64_t[]){N}, DK_DTYPE_F32, DK_CPU, &r), CLASSES - 0.001),
        DK_DTYPE_I64));
    dk_scope_end();
    dk_grad_set_enabled(was);
    dk_tensor *params[] = {w, cb, gamma, beta, fw, fb};
    enum { NP = sizeof params / sizeof *params };

    dk_memory_stats step1 = {0, 0, 0};
    size_t host_bytes = 0, peak2 = 0;
    double first_loss = 0, loss = 0;
    for (int step = 0; step < STEPS; step++) {
        dk_scope_begin();
        for (int i = 0; i < NP; i++)
            dk_tensor_zero_grad(params[i]);
        dk_tensor *h = dk_conv2d(x, w, cb, (int64_t[]){1, 1}, (int64_t[]){1, 1}, NULL, 1);
        h = dk_relu(dk_batch_norm(h, gamma, beta, rm, rv, true, 0.1, 1e-5));
        h = dk_max_pool2d(h, (int64_t[]){2, 2}, NULL, NULL, NULL, false); /* (N, COUT, 4, 4) */
        dk_tensor *logits = dk_linear(dk_flatten(h, 1, -1), fw, fb);
        dk_tensor *l = dk_cross_entropy(logits, y, NULL, -100, 0.0, DK_REDUCTION_MEAN);
        assert_int_equal(dk_backward(l, NULL, false), DK_OK);
        loss = dk_tensor_item(l);
        for (int i = 0; i < NP; i++)
            sgd(params[i], 0.05f);
        dk_scope_end();
        dk_memory_stats now;
        dk_memory_stats_get(DK_CPU, &now);
        if (step == 0) {
            step1 = now;
            host_bytes = dkh_mem_current();
            first_loss = loss;
        } else if (now.current != step1.current || dkh_mem_current() != host_bytes) {
            fail_msg("step %d: allocator %zu bytes, dk_malloc %zu; after step 1: %zu, %zu",
                     step + 1, now.current, dkh_mem_current(), step1.current, host_bytes);
        }
        if (step == 1)
            peak2 = now.peak;
    }
    /* The peak may rise once, in step 2: from then on the gradients exist
     * for the whole step, while step 1 made them only during its backward. */
    dk_memory_stats last;
    dk_memory_stats_get(DK_CPU, &last);
    assert_int_equal(last.peak, peak2);
    assert_true(isfinite(loss) && loss < first_loss); /* it trained */

    for (int i = 0; i < NP; i++)
        dk_tensor_release(params[i]);
    dk_tensor_release(rm);
    dk_tensor_release(rv);
    dk_tensor_release(x);
    dk_tensor_release(y);
    dk_memory_stats end;
    dk_memory_stats_get(DK_CPU, &end);
    assert_int_equal(end.current, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_training_loop_is_flat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
