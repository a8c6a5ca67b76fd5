/* core/backends/cpu/elementwise.c — fast f32/f64 elementwise kernels.
 *
 * Each kernel walks rows from the coalescing iterator (cpu.h) in parallel (a
 * long row, e.g. a whole contiguous tensor, cut into pieces so both threads
 * get work) and switches on the op once per piece, so the inner loop is one
 * expression the compiler vectorises when every operand is contiguous in it. <tgmath.h> makes
 * exp, log, ... pick the float or double function from the element type, so
 * one expression serves both dtypes. Other dtypes return false and run on the
 * reference kernel.
 */
#include "cpu.h"

#include <tgmath.h>

#define PAR_IF(it) if ((it).rows * (it).inner >= DKH_CPU_PAR_MIN && (it).items > 1)

/* The inner loop over n elements of row pointers o (T), a, b, c; contiguous
 * when every operand's inner stride is 1. */
#define INNER(n, cont, so, sa, sb, sc, BODY)                                                 \
    do {                                                                                     \
        if (cont) {                                                                          \
            for (int64_t i = 0; i < (n); i++) {                                              \
                const int64_t io = i, ia = i, ib = i, ic = i;                                \
                (void)ia, (void)ib, (void)ic;                                                \
                BODY;                                                                        \
            }                                                                                \
        } else {                                                                             \
            for (int64_t i = 0; i < (n); i++) {                                              \
                const int64_t io = i * (so), ia = i * (sa), ib = i * (sb), ic = i * (sc);    \
                (void)ia, (void)ib, (void)ic;                                                \
                BODY;                                                                        \
            }                                                                                \
        }                                                                                    \
    } while (0)

static inline double sigm(double x)
{
    return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
}

static inline float sigmf(float x)
{
    return x >= 0 ? 1 / (1 + expf(-x)) : expf(x) / (1 + expf(x));
}

#define SIGM(T, x) (sizeof(T) == 4 ? (T)sigmf((float)(x)) : (T)sigm((double)(x)))

/* ---- unary ---------------------------------------------------------------------------- */

#define UNARY_ROW(T)                                                                          \
    static void unary_row_##T(dkh_op_id op, const dkh_args *args, T *o, const T *a, int64_t n,  \
                              int64_t so, int64_t sa)                                          \
    {                                                                                          \
        const T p0 = (T)args->f[0], p1 = (T)args->f[1];                                       \
        const T half = (T)0.5, one = 1, zero = 0, r2 = (T)0.70710678118654752440;              \
        const bool cont = so == 1 && sa == 1;                                                  \
        switch (op) {                                                                          \
        case DKH_OP_NEG: INNER(n, cont, so, sa, 0, 0, o[io] = -a[ia]); break;                 \
        case DKH_OP_ABS: INNER(n, cont, so, sa, 0, 0, o[io] = fabs(a[ia])); break;            \
        case DKH_OP_EXP: INNER(n, cont, so, sa, 0, 0, o[io] = exp(a[ia])); break;             \
        case DKH_OP_LOG: INNER(n, cont, so, sa, 0, 0, o[io] = log(a[ia])); break;             \
        case DKH_OP_SQRT: INNER(n, cont, so, sa, 0, 0, o[io] = sqrt(a[ia])); break;           \
        case DKH_OP_RSQRT: INNER(n, cont, so, sa, 0, 0, o[io] = one / sqrt(a[ia])); break;    \
        case DKH_OP_RELU: INNER(n, cont, so, sa, 0, 0, o[io] = a[ia] <= zero ? zero : a[ia]); break; \
        case DKH_OP_SIGMOID: INNER(n, cont, so, sa, 0, 0, o[io] = SIGM(T, a[ia])); break;     \
        case DKH_OP_TANH: INNER(n, cont, so, sa, 0, 0, o[io] = tanh(a[ia])); break;           \
        case DKH_OP_GELU:                                                                      \
            INNER(n, cont, so, sa, 0, 0, o[io] = half * a[ia] * (one + erf(a[ia] * r2)));      \
            break;                                                                             \
        case DKH_OP_SILU: INNER(n, cont, so, sa, 0, 0, o[io] = a[ia] * SIGM(T, a[ia])); break; \
        case DKH_OP_SOFTPLUS:                                                                  \
            INNER(n, cont, so, sa, 0, 0,                                                       \
                  o[io] = fmax(a[ia], zero) + log1p(exp(-fabs(a[ia]))));                       \
            break;                                                                             \
        case DKH_OP_LEAKY_RELU:                                                                \
            INNER(n, cont, so, sa, 0, 0, o[io] = a[ia] > zero ? a[ia] : p0 * a[ia]);           \
            break;                                                                             \
        case DKH_OP_CLAMP: INNER(n, cont, so, sa, 0, 0, o[io] = fmin(fmax(a[ia], p0), p1)); break; \
        case DKH_OP_POW_SCALAR: INNER(n, cont, so, sa, 0, 0, o[io] = pow(a[ia], p0)); break;  \
        case DKH_OP_AFFINE: INNER(n, cont, so, sa, 0, 0, o[io] = p0 * a[ia] + p1); break;     \
        default: DKH_ASSERT(!"not a unary op");                                                \
        }                                                                                      \
    }

