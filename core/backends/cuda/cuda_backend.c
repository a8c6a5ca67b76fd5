/* core/backends/cuda/cuda_backend.c — the CUDA backend's host side.
 *
 * It joins the tensor runtime at library load (a constructor that only fills
 * tables: no CUDA call runs until a CUDA device is first asked for), through
 * the three seams the runtime offers a device: the raw allocator under the
 * caching layer (alloc.c keeps freed blocks per size class and device, so
 * cudaMalloc/cudaFree, which synchronise, leave the step loop after step 1),
 * the device interface (discovery, copies, zero fill; device.h) and the
 * kernel table (dispatch.c). Every CUDA error becomes a dk_status carrying
 * cudaGetErrorString's text.
 *
 * Discovery runs once: cudaGetDeviceCount's failure (no driver, no device)
 * is kept as the reason every later CUDA request reports, so a machine
 * without a GPU gets "no CUDA device: <reason>" and never a crash. Everything
 * is queued on the legacy default stream for now, which keeps copies and
 * kernels ordered without events; streams come with the first overlap.
 */
#include "cuda.h"

#include "../../tensor/device.h"

#include <cuda_runtime_api.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int n_devices;
static char probe_reason[256];
static _Thread_local int current = -1; /* this thread's device, once set by us */

static dk_status cuda_fail(cudaError_t e, const char *what)
{
    /* Clear the error so a later unrelated call does not report it again
     * (sticky errors, which poison the context, stay regardless). */
    (void)cudaGetLastError();
    return dk_fail(e == cudaErrorMemoryAllocation ? DK_ERR_NOMEM : DK_ERR_RUNTIME,
                   "cuda: %s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

static const dkh_allocator cuda_allocator;

static void probe(void)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        snprintf(probe_reason, sizeof probe_reason, "%s (%s)", cudaGetErrorString(e),
                 cudaGetErrorName(e));
        (void)cudaGetLastError();
        n = 0;
    } else if (n == 0) {
        snprintf(probe_reason, sizeof probe_reason, "the CUDA runtime found no device");
    }
    n_devices = n;
    /* Allocating without a device would read as "out of memory"; without
     * an allocator the caching layer says the device type is unsupported. */
    dkh_allocator_register(DK_DEVICE_CUDA, n > 0 ? &cuda_allocator : NULL);
}

static int cuda_count(void)
{
    pthread_once(&probe_once, probe);
    return n_devices;
}

/* The device exists; it also becomes this thread's current device, so the
 * allocation and the kernel that follow in the dispatcher land on it. */
static dk_status cuda_check(int index)
{
    int n = cuda_count();
    if (n == 0)
        return dk_fail(DK_ERR_UNSUPPORTED, "no CUDA device: %s", probe_reason);
    if (index < 0 || index >= n)
        return dk_fail(DK_ERR_ARG, "cuda:%d does not exist: this machine has %d CUDA device%s",
                       index, n, n == 1 ? "" : "s");
    if (current != index) {
        cudaError_t e = cudaSetDevice(index);
        if (e != cudaSuccess)
            return cuda_fail(e, "cudaSetDevice");
        current = index;
    }
    return DK_OK;
}

