/* core/tensor/autograd.c — the tape and reverse-mode differentiation.
 *
 * Each recorded op becomes a node hanging off its output tensor (grad_fn). A
 * node holds strong references to its inputs, which are both the edges of the
 * graph and the values its backward reads; a node that needs its own output
 * holds a detached alias instead, because a reference to the output itself
 * would be a cycle. dk_backward sorts the nodes reachable from the root,
 * walks them from the root down accumulating each node's output gradient, and
 * adds the gradients reaching leaves into their .grad in place. Without
 * retain_graph it then drops every node's saved tensors and marks it freed, so
 * a second backward through it fails with a message instead of reading
 * released memory.
 *
 * A node of a custom op also holds the op's call record (its attrs and a
 * hold on the plugin that owns its code) until the node itself is freed.
 *
 * In-place ops (dk_relu_) write into their input's storage and bump its
 * version. Every node notes the versions of the storages it holds when it is
 * recorded, and its backward refuses to run on values changed since: it
 * would read the new values where it needs the old ones.
 */
#include "autocast.h"
#include "custom_op.h"

#include <stdlib.h>
#include <string.h>

void dkh_node_unref(dkh_node *n)
{
    if (!n || --n->refs > 0)
        return;
    for (int i = 0; i < n->n_in; i++)
        dkh_tensor_unref(n->in[i]);
    for (int k = 0; k < n->n_aux; k++)
        dkh_tensor_unref(n->aux[k]);
    dkh_tensor_unref(n->out);
    dkh_custom_args_release(n->op, &n->args);
    dk_free(n);
}

static dk_tensor *detached_alias(dk_tensor *t)
{
    dkh_meta m = {.dtype = t->dtype, .ndim = t->ndim, .offset = t->offset};
    memcpy(m.shape, t->shape, sizeof m.shape);
    memcpy(m.strides, t->strides, sizeof m.strides);
    return dkh_tensor_wrap(t->storage, &m);
}

dk_status dkh_record(dkh_op_id op, const dkh_args *a, int n_in, dk_tensor *const *in,
                     dk_tensor *out, int n_aux, dk_tensor *const *aux)
{
    dkh_node *n = dk_calloc(1, sizeof *n);
    if (!n)
        return dk_fail(DK_ERR_NOMEM, "%s: out of memory recording the tape", dkh_op_name(op));
    n->refs = 1;
    n->op = op;
    n->args = *a;
    dkh_custom_args_retain(op, a);
    n->n_in = n_in;
    for (int i = 0; i < n_in; i++) {
        n->in[i] = dk_tensor_retain(in[i]);
        n->needs[i] = in[i]->requires_grad;
        n->in_version[i] = in[i]->storage->version;
    }
    n->n_aux = n_aux;
    for (int k = 0; k < n_aux; k++)
        n->aux[k] = dk_tensor_retain(aux[k]);
    if (dkh_op(op)->flags & DKH_F_SAVE_OUT) {
        n->out = detached_alias(out);
        if (!n->out) {
            dkh_node_unref(n);
            return dk_last_status();
        }
        n->out_version = out->storage->version;
    }
    out->grad_fn = n;
    out->requires_grad = true;
    return DK_OK;
}

dk_status dkh_record_inplace(dkh_op_id op, const dkh_args *a, dk_tensor *x)
{
    dk_tensor *old = detached_alias(x);
    if (!old)
        return dk_last_status();
    old->grad_fn = x->grad_fn; /* the reference moves with it */
    old->requires_grad = true;
    x->grad_fn = NULL;
    dk_status s = dkh_record(op, a, 1, &old, x, 0, NULL);
    if (s != DK_OK) {
        x->grad_fn = old->grad_fn; /* back as it was */
        old->grad_fn = NULL;
    }
    dkh_tensor_unref(old); /* the node holds it now */
    return s;
}

/* Fails when an in-place op changed a value n saved after n was recorded. */
static dk_status check_versions(const dkh_node *n)
{
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i] && n->in[i]->storage->version != n->in_version[i]) {
            dkh_buf b = DKH_BUF_INIT;
            dkh_describe(&b, n->in[i]);
            dk_status s = dk_fail(DK_ERR_RUNTIME,
                                  "backward of %s: its input %d %s was changed by an in-place "
                                  "op after %s used it, and its gradient needs the old values "
                                  "(use the out-of-place op there)",
                                  dkh_op_name(n->op), i, dkh_buf_str(&b), dkh_op_name(n->op));
            dkh_buf_fini(&b);
            return s;
        }
    if (n->out && n->out->storage->version != n->out_version)
        return dk_fail(DK_ERR_RUNTIME,
                       "backward of %s: its output was changed by an in-place op, and its "
                       "gradient needs the old values (use the out-of-place op there)",
                       dkh_op_name(n->op));
    return DK_OK;
}

