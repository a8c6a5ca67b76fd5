/* tests/xcheck/optim_run.c — the dkhost side of the optimizer and schedule
 * cross-check with torch.optim (xcheck_optim.py is the torch side).
 *
 * Optimizer cases run the optimizer wrapper for a few steps on parameters
 * and gradients drawn from a fixed stream, and write the initial values,
 * every step's gradients, the final values and (when clipping by norm) each
 * step's gradient norm. Schedule cases write the learning rate or momentum
 * of every iteration of a short run. Values are C99 hex floats (%a), one
 * line per array: "<case> <field> <count> <values...>".
 *
 *   optim_run --out FILE     run every case, write FILE
 *   optim_run                run every case, check they build and stay finite
 */
#include "cfg/cfg.h"
#include "optim/optim.h"
#include "plugin/registry.h"
#include "runner/config_schema.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- cases -------------------------------------------------------------------------- */

enum { STEPS = 5 };

typedef struct optim_case {
    const char *name;
    const char *wrapper; /* the optim_wrapper map */
    const double *beta1; /* per step (set as the momentum), or NULL */
} optim_case;

static const double beta1_steps[STEPS] = {0.95, 0.9, 0.87, 0.85, 0.9};

static const optim_case OPTIM_CASES[] = {
    {"sgd", "{optimizer: {type: SGD, lr: 0.1}}", NULL},
    {"sgd_wd", "{optimizer: {type: SGD, lr: 0.1, weight_decay: 0.01}}", NULL},
    {"sgd_momentum",
     "{optimizer: {type: SGD, lr: 0.05, momentum: 0.9, dampening: 0.1, weight_decay: 0.001}}",
     NULL},
    {"sgd_nesterov",
     "{optimizer: {type: SGD, lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 0.01}}", NULL},
    {"adam", "{optimizer: {type: Adam, lr: 0.01, weight_decay: 0.05}}", NULL},
    {"adam_amsgrad", "{optimizer: {type: Adam, lr: 0.01, amsgrad: true}}", NULL},
    {"adamw",
     "{optimizer: {type: AdamW, lr: 0.003, betas: [0.85, 0.98], eps: 1.0e-6, weight_decay: 0.1}}",
     NULL},
    {"adamw_amsgrad", "{optimizer: {type: AdamW, lr: 0.003, amsgrad: true, weight_decay: 0.5}}",
     NULL},
    {"adamw_beta1_schedule", "{optimizer: {type: AdamW, lr: 0.002, betas: [0.95, 0.99]}}",
     beta1_steps},
    {"sgd_clip_norm", "{optimizer: {type: SGD, lr: 0.1, momentum: 0.9}, clip_grad: {max_norm: 2}}",
     NULL},
    {"sgd_clip_inf",
     "{optimizer: {type: SGD, lr: 0.1}, clip_grad: {max_norm: 0.05, norm_type: .inf}}", NULL},
    {"adamw_clip_value", "{optimizer: {type: AdamW, lr: 0.01}, clip_grad: {clip_value: 0.1}}",
     NULL},
};

typedef struct sched_case {
    const char *name;
    const char *list; /* the param_scheduler list */
    int64_t max_epochs, ipe;
    dkh_sched_param which;
    double base;
} sched_case;