UNARY_ROW(float)
UNARY_ROW(double)

bool dkh_cpu_unary(const dkh_kcall *c)
{
    dk_dtype dt = c->out->dtype;
    if (dt != DK_DTYPE_F32 && dt != DK_DTYPE_F64)
        return false;
    dkh_ew_iter it;
    dkh_ew_init(&it, c);
    int64_t so = it.ndim ? it.st[0][it.ndim - 1] : 1, sa = it.ndim ? it.st[1][it.ndim - 1] : 1;
#pragma omp parallel for schedule(static) PAR_IF(it)
    for (int64_t k = 0; k < it.items; k++) {
        int64_t off[DKH_EW_MAX_OPS];
        int64_t n = dkh_ew_item(&it, k, off);
        if (dt == DK_DTYPE_F32)
            unary_row_float(c->op, c->args, (float *)it.base[0] + off[0],
                            (const float *)it.base[1] + off[1], n, so, sa);
        else
            unary_row_double(c->op, c->args, (double *)it.base[0] + off[0],
                             (const double *)it.base[1] + off[1], n, so, sa);
    }
    return true;
}

/* ---- unary backward: gx = g * f'(x, y) ---------------------------------------------------- */

#define UNARY_BWD_ROW(T)                                                                      \
    static void unary_bwd_row_##T(dkh_op_id op, const dkh_args *args, T *o, const T *a,         \
                                  const T *b, const T *g, int64_t n, int64_t so, int64_t sa,    \
                                  int64_t sb, int64_t sg)                                        \
    {                                                                                          \
        const T p0 = (T)args->f[0], p1 = (T)args->f[1];                                       \
        const T half = (T)0.5, one = 1, zero = 0, r2 = (T)0.70710678118654752440;              \
        const T isq2pi = (T)0.39894228040143267794;                                            \
        const bool cont = so == 1 && sa == 1 && sb == 1 && sg == 1;                            \
        const T *y = b ? b : a; /* y is read only by ops that saved it */                     \
        switch (op) {                                                                          \
        case DKH_OP_NEG: INNER(n, cont, so, sa, sb, sg, o[io] = -g[ic]); break;               \
        case DKH_OP_ABS:                                                                       \
            INNER(n, cont, so, sa, sb, sg,                                                     \
                  o[io] = a[ia] > zero ? g[ic] : a[ia] < zero ? -g[ic] : zero);                \
            break;                                                                             \
        case DKH_OP_EXP: INNER(n, cont, so, sa, sb, sg, o[io] = g[ic] * y[ib]); break;        \
        case DKH_OP_LOG: INNER(n, cont, so, sa, sb, sg, o[io] = g[ic] / a[ia]); break;        \
        case DKH_OP_SQRT: INNER(n, cont, so, sa, sb, sg, o[io] = g[ic] * half / y[ib]); break; \
        case DKH_OP_RSQRT:                                                                     \
            INNER(n, cont, so, sa, sb, sg, o[io] = -half * g[ic] * y[ib] * y[ib] * y[ib]);     \
            break;                                                                             \
        case DKH_OP_RELU: /* g read unconditionally: a plain load, not a masked one */         \
            INNER(n, cont, so, sa, sb, sg, {                                                   \
                const T gv = g[ic];                                                            \
                o[io] = a[ia] <= zero ? zero : gv;                                             \
            });                                                                                \
            break;                                                                             \
        case DKH_OP_SIGMOID:                                                                   \
            INNER(n, cont, so, sa, sb, sg, o[io] = g[ic] * y[ib] * (one - y[ib]));             \
            break;                                                                             \
        case DKH_OP_TANH:                                                                      \
            INNER(n, cont, so, sa, sb, sg, o[io] = g[ic] * (one - y[ib] * y[ib]));             \
            break;                                                                             \
        case DKH_OP_GELU:                                                                      \
            INNER(n, cont, so, sa, sb, sg,                                                     \
                  o[io] = g[ic] * (half * (one + erf(a[ia] * r2)) +                            \
                                   a[ia] * isq2pi * exp(-half * a[ia] * a[ia])));              \
            break;                                                                             \
        case DKH_OP_SILU:                                                                      \
            INNER(n, cont, so, sa, sb, sg, {                                                   \
                T s = SIGM(T, a[ia]);                                                          \
                o[io] = g[ic] * s * (one + a[ia] * (one - s));                                 \
            });                                                                                \
            break;                                                                             \
        case DKH_OP_SOFTPLUS: INNER(n, cont, so, sa, sb, sg, o[io] = g[ic] * SIGM(T, a[ia])); break; \
        case DKH_OP_LEAKY_RELU:                                                                \
            INNER(n, cont, so, sa, sb, sg, o[io] = a[ia] > zero ? g[ic] : p0 * g[ic]);         \
            break;                                                                             \
        case DKH_OP_CLAMP:                                                                     \
            INNER(n, cont, so, sa, sb, sg, {                                                   \
                const T gv = g[ic];                                                            \
                o[io] = (a[ia] >= p0 && a[ia] <= p1) ? gv : zero;                              \
            });                                                                                \
            break;                                                                             \
        case DKH_OP_POW_SCALAR:                                                                \
            INNER(n, cont, so, sa, sb, sg,                                                     \
                  o[io] = p0 == zero ? zero : g[ic] * p0 * pow(a[ia], p0 - one));              \
            break;                                                                             \
        case DKH_OP_AFFINE: INNER(n, cont, so, sa, sb, sg, o[io] = g[ic] * p0); break;        \
        default: DKH_ASSERT(!"not a unary op");                                                \
        }                                                                                      \
        (void)p1;                                                                              \
    }

