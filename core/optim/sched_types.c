/* core/optim/sched_types.c — the schedule types (kind lr_scheduler):
 * mmengine's LR schedulers, their *Momentum twins, and mmcv's cyclic
 * schedule (BEVFusion's momentum cycling).
 *
 * Each is a closed form value(in, base, t, span): `in` is what the entries
 * before it made of the value at this step, `base` the optimizer's own
 * value, t the step within [begin, end) and span = end - begin. mmengine
 * defines its schedules recursively (each step multiplies the current
 * value); these are the same sequences written directly, with mmengine's
 * counting: a schedule of span steps reaches its last value at t = span - 1,
 * the last step inside [begin, end) (LinearLR's total_iters = end - begin - 1).
 *
 *   LinearLR         in * (start + (end - start) * min(t, T) / T),  T = span - 1
 *   ConstantLR       in * factor while t < span - 1 (and always at t = 0), then in
 *   StepLR           in * gamma^floor(t / step_size)
 *   MultiStepLR      in * gamma^(number of milestones <= t)
 *   ExponentialLR    in * gamma^t
 *   CosineAnnealingLR  eta_min + (in - eta_min) (1 + cos(pi t / T_max)) / 2,
 *                    T_max = span by default, eta_min = eta_min_ratio * base when given
 *   PolyLR           eta_min + (in - eta_min) (1 - t / T)^power,  T = span - 1
 *   OneCycleLR       1cycle from eta_max / div_factor up to eta_max and down to
 *                    that / final_div_factor (ignores in and base, as mmengine)
 *   CyclicLR         mmcv's cyclic policy relative to in: up to in * target_ratio[0]
 *                    over step_ratio_up of each cycle, then to in * target_ratio[1]
 *
 * The *Momentum types are the same functions applied to the momentum (SGD's
 * momentum, the Adam family's beta1); sched.c tells them apart by name.
 */
#include "optim_impl.h"

#include <math.h>
#include <string.h>

#define PI 3.14159265358979323846

/* ---- shared pieces --------------------------------------------------------------- */

static void sched_destroy(void *self)
{
    dk_free(self);
}

/* A copy of the state in host memory, the way every create here ends. */
static dk_status keep(const void *state, size_t size, const char *type, void **self)
{
    void *p = dk_malloc(size);
    if (!p)
        return dk_fail(DK_ERR_NOMEM, "%s: out of memory", type);
    memcpy(p, state, size);
    *self = p;
    return DK_OK;
}

static double anneal(bool cosine, double start, double end, double pct)
{
    if (cosine)
        return end + (start - end) / 2.0 * (cos(PI * pct) + 1);
    return (end - start) * pct + start;
}

static dk_status read_anneal(const dk_cfg *cfg, bool *cosine)
{
    const char *s = NULL;
    DK_TRY(dk_cfg_get_str(cfg, "anneal_strategy", &s));
    *cosine = strcmp(s, "cos") == 0;
    return DK_OK;
}

/* The parameters every schedule type has, read by sched.c. */
#define COMMON_PARAMS                                                                          \
    {.name = "begin", .type = DK_PARAM_FLOAT, .def = "0", .min = "0",                          \
     .doc = "first step it acts on (an epoch, or an iteration when by_epoch is false)"},      \
    {.name = "end", .type = DK_PARAM_FLOAT, .flags = DK_PARAM_NULLABLE, .min = "0",            \
     .doc = "step it stops at, exclusive (its last value holds); null = end of training"},    \
    {.name = "by_epoch", .type = DK_PARAM_BOOL, .def = "true",                                 \
     .doc = "count begin, end and durations in epochs (true) or iterations"},                  \
    {.name = "convert_to_iter_based", .type = DK_PARAM_BOOL, .def = "false",                   \
     .doc = "evaluate an epoch-based schedule every iteration (epochs x iterations per epoch)"}

/* ---- LinearLR ---------------------------------------------------------------------- */

typedef struct linear {
    double start, end;
} linear;

static dk_status linear_create(const dk_cfg *cfg, void **self)
{
    DK_TRY(dkh_sched_check_common(cfg));
    linear l;
    DK_TRY(dk_cfg_get_float(cfg, "start_factor", &l.start));
    DK_TRY(dk_cfg_get_float(cfg, "end_factor", &l.end));
    return keep(&l, sizeof l, "LinearLR", self);
}

