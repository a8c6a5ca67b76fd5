/* core/dist/dist.c — process groups: launchers, backend choice, argument
 * checks, collectives on tensors, and the single-process ("none") backend.
 *
 * Everything a user can get wrong is checked here, before a backend moves a
 * byte. The checks run on every rank and are then agreed on in one small
 * all-reduce (the "header"), which also compares what must match across
 * ranks: a rank with a bad argument, or ranks that pass different dtypes,
 * counts or roots, make the call fail everywhere with a message instead of
 * leaving MPI to hang or to mix bytes of different types. The local message
 * is kept on the rank that caused it; the others name that rank. Which
 * backend moves a buffer (the host one, or the device one for the group's
 * CUDA device) is decided here from the device the caller names.
 */
#include "dist_impl.h"

#include "../tensor/tensor_impl.h"
#include "../util/util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const launcher_names[DKH_LAUNCHER_COUNT] = {"none", "mpi", "slurm"};
static const char *const reduce_names[DKH_REDUCE_COUNT] = {"sum", "mean", "max"};
static const char *const backend_names[DKH_PG_BACKEND_COUNT] = {"auto", "mpi", "nccl"};

const char *dkh_launcher_name(dkh_launcher launcher)
{
    return (unsigned)launcher < DKH_LAUNCHER_COUNT ? launcher_names[launcher] : "?";
}

/* name's index in names[n], or -1. */
static int name_index(const char *name, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

dk_status dkh_launcher_parse(const char *name, dkh_launcher *out)
{
    if (!name || !out)
        return dk_fail(DK_ERR_ARG, "launcher: NULL argument");
    int i = name_index(name, launcher_names, DKH_LAUNCHER_COUNT);
    if (i < 0)
        return dk_fail(DK_ERR_ARG, "unknown launcher '%s' (known: none, mpi, slurm)", name);
    *out = (dkh_launcher)i;
    return DK_OK;
}

bool dkh_dist_have_mpi(void)
{
#ifdef DK_HAVE_MPI
    return true;
#else
    return false;
#endif
}

bool dkh_dist_have_nccl(void)
{
#ifdef DK_HAVE_NCCL
    return true;
#else
    return false;
#endif
}

const char *dkh_pg_backend_choice_name(dkh_pg_backend backend)
{
    return (unsigned)backend < DKH_PG_BACKEND_COUNT ? backend_names[backend] : "?";
}

dk_status dkh_pg_backend_parse(const char *name, dkh_pg_backend *out)
{
    if (!name || !out)
        return dk_fail(DK_ERR_ARG, "backend: NULL argument");
    int i = name_index(name, backend_names, DKH_PG_BACKEND_COUNT);
    if (i < 0)
        return dk_fail(DK_ERR_ARG, "unknown process-group backend '%s' (known: auto, mpi, nccl)",
                       name);
    *out = (dkh_pg_backend)i;
    return DK_OK;
}

/* ---- the single-process backend ------------------------------------------------ */

/* With one rank every collective is the identity: nothing to reduce with,
 * the root's bytes are already in place, and the gather is a copy. */
static dk_status none_all_reduce(dkh_pg *pg, void *buf, size_t count, dk_dtype dtype,
                                 dkh_reduce_op op)
{
    return DK_OK;
}

static dk_status none_broadcast(dkh_pg *pg, void *buf, size_t nbytes, int root)
{
    return DK_OK;
}

static dk_status none_all_gather_i64(dkh_pg *pg, const int64_t *vals, int n, int64_t *out)
{
    memcpy(out, vals, (size_t)n * sizeof *vals);
    return DK_OK;
}

static dk_status none_all_gather_bytes(dkh_pg *pg, const void *send, void *recv,
                                       const size_t *counts)
{
    if (counts[0])
        memcpy(recv, send, counts[0]);
    return DK_OK;
}

static dk_status none_barrier(dkh_pg *pg)
{
    return DK_OK;
}

static void none_destroy(dkh_pg *pg) {}

static const dkh_pg_ops none_ops = {
    .struct_size = sizeof(dkh_pg_ops),
    .name = "none",
    .all_reduce = none_all_reduce,
    .broadcast = none_broadcast,
    .all_gather_i64 = none_all_gather_i64,
    .all_gather_bytes = none_all_gather_bytes,
    .barrier = none_barrier,
    .destroy = none_destroy,
};

/* ---- creation ------------------------------------------------------------------- */

/* Reads a SLURM_* variable as a non-negative int. */
static dk_status slurm_int(const char *var, int *out)
{
    const char *s = getenv(var);
    if (!s || !*s)
        return dk_fail(DK_ERR_CONFIG,
                       "launcher slurm: %s is not set (start the job with srun, or use "
                       "--launcher mpi under mpirun)",
                       var);
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 0 || v > INT_MAX)
        return dk_fail(DK_ERR_CONFIG, "launcher slurm: %s='%s' is not a non-negative integer", var,
                       s);
    *out = (int)v;
    return DK_OK;
}

