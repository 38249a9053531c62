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
  const double *const *in; /* n->nin input arrays */
  double *out;
  const InterpOpts *opts;
  ValueId id; /* node index, e.g. to seed dropout */
  char *msg;  /* room for an error message */
  size_t msglen;
} InterpCall;

typedef bool (*InterpFn)(InterpCall *c);

/* f(x) and f'(x) of activation act (IrAct, acts.def): the GLU gate and the
 * fused GEMM epilogues of every interpreter kernel. */
void interp_act_pair(int act, double x, double *f, double *df);

/* The dropout op's mask: a uniform in [0,1) of (seed, key, element index);
 * element e is dropped when it is < p. Fused ops that contain a dropout
 * (attention) draw from it with the unfused node's key and element index. */
double interp_hash_uniform(uint64_t seed, uint64_t key, uint64_t e);
/* The first index of the largest of x[0..V) (torch.argmax among ties): xent_hits. */
int64_t interp_argmax(const double *x, int64_t V);

/* The kernels named in the interp column of ops.def. */
#define OP(id, name, min_in, max_in, cls, attrs, shape, interp, grad, ...) bool interp(InterpCall *c);
#define NONE                                                               interp_none_ /* rows without a kernel declare this dummy; it is never defined */
#include "ops.def"
#undef NONE
#undef OP

/* Per-op kernel from the interp column; NULL for input and param (the caller provides them). */
InterpFn interp_kernel(OpKind op);

/* ---- helpers shared by the kernel files (interp_*.c) ---------------------- */

#define IN_SHAPE(c, k) (&(c)->g->nodes[(c)->n->in[k]].shape)

static inline int64_t last_dim(const Shape *s) { return s->rank ? s->dim[s->rank - 1] : 1; }
static inline int64_t rows_of(const Shape *s) { return ir_shape_numel(s) / last_dim(s); }

/* Index into `in` broadcast to `out` (numpy rules: trailing axes aligned,
 * size-1 axes repeat) of output element `flat`. */
static inline int64_t bcast_index(const Shape *out, const Shape *in, int64_t flat) {
  int64_t idx = 0, stride = 1;
  for (int a = out->rank - 1, b = in->rank - 1; a >= 0; a--, b--) {
    int64_t coord = flat % out->dim[a];
    flat /= out->dim[a];
    if (b >= 0) {
      if (in->dim[b] != 1) idx += coord * stride;
      stride *= in->dim[b];
    }
  }
  return idx;
}

#endif
