/* core/dist/dist_nccl.c — the NCCL device backend of process groups (CUDA
 * buffers), layered on the MPI backend.
 *
 * A nccl group is an MPI group first: MPI keeps carrying host memory (the
 * agreement header of every collective, gathers, the barrier), and it is
 * how rank 0's NCCL id reaches the others when the communicator is made.
 * This file adds one NCCL communicator per group, on one CUDA device per
 * rank: local_rank % (visible devices), so N ranks on a node with N GPUs use
 * one each, and CUDA_VISIBLE_DEVICES narrows what "visible" means.
 *
 * Streams. The CUDA backend queues every copy and kernel on the legacy
 * default stream for now (core/backends/cuda), so collectives go on a
 * dedicated blocking stream of the group: work queued before a collective on
 * the default stream is finished before it starts, and each collective is
 * waited for before the call returns, so the caller may read the buffer at
 * once. That gives up overlapping communication with computation, for
 * correctness; overlap comes with the backend's own streams.
 *
 * Waiting polls the stream and the communicator's asynchronous error state
 * instead of blocking in cudaStreamSynchronize, so a peer that fails (a
 * network error, a killed rank noticed by NCCL) becomes an error here rather
 * than a hang; the communicator is then aborted rather than destroyed.
 */
#include "dist_impl.h"

#include "../util/util.h"

#include <cuda_runtime_api.h>
#include <nccl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* ncclAvg, which reduces the mean on the device, came with NCCL 2.10. */
#if NCCL_VERSION_CODE < NCCL_VERSION(2, 10, 0)
#error "the NCCL backend needs NCCL 2.10 or newer (configure with -DDK_NCCL=OFF to build without)"
#endif

typedef struct nccl_ctx {
    ncclComm_t comm;     /* NULL until joined */
    cudaStream_t stream; /* NULL until made */
    bool broken;         /* an asynchronous error was seen: abort, never destroy */
} nccl_ctx;

static dk_status nccl_fail(const dkh_pg *pg, ncclComm_t comm, ncclResult_t r, const char *what)
{
    const char *detail = "";
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 13, 0)
    /* NCCL's last message says more than the code (which peer, which
     * transport); it may be empty. */
    detail = ncclGetLastError(comm);
    if (!detail)
        detail = "";
#endif
    return dk_fail(DK_ERR_RUNTIME, "nccl: %s on rank %d: %s%s%s", what, pg->rank,
                   ncclGetErrorString(r), *detail ? ": " : "", detail);
}

static dk_status cuda_fail(const dkh_pg *pg, cudaError_t e, const char *what)
{
    (void)cudaGetLastError(); /* a sticky error stays; the next unrelated call is clean */
    return dk_fail(e == cudaErrorMemoryAllocation ? DK_ERR_NOMEM : DK_ERR_RUNTIME,
                   "cuda: %s on rank %d: %s (%s)", what, pg->rank, cudaGetErrorString(e),
                   cudaGetErrorName(e));
}

static ncclDataType_t nccl_type(dk_dtype d)
{
    switch (d) {
    case DK_DTYPE_F32:
        return ncclFloat32;
    case DK_DTYPE_F64:
        return ncclFloat64;
    case DK_DTYPE_I64:
        return ncclInt64;
    default:
        DKH_ASSERT(!"dist: unchecked dtype reached the NCCL backend");
    }
}

/* Makes the group's device current on the calling thread, through the CUDA
 * backend so that its idea of the current device stays true. */
static dk_status use_device(const dkh_pg *pg)
{
    return dk_device_check((dk_device){DK_DEVICE_CUDA, pg->device});
}

/* Waits until everything queued on the group's stream has run, or NCCL
 * reports an asynchronous error. */
static dk_status wait_stream(dkh_pg *pg, const char *what)
{
    nccl_ctx *c = pg->dev_ctx;
    for (;;) {
        cudaError_t e = cudaStreamQuery(c->stream);
        if (e == cudaSuccess)
            return DK_OK;
        if (e != cudaErrorNotReady) {
            c->broken = true;
            return cuda_fail(pg, e, what);
        }
        ncclResult_t async = ncclSuccess;
        ncclResult_t r = ncclCommGetAsyncError(c->comm, &async);
        if (r != ncclSuccess || (async != ncclSuccess && async != ncclInProgress)) {
            c->broken = true;
            return nccl_fail(pg, c->comm, r != ncclSuccess ? r : async, what);
        }
        sched_yield();
    }
}

static dk_status nccl_all_reduce(dkh_pg *pg, void *buf, size_t count, dk_dtype dtype,
                                 dkh_reduce_op op)
{
    nccl_ctx *c = pg->dev_ctx;
    ncclRedOp_t nop = op == DKH_REDUCE_MAX ? ncclMax : op == DKH_REDUCE_MEAN ? ncclAvg : ncclSum;
    DK_TRY(use_device(pg));
    ncclResult_t r = ncclAllReduce(buf, buf, count, nccl_type(dtype), nop, c->comm, c->stream);
    if (r != ncclSuccess)
        return nccl_fail(pg, c->comm, r, "ncclAllReduce");
    return wait_stream(pg, "ncclAllReduce");
}

