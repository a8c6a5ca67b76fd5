/* core/tensor/op_list_nn.h — the op-list group of the neural-network ops:
 * convolution, normalisation, pooling, resampling (X(ENUM, name), see
 * tensor_impl.h). */
#ifndef DKH_OP_LIST_NN_H
#define DKH_OP_LIST_NN_H

#define DKH_OPS_NN(X)

#endif
