/* passes.h: graph -> graph passes (autodiff; the optimizer pass adds itself here).
 *
 * A pass never edits its input: it builds a new Graph with its own arena and
 * returns it, or reports through the Diag and returns NULL. Forward nodes keep
 * their ids and SrcLocs in the new graph (they are copied first, in order), so
 * "%12" means the same value before and after a pass.
 */
#ifndef CRAMC_PASSES_H
#define CRAMC_PASSES_H

#include <stdbool.h>

#include "diag.h"
#include "ir.h"

/* Append a copy of every node of src to dst, in order, with inputs remapped
 * and attributes, strings and SrcLocs copied into dst's arena. Returns the id
 * map (src id -> dst id, src->n entries, allocated in dst's arena); when dst
 * starts empty the map is the identity. Outputs are not copied. Returns NULL
 * (after reporting to d, which may be NULL) if a node fails its shape rule. */
ValueId *pass_copy_nodes(Graph *dst, const Graph *src, Diag *d);

/* Reverse-mode autodiff. fwd must have an output "loss" that is an f32
 * scalar. The result holds fwd's nodes (same ids), then the backward nodes;
 * its outputs are "loss", then "grad.<name>" for every param in graph order
 * (zeros for a param the loss does not depend on), then fwd's other outputs.
 * Returns NULL after reporting to d. */
Graph *pass_autodiff(const Graph *fwd, Diag *d);

/* Mixed precision (passes/autocast.c, docs/passes.md): fwd with GEMM operands
 * cast to bf16 (bf16 products), norms / softmax / reductions / the loss in
 * f32, other ops in their operands' dtype (f32 when mixed). Run before
 * autodiff. Params stay f32; outputs keep their dtypes. NULL after reporting. */
Graph *pass_autocast_bf16(const Graph *fwd, Diag *d);

/* True when ops.def gives op a gradient rule (tests loop over the table). */
bool pass_has_grad_rule(OpKind op);

/* ---- optimizer (passes/adamw.c; docs/train-step.md) ---------------------- */

/* Hyperparameters of the optimizer. The graphs take them at run time (the
 * input "hyper" f32[IR_ADAM_HYPER], ir.h), so these fields are what a caller
 * binds there (pass_adamw_hyper); the crammed recipe's are the defaults
 * (pass_adamw_defaults): betas (0.9, 0.98), eps 1e-12, decoupled weight decay
 * 0.01 on params with decay=1 and none on the rest (weight_decay_other),
 * clip at global L2 norm 0.5 (max_norm <= 0: no clipping), accumulation 1. */
typedef struct AdamWOptions {
  double beta1, beta2, eps, weight_decay, weight_decay_other, max_norm;
  int accum;       /* microbatches per update (the driver's default; graphs take 1/k as an input) */
  bool emit_grads; /* pass_train_step: also output "grad.<p>" (unclipped) after the others */
} AdamWOptions;
AdamWOptions pass_adamw_defaults(void);
/* Reports out-of-range values (betas outside [0, 1), negative eps or decay,
 * NaN max_norm, accum < 1) to d; false if any. */
bool pass_adamw_check(const AdamWOptions *o, Diag *d);
/* The "hyper" input's values for o. */
void pass_adamw_hyper(const AdamWOptions *o, double hyper[IR_ADAM_HYPER]);

/* The single train-step graph (k = 1) from the autodiff graph. Inputs: the
 * forward's (params, batch), "adam_m.<p>", "adam_v.<p>" per param, "step",
 * "lr" (f32 scalars; step counts from 1), "hyper". Outputs: "loss", "grad_norm"
 * (pre-clip), "param.<p>", "adam_m.<p>", "adam_v.<p>" (each group in param
 * order), then "grad.<p>" if o->emit_grads. NULL after reporting to d. */
Graph *pass_train_step(const Graph *ad, const AdamWOptions *o, Diag *d);

/* Forward + backward of one microbatch, accumulating: inputs as the forward
 * plus "grad_acc.<p>" and "accum_scale" (f32 scalar, 1/k); outputs "loss" (of
 * this microbatch) and "grad_acc.<p>" = grad_acc.<p> + accum_scale * grad. */
Graph *pass_accumulate(const Graph *ad, Diag *d);

/* Clip + AdamW from accumulated gradients: inputs the params of fwd,
 * "grad_acc.<p>", "adam_m.<p>", "adam_v.<p>", "step", "lr", "hyper"; outputs
 * "grad_norm", "param.<p>", "adam_m.<p>", "adam_v.<p>". */
Graph *pass_update(const Graph *fwd, const AdamWOptions *o, Diag *d);

/* The forward graph for eval()/predict(): fwd plus, when its "loss" output
 * is a cross_entropy (pass_accuracy_loss: that node, else IR_NONE), the
 * output PASS_ACCURACY_OUTPUT = xent_hits of its logits and targets, f32[2]
 * = [rows predicted right, rows counted] (eval_metrics.c). NULL after
 * reporting to d. */
#define PASS_ACCURACY_OUTPUT "accuracy.hits"
ValueId pass_accuracy_loss(const Graph *fwd);
Graph *pass_eval_metrics(const Graph *fwd, Diag *d);

#endif
