/* schedule.c - learning-rate and batch-size schedules; see schedule.h. */
#include "schedule.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

double cram_lr_mult(double t) {
  if (!(t > 0)) t = 0;
  if (t > 1) t = 1;
  double up = 0.25 + t, down = 4.0 * (1.0 - t);
  return up < down ? up : down;
}

static const char *const shape_names[CRAM_LR_SHAPES] = { "triangle", "one-cycle", "cosine", "constant" };

int cram_lr_shape_parse(const char *s) {
  for (int i = 0; s && i < CRAM_LR_SHAPES; i++)
    if (strcmp(s, shape_names[i]) == 0) return i;
  return -1;
}

const char *cram_lr_shape_name(int shape) { return shape >= 0 && shape < CRAM_LR_SHAPES ? shape_names[shape] : NULL; }

double cram_lr_shape_mult(int shape, double warmup, double t) {
  if (!(t > 0)) t = 0;
  if (t > 1) t = 1;
  if (shape == CRAM_LR_TRIANGLE) return cram_lr_mult(t);
  if (warmup > 0 && t < warmup) return t / warmup;
  double rest = 1.0 - (warmup > 0 ? warmup : 0), u = rest > 0 ? (t - (1.0 - rest)) / rest : 1.0;
  switch (shape) {
  case CRAM_LR_ONE_CYCLE: return 1.0 - u;
  case CRAM_LR_COSINE: return 0.5 * (1.0 + cos(3.14159265358979323846 * u));
  default: return 1.0;
  }
}

uint64_t cram_batch_size(double t, uint64_t mbs, uint64_t target, double ramp) {
  if (mbs == 0) return 0;
  uint64_t cap = (target + mbs - 1) / mbs * mbs; /* whole microbatches */
  if (target <= mbs) return mbs;
  if (!(ramp > 0)) return cap;
  if (!(t > 0)) t = 0;
  double x = t * (double)target / ramp;
  if (x >= (double)target) return cap;
  uint64_t bs = ((uint64_t)floor(x) / mbs + 1) * mbs;
  return bs < cap ? bs : cap;
}

cram_status cram_parse_duration(const char *s, double *seconds, cram_err *err) {
  if (!s || !*s) return cram_err_set(err, CRAM_E_ARG, "empty duration");
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  double mul = 1;
  if (end != s && *end && !end[1]) {
    switch (*end) {
    case 's':
      mul = 1;
      end++;
      break;
    case 'm':
      mul = 60;
      end++;
      break;
    case 'h':
      mul = 3600;
      end++;
      break;
    case 'd':
      mul = 86400;
      end++;
      break;
    default: break;
    }
  }
  if (errno || end == s || *end || !(v > 0) || !isfinite(v))
    return cram_err_set(err, CRAM_E_ARG, "bad duration '%s' (expected e.g. 24h, 90m, 30s)", s);
  *seconds = v * mul;
  return CRAM_OK;
}

cram_status cram_parse_count(const char *s, double *value, cram_err *err) {
  if (!s || !*s) return cram_err_set(err, CRAM_E_ARG, "empty count");
  char *end;
  errno = 0;
  double v = strtod(s, &end), mul = 1;
  if (end != s && *end && !end[1]) {
    const char *suf = "kMGTP", *p = strchr(suf, *end);
    if (p) {
      mul = pow(1e3, (double)(p - suf + 1));
      end++;
    }
  }
  if (errno || end == s || *end || !isfinite(v) || !(v * mul >= 1) || !isfinite(v * mul) || v * mul > 1e30)
    return cram_err_set(err, CRAM_E_ARG, "bad count '%s' (expected e.g. 20M, 1.5G, 3e17)", s);
  *value = v * mul;
  return CRAM_OK;
}
