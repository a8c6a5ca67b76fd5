/* core/tensor/alloc.c — the caching tensor allocator and storage.
 *
 * Training allocates the same tensor sizes every step, so freed blocks go to a
 * free list per size class instead of back to the system, and step 2 onward
 * allocates nothing new. Sizes round up to 64 bytes, then to four classes per
 * power of two above 512 bytes, which wastes at most a fifth. The raw memory
 * comes from a per-device-type allocator vtable: the CPU's (64-byte aligned) is
 * built in, a CUDA backend registers its own. Bookkeeping nodes use plain
 * malloc: they are not tensor bytes. One mutex guards everything; tensors are
 * allocated per op, not per element, so it is not contended.
 */
#include "tensor_impl.h"

#include <pthread.h>
#include <stdlib.h>

#define MAX_INDEX 16
#define N_CLASSES (64 * 4)

typedef struct block {
    void *ptr;
    struct block *next;
} block;

typedef struct pool {
    block *free_list[N_CLASSES];
    size_t current, peak, cached;
} pool;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pool pools[DK_DEVICE_TYPE_COUNT][MAX_INDEX];
static const dkh_allocator *raw[DK_DEVICE_TYPE_COUNT];

static void *cpu_alloc(void *ctx, size_t nbytes)
{
    return aligned_alloc(64, nbytes);
}

static void cpu_free(void *ctx, void *ptr, size_t nbytes)
{
    free(ptr);
}

static const dkh_allocator cpu_allocator = {sizeof(dkh_allocator), "cpu", cpu_alloc, cpu_free,
                                            NULL};

void dkh_allocator_register(dk_device_type type, const dkh_allocator *a)
{
    DKH_ASSERT((unsigned)type < DK_DEVICE_TYPE_COUNT);
    pthread_mutex_lock(&lock);
    raw[type] = a;
    pthread_mutex_unlock(&lock);
}

static const dkh_allocator *raw_of(int type)
{
    if (type == DK_DEVICE_CPU)
        return raw[type] ? raw[type] : &cpu_allocator;
    return raw[type];
}

/* Rounds n up to its size class; *cls gets the class index. */
static size_t size_class(size_t n, int *cls)
{
    if (n <= 512) {
        size_t r = n <= 64 ? 64 : (n + 63) & ~(size_t)63;
        *cls = (int)(r / 64) - 1; /* 0..7 */
        return r;
    }
    int log = 63 - __builtin_clzll((unsigned long long)n); /* 2^log <= n */
    size_t p = (size_t)1 << log;
    size_t step = p / 4;
    size_t r = (n + step - 1) / step * step; /* p + k*step, k in 0..4 */
    size_t k = (r - p) / step;
    if (k == 4) {
        log++;
        k = 0;
    }
    *cls = 8 + (log - 9) * 4 + (int)k;
    return r;
}

static bool device_ok(dk_device d)
{
    return (unsigned)d.type < DK_DEVICE_TYPE_COUNT && d.index >= 0 && d.index < MAX_INDEX &&
           (d.type != DK_DEVICE_CPU || d.index == 0);
}

dkh_storage *dkh_storage_new(dk_device device, size_t nbytes)
{
    if (!device_ok(device)) {
        dk_fail(DK_ERR_ARG, "invalid device (type %d, index %d)", device.type, device.index);
        return NULL;
    }
    if (device.type != DK_DEVICE_CPU)
        dkh_backends_init();
    const dkh_allocator *a = raw_of(device.type);
    if (!a) {
        dk_fail(DK_ERR_UNSUPPORTED, "no backend for device %s:%d in this build",
                device.type == DK_DEVICE_CUDA ? "cuda" : "?", device.index);
        return NULL;
    }
    if (nbytes > ((size_t)1 << 60)) {
        dk_fail(DK_ERR_NOMEM, "tensor of %zu bytes is too large", nbytes);
        return NULL;
    }
    dkh_storage *s = dk_malloc(sizeof *s);
    if (!s) {
        dk_fail(DK_ERR_NOMEM, "out of memory for a tensor storage");
        return NULL;
    }
    int cls;
    size_t cap = size_class(nbytes, &cls);
    DKH_ASSERT(cls >= 0 && cls < N_CLASSES);
    pool *p = &pools[device.type][device.index];
    void *ptr = NULL;
    pthread_mutex_lock(&lock);
    block *b = p->free_list[cls];
    if (b) {
        p->free_list[cls] = b->next;
        p->cached -= cap;
        ptr = b->ptr;
    }
    pthread_mutex_unlock(&lock);
    free(b);
    if (!ptr) {
        ptr = a->alloc(a->ctx, cap);
        if (!ptr) {
            /* Cached blocks of other classes may be what the system lacks. */
            dkh_allocator_empty_cache();
            ptr = a->alloc(a->ctx, cap);
        }
        if (!ptr) {
            dk_free(s);
            dk_fail(DK_ERR_NOMEM, "out of memory allocating %zu bytes for a tensor", cap);
            return NULL;
        }
    }
    pthread_mutex_lock(&lock);
    p->current += cap;
    if (p->current > p->peak)
        p->peak = p->current;
    pthread_mutex_unlock(&lock);
    atomic_init(&s->refs, 1);
    s->device = device;
    s->data = ptr;
    s->nbytes = cap;
    s->version = 0;
    return s;
}

void dkh_storage_unref(dkh_storage *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    int cls;
    size_t cap = size_class(s->nbytes, &cls);
    DKH_ASSERT(cap == s->nbytes);
    pool *p = &pools[s->device.type][s->device.index];
    block *b = malloc(sizeof *b);
    pthread_mutex_lock(&lock);
    p->current -= cap;
    if (b) {
        b->ptr = s->data;
        b->next = p->free_list[cls];
        p->free_list[cls] = b;
        p->cached += cap;
    }
    pthread_mutex_unlock(&lock);
    if (!b) {
        const dkh_allocator *a = raw_of(s->device.type);
        a->free(a->ctx, s->data, cap);
    }
    dk_free(s);
}

void dkh_allocator_empty_cache(void)
{
    pthread_mutex_lock(&lock);
    for (int t = 0; t < DK_DEVICE_TYPE_COUNT; t++) {
        const dkh_allocator *a = raw_of(t);
        if (!a)
            continue;
        for (int i = 0; i < MAX_INDEX; i++) {
            pool *p = &pools[t][i];
            for (int c = 0; c < N_CLASSES; c++) {
                while (p->free_list[c]) {
                    block *b = p->free_list[c];
                    p->free_list[c] = b->next;
                    /* The class index maps back to one size; recompute it. */
                    size_t cap = 0;
                    if (c < 8)
                        cap = (size_t)(c + 1) * 64;
                    else {
                        int log = 9 + (c - 8) / 4, k = (c - 8) % 4;
                        cap = ((size_t)1 << log) + (size_t)k * (((size_t)1 << log) / 4);
                    }
                    a->free(a->ctx, b->ptr, cap);
                    p->cached -= cap;
                    free(b);
                }
            }
        }
    }
    pthread_mutex_unlock(&lock);
}

void dk_memory_stats_get(dk_device device, dk_memory_stats *out)
{
    if (!out)
        return;
    *out = (dk_memory_stats){0, 0, 0};
    if (!device_ok(device))
        return;
    pool *p = &pools[device.type][device.index];
    pthread_mutex_lock(&lock);
    out->current = p->current;
    out->peak = p->peak;
    out->cached = p->cached;
    pthread_mutex_unlock(&lock);
}
