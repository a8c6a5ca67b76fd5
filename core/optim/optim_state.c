/* core/optim/optim_state.c — the optimizer wrapper's state: the per-parameter
 * state tensors (allocated on a parameter's first update) and how they go
 * into and come out of a checkpoint.
 *
 * A checkpoint holds plain named values ("<param>.<state>" tensors, "step"
 * numbers), so loading is a check of every name, kind and shape against
 * this optimizer before anything is touched: a checkpoint from another
 * model or another optimizer type is refused with the full list of what
 * does not fit, and the wrapper is left as it was.
 */
#include "optim_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

dk_status dkh_optim_state_alloc(const dkh_optim *o, dkh_oparam *p)
{
    for (uint32_t k = 0; k < o->n_state_used; k++) {
        if (p->state[k])
            continue;
        dk_scope_begin();
        dk_tensor *t = dk_zeros(dk_tensor_ndim(p->param), dk_tensor_shape(p->param), DK_DTYPE_F32,
                                dk_tensor_device(p->param));
        if (t)
            p->state[k] = dk_tensor_retain(t);
        dk_scope_end();
        if (!t) {
            dk_error_prefix("optimizer state '%s.%s'", p->name, o->vt->state_names[k]);
            return dk_last_status();
        }
    }
    return DK_OK;
}

void dkh_optim_state_drop(const dkh_optim *o, dkh_oparam *p)
{
    for (uint32_t k = 0; k < o->n_state; k++) {
        dk_tensor_release(p->state[k]);
        p->state[k] = NULL;
    }
    p->steps = 0;
}

dk_status dkh_optim_state_save(const dkh_optim *o, dk_dict *out)
{
    DK_TRY(dk_dict_set_number(out, "step", (double)o->updates));
    for (size_t i = 0; i < o->n_params; i++) {
        const dkh_oparam *p = &o->params[i];
        if (!p->steps)
            continue;
        dk_status s = DK_OK;
        for (uint32_t k = 0; k < o->n_state_used && s == DK_OK; k++) {
            char *key = dkh_asprintf("%s.%s", p->name, o->vt->state_names[k]);
            s = dk_dict_set_tensor(out, key, p->state[k]);
            free(key);
        }
        if (s == DK_OK && p->steps != o->updates) {
            char *key = dkh_asprintf("%s.step", p->name);
            s = dk_dict_set_number(out, key, (double)p->steps);
            free(key);
        }
        DK_TRY(s);
    }
    return DK_OK;
}

/* ---- loading ------------------------------------------------------------------- */

/* What the dict says about one parameter. */
typedef struct loaded {
    dk_tensor **state; /* n_state_used, borrowed from the dict */
    double steps;      /* NAN = not given */
    bool any;
} loaded;

typedef struct problems {
    dkh_buf text;
    size_t count;
    bool shape;
} problems;

static void problem(problems *pr, bool shape, const char *fmt, ...) DK_PRINTF(3, 4);

static void problem(problems *pr, bool shape, const char *fmt, ...)
{
    pr->shape |= shape;
    if (pr->count++ >= 20)
        return; /* the count says how many more */
    va_list ap;
    va_start(ap, fmt);
    dkh_buf_puts(&pr->text, "\n  ");
    dkh_buf_vprintf(&pr->text, fmt, ap);
    va_end(ap);
}

static bool whole_count(double v)
{
    return isfinite(v) && v >= 0 && v == floor(v) && v < 9e15;
}

static size_t find_param(const dkh_optim *o, const char *name, size_t len)
{
    for (size_t i = 0; i < o->n_params; i++)
        if (strlen(o->params[i].name) == len && memcmp(o->params[i].name, name, len) == 0)
            return i;
    return SIZE_MAX;
}

static void state_names_text(const dkh_optim *o, dkh_buf *b)
{
    for (uint32_t k = 0; k < o->n_state_used; k++)
        dkh_buf_printf(b, "%s%s", k ? ", " : "", o->vt->state_names[k]);
    if (!o->n_state_used)
        dkh_buf_puts(b, "none");
}

static void shape_text(const dk_tensor *t, dkh_buf *b)
{
    dkh_buf_putc(b, '(');
    for (int d = 0; d < dk_tensor_ndim(t); d++)
        dkh_buf_printf(b, "%s%lld", d ? ", " : "", (long long)dk_tensor_shape(t)[d]);
    dkh_buf_putc(b, ')');
}

static void check_tensor(const dkh_optim *o, const char *key, size_t pi, dk_tensor *t, problems *pr)
{
    const dk_tensor *p = o->params[pi].param;
    int nd = dk_tensor_ndim(p);
    bool same = dk_tensor_ndim(t) == nd &&
                (nd == 0 ||
                 memcmp(dk_tensor_shape(t), dk_tensor_shape(p), (size_t)nd * sizeof(int64_t)) == 0);
    if (same && dk_tensor_dtype(t) == DK_DTYPE_F32)
        return;
    dkh_buf a = DKH_BUF_INIT, b = DKH_BUF_INIT;
    shape_text(t, &a);
    shape_text(p, &b);
    problem(pr, true, "'%s' is %s %s but the parameter is f32 %s", key,
            dk_dtype_name(dk_tensor_dtype(t)), dkh_buf_str(&a), dkh_buf_str(&b));
    dkh_buf_fini(&a);
    dkh_buf_fini(&b);
}

