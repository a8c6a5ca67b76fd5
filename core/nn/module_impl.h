/* core/nn/module_impl.h — the module record, shared by the files of core/nn.
 *
 * A record keeps what create declared, in order (`own`): tensors under the
 * names the plugin gave, and child objects under their child names. Once
 * create has succeeded, dkh_module_finish lays out `flat`: every tensor of the
 * module and its children, depth first in creation order, under its full
 * dotted name relative to this module. The layout never changes afterwards,
 * so the state walk, lookups and the parameter list read it without locks.
 */
#ifndef DKH_MODULE_IMPL_H
#define DKH_MODULE_IMPL_H

#include "nn.h"

#include "../util/util.h"

/* One thing create declared. */
typedef struct dkh_own {
    char *name;        /* "conv1.weight", or the child's name "backbone" */
    dk_tensor *tensor; /* a parameter or buffer (owned reference); NULL for a child */
    bool is_buffer;
    dk_object *child; /* a child module (owned); NULL for a tensor */
} dkh_own;

/* One tensor of the module or a descendant, as the state walk sees it. */
typedef struct dkh_flat {
    char *name;        /* full dotted name relative to this module */
    dk_tensor *tensor; /* borrowed from the record that owns it */
    bool is_buffer;
} dkh_flat;

struct dkh_module {
    char *path; /* for messages: "model.backbone" */
    dkh_own *own;
    size_t n_own, cap_own;
    dkh_flat *flat;
    size_t n_flat;
    size_t *params; /* indices into flat of the parameters */
    size_t n_params;
    bool training;
};

/* The next parameter's stream of the initialisation generator (init.c;
 * advances the generator). */
dk_rng dkh_module_next_stream(void);
/* Fills a contiguous f32 CPU tensor as init says (NULL: zeros), drawing from
 * rng. Errors: DK_ERR_ARG for an unknown kind, bad bounds, or a fan-based
 * kind on a tensor with fewer than 2 dims (PyTorch's rule), naming `what`. */
dk_status dkh_init_fill(dk_tensor *t, const dk_init *init, dk_rng *rng, const char *what) DK_CHECK;

#endif /* DKH_MODULE_IMPL_H */
