/* core/tensor/op_binary.c — elementwise ops of two tensors (and where, of
 * three), with PyTorch broadcasting.
 *
 * Inputs must share dtype: silent promotion hides bugs and doubles the kernel
 * table, so a mismatch is an error that says to dk_cast. Comparisons return
 * bool and have no gradient. Backward formulas are written with other ops and
 * reduced back to each input's shape with dkh_sum_to, which undoes the
 * broadcast.
 */
#include "tensor_impl.h"

#include <math.h>

static double b_add(const double *x, const dkh_args *a) { return x[0] + x[1]; }
static double b_sub(const double *x, const dkh_args *a) { return x[0] - x[1]; }
static double b_mul(const double *x, const dkh_args *a) { return x[0] * x[1]; }
static double b_div(const double *x, const dkh_args *a) { return x[0] / x[1]; }
static double b_pow(const double *x, const dkh_args *a) { return pow(x[0], x[1]); }
/* NaN wins, as in PyTorch's maximum/minimum. */
static double b_max(const double *x, const dkh_args *a)
{
    return isnan(x[0]) || isnan(x[1]) ? NAN : x[0] > x[1] ? x[0] : x[1];
}
static double b_min(const double *x, const dkh_args *a)
{
    return isnan(x[0]) || isnan(x[1]) ? NAN : x[0] < x[1] ? x[0] : x[1];
}
static double b_eq(const double *x, const dkh_args *a) { return x[0] == x[1]; }
static double b_ne(const double *x, const dkh_args *a) { return x[0] != x[1]; }
static double b_lt(const double *x, const dkh_args *a) { return x[0] < x[1]; }
static double b_le(const double *x, const dkh_args *a) { return x[0] <= x[1]; }
static double b_gt(const double *x, const dkh_args *a) { return x[0] > x[1]; }
static double b_ge(const double *x, const dkh_args *a) { return x[0] >= x[1]; }
static double t_where(const double *x, const dkh_args *a) { return x[0] != 0 ? x[1] : x[2]; }

typedef struct binary {
    dkh_ref_fn f;
    bool ints; /* also integer dtypes */
    bool cmp;  /* result is bool */
} binary;

static const binary binaries[DKH_OP_COUNT] = {
    [DKH_OP_ADD] = {b_add, true, false},    [DKH_OP_SUB] = {b_sub, true, false},
    [DKH_OP_MUL] = {b_mul, true, false},    [DKH_OP_DIV] = {b_div, false, false},
    [DKH_OP_POW] = {b_pow, false, false},   [DKH_OP_MAXIMUM] = {b_max, true, false},
    [DKH_OP_MINIMUM] = {b_min, true, false}, [DKH_OP_EQ] = {b_eq, true, true},
    [DKH_OP_NE] = {b_ne, true, true},       [DKH_OP_LT] = {b_lt, true, true},
    [DKH_OP_LE] = {b_le, true, true},       [DKH_OP_GT] = {b_gt, true, true},
    [DKH_OP_GE] = {b_ge, true, true},       [DKH_OP_WHERE] = {t_where, true, false},
};

static dk_status binary_infer_for(dkh_op_id op, dk_tensor *const *in, dkh_meta *m)
{
    const binary *b = &binaries[op];
    int first = op == DKH_OP_WHERE ? 1 : 0;
    int n = op == DKH_OP_WHERE ? 3 : 2;
    if (op == DKH_OP_WHERE && in[0]->dtype != DK_DTYPE_BOOL)
        return dkh_op_fail(op, n, in, DK_ERR_ARG, "the condition must be bool");
    if (in[first]->dtype != in[first + 1]->dtype)
        return dkh_op_fail(op, n, in, DK_ERR_ARG, "dtypes differ (use dk_cast)");
    dk_dtype dt = in[first]->dtype;
    if (!b->ints && !dkh_is_float(dt))
        return dkh_op_fail(op, n, in, DK_ERR_ARG, "needs float tensors");
    if (dt == DK_DTYPE_BOOL && !b->cmp && op != DKH_OP_WHERE)
        return dkh_op_fail(op, n, in, DK_ERR_ARG, "does not take bool");
    if (dkh_broadcast_shape(dkh_op_name(op), n, in, m) != DK_OK)
        return dk_last_status();
    m->dtype = b->cmp ? DK_DTYPE_BOOL : dt;
    return DK_OK;
}

