/* core/tensor/op_list_index.h — the op-list group of indexing, sorting,
 * losses and detection geometry (X(ENUM, name), see tensor_impl.h). */
#ifndef DKH_OP_LIST_INDEX_H
#define DKH_OP_LIST_INDEX_H

#define DKH_OPS_INDEX(X)

#endif
