/* tests/ops/test_autograd.c — the tape, scopes and memory.
 *
 * Gradients of whole small graphs against values worked out by hand: fan-out
 * accumulation, a parameter used twice, gradients through views of a leaf,
 * no-grad regions, detach, retain_graph and the error for a graph used twice
 * without it; scope ownership; and a training-like loop whose allocator and
 * dk_malloc byte counts after step N equal those after step 1.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "tensor/tensor_impl.h"

static dk_tensor *vec(int64_t n, const double *v)
{
    return dk_from_data(1, &n, DK_DTYPE_F64, v);
}

static double at(const dk_tensor *t, int64_t i)
{
    return dkh_load(dkh_base(t), t->dtype, dkh_offset_of(i, t->ndim, t->shape, t->strides));
}

static dk_tensor *leaf(int64_t n, const double *v)
{
    dk_tensor *x = vec(n, v);
    assert_int_equal(dk_tensor_set_requires_grad(x, true), DK_OK);
    return x;
}

/* y = x*x + exp(x) uses x three times: the gradients add up. */
static void test_fan_out(void **state)
{
    dk_scope_begin();
    dk_tensor *x = leaf(3, (double[]){0.5, -1, 2});
    dk_tensor *y = dk_sum(dk_add(dk_mul(x, x), dk_exp(x)), NULL, 0, false);
    assert_int_equal(dk_backward(y, NULL, false), DK_OK);
    dk_tensor *g = dk_tensor_grad(x);
    for (int i = 0; i < 3; i++) {
        double xv = at(x, i);
        assert_true(fabs(at(g, i) - (2 * xv + exp(xv))) < 1e-12);
    }
    /* A second backward over a new graph accumulates into the same .grad. */
    dk_tensor *y2 = dk_sum(x, NULL, 0, false);
    assert_int_equal(dk_backward(y2, NULL, false), DK_OK);
    assert_ptr_equal(dk_tensor_grad(x), g);
    assert_true(fabs(at(g, 0) - (2 * 0.5 + exp(0.5) + 1)) < 1e-12);
    dk_tensor_zero_grad(x);
    assert_true(at(dk_tensor_grad(x), 0) == 0);
    dk_scope_end();
}

/* One weight in two layers (shared parameter), through linear. */
static void test_shared_parameter(void **state)
{
    dk_scope_begin();
    dk_tensor *w = dk_from_data(2, (int64_t[]){2, 2}, DK_DTYPE_F64, (double[]){1, 2, 3, 4});
    assert_int_equal(dk_tensor_set_requires_grad(w, true), DK_OK);
    dk_tensor *x = vec(2, (double[]){1, 1});
    dk_tensor *h = dk_linear(x, w, NULL);            /* W x = (3, 7) */
    dk_tensor *o = dk_sum(dk_linear(h, w, NULL), NULL, 0, false); /* 1^T W W x */
    assert_true(dk_tensor_item(o) == 3 + 14 + 9 + 28);
    assert_int_equal(dk_backward(o, NULL, false), DK_OK);
    /* d(1^T W W x)/dW = 1 (W x)^T + (W^T 1) x^T = [[3,7],[3,7]] + [[4,4],[6,6]] */
    dk_tensor *g = dk_tensor_grad(w);
    double want[4] = {7, 11, 9, 13};
    for (int i = 0; i < 4; i++)
        assert_true(fabs(at(g, i) - want[i]) < 1e-12);
    dk_scope_end();
}

/* Gradients through views reach the leaf the views were taken from. */
static void test_views_of_leaves(void **state)
{
    dk_scope_begin();
    dk_tensor *x = leaf(6, (double[]){1, 2, 3, 4, 5, 6});
    dk_tensor *m = dk_reshape(x, 2, (int64_t[]){2, 3});
    dk_tensor *a = dk_select(m, 0, 1);                 /* (4, 5, 6) */
    dk_tensor *b = dk_slice(dk_transpose(m, 0, 1), 0, 0, 3, 2); /* rows 0, 2 of x^T: (2, 2) */
    dk_tensor *loss = dk_add(dk_sum(dk_mul(a, a), NULL, 0, false), dk_sum(b, NULL, 0, false));
    assert_int_equal(dk_backward(loss, NULL, false), DK_OK);
    double want[6] = {1, 0, 1, 2 * 4 + 1, 2 * 5, 2 * 6 + 1};
    for (int i = 0; i < 6; i++)
        assert_true(fabs(at(dk_tensor_grad(x), i) - want[i]) < 1e-12);
    dk_scope_end();
}

