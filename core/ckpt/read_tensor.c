/* core/ckpt/read_tensor.c — loading a checkpoint tensor into a dk_tensor.
 *
 * The destination decides the path: a contiguous CPU tensor receives the
 * decompressed values directly; a strided CPU tensor gets them through a
 * buffer of its own size; a contiguous tensor on another device through a
 * host buffer and the device's copy. The shape and dtype must match exactly:
 * a checkpoint never resizes anything.
 */
#include "ckpt_impl.h"

#include "../tensor/device.h"
#include "../util/util.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Appends "(2, 3) f32" for a shape and dtype. */
static void describe(dkh_buf *b, int ndim, const int64_t *shape, dk_dtype dtype)
{
    dkh_buf_putc(b, '(');
    for (int d = 0; d < ndim; d++)
        dkh_buf_printf(b, "%s%" PRId64, d ? ", " : "", shape[d]);
    dkh_buf_printf(b, "%s %s", ndim == 1 ? ",)" : ")", dkh_ckpt_dtype_name(dtype));
}

static dk_status check_match(dkh_ckpt *c, size_t i, const dk_tensor *dst)
{
    int64_t shape[DK_MAX_DIMS];
    int ndim = dkh_ckpt_shape(c, i, shape);
    dk_dtype dtype = dkh_ckpt_dtype(c, i);
    if (dst->dtype == dtype && dst->ndim == ndim &&
        memcmp(dst->shape, shape, (size_t)ndim * sizeof *shape) == 0)
        return DK_OK;
    dkh_buf want = DKH_BUF_INIT, got = DKH_BUF_INIT;
    describe(&want, ndim, shape, dtype);
    describe(&got, dst->ndim, dst->shape, dst->dtype);
    dk_status s =
        dk_fail(DK_ERR_SHAPE, "checkpoint %s: tensor '%s' is %s, the destination is %s",
                dkh_ckpt_path(c), dkh_ckpt_name(c, i), dkh_buf_str(&want), dkh_buf_str(&got));
    dkh_buf_fini(&want);
    dkh_buf_fini(&got);
    return s;
}

/* Copies contiguous values into dst's strided elements. */
static void scatter(dk_tensor *dst, const char *src)
{
    int64_t n = dkh_numel(dst->ndim, dst->shape);
    size_t es = dkh_ckpt_dtype_size(dst->dtype);
    char *base = dkh_base(dst);
    for (int64_t k = 0; k < n; k++)
        memcpy(base + dkh_offset_of(k, dst->ndim, dst->shape, dst->strides) * (int64_t)es,
               src + k * (int64_t)es, es);
}

dk_status dkh_ckpt_read(dkh_ckpt *c, size_t i, dk_tensor *dst)
{
    if (!c || !dst)
        return dk_fail(DK_ERR_ARG, "dkh_ckpt_read: NULL argument");
    if (i >= dkh_ckpt_count(c))
        return dk_fail(DK_ERR_ARG, "checkpoint %s: no tensor %zu (it has %zu)", dkh_ckpt_path(c), i,
                       dkh_ckpt_count(c));
    DK_TRY(check_match(c, i, dst));
    bool on_cpu = dst->storage->device.type == DK_DEVICE_CPU;
    bool contiguous = dk_tensor_is_contiguous(dst);
    if (on_cpu && contiguous)
        return dkh_ckpt_decode(c, i, dkh_base(dst));
    if (!on_cpu && !contiguous)
        return dk_fail(DK_ERR_UNSUPPORTED,
                       "checkpoint %s: tensor '%s': reading into a non-contiguous tensor on a "
                       "device is not supported; read into a contiguous one and copy",
                       dkh_ckpt_path(c), dkh_ckpt_name(c, i));

    /* The buffer has the destination's size, which the caller already holds. */
    size_t nbytes = (size_t)dkh_ckpt_raw_size(c, i);
    char *buf = malloc(nbytes ? nbytes : 1);
    if (!buf)
        return dk_fail(DK_ERR_NOMEM, "checkpoint %s: tensor '%s': out of memory (%zu bytes)",
                       dkh_ckpt_path(c), dkh_ckpt_name(c, i), nbytes);
    dk_status s = dkh_ckpt_decode(c, i, buf);
    if (s == DK_OK && on_cpu) {
        scatter(dst, buf);
    } else if (s == DK_OK && nbytes) {
        dk_device dev = dst->storage->device;
        const dkh_device_iface *d = dkh_device_iface_of(dev.type);
        s = dkh_device_ready(dev);
        if (s == DK_OK && !d)
            s = dk_fail(DK_ERR_UNSUPPORTED, "no copy to device type %d", (int)dev.type);
        if (s == DK_OK)
            s = d->copy(dkh_base(dst), dev, buf, DK_CPU, nbytes);
        if (s != DK_OK)
            dk_error_prefix("checkpoint %s: tensor '%s'", dkh_ckpt_path(c), dkh_ckpt_name(c, i));
    }
    free(buf);
    return s;
}
