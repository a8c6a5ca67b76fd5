/* tests/ops/cases_nn.c — op-suite rows for convolution, normalisation, pooling and the other neural-network ops. */
#include "op_cases.h"

const op_case dkt_cases_nn[] = {
    {.name = NULL},
};
