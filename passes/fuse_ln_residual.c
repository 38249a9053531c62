/* fuse_ln_residual.c: residual add + LayerNorm as one kernel, forward and
 * backward (docs/fusions.md, "3. residual + LayerNorm").
 *
 * Forward: a LayerNorm of a same-shape sum nothing else reads
 *   %s = add %x, %f                               : f32[B,S,H]
 *   %y = layernorm %s, %w, %b {eps=1e-12}         : f32[B,S,H]
 * becomes
 *   %y = add_layernorm %x, %f, %w, %b {eps=1e-12} : f32[B,S,H]
 * (the sum never reaches memory). That is a post-LN model's forward-only
 * (eval) graph; a pre-LN residual stream, and every train step (the norm's
 * backward reads the sum), keep the sum and norm it. rmsnorm is left alone.
 *
 * Backward: the residual gradient plus a LayerNorm input gradient
 *   %g = layernorm_grad %s, %w, %dy {eps=1e-12}   : f32[B,S,H]
 *   %d = add %dres, %g                            : f32[B,S,H]
 * becomes
 *   %d = layernorm_grad_add %s, %w, %dy, %dres {eps=1e-12}
 * when %g has no other consumer.
 */
#include "fuse_util.h"

/* Forward match: layernorm(add(a, b), ...) with a, b, the sum of one shape,
 * the norm being the sum's only reader. When anything else reads the sum (the
 * residual stream of a pre-LN model; in a train step also the norm's own
 * backward, which reads its input), the sum is written anyway, and a norm of
 * it reads one tensor where add_layernorm would read two and add them again. */
static bool match_fwd(const Rewriter *rw, ValueId v) {
  const Node *n = fu_node(rw, v);
  if (n->op != OP_LAYERNORM || !fu_is(rw, n->in[0], OP_ADD) || fu_only_user(rw, n->in[0]) != v) return false;
  const Node *s = fu_node(rw, n->in[0]);
  return ir_shape_eq(&fu_node(rw, s->in[0])->shape, &s->shape) && ir_shape_eq(&fu_node(rw, s->in[1])->shape, &s->shape) &&
         fu_node(rw, s->in[0])->dtype == s->dtype && fu_node(rw, s->in[1])->dtype == s->dtype;
}

/* Backward match: add(dres, layernorm_grad) (either order), the grad read only here.
 * Returns the operand index of the layernorm_grad, or -1. */
static int match_bwd(const Rewriter *rw, ValueId v) {
  const Node *n = fu_node(rw, v);
  if (n->op != OP_ADD || !ir_shape_eq(&fu_node(rw, n->in[0])->shape, &fu_node(rw, n->in[1])->shape)) return -1;
  for (int k = 1; k >= 0; k--)
    if (fu_is(rw, n->in[k], OP_LAYERNORM_GRAD) && fu_only_user(rw, n->in[k]) == v) return k;
  return -1;
}

static void build_fwd(Rewriter *rw, ValueId v) {
  const Node *n = fu_node(rw, v), *s = fu_node(rw, n->in[0]);
  ValueId in[4] = { fu_get(rw, s->in[0]), fu_get(rw, s->in[1]) };
  for (int k = 1; k < n->nin; k++) in[k + 1] = fu_get(rw, n->in[k]);
  Attr a[IR_MAX_ATTRS];
  rw->map[v] = fu_emit(rw, OP_ADD_LAYERNORM, in, n->nin + 1, a, fu_attrs(n, a), n->loc);
}

static void build_bwd(Rewriter *rw, ValueId v, int k) {
  const Node *n = fu_node(rw, v), *g = fu_node(rw, n->in[k]);
  ValueId in[4];
  for (int i = 0; i < g->nin; i++) in[i] = fu_get(rw, g->in[i]);
  in[g->nin] = fu_get(rw, n->in[1 - k]);
  Attr a[IR_MAX_ATTRS];
  rw->map[v] = fu_emit(rw, OP_LAYERNORM_GRAD_ADD, in, g->nin + 1, a, fu_attrs(g, a), g->loc);
}

Graph *pass_fuse_ln_residual(const Graph *in, PassCtx *cx) {
  Rewriter rw;
  fu_begin(&rw, in, cx);
  for (ValueId v = 0; v < in->n; v++) { /* plan: sums only the norm reads, grads folded into their add */
    int k;
    if (match_fwd(&rw, v)) rw.drop[fu_node(&rw, v)->in[0]] = true;
    else if ((k = match_bwd(&rw, v)) >= 0) rw.drop[fu_node(&rw, v)->in[k]] = true;
  }
  for (ValueId v = 0; v < in->n; v++) {
    if (fu_done(&rw, v)) continue;
    int k;
    if (match_fwd(&rw, v)) build_fwd(&rw, v);
    else if ((k = match_bwd(&rw, v)) >= 0) build_bwd(&rw, v, k);
    else fu_copy(&rw, v);
  }
  return fu_end(&rw);
}
