/* tests/unit/cfg_testing.h — helpers shared by the config tests: fixture
 * paths, loading with a clear failure, and message checks. */
#ifndef DK_CFG_TESTING_H
#define DK_CFG_TESTING_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cfg/cfg.h"

#define CFG_DATA DK_TEST_SOURCE_DIR "/cfg_data/"

/* Fails the test, showing the error, when s is not DK_OK. */
#define CHECK_OK(expr)                                                                             \
    do {                                                                                           \
        dk_status s_ = (expr);                                                                     \
        if (s_ != DK_OK)                                                                           \
            fail_msg("%s failed: %s: %s", #expr, dk_status_name(s_), dk_last_error());             \
    } while (0)

/* Checks that the last error contains `needle`, showing it when not. */
#define CHECK_MSG(needle)                                                                          \
    do {                                                                                           \
        if (!strstr(dk_last_error(), (needle)))                                                    \
            fail_msg("error message\n  %s\nlacks\n  %s", dk_last_error(), (needle));               \
    } while (0)

static inline dk_cfg *load_fixture(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s%s", CFG_DATA, name);
    dk_cfg *c = NULL;
    CHECK_OK(dkh_cfg_load(path, &c));
    return c;
}

static inline dk_cfg *parse_text(const char *text)
{
    dk_cfg *c = NULL;
    CHECK_OK(dkh_cfg_parse(text, "t.yaml", &c));
    return c;
}

/* Dumps c, parses the text back and checks the trees are equal. */
static inline void check_round_trip(const dk_cfg *c)
{
    dkh_buf b = DKH_BUF_INIT;
    dkh_cfg_dump(c, &b);
    dk_cfg *back = NULL;
    dk_status s = dkh_cfg_parse(dkh_buf_str(&b), "dump.yaml", &back);
    if (s != DK_OK)
        fail_msg("dump does not parse: %s\n%s", dk_last_error(), dkh_buf_str(&b));
    if (!dkh_cfg_equal(c, back))
        fail_msg("dump does not read back equal:\n%s", dkh_buf_str(&b));
    /* Dumping twice gives the same text. */
    dkh_buf b2 = DKH_BUF_INIT;
    dkh_cfg_dump(back, &b2);
    assert_string_equal(dkh_buf_str(&b), dkh_buf_str(&b2));
    dkh_buf_fini(&b2);
    dkh_buf_fini(&b);
    dkh_cfg_free(back);
}

#endif
