/* tests/dist/test_dist.c — process groups (core/dist) in one process and
 * under mpiexec.
 *
 *   test_dist none              launcher none: world 1, collectives are identities,
 *                               argument errors, launcher parsing, SLURM_* checks
 *   test_dist mpi N             under mpiexec -np N: every collective against values
 *                               computed locally, chunked transfers, errors on one
 *                               rank or across ranks, and the group still works after;
 *                               synchronised batch norm over the group against one
 *                               process's whole batch
 *   test_dist slurm N           launcher slurm, SLURM_* set from Open MPI's variables
 *   test_dist slurm-mismatch N  SLURM_PROCID wrong on every rank: all ranks fail
 *   test_dist nccl N            under mpiexec -np N, backend nccl: all-reduce and
 *                               broadcast of CUDA tensors against exact values, host
 *                               collectives still over MPI, device errors; skipped
 *                               (exit 77, with the reason) without NCCL in libdk or
 *                               without N visible CUDA devices
 *   test_dist skip REASON       prints the reason and exits 77 (ctest: skipped)
 *
 * Values are integers (as floats) wherever a sum is compared exactly, so the
 * order MPI adds in cannot change the result; random f64 data is compared
 * with a tolerance against a sum computed here from every rank's seed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "dk_test.h"

#include "dist/dist.h"
#include "tensor/bn_sync.h"

#include <dk/dk.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef DK_HAVE_MPI
#include <mpi.h>
#endif

static dkh_pg *pg;
static int rank, world;

static const char *const op_names[] = {"sum", "mean", "max"};
static const dk_dtype dtypes[] = {DK_DTYPE_F32, DK_DTYPE_F64, DK_DTYPE_I64};
#define N_DTYPES 3
/* 0, 1, 7, 1000 elements and 3 MiB of f32. */
static const int64_t sizes[] = {0, 1, 7, 1000, (3 << 20) / 4};
#define N_SIZES 5

/* ---- helpers ------------------------------------------------------------------ */

/* Rank r's integer value at index i: small, signed, different per rank. */
static int64_t value(int r, int64_t i)
{
    return ((i * 31 + r * 17) % 101) - 50;
}

static dk_tensor *tensor_of(dk_dtype dt, int64_t n, int r)
{
    dk_tensor *t = dk_empty(1, &n, dt, DK_CPU);
    assert_non_null(t);
    void *p = dk_tensor_data(t);
    for (int64_t i = 0; i < n; i++) {
        int64_t v = value(r, i);
        if (dt == DK_DTYPE_F32)
            ((float *)p)[i] = (float)v;
        else if (dt == DK_DTYPE_F64)
            ((double *)p)[i] = (double)v;
        else
            ((int64_t *)p)[i] = v;
    }
    return t;
}

static double elem(const dk_tensor *t, int64_t i)
{
    const void *p = dk_tensor_data(t);
    switch (dk_tensor_dtype(t)) {
    case DK_DTYPE_F32:
        return ((const float *)p)[i];
    case DK_DTYPE_F64:
        return ((const double *)p)[i];
    default:
        return (double)((const int64_t *)p)[i];
    }
}

/* The exact result of op over every rank's value(r, i), in dtype dt. */
static double expected(dkh_reduce_op op, dk_dtype dt, int64_t i)
{
    int64_t sum = 0, most = INT64_MIN;
    for (int r = 0; r < world; r++) {
        int64_t v = value(r, i);
        sum += v;
        most = v > most ? v : most;
    }
    if (op == DKH_REDUCE_MAX)
        return (double)most;
    if (op == DKH_REDUCE_SUM)
        return (double)sum;
    /* mean: the sum divided once, in the tensor's own precision */
    if (dt == DK_DTYPE_F32)
        return (double)((float)sum / (float)world);
    return (double)sum / (double)world;
}

/* A deterministic generator for the random test (xorshift64*), so that every
 * rank can regenerate every other rank's data. */
