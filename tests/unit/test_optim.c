/* tests/unit/test_optim.c — the optimizers and the optimizer wrapper
 * (core/optim): SGD (plain, momentum with dampening, Nesterov), Adam and
 * AdamW (with and without AMSGrad) against double-precision references of
 * PyTorch's formulas over several steps; the paramwise rules; clipping by
 * norm and by value; gradient accumulation; state save/load; and the error
 * messages of bad configs, with their file:line:col.
 */
#include "optim_testing.h"

#include "optim/optim_impl.h"

enum { N_STEPS = 5 };

/* ---- fixtures -------------------------------------------------------------------- */

/* Two parameters (7 and 2x3 elements) plus an optional big one that takes
 * the parallel path, with gradients that change every step. */
typedef struct fixture {
    size_t n;
    dk_tensor *p[3];
    const char *names[3];
    int64_t numel[3];
    double *w[3]; /* the reference's copy */
} fixture;

static float init_value(size_t k, int64_t i)
{
    return (float)(0.5 * sin(0.7 * (double)i + (double)k) + 0.1 * (double)k);
}

static float grad_value(size_t k, int64_t i, int step)
{
    return (float)(0.3 * cos(0.37 * (double)i + 1.3 * (double)step + (double)k) +
                   0.05 * (double)step);
}

static void fixture_init(fixture *f, bool big)
{
    static const int64_t shapes[3][2] = {{7, 1}, {2, 3}, {100003, 1}};
    static const int ndims[3] = {1, 2, 1};
    static const char *const names[3] = {"backbone.conv.weight", "head.fc.weight",
                                         "head.big.weight"};
    memset(f, 0, sizeof *f);
    f->n = big ? 3 : 2;
    for (size_t k = 0; k < f->n; k++) {
        int64_t numel = shapes[k][0] * (ndims[k] == 2 ? shapes[k][1] : 1);
        float *data = malloc((size_t)numel * sizeof *data);
        f->w[k] = malloc((size_t)numel * sizeof *f->w[k]);
        for (int64_t i = 0; i < numel; i++) {
            data[i] = init_value(k, i);
            f->w[k][i] = data[i];
        }
        f->p[k] = make_param(ndims[k], shapes[k], data);
        f->names[k] = names[k];
        f->numel[k] = numel;
        free(data);
    }
}

static void fixture_fini(fixture *f)
{
    for (size_t k = 0; k < f->n; k++) {
        dk_tensor_release(f->p[k]);
        free(f->w[k]);
    }
}

/* Sets step `step`'s gradients on every parameter; `skip` (or SIZE_MAX)
 * gets none. */
static void fixture_grads(fixture *f, int step, size_t skip)
{
    float *g[3] = {0};
    for (size_t k = 0; k < f->n; k++) {
        if (k == skip)
            continue;
        g[k] = malloc((size_t)f->numel[k] * sizeof *g[k]);
        for (int64_t i = 0; i < f->numel[k]; i++)
            g[k][i] = grad_value(k, i, step);
    }
    add_grads(f->p, (const float *const *)g, f->n);
    for (size_t k = 0; k < f->n; k++)
        free(g[k]);
}

static dkh_optim *wrapper_for(fixture *f, const char *text)
{
    dk_cfg *root = NULL;
    CHECK_OK(validated("optim_wrapper", text, &root));
    dk_status s = DK_OK;
    dkh_optim *o =
        dkh_optim_new_params(dk_cfg_get(root, "optim_wrapper"), f->names, f->p, f->n, &s);
    if (!o)
        fail_msg("dkh_optim_new_params: %s", dk_last_error());
    dkh_cfg_free(root);
    return o;
}

static void check_params(const fixture *f, double rtol)
{
    for (size_t k = 0; k < f->n; k++) {
        const float *got = dk_tensor_data(f->p[k]);
        for (int64_t i = 0; i < f->numel[k]; i++)
            check_close(got[i], f->w[k][i], rtol, f->names[k], (int)i);
    }
}

/* ---- references (double precision, PyTorch's formulas) ------------------------------ */

typedef struct sgd_ref {
    double lr, momentum, dampening, weight_decay;
    bool nesterov;
} sgd_ref;

static void sgd_ref_step(const sgd_ref *c, double *w, double *buf, int64_t n, size_t k, int step,
                         int update)
{
    for (int64_t i = 0; i < n; i++) {
        double d = (double)grad_value(k, i, step) + c->weight_decay * w[i];
        if (c->momentum != 0) {
            buf[i] = update == 1 ? d : c->momentum * buf[i] + (1 - c->dampening) * d;
            d = c->nesterov ? d + c->momentum * buf[i] : buf[i];
        }
        w[i] -= c->lr * d;
    }
}

