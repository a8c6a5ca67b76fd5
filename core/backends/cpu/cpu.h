/* core/backends/cpu/cpu.h — what the CPU backend's kernel files share.
 *
 * An elementwise iterator that turns any strides and broadcasting into rows:
 * dims of size 1 are dropped and neighbouring dims that are contiguous with
 * each other in every operand are merged, so the common cases (contiguous,
 * broadcasting a row, a transposed input) end in one long inner loop.
 */
#ifndef DKH_CPU_H
#define DKH_CPU_H

#include "../../tensor/tensor_impl.h"

/* Below this many elements a kernel runs on one thread: starting a parallel
 * region costs more than the work. */
#define DKH_CPU_PAR_MIN 32768

#define DKH_EW_MAX_OPS (DKH_MAX_IN + 1)

typedef struct dkh_ew_iter {
    int ndim; /* after coalescing; the last dim is the inner loop */
    int nops; /* operand 0 is the output */
    int64_t shape[DK_MAX_DIMS];
    int64_t st[DKH_EW_MAX_OPS][DK_MAX_DIMS]; /* elements */
    char *base[DKH_EW_MAX_OPS];
    size_t esize[DKH_EW_MAX_OPS];
    int64_t rows, inner; /* rows * inner == numel */
    /* Work items for the threads: each row is cut into nchunk pieces of at
     * most chunk elements. A contiguous tensor coalesces into one long row,
     * which would otherwise run on one thread. */
    int64_t nchunk, chunk, items;
} dkh_ew_iter;

/* Iterates out and the call's inputs (NULL inputs skipped: their base is NULL). */
void dkh_ew_init(dkh_ew_iter *it, const dkh_kcall *c);
/* Element offsets of row r's first element for every operand. */
void dkh_ew_row(const dkh_ew_iter *it, int64_t r, int64_t *off);
/* Element offsets of work item k's first element for every operand; returns
 * its length (elements along the inner dim). */
int64_t dkh_ew_item(const dkh_ew_iter *it, int64_t k, int64_t *off);

bool dkh_cpu_unary(const dkh_kcall *c);
bool dkh_cpu_unary_bwd(const dkh_kcall *c);
bool dkh_cpu_binary(const dkh_kcall *c);
bool dkh_cpu_copy(const dkh_kcall *c);
bool dkh_cpu_cast(const dkh_kcall *c); /* f32 <-> bf16, else dkh_cpu_copy (cast_bf16.c) */
bool dkh_cpu_full(const dkh_kcall *c);
bool dkh_cpu_reduce(const dkh_kcall *c); /* sum, amax, amin, norm */
bool dkh_cpu_matmul(const dkh_kcall *c);
bool dkh_cpu_softmax(const dkh_kcall *c);
bool dkh_cpu_softmax_bwd(const dkh_kcall *c); /* softmax.c: softmax and log_softmax */
/* movement.c: slice's backward, constant pad forward and backward. */
bool dkh_cpu_slice_bwd(const dkh_kcall *c);
bool dkh_cpu_pad(const dkh_kcall *c);
bool dkh_cpu_pad_bwd(const dkh_kcall *c);

/* The extreme (max when mx, else min) of p[0, i) for the largest multiple i
 * of DKH_EXT_LANES not above n (n >= DKH_EXT_LANES), in that many lanes that
 * vectorise, combined lane by lane in order with strict compares. *nan is set
 * when one of them is NaN (*m is then meaningless). Returns i. Shared by the
 * amax/amin reductions and max_dim. */
#define DKH_EXT_LANES 8
#define DKH_LANE_EXTREME(T)                                                                   \
    static inline int64_t dkh_lane_extreme_##T(const T *p, int64_t n, bool mx, T *m, int *nan) \
    {                                                                                         \
        T a[DKH_EXT_LANES];                                                                   \
        int bad[DKH_EXT_LANES];                                                               \
        for (int l = 0; l < DKH_EXT_LANES; l++) {                                             \
            a[l] = p[l];                                                                      \
            bad[l] = p[l] != p[l];                                                            \
        }                                                                                     \
        int64_t i;                                                                            \
        for (i = DKH_EXT_LANES; i + DKH_EXT_LANES <= n; i += DKH_EXT_LANES)                   \
            _Pragma("omp simd") for (int l = 0; l < DKH_EXT_LANES; l++) {                     \
                T v = p[i + l];                                                               \
                a[l] = (mx ? v > a[l] : v < a[l]) ? v : a[l];                                 \
                bad[l] |= v != v;                                                             \
            }                                                                                 \
        *m = a[0];                                                                            \
        *nan = bad[0];                                                                        \
        for (int l = 1; l < DKH_EXT_LANES; l++) {                                             \
            *m = (mx ? a[l] > *m : a[l] < *m) ? a[l] : *m;                                    \
            *nan |= bad[l];                                                                   \
        }                                                                                     \
        return i;                                                                             \
    }
DKH_LANE_EXTREME(float)
DKH_LANE_EXTREME(double)

#endif /* DKH_CPU_H */
