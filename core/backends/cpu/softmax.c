/* core/backends/cpu/softmax.c — fast f32/f64 softmax and log_softmax over a
 * contiguous last dim (the logits case); other layouts use the reference.
 * Rows are independent and split across threads; each is three passes (max,
 * sum of exponentials, write) with the sum in double. One thread owns a row,
 * so its sum has a fixed order whatever the thread count (deterministic mode
 * needs nothing more here).
 */
#include "cpu.h"

#include <math.h>

#define SOFTMAX_ROW(T)                                                                        \
    static void softmax_row_##T(bool log_, const T *x, T *y, int64_t n)                       \
    {                                                                                          \
        double mx = -INFINITY, sum = 0;                                                        \
        for (int64_t k = 0; k < n; k++)                                                        \
            mx = x[k] > mx || isnan(x[k]) ? x[k] : mx;                                         \
        for (int64_t k = 0; k < n; k++)                                                        \
            sum += exp((double)x[k] - mx);                                                     \
        double ls = log(sum), inv = 1 / sum;                                                   \
        for (int64_t k = 0; k < n; k++)                                                        \
            y[k] = log_ ? (T)((double)x[k] - mx - ls) : (T)(exp((double)x[k] - mx) * inv);     \
    }

SOFTMAX_ROW(float)
SOFTMAX_ROW(double)

bool dkh_cpu_softmax(const dkh_kcall *c)
{
    const dk_tensor *x = c->in[0];
    dk_dtype dt = x->dtype;
    if ((dt != DK_DTYPE_F32 && dt != DK_DTYPE_F64) || x->ndim == 0 ||
        c->args->i[0] != x->ndim - 1 || !dk_tensor_is_contiguous(x) ||
        !dk_tensor_is_contiguous(c->out))
        return false;
    int64_t n = x->shape[x->ndim - 1], rows = dkh_numel(x->ndim - 1, x->shape);
    bool log_ = c->op == DKH_OP_LOG_SOFTMAX;
    const char *xb = dkh_base(x);
    char *yb = dkh_base(c->out);
#pragma omp parallel for schedule(static) if (rows * n >= DKH_CPU_PAR_MIN && rows > 1)
    for (int64_t r = 0; r < rows; r++) {
        if (dt == DK_DTYPE_F32)
            softmax_row_float(log_, (const float *)xb + r * n, (float *)yb + r * n, n);
        else
            softmax_row_double(log_, (const double *)xb + r * n, (double *)yb + r * n, n);
    }
    return true;
}
