/* tests/ops/op_cases.h — the rows of the table-driven op suite.
 *
 * Each group of ops keeps its rows in its own file (cases_<group>.c), as an
 * array ended by a row whose name is NULL; test_ops.c walks every group and
 * fails when an op of DKH_OP_LIST has no row in any of them.
 */
#ifndef DK_TEST_OP_CASES_H
#define DK_TEST_OP_CASES_H

#include "tensor/tensor_impl.h"

enum {
    POS = 1 << 0,    /* inputs in [0.5, 2] (log, sqrt, div, pow) */
    NOGRAD = 1 << 1, /* not differentiable */
    QUANT = 1 << 2,  /* inputs on a 0.5 grid so comparisons see ties */
    COND0 = 1 << 3,  /* input 0 is a bool condition */
    NOF32 = 1 << 4,  /* skip the f32 fast-vs-reference run */
    APART = 1 << 5,  /* inputs at least 0.05 from each other's kinks (see gen) */
};

typedef dk_tensor *(*op_fn)(dk_tensor *const *in);

typedef struct op_case {
    dkh_op_id op;
    const char *name;
    int n_in;
    const char *shapes; /* variants "|", inputs ";", dims ",", "s" = scalar, "" = no inputs */
    unsigned flags;
    op_fn fn;
} op_case;

/* The groups; each defines `const op_case dkt_cases_<group>[]`. */
#define DKT_CASE_GROUPS(X) X(core) X(nn) X(index)

#define DKT_DECL_(g) extern const op_case dkt_cases_##g[];
DKT_CASE_GROUPS(DKT_DECL_)
#undef DKT_DECL_

/* A row's function sees its inputs as in[0], in[1], ... */
#define IN0 in[0]
#define IN1 in[1]
#define IN2 in[2]
#define F1(name, expr) static dk_tensor *name(dk_tensor *const *in) { return (expr); }

/* The gradient of sum(f(x)^2) w.r.t. a fresh leaf over x's values (grad mode
 * on): rows of large shapes use it to run the fast backward kernels. */
dk_tensor *dkt_grad_of(dk_tensor *x, dk_tensor *(*f)(dk_tensor *));

/* Shapes: 2-d and 3-d variants include batch 1, odd sizes and an empty dim. */
#define U2 "1,5|3,7|4,1|0,3"
#define U3 "2,3,5|1,4,3|3,1,2|2,0,3"
#define B2 "3,5;3,5|1,5;4,1|2,3,4;3,1|s;2,3|0,3;1,3"

#endif