UNARY_BWD_ROW(float)
UNARY_BWD_ROW(double)

bool dkh_cpu_unary_bwd(const dkh_kcall *c)
{
    dk_dtype dt = c->out->dtype;
    if ((dt != DK_DTYPE_F32 && dt != DK_DTYPE_F64) || c->in[2]->dtype != dt)
        return false;
    dkh_ew_iter it;
    dkh_ew_init(&it, c);
    int L = it.ndim - 1;
    int64_t s[4];
    for (int k = 0; k < 4; k++)
        s[k] = it.ndim ? it.st[k][L] : 1;
    bool has_y = c->in[1] != NULL;
#pragma omp parallel for schedule(static) PAR_IF(it)
    for (int64_t k = 0; k < it.items; k++) {
        int64_t off[DKH_EW_MAX_OPS];
        int64_t n = dkh_ew_item(&it, k, off);
        if (dt == DK_DTYPE_F32)
            unary_bwd_row_float(c->op, c->args, (float *)it.base[0] + off[0],
                                (const float *)it.base[1] + off[1],
                                has_y ? (const float *)it.base[2] + off[2] : NULL,
                                (const float *)it.base[3] + off[3], n, s[0], s[1],
                                has_y ? s[2] : s[1], s[3]);
        else
            unary_bwd_row_double(c->op, c->args, (double *)it.base[0] + off[0],
                                 (const double *)it.base[1] + off[1],
                                 has_y ? (const double *)it.base[2] + off[2] : NULL,
                                 (const double *)it.base[3] + off[3], n, s[0], s[1],
                                 has_y ? s[2] : s[1], s[3]);
    }
    return true;
}

