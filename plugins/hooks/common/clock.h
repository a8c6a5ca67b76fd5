/* plugins/hooks/common/clock.h — wall time for the timing and progress hooks. */
#ifndef DK_HOOKS_CLOCK_H
#define DK_HOOKS_CLOCK_H

#include <stddef.h>

/* Seconds on a monotonic clock (only differences mean anything). */
double clock_now(void);

/* Writes seconds as Python's timedelta prints them, which mmcv's log lines
 * use for the ETA: "0:01:23", "12:00:05", "2 days, 3:04:05". Negative or
 * non-finite values print as "0:00:00". */
void clock_format(double seconds, char *buf, size_t size);

#endif
