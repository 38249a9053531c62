/* adamw.c: the optimizer pass. Turns the autodiff graph into the train-step
 * graph(s): global-norm gradient clipping (torch clip_grad_norm_) and
 * decoupled AdamW (reference/crammed_torch.py's AdamW = torch.optim.AdamW),
 * appended to the graph so the compiled unit is the whole step. Gradient
 * accumulation is split into two graphs (accumulate, update) so the runtime
 * can change the number of microbatches without recompiling.
 * Inputs and outputs of each graph: docs/train-step.md. */
#include <stdio.h>
#include <string.h>

#include "passes.h"

AdamWOptions pass_adamw_defaults(void) {
  AdamWOptions o = { .beta1 = 0.9,
                     .beta2 = 0.98,
                     .eps = 1e-12,
                     .weight_decay = 0.01,
                     .weight_decay_other = 0,
                     .max_norm = 0.5,
                     .accum = 1,
                     .emit_grads = false };
  return o;
}

void pass_adamw_hyper(const AdamWOptions *o, double h[IR_ADAM_HYPER]) {
  h[IR_HYP_BETA1] = o->beta1;
  h[IR_HYP_BETA2] = o->beta2;
  h[IR_HYP_EPS] = o->eps;
  h[IR_HYP_WD] = o->weight_decay;
  h[IR_HYP_WD_OTHER] = o->weight_decay_other;
  h[IR_HYP_MAX_NORM] = o->max_norm;
}

bool pass_adamw_check(const AdamWOptions *o, Diag *d) {
  SrcLoc none = { 0 };
  if (!(o->beta1 >= 0 && o->beta1 < 1) || !(o->beta2 >= 0 && o->beta2 < 1)) {
    diag_error(d, none, "adamw: betas must lie in [0, 1), got (%g, %g)", o->beta1, o->beta2);
    return false;
  }
  if (!(o->eps >= 0) || !(o->weight_decay >= 0) || !(o->weight_decay_other >= 0) || o->max_norm != o->max_norm) {
    diag_error(d, none, "adamw: eps and weight_decay must be >= 0 and max_norm a number");
    return false;
  }
  if (o->accum < 1) {
    diag_error(d, none, "adamw: accumulation steps must be >= 1, got %d", o->accum);
    return false;
  }
  return true;
}

static const char *pname(const Graph *g, ValueId p) { return ir_get_str(ir_node(g, p), ATTR_NAME); }

static const char *cat(Graph *g, const char *prefix, const char *name) {
  size_t a = strlen(prefix), b = strlen(name);
  char *s = arena_alloc(g->arena, a + b + 1);
  memcpy(s, prefix, a);
  memcpy(s + a, name, b + 1);
  return s;
}

static ValueId f32_input(Graph *g, const char *name, const Shape *s) {
  Attr a = ir_attr_str(ATTR_NAME, name);
  return ir_add_source(g, OP_INPUT, DT_F32, s, &a, 1, (SrcLoc){ 0 });
}

static ValueId find_output(const Graph *g, const char *name) {
  for (uint32_t i = 0; i < g->nout; i++)
    if (!strcmp(g->outputs[i].name, name)) return g->outputs[i].value;
  return IR_NONE;
}

/* The params of g in graph order, and (when want_grads) the node of each
 * "grad.<p>" output, both mapped through map (src -> dst ids). */
static int collect(Graph *dst, const Graph *src, const ValueId *map, ValueId *params, ValueId *grads, Diag *d) {
  int n = 0;
  for (ValueId v = 0; v < src->n; v++) {
    if (src->nodes[v].op != OP_PARAM) continue;
    params[n] = map[v];
    if (grads) {
      ValueId gv = find_output(src, cat(dst, "grad.", pname(src, v)));
      if (gv == IR_NONE) {
        diag_error(d, (SrcLoc){ 0 }, "adamw: the graph has no output 'grad.%s' (run autodiff first)", pname(src, v));
        return -1;
      }
      grads[n] = map[gv];
    }
    n++;
  }
  return n;
}