#ifdef DK_HAVE_MPI
/* Checks SLURM's view of this process against MPI's, on every rank, and
 * agrees on the outcome so that all ranks fail together. */
static dk_status slurm_check(dkh_pg *pg, int procid, int ntasks, int localid)
{
    char why[200] = "";
    if (procid != pg->rank)
        snprintf(why, sizeof why, "SLURM_PROCID=%d but MPI's rank is %d", procid, pg->rank);
    else if (ntasks != pg->world)
        snprintf(why, sizeof why, "SLURM_NTASKS=%d but MPI's world size is %d", ntasks, pg->world);
    else if (localid != pg->local_rank)
        snprintf(why, sizeof why, "SLURM_LOCALID=%d but MPI's node-local rank is %d", localid,
                 pg->local_rank);
    int64_t bad = why[0] ? pg->rank + 1 : 0;
    DK_TRY(pg->ops->all_reduce(pg, &bad, 1, DK_DTYPE_I64, DKH_REDUCE_MAX));
    if (why[0])
        return dk_fail(DK_ERR_CONFIG,
                       "%s (was the job started by srun with MPI support, "
                       "e.g. srun --mpi=pmix?)",
                       why);
    if (bad)
        return dk_fail(DK_ERR_CONFIG,
                       "rank %lld's SLURM_* variables disagree with MPI (see "
                       "its message)",
                       (long long)bad - 1);
    return DK_OK;
}
#endif

dk_status dkh_pg_new(dkh_launcher launcher, dkh_pg **out)
{
    return dkh_pg_new_backend(launcher, DKH_PG_BACKEND_AUTO, out);
}

dk_status dkh_pg_new_backend(dkh_launcher launcher, dkh_pg_backend backend, dkh_pg **out)
{
    if (!out)
        return dk_fail(DK_ERR_ARG, "dkh_pg_new: NULL out");
    if ((unsigned)launcher >= DKH_LAUNCHER_COUNT)
        return dk_fail(DK_ERR_ARG, "dkh_pg_new: launcher %d out of range", (int)launcher);
    if ((unsigned)backend >= DKH_PG_BACKEND_COUNT)
        return dk_fail(DK_ERR_ARG, "dkh_pg_new: backend %d out of range", (int)backend);
    bool nccl = backend == DKH_PG_BACKEND_NCCL;
    /* Both refusals come before MPI starts, so they cost nothing. */
    if (nccl && launcher == DKH_LAUNCHER_NONE)
        return dk_fail(DK_ERR_CONFIG,
                       "backend nccl needs launcher mpi or slurm: the NCCL id is broadcast "
                       "over MPI (start the run under mpirun or srun with --launcher mpi|slurm, "
                       "or use backend auto)");
#ifndef DK_HAVE_NCCL
    if (nccl)
        return dk_fail(DK_ERR_UNSUPPORTED,
                       "backend nccl: this libdk was built without NCCL (it needs CUDA, MPI "
                       "and NCCL when built: rebuild with -DDK_CUDA=ON -DDK_MPI=ON "
                       "-DDK_NCCL=ON); use backend mpi");
#endif

    int procid = 0, ntasks = 0, localid = 0;
    if (launcher == DKH_LAUNCHER_SLURM) {
        /* The variables are read before MPI starts, so a job not started by
         * srun gets this message rather than a singleton MPI world. */
        DK_TRY(slurm_int("SLURM_PROCID", &procid));
        DK_TRY(slurm_int("SLURM_NTASKS", &ntasks));
        DK_TRY(slurm_int("SLURM_LOCALID", &localid));
    }
#ifndef DK_HAVE_MPI
    if (launcher != DKH_LAUNCHER_NONE)
        return dk_fail(DK_ERR_UNSUPPORTED,
                       "launcher %s: this libdk was built without MPI (install libopenmpi-dev "
                       "and rebuild with -DDK_MPI=AUTO or ON); only launcher none works",
                       dkh_launcher_name(launcher));
#endif

    dkh_pg *pg = calloc(1, sizeof *pg);
    if (!pg)
        return dk_fail(DK_ERR_NOMEM, "dkh_pg_new: out of memory");
    pg->launcher = launcher;
    pg->chunk_bytes = DKH_PG_DEFAULT_CHUNK_BYTES;
    pg->device = -1;
    if (launcher == DKH_LAUNCHER_NONE) {
        pg->ops = &none_ops;
        pg->world = 1;
        pg->local_size = 1;
    } else {
#ifdef DK_HAVE_MPI
        dk_status s = dkh_pg_mpi_init(pg);
        if (s == DK_OK && launcher == DKH_LAUNCHER_SLURM) {
            s = slurm_check(pg, procid, ntasks, localid);
            if (s != DK_OK)
                pg->ops->destroy(pg);
        }
#ifdef DK_HAVE_NCCL
        if (s == DK_OK && nccl) {
            s = dkh_pg_nccl_init(pg);
            if (s != DK_OK) {
                pg->ops->destroy(pg);
                dk_error_prefix("backend nccl");
            }
        }
#endif
        if (s != DK_OK) {
            free(pg);
            dk_error_prefix("launcher %s", dkh_launcher_name(launcher));
            return s;
        }
#endif
    }
    *out = pg;
    return DK_OK;
}

