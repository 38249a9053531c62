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
  PASS_FORWARD = 1u << 1,             /* runs on the model's forward graph before autocast and autodiff
                                         (pass_forward_run), not on the train step (pass_pipeline_run) */
};

typedef struct PassOptions {
  int opt_level;          /* 0 = no passes, 2 = all */
  const char *only;       /* --passes=a,b,c (NULL = all of opt_level) */
  const char *dump_after; /* --dump-after=NAME ("all" = after every pass) */
  bool verify_each;       /* ir_verify after every pass (on in tests and debug builds) */
  bool stats;             /* --stats: one line per pass to stats_out */
  bool fused_attention;   /* the target renders the fused attention ops (ops.def class OC_ATTENTION):
                               fuse_attention rewrites only then (CgTargetInfo.fused_attention) */
  FILE *dump_out, *stats_out;
} PassOptions;

typedef struct PassCtx {
  Diag *diag;
  const PassOptions *opt;
} PassCtx;

typedef struct Pass {
  const char *name;                            /* "cse": for --passes, --dump-after, tests */
  const char *doc;                             /* one line, shown by `cramc --list-passes` */
  Graph *(*run)(const Graph *in, PassCtx *cx); /* new graph, or NULL after a diagnostic */
  unsigned flags;                              /* PASS_* */
} Pass;

/* ---- the pipeline (passes/pass.c; order in passes/passes.def) ------------ */

/* One declaration per row of passes.def: Graph *pass_<name>(const Graph *, PassCtx *). */
#define PASS(name, doc, flags) Graph *pass_##name(const Graph *in, PassCtx *cx);
#include "passes.def"
#undef PASS

extern const Pass pass_pipeline[]; /* passes.def, in order */
extern const int pass_pipeline_len;

const Pass *pass_find(const char *name); /* NULL if no such pass */
void pass_list(FILE *out);               /* `cramc --list-passes` */

/* The passes of opt (opt_level / only) in pipeline order; each one's output
 * becomes the next one's input. Returns a new graph (a copy of `in` when no
 * pass runs), or NULL after reporting (an unknown name in `only`, a pass
 * that failed, ir_verify failing under verify_each). Honours dump_after and
 * stats. */
Graph *pass_pipeline_run(const Graph *in, PassCtx *cx);
/* The PASS_FORWARD rows (same selection rules) on a model's forward graph,
 * before autocast_bf16 and autodiff. Returns a new graph or NULL. */
Graph *pass_forward_run(const Graph *fwd, PassCtx *cx);

/* What --stats prints for one graph. */
typedef struct PassStats {
  int64_t ops;         /* computed nodes (sources excluded) */
  int64_t kernels;     /* launches: g->kernel partition if set, else one per computed node; aliased reshapes none */
  int64_t bytes_moved; /* estimate: bytes each kernel reads from and writes to memory (traffic.h) */
  int64_t arena_bytes; /* activation arena of the memory plan (passes/memplan.h) */
  int64_t peak_bytes;  /* largest sum of simultaneously live activation bytes */
  int64_t sum_bytes;   /* sum of every activation buffer, unplanned */
} PassStats;
bool pass_graph_stats(const Graph *g, PassStats *st);
/* The per-op-family breakdown of g's bytes_moved (traffic.h), as --stats prints it after the rows. */
void pass_print_traffic(FILE *out, const Graph *g);
/* "name ops kernels bytes arena" header and one row; name NULL prints the header. */
void pass_print_stats(FILE *out, const char *name, const PassStats *st);

/* Helpers shared by rewrite passes (pass.c). pass_emit adds a copy of n to
 * dst with inputs in[] (already remapped); sources are copied as they are.
 * pass_copy_outputs adds in's outputs through map. */
ValueId pass_emit(Graph *dst, const Node *n, const ValueId *in, Diag *d);
void pass_copy_outputs(Graph *dst, const Graph *in, const ValueId *map);
/* Counts of consumers per node (outputs count as a use); arena-allocated. */
uint32_t *pass_use_counts(const Graph *g, Arena *a);

/* The kernel partition (fuse_elementwise.c): a copy of in with Graph.kernel
 * set. multi_tensor adds adamw_multi's groups (adamw_multi.c). */
Graph *pass_partition_kernels(const Graph *in, bool multi_tensor, Diag *d);
/* adamw_multi.c: which multi-tensor kernel a node belongs in: 0 none,
 * 1 the global-norm kernel (sumsq of every gradient and their sum),
 * 2 the update kernel (clip coefficient, schedule, AdamW of every param),
 * 3 the parameters' bf16 casts (pass_is_param_cast),
 * 4 the gradient accumulation (accum: pass_accumulation_nodes' marks).
 * first[K] is kernel K's first (oldest) node. */
#define PASS_MULTI_TENSOR_GROUPS 5 /* 0 and the four groups */
/* sink.c: v is `cast %p {to=bf16}` of a parameter p (hoisted into one block). */
bool pass_is_param_cast(const Graph *g, ValueId v);
int pass_multi_tensor_group(const Graph *g, ValueId v, const uint32_t *kernel, const uint32_t *group_kernel,
                            const uint32_t *first, const uint8_t *accum);
/* adamw_multi.c: marks (in arena a) the accumulate graph's `grad_acc.P + g * accum_scale`
 * nodes (the add, the mul, and g's cast to f32 when the mul is its only reader). */
uint8_t *pass_accumulation_nodes(const Graph *g, Arena *a);

#endif