dk_tensor *dk_detach(dk_tensor *x)
{
    if (!x)
        return NULL;
    return dkh_scope_adopt(detached_alias(x));
}

dk_status dk_tensor_set_requires_grad(dk_tensor *t, bool on)
{
    if (!t)
        return dk_fail(DK_ERR_ARG, "set_requires_grad: tensor is NULL");
    if (t->grad_fn)
        return dk_fail(DK_ERR_ARG, "set_requires_grad: only a leaf can be a gradient target; "
                                   "this tensor was made by %s (use dk_detach)",
                       dkh_op_name(t->grad_fn->op));
    if (on && !dkh_is_float(t->dtype))
        return dk_fail(DK_ERR_ARG, "set_requires_grad: a %s tensor cannot require grad",
                       dk_dtype_name(t->dtype));
    t->requires_grad = on;
    return DK_OK;
}

bool dk_tensor_requires_grad(const dk_tensor *t)
{
    return t && t->requires_grad;
}

dk_tensor *dk_tensor_grad(const dk_tensor *t)
{
    return t ? t->grad : NULL;
}

void dk_tensor_zero_grad(dk_tensor *t)
{
    if (!t || !t->grad)
        return;
    dkh_args a = {.f = {0.0}};
    dk_status s = dkh_op_run_into(DKH_OP_FULL, &a, 0, NULL, t->grad);
    DKH_ASSERT(s == DK_OK);
}

/* Adds g into the leaf's gradient: a private copy the first time, in place after. */
static dk_status accumulate_leaf(dk_tensor *leaf, dk_tensor *g)
{
    if (!leaf->grad) {
        dk_tensor *c = dk_copy(g);
        if (!c)
            return dk_last_status();
        leaf->grad = dk_tensor_retain(c); /* the backward's scope drops its own reference */
        return DK_OK;
    }
    dk_tensor *in[2] = {leaf->grad, g};
    dkh_args a = {.nv = 0};
    return dkh_op_run_into(DKH_OP_ADD, &a, 2, in, leaf->grad);
}

/* Adds g into the gradient a node has received so far. The node owns a
 * reference to it, so the gradient outlives the scope of the node that made
 * it and dies as soon as this node's backward has used it. */
static dk_status accumulate_node(dkh_node *n, dk_tensor *g)
{
    if (!n->gacc) {
        n->gacc = dk_tensor_retain(g);
        return DK_OK;
    }
    dk_tensor *sum = dk_add(n->gacc, g);
    if (!sum)
        return dk_last_status();
    dkh_tensor_unref(n->gacc);
    n->gacc = dk_tensor_retain(sum);
    return DK_OK;
}

typedef struct node_list {
    dkh_node **items;
    size_t n, cap;
} node_list;

static void list_push(node_list *l, dkh_node *n)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->items = realloc(l->items, l->cap * sizeof *l->items);
        DKH_ASSERT(l->items && "out of memory sorting the tape");
    }
    l->items[l->n++] = n;
}

static dk_status freed_error(dkh_node *n)
{
    return dk_fail(DK_ERR_RUNTIME,
                   "backward: the graph through %s was already freed by an earlier "
                   "dk_backward; pass retain_graph=true to the first one to run backward "
                   "through it twice",
                   dkh_op_name(n->op));
}

/* Post-order of the nodes reachable from root (each once), iteratively so a
 * long chain cannot overflow the stack. Takes a reference on each node. */
static dk_status topo_sort(dkh_node *root, node_list *order)
{
    node_list stack = {NULL, 0, 0};
    dk_status st = DK_OK;
    list_push(&stack, root);
    root->visited = true;
    while (stack.n) {
        dkh_node *n = stack.items[stack.n - 1];
        if (n->freed) {
            st = freed_error(n);
            break;
        }
        bool pushed = false;
        for (int i = 0; i < n->n_in && !pushed; i++) {
            dkh_node *c = n->needs[i] && n->in[i] ? n->in[i]->grad_fn : NULL;
            if (c && !c->visited) {
                c->visited = true;
                list_push(&stack, c);
                pushed = true;
            }
        }
        if (!pushed) {
            stack.n--;
            n->refs++;
            list_push(order, n);
        }
    }
    /* On failure, nodes still on the stack keep their marks: clear them. */
    for (size_t k = 0; k < stack.n; k++)
        stack.items[k]->visited = false;
    free(stack.items);
    return st;
}

