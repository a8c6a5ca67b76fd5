/* tests/ops/test_bf16.c — bf16 computation and autocast, and the parallel paths
 * of the per-sample normalisation kernels.
 *
 * The op suite (test_ops.c) checks every op in f64 and f32 on small shapes.
 * This file adds what it cannot: bf16 convolution and matmul through oneDNN
 * against the reference kernels at bf16 tolerances (both round the result to
 * bf16 once, so they differ by about one bf16 step of the largest value);
 * autocast on a small conv + linear net against the same net in f32, its
 * parameter gradients staying f32, and nothing changing outside the scope;
 * and layer/group norm and the bf16 cast on shapes big enough to run on
 * every thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include <dk/nn.h>

#include "tensor/tensor_impl.h"

/* From core/backends/cpu/dnnl_common.c (its header needs oneDNN's). */
long dkh_dnnl_primitives_created(void);
bool dkh_dnnl_bf16_native(void);

static double elem(const dk_tensor *t, int64_t i)
{
    return dkh_load(dkh_base(t), t->dtype, dkh_offset_of(i, t->ndim, t->shape, t->strides));
}

/* max |a - b| / max(1, max |b|): the error relative to the tensor's scale,
 * which is what rounding a sum of products to bf16 bounds. */
static double scaled_diff(const dk_tensor *a, const dk_tensor *b)
{
    assert_non_null(a);
    assert_non_null(b);
    assert_true(dkh_same_shape(a, b));
    int64_t n = dkh_numel(a->ndim, a->shape);
    double worst = 0, scale = 1;
    for (int64_t i = 0; i < n; i++) {
        double x = elem(a, i), y = elem(b, i);
        worst = fmax(worst, fabs(x - y));
        scale = fmax(scale, fabs(y));
        if (isnan(x) != isnan(y))
            return INFINITY;
    }
    return worst / scale;
}

static dk_tensor *randn(dk_rng *r, int ndim, const int64_t *shape, dk_dtype dt)
{
    return dk_cast(dk_randn(ndim, shape, DK_DTYPE_F32, DK_CPU, r), dt);
}

static dk_tensor *reference(dk_tensor *(*fn)(dk_tensor *const *), dk_tensor *const *in)
{
    bool was = dkh_force_reference(true);
    dk_tensor *y = fn(in);
    dkh_force_reference(was);
    return y;
}

static dk_tensor *f_conv(dk_tensor *const *in)
{
    return dk_conv2d(in[0], in[1], NULL, NULL, (int64_t[]){1, 1}, NULL, 1);
}

static dk_tensor *f_conv_s2(dk_tensor *const *in)
{
    return dk_conv2d(in[0], in[1], NULL, (int64_t[]){2, 2}, (int64_t[]){1, 1}, NULL, 1);
}

static dk_tensor *f_bwd_data(dk_tensor *const *in)
{
    dkh_args a = {.nv = 6, .v = {1, 1, 1, 1, 1, 1}, .i = {1, 9, 9}};
    return dkh_op_run(DKH_OP_CONV2D_BWD_DATA, &a, 2, in);
}

static dk_tensor *f_bwd_weight(dk_tensor *const *in)
{
    dkh_args a = {.nv = 6, .v = {1, 1, 1, 1, 1, 1}, .i = {1, 3, 3}};
    return dkh_op_run(DKH_OP_CONV2D_BWD_WEIGHT, &a, 2, in);
}

static dk_tensor *f_matmul(dk_tensor *const *in)
{
    return dk_matmul(in[0], in[1]);
}

static dk_tensor *f_linear(dk_tensor *const *in)
{
    return dk_linear(in[0], in[1], NULL); /* a transposed weight operand */
}

/* bf16 kernels agree with the reference within bf16 rounding and the output
 * stays bf16. Where the CPU has bf16 instructions they must run through
 * oneDNN (primitives get created); elsewhere oneDNN makes no bf16 primitive
 * and the ops must still be right, on the reference kernels. */
