/* fuse_epilogue.c: GELU / GLU gating (and their derivatives) folded into the
 * GEMM that produces (forward) or feeds (backward) them (docs/fusions.md,
 * "2. GEMM epilogues").
 *
 * Forward: an activation of a GEMM result (optionally plus a bias) becomes
 * one GEMM-with-epilogue node that reads the GEMM's own inputs:
 *   %h = matmul %x, %w {trans_a=0, trans_b=1}    : f32[B,S,2F]
 *   %y = glu %h {act="gelu"}                      : f32[B,S,F]
 * becomes
 *   %h = matmul %x, %w {trans_a=0, trans_b=1}    : f32[B,S,2F]   (aux: the pre-activation)
 *   %y = matmul_glu %x, %w {trans_a=0, trans_b=1, act="gelu"} : f32[B,S,F]
 * only when nothing else reads %h (eval graphs): %h is then dropped. When the
 * backward reads %h (training), the activation stays a kernel reading the
 * stored %h: fusing it would run the GEMM twice (the pre-activation for the
 * backward, the epilogue GEMM for the forward: +1.24 TFLOP per bert_crammed
 * step), since no renderer writes both from one GEMM; in bf16 the unfused
 * activation also reads %h rounded to bf16, as PyTorch's autocast does.
 *
 * Backward: the activation gradient of a GEMM result with one consumer
 *   %d = matmul %dz, %w2 {trans_a=0, trans_b=0}   : f32[B,S,F]
 *   %g = glu_grad %h, %d {act="gelu"}             : f32[B,S,2F]
 * becomes
 *   %g = matmul_glu_grad %h, %dz, %w2 {trans_a=0, trans_b=0, act="gelu"}
 * (cuBLASLt DGELU epilogue with %h as aux; BGRAD of a following bias sum_to).
 * gelu / relu (and their _grad) map the same way to matmul_act(_grad).
 */
#include <string.h>

#include "fuse_util.h"

/* The activation op's fused counterpart and its act name; false if it has none. */
static bool fwd_kind(const Node *n, OpKind *fused, const char **act) {
  switch (n->op) {
  case OP_GLU:
    *fused = OP_MATMUL_GLU;
    *act = ir_get_str(n, ATTR_ACT);
    return true;
  case OP_GELU:
    *fused = OP_MATMUL_ACT;
    *act = "gelu";
    return true;
  case OP_RELU:
    *fused = OP_MATMUL_ACT;
    *act = "relu";
    return true;
  default: return false;
  }
}

static bool bwd_kind(const Node *n, OpKind *fused, const char **act) {
  switch (n->op) {
  case OP_GLU_GRAD:
    *fused = OP_MATMUL_GLU_GRAD;
    *act = ir_get_str(n, ATTR_ACT);
    return true;
  case OP_GELU_GRAD:
    *fused = OP_MATMUL_ACT_GRAD;
    *act = "gelu";
    return true;
  case OP_RELU_GRAD:
    *fused = OP_MATMUL_ACT_GRAD;
    *act = "relu";
    return true;
  default: return false;
  }
}

/* Forward match: act(matmul(A, B) [+ bias[N]]). Sets the matmul and the bias (or IR_NONE). */
static bool match_fwd(const Rewriter *rw, ValueId v, ValueId *mm, ValueId *bias) {
  const Node *n = fu_node(rw, v);
  OpKind fused;
  const char *act;
  if (!fwd_kind(n, &fused, &act)) return false;
  ValueId p = n->in[0];
  *bias = IR_NONE;
  if (fu_is(rw, p, OP_ADD)) {
    const Node *a = fu_node(rw, p);
    for (int s = 0; s < 2; s++) {
      const Node *b = fu_node(rw, a->in[1 - s]);
      if (fu_is(rw, a->in[s], OP_MATMUL) && b->shape.rank == 1 && b->dtype == a->dtype &&
          b->shape.dim[0] == a->shape.dim[a->shape.rank - 1] && ir_shape_eq(&a->shape, &fu_node(rw, a->in[s])->shape)) {
        *mm = a->in[s];
        *bias = a->in[1 - s];
        return true;
      }
    }
    return false;
  }
  *mm = p;
  return fu_is(rw, p, OP_MATMUL);
}

/* The forward epilogue pays only when its pre-activation is read by nothing else (see the header). */
static bool match_fwd_alone(const Rewriter *rw, ValueId v, ValueId *mm, ValueId *bias) {
  return match_fwd(rw, v, mm, bias) && fu_only_user(rw, fu_node(rw, v)->in[0]) == v &&
         (*mm == fu_node(rw, v)->in[0] || fu_only_user(rw, *mm) == fu_node(rw, v)->in[0]);
}

/* Backward match: act_grad(pre, matmul(dY, B)) where the matmul feeds nothing else. */
static bool match_bwd(const Rewriter *rw, ValueId v, ValueId *mm) {
  const Node *n = fu_node(rw, v);
  OpKind fused;
  const char *act;
  if (!bwd_kind(n, &fused, &act)) return false;
  *mm = n->in[1];
  return fu_is(rw, *mm, OP_MATMUL) && fu_only_user(rw, *mm) == v;
}

static void build(Rewriter *rw, ValueId v, ValueId mm, ValueId bias, bool fwd) {
  const Node *n = fu_node(rw, v), *m = fu_node(rw, mm);
  OpKind fused = OP_COUNT;
  const char *act = NULL;
  bool known = fwd ? fwd_kind(n, &fused, &act) : bwd_kind(n, &fused, &act);
  IR_ASSERT(known); /* build() only follows a successful match */
  Attr a[3] = { ir_attr_int(ATTR_TRANS_A, ir_get_int(m, ATTR_TRANS_A)), ir_attr_int(ATTR_TRANS_B, ir_get_int(m, ATTR_TRANS_B)),
                ir_attr_str(ATTR_ACT, act) };
  ValueId in[3];
  int nin = 0;
  if (!fwd) in[nin++] = fu_get(rw, n->in[0]); /* pre-activation (aux) */
  in[nin++] = fu_get(rw, m->in[0]);
  in[nin++] = fu_get(rw, m->in[1]);
  if (bias != IR_NONE) in[nin++] = fu_get(rw, bias);
  rw->map[v] = fu_emit(rw, fused, in, nin, a, 3, n->loc);
}

Graph *pass_fuse_epilogue(const Graph *in, PassCtx *cx) {
  Rewriter rw;
  fu_begin(&rw, in, cx);
  /* plan: GEMM results only the fused node read are dropped */
  for (ValueId v = 0; v < in->n; v++) {
    ValueId mm, bias;
    if (match_fwd_alone(&rw, v, &mm, &bias)) {
      ValueId pre = fu_node(&rw, v)->in[0];
      rw.drop[pre] = true;
      if (pre != mm) rw.drop[mm] = true;
    } else if (match_bwd(&rw, v, &mm)) {
      rw.drop[mm] = true;
    }
  }
  for (ValueId v = 0; v < in->n; v++) {
    if (fu_done(&rw, v)) continue;
    ValueId mm, bias;
    if (match_fwd_alone(&rw, v, &mm, &bias)) build(&rw, v, mm, bias, true);
    else if (match_bwd(&rw, v, &mm)) build(&rw, v, mm, IR_NONE, false);
    else fu_copy(&rw, v);
  }
  return fu_end(&rw);
}
