/* dk/api_list.h — THE list of host functions a plugin may call.
 *
 * This one list generates three things (see api.h and core/plugin/host_api.c):
 * the function-pointer table `dk_host_api` the host hands to every plugin's
 * init, the code in the host that fills it, and the static inline wrappers
 * that let plugin code call `dk_cfg_get(...)` as plain C.
 *
 * RULES: append only. Never reorder, remove or change an entry within one
 * ABI major; a new entry goes at the end and bumps DK_ABI_MINOR. A plugin that
 * calls an entry added in minor m must require minor m (DK_PLUGIN_REQUIRES_MINOR).
 *
 *   F(attr, return type, name, (parameters), (arguments))   returns a value
 *   V(name, (parameters), (arguments))                      returns nothing
 */
#ifndef DK_API_LIST_H
#define DK_API_LIST_H

#define DK_HOST_API_LIST(F, V)                                                          \
    /* --- errors (status.h) ------------------------------------------- since 1.0 */ \
    F(, dk_status, dk_failv, (dk_status status, const char *fmt, va_list ap),          \
      (status, fmt, ap))                                                               \
    F(, const char *, dk_last_error, (void), ())                                        \
    F(, dk_status, dk_last_status, (void), ())                                          \
    V(dk_clear_error, (void), ())                                                       \
    V(dk_error_prefixv, (const char *fmt, va_list ap), (fmt, ap))                       \
    F(, const char *, dk_status_name, (dk_status status), (status))                     \
    F(, const char *, dk_status_str, (dk_status status), (status))                      \
    /* --- memory (counted by the host) ---------------------------------- since 1.0 */ \
    F(, void *, dk_malloc, (size_t size), (size))                                       \
    F(, void *, dk_calloc, (size_t n, size_t size), (n, size))                          \
    F(, void *, dk_realloc, (void *ptr, size_t size), (ptr, size))                      \
    V(dk_free, (void *ptr), (ptr))                                                      \
    F(, char *, dk_strdup, (const char *s), (s))                                        \
    /* --- logging (log.h) ---------------------------------------------- since 1.0 */ \
    V(dk_logv, (dk_log_level level, const char *fmt, va_list ap), (level, fmt, ap))     \
    /* --- config nodes (cfg.h) ----------------------------------------- since 1.0 */ \
    F(, dk_cfg_kind, dk_cfg_kind_of, (const dk_cfg *node), (node))                      \
    F(, const dk_cfg *, dk_cfg_get, (const dk_cfg *node, const char *path), (node, path)) \
    F(, size_t, dk_cfg_len, (const dk_cfg *node), (node))                               \
    F(, const dk_cfg *, dk_cfg_at, (const dk_cfg *node, size_t i), (node, i))           \
    F(, const char *, dk_cfg_key_at, (const dk_cfg *node, size_t i), (node, i))         \
    F(, const char *, dk_cfg_scalar, (const dk_cfg *node), (node))                      \
    F(, const char *, dk_cfg_where, (const dk_cfg *node), (node))                       \
    F(, const char *, dk_cfg_path, (const dk_cfg *node), (node))                        \
    F(DK_CHECK, dk_status, dk_cfg_get_int,                                              \
      (const dk_cfg *node, const char *path, int64_t *out), (node, path, out))          \
    F(DK_CHECK, dk_status, dk_cfg_get_float,                                            \
      (const dk_cfg *node, const char *path, double *out), (node, path, out))           \
    F(DK_CHECK, dk_status, dk_cfg_get_bool,                                             \
      (const dk_cfg *node, const char *path, bool *out), (node, path, out))             \
    F(DK_CHECK, dk_status, dk_cfg_get_str,                                              \
      (const dk_cfg *node, const char *path, const char **out), (node, path, out))      \
    /* --- registry and instances (registry.h) -------------------------- since 1.0 */ \
    F(DK_CHECK, dk_status, dk_register, (dk_registrar *reg, const dk_type_info *info),  \
      (reg, info))                                                                      \
    F(DK_CHECK, dk_status, dk_object_build,                                             \
      (const dk_cfg *node, const char *kind, dk_object **out), (node, kind, out))       \
    V(dk_object_free, (dk_object *obj), (obj))                                          \
    F(, void *, dk_object_self, (const dk_object *obj), (obj))                          \
    F(, const dk_type_info *, dk_object_type, (const dk_object *obj), (obj))            \
    /* --- tensors: creation, accessors, lifetime (tensor.h) ------------ since 1.1 */  \
    F(, dk_tensor *, dk_empty, (int ndim, const int64_t *shape, dk_dtype dtype, dk_device device), (ndim, shape, dtype, device)) \
    F(, dk_tensor *, dk_full, (int ndim, const int64_t *shape, double value, dk_dtype dtype, dk_device device), (ndim, shape, value, dtype, device)) \
    F(, dk_tensor *, dk_arange, (double start, double end, double step, dk_dtype dtype, dk_device device), (start, end, step, dtype, device)) \
    F(, dk_tensor *, dk_rand, (int ndim, const int64_t *shape, dk_dtype dtype, dk_device device, dk_rng *rng), (ndim, shape, dtype, device, rng)) \
    F(, dk_tensor *, dk_randn, (int ndim, const int64_t *shape, dk_dtype dtype, dk_device device, dk_rng *rng), (ndim, shape, dtype, device, rng)) \
    F(, dk_tensor *, dk_from_data, (int ndim, const int64_t *shape, dk_dtype dtype, const void *data), (ndim, shape, dtype, data)) \
    F(DK_CHECK, dk_status, dk_tensor_to_host, (const dk_tensor *t, void *dst, size_t dst_bytes), (t, dst, dst_bytes)) \
    F(, double, dk_tensor_item, (const dk_tensor *t), (t))                              \
    F(, int, dk_tensor_ndim, (const dk_tensor *t), (t))                                 \
    F(, const int64_t *, dk_tensor_shape, (const dk_tensor *t), (t))                    \
    F(, const int64_t *, dk_tensor_strides, (const dk_tensor *t), (t))                  \
    F(, int64_t, dk_tensor_numel, (const dk_tensor *t), (t))                            \
    F(, dk_dtype, dk_tensor_dtype, (const dk_tensor *t), (t))                           \
    F(, dk_device, dk_tensor_device, (const dk_tensor *t), (t))                         \
    F(, void *, dk_tensor_data, (const dk_tensor *t), (t))                              \
    F(, bool, dk_tensor_is_contiguous, (const dk_tensor *t), (t))                       \
    F(, dk_tensor *, dk_tensor_retain, (dk_tensor *t), (t))                             \
    V(dk_tensor_release, (dk_tensor *t), (t))                                           \
    F(, const char *, dk_dtype_name, (dk_dtype dtype), (dtype))                         \
    F(, size_t, dk_dtype_size, (dk_dtype dtype), (dtype))                               \
    V(dk_memory_stats_get, (dk_device device, dk_memory_stats *out), (device, out))     \
    /* --- scopes, autograd, random (tensor.h) ----------------------------- since 1.1 */ \
    V(dk_scope_begin, (void), ())                                                       \
    V(dk_scope_end, (void), ())                                                         \
    F(, bool, dk_grad_set_enabled, (bool enabled), (enabled))                           \
    F(, bool, dk_grad_enabled, (void), ())                                              \
    F(DK_CHECK, dk_status, dk_tensor_set_requires_grad, (dk_tensor *t, bool on), (t, on)) \
    F(, bool, dk_tensor_requires_grad, (const dk_tensor *t), (t))                       \
    F(, dk_tensor *, dk_tensor_grad, (const dk_tensor *t), (t))                         \
    V(dk_tensor_zero_grad, (dk_tensor *t), (t))                                         \
    F(DK_CHECK, dk_status, dk_backward, (dk_tensor *root, dk_tensor *grad, bool retain_graph), (root, grad, retain_graph)) \
    F(, dk_tensor *, dk_detach, (dk_tensor *x), (x))                                    \
    V(dk_rng_seed, (dk_rng *rng, uint64_t seed), (rng, seed))                           \
    F(, dk_rng, dk_rng_split, (dk_rng *rng), (rng))                                     \
    F(, dk_rng *, dk_rng_default, (void), ())                                           \
    /* --- ops: copy, cast, views (ops.h) --------------------------------- since 1.1 */ \
    F(, dk_tensor *, dk_copy, (dk_tensor *x), (x))                                      \
    F(, dk_tensor *, dk_cast, (dk_tensor *x, dk_dtype dtype), (x, dtype))               \
    F(, dk_tensor *, dk_contiguous, (dk_tensor *x), (x))                                \
    F(, dk_tensor *, dk_reshape, (dk_tensor *x, int ndim, const int64_t *shape), (x, ndim, shape)) \
    F(, dk_tensor *, dk_permute, (dk_tensor *x, int ndim, const int *perm), (x, ndim, perm)) \
    F(, dk_tensor *, dk_transpose, (dk_tensor *x, int dim0, int dim1), (x, dim0, dim1)) \
    F(, dk_tensor *, dk_slice, (dk_tensor *x, int dim, int64_t start, int64_t end, int64_t step), (x, dim, start, end, step)) \
    F(, dk_tensor *, dk_select, (dk_tensor *x, int dim, int64_t index), (x, dim, index)) \
    F(, dk_tensor *, dk_expand, (dk_tensor *x, int ndim, const int64_t *shape), (x, ndim, shape)) \
    F(, dk_tensor *, dk_squeeze, (dk_tensor *x, int dim), (x, dim))                     \
    F(, dk_tensor *, dk_unsqueeze, (dk_tensor *x, int dim), (x, dim))                   \
    F(, dk_tensor *, dk_flatten, (dk_tensor *x, int start_dim, int end_dim), (x, start_dim, end_dim)) \
    /* --- ops: elementwise (ops.h) --------------------------------------- since 1.1 */ \
    F(, dk_tensor *, dk_neg, (dk_tensor *x), (x))                                       \
    F(, dk_tensor *, dk_abs, (dk_tensor *x), (x))                                       \
    F(, dk_tensor *, dk_exp, (dk_tensor *x), (x))                                       \
    F(, dk_tensor *, dk_ln, (dk_tensor *x), (x))                                        \
    F(, dk_tensor *, dk_sqrt, (dk_tensor *x), (x))                                      \
    F(, dk_tensor *, dk_rsqrt, (dk_tensor *x), (x))                                     \
    F(, dk_tensor *, dk_relu, (dk_tensor *x), (x))                                      \
    F(, dk_tensor *, dk_sigmoid, (dk_tensor *x), (x))                                   \
    F(, dk_tensor *, dk_tanh, (dk_tensor *x), (x))                                      \
    F(, dk_tensor *, dk_gelu, (dk_tensor *x), (x))                                      \
    F(, dk_tensor *, dk_silu, (dk_tensor *x), (x))                                      \
    F(, dk_tensor *, dk_softplus, (dk_tensor *x), (x))                                  \
    F(, dk_tensor *, dk_leaky_relu, (dk_tensor *x, double slope), (x, slope))           \
    F(, dk_tensor *, dk_clamp, (dk_tensor *x, double lo, double hi), (x, lo, hi))       \
    F(, dk_tensor *, dk_pow_scalar, (dk_tensor *x, double p), (x, p))                   \
    F(, dk_tensor *, dk_add_scalar, (dk_tensor *x, double s), (x, s))                   \
    F(, dk_tensor *, dk_mul_scalar, (dk_tensor *x, double s), (x, s))                   \
    F(, dk_tensor *, dk_add, (dk_tensor *a, dk_tensor *b), (a, b))                      \
    F(, dk_tensor *, dk_sub, (dk_tensor *a, dk_tensor *b), (a, b))                      \
    F(, dk_tensor *, dk_mul, (dk_tensor *a, dk_tensor *b), (a, b))                      \
    F(, dk_tensor *, dk_div, (dk_tensor *a, dk_tensor *b), (a, b))                      \
    F(, dk_tensor *, dk_pow, (dk_tensor *a, dk_tensor *b), (a, b))                      \
    F(, dk_tensor *, dk_maximum, (dk_tensor *a, dk_tensor *b), (a, b))                  \
    F(, dk_tensor *, dk_minimum, (dk_tensor *a, dk_tensor *b), (a, b))                  \
    F(, dk_tensor *, dk_eq, (dk_tensor *a, dk_tensor *b), (a, b))                       \
    F(, dk_tensor *, dk_ne, (dk_tensor *a, dk_tensor *b), (a, b))                       \
    F(, dk_tensor *, dk_lt, (dk_tensor *a, dk_tensor *b), (a, b))                       \
    F(, dk_tensor *, dk_le, (dk_tensor *a, dk_tensor *b), (a, b))                       \
    F(, dk_tensor *, dk_gt, (dk_tensor *a, dk_tensor *b), (a, b))                       \
    F(, dk_tensor *, dk_ge, (dk_tensor *a, dk_tensor *b), (a, b))                       \
    F(, dk_tensor *, dk_where, (dk_tensor *cond, dk_tensor *a, dk_tensor *b), (cond, a, b)) \
    /* --- ops: reductions, matmul, softmax (ops.h) ----------------------- since 1.1 */ \
    F(, dk_tensor *, dk_sum, (dk_tensor *x, const int *dims, int ndims, bool keepdim), (x, dims, ndims, keepdim)) \
    F(, dk_tensor *, dk_mean, (dk_tensor *x, const int *dims, int ndims, bool keepdim), (x, dims, ndims, keepdim)) \
    F(, dk_tensor *, dk_amax, (dk_tensor *x, const int *dims, int ndims, bool keepdim), (x, dims, ndims, keepdim)) \
    F(, dk_tensor *, dk_amin, (dk_tensor *x, const int *dims, int ndims, bool keepdim), (x, dims, ndims, keepdim)) \
    F(, dk_tensor *, dk_var, (dk_tensor *x, const int *dims, int ndims, int64_t correction, bool keepdim), (x, dims, ndims, correction, keepdim)) \
    F(, dk_tensor *, dk_logsumexp, (dk_tensor *x, const int *dims, int ndims, bool keepdim), (x, dims, ndims, keepdim)) \
    F(, dk_tensor *, dk_argmax, (dk_tensor *x, int dim, bool keepdim), (x, dim, keepdim)) \
    F(, dk_tensor *, dk_matmul, (dk_tensor *a, dk_tensor *b), (a, b))                   \
    F(, dk_tensor *, dk_linear, (dk_tensor *x, dk_tensor *w, dk_tensor *b), (x, w, b))  \
    F(, dk_tensor *, dk_softmax, (dk_tensor *x, int dim), (x, dim))                     \
    F(, dk_tensor *, dk_log_softmax, (dk_tensor *x, int dim), (x, dim))                 \
    /* --- ops: neural-network layers (nn.h) ----------------------------- since 1.1 */ \
    F(, dk_tensor *, dk_conv2d, (dk_tensor *x, dk_tensor *w, dk_tensor *b, const int64_t *stride, const int64_t *padding, const int64_t *dilation, int64_t groups), (x, w, b, stride, padding, dilation, groups)) \
    F(, dk_tensor *, dk_conv_transpose2d, (dk_tensor *x, dk_tensor *w, dk_tensor *b, const int64_t *stride, const int64_t *padding, const int64_t *output_padding, const int64_t *dilation, int64_t groups), (x, w, b, stride, padding, output_padding, dilation, groups)) \
    F(, dk_tensor *, dk_batch_norm, (dk_tensor *x, dk_tensor *weight, dk_tensor *bias, dk_tensor *running_mean, dk_tensor *running_var, bool training, double momentum, double eps), (x, weight, bias, running_mean, running_var, training, momentum, eps)) \
    F(, dk_tensor *, dk_max_pool2d, (dk_tensor *x, const int64_t *kernel, const int64_t *stride, const int64_t *padding, const int64_t *dilation, bool ceil_mode), (x, kernel, stride, padding, dilation, ceil_mode)) \
    F(, dk_tensor *, dk_avg_pool2d, (dk_tensor *x, const int64_t *kernel, const int64_t *stride, const int64_t *padding, bool ceil_mode, bool count_include_pad), (x, kernel, stride, padding, ceil_mode, count_include_pad)) \
    F(, dk_tensor *, dk_adaptive_avg_pool2d, (dk_tensor *x, const int64_t *output_size), (x, output_size)) \
    F(, dk_tensor *, dk_layer_norm, (dk_tensor *x, const int64_t *normalized_shape, int n, dk_tensor *weight, dk_tensor *bias, double eps), (x, normalized_shape, n, weight, bias, eps)) \
    F(, dk_tensor *, dk_group_norm, (dk_tensor *x, int64_t num_groups, dk_tensor *weight, dk_tensor *bias, double eps), (x, num_groups, weight, bias, eps)) \
    F(DK_CHECK, dk_status, dk_autocast_begin, (dk_dtype dtype), (dtype))                \
    F(DK_CHECK, dk_status, dk_autocast_end, (void), ())                                 \
    F(, dk_dtype, dk_autocast_dtype, (void), ())                                        \
    /* (end of the nn entries) */                                                      \
    /* --- ops: indexing, sorting, losses, geometry (ops.h) -------------- since 1.1 */ \
    F(, dk_tensor *, dk_cat, (dk_tensor *const *xs, int n, int dim), (xs, n, dim))      \
    F(, dk_tensor *, dk_stack, (dk_tensor *const *xs, int n, int dim), (xs, n, dim))    \
    F(DK_CHECK, dk_status, dk_split, (dk_tensor *x, int64_t split_size, int dim, int max_out, dk_tensor **out, int *n_out), (x, split_size, dim, max_out, out, n_out)) \
    F(DK_CHECK, dk_status, dk_split_sizes, (dk_tensor *x, const int64_t *sizes, int n, int dim, dk_tensor **out), (x, sizes, n, dim, out)) \
    F(DK_CHECK, dk_status, dk_chunk, (dk_tensor *x, int chunks, int dim, dk_tensor **out, int *n_out), (x, chunks, dim, out, n_out)) \
    F(, dk_tensor *, dk_index_select, (dk_tensor *x, int dim, dk_tensor *index), (x, dim, index)) \
    F(, dk_tensor *, dk_index_put, (dk_tensor *x, int dim, dk_tensor *index, dk_tensor *values, bool accumulate), (x, dim, index, values, accumulate)) \
    F(, dk_tensor *, dk_gather, (dk_tensor *x, int dim, dk_tensor *index), (x, dim, index)) \
    F(, dk_tensor *, dk_scatter, (dk_tensor *x, int dim, dk_tensor *index, dk_tensor *src), (x, dim, index, src)) \
    F(, dk_tensor *, dk_scatter_add, (dk_tensor *x, int dim, dk_tensor *index, dk_tensor *src), (x, dim, index, src)) \
    F(, dk_tensor *, dk_masked_fill, (dk_tensor *x, dk_tensor *mask, double value), (x, mask, value)) \
    F(, dk_tensor *, dk_nonzero, (dk_tensor *x), (x))                                   \
    F(, dk_tensor *, dk_max_dim, (dk_tensor *x, int dim, bool keepdim, dk_tensor **indices), (x, dim, keepdim, indices)) \
    F(, dk_tensor *, dk_min_dim, (dk_tensor *x, int dim, bool keepdim, dk_tensor **indices), (x, dim, keepdim, indices)) \
    F(, dk_tensor *, dk_sort, (dk_tensor *x, int dim, bool descending, dk_tensor **indices), (x, dim, descending, indices)) \
    F(, dk_tensor *, dk_argsort, (dk_tensor *x, int dim, bool descending), (x, dim, descending)) \
    F(, dk_tensor *, dk_topk, (dk_tensor *x, int64_t k, int dim, bool largest, dk_tensor **indices), (x, k, dim, largest, indices)) \
    F(, dk_tensor *, dk_norm, (dk_tensor *x, const int *dims, int ndims, bool keepdim), (x, dims, ndims, keepdim)) \
    F(, dk_tensor *, dk_cross_entropy, (dk_tensor *logits, dk_tensor *target, dk_tensor *weight, int64_t ignore_index, double label_smoothing, int reduction), (logits, target, weight, ignore_index, label_smoothing, reduction)) \
    F(, dk_tensor *, dk_nll_loss, (dk_tensor *log_probs, dk_tensor *target, dk_tensor *weight, int64_t ignore_index, int reduction), (log_probs, target, weight, ignore_index, reduction)) \
    F(, dk_tensor *, dk_binary_cross_entropy_with_logits, (dk_tensor *x, dk_tensor *target, dk_tensor *weight, dk_tensor *pos_weight, int reduction), (x, target, weight, pos_weight, reduction)) \
    F(, dk_tensor *, dk_sigmoid_focal_loss, (dk_tensor *x, dk_tensor *target, double alpha, double gamma, int reduction), (x, target, alpha, gamma, reduction)) \
    F(, dk_tensor *, dk_smooth_l1_loss, (dk_tensor *x, dk_tensor *target, double beta, int reduction), (x, target, beta, reduction)) \
    F(, dk_tensor *, dk_l1_loss, (dk_tensor *x, dk_tensor *target, int reduction), (x, target, reduction)) \
    F(, dk_tensor *, dk_mse_loss, (dk_tensor *x, dk_tensor *target, int reduction), (x, target, reduction)) \
    F(, dk_tensor *, dk_interpolate, (dk_tensor *x, const int64_t *size, const double *scale_factor, int mode, bool align_corners), (x, size, scale_factor, mode, align_corners)) \
    F(, dk_tensor *, dk_pad, (dk_tensor *x, const int64_t *pads, int npads, int mode, double value), (x, pads, npads, mode, value)) \
    F(, dk_tensor *, dk_dropout, (dk_tensor *x, double p, bool training, dk_rng *rng), (x, p, training, rng)) \
    F(, dk_tensor *, dk_box_iou, (dk_tensor *boxes1, dk_tensor *boxes2), (boxes1, boxes2)) \
    F(, dk_tensor *, dk_batched_nms, (dk_tensor *boxes, dk_tensor *scores, dk_tensor *class_ids, double iou_threshold), (boxes, scores, class_ids, iou_threshold)) \
    F(, dk_tensor *, dk_nms, (dk_tensor *boxes, dk_tensor *scores, double iou_threshold), (boxes, scores, iou_threshold)) \
    /* (end of the index entries) */                                                   \
    /* --- custom ops, devices and runtime settings (tensor.h) ----------- since 1.1 */ \
    F(, dk_tensor *, dk_to, (dk_tensor *x, dk_device device), (x, device))              \
    F(, int, dk_device_count, (dk_device_type type), (type))                            \
    F(DK_CHECK, dk_status, dk_device_check, (dk_device device), (device))               \
    F(DK_CHECK, dk_status, dk_device_name, (dk_device device, char *buf, size_t size), (device, buf, size)) \
    F(DK_CHECK, dk_status, dk_device_capability, (dk_device device, int *major, int *minor), (device, major, minor)) \
    F(DK_CHECK, dk_status, dk_device_synchronize, (dk_device device), (device))         \
    F(DK_CHECK, dk_status, dk_set_num_threads, (int n), (n))                            \
    F(, int, dk_get_num_threads, (void), ())                                            \
    F(, bool, dk_set_deterministic, (bool on), (on))                                    \
    F(, bool, dk_deterministic, (void), ())                                             \
    F(DK_CHECK, dk_status, dk_op_register, (dk_registrar *reg, const dk_op_info *info, int32_t *id), (reg, info, id)) \
    F(, int32_t, dk_op_find, (const char *name), (name))                                \
    F(, dk_tensor *, dk_op_call, (int32_t op, int n_in, dk_tensor *const *in, const void *attrs, size_t attrs_size, dk_tensor **aux_out), (op, n_in, in, attrs, attrs_size, aux_out)) \
    /* (end of the runtime entries) */                                                 \
    /* --- dicts (dict.h) -------------------------------------------------- since 1.1 */ \
    F(, dk_dict *, dk_dict_new, (void), ())                                             \
    V(dk_dict_free, (dk_dict *d), (d))                                                  \
    F(DK_CHECK, dk_status, dk_dict_set_tensor, (dk_dict *d, const char *key, dk_tensor *t), (d, key, t)) \
    F(DK_CHECK, dk_status, dk_dict_set_number, (dk_dict *d, const char *key, double v), (d, key, v)) \
    F(DK_CHECK, dk_status, dk_dict_set_string, (dk_dict *d, const char *key, const char *s), (d, key, s)) \
    F(DK_CHECK, dk_status, dk_dict_set_tensors, (dk_dict *d, const char *key, dk_tensor *const *ts, size_t n), (d, key, ts, n)) \
    F(DK_CHECK, dk_status, dk_dict_append_tensor, (dk_dict *d, const char *key, dk_tensor *t), (d, key, t)) \
    F(, bool, dk_dict_remove, (dk_dict *d, const char *key), (d, key))                  \
    V(dk_dict_clear, (dk_dict *d), (d))                                                 \
    F(DK_CHECK, dk_status, dk_dict_update, (dk_dict *dst, const dk_dict *src), (dst, src)) \
    F(, size_t, dk_dict_len, (const dk_dict *d), (d))                                   \
    F(, int64_t, dk_dict_find, (const dk_dict *d, const char *key), (d, key))           \
    F(, const char *, dk_dict_key, (const dk_dict *d, size_t i), (d, i))                \
    F(, dk_value_kind, dk_dict_kind, (const dk_dict *d, size_t i), (d, i))              \
    F(, dk_tensor *, dk_dict_tensor, (const dk_dict *d, const char *key), (d, key))     \
    F(, double, dk_dict_number, (const dk_dict *d, const char *key, double fallback), (d, key, fallback)) \
    F(, const char *, dk_dict_string, (const dk_dict *d, const char *key), (d, key))    \
    F(, size_t, dk_dict_tensors_len, (const dk_dict *d, const char *key), (d, key))     \
    F(, dk_tensor *, dk_dict_tensors_at, (const dk_dict *d, const char *key, size_t j), (d, key, j)) \
    F(, double, dk_rng_uniform, (dk_rng *rng), (rng))                                   \
    F(, int64_t, dk_rng_int, (dk_rng *rng, int64_t n), (rng, n))                        \
    /* --- modules (module.h) ---------------------------------------------- since 1.1 */ \
    F(, dk_tensor *, dk_module_param, (const char *name, int ndim, const int64_t *shape, const dk_init *init), (name, ndim, shape, init)) \
    F(, dk_tensor *, dk_module_buffer, (const char *name, int ndim, const int64_t *shape, dk_dtype dtype, double value), (name, ndim, shape, dtype, value)) \
    F(, dk_object *, dk_module_child, (const dk_cfg *cfg, const char *name, const char *kind), (cfg, name, kind)) \
    F(DK_CHECK, dk_status, dk_module_forward, (dk_object *module, const dk_dict *in, dk_forward_mode mode, dk_dict *out), (module, in, mode, out)) \
    F(, bool, dk_module_training, (void), ())                                           \
    V(dk_module_train, (dk_object *module, bool on), (module, on))                      \
    F(, size_t, dk_module_n_tensors, (const dk_object *module), (module))               \
    F(, dk_tensor *, dk_module_tensor_at, (const dk_object *module, size_t i, const char **name, bool *is_buffer), (module, i, name, is_buffer)) \
    F(, dk_tensor *, dk_module_find, (const dk_object *module, const char *name), (module, name)) \
    /* --- runner, for hooks (runner.h) ------------------------------------ since 1.1 */ \
    F(, int64_t, dk_runner_epoch, (const dk_runner *r), (r))                            \
    F(, int64_t, dk_runner_iter, (const dk_runner *r), (r))                             \
    F(, int64_t, dk_runner_inner_iter, (const dk_runner *r), (r))                       \
    F(, int64_t, dk_runner_max_epochs, (const dk_runner *r), (r))                       \
    F(, int64_t, dk_runner_max_iters, (const dk_runner *r), (r))                        \
    F(, int64_t, dk_runner_loop_len, (const dk_runner *r), (r))                         \
    F(, dk_runner_phase, dk_runner_phase_of, (const dk_runner *r), (r))                 \
    F(, bool, dk_runner_by_epoch, (const dk_runner *r), (r))                            \
    F(, const char *, dk_runner_work_dir, (const dk_runner *r), (r))                    \
    F(, const char *, dk_runner_timestamp, (const dk_runner *r), (r))                   \
    F(, const dk_cfg *, dk_runner_cfg, (const dk_runner *r), (r))                       \
    F(, dk_object *, dk_runner_model, (dk_runner *r), (r))                              \
    F(, const dk_dict *, dk_runner_outputs, (const dk_runner *r), (r))                  \
    F(DK_CHECK, dk_status, dk_runner_log, (dk_runner *r, const char *key, double value), (r, key, value)) \
    F(, dk_dict *, dk_runner_state, (dk_runner *r), (r))                                \
    F(DK_CHECK, dk_status, dk_runner_save_checkpoint, (dk_runner *r, const char *filename), (r, filename)) \
    F(DK_CHECK, dk_status, dk_runner_remove_checkpoint, (dk_runner *r, const char *filename), (r, filename)) \
    V(dk_runner_request_stop, (dk_runner *r, const char *reason), (r, reason))          \
    /* --- in-place ops (ops.h) ------------------------------------------ since 1.2 */ \
    F(, dk_tensor *, dk_relu_, (dk_tensor *x), (x))                                     \
    /* --- distributed runs, for hooks (runner.h) ------------------------ since 1.3 */ \
    F(, int, dk_runner_rank, (const dk_runner *r), (r))                                 \
    F(, int, dk_runner_world_size, (const dk_runner *r), (r))                           \
    /* --- append new entries above this line, with their minor ----------------- */

#endif /* DK_API_LIST_H */
