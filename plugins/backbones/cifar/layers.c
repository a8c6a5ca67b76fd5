/* Convolution and batch-norm layers shared by the backbones of this plugin:
 * their parameters under PyTorch's names and initialisers, and their forward.
 */
#include "layers.h"

#include <math.h>
#include <stdio.h>

const char *layer_name(char *buf, size_t n, const char *prefix, const char *leaf)
{
    int len = snprintf(buf, n, "%s.%s", prefix, leaf);
    if (len < 0 || (size_t)len >= n) {
        dk_fail(DK_ERR_ARG, "layer name '%s.%s' is too long", prefix, leaf);
        return NULL;
    }
    return buf;
}

dk_tensor *input_images(const dk_dict *in, const char *type)
{
    dk_tensor *x = dk_dict_tensor(in, "img");
    if (!x)
        dk_fail(DK_ERR_ARG, "%s: the input has no 'img' tensor (N, C, H, W)", type);
    return x;
}

dk_status conv2d_declare(conv2d *c, const char *name, int64_t cin, int64_t cout, int64_t k,
                         int64_t stride, int64_t pad, bool bias)
{
    char buf[128];
    const char *wname = layer_name(buf, sizeof buf, name, "weight");
    c->weight = wname ? dk_module_param(wname, 4, (int64_t[]){cout, cin, k, k},
                                        &(dk_init){.kind = DK_INIT_KAIMING_UNIFORM, .a = sqrt(5.0)})
                      : NULL;
    if (!c->weight)
        return dk_last_status();
    c->bias = NULL;
    if (bias) {
        const char *bname = layer_name(buf, sizeof buf, name, "bias");
        /* PyTorch bounds the bias by the weight's fan-in. */
        c->bias = bname ? dk_module_param(bname, 1, &cout,
                                          &(dk_init){.kind = DK_INIT_FAN_IN_UNIFORM,
                                                     .b = (double)(cin * k * k)})
                        : NULL;
        if (!c->bias)
            return dk_last_status();
    }
    c->stride[0] = c->stride[1] = stride;
    c->pad[0] = c->pad[1] = pad;
    return DK_OK;
}

dk_tensor *conv2d_forward(const conv2d *c, dk_tensor *x)
{
    return dk_conv2d(x, c->weight, c->bias, c->stride, c->pad, NULL, 1);
}

dk_status batch_norm_declare(batch_norm *bn, const char *name, int64_t channels)
{
    char buf[128];
    const char *n;
    if (!(n = layer_name(buf, sizeof buf, name, "weight")) ||
        !(bn->weight =
              dk_module_param(n, 1, &channels, &(dk_init){.kind = DK_INIT_CONSTANT, .a = 1.0})) ||
        !(n = layer_name(buf, sizeof buf, name, "bias")) ||
        !(bn->bias = dk_module_param(n, 1, &channels, NULL)) ||
        !(n = layer_name(buf, sizeof buf, name, "running_mean")) ||
        !(bn->running_mean = dk_module_buffer(n, 1, &channels, DK_DTYPE_F32, 0.0)) ||
        !(n = layer_name(buf, sizeof buf, name, "running_var")) ||
        !(bn->running_var = dk_module_buffer(n, 1, &channels, DK_DTYPE_F32, 1.0)) ||
        !(n = layer_name(buf, sizeof buf, name, "num_batches_tracked")) ||
        !(bn->num_batches_tracked = dk_module_buffer(n, 0, NULL, DK_DTYPE_I64, 0.0)))
        return dk_last_status();
    return DK_OK;
}

dk_tensor *batch_norm_forward(const batch_norm *bn, dk_tensor *x)
{
    bool training = dk_module_training();
    dk_tensor *y = dk_batch_norm(x, bn->weight, bn->bias, bn->running_mean, bn->running_var,
                                 training, 0.1, 1e-5);
    /* Counted as PyTorch does: one per training batch that was normalised.
     * The count is bumped in place, which needs the buffer in CPU memory. */
    if (y && training && dk_tensor_device(bn->num_batches_tracked).type == DK_DEVICE_CPU)
        ++*(int64_t *)dk_tensor_data(bn->num_batches_tracked);
    return y;
}