dk_status dk_backward(dk_tensor *root, dk_tensor *grad, bool retain_graph)
{
    if (!root)
        return dk_last_status() != DK_OK ? dk_last_status()
                                         : dk_fail(DK_ERR_ARG, "backward: root is NULL");
    if (!root->requires_grad)
        return dk_fail(DK_ERR_ARG, "backward: the root does not require grad (no input of "
                                   "its graph has requires_grad, or grad mode was off)");
    if (grad && !dkh_same_shape(grad, root)) {
        dkh_buf b = DKH_BUF_INIT;
        dkh_describe(&b, grad);
        dkh_buf_puts(&b, " vs root ");
        dkh_describe(&b, root);
        dk_status s = dk_fail(DK_ERR_SHAPE, "backward: grad shape %s differs", dkh_buf_str(&b));
        dkh_buf_fini(&b);
        return s;
    }
    if (!grad && dkh_numel(root->ndim, root->shape) != 1)
        return dk_fail(DK_ERR_ARG, "backward: the root has %lld elements; pass its gradient",
                       (long long)dkh_numel(root->ndim, root->shape));

    bool was = dk_grad_set_enabled(false);
    bool ac = dkh_autocast_suspend(true); /* gradients in the dtypes the forward chose */
    dk_scope_begin(); /* every temporary of the backward dies with it */
    dk_status st = DK_OK;
    node_list order = {NULL, 0, 0};
    if (!grad)
        grad = dk_full(root->ndim, root->shape, 1.0, root->dtype, root->storage->device);
    if (!grad) {
        st = dk_last_status();
    } else if (!root->grad_fn) {
        st = accumulate_leaf(root, grad);
    } else if ((st = topo_sort(root->grad_fn, &order)) == DK_OK) {
        root->grad_fn->gacc = dk_tensor_retain(grad);
        /* Reverse post-order: a node runs after every consumer added its part.
         * Each node's backward runs in a scope of its own: its temporaries
         * die when it is done, the gradients it passes on live in their
         * nodes (or leaves), and its own incoming gradient is dropped. So a
         * backward holds a few gradients at a time, not one per activation. */
        for (size_t k = order.n; k-- > 0 && st == DK_OK;) {
            dkh_node *n = order.items[k];
            if (!n->gacc)
                continue;
            if ((st = check_versions(n)) != DK_OK)
                break;
            dk_scope_begin();
            const dkh_op_def *def = dkh_op(n->op);
            dk_tensor *gin[DKH_MAX_IN] = {NULL};
            st = def->backward(&n->args, n->in, n->out, n->aux, n->gacc, n->needs, gin);
            for (int i = 0; i < n->n_in && st == DK_OK; i++) {
                if (!n->needs[i])
                    continue;
                if (!gin[i]) {
                    st = dk_last_status() != DK_OK
                             ? dk_last_status()
                             : dk_fail(DK_ERR_INTERNAL, "backward of %s gave no gradient",
                                       def->name);
                    break;
                }
                DKH_ASSERT(dkh_same_shape(gin[i], n->in[i]));
                dk_tensor *x = n->in[i];
                st = x->grad_fn ? accumulate_node(x->grad_fn, gin[i]) : accumulate_leaf(x, gin[i]);
            }
            if (st != DK_OK)
                dk_error_prefix("backward of %s", def->name);
            dkh_tensor_unref(n->gacc);
            n->gacc = NULL;
            dk_scope_end();
        }
    }
    for (size_t k = 0; k < order.n; k++) {
        dkh_node *n = order.items[k];
        dkh_tensor_unref(n->gacc); /* left by a failed backward */
        n->gacc = NULL;
        n->visited = false;
        if (!retain_graph && st == DK_OK) {
            for (int i = 0; i < n->n_in; i++) {
                dkh_tensor_unref(n->in[i]);
                n->in[i] = NULL;
            }
            for (int j = 0; j < n->n_aux; j++) {
                dkh_tensor_unref(n->aux[j]);
                n->aux[j] = NULL;
            }
            dkh_tensor_unref(n->out);
            n->out = NULL;
            n->freed = true;
        }
    }
    dk_scope_end();
    for (size_t k = 0; k < order.n; k++)
        dkh_node_unref(order.items[k]);
    free(order.items);
    dkh_autocast_suspend(ac);
    dk_grad_set_enabled(was);
    return st;
}
