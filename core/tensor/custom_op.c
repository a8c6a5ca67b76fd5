/* core/tensor/custom_op.c — ops registered at run time, dk_to, and devices.
 *
 * A plugin describes an op with a dk_op_info (rule, kernels per device type,
 * backward). Registration copies what the host keeps into an op record whose
 * embedded dkh_op_def points at trampolines here, so the dispatcher and the
 * tape run a custom op through exactly the path a built-in takes: NULL
 * propagation, the rule, allocation, the kernel, the tape node.
 *
 * Records live in a table indexed by id - DKH_OP_COUNT and are never freed or
 * reused, so an id, a dkh_op_def pointer or a name string handed out stays
 * valid for the process and a stale id fails with a message instead of
 * reaching another op. Whether a record may still call into its plugin is
 * asked of the registry on each call (the plugin's load serial must still be
 * loaded), and every call, and every tape node it leaves, holds its plugin
 * loaded so an unload cannot pull code from under a pending backward.
 *
 * The host's own dk_to is registered through the same path: it shows that
 * the contract is enough for a real op, and it needs no slot in the static
 * op list. The device functions (count, check, name, copy) forward to the
 * interface a device backend registers (core/backends/cuda).
 */
#include "custom_op.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

/* dk_op_info and dk_op_kernel as ABI 1.1 defined them. */
#define OP_INFO_MIN_SIZE (offsetof(dk_op_info, user_data) + sizeof(void *))
#define OP_KERNEL_MIN_SIZE (offsetof(dk_op_kernel, backward) + sizeof(dk_op_kernel_fn))
/* Ids are never reused; this many registrations per process is far more
 * than any run (each load of a plugin counts its ops once). */
#define MAX_OPS (1 << 16)
#define MAX_KERNELS 64
#define MAX_NAME 128

enum { STAGED, LIVE, DROPPED };

typedef struct op_rec {
    dkh_op_def def; /* what dkh_op() returns; def.name is the op's name */
    int32_t id;
    atomic_int state;
    const void *session; /* while STAGED */
    uint64_t owner;      /* the plugin's load serial; 0 for the host */
    char *path;          /* the plugin file, for messages ("the host" when owner is 0) */
    char *summary;
    unsigned flags;
    dk_op_infer_fn infer;
    dk_op_backward_fn backward;
    dk_op_kernel kernels[DK_DEVICE_TYPE_COUNT]; /* by device type; forward NULL = none */
    void *user_data;
    bool host_to; /* dk_to: the result goes to the device in the attrs */
} op_rec;

/* One call's context: what the trampolines need besides the tensors. The
 * call's dkh_args carry a pointer to it in v[0]; tape nodes hold references. */
typedef struct call_rec {
    atomic_int refs;
    op_rec *op;
    bool held; /* this call holds the owner plugin loaded */
    size_t attrs_size;
    alignas(max_align_t) unsigned char attrs[];
} call_rec;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(op_rec *) table[MAX_OPS];
static int n_recs; /* under lock */

static op_rec *rec_of(int64_t id)
{
    int64_t slot = id - (int64_t)DKH_OP_COUNT;
    if (slot < 0 || slot >= MAX_OPS)
        return NULL;
    return atomic_load(&table[slot]);
}

const dkh_op_def *dkh_custom_op_def(dkh_op_id id)
{
    op_rec *r = rec_of(id);
    return r ? &r->def : NULL;
}

/* True while the op may call into its plugin. */
static bool op_alive(const op_rec *r)
{
    return atomic_load(&r->state) == LIVE && (r->owner == 0 || dkh_plugin_hold(r->owner, 0, NULL));
}

static call_rec *call_of(const dkh_args *a)
{
    call_rec *c = (call_rec *)(intptr_t)a->v[0];
    DKH_ASSERT(c != NULL && "a custom op ran without its call record");
    return c;
}

static void call_release(call_rec *c)
{
    if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    if (c->held)
        dkh_plugin_hold(c->op->owner, -1, NULL);
    dk_free(c);
}

void dkh_custom_args_retain(dkh_op_id op, const dkh_args *a)
{
    if (dkh_op_is_custom(op))
        atomic_fetch_add(&call_of(a)->refs, 1);
}

