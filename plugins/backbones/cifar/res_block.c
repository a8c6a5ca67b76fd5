/* Residual blocks (basic and bottleneck) shared by ResNetCifar and ResNet,
 * with torchvision's parameter names so weights map one to one.
 */
#include "layers.h"

#include <stdint.h>

int64_t res_block_out_channels(block_kind kind, int64_t planes)
{
    return kind == BLOCK_BOTTLENECK ? 4 * planes : planes;
}

dk_status res_block_declare(res_block *b, const char *name, block_kind kind, int64_t cin,
                            int64_t planes, int64_t stride, bool pad_shortcut)
{
    static const char *const conv_names[3] = {"conv1", "conv2", "conv3"};
    static const char *const bn_names[3] = {"bn1", "bn2", "bn3"};
    int64_t cout = res_block_out_channels(kind, planes);
    /* (in, out, kernel, stride) of each convolution, in torchvision's order. */
    const int64_t basic[2][4] = {{cin, planes, 3, stride}, {planes, planes, 3, 1}};
    const int64_t bottleneck[3][4] = {
        {cin, planes, 1, 1}, {planes, planes, 3, stride}, {planes, cout, 1, 1}};
    const int64_t(*spec)[4] = kind == BLOCK_BASIC ? basic : bottleneck;
    b->n_convs = kind == BLOCK_BASIC ? 2 : 3;
    b->kind = kind;
    b->stride = stride;
    char buf[128];
    for (int i = 0; i < b->n_convs; i++) {
        const char *n = layer_name(buf, sizeof buf, name, conv_names[i]);
        if (!n)
            return dk_last_status();
        DK_TRY(conv2d_declare(&b->conv[i], n, spec[i][0], spec[i][1], spec[i][2], spec[i][3],
                              spec[i][2] / 2, false));
        if (!(n = layer_name(buf, sizeof buf, name, bn_names[i])))
            return dk_last_status();
        DK_TRY(batch_norm_declare(&b->bn[i], n, spec[i][1]));
    }
    b->shortcut = SHORTCUT_IDENTITY;
    if (stride == 1 && cin == cout)
        return DK_OK;
    if (pad_shortcut && cout >= cin) {
        b->shortcut = SHORTCUT_PAD;
        b->pad_lo = (cout - cin) / 2;
        b->pad_hi = cout - cin - b->pad_lo;
        return DK_OK;
    }
    b->shortcut = SHORTCUT_CONV;
    const char *n = layer_name(buf, sizeof buf, name, "downsample.0");
    if (!n)
        return dk_last_status();
    DK_TRY(conv2d_declare(&b->down, n, cin, cout, 1, stride, 0, false));
    if (!(n = layer_name(buf, sizeof buf, name, "downsample.1")))
        return dk_last_status();
    return batch_norm_declare(&b->down_bn, n, cout);
}

static dk_tensor *shortcut_forward(const res_block *b, dk_tensor *x)
{
    switch (b->shortcut) {
    case SHORTCUT_PAD: {
        /* F.pad(x[:, :, ::s, ::s], (0, 0, 0, 0, lo, hi)) */
        dk_tensor *s =
            dk_slice(dk_slice(x, 2, 0, INT64_MAX, b->stride), 3, 0, INT64_MAX, b->stride);
        return dk_pad(s, (int64_t[]){0, 0, 0, 0, b->pad_lo, b->pad_hi}, 6, DK_PAD_CONSTANT, 0);
    }
    case SHORTCUT_CONV:
        return batch_norm_forward(&b->down_bn, conv2d_forward(&b->down, x));
    default:
        return x;
    }
}

dk_tensor *res_block_forward(const res_block *b, dk_tensor *x) /* (N, cin, H, W) */
{
    dk_tensor *y = x;
    for (int i = 0; i < b->n_convs; i++) {
        y = batch_norm_forward(&b->bn[i], conv2d_forward(&b->conv[i], y));
        if (i + 1 < b->n_convs)
            y = dk_relu_(y); /* in place: the normalised map is not kept beside it */
    }
    return dk_relu_(dk_add(y, shortcut_forward(b, x))); /* (N, cout, H / s, W / s) */
}
