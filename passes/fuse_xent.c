/* fuse_xent.c: decoder GEMM + log-softmax + cross-entropy, and its gradient,
 * fused so that no [predictions x vocab] tensor exists in the graph
 * (docs/fusions.md, "4. masked-token decoding + fused cross-entropy").
 *
 * The models gather the prediction rows first (masked_rows: [B*slots,H]), so
 * the decoder GEMM only ever sees prediction rows; this pass removes the
 * logits themselves:
 *   %l  = matmul %x, %w {trans_a=0, trans_b=1}             : f32[N,V]
 *   %ls = cross_entropy %l, %t {ignore=-100}               : f32[]
 *   %g  = cross_entropy_grad %l, %t, %one {ignore=-100}    : f32[N,V]
 *   %dx = matmul %g, %w {trans_a=0, trans_b=0}             : f32[N,H]
 *   %dw = matmul %g, %x {trans_a=1, trans_b=0}             : f32[V,H]
 * becomes
 *   %ls = xent_linear %x, %w, %t {trans_b=1, ignore=-100}          : f32[]
 *   %dx = xent_linear_grad %x, %w, %t {trans_b=1, ignore=-100, wrt=0} : f32[N,H]
 *   %dw = xent_linear_grad %x, %w, %t {trans_b=1, ignore=-100, wrt=1} : f32[V,H]
 * A decoder bias b[V] (logits = add(matmul, b)) is a fourth input, and its
 * gradient (sum_to of %g) becomes wrt=2. A loss seed other than `fill 1` is
 * applied with a `mul` by the scalar. Legal only when the logits and their
 * gradient have no other consumers (no "logits" output, ...). Codegen: a
 * chunked GEMM over the vocabulary with an online softmax (Liger-style fused
 * linear cross-entropy), writing only [N,H], [V,H] and the scalar.
 */
#include "fuse_util.h"

typedef struct Xent {
  ValueId logits, mm, x, w, t, b; /* b: IR_NONE without a bias */
  bool tb;
  int64_t ignore;
} Xent;

/* logits = matmul(x[N,H], W) [+ b[V]] with x and W rank 2. */
static bool match_logits(const Rewriter *rw, ValueId l, Xent *e) {
  e->logits = l;
  e->mm = l;
  e->b = IR_NONE;
  if (fu_is(rw, l, OP_ADD)) {
    const Node *a = fu_node(rw, l);
    for (int s = 0; s < 2 && e->b == IR_NONE; s++)
      if (fu_is(rw, a->in[s], OP_MATMUL) && fu_node(rw, a->in[1 - s])->shape.rank == 1 &&
          fu_node(rw, a->in[1 - s])->shape.dim[0] == a->shape.dim[a->shape.rank - 1] &&
          ir_shape_eq(&fu_node(rw, a->in[s])->shape, &a->shape)) {
        e->mm = a->in[s];
        e->b = a->in[1 - s];
      }
    if (e->b == IR_NONE || fu_only_user(rw, e->mm) != l) return false;
  }
  const Node *m = fu_node(rw, e->mm);
  if (m->op != OP_MATMUL || m->shape.rank != 2 || ir_get_int(m, ATTR_TRANS_A)) return false;
  e->x = m->in[0];
  e->w = m->in[1];
  e->tb = ir_get_int(m, ATTR_TRANS_B) != 0;
  return fu_node(rw, e->w)->shape.rank == 2;
}

/* What a consumer of the logits' gradient g computes: 0 dx, 1 dW, 2 db; -1 if none of these. */
static int grad_use(const Rewriter *rw, const Xent *e, ValueId g, ValueId u) {
  const Node *n = fu_node(rw, u), *w = fu_node(rw, e->w);
  if (n->op == OP_SUM_TO) return e->b != IR_NONE && n->shape.rank == 1 ? 2 : -1;
  if (n->op != OP_MATMUL) return -1;
  bool ta = ir_get_int(n, ATTR_TRANS_A), tb = ir_get_int(n, ATTR_TRANS_B);
  if (n->in[0] == g && n->in[1] == e->w && !ta && tb == !e->tb) return 0; /* g op(W) */
  if (ir_shape_eq(&n->shape, &w->shape) && ta && !tb &&
      ((e->tb && n->in[0] == g && n->in[1] == e->x) || (!e->tb && n->in[0] == e->x && n->in[1] == g)))
    return 1; /* g^T x, or x^T g */
  return -1;
}

