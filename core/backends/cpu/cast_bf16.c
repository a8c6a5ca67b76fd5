/* core/backends/cpu/cast_bf16.c — the cast kernel: f32 <-> bf16 here, every
 * other pair through dkh_cpu_copy.
 *
 * Autocast (core/tensor/autocast.c) casts every activation and weight that
 * enters a convolution or matrix product, and every result and gradient that
 * leaves one, so these casts are on the training step's path and must run at
 * memory speed; the reference kernel converts one element at a time through
 * double. The rounding is the reference's bit for bit (nearest even, NaN
 * kept quiet, subnormals kept) — written as integer arithmetic the compiler
 * vectorises, rather than with AVX512-BF16's conversion instruction, which
 * flushes subnormals to zero.
 *
 * The output of a cast is contiguous. The input may have any strides: each
 * row of its last dim is read at that dim's stride. Work is split over
 * blocks of the flat element index, so one long row uses every thread.
 */
#include "cpu.h"

#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define DKH_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define DKH_CLONES
#endif

#define BLOCK 16384

DKH_CLONES static void to_bf16(uint16_t *restrict o, const float *restrict a, int64_t n,
                               int64_t sa)
{
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &a[i * sa], 4);
        uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
        o[i] = (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : r);
    }
}

DKH_CLONES static void to_f32(float *restrict o, const uint16_t *restrict a, int64_t n,
                              int64_t sa)
{
    for (int64_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)a[i * sa] << 16;
        memcpy(&o[i], &u, 4);
    }
}

bool dkh_cpu_cast(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0];
    dk_tensor *y = c->out;
    bool down = x->dtype == DK_DTYPE_F32 && y->dtype == DK_DTYPE_BF16;
    bool up = x->dtype == DK_DTYPE_BF16 && y->dtype == DK_DTYPE_F32;
    /* Both channels-last: the same bytes order, converted as one flat run. */
    bool flat = !dk_tensor_is_contiguous(y) && dkh_is_channels_last(y) && dkh_is_channels_last(x);
    if ((!down && !up) || (!dk_tensor_is_contiguous(y) && !flat))
        return dkh_cpu_copy(c);
    int nd = x->ndim;
    int64_t total = dkh_numel(nd, x->shape);
    int64_t inner = nd ? x->shape[nd - 1] : 1, sa = nd ? x->strides[nd - 1] : 1;
    if (flat) {
        inner = total;
        sa = 1;
    }
    if (total == 0)
        return true;
    int64_t nblocks = (total + BLOCK - 1) / BLOCK;
    const char *xb = dkh_base(x);
    char *yb = dkh_base(y);
#pragma omp parallel for schedule(static) if (total >= DKH_CPU_PAR_MIN)
    for (int64_t blk = 0; blk < nblocks; blk++) {
        int64_t i = blk * BLOCK, end = i + BLOCK < total ? i + BLOCK : total;
        while (i < end) {
            /* The part of row i / inner from column i % inner that lies in this block. */
            int64_t col = i % inner, n = inner - col < end - i ? inner - col : end - i;
            int64_t off = (nd ? dkh_offset_of(i / inner, nd - 1, x->shape, x->strides) : 0) +
                          col * sa;
            if (down)
                to_bf16((uint16_t *)yb + i, (const float *)xb + off, n, sa);
            else
                to_f32((float *)yb + i, (const uint16_t *)xb + off, n, sa);
            i += n;
        }
    }
    return true;
}
