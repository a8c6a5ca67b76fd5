/* core/backends/cuda/cuda_kernels.cu — the CUDA backend's own kernels.
 *
 * Elementwise kernels use a grid-stride loop: a grid sized to keep every SM
 * busy walks any length, so one launch shape serves small and huge tensors
 * and the block count never exceeds the hardware's limit. Launchers return
 * the launch status; cuda_backend.c turns it into a dk_status.
 */
#include "cuda.h"

#include <cuda_runtime.h>

namespace {

__global__ void add_f32(const float *__restrict__ a, const float *__restrict__ b,
                        float *__restrict__ out, int64_t n)
{
    int64_t stride = (int64_t)blockDim.x * gridDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        out[i] = a[i] + b[i];
}

/* Enough 256-thread blocks for the work, at most a few waves' worth. */
unsigned blocks_for(int64_t n)
{
    int64_t b = (n + 255) / 256;
    return (unsigned)(b < 8192 ? (b > 0 ? b : 1) : 8192);
}

} // namespace

extern "C" int dkh_cuda_add_f32(const float *a, const float *b, float *out, int64_t n,
                                void *stream)
{
    add_f32<<<blocks_for(n), 256, 0, (cudaStream_t)stream>>>(a, b, out, n);
    return (int)cudaGetLastError();
}