/* ---- binary, comparisons, where ---------------------------------------------------------- */

#define BINARY_ROW(T)                                                                         \
    static void binary_row_##T(dkh_op_id op, T *o, const T *a, const T *b, int64_t n,          \
                               int64_t so, int64_t sa, int64_t sb)                             \
    {                                                                                          \
        const bool cont = so == 1 && sa == 1 && sb == 1;                                       \
        switch (op) {                                                                          \
        case DKH_OP_ADD: INNER(n, cont, so, sa, sb, 0, o[io] = a[ia] + b[ib]); break;         \
        case DKH_OP_SUB: INNER(n, cont, so, sa, sb, 0, o[io] = a[ia] - b[ib]); break;         \
        case DKH_OP_MUL: INNER(n, cont, so, sa, sb, 0, o[io] = a[ia] * b[ib]); break;         \
        case DKH_OP_DIV: INNER(n, cont, so, sa, sb, 0, o[io] = a[ia] / b[ib]); break;         \
        case DKH_OP_POW: INNER(n, cont, so, sa, sb, 0, o[io] = pow(a[ia], b[ib])); break;     \
        case DKH_OP_MAXIMUM:                                                                   \
            INNER(n, cont, so, sa, sb, 0,                                                      \
                  o[io] = (a[ia] != a[ia] || b[ib] != b[ib]) ? a[ia] + b[ib]                   \
                          : a[ia] > b[ib]                    ? a[ia]                           \
                                                             : b[ib]);                         \
            break;                                                                             \
        case DKH_OP_MINIMUM:                                                                   \
            INNER(n, cont, so, sa, sb, 0,                                                      \
                  o[io] = (a[ia] != a[ia] || b[ib] != b[ib]) ? a[ia] + b[ib]                   \
                          : a[ia] < b[ib]                    ? a[ia]                           \
                                                             : b[ib]);                         \
            break;                                                                             \
        default: DKH_ASSERT(!"not a binary op");                                               \
        }                                                                                      \
    }                                                                                          \
    static void compare_row_##T(dkh_op_id op, uint8_t *o, const T *a, const T *b, int64_t n,   \
                                int64_t so, int64_t sa, int64_t sb)                            \
    {                                                                                          \
        const bool cont = so == 1 && sa == 1 && sb == 1;                                       \
        switch (op) {                                                                          \
        case DKH_OP_EQ: INNER(n, cont, so, sa, sb, 0, o[io] = a[ia] == b[ib]); break;         \
        case DKH_OP_NE: INNER(n, cont, so, sa, sb, 0, o[io] = a[ia] != b[ib]); break;         \
        case DKH_OP_LT: INNER(n, cont, so, sa, sb, 0, o[io] = a[ia] < b[ib]); break;          \
        case DKH_OP_LE: INNER(n, cont, so, sa, sb, 0, o[io] = a[ia] <= b[ib]); break;         \
        case DKH_OP_GT: INNER(n, cont, so, sa, sb, 0, o[io] = a[ia] > b[ib]); break;          \
        case DKH_OP_GE: INNER(n, cont, so, sa, sb, 0, o[io] = a[ia] >= b[ib]); break;         \
        default: DKH_ASSERT(!"not a comparison");                                              \
        }                                                                                      \
    }                                                                                          \
    static void where_row_##T(T *o, const uint8_t *c, const T *a, const T *b, int64_t n,       \
                              int64_t so, int64_t sc, int64_t sa, int64_t sb)                  \
    {                                                                                          \
        const bool cont = so == 1 && sa == 1 && sb == 1 && sc == 1;                            \
        INNER(n, cont, so, sa, sb, sc, o[io] = c[ic] ? a[ia] : b[ib]);                         \
    }

