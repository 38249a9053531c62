/* eval_metrics.c: the forward graph as eval() runs it. Besides the loss and
 * the model's own outputs it computes the masked-token accuracy counts when
 * the loss is a cross-entropy: output "accuracy.hits" = xent_hits of the
 * loss's logits and targets, f32[2] = [rows whose argmax is the target, rows
 * counted]. The train graphs never see it (autodiff starts from the plain
 * forward), and fuse_xent turns it into xent_linear_hits beside the fused
 * loss, so the [rows x vocab] logits stay unmaterialised. */
#include <string.h>

#include "passes.h"

ValueId pass_accuracy_loss(const Graph *fwd) {
  for (uint32_t i = 0; i < fwd->nout; i++)
    if (!strcmp(fwd->outputs[i].name, "loss"))
      return fwd->nodes[fwd->outputs[i].value].op == OP_CROSS_ENTROPY ? fwd->outputs[i].value : IR_NONE;
  return IR_NONE;
}

Graph *pass_eval_metrics(const Graph *fwd, Diag *d) {
  Graph *g = ir_graph_new_like(fwd);
  ValueId *map = pass_copy_nodes(g, fwd, d);
  if (!map) return ir_graph_free(g), NULL;
  for (uint32_t i = 0; i < fwd->nout; i++) ir_add_output(g, fwd->outputs[i].name, map[fwd->outputs[i].value]);
  ValueId loss = pass_accuracy_loss(fwd);
  if (loss == IR_NONE) return g;
  const Node *ce = &fwd->nodes[loss];
  ValueId in[2] = { map[ce->in[0]], map[ce->in[1]] };
  ValueId hits = ir_add(g, OP_XENT_HITS, in, 2, ce->attr, ce->nattr, ce->loc, d);
  if (hits == IR_NONE) return ir_graph_free(g), NULL;
  ir_add_output(g, PASS_ACCURACY_OUTPUT, hits);
  return g;
}