static double linear_value(const void *self, double in, double base, int64_t t, int64_t span)
{
    const linear *l = self;
    int64_t total = span - 1;
    if (total <= 0)
        return in * l->start;
    return in * (l->start + (l->end - l->start) * (double)(t < total ? t : total) / (double)total);
}

static const dk_param linear_params[] = {
    {.name = "start_factor", .type = DK_PARAM_FLOAT, .def = "0.3333333333333333", .min = "0",
     .max = "1", .doc = "multiplier at the first step"},
    {.name = "end_factor", .type = DK_PARAM_FLOAT, .def = "1.0", .min = "0", .max = "1",
     .doc = "multiplier at the last step (end - 1) and after"},
    COMMON_PARAMS,
};

/* ---- ConstantLR -------------------------------------------------------------------- */

typedef struct constant {
    double factor;
} constant;

static dk_status constant_create(const dk_cfg *cfg, void **self)
{
    DK_TRY(dkh_sched_check_common(cfg));
    constant c;
    DK_TRY(dk_cfg_get_float(cfg, "factor", &c.factor));
    return keep(&c, sizeof c, "ConstantLR", self);
}

static double constant_value(const void *self, double in, double base, int64_t t, int64_t span)
{
    const constant *c = self;
    /* mmengine restores the value at its last step; a one-step schedule
     * never gets there and keeps the factor. */
    return t == 0 || t < span - 1 ? in * c->factor : in;
}

static const dk_param constant_params[] = {
    {.name = "factor", .type = DK_PARAM_FLOAT, .def = "0.3333333333333333", .min = "0",
     .max = "1", .doc = "multiplier until the last step"},
    COMMON_PARAMS,
};

/* ---- StepLR ------------------------------------------------------------------------ */

typedef struct step {
    int64_t step_size;
    double gamma;
} step;

static dk_status step_create(const dk_cfg *cfg, void **self)
{
    DK_TRY(dkh_sched_check_common(cfg));
    step s;
    DK_TRY(dk_cfg_get_int(cfg, "step_size", &s.step_size));
    DK_TRY(dk_cfg_get_float(cfg, "gamma", &s.gamma));
    if (s.step_size < 1)
        return dkh_optim_cfg_fail(dk_cfg_get(cfg, "step_size"), "must be >= 1, got %lld",
                                  (long long)s.step_size);
    return keep(&s, sizeof s, "StepLR", self);
}

static double step_value(const void *self, double in, double base, int64_t t, int64_t span)
{
    const step *s = self;
    return in * pow(s->gamma, (double)(t / s->step_size));
}

static const dk_param step_params[] = {
    {.name = "step_size", .type = DK_PARAM_INT, .flags = DK_PARAM_REQUIRED, .min = "1",
     .doc = "steps between decays"},
    {.name = "gamma", .type = DK_PARAM_FLOAT, .def = "0.1", .min = "0",
     .doc = "multiplier at each decay"},
    COMMON_PARAMS,
};

/* ---- MultiStepLR ------------------------------------------------------------------- */

enum { MAX_MILESTONES = 64 };

typedef struct multistep {
    int64_t milestones[MAX_MILESTONES];
    size_t n;
    double gamma;
} multistep;

static dk_status multistep_create(const dk_cfg *cfg, void **self)
{
    DK_TRY(dkh_sched_check_common(cfg));
    multistep m = {0};
    DK_TRY(dk_cfg_get_float(cfg, "gamma", &m.gamma));
    const dk_cfg *list = dk_cfg_get(cfg, "milestones");
    m.n = dk_cfg_len(list);
    if (m.n > MAX_MILESTONES)
        return dkh_optim_cfg_fail(list, "at most %d milestones, got %zu", MAX_MILESTONES, m.n);
    for (size_t i = 0; i < m.n; i++) {
        const dk_cfg *v = dk_cfg_at(list, i);
        DK_TRY(dk_cfg_get_int(v, NULL, &m.milestones[i]));
        if (m.milestones[i] < 0)
            return dkh_optim_cfg_fail(v, "milestone %lld is negative", (long long)m.milestones[i]);
        if (i && m.milestones[i] < m.milestones[i - 1])
            return dkh_optim_cfg_fail(v, "must not decrease: %lld comes after %lld",
                                      (long long)m.milestones[i], (long long)m.milestones[i - 1]);
    }
    return keep(&m, sizeof m, "MultiStepLR", self);
}

