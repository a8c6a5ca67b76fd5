/* core/tensor/op_norm_impl.h — what batch norm's two files share:
 * op_norm.c (the op, its reference kernels and dk_batch_norm) and
 * op_norm_sync.c (the synchronised forward and backward, bn_sync.h).
 * Internal to libdk.
 */
#ifndef DKH_OP_NORM_IMPL_H
#define DKH_OP_NORM_IMPL_H

#include "bn_sync.h"
#include "tensor_impl.h"

/* Channel c's elements of x (N, C, *) are visited as (n, c, j) with j over the
 * flattened trailing dims; elem_off maps them through x's strides. */
static inline int64_t inner_count(const dk_tensor *x)
{
    return dkh_numel(x->ndim - 2, x->shape + 2);
}

static inline int64_t elem_off(const dk_tensor *x, int64_t n, int64_t c, int64_t j)
{
    return n * x->strides[0] + c * x->strides[1] +
           dkh_offset_of(j, x->ndim - 2, x->shape + 2, x->strides + 2);
}

/* The op's argument checks (inputs x, w, b; f[0] eps); a synchronised
 * forward checks the count of values per channel over every process instead
 * (local_count false). */
dk_status dkh_bn_check(const dkh_args *a, dk_tensor *const *in, bool local_count) DK_CHECK;

/* Running statistics rm, rv of channel ch, updated in place outside autograd
 * with a batch's mean and biased variance over M values (momentum; the
 * unbiased variance, as PyTorch). */
void dkh_bn_update_running(dk_tensor *rm, dk_tensor *rv, int64_t ch, double mean, double var,
                           double M, double momentum);

/* A training forward of x (N, C, *) with w, b (C) whose statistics are summed
 * over every process by sync; rm, rv (or NULL) updated. Records a batch_norm
 * node with i[0] = 1, whose backward is dkh_bn_sync_backward. NULL with the
 * error recorded on failure. */
dk_tensor *dkh_bn_sync_forward(const dkh_bn_sync *sync, dk_tensor *x, dk_tensor *w, dk_tensor *b,
                               dk_tensor *rm, dk_tensor *rv, double momentum, double eps);

/* The backward of such a node (the op's backward signature, less its args). */
dk_status dkh_bn_sync_backward(dk_tensor *const *in, dk_tensor *const *aux, dk_tensor *g,
                               const bool *needs, dk_tensor **gin) DK_CHECK;

#endif /* DKH_OP_NORM_IMPL_H */
