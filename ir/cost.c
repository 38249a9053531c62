/* cost.c: per-node cost facts for `cramc --summary` and the scheduler.
 *
 * Only GEMMs (and the fused attention ops, as the GEMMs they replace) are
 * counted: they are >95% of a BERT step's FLOPs, and
 * "model FLOPs" (one multiply-add = 2 FLOPs, no recomputation) is the number
 * the Cramming paper's budget reasoning uses. Every other op reports 0 until
 * the fusion passes need memory-traffic estimates.
 */
#include "ir_impl.h"

/* Fused attention counts the GEMMs it stands for, B*heads*S*S*dh multiply-adds
 * each: QK^T and PV forward; dP = dO V^T plus one per gradient part (dQ, dK,
 * dV) backward. attention_lse counts 0: its sibling's kernel computes it. */
static int64_t attention_flops(const Graph *g, const Node *n) {
  IrAttnGeom geo;
  char msg[IR_MSG_MAX];
  if (n->op == OP_ATTENTION_LSE || !ir_attention_geom(g, n, &geo, msg, sizeof msg)) return 0;
  int64_t gemms = n->op == OP_ATTENTION ? 2 : 1 + __builtin_popcountll((unsigned long long)ir_get_int(n, ATTR_WRT));
  int64_t f = 2 * gemms;
  int64_t dims[5] = { geo.B, geo.heads, geo.S, geo.S, geo.dh };
  for (int i = 0; i < 5; i++)
    if (__builtin_mul_overflow(f, dims[i], &f)) return INT64_MAX;
  return f;
}

int64_t ir_node_flops(const Graph *g, const Node *n) {
  if (ir_ops[n->op].cls == OC_ATTENTION) return attention_flops(g, n);
  if (ir_ops[n->op].cls != OC_GEMM) return 0;
  /* The result is [...,M,N]; each of its elements is a K-long dot product. */
  /* the GEMM's A operand: the act-grad epilogue ops read the pre-activation first */
  const Shape *a = &g->nodes[n->in[n->op == OP_MATMUL_ACT_GRAD || n->op == OP_MATMUL_GLU_GRAD ? 1 : 0]].shape;
  int64_t k = ir_get_int(n, ATTR_TRANS_A) ? a->dim[a->rank - 2] : a->dim[a->rank - 1];
  int64_t out = ir_shape_numel(&n->shape), f;
  /* numel <= 2^40 but K can be as large again: saturate rather than wrap. */
  if (out < 0 || __builtin_mul_overflow(out, k, &f) || __builtin_mul_overflow(f, (int64_t)2, &f)) return INT64_MAX;
  return f;
}
