/* core/backends/cpu/matmul.c — a blocked f32/f64 matrix product.
 *
 * C (M, N) = A (M, K) @ B (K, N) per batch. B is packed into contiguous rows
 * once per batch when its rows are strided (a transposed weight, say), so the
 * inner loop always streams unit-stride rows of B and C, which the compiler
 * vectorises. Four rows of C are updated together so each loaded row of B is
 * used four times, and K is cut into blocks that keep those B rows in cache.
 * Built at -O3 with one clone per vector width (AVX-512, AVX2, baseline).
 * This is a placeholder until oneDNN's matmul is wired in; it is tested
 * against the reference kernel like every fast kernel.
 * Each element of C is accumulated by one thread over K in a fixed order and
 * the work split depends on the shape only, so the bits do not depend on the
 * thread count: deterministic mode (dk_deterministic) needs nothing more here.
 */
#include "cpu.h"

#include <stdlib.h>
#include <string.h>

#define KB 256 /* K block: 256 rows of B */
#define MR 4   /* rows of C updated together */

/* One clone per vector width; the loader picks the widest the CPU has. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define DKH_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define DKH_CLONES
#endif

#define GEMM(T)                                                                               \
    DKH_CLONES static void gemm_##T(int64_t M, int64_t N, int64_t K, const T *restrict A, int64_t am,     \
                         int64_t ak, const T *restrict B, T *restrict C)                       \
    {                                                                                          \
        memset(C, 0, (size_t)(M * N) * sizeof(T));                                             \
        for (int64_t k0 = 0; k0 < K; k0 += KB) {                                               \
            int64_t k1 = k0 + KB < K ? k0 + KB : K;                                            \
            int64_t i = 0;                                                                     \
            for (; i + MR <= M; i += MR) {                                                     \
                T *restrict c0 = C + i * N, *restrict c1 = c0 + N;                             \
                T *restrict c2 = c1 + N, *restrict c3 = c2 + N;                                \
                for (int64_t k = k0; k < k1; k++) {                                            \
                    const T *restrict b = B + k * N;                                           \
                    T a0 = A[i * am + k * ak], a1 = A[(i + 1) * am + k * ak];                  \
                    T a2 = A[(i + 2) * am + k * ak], a3 = A[(i + 3) * am + k * ak];            \
                    for (int64_t j = 0; j < N; j++) {                                          \
                        T bv = b[j];                                                           \
                        c0[j] += a0 * bv;                                                      \
                        c1[j] += a1 * bv;                                                      \
                        c2[j] += a2 * bv;                                                      \
                        c3[j] += a3 * bv;                                                      \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
            for (; i < M; i++) {                                                               \
                T *c0 = C + i * N;                                                             \
                for (int64_t k = k0; k < k1; k++) {                                            \
                    const T *b = B + k * N;                                                    \
                    T a0 = A[i * am + k * ak];                                                 \
                    for (int64_t j = 0; j < N; j++)                                            \
                        c0[j] += a0 * b[j];                                                    \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }

GEMM(float)
GEMM(double)

bool dkh_cpu_matmul(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0], *y = c->in[1];
    dk_tensor *o = c->out;
    dk_dtype dt = o->dtype;
    if (dt != DK_DTYPE_F32 && dt != DK_DTYPE_F64)
        return false;
    size_t es = dk_dtype_size(dt);
    dkh_mm_geom g;
    dkh_mm_geom_of(c, &g);
    int nb = g.nb;
    int64_t M = g.M, N = g.N, K = g.K, batches = g.batches;
    const int64_t *xs = g.xs, *ys = g.ys;
    int64_t am = g.xm, ak = g.xk, bk = g.yk, bn = g.yn;
    bool pack = !(bn == 1 && bk == N);
    /* Parallel over (batch, row block) pairs so one big matrix and many small
     * ones both spread across threads. */
    int64_t rb = (M + 63) / 64; /* row blocks of 64 */
    int64_t tasks = batches * rb;
    bool par = (double)M * (double)N * (double)K * (double)batches >= 1e5 && tasks > 1;
    bool failed = false;
#pragma omp parallel if (par)
    {
        void *packed = pack ? malloc((size_t)(K * N) * es + 1) : NULL;
        int64_t packed_for = -1;
        if (pack && !packed) {
#pragma omp atomic write
            failed = true;
        }
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tasks; t++) {
            if (pack && !packed)
                continue;
            int64_t bi = t / rb, i0 = (t % rb) * 64, i1 = i0 + 64 < M ? i0 + 64 : M;
            const char *A = dkh_base(x) + dkh_offset_of(bi, nb, o->shape, xs) * (int64_t)es;
            const char *B = dkh_base(y) + dkh_offset_of(bi, nb, o->shape, ys) * (int64_t)es;
            char *C = dkh_base(o) + (bi * M + i0) * N * (int64_t)es;
            if (pack && packed_for != bi) {
                for (int64_t k = 0; k < K; k++)
                    for (int64_t j = 0; j < N; j++)
                        memcpy((char *)packed + (k * N + j) * (int64_t)es,
                               B + (k * bk + j * bn) * (int64_t)es, es);
                packed_for = bi;
            }
            const char *Bc = pack ? packed : B;
            if (dt == DK_DTYPE_F32)
                gemm_float(i1 - i0, N, K, (const float *)A + i0 * am, am, ak, (const float *)Bc,
                           (float *)C);
            else
                gemm_double(i1 - i0, N, K, (const double *)A + i0 * am, am, ak,
                            (const double *)Bc, (double *)C);
        }
        free(packed);
    }
    /* Without scratch memory the reference kernel still gives the answer. */
    return !failed;
}
