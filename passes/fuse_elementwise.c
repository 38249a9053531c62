/* fuse_elementwise.c: the kernel partition (Graph.kernel): which nodes one
 * generated kernel computes together. The graph's nodes are unchanged.
 *
 * Greedy over node order. A node joins the kernel K of one of its inputs when
 *   - it is elementwise (ew classes, same element count as K), or a
 *     reduction over K's values (sum_to, sumsq, mean), which closes K;
 *   - K is open: headed by an elementwise op or a row-wise norm (an
 *     elementwise epilogue on its rows). GEMMs, gathers, permutes and losses
 *     stay alone (GEMM epilogues are fuse_epilogue's business), and so do
 *     reshapes: the memory planner makes a reshape its input's bytes (an
 *     alias, memplan.h), which costs nothing only when it is a kernel of its
 *     own (inside a kernel it would be a second store of the same values);
 *   - every other input is a source, in K, or older than K's first node.
 * A layernorm of a residual sum joins the sum's kernel when that kernel is
 * the add alone, or the add and the cast up of one of its operands
 * (norm_of_sum): the norm's rows are the sum's, and the kernel stays open
 * for its epilogue (the cast to the next GEMM's bf16).
 * The second of a sibling pair (ir_siblings: attention_lse after its
 * attention, layernorm_bgrad after its layernorm_wgrad) joins the first's
 * kernel, one pass writing both, and a layernorm_wgrad right after the norm
 * gradient of the same x and dy (ir_norm_grad_params) joins that one's.
 * The rule on inputs makes the partition schedulable: every edge between kernels
 * goes from a kernel whose first node is older, so running kernels in order of
 * their first node respects all dependencies (tests/unit/test_passes.c checks
 * this). Values read only inside their kernel never reach memory (memplan).
 */
#include "pass.h"
#include "passes.h"

enum { OPEN = 1, CLOSED = 0 };

static bool joins_ew(const Node *n) {
  OpClass c = ir_ops[n->op].cls;
  return c == OC_EW_UNARY || c == OC_EW_BINARY;
}

static bool opens(const Node *n) { return joins_ew(n) || ir_ops[n->op].cls == OC_NORM; }

static bool closes(const Node *n) { return ir_op_is(n->op, OPP_CLOSES); }

/* A layernorm of a same-shape residual sum joins the sum's kernel when that
 * kernel is just the add, or the add after the cast up of one of its
 * operands: one row-wise pass reads the addends once and writes the sum (the
 * residual stream) and the norm (render_cuda: add_norm_group). */
static bool norm_of_sum(const Graph *g, ValueId v, const uint32_t *kernel, const uint32_t *first, const uint32_t *count) {
  const Node *n = &g->nodes[v];
  if (n->op != OP_LAYERNORM) return false;
  ValueId s = n->in[0];
  const Node *a = &g->nodes[s];
  uint32_t K = kernel[s];
  if (a->op != OP_ADD || a->dtype != DT_F32 || K == IR_NONE) return false;
  for (int k = 0; k < 2; k++)
    if (!ir_shape_eq(&g->nodes[a->in[k]].shape, &a->shape)) return false;
  ValueId f = first[K];
  bool just_add = count[K] == 1 && f == s;
  bool cast_add = count[K] == 2 && g->nodes[f].op == OP_CAST && (a->in[0] == f || a->in[1] == f);
  return just_add || cast_add;
}

Graph *pass_partition_kernels(const Graph *in, bool multi_tensor, Diag *d) {
  Graph *g = ir_graph_new_like(in);
  ValueId *map = pass_copy_nodes(g, in, d);
  if (!map) {
    ir_graph_free(g);
    return NULL;
  }
  pass_copy_outputs(g, in, map);
  uint32_t cap = g->n ? g->n : 1, nk = 0;
  uint32_t *kernel = ARENA_ARRAY(g->arena, uint32_t, cap);
  Arena *s = arena_new();
  uint32_t *first = ARENA_ARRAY(s, uint32_t, cap);
  int64_t *numel = ARENA_ARRAY(s, int64_t, cap);
  uint8_t *open = ARENA_ARRAY(s, uint8_t, cap);
  uint32_t *count = ARENA_ARRAY(s, uint32_t, cap); /* nodes per kernel */
  uint32_t group_kernel[PASS_MULTI_TENSOR_GROUPS]; /* multi-tensor kernels, once created */
  for (int i = 0; i < PASS_MULTI_TENSOR_GROUPS; i++) group_kernel[i] = IR_NONE;
  const uint8_t *accum = multi_tensor ? pass_accumulation_nodes(g, s) : NULL;
  for (ValueId v = 0; v < g->n; v++) {
    const Node *n = &g->nodes[v];
    kernel[v] = IR_NONE;
    if (ir_ops[n->op].cls == OC_SOURCE) continue;
    int grp = multi_tensor ? pass_multi_tensor_group(g, v, kernel, group_kernel, first, accum) : 0;
    uint32_t K = IR_NONE;
    if (grp) {
      K = group_kernel[grp];
    } else if (v > 0 && ir_kernel_follows(&g->nodes[v - 1], n)) {
      K = kernel[v - 1]; /* attention_lse, layernorm_bgrad: the second output of their sibling's kernel; layernorm_wgrad:
                            its norm gradient's pass over x and dy */
    } else if (norm_of_sum(g, v, kernel, first, count) && open[kernel[n->in[0]]]) {
      K = kernel[n->in[0]];
      for (int k = 1; k < n->nin && K != IR_NONE; k++) /* the weight and bias: sources, or made before the kernel */
        if (kernel[n->in[k]] != IR_NONE && n->in[k] >= first[K]) K = IR_NONE;
    } else if (joins_ew(n) || closes(n)) {
      int64_t want = closes(n) ? ir_shape_numel(&g->nodes[n->in[0]].shape) : ir_shape_numel(&n->shape);
      for (int k = 0; k < n->nin && K == IR_NONE; k++) {
        uint32_t c = kernel[n->in[k]];
        if (c == IR_NONE || !open[c] || numel[c] != want) continue;
        bool ok = true;
        for (int j = 0; j < n->nin && ok; j++) {
          ValueId q = n->in[j];
          ok = kernel[q] == IR_NONE || kernel[q] == c || q < first[c];
        }
        if (ok) K = c;
      }
    }
    if (K == IR_NONE) { /* a new kernel headed by v */
      K = nk++;
      first[K] = v;
      numel[K] = ir_shape_numel(&n->shape);
      open[K] = !grp && opens(n) && !closes(n) ? OPEN : CLOSED;
      if (grp) group_kernel[grp] = K;
    } else if (closes(n) && !grp) {
      open[K] = CLOSED;
    }
    kernel[v] = K;
    count[K]++;
  }
  arena_free(s);
  g->kernel = kernel;
  g->nkernels = nk;
  return g;
}

Graph *pass_fuse_elementwise(const Graph *in, PassCtx *cx) { return pass_partition_kernels(in, false, cx->diag); }
