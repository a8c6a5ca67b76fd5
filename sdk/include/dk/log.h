/* dk/log.h — logging through the host.
 *
 *   void dk_log(dk_log_level level, const char *fmt, ...);
 *       Sends one line (no trailing newline needed) to the host's log sinks:
 *       the terminal, and the run's log file once a work dir exists. Lines
 *       below the host's level (dkhost --log-level) are dropped.
 */
#ifndef DK_LOG_H
#define DK_LOG_H

#include <dk/types.h>
#include <dk/api.h>

#define DK_DEBUG(...) dk_log(DK_LOG_DEBUG, __VA_ARGS__)
#define DK_INFO(...) dk_log(DK_LOG_INFO, __VA_ARGS__)
#define DK_WARN(...) dk_log(DK_LOG_WARN, __VA_ARGS__)

#endif /* DK_LOG_H */
