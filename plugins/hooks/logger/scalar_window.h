/* plugins/hooks/logger/scalar_window.h — the values seen since the last log line.
 *
 * mmcv's text logger prints the mean of each value over the iterations since
 * its last line (losses, times) but the latest value of the learning rate,
 * momentum, memory and ETA; a window keeps both, in first-seen key order.
 */
#ifndef DK_HOOKS_SCALAR_WINDOW_H
#define DK_HOOKS_SCALAR_WINDOW_H

#include <dk/dk.h>

typedef struct scalar {
    char *key;
    double sum, last;
    int64_t n;
} scalar;

typedef struct scalar_window {
    scalar *v;
    size_t n, cap;
} scalar_window;

/* Adds one value of key. */
dk_status window_add(scalar_window *w, const char *key, double value) DK_CHECK;
/* Adds every number of d (strings and tensors are not logged). */
dk_status window_add_dict(scalar_window *w, const dk_dict *d) DK_CHECK;
/* What a line shows for v: the latest value or the mean, as above. */
double window_value(const scalar *v);
/* The entry for key, or NULL. */
const scalar *window_find(const scalar_window *w, const char *key);
/* Forgets the values (keeps the memory). */
void window_clear(scalar_window *w);
void window_fini(scalar_window *w);

#endif
