/* core/tensor/op_softmax.c — softmax and log_softmax along one dim.
 *
 * Both subtract the row maximum first, so large logits do not overflow. Their
 * backward reads the output: softmax gives y * (g - sum(g * y)), log_softmax
 * gives g - exp(y) * sum(g), each sum over the dim, in one dedicated kernel.
 * a->i[0] is the (normalised) dim.
 */
#include "tensor_impl.h"

#include <math.h>
#include <string.h>

static dk_status softmax_infer_for(dkh_op_id op, dk_tensor *const *in, dkh_meta *m)
{
    const dk_tensor *x = in[0];
    if (!dkh_is_float(x->dtype))
        return dkh_op_fail(op, 1, in, DK_ERR_ARG, "needs a float tensor");
    m->dtype = x->dtype;
    m->ndim = x->ndim;
    memcpy(m->shape, x->shape, sizeof m->shape);
    dkh_contiguous_strides(m->ndim, m->shape, m->strides);
    return DK_OK;
}

static bool softmax_ref(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0];
    dk_tensor *o = c->out;
    int d = (int)c->args->i[0];
    int64_t n = x->ndim ? x->shape[d] : 1, xs = x->ndim ? x->strides[d] : 1,
            os = o->ndim ? o->strides[d] : 1;
    /* Rows: every index with dim d fixed at 0. */
    int64_t shape[DK_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    if (x->ndim)
        shape[d] = 1;
    int64_t rows = dkh_numel(x->ndim, shape);
    for (int64_t r = 0; r < rows; r++) {
        int64_t xb = dkh_offset_of(r, x->ndim, shape, x->strides);
        int64_t ob = dkh_offset_of(r, o->ndim, shape, o->strides);
        double mx = -INFINITY, sum = 0;
        for (int64_t k = 0; k < n; k++)
            mx = fmax(mx, dkh_load(dkh_base(x), x->dtype, xb + k * xs));
        for (int64_t k = 0; k < n; k++)
            sum += exp(dkh_load(dkh_base(x), x->dtype, xb + k * xs) - mx);
        for (int64_t k = 0; k < n; k++) {
            double v = dkh_load(dkh_base(x), x->dtype, xb + k * xs) - mx;
            dkh_store(dkh_base(o), o->dtype, ob + k * os,
                      c->op == DKH_OP_SOFTMAX ? exp(v) / sum : v - log(sum));
        }
    }
    return true;
}

/* Backward: in = {x, y, g}; out = gx. softmax: y (g - sum(g y)); log_softmax:
 * g - e^y sum(g); sums over the dim, in double. */
static bool softmax_ref_bwd(const dkh_kcall *c)
{
    const dk_tensor *y = c->in[1], *g = c->in[2];
    dk_tensor *o = c->out;
    int d = (int)c->args->i[0];
    bool log_ = c->op == DKH_OP_LOG_SOFTMAX;
    int64_t n = y->ndim ? y->shape[d] : 1;
    int64_t ys = y->ndim ? y->strides[d] : 1, gs = g->ndim ? g->strides[d] : 1,
            os = o->ndim ? o->strides[d] : 1;
    int64_t shape[DK_MAX_DIMS];
    memcpy(shape, y->shape, sizeof shape);
    if (y->ndim)
        shape[d] = 1;
    int64_t rows = dkh_numel(y->ndim, shape);
    for (int64_t r = 0; r < rows; r++) {
        int64_t yb = dkh_offset_of(r, y->ndim, shape, y->strides);
        int64_t gb = dkh_offset_of(r, g->ndim, shape, g->strides);
        int64_t ob = dkh_offset_of(r, o->ndim, shape, o->strides);
#define Y_(k) dkh_load(dkh_base(y), y->dtype, yb + (k) * ys)
#define G_(k) dkh_load(dkh_base(g), g->dtype, gb + (k) * gs)
        double sum = 0;
        for (int64_t k = 0; k < n; k++)
            sum += log_ ? G_(k) : G_(k) * Y_(k);
        for (int64_t k = 0; k < n; k++)
            dkh_store(dkh_base(o), o->dtype, ob + k * os,
                      log_ ? G_(k) - exp(Y_(k)) * sum : Y_(k) * (G_(k) - sum));
#undef Y_
#undef G_
    }
    return true;
}

/* One dedicated kernel instead of the three or four ops the formula takes
 * (and their temporaries). A broadcast gradient (from a sum) is made
 * contiguous once so the fast kernel takes it. */
static dk_status softmax_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *y,
                             dk_tensor *const *aux, dk_tensor *g, const bool *needs,
                             dk_tensor **gin)
{
    gin[0] = dkh_run_backward_kernel(DKH_OP_SOFTMAX, a, in[0], y, dk_contiguous(g));
    return gin[0] ? DK_OK : dk_last_status();
}

static dk_status log_softmax_bwd(const dkh_args *a, dk_tensor *const *in, dk_tensor *y,
                                 dk_tensor *const *aux, dk_tensor *g, const bool *needs,
                                 dk_tensor **gin)
{
    gin[0] = dkh_run_backward_kernel(DKH_OP_LOG_SOFTMAX, a, in[0], y, dk_contiguous(g));
    return gin[0] ? DK_OK : dk_last_status();
}

static dk_status softmax_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    return softmax_infer_for(DKH_OP_SOFTMAX, in, m);
}

static dk_status log_softmax_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    return softmax_infer_for(DKH_OP_LOG_SOFTMAX, in, m);
}

const dkh_op_def dkh_op_softmax = {"softmax", 1, DKH_F_DIFF | DKH_F_SAVE_OUT, softmax_infer,
                                   softmax_bwd, {softmax_ref, softmax_ref_bwd}};
const dkh_op_def dkh_op_log_softmax = {"log_softmax", 1, DKH_F_DIFF | DKH_F_SAVE_OUT,
                                       log_softmax_infer, log_softmax_bwd, {softmax_ref, softmax_ref_bwd}};

static dk_tensor *run_softmax(dkh_op_id op, dk_tensor *x, int dim)
{
    int d = 0;
    if (x && !dkh_wrap_dim(dim, x->ndim, &d)) {
        dkh_op_fail(op, 1, &x, DK_ERR_ARG, "dim %d out of range", dim);
        return NULL;
    }
    dkh_args a = {.i = {d}};
    return dkh_op_run(op, &a, 1, &x);
}

dk_tensor *dk_softmax(dk_tensor *x, int dim)
{
    return run_softmax(DKH_OP_SOFTMAX, x, dim);
}

dk_tensor *dk_log_softmax(dk_tensor *x, int dim)
{
    return run_softmax(DKH_OP_LOG_SOFTMAX, x, dim);
}
