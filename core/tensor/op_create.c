/* core/tensor/op_create.c — ops that make values: full, arange, rand, randn,
 * and the ones that move them: copy and cast.
 *
 * Each op here sits in one block: its rule (infer_*), its backward, its
 * reference kernel, and its dkh_op_def. Creation ops have no inputs and no
 * gradient; copy is the identity for autograd and cast between float types
 * passes the gradient back through the reverse cast.
 */
#include "tensor_impl.h"

#include <math.h>
#include <string.h>

static dk_status infer_shape_arg(const dkh_args *a, dkh_meta *m)
{
    m->dtype = a->dtype;
    m->ndim = a->nv;
    memcpy(m->shape, a->v, sizeof m->shape);
    dkh_contiguous_strides(m->ndim, m->shape, m->strides);
    m->device = a->device;
    return DK_OK;
}

/* ---- full -------------------------------------------------------------------------- */

static dk_status full_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    return infer_shape_arg(a, m);
}

static double full_fn(const double *x, const dkh_args *a)
{
    return a->f[0];
}

static bool full_ref(const dkh_kcall *c)
{
    dkh_ref_map(c, full_fn);
    return true;
}

const dkh_op_def dkh_op_full = {"full", 0, DKH_F_CREATE, full_infer, NULL, {full_ref, NULL}};

/* ---- arange ----------------------------------------------------------------------------- */

static dk_status arange_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    double start = a->f[0], end = a->f[1], step = a->f[2];
    if (step == 0 || !isfinite(start) || !isfinite(end) || !isfinite(step))
        return dkh_op_fail(DKH_OP_ARANGE, 0, NULL, DK_ERR_ARG,
                           "start %g, end %g, step %g: step must be non-zero and all finite",
                           start, end, step);
    if ((unsigned)a->dtype >= DK_DTYPE_COUNT)
        return dkh_op_fail(DKH_OP_ARANGE, 0, NULL, DK_ERR_ARG, "invalid dtype %d", (int)a->dtype);
    double n = ceil((end - start) / step);
    if (n > 1e15)
        return dkh_op_fail(DKH_OP_ARANGE, 0, NULL, DK_ERR_ARG, "%g elements is too many", n);
    m->dtype = a->dtype;
    m->ndim = 1;
    m->shape[0] = n > 0 ? (int64_t)n : 0;
    m->strides[0] = 1;
    m->device = a->device;
    return DK_OK;
}

static bool arange_ref(const dkh_kcall *c)
{
    int64_t n = c->out->shape[0];
    for (int64_t i = 0; i < n; i++)
        dkh_store(dkh_base(c->out), c->out->dtype, i * c->out->strides[0],
                  c->args->f[0] + (double)i * c->args->f[2]);
    return true;
}

const dkh_op_def dkh_op_arange = {"arange", 0, DKH_F_CREATE, arange_infer, NULL,
                                  {arange_ref, NULL}};

/* ---- rand, randn ------------------------------------------------------------------------ */

static dk_status rand_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    if (!dkh_is_float(a->dtype))
        return dk_fail(DK_ERR_ARG, "rand/randn: dtype %s is not a float type",
                       dk_dtype_name(a->dtype));
    return infer_shape_arg(a, m);
}

static bool rand_ref(const dkh_kcall *c)
{
    int64_t n = dkh_numel(c->out->ndim, c->out->shape);
    const dk_rng *r = &c->args->rng;
    for (int64_t i = 0; i < n; i++)
        dkh_store(dkh_base(c->out), c->out->dtype, i,
                  c->op == DKH_OP_RAND ? dkh_rng_uniform(r->key, r->counter + (uint64_t)i)
                                       : dkh_rng_normal(r->key, r->counter + (uint64_t)i));
    return true;
}

const dkh_op_def dkh_op_rand = {"rand", 0, DKH_F_CREATE, rand_infer, NULL, {rand_ref, NULL}};
const dkh_op_def dkh_op_randn = {"randn", 0, DKH_F_CREATE, rand_infer, NULL, {rand_ref, NULL}};

/* ---- copy ------------------------------------------------------------------------------- */

static dk_status same_meta(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    m->dtype = in[0]->dtype;
    m->ndim = in[0]->ndim;
    memcpy(m->shape, in[0]->shape, sizeof m->shape);
    dkh_contiguous_strides(m->ndim, m->shape, m->strides);
    return DK_OK;
}

static double identity_fn(const double *x, const dkh_args *a)
{
    return x[0];
}

static bool copy_ref(const dkh_kcall *c)
{
    dkh_ref_map(c, identity_fn);
    return true;
}

static dk_status copy_backward(const dkh_args *a, dk_tensor *const *in, dk_tensor *out, dk_tensor *const *aux,
                               dk_tensor *g, const bool *needs, dk_tensor **gin)
{
    gin[0] = g;
    return DK_OK;
}

const dkh_op_def dkh_op_copy = {"copy", 1, DKH_F_DIFF, same_meta, copy_backward,
                                {copy_ref, NULL}};

dk_tensor *dk_copy(dk_tensor *x)
{
    dkh_args a = {.nv = 0};
    return dkh_op_run(DKH_OP_COPY, &a, 1, &x);
}

dk_tensor *dk_contiguous(dk_tensor *x)
{
    if (x && dk_tensor_is_contiguous(x))
        return dkh_scope_adopt(dk_tensor_retain(x));
    return dk_copy(x);
}

/* ---- cast ------------------------------------------------------------------------------- */

static dk_status cast_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    if ((unsigned)a->dtype >= DK_DTYPE_COUNT)
        return dkh_op_fail(DKH_OP_CAST, 1, in, DK_ERR_ARG, "invalid dtype %d", (int)a->dtype);
    same_meta(a, in, m);
    m->dtype = a->dtype;
    return DK_OK;
}

static dk_status cast_backward(const dkh_args *a, dk_tensor *const *in, dk_tensor *out, dk_tensor *const *aux,
                               dk_tensor *g, const bool *needs, dk_tensor **gin)
{
    gin[0] = dk_cast(g, in[0]->dtype);
    return DK_OK;
}

const dkh_op_def dkh_op_cast = {"cast", 1, DKH_F_DIFF | DKH_F_LAYOUT, cast_infer, cast_backward,
                                {copy_ref, NULL}};

dk_tensor *dk_cast(dk_tensor *x, dk_dtype dtype)
{
    dkh_args a = {.dtype = dtype};
    return dkh_op_run(DKH_OP_CAST, &a, 1, &x);
}
