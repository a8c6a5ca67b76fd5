/* cifar_backbones — LeNet-style and CIFAR ResNet backbones for small images.
 *
 * This file is the plugin's entry: it registers the types defined beside it.
 */
#include "cifar.h"

static dk_status cifar_init(dk_registrar *reg)
{
    DK_TRY(dk_register(reg, &lenet_type));
    return dk_register(reg, &resnet_type);
}

DK_PLUGIN_DEFINE(cifar_init,
                 .name = "cifar_backbones", .version = "0.1.0",
                 .summary = "LeNet-style and CIFAR ResNet backbones for small images",
                 .license = "Apache-2.0", .source = "in-tree")
