/* cifar_backbones — LeNet and ResNetCifar for small images, and the ImageNet
 * ResNet that shares their layers (layers.c, res_block.c, res_stages.c).
 *
 * This file is the plugin's entry: it registers the types defined beside it.
 */
#include "cifar.h"

static dk_status cifar_init(dk_registrar *reg)
{
    DK_TRY(dk_register(reg, &lenet_type));
    DK_TRY(dk_register(reg, &resnet_cifar_type));
    return dk_register(reg, &resnet_type);
}

DK_PLUGIN_DEFINE(cifar_init,
                 .name = "cifar_backbones", .version = "0.1.0",
                 .summary = "LeNet, CIFAR ResNet and ImageNet ResNet backbones",
                 .license = "Apache-2.0", .source = "in-tree")
