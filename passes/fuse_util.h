/* fuse_util.h: the rewriting helpers the four fusion passes share
 * (passes/fuse_linear.c, fuse_epilogue.c, fuse_ln_residual.c, fuse_xent.c).
 *
 * A fusion copies its input graph node by node in order into a new graph,
 * replacing matched nodes by fused ones. The Rewriter holds the id map, the
 * per-node use counts and consumer lists the match functions ask about, and
 * a `drop` mark for matched nodes that vanish (their values are never read
 * again). Sources (params, inputs, fills) may be emitted early: fu_get
 * copies one on first request, so a fused node can sit at the position of
 * its first member even when a later member's weight is declared after it.
 * Scratch memory (use lists) is one arena freed by fu_end.
 */
#ifndef CRAMC_FUSE_UTIL_H
#define CRAMC_FUSE_UTIL_H

#include <stdbool.h>

#include "pass.h"

typedef struct Rewriter {
  const Graph *in;
  Graph *out;
  Arena *scratch;           /* use lists and per-pass plans; freed by fu_end */
  ValueId *map;             /* in id -> out id; IR_NONE until emitted */
  bool *drop;               /* in nodes replaced by a fused node: never copied */
  uint32_t *nuse;           /* consumers of each in node, one per input slot; an output counts once */
  uint32_t *ustart, *users; /* consumers of v: users[ustart[v] .. ustart[v+1]) (ids, in order) */
  Diag *d;
  bool failed;
  const char *last_src, *last_dst; /* SrcLoc file names, copied once per run */
} Rewriter;

void fu_begin(Rewriter *rw, const Graph *in, PassCtx *cx);
/* The new graph (outputs copied through the map), or NULL if an emit failed. Frees scratch. */
Graph *fu_end(Rewriter *rw);

/* The out id of in node v: copies a source on first request; a computed node must be emitted already. */
ValueId fu_get(Rewriter *rw, ValueId v);
/* Copy in node v (inputs through fu_get) and map it. */
ValueId fu_copy(Rewriter *rw, ValueId v);
/* Add a node to out; inputs are out ids; loc is an in-graph SrcLoc. IR_NONE after a diagnostic. */
ValueId fu_emit(Rewriter *rw, OpKind op, const ValueId *in, int nin, const Attr *attrs, int nattr, SrcLoc loc);
/* True when v needs no copy: already emitted (or mapped) or dropped. */
static inline bool fu_done(const Rewriter *rw, ValueId v) { return rw->map[v] != IR_NONE || rw->drop[v]; }

static inline const Node *fu_node(const Rewriter *rw, ValueId v) { return &rw->in->nodes[v]; }
static inline bool fu_is(const Rewriter *rw, ValueId v, OpKind op) { return rw->in->nodes[v].op == op; }
/* The single consumer of v (a node, not a graph output), or IR_NONE. */
ValueId fu_only_user(const Rewriter *rw, ValueId v);
/* v is a graph output. */
bool fu_is_output(const Rewriter *rw, ValueId v);
/* v is `fill` with value 1 (the loss seed). */
bool fu_is_one(const Rewriter *rw, ValueId v);
/* Attribute lists of the copies: n's own attributes (copied to out by ir_add). */
static inline int fu_attrs(const Node *n, Attr *a) {
  for (int i = 0; i < n->nattr; i++) a[i] = n->attr[i];
  return n->nattr;
}

/* The fusion passes (rows in passes/passes.def). */
Graph *pass_fuse_linear(const Graph *in, PassCtx *cx);
Graph *pass_fuse_epilogue(const Graph *in, PassCtx *cx);
Graph *pass_fuse_ln_residual(const Graph *in, PassCtx *cx);
Graph *pass_fuse_xent(const Graph *in, PassCtx *cx);
Graph *pass_fuse_attention(const Graph *in, PassCtx *cx); /* PASS_FORWARD: on the forward graph */

#endif
