/* core/tensor/tensor.c — the tensor object: allocation, views, reading, lifetime.
 *
 * A tensor is a small refcounted header (shape, strides, offset, dtype, autograd
 * links) over refcounted storage, so views are headers sharing one storage.
 * References are held by the scope a tensor was made in, by callers who
 * retained it, and by tape nodes that saved it; the last release frees the
 * header, its gradient and its grad_fn, and drops the storage.
 */
#include "tensor_impl.h"
#include "device.h"

#include <math.h>
#include <string.h>

int64_t dkh_numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= shape[d];
    return n;
}

void dkh_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides)
{
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        strides[d] = s;
        s *= shape[d] > 0 ? shape[d] : 1;
    }
}

bool dkh_same_shape(const dk_tensor *a, const dk_tensor *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d])
            return false;
    return true;
}

bool dkh_wrap_dim(int64_t dim, int ndim, int *out)
{
    int64_t n = ndim > 0 ? ndim : 1; /* a scalar accepts dim 0 / -1, like PyTorch */
    if (dim < -n || dim >= n)
        return false;
    *out = (int)(dim < 0 ? dim + n : dim);
    return true;
}

void dkh_describe(dkh_buf *b, const dk_tensor *t)
{
    dkh_buf_putc(b, '(');
    for (int d = 0; d < t->ndim; d++)
        dkh_buf_printf(b, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (t->ndim == 1)
        dkh_buf_putc(b, ',');
    dkh_buf_printf(b, ") %s", dk_dtype_name(t->dtype));
}

dk_tensor *dkh_tensor_wrap(dkh_storage *storage, const dkh_meta *m)
{
    dk_tensor *t = dk_calloc(1, sizeof *t);
    if (!t) {
        dk_fail(DK_ERR_NOMEM, "out of memory for a tensor");
        return NULL;
    }
    atomic_init(&t->refs, 1);
    t->dtype = m->dtype;
    t->ndim = m->ndim;
    memcpy(t->shape, m->shape, sizeof t->shape);
    memcpy(t->strides, m->strides, sizeof t->strides);
    t->offset = m->offset;
    t->storage = storage;
    atomic_fetch_add(&storage->refs, 1);
    return t;
}

static dk_status check_shape(const char *fn, int ndim, const int64_t *shape, dk_dtype dtype)
{
    if (ndim < 0 || ndim > DK_MAX_DIMS)
        return dk_fail(DK_ERR_ARG, "%s: ndim %d is outside [0, %d]", fn, ndim, DK_MAX_DIMS);
    if (ndim > 0 && !shape)
        return dk_fail(DK_ERR_ARG, "%s: shape is NULL", fn);
    if ((unsigned)dtype >= DK_DTYPE_COUNT)
        return dk_fail(DK_ERR_ARG, "%s: invalid dtype %d", fn, (int)dtype);
    double total = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0)
            return dk_fail(DK_ERR_ARG, "%s: dim %d has negative size %lld", fn, d,
                           (long long)shape[d]);
        total *= (double)shape[d];
    }
    if (total * (double)dk_dtype_size(dtype) > 1e18)
        return dk_fail(DK_ERR_ARG, "%s: shape has too many elements", fn);
    return DK_OK;
}

dk_tensor *dkh_tensor_alloc(dk_dtype dtype, int ndim, const int64_t *shape, dk_device dev)
{
    if (check_shape("tensor", ndim, shape, dtype) != DK_OK)
        return NULL;
    dkh_meta m = {.dtype = dtype, .ndim = ndim, .device = dev};
    if (ndim)
        memcpy(m.shape, shape, (size_t)ndim * sizeof *shape);
    dkh_contiguous_strides(ndim, m.shape, m.strides);
    size_t bytes = (size_t)dkh_numel(ndim, m.shape) * dk_dtype_size(dtype);
    dkh_storage *s = dkh_storage_new(dev, bytes);
    if (!s)
        return NULL;
    dk_tensor *t = dkh_tensor_wrap(s, &m);
    dkh_storage_unref(s);
    return t;
}

dk_tensor *dk_empty(int ndim, const int64_t *shape, dk_dtype dtype, dk_device device)
{
    if (check_shape("empty", ndim, shape, dtype) != DK_OK)
        return NULL;
    /* Ask the device first, so a missing GPU reads as unsupported, not as
     * an allocation failure. */
    if (device.type != DK_DEVICE_CPU && dkh_device_ready(device) != DK_OK)
        return NULL;
    return dkh_scope_adopt(dkh_tensor_alloc(dtype, ndim, shape, device));
}

static dkh_args creation_args(int ndim, const int64_t *shape, dk_dtype dtype, dk_device dev)
{
    dkh_args a = {.nv = ndim, .dtype = dtype, .device = dev};
    for (int d = 0; d < ndim && d < DK_MAX_DIMS; d++)
        a.v[d] = shape[d];
    return a;
}

dk_tensor *dk_full(int ndim, const int64_t *shape, double value, dk_dtype dtype,
                   dk_device device)
{
    if (check_shape("full", ndim, shape, dtype) != DK_OK)
        return NULL;
    dkh_args a = creation_args(ndim, shape, dtype, device);
    a.f[0] = value;
    return dkh_op_run(DKH_OP_FULL, &a, 0, NULL);
}

dk_tensor *dk_arange(double start, double end, double step, dk_dtype dtype, dk_device device)
{
    dkh_args a = {.dtype = dtype, .device = device, .f = {start, end, step}};
    return dkh_op_run(DKH_OP_ARANGE, &a, 0, NULL);
}

