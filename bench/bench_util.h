/* bench/bench_util.h — timing helpers shared by the dkhost benchmarks and the
 * direct-oneDNN peer: a monotonic clock, medians, and the repetition rule.
 *
 * Every timed number in bench/ is the median of repeated runs after warm-up;
 * a row is repeated until it has at least BENCH_MIN_REPS runs and about
 * BENCH_MIN_SECONDS of timed work (at most BENCH_MAX_REPS).
 */
#ifndef DK_BENCH_UTIL_H
#define DK_BENCH_UTIL_H

#include <stdlib.h>
#include <time.h>

#define BENCH_WARMUP 3
#define BENCH_MIN_REPS 7
#define BENCH_MAX_REPS 200
#define BENCH_MIN_SECONDS 0.4

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of n values (sorts them in place). */
static inline double bench_median(double *v, int n)
{
    if (n <= 0)
        return 0.0;
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* True while another repetition is wanted, given n timings summing to total. */
static inline int bench_more(int n, double total)
{
    return n < BENCH_MIN_REPS || (total < BENCH_MIN_SECONDS && n < BENCH_MAX_REPS);
}

#endif /* DK_BENCH_UTIL_H */
