/* schedule.h - the Cramming training recipe as pure functions of progress t
 * (fraction of the budget used, 0..1): the learning-rate multiplier (the
 * recipe's budget-triangle2, or one-cycle, cosine, constant) and the linear
 * batch-size ramp. t is whichever budget the run has: step/steps,
 * tokens/token budget, FLOPs/FLOP budget (reproducible), or elapsed/budget
 * (wall clock, as the reference). */
#ifndef CRAM_SCHEDULE_H
#define CRAM_SCHEDULE_H

#include <stdint.h>

#include "status.h"

/* min(0.25 + t, 4 (1 - t)), t clamped to [0, 1]: 0.25 at t=0, peak 1 at
 * t=0.75, 0 at t=1 (budget-triangle2, base 0.25, falloff 0.25). */
double cram_lr_mult(double t);

/* The learning-rate shapes `cram train --lr-shape` offers. */
typedef enum cram_lr_shape {
  CRAM_LR_TRIANGLE,  /* budget-triangle2 (cram_lr_mult); no warm-up parameter */
  CRAM_LR_ONE_CYCLE, /* linear 0 -> 1 over [0, warmup], then linear 1 -> 0 at t = 1 */
  CRAM_LR_COSINE,    /* linear 0 -> 1 over [0, warmup], then half a cosine to 0 at t = 1 */
  CRAM_LR_CONSTANT,  /* linear 0 -> 1 over [0, warmup], then 1 */
  CRAM_LR_SHAPES
} cram_lr_shape;

/* "triangle" | "one-cycle" | "cosine" | "constant" <-> shape; -1 / NULL when unknown. */
int cram_lr_shape_parse(const char *s);
const char *cram_lr_shape_name(int shape);
/* The multiplier of the peak learning rate at t in [0, 1] (clamped). */
double cram_lr_shape_mult(int shape, double warmup, double t);

/* Reference rule (torch_default.py schedule_batch_size) in terms of t:
 * min((floor(t * target / ramp) // mbs + 1) * mbs, target): one microbatch
 * at t=0, linear to `target` sequences, reached at t = ramp; ramp <= 0 means
 * the full batch from the start. Always a multiple of mbs unless target is
 * not (then capped at target rounded up to a multiple of mbs). */
uint64_t cram_batch_size(double t, uint64_t mbs, uint64_t target, double ramp);

/* "24h", "90m", "30s", "1.5h", "2d", or plain seconds -> seconds > 0. */
cram_status cram_parse_duration(const char *s, double *seconds, cram_err *err);

/* A positive count with an optional SI suffix: "2e6", "500k", "20M", "1.5G",
 * "3T", "1P" -> value >= 1 (token and FLOP budgets). */
cram_status cram_parse_count(const char *s, double *value, cram_err *err);

#endif
