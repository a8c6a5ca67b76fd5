/* ema_hook — EMAHook: an exponential moving average of the model's weights,
 * evaluated in place of the trained ones (mmengine's EMAHook).
 *
 * After every training iteration (from begin_iter / begin_epoch on; before
 * that the average just follows the weights) each parameter's average moves
 * toward it:  ema = (1 - momentum) * ema + momentum * param,  with mmengine's
 * convention that momentum is the weight of the new value (0.0002: a slow
 * average). Buffers (batch-norm statistics) stay the model's own unless
 * update_buffers averages the f32 ones too. Validation and test run on the
 * average: before their loop the averaged values are swapped into the model
 * and after it swapped back, so training continues on its own weights.
 *
 * Checkpoints hold the trained weights as the model's and the averages in
 * this hook's state, under the parameter names; a resumed run restores them,
 * and a run loading a checkpoint without them starts the average from the
 * loaded weights. The averages live on the CPU as plain f32 arrays.
 */
#include <dk/dk.h>

#include <stdio.h>
#include <string.h>

typedef struct ema_slot {
    dk_tensor *src; /* the model's tensor (borrowed: the model owns it) */
    dk_tensor *avg; /* its average (a reference this hook owns) */
    char *name;
} ema_slot;

typedef struct ema {
    /* options */
    double momentum;
    int64_t interval;
    int64_t begin_iter;
    int64_t begin_epoch;
    bool update_buffers;
    /* this run */
    ema_slot *slots;
    size_t n;
    bool ready;
    bool swapped; /* the model holds the averages */
    int64_t steps; /* updates since the average started (saved in checkpoints) */
} ema;

static dk_status ema_create(const dk_cfg *cfg, void **self)
{
    ema *e = dk_calloc(1, sizeof *e);
    if (!e)
        return dk_fail(DK_ERR_NOMEM, "EMAHook: out of memory");
    dk_status s = dk_cfg_get_float(cfg, "momentum", &e->momentum);
    if (s == DK_OK)
        s = dk_cfg_get_int(cfg, "interval", &e->interval);
    if (s == DK_OK)
        s = dk_cfg_get_int(cfg, "begin_iter", &e->begin_iter);
    if (s == DK_OK)
        s = dk_cfg_get_int(cfg, "begin_epoch", &e->begin_epoch);
    if (s == DK_OK)
        s = dk_cfg_get_bool(cfg, "update_buffers", &e->update_buffers);
    if (s == DK_OK && !(e->momentum > 0 && e->momentum <= 1)) {
        const dk_cfg *node = dk_cfg_get(cfg, "momentum");
        s = dk_fail(DK_ERR_CONFIG, "momentum (%s) must be in (0, 1], got %g (it is the "
                    "weight of the new value: 0.0002 averages slowly)",
                    dk_cfg_where(node), e->momentum);
    }
    if (s != DK_OK) {
        dk_free(e);
        return s;
    }
    *self = e;
    return DK_OK;
}

static void ema_destroy(void *self)
{
    ema *e = self;
    for (size_t i = 0; i < e->n; i++) {
        dk_tensor_release(e->slots[i].avg);
        dk_free(e->slots[i].name);
    }
    dk_free(e->slots);
    dk_free(e);
}

static float *f32(const dk_tensor *t)
{
    return dk_tensor_data(t);
}

static void copy_slot(const ema_slot *s)
{
    memcpy(f32(s->avg), f32(s->src), (size_t)dk_tensor_numel(s->src) * sizeof(float));
}

static void copy_all(const ema *e)
{
    for (size_t i = 0; i < e->n; i++)
        copy_slot(&e->slots[i]);
}

/* ema += m * (param - ema), i.e. (1 - m) * ema + m * param. */
static void average_all(const ema *e)
{
    const float m = (float)e->momentum;
    for (size_t i = 0; i < e->n; i++) {
        float *a = f32(e->slots[i].avg);
        const float *p = f32(e->slots[i].src);
        int64_t n = dk_tensor_numel(e->slots[i].src);
        for (int64_t j = 0; j < n; j++)
            a[j] += m * (p[j] - a[j]);
    }
}

static void swap_all(ema *e)
{
    for (size_t i = 0; i < e->n; i++) {
        float *a = f32(e->slots[i].avg), *p = f32(e->slots[i].src);
        int64_t n = dk_tensor_numel(e->slots[i].src);
        for (int64_t j = 0; j < n; j++) {
            float t = a[j];
            a[j] = p[j];
            p[j] = t;
        }
    }
    e->swapped = !e->swapped;
}