void dkh_custom_args_release(dkh_op_id op, const dkh_args *a)
{
    if (dkh_op_is_custom(op))
        call_release(call_of(a));
}

static dk_op_ctx make_ctx(const call_rec *c, void *stream)
{
    dk_op_ctx x = {.struct_size = (uint32_t)sizeof(dk_op_ctx),
                   .op = c->op->id,
                   .name = c->op->def.name,
                   .attrs = c->attrs_size ? c->attrs : NULL,
                   .attrs_size = c->attrs_size,
                   .user_data = c->op->user_data,
                   .stream = stream};
    return x;
}

/* Turns a callback's failure into "<op>: <its message> (inputs: ...)". The
 * callback's own message is used when the error slot holds its status (a
 * message that already starts with the op's name is not prefixed twice). */
static dk_status callback_failed(const op_rec *r, const char *what, dk_status st, int n_in,
                                 dk_tensor *const *in)
{
    if (st == DK_OK || (unsigned)st >= DK_STATUS_COUNT)
        st = DK_ERR_PLUGIN;
    char *msg = NULL;
    if (dk_last_status() == st && dk_last_error()[0]) {
        const char *m = dk_last_error();
        size_t n = strlen(r->def.name);
        if (strncmp(m, r->def.name, n) == 0 && strncmp(m + n, ": ", 2) == 0)
            m += n + 2;
        msg = dkh_strdup(m);
    } else {
        msg = dkh_asprintf("its %s failed with %s and left no message", what, dk_status_name(st));
    }
    dk_status s = dkh_op_fail((dkh_op_id)r->id, n_in, in, st, "%s", msg);
    free(msg);
    return s;
}

/* ---- trampolines ------------------------------------------------------------------ */

static dk_status custom_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    call_rec *c = call_of(a);
    op_rec *r = c->op;
    int n_in = r->def.n_in;
    dk_op_shapes s;
    memset(&s, 0, sizeof s);
    s.struct_size = (uint32_t)sizeof s;
    s.out[0].dtype = in[0]->dtype;
    s.out[0].ndim = in[0]->ndim;
    memcpy(s.out[0].shape, in[0]->shape, sizeof in[0]->shape);
    dk_op_ctx ctx = make_ctx(c, NULL);
    dk_status st = r->infer(&ctx, n_in, in, &s);
    if (st != DK_OK)
        return callback_failed(r, "shape rule", st, n_in, in);
    if (s.n_aux < 0 || s.n_aux > DK_OP_MAX_AUX)
        return dkh_op_fail((dkh_op_id)r->id, n_in, in, DK_ERR_PLUGIN,
                           "the shape rule asked for %d auxiliary outputs (at most %d); a bug "
                           "in the plugin (%s)",
                           (int)s.n_aux, DK_OP_MAX_AUX, r->path);
    for (int k = 0; k <= s.n_aux; k++) {
        const dk_op_meta *o = &s.out[k];
        bool ok = o->dtype >= 0 && o->dtype < DK_DTYPE_COUNT && o->ndim >= 0 &&
                  o->ndim <= DK_MAX_DIMS;
        for (int d = 0; ok && d < o->ndim; d++)
            ok = o->shape[d] >= 0;
        if (!ok)
            return dkh_op_fail((dkh_op_id)r->id, n_in, in, DK_ERR_PLUGIN,
                               "the shape rule gave output %d an invalid dtype %d, ndim %d or "
                               "negative size; a bug in the plugin (%s)",
                               k, (int)o->dtype, (int)o->ndim, r->path);
    }
    m->dtype = (dk_dtype)s.out[0].dtype;
    m->ndim = s.out[0].ndim;
    memcpy(m->shape, s.out[0].shape, sizeof m->shape);
    dkh_contiguous_strides(m->ndim, m->shape, m->strides);
    m->offset = 0;
    if (r->host_to)
        memcpy(&m->device, c->attrs, sizeof m->device);
    m->n_aux = s.n_aux;
    for (int k = 0; k < s.n_aux; k++) {
        m->aux[k].dtype = (dk_dtype)s.out[k + 1].dtype;
        m->aux[k].ndim = s.out[k + 1].ndim;
        memcpy(m->aux[k].shape, s.out[k + 1].shape, sizeof m->aux[k].shape);
    }
    return DK_OK;
}

