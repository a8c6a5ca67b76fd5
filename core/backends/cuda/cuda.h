/* core/backends/cuda/cuda.h — what the CUDA backend's C and CUDA files share.
 *
 * The .cu files hold kernels and their launchers only; everything that turns
 * a CUDA error into a dk_status lives on the C side, so the launchers return
 * the raw cudaError_t (as an int, to keep this header free of CUDA types).
 */
#ifndef DKH_CUDA_H
#define DKH_CUDA_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* out[i] = a[i] + b[i] for i < n, queued on stream (NULL: the default one).
 * Returns the launch's cudaError_t. */
__attribute__((visibility("hidden"))) int dkh_cuda_add_f32(const float *a, const float *b,
                                                           float *out, int64_t n, void *stream);

#ifdef __cplusplus
}
#endif
#endif /* DKH_CUDA_H */