static _Thread_local dkh_ref_fn cur;

static double map_cur(const double *x, const dkh_args *a)
{
    return cur(x, a);
}

static bool binary_ref(const dkh_kcall *c)
{
    cur = binaries[c->op].f;
    dkh_ref_map(c, map_cur);
    return true;
}

/* ---- backward formulas ------------------------------------------------------------------ */

#define SUM_TO(g, t) dkh_sum_to((g), (t)->ndim, (t)->shape)

static dk_status add_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out, dk_tensor *const *aux, dk_tensor *g,
                         const bool *needs, dk_tensor **gin)
{
    if (needs[0])
        gin[0] = SUM_TO(g, in[0]);
    if (needs[1])
        gin[1] = SUM_TO(g, in[1]);
    return DK_OK;
}

static dk_status sub_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out, dk_tensor *const *aux, dk_tensor *g,
                         const bool *needs, dk_tensor **gin)
{
    if (needs[0])
        gin[0] = SUM_TO(g, in[0]);
    if (needs[1])
        gin[1] = SUM_TO(dk_neg(g), in[1]);
    return DK_OK;
}

static dk_status mul_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out, dk_tensor *const *aux, dk_tensor *g,
                         const bool *needs, dk_tensor **gin)
{
    if (needs[0])
        gin[0] = SUM_TO(dk_mul(g, in[1]), in[0]);
    if (needs[1])
        gin[1] = SUM_TO(dk_mul(g, in[0]), in[1]);
    return DK_OK;
}

/* d(a/b)/db = -a/b^2 = -y/b. */
static dk_status div_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out, dk_tensor *const *aux, dk_tensor *g,
                         const bool *needs, dk_tensor **gin)
{
    dk_tensor *gb = dk_div(g, in[1]);
    if (needs[0])
        gin[0] = SUM_TO(gb, in[0]);
    if (needs[1])
        gin[1] = SUM_TO(dk_neg(dk_mul(gb, out)), in[1]);
    return DK_OK;
}

/* d(a^b)/da = b a^(b-1);  d(a^b)/db = y log(a) (defined for a > 0). */
static dk_status pow_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out, dk_tensor *const *aux, dk_tensor *g,
                         const bool *needs, dk_tensor **gin)
{
    if (needs[0])
        gin[0] = SUM_TO(dk_mul(g, dk_mul(in[1], dk_pow(in[0], dk_add_scalar(in[1], -1)))), in[0]);
    if (needs[1])
        gin[1] = SUM_TO(dk_mul(g, dk_mul(out, dk_ln(in[0]))), in[1]);
    return DK_OK;
}

/* The winner takes the gradient; ties split it evenly, as in PyTorch. */
static dk_status minmax_bwd(dkh_op_id op, dk_tensor *const *in, dk_tensor *g, const bool *needs,
                            dk_tensor **gin)
{
    dk_dtype dt = g->dtype;
    dk_tensor *win = op == DKH_OP_MAXIMUM ? dk_gt(in[0], in[1]) : dk_lt(in[0], in[1]);
    dk_tensor *m = dk_add(dk_cast(win, dt), dk_mul_scalar(dk_cast(dk_eq(in[0], in[1]), dt), 0.5));
    if (needs[0])
        gin[0] = SUM_TO(dk_mul(g, m), in[0]);
    if (needs[1])
        gin[1] = SUM_TO(dk_mul(g, dk_add_scalar(dk_neg(m), 1)), in[1]);
    return DK_OK;
}

static dk_status maximum_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out, dk_tensor *const *aux,
                             dk_tensor *g, const bool *needs, dk_tensor **gin)
{
    return minmax_bwd(DKH_OP_MAXIMUM, in, g, needs, gin);
}

static dk_status minimum_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out, dk_tensor *const *aux,
                             dk_tensor *g, const bool *needs, dk_tensor **gin)
{
    return minmax_bwd(DKH_OP_MINIMUM, in, g, needs, gin);
}