static void test_no_grad_and_detach(void **state)
{
    dk_scope_begin();
    dk_tensor *x = leaf(2, (double[]){1, 2});
    bool was = dk_grad_set_enabled(false);
    assert_true(was);
    dk_tensor *y = dk_mul(x, x);
    assert_false(dk_tensor_requires_grad(y));
    assert_int_equal(dk_backward(dk_sum(y, NULL, 0, false), NULL, false), DK_ERR_ARG);
    assert_non_null(strstr(dk_last_error(), "does not require grad"));
    dk_grad_set_enabled(was);
    assert_true(dk_grad_enabled());
    /* detach cuts the tape: only the first factor carries a gradient. */
    dk_tensor *z = dk_sum(dk_mul(x, dk_detach(x)), NULL, 0, false);
    assert_int_equal(dk_backward(z, NULL, false), DK_OK);
    assert_true(at(dk_tensor_grad(x), 1) == 2);
    /* Integer tensors and non-leaves cannot be gradient targets. */
    dk_tensor *i = dk_zeros(1, (int64_t[]){2}, DK_DTYPE_I64, DK_CPU);
    assert_int_equal(dk_tensor_set_requires_grad(i, true), DK_ERR_ARG);
    assert_int_equal(dk_tensor_set_requires_grad(dk_exp(x), true), DK_ERR_ARG);
    assert_non_null(strstr(dk_last_error(), "made by exp"));
    dk_scope_end();
}

static void test_graph_used_twice(void **state)
{
    dk_scope_begin();
    dk_tensor *x = leaf(2, (double[]){1, 2});
    dk_tensor *h = dk_tanh(x);
    dk_tensor *y = dk_sum(h, NULL, 0, false);
    assert_int_equal(dk_backward(y, NULL, true), DK_OK); /* retained: may run again */
    assert_int_equal(dk_backward(y, NULL, false), DK_OK);
    assert_true(fabs(at(dk_tensor_grad(x), 0) - 2 * (1 - pow(tanh(1), 2))) < 1e-12);
    assert_int_equal(dk_backward(y, NULL, false), DK_ERR_RUNTIME);
    assert_non_null(strstr(dk_last_error(), "already freed"));
    assert_non_null(strstr(dk_last_error(), "retain_graph"));
    /* A second loss over the freed part of the graph fails the same way. */
    assert_int_equal(dk_backward(dk_sum(dk_mul(h, h), NULL, 0, false), NULL, false),
                     DK_ERR_RUNTIME);
    /* Non-scalar roots need their gradient; NULL roots keep the first cause. */
    dk_tensor *v = dk_exp(x);
    assert_int_equal(dk_backward(v, NULL, false), DK_ERR_ARG);
    assert_int_equal(dk_backward(v, dk_ones(1, (int64_t[]){2}, DK_DTYPE_F64, DK_CPU), false),
                     DK_OK);
    dk_clear_error();
    dk_tensor *bad = dk_sum(dk_add(x, dk_zeros(1, (int64_t[]){3}, DK_DTYPE_F64, DK_CPU)), NULL,
                            0, false);
    assert_null(bad);
    assert_int_equal(dk_backward(bad, NULL, false), DK_ERR_SHAPE);
    assert_non_null(strstr(dk_last_error(), "add: shapes"));
    dk_scope_end();
}

/* Loss and w's gradient (into gw[108]) through conv -> batch_norm -> relu
 * (in place or not) -> squared and summed, in a scope of its own; *held gets
 * the bytes the forward left alive. */
static double bn_relu_grad(dk_tensor *x, dk_tensor *w, bool inplace, double *gw, size_t *held)
{
    dk_memory_stats m0, m1;
    dk_memory_stats_get(DK_CPU, &m0);
    dk_scope_begin();
    dk_tensor *h = dk_batch_norm(dk_conv2d(x, w, NULL, NULL, NULL, NULL, 1), NULL, NULL, NULL,
                                 NULL, true, 0.1, 1e-5);
    dk_tensor *y = inplace ? dk_relu_(h) : dk_relu(h);
    if (inplace)
        assert_ptr_equal(y, h); /* the same tensor, now relu's output */
    dk_tensor *l = dk_sum(dk_mul(y, y), NULL, 0, false);
    dk_memory_stats_get(DK_CPU, &m1);
    *held = m1.current - m0.current;
    assert_int_equal(dk_backward(l, NULL, false), DK_OK);
    double loss = at(l, 0);
    for (int64_t i = 0; i < 108; i++)
        gw[i] = at(dk_tensor_grad(w), i);
    dk_tensor_zero_grad(w);
    dk_scope_end();
    return loss;
}

/* dk_relu_ gives relu's values and gradients, keeps one activation less,
 * and refuses what would give wrong gradients. */
