/* core/tensor/scope.c — step scopes and grad mode, per thread.
 *
 * A scope owns one reference to every tensor made while it is the innermost
 * one, and drops them all when it ends: that is what lets model code build a
 * forward pass without a single free. Scope lists use plain malloc, not
 * dk_malloc, because they are bookkeeping of the runtime, not memory a plugin
 * holds; they are freed when the scope ends.
 */
#include "tensor_impl.h"

#include <stdlib.h>

typedef struct scope {
    dk_tensor **items;
    size_t n, cap;
} scope;

#define MAX_DEPTH 64

static _Thread_local scope scopes[MAX_DEPTH];
static _Thread_local int depth;
static _Thread_local bool grad_disabled;

void dk_scope_begin(void)
{
    DKH_ASSERT(depth < MAX_DEPTH && "scopes nested too deeply");
    scopes[depth++] = (scope){NULL, 0, 0};
}

void dk_scope_end(void)
{
    DKH_ASSERT(depth > 0 && "dk_scope_end without dk_scope_begin");
    scope *s = &scopes[--depth];
    /* Newest first: a tensor's consumers go before it, so graphs unwind from
     * their roots and no release walks a long chain recursively. */
    for (size_t i = s->n; i-- > 0;)
        dkh_tensor_unref(s->items[i]);
    free(s->items);
    *s = (scope){NULL, 0, 0};
}

dk_tensor *dkh_scope_adopt(dk_tensor *t)
{
    if (!t || depth == 0)
        return t;
    scope *s = &scopes[depth - 1];
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        dk_tensor **items = realloc(s->items, cap * sizeof *items);
        DKH_ASSERT(items && "out of memory growing a scope");
        s->items = items;
        s->cap = cap;
    }
    s->items[s->n++] = t;
    return t;
}

bool dk_grad_set_enabled(bool enabled)
{
    bool was = !grad_disabled;
    grad_disabled = !enabled;
    return was;
}

bool dk_grad_enabled(void)
{
    return !grad_disabled;
}
