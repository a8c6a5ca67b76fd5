/* core/tensor/dispatch.c — the op table and how an op call runs.
 *
 * dkh_op_run is the single path every op takes: NULL inputs propagate, the
 * op's rule checks shapes and dtypes, the output is allocated (or, for a
 * view, made over the input's storage; channels-last where layout.c says
 * so), the backend's kernel runs (the
 * reference kernel when the backend has none for this op or dtype), and a
 * tape node is recorded when gradients are wanted. Keeping this in one place
 * is what makes error messages, scopes and autograd uniform across ops.
 * Custom ops (custom_op.c) have ids past the static list and take the same
 * path; only their definitions and kernels are looked up elsewhere.
 *
 * The runtime settings live here too because this is where they take
 * effect: the thread count is applied to OpenMP on the thread that is about
 * to run a kernel, and deterministic mode is read by the kernels.
 */
#include "custom_op.h"

#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const dkh_op_def *const op_table[DKH_OP_COUNT] = {
#define OP_ENTRY_(e, n) [DKH_OP_##e] = &dkh_op_##n,
    DKH_OP_LIST(OP_ENTRY_)
#undef OP_ENTRY_
};

static const char *const op_names[DKH_OP_COUNT] = {
#define OP_NAME_(e, n) [DKH_OP_##e] = #n,
    DKH_OP_LIST(OP_NAME_)
#undef OP_NAME_
};

const dkh_op_def *dkh_op(dkh_op_id id)
{
    if (dkh_op_is_custom(id)) {
        const dkh_op_def *d = dkh_custom_op_def(id);
        DKH_ASSERT(d != NULL && "an op id that was never registered");
        return d;
    }
    return op_table[id];
}

const char *dkh_op_name(dkh_op_id id)
{
    if (dkh_op_is_custom(id)) {
        const dkh_op_def *d = dkh_custom_op_def(id);
        return d ? d->name : "?";
    }
    return op_names[id];
}

/* ---- runtime settings ------------------------------------------------------------- */

static atomic_int num_threads;   /* 0 until first resolved */
static atomic_bool deterministic;
static _Thread_local int applied_threads; /* what this thread last gave OpenMP */

static pthread_once_t omp_once = PTHREAD_ONCE_INIT;
static int omp_default;

/* What OpenMP would use by itself, read before this file ever changes it
 * (apply_threads only runs after dk_get_num_threads resolved the default). */
static void capture_omp_default(void)
{
    int n = omp_get_max_threads();
    omp_default = n > 0 ? n : 1;
}

/* DK_NUM_THREADS when it is a positive integer, else what OpenMP would use
 * by itself (OMP_NUM_THREADS, or every core this process may run on). */
static int default_threads(void)
{
    const char *env = getenv("DK_NUM_THREADS");
    if (env && *env) {
        char *end;
        long n = strtol(env, &end, 10);
        if (*end == '\0' && n > 0 && n <= 4096)
            return (int)n;
        dk_log(DK_LOG_WARN, "DK_NUM_THREADS='%s' is not a positive integer; using the default",
               env);
    }
    pthread_once(&omp_once, capture_omp_default);
    return omp_default;
}

dk_status dk_set_num_threads(int n)
{
    pthread_once(&omp_once, capture_omp_default); /* before any thread count is applied */
    if (n < 0)
        return dk_fail(DK_ERR_ARG, "dk_set_num_threads: %d threads; give n >= 1, or 0 for the "
                                   "default", n);
    atomic_store(&num_threads, n ? n : default_threads());
    return DK_OK;
}

int dk_get_num_threads(void)
{
    int n = atomic_load(&num_threads);
    if (n == 0) {
        int want = default_threads();
        /* Another thread may have resolved or set it meanwhile; keep theirs. */
        atomic_compare_exchange_strong(&num_threads, &n, want);
        n = atomic_load(&num_threads);
    }
    return n;
}

bool dk_set_deterministic(bool on)
{
    return atomic_exchange(&deterministic, on);
}

bool dk_deterministic(void)
{
    return atomic_load(&deterministic);
}

/* OpenMP's thread count is per calling thread; every thread that runs
 * kernels (the main one, data-loader workers) picks the setting up here. */
static void apply_threads(void)
{
    int n = dk_get_num_threads();
    if (applied_threads != n) {
        omp_set_num_threads(n);
        applied_threads = n;
    }
}

