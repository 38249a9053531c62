/* fold_constants.c: the `fold` pass, constant folding and algebraic identities.
 *
 * Rewrites (x any value, c a `fill` constant, all shapes static):
 *   pointwise op whose inputs are all fills   -> fill of the computed value
 *   scale(x, 1), dropout(x, p=0)              -> x
 *   mul(x, fill 1), add(x, fill 0)            -> x      (when the result has x's type)
 *   cast(x) to x's own dtype                  -> x;     cast(fill c) -> fill of the new dtype
 *   mul(x, fill c)                            -> scale(x, c)
 *   scale(scale(x, a), b)                     -> scale(x, a*b)
 *   reshape/broadcast_to/sum_to to x's shape, identity permute, full slice -> x
 *   reshape(reshape(x))                       -> reshape(x)
 *   add(pad(a), pad(b)), same axis and size, adjacent ranges
 *                                             -> pad(concat(a, b)); a pad to x's own shape -> x
 *     (autodiff's gradient of slices that tile an axis: the dQKV of attention
 *     becomes one concat instead of three zero-filled pads and two adds)
 * Legal because a fill is the same value at every element, so a pointwise op
 * of fills is a fill; x + 0 is x (up to the sign of a zero); the identities are exact in IEEE arithmetic except
 * scale chains, whose product a*b rounds once instead of twice (relative
 * 1e-16, within the equivalence tolerance). The sinusoid table is itself a
 * compile-time constant source (codegen bakes it); in every model it is
 * multiplied by the trainable pos.scale, so no sinusoid chain is constant.
 * Bypassed nodes are left for dce.
 */
#include <string.h>

#include "interp.h"
#include "memplan.h"
#include "pass.h"
#include "passes.h"

static bool is_fill(const Graph *g, ValueId v, double *value) {
  if (g->nodes[v].op != OP_FILL) return false;
  *value = ir_get_float(&g->nodes[v], ATTR_VALUE);
  return true;
}

/* The value of pointwise op n applied to scalar fills vals[] (interpreted in
 * f64 on a one-element graph), or false. */
static bool eval_pointwise(const Node *n, const double *vals, double *out, Diag *d) {
  Graph *t = ir_graph_new("fold");
  Shape scalar = { 0 };
  ValueId ins[IR_MAX_IN];
  for (int k = 0; k < n->nin; k++) {
    Attr a = ir_attr_float(ATTR_VALUE, vals[k]);
    ins[k] = ir_add_source(t, OP_FILL, n->dtype, &scalar, &a, 1, (SrcLoc){ 0 });
  }
  ValueId r = ir_add(t, n->op, ins, n->nin, n->attr, n->nattr, (SrcLoc){ 0 }, d);
  bool ok = r != IR_NONE;
  if (ok) {
    double *bufs[IR_MAX_IN + 1] = { 0 };
    bool owned[IR_MAX_IN + 1];
    char err[256];
    InterpOpts o = { INTERP_F64, false, 0 };
    ok = interp_run(t, &o, bufs, owned, err, sizeof err);
    if (ok) *out = bufs[r][0];
    interp_free(t, bufs, owned);
  }
  ir_graph_free(t);
  return ok;
}

static bool same_type(const Node *a, const Node *b) { return a->dtype == b->dtype && ir_shape_eq(&a->shape, &b->shape); }

/* scale(x, alpha) with the identities applied to it. */
static ValueId emit_scale(Graph *g, ValueId x, double alpha, SrcLoc loc, Diag *d) {
  if (alpha == 1.0) return x;
  const Node *xn = &g->nodes[x];
  double c;
  if (is_fill(g, x, &c)) {
    Attr a = ir_attr_float(ATTR_VALUE, alpha * c);
    Shape s = xn->shape;
    return ir_add_source(g, OP_FILL, xn->dtype, &s, &a, 1, loc);
  }
  if (xn->op == OP_SCALE) return emit_scale(g, xn->in[0], alpha * ir_get_float(xn, ATTR_ALPHA), loc, d);
  Attr a = ir_attr_float(ATTR_ALPHA, alpha);
  return ir_add(g, OP_SCALE, &x, 1, &a, 1, loc, d);
}

/* pad x along `axis` to `size` with x at `start` (x itself when that is its shape). */
static ValueId emit_pad(Graph *g, ValueId x, int64_t axis, int64_t start, int64_t size, SrcLoc loc, Diag *d) {
  if (start == 0 && g->nodes[x].shape.dim[axis] == size) return x;
  Attr a[3] = { ir_attr_int(ATTR_AXIS, axis), ir_attr_int(ATTR_START, start), ir_attr_int(ATTR_SIZE, size) };
  return ir_add(g, OP_PAD, &x, 1, a, 3, loc, d);
}

/* The parts of x joined along axis: a concat's inputs (flattened), or x. */
static int concat_parts(const Graph *g, ValueId x, int64_t axis, ValueId *out) {
  const Node *n = &g->nodes[x];
  if (n->op != OP_CONCAT || ir_get_int(n, ATTR_AXIS) != axis) return out[0] = x, 1;
  for (int k = 0; k < n->nin; k++) out[k] = n->in[k];
  return n->nin;
}

