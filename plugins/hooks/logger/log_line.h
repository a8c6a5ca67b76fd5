/* plugins/hooks/logger/log_line.h — mmcv's text log line.
 *
 *     Epoch [2][100/469]  lr: 1.000e-01, eta: 0:01:23, time: 0.052, data_time: 0.001,
 *         memory: 123, loss_cls: 0.4321, loss: 0.4321
 *
 * (one line): a prefix, two spaces, then "key: value" items. Keys named in
 * `lead` come first in that order, the rest follow in first-seen order.
 * Formats: lr and momentum %.3e, eta_s as "eta: H:MM:SS", time and
 * data_time %.3f, memory as an integer (MiB), everything else %.4f.
 */
#ifndef DK_HOOKS_LOG_LINE_H
#define DK_HOOKS_LOG_LINE_H

#include "scalar_window.h"

/* The lead of a training line. */
extern const char *const log_line_train_lead[];
/* The lead of an evaluation iteration line. */
extern const char *const log_line_eval_lead[];

/* A new line (dk_free), or NULL when out of memory. lead is NULL-terminated
 * and may be NULL. */
char *log_line_format(const char *prefix, const scalar_window *w, const char *const *lead);

#endif
