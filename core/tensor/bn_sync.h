/* core/tensor/bn_sync.h — synchronised batch norm: the seam through which
 * dk_batch_norm takes its training statistics over several processes.
 *
 * The tensor runtime knows nothing of process groups. Whoever runs a
 * data-parallel training (core/runner/sync_bn.c) installs a dkh_bn_sync:
 * a predicate that says which batch-norm layers are synchronised and a sum
 * over the processes. While one is installed, dk_batch_norm in training mode
 * on a layer the predicate accepts normalises with the mean and variance of
 * the whole global batch (one sum of 2C+1 doubles in the forward) and its
 * backward sums the two per-channel terms of the input gradient the same way
 * (one more sum of 2C+1 doubles). See docs/distributed.md, "SyncBN".
 *
 *     static bool all_layers(void *ctx, const dk_tensor *rm, const dk_tensor *w)
 *     {
 *         return true;
 *     }
 *     dkh_bn_sync s = {.ctx = pg, .applies = all_layers, .all_reduce_sum = sum_over_pg};
 *     dkh_bn_sync_set(&s);
 *     ... forward and backward of the training steps ...
 *     dkh_bn_sync_set(NULL);
 *
 * Internal to libdk.
 */
#ifndef DKH_BN_SYNC_H
#define DKH_BN_SYNC_H

#include <dk/tensor.h>
#include <dk/types.h>

#include <stdbool.h>
#include <stddef.h>

typedef struct dkh_bn_sync {
    void *ctx; /* handed to both callbacks; borrowed, must outlive the installation */
    /* Whether the layer whose running mean and weight these are (either may
     * be NULL: a layer without running statistics or without affine
     * parameters) normalises over every process. Called on every training
     * forward of every batch-norm layer; it must answer the same on every
     * process for the same layer. */
    bool (*applies)(void *ctx, const dk_tensor *running_mean, const dk_tensor *weight);
    /* Sums n doubles at buf over every process, in place (every process
     * calls it at the same point with the same n). DK_OK, or a status with
     * its message recorded. */
    dk_status (*all_reduce_sum)(void *ctx, double *buf, size_t n);
} dkh_bn_sync;

/* Installs *s (copied) for the whole process; NULL removes it. Set it from
 * the thread that runs the model, between steps: a backward must run under
 * the installation its forward saw. */
void dkh_bn_sync_set(const dkh_bn_sync *s);

/* The installed synchronisation, or NULL; borrowed until the next
 * dkh_bn_sync_set. */
const dkh_bn_sync *dkh_bn_sync_get(void);

#endif /* DKH_BN_SYNC_H */
