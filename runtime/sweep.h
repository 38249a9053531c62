/* sweep.h - `cram sweep`: an ablation study as one command. Each variant of a
 * SPEC (sweep_spec.h) is compiled by cramc (cached by a hash of its source,
 * overrides, target and compiler), trained by `cram train` with the same
 * seed, data order, recipe and budget, evaluated on the held-out shards, and
 * recorded; the results become one table (Markdown, CSV, JSON) and one plot.
 *
 * The output directory holds everything a re-run needs: a variant with a
 * result.json of the same key is kept, an interrupted one resumes from its
 * checkpoint, a lock file keeps a second sweep out. Layout: docs/sweep.md. */
#ifndef CRAM_SWEEP_H
#define CRAM_SWEEP_H

#include <signal.h>
#include <stdint.h>

#include "status.h"
#include "sweep_spec.h"

typedef enum cram_sweep_outcome {
  CRAM_ROW_DONE,          /* trained and evaluated */
  CRAM_ROW_COMPILE_ERROR, /* cramc refused the variant: `why` holds its diagnostic */
  CRAM_ROW_DIVERGED,      /* the NaN guard stopped training (cram train exit 3) */
  CRAM_ROW_FAILED,        /* training or evaluation failed otherwise */
  CRAM_ROW_PENDING,       /* not run yet (the sweep was interrupted before it) */
} cram_sweep_outcome;

typedef struct cram_sweep_row {
  char name[CRAM_SWEEP_NAME_MAX];
  cram_sweep_outcome outcome;
  char why[512];            /* first lines of the diagnostic for a failed row */
  int64_t params;           /* parameter count (artifact metadata) */
  double flops_per_token;   /* train-step model FLOPs per token */
  double compile_s;         /* cramc wall time of the (first, uncached) build */
  double train_s;           /* wall time training took (the budget the variant really got) */
  uint64_t tokens;          /* tokens seen */
  uint64_t steps;           /* updates applied */
  double tok_s;             /* tokens / train_s */
  double train_loss;        /* mean of the last (up to) 10 finite update losses */
  double heldout_loss;      /* final held-out MLM loss, NAN when not evaluated */
  double heldout_accuracy;  /* its masked-token accuracy, NAN when not evaluated or not a cross-entropy model */
  double downstream;        /* the downstream task's dev metric (cram finetune), NAN when not run or failed */
  char downstream_why[256]; /* why there is no downstream metric (a classifier that does not fit, a failed run) */
  uint64_t heldout_seqs;
  double peak_rss_mib; /* max resident set of the training process */
  double load_mean;    /* mean 1-minute load average while it trained, NAN when unknown */
} cram_sweep_row;

typedef struct cram_sweep_opts {
  const char *out_dir;                       /* created if missing */
  const char *cramc;                         /* compiler executable (NULL: found beside `cram`, then on PATH) */
  const char *cram;                          /* this runtime's executable, for `cram train` / `cram eval` */
  int rerun_failed;                          /* re-run rows that failed or diverged instead of keeping them */
  const volatile sig_atomic_t *stop;         /* set asynchronously: stop the running variant at its next checkpoint */
  void (*log)(const char *line, void *user); /* progress lines, may be NULL */
  void *user;
} cram_sweep_opts;

/* Runs every variant of `spec` not finished yet and writes the reports.
 * rows[] (spec->nvariants entries) receives the table. Returns CRAM_OK when
 * the sweep ran to the end (failed variants are rows, not errors),
 * CRAM_E_INTERRUPTED when stopped (resumable), an error otherwise. */
cram_status cram_sweep_run(const cram_sweep_spec *spec, const cram_sweep_opts *opts, cram_sweep_row *rows, cram_err *err);

/* Reports from rows (sweep_report.c): <dir>/results.{md,csv,json} and the
 * loss plots <dir>/loss.svg; fairness warnings are appended to the Markdown
 * and returned as lines through opts->log. */
cram_status cram_sweep_report(const cram_sweep_spec *spec, const cram_sweep_opts *opts, const cram_sweep_row *rows,
                              cram_err *err);

const char *cram_sweep_outcome_str(cram_sweep_outcome o);

#endif
