#include "testenv.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <strings.h>

/* Tests run one after another on the main thread (cmocka without forking). */
static int skipped;

bool na_test_in_ci(void) {
    const char *ci = getenv("CI");
    return ci &&
           (!strcasecmp(ci, "true") || !strcasecmp(ci, "1") || !strcasecmp(ci, "yes"));
}

void na_test_skip_(const char *why, const char *file, int line) {
    if (na_test_in_ci()) {
        print_error("skipped in CI (CI=true): %s\n", why);
        _fail(file, line);
    }
    print_message("skip: %s\n", why);
    skipped++;
    _skip(file, line);
}

int na_test_exit(int failed) {
    return failed ? 1 : skipped ? NA_TEST_SKIP_RETURN_CODE : 0;
}