static const sched_case SCHED_CASES[] = {
    {"warmup_multistep",
     "[{type: LinearLR, start_factor: 0.001, by_epoch: false, end: 500},"
     " {type: MultiStepLR, milestones: [8, 11], gamma: 0.1}]",
     12, 100, DKH_SCHED_LR, 0.02},
    {"warmup_cosine",
     "[{type: LinearLR, start_factor: 0.01, by_epoch: false, end: 50},"
     " {type: CosineAnnealingLR, T_max: 20}]",
     20, 30, DKH_SCHED_LR, 0.1},
    {"cosine_eta_min", "[{type: CosineAnnealingLR, eta_min: 0.001}]", 10, 5, DKH_SCHED_LR, 0.1},
    {"warmup_then_cosine_iter",
     "[{type: LinearLR, start_factor: 0.1, by_epoch: false, end: 100},"
     " {type: CosineAnnealingLR, by_epoch: false, begin: 100, end: 1000, eta_min: 0.0001}]",
     10, 100, DKH_SCHED_LR, 0.1},
    {"step", "[{type: StepLR, step_size: 3, gamma: 0.5}]", 12, 4, DKH_SCHED_LR, 0.1},
    {"exponential", "[{type: ExponentialLR, gamma: 0.8}]", 10, 4, DKH_SCHED_LR, 0.1},
    {"constant", "[{type: ConstantLR, factor: 0.25, end: 5}]", 10, 4, DKH_SCHED_LR, 0.1},
    {"poly", "[{type: PolyLR, power: 0.9, by_epoch: false}]", 5, 20, DKH_SCHED_LR, 0.1},
    {"onecycle", "[{type: OneCycleLR, eta_max: 0.3, by_epoch: false}]", 5, 20, DKH_SCHED_LR, 0.1},
    {"linear_multistep_converted",
     "[{type: LinearLR, start_factor: 0.25, end: 2, convert_to_iter_based: true},"
     " {type: MultiStepLR, milestones: [3], convert_to_iter_based: true}]",
     5, 7, DKH_SCHED_LR, 0.1},
    {"bevfusion_momentum",
     "[{type: CosineAnnealingMomentum, eta_min: 0.8947368421052632, begin: 0, end: 2.4,"
     "  convert_to_iter_based: true},"
     " {type: CosineAnnealingMomentum, eta_min: 1, begin: 2.4, end: 6,"
     "  convert_to_iter_based: true}]",
     6, 10, DKH_SCHED_MOMENTUM, 0.95},
};

#define N_OPTIM (sizeof OPTIM_CASES / sizeof OPTIM_CASES[0])
#define N_SCHED (sizeof SCHED_CASES / sizeof SCHED_CASES[0])

/* ---- helpers -------------------------------------------------------------------------- */

static uint64_t rng_state;

static double uniform(void)
{
    /* splitmix64: the stream depends only on the seed. */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

static bool failed;

static void fail(const char *what, const char *name)
{
    fprintf(stderr, "optim_run: %s: %s: %s\n", name, what, dk_last_error());
    failed = true;
}

static void write_floats(FILE *f, const char *name, const char *field, const float *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i])) {
            fprintf(stderr, "optim_run: %s %s: non-finite value\n", name, field);
            failed = true;
            break;
        }
    if (!f)
        return;
    fprintf(f, "%s %s %lld", name, field, (long long)n);
    for (int64_t i = 0; i < n; i++)
        fprintf(f, " %a", (double)v[i]);
    fputc('\n', f);
}

static void write_doubles(FILE *f, const char *name, const char *field, const double *v, int64_t n)
{
    if (!f)
        return;
    fprintf(f, "%s %s %lld", name, field, (long long)n);
    for (int64_t i = 0; i < n; i++)
        fprintf(f, " %a", v[i]);
    fputc('\n', f);
}

/* Validates "key: text" against the top-level schema entry key. */
static dk_cfg *validated(const char *key, const char *text)
{
    size_t n;
    const dk_param *all = dkh_config_schema(&n), *entry = NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(all[i].name, key) == 0)
            entry = &all[i];
    char *yaml = dkh_asprintf("%s: %s\n", key, text);
    dk_cfg *c = NULL;
    dk_status s = dkh_cfg_parse(yaml, "case.yaml", &c);
    free(yaml);
    if (s == DK_OK)
        s = dkh_cfg_validate(c, entry, 1, dkh_registry_current());
    if (s != DK_OK) {
        dkh_cfg_free(c);
        return NULL;
    }
    return c;
}

/* ---- running -------------------------------------------------------------------------- */