static void test_relu_inplace(void **state)
{
    dk_scope_begin();
    dk_rng r;
    dk_rng_seed(&r, 7);
    int64_t xs[4] = {2, 3, 6, 5}, ws[4] = {4, 3, 3, 3};
    dk_tensor *x = dk_randn(4, xs, DK_DTYPE_F64, DK_CPU, &r);
    dk_tensor *w = dk_randn(4, ws, DK_DTYPE_F64, DK_CPU, &r);
    assert_int_equal(dk_tensor_set_requires_grad(w, true), DK_OK);
    for (int layout = 0; layout < 2; layout++) {
        /* The same values laid out channels-last. */
        dk_tensor *xin = layout ? dk_permute(dk_contiguous(dk_permute(x, 4, (int[]){0, 2, 3, 1})),
                                             4, (int[]){0, 3, 1, 2})
                                : x;
        double g0[108], g1[108];
        size_t held0, held1;
        double l0 = bn_relu_grad(xin, w, false, g0, &held0);
        double l1 = bn_relu_grad(xin, w, true, g1, &held1);
        assert_true(l0 == l1 && l0 > 0);
        for (int64_t i = 0; i < 108; i++)
            assert_true(g0[i] == g1[i]);
        /* The out-of-place forward also kept batch_norm's output, (2, 4, 4, 3). */
        assert_true(held0 >= held1 + 2 * 4 * 4 * 3 * sizeof(double));
    }

    /* In no-grad mode it just writes. */
    bool was = dk_grad_set_enabled(false);
    dk_tensor *v = vec(3, (double[]){-1, 2, -3});
    assert_ptr_equal(dk_relu_(v), v);
    assert_true(at(v, 0) == 0 && at(v, 1) == 2 && at(v, 2) == 0);
    dk_grad_set_enabled(was);

    /* A leaf that requires grad, and a view. */
    dk_tensor *lf = leaf(3, (double[]){1, -2, 3});
    assert_null(dk_relu_(lf));
    assert_non_null(strstr(dk_last_error(), "relu_: input (3,) f64 is a leaf that requires grad"));
    assert_true(at(lf, 1) == -2); /* untouched */
    dk_clear_error();
    dk_tensor *h = dk_mul_scalar(lf, 2);
    dk_tensor *hv = dk_reshape(h, 2, (int64_t[]){3, 1});
    assert_null(dk_relu_(hv));
    assert_non_null(strstr(dk_last_error(), "shares its storage with another tensor"));
    assert_null(dk_relu_(NULL)); /* keeps the first cause */
    assert_non_null(strstr(dk_last_error(), "shares its storage"));
    dk_clear_error();
    /* exp's node keeps its output for the gradient: writing into it is refused. */
    dk_tensor *e = dk_exp(h);
    assert_null(dk_relu_(e));
    assert_non_null(strstr(dk_last_error(), "or the output an op such as exp saved"));
    dk_clear_error();

    /* mul saved h before relu_ overwrote it: its backward would read the new
     * values, so dk_backward refuses and names the op. */
    dk_tensor *h2 = dk_mul_scalar(lf, 3);
    dk_tensor *p = dk_mul(h2, lf);
    assert_ptr_equal(dk_relu_(h2), h2);
    assert_int_equal(dk_backward(dk_sum(dk_add(p, h2), NULL, 0, false), NULL, false),
                     DK_ERR_RUNTIME);
    assert_non_null(strstr(dk_last_error(), "backward of mul: its input 0 (3,) f64 was changed "
                                            "by an in-place op after mul used it"));
    dk_clear_error();
    dk_scope_end();
}

/* Retained tensors outlive their scope; everything else is released. */
static void test_scopes(void **state)
{
    dk_memory_stats before, after;
    dk_memory_stats_get(DK_CPU, &before);
    dk_tensor *kept;
    dk_scope_begin();
    dk_tensor *a = dk_ones(1, (int64_t[]){1000}, DK_DTYPE_F32, DK_CPU);
    dk_scope_begin();
    kept = dk_tensor_retain(dk_mul_scalar(a, 3));
    (void)dk_exp(a);
    dk_scope_end();
    dk_scope_end();
    dk_scope_begin();
    assert_true(dk_tensor_item(dk_select(kept, 0, 5)) == 3);
    dk_scope_end();
    dk_memory_stats_get(DK_CPU, &after);
    assert_true(after.current == before.current + 4096); /* 4000 rounded to its class */
    dk_tensor_release(kept);
    dk_memory_stats_get(DK_CPU, &after);
    assert_int_equal(after.current, before.current);
    assert_true(after.peak >= before.current + 3 * 4096);
    assert_true(after.cached >= 4096);
}