void dkh_pg_free(dkh_pg *pg)
{
    if (!pg)
        return;
    /* NCCL's communicator goes first: MPI may be finalised with the host one. */
    if (pg->dev_ops)
        pg->dev_ops->destroy(pg);
    pg->ops->destroy(pg);
    free(pg);
}

void dkh_pg_abort(dkh_pg *pg, int code)
{
    fflush(stdout);
    fflush(stderr);
#ifdef DK_HAVE_MPI
    if (pg && pg->world > 1)
        dkh_pg_mpi_abort(code);
#else
    (void)pg;
#endif
    _Exit(code);
}

/* ---- identity ------------------------------------------------------------------- */

int dkh_pg_rank(const dkh_pg *pg)
{
    return pg->rank;
}

int dkh_pg_world_size(const dkh_pg *pg)
{
    return pg->world;
}

int dkh_pg_local_rank(const dkh_pg *pg)
{
    return pg->local_rank;
}

int dkh_pg_local_size(const dkh_pg *pg)
{
    return pg->local_size;
}

const char *dkh_pg_backend_name(const dkh_pg *pg)
{
    return pg->dev_ops ? pg->dev_ops->name : pg->ops->name;
}

int dkh_pg_device(const dkh_pg *pg)
{
    return pg->dev_ops ? pg->device : -1;
}

bool dkh_pg_moves(const dkh_pg *pg, dk_device dev)
{
    if (dev.type == DK_DEVICE_CPU)
        return true;
    return pg->dev_ops && (int32_t)pg->dev_ops->type == dev.type && pg->device == dev.index;
}

dkh_launcher dkh_pg_launcher(const dkh_pg *pg)
{
    return pg->launcher;
}

dk_status dkh_pg_set_chunk_bytes(dkh_pg *pg, size_t nbytes)
{
    if (!pg)
        return dk_fail(DK_ERR_ARG, "dkh_pg_set_chunk_bytes: NULL group");
    if (nbytes < 16 || nbytes > INT_MAX)
        return dk_fail(DK_ERR_ARG, "dkh_pg_set_chunk_bytes: %zu bytes is outside [16, %d]", nbytes,
                       INT_MAX);
    pg->chunk_bytes = nbytes;
    return DK_OK;
}

/* ---- agreement ---------------------------------------------------------------------- */

/* What every rank must agree on for one call; unused fields stay -1. */
typedef struct header {
    int64_t dtype;
    int64_t count; /* elements, or bytes for byte collectives */
    int64_t root;
    int64_t op;
    int64_t device; /* dk_device_type: the index may differ (each rank's own GPU) */
} header;

#define HEADER_FIELDS 5
static const char *const header_names[HEADER_FIELDS] = {"dtype", "element count", "root",
                                                        "reduction", "device type"};