static const char *device_type_name(int type)
{
    return type == DK_DEVICE_CPU ? "cpu" : type == DK_DEVICE_CUDA ? "cuda" : "?";
}

static void *stream_of(int type, int index)
{
    const dkh_device_iface *d = dkh_device_iface_of(type);
    return d && d->stream ? d->stream(index) : NULL;
}

/* The kernel of r for (dir, device type), or NULL with a message. */
static dk_op_kernel_fn find_kernel(const op_rec *r, int dir, int type, int n_in,
                                   dk_tensor *const *in)
{
    dk_op_kernel_fn fn = NULL;
    if (type >= 0 && type < DK_DEVICE_TYPE_COUNT)
        fn = dir == DKH_FWD ? r->kernels[type].forward : r->kernels[type].backward;
    if (fn)
        return fn;
    dkh_buf have = DKH_BUF_INIT;
    for (int t = 0; t < DK_DEVICE_TYPE_COUNT; t++) {
        dk_op_kernel_fn f = dir == DKH_FWD ? r->kernels[t].forward : r->kernels[t].backward;
        if (f)
            dkh_buf_printf(&have, "%s%s", have.len ? ", " : "", device_type_name(t));
    }
    dkh_op_fail((dkh_op_id)r->id, n_in, in, DK_ERR_UNSUPPORTED,
                "no %s %s kernel (the op has %s kernels for: %s)", device_type_name(type),
                dir == DKH_FWD ? "forward" : "backward", dir == DKH_FWD ? "forward" : "backward",
                have.len ? dkh_buf_str(&have) : "no device");
    dkh_buf_fini(&have);
    return NULL;
}

static dk_status unloaded(const op_rec *r, int n_in, dk_tensor *const *in)
{
    return dkh_op_fail((dkh_op_id)r->id, n_in, in, DK_ERR_NOT_FOUND,
                       "the op is no longer available: its plugin (%s) was unloaded", r->path);
}

dk_status dkh_custom_run_kernel(int dir, const dkh_kcall *c, int device_type)
{
    call_rec *cr = call_of(c->args);
    op_rec *r = cr->op;
    dk_tensor *const *in = (dk_tensor *const *)c->in;
    if (!op_alive(r))
        return unloaded(r, c->n_in, in);
    dk_op_kernel_fn fn = find_kernel(r, dir, device_type, c->n_in, in);
    if (!fn)
        return dk_last_status();
    dk_tensor *outs[1 + DKH_MAX_AUX] = {c->out};
    for (int k = 0; k < c->n_aux; k++)
        outs[k + 1] = c->aux[k];
    dk_op_ctx ctx = make_ctx(cr, stream_of(device_type, c->out->storage->device.index));
    dk_status st = fn(&ctx, c->n_in, c->in, 1 + c->n_aux, outs);
    return st == DK_OK ? DK_OK : callback_failed(r, "kernel", st, c->n_in, in);
}

/* Gradients through the op's dedicated backward kernel. */
static dk_status backward_by_kernel(call_rec *c, dk_tensor *const *in, dk_tensor *out,
                                    dk_tensor *const *aux, int n_aux, dk_tensor *gout,
                                    const bool *needs, dk_tensor **gin)
{
    op_rec *r = c->op;
    int n_in = r->def.n_in;
    dk_device dev = gout->storage->device;
    dk_op_kernel_fn fn = find_kernel(r, DKH_BWD, dev.type, n_in, in);
    if (!fn)
        return dk_last_status();
    const dk_tensor *kin[DKH_MAX_IN + 2 + DKH_MAX_AUX];
    int nk = 0;
    for (int i = 0; i < n_in; i++)
        kin[nk++] = in[i];
    kin[nk++] = out;
    for (int k = 0; k < n_aux; k++)
        kin[nk++] = aux[k];
    kin[nk++] = gout;
    dk_tensor *g[DKH_MAX_IN] = {NULL};
    dk_status st = DK_OK;
    for (int i = 0; i < n_in && st == DK_OK; i++) {
        if (!needs[i])
            continue;
        g[i] = dkh_tensor_alloc(in[i]->dtype, in[i]->ndim, in[i]->shape, dev);
        st = g[i] ? dkh_device_zero(g[i]) : dk_last_status();
    }
    if (st == DK_OK) {
        dk_op_ctx ctx = make_ctx(c, stream_of(dev.type, dev.index));
        st = fn(&ctx, nk, kin, n_in, g);
        if (st != DK_OK)
            st = callback_failed(r, "backward kernel", st, n_in, in);
    }
    for (int i = 0; i < n_in; i++) {
        if (st == DK_OK)
            gin[i] = g[i] ? dkh_scope_adopt(g[i]) : NULL;
        else
            dkh_tensor_unref(g[i]);
    }
    return st;
}

