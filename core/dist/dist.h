/* core/dist/dist.h — process groups: the ranks of a distributed run and the
 * collectives between them. Internal to libdk (names are dkh_); the runner's
 * data-parallel training and SyncBN are built on it.
 *
 *     dkh_pg *pg;
 *     DK_TRY(dkh_pg_new(DKH_LAUNCHER_MPI, &pg));     // under mpirun -np N
 *     DK_TRY(dkh_pg_all_reduce(pg, grad, DKH_REDUCE_MEAN));   // every rank, same order
 *     dkh_pg_free(pg);                                // MPI_Finalize with the last group
 *
 * or, with one CUDA device per rank:
 *
 *     DK_TRY(dkh_pg_new_backend(DKH_LAUNCHER_MPI, DKH_PG_BACKEND_NCCL, &pg));
 *     dk_tensor *g = ...on (dk_device){DK_DEVICE_CUDA, dkh_pg_device(pg)}...;
 *     DK_TRY(dkh_pg_all_reduce(pg, g, DKH_REDUCE_MEAN));      // through NCCL
 *
 * A group has a launcher (how the processes were started: none, mpi, slurm)
 * and a backend (what moves the bytes: "none" for a single process, "mpi",
 * or "nccl"). The nccl backend is the mpi one plus a NCCL communicator on
 * this rank's CUDA device: buffers in CUDA memory go through NCCL, host
 * memory (the agreement checks below, gathers, the barrier) still through
 * MPI, which also carried the NCCL id from rank 0 when the group was made.
 * It exists in a libdk built with CUDA, MPI and NCCL (DK_NCCL).
 *
 * Collectives. Every rank of the group calls the same collectives in the same
 * order, from the thread that created the group. Tensors are contiguous CPU
 * tensors of f32, f64 or i64, or, with the nccl backend, contiguous tensors on
 * this rank's CUDA device (dkh_pg_device) for all-reduce and broadcast. Where
 * a buffer lives is always said by the caller (a tensor's device, or the
 * device argument of the _on functions), never guessed from the pointer.
 * Before moving any data, each collective checks
 * that all ranks agree on what they pass (dtype, element count where it must
 * match, root, reduction, device type) and that every rank's own arguments were valid; a
 * disagreement or a bad argument on any rank fails the call on every rank
 * with DK_ERR_ARG, so one rank's mistake gives messages rather than a hang,
 * and the group stays usable. The check costs one small all-reduce per call.
 *
 * Errors from MPI become DK_ERR_RUNTIME with MPI's own error string
 * (MPI_Error_string); the group's communicator returns errors instead of
 * aborting the job. Errors from NCCL and CUDA become DK_ERR_RUNTIME with
 * ncclGetErrorString's / cudaGetErrorString's text and the rank.
 */
#ifndef DKH_DIST_H
#define DKH_DIST_H

#include <dk/status.h>
#include <dk/tensor.h>

#include <stddef.h>
#include <stdint.h>

/* How the processes of a run were started. */
typedef enum dkh_launcher {
    DKH_LAUNCHER_NONE,  /* one process: rank 0 of 1 */
    DKH_LAUNCHER_MPI,   /* mpirun / mpiexec: ranks from MPI */
    DKH_LAUNCHER_SLURM, /* srun: ranks from SLURM_*, checked against MPI, which moves the data */
    DKH_LAUNCHER_COUNT
} dkh_launcher;

/* The reductions of dkh_pg_all_reduce. */
typedef enum dkh_reduce_op {
    DKH_REDUCE_SUM,
    DKH_REDUCE_MEAN, /* the sum, divided by the world size once, after summing */
    DKH_REDUCE_MAX,
    DKH_REDUCE_COUNT
} dkh_reduce_op;

/* What moves the bytes, as dist_cfg.backend names it. */
typedef enum dkh_pg_backend {
    DKH_PG_BACKEND_AUTO, /* the launcher's default: none for none, mpi otherwise */
    DKH_PG_BACKEND_MPI,  /* MPI for everything (CPU memory only) */
    DKH_PG_BACKEND_NCCL, /* MPI for host memory, NCCL for CUDA memory */
    DKH_PG_BACKEND_COUNT
} dkh_pg_backend;

