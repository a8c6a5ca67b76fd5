/* core/dist/dist_mpi.c — the MPI backend of process groups (CPU buffers).
 *
 * Each group owns a duplicate of MPI_COMM_WORLD whose error handler is
 * MPI_ERRORS_RETURN, so a failing MPI call comes back as a dk_status with
 * MPI's own text instead of aborting the job; nothing libdk does on its
 * communicator can disturb another library's use of MPI_COMM_WORLD.
 *
 * MPI counts are ints. Every transfer is therefore cut into pieces of at most
 * pg->chunk_bytes (itself at most INT_MAX), so buffers of any size work and
 * tests can force many pieces with a tiny chunk. The ragged all-gather goes
 * in rounds: in each, every rank sends the next (at most chunk / world) bytes
 * of its share into a staging buffer, which is then scattered into place;
 * when everything fits one chunk it is a single MPI_Allgatherv.
 *
 * MPI starts and stops once per process: libdk initialises it (unless the
 * program already did) with the first group and finalises it with the last
 * one it made; MPI cannot be initialised again after that.
 */
#include "dist_impl.h"

#include "../util/util.h"

#include <limits.h>
#include <mpi.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct mpi_ctx {
    MPI_Comm comm;
} mpi_ctx;

/* Process-wide MPI state: whether libdk started MPI, and how many groups
 * are alive. Guarded by state_lock. */
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static bool we_initialised;
static int live_groups;

dk_status dkh_dist_mpi_fail(int code, const char *what)
{
    char text[MPI_MAX_ERROR_STRING + 1];
    int len = 0, cls = code;
    /* Open MPI aborts the process when MPI_Error_string is called outside
     * MPI_Init .. MPI_Finalize (as the standard allows), e.g. for a failed
     * MPI_Init_thread; only the code can be reported then. */
    int inited = 0, fin = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&fin);
    if (!inited || fin || MPI_Error_string(code, text, &len) != MPI_SUCCESS)
        snprintf(text, sizeof text, "MPI error code %d", code);
    else
        text[len < 0 ? 0 : len > MPI_MAX_ERROR_STRING ? MPI_MAX_ERROR_STRING : len] = '\0';
    if (!inited || fin || MPI_Error_class(code, &cls) != MPI_SUCCESS)
        cls = code;
    return dk_fail(cls == MPI_ERR_NO_MEM ? DK_ERR_NOMEM : DK_ERR_RUNTIME, "mpi: %s: %s",
                   what ? what : "?", text);
}

#define MPI_TRY(call, what)                                                                        \
    do {                                                                                           \
        int mpi_rc_ = (call);                                                                      \
        if (mpi_rc_ != MPI_SUCCESS)                                                                \
            return dkh_dist_mpi_fail(mpi_rc_, what);                                               \
    } while (0)

static MPI_Comm comm_of(const dkh_pg *pg)
{
    return ((const mpi_ctx *)pg->ctx)->comm;
}

static MPI_Datatype mpi_type(dk_dtype d)
{
    switch (d) {
    case DK_DTYPE_F32:
        return MPI_FLOAT;
    case DK_DTYPE_F64:
        return MPI_DOUBLE;
    case DK_DTYPE_I64:
        return MPI_INT64_T;
    default:
        DKH_ASSERT(!"dist: unchecked dtype reached the MPI backend");
    }
}

static dk_status mpi_all_reduce(dkh_pg *pg, void *buf, size_t count, dk_dtype dtype,
                                dkh_reduce_op op)
{
    size_t esize = dk_dtype_size(dtype);
    size_t per = pg->chunk_bytes / esize;
    MPI_Op mop = op == DKH_REDUCE_MAX ? MPI_MAX : MPI_SUM;
    char *p = buf;
    for (size_t done = 0; done < count;) {
        size_t n = count - done < per ? count - done : per;
        MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, p + done * esize, (int)n, mpi_type(dtype), mop,
                              comm_of(pg)),
                "MPI_Allreduce");
        done += n;
    }
    return DK_OK;
}