typedef struct adam_ref {
    double lr, beta1, beta2, eps, weight_decay;
    bool amsgrad, decoupled;
} adam_ref;

static void adam_ref_step(const adam_ref *c, double *w, double *m, double *v, double *vmax,
                          int64_t n, size_t k, int step, int update)
{
    double bc1 = 1 - pow(c->beta1, update), bc2 = 1 - pow(c->beta2, update);
    for (int64_t i = 0; i < n; i++) {
        double g = grad_value(k, i, step);
        if (c->decoupled)
            w[i] *= 1 - c->lr * c->weight_decay;
        else
            g += c->weight_decay * w[i];
        m[i] = c->beta1 * m[i] + (1 - c->beta1) * g;
        v[i] = c->beta2 * v[i] + (1 - c->beta2) * g * g;
        vmax[i] = v[i] > vmax[i] ? v[i] : vmax[i];
        double vu = c->amsgrad ? vmax[i] : v[i];
        w[i] -= c->lr / bc1 * m[i] / (sqrt(vu) / sqrt(bc2) + c->eps);
    }
}

/* Runs N_STEPS of the wrapper and of the reference side by side. */
static void run_sgd(const char *text, const sgd_ref *c, bool big)
{
    fixture f;
    fixture_init(&f, big);
    dkh_optim *o = wrapper_for(&f, text);
    double *buf[3];
    for (size_t k = 0; k < f.n; k++)
        buf[k] = calloc((size_t)f.numel[k], sizeof *buf[k]);
    for (int step = 0; step < N_STEPS; step++) {
        fixture_grads(&f, step, SIZE_MAX);
        dkh_optim_result res;
        CHECK_OK(dkh_optim_step(o, &res));
        assert_true(res.updated);
        assert_false(res.has_grad_norm);
        for (size_t k = 0; k < f.n; k++)
            sgd_ref_step(c, f.w[k], buf[k], f.numel[k], k, step, step + 1);
    }
    check_params(&f, 2e-5);
    assert_int_equal(dkh_optim_updates(o), N_STEPS);
    for (size_t k = 0; k < f.n; k++)
        free(buf[k]);
    dkh_optim_free(o);
    fixture_fini(&f);
}

static void run_adam(const char *text, const adam_ref *c, bool big)
{
    fixture f;
    fixture_init(&f, big);
    dkh_optim *o = wrapper_for(&f, text);
    double *st[3][3];
    for (size_t k = 0; k < f.n; k++)
        for (int j = 0; j < 3; j++)
            st[k][j] = calloc((size_t)f.numel[k], sizeof(double));
    for (int step = 0; step < N_STEPS; step++) {
        fixture_grads(&f, step, SIZE_MAX);
        dkh_optim_result res;
        CHECK_OK(dkh_optim_step(o, &res));
        for (size_t k = 0; k < f.n; k++)
            adam_ref_step(c, f.w[k], st[k][0], st[k][1], st[k][2], f.numel[k], k, step, step + 1);
    }
    check_params(&f, 2e-5);
    for (size_t k = 0; k < f.n; k++)
        for (int j = 0; j < 3; j++)
            free(st[k][j]);
    dkh_optim_free(o);
    fixture_fini(&f);
}

/* ---- optimizers ----------------------------------------------------------------------- */

static void test_sgd_plain(void **state)
{
    sgd_ref c = {.lr = 0.1};
    run_sgd("{optimizer: {type: SGD, lr: 0.1}}", &c, false);
    c.weight_decay = 0.01;
    run_sgd("{optimizer: {type: SGD, lr: 0.1, weight_decay: 0.01}}", &c, false);
}

static void test_sgd_momentum(void **state)
{
    sgd_ref c = {.lr = 0.05, .momentum = 0.9, .dampening = 0.2, .weight_decay = 1e-3};
    run_sgd("{optimizer: {type: SGD, lr: 0.05, momentum: 0.9, dampening: 0.2, "
            "weight_decay: 0.001}}",
            &c, true);
}

static void test_sgd_nesterov(void **state)
{
    sgd_ref c = {.lr = 0.05, .momentum = 0.8, .weight_decay = 1e-2, .nesterov = true};
    run_sgd("{optimizer: {type: SGD, lr: 0.05, momentum: 0.8, nesterov: true, "
            "weight_decay: 0.01}}",
            &c, true);
}

static void test_adam(void **state)
{
    adam_ref c = {.lr = 0.01, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1};
    run_adam("{optimizer: {type: Adam, lr: 0.01, weight_decay: 0.1}}", &c, false);
    c.amsgrad = true;
    run_adam("{optimizer: {type: Adam, lr: 0.01, weight_decay: 0.1, amsgrad: true}}", &c, false);
}

