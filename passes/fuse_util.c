/* fuse_util.c: the Rewriter (fuse_util.h) the fusion passes build with. */
#include <string.h>

#include "fuse_util.h"

void fu_begin(Rewriter *rw, const Graph *in, PassCtx *cx) {
  memset(rw, 0, sizeof *rw);
  rw->in = in;
  rw->d = cx ? cx->diag : NULL;
  rw->out = ir_graph_new_like(in);
  rw->scratch = arena_new();
  uint32_t n = in->n ? in->n : 1;
  rw->map = ARENA_ARRAY(rw->scratch, ValueId, n);
  rw->drop = ARENA_ARRAY(rw->scratch, bool, n);
  rw->nuse = ARENA_ARRAY(rw->scratch, uint32_t, n);
  rw->ustart = ARENA_ARRAY(rw->scratch, uint32_t, n + 1);
  for (ValueId v = 0; v < in->n; v++) {
    rw->map[v] = IR_NONE;
    for (int k = 0; k < in->nodes[v].nin; k++) rw->nuse[in->nodes[v].in[k]]++;
  }
  uint32_t total = 0;
  for (ValueId v = 0; v < in->n; v++) {
    rw->ustart[v] = total;
    total += rw->nuse[v];
  }
  rw->ustart[in->n] = total;
  rw->users = ARENA_ARRAY(rw->scratch, uint32_t, total ? total : 1);
  uint32_t *fillp = ARENA_ARRAY(rw->scratch, uint32_t, n);
  for (ValueId v = 0; v < in->n; v++)
    for (int k = 0; k < in->nodes[v].nin; k++) {
      ValueId u = in->nodes[v].in[k];
      rw->users[rw->ustart[u] + fillp[u]++] = v;
    }
  for (uint32_t o = 0; o < in->nout; o++) rw->nuse[in->outputs[o].value]++;
}

bool fu_is_output(const Rewriter *rw, ValueId v) {
  for (uint32_t o = 0; o < rw->in->nout; o++)
    if (rw->in->outputs[o].value == v) return true;
  return false;
}

ValueId fu_only_user(const Rewriter *rw, ValueId v) {
  if (rw->nuse[v] != 1 || rw->ustart[v + 1] - rw->ustart[v] != 1) return IR_NONE;
  return rw->users[rw->ustart[v]];
}

bool fu_is_one(const Rewriter *rw, ValueId v) {
  const Node *n = fu_node(rw, v);
  return n->op == OP_FILL && ir_get_float(n, ATTR_VALUE) == 1.0;
}

static SrcLoc out_loc(Rewriter *rw, SrcLoc loc) {
  if (loc.file && loc.file != rw->last_src) {
    rw->last_src = loc.file;
    rw->last_dst = arena_strdup(rw->out->arena, loc.file);
  }
  if (loc.file) loc.file = rw->last_dst;
  return loc;
}

ValueId fu_emit(Rewriter *rw, OpKind op, const ValueId *in, int nin, const Attr *attrs, int nattr, SrcLoc loc) {
  for (int k = 0; k < nin; k++)
    if (in[k] == IR_NONE) rw->failed = true;
  if (rw->failed) return IR_NONE;
  ValueId id = ir_add(rw->out, op, in, nin, attrs, nattr, out_loc(rw, loc), rw->d);
  if (id == IR_NONE) rw->failed = true;
  return id;
}

ValueId fu_get(Rewriter *rw, ValueId v) {
  if (rw->map[v] != IR_NONE) return rw->map[v];
  const Node *n = fu_node(rw, v);
  IR_ASSERT(!rw->drop[v] && ir_ops[n->op].cls == OC_SOURCE); /* a computed node is read before it is built */
  rw->map[v] = ir_add_source(rw->out, n->op, n->dtype, &n->shape, n->attr, n->nattr, out_loc(rw, n->loc));
  return rw->map[v];
}

ValueId fu_copy(Rewriter *rw, ValueId v) {
  const Node *n = fu_node(rw, v);
  if (ir_ops[n->op].cls == OC_SOURCE) return fu_get(rw, v);
  ValueId in[IR_MAX_IN];
  for (int k = 0; k < n->nin; k++) in[k] = fu_get(rw, n->in[k]);
  rw->map[v] = fu_emit(rw, n->op, in, n->nin, n->attr, n->nattr, n->loc);
  return rw->map[v];
}

Graph *fu_end(Rewriter *rw) {
  Graph *g = rw->out;
  for (uint32_t o = 0; !rw->failed && o < rw->in->nout; o++) {
    ValueId v = rw->in->outputs[o].value;
    IR_ASSERT(rw->map[v] != IR_NONE);
    ir_add_output(g, rw->in->outputs[o].name, rw->map[v]);
  }
  arena_free(rw->scratch);
  rw->scratch = NULL;
  if (rw->failed) {
    ir_graph_free(g);
    return NULL;
  }
  return g;
}