static double rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (double)((*s * 2685821657736338717ULL) >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* ---- single process (launcher none) ---------------------------------------------- */

static void test_none_identity(void **state)
{
    assert_int_equal(dkh_pg_rank(pg), 0);
    assert_int_equal(dkh_pg_world_size(pg), 1);
    assert_int_equal(dkh_pg_local_rank(pg), 0);
    assert_int_equal(dkh_pg_local_size(pg), 1);
    assert_str_eq(dkh_pg_backend_name(pg), "none");
    assert_int_equal(dkh_pg_launcher(pg), DKH_LAUNCHER_NONE);
    assert_int_equal(dkh_pg_barrier(pg), DK_OK);
}

static void test_none_collectives(void **state)
{
    dk_scope_begin();
    for (int d = 0; d < N_DTYPES; d++) {
        for (int k = 0; k < N_SIZES; k++) {
            for (int op = 0; op < DKH_REDUCE_COUNT; op++) {
                if (op == DKH_REDUCE_MEAN && dtypes[d] == DK_DTYPE_I64)
                    continue;
                dk_tensor *t = tensor_of(dtypes[d], sizes[k], 0);
                assert_int_equal(dkh_pg_all_reduce(pg, t, (dkh_reduce_op)op), DK_OK);
                for (int64_t i = 0; i < sizes[k]; i++)
                    assert_true(elem(t, i) == (double)value(0, i));
            }
            dk_tensor *t = tensor_of(dtypes[d], sizes[k], 0);
            assert_int_equal(dkh_pg_broadcast(pg, t, 0), DK_OK);
            for (int64_t i = 0; i < sizes[k]; i++)
                assert_true(elem(t, i) == (double)value(0, i));
            dk_tensor *g = NULL;
            int64_t counts[1] = {-1};
            assert_int_equal(dkh_pg_all_gather(pg, t, &g, counts), DK_OK);
            assert_int_equal(counts[0], sizes[k]);
            assert_int_equal(dk_tensor_numel(g), sizes[k]);
            assert_int_equal(dk_tensor_dtype(g), dtypes[d]);
            for (int64_t i = 0; i < sizes[k]; i++)
                assert_true(elem(g, i) == (double)value(0, i));
        }
    }
    dk_scope_end();

    /* raw buffers */
    char bytes[5] = "abcd";
    assert_int_equal(dkh_pg_broadcast_bytes(pg, bytes, 5, 0), DK_OK);
    void *all = NULL;
    size_t total = 0, counts[1];
    assert_int_equal(dkh_pg_all_gather_bytes(pg, bytes, 5, &all, &total, counts), DK_OK);
    assert_int_equal(total, 5);
    assert_int_equal(counts[0], 5);
    assert_memory_equal(all, "abcd", 5);
    free(all);
    assert_int_equal(dkh_pg_all_gather_bytes(pg, NULL, 0, &all, &total, NULL), DK_OK);
    assert_non_null(all);
    assert_int_equal(total, 0);
    free(all);
    double v[3] = {1.5, -2, 3};
    assert_int_equal(dkh_pg_all_reduce_buf(pg, v, 3, DK_DTYPE_F64, DKH_REDUCE_MEAN), DK_OK);
    assert_true(v[0] == 1.5 && v[1] == -2 && v[2] == 3);
}

/* Argument errors that every rank can check alone; under mpiexec all ranks
 * pass the same bad arguments, and the group must work afterwards. */
static void check_local_errors(void)
{
    dk_scope_begin();
    dk_tensor *m = tensor_of(DK_DTYPE_F32, 24, rank);
    dk_tensor *nc = dk_permute(dk_reshape(m, 2, (int64_t[]){4, 6}), 2, (int[]){1, 0});
    assert_non_null(nc);
    assert_false(dk_tensor_is_contiguous(nc));
    assert_int_equal(dkh_pg_all_reduce(pg, nc, DKH_REDUCE_SUM), DK_ERR_ARG);
    assert_contains(dk_last_error(), "all_reduce: tensor (6, 4) f32 is not contiguous");
    assert_int_equal(dkh_pg_broadcast(pg, nc, 0), DK_ERR_ARG);
    assert_contains(dk_last_error(), "broadcast: tensor (6, 4) f32 is not contiguous");
    dk_tensor *g = NULL;
    assert_int_equal(dkh_pg_all_gather(pg, nc, &g, NULL), DK_ERR_ARG);
    assert_contains(dk_last_error(), "all_gather: tensor (6, 4) f32 is not contiguous");
    assert_null(g);

    assert_int_equal(dkh_pg_all_reduce(pg, NULL, DKH_REDUCE_SUM), DK_ERR_ARG);
    assert_contains(dk_last_error(), "all_reduce: tensor is NULL");

    dk_tensor *i32 = dk_zeros(1, (int64_t[]){3}, DK_DTYPE_I32, DK_CPU);
    assert_int_equal(dkh_pg_all_reduce(pg, i32, DKH_REDUCE_SUM), DK_ERR_ARG);
    assert_contains(dk_last_error(), "all_reduce: dtype i32 is not supported (f32, f64, i64)");

    dk_tensor *i64 = tensor_of(DK_DTYPE_I64, 3, rank);
    assert_int_equal(dkh_pg_all_reduce(pg, i64, DKH_REDUCE_MEAN), DK_ERR_ARG);
    assert_contains(dk_last_error(), "mean of an i64 tensor would truncate");
    assert_int_equal(dkh_pg_all_reduce(pg, i64, (dkh_reduce_op)7), DK_ERR_ARG);
    assert_contains(dk_last_error(), "reduction 7 out of range");

    assert_int_equal(dkh_pg_broadcast(pg, m, world), DK_ERR_ARG);
    char want[64];
    snprintf(want, sizeof want, "broadcast: root %d is out of range [0, %d)", world, world);
    assert_contains(dk_last_error(), want);
    assert_int_equal(dkh_pg_broadcast(pg, m, -1), DK_ERR_ARG);
    assert_contains(dk_last_error(), "root -1 is out of range");

    /* still in step: a real reduction works */
    dk_tensor *ok = tensor_of(DK_DTYPE_F64, 7, rank);
    assert_int_equal(dkh_pg_all_reduce(pg, ok, DKH_REDUCE_SUM), DK_OK);
    for (int64_t i = 0; i < 7; i++)
        assert_true(elem(ok, i) == expected(DKH_REDUCE_SUM, DK_DTYPE_F64, i));
    dk_scope_end();

    assert_int_equal(dkh_pg_set_chunk_bytes(pg, 8), DK_ERR_ARG);
    assert_contains(dk_last_error(), "8 bytes is outside [16, ");
}

static void test_local_errors(void **state)
{
    check_local_errors();
}

/* Backend choice and the refusals that need no GPU: what a CPU-only or
 * GPU-less build can check of the nccl backend. */
static void test_backends(void **state)
{
    dkh_pg_backend b = DKH_PG_BACKEND_COUNT;
    assert_int_equal(dkh_pg_backend_parse("nccl", &b), DK_OK);
    assert_int_equal(b, DKH_PG_BACKEND_NCCL);
    assert_str_eq(dkh_pg_backend_choice_name(DKH_PG_BACKEND_AUTO), "auto");
    assert_str_eq(dkh_pg_backend_choice_name(DKH_PG_BACKEND_COUNT), "?");
    assert_int_equal(dkh_pg_backend_parse("gloo", &b), DK_ERR_ARG);
    assert_contains(dk_last_error(),
                    "unknown process-group backend 'gloo' (known: auto, mpi, nccl)");

    dkh_pg *p = NULL;
    assert_int_equal(dkh_pg_new_backend(DKH_LAUNCHER_NONE, DKH_PG_BACKEND_NCCL, &p), DK_ERR_CONFIG);
    assert_null(p);
    assert_contains(dk_last_error(), "backend nccl needs launcher mpi or slurm");
    assert_int_equal(dkh_pg_new_backend(DKH_LAUNCHER_NONE, (dkh_pg_backend)9, &p), DK_ERR_ARG);
    assert_contains(dk_last_error(), "backend 9 out of range");
    if (!dkh_dist_have_nccl()) {
        /* refused before MPI starts, so this process can still make a group */
        assert_int_equal(dkh_pg_new_backend(DKH_LAUNCHER_MPI, DKH_PG_BACKEND_NCCL, &p),
                         DK_ERR_UNSUPPORTED);
        assert_null(p);
        assert_contains(dk_last_error(), "this libdk was built without NCCL");
        assert_contains(dk_last_error(), "-DDK_NCCL=ON");
    }
    assert_int_equal(dkh_pg_new_backend(DKH_LAUNCHER_NONE, DKH_PG_BACKEND_AUTO, &p), DK_OK);
    assert_str_eq(dkh_pg_backend_name(p), "none");
    dkh_pg_free(p);

    /* A group without a device backend moves host memory only. The buffer
     * is never touched: the device check fails first. */
    assert_int_equal(dkh_pg_device(pg), -1);
    assert_true(dkh_pg_moves(pg, DK_CPU));
    assert_false(dkh_pg_moves(pg, DK_CUDA_DEV(0)));
    float fake[4];
    assert_int_equal(
        dkh_pg_all_reduce_buf_on(pg, fake, 4, DK_DTYPE_F32, DKH_REDUCE_SUM, DK_CUDA_DEV(0)),
        DK_ERR_UNSUPPORTED);
    assert_contains(dk_last_error(), "all_reduce: the buffer is on cuda:0, but this process "
                                     "group's backend (none) moves CPU memory only");
    assert_contains(dk_last_error(), "dist_cfg.backend: nccl");
    assert_int_equal(dkh_pg_broadcast_bytes_on(pg, fake, sizeof fake, 0, DK_CUDA_DEV(1)),
                     DK_ERR_UNSUPPORTED);
    assert_contains(dk_last_error(), "broadcast: the buffer is on cuda:1");
    assert_int_equal(
        dkh_pg_broadcast_bytes_on(pg, fake, sizeof fake, 0, (dk_device){DK_DEVICE_CPU, 2}),
        DK_ERR_ARG);
    assert_contains(dk_last_error(), "device cpu:2 does not exist");
    assert_int_equal(dkh_pg_all_reduce_buf_on(pg, fake, 4, DK_DTYPE_F32, DKH_REDUCE_SUM, DK_CPU),
                     DK_OK);
}

static void test_launchers(void **state)
{
    dkh_launcher l = DKH_LAUNCHER_COUNT;
    assert_int_equal(dkh_launcher_parse("slurm", &l), DK_OK);
    assert_int_equal(l, DKH_LAUNCHER_SLURM);
    assert_str_eq(dkh_launcher_name(DKH_LAUNCHER_MPI), "mpi");
    assert_int_equal(dkh_launcher_parse("torchrun", &l), DK_ERR_ARG);
    assert_contains(dk_last_error(), "unknown launcher 'torchrun' (known: none, mpi, slurm)");

    /* SLURM_* are read before MPI starts, so these never initialise MPI. */
    dkh_pg *p = NULL;
    unsetenv("SLURM_PROCID");
    setenv("SLURM_NTASKS", "2", 1);
    setenv("SLURM_LOCALID", "0", 1);
    assert_int_equal(dkh_pg_new(DKH_LAUNCHER_SLURM, &p), DK_ERR_CONFIG);
    assert_contains(dk_last_error(), "launcher slurm: SLURM_PROCID is not set");
    setenv("SLURM_PROCID", "x1", 1);
    assert_int_equal(dkh_pg_new(DKH_LAUNCHER_SLURM, &p), DK_ERR_CONFIG);
    assert_contains(dk_last_error(), "SLURM_PROCID='x1' is not a non-negative integer");
    setenv("SLURM_PROCID", "0", 1);
    setenv("SLURM_LOCALID", "-1", 1);
    assert_int_equal(dkh_pg_new(DKH_LAUNCHER_SLURM, &p), DK_ERR_CONFIG);
    assert_contains(dk_last_error(), "SLURM_LOCALID='-1'");
    assert_null(p);
    unsetenv("SLURM_PROCID");
    unsetenv("SLURM_NTASKS");
    unsetenv("SLURM_LOCALID");

    if (!dkh_dist_have_mpi()) {
        assert_int_equal(dkh_pg_new(DKH_LAUNCHER_MPI, &p), DK_ERR_UNSUPPORTED);
        assert_contains(dk_last_error(), "launcher mpi: this libdk was built without MPI");
        assert_null(p);
    }
    /* MPI is not running in this process: only the code can be given */
    if (dkh_dist_have_mpi()) {
        assert_int_equal(dkh_dist_mpi_fail(3, "MPI_Init_thread"), DK_ERR_RUNTIME);
        assert_contains(dk_last_error(), "mpi: MPI_Init_thread: MPI error code 3");
    } else {
        assert_int_equal(dkh_dist_mpi_fail(3, "MPI_Init_thread"), DK_ERR_UNSUPPORTED);
    }
    assert_int_equal(dkh_pg_new((dkh_launcher)9, &p), DK_ERR_ARG);
    assert_int_equal(dkh_pg_new(DKH_LAUNCHER_NONE, NULL), DK_ERR_ARG);
    dkh_pg_free(NULL);
}

/* ---- under mpiexec ---------------------------------------------------------------- */

static void test_identity(void **state)
{
    assert_str_eq(dkh_pg_backend_name(pg), "mpi");
    const char *s = getenv("OMPI_COMM_WORLD_RANK");
    if (s)
        assert_int_equal(rank, atoi(s));
    s = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    if (s)
        assert_int_equal(dkh_pg_local_rank(pg), atoi(s));
    /* one machine: every rank is local */
    assert_int_equal(dkh_pg_local_size(pg), world);
    assert_true(rank >= 0 && rank < world);
}

/* Every dtype and reduction over sizes[from .. to). */
static void all_reduce_exact(int from, int to)
{
    for (int d = 0; d < N_DTYPES; d++) {
        for (int k = from; k < to; k++) {
            for (int op = 0; op < DKH_REDUCE_COUNT; op++) {
                if (op == DKH_REDUCE_MEAN && dtypes[d] == DK_DTYPE_I64)
                    continue;
                dk_scope_begin();
                dk_tensor *t = tensor_of(dtypes[d], sizes[k], rank);
                assert_int_equal(dkh_pg_all_reduce(pg, t, (dkh_reduce_op)op), DK_OK);
                for (int64_t i = 0; i < sizes[k]; i++) {
                    double want = expected((dkh_reduce_op)op, dtypes[d], i);
                    if (elem(t, i) != want)
                        fail_msg("%s %s of %lld elements: [%lld] = %g, want %g",
                                 dk_dtype_name(dtypes[d]), op_names[op],
                                 (long long)sizes[k], (long long)i, elem(t, i), want);
                }
                dk_scope_end();
            }
        }
    }
}

static void test_all_reduce_exact(void **state)
{
    all_reduce_exact(0, N_SIZES);
}

/* The same in pieces: 1000 elements with a 1000-byte chunk (a piece is not a
 * whole number of f64 or i64 pattern runs), and 3 MiB in 64 KiB pieces (a
 * smaller chunk would make this latency-bound on a busy machine). */
static void test_all_reduce_chunked(void **state)
{
    assert_int_equal(dkh_pg_set_chunk_bytes(pg, 1000), DK_OK);
    all_reduce_exact(0, N_SIZES - 1);
    assert_int_equal(dkh_pg_set_chunk_bytes(pg, 64 << 10), DK_OK);
    all_reduce_exact(N_SIZES - 1, N_SIZES);
    assert_int_equal(dkh_pg_set_chunk_bytes(pg, DKH_PG_DEFAULT_CHUNK_BYTES), DK_OK);
}

static void test_all_reduce_random(void **state)
{
    static const int64_t ns[] = {1000, 100003};
    for (int k = 0; k < 2; k++) {
        int64_t n = ns[k];
        dk_scope_begin();
        dk_tensor *t = dk_empty(1, &n, DK_DTYPE_F64, DK_CPU);
        double *ref = calloc((size_t)n, sizeof *ref);
        for (int r = 0; r < world; r++) {
            uint64_t s = 0x9E3779B97F4A7C15ULL * (uint64_t)(r + 1);
            for (int64_t i = 0; i < n; i++) {
                double v = rnd(&s);
                ref[i] += v;
                if (r == rank)
                    ((double *)dk_tensor_data(t))[i] = v;
            }
        }
        assert_int_equal(dkh_pg_all_reduce(pg, t, DKH_REDUCE_MEAN), DK_OK);
        for (int64_t i = 0; i < n; i++) {
            double want = ref[i] / world, got = elem(t, i);
            if (fabs(got - want) > 1e-14 * (1 + fabs(want)))
                fail_msg("random f64 mean [%lld] = %.17g, want %.17g", (long long)i, got, want);
        }
        free(ref);
        dk_scope_end();
    }
}

static void broadcast_all(void)
{
    int roots[2] = {0, world - 1};
    for (int q = 0; q < 2; q++) {
        for (int d = 0; d < N_DTYPES; d++) {
            for (int k = 0; k < N_SIZES; k++) {
                dk_scope_begin();
                /* non-roots start from another rank's pattern */
                int from = rank == roots[q] ? roots[q] : rank + 7;
                dk_tensor *t = tensor_of(dtypes[d], sizes[k], from);
                assert_int_equal(dkh_pg_broadcast(pg, t, roots[q]), DK_OK);
                for (int64_t i = 0; i < sizes[k]; i++)
                    if (elem(t, i) != (double)value(roots[q], i))
                        fail_msg("broadcast from %d, %s [%lld] = %g, want %g", roots[q],
                                 dk_dtype_name(dtypes[d]), (long long)i, elem(t, i),
                                 (double)value(roots[q], i));
                dk_scope_end();
            }
        }
    }
    char text[32];
    snprintf(text, sizeof text, rank == world - 1 ? "from the last rank" : "not yet");
    assert_int_equal(dkh_pg_broadcast_bytes(pg, text, sizeof text, world - 1), DK_OK);
    assert_str_eq(text, "from the last rank");
}

static void test_broadcast(void **state)
{
    broadcast_all();
    assert_int_equal(dkh_pg_set_chunk_bytes(pg, 9999), DK_OK);
    broadcast_all();
    assert_int_equal(dkh_pg_set_chunk_bytes(pg, DKH_PG_DEFAULT_CHUNK_BYTES), DK_OK);
}

/* Rank r gives share(r) elements valued r * 1000 + i. */
static void gather_with(int64_t (*share)(int r))
{
    for (int d = 0; d < N_DTYPES; d++) {
        dk_scope_begin();
        int64_t n = share(rank);
        dk_tensor *t = dk_empty(1, &n, dtypes[d], DK_CPU);
        for (int64_t i = 0; i < n; i++) {
            double v = rank * 1000 + (double)i;
            if (dtypes[d] == DK_DTYPE_F32)
                ((float *)dk_tensor_data(t))[i] = (float)v;
            else if (dtypes[d] == DK_DTYPE_F64)
                ((double *)dk_tensor_data(t))[i] = v;
            else
                ((int64_t *)dk_tensor_data(t))[i] = (int64_t)v;
        }
        dk_tensor *g = NULL;
        int64_t counts[8];
        assert_int_equal(dkh_pg_all_gather(pg, t, &g, counts), DK_OK);
        assert_non_null(g);
        assert_int_equal(dk_tensor_dtype(g), dtypes[d]);
        assert_int_equal(dk_tensor_ndim(g), 1);
        int64_t at = 0;
        for (int r = 0; r < world; r++) {
            assert_int_equal(counts[r], share(r));
            for (int64_t i = 0; i < share(r); i++, at++)
                if (elem(g, at) != r * 1000 + (double)i)
                    fail_msg("all_gather %s: element %lld (rank %d's %lld) = %g",
                             dk_dtype_name(dtypes[d]), (long long)at, r, (long long)i, elem(g, at));
        }
        assert_int_equal(dk_tensor_numel(g), at);
        dk_scope_end();
    }
}

static int64_t share_ragged(int r)
{
    return r * 3 + 1;
}

static int64_t share_one_empty(int r)
{
    return r == 1 ? 0 : r * 3 + 1;
}

static int64_t share_none(int r)
{
    return 0;
}

static int64_t share_large(int r)
{
    return 300000 + r * 12345; /* about 2.4 MB of f64 per rank */
}

static void gather_all(void)
{
    gather_with(share_ragged);
    gather_with(share_one_empty);
    gather_with(share_none);
    gather_with(share_large);
}

static void test_all_gather(void **state)
{
    gather_all();
    /* staged rounds: 16 bytes per round split across ranks, so shares are cut
     * mid-element and the shorter ones run out first */
    assert_int_equal(dkh_pg_set_chunk_bytes(pg, 16), DK_OK);
    gather_with(share_ragged);
    gather_with(share_one_empty);
    assert_int_equal(dkh_pg_set_chunk_bytes(pg, 64 << 10), DK_OK);
    gather_with(share_large);
    assert_int_equal(dkh_pg_set_chunk_bytes(pg, DKH_PG_DEFAULT_CHUNK_BYTES), DK_OK);

    /* raw bytes */
    char mine[16];
    size_t n = (size_t)rank + 1;
    memset(mine, 'a' + rank, n);
    void *all = NULL;
    size_t total = 0, counts[8];
    assert_int_equal(dkh_pg_all_gather_bytes(pg, mine, n, &all, &total, counts), DK_OK);
    size_t at = 0;
    for (int r = 0; r < world; r++) {
        assert_int_equal(counts[r], (size_t)r + 1);
        for (int i = 0; i <= r; i++)
            assert_int_equal(((char *)all)[at++], 'a' + r);
    }
    assert_int_equal(total, at);
    free(all);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void test_barrier(void **state)
{
    for (int i = 0; i < 20; i++)
        assert_int_equal(dkh_pg_barrier(pg), DK_OK);
    /* The last rank arrives 300 ms late: nobody may leave before it came. A
     * lower bound only, so a busy machine cannot make this flaky. */
    assert_int_equal(dkh_pg_barrier(pg), DK_OK);
    double t0 = now();
    if (rank == world - 1)
        usleep(300 * 1000);
    assert_int_equal(dkh_pg_barrier(pg), DK_OK);
    assert_true(now() - t0 >= 0.25);
}

/* Errors: on every rank, on one rank only, and disagreements across ranks. */
static void test_errors(void **state)
{
    check_local_errors();

    dk_scope_begin();
    /* one rank's bad argument: it keeps its own message, the others name it */
    dk_tensor *good = tensor_of(DK_DTYPE_F32, 24, rank);
    dk_tensor *bad = dk_permute(dk_reshape(good, 2, (int64_t[]){4, 6}), 2, (int[]){1, 0});
    dk_status s = dkh_pg_all_reduce(pg, rank == 1 ? bad : good, DKH_REDUCE_SUM);
    assert_int_equal(s, DK_ERR_ARG);
    if (rank == 1)
        assert_contains(dk_last_error(), "all_reduce: tensor (6, 4) f32 is not contiguous");
    else
        assert_contains(dk_last_error(),
                        "all_reduce: rank 1 rejected its arguments (see its message); nothing "
                        "was exchanged");
    for (int64_t i = 0; i < 24; i++)
        assert_true(elem(good, i) == (double)value(rank, i)); /* untouched */

    /* dtypes differ across ranks */
    dk_tensor *mixed = tensor_of(rank == 0 ? DK_DTYPE_F64 : DK_DTYPE_F32, 5, rank);
    assert_int_equal(dkh_pg_all_reduce(pg, mixed, DKH_REDUCE_SUM), DK_ERR_ARG);
    assert_contains(dk_last_error(), "all_reduce: ranks disagree on the dtype (");
    assert_contains(dk_last_error(), "from f32 to f64 across ranks");
    assert_int_equal(dkh_pg_broadcast(pg, mixed, 0), DK_ERR_ARG);
    assert_contains(dk_last_error(), "broadcast: ranks disagree on the dtype");
    dk_tensor *g = NULL;
    assert_int_equal(dkh_pg_all_gather(pg, mixed, &g, NULL), DK_ERR_ARG);
    assert_contains(dk_last_error(), "all_gather: ranks disagree on the dtype");

    /* element counts differ (a gather may differ; a reduction may not) */
    dk_tensor *ragged = tensor_of(DK_DTYPE_F64, rank + 2, rank);
    assert_int_equal(dkh_pg_all_reduce(pg, ragged, DKH_REDUCE_MAX), DK_ERR_ARG);
    char want[128];
    snprintf(want, sizeof want, "ranks disagree on the element count (%d on rank %d; from 2 to %d",
             rank + 2, rank, world + 1);
    assert_contains(dk_last_error(), want);

    /* roots differ */
    assert_int_equal(dkh_pg_broadcast(pg, good, rank == 0 ? 0 : 1), DK_ERR_ARG);
    assert_contains(dk_last_error(), "broadcast: ranks disagree on the root (");

    /* a wrong root on one rank only */
    s = dkh_pg_broadcast(pg, good, rank == world - 1 ? world : 0);
    assert_int_equal(s, DK_ERR_ARG);
    if (rank == world - 1)
        assert_contains(dk_last_error(), "is out of range");
    else
        assert_contains(dk_last_error(), "rejected its arguments");

    /* reductions differ */
    assert_int_equal(dkh_pg_all_reduce(pg, good, rank ? DKH_REDUCE_MAX : DKH_REDUCE_SUM),
                     DK_ERR_ARG);
    assert_contains(dk_last_error(), "ranks disagree on the reduction (");
    assert_contains(dk_last_error(), "from sum to max across ranks");

    /* and the group is still in step */
    assert_int_equal(dkh_pg_all_reduce(pg, good, DKH_REDUCE_SUM), DK_OK);
    for (int64_t i = 0; i < 24; i++)
        assert_true(elem(good, i) == expected(DKH_REDUCE_SUM, DK_DTYPE_F32, i));
    dk_scope_end();

#ifdef DK_HAVE_MPI
    /* MPI's own text reaches the message */
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    assert_int_equal(MPI_Error_string(MPI_ERR_COUNT, text, &len), MPI_SUCCESS);
    assert_int_equal(dkh_dist_mpi_fail(MPI_ERR_COUNT, "MPI_Bcast"), DK_ERR_RUNTIME);
    assert_contains(dk_last_error(), "mpi: MPI_Bcast: ");
    assert_contains(dk_last_error(), text);
#endif
}

/* ---- slurm --------------------------------------------------------------------- */

/* What srun would set, from Open MPI's own variables; procid_shift makes
 * SLURM_PROCID wrong. */
static void fake_slurm(int procid_shift)
{
    const char *r = getenv("OMPI_COMM_WORLD_RANK");
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    const char *l = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    assert_non_null(r);
    assert_non_null(n);
    assert_non_null(l);
    char buf[32];
    snprintf(buf, sizeof buf, "%d", (atoi(r) + procid_shift) % atoi(n));
    setenv("SLURM_PROCID", buf, 1);
    setenv("SLURM_NTASKS", n, 1);
    setenv("SLURM_LOCALID", l, 1);
}

static void test_slurm(void **state)
{
    fake_slurm(0);
    dkh_pg *p = NULL;
    assert_int_equal(dkh_pg_new(DKH_LAUNCHER_SLURM, &p), DK_OK);
    assert_int_equal(dkh_pg_launcher(p), DKH_LAUNCHER_SLURM);
    assert_str_eq(dkh_pg_backend_name(p), "mpi");
    assert_int_equal(dkh_pg_rank(p), atoi(getenv("SLURM_PROCID")));
    assert_int_equal(dkh_pg_world_size(p), world);
    int64_t v = dkh_pg_rank(p) + 1;
    assert_int_equal(dkh_pg_all_reduce_buf(p, &v, 1, DK_DTYPE_I64, DKH_REDUCE_SUM), DK_OK);
    assert_int_equal(v, (int64_t)world * (world + 1) / 2);
    dkh_pg_free(p);
}

static void test_slurm_mismatch(void **state)
{
    fake_slurm(1);
    dkh_pg *p = NULL;
    assert_int_equal(dkh_pg_new(DKH_LAUNCHER_SLURM, &p), DK_ERR_CONFIG);
    assert_null(p);
    char want[96];
    snprintf(want, sizeof want, "launcher slurm: SLURM_PROCID=%d but MPI's rank is %d",
             (atoi(getenv("OMPI_COMM_WORLD_RANK")) + 1) % world,
             atoi(getenv("OMPI_COMM_WORLD_RANK")));
    assert_contains(dk_last_error(), want);
    assert_contains(dk_last_error(), "srun --mpi=pmix");
}

/* ---- nccl (CUDA tensors) ---------------------------------------------------------- */

static dk_device gpu(void)
{
    return DK_CUDA_DEV(dkh_pg_device(pg));
}

static void test_nccl_identity(void **state)
{
    assert_str_eq(dkh_pg_backend_name(pg), "nccl");
    assert_int_equal(dkh_pg_rank(pg), rank);
    assert_int_equal(dkh_pg_world_size(pg), world);
    int n = dk_device_count(DK_DEVICE_CUDA);
    assert_int_equal(dkh_pg_device(pg), dkh_pg_local_rank(pg) % n);
    assert_true(dkh_pg_moves(pg, gpu()));
    assert_true(dkh_pg_moves(pg, DK_CPU));
    assert_int_equal(dkh_pg_barrier(pg), DK_OK);
}

/* Every op and dtype on CUDA tensors, read back on the host. Sum and max of
 * small integers are exact in any order; NCCL's average may round the last
 * bit differently from a division of the sum, so the mean has a tolerance. */
static void test_nccl_all_reduce(void **state)
{
    for (int d = 0; d < N_DTYPES; d++) {
        for (int k = 0; k < N_SIZES; k++) {
            for (int op = 0; op < DKH_REDUCE_COUNT; op++) {
                if (op == DKH_REDUCE_MEAN && dtypes[d] == DK_DTYPE_I64)
                    continue;
                dk_scope_begin();
                dk_tensor *t = dk_to(tensor_of(dtypes[d], sizes[k], rank), gpu());
                assert_non_null(t);
                assert_int_equal(dkh_pg_all_reduce(pg, t, (dkh_reduce_op)op), DK_OK);
                dk_tensor *h = dk_to(t, DK_CPU);
                assert_non_null(h);
                for (int64_t i = 0; i < sizes[k]; i++) {
                    double want = expected((dkh_reduce_op)op, dtypes[d], i);
                    if (op == DKH_REDUCE_MEAN)
                        assert_true(fabs(elem(h, i) - want) <= 1e-6 * (fabs(want) + 1));
                    else
                        assert_true(elem(h, i) == want);
                }
                dk_scope_end();
            }
        }
    }
}

static void test_nccl_broadcast(void **state)
{
    int roots[] = {0, world - 1};
    for (int k = 0; k < 2; k++) {
        dk_scope_begin();
        dk_tensor *t = dk_to(tensor_of(DK_DTYPE_F64, 1000, rank), gpu());
        assert_non_null(t);
        assert_int_equal(dkh_pg_broadcast(pg, t, roots[k]), DK_OK);
        dk_tensor *h = dk_to(t, DK_CPU);
        for (int64_t i = 0; i < 1000; i++)
            assert_true(elem(h, i) == (double)value(roots[k], i));
        /* raw device bytes too */
        dk_tensor *b = dk_to(tensor_of(DK_DTYPE_I64, 7, rank), gpu());
        assert_int_equal(dkh_pg_broadcast_bytes_on(pg, dk_tensor_data(b), 7 * sizeof(int64_t),
                                                   roots[k], gpu()),
                         DK_OK);
        h = dk_to(b, DK_CPU);
        for (int64_t i = 0; i < 7; i++)
            assert_true(elem(h, i) == (double)value(roots[k], i));
        dk_scope_end();
    }
}

/* Host memory still goes over MPI in a nccl group. */
static void test_nccl_host(void **state)
{
    dk_scope_begin();
    dk_tensor *t = tensor_of(DK_DTYPE_F32, 1000, rank);
    assert_int_equal(dkh_pg_all_reduce(pg, t, DKH_REDUCE_SUM), DK_OK);
    for (int64_t i = 0; i < 1000; i++)
        assert_true(elem(t, i) == expected(DKH_REDUCE_SUM, DK_DTYPE_F32, i));
    dk_tensor *all = NULL;
    assert_int_equal(dkh_pg_all_gather(pg, tensor_of(DK_DTYPE_I64, rank + 1, rank), &all, NULL),
                     DK_OK);
    assert_int_equal(dk_tensor_numel(all), (int64_t)world * (world + 1) / 2);
    dk_scope_end();
}

static void test_nccl_errors(void **state)
{
    dk_scope_begin();
    dk_tensor *g = dk_to(tensor_of(DK_DTYPE_F32, 8, rank), gpu());
    dk_tensor *all = NULL;

    /* gathers are host-only, with every backend */
    assert_int_equal(dkh_pg_all_gather(pg, g, &all, NULL), DK_ERR_UNSUPPORTED);
    assert_contains(dk_last_error(), "all_gather moves CPU tensors only with every backend");

    /* a device other than the communicator's, on every rank */
    float fake[4];
    dk_device other = DK_CUDA_DEV(dkh_pg_device(pg) + 1);
    assert_int_equal(dkh_pg_all_reduce_buf_on(pg, fake, 4, DK_DTYPE_F32, DKH_REDUCE_SUM, other),
                     DK_ERR_ARG);
    assert_contains(dk_last_error(), "this rank's NCCL communicator works on cuda:");

    if (world > 1) {
        /* rank 0 passes a CPU tensor, the others a CUDA one: all fail,
         * rather than rank 0 waiting in MPI and the others in NCCL */
        dk_tensor *mine = rank == 0 ? tensor_of(DK_DTYPE_F32, 8, rank) : g;
        assert_int_equal(dkh_pg_all_reduce(pg, mine, DKH_REDUCE_SUM), DK_ERR_ARG);
        assert_contains(dk_last_error(), "ranks disagree on the device type (");
        assert_contains(dk_last_error(), "from cpu to cuda across ranks");
    }

    /* and the group is still in step */
    assert_int_equal(dkh_pg_all_reduce(pg, g, DKH_REDUCE_SUM), DK_OK);
    dk_tensor *h = dk_to(g, DK_CPU);
    for (int64_t i = 0; i < 8; i++)
        assert_true(elem(h, i) == expected(DKH_REDUCE_SUM, DK_DTYPE_F32, i));
    dk_scope_end();
}

/* Makes the global group with launcher mpi and the backend, and checks the
 * world size against the command line's; false (with a message) if not. */
static bool open_group(dkh_pg_backend backend)
{
    if (dkh_pg_new_backend(DKH_LAUNCHER_MPI, backend, &pg) != DK_OK) {
        fprintf(stderr, "dkh_pg_new_backend(mpi, %s): %s\n",
                dkh_pg_backend_choice_name(backend), dk_last_error());
        return false;
    }
    rank = dkh_pg_rank(pg);
    if (dkh_pg_world_size(pg) != world) {
        fprintf(stderr, "rank %d: world size %d, expected %d\n", rank, dkh_pg_world_size(pg),
                world);
        dkh_pg_free(pg);
        return false;
    }
    return true;
}

/* Runs the nccl group's tests, or says why they cannot run here (exit 77). */
static int run_nccl(void)
{
    if (!dkh_dist_have_nccl()) {
        printf("skipped: libdk was built without NCCL (configure with -DDK_CUDA=ON "
               "-DDK_MPI=ON -DDK_NCCL=ON where NCCL is installed)\n");
        return 77;
    }
    /* Every rank of the job sees the same machine, so all skip together. */
    if (dk_device_check(DK_CUDA_DEV(0)) != DK_OK) {
        printf("skipped: %s\n", dk_last_error());
        return 77;
    }
    int n = dk_device_count(DK_DEVICE_CUDA);
    if (n < world) {
        printf("skipped: %d ranks need %d CUDA devices on this node, %d visible\n", world,
               world, n);
        return 77;
    }
    if (!open_group(DKH_PG_BACKEND_NCCL))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nccl_identity), cmocka_unit_test(test_nccl_all_reduce),
        cmocka_unit_test(test_nccl_broadcast), cmocka_unit_test(test_nccl_host),
        cmocka_unit_test(test_nccl_errors),
    };
    char name[32];
    snprintf(name, sizeof name, "dist_nccl_rank%d", rank);
    int failed = cmocka_run_group_tests_name(name, tests, NULL, NULL);
    dkh_pg_free(pg);
    return failed;
}