static void run_optim(FILE *f, const optim_case *c)
{
    static const int64_t shapes[3][2] = {{37, 1}, {129, 65}, {70001, 1}};
    static const int ndims[3] = {1, 2, 1};
    static const char *const names[3] = {"a.weight", "b.weight", "c.weight"};
    dk_tensor *p[3];
    int64_t numel[3];
    rng_state = 12345;
    for (int k = 0; k < 3; k++) {
        numel[k] = shapes[k][0] * shapes[k][1];
        float *v = malloc((size_t)numel[k] * sizeof *v);
        for (int64_t i = 0; i < numel[k]; i++)
            v[i] = (float)(2 * uniform() - 1);
        p[k] = dk_from_data(ndims[k], shapes[k], DK_DTYPE_F32, v);
        if (dk_tensor_set_requires_grad(p[k], true) != DK_OK)
            fail("requires_grad", c->name);
        char field[16];
        snprintf(field, sizeof field, "init%d", k);
        write_floats(f, c->name, field, v, numel[k]);
        free(v);
    }
    dk_cfg *root = validated("optim_wrapper", c->wrapper);
    dk_status s = DK_OK;
    dkh_optim *o =
        root ? dkh_optim_new_params(dk_cfg_get(root, "optim_wrapper"), names, p, 3, &s) : NULL;
    dkh_cfg_free(root);
    if (!o) {
        fail("building the wrapper", c->name);
        goto out;
    }
    double norms[STEPS];
    bool has_norm = false;
    for (int step = 0; step < STEPS; step++) {
        if (c->beta1)
            dkh_optim_set_values(o, 0.002, c->beta1[step]);
        dk_scope_begin();
        dk_tensor *loss = NULL;
        for (int k = 0; k < 3; k++) {
            float *g = malloc((size_t)numel[k] * sizeof *g);
            /* Gradients of mixed scale, so clipping bites on some steps only. */
            double scale = step % 2 ? 0.01 : 1.0;
            for (int64_t i = 0; i < numel[k]; i++)
                g[i] = (float)(scale * (2 * uniform() - 1));
            char field[24];
            snprintf(field, sizeof field, "grad%d.%d", step, k);
            write_floats(f, c->name, field, g, numel[k]);
            dk_tensor *gt = dk_from_data(ndims[k], shapes[k], DK_DTYPE_F32, g);
            free(g);
            dk_tensor *term = dk_sum(dk_mul(p[k], gt), NULL, 0, false);
            loss = loss ? dk_add(loss, term) : term;
        }
        if (dk_backward(loss, NULL, false) != DK_OK)
            fail("backward", c->name);
        dk_scope_end();
        dkh_optim_result res;
        if (dkh_optim_step(o, &res) != DK_OK || !res.updated)
            fail("step", c->name);
        norms[step] = res.grad_norm;
        has_norm = res.has_grad_norm;
    }
    for (int k = 0; k < 3; k++) {
        char field[16];
        snprintf(field, sizeof field, "final%d", k);
        write_floats(f, c->name, field, dk_tensor_data(p[k]), numel[k]);
    }
    if (has_norm)
        write_doubles(f, c->name, "grad_norm", norms, STEPS);
out:
    dkh_optim_free(o);
    for (int k = 0; k < 3; k++)
        dk_tensor_release(p[k]);
}

static void run_sched(FILE *f, const sched_case *c)
{
    dk_cfg *root = validated("param_scheduler", c->list);
    int64_t total = c->max_epochs * c->ipe;
    dk_status s = DK_OK;
    dkh_sched *sc =
        root ? dkh_sched_new(dk_cfg_get(root, "param_scheduler"), c->max_epochs, total, c->ipe, &s)
             : NULL;
    dkh_cfg_free(root);
    if (!sc) {
        fail("building the schedule", c->name);
        return;
    }
    double *v = malloc((size_t)total * sizeof *v);
    for (int64_t it = 0; it < total; it++) {
        v[it] = dkh_sched_value(sc, c->which, c->base, it / c->ipe, it);
        if (!isfinite(v[it])) {
            fprintf(stderr, "optim_run: %s: non-finite value at %lld\n", c->name, (long long)it);
            failed = true;
        }
    }
    write_doubles(f, c->name, "values", v, total);
    free(v);
    dkh_sched_free(sc);
}

int main(int argc, char **argv)
{
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else {
            fprintf(stderr, "usage: optim_run [--out FILE]\n");
            return 2;
        }
    }
    FILE *f = NULL;
    if (out && !(f = fopen(out, "w"))) {
        perror(out);
        return 1;
    }
    dkh_registry *r = dkh_registry_new();
    dkh_registry_set_current(r);
    if (dkh_optim_register_builtins(r) != DK_OK)
        fail("registering", "builtins");
    for (size_t i = 0; i < N_OPTIM; i++)
        run_optim(f, &OPTIM_CASES[i]);
    for (size_t i = 0; i < N_SCHED; i++)
        run_sched(f, &SCHED_CASES[i]);
    dkh_registry_set_current(NULL);
    dkh_registry_free(r);
    if (f && fclose(f) != 0) {
        perror(out);
        return 1;
    }
    printf("optim_run: %zu optimizer and %zu schedule cases%s\n", N_OPTIM, N_SCHED,
           failed ? ": FAILED" : "");
    return failed ? 1 : 0;
}
