/* tests/ops/test_ops.c — the table-driven op suite.
 *
 * One table row per public op function (several rows may cover one op of the
 * op list); every op in DKH_OP_LIST must have at least one row or the suite
 * fails. Each row runs on several shape variants (batch 1, odd sizes, scalar,
 * broadcast, empty dims) and again with non-contiguous (transposed) inputs,
 * and checks:
 *   - the fast CPU kernel against the plain reference kernel, in f64 and f32;
 *   - for a differentiable row, in f64, the gradient of sum(y * R) (R random)
 *     against central finite differences (relative error < 1e-6), and the
 *     fast backward kernels against the reference ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op_cases.h"


/* Every row of every group, gathered once. */
static const op_case *cases[512];
static size_t N_CASES;

static void gather_cases(void)
{
    const op_case *groups[] = {
#define DKT_GROUP_(g) dkt_cases_##g,
        DKT_CASE_GROUPS(DKT_GROUP_)
#undef DKT_GROUP_
    };
    N_CASES = 0;
    for (size_t g = 0; g < sizeof groups / sizeof *groups; g++)
        for (const op_case *c = groups[g]; c->name; c++) {
            DKH_ASSERT(N_CASES < sizeof cases / sizeof *cases);
            cases[N_CASES++] = c;
        }
}


/* ---- helpers ------------------------------------------------------------------------ */

typedef struct shape {
    int ndim;
    int64_t d[DK_MAX_DIMS];
} shape;

/* Parses variant v's input shapes; returns the number of variants. */
static int parse_variant(const char *spec, int v, shape *out, int n_in)
{
    int count = 1;
    for (const char *p = spec; *p; p++)
        count += *p == '|';
    if (v >= count)
        return count;
    const char *p = spec;
    for (int k = 0; k < v; k++)
        p = strchr(p, '|') + 1;
    for (int i = 0; i < n_in; i++) {
        out[i].ndim = 0;
        if (*p == 's') {
            p++;
        } else {
            while (*p && *p != ';' && *p != '|') {
                out[i].d[out[i].ndim++] = strtoll(p, (char **)&p, 10);
                if (*p == ',')
                    p++;
            }
        }
        if (*p == ';')
            p++;
    }
    return count;
}

static uint64_t seed_state = 12345;
static long n_compared, n_grad_checked; /* proof the suite did its work */
/* `test_ops --shard K/N` runs the cases whose index is K mod N (ctest runs the
 * shards side by side); the other tests run in shard 0. */
static int shard, n_shards = 1;

static double next_uniform(void)
{
    seed_state = seed_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(seed_state >> 11) * 0x1.0p-53;
}

/* A new f64 tensor of shape s (non-contiguous when nc and ndim >= 2: built
 * transposed then transposed back), values per flags. A leaf. */
static dk_tensor *gen(const shape *s, unsigned flags, bool nc, bool cond)
{
    shape t = *s;
    bool flip = nc && s->ndim >= 2;
    if (flip) {
        t.d[s->ndim - 1] = s->d[s->ndim - 2];
        t.d[s->ndim - 2] = s->d[s->ndim - 1];
    }
    int64_t n = dkh_numel(t.ndim, t.d);
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    for (int64_t i = 0; i < n; i++) {
        double u = next_uniform();
        if (flags & POS)
            v[i] = 0.5 + 1.5 * u;
        else if (flags & QUANT)
            v[i] = floor(u * 6) * 0.5 - 1.5;
        else {
            /* Stay away from 0, where relu/abs/leaky_relu have kinks. */
            double x = -2 + 4 * u;
            v[i] = fabs(x) < 0.05 ? x + 0.1 : x;
        }
        if (cond)
            v[i] = u > 0.5;
    }
    dk_tensor *x = dk_from_data(t.ndim, t.d, DK_DTYPE_F64, v);
    free(v);
    if (cond)
        x = dk_cast(x, DK_DTYPE_BOOL);
    if (flip)
        x = dk_transpose(x, -1, -2);
    return x;
}

static double elem(const dk_tensor *t, int64_t i)
{
    return dkh_load(dkh_base(t), t->dtype, dkh_offset_of(i, t->ndim, t->shape, t->strides));
}