static dk_status custom_backward(const dkh_args *a, dk_tensor *const *in, dk_tensor *out,
                                 dk_tensor *const *aux, dk_tensor *gout, const bool *needs,
                                 dk_tensor **gin)
{
    call_rec *c = call_of(a);
    op_rec *r = c->op;
    int n_in = r->def.n_in;
    if (!op_alive(r))
        return unloaded(r, n_in, in);
    int n_aux = 0;
    while (n_aux < DKH_MAX_AUX && aux[n_aux])
        n_aux++;
    if (!r->backward)
        return backward_by_kernel(c, in, out, aux, n_aux, gout, needs, gin);

    dk_op_grad g = {.struct_size = (uint32_t)sizeof(dk_op_grad),
                    .n_in = n_in,
                    .in = in,
                    .out = out,
                    .n_aux = n_aux,
                    .aux = aux,
                    .grad_out = gout,
                    .needs = needs};
    dk_tensor *grads[DKH_MAX_IN] = {NULL};
    dk_op_ctx ctx = make_ctx(c, stream_of(gout->storage->device.type, gout->storage->device.index));
    dk_status st = r->backward(&ctx, &g, grads);
    if (st != DK_OK)
        return callback_failed(r, "backward", st, n_in, in);
    for (int i = 0; i < n_in; i++) {
        if (!needs[i])
            continue;
        dk_tensor *t = grads[i];
        if (!t)
            return dk_last_status() != DK_OK
                       ? dk_last_status()
                       : dkh_op_fail((dkh_op_id)r->id, n_in, in, DK_ERR_PLUGIN,
                                     "the backward gave no gradient for input %d; a bug in "
                                     "the plugin (%s)",
                                     i, r->path);
        dk_device td = t->storage->device, id = in[i]->storage->device;
        if (!dkh_same_shape(t, in[i]) || t->dtype != in[i]->dtype || td.type != id.type ||
            td.index != id.index) {
            dkh_buf b = DKH_BUF_INIT;
            dkh_describe(&b, t);
            dk_status s = dkh_op_fail((dkh_op_id)r->id, n_in, in, DK_ERR_PLUGIN,
                                      "the backward gave input %d a gradient %s on %s:%d that "
                                      "does not match the input; a bug in the plugin (%s)",
                                      i, dkh_buf_str(&b), device_type_name(td.type), td.index,
                                      r->path);
            dkh_buf_fini(&b);
            return s;
        }
        gin[i] = t;
    }
    return DK_OK;
}

/* ---- registration ---------------------------------------------------------------- */

static bool valid_name(const char *s)
{
    if (!s || !(*s >= 'a' && *s <= 'z') || strlen(s) > MAX_NAME)
        return false;
    for (s++; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '.'))
            return false;
    return true;
}

/* A LIVE or (same session) STAGED op named name, under lock. */
static op_rec *find_live_locked(const char *name, const void *session)
{
    for (int i = 0; i < n_recs; i++) {
        op_rec *r = atomic_load(&table[i]);
        int s = atomic_load(&r->state);
        if (strcmp(r->def.name, name) != 0)
            continue;
        if ((s == LIVE && op_alive(r)) || (s == STAGED && r->session == session))
            return r;
    }
    return NULL;
}

static void ensure_host_ops(void);