/* ---- synchronised batch norm ---------------------------------------------------- */

/* Each rank normalises its own rows of one fixed batch with the hook of
 * core/tensor/bn_sync.h installed over the group; the results must be what
 * one process computes on the whole batch. The ranks take different numbers
 * of rows (3, 2 and 4: 2 ranks split 5 rows, 3 ranks 9). The gradient flows
 * in from a non-uniform weight per output element, d(loss)/d(y) = gy_at(i):
 * each rank's loss is its own rows' part of
 * the whole batch's loss, so its input gradient must be the whole batch's,
 * and the sum of the ranks' weight and bias gradients (which DDP's mean over
 * ranks gives with the loss scaled by the world size) the whole batch's. */
#define SBN_TOL 1e-5

/* The hooks' context: the group, and the data of a running mean whose
 * layer is excluded (NULL: none). */
typedef struct sbn_ctx {
    dkh_pg *pg;
    const void *excluded;
} sbn_ctx;

static dk_status pg_sum(void *ctx, double *buf, size_t n)
{
    return dkh_pg_all_reduce_buf(((sbn_ctx *)ctx)->pg, buf, n, DK_DTYPE_F64, DKH_REDUCE_SUM);
}

static bool all_but(void *ctx, const dk_tensor *running_mean, const dk_tensor *weight)
{
    (void)weight;
    return !running_mean || dk_tensor_data(running_mean) != ((sbn_ctx *)ctx)->excluded;
}