/* Fails the test with context when a and b differ beyond tol (relative to 1 + |b|). */
static void expect_close(const char *what, const op_case *c, int v, const char *lay,
                         const dk_tensor *a, const dk_tensor *b, double tol)
{
    if (!a || !b) {
        print_error("%s %s variant %d%s: NULL result: %s\n", c->name, what, v, lay,
                    dk_last_error());
        fail();
    }
    if (!dkh_same_shape(a, b) || a->dtype != b->dtype) {
        print_error("%s %s variant %d: shapes/dtypes differ\n", c->name, what, v);
        fail();
    }
    int64_t n = dkh_numel(a->ndim, a->shape);
    n_compared += n;
    for (int64_t i = 0; i < n; i++) {
        double x = elem(a, i), y = elem(b, i);
        if (isnan(x) && isnan(y))
            continue;
        if (!(fabs(x - y) <= tol * (1 + fabs(y)))) {
            print_error("%s %s variant %d%s: element %lld: %.17g vs %.17g\n", c->name, what, v,
                        lay, (long long)i, x, y);
            fail();
        }
    }
}

static dk_tensor *run_op(const op_case *c, dk_tensor *const *in, bool reference)
{
    bool was = dkh_force_reference(reference);
    dk_tensor *y = c->fn(in);
    dkh_force_reference(was);
    return y;
}

/* sum(y * R): a scalar loss whose gradient w.r.t. y is R. */
static dk_tensor *weighted(dk_tensor *y, dk_tensor *r)
{
    return dk_sum(dk_mul(y, r), NULL, 0, false);
}

/* Backward fast vs reference kernels, then (numeric) every input element's
 * gradient against central finite differences. */
static void grad_check(const op_case *c, int v, const char *lay, bool numeric, dk_tensor **in)
{
    bool was = dk_grad_set_enabled(true);
    int wants[DKH_MAX_IN];
    for (int i = 0; i < c->n_in; i++) {
        wants[i] = dkh_is_float(in[i]->dtype);
        if (wants[i])
            assert_int_equal(dk_tensor_set_requires_grad(in[i], true), DK_OK);
    }
    dk_tensor *y = c->fn(in);
    assert_non_null(y);
    shape ys = {y->ndim, {0}};
    memcpy(ys.d, y->shape, sizeof ys.d);
    dk_tensor *r = gen(&ys, 0, false, false);
    dk_tensor *loss = weighted(y, r);
    assert_non_null(loss);
    assert_int_equal(dk_backward(loss, NULL, false), DK_OK);
    /* The same backward through the reference kernels. */
    dk_tensor *fast[DKH_MAX_IN] = {NULL};
    for (int i = 0; i < c->n_in; i++)
        if (wants[i]) {
            fast[i] = dk_copy(dk_tensor_grad(in[i]));
            dk_tensor_zero_grad(in[i]);
        }
    bool rw = dkh_force_reference(true);
    assert_int_equal(dk_backward(weighted(c->fn(in), r), NULL, false), DK_OK);
    dkh_force_reference(rw);
    for (int i = 0; i < c->n_in; i++)
        if (wants[i])
            expect_close("backward fast vs reference", c, v, lay, fast[i],
                         dk_tensor_grad(in[i]), 1e-12);
    if (!numeric) {
        dk_grad_set_enabled(was);
        return;
    }

    dk_grad_set_enabled(false);
    const double eps = 1e-6;
    for (int i = 0; i < c->n_in; i++) {
        if (!wants[i])
            continue;
        dk_tensor *x = in[i];
        int64_t n = dkh_numel(x->ndim, x->shape);
        for (int64_t j = 0; j < n; j++) {
            double *p = (double *)dkh_base(x) + dkh_offset_of(j, x->ndim, x->shape, x->strides);
            double orig = *p;
            *p = orig + eps;
            double lp = dk_tensor_item(weighted(c->fn(in), r));
            *p = orig - eps;
            double lm = dk_tensor_item(weighted(c->fn(in), r));
            *p = orig;
            double num = (lp - lm) / (2 * eps), ana = elem(fast[i], j);
            n_grad_checked++;
            double err = fabs(num - ana) / fmax(1.0, fmax(fabs(num), fabs(ana)));
            if (!(err < 1e-6)) {
                print_error("%s gradcheck variant %d%s: input %d element %lld: analytic %.12g, "
                            "numeric %.12g\n",
                            c->name, v, lay, i, (long long)j, ana, num);
                fail();
            }
        }
    }
    dk_grad_set_enabled(was);
}

