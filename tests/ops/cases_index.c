/* tests/ops/cases_index.c — op-suite rows for indexing, sorting, losses and detection geometry. */
#include "op_cases.h"

const op_case dkt_cases_index[] = {
    {.name = NULL},
};