/* Whether the model's tensor number i is averaged, or why it cannot be. */
static dk_status pick(const ema *e, dk_tensor *t, const char *name, bool is_buffer, bool *use)
{
    *use = !is_buffer || (e->update_buffers && dk_tensor_dtype(t) == DK_DTYPE_F32);
    if (!*use)
        return DK_OK;
    dk_device dev = dk_tensor_device(t);
    if (dev.type != DK_DEVICE_CPU)
        return dk_fail(DK_ERR_UNSUPPORTED, "EMAHook: %s lives on a CUDA device (cuda:%d); "
                       "EMAHook averages CPU weights only", name, (int)dev.index);
    if (dk_tensor_dtype(t) != DK_DTYPE_F32 || !dk_tensor_is_contiguous(t))
        return dk_fail(DK_ERR_UNSUPPORTED, "EMAHook: %s is not a contiguous f32 tensor (%s)",
                       name, dk_dtype_name(dk_tensor_dtype(t)));
    return DK_OK;
}

/* A new CPU tensor shaped like t that this hook owns, whether or not the
 * hook point runs inside one of the runner's scopes. */
static dk_tensor *owned_like(dk_tensor *t)
{
    dk_scope_begin();
    dk_tensor *a = dk_empty(dk_tensor_ndim(t), dk_tensor_shape(t), DK_DTYPE_F32, DK_CPU);
    if (a)
        dk_tensor_retain(a);
    dk_scope_end();
    return a;
}

/* Makes the averages (from the model's current values) on first use: the
 * runner may load a checkpoint before or after before_run. */
static dk_status setup(ema *e, dk_runner *r)
{
    if (e->ready)
        return DK_OK;
    dk_object *model = dk_runner_model(r);
    if (!model)
        return dk_fail(DK_ERR_RUNTIME, "EMAHook: the runner has no model to average");
    size_t total = dk_module_n_tensors(model);
    e->slots = dk_calloc(total ? total : 1, sizeof *e->slots);
    if (!e->slots)
        return dk_fail(DK_ERR_NOMEM, "EMAHook: out of memory");
    for (size_t i = 0; i < total; i++) {
        const char *name = NULL;
        bool is_buffer = false, use = false;
        dk_tensor *t = dk_module_tensor_at(model, i, &name, &is_buffer);
        DK_TRY(pick(e, t, name, is_buffer, &use));
        if (!use)
            continue;
        ema_slot *s = &e->slots[e->n];
        s->src = t;
        s->name = dk_strdup(name);
        s->avg = owned_like(t);
        if (!s->name || !s->avg) {
            dk_free(s->name);
            dk_tensor_release(s->avg);
            return dk_fail(DK_ERR_NOMEM, "EMAHook: out of memory for the average of %s", name);
        }
        e->n++;
        copy_slot(s);
    }
    e->ready = true;
    return DK_OK;
}

static dk_status ema_before_run(void *self, dk_runner *r)
{
    return setup(self, r);
}

static dk_status ema_after_train_iter(void *self, dk_runner *r)
{
    ema *e = self;
    DK_TRY(setup(e, r));
    bool started = dk_runner_iter(r) + 1 >= e->begin_iter &&
                   dk_runner_epoch(r) + 1 >= e->begin_epoch;
    if (!started) {
        copy_all(e);
        return DK_OK;
    }
    if (e->steps % e->interval == 0) {
        if (e->steps == 0)
            copy_all(e);
        else
            average_all(e);
    }
    e->steps++;
    return DK_OK;
}

static dk_status ema_before_eval_epoch(void *self, dk_runner *r)
{
    ema *e = self;
    DK_TRY(setup(e, r));
    if (!e->swapped)
        swap_all(e);
    return DK_OK;
}

static dk_status ema_after_eval_epoch(void *self, dk_runner *r)
{
    ema *e = self;
    if (e->swapped)
        swap_all(e);
    return DK_OK;
}

static dk_status ema_before_save_checkpoint(void *self, dk_runner *r)
{
    ema *e = self;
    dk_dict *state = dk_runner_state(r);
    DK_TRY(setup(e, r));
    if (!state)
        return DK_OK;
    /* Inside an evaluation loop the model holds the averages. */
    for (size_t i = 0; i < e->n; i++) {
        const ema_slot *s = &e->slots[i];
        DK_TRY(dk_dict_set_tensor(state, s->name, e->swapped ? s->src : s->avg));
    }
    return dk_dict_set_number(state, "ema_steps", (double)e->steps);
}

