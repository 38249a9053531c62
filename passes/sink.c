/* sink.c: the `sink` pass, a schedule change: a node moves down to just
 * before its first consumer when that shortens live ranges.
 *
 * The graph's node order is the schedule (the memory planner plans over it).
 * Autodiff emits a gradient where its rule runs, which can be far from where
 * it is used: the tied decoder's weight gradient (and its f32 cast,
 * [vocab x hidden], 100 MB at bert_crammed's size) is made at the start of
 * the backward and read at its end by the embedding gradient's add, so it is
 * live at the backward's start, where every saved activation is too: the
 * arena's peak. Moving v from position p to just before its first consumer c
 * frees v's bytes over [p, c) and keeps alive until c every input whose last
 * read was v; v moves when what it frees is larger than what it holds
 * (bytes of the values, sources and graph outputs counting nothing: they are
 * not in the arena). Nodes are taken last to first, so a chain (the gradient
 * GEMM, its cast) can follow its tail down.
 *
 * Not moved: sources, outputs, nodes whose first consumer is an
 * optimizer op (the global norm / AdamW groups of adamw_multi: their members
 * are one multi-tensor kernel, which needs every gradient made before the
 * first of them), gradients read by the accumulate graph's `grad_acc += ...`
 * nodes (adamw_multi's accumulation kernel, for the same reason), and an attention with its adjacent attention_lse sibling
 * (ir_siblings: one kernel writing both).
 *
 * Hoisted instead: the casts of parameters to bf16 (autocast's GEMM
 * operands) move up to just before the first node reading one of them, one
 * block (their parameters, sources, moved up with them where declared
 * later), where adamw_multi makes them one multi-tensor launch
 * (bert_crammed: 64 launches per microbatch -> 1). Their results are GEMM
 * operands the backward reads again, so they are live to the backward's
 * start, the arena's peak, either way.
 *
 * Reshapes move up instead, to just after their input: the memory planner
 * makes one an alias of its input's bytes, so where it sits frees nothing,
 * and one the backward built late (a GEMM operand's [B*S, H] view) would
 * otherwise sit between the nodes of a kernel and split it.
 *
 * Nor the fused decoder's gradients (xent_linear_grad): they stay next to
 * their loss, so a backend computes the loss, dx and dW of one chunk from one
 * logits GEMM (moving dW to the end of the backward would save its buffer's
 * bytes over the backward but compute the [rows x vocab] logits twice).
 *
 * Legal: only the order changes, and every node still comes after its inputs
 * (v stays before each consumer; nodes move only later, past nodes that do not
 * read them).
 */
#include <stdlib.h>

#include "pass.h"
#include "passes.h"

static int64_t node_bytes(const Graph *g, ValueId v) {
  const Node *n = &g->nodes[v];
  if (ir_ops[n->op].cls == OC_SOURCE) return 0;
  return ir_shape_numel(&n->shape) * (int64_t)ir_dtype_size(n->dtype);
}

/* cast %p {to=bf16} of a parameter p */
bool pass_is_param_cast(const Graph *g, ValueId v) {
  const Node *n = &g->nodes[v];
  return n->op == OP_CAST && n->dtype == DT_BF16 && g->nodes[n->in[0]].op == OP_PARAM;
}

static bool optimizer_op(OpKind op) {
  return op == OP_SUMSQ || op == OP_CLIP_COEF || op == OP_ADAM_SCHED || op == OP_ADAM_M || op == OP_ADAM_V ||
         op == OP_ADAMW_PARAM;
}

typedef struct Order {
  int64_t key;
  ValueId v;
} Order;

static int by_key(const void *a, const void *b) {
  const Order *x = a, *y = b;
  if (x->key != y->key) return x->key < y->key ? -1 : 1;
  return x->v < y->v ? -1 : x->v > y->v;
}

