/* core/backends/cpu/cpu_math.h — vectorisable single-precision math for the
 * CPU kernels (softmax, log_softmax, cross_entropy).
 *
 * libm's expf is an opaque call, so a loop that calls it runs one element at
 * a time; these are plain arithmetic the compiler turns into AVX-512 code
 * inside `#pragma omp simd` loops. They are used only in f32 kernels; f64
 * kernels keep libm (the op suite compares them with the reference at 1e-12).
 */
#ifndef DKH_CPU_MATH_H
#define DKH_CPU_MATH_H

#include <stdint.h>

/* e^x for x <= 88 (the kernels pass x - max <= 0).
 *
 * x = n ln2 + r with n = round(x / ln2), |r| <= ln2 / 2; ln2 is split in a
 * part with a short mantissa and a correction so n * ln2_hi is exact and r
 * keeps its low bits. e^r is its Taylor series to degree 7 (truncation
 * error r^8 / 8! < 6e-9 relative, below f32 rounding) in Horner form, and
 * 2^n goes straight into the exponent field. Below -87.3 (where e^x is a
 * denormal) the result is 0, so masked -inf logits give exactly 0 as in
 * PyTorch. Max relative error against double-precision exp over [-87, 0]
 * on 10^8 evenly spaced points: 7.9e-8 (1.3 ulp). NaN propagates. */
static inline float dkh_expf(float x)
{
    float lo = x < -87.3f ? 0.0f : 1.0f;
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.0f ? 88.0f : x;
    /* Adding 1.5 * 2^23 rounds to an integer (to nearest even) and leaves n
     * in the low mantissa bits: plain arithmetic, unlike roundevenf. */
    float t = x * 1.44269504088896341f + 12582912.0f;
    float n = t - 12582912.0f;
    float r = x - n * 0.693145751953125f;     /* ln2_hi: 16 significant bits */
    r = r - n * 1.42860682030941723212e-6f;   /* ln2 - ln2_hi */
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t ti, si;
    float s;
    __builtin_memcpy(&ti, &t, sizeof ti);
    si = (int32_t)((uint32_t)(ti - 0x4b400000 + 127) << 23); /* 2^n; unsigned: NaN gives a negative n */
    __builtin_memcpy(&s, &si, sizeof s);
    return p * s * lo;
}

#endif /* DKH_CPU_MATH_H */
