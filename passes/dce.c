/* dce.c: dead code elimination, and `cleanup` (CSE then DCE) for after the
 * fusions.
 *
 * Rewrites: drops every computed node that no graph output depends on (a
 * backward value autodiff built but nothing reads, a node a fold or fusion
 * bypassed). Legal because ops have no side effects: a value no output
 * reaches cannot change an output. Input and param nodes always stay, even
 * unread: they are the step's external interface (the runtime binds buffers
 * to them by name).
 */
#include "pass.h"
#include "passes.h"

Graph *pass_dce(const Graph *in, PassCtx *cx) {
  Arena *scratch = arena_new();
  bool *live = ARENA_ARRAY(scratch, bool, in->n ? in->n : 1);
  for (uint32_t i = 0; i < in->nout; i++) live[in->outputs[i].value] = true;
  for (ValueId v = in->n; v-- > 0;) { /* reverse topological order: users before inputs */
    const Node *n = &in->nodes[v];
    if (n->op == OP_INPUT || n->op == OP_PARAM) live[v] = true;
    if (!live[v]) continue;
    for (int k = 0; k < n->nin; k++) live[n->in[k]] = true;
  }
  Graph *g = ir_graph_new_like(in);
  ValueId *map = ARENA_ARRAY(scratch, ValueId, in->n ? in->n : 1);
  for (ValueId v = 0; v < in->n; v++) {
    map[v] = IR_NONE;
    if (!live[v]) continue;
    const Node *n = &in->nodes[v];
    ValueId ins[IR_MAX_IN];
    for (int k = 0; k < n->nin; k++) ins[k] = map[n->in[k]];
    map[v] = pass_emit(g, n, ins, cx->diag);
    if (map[v] == IR_NONE) {
      ir_graph_free(g);
      arena_free(scratch);
      return NULL;
    }
  }
  pass_copy_outputs(g, in, map);
  arena_free(scratch);
  return g;
}

Graph *pass_cleanup(const Graph *in, PassCtx *cx) {
  Graph *c = pass_cse(in, cx);
  if (!c) return NULL;
  Graph *g = pass_dce(c, cx);
  ir_graph_free(c);
  return g;
}
