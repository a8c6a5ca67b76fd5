/* tests/unit/test_sched.c — parameter schedules (core/optim/sched*.c): every
 * schedule type against its closed form (OneCycleLR against numbers
 * torch.optim.lr_scheduler.OneCycleLR printed), the common compositions
 * (linear warmup then multi-step, linear warmup then cosine), epoch- and
 * iteration-based entries, convert_to_iter_based with BEVFusion's
 * fractional ends, schedules reaching the optimizer per parameter group,
 * and the errors of bad entries with their file:line:col.
 */
#include "optim_testing.h"

#define PI 3.14159265358979323846

/* Builds the schedule `text` (a YAML list) for a run of max_epochs epochs of
 * ipe iterations (max_epochs 0: max_iters iterations, iteration-based). */
static dkh_sched *sched_for(const char *text, int64_t max_epochs, int64_t max_iters, int64_t ipe)
{
    dk_cfg *root = NULL;
    CHECK_OK(validated("param_scheduler", text, &root));
    dk_status s = DK_OK;
    dkh_sched *sc =
        dkh_sched_new(dk_cfg_get(root, "param_scheduler"), max_epochs, max_iters, ipe, &s);
    if (!sc)
        fail_msg("dkh_sched_new: %s", dk_last_error());
    dkh_cfg_free(root);
    return sc;
}

/* The error building `text` gives (validation or construction). */
static void expect_sched_error(const char *text, int64_t max_epochs, int64_t ipe,
                               const char *needle)
{
    dk_cfg *root = NULL;
    dk_status s = validated("param_scheduler", text, &root);
    if (s == DK_OK) {
        dkh_sched *sc = dkh_sched_new(dk_cfg_get(root, "param_scheduler"), max_epochs,
                                      max_epochs ? max_epochs * ipe : 100, ipe, &s);
        dkh_cfg_free(root);
        if (sc) {
            dkh_sched_free(sc);
            fail_msg("no error for %s", text);
        }
    }
    assert_int_equal(s, DK_ERR_CONFIG);
    CHECK_MSG(needle);
}

static double lr_at(const dkh_sched *s, double base, int64_t epoch, int64_t iter)
{
    return dkh_sched_value(s, DKH_SCHED_LR, base, epoch, iter);
}

static void check_value(double got, double want, const char *what, int64_t step)
{
    if (!(fabs(got - want) <= 1e-12 * (fabs(want) > 1 ? fabs(want) : 1)))
        fail_msg("%s at step %lld: got %.17g, want %.17g", what, (long long)step, got, want);
}

/* ---- each type --------------------------------------------------------------------- */

static void test_linear_constant(void **state)
{
    const double b = 0.2;
    dkh_sched *s = sched_for("[{type: LinearLR, start_factor: 0.1, end_factor: 1.0, "
                             "by_epoch: false, end: 5}]",
                             0, 100, 10);
    assert_int_equal(dkh_sched_len(s), 1);
    for (int64_t it = 0; it < 9; it++)
        check_value(lr_at(s, b, 0, it), b * (0.1 + 0.9 * (double)(it < 4 ? it : 4) / 4), "LinearLR",
                    it);
    /* Momentum is not touched by an LR schedule. */
    check_value(dkh_sched_value(s, DKH_SCHED_MOMENTUM, 0.9, 0, 0), 0.9, "momentum", 0);
    dkh_sched_free(s);

    /* ConstantLR: the factor until the last step of its range, as mmengine. */
    s = sched_for("[{type: ConstantLR, factor: 0.5, end: 4, by_epoch: false}]", 0, 100, 10);
    for (int64_t it = 0; it < 7; it++)
        check_value(lr_at(s, b, 0, it), it < 3 ? b * 0.5 : b, "ConstantLR", it);
    dkh_sched_free(s);
}

static void test_step_multistep_exponential(void **state)
{
    const double b = 0.1;
    dkh_sched *s = sched_for("[{type: StepLR, step_size: 3, gamma: 0.5}]", 10, 100, 10);
    for (int64_t e = 0; e < 10; e++)
        check_value(lr_at(s, b, e, e * 10 + 5), b * pow(0.5, (double)(e / 3)), "StepLR", e);
    dkh_sched_free(s);

    s = sched_for("[{type: MultiStepLR, milestones: [2, 5, 5], gamma: 0.1}]", 10, 100, 10);
    static const double factors[8] = {1, 1, 0.1, 0.1, 0.1, 0.001, 0.001, 0.001};
    for (int64_t e = 0; e < 8; e++)
        check_value(lr_at(s, b, e, 0), b * factors[e], "MultiStepLR", e);
    dkh_sched_free(s);

    s = sched_for("[{type: ExponentialLR, gamma: 0.9, begin: 2}]", 10, 100, 10);
    for (int64_t e = 0; e < 10; e++)
        check_value(lr_at(s, b, e, 0), e < 2 ? b : b * pow(0.9, (double)(e - 2)), "ExponentialLR",
                    e);
    dkh_sched_free(s);
}

