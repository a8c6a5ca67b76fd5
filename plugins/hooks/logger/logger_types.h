/* plugins/hooks/logger/logger_types.h — the types the logger_hook plugin registers. */
#ifndef DK_HOOKS_LOGGER_TYPES_H
#define DK_HOOKS_LOGGER_TYPES_H

#include <dk/dk.h>

extern const dk_type_info logger_hook_type;
extern const dk_type_info iter_timer_hook_type;

#endif
