/* bench/allreduce_bench.c — bandwidth of the process group's all-reduce (the
 * collective that averages gradients in data-parallel training) for buffers
 * of 1 KiB to 64 MiB of f32, through libdk's own API (core/dist), so the
 * figures include its agreement check and chunking.
 *
 *   mpirun -n 2 [flags of docs/distributed.md] allreduce_bench
 *
 * Each size is timed as the median of repeated sum all-reduces after
 * warm-up (bench_util.h's repetition rule; every rank repeats as often as
 * rank 0 decides, so the calls stay matched). Rank 0 prints one line per size:
 * the algorithm bandwidth (bytes / time) and the bus bandwidth
 * (2 (n - 1) / n x bytes / time, what a ring all-reduce moves per rank).
 */
#include "bench_util.h"

#include "dist/dist.h"

#include <dk/dk.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    dkh_pg *pg = NULL;
    if (dkh_pg_new(DKH_LAUNCHER_MPI, &pg) != DK_OK) {
        fprintf(stderr, "allreduce_bench: %s\n", dk_last_error());
        return 1;
    }
    int rank = dkh_pg_rank(pg), world = dkh_pg_world_size(pg);
    size_t max_bytes = (size_t)64 << 20;
    float *buf = malloc(max_bytes);
    if (!buf)
        return 1;
    for (size_t i = 0; i < max_bytes / sizeof *buf; i++)
        buf[i] = 1.0f;
    if (rank == 0)
        printf("META world=%d backend=%s\n", world, dkh_pg_backend_name(pg));
    double t[BENCH_MAX_REPS];
    for (size_t bytes = 1024; bytes <= max_bytes; bytes *= 4) {
        size_t count = bytes / sizeof *buf;
        int n = 0;
        double total = 0;
        for (int w = -BENCH_WARMUP;; w++) {
            /* Rank 0 decides whether another repetition runs; all follow. */
            double more = rank == 0 && (w < 0 || bench_more(n, total));
            if (dkh_pg_all_reduce_buf(pg, &more, 1, DK_DTYPE_F64, DKH_REDUCE_MAX) != DK_OK)
                goto fail;
            if (more == 0)
                break;
            double t0 = bench_now();
            if (dkh_pg_all_reduce_buf(pg, buf, count, DK_DTYPE_F32, DKH_REDUCE_SUM) != DK_OK)
                goto fail;
            double dt = bench_now() - t0;
            if (w >= 0) {
                t[n++] = dt;
                total += dt;
            }
        }
        double med = bench_median(t, n);
        if (rank == 0)
            printf("ROW bytes=%zu ms=%.4f algbw_GBps=%.3f busbw_GBps=%.3f reps=%d\n", bytes,
                   1e3 * med, (double)bytes / med / 1e9,
                   2.0 * (world - 1) / world * (double)bytes / med / 1e9, n);
        for (size_t i = 0; i < count; i++) /* keep the values from growing without bound */
            buf[i] = 1.0f;
    }
    free(buf);
    dkh_pg_free(pg);
    return 0;
fail:
    fprintf(stderr, "allreduce_bench (rank %d): %s\n", rank, dk_last_error());
    free(buf);
    dkh_pg_free(pg);
    return 1;
}
