/* core/backends/cpu/dnnl_common.c — the oneDNN engine, the primitive cache and
 * the run helper every oneDNN kernel shares (see dnnl_cpu.h).
 *
 * The cache is a hash table under one mutex. Entries are reference counted so
 * that a call running an entry keeps it alive while another thread evicts it;
 * eviction drops the least recently used entry once the table holds more than
 * CACHE_CAP, which bounds the memory JIT code takes when shapes keep changing
 * (variable image sizes). Streams are per thread because a oneDNN stream is
 * not meant to be shared between threads that execute at the same time.
 */
#include "dnnl_cpu.h"

#include <pthread.h>
#include <string.h>

#define CACHE_BUCKETS 256
#define CACHE_CAP 512

static dnnl_engine_t engine;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static pthread_key_t stream_key;
static atomic_long n_created;

static void stream_free(void *s)
{
    dnnl_stream_destroy((dnnl_stream_t)s);
}

static void engine_init(void)
{
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success)
        engine = NULL;
    if (pthread_key_create(&stream_key, stream_free) != 0)
        engine = NULL; /* without per-thread streams, run nothing through oneDNN */
}

dnnl_engine_t dkh_dnnl_engine(void)
{
    pthread_once(&engine_once, engine_init);
    return engine;
}

static dnnl_stream_t thread_stream(void)
{
    dnnl_engine_t e = dkh_dnnl_engine();
    if (!e)
        return NULL;
    dnnl_stream_t s = pthread_getspecific(stream_key);
    if (!s) {
        if (dnnl_stream_create(&s, e, dnnl_stream_default_flags) != dnnl_success)
            return NULL;
        if (pthread_setspecific(stream_key, s) != 0) {
            dnnl_stream_destroy(s);
            return NULL;
        }
    }
    return s;
}

long dkh_dnnl_primitives_created(void)
{
    return atomic_load(&n_created);
}

/* oneDNN makes bf16 primitives only where the CPU has the instructions for
 * them (AVX-512 with bf16 conversion, or AMX); elsewhere primitive creation
 * fails and the bf16 ops run on the reference kernels. Asking oneDNN for a
 * small bf16 matmul is the exact test of that. */
static bool bf16_native;
static pthread_once_t bf16_once = PTHREAD_ONCE_INIT;

static void bf16_probe(void)
{
    dnnl_engine_t e = dkh_dnnl_engine();
    if (!e)
        return;
    dnnl_dims_t dims = {16, 16};
    dnnl_memory_desc_t md;
    dnnl_matmul_desc_t mm;
    if (dnnl_memory_desc_init_by_tag(&md, 2, dims, dnnl_bf16, dnnl_ab) != dnnl_success ||
        dnnl_matmul_desc_init(&mm, &md, &md, NULL, &md) != dnnl_success)
        return;
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_primitive_desc_create(&pd, &mm, NULL, e, NULL) == dnnl_success) {
        bf16_native = true;
        dnnl_primitive_desc_destroy(pd);
    }
}

bool dkh_dnnl_bf16_native(void)
{
    pthread_once(&bf16_once, bf16_probe);
    return bf16_native;
}

/* ---- keys ---------------------------------------------------------------------- */

void dkh_dnnl_key_add(dkh_dnnl_key *k, int64_t v)
{
    DKH_ASSERT(k->n < DKH_DNNL_KEY);
    k->w[k->n++] = v;
}

void dkh_dnnl_key_tensor(dkh_dnnl_key *k, const dk_tensor *t)
{
    dkh_dnnl_key_add(k, t->dtype);
    dkh_dnnl_key_add(k, t->ndim);
    for (int d = 0; d < t->ndim; d++) {
        dkh_dnnl_key_add(k, t->shape[d]);
        dkh_dnnl_key_add(k, t->strides[d]);
    }
}