/* add(pad(a), pad(b)) with one axis and size and adjacent ranges: the pad of their concat (IR_NONE if not). */
static ValueId fold_pad_add(Graph *g, const Node *n, const ValueId *ins, SrcLoc loc, Diag *d) {
  const Node *p0 = &g->nodes[ins[0]], *p1 = &g->nodes[ins[1]];
  if (p0->op != OP_PAD || p1->op != OP_PAD || !same_type(p0, n) || !same_type(p1, n)) return IR_NONE;
  int64_t axis = ir_get_int(p0, ATTR_AXIS), size = ir_get_int(p0, ATTR_SIZE);
  if (ir_get_int(p1, ATTR_AXIS) != axis || ir_get_int(p1, ATTR_SIZE) != size) return IR_NONE;
  int64_t s0 = ir_get_int(p0, ATTR_START), s1 = ir_get_int(p1, ATTR_START);
  int64_t l0 = g->nodes[p0->in[0]].shape.dim[axis], l1 = g->nodes[p1->in[0]].shape.dim[axis];
  if (s0 + l0 != s1 && s1 + l1 != s0) return IR_NONE; /* overlapping or apart */
  ValueId lo = s0 < s1 ? p0->in[0] : p1->in[0], hi = s0 < s1 ? p1->in[0] : p0->in[0], parts[8];
  int np = concat_parts(g, lo, axis, parts);
  np += concat_parts(g, hi, axis, parts + np);
  if (np > 4) return IR_NONE; /* concat's arity */
  Attr a = ir_attr_int(ATTR_AXIS, axis);
  ValueId c = ir_add(g, OP_CONCAT, parts, np, &a, 1, loc, d);
  return c == IR_NONE ? IR_NONE : emit_pad(g, c, axis, s0 < s1 ? s0 : s1, size, loc, d);
}

/* A replacement for n (inputs ins[] in g), or IR_NONE to copy n as it is. */
static ValueId fold(Graph *g, const Node *n, const ValueId *ins, Diag *d) {
  SrcLoc loc = n->loc;
  if (loc.file) loc.file = arena_strdup(g->arena, loc.file);
  double vals[IR_MAX_IN];
  bool all_fill = n->nin > 0;
  for (int k = 0; k < n->nin; k++) all_fill &= is_fill(g, ins[k], &vals[k]);
  bool pointwise = ir_op_is(n->op, OPP_POINTWISE);
  double r;
  if (all_fill && pointwise && eval_pointwise(n, vals, &r, d)) {
    Attr a = ir_attr_float(ATTR_VALUE, r);
    return ir_add_source(g, OP_FILL, n->dtype, &n->shape, &a, 1, loc);
  }
  const Node *x = n->nin ? &g->nodes[ins[0]] : NULL;
  switch (n->op) {
  case OP_SCALE: return emit_scale(g, ins[0], ir_get_float(n, ATTR_ALPHA), loc, d);
  case OP_DROPOUT: return ir_get_float(n, ATTR_P) == 0.0 ? ins[0] : IR_NONE;
  case OP_CAST: {
    double c;
    if (x->dtype == n->dtype) return ins[0];
    if (!is_fill(g, ins[0], &c)) return IR_NONE;
    /* the new fill rounds c to its dtype once (the cast rounded a rounded c:
     * the same value unless c sits within an f32 ulp of a bf16 tie) */
    Attr a = ir_attr_float(ATTR_VALUE, c);
    return ir_add_source(g, OP_FILL, n->dtype, &n->shape, &a, 1, loc);
  }
  case OP_MUL:
  case OP_ADD:
    if (n->op == OP_ADD) {
      ValueId c = fold_pad_add(g, n, ins, loc, d);
      if (c != IR_NONE) return c;
    }
    for (int k = 0; k < 2; k++) {
      double c;
      const Node *other = &g->nodes[ins[1 - k]];
      if (!is_fill(g, ins[k], &c) || !same_type(other, n)) continue;
      if (n->op == OP_ADD && c == 0.0) return ins[1 - k];
      if (n->op == OP_MUL) return emit_scale(g, ins[1 - k], c, loc, d);
    }
    return IR_NONE;
  case OP_RESHAPE:
    if (ir_shape_eq(&x->shape, &n->shape)) return ins[0];
    if (x->op == OP_RESHAPE) return ir_add(g, OP_RESHAPE, &x->in[0], 1, n->attr, n->nattr, loc, d);
    return IR_NONE;
  case OP_BROADCAST_TO:
  case OP_SUM_TO: return ir_shape_eq(&x->shape, &n->shape) ? ins[0] : IR_NONE;
  case OP_SLICE:
  case OP_PAD: return ir_shape_eq(&x->shape, &n->shape) ? ins[0] : IR_NONE;
  case OP_PERMUTE: {
    const Attr *p = ir_attr(n, ATTR_PERM);
    for (uint32_t i = 0; i < p->u.ints.n; i++)
      if (p->u.ints.v[i] != (int64_t)i) return IR_NONE;
    return ins[0];
  }
  default: return IR_NONE;
  }
}

Graph *pass_fold(const Graph *in, PassCtx *cx) {
  Graph *g = ir_graph_new_like(in);
  ValueId *map = ARENA_ARRAY(g->arena, ValueId, in->n ? in->n : 1);
  for (ValueId v = 0; v < in->n; v++) {
    const Node *n = &in->nodes[v];
    ValueId ins[IR_MAX_IN];
    for (int k = 0; k < n->nin; k++) ins[k] = map[n->in[k]];
    map[v] = ir_ops[n->op].cls == OC_SOURCE ? IR_NONE : fold(g, n, ins, cx->diag);
    if (map[v] == IR_NONE) map[v] = pass_emit(g, n, ins, cx->diag);
    if (map[v] == IR_NONE) {
      ir_graph_free(g);
      return NULL;
    }
  }
  pass_copy_outputs(g, in, map);
  return g;
}
