/* core/optim/sched.c — a `param_scheduler` list and the value it gives at
 * any point of a run.
 *
 * mmengine steps every scheduler after each iteration (or epoch), each one
 * rewriting the optimizer's current value; the value at a step is therefore
 * a function of the list, the base value and the step alone. This file
 * computes that function directly: walk the list in order and let every
 * entry that has begun map the value, at its own step clamped to its last
 * one. Nothing is stepped and nothing needs saving, so a resumed run gets
 * exactly the values of an uninterrupted one.
 *
 * Units: a by_epoch entry counts epochs (its value changes at epoch
 * boundaries), others count iterations. convert_to_iter_based turns an
 * epoch-based entry into an iteration-based one as mmengine's
 * build_iter_from_epoch does: begin and end become int(x * iters_per_epoch),
 * and the duration parameters (milestones, step_size, T_max, total_steps)
 * are multiplied by iters_per_epoch before the entry is built.
 */
#include "optim_impl.h"

#include "../cfg/cfg.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    dk_object *obj;
    const dk_lr_scheduler_vtable *vt;
    const void *self;
    dkh_sched_param which;
    bool by_epoch;
    int64_t begin, end;
} entry;

struct dkh_sched {
    entry *entries;
    size_t n;
    int64_t max_epochs, max_iters;
};

/* ---- the shared parameters ------------------------------------------------------- */

static dk_status opt_float(const dk_cfg *cfg, const char *key, double fallback, double *out)
{
    *out = fallback;
    const dk_cfg *v = dk_cfg_get(cfg, key);
    if (!v || dk_cfg_kind_of(v) == DK_CFG_NULL)
        return DK_OK;
    return dk_cfg_get_float(v, NULL, out);
}

static dk_status opt_bool(const dk_cfg *cfg, const char *key, bool fallback, bool *out)
{
    *out = fallback;
    const dk_cfg *v = dk_cfg_get(cfg, key);
    if (!v || dk_cfg_kind_of(v) == DK_CFG_NULL)
        return DK_OK;
    return dk_cfg_get_bool(v, NULL, out);
}

dk_status dkh_sched_common_read(const dk_cfg *cfg, dkh_sched_common *c)
{
    DK_TRY(opt_float(cfg, "begin", 0, &c->begin));
    DK_TRY(opt_float(cfg, "end", NAN, &c->end));
    DK_TRY(opt_bool(cfg, "by_epoch", true, &c->by_epoch));
    DK_TRY(opt_bool(cfg, "convert_to_iter_based", false, &c->convert));
    if (c->convert && !c->by_epoch)
        return dkh_optim_cfg_fail(dk_cfg_get(cfg, "convert_to_iter_based"),
                                  "needs by_epoch: true (it turns an epoch-based schedule "
                                  "into an iteration-based one)");
    const char *unit = c->by_epoch ? "epochs" : "iterations";
    static const char *const keys[] = {"begin", "end"};
    for (int i = 0; i < 2 && !c->convert; i++) {
        double v = i ? c->end : c->begin;
        if (!isnan(v) && v != floor(v))
            return dkh_optim_cfg_fail(dk_cfg_get(cfg, keys[i]),
                                      "%g is not a whole number of %s (fractions of an epoch "
                                      "need convert_to_iter_based: true)",
                                      v, unit);
    }
    if (!(c->begin >= 0))
        return dkh_optim_cfg_fail(dk_cfg_get(cfg, "begin"), "must be >= 0, got %g", c->begin);
    if (!isnan(c->end) && c->end <= c->begin)
        return dkh_optim_cfg_fail(dk_cfg_get(cfg, "end"), "%g must be after begin (%g)", c->end,
                                  c->begin);
    return DK_OK;
}

dk_status dkh_sched_check_common(const dk_cfg *cfg)
{
    dkh_sched_common c;
    return dkh_sched_common_read(cfg, &c);
}

/* ---- building ------------------------------------------------------------------------ */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Sets clone.key = text (YAML flow) through the override machinery. */
static dk_status set_text(dk_cfg *clone, const char *key, const char *text)
{
    char *assignment = dkh_asprintf("%s=%s", key, text);
    dk_status s = dkh_cfg_override(clone, assignment);
    free(assignment);
    return s;
}

/* A copy of an epoch-based entry with its durations in iterations. */
static dk_status converted(const dk_cfg *item, int64_t ipe, dk_cfg **out)
{
    dk_cfg *c = NULL;
    DK_TRY(dkh_cfg_clone(item, &c));
    dk_status s = DK_OK;
    static const char *const whole[] = {"step_size", "total_steps"};
    for (int i = 0; i < 2 && s == DK_OK; i++) {
        const dk_cfg *v = dk_cfg_get(c, whole[i]);
        int64_t x;
        if (!v || dk_cfg_kind_of(v) != DK_CFG_INT || dk_cfg_get_int(v, NULL, &x) != DK_OK)
            continue;
        char text[32];
        snprintf(text, sizeof text, "%lld", (long long)(x * ipe));
        s = set_text(c, whole[i], text);
    }
    const dk_cfg *tm = dk_cfg_get(c, "T_max");
    double t_max;
    if (s == DK_OK && tm && dk_cfg_kind_of(tm) != DK_CFG_NULL &&
        dk_cfg_get_float(tm, NULL, &t_max) == DK_OK) {
        char text[40];
        snprintf(text, sizeof text, "%.17g", t_max * (double)ipe);
        s = set_text(c, "T_max", text);
    }
    const dk_cfg *ms = dk_cfg_get(c, "milestones");
    if (s == DK_OK && dk_cfg_kind_of(ms) == DK_CFG_LIST) {
        dkh_buf b = DKH_BUF_INIT;
        dkh_buf_putc(&b, '[');
        for (size_t i = 0; i < dk_cfg_len(ms); i++) {
            int64_t x = 0;
            if (dk_cfg_get_int(dk_cfg_at(ms, i), NULL, &x) != DK_OK)
                x = 0; /* not reached: the entry was built before */
            dkh_buf_printf(&b, "%s%lld", i ? ", " : "", (long long)(x * ipe));
        }
        dkh_buf_putc(&b, ']');
        s = set_text(c, "milestones", dkh_buf_str(&b));
        dkh_buf_fini(&b);
    }
    if (s != DK_OK) {
        dkh_cfg_free(c);
        return s;
    }
    *out = c;
    return DK_OK;
}