static void test_bf16_kernels(void **state)
{
    (void)state;
    bool native = dkh_dnnl_bf16_native();
    if (!native)
        print_message("this CPU has no bf16 instructions oneDNN uses: checking the reference "
                      "fallback only\n");
    dk_scope_begin();
    dk_rng r;
    dk_rng_seed(&r, 7);
    struct {
        const char *name;
        dk_tensor *(*fn)(dk_tensor *const *);
        int64_t s0[4], s1[4];
        int n0, n1;
    } rows[] = {
        {"conv2d", f_conv, {4, 16, 9, 9}, {32, 16, 3, 3}, 4, 4},
        {"conv2d_first_layer", f_conv, {4, 1, 9, 9}, {8, 1, 3, 3}, 4, 4},
        {"conv2d_stride2", f_conv_s2, {2, 32, 9, 9}, {16, 32, 3, 3}, 4, 4},
        {"conv2d_bwd_data", f_bwd_data, {4, 32, 9, 9}, {32, 16, 3, 3}, 4, 4},
        {"conv2d_bwd_weight", f_bwd_weight, {4, 16, 9, 9}, {4, 32, 9, 9}, 4, 4},
        {"matmul", f_matmul, {3, 37, 70}, {3, 70, 19}, 3, 3},
        {"linear", f_linear, {64, 200}, {33, 200}, 2, 2},
    };
    for (size_t k = 0; k < sizeof rows / sizeof *rows; k++) {
        dk_tensor *in[2] = {randn(&r, rows[k].n0, rows[k].s0, DK_DTYPE_BF16),
                            randn(&r, rows[k].n1, rows[k].s1, DK_DTYPE_BF16)};
        long before = dkh_dnnl_primitives_created();
        dk_tensor *fast = rows[k].fn(in);
        long made = dkh_dnnl_primitives_created() - before;
        dk_tensor *ref = reference(rows[k].fn, in);
        assert_non_null(fast);
        assert_int_equal(dk_tensor_dtype(fast), DK_DTYPE_BF16);
        double d = scaled_diff(fast, ref);
        if (!(d < 1.0 / 64) || (native && made == 0)) {
            print_error("%s: bf16 fast vs reference differ by %g of the scale, %ld primitives "
                        "made\n",
                        rows[k].name, d, made);
            fail();
        }
        print_message("%-20s bf16 vs reference: %.2g of the scale\n", rows[k].name, d);
    }
    dk_scope_end();
}

/* ---- autocast on a small net ------------------------------------------------------------ */

typedef struct net {
    dk_tensor *w1, *b1, *w2, *b2; /* conv (8, 3, 3, 3) + (8); linear (10, 8*8*8) + (10) */
} net;

/* conv 3x3 p1 -> relu -> max-pool 2 -> flatten -> linear -> sum(y * R). */
static dk_tensor *net_loss(const net *m, dk_tensor *x, dk_tensor *R, dk_tensor **logits)
{
    dk_tensor *h = dk_conv2d(x, m->w1, m->b1, NULL, (int64_t[]){1, 1}, NULL, 1);
    h = dk_max_pool2d(dk_relu(h), (int64_t[]){2, 2}, NULL, NULL, NULL, false);
    dk_tensor *y = dk_linear(dk_flatten(h, 1, -1), m->w2, m->b2);
    *logits = y;
    return dk_sum(dk_mul(y, R), NULL, 0, false);
}

typedef struct run_out {
    dk_tensor *y, *g[4];
} run_out;

static run_out run_net(const net *m, dk_tensor *x, dk_tensor *R)
{
    dk_tensor *p[4] = {m->w1, m->b1, m->w2, m->b2};
    for (int i = 0; i < 4; i++)
        dk_tensor_zero_grad(p[i]);
    run_out o;
    dk_tensor *loss = net_loss(m, x, R, &o.y);
    assert_int_equal(dk_backward(loss, NULL, false), DK_OK);
    for (int i = 0; i < 4; i++)
        o.g[i] = dk_copy(dk_tensor_grad(p[i]));
    return o;
}