static dk_status nccl_broadcast(dkh_pg *pg, void *buf, size_t nbytes, int root)
{
    nccl_ctx *c = pg->dev_ctx;
    DK_TRY(use_device(pg));
    ncclResult_t r = ncclBroadcast(buf, buf, nbytes, ncclUint8, root, c->comm, c->stream);
    if (r != ncclSuccess)
        return nccl_fail(pg, c->comm, r, "ncclBroadcast");
    return wait_stream(pg, "ncclBroadcast");
}

static void nccl_destroy(dkh_pg *pg)
{
    nccl_ctx *c = pg->dev_ctx;
    if (!c)
        return;
    /* On a failed set-up there may be no device, and then nothing on it to
     * free; the failure's message must stay the one recorded. */
    if (pg->device >= 0)
        (void)use_device(pg);
    if (c->comm) {
        /* Destroying waits for queued work, which never ends when a peer is
         * gone; abort does not wait. */
        if (c->broken)
            (void)ncclCommAbort(c->comm);
        else
            (void)ncclCommDestroy(c->comm);
    }
    if (c->stream)
        (void)cudaStreamDestroy(c->stream);
    free(c);
    pg->dev_ctx = NULL;
    pg->dev_ops = NULL;
    pg->device = -1;
}

static const dkh_pg_dev_ops nccl_ops = {
    .struct_size = sizeof(dkh_pg_dev_ops),
    .name = "nccl",
    .type = DK_DEVICE_CUDA,
    .all_reduce = nccl_all_reduce,
    .broadcast = nccl_broadcast,
    .destroy = nccl_destroy,
};

/* Agrees on one step of the set-up: every rank reports whether its own part
 * failed (its message already recorded), and all fail if any did. */
static dk_status agree_step(dkh_pg *pg, dk_status local, const char *step)
{
    int64_t bad = local != DK_OK ? pg->rank + 1 : 0;
    dk_status s = pg->ops->all_reduce(pg, &bad, 1, DK_DTYPE_I64, DKH_REDUCE_MAX);
    if (s != DK_OK)
        return s;
    if (local != DK_OK)
        return local;
    if (bad)
        return dk_fail(DK_ERR_RUNTIME, "rank %lld failed to %s (see its message)",
                       (long long)bad - 1, step);
    return DK_OK;
}

/* This rank's device: local_rank % visible devices, made current. */
static dk_status pick_device(dkh_pg *pg)
{
    int n = dk_device_count(DK_DEVICE_CUDA);
    if (n <= 0) {
        /* The CUDA backend knows why (no driver, no device): its message. */
        dk_status s = dk_device_check((dk_device){DK_DEVICE_CUDA, 0});
        return s != DK_OK ? s : dk_fail(DK_ERR_UNSUPPORTED, "no CUDA device");
    }
    if (pg->local_size > n)
        return dk_fail(DK_ERR_CONFIG,
                       "%d ranks run on this node but it has %d visible CUDA device%s; NCCL "
                       "needs one device per rank (start at most %d ranks per node, or check "
                       "CUDA_VISIBLE_DEVICES)",
                       pg->local_size, n, n == 1 ? "" : "s", n);
    pg->device = pg->local_rank % n;
    return use_device(pg);
}

dk_status dkh_pg_nccl_init(dkh_pg *pg)
{
    nccl_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return dk_fail(DK_ERR_NOMEM, "out of memory");
    pg->device = -1;

    dk_status local = pick_device(pg);
    if (local == DK_OK) {
        cudaError_t e = cudaStreamCreate(&c->stream);
        if (e != cudaSuccess) {
            c->stream = NULL;
            local = cuda_fail(pg, e, "cudaStreamCreate");
        }
    }
    dk_status s = agree_step(pg, local, "set up its CUDA device");

    /* Rank 0 makes the id; it travels over MPI with rank 0's outcome, so
     * the others stop rather than wait for a communicator that never forms. */
    struct {
        int64_t ok;
        ncclUniqueId id;
    } msg;
    memset(&msg, 0, sizeof msg);
    if (s == DK_OK) {
        local = DK_OK;
        if (pg->rank == 0) {
            ncclResult_t r = ncclGetUniqueId(&msg.id);
            msg.ok = r == ncclSuccess;
            if (r != ncclSuccess)
                local = nccl_fail(pg, NULL, r, "ncclGetUniqueId");
        }
        s = pg->ops->broadcast(pg, &msg, sizeof msg, 0);
        if (s == DK_OK && local != DK_OK)
            s = local;
        else if (s == DK_OK && !msg.ok)
            s = dk_fail(DK_ERR_RUNTIME, "rank 0 could not make the NCCL id (see its message)");
    }

    if (s == DK_OK) {
        ncclResult_t r = ncclCommInitRank(&c->comm, pg->world, msg.id, pg->rank);
        local = DK_OK;
        if (r != ncclSuccess) {
            local = nccl_fail(pg, NULL, r, "ncclCommInitRank");
            c->comm = NULL;
        }
        s = agree_step(pg, local, "join the NCCL communicator");
        if (s != DK_OK)
            c->broken = true; /* a peer may be missing: do not wait for it */
    }

    pg->dev_ops = &nccl_ops;
    pg->dev_ctx = c;
    if (s != DK_OK) {
        nccl_destroy(pg);
        return s;
    }
    int version = 0;
    (void)ncclGetVersion(&version);
    dk_log(DK_LOG_DEBUG, "nccl %d: rank %d of %d on cuda:%d", version, pg->rank, pg->world,
           pg->device);
    return DK_OK;
}