static double multistep_value(const void *self, double in, double base, int64_t t, int64_t span)
{
    const multistep *m = self;
    size_t passed = 0;
    while (passed < m->n && m->milestones[passed] <= t)
        passed++;
    return in * pow(m->gamma, (double)passed);
}

static const dk_param multistep_params[] = {
    {.name = "milestones", .type = DK_PARAM_LIST, .elem = DK_PARAM_INT,
     .flags = DK_PARAM_REQUIRED, .min = "0",
     .doc = "steps (from begin) at which the value is multiplied by gamma, in order"},
    {.name = "gamma", .type = DK_PARAM_FLOAT, .def = "0.1", .min = "0",
     .doc = "multiplier at each milestone"},
    COMMON_PARAMS,
};

/* ---- ExponentialLR ----------------------------------------------------------------- */

typedef struct exponential {
    double gamma;
} exponential;

static dk_status exponential_create(const dk_cfg *cfg, void **self)
{
    DK_TRY(dkh_sched_check_common(cfg));
    exponential e;
    DK_TRY(dk_cfg_get_float(cfg, "gamma", &e.gamma));
    return keep(&e, sizeof e, "ExponentialLR", self);
}

static double exponential_value(const void *self, double in, double base, int64_t t, int64_t span)
{
    const exponential *e = self;
    return in * pow(e->gamma, (double)t);
}

static const dk_param exponential_params[] = {
    {.name = "gamma", .type = DK_PARAM_FLOAT, .flags = DK_PARAM_REQUIRED, .min = "0",
     .doc = "multiplier per step (per iteration after convert_to_iter_based, as in mmengine)"},
    COMMON_PARAMS,
};

/* ---- CosineAnnealingLR ------------------------------------------------------------- */

typedef struct cosine {
    double t_max; /* 0: the span */
    double eta_min;
    double eta_min_ratio; /* NAN: use eta_min */
} cosine;

static dk_status cosine_create(const dk_cfg *cfg, void **self)
{
    DK_TRY(dkh_sched_check_common(cfg));
    cosine c = {0, 0, NAN};
    const dk_cfg *tm = dk_cfg_get(cfg, "T_max");
    if (tm && dk_cfg_kind_of(tm) != DK_CFG_NULL) {
        DK_TRY(dk_cfg_get_float(tm, NULL, &c.t_max));
        if (!(c.t_max > 0))
            return dkh_optim_cfg_fail(tm, "must be > 0, got %g", c.t_max);
    }
    const dk_cfg *em = dk_cfg_get(cfg, "eta_min");
    const dk_cfg *er = dk_cfg_get(cfg, "eta_min_ratio");
    bool has_em = em && dk_cfg_kind_of(em) != DK_CFG_NULL;
    bool has_er = er && dk_cfg_kind_of(er) != DK_CFG_NULL;
    if (has_em && has_er)
        return dkh_optim_cfg_fail(er, "give eta_min or eta_min_ratio, not both");
    if (has_em)
        DK_TRY(dk_cfg_get_float(em, NULL, &c.eta_min));
    if (has_er)
        DK_TRY(dk_cfg_get_float(er, NULL, &c.eta_min_ratio));
    return keep(&c, sizeof c, "CosineAnnealingLR", self);
}

static double cosine_value(const void *self, double in, double base, int64_t t, int64_t span)
{
    const cosine *c = self;
    double t_max = c->t_max > 0 ? c->t_max : (double)span;
    double eta_min = isnan(c->eta_min_ratio) ? c->eta_min : base * c->eta_min_ratio;
    return eta_min + (in - eta_min) * (1 + cos(PI * (double)t / t_max)) / 2;
}