static int64_t rows_of(int r)
{
    static const int64_t rows[3] = {3, 2, 4};
    return rows[r % 3];
}

/* f(from + i) rounded to float, in a tensor of dt (f32 or f64): both
 * dtypes hold the same values. */
static dk_tensor *filled(int ndim, const int64_t *shape, dk_dtype dt, double (*f)(int64_t),
                         int64_t from)
{
    dk_tensor *t = dk_empty(ndim, shape, dt, DK_CPU);
    assert_non_null(t);
    for (int64_t i = 0; i < dk_tensor_numel(t); i++) {
        float v = (float)f(from + i);
        if (dt == DK_DTYPE_F32)
            ((float *)dk_tensor_data(t))[i] = v;
        else
            ((double *)dk_tensor_data(t))[i] = v;
    }
    return t;
}

static double x_at(int64_t i)
{
    return 2.0 * sin(0.37 * (double)i) + 0.5 * (double)(i % 5) + 3.0;
}

/* x_at moved far from zero: mean / std about 1e3 per channel (mean 1604,
 * variance about 2.5). Squares taken in f32 without a shift would each be
 * rounded by about 0.1, which the variance (SS / M - mean^2) would keep. */
static double x_far_at(int64_t i)
{
    return x_at(i) + 1600.0;
}

