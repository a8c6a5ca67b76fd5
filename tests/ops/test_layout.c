/* tests/ops/test_layout.c — channels-last activations (core/tensor/layout.c).
 *
 * Which ops pass the layout on and which start or end it, and that a whole
 * residual block trained through channels-last tensors computes what the
 * plain NCHW route computes: the same outputs, the same gradients of its
 * input and of every parameter. The op suite (test_ops) checks each op's fast
 * kernels against its reference on channels-last inputs; this checks the
 * chain, where layouts meet (a channels-last gradient arriving at a plain
 * tensor, a residual add of both).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "tensor/tensor_impl.h"

#include "dk_test.h"

static dk_tensor *randn(int ndim, const int64_t *shape, uint64_t seed)
{
    dk_rng rng;
    dk_rng_seed(&rng, seed);
    return dk_randn(ndim, shape, DK_DTYPE_F32, DK_CPU, &rng);
}

/* The same values laid out channels-last. */
static dk_tensor *to_channels_last(dk_tensor *x)
{
    return dk_permute(dk_contiguous(dk_permute(x, 4, (int[]){0, 2, 3, 1})), 4,
                      (int[]){0, 3, 1, 2});
}

static bool cl(const dk_tensor *t)
{
    return t && dkh_is_strictly_channels_last(t);
}

static void test_propagation(void **state)
{
    dk_scope_begin();
    /* Grey images: plain (N, 1, H, W), which is also channels-last. */
    dk_tensor *img = randn(4, (int64_t[]){2, 1, 9, 9}, 1);
    dk_tensor *w = randn(4, (int64_t[]){8, 1, 3, 3}, 2);
    dk_tensor *y = dk_conv2d(img, w, NULL, NULL, (int64_t[]){1, 1}, NULL, 1);
    assert_true(cl(y)); /* the first convolution starts the chain */
    dk_tensor *g = dk_ones(1, (int64_t[]){8}, DK_DTYPE_F32, DK_CPU);
    dk_tensor *b = dk_zeros(1, (int64_t[]){8}, DK_DTYPE_F32, DK_CPU);
    dk_tensor *bn = dk_batch_norm(y, g, b, NULL, NULL, true, 0.1, 1e-5);
    assert_true(cl(bn));
    dk_tensor *r = dk_relu(bn);
    assert_true(cl(r));
    assert_true(cl(dk_add(r, y)));
    /* A broadcast operand first: the output follows the full-size input. */
    assert_true(cl(dk_mul(dk_reshape(g, 3, (int64_t[]){8, 1, 1}), r)));
    dk_tensor *p = dk_max_pool2d(r, (int64_t[]){2, 2}, NULL, NULL, NULL, false);
    assert_true(cl(p));
    assert_true(cl(dk_cast(p, DK_DTYPE_F64)));
    dk_tensor *w2 = randn(4, (int64_t[]){4, 8, 3, 3}, 3);
    assert_true(cl(dk_conv2d(p, w2, NULL, NULL, NULL, NULL, 1)));
    /* Where it ends: reductions, reshapes that cannot be views, contiguous. */
    dk_tensor *m = dk_mean(p, (int[]){2, 3}, 2, false);
    assert_true(dk_tensor_is_contiguous(m));
    dk_tensor *f = dk_flatten(p, 1, -1);
    assert_true(dk_tensor_is_contiguous(f));
    assert_true(dk_tensor_is_contiguous(dk_contiguous(p)));
    /* Flattening reads the logical (C, H, W) order. */
    float fv[8 * 4 * 4], p1[8 * 4 * 4];
    assert_int_equal(dk_tensor_to_host(dk_select(f, 0, 1), fv, sizeof fv), DK_OK);
    assert_int_equal(dk_tensor_to_host(dk_select(dk_contiguous(p), 0, 1), p1, sizeof p1), DK_OK);
    assert_memory_equal(p1, fv, sizeof fv);
    /* A plain multi-channel input keeps everything plain. */
    dk_tensor *x3 = randn(4, (int64_t[]){2, 3, 9, 9}, 4);
    dk_tensor *w3 = randn(4, (int64_t[]){8, 3, 3, 3}, 5);
    dk_tensor *y3 = dk_conv2d(x3, w3, NULL, NULL, NULL, NULL, 1);
    assert_true(dk_tensor_is_contiguous(y3));
    assert_true(dk_tensor_is_contiguous(dk_relu(y3)));
    dk_scope_end();
}

/* One residual block: conv-bn-relu-conv-bn, + x, relu, pooled to logits. */
typedef struct block {
    dk_tensor *w1, *w2, *g1, *b1, *g2, *b2, *fc;
} block;

