/* interp.c: runs a graph node by node with the reference kernels of
 * interp_ops.c, rounding every result to its dtype in the f32 mode (see
 * interp.h). Buffers are one double array per node unless the caller supplies
 * its own (aliased arenas from the memory planner). */
#include "interp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp_ops.h"

double interp_round_f32(double x) { return (double)(float)x; }

/* Round to nearest even on the f32 bit pattern, as __float2bfloat16_rn does. */
double interp_round_bf16(double x) {
  float f = (float)x;
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  if ((u & 0x7f800000u) == 0x7f800000u) { /* inf/nan: truncate, keep nan quiet */
    u &= 0xffff0000u;
    if (isnan(f)) u |= 0x00400000u;
  } else {
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
  }
  memcpy(&f, &u, sizeof f);
  return (double)f;
}

static void round_to_dtype(const Node *n, double *v, int64_t count) {
  if (n->dtype == DT_F32)
    for (int64_t i = 0; i < count; i++) v[i] = interp_round_f32(v[i]);
  else if (n->dtype == DT_BF16)
    for (int64_t i = 0; i < count; i++) v[i] = interp_round_bf16(v[i]);
}

bool interp_run(const Graph *g, const InterpOpts *o, double **bufs, bool *owned, char *err, size_t errlen) {
  char msg[256];
  for (ValueId v = 0; v < g->n; v++) owned[v] = false;
  for (ValueId v = 0; v < g->n; v++) {
    const Node *n = &g->nodes[v];
    int64_t count = ir_shape_numel(&n->shape);
    InterpFn fn = interp_kernel(n->op);
    if (!fn) { /* input / param: the caller's data */
      if (!bufs[v]) {
        snprintf(err, errlen, "%%%u (%s \"%s\"): no data supplied", v, ir_ops[n->op].name,
                 ir_attr(n, ATTR_NAME) ? ir_get_str(n, ATTR_NAME) : "");
        return false;
      }
      continue;
    }
    if (!bufs[v]) {
      bufs[v] = calloc((size_t)count ? (size_t)count : 1, sizeof(double));
      if (!bufs[v]) {
        snprintf(err, errlen, "%%%u (%s): out of memory for %lld values", v, ir_ops[n->op].name, (long long)count);
        return false;
      }
      owned[v] = true;
    }
    const double *in[IR_MAX_IN] = { 0 };
    for (int k = 0; k < n->nin; k++) in[k] = bufs[n->in[k]];
    msg[0] = '\0';
    InterpCall call = { g, n, in, bufs[v], o, v, msg, sizeof msg };
    if (!fn(&call)) {
      if (n->loc.file && n->loc.line)
        snprintf(err, errlen, "%s:%u:%u: %%%u (%s): %s", n->loc.file, n->loc.line, n->loc.col, v, ir_ops[n->op].name, msg);
      else snprintf(err, errlen, "%%%u (%s): %s", v, ir_ops[n->op].name, msg);
      return false;
    }
    if (o->prec == INTERP_F32) round_to_dtype(n, bufs[v], count);
  }
  return true;
}

void interp_free(const Graph *g, double **bufs, bool *owned) {
  for (ValueId v = 0; v < g->n; v++)
    if (owned[v]) {
      free(bufs[v]);
      bufs[v] = NULL;
      owned[v] = false;
    }
}