dk_status dkh_custom_op_stage(const dk_op_info *info, const dkh_op_owner *owner, int32_t *id)
{
    ensure_host_ops();
    if (id)
        *id = -1;
    if (!info)
        return dk_fail(DK_ERR_ARG, "dk_op_register: op info is NULL");
    if (info->struct_size < OP_INFO_MIN_SIZE)
        return dk_fail(DK_ERR_ARG,
                       "dk_op_register: op info struct_size %u is smaller than %zu (ABI 1.1); "
                       "was .struct_size set (DK_OP_INFO_HEAD)?",
                       info->struct_size, OP_INFO_MIN_SIZE);
    dk_op_info in;
    memset(&in, 0, sizeof in);
    memcpy(&in, info, info->struct_size < sizeof in ? info->struct_size : sizeof in);
    if (!valid_name(in.name))
        return dk_fail(DK_ERR_ARG,
                       "dk_op_register: op name '%s' is not valid (lower-case letters, digits, "
                       "'_' and '.', starting with a letter, at most %d characters)",
                       in.name ? in.name : "(null)", MAX_NAME);
    if (!in.summary || !in.summary[0])
        return dk_fail(DK_ERR_ARG, "op '%s': no summary (a one-line description is required)",
                       in.name);
    if (in.n_in < 1 || in.n_in > DK_OP_MAX_IN)
        return dk_fail(DK_ERR_ARG, "op '%s': n_in %d is outside [1, %d]", in.name, (int)in.n_in,
                       DK_OP_MAX_IN);
    if (!in.infer)
        return dk_fail(DK_ERR_ARG, "op '%s': no shape rule (infer)", in.name);
    if (in.n_kernels > MAX_KERNELS || (in.n_kernels && !in.kernels))
        return dk_fail(DK_ERR_ARG, "op '%s': %u kernels declared but the array is %s", in.name,
                       in.n_kernels, in.kernels ? "too long" : "NULL");
    if (in.n_kernels && in.kernel_size < OP_KERNEL_MIN_SIZE)
        return dk_fail(DK_ERR_ARG,
                       "op '%s': kernel_size %u is smaller than %zu (ABI 1.1); use DK_OP_KERNELS",
                       in.name, in.kernel_size, OP_KERNEL_MIN_SIZE);
    if (in.flags & ~(unsigned)(DK_OP_SAVE_OUT | DK_OP_STRIDED))
        return dk_fail(DK_ERR_ARG, "op '%s': unknown flags 0x%x", in.name,
                       in.flags & ~(unsigned)(DK_OP_SAVE_OUT | DK_OP_STRIDED));
    dk_op_kernel ks[DK_DEVICE_TYPE_COUNT];
    memset(ks, 0, sizeof ks);
    bool any_bwd = false;
    size_t take = in.kernel_size < sizeof(dk_op_kernel) ? in.kernel_size : sizeof(dk_op_kernel);
    for (uint32_t i = 0; i < in.n_kernels; i++) {
        dk_op_kernel k;
        memset(&k, 0, sizeof k);
        memcpy(&k, (const char *)in.kernels + (size_t)i * in.kernel_size, take);
        if (k.device_type < 0 || k.device_type >= DK_DEVICE_TYPE_COUNT)
            return dk_fail(DK_ERR_ARG, "op '%s': kernel #%u has unknown device type %d", in.name,
                           i, (int)k.device_type);
        if (!k.forward)
            return dk_fail(DK_ERR_ARG, "op '%s': the %s kernel has no forward", in.name,
                           device_type_name(k.device_type));
        if (ks[k.device_type].forward)
            return dk_fail(DK_ERR_ARG, "op '%s': two kernels for %s", in.name,
                           device_type_name(k.device_type));
        ks[k.device_type] = k;
        any_bwd |= k.backward != NULL;
    }
    if (!ks[DK_DEVICE_CPU].forward)
        return dk_fail(DK_ERR_ARG,
                       "op '%s': no CPU forward kernel (it is required: it is the reference "
                       "every other backend is tested against)",
                       in.name);

    const char *self = owner->path ? owner->path : "the host";
    for (int i = 0; i < DKH_OP_COUNT; i++)
        if (strcmp(dkh_op_name((dkh_op_id)i), in.name) == 0)
            return dk_fail(DK_ERR_DUPLICATE, "%s: op '%s' is a built-in op of the host", self,
                           in.name);
    pthread_mutex_lock(&lock);
    op_rec *old = find_live_locked(in.name, owner->session);
    if (old || n_recs == MAX_OPS) {
        dk_status s;
        if (!old)
            s = dk_fail(DK_ERR_NOMEM, "%s: op '%s': more than %d op registrations in one process",
                        self, in.name, MAX_OPS);
        else if (atomic_load(&old->state) == STAGED)
            s = dk_fail(DK_ERR_DUPLICATE, "%s: op '%s' is registered twice", self, in.name);
        else
            s = dk_fail(DK_ERR_DUPLICATE, "%s: op '%s' is already registered by %s", self,
                        in.name, old->path);
        pthread_mutex_unlock(&lock);
        return s;
    }
    op_rec *r = calloc(1, sizeof *r);
    DKH_ASSERT(r != NULL);
    r->id = (int32_t)(DKH_OP_COUNT + n_recs);
    atomic_init(&r->state, STAGED);
    r->session = owner->session;
    r->owner = owner->serial;
    r->path = dkh_strdup(owner->path ? owner->path : "the host");
    r->summary = dkh_strdup(in.summary);
    r->flags = in.flags;
    r->infer = in.infer;
    r->backward = in.backward;
    memcpy(r->kernels, ks, sizeof ks);
    r->user_data = in.user_data;
    r->def.name = dkh_strdup(in.name);
    r->def.n_in = in.n_in;
    r->def.flags = ((in.backward || any_bwd) ? DKH_F_DIFF : 0u) |
                   ((in.flags & DK_OP_SAVE_OUT) ? DKH_F_SAVE_OUT : 0u);
    r->def.infer = custom_infer;
    r->def.backward = custom_backward;
    atomic_store(&table[n_recs++], r);
    pthread_mutex_unlock(&lock);
    if (id)
        *id = r->id;
    return DK_OK;
}

