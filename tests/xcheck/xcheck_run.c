/* tests/xcheck/xcheck_run.c — the dkhost side of the PyTorch cross-check.
 *
 * Runs every case of xcheck_cases.h on deterministic inputs, in f64 or f32,
 * and writes the inputs, the output, the upstream gradient R and each float
 * input's gradient of sum(out * R) to a text file that xcheck.py reads and
 * recomputes with torch. Values are written as C99 hex floats (%a), so the
 * file carries exactly what dkhost computed.
 *
 *   xcheck_run --dtype f64|f32 --out FILE     run every case, write FILE
 *   xcheck_run --coverage                     fail if an op of the op list has no case
 *
 * Without --out the cases still run and every failure (NULL result, backward
 * error, non-finite value) is reported, so the runner alone is a test that
 * needs nothing but the build.
 */
#include "tensor/tensor_impl.h"
#include "xcheck_cases.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { XC_NOGRAD = 1u << 0, XC_STATS = 1u << 1 };

typedef dk_tensor *(*xc_fn)(dk_tensor *const *in);

typedef struct xc_case {
    const char *name;
    dkh_op_id op;
    const char *inputs;
    unsigned flags;
    xc_fn fn;
} xc_case;

/* The float dtype of this run; case expressions read it as DT. */
static dk_dtype DT = DK_DTYPE_F64;

#define IN0 in[0]
#define IN1 in[1]
#define IN2 in[2]
#define IN3 in[3]
#define IN4 in[4]
#define IN5 in[5]
#define XC_FN_(name, op, inputs, flags, expr)                                              \
    static dk_tensor *xc_##name(dk_tensor *const *in)                                     \
    {                                                                                      \
        (void)in;                                                                          \
        return (expr);                                                                     \
    }
XC_CASES(XC_FN_)
#undef XC_FN_

static const xc_case CASES[] = {
#define XC_ROW_(name, op, inputs, flags, expr) {#name, DKH_OP_##op, inputs, flags, xc_##name},
    XC_CASES(XC_ROW_)
#undef XC_ROW_
};
#define N_CASES (sizeof CASES / sizeof *CASES)

/* ---- deterministic inputs ------------------------------------------------------------ */

static uint64_t rng_state;

static double uniform(void)
{
    /* splitmix64: the stream depends only on the seed, never on the platform. */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

/* One input spec: kind letter(s) and shape. Returns the tensor (scope-owned). */
static dk_tensor *make_input(const char *spec, size_t len, bool *is_float)
{
    char kind = 'f';
    int64_t range = 0;
    const char *p = spec, *end = spec + len;
    if (p < end && strchr("pqbij", *p))
        kind = *p++;
    if (kind == 'i' || kind == 'j') {
        range = strtoll(p, (char **)&p, 10);
        if (*p == ':')
            p++;
    }
    int ndim = 0;
    int64_t shape[DK_MAX_DIMS];
    if (p < end && *p == 's') {
        p++;
    } else {
        while (p < end) {
            shape[ndim++] = strtoll(p, (char **)&p, 10);
            if (p < end && *p == ',')
                p++;
        }
    }
    int64_t n = dkh_numel(ndim, shape);
    double *v = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) {
        double u = uniform();
        switch (kind) {
        case 'p': v[i] = 0.5 + 1.5 * u; break;
        case 'q': v[i] = floor(u * 8.0) * 0.5 - 2.0; break;
        case 'b': v[i] = u < 0.5; break;
        case 'i': v[i] = floor(u * (double)range); break;
        case 'j': v[i] = floor(u * 2.0 * (double)range) - (double)range; break;
        default: v[i] = 4.0 * u - 2.0; break;
        }
    }
    dk_dtype dt = kind == 'b' ? DK_DTYPE_BOOL : (kind == 'i' || kind == 'j') ? DK_DTYPE_I64 : DT;
    *is_float = dkh_is_float(dt);
    /* Build in f64 and cast, so f32 inputs are the f64 values rounded once. */
    dk_tensor *t64 = dk_from_data(ndim, shape, DK_DTYPE_F64, v);
    free(v);
    /* Grad mode is off here, so the cast is a leaf. */
    return dt == DK_DTYPE_F64 ? t64 : dk_cast(t64, dt);
}

/* ---- writing -------------------------------------------------------------------------- */

static bool all_finite = true;

static void write_tensor(FILE *f, const char *role, dk_tensor *t)
{
    if (!t) {
        if (f)
            fprintf(f, "T %s none\n", role);
        return;
    }
    int64_t n = dk_tensor_numel(t);
    dk_dtype dt = dk_tensor_dtype(t);
    size_t bytes = (size_t)(n > 0 ? n : 1) * dk_dtype_size(dt);
    char *buf = malloc(bytes);
    if (dk_tensor_to_host(t, buf, bytes) != DK_OK) {
        fprintf(stderr, "xcheck: %s: to_host: %s\n", role, dk_last_error());
        free(buf);
        return;
    }
    if (f) {
        fprintf(f, "T %s %s %d ", role, dk_dtype_name(dt), dk_tensor_ndim(t));
        const int64_t *s = dk_tensor_shape(t);
        if (dk_tensor_ndim(t) == 0)
            fputc('-', f);
        for (int d = 0; d < dk_tensor_ndim(t); d++)
            fprintf(f, "%s%lld", d ? "," : "", (long long)s[d]);
    }
    for (int64_t i = 0; i < n; i++) {
        double v = dkh_load(buf, dt, i);
        if (dkh_is_float(dt) && !isfinite(v))
            all_finite = false;
        if (f) {
            if (dkh_is_float(dt))
                fprintf(f, " %a", v);
            else
                fprintf(f, " %lld", (long long)v);
        }
    }
    if (f)
        fputc('\n', f);
    free(buf);
}