static dk_tensor *random_tensor(dkh_op_id op, int ndim, const int64_t *shape, dk_dtype dtype,
                                dk_device device, dk_rng *rng)
{
    if (check_shape(dkh_op_name(op), ndim, shape, dtype) != DK_OK)
        return NULL;
    if (!rng)
        rng = dk_rng_default();
    dkh_args a = creation_args(ndim, shape, dtype, device);
    a.rng = *rng;
    dk_tensor *t = dkh_op_run(op, &a, 0, NULL);
    if (t)
        rng->counter += (uint64_t)dkh_numel(ndim, shape);
    return t;
}

dk_tensor *dk_rand(int ndim, const int64_t *shape, dk_dtype dtype, dk_device device, dk_rng *rng)
{
    return random_tensor(DKH_OP_RAND, ndim, shape, dtype, device, rng);
}

dk_tensor *dk_randn(int ndim, const int64_t *shape, dk_dtype dtype, dk_device device,
                    dk_rng *rng)
{
    return random_tensor(DKH_OP_RANDN, ndim, shape, dtype, device, rng);
}

dk_tensor *dk_from_data(int ndim, const int64_t *shape, dk_dtype dtype, const void *data)
{
    if (check_shape("from_data", ndim, shape, dtype) != DK_OK)
        return NULL;
    dk_tensor *t = dkh_tensor_alloc(dtype, ndim, shape, DK_CPU);
    if (!t)
        return NULL;
    size_t bytes = (size_t)dkh_numel(ndim, t->shape) * dk_dtype_size(dtype);
    if (bytes) {
        if (!data) {
            dkh_tensor_unref(t);
            dk_fail(DK_ERR_ARG, "from_data: data is NULL");
            return NULL;
        }
        memcpy(t->storage->data, data, bytes);
    }
    return dkh_scope_adopt(t);
}

/* ---- reading ------------------------------------------------------------------ */

int dk_tensor_ndim(const dk_tensor *t)
{
    return t ? t->ndim : -1;
}

const int64_t *dk_tensor_shape(const dk_tensor *t)
{
    return t ? t->shape : NULL;
}

const int64_t *dk_tensor_strides(const dk_tensor *t)
{
    return t ? t->strides : NULL;
}

int64_t dk_tensor_numel(const dk_tensor *t)
{
    return t ? dkh_numel(t->ndim, t->shape) : 0;
}

dk_dtype dk_tensor_dtype(const dk_tensor *t)
{
    return t ? t->dtype : DK_DTYPE_COUNT;
}

dk_device dk_tensor_device(const dk_tensor *t)
{
    return t ? t->storage->device : (dk_device){DK_DEVICE_CPU, 0};
}

void *dk_tensor_data(const dk_tensor *t)
{
    return t ? dkh_base(t) : NULL;
}

bool dk_tensor_is_contiguous(const dk_tensor *t)
{
    if (!t)
        return false;
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] == 0)
            return true;
        if (t->shape[d] != 1 && t->strides[d] != s)
            return false;
        s *= t->shape[d];
    }
    return true;
}

dk_status dk_tensor_to_host(const dk_tensor *t, void *dst, size_t dst_bytes)
{
    if (!t)
        return dk_fail(DK_ERR_ARG, "to_host: tensor is NULL");
    if (t->storage->device.type != DK_DEVICE_CPU)
        return dk_fail(DK_ERR_UNSUPPORTED, "to_host: only CPU tensors so far");
    int64_t n = dkh_numel(t->ndim, t->shape);
    size_t es = dk_dtype_size(t->dtype);
    if (dst_bytes < (size_t)n * es)
        return dk_fail(DK_ERR_ARG, "to_host: %zu bytes needed, destination has %zu",
                       (size_t)n * es, dst_bytes);
    const char *src = dkh_base(t);
    if (dk_tensor_is_contiguous(t)) {
        if (n)
            memcpy(dst, src, (size_t)n * es);
        return DK_OK;
    }
    for (int64_t i = 0; i < n; i++)
        memcpy((char *)dst + i * (int64_t)es,
               src + dkh_offset_of(i, t->ndim, t->shape, t->strides) * (int64_t)es, es);
    return DK_OK;
}

double dk_tensor_item(const dk_tensor *t)
{
    if (!t)
        return NAN;
    if (dkh_numel(t->ndim, t->shape) != 1) {
        dkh_buf b = DKH_BUF_INIT;
        dkh_describe(&b, t);
        dk_fail(DK_ERR_SHAPE, "item: tensor %s does not have exactly one element",
                dkh_buf_str(&b));
        dkh_buf_fini(&b);
        return NAN;
    }
    if (t->storage->device.type != DK_DEVICE_CPU) {
        dk_fail(DK_ERR_UNSUPPORTED, "item: only CPU tensors so far");
        return NAN;
    }
    return dkh_load(dkh_base(t), t->dtype, 0);
}

/* ---- lifetime ---------------------------------------------------------------------- */

dk_tensor *dk_tensor_retain(dk_tensor *t)
{
    if (t)
        atomic_fetch_add(&t->refs, 1);
    return t;
}

void dkh_tensor_unref(dk_tensor *t)
{
    if (!t)
        return;
    int before = atomic_fetch_sub(&t->refs, 1);
    DKH_ASSERT(before > 0);
    if (before != 1)
        return;
    dkh_tensor_unref(t->grad);
    if (t->grad_fn)
        dkh_node_unref(t->grad_fn);
    dkh_storage_unref(t->storage);
    dk_free(t);
}

void dk_tensor_release(dk_tensor *t)
{
    dkh_tensor_unref(t);
}