void dkh_custom_ops_finish(const void *session, bool commit)
{
    pthread_mutex_lock(&lock);
    for (int i = 0; i < n_recs; i++) {
        op_rec *r = atomic_load(&table[i]);
        if (atomic_load(&r->state) == STAGED && r->session == session) {
            r->session = NULL;
            atomic_store(&r->state, commit ? LIVE : DROPPED);
        }
    }
    pthread_mutex_unlock(&lock);
}

bool dkh_custom_op_at(size_t i, dkh_custom_op_view *out)
{
    pthread_mutex_lock(&lock);
    int n = n_recs;
    pthread_mutex_unlock(&lock);
    size_t seen = 0;
    for (int k = 0; k < n; k++) {
        const op_rec *r = atomic_load(&table[k]);
        if (r->owner == 0 || !op_alive(r) || seen++ < i)
            continue;
        bool kernel_bwd = false;
        for (int d = 0; d < DK_DEVICE_TYPE_COUNT; d++)
            kernel_bwd |= r->kernels[d].backward != NULL;
        *out = (dkh_custom_op_view){
            .name = r->def.name,
            .summary = r->summary,
            .path = r->path,
            .n_in = r->def.n_in,
            .cpu = r->kernels[DK_DEVICE_CPU].forward != NULL,
            .cuda = r->kernels[DK_DEVICE_CUDA].forward != NULL,
            .backward = kernel_bwd ? "kernel" : r->backward ? "ops" : "none",
        };
        return true;
    }
    return false;
}

int32_t dk_op_find(const char *name)
{
    ensure_host_ops();
    if (!name) {
        dk_fail(DK_ERR_ARG, "dk_op_find: name is NULL");
        return -1;
    }
    pthread_mutex_lock(&lock);
    op_rec *r = find_live_locked(name, NULL);
    if (r && atomic_load(&r->state) == LIVE) {
        pthread_mutex_unlock(&lock);
        return r->id;
    }
    const char **cands = malloc((size_t)(n_recs + 1) * sizeof *cands);
    DKH_ASSERT(cands != NULL);
    size_t n = 0;
    const char *gone = NULL;
    for (int i = 0; i < n_recs; i++) {
        op_rec *o = atomic_load(&table[i]);
        if (atomic_load(&o->state) == LIVE && op_alive(o))
            cands[n++] = o->def.name;
        else if (atomic_load(&o->state) == LIVE && strcmp(o->def.name, name) == 0)
            gone = o->path;
    }
    dkh_buf b = DKH_BUF_INIT;
    dkh_buf_printf(&b, "no custom op named '%s'", name);
    const char *best = dkh_closest(name, cands, n);
    if (best)
        dkh_buf_printf(&b, " (did you mean '%s'?)", best);
    if (gone)
        dkh_buf_printf(&b, "; it was registered by %s, which has been unloaded", gone);
    free(cands);
    pthread_mutex_unlock(&lock);
    dk_fail(DK_ERR_NOT_FOUND, "%s", dkh_buf_str(&b));
    dkh_buf_fini(&b);
    return -1;
}