static const dk_param cosine_params[] = {
    {.name = "T_max", .type = DK_PARAM_FLOAT, .flags = DK_PARAM_NULLABLE, .min = "0",
     .doc = "steps of the half cosine; null = end - begin"},
    {.name = "eta_min", .type = DK_PARAM_FLOAT, .flags = DK_PARAM_NULLABLE,
     .doc = "value at T_max (default 0)"},
    {.name = "eta_min_ratio", .type = DK_PARAM_FLOAT, .flags = DK_PARAM_NULLABLE, .min = "0",
     .doc = "value at T_max as a fraction of the optimizer's value (instead of eta_min)"},
    COMMON_PARAMS,
};

/* ---- PolyLR ------------------------------------------------------------------------ */

typedef struct poly {
    double eta_min, power;
} poly;

static dk_status poly_create(const dk_cfg *cfg, void **self)
{
    DK_TRY(dkh_sched_check_common(cfg));
    poly p;
    DK_TRY(dk_cfg_get_float(cfg, "eta_min", &p.eta_min));
    DK_TRY(dk_cfg_get_float(cfg, "power", &p.power));
    return keep(&p, sizeof p, "PolyLR", self);
}

static double poly_value(const void *self, double in, double base, int64_t t, int64_t span)
{
    const poly *p = self;
    int64_t total = span - 1;
    if (total <= 0)
        return in;
    return p->eta_min + (in - p->eta_min) * pow(1.0 - (double)t / (double)total, p->power);
}

static const dk_param poly_params[] = {
    {.name = "eta_min", .type = DK_PARAM_FLOAT, .def = "0", .doc = "value at the last step"},
    {.name = "power", .type = DK_PARAM_FLOAT, .def = "1.0", .doc = "power of the polynomial"},
    COMMON_PARAMS,
};

/* ---- OneCycleLR -------------------------------------------------------------------- */

typedef struct onecycle {
    double eta_max, pct_start, div_factor, final_div_factor;
    int64_t total_steps; /* 0: the span */
    bool cosine, three_phase;
} onecycle;

static dk_status onecycle_create(const dk_cfg *cfg, void **self)
{
    DK_TRY(dkh_sched_check_common(cfg));
    onecycle o = {0};
    DK_TRY(dk_cfg_get_float(cfg, "eta_max", &o.eta_max));
    DK_TRY(dk_cfg_get_float(cfg, "pct_start", &o.pct_start));
    DK_TRY(dk_cfg_get_float(cfg, "div_factor", &o.div_factor));
    DK_TRY(dk_cfg_get_float(cfg, "final_div_factor", &o.final_div_factor));
    DK_TRY(dk_cfg_get_bool(cfg, "three_phase", &o.three_phase));
    DK_TRY(read_anneal(cfg, &o.cosine));
    const dk_cfg *ts = dk_cfg_get(cfg, "total_steps");
    if (ts && dk_cfg_kind_of(ts) != DK_CFG_NULL)
        DK_TRY(dk_cfg_get_int(ts, NULL, &o.total_steps));
    if (!(o.div_factor > 0) || !(o.final_div_factor > 0))
        return dkh_optim_cfg_fail(
            dk_cfg_get(cfg, o.div_factor > 0 ? "final_div_factor" : "div_factor"), "must be > 0");
    return keep(&o, sizeof o, "OneCycleLR", self);
}

static double onecycle_value(const void *self, double in, double base, int64_t t, int64_t span)
{
    const onecycle *o = self;
    double total = (double)(o->total_steps > 0 ? o->total_steps : span);
    double initial = o->eta_max / o->div_factor;
    double min = initial / o->final_div_factor;
    /* Phases as (last step, value at its start, value at its end). */
    double ends[3], from[3], to[3];
    int n = 0;
    ends[n] = o->pct_start * total - 1, from[n] = initial, to[n++] = o->eta_max;
    if (o->three_phase) {
        ends[n] = 2 * o->pct_start * total - 2, from[n] = o->eta_max, to[n++] = initial;
        ends[n] = total - 1, from[n] = initial, to[n++] = min;
    } else {
        ends[n] = total - 1, from[n] = o->eta_max, to[n++] = min;
    }
    double start = 0, x = (double)t;
    for (int i = 0; i < n; i++) {
        if (x <= ends[i] || i == n - 1) {
            double len = ends[i] - start;
            double pct = len > 0 ? (x - start) / len : 1;
            pct = pct < 0 ? 0 : pct > 1 ? 1 : pct; /* steps past total_steps hold the end */
            return anneal(o->cosine, from[i], to[i], pct);
        }
        start = ends[i];
    }
    return min; /* not reached */
}

