/* core/nn/nn.h — the module system as the rest of libdk sees it.
 *
 * Every dk_object whose type has the module interface carries a host-side
 * record (dkh_module): its parameters and buffers with their dotted names,
 * its child modules, its training flag and the config path its messages use.
 * dk_object_build (core/plugin/object.c) makes the record before the type's
 * create runs, makes it current on this thread while create runs (so
 * dk_module_param and friends attach to it) and frees it after the type's
 * destroy. The functions of dk/module.h work on these records; the runner,
 * the optimizer and checkpoints use the helpers below.
 *
 * Internal to libdk (dkh_ names).
 */
#ifndef DKH_NN_H
#define DKH_NN_H

#include <dk/dk.h>

typedef struct dkh_module dkh_module;

/* ---- the record's life (used by core/plugin/object.c) --------------------------- */

/* A new, empty record. path names the module in messages (its config path,
 * e.g. "model.backbone"); when blank, type_name stands in. Never NULL. */
dkh_module *dkh_module_new(const char *path, const char *type_name);
/* Makes m the module whose create is running on this thread (NULL: none, for
 * an object that is not a module) and returns the previous one, which the
 * caller restores with another dkh_module_enter when create returns. */
dkh_module *dkh_module_enter(dkh_module *m);
/* Called once create succeeded: lays out the full names of every tensor of m
 * and its children for the state walk. */
void dkh_module_finish(dkh_module *m);
/* Frees the children (their objects), then releases the parameters and
 * buffers. Called after the type's destroy. NULL is a no-op. */
void dkh_module_free(dkh_module *m);

/* ---- the initialisation generator ----------------------------------------------- */

/* Reseeds the generator every new parameter draws from. Each parameter takes
 * its own stream split off this generator in creation order, so the values of
 * a parameter depend only on the seed and on how many parameters were made
 * before it since the last seed (not on threads or on its size). Unseeded,
 * the generator starts from seed 0. */
void dkh_module_seed(uint64_t seed);

/* ---- whole modules (the runner, optimizer, checkpoints) --------------------------- */

/* The record of obj, or NULL when obj is NULL or not a module. Borrowed.
 * (Defined in core/plugin/object.c, which owns dk_object.) */
dkh_module *dkh_object_module(const dk_object *obj);
/* The name messages use for the module: its config path. Borrowed. */
const char *dkh_module_path(const dk_object *module);
/* The trainable parameters of module and its children (no buffers), depth
 * first in creation order, with full dotted names (borrowed, valid while the
 * module lives). NULL past the end or for a non-module. */
size_t dkh_module_n_params(const dk_object *module);
dk_tensor *dkh_module_param_at(const dk_object *module, size_t i, const char **name);
/* Zeroes the accumulated gradient of every parameter that has one. */
void dkh_module_zero_grad(const dk_object *module);
/* Whether module (and so its children) is in training mode; false for a
 * non-module. */
bool dkh_module_is_training(const dk_object *module);

#endif /* DKH_NN_H */
