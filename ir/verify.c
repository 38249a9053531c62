/* verify.c: ir_verify, the structural check run after every pass.
 *
 * Builders already check each node, but passes may write nodes directly, so
 * this trusts nothing: it checks op ids, arity, topological order, attribute
 * lists (sorted, exactly the op's mask), types, and re-runs every shape rule
 * to compare with the stored type (QBE's ssacheck, tinygrad's type_verify).
 * It reports every problem it finds (one per node) and never reads outside
 * the graph, even when a node is garbage.
 */
#include <stdarg.h>
#include <string.h>

#include "ir_impl.h"

/* Reports at the node's .cram position as "%<id> = <op>: <reason>". */
__attribute__((format(printf, 4, 5))) static bool bad(Diag *d, const Graph *g, ValueId v, const char *fmt, ...) {
  const Node *n = &g->nodes[v];
  char why[IR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  const char *op = (unsigned)n->op < OP_COUNT ? ir_ops[n->op].name : "?";
  diag_error(d, n->loc, "verify: %%%u = %s: %s", v, op, why);
  return false;
}

/* Returns whether the node is clean (the result is unused: one report per node). */
static bool verify_node(const Graph *g, ValueId v, Diag *d) {
  const Node *n = &g->nodes[v];
  char msg[IR_MSG_MAX];
  if ((unsigned)n->op >= OP_COUNT) return bad(d, g, v, "op id %d is not in ops.def", (int)n->op);
  const OpInfo *info = &ir_ops[n->op];
  if (!ir_check_type(n->dtype, &n->shape, msg, sizeof msg)) return bad(d, g, v, "bad type: %s", msg);
  if (n->nattr > IR_MAX_ATTRS) return bad(d, g, v, "%u attributes (a node holds at most %d)", n->nattr, IR_MAX_ATTRS);
  for (int i = 1; i < n->nattr; i++)
    if ((unsigned)n->attr[i - 1].id >= (unsigned)n->attr[i].id)
      return bad(d, g, v, "attributes are not sorted by id without repeats");
  if (info->cls == OC_SOURCE) {
    if (n->nin) return bad(d, g, v, "a source has %u inputs", n->nin);
    if (!ir_check_source(n->op, n->dtype, &n->shape, n->attr, n->nattr, msg, sizeof msg)) return bad(d, g, v, "%s", msg);
    return true;
  }
  if (n->nin < info->min_in || n->nin > info->max_in)
    return bad(d, g, v, "%u inputs (expects %u to %u)", n->nin, info->min_in, info->max_in);
  for (int i = 0; i < n->nin; i++) {
    if (n->in[i] >= v) return bad(d, g, v, "input %d is %%%u, not an earlier value", i, n->in[i]);
    const Node *x = &g->nodes[n->in[i]];
    /* The input's own problem is reported at the input; don't feed the rule garbage. */
    if ((unsigned)x->op >= OP_COUNT || !ir_check_type(x->dtype, &x->shape, msg, sizeof msg)) return false;
  }
  if (!ir_check_attrs(n->op, n->attr, n->nattr, msg, sizeof msg)) return bad(d, g, v, "%s", msg);
  DType dt;
  Shape s;
  if (!info->shape(g, n, &dt, &s, msg, sizeof msg)) return bad(d, g, v, "%s", msg);
  if (dt != n->dtype || !ir_shape_eq(&s, &n->shape)) {
    char have[IR_TYPE_STR_MAX], want[IR_TYPE_STR_MAX];
    return bad(d, g, v, "type is %s but the shape rule gives %s", ir_type_str(n->dtype, &n->shape, have, sizeof have),
               ir_type_str(dt, &s, want, sizeof want));
  }
  return true;
}

bool ir_verify(const Graph *g, Diag *d) {
  int before = d->nerrors;
  SrcLoc none = { 0 };
  if (g->n > g->cap || g->nout > g->outcap || (g->n && !g->nodes) || (g->nout && !g->outputs)) {
    diag_error(d, none, "verify: graph arrays are inconsistent (n=%u cap=%u nout=%u outcap=%u)", g->n, g->cap, g->nout,
               g->outcap);
    return false;
  }
  for (ValueId v = 0; v < g->n; v++) (void)verify_node(g, v, d);
  for (uint32_t i = 0; i < g->nout; i++) {
    const Output *o = &g->outputs[i];
    if (!o->name || !o->name[0]) {
      diag_error(d, none, "verify: output %u has no name", i);
      continue;
    }
    if (o->value >= g->n)
      diag_error(d, none, "verify: output '%s' refers to %%%u, but the graph has %u values", o->name, o->value, g->n);
    for (uint32_t j = 0; j < i; j++)
      if (g->outputs[j].name && !strcmp(g->outputs[j].name, o->name)) {
        diag_error(d, none, "verify: output name '%s' is used twice", o->name);
        break;
      }
  }
  return d->nerrors == before;
}
