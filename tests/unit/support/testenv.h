/*
 * What a unit test may do when something it needs is missing here (test
 * data outside the repository, a broker): skip. Outside CI a skip is
 * reported to ctest as a skip: the test program exits with
 * NA_TEST_SKIP_RETURN_CODE, which CMakeLists.txt declares as the tests'
 * SKIP_RETURN_CODE. With CI=true a skip is a failure, so the test command
 * cannot pass in CI without running every test.
 *
 *     if (!have_data) {
 *         NA_TEST_SKIP("../shared/seeds not present");
 *     }
 *     ...
 *     int main(void) {
 *         return na_test_exit(cmocka_run_group_tests(tests, NULL, NULL));
 *     }
 */
#ifndef NA_TEST_TESTENV_H
#define NA_TEST_TESTENV_H

#include <stdbool.h>

/* ctest's SKIP_RETURN_CODE for every test program (and the integration
 * files, tests/integration/harness.py). */
#define NA_TEST_SKIP_RETURN_CODE 77

/* @returns true when the environment says CI (CI=true, 1 or yes). */
bool na_test_in_ci(void);

/* Skip the running cmocka test (outside CI) or fail it (CI=true), naming
 * @p why. Does not return. */
#define NA_TEST_SKIP(why) na_test_skip_((why), __FILE__, __LINE__)
void na_test_skip_(const char *why, const char *file, int line);

/* @returns the exit status for cmocka's @p failed count: 1 when a test
 * failed, NA_TEST_SKIP_RETURN_CODE when one skipped through NA_TEST_SKIP,
 * else 0. */
int na_test_exit(int failed);

#endif
