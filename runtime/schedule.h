/* schedule.h - the Cramming training recipe as pure functions of progress t
 * (fraction of the budget used, 0..1): the budget-triangle2 learning-rate
 * multiplier and the linear batch-size ramp. t is elapsed/budget (wall
 * clock, as the reference) or step/steps (step-based: reproducible). */
#ifndef CRAM_SCHEDULE_H
#define CRAM_SCHEDULE_H

#include <stdint.h>

#include "status.h"

/* min(0.25 + t, 4 (1 - t)), t clamped to [0, 1]: 0.25 at t=0, peak 1 at
 * t=0.75, 0 at t=1 (budget-triangle2, base 0.25, falloff 0.25). */
double cram_lr_mult(double t);

/* Reference rule (torch_default.py schedule_batch_size) in terms of t:
 * min((floor(t * target / ramp) // mbs + 1) * mbs, target): one microbatch
 * at t=0, linear to `target` sequences, reached at t = ramp; ramp <= 0 means
 * the full batch from the start. Always a multiple of mbs unless target is
 * not (then capped at target rounded up to a multiple of mbs). */
uint64_t cram_batch_size(double t, uint64_t mbs, uint64_t target, double ramp);

/* "24h", "90m", "30s", "1.5h", "2d", or plain seconds -> seconds > 0. */
cram_status cram_parse_duration(const char *s, double *seconds, cram_err *err);

#endif