/* Appends clip + AdamW for params[i] with gradients grads[i]; inputs
 * adam_m.<p>, adam_v.<p>, step, lr, hyper; outputs grad_norm, param.<p>,
 * adam_m.<p>, adam_v.<p>. Every hyper-parameter is read from `hyper` at run
 * time, so one artifact serves any betas / eps / decay / clip. */
static bool append_update(Graph *g, const ValueId *params, const ValueId *grads, int n, Diag *d) {
  SrcLoc L = { 0 };
  Shape scalar = { .rank = 0 };
  ValueId *m_in = ARENA_ARRAY(g->arena, ValueId, n ? n : 1), *v_in = ARENA_ARRAY(g->arena, ValueId, n ? n : 1);
  for (int i = 0; i < n; i++) {
    const Node *p = ir_node(g, params[i]);
    Shape s = p->shape;
    const char *nm = ir_get_str(p, ATTR_NAME);
    m_in[i] = f32_input(g, cat(g, "adam_m.", nm), &s);
    v_in[i] = f32_input(g, cat(g, "adam_v.", nm), &s);
  }
  Shape hs = { .rank = 1, .dim = { IR_ADAM_HYPER } };
  ValueId step = f32_input(g, "step", &scalar), lr = f32_input(g, "lr", &scalar), hyper = f32_input(g, "hyper", &hs);
  /* global L2 norm over every gradient entry */
  ValueId total = IR_NONE;
  for (int i = 0; i < n; i++) {
    ValueId sq = ir_add(g, OP_SUMSQ, &grads[i], 1, NULL, 0, L, d);
    if (sq == IR_NONE) return false;
    if (total == IR_NONE) total = sq;
    else if ((total = ir_add(g, OP_ADD, (ValueId[]){ total, sq }, 2, NULL, 0, L, d)) == IR_NONE) return false;
  }
  if (total == IR_NONE) {
    Attr z = ir_attr_float(ATTR_VALUE, 0.0);
    total = ir_add_source(g, OP_FILL, DT_F32, &scalar, &z, 1, L);
  }
  ValueId norm = ir_add(g, OP_SQRT, &total, 1, NULL, 0, L, d);
  ValueId coef = ir_add(g, OP_CLIP_COEF, (ValueId[]){ total, hyper }, 2, NULL, 0, L, d);
  ValueId sched = ir_add(g, OP_ADAM_SCHED, (ValueId[]){ step, lr, hyper }, 3, NULL, 0, L, d);
  if (norm == IR_NONE || coef == IR_NONE || sched == IR_NONE) return false;
  ir_add_output(g, "grad_norm", norm);
  ValueId *np = ARENA_ARRAY(g->arena, ValueId, 3 * (n ? n : 1));
  for (int i = 0; i < n; i++) {
    const Node *p = ir_node(g, params[i]);
    ValueId m = ir_add(g, OP_ADAM_M, (ValueId[]){ m_in[i], grads[i], coef, sched }, 4, NULL, 0, L, d);
    ValueId v = ir_add(g, OP_ADAM_V, (ValueId[]){ v_in[i], grads[i], coef, sched }, 4, NULL, 0, L, d);
    if (m == IR_NONE || v == IR_NONE) return false;
    Attr dec = ir_attr_int(ATTR_DECAY, ir_get_int(p, ATTR_DECAY) ? 1 : 0);
    ValueId up = ir_add(g, OP_ADAMW_PARAM, (ValueId[]){ params[i], m, v, sched }, 4, &dec, 1, L, d);
    if (up == IR_NONE) return false;
    np[3 * i] = up;
    np[3 * i + 1] = m;
    np[3 * i + 2] = v;
  }
  for (int i = 0; i < n; i++) ir_add_output(g, cat(g, "param.", pname(g, params[i])), np[3 * i]);
  for (int i = 0; i < n; i++) ir_add_output(g, cat(g, "adam_m.", pname(g, params[i])), np[3 * i + 1]);
  for (int i = 0; i < n; i++) ir_add_output(g, cat(g, "adam_v.", pname(g, params[i])), np[3 * i + 2]);
  return true;
}