static dk_status where_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *out, dk_tensor *const *aux, dk_tensor *g,
                           const bool *needs, dk_tensor **gin)
{
    dk_tensor *zero = dk_full(0, NULL, 0.0, g->dtype, dk_tensor_device(g));
    if (needs[1])
        gin[1] = SUM_TO(dk_where(in[0], g, zero), in[1]);
    if (needs[2])
        gin[2] = SUM_TO(dk_where(in[0], zero, g), in[2]);
    return DK_OK;
}

#define BINARY_DEF(OP, name, n, flags, bwd)                                                 \
    static dk_status name##_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)     \
    {                                                                                        \
        return binary_infer_for(DKH_OP_##OP, in, m);                                        \
    }                                                                                        \
    const dkh_op_def dkh_op_##name = {#name, n, (flags) | DKH_F_LAYOUT, name##_infer, bwd,     \
                                      {binary_ref, NULL}};

BINARY_DEF(ADD, add, 2, DKH_F_DIFF, add_bwd)
BINARY_DEF(SUB, sub, 2, DKH_F_DIFF, sub_bwd)
BINARY_DEF(MUL, mul, 2, DKH_F_DIFF, mul_bwd)
BINARY_DEF(DIV, div, 2, DKH_F_DIFF | DKH_F_SAVE_OUT, div_bwd)
BINARY_DEF(POW, pow, 2, DKH_F_DIFF | DKH_F_SAVE_OUT, pow_bwd)
BINARY_DEF(MAXIMUM, maximum, 2, DKH_F_DIFF, maximum_bwd)
BINARY_DEF(MINIMUM, minimum, 2, DKH_F_DIFF, minimum_bwd)
BINARY_DEF(EQ, eq, 2, 0, NULL)
BINARY_DEF(NE, ne, 2, 0, NULL)
BINARY_DEF(LT, lt, 2, 0, NULL)
BINARY_DEF(LE, le, 2, 0, NULL)
BINARY_DEF(GT, gt, 2, 0, NULL)
BINARY_DEF(GE, ge, 2, 0, NULL)
BINARY_DEF(WHERE, where, 3, DKH_F_DIFF, where_bwd)

static dk_tensor *run2(dkh_op_id op, dk_tensor *a, dk_tensor *b)
{
    dkh_args args = {.nv = 0};
    dk_tensor *in[2] = {a, b};
    return dkh_op_run(op, &args, 2, in);
}

dk_tensor *dk_add(dk_tensor *a, dk_tensor *b) { return run2(DKH_OP_ADD, a, b); }
dk_tensor *dk_sub(dk_tensor *a, dk_tensor *b) { return run2(DKH_OP_SUB, a, b); }
dk_tensor *dk_mul(dk_tensor *a, dk_tensor *b) { return run2(DKH_OP_MUL, a, b); }
dk_tensor *dk_div(dk_tensor *a, dk_tensor *b) { return run2(DKH_OP_DIV, a, b); }
dk_tensor *dk_pow(dk_tensor *a, dk_tensor *b) { return run2(DKH_OP_POW, a, b); }
dk_tensor *dk_maximum(dk_tensor *a, dk_tensor *b) { return run2(DKH_OP_MAXIMUM, a, b); }
dk_tensor *dk_minimum(dk_tensor *a, dk_tensor *b) { return run2(DKH_OP_MINIMUM, a, b); }
dk_tensor *dk_eq(dk_tensor *a, dk_tensor *b) { return run2(DKH_OP_EQ, a, b); }
dk_tensor *dk_ne(dk_tensor *a, dk_tensor *b) { return run2(DKH_OP_NE, a, b); }
dk_tensor *dk_lt(dk_tensor *a, dk_tensor *b) { return run2(DKH_OP_LT, a, b); }
dk_tensor *dk_le(dk_tensor *a, dk_tensor *b) { return run2(DKH_OP_LE, a, b); }
dk_tensor *dk_gt(dk_tensor *a, dk_tensor *b) { return run2(DKH_OP_GT, a, b); }
dk_tensor *dk_ge(dk_tensor *a, dk_tensor *b) { return run2(DKH_OP_GE, a, b); }

dk_tensor *dk_where(dk_tensor *cond, dk_tensor *a, dk_tensor *b)
{
    dkh_args args = {.nv = 0};
    dk_tensor *in[3] = {cond, a, b};
    return dkh_op_run(DKH_OP_WHERE, &args, 3, in);
}
