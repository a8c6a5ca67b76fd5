/* core/tensor/op_list_nn.h — the op-list group of the neural-network ops:
 * convolution, normalisation, pooling, resampling (X(ENUM, name), see
 * tensor_impl.h).
 *
 * Convolution is three ops that are each other's gradients: conv2d (x, w),
 * conv2d_bwd_data (gy, w) -> gx and conv2d_bwd_weight (x, gy) -> gw. The
 * transposed convolution's forward is conv2d_bwd_data, so it needs no op of
 * its own. Normalisation and pooling ops keep what their backward kernels read
 * (batch statistics, argmax indices) as auxiliary outputs. */
#ifndef DKH_OP_LIST_NN_H
#define DKH_OP_LIST_NN_H

#define DKH_OPS_NN(X)                                                                      \
    /* convolution */                                                                     \
    X(CONV2D, conv2d) X(CONV2D_BWD_DATA, conv2d_bwd_data)                                 \
    X(CONV2D_BWD_WEIGHT, conv2d_bwd_weight)                                               \
    /* normalisation */                                                                   \
    X(BATCH_NORM, batch_norm) X(LAYER_NORM, layer_norm) X(GROUP_NORM, group_norm)         \
    /* pooling */                                                                         \
    X(MAX_POOL2D, max_pool2d) X(AVG_POOL2D, avg_pool2d)                                   \
    X(ADAPTIVE_AVG_POOL2D, adaptive_avg_pool2d)

#endif