static void test_autocast_net(void **state)
{
    (void)state;
    dk_scope_begin();
    dk_rng r;
    dk_rng_seed(&r, 11);
    net m = {
        dk_mul_scalar(randn(&r, 4, (int64_t[]){8, 3, 3, 3}, DK_DTYPE_F32), 0.3),
        dk_mul_scalar(randn(&r, 1, (int64_t[]){8}, DK_DTYPE_F32), 0.1),
        dk_mul_scalar(randn(&r, 2, (int64_t[]){10, 128}, DK_DTYPE_F32), 0.1),
        dk_mul_scalar(randn(&r, 1, (int64_t[]){10}, DK_DTYPE_F32), 0.1),
    };
    dk_tensor *p[4] = {m.w1, m.b1, m.w2, m.b2};
    for (int i = 0; i < 4; i++)
        assert_int_equal(dk_tensor_set_requires_grad(p[i], true), DK_OK);
    dk_tensor *x = randn(&r, 4, (int64_t[]){4, 3, 8, 8}, DK_DTYPE_F32);
    dk_tensor *R = randn(&r, 2, (int64_t[]){4, 10}, DK_DTYPE_F32);

    run_out f32 = run_net(&m, x, R);
    assert_int_equal(dk_autocast_dtype(), DK_DTYPE_F32);
    assert_int_equal(dk_autocast_begin(DK_DTYPE_BF16), DK_OK);
    assert_int_equal(dk_autocast_dtype(), DK_DTYPE_BF16);
    run_out bf = run_net(&m, x, R);
    assert_int_equal(dk_autocast_end(), DK_OK);

    /* Results and parameter gradients are f32 and close to the f32 net's. */
    assert_int_equal(dk_tensor_dtype(bf.y), DK_DTYPE_F32);
    assert_true(scaled_diff(bf.y, f32.y) < 2e-2);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(dk_tensor_dtype(p[i]), DK_DTYPE_F32);
        assert_int_equal(dk_tensor_dtype(dk_tensor_grad(p[i])), DK_DTYPE_F32);
        double d = scaled_diff(bf.g[i], f32.g[i]);
        if (!(d < 3e-2)) {
            print_error("parameter %d: autocast gradient differs by %g of the scale\n", i, d);
            fail();
        }
        print_message("parameter %d: autocast gradient within %.2g of the scale\n", i, d);
    }
    /* Not identical either: the products really ran in bf16. */
    assert_true(scaled_diff(bf.y, f32.y) > 0);

    /* Outside the scope nothing changed: the f32 net again, bit for bit. */
    run_out again = run_net(&m, x, R);
    assert_true(scaled_diff(again.y, f32.y) == 0);
    for (int i = 0; i < 4; i++)
        assert_true(scaled_diff(again.g[i], f32.g[i]) == 0);

    /* A backward called inside a scope computes the f32 graph in f32. */
    dk_tensor *y;
    dk_tensor *loss = net_loss(&m, x, R, &y);
    for (int i = 0; i < 4; i++)
        dk_tensor_zero_grad(p[i]);
    assert_int_equal(dk_autocast_begin(DK_DTYPE_BF16), DK_OK);
    assert_int_equal(dk_backward(loss, NULL, false), DK_OK);
    assert_int_equal(dk_autocast_end(), DK_OK);
    for (int i = 0; i < 4; i++)
        assert_true(scaled_diff(dk_tensor_grad(p[i]), f32.g[i]) == 0);
    dk_scope_end();
}

/* Scopes nest, f32 turns autocast off inside one, f64 is never cast, and
 * misuse is an error with a message. */
static void test_autocast_scopes(void **state)
{
    (void)state;
    dk_scope_begin();
    dk_rng r;
    dk_rng_seed(&r, 5);
    dk_tensor *a = randn(&r, 2, (int64_t[]){5, 7}, DK_DTYPE_F32);
    dk_tensor *b = randn(&r, 2, (int64_t[]){7, 3}, DK_DTYPE_F32);
    dk_tensor *exact = dk_matmul(a, b);
    dk_tensor *tx = randn(&r, 4, (int64_t[]){2, 4, 5, 5}, DK_DTYPE_F32);
    dk_tensor *tw = randn(&r, 4, (int64_t[]){4, 3, 3, 3}, DK_DTYPE_F32);
    dk_tensor *t_exact = dk_conv_transpose2d(tx, tw, NULL, (int64_t[]){2, 2}, NULL, NULL, NULL, 1);
    assert_int_equal(dk_autocast_begin(DK_DTYPE_BF16), DK_OK);
    dk_tensor *t_low = dk_conv_transpose2d(tx, tw, NULL, (int64_t[]){2, 2}, NULL, NULL, NULL, 1);
    dk_tensor *low = dk_matmul(a, b);
    assert_int_equal(dk_autocast_begin(DK_DTYPE_F32), DK_OK);
    dk_tensor *off = dk_matmul(a, b);
    assert_int_equal(dk_autocast_end(), DK_OK);
    dk_tensor *low2 = dk_matmul(a, b);
    dk_tensor *d64 = dk_matmul(dk_cast(a, DK_DTYPE_F64), dk_cast(b, DK_DTYPE_F64));
    assert_int_equal(dk_autocast_end(), DK_OK);
    assert_int_equal(dk_tensor_dtype(low), DK_DTYPE_F32);
    assert_int_equal(dk_tensor_dtype(t_low), DK_DTYPE_F32);
    assert_true(scaled_diff(t_low, t_exact) > 0 && scaled_diff(t_low, t_exact) < 2e-2);
    assert_true(scaled_diff(off, exact) == 0);
    assert_true(scaled_diff(low, exact) > 0 && scaled_diff(low, exact) < 2e-2);
    assert_true(scaled_diff(low2, low) == 0);
    assert_int_equal(dk_tensor_dtype(d64), DK_DTYPE_F64);
    /* The bf16 result is the bf16 product of the bf16-rounded operands. */
    dk_tensor *want = dk_cast(dk_matmul(dk_cast(a, DK_DTYPE_BF16), dk_cast(b, DK_DTYPE_BF16)),
                              DK_DTYPE_F32);
    assert_true(scaled_diff(low, want) == 0);

    assert_int_equal(dk_autocast_end(), DK_ERR_RUNTIME);
    assert_non_null(strstr(dk_last_error(), "dk_autocast_end: no autocast scope is open"));
    assert_int_equal(dk_autocast_begin(DK_DTYPE_I32), DK_ERR_ARG);
    assert_non_null(strstr(dk_last_error(), "i32 is not an autocast dtype"));
    assert_int_equal(dk_autocast_dtype(), DK_DTYPE_F32);
    dk_clear_error();
    dk_scope_end();
}

