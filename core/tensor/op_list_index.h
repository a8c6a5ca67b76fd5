/* core/tensor/op_list_index.h — the op-list group of indexing, sorting,
 * losses, resampling and detection geometry (X(ENUM, name), see
 * tensor_impl.h).
 *
 * Ops whose output size depends on the data (nonzero, nms) count in their
 * rule, which reads the input on the CPU. Sort-like ops produce indices (i64)
 * and leave the values to gather, which is differentiable. Functions made of
 * other ops (stack, split, chunk, masked_fill, argsort, the elementwise
 * losses) have no entry here. */
#ifndef DKH_OP_LIST_INDEX_H
#define DKH_OP_LIST_INDEX_H

#define DKH_OPS_INDEX(X)                                                                   \
    /* joining */                                                                         \
    X(CAT, cat)                                                                           \
    /* indexing */                                                                        \
    X(INDEX_SELECT, index_select) X(INDEX_PUT, index_put) X(GATHER, gather)               \
    X(SCATTER, scatter) X(NONZERO, nonzero)                                               \
    /* selection and sorting */                                                           \
    X(MAX_DIM, max_dim) X(SORT, sort) X(TOPK, topk)                                       \
    /* norms and losses */                                                                \
    X(NORM, norm) X(CROSS_ENTROPY, cross_entropy) X(NLL_LOSS, nll_loss)                   \
    /* resampling */                                                                      \
    X(INTERPOLATE, interpolate) X(PAD, pad) X(DROPOUT, dropout)                           \
    /* detection geometry */                                                              \
    X(BOX_IOU, box_iou) X(NMS, nms)

#endif
