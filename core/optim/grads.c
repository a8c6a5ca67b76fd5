/* core/optim/grads.c — whole-model gradient arithmetic for the optimizer
 * wrapper: the total norm (clip_grad by norm, the logged grad_norm),
 * scaling (accumulation), clamping (clip_grad by value) and a finiteness
 * check (the runner's NaN guard).
 *
 * The norm is a sum over up to ~10^8 values, so it is split into fixed
 * blocks of each gradient: blocks are summed in parallel (each in double,
 * SIMD order) and the block sums added in order afterwards. Which thread
 * sums which block never changes a bit of the result, so runs with any
 * thread count log the same grad_norm and clip identically.
 */
#include "optim_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 16384

static size_t n_blocks(int64_t n)
{
    return (size_t)((n + BLOCK - 1) / BLOCK);
}

/* sum |x|^p over one block (p finite), or max |x| (p infinite; NaN wins). */
static double block_reduce(const float *x, int64_t n, double p)
{
    if (isinf(p)) {
        float m = 0;
        int nan = 0;
#pragma omp simd reduction(max : m) reduction(| : nan)
        for (int64_t i = 0; i < n; i++) {
            float a = fabsf(x[i]);
            m = a > m ? a : m;
            nan |= x[i] != x[i];
        }
        return nan ? NAN : m;
    }
    double acc = 0;
    if (p == 2) {
#pragma omp simd reduction(+ : acc)
        for (int64_t i = 0; i < n; i++)
            acc += (double)x[i] * (double)x[i];
    } else if (p == 1) {
#pragma omp simd reduction(+ : acc)
        for (int64_t i = 0; i < n; i++)
            acc += fabs((double)x[i]);
    } else {
        for (int64_t i = 0; i < n; i++)
            acc += pow(fabs((double)x[i]), p);
    }
    return acc;
}

double dkh_grads_norm(const dkh_gview *g, size_t n, double p)
{
    /* first[i]: the index of gradient i's first block. */
    size_t *first = malloc((n + 1) * sizeof *first);
    DKH_ASSERT(first != NULL);
    first[0] = 0;
    for (size_t i = 0; i < n; i++)
        first[i + 1] = first[i] + n_blocks(g[i].n);
    size_t total = first[n];
    double *part = malloc((total ? total : 1) * sizeof *part);
    DKH_ASSERT(part != NULL);

#pragma omp parallel for schedule(dynamic, 4) if (total > 8)
    for (size_t b = 0; b < total; b++) {
        size_t lo = 0, hi = n; /* the gradient whose blocks contain b */
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (first[mid] <= b)
                lo = mid;
            else
                hi = mid;
        }
        int64_t off = (int64_t)(b - first[lo]) * BLOCK;
        int64_t len = g[lo].n - off < BLOCK ? g[lo].n - off : BLOCK;
        part[b] = block_reduce(g[lo].data + off, len, p);
    }

    double r = 0;
    if (isinf(p)) {
        for (size_t b = 0; b < total; b++)
            r = isnan(part[b]) || part[b] > r ? part[b] : r;
    } else {
        for (size_t b = 0; b < total; b++)
            r += part[b];
        r = p == 2 ? sqrt(r) : p == 1 ? r : pow(r, 1.0 / p);
    }
    free(part);
    free(first);
    return r;
}

void dkh_grads_scale(const dkh_gview *g, size_t n, float scale)
{
    for (size_t k = 0; k < n; k++) {
        float *restrict x = g[k].data;
        const int64_t len = g[k].n;
#pragma omp parallel for simd if (len >= DKH_OPTIM_PAR_MIN) schedule(static)
        for (int64_t i = 0; i < len; i++)
            x[i] = x[i] * scale;
    }
}

void dkh_grads_scale_clamp(const dkh_gview *g, size_t n, float scale, float limit)
{
    for (size_t k = 0; k < n; k++) {
        float *restrict x = g[k].data;
        const int64_t len = g[k].n;
#pragma omp parallel for simd if (len >= DKH_OPTIM_PAR_MIN) schedule(static)
        for (int64_t i = 0; i < len; i++) {
            float v = x[i] * scale;
            /* NaN stays NaN, as torch.clamp keeps it. */
            v = v > limit ? limit : v;
            v = v < -limit ? -limit : v;
            x[i] = v;
        }
    }
}

bool dkh_grads_finite(const dkh_gview *g, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        const float *x = g[k].data;
        const int64_t len = g[k].n;
        int bad = 0;
#pragma omp parallel for simd reduction(| : bad) if (len >= DKH_OPTIM_PAR_MIN) schedule(static)
        for (int64_t i = 0; i < len; i++)
            bad |= !(x[i] - x[i] == 0); /* inf - inf and NaN - NaN are NaN */
        if (bad)
            return false;
    }
    return true;
}

/* Walks the gradients as one stream of floats, a bucket at a time: pack,
 * average across the ranks, unpack. Small gradients share a bucket, so a
 * model of many small tensors makes few MPI calls. Gradients and bucket are
 * host memory (the optimizers take CPU parameters only), so with the nccl
 * backend too the buckets travel over MPI; CUDA gradients will need a bucket
 * on their device, reduced with dkh_pg_all_reduce_buf_on. */
dk_status dkh_grads_all_reduce_mean(dkh_pg *pg, const dkh_gview *g, size_t n, float *bucket,
                                    size_t bucket_elems)
{
    size_t gi = 0;
    int64_t off = 0;
    while (gi < n) {
        size_t start_gi = gi, fill = 0;
        int64_t start_off = off;
        while (gi < n && fill < bucket_elems) {
            size_t take = (size_t)(g[gi].n - off);
            if (take > bucket_elems - fill)
                take = bucket_elems - fill;
            memcpy(bucket + fill, g[gi].data + off, take * sizeof *bucket);
            fill += take;
            off += (int64_t)take;
            if (off == g[gi].n) {
                gi++;
                off = 0;
            }
        }
        if (!fill)
            break; /* only empty gradients were left */
        DK_TRY(dkh_pg_all_reduce_buf(pg, bucket, fill, DK_DTYPE_F32, DKH_REDUCE_MEAN));
        /* Back where each piece came from: the same walk again. */
        size_t done = 0;
        for (size_t k = start_gi; done < fill; k++) {
            int64_t from = k == start_gi ? start_off : 0;
            size_t take = (size_t)(g[k].n - from);
            if (take > fill - done)
                take = fill - done;
            memcpy(g[k].data + from, bucket + done, take * sizeof *bucket);
            done += take;
        }
    }
    return DK_OK;
}
