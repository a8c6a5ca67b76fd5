/* core/backends/backends.c — bringing up the optional backends, once.
 *
 * The CPU backend is always there. Others (CUDA) register their kernel
 * table, device interface and allocator here, explicitly and lazily: the
 * first time anything asks about a non-CPU device. Nothing registers itself
 * from a constructor, so loading libdk does no device work, and a process
 * that never touches a GPU never initialises one.
 */
#include "../tensor/tensor_impl.h"

#include <pthread.h>

#ifdef DK_HAVE_CUDA
void dkh_cuda_backend_init(void);
#endif

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_backends(void)
{
#ifdef DK_HAVE_CUDA
    dkh_cuda_backend_init();
#endif
}

void dkh_backends_init(void)
{
    pthread_once(&once, init_backends);
}
