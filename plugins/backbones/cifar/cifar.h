/* The small-image backbones this plugin offers (28x28 and 32x32 inputs). */
#ifndef CIFAR_BACKBONES_H
#define CIFAR_BACKBONES_H

#include <dk/dk.h>

extern const dk_type_info lenet_type;
extern const dk_type_info resnet_type;

#endif
