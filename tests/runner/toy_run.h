/* tests/runner/toy_run.h — scratch directories for whole dkhost runs on the
 * toy data set (tests/runner/fixtures/toy_blobs.c), shared by the runner and
 * hook tests. */
#ifndef DK_TEST_TOY_RUN_H
#define DK_TEST_TOY_RUN_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The small LeNet classifier the toy runs train: 8x8 one-channel images of
 * four classes (the start of a config; the loaders and the rest follow). */
#define TOY_MODEL_CONFIG                                                           \
    "model:\n"                                                                     \
    "  type: ImageClassifier\n"                                                    \
    "  backbone: {type: LeNet, in_channels: 1, input_size: 8, channels: [4, 8]}\n" \
    "  head: {type: LinearClsHead, in_channels: 32, num_classes: 4,\n"             \
    "         loss: {type: CrossEntropyLoss}}\n"

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