BINARY_ROW(float)
BINARY_ROW(double)

bool dkh_cpu_binary(const dkh_kcall *c)
{
    bool where = c->op == DKH_OP_WHERE;
    dk_dtype dt = c->in[where ? 1 : 0]->dtype;
    if (dt != DK_DTYPE_F32 && dt != DK_DTYPE_F64)
        return false;
    bool cmp = c->out->dtype == DK_DTYPE_BOOL;
    dkh_ew_iter it;
    dkh_ew_init(&it, c);
    int L = it.ndim - 1;
    int64_t s[4];
    for (int k = 0; k < it.nops; k++)
        s[k] = it.ndim ? it.st[k][L] : 1;
    bool f32 = dt == DK_DTYPE_F32;
#pragma omp parallel for schedule(static) PAR_IF(it)
    for (int64_t k = 0; k < it.items; k++) {
        int64_t off[DKH_EW_MAX_OPS];
        int64_t n = dkh_ew_item(&it, k, off);
        if (where) {
            const uint8_t *cd = (const uint8_t *)it.base[1] + off[1];
            if (f32)
                where_row_float((float *)it.base[0] + off[0], cd, (const float *)it.base[2] + off[2],
                                (const float *)it.base[3] + off[3], n, s[0], s[1], s[2], s[3]);
            else
                where_row_double((double *)it.base[0] + off[0], cd,
                                 (const double *)it.base[2] + off[2],
                                 (const double *)it.base[3] + off[3], n, s[0], s[1], s[2],
                                 s[3]);
        } else if (cmp) {
            uint8_t *o = (uint8_t *)it.base[0] + off[0];
            if (f32)
                compare_row_float(c->op, o, (const float *)it.base[1] + off[1],
                                  (const float *)it.base[2] + off[2], n, s[0], s[1], s[2]);
            else
                compare_row_double(c->op, o, (const double *)it.base[1] + off[1],
                                   (const double *)it.base[2] + off[2], n, s[0], s[1], s[2]);
        } else if (f32) {
            binary_row_float(c->op, (float *)it.base[0] + off[0], (const float *)it.base[1] + off[1],
                             (const float *)it.base[2] + off[2], n, s[0], s[1], s[2]);
        } else {
            binary_row_double(c->op, (double *)it.base[0] + off[0],
                              (const double *)it.base[1] + off[1],
                              (const double *)it.base[2] + off[2], n, s[0], s[1], s[2]);
        }
    }
    return true;
}

/* ---- copy, cast, fill --------------------------------------------------------------------- */

#define COPY_ROW(TO, TI)                                                                      \
    static void copy_row_##TO##_##TI(TO *o, const TI *a, int64_t n, int64_t so, int64_t sa)    \
    {                                                                                          \
        const bool cont = so == 1 && sa == 1;                                                  \
        INNER(n, cont, so, sa, 0, 0, o[io] = (TO)a[ia]);                                       \
    }

COPY_ROW(uint8_t, uint8_t)
COPY_ROW(uint16_t, uint16_t)
COPY_ROW(uint32_t, uint32_t)
COPY_ROW(uint64_t, uint64_t)
COPY_ROW(float, double)
COPY_ROW(double, float)

/* ---- copies in 2-d tiles ----
 * A strided view (x[:, :, ::2, ::2]) or a transposed one (channels-last made
 * contiguous) coalesces into many short or strided rows, and finding each
 * row's offsets costs as much as copying it. These copies go by planes over
 * two dims instead: the inner dim L and a dim T, the input's unit-stride dim
 * when L is not (so a transpose reads and writes whole cache lines within a
 * tile), else the dim just outside L. A work item is a band of TILE_T
 * indices of T in one plane, walked in TILE_L-long pieces of L, so a
 * transposing tile (TILE_T x TILE_L elements of each operand) stays in L1. */
enum { TILE_T = 32, TILE_L = 128 };

typedef struct tile_plan {
    int T, L;
    int64_t bands, items; /* bands of T per plane; planes * bands */
} tile_plan;

