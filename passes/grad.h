/* grad.h: private to passes/: the context a gradient rule builds with.
 *
 * A rule grad_<op>(cx, v, dy) is called once per forward node v that leads to
 * the loss, with dy the (already summed) gradient of v's output. It builds
 * backward nodes with gb() and hands each input's contribution to
 * grad_accum(); autodiff.c sums contributions and drops those the loss does
 * not need. Everything a rule builds carries the forward node's SrcLoc.
 */
#ifndef CRAMC_PASSES_GRAD_H
#define CRAMC_PASSES_GRAD_H

#include "passes.h"

typedef struct GradCtx {
  Graph *g; /* the graph being built (forward copy + backward) */
  const Graph *fwd;
  const ValueId *map; /* forward id -> id in g */
  ValueId *grad;      /* forward id -> its summed gradient in g, or IR_NONE */
  const bool *needs;  /* forward id -> a param's gradient flows through it */
  Diag *d;
  SrcLoc loc; /* of the forward node whose rule runs */
  bool failed;
} GradCtx;

typedef void (*GradFn)(GradCtx *cx, ValueId v, ValueId dy);

/* The rules named in the grad column of ops.def. */
#define OP(id, name, min_in, max_in, cls, attrs, shape, interp, grad, ...) void grad(GradCtx *cx, ValueId v, ValueId dy);
#define NONE                                                               grad_none_ /* declared for rows without a rule; never defined */
#include "ops.def"
#undef NONE
#undef OP

/* Append a computed node at cx->loc; IR_NONE (and cx->failed) on error. */
ValueId gb(GradCtx *cx, OpKind op, const ValueId *in, int nin, const Attr *attrs, int nattr);
/* Add contribution dx to the gradient of input k of forward node v (ignored
 * when that input needs no gradient). */
void grad_accum(GradCtx *cx, ValueId v, int k, ValueId dx);
/* Input k of forward node v needs a gradient. */
bool grad_wants(const GradCtx *cx, ValueId v, int k);
/* Input k of forward node v, and v itself, as ids in cx->g. */
ValueId grad_in(const GradCtx *cx, ValueId v, int k);
ValueId grad_out(const GradCtx *cx, ValueId v);
/* Type of a value in cx->g. */
const Node *grad_node(const GradCtx *cx, ValueId id);

#endif