static dk_status entry_fail(const dk_cfg *item, const char *fmt, ...) DK_PRINTF(2, 3);

static dk_status entry_fail(const dk_cfg *item, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dkh_buf b = DKH_BUF_INIT;
    dkh_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    dk_status s = dkh_optim_cfg_fail(item, "%s", dkh_buf_str(&b));
    dkh_buf_fini(&b);
    return s;
}

static dk_status add_entry(dkh_sched *s, const dk_cfg *item, int64_t ipe, entry *e)
{
    /* Building first validates the entry and checks its shared parameters. */
    DK_TRY(dk_object_build(item, "lr_scheduler", &e->obj));
    dkh_sched_common c;
    DK_TRY(dkh_sched_common_read(item, &c));
    const char *type = dk_object_type(e->obj)->name;
    if (c.by_epoch && s->max_epochs <= 0)
        return entry_fail(item,
                          "%s counts epochs (by_epoch: true) but training counts "
                          "iterations; set by_epoch: false and give begin/end in "
                          "iterations",
                          type);
    if (c.convert) {
        if (ipe <= 0)
            return entry_fail(item, "convert_to_iter_based needs the number of iterations per "
                                    "epoch, and the training loader has none");
        e->begin = (int64_t)(c.begin * (double)ipe);
        e->end = isnan(c.end) ? s->max_epochs * ipe : (int64_t)(c.end * (double)ipe);
        dk_cfg *conv = NULL;
        DK_TRY(converted(item, ipe, &conv));
        dk_object_free(e->obj);
        e->obj = NULL;
        dk_status st = dk_object_build(conv, "lr_scheduler", &e->obj);
        dkh_cfg_free(conv);
        DK_TRY(st);
        e->by_epoch = false;
    } else {
        e->by_epoch = c.by_epoch;
        e->begin = (int64_t)c.begin;
        e->end = !isnan(c.end) ? (int64_t)c.end : c.by_epoch ? s->max_epochs : s->max_iters;
    }
    if (e->end <= e->begin)
        return entry_fail(item, "%s covers no %s: begin %lld, end %lld%s", type,
                          e->by_epoch ? "epoch" : "iteration", (long long)e->begin,
                          (long long)e->end,
                          isnan(c.end) ? " (the end of training)" : " (after conversion)");
    const dk_type_info *info = dk_object_type(e->obj);
    e->vt = info->vtable;
    e->self = dk_object_self(e->obj);
    if (info->iface != DK_IFACE_LR_SCHEDULER || !e->vt->value)
        return dk_fail(DK_ERR_PLUGIN, "%s: schedule type %s has no value function",
                       dkh_optim_where(item), type);
    e->which = ends_with(type, "Momentum") ? DKH_SCHED_MOMENTUM : DKH_SCHED_LR;
    return DK_OK;
}

dkh_sched *dkh_sched_new(const dk_cfg *list, int64_t max_epochs, int64_t max_iters,
                         int64_t iters_per_epoch, dk_status *err)
{
    dkh_sched *s = calloc(1, sizeof *s);
    DKH_ASSERT(s != NULL);
    s->max_epochs = max_epochs;
    s->max_iters = max_iters;
    dk_status st = DK_OK;
    if (list && dk_cfg_kind_of(list) != DK_CFG_NULL) {
        if (dk_cfg_kind_of(list) != DK_CFG_LIST)
            st = dkh_optim_cfg_fail(list, "expected a list of schedules ({type: ..., ...})");
        size_t n = dk_cfg_len(list);
        s->entries = calloc(n ? n : 1, sizeof *s->entries);
        DKH_ASSERT(s->entries != NULL);
        for (size_t i = 0; i < n && st == DK_OK; i++) {
            const dk_cfg *item = dk_cfg_at(list, i);
            if (dk_cfg_kind_of(item) == DK_CFG_NULL)
                continue;
            st = add_entry(s, item, iters_per_epoch, &s->entries[s->n++]);
        }
    }
    if (err)
        *err = st;
    if (st != DK_OK) {
        dkh_sched_free(s);
        return NULL;
    }
    return s;
}

void dkh_sched_free(dkh_sched *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        dk_object_free(s->entries[i].obj);
    free(s->entries);
    free(s);
}

/* ---- values ------------------------------------------------------------------------- */

double dkh_sched_value(const dkh_sched *s, dkh_sched_param which, double base, int64_t epoch,
                       int64_t iter)
{
    double v = base;
    for (size_t i = 0; s && i < s->n; i++) {
        const entry *e = &s->entries[i];
        int64_t now = e->by_epoch ? epoch : iter;
        if (e->which != which || now < e->begin)
            continue;
        int64_t span = e->end - e->begin;
        int64_t t = now - e->begin;
        v = e->vt->value(e->self, v, base, t < span ? t : span - 1, span);
    }
    return v;
}

size_t dkh_sched_len(const dkh_sched *s)
{
    return s ? s->n : 0;
}

int64_t dkh_sched_max_iters(const dkh_sched *s)
{
    return s ? s->max_iters : 0;
}
