/* core/tensor/op_unary.c — elementwise ops of one tensor.
 *
 * One table row per op holds all of it: which dtypes it takes, whether its
 * backward reads the output, the function and its derivative. The forward
 * reference kernel applies f; the backward is a dedicated kernel (slot
 * DKH_BWD) computing g * f'(x, y) in one pass, since writing each derivative
 * as a chain of ops would allocate several temporaries per activation.
 * Scalars: leaky_relu f[0] = slope; clamp f[0], f[1] = lo, hi; pow_scalar
 * f[0] = p; affine f[0], f[1] = a, b for a*x + b.
 */
#include "tensor_impl.h"

#include <math.h>
#include <string.h>

#define SQRT1_2 0.70710678118654752440
#define INV_SQRT_2PI 0.39894228040143267794

static double sigmoid(double x)
{
    return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
}

static double f_neg(double x, double y, const dkh_args *a) { return -x; }
static double d_neg(double x, double y, const dkh_args *a) { return -1; }
static double f_abs(double x, double y, const dkh_args *a) { return fabs(x); }
static double d_abs(double x, double y, const dkh_args *a) { return x > 0 ? 1 : x < 0 ? -1 : 0; }
static double f_exp(double x, double y, const dkh_args *a) { return exp(x); }
static double d_exp(double x, double y, const dkh_args *a) { return y; }
static double f_log(double x, double y, const dkh_args *a) { return log(x); }
static double d_log(double x, double y, const dkh_args *a) { return 1 / x; }
static double f_sqrt(double x, double y, const dkh_args *a) { return sqrt(x); }
static double d_sqrt(double x, double y, const dkh_args *a) { return 0.5 / y; }
static double f_rsqrt(double x, double y, const dkh_args *a) { return 1 / sqrt(x); }
static double d_rsqrt(double x, double y, const dkh_args *a) { return -0.5 * y * y * y; }
static double f_relu(double x, double y, const dkh_args *a) { return x <= 0 ? 0 : x; } /* NaN stays NaN */
static double d_relu(double x, double y, const dkh_args *a) { return x <= 0 ? 0 : 1; }
static double f_sigmoid(double x, double y, const dkh_args *a) { return sigmoid(x); }
static double d_sigmoid(double x, double y, const dkh_args *a) { return y * (1 - y); }
static double f_tanh(double x, double y, const dkh_args *a) { return tanh(x); }
static double d_tanh(double x, double y, const dkh_args *a) { return 1 - y * y; }
static double f_gelu(double x, double y, const dkh_args *a) { return 0.5 * x * (1 + erf(x * SQRT1_2)); }
static double d_gelu(double x, double y, const dkh_args *a)
{
    return 0.5 * (1 + erf(x * SQRT1_2)) + x * INV_SQRT_2PI * exp(-0.5 * x * x);
}
static double f_silu(double x, double y, const dkh_args *a) { return x * sigmoid(x); }
static double d_silu(double x, double y, const dkh_args *a)
{
    double s = sigmoid(x);
    return s * (1 + x * (1 - s));
}
/* log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow for large x. */
static double f_softplus(double x, double y, const dkh_args *a) { return fmax(x, 0) + log1p(exp(-fabs(x))); }
static double d_softplus(double x, double y, const dkh_args *a) { return sigmoid(x); }
static double f_leaky(double x, double y, const dkh_args *a) { return x > 0 ? x : a->f[0] * x; }
static double d_leaky(double x, double y, const dkh_args *a) { return x > 0 ? 1 : a->f[0]; }
static double f_clamp(double x, double y, const dkh_args *a) { return fmin(fmax(x, a->f[0]), a->f[1]); }
/* The gradient passes where the input was inside [lo, hi], bounds included (PyTorch). */
static double d_clamp(double x, double y, const dkh_args *a) { return x >= a->f[0] && x <= a->f[1]; }
static double f_pow(double x, double y, const dkh_args *a) { return pow(x, a->f[0]); }
static double d_pow(double x, double y, const dkh_args *a)
{
    return a->f[0] == 0 ? 0 : a->f[0] * pow(x, a->f[0] - 1);
}
static double f_affine(double x, double y, const dkh_args *a) { return a->f[0] * x + a->f[1]; }
static double d_affine(double x, double y, const dkh_args *a) { return a->f[0]; }

typedef double (*ufn)(double x, double y, const dkh_args *a);

typedef struct unary {
    dkh_op_id op;
    bool ints;     /* also takes integer dtypes */
    bool save_out; /* derivative reads y */
    ufn f, df;
} unary;