/* A process group (opaque). */
typedef struct dkh_pg dkh_pg;

/* The default chunk size of MPI transfers, in bytes (see dkh_pg_set_chunk_bytes). */
#define DKH_PG_DEFAULT_CHUNK_BYTES ((size_t)64 << 20)

/* ---- launchers ------------------------------------------------------------------ */

/* The launcher's name: "none", "mpi", "slurm"; "?" for a value out of range. */
const char *dkh_launcher_name(dkh_launcher launcher);

/* Parses a launcher name (as `--launcher` takes it) into *out.
 * Errors: DK_ERR_ARG for NULL arguments or an unknown name (the message lists
 * the known ones). */
dk_status dkh_launcher_parse(const char *name, dkh_launcher *out) DK_CHECK;

/* Whether this libdk was built with MPI (DK_MPI), so that the mpi and slurm
 * launchers can work. */
bool dkh_dist_have_mpi(void);

/* Whether this libdk was built with the NCCL backend (DK_NCCL: needs CUDA,
 * MPI and NCCL at build time). */
bool dkh_dist_have_nccl(void);

/* The backend choice's name: "auto", "mpi", "nccl"; "?" out of range. */
const char *dkh_pg_backend_choice_name(dkh_pg_backend backend);

/* Parses a backend choice (as dist_cfg.backend takes it) into *out.
 * Errors: DK_ERR_ARG for NULL arguments or an unknown name (the message lists
 * the known ones). */
dk_status dkh_pg_backend_parse(const char *name, dkh_pg_backend *out) DK_CHECK;

/* ---- lifetime ------------------------------------------------------------------- */

/* Makes the process group of this process from its environment.
 *
 * none: rank 0 of 1, no communication library involved.
 * mpi: initialises MPI (MPI_Init_thread, MPI_THREAD_FUNNELED) unless the
 *   process already did; rank and world size are MPI_COMM_WORLD's, the local
 *   rank is the rank among the processes sharing this node
 *   (MPI_Comm_split_type, MPI_COMM_TYPE_SHARED).
 * slurm: reads SLURM_PROCID, SLURM_NTASKS and SLURM_LOCALID, then joins MPI
 *   as for mpi and checks that both agree (on every rank; if any rank
 *   disagrees, all fail).
 *
 * launcher: which of the three. out: receives the new group, which the caller
 *   frees with dkh_pg_free; untouched on failure.
 * Errors: DK_ERR_ARG (NULL out, launcher out of range), DK_ERR_UNSUPPORTED
 *   (mpi or slurm in a libdk built without MPI), DK_ERR_CONFIG (a SLURM_*
 *   variable missing, not a number, or different from MPI's view; MPI was
 *   already finalised in this process), DK_ERR_RUNTIME (an MPI call failed:
 *   MPI's message). If MPI was started by this call and the call fails with
 *   no other group alive, MPI is finalised again before returning. */
dk_status dkh_pg_new(dkh_launcher launcher, dkh_pg **out) DK_CHECK;

/* Frees a group: its communicator, and, when it is the last live group and
 * libdk initialised MPI, MPI itself (MPI_Finalize; MPI cannot start again in
 * this process afterwards). Collective for mpi groups: every rank frees its
 * group. NULL is a no-op. */
void dkh_pg_free(dkh_pg *pg);

/* Ends every process of the job now, with exit status code (MPI_Abort on
 * MPI_COMM_WORLD; mpirun and srun then stop the other ranks). For a failure
 * the other ranks cannot learn of: they would wait in their next collective.
 * Flushes stdout and stderr first; a single-process group just exits. */
_Noreturn void dkh_pg_abort(dkh_pg *pg, int code);