static void describe_field(char *dst, size_t n, int field, int64_t v)
{
    if (field == 0)
        snprintf(dst, n, "%s", dk_dtype_name((dk_dtype)v));
    else if (field == 3)
        snprintf(dst, n, "%s", (unsigned long long)v < DKH_REDUCE_COUNT ? reduce_names[v] : "?");
    else if (field == 4)
        snprintf(dst, n, "%s", v == DK_DEVICE_CPU ? "cpu" : v == DK_DEVICE_CUDA ? "cuda" : "?");
    else
        snprintf(dst, n, "%lld", (long long)v);
}

/* Runs the header all-reduce for the collective `what`. local is this rank's
 * argument check (its message already recorded when not OK); h what it would
 * pass. Every rank calls this exactly once per collective, whatever its own
 * arguments, so that a bad argument on one rank cannot desynchronise the
 * others. Returns local when it failed, so its message stays. */
static dk_status agree(dkh_pg *pg, const char *what, dk_status local, const header *h)
{
    const int64_t *f = &h->dtype;
    /* Each field v goes in as v and -v under MAX, which yields both the
     * largest and the smallest value in one call. */
    int64_t v[1 + 2 * HEADER_FIELDS];
    v[0] = local != DK_OK ? pg->rank + 1 : 0;
    for (int i = 0; i < HEADER_FIELDS; i++) {
        v[1 + 2 * i] = local != DK_OK ? INT64_MIN + 1 : f[i];
        v[2 + 2 * i] = local != DK_OK ? INT64_MIN + 1 : -f[i];
    }
    dk_status s = pg->ops->all_reduce(pg, v, 1 + 2 * HEADER_FIELDS, DK_DTYPE_I64, DKH_REDUCE_MAX);
    if (s != DK_OK) {
        dk_error_prefix("%s", what);
        return s;
    }
    if (local != DK_OK)
        return local;
    if (v[0])
        return dk_fail(DK_ERR_ARG,
                       "%s: rank %lld rejected its arguments (see its message); nothing was "
                       "exchanged",
                       what, (long long)v[0] - 1);
    for (int i = 0; i < HEADER_FIELDS; i++) {
        int64_t hi = v[1 + 2 * i], lo = -v[2 + 2 * i];
        if (hi != lo) {
            char mine[32], a[32], b[32];
            describe_field(mine, sizeof mine, i, f[i]);
            describe_field(a, sizeof a, i, lo);
            describe_field(b, sizeof b, i, hi);
            return dk_fail(DK_ERR_ARG,
                           "%s: ranks disagree on the %s (%s on rank %d; from %s to %s across "
                           "ranks); every rank must pass the same",
                           what, header_names[i], mine, pg->rank, a, b);
        }
    }
    return DK_OK;
}

/* ---- argument checks ------------------------------------------------------------------ */

static bool dtype_ok(dk_dtype d)
{
    return d == DK_DTYPE_F32 || d == DK_DTYPE_F64 || d == DK_DTYPE_I64;
}

static dk_status check_dtype(const char *what, dk_dtype d)
{
    if (!dtype_ok(d))
        return dk_fail(DK_ERR_ARG, "%s: dtype %s is not supported (f32, f64, i64)", what,
                       dk_dtype_name(d));
    return DK_OK;
}

/* A buffer on dev can be moved by this group: the CPU always, a CUDA device
 * when it is the one the group's device backend works on. */
static dk_status check_device(const char *what, const dkh_pg *pg, dk_device dev)
{
    if (dev.type == DK_DEVICE_CPU) {
        if (dev.index != 0)
            return dk_fail(DK_ERR_ARG, "%s: device cpu:%d does not exist", what, dev.index);
        return DK_OK;
    }
    if (dev.type != DK_DEVICE_CUDA)
        return dk_fail(DK_ERR_ARG, "%s: device type %d out of range", what, (int)dev.type);
    if (!pg->dev_ops)
        return dk_fail(DK_ERR_UNSUPPORTED,
                       "%s: the buffer is on cuda:%d, but this process group's backend (%s) "
                       "moves CPU memory only; CUDA tensors need the nccl backend "
                       "(dist_cfg.backend: nccl), or a copy to the CPU first",
                       what, dev.index, pg->ops->name);
    if (dev.index != pg->device)
        return dk_fail(DK_ERR_ARG,
                       "%s: the buffer is on cuda:%d, but this rank's NCCL communicator works "
                       "on cuda:%d",
                       what, dev.index, pg->device);
    return DK_OK;
}

