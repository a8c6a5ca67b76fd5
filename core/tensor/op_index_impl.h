/* core/tensor/op_index_impl.h — helpers shared by the index group's op files
 * (op_index.c, op_sort.c, op_loss.c, op_resample.c, op_geometry.c) and
 * their CPU kernels: reading index tensors and walking coordinates. */
#ifndef DKH_OP_INDEX_IMPL_H
#define DKH_OP_INDEX_IMPL_H

#include "tensor_impl.h"

/* i64 or i32: the dtypes an index tensor may have. */
bool dkh_is_index_dtype(dk_dtype d);
/* The index at linear position i of t (any strides). */
int64_t dkh_index_at(const dk_tensor *t, int64_t i);
/* coord = the multi-index of linear position i in shape (C order). */
void dkh_unravel(int64_t i, int ndim, const int64_t *shape, int64_t *coord);
/* sum(coord[d] * strides[d]). */
int64_t dkh_dot_strides(int ndim, const int64_t *coord, const int64_t *strides);
/* Checks idx's dtype and that every value lies in [0, size) (or [-size,
 * size) when allow_negative); otherwise records "<op>: index 7 is out of
 * range for dim 1 of size 5 (inputs: ...)" and returns its status. */
dk_status dkh_check_indices(dkh_op_id op, int n_in, dk_tensor *const *in, const dk_tensor *idx,
                            int64_t size, int dim, bool allow_negative);

/* Reduction codes (dk/ops.h DK_REDUCTION_*) checked once. */
bool dkh_reduction_ok(int reduction);

/* interpolate's source coordinates along one dim (op_resample.c has the
 * conventions): nearest's source index of output o, and bilinear's
 * fractional source position. scale is the op's coordinate scale. */
int64_t dkh_nearest_src(int64_t o, double scale, int64_t in, int64_t out);
double dkh_linear_src(int64_t o, double scale, bool align_corners);
/* dropout's factor for element i of the call with arguments a: 0 (dropped)
 * or 1 / (1 - p). */
double dkh_dropout_scale(const dkh_args *a, int64_t i);

#endif
