/* widen_casts.c: the `widen_casts` pass. Autocast's backward hands each
 * bf16 GEMM product to the norm gradients through a cast up to f32:
 *   %g  = matmul ...                             : bf16[B,S,H]
 *   %gf = cast %g {to="f32"}                     : f32[B,S,H]
 *   %dx = layernorm_grad_add %x, %w, %gf, %dres  : f32[B,S,H]
 *   %dw = layernorm_wgrad %x, %gf                : f32[H]
 * The cast is exact (every bf16 value is an f32), and the kernels of ops
 * flagged WIDENS in ops.def load each float operand as f32 whatever its
 * storage. So a consumer of such an op may read %g itself, when its shape
 * rule accepts the bf16 operand and gives the same result type: the same
 * values, one launch and an f32 copy of the tensor fewer (written once, read
 * by every consumer) and half the bytes on each consumer's read. A cast
 * left with no reader is dropped by the cleanup that follows.
 */
#include "fuse_util.h"

/* x when v is `cast x {to=f32}` of a bf16 x, else IR_NONE */
static ValueId widened(const Rewriter *rw, ValueId v) {
  const Node *n = fu_node(rw, v);
  if (n->op != OP_CAST || n->dtype != DT_F32 || fu_node(rw, n->in[0])->dtype != DT_BF16) return IR_NONE;
  return n->in[0];
}

/* v's copy reading the bf16 sources of its widening casts where its shape rule allows; false if none applies */
static bool emit_widened(Rewriter *rw, ValueId v) {
  const Node *n = fu_node(rw, v);
  if (!ir_op_is(n->op, OPP_WIDENS)) return false;
  Node t = *n; /* the copy's inputs: out ids */
  bool any = false;
  for (int k = 0; k < n->nin; k++) t.in[k] = fu_get(rw, n->in[k]);
  for (int k = 0; k < n->nin; k++) {
    ValueId x = widened(rw, n->in[k]);
    if (x == IR_NONE) continue;
    ValueId keep = t.in[k];
    t.in[k] = fu_get(rw, x);
    DType dt;
    Shape sh;
    char msg[160];
    if (ir_ops[n->op].shape(rw->out, &t, &dt, &sh, msg, sizeof msg) && dt == n->dtype && ir_shape_eq(&sh, &n->shape)) any = true;
    else t.in[k] = keep; /* the rule wants f32 there */
  }
  if (!any) return false;
  Attr a[IR_MAX_ATTRS];
  rw->map[v] = fu_emit(rw, n->op, t.in, n->nin, a, fu_attrs(n, a), n->loc);
  return true;
}

Graph *pass_widen_casts(const Graph *in, PassCtx *cx) {
  Rewriter rw;
  fu_begin(&rw, in, cx);
  for (ValueId v = 0; v < in->n; v++)
    if (!fu_done(&rw, v) && !emit_widened(&rw, v)) fu_copy(&rw, v);
  return fu_end(&rw);
}