static const dk_param onecycle_params[] = {
    {.name = "eta_max", .type = DK_PARAM_FLOAT, .flags = DK_PARAM_REQUIRED, .min = "0",
     .doc = "the peak learning rate (PyTorch's max_lr)"},
    {.name = "total_steps", .type = DK_PARAM_INT, .flags = DK_PARAM_NULLABLE, .min = "1",
     .doc = "steps in the cycle; null = end - begin"},
    {.name = "pct_start", .type = DK_PARAM_FLOAT, .def = "0.3", .min = "0", .max = "1",
     .doc = "fraction of the cycle spent rising"},
    {.name = "anneal_strategy", .type = DK_PARAM_STRING, .def = "cos", .choices = "cos|linear",
     .doc = "shape of each phase"},
    {.name = "div_factor", .type = DK_PARAM_FLOAT, .def = "25", .min = "0",
     .doc = "starting value = eta_max / div_factor"},
    {.name = "final_div_factor", .type = DK_PARAM_FLOAT, .def = "10000", .min = "0",
     .doc = "final value = starting value / final_div_factor"},
    {.name = "three_phase", .type = DK_PARAM_BOOL, .def = "false",
     .doc = "rise, fall back to the start, then anneal (the paper's variant)"},
    COMMON_PARAMS,
};

/* ---- CyclicLR / CyclicMomentum (mmcv's cyclic policy) -------------------------------- */

typedef struct cyclic {
    double up_ratio, end_ratio, step_ratio_up, gamma;
    int64_t cycles;
    bool cosine;
} cyclic;

static dk_status cyclic_create(const dk_cfg *cfg, void **self)
{
    DK_TRY(dkh_sched_check_common(cfg));
    cyclic c;
    const dk_cfg *tr = dk_cfg_get(cfg, "target_ratio");
    if (dk_cfg_len(tr) != 2)
        return dkh_optim_cfg_fail(tr, "expected two ratios [peak, end], got %zu", dk_cfg_len(tr));
    DK_TRY(dk_cfg_get_float(tr, "0", &c.up_ratio));
    DK_TRY(dk_cfg_get_float(tr, "1", &c.end_ratio));
    DK_TRY(dk_cfg_get_int(cfg, "cyclic_times", &c.cycles));
    DK_TRY(dk_cfg_get_float(cfg, "step_ratio_up", &c.step_ratio_up));
    DK_TRY(dk_cfg_get_float(cfg, "gamma", &c.gamma));
    DK_TRY(read_anneal(cfg, &c.cosine));
    if (c.step_ratio_up >= 1)
        return dkh_optim_cfg_fail(dk_cfg_get(cfg, "step_ratio_up"), "must be below 1, got %g",
                                  c.step_ratio_up);
    return keep(&c, sizeof c, "Cyclic", self);
}

static double cyclic_value(const void *self, double in, double base, int64_t t, int64_t span)
{
    const cyclic *c = self;
    int64_t period = span / c->cycles;
    if (period < 1)
        period = 1;
    int64_t up = (int64_t)(c->step_ratio_up * (double)period);
    int64_t k = t % period;
    /* Later cycles shrink toward the value by gamma (mmcv's scaling). */
    double scale = pow(c->gamma, (double)(t / period));
    if (k < up) {
        double peak = 1 - scale + c->up_ratio * scale;
        return anneal(c->cosine, in, in * peak, (double)k / (double)up);
    }
    double from = 1 - scale + c->up_ratio * scale;
    return anneal(c->cosine, in * from, in * c->end_ratio,
                  (double)(k - up) / (double)(period - up));
}

#define CYCLIC_PARAMS(ratio_default)                                                         \
    {.name = "target_ratio", .type = DK_PARAM_LIST, .elem = DK_PARAM_FLOAT,                  \
     .def = ratio_default, .min = "0",                                                       \
     .doc = "[peak, end] as multiples of the value: reached at the top and end of a cycle"}, \
    {.name = "cyclic_times", .type = DK_PARAM_INT, .def = "1", .min = "1",                   \
     .doc = "cycles over [begin, end)"},                                                     \
    {.name = "step_ratio_up", .type = DK_PARAM_FLOAT, .def = "0.4", .min = "0", .max = "1",  \
     .doc = "fraction of each cycle spent going to the peak (below 1)"},                     \
    {.name = "anneal_strategy", .type = DK_PARAM_STRING, .def = "cos",                       \
     .choices = "cos|linear", .doc = "shape of each phase"},                                 \
    {.name = "gamma", .type = DK_PARAM_FLOAT, .def = "1", .min = "0", .max = "1",            \
     .doc = "each later cycle's peak shrinks toward the value by this factor"},              \
    COMMON_PARAMS

