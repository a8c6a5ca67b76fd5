/* core/tensor/autocast.h — the per-thread autocast state (autocast.c), read by
 * the ops that run in a lower precision under dk_autocast_begin: conv2d,
 * conv_transpose2d, matmul and linear.
 */
#ifndef DKH_AUTOCAST_H
#define DKH_AUTOCAST_H

#include "tensor_impl.h"

/* The dtype f32 inputs of an autocast op are cast to on this thread, or
 * DK_DTYPE_F32 when no autocast scope is open (or it is suspended). */
dk_dtype dkh_autocast_target(void);
/* Suspends autocast on this thread while on (the backward pass runs the
 * dtypes its forward chose); returns the previous setting. */
bool dkh_autocast_suspend(bool on);
/* t cast to dt when t is f32 and dt is not (a differentiable cast, so the
 * gradient reaches the f32 tensor in f32); else t itself. NULL stays NULL. */
dk_tensor *dkh_autocast_in(dk_tensor *t, dk_dtype dt);

#endif /* DKH_AUTOCAST_H */