static const dkh_backend *backends[DK_DEVICE_TYPE_COUNT];
static _Thread_local bool force_ref;

void dkh_backend_register(dk_device_type type, const dkh_backend *b)
{
    DKH_ASSERT((unsigned)type < DK_DEVICE_TYPE_COUNT);
    backends[type] = b;
}

static const dkh_backend *backend_of(int type)
{
    if (type == DK_DEVICE_CPU)
        return backends[type] ? backends[type] : dkh_cpu_backend();
    dkh_backends_init();
    return backends[type];
}

bool dkh_force_reference(bool on)
{
    bool was = force_ref;
    force_ref = on;
    return was;
}

dk_status dkh_op_fail(dkh_op_id op, int n_in, dk_tensor *const *in, dk_status st,
                      const char *fmt, ...)
{
    dkh_buf b = DKH_BUF_INIT;
    dkh_buf_printf(&b, "%s: ", dkh_op_name(op));
    va_list ap;
    va_start(ap, fmt);
    dkh_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (n_in > 0) {
        dkh_buf_puts(&b, n_in == 1 ? " (input: " : " (inputs: ");
        for (int i = 0; i < n_in; i++) {
            if (i)
                dkh_buf_puts(&b, ", ");
            if (in[i])
                dkh_describe(&b, in[i]);
            else
                dkh_buf_puts(&b, "NULL");
        }
        dkh_buf_putc(&b, ')');
    }
    dk_status s = dk_fail(st, "%s", dkh_buf_str(&b));
    dkh_buf_fini(&b);
    return s;
}

static _Thread_local dk_status kernel_status;

void dkh_kernel_failed(dk_status st)
{
    kernel_status = st;
}

/* Runs the kernel for (op, dir) on call; the reference kernel when the
 * backend has none or declines this call. */
static dk_status run_kernel(int dir, const dkh_kcall *c, int device_type)
{
    apply_threads();
    if (dkh_op_is_custom(c->op))
        return dkh_custom_run_kernel(dir, c, device_type);
    const dkh_op_def *def = dkh_op(c->op);
    const dkh_backend *b = backend_of(device_type);
    if (!force_ref && b && b->kernels[c->op][dir]) {
        kernel_status = DK_OK;
        if (b->kernels[c->op][dir](c))
            return DK_OK;
        if (kernel_status != DK_OK)
            return kernel_status;
    }
    if (device_type == DK_DEVICE_CPU && def->ref[dir]) {
        bool ok = def->ref[dir](c);
        DKH_ASSERT(ok && "a reference kernel declined a call its rule accepted");
        return DK_OK;
    }
    return dk_fail(DK_ERR_UNSUPPORTED, "%s: no %s kernel for this call on %s", def->name,
                   dir == DKH_FWD ? "forward" : "backward", b ? b->name : "this device");
}

/* Runs the forward kernel into out and aux (both allocated). */
static dk_status run_forward(dkh_op_id op, const dkh_args *a, int n_in, dk_tensor *const *in,
                             dk_tensor *out, int n_aux, dk_tensor *const *aux)
{
    dkh_kcall c = {.op = op, .args = a, .n_in = n_in, .out = out, .n_aux = n_aux};
    for (int i = 0; i < n_in; i++)
        c.in[i] = in[i];
    for (int k = 0; k < n_aux; k++)
        c.aux[k] = aux[k];
    bool empty = dkh_numel(out->ndim, out->shape) == 0;
    for (int k = 0; k < n_aux; k++)
        empty &= dkh_numel(aux[k]->ndim, aux[k]->shape) == 0;
    if (empty)
        return DK_OK;
    return run_kernel(DKH_FWD, &c, out->storage->device.type);
}

dk_status dkh_op_run_into(dkh_op_id op, const dkh_args *a, int n_in, dk_tensor *const *in,
                          dk_tensor *out)
{
    return run_forward(op, a, n_in, in, out, 0, NULL);
}

static void unref_all(int n, dk_tensor **t)
{
    for (int k = 0; k < n; k++) {
        dkh_tensor_unref(t[k]);
        t[k] = NULL;
    }
}