static dk_status mpi_broadcast(dkh_pg *pg, void *buf, size_t nbytes, int root)
{
    char *p = buf;
    for (size_t done = 0; done < nbytes;) {
        size_t n = nbytes - done < pg->chunk_bytes ? nbytes - done : pg->chunk_bytes;
        MPI_TRY(MPI_Bcast(p + done, (int)n, MPI_BYTE, root, comm_of(pg)), "MPI_Bcast");
        done += n;
    }
    return DK_OK;
}

static dk_status mpi_all_gather_i64(dkh_pg *pg, const int64_t *vals, int n, int64_t *out)
{
    MPI_TRY(MPI_Allgather(vals, n, MPI_INT64_T, out, n, MPI_INT64_T, comm_of(pg)), "MPI_Allgather");
    return DK_OK;
}

static dk_status mpi_all_gather_bytes(dkh_pg *pg, const void *send, void *recv,
                                      const size_t *counts)
{
    int world = pg->world;
    size_t total = 0, most = 0;
    for (int r = 0; r < world; r++) {
        total += counts[r];
        most = counts[r] > most ? counts[r] : most;
    }
    if (total == 0)
        return DK_OK;
    static const char dummy = 0; /* a valid address for an empty share */
    const char *src = counts[pg->rank] ? send : &dummy;
    int *rc = malloc(2 * (size_t)world * sizeof *rc);
    if (!rc)
        return dk_fail(DK_ERR_NOMEM, "MPI_Allgatherv: out of memory");
    int *displ = rc + world;
    dk_status s = DK_OK;

    if (total <= pg->chunk_bytes) {
        /* One call straight into place: every offset fits an int. */
        int off = 0;
        for (int r = 0; r < world; r++) {
            rc[r] = (int)counts[r];
            displ[r] = off;
            off += rc[r];
        }
        int e = MPI_Allgatherv(src, rc[pg->rank], MPI_BYTE, recv, rc, displ, MPI_BYTE, comm_of(pg));
        if (e != MPI_SUCCESS)
            s = dkh_dist_mpi_fail(e, "MPI_Allgatherv");
        free(rc);
        return s;
    }

    size_t step = pg->chunk_bytes / (size_t)world;
    if (step == 0)
        step = 1;
    char *stage = malloc(step * (size_t)world);
    size_t *base = malloc((size_t)world * sizeof *base);
    if (!stage || !base) {
        s = dk_fail(DK_ERR_NOMEM, "MPI_Allgatherv: out of memory for %zu staging bytes",
                    step * (size_t)world);
        goto done;
    }
    for (int r = 0; r < world; r++)
        base[r] = r ? base[r - 1] + counts[r - 1] : 0;
    for (size_t at = 0; at < most; at += step) {
        int off = 0;
        for (int r = 0; r < world; r++) {
            size_t left = counts[r] > at ? counts[r] - at : 0;
            rc[r] = (int)(left < step ? left : step);
            displ[r] = off;
            off += rc[r];
        }
        const char *mine = rc[pg->rank] ? (const char *)send + at : &dummy;
        int e =
            MPI_Allgatherv(mine, rc[pg->rank], MPI_BYTE, stage, rc, displ, MPI_BYTE, comm_of(pg));
        if (e != MPI_SUCCESS) {
            s = dkh_dist_mpi_fail(e, "MPI_Allgatherv");
            goto done;
        }
        for (int r = 0; r < world; r++)
            if (rc[r])
                memcpy((char *)recv + base[r] + at, stage + displ[r], (size_t)rc[r]);
    }
done:
    free(stage);
    free(base);
    free(rc);
    return s;
}

static dk_status mpi_barrier(dkh_pg *pg)
{
    MPI_TRY(MPI_Barrier(comm_of(pg)), "MPI_Barrier");
    return DK_OK;
}

/* Drops one group's hold on MPI; the last group libdk made finalises it
 * when libdk started it. */