static dk_tensor *block_loss(const block *k, dk_tensor *x)
{
    const int64_t pad[2] = {1, 1};
    dk_tensor *y = dk_conv2d(x, k->w1, NULL, NULL, pad, NULL, 1);
    y = dk_relu(dk_batch_norm(y, k->g1, k->b1, NULL, NULL, true, 0.1, 1e-5));
    y = dk_conv2d(y, k->w2, NULL, NULL, pad, NULL, 1);
    y = dk_batch_norm(y, k->g2, k->b2, NULL, NULL, true, 0.1, 1e-5);
    y = dk_relu(dk_add(y, x));
    y = dk_max_pool2d(y, (int64_t[]){2, 2}, NULL, NULL, NULL, false);
    dk_tensor *logits = dk_matmul(dk_mean(y, (int[]){2, 3}, 2, false), k->fc);
    dk_tensor *target = dk_arange(0, 4, 1, DK_DTYPE_I64, DK_CPU);
    return dk_cross_entropy(logits, target, NULL, -100, 0.0, DK_REDUCTION_MEAN);
}

static void expect_close(const dk_tensor *a, const dk_tensor *b, double tol, const char *what)
{
    assert_non_null(a);
    assert_non_null(b);
    assert_true(dkh_same_shape(a, b));
    int64_t n = dkh_numel(a->ndim, a->shape);
    for (int64_t i = 0; i < n; i++) {
        double x = dkh_load(dkh_base(a), a->dtype, dkh_offset_of(i, a->ndim, a->shape, a->strides));
        double y = dkh_load(dkh_base(b), b->dtype, dkh_offset_of(i, b->ndim, b->shape, b->strides));
        if (!(fabs(x - y) <= tol * (1 + fabs(y)))) {
            print_error("%s: element %lld: %.9g vs %.9g\n", what, (long long)i, x, y);
            fail();
        }
    }
}

static void test_block_matches_plain(void **state)
{
    dk_scope_begin();
    const int64_t C = 16;
    block k = {randn(4, (int64_t[]){C, C, 3, 3}, 10), randn(4, (int64_t[]){C, C, 3, 3}, 11),
               randn(1, &C, 12), randn(1, &C, 13), randn(1, &C, 14), randn(1, &C, 15),
               randn(2, (int64_t[]){C, 5}, 16)};
    dk_tensor *params[] = {k.w1, k.w2, k.g1, k.b1, k.g2, k.b2, k.fc};
    enum { NP = sizeof params / sizeof params[0] };
    for (int i = 0; i < NP; i++)
        assert_int_equal(dk_tensor_set_requires_grad(params[i], true), DK_OK);
    dk_tensor *x = randn(4, (int64_t[]){4, C, 10, 10}, 17);
    dk_tensor *xcl = to_channels_last(x);
    assert_true(cl(xcl));
    dk_tensor *routes[2] = {x, xcl}, *loss[2], *gin[2], *gp[2][NP];
    for (int r = 0; r < 2; r++) {
        assert_int_equal(dk_tensor_set_requires_grad(routes[r], true), DK_OK);
        loss[r] = block_loss(&k, routes[r]);
        assert_non_null(loss[r]);
        assert_int_equal(dk_backward(loss[r], NULL, false), DK_OK);
        gin[r] = dk_tensor_grad(routes[r]); /* a leaf's .grad is contiguous either way */
        for (int i = 0; i < NP; i++) {
            gp[r][i] = dk_copy(dk_tensor_grad(params[i]));
            dk_tensor_zero_grad(params[i]);
        }
    }
    expect_close(loss[1], loss[0], 1e-5, "loss");
    expect_close(gin[1], gin[0], 1e-4, "input gradient");
    for (int i = 0; i < NP; i++)
        expect_close(gp[1][i], gp[0][i], 1e-4, "parameter gradient");
    dk_scope_end();
}

/* Channels-last batch norm sums in chunks fixed by the shape: the same bits
 * with 1 and 2 threads. */
static void test_channels_last_bits_do_not_depend_on_threads(void **state)
{
    int was = dk_get_num_threads();
    dk_scope_begin();
    dk_tensor *x = to_channels_last(randn(4, (int64_t[]){16, 24, 20, 20}, 20));
    dk_tensor *w = randn(1, (int64_t[]){24}, 21), *b = randn(1, (int64_t[]){24}, 22);
    assert_int_equal(dk_tensor_set_requires_grad(x, true), DK_OK);
    static float out[2][16 * 24 * 20 * 20], grad[2][16 * 24 * 20 * 20];
    for (int t = 0; t < 2; t++) {
        assert_int_equal(dk_set_num_threads(t + 1), DK_OK);
        dk_tensor *y = dk_batch_norm(x, w, b, NULL, NULL, true, 0.1, 1e-5);
        assert_true(cl(y));
        dk_tensor *l = dk_sum(dk_mul(y, y), NULL, 0, false);
        assert_int_equal(dk_backward(l, NULL, false), DK_OK);
        assert_int_equal(dk_tensor_to_host(y, out[t], sizeof out[t]), DK_OK);
        assert_int_equal(dk_tensor_to_host(dk_tensor_grad(x), grad[t], sizeof grad[t]), DK_OK);
        dk_tensor_zero_grad(x);
    }
    assert_memory_equal(out[0], out[1], sizeof out[0]);
    assert_memory_equal(grad[0], grad[1], sizeof grad[0]);
    dk_scope_end();
    assert_int_equal(dk_set_num_threads(was), DK_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_propagation),
        cmocka_unit_test(test_block_matches_plain),
        cmocka_unit_test(test_channels_last_bits_do_not_depend_on_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
