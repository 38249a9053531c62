/* finetune.h - `cram finetune`: a compiled classifier step finetuned on one
 * GLUE-layout task with the Cramming reference's GLUE recipe
 * (eval/GLUE_sane: AdamW lr 4e-5, betas (0.9, 0.98), eps 1e-6, weight decay
 * 0, batch 16, 5 epochs, Hugging Face cosine decay with 10% warm-up, dropout
 * 0.1 on), dev evaluation after each epoch, JSONL metrics, checkpoints with
 * exact resume. The training loop is its own (not runtime/train.c's MLM
 * loop): examples, not token shards; epochs, not a wall-clock budget.
 *
 * The step must be a classifier: inputs `tokens` i32[B,S], `mask` f32[B,S]
 * (additive) and `labels` i32[B], and an `output logits` f32[B,C] (the
 * predict() entry of the step ABI), e.g. models/ablations/finetune_classifier.cram.
 * A partial last batch is padded with label -100 rows, which the loss
 * ignores, so every example is seen once per epoch. Format of the run
 * directory: docs/finetune.md. */
#ifndef CRAM_FINETUNE_H
#define CRAM_FINETUNE_H

#include <stdint.h>
#include <stdio.h>

#include "cram_step.h"
#include "glue.h"
#include "status.h"

typedef struct cram_ft_config {
  const char *task_dir;       /* holds train.tsv and the task's dev file(s) */
  const cram_glue_task *task; /* the layout of its files */
  const char *vocab;          /* vocab.txt of the pretraining data */
  const char *init;           /* `cram train` checkpoint (file or run directory) or safetensors; NULL = random init */
  const char *head;           /* comma-separated name prefixes of the new head ("pooler.,classifier.") */
  const char *out_dir;        /* run directory (metrics.jsonl, checkpoint.safetensors); NULL = none */
  double lr, warmup;          /* peak learning rate; warm-up fraction of all updates */
  double beta1, beta2, eps, weight_decay, max_norm; /* AdamW + clip (max_norm <= 0: none) */
  uint32_t epochs;
  uint64_t seed;       /* head init, data order, dropout */
  int dropout;         /* 1: dropout on while training (create's `training`) */
  uint64_t max_steps;  /* stop (with a checkpoint) after this many updates; 0 = all epochs */
  uint64_t max_train;  /* use the first N training examples; 0 = all */
  uint64_t ckpt_every; /* also checkpoint every N updates; 0 = at epoch ends only */
  int resume;          /* continue from out_dir/checkpoint.safetensors */
  int device;
  FILE *log; /* progress lines and the init report; NULL = silent */
} cram_ft_config;

/* The recipe's values (model card / eval/GLUE_sane.yaml). */
void cram_ft_config_default(cram_ft_config *c);

typedef struct cram_ft_eval {
  char file[64];
  uint64_t n;
  double loss, accuracy, f1, mcc, pearson, spearman;
  double score;    /* the task's table number, in percent (GLUE: MCC / accuracy / F1) */
  double majority; /* the majority-class baseline's score, in percent */
} cram_ft_eval;

typedef struct cram_ft_result {
  uint32_t epochs;   /* completed */
  uint64_t steps;    /* updates applied */
  double train_loss; /* mean loss of the last epoch's updates */
  uint32_t ndev;
  cram_ft_eval dev[2]; /* after the last completed epoch */
} cram_ft_result;

cram_status cram_finetune(const cram_step_api *api, const cram_ft_config *cfg, cram_ft_result *res, cram_err *err);

/* Copies every parameter of ctx found in the safetensors file `path` (a
 * `cram train` checkpoint's param.<name>, a `cram export` file with cramc or
 * the reference's names) after checking its shape; parameters missing there
 * must start with one of the comma-separated `head` prefixes (they keep their
 * init). One message naming the tensor and both shapes on a mismatch. */
cram_status cram_ft_load_init(const cram_step_api *api, cram_ctx *ctx, const char *path, const char *head, FILE *log,
                              cram_err *err);

/* Learning rate of update k (1-based) of `total`: Hugging Face's
 * get_cosine_schedule_with_warmup as the reference calls it (warm-up
 * int(warmup * total) updates, LambdaLR evaluated at k - 1). */
double cram_ft_lr(double peak, double warmup, uint64_t total, uint64_t k);

#endif
