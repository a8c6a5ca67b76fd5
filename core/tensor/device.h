/* core/tensor/device.h — the seam through which a device backend (CUDA)
 * joins the tensor runtime, besides its allocator and kernel table
 * (tensor_impl.h). Internal to libdk. */
#ifndef DKH_DEVICE_H
#define DKH_DEVICE_H

#include "tensor_impl.h"

/* What a device backend supplies besides its allocator and kernel table. Every
 * function records a message (the library's own error string) on failure. */
typedef struct dkh_device_iface {
    size_t struct_size;
    const char *name; /* "cuda" */
    int (*count)(void);
    dk_status (*check)(int index);
    dk_status (*describe)(int index, char *buf, size_t size);
    dk_status (*capability)(int index, int *major, int *minor);
    dk_status (*synchronize)(int index);
    /* Copies nbytes between this device and the CPU or within the device
     * type; returns once dst may be read (host destinations) or once the copy
     * is ordered before later kernels (device destinations). */
    dk_status (*copy)(void *dst, dk_device dst_dev, const void *src, dk_device src_dev,
                      size_t nbytes);
    dk_status (*zero)(void *dst, int index, size_t nbytes);
    void *(*stream)(int index); /* the stream kernels queue on; NULL = default */
} dkh_device_iface;

void dkh_device_register(dk_device_type type, const dkh_device_iface *d);
/* DK_OK when tensors can live on dev, else the reason (recorded). */
dk_status dkh_device_ready(dk_device dev);
/* Fills t with zero bytes on its device. */
dk_status dkh_device_zero(dk_tensor *t);
/* The registered interface of a non-CPU device type, or NULL. */
const dkh_device_iface *dkh_device_iface_of(int type);

#endif /* DKH_DEVICE_H */