static void test_adamw(void **state)
{
    /* AdamW's default weight decay is 0.01. */
    adam_ref c = {.lr = 0.002,
                  .beta1 = 0.85,
                  .beta2 = 0.99,
                  .eps = 1e-6,
                  .weight_decay = 0.01,
                  .decoupled = true};
    run_adam("{optimizer: {type: AdamW, lr: 0.002, betas: [0.85, 0.99], eps: 1.0e-6}}", &c, true);
    c.amsgrad = true;
    c.weight_decay = 0.5;
    run_adam("{optimizer: {type: AdamW, lr: 0.002, betas: [0.85, 0.99], eps: 1.0e-6, "
             "weight_decay: 0.5, amsgrad: true}}",
             &c, false);
}

/* A parameter without a gradient is skipped and keeps its own update count,
 * so its bias correction is that of its own updates (PyTorch's per-parameter
 * state). */
static void test_adam_per_parameter_steps(void **state)
{
    fixture f;
    fixture_init(&f, false);
    dkh_optim *o = wrapper_for(&f, "{optimizer: {type: Adam, lr: 0.01}}");
    adam_ref c = {.lr = 0.01, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    double *st[2][3];
    int updates[2] = {0, 0};
    for (size_t k = 0; k < 2; k++)
        for (int j = 0; j < 3; j++)
            st[k][j] = calloc((size_t)f.numel[k], sizeof(double));
    for (int step = 0; step < N_STEPS; step++) {
        size_t skip = step < 2 ? 1 : SIZE_MAX; /* head.fc.weight joins at step 2 */
        fixture_grads(&f, step, skip);
        dkh_optim_result res;
        CHECK_OK(dkh_optim_step(o, &res));
        for (size_t k = 0; k < 2; k++)
            if (k != skip)
                adam_ref_step(&c, f.w[k], st[k][0], st[k][1], st[k][2], f.numel[k], k, step,
                              ++updates[k]);
    }
    check_params(&f, 2e-5);
    /* The state says so: "step" is the wrapper's, the late parameter its own. */
    dk_dict *d = dk_dict_new();
    CHECK_OK(dkh_optim_state_save(o, d));
    assert_true(dk_dict_number(d, "step", -1) == N_STEPS);
    assert_true(dk_dict_number(d, "head.fc.weight.step", -1) == N_STEPS - 2);
    assert_int_equal(dk_dict_find(d, "backbone.conv.weight.step"), -1);
    /* Without amsgrad the third state is neither kept nor saved. */
    assert_non_null(dk_dict_tensor(d, "head.fc.weight.exp_avg_sq"));
    assert_null(dk_dict_tensor(d, "head.fc.weight.max_exp_avg_sq"));
    dk_dict_free(d);
    for (size_t k = 0; k < 2; k++)
        for (int j = 0; j < 3; j++)
            free(st[k][j]);
    dkh_optim_free(o);
    fixture_fini(&f);
}

/* The schedule's values reach the optimizer: lr per group, momentum = beta1. */
static void test_set_values(void **state)
{
    fixture f;
    fixture_init(&f, false);
    dkh_optim *o = wrapper_for(&f, "{optimizer: {type: SGD, lr: 1.0, momentum: 0.5}}");
    dkh_optim_set_values(o, 0.25, 0);
    fixture_grads(&f, 0, SIZE_MAX);
    dkh_optim_result res;
    CHECK_OK(dkh_optim_step(o, &res));
    sgd_ref c = {.lr = 0.25};
    for (size_t k = 0; k < f.n; k++)
        sgd_ref_step(&c, f.w[k], NULL, f.numel[k], k, 0, 1);
    check_params(&f, 1e-6);
    dkh_optim_free(o);
    fixture_fini(&f);
}

/* ---- paramwise rules -------------------------------------------------------------------- */

static void test_paramwise_rules(void **state)
{
    static const struct {
        const char *name;
        int ndim;
        double lr_mult, decay_mult;
    } cases[] = {
        /* custom keys: the longest matching key wins, no other rule applies */
        {"backbone.conv1.weight", 4, 0.01, 3},
        {"backbone.conv1.bias", 1, 0.01, 3},
        {"backbone.layer1.conv2.weight", 4, 0.1, 1},
        {"backbone.bn1.weight", 1, 0.1, 1},
        /* norms by module name: decay from norm_decay_mult, lr untouched */
        {"neck.bn1.weight", 1, 1, 0},
        {"neck.bn1.bias", 1, 1, 0},
        {"head.norm.weight", 1, 1, 0},
        {"head.layer_norm2.bias", 1, 1, 0},
        {"head.ln_1.weight", 1, 1, 0},
        {"head.GN.weight", 1, 1, 0},
        /* other biases: bias_lr_mult and bias_decay_mult */
        {"head.fc.bias", 1, 2, 0.5},
        /* other 1-d parameters: flat_decay_mult */
        {"head.scale", 1, 1, 0.25},
        {"pos_embed", 1, 1, 0.25},
        /* names that only look like norms get nothing */
        {"head.bnx.weight", 1, 1, 0.25},
        {"head.lnk.weight", 2, 1, 1},
        {"head.fc.weight", 2, 1, 1},
    };
    size_t n = sizeof cases / sizeof cases[0];
    const char *names[32];
    dk_tensor *params[32];
    for (size_t i = 0; i < n; i++) {
        int64_t shape[4] = {2, 1, 1, 1};
        float data[2] = {1, 2};
        names[i] = cases[i].name;
        params[i] = make_param(cases[i].ndim, shape, data);
    }
    dk_cfg *root = NULL;
    CHECK_OK(validated("optim_wrapper",
                       "{optimizer: {type: SGD, lr: 0.1, weight_decay: 0.0001},\n"
                       " paramwise_cfg: {norm_decay_mult: 0, bias_decay_mult: 0.5,\n"
                       "   bias_lr_mult: 2, flat_decay_mult: 0.25,\n"
                       "   custom_keys: {backbone: {lr_mult: 0.1},\n"
                       "                 backbone.conv1: {lr_mult: 0.01, decay_mult: 3},\n"
                       "                 nothing.matches: {decay_mult: 0}}}}",
                       &root));
    dk_status s;
    dkh_optim *o = dkh_optim_new_params(dk_cfg_get(root, "optim_wrapper"), names, params, n, &s);
    CHECK_OK(s);
    assert_int_equal(dkh_optim_n_params(o), n);
    for (size_t i = 0; i < n; i++) {
        double lr_mult, decay_mult;
        assert_str_eq(dkh_optim_param_name(o, i), cases[i].name);
        dkh_optim_param_mults(o, i, &lr_mult, &decay_mult);
        if (lr_mult != cases[i].lr_mult || decay_mult != cases[i].decay_mult)
            fail_msg("%s: got lr_mult %g decay_mult %g, want %g %g", cases[i].name, lr_mult,
                     decay_mult, cases[i].lr_mult, cases[i].decay_mult);
    }

    /* The multipliers reach the update: lr 0.1 * mult, weight decay 1e-4 * mult. */
    const float *g[32];
    static const float ones[2] = {1, 1};
    for (size_t i = 0; i < n; i++)
        g[i] = ones;
    add_grads(params, g, n);
    dkh_optim_result res;
    CHECK_OK(dkh_optim_step(o, &res));
    for (size_t i = 0; i < n; i++) {
        const float *w = dk_tensor_data(params[i]);
        double want = 2 - 0.1 * cases[i].lr_mult * (1 + 1e-4 * cases[i].decay_mult * 2);
        check_close(w[1], want, 1e-6, cases[i].name, 1);
    }
    dkh_optim_free(o);
    dkh_cfg_free(root);
    for (size_t i = 0; i < n; i++)
        dk_tensor_release(params[i]);
}

/* Without paramwise_cfg every multiplier is 1; the norm rule on its own. */
static void test_norm_names(void **state)
{
    assert_true(dkh_paramwise_is_norm("backbone.bn.weight"));
    assert_true(dkh_paramwise_is_norm("a.bn12.bias"));
    assert_true(dkh_paramwise_is_norm("a.gn_3.weight"));
    assert_true(dkh_paramwise_is_norm("a.BatchNorm.weight"));
    assert_true(dkh_paramwise_is_norm("norm.weight"));
    assert_false(dkh_paramwise_is_norm("bn.x.weight")); /* only the owning module counts */
    assert_false(dkh_paramwise_is_norm("a.bneck.weight"));
    assert_false(dkh_paramwise_is_norm("a.lnx.weight"));
    assert_false(dkh_paramwise_is_norm("weight"));
}

/* Frozen parameters are left out; a tensor listed twice is refused unless
 * bypass_duplicate. */
static void test_frozen_and_duplicates(void **state)
{
    int64_t shape[1] = {2};
    float data[2] = {1, 2};
    dk_tensor *a = make_param(1, shape, data);
    dk_tensor *frozen = dk_from_data(1, shape, DK_DTYPE_F32, data);
    const char *names[3] = {"a.weight", "b.weight", "shared.weight"};
    dk_tensor *params[3] = {a, frozen, a};
    dk_cfg *root = NULL;
    CHECK_OK(validated("optim_wrapper", "{optimizer: {type: SGD, lr: 0.1}}", &root));
    dk_status s;
    dkh_optim *o = dkh_optim_new_params(dk_cfg_get(root, "optim_wrapper"), names, params, 3, &s);
    assert_null(o);
    assert_int_equal(s, DK_ERR_CONFIG);
    CHECK_MSG("'shared.weight' is the same tensor as 'a.weight'");
    CHECK_MSG("bypass_duplicate");
    dkh_cfg_free(root);

    CHECK_OK(validated("optim_wrapper",
                       "{optimizer: {type: SGD, lr: 0.1}, paramwise_cfg: {bypass_duplicate: true}}",
                       &root));
    o = dkh_optim_new_params(dk_cfg_get(root, "optim_wrapper"), names, params, 3, &s);
    CHECK_OK(s);
    assert_int_equal(dkh_optim_n_params(o), 1);
    assert_str_eq(dkh_optim_param_name(o, 0), "a.weight");
    dkh_optim_free(o);

    /* Nothing trainable at all is an error too. */
    o = dkh_optim_new_params(dk_cfg_get(root, "optim_wrapper"), names + 1, params + 1, 1, &s);
    assert_null(o);
    CHECK_MSG("no trainable parameters");
    dkh_cfg_free(root);
    dk_tensor_release(a);
    dk_tensor_release(frozen);
}

/* ---- clipping ------------------------------------------------------------------------------ */

/* One SGD step with lr 1 and gradients g: the update is exactly the clipped
 * gradient. Returns the result. */
static dkh_optim_result clip_step(const char *clip, const float *g, float *after)
{
    int64_t shape[1] = {4};
    float w0[4] = {0, 0, 0, 0};
    dk_tensor *p = make_param(1, shape, w0);
    const char *name = "w";
    char *text = dkh_asprintf("{optimizer: {type: SGD, lr: 1.0}, clip_grad: %s}", clip);
    dk_cfg *root = NULL;
    CHECK_OK(validated("optim_wrapper", text, &root));
    free(text);
    dk_status s;
    dkh_optim *o = dkh_optim_new_params(dk_cfg_get(root, "optim_wrapper"), &name, &p, 1, &s);
    CHECK_OK(s);
    add_grads(&p, &g, 1);
    dkh_optim_result res;
    CHECK_OK(dkh_optim_step(o, &res));
    memcpy(after, dk_tensor_data(p), sizeof(float) * 4);
    /* The gradients were zeroed after the update. */
    const float *gz = dk_tensor_data(dk_tensor_grad(p));
    for (int i = 0; i < 4; i++)
        assert_true(gz[i] == 0);
    dkh_optim_free(o);
    dkh_cfg_free(root);
    dk_tensor_release(p);
    return res;
}

static void test_clip_by_norm(void **state)
{
    const float g[4] = {3, -4, 0, 12}; /* 2-norm 13, inf-norm 12 */
    float w[4];
    dkh_optim_result r = clip_step("{max_norm: 6.5}", g, w);
    assert_true(r.has_grad_norm);
    check_close(r.grad_norm, 13, 1e-12, "grad_norm", 0);
    double coef = 6.5 / (13 + 1e-6);
    for (int i = 0; i < 4; i++)
        check_close(w[i], -g[i] * coef, 1e-6, "w", i);

    r = clip_step("{max_norm: 3, norm_type: .inf}", g, w);
    check_close(r.grad_norm, 12, 1e-12, "grad_norm inf", 0);
    for (int i = 0; i < 4; i++)
        check_close(w[i], -g[i] * (3 / (12 + 1e-6)), 1e-6, "w inf", i);

    r = clip_step("{max_norm: 100, norm_type: 1}", g, w); /* 1-norm 19 < 100: unchanged */
    check_close(r.grad_norm, 19, 1e-12, "grad_norm 1", 0);
    for (int i = 0; i < 4; i++)
        check_close(w[i], -g[i], 1e-7, "w 1", i);
}

static void test_clip_by_value(void **state)
{
    const float g[4] = {0.5f, -2, 0.1f, 7};
    float w[4];
    /* The type follows from the keys; an explicit type works the same. */
    const char *clips[2] = {"{clip_value: 0.3}", "{type: value, clip_value: 0.3}"};
    for (int c = 0; c < 2; c++) {
        dkh_optim_result r = clip_step(clips[c], g, w);
        assert_false(r.has_grad_norm);
        const float want[4] = {-0.3f, 0.3f, -0.1f, -0.3f};
        for (int i = 0; i < 4; i++)
            check_close(w[i], want[i], 1e-7, "w", i);
    }
}

/* The norm of a large gradient spread over many parameters does not depend
 * on the thread count. */
static void test_grad_norm_threads(void **state)
{
    enum { N = 300000 };
    float *a = malloc(N * sizeof *a), *b = malloc(1000 * sizeof *b);
    for (int i = 0; i < N; i++)
        a[i] = (float)sin(i * 0.001) * 1e-3f;
    for (int i = 0; i < 1000; i++)
        b[i] = (float)i;
    dkh_gview g[2] = {{a, N}, {b, 1000}};
    int was = dk_get_num_threads();
    CHECK_OK(dk_set_num_threads(1));
    double one = dkh_grads_norm(g, 2, 2);
    CHECK_OK(dk_set_num_threads(4));
    /* Threads apply when an op runs; run one. */
    dk_scope_begin();
    assert_non_null(dk_add_scalar(dk_zeros(1, (int64_t[]){8}, DK_DTYPE_F32, DK_CPU), 1));
    dk_scope_end();
    double four = dkh_grads_norm(g, 2, 2);
    CHECK_OK(dk_set_num_threads(was));
    assert_true(one == four);
    double want = 0;
    for (int i = 0; i < N; i++)
        want += (double)a[i] * a[i];
    for (int i = 0; i < 1000; i++)
        want += (double)b[i] * b[i];
    check_close(one, sqrt(want), 1e-12, "norm", 0);
    free(a);
    free(b);
}

/* ---- accumulation ------------------------------------------------------------------------- */

static void test_accumulation(void **state)
{
    fixture f;
    fixture_init(&f, false);
    dkh_optim *o = wrapper_for(&f, "{optimizer: {type: SGD, lr: 1.0}, accumulative_counts: 3}");
    dk_status s;
    dkh_sched *sched = dkh_sched_new(NULL, 0, 7, 1, &s); /* 7 iterations in all */
    CHECK_OK(s);
    /* Updates after iterations 2 and 5 (blocks of 3, gradients / 3) and 6
     * (the last block has one iteration: / 1). */
    static const bool updates_at[7] = {false, false, true, false, false, true, true};
    static const int block_len[7] = {3, 3, 3, 3, 3, 3, 1};
    for (int it = 0; it < 7; it++) {
        double lr;
        dkh_optim_schedule(o, sched, 0, it, &lr, NULL);
        assert_true(lr == 1.0);
        fixture_grads(&f, it, SIZE_MAX);
        dkh_optim_result res;
        CHECK_OK(dkh_optim_step(o, &res));
        if (res.updated != updates_at[it])
            fail_msg("iteration %d: updated %d", it, res.updated);
        for (size_t k = 0; k < f.n; k++)
            for (int64_t i = 0; i < f.numel[k]; i++)
                f.w[k][i] -= grad_value(k, i, it) / block_len[it];
        if (!updates_at[it])
            continue;
        check_params(&f, 1e-5);
    }
    assert_int_equal(dkh_optim_updates(o), 3);
    dkh_sched_free(sched);
    dkh_optim_free(o);
    fixture_fini(&f);
}

static void test_grads_finite_and_zero(void **state)
{
    fixture f;
    fixture_init(&f, false);
    dkh_optim *o = wrapper_for(&f, "{optimizer: {type: SGD, lr: 1.0}}");
    assert_true(dkh_optim_grads_finite(o)); /* no gradients yet */
    fixture_grads(&f, 0, SIZE_MAX);
    assert_true(dkh_optim_grads_finite(o));
    float *g = dk_tensor_data(dk_tensor_grad(f.p[1]));
    g[3] = INFINITY;
    assert_false(dkh_optim_grads_finite(o));
    g[3] = NAN;
    assert_false(dkh_optim_grads_finite(o));
    dkh_optim_zero_grad(o);
    assert_true(dkh_optim_grads_finite(o));
    assert_true(g[3] == 0);
    dkh_optim_free(o);
    fixture_fini(&f);
}

/* ---- state -------------------------------------------------------------------------------- */

/* Save after 3 steps, load into a fresh wrapper over copies of the
 * parameters, and both continue identically, bit for bit. */
static void test_state_round_trip(void **state)
{
    const char *text = "{optimizer: {type: AdamW, lr: 0.01, amsgrad: true}}";
    fixture a, b;
    fixture_init(&a, false);
    fixture_init(&b, false);
    dkh_optim *oa = wrapper_for(&a, text);
    dkh_optim_result res;
    for (int step = 0; step < 3; step++) {
        fixture_grads(&a, step, step == 0 ? 0 : SIZE_MAX);
        CHECK_OK(dkh_optim_step(oa, &res));
    }
    for (size_t k = 0; k < a.n; k++)
        memcpy(dk_tensor_data(b.p[k]), dk_tensor_data(a.p[k]), (size_t)a.numel[k] * sizeof(float));
    dk_dict *d = dk_dict_new();
    CHECK_OK(dkh_optim_state_save(oa, d));
    assert_non_null(dk_dict_tensor(d, "backbone.conv.weight.max_exp_avg_sq"));
    assert_true(dk_dict_number(d, "backbone.conv.weight.step", 0) == 2);

    dkh_optim *ob = wrapper_for(&b, text);
    CHECK_OK(dkh_optim_state_load(ob, d));
    dk_dict_free(d);
    assert_int_equal(dkh_optim_updates(ob), 3);
    for (int step = 3; step < 6; step++) {
        fixture_grads(&a, step, SIZE_MAX);
        fixture_grads(&b, step, SIZE_MAX);
        CHECK_OK(dkh_optim_step(oa, &res));
        CHECK_OK(dkh_optim_step(ob, &res));
    }
    for (size_t k = 0; k < a.n; k++)
        assert_memory_equal(dk_tensor_data(a.p[k]), dk_tensor_data(b.p[k]),
                            (size_t)a.numel[k] * sizeof(float));
    dkh_optim_free(oa);
    dkh_optim_free(ob);
    fixture_fini(&a);
    fixture_fini(&b);
}

/* A state that does not fit is refused with every mismatch named, and the
 * wrapper keeps its own state. */
static void test_state_mismatch(void **state)
{
    fixture f;
    fixture_init(&f, false);
    dkh_optim *o = wrapper_for(&f, "{optimizer: {type: Adam, lr: 0.01}}");
    fixture_grads(&f, 0, SIZE_MAX);
    dkh_optim_result res;
    CHECK_OK(dkh_optim_step(o, &res));

    dk_dict *d = dk_dict_new();
    CHECK_OK(dkh_optim_state_save(o, d));
    dk_tensor *wrong = dk_zeros(1, (int64_t[]){5}, DK_DTYPE_F32, DK_CPU);
    CHECK_OK(dk_dict_set_tensor(d, "head.fc.weight.exp_avg", wrong));
    CHECK_OK(dk_dict_set_tensor(d, "head.fc.weight.momentum_buffer", wrong));
    CHECK_OK(dk_dict_set_tensor(d, "backbone.gone.weight.exp_avg", wrong));
    CHECK_OK(dk_dict_set_number(d, "head.fc.weight.step", -1));
    dk_tensor_release(wrong);
    float before = ((float *)dk_tensor_data(f.p[0]))[0];
    const void *exp_avg_before = NULL;
    {
        dk_dict *mine = dk_dict_new();
        CHECK_OK(dkh_optim_state_save(o, mine));
        exp_avg_before = dk_dict_tensor(mine, "backbone.conv.weight.exp_avg");
        dk_dict_free(mine);
    }
    dk_status s = dkh_optim_state_load(o, d);
    assert_int_equal(s, DK_ERR_SHAPE);
    CHECK_MSG("4 entries of the saved Adam state do not fit");
    CHECK_MSG("'head.fc.weight.exp_avg' is f32 (5) but the parameter is f32 (2, 3)");
    CHECK_MSG("'head.fc.weight.momentum_buffer': optimizer Adam keeps no state "
              "'momentum_buffer' (its states: exp_avg, exp_avg_sq)");
    CHECK_MSG("'backbone.gone.weight.exp_avg' names no trainable parameter");
    CHECK_MSG("'head.fc.weight.step' must be a whole number >= 0");
    /* Nothing changed: the same state tensor is still there. */
    dk_dict *after = dk_dict_new();
    CHECK_OK(dkh_optim_state_save(o, after));
    assert_ptr_equal(dk_dict_tensor(after, "backbone.conv.weight.exp_avg"), exp_avg_before);
    dk_dict_free(after);
    assert_true(((float *)dk_tensor_data(f.p[0]))[0] == before);

    /* A missing companion state is named too. */
    dk_dict_clear(d);
    CHECK_OK(dkh_optim_state_save(o, d));
    assert_true(dk_dict_remove(d, "head.fc.weight.exp_avg_sq"));
    assert_int_equal(dkh_optim_state_load(o, d), DK_ERR_NOT_FOUND);
    CHECK_MSG("'head.fc.weight.exp_avg_sq' is missing");
    dk_dict_free(d);
    dkh_optim_free(o);
    fixture_fini(&f);
}

/* ---- config errors -------------------------------------------------------------------------- */

/* Fails validation (or construction) of `text` and checks the message. */
static void expect_error(const char *text, dk_status want, const char *needle)
{
    dk_cfg *root = NULL;
    dk_status s = validated("optim_wrapper", text, &root);
    if (s == DK_OK) {
        int64_t shape[1] = {2};
        float data[2] = {1, 2};
        dk_tensor *p = make_param(1, shape, data);
        const char *name = "w";
        dkh_optim *o = dkh_optim_new_params(dk_cfg_get(root, "optim_wrapper"), &name, &p, 1, &s);
        dkh_optim_free(o);
        dk_tensor_release(p);
        dkh_cfg_free(root);
        if (s == DK_OK)
            fail_msg("no error for %s", text);
    }
    assert_int_equal(s, want);
    CHECK_MSG(needle);
}

static void test_config_errors(void **state)
{
    expect_error("{optimizer: {type: SGDD, lr: 0.1}}", DK_ERR_CONFIG,
                 "t.yaml:1:35: optim_wrapper.optimizer: unknown optimizer type 'SGDD' (did you "
                 "mean 'SGD'?)");
    expect_error("\n  optimizer:\n    type: SGD\n    lr: -0.1\n", DK_ERR_CONFIG,
                 "t.yaml:4:9: optim_wrapper.optimizer.lr: -0.1 is less than the minimum 0");
    expect_error("{optimizer: {type: SGD, lr: 0.1, nesterov: true}}", DK_ERR_CONFIG,
                 "t.yaml:1:59: optim_wrapper.optimizer.nesterov: needs momentum > 0 and "
                 "dampening 0");
    expect_error("{optimizer: {type: AdamW, betas: [0.9, 0.99, 0.9]}}", DK_ERR_CONFIG,
                 "t.yaml:1:49: optim_wrapper.optimizer.betas: expected two numbers [beta1, beta2], "
                 "got 3");
    expect_error("{optimizer: {type: Adam, betas: [0.9, 1.0]}}", DK_ERR_CONFIG,
                 "t.yaml:1:54: optim_wrapper.optimizer.betas.1: beta2 must be in [0, 1)");
    expect_error("{optimzer: {type: SGD, lr: 0.1}}", DK_ERR_CONFIG,
                 "t.yaml:1:17: optim_wrapper: unknown key 'optimzer' (did you mean 'optimizer'?)");
    expect_error("{optimizer: {type: SGD, lr: 0.1}, clip_grad: {norm_type: 2}}", DK_ERR_CONFIG,
                 "t.yaml:1:61: optim_wrapper.clip_grad: clipping by norm needs max_norm");
    expect_error("{optimizer: {type: SGD, lr: 0.1}, clip_grad: {type: value}}", DK_ERR_CONFIG,
                 "t.yaml:1:61: optim_wrapper.clip_grad: clipping by value needs clip_value");
    expect_error("{optimizer: {type: SGD, lr: 0.1}, accumulative_counts: 0}", DK_ERR_CONFIG,
                 "t.yaml:1:71: optim_wrapper.accumulative_counts: 0 is less than the minimum 1");
    expect_error("{optimizer: {type: SGD, lr: 0.1},\n"
                 " paramwise_cfg: {custom_keys: {backbone: {lr_mul: 0.1}}}}",
                 DK_ERR_CONFIG,
                 "t.yaml:2:51: optim_wrapper.paramwise_cfg.custom_keys.backbone.lr_mul: unknown "
                 "key 'lr_mul' (did you mean 'lr_mult'?)");
    expect_error("{optimizer: {type: SGD, lr: 0.1},\n"
                 " paramwise_cfg: {custom_keys: {backbone: {decay_mult: -1}}}}",
                 DK_ERR_CONFIG,
                 "t.yaml:2:55: optim_wrapper.paramwise_cfg.custom_keys.backbone."
                 "decay_mult: a multiplier must be >= 0, got -1");
    expect_error("{optimizer: {type: CosineAnnealingLR}}", DK_ERR_CONFIG,
                 "unknown optimizer type 'CosineAnnealingLR' (there is a lr_scheduler type");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_plain),
        cmocka_unit_test(test_sgd_momentum),
        cmocka_unit_test(test_sgd_nesterov),
        cmocka_unit_test(test_adam),
        cmocka_unit_test(test_adamw),
        cmocka_unit_test(test_adam_per_parameter_steps),
        cmocka_unit_test(test_set_values),
        cmocka_unit_test(test_paramwise_rules),
        cmocka_unit_test(test_norm_names),
        cmocka_unit_test(test_frozen_and_duplicates),
        cmocka_unit_test(test_clip_by_norm),
        cmocka_unit_test(test_clip_by_value),
        cmocka_unit_test(test_grad_norm_threads),
        cmocka_unit_test(test_accumulation),
        cmocka_unit_test(test_grads_finite_and_zero),
        cmocka_unit_test(test_state_round_trip),
        cmocka_unit_test(test_state_mismatch),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, optim_registry_setup, optim_registry_teardown);
}