/* Match at the cross_entropy node v: every consumer of the logits is this
 * loss or a cross_entropy_grad with the same targets, and every consumer of
 * each such gradient is a dx / dW / db GEMM or reduction. */
static bool match(const Rewriter *rw, ValueId v, Xent *e) {
  const Node *c = fu_node(rw, v);
  if (c->op != OP_CROSS_ENTROPY || !match_logits(rw, c->in[0], e) || fu_is_output(rw, e->logits)) return false;
  e->t = c->in[1];
  e->ignore = ir_get_int(c, ATTR_IGNORE);
  for (uint32_t i = rw->ustart[e->logits]; i < rw->ustart[e->logits + 1]; i++) {
    ValueId u = rw->users[i];
    const Node *n = fu_node(rw, u);
    if (u == v) continue;
    if (n->op != OP_CROSS_ENTROPY_GRAD || n->in[0] != e->logits || n->in[1] != e->t ||
        ir_get_int(n, ATTR_IGNORE) != e->ignore || fu_is_output(rw, u))
      return false;
    for (uint32_t j = rw->ustart[u]; j < rw->ustart[u + 1]; j++)
      if (grad_use(rw, e, u, rw->users[j]) < 0) return false;
  }
  return true;
}

static ValueId emit_xent(Rewriter *rw, const Xent *e, int wrt, SrcLoc loc) {
  ValueId in[4] = {fu_get(rw, e->x), fu_get(rw, e->w), fu_get(rw, e->t)};
  int nin = 3;
  if (e->b != IR_NONE) in[nin++] = fu_get(rw, e->b);
  Attr a[3] = {ir_attr_int(ATTR_TRANS_B, e->tb), ir_attr_int(ATTR_IGNORE, e->ignore), ir_attr_int(ATTR_WRT, wrt)};
  return fu_emit(rw, wrt < 0 ? OP_XENT_LINEAR : OP_XENT_LINEAR_GRAD, in, nin, a, wrt < 0 ? 2 : 3, loc);
}

Graph *pass_fuse_xent(const Graph *in, PassCtx *cx) {
  Rewriter rw;
  fu_begin(&rw, in, cx);
  /* plan: the loss node owns the pattern; consumers of its gradients get their wrt */
  ValueId *loss_of = ARENA_ARRAY(rw.scratch, ValueId, in->n ? in->n : 1); /* consumer -> cross_entropy + 1 */
  int8_t *wrt = ARENA_ARRAY(rw.scratch, int8_t, in->n ? in->n : 1);
  bool *is_loss = ARENA_ARRAY(rw.scratch, bool, in->n ? in->n : 1);
  for (ValueId v = 0; v < in->n; v++) {
    Xent e;
    if (!match(&rw, v, &e)) continue;
    is_loss[v] = true;
    rw.drop[e.logits] = true;
    rw.drop[e.mm] = true;
    for (uint32_t i = rw.ustart[e.logits]; i < rw.ustart[e.logits + 1]; i++) {
      ValueId g = rw.users[i];
      if (g == v) continue;
      rw.drop[g] = true;
      for (uint32_t j = rw.ustart[g]; j < rw.ustart[g + 1]; j++) {
        ValueId u = rw.users[j];
        loss_of[u] = v + 1;
        wrt[u] = (int8_t)grad_use(&rw, &e, g, u);
      }
    }
  }
  for (ValueId v = 0; v < in->n; v++) {
    if (fu_done(&rw, v)) continue;
    Xent e;
    if (is_loss[v]) {
      match(&rw, v, &e);
      rw.map[v] = emit_xent(&rw, &e, -1, fu_node(&rw, v)->loc);
    } else if (loss_of[v]) {
      match(&rw, loss_of[v] - 1, &e);
      const Node *n = fu_node(&rw, v);
      ValueId g = IR_NONE; /* the gradient this consumer read, for its loss seed */
      for (int k = 0; k < n->nin && g == IR_NONE; k++)
        if (fu_is(&rw, n->in[k], OP_CROSS_ENTROPY_GRAD)) g = n->in[k];
      ValueId r = emit_xent(&rw, &e, wrt[v], n->loc), seed = fu_node(&rw, g)->in[2];
      if (!fu_is_one(&rw, seed)) {
        ValueId mi[2] = {r, fu_get(&rw, seed)};
        r = fu_emit(&rw, OP_MUL, mi, 2, NULL, 0, n->loc);
      }
      rw.map[v] = r;
    } else {
      fu_copy(&rw, v);
    }
  }
  return fu_end(&rw);
}
