/* glue.h - GLUE task definitions, TSV readers and encoding for finetuning.
 *
 * The eight GLUE tasks the Cramming paper reports, read from the official
 * directory layout exactly as distributed (glue_data/<Task>/train.tsv,
 * dev.tsv; MNLI dev_matched.tsv + dev_mismatched.tsv). What the real files
 * look like, and therefore what the reader accepts:
 *   - tab-separated, lines end in "\n" (a "\r" before it is dropped), a
 *     UTF-8 BOM at the start of a file is skipped;
 *   - no quoting: a '"' is an ordinary character (the files are read with
 *     QUOTE_NONE by every GLUE loader; SST-2 and MNLI hold literal quotes);
 *   - a header line naming the columns, except CoLA (4 columns: source,
 *     label, original mark, sentence); columns are found by header name, so
 *     MNLI's train (12 columns) and dev (16 columns) files read alike, and
 *     every row must have exactly the header's number of fields. CoLA's
 *     sentence is its last column: a tab inside it is kept as part of it;
 *   - labels as text: "0"/"1", MNLI's entailment/neutral/contradiction,
 *     QNLI/RTE entailment/not_entailment, STS-B a score in [0, 5].
 * Anything else is an error naming file:line; nothing is guessed or skipped.
 *
 * Other tasks in the same layouts (scripts/task-debian.sh) use a task
 * definition by layout name: "sst2" layout = SST-2, "mrpc" = MRPC, ... */
#ifndef CRAM_GLUE_H
#define CRAM_GLUE_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "wordpiece.h"

typedef enum cram_glue_metric {
  CRAM_GLUE_ACC,    /* accuracy */
  CRAM_GLUE_MCC,    /* Matthews correlation (CoLA) */
  CRAM_GLUE_F1_ACC, /* F1 of class 1 and accuracy (MRPC, QQP) */
  CRAM_GLUE_CORR    /* Pearson and Spearman (STS-B) */
} cram_glue_metric;

typedef struct cram_glue_task {
  const char *name;                      /* directory name in glue_data: "CoLA", "SST-2", ... */
  const char *key;                       /* short lower-case name: "cola", "sst2", ... */
  int header;                            /* 1: the first line names the columns */
  int nclasses;                          /* 0 = regression (one output, MSE) */
  const char *labels[3];                 /* label text of class 0, 1, 2 */
  const char *col_a, *col_b, *col_label; /* header names (col_b NULL: single sentence) */
  int idx_a, idx_label, ncols;           /* headerless files: fixed positions */
  const char *dev[2];                    /* dev file(s); MNLI: matched, mismatched */
  cram_glue_metric metric;
} cram_glue_task;

#define CRAM_GLUE_NTASKS 8
/* CoLA SST-2 MRPC STS-B QQP MNLI QNLI RTE, in the paper's table order. */
extern const cram_glue_task cram_glue_tasks[CRAM_GLUE_NTASKS];
/* By directory name or key, case-insensitive, '-' optional ("SST-2", "sst2"); NULL if none. */
const cram_glue_task *cram_glue_task_find(const char *name);

typedef struct cram_glue_example {
  uint32_t a, alen, b, blen; /* byte ranges in the split's text; b = 0: no second text (a pair task's
                                * files start with a header, so its second field is never at offset 0) */
  float label;               /* class index, or the STS-B score */
  uint32_t line;             /* 1-based line in the file */
} cram_glue_example;

typedef struct cram_glue_split {
  char *text; /* the file's bytes (fields point into it) */
  cram_glue_example *ex;
  size_t n;
  uint32_t counts[3]; /* examples per class (classification) */
} cram_glue_split;

cram_status cram_glue_read(const cram_glue_task *t, const char *path, cram_glue_split *out, cram_err *err);
void cram_glue_split_free(cram_glue_split *s);

/* A split tokenised for a classifier of sequence length seq: per example
 * [CLS] a [SEP] (b [SEP]) with a and b truncated longest-first (one token at
 * a time from the longer, from b on a tie, as Hugging Face's
 * `longest_first`), then [PAD] up to seq. */
typedef struct cram_glue_encoded {
  int32_t *tokens; /* [n, seq] */
  uint16_t *len;   /* [n] real tokens (the rest is padding) */
  float *label;    /* [n] */
  size_t n;
  uint32_t seq;
  uint64_t truncated; /* examples that did not fit */
} cram_glue_encoded;

cram_status cram_glue_encode(const cram_wordpiece *wp, const cram_glue_split *s, uint32_t seq, cram_glue_encoded *out,
                             cram_err *err);
void cram_glue_encoded_free(cram_glue_encoded *e);
/* Fills one example's additive attention mask: 0 on real tokens, -10000 on
 * padding (the reference's (1 - mask) * -10000). */
void cram_glue_mask(const cram_glue_encoded *e, size_t i, float *mask);

#endif