static void release_mpi(void)
{
    pthread_mutex_lock(&state_lock);
    if (--live_groups == 0 && we_initialised) {
        int fin = 0;
        MPI_Finalized(&fin);
        if (!fin)
            MPI_Finalize();
        we_initialised = false;
    }
    pthread_mutex_unlock(&state_lock);
}

static void mpi_destroy(dkh_pg *pg)
{
    mpi_ctx *c = pg->ctx;
    if (c) {
        if (c->comm != MPI_COMM_NULL)
            MPI_Comm_free(&c->comm);
        free(c);
        pg->ctx = NULL;
    }
    release_mpi();
}

void dkh_pg_mpi_abort(int code)
{
    int inited = 0, fin = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&fin);
    if (inited && !fin)
        MPI_Abort(MPI_COMM_WORLD, code);
}

static const dkh_pg_ops mpi_ops = {
    .struct_size = sizeof(dkh_pg_ops),
    .name = "mpi",
    .all_reduce = mpi_all_reduce,
    .broadcast = mpi_broadcast,
    .all_gather_i64 = mpi_all_gather_i64,
    .all_gather_bytes = mpi_all_gather_bytes,
    .barrier = mpi_barrier,
    .destroy = mpi_destroy,
};

/* Starts MPI if nobody has, and counts one more live group. */
static dk_status hold_mpi(void)
{
    dk_status s = DK_OK;
    pthread_mutex_lock(&state_lock);
    int inited = 0, fin = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&fin);
    if (fin) {
        s = dk_fail(DK_ERR_CONFIG, "MPI was already finalised in this process and cannot "
                                   "start again; make one process group per process");
    } else if (!inited) {
        int provided = MPI_THREAD_SINGLE;
        int e = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
        if (e != MPI_SUCCESS) {
            s = dkh_dist_mpi_fail(e, "MPI_Init_thread");
        } else {
            we_initialised = true;
            if (provided < MPI_THREAD_FUNNELED)
                dk_log(DK_LOG_WARN, "MPI provides only MPI_THREAD_SINGLE; collectives must "
                                    "stay on the main thread");
        }
    }
    if (s == DK_OK)
        live_groups++;
    pthread_mutex_unlock(&state_lock);
    return s;
}

/* Fills in the group's ranks from its communicator. */
static dk_status setup_comm(dkh_pg *pg, mpi_ctx *c)
{
    MPI_TRY(MPI_Comm_dup(MPI_COMM_WORLD, &c->comm), "MPI_Comm_dup");
    MPI_TRY(MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    MPI_TRY(MPI_Comm_rank(c->comm, &pg->rank), "MPI_Comm_rank");
    MPI_TRY(MPI_Comm_size(c->comm, &pg->world), "MPI_Comm_size");
    MPI_Comm node = MPI_COMM_NULL;
    MPI_TRY(MPI_Comm_split_type(c->comm, MPI_COMM_TYPE_SHARED, pg->rank, MPI_INFO_NULL, &node),
            "MPI_Comm_split_type");
    int e1 = MPI_Comm_rank(node, &pg->local_rank);
    int e2 = MPI_Comm_size(node, &pg->local_size);
    MPI_Comm_free(&node);
    if (e1 != MPI_SUCCESS || e2 != MPI_SUCCESS)
        return dkh_dist_mpi_fail(e1 != MPI_SUCCESS ? e1 : e2, "MPI_Comm_rank (node)");
    return DK_OK;
}

dk_status dkh_pg_mpi_init(dkh_pg *pg)
{
    DK_TRY(hold_mpi());
    mpi_ctx *c = malloc(sizeof *c);
    if (!c) {
        release_mpi();
        return dk_fail(DK_ERR_NOMEM, "out of memory");
    }
    c->comm = MPI_COMM_NULL;
    pg->ctx = c;
    pg->ops = &mpi_ops;
    dk_status s = setup_comm(pg, c);
    if (s != DK_OK) {
        mpi_destroy(pg);
        pg->ops = NULL;
    }
    return s;
}
