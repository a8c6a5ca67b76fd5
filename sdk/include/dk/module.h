/* dk/module.h — modules: parameters, buffers, children, forward.
 *
 * Backbones, necks, heads, losses and whole models are modules. A module
 * plugin's `create` declares its parameters and buffers and builds its child
 * modules; the host owns all of them, names them with dotted paths
 * ("backbone.layer1.0.conv1.weight"), saves and loads them in checkpoints
 * and hands them to the optimizer. The plugin's `forward` (a slot of
 * dk_module_vtable) is plain op code, and has no frees:
 *
 *     typedef struct net { dk_tensor *w, *b; dk_object *head; } net;
 *
 *     static dk_status net_create(const dk_cfg *cfg, void **self)
 *     {
 *         net *n = dk_calloc(1, sizeof *n);
 *         if (!n)
 *             return dk_fail(DK_ERR_NOMEM, "Net: out of memory");
 *         // nn.Linear(784, 128) with PyTorch's default init
 *         n->w = dk_module_param("fc.weight", 2, (int64_t[]){128, 784},
 *                                &(dk_init){.kind = DK_INIT_KAIMING_UNIFORM, .a = sqrt(5)});
 *         n->b = dk_module_param("fc.bias", 1, (int64_t[]){128},
 *                                &(dk_init){.kind = DK_INIT_FAN_IN_UNIFORM, .b = 784});
 *         n->head = dk_module_child(dk_cfg_get(cfg, "head"), "head", "head");
 *         if (!n->w || !n->b || !n->head) {   // what was declared is freed by the host
 *             dk_free(n);
 *             return dk_last_status();
 *         }
 *         *self = n;
 *         return DK_OK;
 *     }
 *
 *     static dk_status net_forward(void *self, const dk_dict *in, dk_forward_mode mode,
 *                                  dk_dict *out)
 *     {
 *         net *n = self;
 *         dk_tensor *x = dk_flatten(dk_dict_tensor(in, "img"), 1, -1);  // (N, 784)
 *         dk_tensor *y = dk_relu(dk_linear(x, n->w, n->b));              // (N, 128)
 *         if (!y)
 *             return dk_last_status();        // the first cause; the host adds the path
 *         dk_dict *h = dk_dict_new();         // the head sees the batch and "feats"
 *         dk_status s = h ? dk_dict_update(h, in) : dk_last_status();
 *         if (s == DK_OK)
 *             s = dk_dict_set_tensors(h, "feats", &y, 1);
 *         if (s == DK_OK)
 *             s = dk_module_forward(n->head, h, mode, out);
 *         dk_dict_free(h);
 *         return s;
 *     }
 *
 * Parameters are f32 leaves with requires_grad; buffers (running statistics)
 * are tensors of any dtype without gradients. Both are made contiguous on
 * the CPU. Neither is in any scope: the module holds them until it is
 * destroyed, so the plugin keeps the borrowed pointers in its state and never
 * frees them. Children are dk_objects the module owns; the plugin does not
 * free them either. The host frees a module's children and then its tensors
 * after the plugin's destroy, and also when its create fails.
 *
 * Check an op result for NULL before putting it into a dict: a NULL tensor
 * makes the dict record its own error in place of the op's.
 *
 * Training mode (dk_module_train, on by default) is what batch norm and
 * dropout read through dk_module_training(). docs/plugin-guide.md ("Writing
 * a module") has the dict keys the shipped modules share.
 *
 * Forward modes (mmengine's): DK_MODE_LOSS maps a batch to a map of named
 * losses ("loss_cls", ...; every key starting with "loss" is summed into the
 * minimised loss, other values are logged); DK_MODE_PREDICT maps a batch to
 * predictions; DK_MODE_TENSOR returns raw outputs (features, logits).
 * dk_init, dk_init_kind and dk_forward_mode are defined in types.h.
 */
#ifndef DK_MODULE_H
#define DK_MODULE_H

#include <dk/types.h>
#include <dk/api.h>

#ifdef __cplusplus
extern "C" {
#endif


/* The functions are entries of the host API table (api_list.h, section
 * "modules"); their declarations come from api.h.
 *
 * ---- inside a module's create ------------------------------------------------
 * These attach to the module being created (the host knows which: it is
 * running that module's create on this thread). Called elsewhere they fail
 * with DK_ERR_RUNTIME. Names are [A-Za-z0-9_] segments joined by '.', unique
 * within the module, and no name may be a dotted prefix of another ("bn1"
 * and "bn1.weight" clash; so do a child "head" and a parameter "head.w"):
 * DK_ERR_ARG for a bad name, DK_ERR_DUPLICATE for a clash. Declare in
 * PyTorch's order (a layer's parameters, then its buffers, layer by layer)
 * and the names and order match a PyTorch state_dict.
 *
 * dk_tensor *dk_module_param(const char *name, int ndim, const int64_t *shape,
 *                            const dk_init *init);
 *     A new f32 parameter, filled by init (NULL: zeros) from the run's
 *     initialisation generator (seeded by --seed): each parameter draws from
 *     its own stream, split off in creation order, so its values depend on
 *     the seed and on how many parameters were declared before it, not on
 *     their sizes. Borrowed: the module owns it. NULL on error (bad name,
 *     duplicate, bad shape, an init that does not fit the shape), with the
 *     message.
 * dk_tensor *dk_module_buffer(const char *name, int ndim, const int64_t *shape,
 *                             dk_dtype dtype, double value);
 *     A new buffer filled with value: saved in checkpoints, never trained.
 * dk_object *dk_module_child(const dk_cfg *cfg, const char *name, const char *kind);
 *     Builds the module cfg describes (a map with `type:`; kind as in
 *     dk_object_build, NULL for any) as the child `name`: its parameters
 *     appear as "name.<its names>". Borrowed: the parent owns it. NULL on
 *     error (the child's build error, or DK_ERR_ARG when the type is not a
 *     module); a NULL or null cfg gives NULL with DK_ERR_CONFIG.
 *
 * ---- forward -----------------------------------------------------------------
 * dk_status dk_module_forward(dk_object *module, const dk_dict *in, dk_forward_mode mode,
 *                             dk_dict *out);
 *     Runs a module's forward (a parent calls its children this way). A
 *     failure coming out of it is prefixed with the module's config path by
 *     the innermost module it passed ("model.backbone: conv2d: ...", not
 *     "model: model.backbone: ..."). DK_ERR_UNSUPPORTED when the type has no
 *     forward, DK_ERR_ARG for a NULL module or dict, a bad mode, or an
 *     object that is not a module. Called outside any forward (by the
 *     runner), it first clears the error slot, so a failure recorded earlier
 *     cannot pass for the cause of this one.
 * bool dk_module_training(void);
 *     Whether the module whose forward is running is in training mode (batch
 *     norm statistics, dropout). False outside any forward.
 *
 * ---- whole modules (the runner, hooks, tests) -----------------------------------
 * void dk_module_train(dk_object *module, bool on);
 *     Sets training mode on module and every child (default: on).
 * size_t dk_module_n_tensors(const dk_object *module);
 * dk_tensor *dk_module_tensor_at(const dk_object *module, size_t i, const char **name,
 *                                bool *is_buffer);
 *     Every parameter and buffer of module and its children, depth first in
 *     creation order, with full dotted names (borrowed). NULL past the end.
 * dk_tensor *dk_module_find(const dk_object *module, const char *name);
 *     A parameter or buffer by dotted name, or NULL.
 */

#ifdef __cplusplus
}
#endif
#endif /* DK_MODULE_H */
