/* autocast.c: pass_autocast_bf16, mixed precision in the IR (torch autocast,
 * tinygrad-style casts as ordinary nodes), run on the FORWARD graph before
 * autodiff so that the backward graph differentiates through the casts and
 * comes out mixed precision by itself.
 *
 * Rules, by op class (ops.def), applied in node order:
 *   GEMM                 every float operand is cast to bf16; the product is
 *                        bf16 (cuBLASLt: bf16 A/B, f32 accumulate, bf16 D)
 *   norm, reduce, loss   (layernorm, rmsnorm, softmax, mean, cross_entropy)
 *                        bf16 operands are cast up to f32; these run in f32
 *   everything else      (elementwise, views, gathers) keeps its operands'
 *                        dtype when they agree; when float operands are
 *                        mixed, the bf16 ones are cast up to f32 (torch's
 *                        "promote"): so a residual stream stays f32 and a
 *                        GEMM -> glu -> GEMM chain stays bf16, each stored
 *                        result rounded to bf16
 *   attention            (attention, attention_lse) q, k, v cast to bf16 as
 *                        a GEMM's operands; the bias keeps its dtype; o is
 *                        bf16, lse f32 (their shape rules)
 *   sources              unchanged: parameters stay f32 master weights and
 *                        their bf16 copies are cast nodes (one per value and
 *                        dtype: the pass memoises them, so a tied matrix used
 *                        by two GEMMs is cast once)
 * Outputs keep f32: a bf16 output is cast up. Gradients: grad_cast casts dy
 * back to the operand's dtype, so every parameter gradient (and with it the
 * AdamW moments built from it) is f32.
 */
#include <string.h>

#include "passes.h"

typedef struct Ac {
  Graph *g;
  ValueId *to_bf16, *to_f32; /* per new-graph value: its memoised cast, or IR_NONE */
  uint32_t cap;
  Diag *d;
} Ac;

static bool is_float(DType t) { return t == DT_F32 || t == DT_BF16; }

/* v (an id in ac->g) as dtype dt, through one cast per (value, dtype). */
static ValueId as(Ac *ac, ValueId v, DType dt, SrcLoc loc) {
  const Node *n = &ac->g->nodes[v];
  if (!is_float(n->dtype) || n->dtype == dt) return v;
  ValueId *memo = dt == DT_BF16 ? ac->to_bf16 : ac->to_f32;
  if (memo[v] != IR_NONE) return memo[v];
  Attr to = ir_attr_str(ATTR_TO, ir_dtype_name(dt));
  ValueId c = ir_add(ac->g, OP_CAST, &v, 1, &to, 1, loc, ac->d);
  memo[v] = c;
  return c;
}

/* The memo arrays cover every id the next node can create (its casts, itself). */
static void room(Ac *ac) {
  if (ac->g->n + IR_MAX_IN + 2 < ac->cap) return;
  uint32_t cap = ac->cap * 2 + 64;
  ValueId *b = ARENA_ARRAY(ac->g->arena, ValueId, cap), *f = ARENA_ARRAY(ac->g->arena, ValueId, cap);
  for (uint32_t i = 0; i < cap; i++) {
    b[i] = i < ac->cap ? ac->to_bf16[i] : IR_NONE;
    f[i] = i < ac->cap ? ac->to_f32[i] : IR_NONE;
  }
  ac->to_bf16 = b, ac->to_f32 = f, ac->cap = cap;
}

Graph *pass_autocast_bf16(const Graph *fwd, Diag *d) {
  Graph *g = ir_graph_new_like(fwd);
  Ac ac = { .g = g, .d = d };
  ValueId *map = ARENA_ARRAY(g->arena, ValueId, fwd->n ? fwd->n : 1);
  for (ValueId v = 0; v < fwd->n; v++) {
    const Node *n = &fwd->nodes[v];
    room(&ac);
    SrcLoc loc = n->loc;
    if (loc.file) loc.file = arena_strdup(g->arena, loc.file);
    ValueId ins[IR_MAX_IN];
    for (int k = 0; k < n->nin; k++) ins[k] = map[n->in[k]];
    OpClass cls = ir_ops[n->op].cls;
    DType want = DT_COUNT; /* the dtype every float operand gets, or DT_COUNT: leave them */
    if (cls == OC_GEMM) want = DT_BF16;
    else if (cls == OC_NORM || cls == OC_REDUCE || cls == OC_LOSS) want = DT_F32;
    else {
      bool any_f32 = false, any_bf16 = false;
      for (int k = 0; k < n->nin; k++) {
        any_f32 |= g->nodes[ins[k]].dtype == DT_F32;
        any_bf16 |= g->nodes[ins[k]].dtype == DT_BF16;
      }
      if (any_f32 && any_bf16) want = DT_F32;
    }
    int ncast = n->nin;
    if (cls == OC_ATTENTION) want = DT_BF16, ncast = 3; /* q, k, v run on tensor cores; bias, lse stay as they are */
    if (want != DT_COUNT)
      for (int k = 0; k < ncast; k++) ins[k] = as(&ac, ins[k], want, loc);
    for (int k = 0; k < n->nin; k++)
      if (ins[k] == IR_NONE) goto fail;
    if (cls == OC_SOURCE) {
      Shape s = n->shape;
      map[v] = ir_add_source(g, n->op, n->dtype, &s, n->attr, n->nattr, loc);
    } else {
      map[v] = ir_add(g, n->op, ins, n->nin, n->attr, n->nattr, loc, d);
    }
    if (map[v] == IR_NONE) goto fail;
  }
  for (uint32_t i = 0; i < fwd->nout; i++) {
    ValueId o = map[fwd->outputs[i].value];
    room(&ac);
    o = as(&ac, o, fwd->nodes[fwd->outputs[i].value].dtype, g->nodes[o].loc);
    if (o == IR_NONE) goto fail;
    ir_add_output(g, fwd->outputs[i].name, o);
  }
  return g;
fail:
  ir_graph_free(g);
  return NULL;
}