dk_tensor *dkh_op_run_aux(dkh_op_id op, const dkh_args *a, int n_in, dk_tensor *const *in,
                          dk_tensor **aux_out)
{
    const dkh_op_def *def = dkh_op(op);
    DKH_ASSERT(n_in == def->n_in && n_in <= DKH_MAX_IN);
    for (int i = 0; i < n_in; i++)
        if (!in[i]) {
            /* Keep the first cause; only a NULL nobody explained gets a message. */
            if (dk_last_status() == DK_OK)
                dkh_op_fail(op, n_in, in, DK_ERR_ARG, "input %d is NULL", i);
            return NULL;
        }
    for (int i = 1; i < n_in; i++) {
        dk_device d0 = in[0]->storage->device, di = in[i]->storage->device;
        if (d0.type != di.type || d0.index != di.index) {
            dkh_op_fail(op, n_in, in, DK_ERR_ARG, "inputs are on different devices");
            return NULL;
        }
    }
    dkh_meta m;
    memset(&m, 0, sizeof m);
    m.device = n_in ? in[0]->storage->device : a->device;
    if (def->infer(a, in, &m) != DK_OK)
        return NULL;
    /* Only the CPU is always there; a device backend says why it is not. */
    if (m.device.type != DK_DEVICE_CPU && dkh_device_ready(m.device) != DK_OK) {
        dk_error_prefix("%s", def->name);
        return NULL;
    }
    DKH_ASSERT(m.n_aux >= 0 && m.n_aux <= DKH_MAX_AUX);
    DKH_ASSERT(!(def->flags & DKH_F_VIEW) || m.n_aux == 0);
    dk_tensor *aux[DKH_MAX_AUX] = {NULL};
    dk_tensor *out;
    if (def->flags & DKH_F_VIEW) {
        out = dkh_tensor_wrap(in[0]->storage, &m);
        if (!out)
            return NULL;
    } else {
        out = dkh_tensor_alloc(m.dtype, m.ndim, m.shape, m.device);
        if (out && dkh_out_channels_last(def->flags, in, n_in, &m))
            dkh_tensor_make_channels_last(out);
        for (int k = 0; out && k < m.n_aux; k++) {
            aux[k] = dkh_tensor_alloc(m.aux[k].dtype, m.aux[k].ndim, m.aux[k].shape, m.device);
            if (!aux[k]) {
                dkh_tensor_unref(out);
                out = NULL;
            } else if (m.ndim == 4 && m.aux[k].ndim == 4 && dkh_is_strictly_channels_last(out) &&
                       memcmp(m.aux[k].shape, m.shape, sizeof m.shape[0] * 4) == 0) {
                dkh_tensor_make_channels_last(aux[k]); /* indices lie like the values */
            }
        }
        if (out && run_forward(op, a, n_in, in, out, m.n_aux, aux) != DK_OK) {
            dkh_tensor_unref(out);
            out = NULL;
        }
        if (!out) {
            unref_all(m.n_aux, aux);
            return NULL;
        }
    }
    if ((def->flags & DKH_F_DIFF) && dk_grad_enabled() && dkh_is_float(m.dtype)) {
        bool any = false;
        for (int i = 0; i < n_in; i++)
            any |= in[i]->requires_grad;
        if (any && dkh_record(op, a, n_in, in, out, m.n_aux, aux) != DK_OK) {
            dkh_tensor_unref(out);
            unref_all(m.n_aux, aux);
            return NULL;
        }
    }
    for (int k = 0; k < m.n_aux; k++) {
        if (aux_out)
            aux_out[k] = dkh_scope_adopt(aux[k]);
        else
            dkh_tensor_unref(aux[k]);
    }
    return dkh_scope_adopt(out);
}

dk_tensor *dkh_op_run(dkh_op_id op, const dkh_args *a, int n_in, dk_tensor *const *in)
{
    return dkh_op_run_aux(op, a, n_in, in, NULL);
}