static double gy_at(int64_t i)
{
    return cos(0.11 * (double)i) + 1.5;
}

/* max |a - b| <= tol * max(1, max |b|), elementwise over n values: a this
 * rank's (f32), b the whole batch's (f64). */
static void expect_close(const char *what, const float *a, const double *b, int64_t n)
{
    double scale = 1, worst = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(b[i]));
    for (int64_t i = 0; i < n; i++)
        if (!(fabs((double)a[i] - b[i]) <= worst)) {
            worst = fabs((double)a[i] - b[i]);
            at = i;
        }
    if (!(worst <= SBN_TOL * scale))
        fail_msg("rank %d: %s[%lld]: %.9g, the whole batch gives %.9g", rank, what,
                 (long long)at, a[at], b[at]);
}

typedef struct bn_run {
    dk_tensor *x, *w, *b, *rm, *rv, *y;
} bn_run;

/* The same values as t (N, C, H, W) in channels-last memory: the view
 * (N, C, H, W) of an (N, H, W, C) copy. */
static dk_tensor *channels_last(dk_tensor *t)
{
    dk_tensor *r = dk_permute(dk_contiguous(dk_permute(t, 4, (const int[]){0, 2, 3, 1})), 4,
                              (const int[]){0, 3, 1, 2});
    assert_non_null(r);
    return r;
}