/* dkh_pg_new with a chosen backend. AUTO and MPI give what dkh_pg_new gives.
 * NCCL makes the mpi group first, then, on every rank: picks CUDA device
 * local_rank % (number of visible devices) and makes it current; rank 0 makes
 * a NCCL id (ncclGetUniqueId) and broadcasts it over MPI; every rank joins
 * the NCCL communicator (ncclCommInitRank). A failure on any rank before the
 * communicator is joined fails the call on every rank.
 *
 * Errors: as dkh_pg_new, and DK_ERR_ARG (backend out of range), DK_ERR_CONFIG
 *   (NCCL with launcher none: the id needs MPI; more ranks on this node than
 *   visible CUDA devices), DK_ERR_UNSUPPORTED (NCCL in a libdk built without
 *   it; no CUDA device: the CUDA runtime's reason), DK_ERR_RUNTIME (a CUDA or
 *   NCCL call failed: the library's message and the rank). */
dk_status dkh_pg_new_backend(dkh_launcher launcher, dkh_pg_backend backend, dkh_pg **out) DK_CHECK;

/* ---- identity ------------------------------------------------------------------- */

/* This process's rank in the group, in [0, world size). */
int dkh_pg_rank(const dkh_pg *pg);

/* The number of processes in the group (1 for none). */
int dkh_pg_world_size(const dkh_pg *pg);

/* This process's rank among the group's processes on the same node. */
int dkh_pg_local_rank(const dkh_pg *pg);

/* The number of the group's processes on this node. */
int dkh_pg_local_size(const dkh_pg *pg);

/* The backend's name: "none", "mpi" or "nccl". Static. */
const char *dkh_pg_backend_name(const dkh_pg *pg);

/* The index of the CUDA device this rank's NCCL communicator works on, or -1
 * when the group moves host memory only. */
int dkh_pg_device(const dkh_pg *pg);

/* Whether the group moves buffers on dev itself: the CPU always; a CUDA
 * device when it is the group's (dkh_pg_device). Other buffers must be
 * copied to the CPU by the caller first. */
bool dkh_pg_moves(const dkh_pg *pg, dk_device dev);

/* The launcher the group was made for. */
dkh_launcher dkh_pg_launcher(const dkh_pg *pg);

/* Sets the most bytes one MPI call moves; larger buffers go in several calls,
 * which also keeps every MPI count within an int. Default
 * DKH_PG_DEFAULT_CHUNK_BYTES; tests set tiny chunks to exercise the splitting.
 * Must be the same on every rank (it changes how many calls are made).
 * Errors: DK_ERR_ARG (NULL pg, nbytes < 16 or > INT_MAX). */
dk_status dkh_pg_set_chunk_bytes(dkh_pg *pg, size_t nbytes) DK_CHECK;

/* ---- collectives on tensors ---------------------------------------------------------- */

/* Reduces t element-wise across the ranks, in place: afterwards every rank's t
 * holds the sum, the mean or the maximum. Every rank passes a tensor of the
 * same dtype and element count (shapes may differ). Mean divides the sum by
 * the world size once, in t's dtype, so integer-valued sums stay exact.
 *
 * On the group's CUDA device (nccl backend) the reduction is NCCL's: sum and
 * max as ncclSum/ncclMax, mean as ncclAvg, whose rounding may differ from the
 * CPU's sum-then-divide in the last bit (every rank gets the same bits).
 *
 * t: borrowed; contiguous, on the CPU or the group's CUDA device,
 *   f32/f64/i64 (mean: f32/f64 only); its storage's version is bumped, as
 *   for any in-place write.
 * Errors: DK_ERR_ARG (a rank's argument invalid, or ranks disagree, a CUDA
 *   tensor on another device than the group's), DK_ERR_UNSUPPORTED (a CUDA
 *   tensor and a backend other than nccl), DK_ERR_RUNTIME (MPI, NCCL, CUDA). */
dk_status dkh_pg_all_reduce(dkh_pg *pg, dk_tensor *t, dkh_reduce_op op) DK_CHECK;

