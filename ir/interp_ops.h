/* interp_ops.h: reference kernels, one per op (the "interp" column of ops.def).
 * A kernel reads its inputs (double arrays laid out row-major in the input
 * nodes' shapes) and writes every element of out. It returns NULL, or a
 * message for data-dependent failures (e.g. a token id out of range). */
#ifndef CRAMC_INTERP_OPS_H
#define CRAMC_INTERP_OPS_H

#include "interp.h"

typedef struct InterpCall {
  const Graph *g;
  const Node *n;
  const double *const *in;   /* n->nin input arrays */
  double *out;
  const InterpOpts *opts;
  ValueId id;                /* node index, e.g. to seed dropout */
  char *msg;                 /* room for an error message */
  size_t msglen;
} InterpCall;

typedef bool (*InterpFn)(InterpCall *c);

/* The kernels named in the interp column of ops.def. */
#define OP(id, name, min_in, max_in, cls, attrs, shape, interp, grad) bool interp(InterpCall *c);
#define NONE interp_none_ /* rows without a kernel declare this dummy; it is never defined */
#include "ops.def"
#undef NONE
#undef OP

/* Per-op kernel from the interp column; NULL for input and param (the caller provides them). */
InterpFn interp_kernel(OpKind op);

#endif
