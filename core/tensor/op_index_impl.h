/* core/tensor/op_index_impl.h — helpers shared by the index group's op files
 * (op_index.c, op_sort.c, op_loss.c, op_resample.c, op_geometry.c) and
 * their CPU kernels: reading index tensors and walking coordinates. */
#ifndef DKH_OP_INDEX_IMPL_H
#define DKH_OP_INDEX_IMPL_H

#include "tensor_impl.h"

#include <math.h>

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

/* dropout's random bits. Element j of a generator's stream (j = counter + i)
 * is kept when its 32-bit value is below dkh_dropout_threshold(p). One
 * 64-bit hash gives two elements' values, so masks cost half a hash per
 * element: elements are grouped in blocks of 16, and hash l of block b
 * (l < 8) gives element 16b + l its low half and element 16b + 8 + l its
 * high half, so a kernel computes a block's 8 hashes in one vector and
 * stores each half contiguously. The hash is SplitMix64's output function
 * over the stream position (the SplitMix64 generator seeded with the key),
 * a pure function of (key, j): any thread may compute any element. */
static inline uint64_t dkh_dropout_hash(uint64_t key, uint64_t c)
{
    uint64_t z = key + c * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The 32-bit value of stream element j. */
static inline uint32_t dkh_dropout_u32(uint64_t key, uint64_t j)
{
    uint64_t h = dkh_dropout_hash(key, (j >> 4) * 8 + (j & 7));
    return (j & 8) ? (uint32_t)(h >> 32) : (uint32_t)h;
}

/* Values below this are kept: (1 - p) 2^32, so p = 0 keeps everything and
 * p = 1 nothing. */
static inline uint64_t dkh_dropout_threshold(double p)
{
    return (uint64_t)ldexp(1 - p, 32);
}

#endif