/* x (N, C, H, W) re-laid channels-last, (N, H, W, C) in memory, same values. */
static dk_tensor *channels_last(dk_tensor *x)
{
    if (x->ndim != 4)
        return x;
    return dk_permute(dk_contiguous(dk_permute(x, 4, (int[]){0, 2, 3, 1})), 4,
                      (int[]){0, 3, 1, 2});
}

static bool has_4d(const shape *s, int n)
{
    for (int i = 0; i < n; i++)
        if (s[i].ndim == 4)
            return true;
    return false;
}

/* Layout passes: contiguous inputs, transposed last two dims ("nc"), and
 * channels-last 4-d inputs ("cl", the layout convolutions pass on; its
 * gradients are checked fast vs reference, not again by finite differences). */
enum { PLAIN, NC, CL, N_PASSES };

static void run_case(const op_case *c)
{
    static const char *const label[N_PASSES] = {"", " nc", " cl"};
    shape s[DKH_MAX_IN];
    int nv = c->n_in ? parse_variant(c->shapes, 0, s, c->n_in) : 1;
    for (int v = 0; v < nv; v++) {
        for (int pass = 0; pass < N_PASSES; pass++) {
            bool nc = pass == NC;
            if (c->n_in == 0 && pass != PLAIN)
                continue;
            if (c->n_in)
                parse_variant(c->shapes, v, s, c->n_in);
            if (pass == CL && !has_4d(s, c->n_in))
                continue;
            dk_scope_begin();
            dk_tensor *in[DKH_MAX_IN] = {NULL};
            for (int i = 0; i < c->n_in; i++) {
                in[i] = gen(&s[i], c->flags, nc, (c->flags & COND0) && i == 0);
                if (pass == CL)
                    in[i] = channels_last(in[i]);
            }
            bool was = dk_grad_set_enabled(false);
            /* f64: fast vs reference. */
            expect_close("f64 fast vs reference", c, v, label[pass], run_op(c, in, false),
                         run_op(c, in, true), 1e-12);
            /* f32: fast vs reference on the same values rounded to f32. */
            if (!(c->flags & NOF32)) {
                dk_tensor *in32[DKH_MAX_IN] = {NULL};
                for (int i = 0; i < c->n_in; i++)
                    in32[i] = in[i]->dtype == DK_DTYPE_F64 ? dk_cast(in[i], DK_DTYPE_F32) : in[i];
                for (int i = 0; i < c->n_in; i++) {
                    if (nc && in32[i]->ndim >= 2)
                        in32[i] = dk_transpose(dk_contiguous(dk_transpose(in32[i], -1, -2)),
                                               -1, -2);
                    if (pass == CL)
                        in32[i] = channels_last(in32[i]);
                }
                expect_close("f32 fast vs reference", c, v, label[pass], run_op(c, in32, false),
                             run_op(c, in32, true), 1e-5);
            }
            dk_grad_set_enabled(was);
            if (!(c->flags & NOGRAD))
                grad_check(c, v, label[pass], pass != CL, in);
            dk_scope_end();
        }
    }
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_every_op_has_a_case(void **state)
{
    int missing = 0;
    for (int op = 0; op < DKH_OP_COUNT; op++) {
        bool found = false;
        for (size_t k = 0; k < N_CASES; k++)
            found |= cases[k]->op == (dkh_op_id)op;
        if (!found) {
            print_error("op %s has no test case\n", dkh_op_name((dkh_op_id)op));
            missing++;
        }
        /* Differentiable ops need a differentiable case. */
        if (dkh_op((dkh_op_id)op)->flags & DKH_F_DIFF) {
            bool diff = false;
            for (size_t k = 0; k < N_CASES; k++)
                diff |= cases[k]->op == (dkh_op_id)op && !(cases[k]->flags & NOGRAD);
            if (!diff) {
                print_error("op %s has no gradient test\n", dkh_op_name((dkh_op_id)op));
                missing++;
            }
        }
    }
    assert_int_equal(missing, 0);
}

static void test_op_cases(void **state)
{
    size_t ran = 0;
    for (size_t k = 0; k < N_CASES; k++) {
        if ((int)(k % (size_t)n_shards) != shard)
            continue;
        /* Each case draws from its own stream, so its values do not depend on
         * which cases ran before it (or in which shard). */
        seed_state = 12345 + 0x9E3779B97F4A7C15ull * k;
        dk_clear_error();
        run_case(cases[k]);
        ran++;
    }
    print_message("%zu of %zu cases (shard %d/%d): %ld elements compared fast vs reference, "
                  "%ld gradient elements checked against finite differences\n",
                  ran, N_CASES, shard, n_shards, n_compared, n_grad_checked);
    assert_true(n_grad_checked > 1000 / n_shards);
    dk_memory_stats ms;
    dk_memory_stats_get(DK_CPU, &ms);
    assert_int_equal(ms.current, 0); /* every scope released everything */
}

/* A bad shape names the op and the shapes; NULL then propagates unchanged. */
static void test_errors(void **state)
{
    dk_scope_begin();
    dk_tensor *a = dk_zeros(2, (int64_t[]){2, 3}, DK_DTYPE_F32, DK_CPU);
    dk_tensor *b = dk_zeros(1, (int64_t[]){4}, DK_DTYPE_F32, DK_CPU);
    dk_tensor *y = dk_relu(dk_add(a, b));
    assert_null(y);
    assert_int_equal(dk_last_status(), DK_ERR_SHAPE);
    assert_string_equal(dk_last_error(), "add: shapes (2, 3) f32 and (4,) f32 do not broadcast "
                                         "(dim -1)");
    dk_clear_error();
    assert_null(dk_matmul(a, a));
    assert_non_null(strstr(dk_last_error(), "matmul: inner dims differ (3 vs 2)"));
    assert_null(dk_add(a, dk_zeros(2, (int64_t[]){2, 3}, DK_DTYPE_F64, DK_CPU)));
    assert_non_null(strstr(dk_last_error(), "dtypes differ"));
    assert_null(dk_ln(dk_zeros(1, (int64_t[]){2}, DK_DTYPE_I32, DK_CPU)));
    assert_non_null(strstr(dk_last_error(), "log: needs a float tensor (input: (2,) i32)"));
    assert_null(dk_reshape(a, 1, (int64_t[]){5}));
    assert_int_equal(dk_last_status(), DK_ERR_SHAPE);
    assert_null(dk_sum(a, (int[]){2}, 1, false));
    assert_null(dk_amax(dk_zeros(2, (int64_t[]){0, 3}, DK_DTYPE_F32, DK_CPU), (int[]){0}, 1,
                        false));
    assert_non_null(strstr(dk_last_error(), "empty dim"));
    dk_clear_error();
    assert_null(dk_exp(NULL));
    assert_non_null(strstr(dk_last_error(), "exp: input 0 is NULL"));
    assert_null(dk_from_data(1, (int64_t[]){-1}, DK_DTYPE_F32, NULL));
    assert_null(dk_arange(0, 1, 0, DK_DTYPE_F32, DK_CPU));
    assert_null(dk_empty(1, (int64_t[]){2}, DK_DTYPE_F32, DK_CUDA_DEV(0)));
    assert_int_equal(dk_last_status(), DK_ERR_UNSUPPORTED);
    dk_scope_end();
}

/* Views share storage; reshape copies only when the strides demand it. */
static void test_views(void **state)
{
    dk_scope_begin();
    dk_tensor *x = dk_arange(0, 24, 1, DK_DTYPE_F32, DK_CPU);
    dk_tensor *v = dk_reshape(x, 3, (int64_t[]){2, 3, 4});
    assert_ptr_equal(dk_tensor_data(v), dk_tensor_data(x));
    dk_tensor *t = dk_transpose(v, 1, 2); /* (2, 4, 3) */
    assert_false(dk_tensor_is_contiguous(t));
    assert_int_equal(dk_tensor_strides(t)[1], 1);
    dk_tensor *s = dk_slice(t, 1, 1, 4, 2); /* (2, 2, 3) */
    assert_int_equal(dk_tensor_shape(s)[1], 2);
    assert_true(dk_tensor_item(dk_select(dk_select(dk_select(s, 0, 1), 0, 1), 0, 2)) == 12 + 8 + 3);
    dk_tensor *f = dk_reshape(t, 1, (int64_t[]){24}); /* not viewable: a copy */
    assert_ptr_not_equal(dk_tensor_data(f), dk_tensor_data(x));
    float buf[24];
    assert_int_equal(dk_tensor_to_host(f, buf, sizeof buf), DK_OK);
    assert_true(buf[1] == 4 && buf[3] == 1);
    dk_tensor *e = dk_expand(dk_reshape(x, 2, (int64_t[]){1, 24}), 2, (int64_t[]){5, 24});
    assert_int_equal(dk_tensor_strides(e)[0], 0);
    dk_scope_end();
}

/* Conversions between every dtype pair agree with the reference path, and
 * half types round to nearest even. */
static void test_dtypes(void **state)
{
    assert_string_equal(dk_dtype_name(DK_DTYPE_BF16), "bf16");
    assert_int_equal(dk_dtype_size(DK_DTYPE_I64), 8);
    assert_true(dkh_f16_to_f32(dkh_f32_to_f16(1.0f + 1.0f / 4096)) == 1.0f); /* tie to even */
    assert_true(dkh_f16_to_f32(dkh_f32_to_f16(65504.0f)) == 65504.0f);
    assert_true(isinf(dkh_f16_to_f32(dkh_f32_to_f16(1e6f))));
    assert_true(dkh_f16_to_f32(dkh_f32_to_f16(5.9604644775390625e-8f)) == 5.9604644775390625e-8f);
    assert_true(dkh_bf16_to_f32(dkh_f32_to_bf16(1.00390625f)) == 1.0f); /* tie to even */
    assert_true(dkh_bf16_to_f32(dkh_f32_to_bf16(3.0f)) == 3.0f);
    dk_scope_begin();
    double vals[] = {-3.7, -1, -0.5, 0, 0.25, 1, 2.5, 300};
    dk_tensor *x = dk_from_data(1, (int64_t[]){8}, DK_DTYPE_F64, vals);
    for (int a = 0; a < DK_DTYPE_COUNT; a++) {
        dk_tensor *xa = dk_cast(x, (dk_dtype)a);
        for (int b = 0; b < DK_DTYPE_COUNT; b++) {
            dk_tensor *f = dk_cast(xa, (dk_dtype)b);
            bool was = dkh_force_reference(true);
            dk_tensor *r = dk_cast(xa, (dk_dtype)b);
            dkh_force_reference(was);
            for (int i = 0; i < 8; i++)
                assert_true(elem(f, i) == elem(r, i));
        }
    }
    /* Float to integer truncates toward zero and saturates. */
    dk_tensor *u = dk_cast(x, DK_DTYPE_U8);
    assert_true(elem(u, 0) == 0 && elem(u, 7) == 255);
    dk_tensor *i32 = dk_cast(x, DK_DTYPE_I32);
    assert_true(elem(i32, 0) == -3 && elem(i32, 6) == 2);
    /* Integer arithmetic through the reference kernels. */
    dk_tensor *s = dk_sum(dk_add(i32, i32), NULL, 0, false);
    assert_int_equal(dk_tensor_dtype(s), DK_DTYPE_I32);
    assert_true(dk_tensor_item(s) == 2 * (-3 - 1 + 0 + 0 + 0 + 1 + 2 + 300));
    assert_true(dk_tensor_item(dk_sum(dk_gt(x, dk_full(0, NULL, 0, DK_DTYPE_F64, DK_CPU)), NULL,
                                      0, false)) == 4);
    dk_scope_end();
}

/* Random tensors depend on the seed and the counter only; splits differ. */
static void test_rng(void **state)
{
    dk_scope_begin();
    dk_rng a, b;
    dk_rng_seed(&a, 42);
    dk_rng_seed(&b, 42);
    int64_t n = 100000;
    dk_tensor *x = dk_rand(1, &n, DK_DTYPE_F64, DK_CPU, &a);
    dk_tensor *y = dk_rand(1, &n, DK_DTYPE_F64, DK_CPU, &b);
    expect_close("rng determinism", cases[0], 0, false, x, y, 0);
    assert_true(a.counter == (uint64_t)n);
    double mean = dk_tensor_item(dk_mean(x, NULL, 0, false));
    assert_true(fabs(mean - 0.5) < 0.01);
    dk_tensor *z = dk_randn(1, &n, DK_DTYPE_F64, DK_CPU, &a);
    assert_true(fabs(dk_tensor_item(dk_mean(z, NULL, 0, false))) < 0.02);
    assert_true(fabs(dk_tensor_item(dk_var(z, NULL, 0, 1, false)) - 1) < 0.03);
    assert_true(dk_tensor_item(dk_amin(x, NULL, 0, false)) >= 0);
    assert_true(dk_tensor_item(dk_amax(x, NULL, 0, false)) < 1);
    dk_rng c1 = dk_rng_split(&a), c2 = dk_rng_split(&a);
    assert_true(c1.key != c2.key && c1.key != a.key);
    dk_scope_end();
}

/* Larger shapes take the parallel and blocked paths of the fast kernels. */
static void test_large_fast_paths(void **state)
{
    dk_scope_begin();
    dk_rng r;
    dk_rng_seed(&r, 3);
    dk_tensor *a = dk_randn(2, (int64_t[]){67, 300}, DK_DTYPE_F32, DK_CPU, &r);
    dk_tensor *b = dk_randn(2, (int64_t[]){129, 300}, DK_DTYPE_F32, DK_CPU, &r);
    dk_tensor *bias = dk_randn(1, (int64_t[]){129}, DK_DTYPE_F32, DK_CPU, &r);
    static const op_case big = {DKH_OP_MATMUL, "large", 0, "", 0, NULL};
    dk_tensor *outs[2][6];
    for (int ref = 0; ref < 2; ref++) {
        bool was = dkh_force_reference(ref);
        dk_tensor *l = dk_linear(a, b, bias); /* (67, 129) */
        outs[ref][0] = l;
        outs[ref][1] = dk_sum(l, (int[]){0}, 1, false);
        outs[ref][2] = dk_sum(l, NULL, 0, false);
        outs[ref][3] = dk_log_softmax(l, -1);
        outs[ref][4] = dk_gelu(dk_transpose(l, 0, 1));
        outs[ref][5] = dk_amax(l, (int[]){1}, 1, true);
        dkh_force_reference(was);
    }
    for (int k = 0; k < 6; k++)
        expect_close("large", &big, k, false, outs[0][k], outs[1][k], 1e-4);
    dk_scope_end();
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--shard") == 0 &&
        sscanf(argv[2], "%d/%d", &shard, &n_shards) == 2 && n_shards >= 1 && shard >= 0 &&
        shard < n_shards) {
        /* a shard of the op cases */
    } else if (argc != 1) {
        fprintf(stderr, "usage: test_ops [--shard K/N]\n");
        return 2;
    }
    gather_cases();
    /* The large fast-path checks take as long as half the cases: they go
     * with the last shard, the remaining tests with the first. */
    const struct CMUnitTest first[] = {
        cmocka_unit_test(test_op_cases),    cmocka_unit_test(test_every_op_has_a_case),
        cmocka_unit_test(test_errors),      cmocka_unit_test(test_views),
        cmocka_unit_test(test_dtypes),      cmocka_unit_test(test_rng),
        cmocka_unit_test(test_large_fast_paths),
    };
    const struct CMUnitTest last[] = {
        cmocka_unit_test(test_op_cases),
        cmocka_unit_test(test_large_fast_paths),
    };
    if (n_shards == 1)
        return cmocka_run_group_tests(first, NULL, NULL);
    if (shard == 0)
        return _cmocka_run_group_tests("test_ops (shard 0)", first, 6, NULL, NULL);
    if (shard == n_shards - 1)
        return _cmocka_run_group_tests("test_ops (last shard)", last, 2, NULL, NULL);
    return _cmocka_run_group_tests("test_ops (a shard)", last, 1, NULL, NULL);
}
