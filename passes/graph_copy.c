/* graph_copy.c: pass_copy_nodes, the first step of every pass that extends
 * a graph (autodiff, the optimizer): the input's nodes re-built into the
 * output graph. Computed nodes go through ir_add, so the copy is re-typed by
 * the shape rules rather than trusted. SrcLoc file names are copied into
 * dst's arena too, so the copy outlives the source graph (a driver frees
 * each pass's input). */
#include <string.h>

#include "passes.h"

ValueId *pass_copy_nodes(Graph *dst, const Graph *src, Diag *d) {
  ValueId *map = ARENA_ARRAY(dst->arena, ValueId, src->n ? src->n : 1);
  const char *last_src = NULL, *last_dst = NULL; /* nodes come in long runs from one file */
  for (ValueId v = 0; v < src->n; v++) {
    const Node *n = &src->nodes[v];
    SrcLoc loc = n->loc;
    if (loc.file && loc.file != last_src) {
      last_src = loc.file;
      last_dst = arena_strdup(dst->arena, loc.file);
    }
    if (loc.file) loc.file = last_dst;
    if (ir_ops[n->op].cls == OC_SOURCE) {
      map[v] = ir_add_source(dst, n->op, n->dtype, &n->shape, n->attr, n->nattr, loc);
      continue;
    }
    ValueId in[IR_MAX_IN];
    for (int k = 0; k < n->nin; k++) {
      IR_ASSERT(n->in[k] < v); /* topological order */
      in[k] = map[n->in[k]];
    }
    map[v] = ir_add(dst, n->op, in, n->nin, n->attr, n->nattr, loc, d);
    if (map[v] == IR_NONE) return NULL;
  }
  return map;
}
