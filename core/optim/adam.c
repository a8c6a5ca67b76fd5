/* core/optim/adam.c — the Adam and AdamW optimizer types, with PyTorch's
 * torch.optim.Adam / AdamW updates exactly. At update number k of a
 * parameter (beta1 is dk_optim_param.momentum, so schedules can drive it):
 *
 *     Adam:  g = g + weight_decay * w            (L2, coupled into the gradient)
 *     AdamW: w = w * (1 - lr * weight_decay)     (decoupled)
 *     m = beta1 * m + (1 - beta1) * g
 *     v = beta2 * v + (1 - beta2) * g * g
 *     vmax = max(vmax, v); v' = amsgrad ? vmax : v
 *     w = w - lr / (1 - beta1^k) * m / (sqrt(v') / sqrt(1 - beta2^k) + eps)
 *
 * The two types differ only in where the weight decay goes, so one kernel
 * serves both. Scalars are computed in double and the elementwise work in
 * f32, in PyTorch's order.
 */
#include "optim_impl.h"

#include <math.h>

typedef struct adam {
    double lr, beta1, beta2, eps, weight_decay;
    bool amsgrad;
    bool decoupled; /* AdamW */
} adam;

static const char *const adam_state_names[] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};

static dk_status adam_create_common(const dk_cfg *cfg, bool decoupled, void **self)
{
    adam a = {.decoupled = decoupled};
    DK_TRY(dk_cfg_get_float(cfg, "lr", &a.lr));
    DK_TRY(dk_cfg_get_float(cfg, "eps", &a.eps));
    DK_TRY(dk_cfg_get_float(cfg, "weight_decay", &a.weight_decay));
    DK_TRY(dk_cfg_get_bool(cfg, "amsgrad", &a.amsgrad));
    const dk_cfg *betas = dk_cfg_get(cfg, "betas");
    if (dk_cfg_len(betas) != 2)
        return dkh_optim_cfg_fail(betas, "expected two numbers [beta1, beta2], got %zu",
                                  dk_cfg_len(betas));
    DK_TRY(dk_cfg_get_float(betas, "0", &a.beta1));
    DK_TRY(dk_cfg_get_float(betas, "1", &a.beta2));
    for (int i = 0; i < 2; i++) {
        double b = i ? a.beta2 : a.beta1;
        if (!(b >= 0 && b < 1))
            return dkh_optim_cfg_fail(dk_cfg_at(betas, (size_t)i),
                                      "beta%d must be in [0, 1), got %g", i + 1, b);
    }
    adam *p = dk_malloc(sizeof *p);
    if (!p)
        return dk_fail(DK_ERR_NOMEM, "%s: out of memory", decoupled ? "AdamW" : "Adam");
    *p = a;
    *self = p;
    return DK_OK;
}

static dk_status adam_create(const dk_cfg *cfg, void **self)
{
    return adam_create_common(cfg, false, self);
}

static dk_status adamw_create(const dk_cfg *cfg, void **self)
{
    return adam_create_common(cfg, true, self);
}

static void adam_destroy(void *self)
{
    dk_free(self);
}

static void adam_base(const void *self, double *lr, double *weight_decay, double *momentum)
{
    const adam *a = self;
    *lr = a->lr;
    *weight_decay = a->weight_decay;
    *momentum = a->beta1;
}

static uint32_t adam_n_state_used(const void *self)
{
    const adam *a = self;
    return a->amsgrad ? 3 : 2;
}