/* A small MLP trained with plain SGD: memory after step N equals step 1. */
static void test_memory_steady(void **state)
{
    dk_rng r;
    dk_rng_seed(&r, 1);
    dk_scope_begin();
    dk_tensor *w1 = dk_mul_scalar(dk_randn(2, (int64_t[]){16, 8}, DK_DTYPE_F32, DK_CPU, &r), 0.3);
    dk_tensor *b1 = dk_zeros(1, (int64_t[]){16}, DK_DTYPE_F32, DK_CPU);
    dk_tensor *w2 = dk_mul_scalar(dk_randn(2, (int64_t[]){4, 16}, DK_DTYPE_F32, DK_CPU, &r), 0.3);
    dk_tensor *params[3] = {dk_tensor_retain(w1), dk_tensor_retain(b1), dk_tensor_retain(w2)};
    dk_scope_end(); /* the parameters live on through the references taken */
    for (int i = 0; i < 3; i++)
        assert_int_equal(dk_tensor_set_requires_grad(params[i], true), DK_OK);
    size_t host_bytes = 0;
    dk_memory_stats step1 = {0, 0, 0};
    size_t peak2 = 0;
    double first_loss = 0, loss_v = 0;
    for (int step = 0; step < 60; step++) {
        dk_scope_begin();
        dk_tensor *x = dk_randn(2, (int64_t[]){32, 8}, DK_DTYPE_F32, DK_CPU, &r);
        dk_tensor *target = dk_sum(dk_slice(x, 1, 0, 4, 1), (int[]){1}, 1, true); /* (32, 1) */
        dk_tensor *h = dk_gelu(dk_linear(x, w1, b1));                            /* (32, 16) */
        dk_tensor *logp = dk_log_softmax(dk_linear(h, w2, NULL), -1);            /* (32, 4) */
        dk_tensor *pred = dk_sum(dk_mul(dk_exp(logp), dk_arange(0, 4, 1, DK_DTYPE_F32, DK_CPU)),
                                 (int[]){1}, 1, true);
        dk_tensor *d = dk_sub(pred, target);
        dk_tensor *loss = dk_mean(dk_mul(d, d), NULL, 0, false);
        assert_non_null(loss);
        loss_v = dk_tensor_item(loss);
        if (step == 0)
            first_loss = loss_v;
        for (int i = 0; i < 3; i++)
            dk_tensor_zero_grad(params[i]);
        assert_int_equal(dk_backward(loss, NULL, false), DK_OK);
        /* SGD without autograd: p = p - lr * grad, written into p's storage. */
        bool was = dk_grad_set_enabled(false);
        for (int i = 0; i < 3; i++) {
            dk_tensor *upd = dk_sub(params[i], dk_mul_scalar(dk_tensor_grad(params[i]), 0.05));
            assert_int_equal(dk_tensor_to_host(upd, dk_tensor_data(params[i]),
                                               (size_t)dk_tensor_numel(upd) * 4),
                             DK_OK);
        }
        dk_grad_set_enabled(was);
        dk_scope_end();
        dk_memory_stats now;
        dk_memory_stats_get(DK_CPU, &now);
        /* Bytes after each step equal step 1's. The peak is set by step 2, the
         * first that starts with the parameters' gradients allocated (step 1
         * makes them during its backward, after gradients it no longer needs
         * were freed), and never grows after. */
        if (step == 0) {
            step1 = now;
            host_bytes = dkh_mem_current();
        } else {
            assert_int_equal(now.current, step1.current);
            if (step == 1)
                peak2 = now.peak;
            assert_int_equal(now.peak, peak2);
            assert_int_equal(dkh_mem_current(), host_bytes);
        }
    }
    assert_true(loss_v < first_loss); /* it learned something */
    for (int i = 0; i < 3; i++)
        dk_tensor_release(params[i]);
    dk_memory_stats end;
    dk_memory_stats_get(DK_CPU, &end);
    assert_int_equal(end.current, 0);
    dkh_allocator_empty_cache();
    dk_memory_stats_get(DK_CPU, &end);
    assert_int_equal(end.cached, 0);
}

/* Without a scope the caller owns results. */
static void test_no_scope_ownership(void **state)
{
    size_t before = dkh_mem_current();
    dk_tensor *a = dk_full(1, (int64_t[]){3}, 2, DK_DTYPE_F64, DK_CPU);
    dk_tensor *b = dk_mul(a, a);
    assert_true(at(b, 2) == 4);
    dk_tensor_release(b);
    dk_tensor_release(a);
    dk_tensor_release(NULL);
    assert_int_equal(dkh_mem_current(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fan_out),
        cmocka_unit_test(test_shared_parameter),
        cmocka_unit_test(test_views_of_leaves),
        cmocka_unit_test(test_no_grad_and_detach),
        cmocka_unit_test(test_graph_used_twice),
        cmocka_unit_test(test_relu_inplace),
        cmocka_unit_test(test_scopes),
        cmocka_unit_test(test_memory_steady),
        cmocka_unit_test(test_no_scope_ownership),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