/* One training batch norm of rows [from, from + n) of the batch of `shape`
 * (dim 0 replaced by n), in dt, of the values xf, and its backward from
 * gy_at; x and the incoming gradient channels-last when cl. */
static void bn_once(bn_run *o, int ndim, const int64_t *shape, dk_dtype dt, int64_t from, int64_t n,
                    double (*xf)(int64_t), bool cl)
{
    int64_t s[4], C = shape[1];
    memcpy(s, shape, (size_t)ndim * sizeof *s);
    s[0] = n;
    int64_t per_row = dk_tensor_numel(dk_empty(ndim, s, DK_DTYPE_F32, DK_CPU)) / (n ? n : 1);
    o->x = filled(ndim, s, dt, xf, from * per_row);
    if (cl)
        o->x = channels_last(o->x);
    o->w = dk_full(1, &C, 0.75, dt, DK_CPU);
    o->b = dk_full(1, &C, 0.25, dt, DK_CPU);
    o->rm = dk_zeros(1, &C, dt, DK_CPU);
    o->rv = dk_ones(1, &C, dt, DK_CPU);
    for (int k = 0; k < 3; k++)
        assert_int_equal(dk_tensor_set_requires_grad(k == 0 ? o->x : k == 1 ? o->w : o->b, true),
                         DK_OK);
    o->y = dk_batch_norm(o->x, o->w, o->b, o->rm, o->rv, true, 0.1, 1e-5);
    if (!o->y)
        fail_msg("rank %d: batch_norm: %s", rank, dk_last_error());
    dk_tensor *gy = filled(ndim, s, dt, gy_at, from * per_row);
    if (cl)
        gy = channels_last(gy);
    if (dk_backward(o->y, gy, false) != DK_OK)
        fail_msg("rank %d: backward: %s", rank, dk_last_error());
}

