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
 * gradient (sum_to of %g) becomes wrt=2. The accuracy count of eval's
 * forward (xent_hits %l, %t: passes/eval_metrics.c) becomes
 * xent_linear_hits %x, %w, %t [, %b] beside the loss. A loss seed other than `fill 1` is
 * applied with a `mul` by the scalar. Legal only when the logits and their
 * gradient have no other consumers (no "logits" output, ...). Codegen: a
 * chunked GEMM over the vocabulary with an online softmax (Liger-style fused
 * linear cross-entropy), writing only [N,H], [V,H] and the scalar.
 *
 * Mixed precision (autocast_bf16): the GEMM reads bf16 copies of x and W and
 * its bf16 product is cast up to f32 for the loss (and the bias add); the
 * logits' f32 gradient is cast to bf16 for the dx / dW GEMMs, whose bf16
 * results are cast up again:
 *   %xb = cast %x {to="bf16"}   %wb = cast %w {to="bf16"}
 *   %p  = matmul %xb, %wb : bf16[N,V]     %l = cast %p {to="f32"} [+ b]
 *   %g  = cross_entropy_grad %l, ...      %gb = cast %g {to="bf16"}
 *   %dx = matmul %gb, %wb : bf16[N,H]     %dw = matmul %gb, %xb : bf16[V,H]
 * The fused ops then read %xb and %wb (the casts stay: they are the GEMM
 * operands), and the dx / dW results keep their bf16 type (their casts up
 * stay too). The ops round the product and the gradient as the unfused
 * chain does (interp_fused.c), so the interpreter stays the oracle.
 */
#include "fuse_util.h"

typedef struct Xent {
  ValueId logits, mm, up, x, w, t, b; /* up: the cast of a bf16 product to f32, else IR_NONE; b: IR_NONE without a bias */
  bool tb;
  int64_t ignore;
} Xent;

/* v is the decoder product: a matmul, or (autocast) its only consumer, a cast up to f32. */
static bool product(const Rewriter *rw, ValueId v, ValueId *mm, ValueId *up) {
  *up = IR_NONE;
  if (fu_is(rw, v, OP_CAST) && fu_node(rw, v)->dtype == DT_F32) {
    ValueId m = fu_node(rw, v)->in[0];
    if (!fu_is(rw, m, OP_MATMUL) || fu_only_user(rw, m) != v) return false;
    *up = v;
    v = m;
  }
  *mm = v;
  return fu_is(rw, v, OP_MATMUL);
}

/* logits = matmul(x[N,H], W) [+ b[V]] with x and W rank 2 and of one dtype. */
static bool match_logits(const Rewriter *rw, ValueId l, Xent *e) {
  e->logits = l;
  e->b = IR_NONE;
  if (fu_is(rw, l, OP_ADD)) {
    const Node *a = fu_node(rw, l);
    for (int s = 0; s < 2 && e->b == IR_NONE; s++)
      if (product(rw, a->in[s], &e->mm, &e->up) && fu_node(rw, a->in[1 - s])->shape.rank == 1 &&
          fu_node(rw, a->in[1 - s])->shape.dim[0] == a->shape.dim[a->shape.rank - 1] &&
          ir_shape_eq(&fu_node(rw, a->in[s])->shape, &a->shape) && fu_only_user(rw, a->in[s]) == l)
        e->b = a->in[1 - s];
    if (e->b == IR_NONE) return false;
  } else if (!product(rw, l, &e->mm, &e->up)) {
    return false;
  }
  const Node *m = fu_node(rw, e->mm);
  if (m->shape.rank != 2 || ir_get_int(m, ATTR_TRANS_A)) return false;
  e->x = m->in[0];
  e->w = m->in[1];
  e->tb = ir_get_int(m, ATTR_TRANS_B) != 0;
  return fu_node(rw, e->w)->shape.rank == 2 && fu_node(rw, e->w)->dtype == fu_node(rw, e->x)->dtype;
}

/* What a consumer u of the logits' gradient computes: 0 dx, 1 dW, 2 db,
 * 3 the cast of g to the GEMMs' dtype (autocast; its consumers are the
 * GEMMs); -1 if none of these. gv: the value u reads (g, or its cast). */
