/* sweep_spec.h - the SPEC file of `cram sweep`: a base model, its variants
 * (other .cram files and/or -D overrides, grids of overrides), the data, the
 * budget, the target and the recipe every variant shares. Grammar and
 * semantics: docs/sweep.md. Parsing never prints: errors are one line,
 * "SPEC:line:col: message". */
#ifndef CRAM_SWEEP_SPEC_H
#define CRAM_SWEEP_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define CRAM_SWEEP_MAX_VARIANTS 256
#define CRAM_SWEEP_MAX_DEFINES  16
#define CRAM_SWEEP_MAX_ARGS     32
#define CRAM_SWEEP_NAME_MAX     64

typedef struct cram_sweep_variant {
  char name[CRAM_SWEEP_NAME_MAX]; /* [A-Za-z0-9_.=+-]: a directory name too */
  char *model;                    /* .cram path (resolved against the SPEC's folder) */
  int ndefines;
  char *defines[CRAM_SWEEP_MAX_DEFINES]; /* "k=v", after the base's own */
  int line;                              /* SPEC line that declared it (0 = the base row) */
  char *classifier;                      /* `classifier NAME FILE`: its own downstream model, else NULL (the spec's) */
} cram_sweep_variant;

/* `downstream` + `finetune`: after pretraining, every variant's encoder is
 * finetuned on one GLUE-layout task with `cram finetune` and the dev metric
 * goes into the table. The classifier is compiled with the variant's -D
 * overrides of the dims it declares too, then the downstream line's own. */
typedef struct cram_sweep_downstream {
  char *task;  /* the task directory (NULL: no downstream) */
  char *model; /* the classifier .cram every variant uses unless it names its own */
  int ndefines;
  char *defines[CRAM_SWEEP_MAX_DEFINES]; /* "k=v" applied last (classes=2, batch=16) */
  int nargs;
  char *args[CRAM_SWEEP_MAX_ARGS]; /* `finetune ...`: extra `cram finetune` flags */
  int line;                        /* SPEC line of `downstream` */
} cram_sweep_downstream;

typedef struct cram_sweep_spec {
  char *path;             /* the SPEC file */
  char *title;            /* `sweep` line, else the file name */
  char *data;             /* `data` DIR */
  char *target;           /* `target` cpu | interp | cuda (default cpu) */
  double budget_s;        /* `budget time T`, 0 = none */
  uint64_t budget_tokens; /* `budget tokens N`, 0 = none */
  uint64_t budget_steps;  /* `budget steps N`, 0 = none */
  double budget_flops;    /* `budget flops X` (model FLOPs), 0 = none */
  uint64_t seed;          /* `seed N` (default 0) */
  uint64_t eval_seqs;     /* `eval N`: held-out sequences of each evaluation, 0 = all */
  uint64_t eval_every;    /* `eval N every K`: also evaluate during training every K updates, 0 = only at the end */
  int ntrain_args;
  char *train_args[CRAM_SWEEP_MAX_ARGS]; /* `train ...`: extra `cram train` flags for every variant */
  cram_sweep_downstream downstream;
  int nvariants; /* variants[0] is the base */
  cram_sweep_variant variants[CRAM_SWEEP_MAX_VARIANTS];
} cram_sweep_spec;

/* Parses the SPEC file at `path`. On error *spec is left freed. */
cram_status cram_sweep_spec_load(const char *path, cram_sweep_spec *spec, cram_err *err);
/* Parses SPEC text; `path` names it in messages and anchors relative paths. */
cram_status cram_sweep_spec_parse(const char *path, const char *text, cram_sweep_spec *spec, cram_err *err);
void cram_sweep_spec_free(cram_sweep_spec *spec);

#endif
