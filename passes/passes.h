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

/* True when ops.def gives op a gradient rule (tests loop over the table). */
bool pass_has_grad_rule(OpKind op);

#endif