static int count_params(const Graph *g) {
  int n = 0;
  for (ValueId v = 0; v < g->n; v++) n += g->nodes[v].op == OP_PARAM;
  return n;
}

Graph *pass_train_step(const Graph *ad, const AdamWOptions *o, Diag *d) {
  if (!pass_adamw_check(o, d)) return NULL;
  ValueId loss_src = find_output(ad, "loss");
  if (loss_src == IR_NONE) {
    diag_error(d, (SrcLoc){ 0 }, "adamw: the graph has no output 'loss'");
    return NULL;
  }
  Graph *g = ir_graph_new_like(ad);
  ValueId *map = pass_copy_nodes(g, ad, d);
  int np = count_params(ad);
  ValueId *params = ARENA_ARRAY(g->arena, ValueId, np ? np : 1), *grads = ARENA_ARRAY(g->arena, ValueId, np ? np : 1);
  if (!map || collect(g, ad, map, params, grads, d) < 0) goto fail;
  ir_add_output(g, "loss", map[loss_src]);
  if (!append_update(g, params, grads, np, d)) goto fail;
  if (o->emit_grads)
    for (int i = 0; i < np; i++) ir_add_output(g, cat(g, "grad.", pname(g, params[i])), grads[i]);
  return g;
fail:
  ir_graph_free(g);
  return NULL;
}

Graph *pass_accumulate(const Graph *ad, Diag *d) {
  ValueId loss_src = find_output(ad, "loss");
  if (loss_src == IR_NONE) {
    diag_error(d, (SrcLoc){ 0 }, "adamw: the graph has no output 'loss'");
    return NULL;
  }
  Graph *g = ir_graph_new_like(ad);
  ValueId *map = pass_copy_nodes(g, ad, d);
  int np = count_params(ad);
  ValueId *params = ARENA_ARRAY(g->arena, ValueId, np ? np : 1), *grads = ARENA_ARRAY(g->arena, ValueId, np ? np : 1);
  if (!map || collect(g, ad, map, params, grads, d) < 0) goto fail;
  Shape scalar = { .rank = 0 };
  ValueId scale = f32_input(g, "accum_scale", &scalar);
  ir_add_output(g, "loss", map[loss_src]);
  for (int i = 0; i < np; i++) {
    const Node *p = ir_node(g, params[i]);
    Shape s = p->shape;
    const char *nm = cat(g, "grad_acc.", ir_get_str(p, ATTR_NAME));
    ValueId acc = f32_input(g, nm, &s);
    ValueId sg = ir_add(g, OP_MUL, (ValueId[]){ grads[i], scale }, 2, NULL, 0, (SrcLoc){ 0 }, d);
    if (sg == IR_NONE) goto fail;
    ValueId sum = ir_add(g, OP_ADD, (ValueId[]){ acc, sg }, 2, NULL, 0, (SrcLoc){ 0 }, d);
    if (sum == IR_NONE) goto fail;
    ir_add_output(g, nm, sum);
  }
  return g;
fail:
  ir_graph_free(g);
  return NULL;
}

Graph *pass_update(const Graph *fwd, const AdamWOptions *o, Diag *d) {
  if (!pass_adamw_check(o, d)) return NULL;
  Graph *g = ir_graph_new_like(fwd);
  int np = count_params(fwd);
  ValueId *params = ARENA_ARRAY(g->arena, ValueId, np ? np : 1), *grads = ARENA_ARRAY(g->arena, ValueId, np ? np : 1);
  int k = 0;
  for (ValueId v = 0; v < fwd->n; v++) {
    const Node *n = &fwd->nodes[v];
    if (n->op != OP_PARAM) continue;
    params[k++] = ir_add_source(g, OP_PARAM, n->dtype, &n->shape, n->attr, n->nattr, n->loc);
  }
  for (int i = 0; i < np; i++) {
    const Node *p = ir_node(g, params[i]);
    Shape s = p->shape;
    grads[i] = f32_input(g, cat(g, "grad_acc.", ir_get_str(p, ATTR_NAME)), &s);
  }
  if (!append_update(g, params, grads, np, d)) {
    ir_graph_free(g);
    return NULL;
  }
  return g;
}
