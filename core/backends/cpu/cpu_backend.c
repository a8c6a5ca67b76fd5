/* core/backends/cpu/cpu_backend.c — the CPU kernel table and the iterator.
 *
 * Slots left NULL fall back to the op's reference kernel, which is exact but
 * slow; a fast kernel may also decline a call (a dtype it has no loop for) by
 * returning false. Both are tested against the reference kernel by the op
 * suite (tests/ops).
 */
#include "cpu.h"
#include "cpu_index.h"
#include "dnnl_cpu.h"

#include <pthread.h>
#include <string.h>

void dkh_ew_init(dkh_ew_iter *it, const dkh_kcall *c)
{
    const dk_tensor *out = c->out;
    memset(it, 0, sizeof *it);
    it->nops = c->n_in + 1;
    int nd = out->ndim;
    int64_t st[DKH_EW_MAX_OPS][DK_MAX_DIMS];
    memcpy(st[0], out->strides, sizeof st[0]);
    it->base[0] = dkh_base(out);
    it->esize[0] = dk_dtype_size(out->dtype);
    for (int k = 0; k < c->n_in; k++) {
        if (c->in[k]) {
            dkh_broadcast_strides(c->in[k], nd, out->shape, st[k + 1]);
            it->base[k + 1] = dkh_base(c->in[k]);
            it->esize[k + 1] = dk_dtype_size(c->in[k]->dtype);
        } else {
            memset(st[k + 1], 0, sizeof st[k + 1]);
        }
    }
    /* Walk the dims in the output's memory order (largest stride first), so
     * a channels-last output (and inputs laid out like it) is one long run,
     * not rows of stride C. A contiguous output keeps the logical order. */
    int order[DK_MAX_DIMS];
    for (int d = 0; d < nd; d++) {
        int j = d;
        while (j > 0 && out->strides[order[j - 1]] < out->strides[d]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = d;
    }
    /* Drop size-1 dims, then merge a dim into the one after it when every
     * operand steps over the inner one exactly. */
    int n = 0;
    for (int i = 0; i < nd; i++) {
        int d = order[i];
        if (out->shape[d] == 1)
            continue;
        if (n > 0) {
            bool merge = true;
            for (int k = 0; k < it->nops && merge; k++)
                merge = it->st[k][n - 1] == st[k][d] * out->shape[d];
            if (merge) {
                it->shape[n - 1] *= out->shape[d];
                for (int k = 0; k < it->nops; k++)
                    it->st[k][n - 1] = st[k][d];
                continue;
            }
        }
        it->shape[n] = out->shape[d];
        for (int k = 0; k < it->nops; k++)
            it->st[k][n] = st[k][d];
        n++;
    }
    it->ndim = n;
    it->inner = n ? it->shape[n - 1] : 1;
    it->rows = n ? dkh_numel(n - 1, it->shape) : 1;
    if (dkh_numel(nd, out->shape) == 0)
        it->rows = 0;
    /* 16K elements (64 KiB of f32) per piece keeps the per-item overhead
     * negligible; only rows at least twice that long are cut. */
    enum { CHUNK = 16384 };
    it->nchunk = it->inner >= 2 * CHUNK ? (it->inner + CHUNK - 1) / CHUNK : 1;
    it->chunk = (it->inner + it->nchunk - 1) / it->nchunk;
    it->items = it->rows * it->nchunk;
}

void dkh_ew_row(const dkh_ew_iter *it, int64_t r, int64_t *off)
{
    for (int k = 0; k < it->nops; k++)
        off[k] = 0;
    for (int d = it->ndim - 2; d >= 0; d--) {
        int64_t i = r % it->shape[d];
        r /= it->shape[d];
        for (int k = 0; k < it->nops; k++)
            off[k] += i * it->st[k][d];
    }
}

int64_t dkh_ew_item(const dkh_ew_iter *it, int64_t k, int64_t *off)
{
    int64_t r = k / it->nchunk, c = k % it->nchunk;
    dkh_ew_row(it, r, off);
    if (c == 0)
        return it->inner < it->chunk ? it->inner : it->chunk;
    int L = it->ndim - 1; /* c > 0 only when the inner dim was cut, so ndim >= 1 */
    for (int j = 0; j < it->nops; j++)
        off[j] += c * it->chunk * it->st[j][L];
    int64_t left = it->inner - c * it->chunk;
    return left < it->chunk ? left : it->chunk;
}

static dkh_backend cpu;
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;

static void cpu_fill(void)
{
    dkh_backend b;
    memset(&b, 0, sizeof b);
    b.struct_size = sizeof b;
    b.name = "cpu";
    static const dkh_op_id unary_ops[] = {
        DKH_OP_NEG,  DKH_OP_ABS,     DKH_OP_EXP,  DKH_OP_LOG,      DKH_OP_SQRT,
        DKH_OP_RSQRT, DKH_OP_RELU,   DKH_OP_SIGMOID, DKH_OP_TANH,  DKH_OP_GELU,
        DKH_OP_SILU, DKH_OP_SOFTPLUS, DKH_OP_LEAKY_RELU, DKH_OP_CLAMP, DKH_OP_POW_SCALAR,
        DKH_OP_AFFINE};
    for (size_t i = 0; i < sizeof unary_ops / sizeof *unary_ops; i++) {
        b.kernels[unary_ops[i]][DKH_FWD] = dkh_cpu_unary;
        b.kernels[unary_ops[i]][DKH_BWD] = dkh_cpu_unary_bwd;
    }
    static const dkh_op_id binary_ops[] = {
        DKH_OP_ADD, DKH_OP_SUB, DKH_OP_MUL, DKH_OP_DIV, DKH_OP_POW, DKH_OP_MAXIMUM,
        DKH_OP_MINIMUM, DKH_OP_EQ, DKH_OP_NE, DKH_OP_LT, DKH_OP_LE, DKH_OP_GT, DKH_OP_GE,
        DKH_OP_WHERE};
    for (size_t i = 0; i < sizeof binary_ops / sizeof *binary_ops; i++)
        b.kernels[binary_ops[i]][DKH_FWD] = dkh_cpu_binary;
    b.kernels[DKH_OP_COPY][DKH_FWD] = dkh_cpu_copy;
    b.kernels[DKH_OP_CAST][DKH_FWD] = dkh_cpu_cast;
    b.kernels[DKH_OP_FULL][DKH_FWD] = dkh_cpu_full;
    b.kernels[DKH_OP_SUM][DKH_FWD] = dkh_cpu_reduce;
    b.kernels[DKH_OP_AMAX][DKH_FWD] = dkh_cpu_reduce;
    b.kernels[DKH_OP_AMIN][DKH_FWD] = dkh_cpu_reduce;
    b.kernels[DKH_OP_NORM][DKH_FWD] = dkh_cpu_reduce;
    b.kernels[DKH_OP_MATMUL][DKH_FWD] = dkh_dnnl_matmul; /* f32 via oneDNN, else dkh_cpu_matmul */
    b.kernels[DKH_OP_SOFTMAX][DKH_FWD] = dkh_cpu_softmax;
    b.kernels[DKH_OP_LOG_SOFTMAX][DKH_FWD] = dkh_cpu_softmax;
    b.kernels[DKH_OP_SOFTMAX][DKH_BWD] = dkh_cpu_softmax_bwd;
    b.kernels[DKH_OP_LOG_SOFTMAX][DKH_BWD] = dkh_cpu_softmax_bwd;
    /* Neural-network ops (oneDNN and own kernels; dnnl_cpu.h). */
    b.kernels[DKH_OP_CONV2D][DKH_FWD] = dkh_dnnl_conv2d;
    b.kernels[DKH_OP_CONV2D_BWD_DATA][DKH_FWD] = dkh_dnnl_conv2d_bwd_data;
    b.kernels[DKH_OP_CONV2D_BWD_WEIGHT][DKH_FWD] = dkh_dnnl_conv2d_bwd_weight;
    b.kernels[DKH_OP_BATCH_NORM][DKH_FWD] = dkh_cpu_batch_norm;
    b.kernels[DKH_OP_BATCH_NORM][DKH_BWD] = dkh_cpu_batch_norm_bwd;
    b.kernels[DKH_OP_LAYER_NORM][DKH_FWD] = dkh_cpu_layer_norm;
    b.kernels[DKH_OP_LAYER_NORM][DKH_BWD] = dkh_cpu_layer_norm_bwd;
    b.kernels[DKH_OP_GROUP_NORM][DKH_FWD] = dkh_cpu_group_norm;
    b.kernels[DKH_OP_GROUP_NORM][DKH_BWD] = dkh_cpu_group_norm_bwd;
    b.kernels[DKH_OP_MAX_POOL2D][DKH_FWD] = dkh_cpu_max_pool2d;
    b.kernels[DKH_OP_MAX_POOL2D][DKH_BWD] = dkh_cpu_max_pool2d_bwd;
    b.kernels[DKH_OP_AVG_POOL2D][DKH_FWD] = dkh_cpu_avg_pool2d;
    b.kernels[DKH_OP_AVG_POOL2D][DKH_BWD] = dkh_cpu_avg_pool2d_bwd;
    b.kernels[DKH_OP_ADAPTIVE_AVG_POOL2D][DKH_FWD] = dkh_cpu_adaptive_avg_pool2d;
    b.kernels[DKH_OP_ADAPTIVE_AVG_POOL2D][DKH_BWD] = dkh_cpu_adaptive_avg_pool2d_bwd;
    b.kernels[DKH_OP_SLICE][DKH_BWD] = dkh_cpu_slice_bwd; /* movement.c */
    b.kernels[DKH_OP_PAD][DKH_FWD] = dkh_cpu_pad;
    b.kernels[DKH_OP_PAD][DKH_BWD] = dkh_cpu_pad_bwd;
    dkh_cpu_fill_index(&b); /* indexing, sorting, losses, resampling (cpu_index.h) */
    cpu = b;
}

const dkh_backend *dkh_cpu_backend(void)
{
    pthread_once(&cpu_once, cpu_fill);
    return &cpu;
}