Graph *pass_sink(const Graph *in, PassCtx *cx) {
  uint32_t n = in->n, cap = n ? n : 1;
  Arena *s = arena_new();
  int64_t *key = ARENA_ARRAY(s, int64_t, cap);
  bool *is_out = ARENA_ARRAY(s, bool, cap);
  uint32_t *nuse = ARENA_ARRAY(s, uint32_t, cap), *ustart = ARENA_ARRAY(s, uint32_t, (size_t)cap + 1);
  for (uint32_t i = 0; i < in->nout; i++) is_out[in->outputs[i].value] = true;
  for (ValueId v = 0; v < n; v++) {
    key[v] = (int64_t)v << 20; /* room for 2^20 nodes sunk before one consumer */
    for (int k = 0; k < in->nodes[v].nin; k++) nuse[in->nodes[v].in[k]]++;
  }
  for (ValueId v = 0; v < n; v++) ustart[v + 1] = ustart[v] + nuse[v];
  ValueId *users = ARENA_ARRAY(s, ValueId, (size_t)ustart[n] + 1);
  uint32_t *fill = ARENA_ARRAY(s, uint32_t, cap);
  for (ValueId v = 0; v < n; v++)
    for (int k = 0; k < in->nodes[v].nin; k++) {
      ValueId x = in->nodes[v].in[k];
      users[ustart[x] + fill[x]++] = v;
    }
  /* the parameter casts' block: just before the first node that reads one of them, the
   * parameters they read moved up there too when declared later (sources: any position
   * before their first reader will do) */
  int64_t first_read = INT64_MAX;
  for (ValueId v = 0; v < n; v++)
    if (pass_is_param_cast(in, v) && !is_out[v])
      for (uint32_t u = ustart[v]; u < ustart[v + 1]; u++)
        if (key[users[u]] < first_read) first_read = key[users[u]];
  bool *hoisted = ARENA_ARRAY(s, bool, cap);
  const uint8_t *accum = pass_accumulation_nodes(in, s);
  for (ValueId v = 0; first_read != INT64_MAX && v < n; v++) {
    if (!pass_is_param_cast(in, v) || is_out[v]) continue;
    ValueId p = in->nodes[v].in[0];
    if (key[p] > first_read - 4) key[p] = first_read - 4;
    key[v] = first_read - 3;
    hoisted[v] = true;
  }
  for (ValueId v = n; v-- > 0;) {
    const Node *nd = &in->nodes[v];
    if (hoisted[v]) continue;
    if (ir_ops[nd->op].cls == OC_SOURCE || is_out[v] || !nuse[v] || nd->op == OP_XENT_LINEAR_GRAD) continue;
    if (nd->op == OP_RESHAPE) continue; /* placed below */
    if ((v > 0 && ir_kernel_follows(&in->nodes[v - 1], nd)) || (v + 1 < n && ir_kernel_follows(nd, &in->nodes[v + 1])))
      continue; /* siblings, a norm gradient and its parameter gradients: one kernel, kept adjacent */
    int64_t first = INT64_MAX;
    bool to_optimizer = false;
    for (uint32_t u = ustart[v]; u < ustart[v + 1]; u++) {
      if (key[users[u]] < first) first = key[users[u]];
      to_optimizer |= optimizer_op(in->nodes[users[u]].op) || (accum[users[u]] && !accum[v]);
    }
    if (to_optimizer || first - key[v] <= (1 << 20)) continue; /* already next to its first consumer */
    int64_t cost = 0;
    for (int k = 0; k < nd->nin; k++) {
      ValueId x = nd->in[k];
      bool seen = false; /* an input read twice counts once */
      for (int j = 0; j < k; j++) seen |= nd->in[j] == x;
      if (seen || is_out[x]) continue;
      int64_t last = 0; /* x's last read other than v's */
      for (uint32_t u = ustart[x]; u < ustart[x + 1]; u++)
        if (users[u] != v && key[users[u]] > last) last = key[users[u]];
      if (last < first) cost += node_bytes(in, x);
    }
    if (node_bytes(in, v) > cost) key[v] = first - 1;
  }
  /* reshapes right after their input (before every consumer): the planner's aliases cost nothing anywhere,
   * and one the backward built late would otherwise split the kernel it lands in */
  for (ValueId v = 0; v < n; v++) {
    const Node *nd = &in->nodes[v];
    if (nd->op != OP_RESHAPE || is_out[v] || ir_ops[in->nodes[nd->in[0]].op].cls == OC_SOURCE) continue;
    ValueId base = nd->in[0];
    while (base + 1 < n && ir_kernel_follows(&in->nodes[base], &in->nodes[base + 1])) base++; /* not inside such a group */
    int64_t at = key[base] + 1;
    bool fits = at < key[v];
    for (uint32_t u = ustart[v]; u < ustart[v + 1]; u++) fits = fits && key[users[u]] > at;
    if (fits) key[v] = at;
  }
  Order *ord = ARENA_ARRAY(s, Order, cap);
  for (ValueId v = 0; v < n; v++) ord[v] = (Order){ key[v], v };
  qsort(ord, n, sizeof *ord, by_key);
  Graph *g = ir_graph_new(in->name);
  ValueId *map = ARENA_ARRAY(s, ValueId, cap);
  for (uint32_t i = 0; i < n; i++) {
    const Node *nd = &in->nodes[ord[i].v];
    ValueId ins[IR_MAX_IN];
    for (int k = 0; k < nd->nin; k++) ins[k] = map[nd->in[k]];
    map[ord[i].v] = pass_emit(g, nd, ins, cx->diag);
    if (map[ord[i].v] == IR_NONE) {
      ir_graph_free(g);
      arena_free(s);
      return NULL;
    }
  }
  pass_copy_outputs(g, in, map);
  arena_free(s);
  return g;
}
