/* core/tensor/dtype.c — element types: names, sizes and conversions.
 *
 * Reference kernels read and write every dtype through double (dkh_load,
 * dkh_store), which is exact for all of them except i64 beyond 2^53; that is
 * what lets one plain loop serve every dtype. The half types convert with
 * round-to-nearest-even, as hardware does, so a value round-trips through
 * f32 the same way on the CPU and (later) on CUDA.
 */
#include "tensor_impl.h"

#include <math.h>
#include <string.h>

#define DT_NAME_(e, name, size) name,
#define DT_SIZE_(e, name, size) size,
static const char *const dtype_names[] = {DK_DTYPE_LIST(DT_NAME_)};
static const size_t dtype_sizes[] = {DK_DTYPE_LIST(DT_SIZE_)};
#undef DT_NAME_
#undef DT_SIZE_

const char *dk_dtype_name(dk_dtype dtype)
{
    return (unsigned)dtype < DK_DTYPE_COUNT ? dtype_names[dtype] : "?";
}

size_t dk_dtype_size(dk_dtype dtype)
{
    return (unsigned)dtype < DK_DTYPE_COUNT ? dtype_sizes[dtype] : 0;
}

bool dkh_is_float(dk_dtype d)
{
    return d == DK_DTYPE_F32 || d == DK_DTYPE_F64 || d == DK_DTYPE_BF16 || d == DK_DTYPE_F16;
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float dkh_bf16_to_f32(uint16_t h)
{
    return bits_f32((uint32_t)h << 16);
}

uint16_t dkh_f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if (isnan(f))
        return (uint16_t)((u >> 16) | 0x40); /* keep it a (quiet) NaN */
    u += 0x7fff + ((u >> 16) & 1);          /* round to nearest even */
    return (uint16_t)(u >> 16);
}

float dkh_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0) { /* zero or subnormal: man * 2^-24 */
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    if (exp == 31)
        return bits_f32(sign | 0x7f800000u | (man << 13));
    return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t dkh_f32_to_f16(float f)
{
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    float a = fabsf(f);
    if (isnan(f))
        return sign | 0x7e00;
    if (a >= 65520.0f) /* rounds to infinity */
        return sign | 0x7c00;
    if (a < 6.103515625e-05f) { /* subnormal range: multiples of 2^-24 */
        float q = nearbyintf(a * 16777216.0f); /* ties to even in the default mode */
        return sign | (uint16_t)q;
    }
    uint32_t au = f32_bits(a);
    uint32_t exp = (au >> 23) - 112, man = au & 0x7fffff;
    uint32_t h = (exp << 10) | (man >> 13);
    uint32_t rest = man & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
        h++; /* a carry into the exponent is the right result */
    return sign | (uint16_t)h;
}

double dkh_load(const void *base, dk_dtype dtype, int64_t i)
{
    switch (dtype) {
    case DK_DTYPE_F32: return ((const float *)base)[i];
    case DK_DTYPE_F64: return ((const double *)base)[i];
    case DK_DTYPE_BF16: return dkh_bf16_to_f32(((const uint16_t *)base)[i]);
    case DK_DTYPE_F16: return dkh_f16_to_f32(((const uint16_t *)base)[i]);
    case DK_DTYPE_I32: return ((const int32_t *)base)[i];
    case DK_DTYPE_I64: return (double)((const int64_t *)base)[i];
    case DK_DTYPE_U8: return ((const uint8_t *)base)[i];
    case DK_DTYPE_BOOL: return ((const uint8_t *)base)[i] ? 1.0 : 0.0;
    case DK_DTYPE_COUNT: break;
    }
    DKH_ASSERT(!"bad dtype");
}

/* Float to integer truncates toward zero and saturates, so a NaN or an
 * out-of-range value cannot invoke undefined behaviour. */
static int64_t to_int(double v, double lo, double hi)
{
    if (isnan(v))
        return 0;
    if (v <= lo)
        return (int64_t)lo;
    if (v >= hi)
        return (int64_t)hi;
    return (int64_t)v;
}

void dkh_store(void *base, dk_dtype dtype, int64_t i, double v)
{
    switch (dtype) {
    case DK_DTYPE_F32: ((float *)base)[i] = (float)v; return;
    case DK_DTYPE_F64: ((double *)base)[i] = v; return;
    case DK_DTYPE_BF16: ((uint16_t *)base)[i] = dkh_f32_to_bf16((float)v); return;
    case DK_DTYPE_F16: ((uint16_t *)base)[i] = dkh_f32_to_f16((float)v); return;
    case DK_DTYPE_I32: ((int32_t *)base)[i] = (int32_t)to_int(v, -2147483648.0, 2147483647.0); return;
    case DK_DTYPE_I64:
        ((int64_t *)base)[i] = to_int(v, -9223372036854775808.0, 9223372036854774784.0);
        return;
    case DK_DTYPE_U8: ((uint8_t *)base)[i] = (uint8_t)to_int(v, 0.0, 255.0); return;
    case DK_DTYPE_BOOL: ((uint8_t *)base)[i] = v != 0.0; return;
    case DK_DTYPE_COUNT: break;
    }
    DKH_ASSERT(!"bad dtype");
}