/* "64, 3, 3, 3" into buf. */
static void shape_str(const dk_tensor *t, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int d = 0; d < dk_tensor_ndim(t) && used < size; d++) {
        int n = snprintf(buf + used, size - used, "%s%lld", d ? ", " : "",
                         (long long)dk_tensor_shape(t)[d]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* Copies a saved average into slot s after checking it fits. */
static dk_status restore_slot(const ema_slot *s, const dk_tensor *saved)
{
    int nd = dk_tensor_ndim(s->src);
    bool same = dk_tensor_ndim(saved) == nd && dk_tensor_dtype(saved) == DK_DTYPE_F32;
    for (int d = 0; same && d < nd; d++)
        same = dk_tensor_shape(saved)[d] == dk_tensor_shape(s->src)[d];
    if (!same) {
        char want[128], got[128];
        shape_str(s->src, want, sizeof want);
        shape_str(saved, got, sizeof got);
        return dk_fail(DK_ERR_SHAPE, "EMAHook: the checkpoint's average of %s is %s (%s), the "
                       "model's is f32 (%s)", s->name, dk_dtype_name(dk_tensor_dtype(saved)),
                       got, want);
    }
    return dk_tensor_to_host(saved, f32(s->avg),
                             (size_t)dk_tensor_numel(s->avg) * sizeof(float));
}

static dk_status ema_after_load_checkpoint(void *self, dk_runner *r)
{
    ema *e = self;
    DK_TRY(setup(e, r));
    const dk_dict *state = dk_runner_state(r);
    size_t missing = 0;
    for (size_t i = 0; i < e->n; i++) {
        const dk_tensor *saved = state ? dk_dict_tensor(state, e->slots[i].name) : NULL;
        if (saved) {
            DK_TRY(restore_slot(&e->slots[i], saved));
        } else {
            copy_slot(&e->slots[i]);
            missing++;
        }
    }
    e->steps = state && missing == 0 ? (int64_t)dk_dict_number(state, "ema_steps", 0) : 0;
    if (missing > 0 && missing < e->n)
        dk_log(DK_LOG_WARN, "EMAHook: the checkpoint has no average for %zu of %zu weights; "
               "those start from the loaded weights", missing, e->n);
    return DK_OK;
}

static const dk_param ema_params[] = {
    {.name = "momentum", .type = DK_PARAM_FLOAT, .def = "0.0002", .min = "0", .max = "1",
     .doc = "weight of the new value in each update: ema = (1 - momentum) * ema + momentum * "
            "param; in (0, 1]"},
    {.name = "interval", .type = DK_PARAM_INT, .def = "1", .min = "1",
     .doc = "update the average every this many iterations"},
    {.name = "begin_iter", .type = DK_PARAM_INT, .def = "0", .min = "0",
     .doc = "start averaging at this iteration (counted from 1); before, the average "
            "follows the weights"},
    {.name = "begin_epoch", .type = DK_PARAM_INT, .def = "0", .min = "0",
     .doc = "start averaging at this epoch (counted from 1)"},
    {.name = "update_buffers", .type = DK_PARAM_BOOL, .def = "false",
     .doc = "also average the f32 buffers (batch-norm statistics) instead of using the "
            "model's"},
    DK_PARAM_HOOK_PRIORITY,
};

static const dk_hook_vtable ema_vtable = {
    .struct_size = sizeof(dk_hook_vtable),
    .create = ema_create,
    .destroy = ema_destroy,
    .priority = DK_PRIORITY_NORMAL,
    .before_run = ema_before_run,
    .after_train_iter = ema_after_train_iter,
    .before_val_epoch = ema_before_eval_epoch,
    .after_val_epoch = ema_after_eval_epoch,
    .before_test_epoch = ema_before_eval_epoch,
    .after_test_epoch = ema_after_eval_epoch,
    .before_save_checkpoint = ema_before_save_checkpoint,
    .after_load_checkpoint = ema_after_load_checkpoint,
};

static const dk_type_info ema_types[] = {{
    DK_TYPE_INFO_HEAD,
    .kind = "hook",
    .name = "EMAHook",
    .summary = "Keep an exponential moving average of the weights and evaluate with it",
    .iface = DK_IFACE_HOOK,
    .vtable = &ema_vtable,
    DK_PARAMS(ema_params),
}};

DK_PLUGIN_DEFINE_TYPES(ema_types,
                       .name = "ema_hook", .version = "0.1.0",
                       .summary = "Exponential moving average of the weights",
                       .license = "Apache-2.0", .source = "in-tree",
                       .flags = DK_PLUGIN_UNLOADABLE)
