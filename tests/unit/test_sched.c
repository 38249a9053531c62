/* test_sched.c: runtime/schedule.h — budget-triangle2 lr multiplier at known
 * t, the reference batch-size ramp rule, duration parsing.
 * Prints "N passed, M failed". */
#include <math.h>
#include <stdio.h>

#include "schedule.h"

#include "check.h"

#define NEAR(a, b) (fabs((a) - (b)) < 1e-12)

/* Reference: torch_default.py schedule_batch_size with steps "microbatch steps". */
static uint64_t ref_bs(double t, uint64_t steps, uint64_t mbs, uint64_t target, double ramp) {
  uint64_t x = (uint64_t)(t * (double)steps * ((double)target / ((double)steps * ramp)));
  uint64_t v = (x / mbs + 1) * mbs;
  return v < target ? v : target;
}

int main(void) {
  CHECK(NEAR(cram_lr_mult(0), 0.25));
  CHECK(NEAR(cram_lr_mult(0.5), 0.75));
  CHECK(NEAR(cram_lr_mult(0.75), 1.0));
  CHECK(NEAR(cram_lr_mult(0.875), 0.5));
  CHECK(NEAR(cram_lr_mult(1), 0));
  CHECK(NEAR(cram_lr_mult(1.5), 0) && NEAR(cram_lr_mult(-1), 0.25));
  CHECK(cram_batch_size(0, 128, 8192, 0.6) == 128);
  CHECK(cram_batch_size(0.3, 128, 8192, 0.6) == 4096 + 128);
  CHECK(cram_batch_size(0.6, 128, 8192, 0.6) == 8192);
  CHECK(cram_batch_size(0.9, 128, 8192, 0.6) == 8192);
  CHECK(cram_batch_size(0.5, 128, 8192, 0) == 8192);
  int same = 1;
  for (int i = 0; i <= 1000; i++) {
    double t = i / 1000.0;
    if (cram_batch_size(t, 128, 8192, 0.6) != ref_bs(t, 900000, 128, 8192, 0.6)) same = 0;
    uint64_t b = cram_batch_size(t, 512, 8192, 0.6);
    if (b % 512 || b < 512 || b > 8192) same = 0;
  }
  CHECK(same);
  double s;
  cram_err err = { 0 };
  CHECK(cram_parse_duration("24h", &s, &err) == CRAM_OK && s == 86400);
  CHECK(cram_parse_duration("90m", &s, &err) == CRAM_OK && s == 5400);
  CHECK(cram_parse_duration("30s", &s, &err) == CRAM_OK && s == 30);
  CHECK(cram_parse_duration("1.5h", &s, &err) == CRAM_OK && s == 5400);
  CHECK(cram_parse_duration("45", &s, &err) == CRAM_OK && s == 45);
  CHECK(cram_parse_duration("0h", &s, &err) != CRAM_OK);
  CHECK(cram_parse_duration("3x", &s, &err) != CRAM_OK);
  CHECK(cram_parse_duration("h", &s, &err) != CRAM_OK);
  return check_summary("test_sched");
}
