/* dk/status.h — the error model.
 *
 * Every fallible function returns a dk_status (DK_OK is 0) and, on failure,
 * leaves a message with context in the calling thread's error slot. Context is
 * prefixed on the way up, so a user finally reads one line such as
 *   "config.model.backbone: ResNet: depth must be one of 20|32|44, got 21".
 *
 *   dk_status dk_fail(dk_status s, const char *fmt, ...);
 *       Records a message for status s and returns s, for `return dk_fail(...)`.
 *   void dk_error_prefix(const char *fmt, ...);
 *       Prepends "<formatted>: " to the current message.
 *   const char *dk_last_error(void);
 *       The current message; borrowed, valid until the next dk_fail,
 *       dk_error_prefix or dk_clear_error on this thread. "" when none.
 *   dk_status dk_last_status(void);
 *       The status of the last dk_fail on this thread (DK_OK when cleared).
 *   void dk_clear_error(void);
 *   const char *dk_status_name(dk_status s);   e.g. "DK_ERR_CONFIG"
 *   const char *dk_status_str(dk_status s);    e.g. "invalid configuration"
 *
 * Nothing in libdk prints on its own or exits for an input a user can get
 * wrong; only dkhost's main decides what reaches stderr and the exit code.
 */
#ifndef DK_STATUS_H
#define DK_STATUS_H

#include <dk/types.h>
#include <dk/api.h>

/* Propagate a failure: evaluates expr once and returns its status if not OK. */
#define DK_TRY(expr)                          \
    do {                                      \
        dk_status dk_try_s_ = (expr);         \
        if (dk_try_s_ != DK_OK)               \
            return dk_try_s_;                 \
    } while (0)

#endif /* DK_STATUS_H */
