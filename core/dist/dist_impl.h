/* core/dist/dist_impl.h — what a process-group backend supplies, shared by
 * dist.c (argument checks, tensors, the single-process backend),
 * dist_mpi.c (the MPI backend, built when MPI was found) and dist_nccl.c
 * (the NCCL device backend, built with CUDA, MPI and NCCL).
 *
 * A backend is a small table of byte movers paired with its own context.
 * The generic layer has already checked every argument and made sure all
 * ranks agree before any of these runs, so backends only move bytes.
 *
 * A group has one host backend (ops: none or mpi), which moves host memory
 * and carries every agreement header, and optionally one device backend
 * (dev_ops: nccl) layered on it for buffers in one device's memory. The
 * generic layer picks between them per call from the device the caller
 * names (a tensor's storage device, or the explicit dk_device of the _on
 * functions); pointers are never inspected to guess where they live, so a
 * host buffer can never reach NCCL nor a device buffer MPI. The header of
 * each collective includes the device type, so ranks that pass a CPU buffer
 * on one side and a CUDA buffer on the other fail together instead of one
 * waiting in MPI and the other in NCCL.
 */
#ifndef DKH_DIST_IMPL_H
#define DKH_DIST_IMPL_H

#include "dist.h"

typedef struct dkh_pg_ops {
    size_t struct_size;
    const char *name;
    /* Reduces count elements of dtype (f32/f64/i64) at buf in place; op is
     * SUM or MAX (the generic layer turns MEAN into SUM and a division). */
    dk_status (*all_reduce)(dkh_pg *pg, void *buf, size_t count, dk_dtype dtype, dkh_reduce_op op);
    /* Copies nbytes at root's buf to every rank's buf. */
    dk_status (*broadcast)(dkh_pg *pg, void *buf, size_t nbytes, int root);
    /* Every rank's n int64 values (n small), in rank order, into out
     * (world * n entries). */
    dk_status (*all_gather_i64)(dkh_pg *pg, const int64_t *vals, int n, int64_t *out);
    /* Each rank gives counts[rank] bytes from send; recv receives all of them
     * in rank order (sum of counts bytes). */
    dk_status (*all_gather_bytes)(dkh_pg *pg, const void *send, void *recv, const size_t *counts);
    dk_status (*barrier)(dkh_pg *pg);
    /* Frees the backend's context (ctx); the group itself is freed by the caller. */
    void (*destroy)(dkh_pg *pg);
} dkh_pg_ops;

/* A device backend: collectives on buffers in the memory of device
 * (type, pg->device). Each call returns once buf holds the result. */
typedef struct dkh_pg_dev_ops {
    size_t struct_size;
    const char *name;    /* the group's backend name while attached: "nccl" */
    dk_device_type type; /* DK_DEVICE_CUDA */
    /* As dkh_pg_ops.all_reduce, but op may also be MEAN: it is reduced on
     * the device, since the generic layer's division runs on the host. */
    dk_status (*all_reduce)(dkh_pg *pg, void *buf, size_t count, dk_dtype dtype, dkh_reduce_op op);
    dk_status (*broadcast)(dkh_pg *pg, void *buf, size_t nbytes, int root);
    /* Frees dev_ctx; runs before the host backend's destroy. */
    void (*destroy)(dkh_pg *pg);
} dkh_pg_dev_ops;

struct dkh_pg {
    const dkh_pg_ops *ops;
    void *ctx;                     /* the host backend's, owned */
    const dkh_pg_dev_ops *dev_ops; /* NULL: host memory only */
    void *dev_ctx;                 /* the device backend's, owned */
    int device;                    /* dev_ops' device index; -1 without */
    dkh_launcher launcher;
    int rank;
    int world;
    int local_rank;
    int local_size;
    size_t chunk_bytes;
};

#ifdef DK_HAVE_MPI
/* Makes pg an MPI group (fills ops, ctx, rank, world, local rank and size),
 * initialising MPI if needed. On failure pg is left without a backend and
 * MPI is left as dkh_pg_new documents. */
dk_status dkh_pg_mpi_init(dkh_pg *pg) DK_CHECK;
/* MPI_Abort(MPI_COMM_WORLD, code); returns only if MPI is not running. */
void dkh_pg_mpi_abort(int code);
#endif

#ifdef DK_HAVE_NCCL
/* Attaches the NCCL device backend to pg, an MPI group (see
 * dkh_pg_new_backend): fills dev_ops, dev_ctx and device. Collective: every
 * rank calls it, and a failure on any rank before the communicator is joined
 * fails it on every rank. On failure pg keeps no device backend and is still
 * a working MPI group, for the caller to free. */
dk_status dkh_pg_nccl_init(dkh_pg *pg) DK_CHECK;
#endif

#endif /* DKH_DIST_IMPL_H */
