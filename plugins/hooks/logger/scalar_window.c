/* plugins/hooks/logger/scalar_window.c — sums and latest values per key. */
#include "scalar_window.h"

#include <string.h>

/* Values that describe a setting in force rather than a measurement, so
 * their mean over the window would be misleading. */
static bool shows_latest(const char *key)
{
    return !strcmp(key, "lr") || !strncmp(key, "lr/", 3) || !strcmp(key, "momentum") ||
           !strncmp(key, "momentum/", 9) || !strcmp(key, "memory") || !strcmp(key, "eta_s");
}

double window_value(const scalar *v)
{
    return shows_latest(v->key) || v->n == 0 ? v->last : v->sum / (double)v->n;
}

const scalar *window_find(const scalar_window *w, const char *key)
{
    for (size_t i = 0; i < w->n; i++)
        if (!strcmp(w->v[i].key, key))
            return &w->v[i];
    return NULL;
}

dk_status window_add(scalar_window *w, const char *key, double value)
{
    scalar *v = (scalar *)window_find(w, key);
    if (!v) {
        if (w->n == w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 16;
            scalar *p = dk_realloc(w->v, cap * sizeof *p);
            if (!p)
                return dk_fail(DK_ERR_NOMEM, "LoggerHook: out of memory");
            w->v = p;
            w->cap = cap;
        }
        char *k = dk_strdup(key);
        if (!k)
            return dk_fail(DK_ERR_NOMEM, "LoggerHook: out of memory");
        v = &w->v[w->n++];
        *v = (scalar){.key = k};
    }
    v->sum += value;
    v->last = value;
    v->n++;
    return DK_OK;
}

dk_status window_add_dict(scalar_window *w, const dk_dict *d)
{
    for (size_t i = 0; i < dk_dict_len(d); i++)
        if (dk_dict_kind(d, i) == DK_VALUE_NUMBER) {
            const char *key = dk_dict_key(d, i);
            DK_TRY(window_add(w, key, dk_dict_number(d, key, 0)));
        }
    return DK_OK;
}

void window_clear(scalar_window *w)
{
    for (size_t i = 0; i < w->n; i++)
        dk_free(w->v[i].key);
    w->n = 0;
}

void window_fini(scalar_window *w)
{
    window_clear(w);
    dk_free(w->v);
    *w = (scalar_window){0};
}
