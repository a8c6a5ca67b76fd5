/* core/tensor/layout.c — which memory layout an op's output gets.
 *
 * Every tensor is indexed (N, C, H, W) in PyTorch order; the strides say how
 * it lies in memory. Besides the plain contiguous layout, the runtime knows
 * one more dense layout for 4-d activations: channels-last, (N, H, W, C) in
 * memory, strides (HWC, 1, WC, C). oneDNN's direct convolutions read and
 * write it without reorders, so a network whose activations stay
 * channels-last from the first convolution to the last spends no time
 * converting layouts (bench/RESULTS.md measures the difference).
 *
 * Layout is never semantics: an op gives the same values for any strides.
 * What it decides is where an op flagged DKH_F_LAYOUT puts its output (the
 * same rule as PyTorch's memory-format propagation): channels-last when the
 * input it follows is channels-last, else contiguous. A convolution flagged
 * DKH_F_LAYOUT_SEED also starts the chain from a single-channel input, whose
 * two layouts are the same bytes: grey images enter plain and the first
 * convolution's output is channels-last. Every other op writes contiguous
 * outputs and reads any strides.
 */
#include "tensor_impl.h"

#include <string.h>

void dkh_channels_last_strides(const int64_t *shape, int64_t *strides)
{
    int64_t C = shape[1] > 0 ? shape[1] : 1, W = shape[3] > 0 ? shape[3] : 1;
    int64_t H = shape[2] > 0 ? shape[2] : 1;
    strides[1] = 1;
    strides[3] = C;
    strides[2] = W * C;
    strides[0] = H * W * C;
}

bool dkh_is_channels_last(const dk_tensor *t)
{
    if (t->ndim != 4)
        return false;
    int64_t want[4];
    dkh_channels_last_strides(t->shape, want);
    for (int d = 0; d < 4; d++)
        if (t->shape[d] != 1 && t->strides[d] != want[d])
            return false;
    return true;
}

bool dkh_is_strictly_channels_last(const dk_tensor *t)
{
    return dkh_is_channels_last(t) && !dk_tensor_is_contiguous(t);
}

/* The input whose layout the output follows: the first 4-d input of the
 * output's shape (elementwise ops, where input 0 may be a broadcast
 * operand), else input 0 (a convolution's x). */
static const dk_tensor *layout_source(dk_tensor *const *in, int n_in, const dkh_meta *m)
{
    for (int i = 0; i < n_in; i++)
        if (in[i] && in[i]->ndim == 4 && memcmp(in[i]->shape, m->shape, 4 * sizeof *m->shape) == 0)
            return in[i];
    return in[0]->ndim == 4 ? in[0] : NULL;
}

bool dkh_out_channels_last(unsigned flags, dk_tensor *const *in, int n_in, const dkh_meta *m)
{
    if (!(flags & DKH_F_LAYOUT) || n_in == 0 || m->ndim != 4)
        return false;
    const dk_tensor *src = layout_source(in, n_in, m);
    if (!src)
        return false;
    if (dkh_is_strictly_channels_last(src))
        return true;
    return (flags & DKH_F_LAYOUT_SEED) && src->shape[1] == 1 && m->shape[1] > 1 &&
           dkh_is_channels_last(src);
}

void dkh_tensor_make_channels_last(dk_tensor *t)
{
    DKH_ASSERT(t->ndim == 4 && dk_tensor_is_contiguous(t));
    dkh_channels_last_strides(t->shape, t->strides);
}
