/* tests/dist/test_dist.c — process groups (core/dist) in one process and
 * under mpiexec.
 *
 *   test_dist none              launcher none: world 1, collectives are identities,
 *                               argument errors, launcher parsing, SLURM_* checks
 *   test_dist mpi N             under mpiexec -np N: every collective against values
 *                               computed locally, chunked transfers, errors on one
 *                               rank or across ranks, and the group still works after
 *   test_dist slurm N           launcher slurm, SLURM_* set from Open MPI's variables
 *   test_dist slurm-mismatch N  SLURM_PROCID wrong on every rank: all ranks fail
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

    if (strcmp(mode, "mpi") != 0) {
        fprintf(stderr, "test_dist: unknown mode '%s'\n", mode);
        return 2;
    }
    if (dkh_pg_new(DKH_LAUNCHER_MPI, &pg) != DK_OK) {
        fprintf(stderr, "dkh_pg_new(mpi): %s\n", dk_last_error());
        return 1;
    }
    rank = dkh_pg_rank(pg);
    if (dkh_pg_world_size(pg) != world) {
        fprintf(stderr, "rank %d: world size %d, expected %d\n", rank, dkh_pg_world_size(pg),
                world);
        dkh_pg_free(pg);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity),         cmocka_unit_test(test_all_reduce_exact),
        cmocka_unit_test(test_all_reduce_chunked), cmocka_unit_test(test_all_reduce_random),
        cmocka_unit_test(test_broadcast),        cmocka_unit_test(test_all_gather),
        cmocka_unit_test(test_barrier),          cmocka_unit_test(test_errors),
    };
    char name[32];
    snprintf(name, sizeof name, "dist_mpi_rank%d", rank);
    int failed = cmocka_run_group_tests_name(name, tests, NULL, NULL);
    dkh_pg_free(pg);
    return failed;
}