/* device_ok: whether the collective can take a tensor on the group's device
 * (all-reduce and broadcast; gathers are host-only). */
static dk_status check_tensor(const char *what, const dkh_pg *pg, const dk_tensor *t,
                              bool device_ok)
{
    if (!t)
        return dk_fail(DK_ERR_ARG, "%s: tensor is NULL", what);
    dk_device dev = t->storage->device;
    if (dev.type != DK_DEVICE_CPU && !device_ok)
        return dk_fail(DK_ERR_UNSUPPORTED,
                       "%s: the tensor is on cuda:%d; %s moves CPU tensors only with every "
                       "backend (copy it to the CPU first)",
                       what, dev.index, what);
    DK_TRY(check_device(what, pg, dev));
    DK_TRY(check_dtype(what, t->dtype));
    if (!dk_tensor_is_contiguous(t)) {
        dkh_buf b = DKH_BUF_INIT;
        dkh_describe(&b, t);
        dk_status s = dk_fail(DK_ERR_ARG,
                              "%s: tensor %s is not contiguous (make a contiguous "
                              "copy first)",
                              what, dkh_buf_str(&b));
        dkh_buf_fini(&b);
        return s;
    }
    return DK_OK;
}

static dk_status check_op(const char *what, dkh_reduce_op op, dk_dtype d)
{
    if ((unsigned)op >= DKH_REDUCE_COUNT)
        return dk_fail(DK_ERR_ARG, "%s: reduction %d out of range", what, (int)op);
    if (op == DKH_REDUCE_MEAN && d == DK_DTYPE_I64)
        return dk_fail(DK_ERR_ARG,
                       "%s: mean of an i64 tensor would truncate; reduce with sum and divide, "
                       "or use a float dtype",
                       what);
    return DK_OK;
}

static dk_status check_root(const char *what, const dkh_pg *pg, int root)
{
    if (root < 0 || root >= pg->world)
        return dk_fail(DK_ERR_ARG, "%s: root %d is out of range [0, %d)", what, root, pg->world);
    return DK_OK;
}

/* ---- collectives ---------------------------------------------------------------------- */

/* Divides count elements by the world size, once, after the sum. */
static void divide(void *buf, size_t count, dk_dtype dtype, int world)
{
    if (dtype == DK_DTYPE_F32) {
        float *p = buf, w = (float)world;
        for (size_t i = 0; i < count; i++)
            p[i] /= w;
    } else {
        double *p = buf, w = (double)world;
        for (size_t i = 0; i < count; i++)
            p[i] /= w;
    }
}

static dk_status all_reduce_checked(dkh_pg *pg, const char *what, dk_status local, void *buf,
                                    size_t count, dk_dtype dtype, dkh_reduce_op op, dk_device dev)
{
    header h = {dtype, (int64_t)count, -1, op, dev.type};
    DK_TRY(agree(pg, what, local, &h));
    if (count == 0 || pg->world == 1)
        return DK_OK; /* the mean of one rank is its value: nothing to divide */
    dk_status s;
    if (dev.type != DK_DEVICE_CPU) {
        /* The device backend reduces the mean itself: buf is not host memory. */
        s = pg->dev_ops->all_reduce(pg, buf, count, dtype, op);
        if (s != DK_OK)
            dk_error_prefix("%s", what);
        return s;
    }
    s = pg->ops->all_reduce(pg, buf, count, dtype,
                            op == DKH_REDUCE_MAX ? DKH_REDUCE_MAX : DKH_REDUCE_SUM);
    if (s != DK_OK) {
        dk_error_prefix("%s", what);
        return s;
    }
    if (op == DKH_REDUCE_MEAN)
        divide(buf, count, dtype, pg->world);
    return DK_OK;
}

dk_status dkh_pg_all_reduce(dkh_pg *pg, dk_tensor *t, dkh_reduce_op op)
{
    const char *what = "all_reduce";
    if (!pg)
        return dk_fail(DK_ERR_ARG, "%s: NULL group", what);
    dk_status local = check_tensor(what, pg, t, true);
    if (local == DK_OK)
        local = check_op(what, op, t->dtype);
    void *data = local == DK_OK ? dk_tensor_data(t) : NULL;
    size_t count = local == DK_OK ? (size_t)dk_tensor_numel(t) : 0;
    dk_device dev = local == DK_OK ? t->storage->device : DK_CPU;
    DK_TRY(
        all_reduce_checked(pg, what, local, data, count, local == DK_OK ? t->dtype : 0, op, dev));
    t->storage->version++;
    return DK_OK;
}

