/* bench.h - timing a compiled train step (`cram bench`), written against
 * any cram_step_api like the trainer.
 *
 * One iteration = `accum` microbatches step()ed with scale 1/accum, then one
 * update() at a constant learning rate (AdamW step counter 1, 2, ...). The
 * microbatches are prepared before the clock starts (synthetic MLM batches,
 * masked training shards or a batch file), so the timed loop does nothing
 * but call the step. `warmup` iterations run untimed, then `steps` timed
 * ones.
 *
 * Timing is wall clock around the calls. That is honest for every target
 * today: the step ABI's step() returns only after its loss has been copied
 * to the host and update() (asked for the grad norm) after the norm has, so
 * each call waits for its device work. Each iteration's time is taken from
 * the end of the previous update() to the end of its own; the little work a
 * call may leave queued after its last copy (the cuda step's output moves
 * and gradient zeroing) is thereby counted once per iteration in the steady
 * state (the window opens after the last warm-up update, whose trailing work
 * falls inside it, and closes before the last timed one's).
 *
 * Memory (peak_bytes, mem_kind says which):
 *   cpu / interp targets: the process's peak resident set (getrusage
 *     ru_maxrss): everything, including the loaded libraries and batches;
 *   cuda: device memory the step allocated, measured with cuMemGetInfo
 *     (libcuda, opened by name) as free memory before create() minus free
 *     memory after the timed loop, on the primary context the step uses.
 *     The cuda step allocates all of its memory in create(), so this is its
 *     peak. Where the driver has no cuMemGetInfo (an emulator), an estimate
 *     is given instead: arena_bytes + 16 bytes per parameter (value, two
 *     moments, gradient accumulator, all f32) + the inputs.
 *
 * Library code: never prints, never exits. Docs: docs/benchmarks.md. */
#ifndef CRAM_BENCH_H
#define CRAM_BENCH_H

#include <stdint.h>

#include "cram_step.h"
#include "status.h"

typedef struct cram_bench_config {
  const char *data_dir;   /* train shards to take microbatches from (masked as in training), or NULL */
  const char *batch_file; /* safetensors `tokens`, `targets` i32 [B,S] or [N,B,S], or NULL */
  uint64_t warmup;        /* untimed iterations */
  uint64_t steps;         /* timed iterations (>= 1) */
  uint64_t accum;         /* microbatches per update (>= 1) */
  uint64_t seed;          /* init_params and masking seed */
  double lr;              /* constant learning rate */
  double mask_rate;       /* when the model has no `masked` dim */
  double peak_flops;      /* device peak FLOP/s for MFU */
  int device;
  const char *save_init; /* directory: the initial parameters as a checkpoint (for `cram export`), or NULL */
  const char *profile;   /* cpu target: the per-kernel profile table to this file ('-' = stdout), or NULL */
} cram_bench_config;

typedef struct cram_bench_result {
  const char *data_kind;                     /* "synthetic" | "shards" | "file" */
  uint64_t distinct_batches;                 /* microbatches prepared (cycled through) */
  uint64_t microbatch, seq;                  /* the model's batch and seq */
  uint64_t tokens_per_iter;                  /* accum * microbatch * seq */
  double create_s;                           /* create() + init_params() wall time */
  double total_s;                            /* the timed iterations */
  double ms_mean, ms_min, ms_median, ms_max; /* per iteration */
  double tok_s;
  double flops_per_token; /* meta->flops_per_token */
  double achieved_tflops; /* flops_per_token * tok_s / 1e12 */
  double mfu;             /* achieved / peak, < 0 when flops_per_token is 0 */
  uint64_t peak_bytes;
  const char *mem_kind; /* "host-maxrss" | "device-cumemgetinfo" | "device-estimate" */
  float *losses;        /* every microbatch's loss, warm-up included, in order */
  uint64_t nlosses;
  uint64_t nonfinite; /* losses that were NaN/Inf */
  double last_grad_norm;
} cram_bench_result;

/* Runs the benchmark; on success fills *res (free with cram_bench_result_free). */
cram_status cram_bench_run(const cram_step_api *api, const cram_bench_config *cfg, cram_bench_result *res, cram_err *err);
void cram_bench_result_free(cram_bench_result *res);

#endif