/* ---- calling ------------------------------------------------------------------------ */

static dk_tensor *call_op(op_rec *r, int n_in, dk_tensor *const *in, const void *attrs,
                          size_t attrs_size, dk_tensor **aux_out)
{
    dkh_op_id opid = (dkh_op_id)r->id;
    if (n_in != r->def.n_in) {
        dkh_op_fail(opid, n_in > 0 && n_in <= DKH_MAX_IN && in ? n_in : 0, in, DK_ERR_ARG,
                    "takes %d input%s, got %d", r->def.n_in, r->def.n_in == 1 ? "" : "s", n_in);
        return NULL;
    }
    if (!in) {
        dkh_op_fail(opid, 0, NULL, DK_ERR_ARG, "the input array is NULL");
        return NULL;
    }
    for (int i = 0; i < n_in; i++)
        if (!in[i]) {
            /* Keep the first cause; only a NULL nobody explained gets a message. */
            if (dk_last_status() == DK_OK)
                dkh_op_fail(opid, n_in, in, DK_ERR_ARG, "input %d is NULL", i);
            return NULL;
        }
    if (attrs_size && !attrs) {
        dkh_op_fail(opid, n_in, in, DK_ERR_ARG, "attrs is NULL but attrs_size is %zu",
                    attrs_size);
        return NULL;
    }
    if (!op_alive(r)) {
        unloaded(r, n_in, in);
        return NULL;
    }
    call_rec *c = dk_malloc(sizeof *c + attrs_size);
    if (!c) {
        dkh_op_fail(opid, n_in, in, DK_ERR_NOMEM, "out of memory for the call's attrs");
        return NULL;
    }
    atomic_init(&c->refs, 1);
    c->op = r;
    c->attrs_size = attrs_size;
    if (attrs_size)
        memcpy(c->attrs, attrs, attrs_size);
    c->held = r->owner != 0 && dkh_plugin_hold(r->owner, 1, NULL);
    if (r->owner != 0 && !c->held) {
        dk_free(c);
        unloaded(r, n_in, in);
        return NULL;
    }
    /* Kernels read plain C-order arrays unless they said otherwise. The
     * copies are private to this call (and to the tape node, which takes its
     * own references), whether or not a scope is open. */
    dk_tensor *use[DKH_MAX_IN], *own[DKH_MAX_IN] = {NULL};
    bool ok = true;
    for (int i = 0; i < n_in; i++) {
        use[i] = in[i];
        if (!(r->flags & DK_OP_STRIDED) && !dk_tensor_is_contiguous(in[i]) && ok) {
            dk_scope_begin();
            own[i] = dk_tensor_retain(dk_copy(in[i]));
            dk_scope_end();
            use[i] = own[i];
            ok = own[i] != NULL;
        }
    }
    dkh_args a;
    memset(&a, 0, sizeof a);
    a.v[0] = (int64_t)(intptr_t)c;
    dk_tensor *out = ok ? dkh_op_run_aux(opid, &a, n_in, use, aux_out) : NULL;
    for (int i = 0; i < n_in; i++)
        dk_tensor_release(own[i]);
    call_release(c);
    return out;
}

dk_tensor *dk_op_call(int32_t op, int n_in, dk_tensor *const *in, const void *attrs,
                      size_t attrs_size, dk_tensor **aux_out)
{
    op_rec *r = rec_of(op);
    if (!r || atomic_load(&r->state) != LIVE) {
        /* An input that is already NULL carries the first cause. */
        for (int i = 0; in && i < n_in && i < DKH_MAX_IN; i++)
            if (!in[i] && dk_last_status() != DK_OK)
                return NULL;
        dk_fail(DK_ERR_NOT_FOUND, "dk_op_call: %d is not the handle of a registered custom op%s",
                (int)op, r ? " (its plugin's init did not succeed)" : "");
        return NULL;
    }
    return call_op(r, n_in, in, attrs, attrs_size, aux_out);
}

