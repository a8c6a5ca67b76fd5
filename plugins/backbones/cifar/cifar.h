/* The backbones this plugin offers: LeNet and ResNetCifar for small images
 * (28x28, 32x32), ResNet for 224x224 ImageNet-style images. */
#ifndef CIFAR_BACKBONES_H
#define CIFAR_BACKBONES_H

#include <dk/dk.h>

extern const dk_type_info lenet_type;
extern const dk_type_info resnet_cifar_type;
extern const dk_type_info resnet_type;

#endif
