/* core/tensor/device.c — which devices exist, and the questions asked of
 * them.
 *
 * The CPU is always there. Another device type (CUDA) joins when its backend
 * registers a dkh_device_iface (core/backends/backends.c brings the optional
 * backends up on first use); every question about a device goes through
 * here, so a missing GPU or driver reads the same everywhere: unsupported,
 * with the driver's own reason.
 */
#include "device.h"

#include <stdio.h>
#include <string.h>

static const dkh_device_iface *devices[DK_DEVICE_TYPE_COUNT];

const dkh_device_iface *dkh_device_iface_of(int type)
{
    if (type <= DK_DEVICE_CPU || type >= DK_DEVICE_TYPE_COUNT)
        return NULL;
    dkh_backends_init();
    return devices[type];
}

void dkh_device_register(dk_device_type type, const dkh_device_iface *d)
{
    DKH_ASSERT(type > DK_DEVICE_CPU && type < DK_DEVICE_TYPE_COUNT);
    devices[type] = d;
}

static dk_status bad_device(dk_device dev)
{
    return dk_fail(DK_ERR_ARG, "invalid device (type %d, index %d)", (int)dev.type,
                   (int)dev.index);
}

dk_status dkh_device_ready(dk_device dev)
{
    if (dev.type == DK_DEVICE_CPU)
        return dev.index == 0 ? DK_OK : bad_device(dev);
    if (dev.type < 0 || dev.type >= DK_DEVICE_TYPE_COUNT || dev.index < 0)
        return bad_device(dev);
    dkh_backends_init();
    const dkh_device_iface *d = devices[dev.type];
    if (!d)
        return dk_fail(DK_ERR_UNSUPPORTED,
                       "no CUDA device: this libdk was built without the CUDA backend (no CUDA "
                       "toolkit was found, or DK_CUDA=OFF)");
    return d->check(dev.index);
}

dk_status dkh_device_zero(dk_tensor *t)
{
    size_t n = (size_t)dkh_numel(t->ndim, t->shape) * dk_dtype_size(t->dtype);
    if (n == 0)
        return DK_OK;
    dk_device dev = t->storage->device;
    if (dev.type == DK_DEVICE_CPU) {
        memset(dkh_base(t), 0, n);
        return DK_OK;
    }
    return devices[dev.type]->zero(dkh_base(t), dev.index, n);
}

int dk_device_count(dk_device_type type)
{
    if (type == DK_DEVICE_CPU)
        return 1;
    dkh_backends_init();
    if ((int)type <= 0 || type >= DK_DEVICE_TYPE_COUNT || !devices[type])
        return 0;
    return devices[type]->count();
}

dk_status dk_device_check(dk_device device)
{
    return dkh_device_ready(device);
}

dk_status dk_device_name(dk_device device, char *buf, size_t size)
{
    if (!buf || size == 0)
        return dk_fail(DK_ERR_ARG, "dk_device_name: the buffer is NULL or empty");
    buf[0] = '\0';
    DK_TRY(dkh_device_ready(device));
    if (device.type == DK_DEVICE_CPU) {
        snprintf(buf, size, "cpu");
        return DK_OK;
    }
    return devices[device.type]->describe(device.index, buf, size);
}

dk_status dk_device_capability(dk_device device, int *major, int *minor)
{
    if (!major || !minor)
        return dk_fail(DK_ERR_ARG, "dk_device_capability: major or minor is NULL");
    *major = *minor = 0;
    if (device.type == DK_DEVICE_CPU)
        return dk_fail(DK_ERR_ARG, "dk_device_capability: the CPU has no compute capability");
    DK_TRY(dkh_device_ready(device));
    return devices[device.type]->capability(device.index, major, minor);
}

dk_status dk_device_synchronize(dk_device device)
{
    DK_TRY(dkh_device_ready(device));
    if (device.type == DK_DEVICE_CPU)
        return DK_OK;
    return devices[device.type]->synchronize(device.index);
}