static int grad_use(const Rewriter *rw, const Xent *e, ValueId gv, ValueId u) {
  const Node *n = fu_node(rw, u), *w = fu_node(rw, e->w);
  bool cast = fu_is(rw, gv, OP_CAST); /* the GEMMs read the cast, the bias reduction g itself */
  if (n->op == OP_SUM_TO) return e->b != IR_NONE && n->shape.rank == 1 && !cast ? 2 : -1;
  if (n->op == OP_CAST)
    return e->up != IR_NONE && !cast && n->dtype == fu_node(rw, e->mm)->dtype && !fu_is_output(rw, u) ? 3 : -1;
  if (n->op != OP_MATMUL || cast != (e->up != IR_NONE)) return -1;
  bool ta = ir_get_int(n, ATTR_TRANS_A), tb = ir_get_int(n, ATTR_TRANS_B);
  if (n->in[0] == gv && n->in[1] == e->w && !ta && tb == !e->tb) return 0; /* g op(W) */
  if (ir_shape_eq(&n->shape, &w->shape) && ta && !tb &&
      ((e->tb && n->in[0] == gv && n->in[1] == e->x) || (!e->tb && n->in[0] == e->x && n->in[1] == gv)))
    return 1; /* g^T x, or x^T g */
  return -1;
}

/* Every consumer of the gradient g (through its casts) is a dx / dW / db node. */
static bool grad_ok(const Rewriter *rw, const Xent *e, ValueId g) {
  for (uint32_t j = rw->ustart[g]; j < rw->ustart[g + 1]; j++) {
    ValueId u = rw->users[j];
    int k = grad_use(rw, e, g, u);
    if (k < 0) return false;
    if (k == 3)
      for (uint32_t i = rw->ustart[u]; i < rw->ustart[u + 1]; i++) {
        int kk = grad_use(rw, e, u, rw->users[i]);
        if (kk != 0 && kk != 1) return false;
      }
  }
  return true;
}

/* n is the accuracy count of e's logits (pass_eval_metrics) */
static bool is_hits(const Xent *e, const Node *n) {
  return n->op == OP_XENT_HITS && n->in[0] == e->logits && n->in[1] == e->t && ir_get_int(n, ATTR_IGNORE) == e->ignore;
}

/* Match at the cross_entropy node v: every consumer of the logits is this
 * loss, its accuracy count, or a cross_entropy_grad with the same targets,
 * and every consumer of each such gradient is a dx / dW / db GEMM or
 * reduction. */
static bool match(const Rewriter *rw, ValueId v, Xent *e) {
  const Node *c = fu_node(rw, v);
  if (c->op != OP_CROSS_ENTROPY || !match_logits(rw, c->in[0], e) || fu_is_output(rw, e->logits)) return false;
  e->t = c->in[1];
  e->ignore = ir_get_int(c, ATTR_IGNORE);
  for (uint32_t i = rw->ustart[e->logits]; i < rw->ustart[e->logits + 1]; i++) {
    ValueId u = rw->users[i];
    const Node *n = fu_node(rw, u);
    if (u == v || is_hits(e, n)) continue;
    if (n->op != OP_CROSS_ENTROPY_GRAD || n->in[0] != e->logits || n->in[1] != e->t || ir_get_int(n, ATTR_IGNORE) != e->ignore ||
        fu_is_output(rw, u))
      return false;
    if (!grad_ok(rw, e, u)) return false;
  }
  return true;
}

#define WRT_LOSS (-1)
#define WRT_HITS (-2)
static ValueId emit_xent(Rewriter *rw, const Xent *e, int wrt, SrcLoc loc) {
  ValueId in[4] = { fu_get(rw, e->x), fu_get(rw, e->w), fu_get(rw, e->t) };
  int nin = 3;
  if (e->b != IR_NONE) in[nin++] = fu_get(rw, e->b);
  Attr a[3] = { ir_attr_int(ATTR_TRANS_B, e->tb), ir_attr_int(ATTR_IGNORE, e->ignore), ir_attr_int(ATTR_WRT, wrt) };
  OpKind op = wrt == WRT_LOSS ? OP_XENT_LINEAR : wrt == WRT_HITS ? OP_XENT_LINEAR_HITS : OP_XENT_LINEAR_GRAD;
  return fu_emit(rw, op, in, nin, a, wrt < 0 ? 2 : 3, loc);
}