dk_status dkh_run_backward_kernel_n(dkh_op_id op, const dkh_args *a, int n_in,
                                    dk_tensor *const *in, int n_out, dk_tensor *const *like,
                                    dk_tensor **outs)
{
    DKH_ASSERT(n_in <= DKH_MAX_IN && n_out >= 1 && n_out <= 1 + DKH_MAX_AUX);
    for (int k = 0; k < n_out; k++)
        outs[k] = NULL;
    for (int i = 0; i < n_in; i++)
        if (!in[i] && i != 1) /* slot 1 (the output) may be absent by convention */
            return dk_last_status() != DK_OK ? dk_last_status()
                                             : dkh_op_fail(op, n_in, in, DK_ERR_ARG,
                                                           "backward input %d is NULL", i);
    dkh_kcall c = {.op = op, .args = a, .n_in = n_in, .n_aux = n_out - 1};
    for (int i = 0; i < n_in; i++)
        c.in[i] = in[i];
    bool empty = true;
    bool layout = (dkh_op(op)->flags & DKH_F_LAYOUT) != 0;
    for (int k = 0; k < n_out; k++) {
        outs[k] = dkh_tensor_alloc(like[k]->dtype, like[k]->ndim, like[k]->shape,
                                   like[k]->storage->device);
        if (!outs[k]) {
            unref_all(k, outs);
            return dk_last_status();
        }
        /* A gradient lies like the tensor it is the gradient of. */
        if (layout && dkh_is_strictly_channels_last(like[k]))
            dkh_tensor_make_channels_last(outs[k]);
        empty &= dkh_numel(outs[k]->ndim, outs[k]->shape) == 0;
        if (k == 0)
            c.out = outs[0];
        else
            c.aux[k - 1] = outs[k];
    }
    if (!empty && run_kernel(DKH_BWD, &c, outs[0]->storage->device.type) != DK_OK) {
        unref_all(n_out, outs);
        return dk_last_status();
    }
    for (int k = 0; k < n_out; k++)
        dkh_scope_adopt(outs[k]);
    return DK_OK;
}

dk_tensor *dkh_run_backward_kernel(dkh_op_id op, const dkh_args *a, dk_tensor *in0,
                                   dk_tensor *out, dk_tensor *gout)
{
    if (!in0 || !gout)
        return NULL;
    dk_tensor *in[3] = {in0, out, gout};
    dk_tensor *gin = NULL;
    return dkh_run_backward_kernel_n(op, a, 3, in, 1, &in0, &gin) == DK_OK ? gin : NULL;
}

/* ---- broadcasting ------------------------------------------------------------------ */

dk_status dkh_broadcast_shape(const char *op, int n, dk_tensor *const *in, dkh_meta *out)
{
    int nd = 0;
    for (int i = 0; i < n; i++)
        if (in[i]->ndim > nd)
            nd = in[i]->ndim;
    out->ndim = nd;
    for (int d = 0; d < nd; d++) {
        int64_t size = 1;
        for (int i = 0; i < n; i++) {
            int k = d - (nd - in[i]->ndim);
            if (k < 0)
                continue;
            int64_t s = in[i]->shape[k];
            if (s == size || s == 1)
                continue;
            if (size != 1) {
                dkh_buf b = DKH_BUF_INIT;
                for (int j = 0; j < n; j++) {
                    if (j)
                        dkh_buf_puts(&b, j == n - 1 ? " and " : ", ");
                    dkh_describe(&b, in[j]);
                }
                dk_status st = dk_fail(DK_ERR_SHAPE, "%s: shapes %s do not broadcast (dim %d)",
                                       op, dkh_buf_str(&b), d - nd);
                dkh_buf_fini(&b);
                return st;
            }
            size = s;
        }
        out->shape[d] = size;
    }
    dkh_contiguous_strides(nd, out->shape, out->strides);
    return DK_OK;
}

void dkh_broadcast_strides(const dk_tensor *t, int ndim, const int64_t *shape, int64_t *strides)
{
    for (int d = 0; d < ndim; d++) {
        int k = d - (ndim - t->ndim);
        strides[d] = (k < 0 || (t->shape[k] == 1 && shape[d] != 1)) ? 0 : t->strides[k];
    }
}

dk_tensor *dkh_sum_to(dk_tensor *g, int ndim, const int64_t *shape)
{
    if (!g)
        return NULL;
    int lead = g->ndim - ndim;
    DKH_ASSERT(lead >= 0);
    int dims[DK_MAX_DIMS], nd = 0;
    for (int d = 0; d < g->ndim; d++)
        if (d < lead || (shape[d - lead] == 1 && g->shape[d] != 1))
            dims[nd++] = d;
    if (nd == 0)
        return g;
    dk_tensor *s = dk_sum(g, dims, nd, true);
    return lead ? dk_reshape(s, ndim, shape) : s;
}