/* Sorts one dict entry into `got`, or records why it does not fit. */
static void read_entry(const dkh_optim *o, const dk_dict *in, size_t i, loaded *got,
                       double *updates, problems *pr)
{
    const char *key = dk_dict_key(in, i);
    dk_value_kind kind = dk_dict_kind(in, i);
    if (strcmp(key, "step") == 0) {
        double v = dk_dict_number(in, key, NAN);
        if (kind != DK_VALUE_NUMBER || !whole_count(v))
            problem(pr, false, "'step' must be a whole number >= 0");
        else
            *updates = v;
        return;
    }
    const char *dot = strrchr(key, '.');
    size_t pi = dot ? find_param(o, key, (size_t)(dot - key)) : SIZE_MAX;
    if (pi == SIZE_MAX) {
        problem(pr, false, "'%s' names no trainable parameter of the model", key);
        return;
    }
    const char *what = dot + 1;
    loaded *l = &got[pi];
    if (strcmp(what, "step") == 0) {
        double v = dk_dict_number(in, key, NAN);
        if (kind != DK_VALUE_NUMBER || !whole_count(v))
            problem(pr, false, "'%s' must be a whole number >= 0", key);
        else
            l->steps = v;
        return;
    }
    for (uint32_t k = 0; k < o->n_state_used; k++) {
        if (strcmp(what, o->vt->state_names[k]) != 0)
            continue;
        dk_tensor *t = dk_dict_tensor(in, key);
        if (kind != DK_VALUE_TENSOR || !t) {
            problem(pr, false, "'%s' is not a tensor", key);
            return;
        }
        check_tensor(o, key, pi, t, pr);
        l->state[k] = t;
        l->any = true;
        return;
    }
    dkh_buf names = DKH_BUF_INIT;
    state_names_text(o, &names);
    problem(pr, false, "'%s': optimizer %s keeps no state '%s' (its states: %s)", key, o->type_name,
            what, dkh_buf_str(&names));
    dkh_buf_fini(&names);
}

/* Replaces parameter p's state with copies of what l holds. */
static dk_status apply_one(dkh_optim *o, dkh_oparam *p, const loaded *l, double updates)
{
    dkh_optim_state_drop(o, p);
    /* An optimizer without state tensors still counts its updates. */
    bool stateless_updated = o->n_state_used == 0 && (updates > 0 || !isnan(l->steps));
    if (!l->any && !stateless_updated)
        return DK_OK;
    DK_TRY(dkh_optim_state_alloc(o, p));
    for (uint32_t k = 0; k < o->n_state_used; k++) {
        size_t bytes = (size_t)dk_tensor_numel(p->param) * sizeof(float);
        DK_TRY(dk_tensor_to_host(l->state[k], dk_tensor_data(p->state[k]), bytes));
    }
    double steps = isnan(l->steps) ? updates : l->steps;
    p->steps = steps < 1 ? 1 : (int64_t)steps;
    return DK_OK;
}

dk_status dkh_optim_state_load(dkh_optim *o, const dk_dict *in)
{
    loaded *got = calloc(o->n_params ? o->n_params : 1, sizeof *got);
    dk_tensor **slots =
        calloc(o->n_params * (o->n_state_used ? o->n_state_used : 1) + 1, sizeof *slots);
    DKH_ASSERT(got && slots);
    for (size_t i = 0; i < o->n_params; i++) {
        got[i].state = slots + i * (o->n_state_used ? o->n_state_used : 1);
        got[i].steps = NAN;
    }
    problems pr = {DKH_BUF_INIT, 0, false};
    double updates = 0;
    for (size_t i = 0; i < dk_dict_len(in); i++)
        read_entry(o, in, i, got, &updates, &pr);
    for (size_t i = 0; i < o->n_params; i++) {
        if (!got[i].any)
            continue;
        for (uint32_t k = 0; k < o->n_state_used; k++)
            if (!got[i].state[k])
                problem(&pr, false, "'%s.%s' is missing (the other states of '%s' are there)",
                        o->params[i].name, o->vt->state_names[k], o->params[i].name);
    }

    dk_status s = DK_OK;
    if (pr.count) {
        if (pr.count > 20)
            dkh_buf_printf(&pr.text, "\n  ... and %zu more", pr.count - 20);
        s = dk_fail(pr.shape ? DK_ERR_SHAPE : DK_ERR_NOT_FOUND,
                    "%zu entr%s of the saved %s state do%s not fit this model and optimizer:%s",
                    pr.count, pr.count == 1 ? "y" : "ies", o->type_name, pr.count == 1 ? "es" : "",
                    dkh_buf_str(&pr.text));
    }
    size_t fresh = 0;
    for (size_t i = 0; i < o->n_params && s == DK_OK; i++) {
        s = apply_one(o, &o->params[i], &got[i], updates);
        fresh += !got[i].any;
    }
    if (s == DK_OK) {
        o->updates = (int64_t)updates;
        if (fresh && fresh < o->n_params)
            dk_log(DK_LOG_INFO,
                   "optimizer state: %zu of %zu parameters had no saved state and "
                   "start afresh",
                   fresh, o->n_params);
    }
    dkh_buf_fini(&pr.text);
    free(slots);
    free(got);
    return s;
}
