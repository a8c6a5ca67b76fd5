/* core/dist/dist_impl.h — what a process-group backend supplies, shared by
 * dist.c (argument checks, tensors, the single-process backend) and
 * dist_mpi.c (the MPI backend, built when MPI was found).
 *
 * A backend is a small table of byte movers paired with its own context.
 * The generic layer has already checked every argument and made sure all
 * ranks agree before any of these runs, so backends only move bytes.
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

struct dkh_pg {
    const dkh_pg_ops *ops;
    void *ctx; /* the backend's, owned */
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
#endif

#endif /* DKH_DIST_IMPL_H */
