/* pass.h: the optimisation pipeline's pass interface.
 *
 * A pass is a function graph -> graph. It never edits its input: it returns a
 * new Graph (own arena), or NULL after reporting to cx->diag. The pipeline is
 * an ordered list (passes/passes.def), run by pass_pipeline_run(): no
 * dependency solver; -O0 runs none, -O2 all, --passes=a,b picks a subset in
 * pipeline order, --dump-after=NAME prints the IR after a pass, --stats prints
 * one line per pass. Every pass flagged PASS_PRESERVES_SEMANTICS is checked by
 * the equivalence tests: interpreter before == after (f64, random inputs).
 */
#ifndef CRAMC_PASS_H
#define CRAMC_PASS_H

#include <stdbool.h>
#include <stdio.h>

#include "diag.h"
#include "ir.h"

enum {
  PASS_PRESERVES_SEMANTICS = 1u << 0, /* outputs are identical (to rounding) before and after */
};

typedef struct PassOptions {
  int opt_level;            /* 0 = no passes, 2 = all */
  const char *only;         /* --passes=a,b,c (NULL = all of opt_level) */
  const char *dump_after;   /* --dump-after=NAME ("all" = after every pass) */
  bool verify_each;         /* ir_verify after every pass (on in tests and debug builds) */
  bool stats;               /* --stats: one line per pass to stats_out */
  FILE *dump_out, *stats_out;
} PassOptions;

typedef struct PassCtx {
  Diag *diag;
  const PassOptions *opt;
} PassCtx;

typedef struct Pass {
  const char *name;                              /* "cse": for --passes, --dump-after, tests */
  const char *doc;                               /* one line, shown by `cramc --list-passes` */
  Graph *(*run)(const Graph *in, PassCtx *cx);   /* new graph, or NULL after a diagnostic */
  unsigned flags;                                /* PASS_* */
} Pass;

#endif