static void test_cosine_poly(void **state)
{
    const double b = 0.1;
    /* T_max defaults to end - begin (the whole run here). */
    dkh_sched *s = sched_for("[{type: CosineAnnealingLR, eta_min: 0.01}]", 10, 100, 10);
    for (int64_t e = 0; e < 12; e++) {
        int64_t t = e < 9 ? e : 9; /* past the end the last value holds */
        check_value(lr_at(s, b, e, 0), 0.01 + (b - 0.01) * (1 + cos(PI * (double)t / 10)) / 2,
                    "CosineAnnealingLR", e);
    }
    dkh_sched_free(s);

    /* eta_min_ratio, an explicit T_max shorter than the range, a later begin. */
    s = sched_for("[{type: CosineAnnealingLR, T_max: 4, eta_min_ratio: 0.1, by_epoch: false, "
                  "begin: 2, end: 12}]",
                  0, 100, 10);
    for (int64_t it = 0; it < 14; it++) {
        double want = b;
        if (it >= 2) {
            int64_t t = it - 2 < 9 ? it - 2 : 9;
            want = 0.1 * b + (b - 0.1 * b) * (1 + cos(PI * (double)t / 4)) / 2;
        }
        check_value(lr_at(s, b, 0, it), want, "CosineAnnealingLR T_max", it);
    }
    dkh_sched_free(s);

    s = sched_for("[{type: PolyLR, power: 2, eta_min: 0.001, by_epoch: false, end: 11}]", 0, 100,
                  10);
    for (int64_t it = 0; it < 13; it++) {
        double t = (double)(it < 10 ? it : 10);
        check_value(lr_at(s, b, 0, it), 0.001 + (b - 0.001) * pow(1 - t / 10, 2), "PolyLR", it);
    }
    dkh_sched_free(s);
}

