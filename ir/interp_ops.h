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

/* Per-op kernel; NULL for sources (the caller provides them), except sinusoid. */
InterpFn interp_kernel(OpKind op);

#endif
