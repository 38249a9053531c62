/* ckpt.h - training checkpoints: one safetensors file holding, for every
 * parameter <name> of the step, `param.<name>`, `adam_m.<name>`,
 * `adam_v.<name>` (F32, the parameter's shape), and the trainer state and
 * recipe as `__metadata__` strings (format, model, source hash, step, data
 * position, masking seed, elapsed time, schedule, the identity of the
 * training data). Every value is range-checked on reading, and every refusal
 * names the checkpoint. Written atomically (temp
 * file, fsync, rename, fsync of the directory), so a failed write (disk
 * full, signal) leaves the previous checkpoint intact. Format: docs/training.md. */
#ifndef CRAM_CKPT_H
#define CRAM_CKPT_H

#include <stdint.h>

#include "cram_step.h"
#include "status.h"

#define CRAM_CKPT_FORMAT "cram-checkpoint-1"
#define CRAM_CKPT_FILE   "checkpoint.safetensors"

/* Everything a run needs to continue exactly where it stopped. */
typedef struct cram_train_state {
  /* progress */
  uint64_t step;     /* AdamW updates applied */
  uint64_t attempts; /* updates attempted (applied + skipped) = metrics lines */
  uint64_t seq_pos;  /* sequences consumed from the training stream */
  uint64_t tokens;   /* tokens consumed */
  uint64_t skipped;  /* updates skipped for a non-finite loss/grad norm */
  uint64_t bad_run;  /* consecutive skipped updates */
  uint64_t runs;     /* graph runs of the training context (step/update/eval calls): its dropout stream position */
  double elapsed;    /* training seconds (wall clock) so far */
  /* recipe (fixed for the run, checked on resume) */
  uint64_t seed; /* init, masking and shuffle seed */
  int shuffle;
  uint64_t steps;         /* step-based schedule horizon, 0 = none */
  uint64_t budget_tokens; /* token-based horizon, 0 = none */
  double budget_flops;    /* model-FLOP horizon (tokens x flops_per_token), 0 = none */
  double budget;          /* seconds, 0 = none: the horizon when none of the three above, else a deadline */
  uint64_t batch;         /* target batch (sequences) */
  double ramp;            /* fraction of the budget at which `batch` is reached */
  double peak_lr;
  int lr_shape;    /* cram_lr_shape (schedule.h) */
  double warmup;   /* fraction of the horizon the lr warms up over (not for the triangle) */
  uint32_t mask_n; /* predictions per sequence */
  /* optimizer: cram_update_args of every update (recipe values when a checkpoint predates the keys) */
  double beta1, beta2, eps, weight_decay, weight_decay_other, max_norm;
  /* the training data (checked on resume; absent in checkpoints written
     * before it was recorded, then data_known = 0 and nothing is checked) */
  int data_known;
  uint64_t data_tokenizer; /* the shards' tokenizer hash */
  uint64_t data_id;        /* cram_ckpt_data_id() of the train split */
  uint64_t data_seqs;      /* train sequences */
  const char *data_dir;    /* where they were read (written, not read back: `cram export` finds the tokenizer there) */
} cram_train_state;

struct cram_dataset;
/* Identity of a train split: FNV-1a over every shard's sequence count,
 * sequence length, vocabulary size and payload CRC32, in shard order. Two
 * sets of shards get the same id only with the same sequences in the same
 * files (up to a CRC collision). */
uint64_t cram_ckpt_data_id(const struct cram_dataset *d);
/* Records d (read from data_dir) as the run's training data in *st. */
void cram_ckpt_set_data(cram_train_state *st, const struct cram_dataset *d);
/* On resume: refuses d when the checkpoint at ckpt_path recorded other data
 * (another tokenizer, other shards), naming both. */
cram_status cram_ckpt_check_data(const char *ckpt_path, const cram_train_state *st, const char *data_dir,
                                 const struct cram_dataset *d, cram_err *err);

/* Writes params, moments and state of ctx to path atomically. */
cram_status cram_ckpt_save(const char *path, const cram_step_api *api, cram_ctx *ctx, const cram_train_state *st, cram_err *err);
struct cram_st_file;
/* The state in an already read checkpoint file f (named path in messages):
 * format, model and source hash against meta (if non-NULL), every value in
 * range. */
cram_status cram_ckpt_parse_state(const struct cram_st_file *f, const char *path, const cram_step_meta *meta,
                                  cram_train_state *st, cram_err *err);
/* Reads only the state (no tensors applied); checks format and model. */
cram_status cram_ckpt_read_state(const char *path, const cram_step_meta *meta, cram_train_state *st, cram_err *err);
/* Reads path, checks it belongs to api->meta (model, source hash, every
 * tensor present with the right shape) and sets params, moments and *st.
 * Save and load both remove "<path>.tmp.<pid>" files whose writer is gone
 * (a kill -9 during a save). */
cram_status cram_ckpt_load(const char *path, const cram_step_api *api, cram_ctx *ctx, cram_train_state *st, cram_err *err);

#endif