static const dk_param cyclic_lr_params[] = {CYCLIC_PARAMS("[10, 0.0001]")};
/* mmcv's momentum default: from 0.95 down to 0.85 and back. */
static const dk_param cyclic_momentum_params[] = {CYCLIC_PARAMS("[0.8947368421052632, 1]")};

/* ---- the table ------------------------------------------------------------------------ */

#define SCHED_VTABLE(fam)                                                                    \
    static const dk_lr_scheduler_vtable fam##_vtable = {                                     \
        .struct_size = sizeof(dk_lr_scheduler_vtable),                                       \
        .create = fam##_create,                                                              \
        .destroy = sched_destroy,                                                            \
        .value = fam##_value,                                                                \
    };
SCHED_VTABLE(linear)
SCHED_VTABLE(constant)
SCHED_VTABLE(step)
SCHED_VTABLE(multistep)
SCHED_VTABLE(exponential)
SCHED_VTABLE(cosine)
SCHED_VTABLE(poly)
SCHED_VTABLE(onecycle)
SCHED_VTABLE(cyclic)
#undef SCHED_VTABLE

#define SCHED_TYPE(name_, summary_, fam, params_)                                           \
    {DK_TYPE_INFO_HEAD,          .kind = "lr_scheduler", .name = name_, .summary = summary_, \
     .iface = DK_IFACE_LR_SCHEDULER, .vtable = &fam##_vtable, DK_PARAMS(params_)}

static const dk_type_info sched_types[] = {
    SCHED_TYPE("LinearLR", "learning rate times a factor going linearly from start to end",
               linear, linear_params),
    SCHED_TYPE("ConstantLR", "learning rate times a constant factor until the end", constant,
               constant_params),
    SCHED_TYPE("StepLR", "learning rate times gamma every step_size steps", step, step_params),
    SCHED_TYPE("MultiStepLR", "learning rate times gamma at each milestone", multistep,
               multistep_params),
    SCHED_TYPE("ExponentialLR", "learning rate times gamma every step", exponential,
               exponential_params),
    SCHED_TYPE("CosineAnnealingLR", "learning rate annealed along a half cosine to eta_min",
               cosine, cosine_params),
    SCHED_TYPE("PolyLR", "learning rate decaying polynomially to eta_min", poly, poly_params),
    SCHED_TYPE("OneCycleLR", "the 1cycle learning-rate policy", onecycle, onecycle_params),
    SCHED_TYPE("CyclicLR", "mmcv's cyclic learning rate: up to a peak, then down", cyclic,
               cyclic_lr_params),
    SCHED_TYPE("LinearMomentum", "momentum times a factor going linearly from start to end",
               linear, linear_params),
    SCHED_TYPE("ConstantMomentum", "momentum times a constant factor until the end", constant,
               constant_params),
    SCHED_TYPE("StepMomentum", "momentum times gamma every step_size steps", step, step_params),
    SCHED_TYPE("MultiStepMomentum", "momentum times gamma at each milestone", multistep,
               multistep_params),
    SCHED_TYPE("ExponentialMomentum", "momentum times gamma every step", exponential,
               exponential_params),
    SCHED_TYPE("CosineAnnealingMomentum", "momentum annealed along a half cosine to eta_min",
               cosine, cosine_params),
    SCHED_TYPE("PolyMomentum", "momentum decaying polynomially to eta_min", poly, poly_params),
    SCHED_TYPE("CyclicMomentum", "mmcv's cyclic momentum: down to a trough, then back up",
               cyclic, cyclic_momentum_params),
};

const dk_type_info *dkh_sched_types(size_t *n)
{
    *n = sizeof sched_types / sizeof sched_types[0];
    return sched_types;
}
