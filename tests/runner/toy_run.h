/* tests/runner/toy_run.h — scratch directories for whole dkhost runs on the
 * toy data set (tests/runner/fixtures/toy_blobs.c), shared by the runner and
 * hook tests. */
#ifndef DK_TEST_TOY_RUN_H
#define DK_TEST_TOY_RUN_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Where the fixture plugin is built. */
#define TOY_PLUGINS DK_BINARY_DIR "/tests/runner/plugins"

typedef struct run_dir {
    char root[400]; /* <test binary dir>/<prefix>_<name>_<pid> */
    char work[480]; /* <root>/work */
} run_dir;

/* Makes d->root afresh (removing what an earlier run left). */
static inline void run_dir_make(run_dir *d, const char *prefix, const char *name)
{
    snprintf(d->root, sizeof d->root, "%s/%s_%s_%d", DK_TEST_BINARY_DIR, prefix, name,
             (int)getpid());
    snprintf(d->work, sizeof d->work, "%s/work", d->root);
    char cmd[1000];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", d->root, d->root);
    assert_int_equal(system(cmd), 0);
}

static inline void run_dir_remove(const run_dir *d)
{
    char cmd[1000];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->root);
    assert_int_equal(system(cmd), 0);
}

#endif