/* The case of `shape` with the values xf, the synchronised input
 * channels-last when cl (the reference is always plain). */
static void sync_bn_case_of(int ndim, const int64_t *shape, double (*xf)(int64_t), bool cl)
{
    int64_t from = 0, total = 0;
    for (int r = 0; r < world; r++) {
        if (r < rank)
            from += rows_of(r);
        total += rows_of(r);
    }
    int64_t n = rows_of(rank), full_shape[4];
    memcpy(full_shape, shape, (size_t)ndim * sizeof *full_shape);
    full_shape[0] = total;
    int64_t per_row = dk_tensor_numel(dk_empty(ndim, full_shape, DK_DTYPE_F32, DK_CPU)) / total;
    int64_t C = shape[1];

    bn_run whole, mine;
    /* The reference is one process in f64: in f32 its own rounding is the
     * larger error (the weight gradient sums 10^4 to 10^5 terms of both signs
     * per channel with a mean rounded to float). */
    bn_once(&whole, ndim, full_shape, DK_DTYPE_F64, 0, total, xf, false);
    sbn_ctx ctx = {pg, NULL};
    dkh_bn_sync sync = {.ctx = &ctx, .applies = all_but, .all_reduce_sum = pg_sum};
    dkh_bn_sync_set(&sync);
    bn_once(&mine, ndim, shape, DK_DTYPE_F32, from, n, xf, cl);
    dkh_bn_sync_set(NULL);

    /* Compared in (N, C, *) order whatever the layout. */
    const double *yw = dk_tensor_data(whole.y);
    expect_close("y", dk_tensor_data(dk_contiguous(mine.y)), yw + from * per_row, n * per_row);
    expect_close("x.grad", dk_tensor_data(dk_contiguous(dk_tensor_grad(mine.x))),
                 (const double *)dk_tensor_data(dk_tensor_grad(whole.x)) + from * per_row,
                 n * per_row);
    expect_close("running_mean", dk_tensor_data(mine.rm), dk_tensor_data(whole.rm), C);
    expect_close("running_var", dk_tensor_data(mine.rv), dk_tensor_data(whole.rv), C);
    for (int k = 0; k < 2; k++) {
        dk_tensor *g = dk_tensor_grad(k == 0 ? mine.w : mine.b);
        assert_int_equal(dkh_pg_all_reduce(pg, g, DKH_REDUCE_SUM), DK_OK);
        expect_close(k == 0 ? "sum of weight.grad" : "sum of bias.grad", dk_tensor_data(g),
                     dk_tensor_data(dk_tensor_grad(k == 0 ? whole.w : whole.b)), C);
    }
}

static void sync_bn_case(int ndim, const int64_t *shape)
{
    sync_bn_case_of(ndim, shape, x_at, false);
}

static void test_sync_bn(void **state)
{
    (void)state;
    dk_scope_begin();
    sync_bn_case(4, (int64_t[]){0, 3, 2, 5}); /* (N, C, H, W) */
    sync_bn_case(2, (int64_t[]){0, 4});       /* (N, C) */
    sync_bn_case(4, (int64_t[]){0, 8, 64, 64}); /* large enough for the threaded loops */
    /* Channels-last: the rows of a rank in several chunks and a partial one,
     * threaded on the rank of 3 rows. */
    sync_bn_case_of(4, (int64_t[]){0, 20, 24, 24}, x_at, true);
    /* Mean / std about 1e3, plain and channels-last. */
    sync_bn_case_of(4, (int64_t[]){0, 16, 10, 10}, x_far_at, false);
    sync_bn_case_of(4, (int64_t[]){0, 16, 10, 10}, x_far_at, true);
    dk_scope_end();
}

/* A layer the predicate excludes is the ordinary batch norm of the rank's
 * own rows, bit for bit, and exchanges nothing; a synchronised layer in the
 * same step still is synchronised. */