dk_status dkh_pg_all_reduce_buf(dkh_pg *pg, void *buf, size_t count, dk_dtype dtype,
                                dkh_reduce_op op)
{
    return dkh_pg_all_reduce_buf_on(pg, buf, count, dtype, op, DK_CPU);
}

dk_status dkh_pg_all_reduce_buf_on(dkh_pg *pg, void *buf, size_t count, dk_dtype dtype,
                                   dkh_reduce_op op, dk_device dev)
{
    const char *what = "all_reduce";
    if (!pg)
        return dk_fail(DK_ERR_ARG, "%s: NULL group", what);
    dk_status local = check_device(what, pg, dev);
    if (local == DK_OK)
        local = check_dtype(what, dtype);
    if (local == DK_OK)
        local = check_op(what, op, dtype);
    if (local == DK_OK && !buf && count)
        local = dk_fail(DK_ERR_ARG, "%s: NULL buffer", what);
    return all_reduce_checked(pg, what, local, buf, count, dtype, op,
                              local == DK_OK ? dev : DK_CPU);
}

static dk_status broadcast_checked(dkh_pg *pg, const char *what, dk_status local, void *buf,
                                   size_t nbytes, int64_t dtype, int root, dk_device dev)
{
    header h = {dtype, (int64_t)nbytes, root, -1, dev.type};
    DK_TRY(agree(pg, what, local, &h));
    if (nbytes == 0 || pg->world == 1)
        return DK_OK;
    dk_status s = dev.type != DK_DEVICE_CPU ? pg->dev_ops->broadcast(pg, buf, nbytes, root)
                                            : pg->ops->broadcast(pg, buf, nbytes, root);
    if (s != DK_OK)
        dk_error_prefix("%s", what);
    return s;
}

dk_status dkh_pg_broadcast(dkh_pg *pg, dk_tensor *t, int root)
{
    const char *what = "broadcast";
    if (!pg)
        return dk_fail(DK_ERR_ARG, "%s: NULL group", what);
    dk_status local = check_tensor(what, pg, t, true);
    if (local == DK_OK)
        local = check_root(what, pg, root);
    void *data = local == DK_OK ? dk_tensor_data(t) : NULL;
    size_t nbytes = local == DK_OK ? (size_t)dk_tensor_numel(t) * dk_dtype_size(t->dtype) : 0;
    dk_device dev = local == DK_OK ? t->storage->device : DK_CPU;
    DK_TRY(
        broadcast_checked(pg, what, local, data, nbytes, local == DK_OK ? t->dtype : 0, root, dev));
    if (pg->rank != root)
        t->storage->version++;
    return DK_OK;
}

dk_status dkh_pg_broadcast_bytes(dkh_pg *pg, void *buf, size_t nbytes, int root)
{
    return dkh_pg_broadcast_bytes_on(pg, buf, nbytes, root, DK_CPU);
}

dk_status dkh_pg_broadcast_bytes_on(dkh_pg *pg, void *buf, size_t nbytes, int root, dk_device dev)
{
    const char *what = "broadcast";
    if (!pg)
        return dk_fail(DK_ERR_ARG, "%s: NULL group", what);
    dk_status local = check_device(what, pg, dev);
    if (local == DK_OK)
        local = check_root(what, pg, root);
    if (local == DK_OK && !buf && nbytes)
        local = dk_fail(DK_ERR_ARG, "%s: NULL buffer", what);
    return broadcast_checked(pg, what, local, buf, nbytes, DK_DTYPE_U8, root,
                             local == DK_OK ? dev : DK_CPU);
}

/* Gathers nbytes from every rank after the header agreed on dtype: the
 * shares first (one int64 each), then the bytes into a new buffer. */