static void adam_update(const adam *a, const dk_optim_param *p, int64_t step)
{
    float *restrict w = dk_tensor_data(p->param);
    const float *restrict g = dk_tensor_data(p->grad);
    float *restrict m = dk_tensor_data(p->state[0]);
    float *restrict v = dk_tensor_data(p->state[1]);
    float *restrict vmax = a->amsgrad ? dk_tensor_data(p->state[2]) : NULL;
    const int64_t n = dk_tensor_numel(p->param);

    const double beta1 = p->momentum;
    const double bc1 = 1.0 - pow(beta1, (double)step);
    const double bc2 = 1.0 - pow(a->beta2, (double)step);
    const float step_size = (float)(p->lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    const float b1 = (float)beta1, one_b1 = (float)(1.0 - beta1);
    const float b2 = (float)a->beta2, one_b2 = (float)(1.0 - a->beta2);
    const float eps = (float)a->eps;
    const bool coupled = !a->decoupled && p->weight_decay != 0;
    const float wd = (float)p->weight_decay;
    const bool decoupled = a->decoupled && p->weight_decay != 0;
    const float shrink = (float)(1.0 - p->lr * p->weight_decay);
    const bool amsgrad = a->amsgrad;

#pragma omp parallel for simd if (n >= DKH_OPTIM_PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float wi = decoupled ? w[i] * shrink : w[i];
        float gi = coupled ? g[i] + wd * wi : g[i];
        float mi = m[i] * b1 + one_b1 * gi;
        float vi = v[i] * b2 + one_b2 * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        float vu = vi;
        if (amsgrad) {
            vu = vmax[i] > vi ? vmax[i] : vi;
            vmax[i] = vu;
        }
        float denom = sqrtf(vu) / bc2_sqrt + eps;
        w[i] = wi - step_size * (mi / denom);
    }
}

static dk_status adam_step(void *self, const dk_optim_param *params, size_t n, int64_t step)
{
    for (size_t i = 0; i < n; i++)
        adam_update(self, &params[i], step);
    return DK_OK;
}

static const dk_optimizer_vtable adam_vtable = {
    .struct_size = sizeof(dk_optimizer_vtable),
    .create = adam_create,
    .destroy = adam_destroy,
    .n_state = 3,
    .state_names = adam_state_names,
    .base = adam_base,
    .step = adam_step,
    .n_state_used = adam_n_state_used,
};

static const dk_optimizer_vtable adamw_vtable = {
    .struct_size = sizeof(dk_optimizer_vtable),
    .create = adamw_create,
    .destroy = adam_destroy,
    .n_state = 3,
    .state_names = adam_state_names,
    .base = adam_base,
    .step = adam_step,
    .n_state_used = adam_n_state_used,
};

/* The two schemas differ only in the weight decay's default and meaning. */
#define ADAM_PARAMS(wd_default, wd_doc)                                                      \
    {.name = "lr", .type = DK_PARAM_FLOAT, .def = "0.001", .min = "0",                     \
     .doc = "learning rate"},                                                              \
    {.name = "betas", .type = DK_PARAM_LIST, .elem = DK_PARAM_FLOAT, .def = "[0.9, 0.999]", \
     .doc = "[beta1, beta2]: decay of the gradient's running mean and square (beta1 is "   \
            "the scheduled momentum)"},                                                    \
    {.name = "eps", .type = DK_PARAM_FLOAT, .def = "1e-08", .min = "0",                    \
     .doc = "added to the denominator"},                                                   \
    {.name = "weight_decay", .type = DK_PARAM_FLOAT, .def = wd_default, .min = "0",        \
     .doc = wd_doc},                                                                       \
    {.name = "amsgrad", .type = DK_PARAM_BOOL, .def = "false",                             \
     .doc = "use the maximum of the squared-gradient averages (AMSGrad)"}

static const dk_param adam_params[] = {
    ADAM_PARAMS("0", "L2 penalty added to the gradient"),
};

static const dk_param adamw_params[] = {
    ADAM_PARAMS("0.01", "decoupled weight decay: w *= 1 - lr * weight_decay"),
};

const dk_type_info dkh_adam_type = {
    DK_TYPE_INFO_HEAD,
    .kind = "optimizer",
    .name = "Adam",
    .summary = "Adam with L2 weight decay in the gradient (torch.optim.Adam)",
    .iface = DK_IFACE_OPTIMIZER,
    .vtable = &adam_vtable,
    DK_PARAMS(adam_params),
};

const dk_type_info dkh_adamw_type = {
    DK_TYPE_INFO_HEAD,
    .kind = "optimizer",
    .name = "AdamW",
    .summary = "Adam with decoupled weight decay (torch.optim.AdamW)",
    .iface = DK_IFACE_OPTIMIZER,
    .vtable = &adamw_vtable,
    DK_PARAMS(adamw_params),
};
