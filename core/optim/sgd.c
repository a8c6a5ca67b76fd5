/* core/optim/sgd.c — the SGD optimizer type, with PyTorch's torch.optim.SGD
 * update exactly (momentum, dampening, Nesterov, L2 weight decay):
 *
 *     d = g + weight_decay * w
 *     if momentum != 0:
 *         buf = d                                  on the parameter's first update
 *         buf = momentum * buf + (1 - dampening) * d   afterwards
 *         d = nesterov ? d + momentum * buf : buf
 *     w = w - lr * d
 *
 * Every operation is done in f32 in PyTorch's order, one fused loop per
 * parameter.
 */
#include "optim_impl.h"

typedef struct sgd {
    double lr, momentum, dampening, weight_decay;
    bool nesterov;
} sgd;

static const char *const sgd_state_names[] = {"momentum_buffer"};

static dk_status sgd_create(const dk_cfg *cfg, void **self)
{
    sgd s = {0};
    DK_TRY(dk_cfg_get_float(cfg, "lr", &s.lr));
    DK_TRY(dk_cfg_get_float(cfg, "momentum", &s.momentum));
    DK_TRY(dk_cfg_get_float(cfg, "dampening", &s.dampening));
    DK_TRY(dk_cfg_get_float(cfg, "weight_decay", &s.weight_decay));
    DK_TRY(dk_cfg_get_bool(cfg, "nesterov", &s.nesterov));
    if (s.nesterov && (s.momentum <= 0 || s.dampening != 0))
        return dkh_optim_cfg_fail(dk_cfg_get(cfg, "nesterov"),
                                  "needs momentum > 0 and dampening 0, got momentum %g and "
                                  "dampening %g",
                                  s.momentum, s.dampening);
    sgd *p = dk_malloc(sizeof *p);
    if (!p)
        return dk_fail(DK_ERR_NOMEM, "SGD: out of memory");
    *p = s;
    *self = p;
    return DK_OK;
}

static void sgd_destroy(void *self)
{
    dk_free(self);
}

static void sgd_base(const void *self, double *lr, double *weight_decay, double *momentum)
{
    const sgd *s = self;
    *lr = s->lr;
    *weight_decay = s->weight_decay;
    *momentum = s->momentum;
}

static void sgd_update(const sgd *s, const dk_optim_param *p, bool first)
{
    float *restrict w = dk_tensor_data(p->param);
    const float *restrict g = dk_tensor_data(p->grad);
    const int64_t n = dk_tensor_numel(p->param);
    const float lr = (float)p->lr, wd = (float)p->weight_decay, mu = (float)p->momentum;
    const float keep = (float)(1.0 - s->dampening);
    const bool decay = p->weight_decay != 0;
    if (p->momentum == 0) {
#pragma omp parallel for simd if (n >= DKH_OPTIM_PAR_MIN) schedule(static)
        for (int64_t i = 0; i < n; i++) {
            float d = decay ? g[i] + wd * w[i] : g[i];
            w[i] = w[i] - lr * d;
        }
        return;
    }
    float *restrict buf = dk_tensor_data(p->state[0]);
    const bool nesterov = s->nesterov;
#pragma omp parallel for simd if (n >= DKH_OPTIM_PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float d = decay ? g[i] + wd * w[i] : g[i];
        float b = first ? d : buf[i] * mu + keep * d;
        buf[i] = b;
        d = nesterov ? d + mu * b : b;
        w[i] = w[i] - lr * d;
    }
}

static dk_status sgd_step(void *self, const dk_optim_param *params, size_t n, int64_t step)
{
    for (size_t i = 0; i < n; i++)
        sgd_update(self, &params[i], step == 1);
    return DK_OK;
}

static const dk_optimizer_vtable sgd_vtable = {
    .struct_size = sizeof(dk_optimizer_vtable),
    .create = sgd_create,
    .destroy = sgd_destroy,
    .n_state = 1,
    .state_names = sgd_state_names,
    .base = sgd_base,
    .step = sgd_step,
};

static const dk_param sgd_params[] = {
    {.name = "lr", .type = DK_PARAM_FLOAT, .flags = DK_PARAM_REQUIRED, .min = "0",
     .doc = "learning rate"},
    {.name = "momentum", .type = DK_PARAM_FLOAT, .def = "0", .min = "0",
     .doc = "momentum factor (schedules may change it)"},
    {.name = "dampening", .type = DK_PARAM_FLOAT, .def = "0", .min = "0", .max = "1",
     .doc = "dampening of the momentum"},
    {.name = "weight_decay", .type = DK_PARAM_FLOAT, .def = "0", .min = "0",
     .doc = "L2 penalty added to the gradient"},
    {.name = "nesterov", .type = DK_PARAM_BOOL, .def = "false",
     .doc = "Nesterov momentum (needs momentum > 0 and dampening 0)"},
};

const dk_type_info dkh_sgd_type = {
    DK_TYPE_INFO_HEAD,
    .kind = "optimizer",
    .name = "SGD",
    .summary = "stochastic gradient descent with momentum (torch.optim.SGD)",
    .iface = DK_IFACE_OPTIMIZER,
    .vtable = &sgd_vtable,
    DK_PARAMS(sgd_params),
};
