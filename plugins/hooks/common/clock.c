/* plugins/hooks/common/clock.c — a monotonic clock and the ETA format. */
#include "clock.h"

#include <math.h>
#include <stdio.h>
#include <time.h>

double clock_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void clock_format(double seconds, char *buf, size_t size)
{
    long long s = isfinite(seconds) && seconds > 0 ? (long long)seconds : 0;
    long long days = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60, sec = s % 60;
    if (days > 0)
        snprintf(buf, size, "%lld day%s, %lld:%02lld:%02lld", days, days == 1 ? "" : "s", h, m,
                 sec);
    else
        snprintf(buf, size, "%lld:%02lld:%02lld", h, m, sec);
}
