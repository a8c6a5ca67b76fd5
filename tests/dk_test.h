/* tests/dk_test.h — assertions every cmocka test of dkhost shares: message
 * checks that print both strings when they differ. Include after cmocka.h. */
#ifndef DK_TEST_H
#define DK_TEST_H

#include <string.h>

static inline void dkt_check_contains(const char *hay, const char *needle, const char *file,
                                      int line)
{
    if (!hay || !strstr(hay, needle)) {
        print_error("expected text containing\n    \"%s\"\ngot\n    \"%s\"\n", needle,
                    hay ? hay : "(null)");
        _fail(file, line);
    }
}
#define assert_contains(hay, needle) dkt_check_contains((hay), (needle), __FILE__, __LINE__)

static inline void dkt_check_str_eq(const char *got, const char *want, const char *file, int line)
{
    if (!got || strcmp(got, want) != 0) {
        print_error("expected\n    \"%s\"\ngot\n    \"%s\"\n", want, got ? got : "(null)");
        _fail(file, line);
    }
}
#define assert_str_eq(got, want) dkt_check_str_eq((got), (want), __FILE__, __LINE__)

#endif /* DK_TEST_H */