static void test_onecycle(void **state)
{
    /* Printed by torch.optim.lr_scheduler.OneCycleLR(total_steps=10, ...). */
    static const struct {
        const char *cfg;
        double want[10];
    } cases[] = {
        {"{type: OneCycleLR, eta_max: 0.5, by_epoch: false, end: 10}",
         {0.020000000000000018, 0.26000000000000001, 0.5, 0.47524231600673683, 0.40587282697488153,
          0.30563101096814466, 0.19437098903185537, 0.094129173025118487, 0.024759683993263143,
          1.9999999999999999e-06}},
        {"{type: OneCycleLR, eta_max: 0.5, by_epoch: false, three_phase: true, "
         "total_steps: 10}",
         {0.020000000000000018, 0.26000000000000001, 0.5, 0.26000000000000001, 0.02,
          0.0180903609267551, 0.013090860926755101, 0.0069111390732449025, 0.0019116390732449018,
          1.9999999999999999e-06}},
        {"{type: OneCycleLR, eta_max: 0.5, by_epoch: false, end: 10, anneal_strategy: linear, "
         "pct_start: 0.25, div_factor: 10, final_div_factor: 100}",
         {0.050000000000000003, 0.34999999999999998, 0.4667, 0.40010000000000001,
          0.33350000000000002, 0.26690000000000003, 0.20030000000000003, 0.13370000000000004,
          0.067099999999999993, 0.00050000000000000044}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char *text = dkh_asprintf("[%s]", cases[c].cfg);
        dkh_sched *s = sched_for(text, 0, 10, 10);
        free(text);
        for (int64_t it = 0; it < 10; it++)
            check_value(lr_at(s, 0.1, 0, it), cases[c].want[it], cases[c].cfg, it);
        dkh_sched_free(s);
    }
}

static void test_cyclic(void **state)
{
    /* mmcv's cyclic policy, linear: up to 10x over 40% of the cycle, then
     * down to 0.1x. */
    dkh_sched *s = sched_for("[{type: CyclicLR, target_ratio: [10, 0.1], anneal_strategy: "
                             "linear, by_epoch: false}]",
                             0, 10, 10);
    static const double x[10] = {1, 3.25, 5.5, 7.75, 10, 8.35, 6.7, 5.05, 3.4, 1.75};
    for (int64_t it = 0; it < 10; it++)
        check_value(lr_at(s, 0.01, 0, it), 0.01 * x[it], "CyclicLR", it);
    dkh_sched_free(s);

    /* CyclicMomentum's defaults: 0.95 down to 0.85 (cosine) and back. */
    s = sched_for("[{type: CyclicMomentum, by_epoch: false}]", 0, 10, 10);
    check_value(dkh_sched_value(s, DKH_SCHED_MOMENTUM, 0.95, 0, 0), 0.95, "CyclicMomentum", 0);
    check_value(dkh_sched_value(s, DKH_SCHED_MOMENTUM, 0.95, 0, 2), 0.9, "CyclicMomentum", 2);
    check_value(dkh_sched_value(s, DKH_SCHED_MOMENTUM, 0.95, 0, 4), 0.85, "CyclicMomentum", 4);
    check_value(dkh_sched_value(s, DKH_SCHED_MOMENTUM, 0.95, 0, 7), 0.9, "CyclicMomentum", 7);
    check_value(lr_at(s, 0.01, 0, 4), 0.01, "CyclicMomentum leaves lr", 4);
    dkh_sched_free(s);
}

/* ---- compositions ---------------------------------------------------------------- */

/* The detection recipe: 500 iterations of linear warmup, then x0.1 at
 * epochs 8 and 11 of 12 (100 iterations per epoch). */
static void test_warmup_multistep(void **state)
{
    const double b = 0.02;
    dkh_sched *s = sched_for("[{type: LinearLR, start_factor: 0.001, by_epoch: false, begin: 0, "
                             "end: 500},\n"
                             " {type: MultiStepLR, begin: 0, end: 12, by_epoch: true, "
                             "milestones: [8, 11], gamma: 0.1}]",
                             12, 1200, 100);
    int64_t iters[] = {0, 1, 250, 498, 499, 500, 799, 800, 1099, 1100, 1199};
    for (size_t i = 0; i < sizeof iters / sizeof iters[0]; i++) {
        int64_t it = iters[i], e = it / 100;
        double warm = 0.001 + 0.999 * (double)(it < 499 ? it : 499) / 499;
        double decay = e >= 11 ? 0.01 : e >= 8 ? 0.1 : 1;
        check_value(lr_at(s, b, e, it), b * warm * decay, "warmup + multistep", it);
    }
    dkh_sched_free(s);
}

/* Linear warmup over the first epoch's iterations, cosine over the epochs. */
static void test_warmup_cosine(void **state)
{
    const double b = 0.1;
    dkh_sched *s = sched_for("[{type: LinearLR, start_factor: 0.01, by_epoch: false, end: 50},\n"
                             " {type: CosineAnnealingLR, T_max: 20, by_epoch: true}]",
                             20, 2000, 100);
    int64_t iters[] = {0, 10, 49, 50, 99, 100, 1000, 1999};
    for (size_t i = 0; i < sizeof iters / sizeof iters[0]; i++) {
        int64_t it = iters[i], e = it / 100;
        double warm = 0.01 + 0.99 * (double)(it < 49 ? it : 49) / 49;
        double cosf = (1 + cos(PI * (double)e / 20)) / 2;
        check_value(lr_at(s, b, e, it), b * warm * cosf, "warmup + cosine", it);
    }
    dkh_sched_free(s);
}

/* An epoch-based entry changes at epoch boundaries; converted to iterations
 * it agrees there and moves in between. */
static void test_convert_to_iter_based(void **state)
{
    const double b = 0.1;
    dkh_sched *by_epoch = sched_for("[{type: CosineAnnealingLR, T_max: 4}]", 4, 40, 10);
    dkh_sched *by_iter =
        sched_for("[{type: CosineAnnealingLR, T_max: 4, convert_to_iter_based: true}]", 4, 40, 10);
    for (int64_t e = 0; e < 4; e++) {
        check_value(lr_at(by_iter, b, e, e * 10), lr_at(by_epoch, b, e, e * 10), "boundary", e);
        check_value(lr_at(by_epoch, b, e, e * 10 + 5), lr_at(by_epoch, b, e, e * 10),
                    "within an epoch", e);
        check_value(lr_at(by_iter, b, e, e * 10 + 5),
                    b * (1 + cos(PI * (double)(e * 10 + 5) / 40)) / 2, "converted", e);
    }
    dkh_sched_free(by_epoch);
    dkh_sched_free(by_iter);

    /* Durations are converted too: milestones and step sizes in epochs. */
    dkh_sched *s = sched_for("[{type: MultiStepLR, milestones: [1, 3], gamma: 0.5, "
                             "convert_to_iter_based: true},\n"
                             " {type: StepLR, step_size: 2, gamma: 0.1, begin: 1, "
                             "convert_to_iter_based: true}]",
                             6, 60, 10);
    int64_t iters[] = {0, 9, 10, 29, 30, 31, 59};
    for (size_t i = 0; i < sizeof iters / sizeof iters[0]; i++) {
        int64_t it = iters[i];
        double ms = pow(0.5, (double)((it >= 10) + (it >= 30)));
        double st = it < 10 ? 1 : pow(0.1, (double)((it - 10) / 20));
        check_value(lr_at(s, b, it / 10, it), b * ms * st, "converted durations", it);
    }
    dkh_sched_free(s);
}

/* BEVFusion's momentum: cosine from 0.95 to 0.85/0.95 over the first 2.4
 * epochs, then to 1 by epoch 6, per iteration. Fractional ends become
 * int(end * iters_per_epoch); the second entry starts from the value the
 * first one ended with. */
static void test_bevfusion_momentum(void **state)
{
    dkh_sched *s = sched_for("[{type: CosineAnnealingMomentum, eta_min: 0.8947368421052632, "
                             "begin: 0, end: 2.4, convert_to_iter_based: true},\n"
                             " {type: CosineAnnealingMomentum, eta_min: 1, begin: 2.4, end: 6, "
                             "convert_to_iter_based: true}]",
                             6, 60, 10);
    const double b = 0.95, m1 = 0.8947368421052632;
    double held = m1 + (b - m1) * (1 + cos(PI * 23 / 24)) / 2;
    int64_t iters[] = {0, 12, 23, 24, 30, 59};
    for (size_t i = 0; i < sizeof iters / sizeof iters[0]; i++) {
        int64_t it = iters[i];
        double want;
        if (it < 24)
            want = m1 + (b - m1) * (1 + cos(PI * (double)it / 24)) / 2;
        else
            want = 1 + (held - 1) * (1 + cos(PI * (double)(it - 24) / 36)) / 2;
        check_value(dkh_sched_value(s, DKH_SCHED_MOMENTUM, b, it / 10, it), want,
                    "BEVFusion momentum", it);
        check_value(lr_at(s, 1e-4, it / 10, it), 1e-4, "lr untouched", it);
    }
    dkh_sched_free(s);
}

static void test_empty(void **state)
{
    dk_status s;
    dkh_sched *sc = dkh_sched_new(NULL, 3, 30, 10, &s);
    CHECK_OK(s);
    assert_int_equal(dkh_sched_len(sc), 0);
    assert_int_equal(dkh_sched_max_iters(sc), 30);
    check_value(lr_at(sc, 0.3, 2, 25), 0.3, "empty", 0);
    dkh_sched_free(sc);
    sc = sched_for("[]", 3, 30, 10);
    check_value(lr_at(sc, 0.3, 2, 25), 0.3, "[]", 0);
    dkh_sched_free(sc);
    check_value(lr_at(NULL, 0.3, 2, 25), 0.3, "NULL", 0);
}

/* ---- the schedule reaches the optimizer -------------------------------------------- */

/* Each parameter group is scheduled at its own base (lr x lr_mult): with an
 * absolute eta_min that is not the same as scaling the group-1 value. The
 * scheduled momentum is the one the update uses. */
static void test_schedule_reaches_optimizer(void **state)
{
    int64_t shape[1] = {1};
    float zero = 0;
    dk_tensor *p[2] = {make_param(1, shape, &zero), make_param(1, shape, &zero)};
    const char *names[2] = {"backbone.w", "head.w"};
    dk_cfg *root = NULL;
    CHECK_OK(validated("optim_wrapper",
                       "{optimizer: {type: SGD, lr: 0.1, momentum: 0.9},\n"
                       " paramwise_cfg: {custom_keys: {backbone: {lr_mult: 0.1}}}}",
                       &root));
    dk_status s;
    dkh_optim *o = dkh_optim_new_params(dk_cfg_get(root, "optim_wrapper"), names, p, 2, &s);
    CHECK_OK(s);
    dkh_cfg_free(root);
    dkh_sched *sc = sched_for("[{type: CosineAnnealingLR, eta_min: 0.005},\n"
                              " {type: ConstantMomentum, factor: 0.5}]",
                              4, 40, 10);
    double lr, momentum;
    dkh_optim_schedule(o, sc, 1, 10, &lr, &momentum);
    double c = (1 + cos(PI / 4)) / 2;
    check_value(lr, 0.005 + (0.1 - 0.005) * c, "logged lr", 1);
    check_value(momentum, 0.45, "logged momentum", 1);

    static const float one = 1, two = 2;
    const float *g1[2] = {&one, &one}, *g2[2] = {&two, &two};
    dkh_optim_result res;
    add_grads(p, g1, 2);
    CHECK_OK(dkh_optim_step(o, &res));
    add_grads(p, g2, 2);
    CHECK_OK(dkh_optim_step(o, &res));
    /* buf1 = 1, buf2 = 0.45 * 1 + 2; w = -lr (1 + 2.45). */
    double lr_backbone = 0.005 + (0.01 - 0.005) * c, lr_head = 0.005 + (0.1 - 0.005) * c;
    check_close(((float *)dk_tensor_data(p[0]))[0], -lr_backbone * 3.45, 1e-6, "backbone", 0);
    check_close(((float *)dk_tensor_data(p[1]))[0], -lr_head * 3.45, 1e-6, "head", 0);
    dkh_sched_free(sc);
    dkh_optim_free(o);
    dk_tensor_release(p[0]);
    dk_tensor_release(p[1]);
}

/* ---- errors ------------------------------------------------------------------------- */

static void test_errors(void **state)
{
    expect_sched_error("[{type: MultiStepLR, milestones: [11, 8]}]", 12, 10,
                       "t.yaml:1:56: param_scheduler.0.milestones.1: must not "
                       "decrease: 8 comes after 11");
    expect_sched_error("[{type: MultiStepLR, milestones: [8, -1]}]", 12, 10,
                       "t.yaml:1:55: param_scheduler.0.milestones.1: -1 is less than the "
                       "minimum 0");
    expect_sched_error("[{type: MultiStepLR}]", 12, 10,
                       "t.yaml:1:19: param_scheduler.0: missing required key 'milestones'");
    expect_sched_error("[{type: CosineAnealingLR}]", 12, 10,
                       "t.yaml:1:26: param_scheduler.0: unknown lr_scheduler type "
                       "'CosineAnealingLR' (did you mean 'CosineAnnealingLR'?)");
    expect_sched_error("[{type: LinearLR, begin: 5, end: 3}]", 12, 10,
                       "t.yaml:1:51: param_scheduler.0.end: 3 must be after begin (5)");
    expect_sched_error("[{type: LinearLR, end: 2.5}]", 12, 10,
                       "t.yaml:1:41: param_scheduler.0.end: 2.5 is not a whole number of epochs "
                       "(fractions of an epoch need convert_to_iter_based: true)");
    expect_sched_error("[{type: LinearLR, by_epoch: false, convert_to_iter_based: true}]", 12, 10,
                       "param_scheduler.0.convert_to_iter_based: needs by_epoch: true");
    expect_sched_error("[{type: LinearLR, begin: 12}]", 12, 10,
                       "t.yaml:1:19: param_scheduler.0: LinearLR covers no epoch: begin 12, end "
                       "12 (the end of training)");
    expect_sched_error("[{type: StepLR, step_size: 2}]", 0, 10,
                       "t.yaml:1:19: param_scheduler.0: StepLR counts epochs (by_epoch: true) "
                       "but training counts iterations");
    expect_sched_error("[{type: CosineAnnealingLR, eta_min: 0, eta_min_ratio: 0.1}]", 12, 10,
                       "param_scheduler.0.eta_min_ratio: give eta_min or eta_min_ratio, not "
                       "both");
    expect_sched_error("[{type: SGD, lr: 0.1}]", 12, 10,
                       "unknown lr_scheduler type 'SGD' (there is a optimizer type 'SGD'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_constant),
        cmocka_unit_test(test_step_multistep_exponential),
        cmocka_unit_test(test_cosine_poly),
        cmocka_unit_test(test_onecycle),
        cmocka_unit_test(test_cyclic),
        cmocka_unit_test(test_warmup_multistep),
        cmocka_unit_test(test_warmup_cosine),
        cmocka_unit_test(test_convert_to_iter_based),
        cmocka_unit_test(test_bevfusion_momentum),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_schedule_reaches_optimizer),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, optim_registry_setup, optim_registry_teardown);
}
