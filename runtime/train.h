/* train.h - the training loop, written against any cram_step_api.
 *
 * Data: the "train" shards of a directory, read in order (or in a seeded
 * per-epoch permutation), wrapping around; sequence k of that stream is
 * masked by cram_mlm with key (seed, k). Each update: t = progress along the
 * run's horizon (step/steps, tokens/token budget, FLOPs/FLOP budget or
 * elapsed/budget), batch = cram_batch_size(t), k = batch/mbs microbatches
 * each step()ed with scale 1/k, lr = peak * cram_lr_shape_mult(t), then
 * update() with the run's optimizer settings. The step runs in training mode
 * (dropout active). Non-finite loss or grad norm: the update is skipped
 * (gradients zeroed), counted, and after max_bad in a row the run
 * checkpoints and stops. A stop request, the wall-clock budget or a data
 * error between microbatches discards the partial update and rewinds the
 * data position to its start, so a resume redoes it exactly.
 * Writes <run_dir>/metrics.jsonl (one line per attempted update) and
 * <run_dir>/checkpoint.safetensors (ckpt.h). Never prints: progress and
 * notices go to callbacks. Details: docs/training.md. */
#ifndef CRAM_TRAIN_H
#define CRAM_TRAIN_H

#include <signal.h>
#include <stdint.h>

#include "ckpt.h"
#include "cram_step.h"
#include "distributed.h"
#include "schedule.h"
#include "status.h"

#define CRAM_METRICS_FILE "metrics.jsonl"

typedef struct cram_train_progress {
  uint64_t step, attempts, tokens, skipped;
  double loss, lr, grad_norm;
  uint64_t batch;
  double tok_s;      /* tokens/s over the last update */
  double mfu;        /* model FLOPs utilisation, < 0 when unknown */
  double elapsed;    /* seconds */
  double eta;        /* seconds, < 0 when unknown */
  const char *event; /* NULL, or "checkpoint written to ..." */
} cram_train_progress;

typedef enum cram_train_end {
  CRAM_END_DONE,        /* schedule finished (steps or budget reached) */
  CRAM_END_STOP_AT,     /* --stop-at step reached */
  CRAM_END_INTERRUPTED, /* stop flag (signal) */
  CRAM_END_NONFINITE,   /* max_bad non-finite updates in a row */
} cram_train_end;

typedef struct cram_train_config {
  const char *data_dir;
  const char *run_dir;
  int resume;                /* continue from <run_dir>/checkpoint.safetensors */
  cram_train_state recipe;   /* seed, shuffle, horizon, budget, batch, ramp, lr, optimizer, mask_n (new runs);
                                   batch 0 = pick one for the machine (cpu/interp: 4 microbatches) */
  double mask_rate;          /* when the model has no `masked` dim and recipe.mask_n == 0 */
  int mask_rate_set;         /* the user gave mask_rate: an error when the model has a `masked` dim */
  int force;                 /* a new run may replace an existing metrics.jsonl (no checkpoint) */
  uint64_t eval_every;       /* held-out loss every N updates, 0 = off */
  uint64_t eval_seqs;        /* sequences of the held-out split per evaluation (0 = all) */
  uint64_t stop_at;          /* checkpoint and stop after this step, 0 = never */
  double ckpt_every_s;       /* 0 = off */
  uint64_t ckpt_every_steps; /* 0 = off */
  uint32_t max_bad;          /* non-finite updates in a row before stopping */
  int device;
  double peak_flops;                 /* device peak FLOP/s for MFU (cuda targets) */
  const volatile sig_atomic_t *stop; /* set asynchronously: checkpoint and stop */
  void (*progress)(const cram_train_progress *p, void *user);
  void (*notice)(int important, const char *line, void *user); /* decisions (0), warnings and outcomes (1) */
  void *user;
  /* Data-parallel training (docs/distributed.md): NULL or one rank = one
     * process. With N ranks, microbatch j of every update runs on rank j % N,
     * the gradients are summed over the ranks before update(), and only rank 0
     * writes metrics and checkpoints and calls progress/notice. */
  cram_dist *dist;
} cram_train_config;

typedef struct cram_train_result {
  cram_train_end end;
  cram_train_state state;
  double last_loss;
  double last_eval;          /* last held-out loss, NaN if none */
  double last_eval_accuracy; /* its masked-token accuracy, NaN if none */
  uint64_t discarded;        /* microbatches of a partial update discarded at the end (stop, budget, data error) */
  char checkpoint[1024];     /* path of the last checkpoint written, "" if none */
} cram_train_result;

/* Runs (or resumes) training. Returns CRAM_OK for DONE/STOP_AT and for
 * INTERRUPTED/NONFINITE with a checkpoint written (res->end tells which; err
 * holds a one-line explanation for the latter two), an error otherwise. */
cram_status cram_train_run(const cram_step_api *api, const cram_train_config *cfg, cram_train_result *res, cram_err *err);

/* Position in the dataset of stream sequence k (epoch k / n, shuffled by a
 * seeded Feistel permutation when `shuffle`). */
uint64_t cram_data_index(uint64_t k, uint64_t n, uint64_t seed, int shuffle);

/* "steps" | "tokens" | "flops" | "time": which budget drives t. */
const char *cram_train_horizon(const cram_train_state *st);

/* Mean eval loss of the step over the first `max_seqs` sequences (0 = all)
 * of `split` in data_dir, masked with (seed, k); params from ckpt_path (a
 * checkpoint file, or a run directory holding one) if non-NULL, else
 * init_params(seed). Only whole microbatches are evaluated: *left_out
 * sequences of the requested ones did not fill the last one. mask_rate_set:
 * the caller gave mask_rate explicitly (refused when the model has a
 * `masked` dim). */
typedef struct cram_eval_result {
  double loss;
  double accuracy; /* masked-token accuracy (argmax == target), NaN when the model has none */
  uint64_t nseqs, left_out, mbs;
} cram_eval_result;
cram_status cram_eval_run(const cram_step_api *api, const char *data_dir, const char *split, const char *ckpt_path, uint64_t seed,
                          double mask_rate, int mask_rate_set, uint64_t max_seqs, int device, cram_eval_result *res,
                          cram_err *err);

#endif