static dk_status all_gather_checked(dkh_pg *pg, const char *what, dk_status local, const void *buf,
                                    size_t nbytes, int64_t dtype, void **out, size_t *total_out,
                                    size_t *counts_out)
{
    header h = {dtype, -1, -1, -1, DK_DEVICE_CPU};
    DK_TRY(agree(pg, what, local, &h));
    dk_status s = DK_OK;
    int64_t mine = (int64_t)nbytes;
    int64_t *shares = malloc((size_t)pg->world * sizeof *shares);
    size_t *counts = malloc((size_t)pg->world * sizeof *counts);
    if (!shares || !counts) {
        s = dk_fail(DK_ERR_NOMEM, "%s: out of memory", what);
        goto done;
    }
    s = pg->ops->all_gather_i64(pg, &mine, 1, shares);
    if (s != DK_OK) {
        dk_error_prefix("%s", what);
        goto done;
    }
    size_t total = 0;
    for (int r = 0; r < pg->world; r++) {
        counts[r] = (size_t)shares[r];
        total += counts[r];
    }
    void *recv = malloc(total ? total : 1);
    if (!recv) {
        s = dk_fail(DK_ERR_NOMEM, "%s: out of memory for %zu bytes", what, total);
        goto done;
    }
    s = pg->ops->all_gather_bytes(pg, buf, recv, counts);
    if (s != DK_OK) {
        dk_error_prefix("%s", what);
        free(recv);
        goto done;
    }
    *out = recv;
    *total_out = total;
    if (counts_out)
        memcpy(counts_out, counts, (size_t)pg->world * sizeof *counts);
done:
    free(shares);
    free(counts);
    return s;
}

dk_status dkh_pg_all_gather(dkh_pg *pg, const dk_tensor *t, dk_tensor **out, int64_t *counts)
{
    const char *what = "all_gather";
    if (!pg)
        return dk_fail(DK_ERR_ARG, "%s: NULL group", what);
    if (out)
        *out = NULL;
    dk_status local = check_tensor(what, pg, t, false);
    if (local == DK_OK && !out)
        local = dk_fail(DK_ERR_ARG, "%s: NULL out", what);
    size_t esize = local == DK_OK ? dk_dtype_size(t->dtype) : 1;
    const void *data = local == DK_OK ? dk_tensor_data(t) : NULL;
    size_t nbytes = local == DK_OK ? (size_t)dk_tensor_numel(t) * esize : 0;
    void *bytes = NULL;
    size_t total = 0;
    size_t *shares = malloc((size_t)pg->world * sizeof *shares);
    if (!shares && local == DK_OK)
        local = dk_fail(DK_ERR_NOMEM, "%s: out of memory", what);
    dk_status s = all_gather_checked(pg, what, local, data, nbytes, local == DK_OK ? t->dtype : 0,
                                     &bytes, &total, shares);
    if (s != DK_OK) {
        free(shares);
        return s;
    }
    int64_t n = (int64_t)(total / esize);
    dk_tensor *r = dkh_tensor_alloc(t->dtype, 1, &n, DK_CPU);
    if (r) {
        if (total)
            memcpy(dk_tensor_data(r), bytes, total);
        if (counts)
            for (int i = 0; i < pg->world; i++)
                counts[i] = (int64_t)(shares[i] / esize);
        *out = dkh_scope_adopt(r);
    } else {
        dk_error_prefix("%s", what);
        s = dk_last_status();
    }
    free(bytes);
    free(shares);
    return s;
}

dk_status dkh_pg_all_gather_bytes(dkh_pg *pg, const void *buf, size_t nbytes, void **out,
                                  size_t *total, size_t *counts)
{
    const char *what = "all_gather";
    if (!pg)
        return dk_fail(DK_ERR_ARG, "%s: NULL group", what);
    dk_status local = DK_OK;
    if (!out || !total)
        local = dk_fail(DK_ERR_ARG, "%s: NULL out or total", what);
    else if (!buf && nbytes)
        local = dk_fail(DK_ERR_ARG, "%s: NULL buffer", what);
    return all_gather_checked(pg, what, local, buf, nbytes, DK_DTYPE_U8, out, total, counts);
}

dk_status dkh_pg_barrier(dkh_pg *pg)
{
    if (!pg)
        return dk_fail(DK_ERR_ARG, "barrier: NULL group");
    dk_status s = pg->ops->barrier(pg);
    if (s != DK_OK)
        dk_error_prefix("barrier");
    return s;
}

#ifndef DK_HAVE_MPI
dk_status dkh_dist_mpi_fail(int code, const char *what)
{
    return dk_fail(DK_ERR_UNSUPPORTED, "mpi: %s: error %d (this libdk was built without MPI)",
                   what ? what : "?", code);
}
#endif
