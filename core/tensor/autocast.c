/* core/tensor/autocast.c — mixed precision scopes: dk_autocast_begin/end.
 *
 * Inside a scope opened with DK_DTYPE_BF16 the matrix-product ops (conv2d,
 * conv_transpose2d, matmul, linear) cast their f32 inputs to bf16, compute
 * there (oneDNN's bf16 primitives accumulate in f32; on AMX machines they run
 * 2-3x faster than f32) and cast the result back to f32. Everything else —
 * parameters, their gradients, normalisation, losses, reductions — stays
 * f32, because those are where bf16's 8-bit mantissa loses training signal.
 * The casts are ordinary differentiable ops, so a parameter's gradient is
 * computed in bf16 by the product's backward and arrives in f32 through the
 * cast's backward, which is what PyTorch's autocast does.
 *
 * The state is a per-thread stack so that scopes nest (a DK_DTYPE_F32 scope
 * inside a bf16 one turns autocast off for a region, like PyTorch's
 * autocast(enabled=False)). dk_backward suspends it: gradients are computed
 * in the dtypes the forward chose, whatever scope the backward is called in.
 */
#include "autocast.h"

#define MAX_DEPTH 32

static _Thread_local dk_dtype stack[MAX_DEPTH];
static _Thread_local int depth;
static _Thread_local bool suspended;

dk_status dk_autocast_begin(dk_dtype dtype)
{
    if (dtype != DK_DTYPE_BF16 && dtype != DK_DTYPE_F32)
        return dk_fail(DK_ERR_ARG, "dk_autocast_begin: %s is not an autocast dtype (bf16, or "
                                   "f32 to turn autocast off inside a scope)",
                       (unsigned)dtype < DK_DTYPE_COUNT ? dk_dtype_name(dtype) : "?");
    if (depth == MAX_DEPTH)
        return dk_fail(DK_ERR_RUNTIME, "dk_autocast_begin: more than %d nested scopes (a "
                                       "missing dk_autocast_end?)", MAX_DEPTH);
    stack[depth++] = dtype;
    return DK_OK;
}

dk_status dk_autocast_end(void)
{
    if (depth == 0)
        return dk_fail(DK_ERR_RUNTIME, "dk_autocast_end: no autocast scope is open on this "
                                       "thread");
    depth--;
    return DK_OK;
}

dk_dtype dk_autocast_dtype(void)
{
    return depth ? stack[depth - 1] : DK_DTYPE_F32;
}

dk_dtype dkh_autocast_target(void)
{
    return suspended ? DK_DTYPE_F32 : dk_autocast_dtype();
}

bool dkh_autocast_suspend(bool on)
{
    bool was = suspended;
    suspended = on;
    return was;
}

dk_tensor *dkh_autocast_in(dk_tensor *t, dk_dtype dt)
{
    if (!t || t->dtype != DK_DTYPE_F32 || dt == DK_DTYPE_F32)
        return t;
    return dk_cast(t, dt);
}
