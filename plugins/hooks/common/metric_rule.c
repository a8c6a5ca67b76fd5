/* plugins/hooks/common/metric_rule.c — comparing validation metrics. */
#include "metric_rule.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int metric_rule(const char *rule, const char *key)
{
    if (rule)
        return strcmp(rule, "less") == 0 ? -1 : 1;
    return key && strstr(key, "loss") ? -1 : 1;
}

bool metric_improves(int rule, double value, double best, double min_delta)
{
    if (!isfinite(value))
        return false;
    return rule > 0 ? value > best + min_delta : value < best - min_delta;
}

void metric_keys(const dk_dict *metrics, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < dk_dict_len(metrics) && used + 1 < size; i++) {
        if (dk_dict_kind(metrics, i) != DK_VALUE_NUMBER)
            continue;
        int n = snprintf(buf + used, size - used, "%s%s", used ? ", " : "",
                         dk_dict_key(metrics, i));
        if (n < 0 || (size_t)n >= size - used)
            break;
        used += (size_t)n;
    }
    if (!buf[0])
        snprintf(buf, size, "none");
}
