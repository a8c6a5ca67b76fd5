/* The layers the backbones of this plugin are built from: convolution, batch
 * norm and the residual blocks, each a declare (in create: parameters and
 * buffers under PyTorch's names) and a forward (plain op code).
 */
#ifndef CIFAR_LAYERS_H
#define CIFAR_LAYERS_H

#include <dk/dk.h>

/* A square convolution: weight (cout, cin, k, k), bias (cout) or none;
 * PyTorch's default init (kaiming_uniform with a = sqrt(5), bias
 * U(+-1/sqrt(fan_in))). */
typedef struct conv2d {
    dk_tensor *weight, *bias; /* borrowed: the module owns them */
    int64_t stride[2], pad[2];
} conv2d;

dk_status conv2d_declare(conv2d *c, const char *name, int64_t cin, int64_t cout, int64_t k,
                         int64_t stride, int64_t pad, bool bias) DK_CHECK;
dk_tensor *conv2d_forward(const conv2d *c, dk_tensor *x);

/* BatchNorm2d (momentum 0.1, eps 1e-5): weight 1, bias 0, running_mean 0,
 * running_var 1 and num_batches_tracked (an i64 scalar), as PyTorch names
 * them. The forward follows the module's training mode. */
typedef struct batch_norm {
    dk_tensor *weight, *bias, *running_mean, *running_var, *num_batches_tracked;
} batch_norm;

dk_status batch_norm_declare(batch_norm *bn, const char *name, int64_t channels) DK_CHECK;
dk_tensor *batch_norm_forward(const batch_norm *bn, dk_tensor *x);

/* A residual block as torchvision writes it. BASIC: 3x3 (stride) + BN +
 * ReLU, 3x3 + BN, cout = planes. BOTTLENECK: 1x1 + BN + ReLU, 3x3 (stride) +
 * BN + ReLU, 1x1 + BN, cout = 4 planes. Where the shape changes, the shortcut
 * is the CIFAR paper's option A (subsample, zero-pad the channels: no
 * parameters) when pad_shortcut, else a 1x1 convolution + BN named
 * "downsample.0" / "downsample.1". Then add and ReLU. */
typedef enum block_kind { BLOCK_BASIC, BLOCK_BOTTLENECK } block_kind;

typedef struct res_block {
    block_kind kind;
    int n_convs; /* 2 or 3 */
    conv2d conv[3];
    batch_norm bn[3];
    enum { SHORTCUT_IDENTITY, SHORTCUT_PAD, SHORTCUT_CONV } shortcut;
    conv2d down;
    batch_norm down_bn;
    int64_t stride;
    int64_t pad_lo, pad_hi; /* SHORTCUT_PAD: zero channels before and after */
} res_block;

/* Output channels of a block of kind with `planes`. */
int64_t res_block_out_channels(block_kind kind, int64_t planes);
dk_status res_block_declare(res_block *b, const char *name, block_kind kind, int64_t cin,
                            int64_t planes, int64_t stride, bool pad_shortcut) DK_CHECK;
dk_tensor *res_block_forward(const res_block *b, dk_tensor *x);

/* The stages of a ResNet, "layer1" ... "layerN": stage s has n_blocks[s]
 * blocks of planes base_planes * 2^s, the first of each stage after the
 * first striding by 2. out_mask selects the stages whose outputs the forward
 * puts into "feats" (shallowest first); stages past the deepest selected one
 * are not run. */
#define RES_MAX_STAGES 4

typedef struct res_stages {
    int n_stages;
    int64_t n_blocks[RES_MAX_STAGES];
    res_block *blocks; /* every stage's blocks in a row (dk_malloc) */
    uint32_t out_mask;
    int64_t out_channels[RES_MAX_STAGES];
} res_stages;

dk_status res_stages_declare(res_stages *st, int n_stages, const int64_t *n_blocks, block_kind kind,
                             int64_t cin, int64_t base_planes, bool pad_shortcut,
                             uint32_t out_mask) DK_CHECK;
/* x is the stem's output; sets out["feats"]. */
dk_status res_stages_forward(const res_stages *st, dk_tensor *x, dk_dict *out) DK_CHECK;
void res_stages_fini(res_stages *st);

/* Reads the `out_indices` list of cfg (stage indices in [0, n_stages)) into
 * a bit mask; an empty list is an error naming the key. */
dk_status read_out_indices(const dk_cfg *cfg, int n_stages, uint32_t *mask) DK_CHECK;

/* "<prefix>.<leaf>" into buf (size n); NULL and an error if it does not fit. */
const char *layer_name(char *buf, size_t n, const char *prefix, const char *leaf);

/* The input images, "img" (N, C, H, W), or NULL with an error naming type. */
dk_tensor *input_images(const dk_dict *in, const char *type);

#endif