static uint64_t key_hash(const int64_t *w, int n)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; i++) {
        h ^= (uint64_t)w[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

/* ---- the cache ------------------------------------------------------------------- */

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static dkh_dnnl_entry *buckets[CACHE_BUCKETS];
static int n_entries;
static uint64_t use_clock;

static void entry_destroy(dkh_dnnl_entry *e)
{
    if (e->prim)
        dnnl_primitive_destroy(e->prim);
    for (int i = 0; i < e->n_args; i++)
        if (e->args[i].reorder)
            dnnl_primitive_destroy(e->args[i].reorder);
    dk_free(e);
}

void dkh_dnnl_entry_release(dkh_dnnl_entry *e)
{
    if (e && atomic_fetch_sub(&e->refs, 1) == 1)
        entry_destroy(e);
}

/* Drops the least recently used entry (cache_mu held). */
static void evict_one(void)
{
    dkh_dnnl_entry **victim = NULL;
    for (int b = 0; b < CACHE_BUCKETS; b++)
        for (dkh_dnnl_entry **p = &buckets[b]; *p; p = &(*p)->next)
            if (!victim || (*p)->last_use < (*victim)->last_use)
                victim = p;
    if (!victim)
        return;
    dkh_dnnl_entry *e = *victim;
    *victim = e->next;
    n_entries--;
    dkh_dnnl_entry_release(e);
}

dkh_dnnl_entry *dkh_dnnl_lookup(const dkh_dnnl_key *key, dkh_dnnl_build_fn build,
                                const void *ctx)
{
    if (!dkh_dnnl_engine())
        return NULL;
    uint64_t h = key_hash(key->w, key->n) % CACHE_BUCKETS;
    size_t kbytes = (size_t)key->n * sizeof key->w[0];
    pthread_mutex_lock(&cache_mu);
    for (dkh_dnnl_entry *e = buckets[h]; e; e = e->next)
        if (e->nkey == key->n && memcmp(e->key, key->w, kbytes) == 0) {
            e->last_use = ++use_clock;
            atomic_fetch_add(&e->refs, 1);
            pthread_mutex_unlock(&cache_mu);
            return e;
        }
    pthread_mutex_unlock(&cache_mu);

    /* Build outside the lock: JIT compilation takes milliseconds. Two threads
     * missing together both build; the second insert finds the first's. */
    dkh_dnnl_entry *e = dk_calloc(1, sizeof *e);
    if (!e)
        return NULL;
    memcpy(e->key, key->w, kbytes);
    e->nkey = key->n;
    atomic_init(&e->refs, 1);
    if (!build(e, ctx)) {
        entry_destroy(e);
        return NULL;
    }
    pthread_mutex_lock(&cache_mu);
    for (dkh_dnnl_entry *o = buckets[h]; o; o = o->next)
        if (o->nkey == key->n && memcmp(o->key, key->w, kbytes) == 0) {
            atomic_fetch_add(&o->refs, 1);
            pthread_mutex_unlock(&cache_mu);
            entry_destroy(e);
            return o;
        }
    if (n_entries >= CACHE_CAP)
        evict_one();
    e->last_use = ++use_clock;
    e->next = buckets[h];
    buckets[h] = e;
    n_entries++;
    atomic_fetch_add(&e->refs, 1); /* the caller's */
    pthread_mutex_unlock(&cache_mu);
    return e;
}

/* ---- building entries --------------------------------------------------------------- */

dnnl_primitive_attr_t dkh_dnnl_attr(void)
{
    dnnl_primitive_attr_t attr;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success)
        return NULL;
    if (dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) !=
        dnnl_success) {
        dnnl_primitive_attr_destroy(attr);
        return NULL;
    }
    return attr;
}

static bool make_reorder(dnnl_primitive_t *out, const dnnl_memory_desc_t *from,
                         const dnnl_memory_desc_t *to)
{
    dnnl_engine_t eng = dkh_dnnl_engine();
    dnnl_primitive_desc_t pd;
    if (dnnl_reorder_primitive_desc_create(&pd, from, eng, to, eng, NULL) != dnnl_success)
        return false;
    bool ok = dnnl_primitive_create(out, pd) == dnnl_success;
    dnnl_primitive_desc_destroy(pd);
    if (ok)
        atomic_fetch_add(&n_created, 1);
    return ok;
}

bool dkh_dnnl_entry_arg(dkh_dnnl_entry *e, const_dnnl_primitive_desc_t pd, int arg,
                        bool output, const dnnl_memory_desc_t *user)
{
    DKH_ASSERT(e->n_args < DKH_DNNL_ARGS);
    const dnnl_memory_desc_t *pm = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg);
    if (!pm)
        return false;
    dkh_dnnl_arg *a = &e->args[e->n_args++];
    a->arg = arg;
    a->output = output;
    a->user = *user;
    a->prim = *pm;
    a->prim_bytes = dnnl_memory_desc_get_size(pm);
    if (dnnl_memory_desc_equal(user, pm))
        return true;
    return output ? make_reorder(&a->reorder, pm, user) : make_reorder(&a->reorder, user, pm);
}

bool dkh_dnnl_entry_prim(dkh_dnnl_entry *e, const_dnnl_primitive_desc_t pd)
{
    const dnnl_memory_desc_t *sm = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    e->scratch_bytes = sm ? dnnl_memory_desc_get_size(sm) : 0;
    if (dnnl_primitive_create(&e->prim, pd) != dnnl_success) {
        e->prim = NULL;
        return false;
    }
    atomic_fetch_add(&n_created, 1);
    return true;
}

/* ---- memory descriptors --------------------------------------------------------------- */

static bool dnnl_dtype(dk_dtype d, dnnl_data_type_t *out)
{
    switch (d) {
    case DK_DTYPE_F32: *out = dnnl_f32; return true;
    case DK_DTYPE_BF16: *out = dnnl_bf16; return true;
    default: return false;
    }
}