/* ---- large shapes: every thread ------------------------------------------------------ */

static dk_tensor *f_ln(dk_tensor *const *in)
{
    return dk_layer_norm(in[0], (int64_t[]){300}, 1, in[1], in[2], 1e-5);
}

static dk_tensor *f_gn(dk_tensor *const *in)
{
    return dk_group_norm(in[0], 4, in[1], in[2], 1e-5);
}

/* Forward and the gradients of sum(y * R) for x, w, b: fast vs reference. */
static void check_norm(const char *name, dk_tensor *(*fn)(dk_tensor *const *), dk_tensor **in,
                       dk_tensor *R)
{
    dk_tensor *out[2][4];
    for (int ref = 0; ref < 2; ref++) {
        bool was = dkh_force_reference(ref);
        for (int i = 0; i < 3; i++)
            dk_tensor_zero_grad(in[i]);
        dk_tensor *y = fn(in);
        assert_int_equal(dk_backward(dk_sum(dk_mul(y, R), NULL, 0, false), NULL, false), DK_OK);
        out[ref][0] = y;
        for (int i = 0; i < 3; i++)
            out[ref][i + 1] = dk_copy(dk_tensor_grad(in[i]));
        dkh_force_reference(was);
    }
    for (int k = 0; k < 4; k++) {
        double d = scaled_diff(out[0][k], out[1][k]);
        if (!(d < 1e-4)) {
            print_error("%s result %d: fast vs reference differ by %g\n", name, k, d);
            fail();
        }
    }
}

static void test_large_norms_and_casts(void **state)
{
    (void)state;
    dk_scope_begin();
    dk_rng r;
    dk_rng_seed(&r, 9);
    dk_tensor *ln[3] = {dk_add_scalar(randn(&r, 2, (int64_t[]){256, 300}, DK_DTYPE_F32), 3),
                        randn(&r, 1, (int64_t[]){300}, DK_DTYPE_F32),
                        randn(&r, 1, (int64_t[]){300}, DK_DTYPE_F32)};
    dk_tensor *gn[3] = {randn(&r, 4, (int64_t[]){8, 32, 16, 16}, DK_DTYPE_F32),
                        randn(&r, 1, (int64_t[]){32}, DK_DTYPE_F32),
                        randn(&r, 1, (int64_t[]){32}, DK_DTYPE_F32)};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(dk_tensor_set_requires_grad(ln[i], true), DK_OK);
        assert_int_equal(dk_tensor_set_requires_grad(gn[i], true), DK_OK);
    }
    check_norm("layer_norm", f_ln, ln, randn(&r, 2, (int64_t[]){256, 300}, DK_DTYPE_F32));
    check_norm("group_norm", f_gn, gn, randn(&r, 4, (int64_t[]){8, 32, 16, 16}, DK_DTYPE_F32));

    /* Casts both ways, contiguous and transposed, match the reference bit for
     * bit (ties, NaN, infinities and subnormals included). */
    dk_tensor *x = randn(&r, 2, (int64_t[]){300, 257}, DK_DTYPE_F32);
    float *p = dk_tensor_data(x);
    p[0] = NAN;
    p[1] = INFINITY;
    p[2] = 1e-40f;            /* subnormal */
    p[3] = 1.00390625f;       /* a tie: rounds to even */
    p[4] = -3.4e38f;          /* rounds to -inf */
    dk_tensor *srcs[3] = {x, dk_transpose(x, 0, 1), dk_cast(x, DK_DTYPE_BF16)};
    dk_dtype to[3] = {DK_DTYPE_BF16, DK_DTYPE_BF16, DK_DTYPE_F32};
    for (int k = 0; k < 3; k++) {
        dk_tensor *f = dk_cast(srcs[k], to[k]);
        bool was = dkh_force_reference(true);
        dk_tensor *g = dk_cast(srcs[k], to[k]);
        dkh_force_reference(was);
        size_t nb = (size_t)dkh_numel(f->ndim, f->shape) * dk_dtype_size(f->dtype);
        assert_true(dkh_same_shape(f, g) && f->dtype == g->dtype);
        assert_memory_equal(dk_tensor_data(f), dk_tensor_data(g), nb);
    }
    dk_scope_end();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bf16_kernels),
        cmocka_unit_test(test_autocast_net),
        cmocka_unit_test(test_autocast_scopes),
        cmocka_unit_test(test_large_norms_and_casts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
