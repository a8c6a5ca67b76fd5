/* core/tensor/rng.c — a seeded, splittable, counter-based random generator.
 *
 * Value number c of a generator with key k is a pure function of (k, c): two
 * rounds of the SplitMix64 finaliser over the counter mixed with the key. So a
 * kernel may compute element i on any thread in any order and still produce
 * the same tensor, and a generator's whole state is two integers that a
 * checkpoint stores. A split derives a child key from the parent's key and
 * counter, so children of one parent, and of different parents, get
 * unrelated streams.
 */
#include "tensor_impl.h"

#include <math.h>

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t dkh_rng_bits(uint64_t key, uint64_t c)
{
    return mix(mix(c * 0x9e3779b97f4a7c15ull + key) ^ (key * 0xd1342543de82ef95ull + 1));
}

double dkh_rng_uniform(uint64_t key, uint64_t c)
{
    return (double)(dkh_rng_bits(key, c) >> 11) * 0x1.0p-53; /* [0, 1) */
}

double dkh_rng_normal(uint64_t key, uint64_t c)
{
    /* Box-Muller from two independent draws derived from one counter. */
    uint64_t b1 = dkh_rng_bits(key, c), b2 = dkh_rng_bits(key ^ 0x5851f42d4c957f2dull, c);
    double u1 = ((double)(b1 >> 11) + 0.5) * 0x1.0p-53; /* (0, 1): log(u1) finite */
    double u2 = (double)(b2 >> 11) * 0x1.0p-53;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void dk_rng_seed(dk_rng *rng, uint64_t seed)
{
    if (!rng)
        return;
    rng->key = mix(seed ^ 0x6a09e667f3bcc909ull);
    rng->counter = 0;
}

dk_rng dk_rng_split(dk_rng *rng)
{
    dk_rng child = {0, 0};
    if (!rng)
        return child;
    child.key = mix(dkh_rng_bits(rng->key, rng->counter) ^ 0xbb67ae8584caa73bull);
    rng->counter++;
    return child;
}

double dk_rng_uniform(dk_rng *rng)
{
    if (!rng)
        rng = dk_rng_default();
    return dkh_rng_uniform(rng->key, rng->counter++);
}

int64_t dk_rng_int(dk_rng *rng, int64_t n)
{
    if (n <= 1)
        return 0;
    if (!rng)
        rng = dk_rng_default();
    /* Lemire's multiply-shift: unbiased enough for n far below 2^64. */
    uint64_t bits = dkh_rng_bits(rng->key, rng->counter++);
    return (int64_t)(((unsigned __int128)bits * (uint64_t)n) >> 64);
}

static _Thread_local dk_rng default_rng;
static _Thread_local bool default_seeded;

dk_rng *dk_rng_default(void)
{
    if (!default_seeded) {
        dk_rng_seed(&default_rng, 0);
        default_seeded = true;
    }
    return &default_rng;
}
