/* adamw_multi.c: the optimizer as two multi-tensor kernels (llm.c's fused
 * AdamW, apex's multi_tensor_apply), on top of the elementwise partition,
 * and the parameters' bf16 casts (autocast's GEMM operands, hoisted into one
 * block by `sink`) as a third.
 *
 *   kernel "global norm": sumsq of every gradient, the scalar adds that sum
 *     them, and sqrt (the grad_norm output): one launch over all gradients;
 *   kernel "update": clip_coef, adam_sched (scalar prologues every thread
 *     recomputes), and adam_m, adam_v, adamw_param of every parameter, so the
 *     clipping scale is applied inside the update and each parameter, moment
 *     and gradient is read once.
 *   kernel "param casts": the parameters' bf16 casts (see above);
 *   kernel "accumulate": the accumulate graph's `grad_acc += accum_scale *
 *     g` of every parameter (with g's cast to f32 when g is a bf16 GEMM
 *     product read by nothing else), one launch after the backward pass
 *     instead of one per parameter.
 * The graph's nodes are unchanged; only Graph.kernel is recomputed (with
 * fuse_elementwise's rules for every other node). A node joins a group only
 * when each of its inputs is a source, in the group, or older than the
 * group's first node: the partition stays schedulable in first-node order.
 */
#include <string.h>

#include "pass.h"
#include "passes.h"

static bool input_named(const Graph *g, ValueId v, const char *name, bool prefix) {
  const Node *n = &g->nodes[v];
  if (n->op != OP_INPUT) return false;
  const char *s = ir_get_str(n, ATTR_NAME);
  return prefix ? !strncmp(s, name, strlen(name)) : !strcmp(s, name);
}

uint8_t *pass_accumulation_nodes(const Graph *g, Arena *a) {
  uint32_t cap = g->n ? g->n : 1;
  uint8_t *mark = ARENA_ARRAY(a, uint8_t, cap);
  uint32_t *uses = ARENA_ARRAY(a, uint32_t, cap);
  for (ValueId v = 0; v < g->n; v++)
    for (int k = 0; k < g->nodes[v].nin; k++) uses[g->nodes[v].in[k]]++;
  for (uint32_t i = 0; i < g->nout; i++) uses[g->outputs[i].value]++;
  for (uint32_t i = 0; i < g->nout; i++) {
    ValueId sum = g->outputs[i].value;
    const Node *add = &g->nodes[sum];
    if (strncmp(g->outputs[i].name, "grad_acc.", 9) || add->op != OP_ADD || uses[sum] != 1 ||
        !input_named(g, add->in[0], "grad_acc.", true))
      continue;
    ValueId sg = add->in[1];
    const Node *mul = &g->nodes[sg];
    if (mul->op != OP_MUL || uses[sg] != 1 || !input_named(g, mul->in[1], "accum_scale", false)) continue;
    mark[sum] = mark[sg] = 1;
    ValueId x = mul->in[0];
    if (g->nodes[x].op == OP_CAST && g->nodes[x].dtype == DT_F32 && uses[x] == 1) mark[x] = 1;
  }
  return mark;
}

int pass_multi_tensor_group(const Graph *g, ValueId v, const uint32_t *kernel, const uint32_t *group_kernel,
                            const uint32_t *first_of, const uint8_t *accum) {
  const Node *n = &g->nodes[v];
  int grp = 0;
  switch (accum && accum[v] ? OP_COUNT : n->op) {
  case OP_COUNT: grp = 4; break; /* the accumulation (pass_accumulation_nodes) */
  case OP_SUMSQ: grp = 1; break;
  case OP_ADD: /* a scalar partial sum of the global norm */
  case OP_SQRT:
    if (n->shape.rank != 0 || group_kernel[1] == IR_NONE) return 0;
    for (int k = 0; k < n->nin; k++)
      if (kernel[n->in[k]] != group_kernel[1]) return 0;
    return 1;
  case OP_CLIP_COEF:
  case OP_ADAM_SCHED:
  case OP_ADAM_M:
  case OP_ADAM_V:
  case OP_ADAMW_PARAM: grp = 2; break;
  case OP_CAST:
    if (!pass_is_param_cast(g, v)) return 0;
    grp = 3;
    break;
  default: return 0;
  }
  uint32_t K = group_kernel[grp];
  if (K == IR_NONE) return grp; /* v heads the group */
  uint32_t first = first_of[K]; /* the group's first node (a lookup: a scan from 0 per node was quadratic) */
  for (int k = 0; k < n->nin; k++) {
    ValueId q = n->in[k];
    if (kernel[q] != IR_NONE && kernel[q] != K && q >= first) return 0;
  }
  return grp;
}

Graph *pass_adamw_multi(const Graph *in, PassCtx *cx) { return pass_partition_kernels(in, true, cx->diag); }
