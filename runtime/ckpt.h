/* ckpt.h - training checkpoints: one safetensors file holding, for every
 * parameter <name> of the step, `param.<name>`, `adam_m.<name>`,
 * `adam_v.<name>` (F32, the parameter's shape), and the trainer state and
 * recipe as `__metadata__` strings (format, model, source hash, step, data
 * position, masking seed, elapsed time, schedule). Written atomically (temp
 * file, fsync, rename, fsync of the directory), so a failed write (disk
 * full, signal) leaves the previous checkpoint intact. Format: docs/training.md. */
#ifndef CRAM_CKPT_H
#define CRAM_CKPT_H

#include <stdint.h>

#include "cram_step.h"
#include "status.h"

#define CRAM_CKPT_FORMAT "cram-checkpoint-1"
#define CRAM_CKPT_FILE "checkpoint.safetensors"

/* Everything a run needs to continue exactly where it stopped. */
typedef struct cram_train_state {
    /* progress */
    uint64_t step;      /* AdamW updates applied */
    uint64_t attempts;  /* updates attempted (applied + skipped) = metrics lines */
    uint64_t seq_pos;   /* sequences consumed from the training stream */
    uint64_t tokens;    /* tokens consumed */
    uint64_t skipped;   /* updates skipped for a non-finite loss/grad norm */
    uint64_t bad_run;   /* consecutive skipped updates */
    double elapsed;     /* training seconds (wall clock) so far */
    /* recipe (fixed for the run, checked on resume) */
    uint64_t seed;      /* init, masking and shuffle seed */
    int shuffle;
    uint64_t steps;     /* step-based schedule horizon, 0 = none */
    uint64_t budget_tokens; /* token-based horizon, 0 = none */
    double budget_flops;    /* model-FLOP horizon (tokens x flops_per_token), 0 = none */
    double budget;      /* seconds, 0 = none: the horizon when none of the three above, else a deadline */
    uint64_t batch;     /* target batch (sequences) */
    double ramp;        /* fraction of the budget at which `batch` is reached */
    double peak_lr;
    int lr_shape;       /* cram_lr_shape (schedule.h) */
    double warmup;      /* fraction of the horizon the lr warms up over (not for the triangle) */
    uint32_t mask_n;    /* predictions per sequence */
    /* optimizer: cram_update_args of every update (recipe values when a checkpoint predates the keys) */
    double beta1, beta2, eps, weight_decay, weight_decay_other, max_norm;
} cram_train_state;

/* Writes params, moments and state of ctx to path atomically. */
cram_status cram_ckpt_save(const char *path, const cram_step_api *api, cram_ctx *ctx, const cram_train_state *st,
                           cram_err *err);
/* Reads only the state (no tensors applied); checks format and model. */
cram_status cram_ckpt_read_state(const char *path, const cram_step_meta *meta, cram_train_state *st, cram_err *err);
/* Reads path, checks it belongs to api->meta (model, source hash, every
 * tensor present with the right shape) and sets params, moments and *st. */
cram_status cram_ckpt_load(const char *path, const cram_step_api *api, cram_ctx *ctx, cram_train_state *st,
                           cram_err *err);

#endif