#define U(op, ints, save, f, df) [DKH_OP_##op] = {DKH_OP_##op, ints, save, f, df}
static const unary unaries[DKH_OP_COUNT] = {
    U(NEG, true, false, f_neg, d_neg),
    U(ABS, true, false, f_abs, d_abs),
    U(EXP, false, true, f_exp, d_exp),
    U(LOG, false, false, f_log, d_log),
    U(SQRT, false, true, f_sqrt, d_sqrt),
    U(RSQRT, false, true, f_rsqrt, d_rsqrt),
    U(RELU, true, false, f_relu, d_relu),
    U(SIGMOID, false, true, f_sigmoid, d_sigmoid),
    U(TANH, false, true, f_tanh, d_tanh),
    U(GELU, false, false, f_gelu, d_gelu),
    U(SILU, false, false, f_silu, d_silu),
    U(SOFTPLUS, false, false, f_softplus, d_softplus),
    U(LEAKY_RELU, false, false, f_leaky, d_leaky),
    U(CLAMP, true, false, f_clamp, d_clamp),
    U(POW_SCALAR, false, false, f_pow, d_pow),
    U(AFFINE, true, false, f_affine, d_affine),
};
#undef U

static const unary *unary_of(dkh_op_id op)
{
    const unary *u = &unaries[op];
    DKH_ASSERT(u->f && u->op == op);
    return u;
}

/* The current call's op, for the double-only map function. Reference
 * kernels run on the calling thread, so a thread-local is enough. */
static _Thread_local const unary *cur;

static double map_f(const double *x, const dkh_args *a)
{
    return cur->f(x[0], 0, a);
}

static dk_status unary_infer_for(dkh_op_id op, dk_tensor *const *in, dkh_meta *m)
{
    const dk_tensor *x = in[0];
    if (!unary_of(op)->ints && !dkh_is_float(x->dtype))
        return dkh_op_fail(op, 1, in, DK_ERR_ARG, "needs a float tensor");
    if (x->dtype == DK_DTYPE_BOOL)
        return dkh_op_fail(op, 1, in, DK_ERR_ARG, "does not take bool");
    m->dtype = x->dtype;
    m->ndim = x->ndim;
    for (int d = 0; d < x->ndim; d++)
        m->shape[d] = x->shape[d];
    dkh_contiguous_strides(m->ndim, m->shape, m->strides);
    return DK_OK;
}

static bool unary_ref_fwd(const dkh_kcall *c)
{
    cur = unary_of(c->op);
    dkh_ref_map(c, map_f);
    return true;
}

/* in = {x, y or NULL, g}; out = gx, laid out like x. */
static bool unary_ref_bwd(const dkh_kcall *c)
{
    const unary *u = unary_of(c->op);
    const dk_tensor *x = c->in[0], *y = c->in[1], *g = c->in[2];
    int64_t n = dkh_numel(x->ndim, x->shape);
    for (int64_t i = 0; i < n; i++) {
        double xv = dkh_load(dkh_base(x), x->dtype, dkh_offset_of(i, x->ndim, x->shape, x->strides));
        double yv = y ? dkh_load(dkh_base(y), y->dtype,
                                 dkh_offset_of(i, y->ndim, y->shape, y->strides))
                      : 0;
        double gv = dkh_load(dkh_base(g), g->dtype, dkh_offset_of(i, g->ndim, g->shape, g->strides));
        dkh_store(dkh_base(c->out), c->out->dtype,
                  dkh_offset_of(i, c->out->ndim, c->out->shape, c->out->strides),
                  gv * u->df(xv, yv, c->args));
    }
    return true;
}

static dk_status unary_backward_for(dkh_op_id op, const dkh_args *a, dk_tensor *const *in,
                                    dk_tensor *out, dk_tensor *g, dk_tensor **gin)
{
    gin[0] = dkh_run_backward_kernel(op, a, in[0], out, g);
    return gin[0] ? DK_OK : dk_last_status();
}

/* Defines the op's rule, backward and dkh_op_def, and its public function. */
#define UNARY_DEF(OP, name, save)                                                              \
    static dk_status name##_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)        \
    {                                                                                           \
        return unary_infer_for(DKH_OP_##OP, in, m);                                            \
    }                                                                                           \
    static dk_status name##_backward(const dkh_args *a, dk_tensor *const *in, dk_tensor *out, dk_tensor *const *aux,  \
                                     dk_tensor *g, const bool *needs, dk_tensor **gin)          \
    {                                                                                           \
        return unary_backward_for(DKH_OP_##OP, a, in, out, g, gin);                            \
    }                                                                                           \
    const dkh_op_def dkh_op_##name = {#name, 1, DKH_F_DIFF | DKH_F_LAYOUT | (save ? DKH_F_SAVE_OUT : 0), \
                                      name##_infer, name##_backward,                            \
                                      {unary_ref_fwd, unary_ref_bwd}};

UNARY_DEF(NEG, neg, 0)
UNARY_DEF(ABS, abs, 0)
UNARY_DEF(EXP, exp, 1)
UNARY_DEF(LOG, log, 0)
UNARY_DEF(SQRT, sqrt, 1)
UNARY_DEF(RSQRT, rsqrt, 1)
UNARY_DEF(RELU, relu, 0)
UNARY_DEF(SIGMOID, sigmoid, 1)
UNARY_DEF(TANH, tanh, 1)
UNARY_DEF(GELU, gelu, 0)
UNARY_DEF(SILU, silu, 0)
UNARY_DEF(SOFTPLUS, softplus, 0)
UNARY_DEF(LEAKY_RELU, leaky_relu, 0)
UNARY_DEF(CLAMP, clamp, 0)
UNARY_DEF(POW_SCALAR, pow_scalar, 0)
UNARY_DEF(AFFINE, affine, 0)

