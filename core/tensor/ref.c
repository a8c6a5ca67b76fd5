/* core/tensor/ref.c — helpers the plain reference kernels share.
 *
 * Reference kernels are the definition of each op's numbers: one element at a
 * time, every value through double, any strides, any dtype. They are slow on
 * purpose and obvious by design; the fast backend kernels are tested against
 * them.
 */
#include "tensor_impl.h"

void dkh_ref_map(const dkh_kcall *c, dkh_ref_fn fn)
{
    const dk_tensor *out = c->out;
    int64_t st[DKH_MAX_IN][DK_MAX_DIMS];
    for (int k = 0; k < c->n_in; k++)
        dkh_broadcast_strides(c->in[k], out->ndim, out->shape, st[k]);
    int64_t n = dkh_numel(out->ndim, out->shape);
    char *ob = dkh_base(out);
    for (int64_t i = 0; i < n; i++) {
        double x[DKH_MAX_IN];
        for (int k = 0; k < c->n_in; k++)
            x[k] = dkh_load(dkh_base(c->in[k]), c->in[k]->dtype,
                            dkh_offset_of(i, out->ndim, out->shape, st[k]));
        dkh_store(ob, out->dtype, dkh_offset_of(i, out->ndim, out->shape, out->strides),
                  fn(x, c->args));
    }
}