static dk_status cuda_describe(int index, char *buf, size_t size)
{
    struct cudaDeviceProp p;
    cudaError_t e = cudaGetDeviceProperties(&p, index);
    if (e != cudaSuccess)
        return cuda_fail(e, "cudaGetDeviceProperties");
    snprintf(buf, size, "cuda:%d %s (sm_%d%d, %.1f GiB)", index, p.name, p.major, p.minor,
             (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    return DK_OK;
}

static dk_status cuda_capability(int index, int *major, int *minor)
{
    cudaError_t e = cudaDeviceGetAttribute(major, cudaDevAttrComputeCapabilityMajor, index);
    if (e == cudaSuccess)
        e = cudaDeviceGetAttribute(minor, cudaDevAttrComputeCapabilityMinor, index);
    return e == cudaSuccess ? DK_OK : cuda_fail(e, "cudaDeviceGetAttribute");
}

static dk_status cuda_synchronize(int index)
{
    cudaError_t e = cudaDeviceSynchronize();
    return e == cudaSuccess ? DK_OK : cuda_fail(e, "cudaDeviceSynchronize");
}

/* With unified addressing the runtime tells the direction from the pointers.
 * A copy to host memory returns once the bytes are there; a copy to a device
 * is ordered on the default stream before every later kernel. */
static dk_status cuda_copy(void *dst, dk_device dst_dev, const void *src, dk_device src_dev,
                           size_t nbytes)
{
    cudaError_t e;
    if (dst_dev.type == DK_DEVICE_CUDA && src_dev.type == DK_DEVICE_CUDA &&
        dst_dev.index != src_dev.index)
        e = cudaMemcpyPeer(dst, dst_dev.index, src, src_dev.index, nbytes);
    else
        e = cudaMemcpy(dst, src, nbytes, cudaMemcpyDefault);
    return e == cudaSuccess ? DK_OK : cuda_fail(e, "cudaMemcpy");
}

static dk_status cuda_zero(void *dst, int index, size_t nbytes)
{
    cudaError_t e = cudaMemsetAsync(dst, 0, nbytes, 0);
    return e == cudaSuccess ? DK_OK : cuda_fail(e, "cudaMemsetAsync");
}

static void *cuda_stream(int index)
{
    return NULL;
}

static const dkh_device_iface cuda_device = {
    .struct_size = sizeof(dkh_device_iface),
    .name = "cuda",
    .count = cuda_count,
    .check = cuda_check,
    .describe = cuda_describe,
    .capability = cuda_capability,
    .synchronize = cuda_synchronize,
    .copy = cuda_copy,
    .zero = cuda_zero,
    .stream = cuda_stream,
};

/* ---- the raw allocator ----------------------------------------------------------- */

static void *cuda_raw_alloc(void *ctx, size_t nbytes)
{
    void *p = NULL;
    if (cudaMalloc(&p, nbytes) != cudaSuccess) {
        /* Out of memory is the caller's to report (it retries after emptying
         * the cache); clear the error so it is not reported twice. */
        (void)cudaGetLastError();
        return NULL;
    }
    return p;
}

static void cuda_raw_free(void *ctx, void *ptr, size_t nbytes)
{
    /* cudaFree finds the device from the pointer; a failure here (a context
     * already torn down at exit) leaves nothing to do but forget the block. */
    if (cudaFree(ptr) != cudaSuccess)
        (void)cudaGetLastError();
}

static const dkh_allocator cuda_allocator = {sizeof(dkh_allocator), "cuda", cuda_raw_alloc,
                                             cuda_raw_free, NULL};

/* ---- kernels ------------------------------------------------------------------------ */

static bool plain_f32(const dk_tensor *t, const dk_tensor *like)
{
    return t->dtype == DK_DTYPE_F32 && dk_tensor_is_contiguous(t) && dkh_same_shape(t, like);
}

/* f32, contiguous, no broadcasting; anything else is declined. */
static bool cuda_add(const dkh_kcall *c)
{
    if (c->op != DKH_OP_ADD || !plain_f32(c->out, c->out) || !plain_f32(c->in[0], c->out) ||
        !plain_f32(c->in[1], c->out))
        return false;
    int64_t n = dkh_numel(c->out->ndim, c->out->shape);
    int e = dkh_cuda_add_f32((const float *)dkh_base(c->in[0]), (const float *)dkh_base(c->in[1]),
                             (float *)dkh_base(c->out), n,
                             cuda_stream(c->out->storage->device.index));
    if (e != cudaSuccess) {
        dkh_kernel_failed(cuda_fail((cudaError_t)e, "add kernel launch"));
        return false;
    }
    return true;
}

static dkh_backend cuda_backend;

void dkh_cuda_backend_init(void);

/* Called once, by dkh_backends_init, before anything uses a CUDA device.
 * Registering costs no CUDA call: the runtime is first touched by a device
 * query or allocation, which then reports a missing driver as unsupported. */
void dkh_cuda_backend_init(void)
{
    cuda_backend.struct_size = sizeof cuda_backend;
    cuda_backend.name = "cuda";
    cuda_backend.kernels[DKH_OP_ADD][DKH_FWD] = cuda_add;
    dkh_backend_register(DK_DEVICE_CUDA, &cuda_backend);
    dkh_device_register(DK_DEVICE_CUDA, &cuda_device);
    dkh_allocator_register(DK_DEVICE_CUDA, &cuda_allocator);
}