/* ---- dk_to: the host's own custom op ----------------------------------------------- */

/* Same dtype and shape; the device comes from the attrs (custom_infer reads
 * it there for this op), so they must hold one: dk_to always passes one, a
 * direct dk_op_call of "to" might not. */
static dk_status to_infer(const dk_op_ctx *ctx, int n_in, dk_tensor *const *in, dk_op_shapes *out)
{
    if (ctx->attrs_size != sizeof(dk_device))
        return dk_fail(DK_ERR_ARG, "attrs must be the target dk_device (%zu bytes), got %zu bytes",
                       sizeof(dk_device), ctx->attrs_size);
    dk_device dev;
    memcpy(&dev, ctx->attrs, sizeof dev);
    return dkh_device_ready(dev);
}

/* Runs on the result's device type, whichever way the bytes move. */
static dk_status to_kernel(const dk_op_ctx *ctx, int n_in, const dk_tensor *const *in, int n_out,
                           dk_tensor *const *out)
{
    const dk_tensor *src = in[0];
    dk_tensor *dst = out[0];
    size_t n = (size_t)dkh_numel(dst->ndim, dst->shape) * dk_dtype_size(dst->dtype);
    dk_device sd = src->storage->device, dd = dst->storage->device;
    if (sd.type == DK_DEVICE_CPU && dd.type == DK_DEVICE_CPU) {
        memcpy(dkh_base(dst), dkh_base(src), n);
        return DK_OK;
    }
    const dkh_device_iface *d = dkh_device_iface_of(dd.type != DK_DEVICE_CPU ? dd.type : sd.type);
    return d->copy(dkh_base(dst), dd, dkh_base(src), sd, n);
}

static dk_status to_backward(const dk_op_ctx *ctx, const dk_op_grad *g, dk_tensor **grads)
{
    grads[0] = dk_to(g->grad_out, g->in[0]->storage->device);
    return grads[0] ? DK_OK : dk_last_status();
}

static const dk_op_kernel to_kernels[] = {
    {.device_type = DK_DEVICE_CPU, .forward = to_kernel},
    {.device_type = DK_DEVICE_CUDA, .forward = to_kernel},
};

static const dk_op_info to_info = {
    DK_OP_INFO_HEAD,
    .name = "to",
    .summary = "the values of a tensor on another device",
    .n_in = 1,
    .infer = to_infer,
    .backward = to_backward,
    DK_OP_KERNELS(to_kernels),
};

static op_rec *to_op;
static pthread_once_t host_once = PTHREAD_ONCE_INIT;
static const char host_session = 0; /* a session token no registrar can equal */

static void register_host_ops(void)
{
    dkh_op_owner owner = {.serial = 0, .path = NULL, .session = &host_session};
    int32_t id;
    dk_status s = dkh_custom_op_stage(&to_info, &owner, &id);
    DKH_ASSERT(s == DK_OK);
    dkh_custom_ops_finish(&host_session, true);
    to_op = rec_of(id);
    to_op->host_to = true;
}

static void ensure_host_ops(void)
{
    static _Thread_local bool inside; /* register_host_ops stages through here */
    if (inside)
        return;
    inside = true;
    pthread_once(&host_once, register_host_ops);
    inside = false;
}

dk_tensor *dk_to(dk_tensor *x, dk_device device)
{
    ensure_host_ops();
    if (!x) {
        if (dk_last_status() == DK_OK)
            dk_fail(DK_ERR_ARG, "to: input 0 is NULL");
        return NULL;
    }
    dk_device from = x->storage->device;
    if (device.type == from.type && device.index == from.index)
        return dkh_scope_adopt(dk_tensor_retain(x));
    if (dkh_device_ready(device) != DK_OK) {
        dk_error_prefix("to");
        return NULL;
    }
    return call_op(to_op, 1, &x, &device, sizeof device, NULL);
}