/* Runs one case; returns false on a dkhost failure (reported on stderr). */
static bool run_case(FILE *f, const xc_case *c, uint64_t seed)
{
    rng_state = seed;
    dk_rng_seed(dk_rng_default(), seed);
    bool ok = true;
    dk_scope_begin();
    bool was = dk_grad_set_enabled(false);
    dk_tensor *in[DKH_MAX_IN] = {0};
    bool flt[DKH_MAX_IN] = {0};
    int n_in = 0;
    for (const char *p = c->inputs; *p;) {
        size_t len = strcspn(p, ";");
        in[n_in] = make_input(p, len, &flt[n_in]);
        n_in++;
        p += len;
        if (*p == ';')
            p++;
    }
    dk_grad_set_enabled(was);
    bool grad = !(c->flags & XC_NOGRAD);
    for (int i = 0; i < n_in; i++)
        if (flt[i] && grad && dk_tensor_set_requires_grad(in[i], true) != DK_OK)
            ok = false;
    if (f)
        fprintf(f, "case %s %s\n", c->name, dk_dtype_name(DT));
    char role[16];
    for (int i = 0; i < n_in; i++) {
        snprintf(role, sizeof role, "in%d", i);
        write_tensor(f, role, in[i]);
    }
    all_finite = true;
    dk_tensor *out = c->fn(in);
    if (!out) {
        fprintf(stderr, "xcheck: %s: %s\n", c->name, dk_last_error());
        if (f)
            fprintf(f, "error %s\n", dk_last_error());
        ok = false;
    } else {
        write_tensor(f, "out", out);
        if (grad && dk_tensor_requires_grad(out)) {
            bool w = dk_grad_set_enabled(false);
            int ndim = dk_tensor_ndim(out);
            int64_t n = dk_tensor_numel(out);
            double *v = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
            for (int64_t i = 0; i < n; i++)
                v[i] = 4.0 * uniform() - 2.0;
            dk_tensor *g = dk_from_data(ndim, dk_tensor_shape(out), DK_DTYPE_F64, v);
            free(v);
            if (dk_tensor_dtype(out) != DK_DTYPE_F64)
                g = dk_cast(g, dk_tensor_dtype(out));
            dk_grad_set_enabled(w);
            write_tensor(f, "gout", g);
            if (dk_backward(out, g, false) != DK_OK) {
                fprintf(stderr, "xcheck: %s: backward: %s\n", c->name, dk_last_error());
                if (f)
                    fprintf(f, "error backward: %s\n", dk_last_error());
                ok = false;
            } else {
                for (int i = 0; i < n_in; i++) {
                    if (!flt[i])
                        continue;
                    snprintf(role, sizeof role, "grad%d", i);
                    write_tensor(f, role, dk_tensor_grad(in[i]));
                }
            }
        }
        if (!all_finite && !(c->flags & XC_STATS)) {
            fprintf(stderr, "xcheck: %s: non-finite values\n", c->name);
            ok = false;
        }
    }
    if (f)
        fprintf(f, "end\n");
    dk_scope_end();
    return ok;
}

static int coverage(void)
{
    int missing = 0;
    for (int op = 0; op < DKH_OP_COUNT; op++) {
        bool found = false;
        for (size_t i = 0; i < N_CASES && !found; i++)
            found = (int)CASES[i].op == op;
        if (!found) {
            fprintf(stderr, "xcheck: op %s has no case in tests/xcheck/xcheck_cases.h\n",
                    dkh_op_name((dkh_op_id)op));
            missing++;
        }
    }
    printf("xcheck coverage: %d ops, %zu cases, %d ops without a case\n", (int)DKH_OP_COUNT,
           N_CASES, missing);
    return missing ? 1 : 0;
}

int main(int argc, char **argv)
{
    const char *out = NULL, *only = NULL;
    bool cov = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dtype") && i + 1 < argc) {
            const char *d = argv[++i];
            if (!strcmp(d, "f32"))
                DT = DK_DTYPE_F32;
            else if (!strcmp(d, "f64"))
                DT = DK_DTYPE_F64;
            else {
                fprintf(stderr, "xcheck: --dtype f32|f64, not %s\n", d);
                return 2;
            }
        } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(argv[i], "--case") && i + 1 < argc) {
            only = argv[++i];
        } else if (!strcmp(argv[i], "--coverage")) {
            cov = true;
        } else {
            fprintf(stderr, "usage: xcheck_run [--dtype f64|f32] [--out FILE] [--case NAME] "
                            "[--coverage]\n");
            return 2;
        }
    }
    int rc = cov ? coverage() : 0;
    FILE *f = NULL;
    if (out && !(f = fopen(out, "w"))) {
        perror(out);
        return 1;
    }
    int failed = 0, ran = 0;
    for (size_t i = 0; i < N_CASES; i++) {
        if (only && strcmp(only, CASES[i].name))
            continue;
        ran++;
        /* Inputs depend on the case's name only, so adding a case moves no other. */
        uint64_t seed = 1469598103934665603ull;
        for (const char *p = CASES[i].name; *p; p++)
            seed = (seed ^ (unsigned char)*p) * 1099511628211ull;
        if (!run_case(f, &CASES[i], seed))
            failed++;
    }
    if (f && fclose(f) != 0) {
        perror(out);
        return 1;
    }
    printf("xcheck_run: %d cases in %s, %d failed in dkhost\n", ran, dk_dtype_name(DT), failed);
    return failed || rc ? 1 : 0;
}
