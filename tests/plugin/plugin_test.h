/* tests/plugin/plugin_test.h — what the plugin tests share: fixture paths
 * and an assertion that shows both strings when a message is wrong. */
#ifndef DK_PLUGIN_TEST_H
#define DK_PLUGIN_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "plugin/registry.h"

#define FIXTURE_DIR DK_TEST_BINARY_DIR "/fixtures"
/* The path of fixture <file>.so built for test case <case>. */
#define FIXTURE(case_, file) FIXTURE_DIR "/" case_ "/" file ".so"

#include "dk_test.h"

/* True when DK_NO_DLCLOSE keeps libraries mapped, so "was it closed?"
 * checks cannot hold. */
static inline bool no_dlclose(void)
{
    const char *v = getenv("DK_NO_DLCLOSE");
    return v && strcmp(v, "1") == 0;
}

#endif /* DK_PLUGIN_TEST_H */