static dk_tensor *run1(dkh_op_id op, dk_tensor *x, double f0, double f1)
{
    dkh_args a = {.f = {f0, f1}};
    return dkh_op_run(op, &a, 1, &x);
}

dk_tensor *dk_neg(dk_tensor *x) { return run1(DKH_OP_NEG, x, 0, 0); }
dk_tensor *dk_abs(dk_tensor *x) { return run1(DKH_OP_ABS, x, 0, 0); }
dk_tensor *dk_exp(dk_tensor *x) { return run1(DKH_OP_EXP, x, 0, 0); }
dk_tensor *dk_ln(dk_tensor *x) { return run1(DKH_OP_LOG, x, 0, 0); }
dk_tensor *dk_sqrt(dk_tensor *x) { return run1(DKH_OP_SQRT, x, 0, 0); }
dk_tensor *dk_rsqrt(dk_tensor *x) { return run1(DKH_OP_RSQRT, x, 0, 0); }
dk_tensor *dk_relu(dk_tensor *x) { return run1(DKH_OP_RELU, x, 0, 0); }

/* x <- op(x) in its own storage, for ops whose gradient can be computed from
 * the values they write: relu's mask x > 0 is y > 0. A leaf that requires
 * grad is refused (its gradient is defined on the values it holds), and so
 * is a storage another tensor also uses (a view, or an alias a node saved):
 * that tensor would change under its holder's feet. A node that used x
 * before is caught later by the version check in dk_backward. */
/* "relu_: input (3,) f64 <why> (use relu)": the tensor is described only
 * when the call is refused, not on every call. */
static dk_status refuse_inplace(const char *name, const dk_tensor *x, const char *why)
{
    dkh_buf b = DKH_BUF_INIT;
    dkh_describe(&b, x);
    dk_status s = dk_fail(DK_ERR_ARG, "%s: input %s %s (use %.*s)", name, dkh_buf_str(&b), why,
                          (int)strlen(name) - 1, name);
    dkh_buf_fini(&b);
    return s;
}

static dk_tensor *run1_inplace(dkh_op_id op, const char *name, dk_tensor *x)
{
    if (!x) {
        if (dk_last_status() == DK_OK)
            dk_fail(DK_ERR_ARG, "%s: input is NULL", name);
        return NULL;
    }
    bool record = dk_grad_enabled() && x->requires_grad;
    dk_status s = DK_OK;
    dkh_meta m;
    memset(&m, 0, sizeof m);
    if (record && !x->grad_fn)
        s = refuse_inplace(name, x, "is a leaf that requires grad; writing into it would change "
                                    "the values its gradient is taken at");
    else if (atomic_load(&x->storage->refs) != 1)
        s = refuse_inplace(name, x, "shares its storage with another tensor (a view, or the "
                                    "output an op such as exp saved for its gradient)");
    else if ((s = unary_infer_for(op, &x, &m)) == DK_OK) {
        dkh_args a = {.nv = 0};
        s = dkh_op_run_into(op, &a, 1, &x, x);
        if (s == DK_OK) {
            x->storage->version++;
            if (record)
                s = dkh_record_inplace(op, &a, x);
        }
    }
    return s == DK_OK ? x : NULL;
}

dk_tensor *dk_relu_(dk_tensor *x) { return run1_inplace(DKH_OP_RELU, "relu_", x); }
dk_tensor *dk_sigmoid(dk_tensor *x) { return run1(DKH_OP_SIGMOID, x, 0, 0); }
dk_tensor *dk_tanh(dk_tensor *x) { return run1(DKH_OP_TANH, x, 0, 0); }
dk_tensor *dk_gelu(dk_tensor *x) { return run1(DKH_OP_GELU, x, 0, 0); }
dk_tensor *dk_silu(dk_tensor *x) { return run1(DKH_OP_SILU, x, 0, 0); }
dk_tensor *dk_softplus(dk_tensor *x) { return run1(DKH_OP_SOFTPLUS, x, 0, 0); }
dk_tensor *dk_leaky_relu(dk_tensor *x, double slope) { return run1(DKH_OP_LEAKY_RELU, x, slope, 0); }
dk_tensor *dk_pow_scalar(dk_tensor *x, double p) { return run1(DKH_OP_POW_SCALAR, x, p, 0); }
dk_tensor *dk_add_scalar(dk_tensor *x, double s) { return run1(DKH_OP_AFFINE, x, 1, s); }
dk_tensor *dk_mul_scalar(dk_tensor *x, double s) { return run1(DKH_OP_AFFINE, x, s, 0); }

dk_tensor *dk_clamp(dk_tensor *x, double lo, double hi)
{
    if (x && !(lo <= hi)) {
        dkh_op_fail(DKH_OP_CLAMP, 1, &x, DK_ERR_ARG, "lo %g > hi %g", lo, hi);
        return NULL;
    }
    return run1(DKH_OP_CLAMP, x, lo, hi);
}