/* The consumers of gradient g that become fused nodes (through a cast of g
 * under autocast): their loss, wrt and gradient; g and its casts are dropped. */
static void plan_grad(Rewriter *rw, const Xent *e, ValueId loss, ValueId g, ValueId gv, ValueId *loss_of, int8_t *wrt,
                      ValueId *gof) {
  rw->drop[gv] = true;
  for (uint32_t j = rw->ustart[gv]; j < rw->ustart[gv + 1]; j++) {
    ValueId u = rw->users[j];
    int k = grad_use(rw, e, gv, u);
    if (k == 3) {
      plan_grad(rw, e, loss, g, u, loss_of, wrt, gof);
      continue;
    }
    loss_of[u] = loss + 1;
    wrt[u] = (int8_t)k;
    gof[u] = g;
  }
}

Graph *pass_fuse_xent(const Graph *in, PassCtx *cx) {
  Rewriter rw;
  fu_begin(&rw, in, cx);
  /* plan: the loss node owns the pattern; consumers of its gradients get their wrt */
  size_t cnt = in->n ? in->n : 1;
  ValueId *loss_of = ARENA_ARRAY(rw.scratch, ValueId, cnt); /* consumer -> cross_entropy + 1 */
  ValueId *gof = ARENA_ARRAY(rw.scratch, ValueId, cnt);     /* consumer -> the cross_entropy_grad it derives from */
  int8_t *wrt = ARENA_ARRAY(rw.scratch, int8_t, cnt);
  bool *is_loss = ARENA_ARRAY(rw.scratch, bool, cnt);
  for (ValueId v = 0; v < in->n; v++) {
    Xent e;
    if (!match(&rw, v, &e)) continue;
    is_loss[v] = true;
    rw.drop[e.logits] = true;
    rw.drop[e.mm] = true;
    if (e.up != IR_NONE) rw.drop[e.up] = true;
    for (uint32_t i = rw.ustart[e.logits]; i < rw.ustart[e.logits + 1]; i++) {
      ValueId u = rw.users[i];
      if (u == v) continue;
      if (is_hits(&e, fu_node(&rw, u))) loss_of[u] = v + 1, wrt[u] = WRT_HITS;
      else plan_grad(&rw, &e, v, u, u, loss_of, wrt, gof);
    }
  }
  for (ValueId v = 0; v < in->n; v++) {
    if (fu_done(&rw, v)) continue;
    Xent e;
    if (is_loss[v]) {
      match(&rw, v, &e);
      rw.map[v] = emit_xent(&rw, &e, WRT_LOSS, fu_node(&rw, v)->loc);
    } else if (loss_of[v] && wrt[v] == WRT_HITS) {
      match(&rw, loss_of[v] - 1, &e);
      rw.map[v] = emit_xent(&rw, &e, WRT_HITS, fu_node(&rw, v)->loc);
    } else if (loss_of[v]) {
      match(&rw, loss_of[v] - 1, &e);
      const Node *n = fu_node(&rw, v);
      ValueId r = emit_xent(&rw, &e, wrt[v], n->loc), seed = fu_node(&rw, gof[v])->in[2];
      if (!fu_is_one(&rw, seed) && r != IR_NONE) {
        /* d(mean CE)/d. times the seed, in the result's dtype (bf16 dx / dW: the seed cast down) */
        ValueId sv = fu_get(&rw, seed);
        DType rdt = rw.out->nodes[r].dtype;
        if (rw.out->nodes[sv].dtype != rdt) {
          Attr to = ir_attr_str(ATTR_TO, ir_dtype_name(rdt));
          sv = fu_emit(&rw, OP_CAST, &sv, 1, &to, 1, n->loc);
        }
        ValueId mi[2] = { r, sv };
        r = sv == IR_NONE ? IR_NONE : fu_emit(&rw, OP_MUL, mi, 2, NULL, 0, n->loc);
      }
      rw.map[v] = r;
    } else {
      fu_copy(&rw, v);
    }
  }
  return fu_end(&rw);
}
