/* core/util/alloc.c — the host allocator plugins use (dk_malloc & co.).
 *
 * Each block carries a small header with its size so the host can count the
 * bytes plugins hold (current and peak) and report leaks at shutdown. The
 * header is 64 bytes so user memory keeps a 64-byte alignment, which is what
 * vector kernels want; the tensor allocator (a later part) has its own pools.
 */
#include "util.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define HEADER 64
#define MAGIC 0x646b6d656d6f7279ull /* "dkmemory" */

typedef struct header {
    size_t size;
    unsigned long long magic;
} header;

static atomic_size_t current_bytes;
static atomic_size_t peak_bytes;
/* Fault injection for tests: allocations left before dk_malloc fails; < 0 off. */
static atomic_long fail_countdown = -1;

static void count(size_t add, size_t sub)
{
    size_t now = atomic_fetch_add(&current_bytes, add) + add;
    atomic_fetch_sub(&current_bytes, sub);
    now -= sub;
    size_t peak = atomic_load(&peak_bytes);
    while (now > peak && !atomic_compare_exchange_weak(&peak_bytes, &peak, now)) {
    }
}

static header *head_of(void *p)
{
    header *h = (header *)((char *)p - HEADER);
    DKH_ASSERT(h->magic == MAGIC);
    return h;
}

void dkh_mem_fail_after(long n)
{
    atomic_store(&fail_countdown, n);
}

static bool injected_failure(void)
{
    long left = atomic_load(&fail_countdown);
    while (left >= 0) {
        if (atomic_compare_exchange_weak(&fail_countdown, &left, left - 1))
            return left == 0;
    }
    return false;
}

void *dk_malloc(size_t size)
{
    if (size > SIZE_MAX - HEADER || injected_failure())
        return NULL;
    void *raw = NULL;
    if (posix_memalign(&raw, HEADER, HEADER + size) != 0)
        return NULL;
    header *h = raw;
    h->size = size;
    h->magic = MAGIC;
    count(size, 0);
    return (char *)raw + HEADER;
}

void *dk_calloc(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    void *p = dk_malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void dk_free(void *ptr)
{
    if (!ptr)
        return;
    header *h = head_of(ptr);
    count(0, h->size);
    h->magic = 0;
    free(h);
}

void *dk_realloc(void *ptr, size_t size)
{
    if (!ptr)
        return dk_malloc(size);
    size_t old = head_of(ptr)->size;
    void *p = dk_malloc(size);
    if (!p)
        return NULL;
    memcpy(p, ptr, old < size ? old : size);
    dk_free(ptr);
    return p;
}

char *dk_strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *p = dk_malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

size_t dkh_mem_current(void)
{
    return atomic_load(&current_bytes);
}

size_t dkh_mem_peak(void)
{
    return atomic_load(&peak_bytes);
}