static void test_sync_bn_excluded(void **state)
{
    (void)state;
    dk_scope_begin();
    int64_t shape[4] = {rows_of(rank), 3, 2, 2}, C = 3;
    dk_tensor *x = filled(4, shape, DK_DTYPE_F32, x_at, 100 * rank);
    dk_tensor *w = dk_full(1, &C, 0.75, DK_DTYPE_F32, DK_CPU);
    dk_tensor *b = dk_full(1, &C, 0.25, DK_DTYPE_F32, DK_CPU);
    dk_tensor *rm[3], *rv[3]; /* plain, excluded, synchronised */
    for (int k = 0; k < 3; k++) {
        rm[k] = dk_zeros(1, &C, DK_DTYPE_F32, DK_CPU);
        rv[k] = dk_ones(1, &C, DK_DTYPE_F32, DK_CPU);
    }
    dk_tensor *plain = dk_batch_norm(x, w, b, rm[0], rv[0], true, 0.1, 1e-5);
    /* The excluded layer must not call the sum: a NULL one would crash. */
    sbn_ctx ctx = {pg, dk_tensor_data(rm[1])};
    dkh_bn_sync sync = {.ctx = &ctx, .applies = all_but};
    dkh_bn_sync_set(&sync);
    dk_tensor *excluded = dk_batch_norm(x, w, b, rm[1], rv[1], true, 0.1, 1e-5);
    /* The same step with the sum: the other layer is synchronised. */
    sync.all_reduce_sum = pg_sum;
    dkh_bn_sync_set(&sync);
    dk_tensor *synced = dk_batch_norm(x, w, b, rm[2], rv[2], true, 0.1, 1e-5);
    dkh_bn_sync_set(NULL);
    assert_non_null(plain);
    assert_non_null(excluded);
    assert_non_null(synced);
    size_t cb = (size_t)C * sizeof(float);
    assert_memory_equal(dk_tensor_data(excluded), dk_tensor_data(plain),
                        (size_t)dk_tensor_numel(plain) * sizeof(float));
    assert_memory_equal(dk_tensor_data(rm[1]), dk_tensor_data(rm[0]), cb);
    assert_memory_equal(dk_tensor_data(rv[1]), dk_tensor_data(rv[0]), cb);
    /* Synchronised running statistics are the same on every rank although
     * the rows differ, and differ from the rank's own. */
    dk_tensor *first = dk_mul_scalar(rm[2], 1.0);
    assert_int_equal(dkh_pg_broadcast(pg, first, 0), DK_OK);
    assert_memory_equal(dk_tensor_data(rm[2]), dk_tensor_data(first), cb);
    assert_memory_not_equal(dk_tensor_data(rm[2]), dk_tensor_data(rm[0]), cb);
    dk_scope_end();
}

/* A sum that fails fails the forward with its message; evaluation mode
 * never synchronises. */
static dk_status failing_sum(void *ctx, double *buf, size_t n)
{
    (void)ctx;
    (void)buf;
    return dk_fail(DK_ERR_RUNTIME, "all_reduce: %zu doubles refused", n);
}

static bool every_layer(void *ctx, const dk_tensor *running_mean, const dk_tensor *weight)
{
    (void)ctx;
    (void)running_mean;
    (void)weight;
    return true;
}

static void test_sync_bn_errors(void **state)
{
    (void)state;
    dk_scope_begin();
    int64_t shape[2] = {4, 3}, C = 3;
    dk_tensor *x = filled(2, shape, DK_DTYPE_F32, x_at, 0);
    dk_tensor *rm = dk_zeros(1, &C, DK_DTYPE_F32, DK_CPU);
    dk_tensor *rv = dk_ones(1, &C, DK_DTYPE_F32, DK_CPU);
    dkh_bn_sync sync = {.ctx = NULL, .applies = every_layer, .all_reduce_sum = failing_sum};
    dkh_bn_sync_set(&sync);
    assert_null(dk_batch_norm(x, NULL, NULL, rm, rv, true, 0.1, 1e-5));
    assert_int_equal(dk_last_status(), DK_ERR_RUNTIME);
    assert_contains(dk_last_error(), "batch_norm (synchronised, forward): all_reduce: 7 doubles "
                                     "refused");
    /* Evaluation mode never synchronises. */
    dk_clear_error();
    assert_non_null(dk_batch_norm(x, NULL, NULL, rm, rv, false, 0.1, 1e-5));
    dkh_bn_sync_set(NULL);
    dk_scope_end();
}

/* ---- main ----------------------------------------------------------------------- */

static int make_group(void **state)
{
    return dkh_pg_new(*(dkh_launcher *)*state, &pg) == DK_OK ? 0 : -1;
}

static int free_group(void **state)
{
    dkh_pg_free(pg);
    pg = NULL;
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "none";
    if (strcmp(mode, "skip") == 0) {
        printf("skipped: %s\n", argc > 2 ? argv[2] : "no reason given");
        return 77;
    }
    world = argc > 2 ? atoi(argv[2]) : 1;

    if (strcmp(mode, "none") == 0) {
        dkh_launcher l = DKH_LAUNCHER_NONE;
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_none_identity),
            cmocka_unit_test(test_none_collectives),
            cmocka_unit_test(test_local_errors),
            cmocka_unit_test(test_backends),
            cmocka_unit_test(test_launchers),
        };
        void *st = &l;
        if (make_group(&st) != 0) {
            fprintf(stderr, "dkh_pg_new(none): %s\n", dk_last_error());
            return 1;
        }
        int failed = cmocka_run_group_tests_name("dist_none", tests, NULL, NULL);
        free_group(NULL);
        return failed;
    }

    if (!dkh_dist_have_mpi()) {
        printf("skipped: libdk was built without MPI\n");
        return 77;
    }

    if (strcmp(mode, "slurm") == 0 || strcmp(mode, "slurm-mismatch") == 0) {
        const struct CMUnitTest good[] = {cmocka_unit_test(test_slurm)};
        const struct CMUnitTest bad[] = {cmocka_unit_test(test_slurm_mismatch)};
        if (strcmp(mode, "slurm") == 0)
            return cmocka_run_group_tests_name("dist_slurm", good, NULL, NULL);
        return cmocka_run_group_tests_name("dist_slurm_mismatch", bad, NULL, NULL);
    }

    if (strcmp(mode, "nccl") == 0)
        return run_nccl();

    if (strcmp(mode, "mpi") != 0) {
        fprintf(stderr, "test_dist: unknown mode '%s'\n", mode);
        return 2;
    }
    if (!open_group(DKH_PG_BACKEND_MPI))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity),         cmocka_unit_test(test_all_reduce_exact),
        cmocka_unit_test(test_all_reduce_chunked), cmocka_unit_test(test_all_reduce_random),
        cmocka_unit_test(test_broadcast),        cmocka_unit_test(test_all_gather),
        cmocka_unit_test(test_barrier),          cmocka_unit_test(test_errors),
        cmocka_unit_test(test_sync_bn),          cmocka_unit_test(test_sync_bn_excluded),
        cmocka_unit_test(test_sync_bn_errors),
    };
    char name[32];
    snprintf(name, sizeof name, "dist_mpi_rank%d", rank);
    int failed = cmocka_run_group_tests_name(name, tests, NULL, NULL);
    dkh_pg_free(pg);
    return failed;
}
