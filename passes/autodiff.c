/* autodiff.c: reverse-mode automatic differentiation (pass_autodiff).
 *
 * The forward graph is copied unchanged (same ids and SrcLocs), the loss is
 * seeded with 1, and forward nodes are visited in reverse order: each one
 * that leads to the loss and depends on a param calls its op's rule from the
 * grad column of ops.def (passes/grad_rules.c) with its summed output
 * gradient. A value read several times (the tied embedding matrix, a
 * residual stream) receives one add per extra contribution, in visiting
 * order, so the graph is deterministic.
 */
#include <string.h>

#include "grad.h"

static const GradFn grad_rule[OP_COUNT] = {
#define NONE                                                               NULL
#define OP(id, name, min_in, max_in, cls, attrs, shape, interp, grad, ...) [OP_##id] = grad,
#include "ops.def"
#undef OP
#undef NONE
};

bool pass_has_grad_rule(OpKind op) { return (unsigned)op < OP_COUNT && grad_rule[op] != NULL; }

static bool is_float(DType t) { return t == DT_F32 || t == DT_BF16; }

ValueId gb(GradCtx *cx, OpKind op, const ValueId *in, int nin, const Attr *attrs, int nattr) {
  for (int k = 0; k < nin; k++)
    if (in[k] == IR_NONE) cx->failed = true; /* already reported */
  if (cx->failed) return IR_NONE;
  ValueId r = ir_add(cx->g, op, in, nin, attrs, nattr, cx->loc, cx->d);
  if (r == IR_NONE) cx->failed = true;
  return r;
}

bool grad_wants(const GradCtx *cx, ValueId v, int k) { return cx->needs[cx->fwd->nodes[v].in[k]]; }
ValueId grad_in(const GradCtx *cx, ValueId v, int k) { return cx->map[cx->fwd->nodes[v].in[k]]; }
ValueId grad_out(const GradCtx *cx, ValueId v) { return cx->map[v]; }
const Node *grad_node(const GradCtx *cx, ValueId id) { return &cx->g->nodes[id]; }

void grad_accum(GradCtx *cx, ValueId v, int k, ValueId dx) {
  if (!grad_wants(cx, v, k) || dx == IR_NONE || cx->failed) return;
  ValueId u = cx->fwd->nodes[v].in[k];
  const Node *want = &cx->fwd->nodes[u], *got = grad_node(cx, dx);
  IR_ASSERT(want->dtype == got->dtype && ir_shape_eq(&want->shape, &got->shape)); /* a rule built a wrong type */
  cx->grad[u] = cx->grad[u] == IR_NONE ? dx : gb(cx, OP_ADD, (ValueId[]){ cx->grad[u], dx }, 2, NULL, 0);
}

/* needs[v]: v is a float value on a path from a param to the loss. */
static bool *mark_needs(const Graph *f, ValueId loss, Arena *a) {
  bool *from_param = ARENA_ARRAY(a, bool, f->n), *to_loss = ARENA_ARRAY(a, bool, f->n);
  for (ValueId v = 0; v < f->n; v++) {
    const Node *n = &f->nodes[v];
    from_param[v] = n->op == OP_PARAM;
    for (int k = 0; k < n->nin; k++) from_param[v] |= from_param[n->in[k]];
    from_param[v] &= is_float(n->dtype);
  }
  to_loss[loss] = true;
  for (ValueId v = loss + 1; v-- > 0;)
    if (to_loss[v])
      for (int k = 0; k < f->nodes[v].nin; k++) to_loss[f->nodes[v].in[k]] = true;
  for (ValueId v = 0; v < f->n; v++) to_loss[v] &= from_param[v];
  return to_loss;
}

static ValueId fill(Graph *g, DType dt, const Shape *s, double value, SrcLoc loc) {
  Attr a = ir_attr_float(ATTR_VALUE, value);
  return ir_add_source(g, OP_FILL, dt, s, &a, 1, loc);
}

Graph *pass_autodiff(const Graph *fwd, Diag *d) {
  ValueId loss = IR_NONE;
  for (uint32_t i = 0; i < fwd->nout; i++)
    if (strcmp(fwd->outputs[i].name, "loss") == 0) loss = fwd->outputs[i].value;
  SrcLoc none = { 0 };
  if (loss == IR_NONE) {
    diag_error(d, none, "autodiff: graph '%s' has no output named 'loss'", fwd->name);
    return NULL;
  }
  const Node *ln = &fwd->nodes[loss];
  if (ln->dtype != DT_F32 || ln->shape.rank != 0) {
    diag_error(d, ln->loc, "autodiff: the loss must be an f32 scalar, got %s", ir_dtype_name(ln->dtype));
    return NULL;
  }

  Graph *g = ir_graph_new_like(fwd);
  GradCtx cx = { .g = g, .fwd = fwd, .d = d };
  ValueId *map = pass_copy_nodes(g, fwd, d);
  if (!map) goto fail;
  cx.map = map;
  cx.needs = mark_needs(fwd, loss, g->arena);
  cx.grad = ARENA_ARRAY(g->arena, ValueId, fwd->n ? fwd->n : 1);
  for (ValueId v = 0; v < fwd->n; v++) cx.grad[v] = IR_NONE;

  if (cx.needs[loss]) cx.grad[loss] = fill(g, DT_F32, &ln->shape, 1.0, g->nodes[map[loss]].loc);
  for (ValueId v = fwd->n; v-- > 0 && !cx.failed;) {
    const Node *n = &fwd->nodes[v];
    if (!cx.needs[v] || cx.grad[v] == IR_NONE || n->op == OP_PARAM) continue;
    if (!grad_rule[n->op]) {
      diag_error(d, n->loc, "autodiff: op '%s' has no gradient rule", ir_ops[n->op].name);
      goto fail;
    }
    cx.loc = g->nodes[map[v]].loc; /* the copy's: its file name lives in g */
    grad_rule[n->op](&cx, v, cx.grad[v]);
  }
  if (cx.failed) goto fail;

  ir_add_output(g, "loss", map[loss]);
  for (ValueId v = 0; v < fwd->n; v++) {
    const Node *n = &fwd->nodes[v];
    if (n->op != OP_PARAM) continue;
    ValueId gv = cx.grad[v] != IR_NONE ? cx.grad[v] : fill(g, n->dtype, &n->shape, 0.0, g->nodes[map[v]].loc);
    ir_add_output(g, arena_printf(g->arena, "grad.%s", ir_get_str(n, ATTR_NAME)), gv);
  }
  for (uint32_t i = 0; i < fwd->nout; i++)
    if (strcmp(fwd->outputs[i].name, "loss") != 0) ir_add_output(g, fwd->outputs[i].name, map[fwd->outputs[i].value]);
  return g;
fail:
  ir_graph_free(g);
  return NULL;
}
