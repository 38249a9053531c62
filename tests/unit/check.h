/* check.h: the assertion helper shared by the C unit tests.
 *
 * CHECK(c) counts a pass or prints "file:line: check failed: c" and counts a
 * failure; the test keeps going so one run reports every broken case.
 * check_summary() prints the closing "N passed, M failed" line that ctest logs
 * and CI read, and returns the exit status (1 on any failure). One test
 * program is one translation unit, so the counters can live here.
 */
#ifndef CRAMC_TEST_CHECK_H
#define CRAMC_TEST_CHECK_H

#include <stdio.h>

static int n_pass, n_fail;

#define CHECK(c)                                                            \
  do {                                                                      \
    if (c) n_pass++;                                                        \
    else {                                                                  \
      n_fail++;                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
    }                                                                       \
  } while (0)

static inline int check_summary(const char *test) {
  printf("%s: %d passed, %d failed\n", test, n_pass, n_fail);
  return n_fail ? 1 : 0;
}

#endif
