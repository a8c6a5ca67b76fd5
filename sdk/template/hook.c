/* template_name.c — TemplateName, a training hook for dkhost.
 *
 * Written by `dkhost new-plugin --kind hook`: a working hook to grow into
 * your own. The runner calls a hook at mmengine's hook points (before_run,
 * after_train_iter, after_val_epoch, ...; registry.h lists them) in priority
 * order. This one writes the mean training loss of every `interval`
 * iterations to the log, and keeps a count of the lines it wrote in the
 * run's checkpoints, so a resumed run goes on counting.
 *
 * Build:  make                      (pkg-config), or
 *         cmake -S . -B build && cmake --build build   (find_package(dk))
 * Use:    dkhost --plugins . list-registry --kind hook
 *         dkhost --plugins . check template_name.yaml
 */
#include <dk/dk.h>

typedef struct template_name_state {
    int64_t interval;
    double loss_sum; /* since the last line */
    int64_t n_iters;
    int64_t lines; /* written in the whole run, resumes included */
} template_name_state;

static dk_status template_name_create(const dk_cfg *cfg, void **self)
{
    template_name_state *h = dk_calloc(1, sizeof *h);
    if (!h)
        return dk_fail(DK_ERR_NOMEM, "TemplateName: out of memory");
    dk_status s = dk_cfg_get_int(cfg, "interval", &h->interval);
    if (s != DK_OK) {
        dk_free(h);
        return s;
    }
    *self = h;
    return DK_OK;
}

static void template_name_destroy(void *self)
{
    dk_free(self);
}

static dk_status template_name_after_train_iter(void *self, dk_runner *r)
{
    template_name_state *h = self;
    /* The iteration's values: every loss, their sum "loss", "lr", ... */
    h->loss_sum += dk_dict_number(dk_runner_outputs(r), "loss", 0.0);
    h->n_iters++;
    /* dk_runner_iter counts finished iterations: this one is not yet. */
    if ((dk_runner_iter(r) + 1) % h->interval != 0)
        return DK_OK;
    h->lines++;
    dk_log(DK_LOG_INFO, "TemplateName: iteration %lld: mean loss %.4f over %lld iterations",
           (long long)(dk_runner_iter(r) + 1), h->loss_sum / (double)h->n_iters,
           (long long)h->n_iters);
    h->loss_sum = 0;
    h->n_iters = 0;
    return DK_OK;
}

/* The hook's state goes into every checkpoint under the hook's name ... */
static dk_status template_name_before_save_checkpoint(void *self, dk_runner *r)
{
    const template_name_state *h = self;
    return dk_dict_set_number(dk_runner_state(r), "lines", (double)h->lines);
}

/* ... and comes back when a run resumes (an empty dict when none was saved). */
static dk_status template_name_after_load_checkpoint(void *self, dk_runner *r)
{
    template_name_state *h = self;
    h->lines = (int64_t)dk_dict_number(dk_runner_state(r), "lines", 0.0);
    return DK_OK;
}

static dk_status template_name_after_run(void *self, dk_runner *r)
{
    (void)r;
    const template_name_state *h = self;
    dk_log(DK_LOG_INFO, "TemplateName: %lld loss lines in this run", (long long)h->lines);
    return DK_OK;
}

/* The schema: dkhost checks every config against it before anything is
 * created, and `dkhost list-registry` prints it as the type's documentation.
 * DK_PARAM_HOOK_PRIORITY lets a config reorder the hook (`priority: LOW`). */
static const dk_param template_name_params[] = {
    {.name = "interval", .type = DK_PARAM_INT, .def = "10", .min = "1",
     .doc = "write a line every this many training iterations"},
    DK_PARAM_HOOK_PRIORITY,
};

/* Slots left NULL are hook points this hook does not use. */
static const dk_hook_vtable template_name_vtable = {
    .struct_size = sizeof(dk_hook_vtable),
    .create = template_name_create,
    .destroy = template_name_destroy,
    .priority = DK_PRIORITY_NORMAL,
    .after_train_iter = template_name_after_train_iter,
    .before_save_checkpoint = template_name_before_save_checkpoint,
    .after_load_checkpoint = template_name_after_load_checkpoint,
    .after_run = template_name_after_run,
};

static const dk_type_info template_name_types[] = {{
    DK_TYPE_INFO_HEAD,
    .kind = "hook",
    .name = "TemplateName",
    .summary = "Logs the mean training loss every few iterations",
    .iface = DK_IFACE_HOOK,
    .vtable = &template_name_vtable,
    DK_PARAMS(template_name_params),
}};

/* .license is an SPDX identifier: put yours. */
DK_PLUGIN_DEFINE_TYPES(template_name_types,
                       .name = "template_name", .version = "0.1.0",
                       .summary = "The TemplateName hook",
                       .license = "MIT", .source = "")
