/* glue_run.h - `cram glue`: the GLUE table of a pretrained encoder, the way
 * the Cramming paper reports it (model card: median of 5 finetunings per
 * task, dev sets, GLUE-sane recipe, average of 9 numbers with MNLI matched
 * and mismatched counted separately, no WNLI).
 *
 * For each task directory present under the GLUE root, the classifier .cram
 * is compiled for the task's class count (cramc -D classes=C -D batch=B and
 * the caller's -D dims; one artifact per class count), finetuned once per
 * seed (runtime/finetune.c), and the task's metric taken after the last
 * epoch. STS-B uses the regression model (one output, MSE) instead. Tasks
 * missing from the root are rows marked skipped with the reason; the average
 * is over the rows that ran (the count is reported). */
#ifndef CRAM_GLUE_RUN_H
#define CRAM_GLUE_RUN_H

#include <stdio.h>

#include "finetune.h"
#include "status.h"

#define CRAM_GLUE_MAX_SEEDS   16
#define CRAM_GLUE_ROWS        9 /* CoLA SST-2 MRPC STS-B QQP MNLI-m MNLI-mm QNLI RTE */
#define CRAM_GLUE_MAX_DEFINES 32

typedef struct cram_glue_opts {
  const char *glue_dir;         /* holds CoLA/, SST-2/, ... */
  const char *model;            /* classifier .cram */
  const char *regression_model; /* STS-B's .cram (one output, MSE); NULL: finetune_regression.cram beside model */
  const char *cramc;            /* compiler; NULL: $CRAMC, beside `cram`, ../driver/cramc, PATH */
  const char *cram_path;        /* argv[0] of cram, to find cramc beside it */
  const char *target;           /* --target of cramc; NULL = cramc's default */
  const char *defines[CRAM_GLUE_MAX_DEFINES];
  int ndefines;
  const char *tasks;   /* comma-separated keys to run (NULL = all) */
  const char *out_dir; /* artifacts, per-task runs, glue.json, glue.md */
  uint32_t seeds, batch;
  cram_ft_config ft; /* recipe, init, vocab; task/out_dir/seed set per run */
  FILE *log;         /* progress; NULL = silent */
} cram_glue_opts;

typedef struct cram_glue_row {
  char name[16];      /* "CoLA", "MNLI-m", ... */
  const char *metric; /* "MCC", "accuracy", "F1", "Spearman" */
  int done;
  char why[256]; /* skipped: the reason */
  uint32_t nseeds;
  double value[CRAM_GLUE_MAX_SEEDS]; /* the metric per seed, percent */
  double median, majority;
} cram_glue_row;

typedef struct cram_glue_table {
  cram_glue_row rows[CRAM_GLUE_ROWS];
  double average; /* over the rows done (NaN if none) */
  uint32_t ndone;
} cram_glue_table;

cram_status cram_glue_run(const cram_glue_opts *o, cram_glue_table *t, cram_err *err);

/* The table as text (stdout), JSON and Markdown. */
void cram_glue_print(FILE *f, const cram_glue_table *t, uint32_t seeds);
cram_status cram_glue_write_json(const char *path, const cram_glue_opts *o, const cram_glue_table *t, cram_err *err);
cram_status cram_glue_write_md(const char *path, const cram_glue_opts *o, const cram_glue_table *t, cram_err *err);

#endif