/* Chooses the plane; false when the rows are long and unit-stride, where
 * the row walk is already as good. */
static bool tile_plan_init(const dkh_ew_iter *it, tile_plan *tp)
{
    int L = it->ndim - 1;
    if (it->ndim < 2 || it->rows < 2)
        return false;
    bool unit = it->st[0][L] == 1 && it->st[1][L] == 1;
    if (unit && it->inner >= 256)
        return false;
    tp->L = L;
    tp->T = L - 1;
    if (it->st[1][L] != 1)
        for (int d = 0; d < L; d++)
            if (it->st[1][d] == 1)
                tp->T = d;
    tp->bands = (it->shape[tp->T] + TILE_T - 1) / TILE_T;
    tp->items = it->rows / it->shape[tp->T] * tp->bands;
    return true;
}

/* Offsets of item k's first element (band start) for both operands; *t0,
 * *t1: its range along T. */
static void tile_item(const dkh_ew_iter *it, const tile_plan *tp, int64_t k, int64_t *off,
                      int64_t *t0, int64_t *t1)
{
    int64_t band = k % tp->bands, q = k / tp->bands;
    *t0 = band * TILE_T;
    *t1 = *t0 + TILE_T < it->shape[tp->T] ? *t0 + TILE_T : it->shape[tp->T];
    off[0] = *t0 * it->st[0][tp->T];
    off[1] = *t0 * it->st[1][tp->T];
    for (int d = it->ndim - 1; d >= 0; d--) {
        if (d == tp->T || d == tp->L)
            continue;
        int64_t i = q % it->shape[d];
        q /= it->shape[d];
        off[0] += i * it->st[0][d];
        off[1] += i * it->st[1][d];
    }
}

#define COPY_TILE(TO, TI)                                                                     \
    static void copy_tile_##TO##_##TI(TO *o, const TI *a, int64_t nt, int64_t nl, int64_t ot, \
                                      int64_t at, int64_t ol, int64_t al)                       \
    {                                                                                          \
        for (int64_t l0 = 0; l0 < nl; l0 += TILE_L) {                                          \
            int64_t n = nl - l0 < TILE_L ? nl - l0 : TILE_L;                                   \
            for (int64_t t = 0; t < nt; t++) {                                                 \
                TO *restrict op = o + t * ot + l0 * ol;                                        \
                const TI *restrict ap = a + t * at + l0 * al;                                  \
                if (ol == 1 && al == 1)                                                        \
                    for (int64_t i = 0; i < n; i++)                                            \
                        op[i] = (TO)ap[i];                                                     \
                else if (ol == 1 && al == 2)                                                   \
                    for (int64_t i = 0; i < n; i++)                                            \
                        op[i] = (TO)ap[2 * i];                                                 \
                else if (ol == 1)                                                              \
                    for (int64_t i = 0; i < n; i++)                                            \
                        op[i] = (TO)ap[i * al];                                                \
                else                                                                           \
                    for (int64_t i = 0; i < n; i++)                                            \
                        op[i * ol] = (TO)ap[i * al];                                           \
            }                                                                                  \
        }                                                                                      \
    }

COPY_TILE(uint8_t, uint8_t)
COPY_TILE(uint16_t, uint16_t)
COPY_TILE(uint32_t, uint32_t)
COPY_TILE(uint64_t, uint64_t)
COPY_TILE(float, double)
COPY_TILE(double, float)