bool dkh_dnnl_md_strided(dnnl_memory_desc_t *md, int ndim, const int64_t *dims,
                         const int64_t *strides, dk_dtype dtype)
{
    dnnl_data_type_t dt;
    if (!dnnl_dtype(dtype, &dt) || ndim > DNNL_MAX_NDIMS)
        return false;
    dnnl_dims_t dd, ss;
    for (int i = 0; i < ndim; i++) {
        dd[i] = dims[i];
        ss[i] = strides[i];
    }
    return dnnl_memory_desc_init_by_strides(md, ndim, dd, dt, ss) == dnnl_success;
}

bool dkh_dnnl_md(dnnl_memory_desc_t *md, const dk_tensor *t)
{
    return dkh_dnnl_md_strided(md, t->ndim, t->shape, t->strides, t->dtype);
}

bool dkh_dnnl_md_any(dnnl_memory_desc_t *md, int ndim, const int64_t *dims, dk_dtype dtype)
{
    dnnl_data_type_t dt;
    if (!dnnl_dtype(dtype, &dt) || ndim > DNNL_MAX_NDIMS)
        return false;
    dnnl_dims_t dd;
    for (int i = 0; i < ndim; i++)
        dd[i] = dims[i];
    return dnnl_memory_desc_init_by_tag(md, ndim, dd, dt, dnnl_format_tag_any) == dnnl_success;
}

/* ---- running ------------------------------------------------------------------------- */

static bool exec(dnnl_primitive_t p, dnnl_stream_t s, int n, const dnnl_exec_arg_t *args)
{
    return dnnl_primitive_execute(p, s, n, args) == dnnl_success;
}

bool dkh_dnnl_run(dkh_dnnl_entry *e, void *const *data)
{
    dnnl_stream_t s = thread_stream();
    if (!s)
        return false;
    dnnl_engine_t eng = dkh_dnnl_engine();
    /* One scratch block holds the scratchpad and every reordered argument,
     * each part aligned to 64 bytes. */
    size_t off[DKH_DNNL_ARGS], total = (e->scratch_bytes + 63) & ~(size_t)63;
    for (int i = 0; i < e->n_args; i++) {
        off[i] = total;
        if (e->args[i].reorder)
            total += (e->args[i].prim_bytes + 63) & ~(size_t)63;
    }
    dkh_storage *scratch = total ? dkh_storage_new(DK_CPU, total) : NULL;
    if (total && !scratch)
        return false; /* the reference kernel needs no scratch memory */
    char *base = scratch ? scratch->data : NULL;
    dnnl_memory_t user[DKH_DNNL_ARGS] = {NULL}, prim[DKH_DNNL_ARGS] = {NULL}, sp = NULL;
    dnnl_exec_arg_t pargs[DKH_DNNL_ARGS + 1];
    int np = 0;
    bool ok = true;
    for (int i = 0; ok && i < e->n_args; i++) {
        dkh_dnnl_arg *a = &e->args[i];
        ok = dnnl_memory_create(&user[i], &a->user, eng, data[i]) == dnnl_success;
        if (!ok)
            user[i] = NULL;
        if (ok && a->reorder) {
            ok = dnnl_memory_create(&prim[i], &a->prim, eng, base + off[i]) == dnnl_success;
            if (!ok)
                prim[i] = NULL;
        }
        if (ok)
            pargs[np++] = (dnnl_exec_arg_t){a->arg, a->reorder ? prim[i] : user[i]};
    }
    if (ok && e->scratch_bytes) {
        const dnnl_memory_desc_t *smd = NULL;
        const_dnnl_primitive_desc_t pd;
        ok = dnnl_primitive_get_primitive_desc(e->prim, &pd) == dnnl_success &&
             (smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0)) != NULL &&
             dnnl_memory_create(&sp, smd, eng, base) == dnnl_success;
        if (ok)
            pargs[np++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, sp};
        else
            sp = NULL;
    }
    for (int i = 0; ok && i < e->n_args; i++)
        if (e->args[i].reorder && !e->args[i].output) {
            dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, user[i]}, {DNNL_ARG_TO, prim[i]}};
            ok = exec(e->args[i].reorder, s, 2, ra);
        }
    if (ok)
        ok = exec(e->prim, s, np, pargs);
    for (int i = 0; ok && i < e->n_args; i++)
        if (e->args[i].reorder && e->args[i].output) {
            dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, prim[i]}, {DNNL_ARG_TO, user[i]}};
            ok = exec(e->args[i].reorder, s, 2, ra);
        }
    if (ok)
        ok = dnnl_stream_wait(s) == dnnl_success;
    for (int i = 0; i < e->n_args; i++) {
        if (user[i])
            dnnl_memory_destroy(user[i]);
        if (prim[i])
            dnnl_memory_destroy(prim[i]);
    }
    if (sp)
        dnnl_memory_destroy(sp);
    dkh_storage_unref(scratch);
    return ok;
}
