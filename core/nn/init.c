/* core/nn/init.c — how new parameters are filled (dk_init, types.h).
 *
 * The formulas are PyTorch's torch.nn.init ones, including its fan rule
 * (fan-in = shape[1] x the receptive field, fan-out = shape[0] x the same),
 * so a module written like its PyTorch original starts from the same
 * distributions. Values come from the process's initialisation generator: each
 * parameter splits its own stream off it in creation order and element i is
 * drawn at counter i of that stream, so the values depend on the seed and the
 * creation order only.
 */
#include "module_impl.h"

#include "../tensor/tensor_impl.h"

#include <math.h>
#include <pthread.h>

static pthread_mutex_t gen_lock = PTHREAD_MUTEX_INITIALIZER;
static dk_rng gen;
static bool gen_seeded;

void dkh_module_seed(uint64_t seed)
{
    pthread_mutex_lock(&gen_lock);
    dk_rng_seed(&gen, seed);
    gen_seeded = true;
    pthread_mutex_unlock(&gen_lock);
}

dk_rng dkh_module_next_stream(void)
{
    pthread_mutex_lock(&gen_lock);
    if (!gen_seeded) {
        dk_rng_seed(&gen, 0);
        gen_seeded = true;
    }
    dk_rng r = dk_rng_split(&gen);
    pthread_mutex_unlock(&gen_lock);
    return r;
}

static const char *kind_name(int32_t k)
{
    static const char *const names[DK_INIT_KIND_COUNT] = {
        [DK_INIT_ZEROS] = "ZEROS",
        [DK_INIT_CONSTANT] = "CONSTANT",
        [DK_INIT_UNIFORM] = "UNIFORM",
        [DK_INIT_NORMAL] = "NORMAL",
        [DK_INIT_KAIMING_UNIFORM] = "KAIMING_UNIFORM",
        [DK_INIT_KAIMING_NORMAL] = "KAIMING_NORMAL",
        [DK_INIT_XAVIER_UNIFORM] = "XAVIER_UNIFORM",
        [DK_INIT_XAVIER_NORMAL] = "XAVIER_NORMAL",
        [DK_INIT_FAN_IN_UNIFORM] = "FAN_IN_UNIFORM",
    };
    return (k >= 0 && k < DK_INIT_KIND_COUNT) ? names[k] : "?";
}

/* PyTorch's _calculate_fan_in_and_fan_out: needs at least 2 dims. */
static dk_status fans(const dk_tensor *t, const dk_init *init, const char *what, double *fan_in,
                      double *fan_out)
{
    if (t->ndim < 2)
        return dk_fail(DK_ERR_ARG,
                       "%s: %s needs a tensor of at least 2 dims to compute fan-in and fan-out, "
                       "got %d",
                       what, kind_name(init->kind), t->ndim);
    double field = 1;
    for (int d = 2; d < t->ndim; d++)
        field *= (double)t->shape[d];
    *fan_in = (double)t->shape[1] * field;
    *fan_out = (double)t->shape[0] * field;
    return DK_OK;
}

/* Fills with U(lo, hi) or N(mean, std^2). */
static void fill_uniform(float *p, int64_t n, const dk_rng *rng, double lo, double hi)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = (float)(lo + (hi - lo) * dkh_rng_uniform(rng->key, rng->counter + (uint64_t)i));
}

static void fill_normal(float *p, int64_t n, const dk_rng *rng, double mean, double std)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = (float)(mean + std * dkh_rng_normal(rng->key, rng->counter + (uint64_t)i));
}

dk_status dkh_init_fill(dk_tensor *t, const dk_init *init, dk_rng *rng, const char *what)
{
    DKH_ASSERT(t->dtype == DK_DTYPE_F32 && t->storage->device.type == DK_DEVICE_CPU);
    float *p = (float *)dkh_base(t);
    int64_t n = dkh_numel(t->ndim, t->shape);
    int32_t kind = init ? init->kind : DK_INIT_ZEROS;
    double fan_in = 0, fan_out = 0;
    bool fan_based = kind == DK_INIT_KAIMING_UNIFORM || kind == DK_INIT_KAIMING_NORMAL ||
                     kind == DK_INIT_XAVIER_UNIFORM || kind == DK_INIT_XAVIER_NORMAL ||
                     (kind == DK_INIT_FAN_IN_UNIFORM && init->b == 0);
    if (fan_based)
        DK_TRY(fans(t, init, what, &fan_in, &fan_out));
    /* Draws happen only for a non-empty tensor, so an empty one needs no
     * positive fan. */
    if (fan_based && n > 0 && (fan_in <= 0 || fan_out <= 0))
        return dk_fail(DK_ERR_ARG, "%s: %s of a tensor with a zero fan", what, kind_name(kind));

    switch (kind) {
    case DK_INIT_ZEROS:
        for (int64_t i = 0; i < n; i++)
            p[i] = 0.0f;
        break;
    case DK_INIT_CONSTANT:
        for (int64_t i = 0; i < n; i++)
            p[i] = (float)init->a;
        break;
    case DK_INIT_UNIFORM:
        if (!(init->a <= init->b))
            return dk_fail(DK_ERR_ARG, "%s: UNIFORM needs a <= b, got U(%g, %g)", what, init->a,
                           init->b);
        fill_uniform(p, n, rng, init->a, init->b);
        break;
    case DK_INIT_NORMAL:
        if (!(init->b >= 0))
            return dk_fail(DK_ERR_ARG, "%s: NORMAL needs a standard deviation b >= 0, got %g", what,
                           init->b);
        fill_normal(p, n, rng, init->a, init->b);
        break;
    case DK_INIT_KAIMING_UNIFORM:
    case DK_INIT_KAIMING_NORMAL: {
        /* gain for leaky_relu with negative slope a (a = 0: ReLU's sqrt(2)). */
        double gain = sqrt(2.0 / (1.0 + init->a * init->a));
        double fan = init->fan_out ? fan_out : fan_in;
        if (kind == DK_INIT_KAIMING_UNIFORM) {
            double bound = gain * sqrt(3.0 / fan);
            fill_uniform(p, n, rng, -bound, bound);
        } else {
            fill_normal(p, n, rng, 0.0, gain / sqrt(fan));
        }
        break;
    }
    case DK_INIT_XAVIER_UNIFORM:
    case DK_INIT_XAVIER_NORMAL: {
        double g = init->a != 0 ? init->a : 1.0;
        if (kind == DK_INIT_XAVIER_UNIFORM) {
            double bound = g * sqrt(6.0 / (fan_in + fan_out));
            fill_uniform(p, n, rng, -bound, bound);
        } else {
            fill_normal(p, n, rng, 0.0, g * sqrt(2.0 / (fan_in + fan_out)));
        }
        break;
    }
    case DK_INIT_FAN_IN_UNIFORM: {
        double fan = init->b != 0 ? init->b : fan_in;
        if (!(fan > 0))
            return dk_fail(DK_ERR_ARG, "%s: FAN_IN_UNIFORM needs a positive fan b, got %g", what,
                           init->b);
        double bound = 1.0 / sqrt(fan);
        fill_uniform(p, n, rng, -bound, bound);
        break;
    }
    default:
        return dk_fail(DK_ERR_ARG, "%s: init kind %d is not a dk_init_kind", what, (int)kind);
    }
    return DK_OK;
}