static void copy_tiled(const dkh_ew_iter *it, const tile_plan *tp, int kind)
{
    int64_t ot = it->st[0][tp->T], at = it->st[1][tp->T];
    int64_t ol = it->st[0][tp->L], al = it->st[1][tp->L], nl = it->shape[tp->L];
#pragma omp parallel for schedule(static) if (it->rows * it->inner >= DKH_CPU_PAR_MIN && tp->items > 1)
    for (int64_t k = 0; k < tp->items; k++) {
        int64_t off[2], t0, t1;
        tile_item(it, tp, k, off, &t0, &t1);
        char *o = it->base[0] + off[0] * (int64_t)it->esize[0];
        const char *a = it->base[1] + off[1] * (int64_t)it->esize[1];
        int64_t nt = t1 - t0;
        switch (kind) {
        case 1: copy_tile_uint8_t_uint8_t((uint8_t *)o, (const uint8_t *)a, nt, nl, ot, at, ol, al); break;
        case 2: copy_tile_uint16_t_uint16_t((uint16_t *)o, (const uint16_t *)a, nt, nl, ot, at, ol, al); break;
        case 4: copy_tile_uint32_t_uint32_t((uint32_t *)o, (const uint32_t *)a, nt, nl, ot, at, ol, al); break;
        case 8: copy_tile_uint64_t_uint64_t((uint64_t *)o, (const uint64_t *)a, nt, nl, ot, at, ol, al); break;
        case 3: copy_tile_float_double((float *)o, (const double *)a, nt, nl, ot, at, ol, al); break;
        default: copy_tile_double_float((double *)o, (const float *)a, nt, nl, ot, at, ol, al); break;
        }
    }
}

/* Same-dtype copies move bits of the element's width (any dtype); casts only
 * between f32 and f64. */
bool dkh_cpu_copy(const dkh_kcall *c)
{
    dk_dtype to = c->out->dtype, from = c->in[0]->dtype;
    int kind;
    if (to == from)
        kind = (int)dk_dtype_size(to);
    else if (to == DK_DTYPE_F32 && from == DK_DTYPE_F64)
        kind = 3;
    else if (to == DK_DTYPE_F64 && from == DK_DTYPE_F32)
        kind = 5;
    else
        return false;
    dkh_ew_iter it;
    dkh_ew_init(&it, c);
    tile_plan tp;
    if (tile_plan_init(&it, &tp)) {
        copy_tiled(&it, &tp, kind);
        return true;
    }
    int L = it.ndim - 1;
    int64_t so = it.ndim ? it.st[0][L] : 1, sa = it.ndim ? it.st[1][L] : 1;
#pragma omp parallel for schedule(static) PAR_IF(it)
    for (int64_t k = 0; k < it.items; k++) {
        int64_t off[DKH_EW_MAX_OPS];
        int64_t n = dkh_ew_item(&it, k, off);
        char *o = it.base[0] + off[0] * (int64_t)it.esize[0];
        const char *a = it.base[1] + off[1] * (int64_t)it.esize[1];
        switch (kind) {
        case 1: copy_row_uint8_t_uint8_t((uint8_t *)o, (const uint8_t *)a, n, so, sa); break;
        case 2: copy_row_uint16_t_uint16_t((uint16_t *)o, (const uint16_t *)a, n, so, sa); break;
        case 4: copy_row_uint32_t_uint32_t((uint32_t *)o, (const uint32_t *)a, n, so, sa); break;
        case 8: copy_row_uint64_t_uint64_t((uint64_t *)o, (const uint64_t *)a, n, so, sa); break;
        case 3: copy_row_float_double((float *)o, (const double *)a, n, so, sa); break;
        default: copy_row_double_float((double *)o, (const float *)a, n, so, sa); break;
        }
    }
    return true;
}

bool dkh_cpu_full(const dkh_kcall *c)
{
    dk_tensor *o = c->out;
    if (!dk_tensor_is_contiguous(o) || (o->dtype != DK_DTYPE_F32 && o->dtype != DK_DTYPE_F64))
        return false;
    int64_t n = dkh_numel(o->ndim, o->shape);
    double v = c->args->f[0];
    if (o->dtype == DK_DTYPE_F32) {
        float *p = (float *)dkh_base(o), fv = (float)v;
#pragma omp parallel for schedule(static) if (n >= DKH_CPU_PAR_MIN)
        for (int64_t i = 0; i < n; i++)
            p[i] = fv;
    } else {
        double *p = (double *)dkh_base(o);
#pragma omp parallel for schedule(static) if (n >= DKH_CPU_PAR_MIN)
        for (int64_t i = 0; i < n; i++)
            p[i] = v;
    }
    return true;
}