/* Copies root's t into every other rank's t. Every rank passes the same root
 * and a tensor of the same dtype and element count, on the same device type
 * (CPU, or each rank's CUDA device with the nccl backend).
 * Errors: DK_ERR_ARG (root outside [0, world size), a rank's argument invalid,
 *   ranks disagree), DK_ERR_UNSUPPORTED (a CUDA tensor and a backend other
 *   than nccl), DK_ERR_RUNTIME (MPI, NCCL, CUDA). */
dk_status dkh_pg_broadcast(dkh_pg *pg, dk_tensor *t, int root) DK_CHECK;

/* Gathers every rank's t, whose element counts may differ (0 included), on
 * every rank: *out becomes a new 1-d tensor holding rank 0's elements, then
 * rank 1's, and so on (each flattened in C order), and counts[r] is the number
 * of elements rank r gave. All ranks pass the same dtype.
 *
 * t: borrowed, contiguous, on the CPU (with every backend), f32/f64/i64.
 * out: receives a new tensor owned by the innermost open scope (by the
 *   caller, to release with dk_tensor_release, when none is open); set to
 *   NULL on failure.
 * counts: NULL, or room for dkh_pg_world_size(pg) entries.
 * Errors: DK_ERR_ARG (as for all-reduce), DK_ERR_UNSUPPORTED (a CUDA tensor),
 *   DK_ERR_NOMEM, DK_ERR_RUNTIME (MPI). */
dk_status dkh_pg_all_gather(dkh_pg *pg, const dk_tensor *t, dk_tensor **out,
                            int64_t *counts) DK_CHECK;

/* Returns on every rank only once every rank has called it.
 * Errors: DK_ERR_ARG (NULL pg), DK_ERR_RUNTIME (MPI). */
dk_status dkh_pg_barrier(dkh_pg *pg) DK_CHECK;

/* ---- collectives on raw buffers (libdk internal use: checkpoints, samplers) ---------- */

/* dkh_pg_all_reduce over count elements of dtype at buf (CPU memory). */
dk_status dkh_pg_all_reduce_buf(dkh_pg *pg, void *buf, size_t count, dk_dtype dtype,
                                dkh_reduce_op op) DK_CHECK;

/* dkh_pg_broadcast over nbytes bytes at buf; every rank passes the same nbytes. */
dk_status dkh_pg_broadcast_bytes(dkh_pg *pg, void *buf, size_t nbytes, int root) DK_CHECK;

/* dkh_pg_all_reduce_buf and dkh_pg_broadcast_bytes for a buffer on dev: the
 * CPU, or the group's CUDA device (see dkh_pg_moves). Every rank passes the
 * same device type. */
dk_status dkh_pg_all_reduce_buf_on(dkh_pg *pg, void *buf, size_t count, dk_dtype dtype,
                                   dkh_reduce_op op, dk_device dev) DK_CHECK;
dk_status dkh_pg_broadcast_bytes_on(dkh_pg *pg, void *buf, size_t nbytes, int root,
                                    dk_device dev) DK_CHECK;

/* dkh_pg_all_gather over bytes: each rank gives nbytes (may differ, may be 0)
 * from buf; *out becomes a new malloc'ed buffer (free with free(); non-NULL
 * even when empty) of every rank's bytes in rank order, *total its size, and
 * counts[r] (NULL, or world-size entries) rank r's share.
 * Errors: DK_ERR_ARG, DK_ERR_NOMEM, DK_ERR_RUNTIME (MPI). */
dk_status dkh_pg_all_gather_bytes(dkh_pg *pg, const void *buf, size_t nbytes, void **out,
                                  size_t *total, size_t *counts) DK_CHECK;

/* ---- MPI errors ------------------------------------------------------------------ */

/* Records an MPI error code as a dk_status and returns it: DK_ERR_RUNTIME with
 * "mpi: <what>: <MPI_Error_string's text>" (DK_ERR_NOMEM for MPI_ERR_NO_MEM).
 * Outside MPI_Init .. MPI_Finalize, where MPI may not be asked, the text is
 * "MPI error code <code>". DK_ERR_UNSUPPORTED in a libdk built without MPI.
 * Exposed for the tests. */
dk_status dkh_dist_mpi_fail(int code, const char *what);

#endif /* DKH_DIST_H */
