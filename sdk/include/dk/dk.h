/* dk/dk.h — the dkhost SDK: everything a plugin includes.
 *
 * A complete plugin that offers one backbone type, `TinyNet`, configurable as
 *
 *     model:
 *       backbone: {type: TinyNet, width: 32}
 *
 * reads (build: cc -shared -fPIC -fvisibility=hidden $(pkg-config --cflags dk)
 *        tinynet.c -o tinynet.so; load: dkhost --plugins . list-registry):
 *
 *     #include <dk/dk.h>
 *
 *     typedef struct tinynet { int64_t width; } tinynet;
 *
 *     static dk_status tinynet_create(const dk_cfg *cfg, void **self)
 *     {
 *         tinynet *t = dk_calloc(1, sizeof *t);
 *         if (!t)
 *             return dk_fail(DK_ERR_NOMEM, "TinyNet: out of memory");
 *         // validated and defaulted already: width is an int in [1, 4096]
 *         dk_status s = dk_cfg_get_int(cfg, "width", &t->width);
 *         if (s != DK_OK) { dk_free(t); return s; }
 *         *self = t;
 *         return DK_OK;
 *     }
 *
 *     static void tinynet_destroy(void *self) { dk_free(self); }
 *
 *     static const dk_param tinynet_params[] = {
 *         {.name = "width", .type = DK_PARAM_INT, .def = "16", .min = "1",
 *          .max = "4096", .doc = "channels of the first stage"},
 *     };
 *     static const dk_module_vtable tinynet_vtable = {
 *         .struct_size = sizeof(dk_module_vtable),
 *         .create = tinynet_create, .destroy = tinynet_destroy,
 *     };
 *     static const dk_type_info tinynet_type = {
 *         DK_TYPE_INFO_HEAD, .kind = "backbone", .name = "TinyNet",
 *         .summary = "A two-layer example backbone",
 *         .iface = DK_IFACE_MODULE, .vtable = &tinynet_vtable,
 *         DK_PARAMS(tinynet_params),
 *     };
 *
 *     static dk_status tinynet_init(dk_registrar *reg)
 *     {
 *         return dk_register(reg, &tinynet_type);
 *     }
 *
 *     DK_PLUGIN_DEFINE(tinynet_init,
 *                      .name = "tinynet", .version = "1.0.0",
 *                      .summary = "An example backbone", .license = "MIT",
 *                      .source = "https://example.org/tinynet")
 *
 * The focused headers, each usable alone:
 *   types.h     opaque handles, status codes, ABI and release versions
 *   status.h    the error model: dk_fail, dk_last_error, DK_TRY
 *   log.h       dk_log
 *   cfg.h       reading config nodes
 *   registry.h  parameter schemas, interfaces, vtables, dk_register
 *   plugin.h    the descriptor and DK_PLUGIN_DEFINE
 *   tensor.h    tensors, scopes, autograd, random numbers
 *   ops.h       the ops a forward pass is written with
 *   nn.h        layers as ops: convolution, normalisation, pooling
 *   dict.h      dk_dict, the one data type that flows (samples, batches, outputs)
 *   data.h      datasets, transforms, metrics: threads, randomness, DK_PARAM_PIPELINE
 *   module.h    modules: parameters, buffers, children, forward
 *   runner.h    what a hook may ask of the training runner
 *   api.h       the host API table (generated from api_list.h)
 */
#ifndef DK_DK_H
#define DK_DK_H

#include <dk/types.h>
#include <dk/api.h>
#include <dk/status.h>
#include <dk/log.h>
#include <dk/cfg.h>
#include <dk/registry.h>
#include <dk/plugin.h>
#include <dk/tensor.h>
#include <dk/ops.h>
#include <dk/nn.h>
#include <dk/dict.h>
#include <dk/data.h>
#include <dk/module.h>
#include <dk/runner.h>

#endif /* DK_DK_H */
