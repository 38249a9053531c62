/* render_cuda_attention.c - the fused attention ops (ops.def: attention +
 * attention_lse, attention_grad) as launches of codegen/cuda_kernels/
 * attention.cuh: the node's geometry (ir_attention_geom) becomes a constant
 * cr_attn_geo, the part pointers are the sources plus their column offsets.
 *
 *   attention [+ attention_lse]  one launch writing o and lse, when the lse
 *                                sibling directly follows in the same kernel
 *                                (fuse_attention emits them so, the partition
 *                                keeps them together); an lse alone is the
 *                                same kernel without o;
 *   attention_grad               a zero fill when its parts do not cover the
 *                                source's columns, then the dQ kernel (wrt q)
 *                                and the dK/dV kernel (wrt k and/or v). */
#include <stdbool.h>

#include "render_cuda_impl.h"

/* Rows a block owns (cr_att_cfg's QT): 32 for head dims up to 64, 16 above,
 * so a block's f32 tiles stay within 48 KB of static shared memory. */
static int64_t att_qt(int64_t dh) { return dh <= 64 ? 32 : 16; }

static bool geom(RCu *c, const Node *n, IrAttnGeom *g) {
  char msg[200];
  if (ir_attention_geom(rc_graph(c), n, g, msg, sizeof msg)) return true;
  c->oom = true; /* the verifier accepted the node: cannot happen; fail the build rather than render garbage */
  return false;
}

static void put_geo(RCu *c, const IrAttnGeom *g) {
  fprintf(c->cu,
          "  const cr_attn_geo geo = {%" PRId64 "ll, %" PRId64 "ll, %" PRId64 "ll, %" PRId64 "ll,\n"
          "    {%" PRId64 "ll, %" PRId64 "ll, %" PRId64 "ll}, {%" PRId64 "ll, %" PRId64 "ll, %" PRId64 "ll}, {%" PRId64
          "ll, %" PRId64 "ll, %" PRId64 "ll},\n    {%" PRId64 "ll, %" PRId64 "ll, %" PRId64 "ll, %" PRId64
          "ll}, (float)%.9g, %.17g, %" PRIu64 "ull};\n",
          g->B, g->S, g->heads, g->kv_heads, g->stride[0][0], g->stride[0][1], g->stride[0][2], g->stride[1][0], g->stride[1][1],
          g->stride[1][2], g->stride[2][0], g->stride[2][1], g->stride[2][2], g->bias_stride[0], g->bias_stride[1],
          g->bias_stride[2], g->bias_stride[3], g->alpha, g->p, (uint64_t)g->key);
}

/* "x0 + off, x1 + off, x2 + off, bias" of the node's parts */
static void put_parts(RCu *c, const IrAttnGeom *g) {
  fprintf(c->cu, "x0 + %" PRId64 "ll, x1 + %" PRId64 "ll, x2 + %" PRId64 "ll, ", g->off[0], g->off[1], g->off[2]);
  if (g->bias >= 0) fprintf(c->cu, "x%d", g->bias);
  else fputs("(const float *)0", c->cu);
}

static uint32_t grid_of(int64_t B, int64_t heads, int64_t S, int64_t qt) {
  int64_t n = B * heads * ((S + qt - 1) / qt);
  return (uint32_t)(n < 1 ? 1 : n);
}

void rc_render_attention(RCu *c) {
  const Node *n = c->k->n;
  IrAttnGeom g;
  if (!geom(c, n, &g)) return;
  bool lse_only = n->op == OP_ATTENTION_LSE;
  const KNode *lse = lse_only ? c->k : NULL;
  if (!lse_only && c->next < c->end && ir_siblings(n, c->p->nodes[c->next].n)) {
    lse = &c->p->nodes[c->next];
    c->next++; /* rendered here */
  }
  int64_t qt = att_qt(g.dh);
  rc_begin(c, grid_of(g.B, g.heads, g.S, qt), 256);
  rc_decl_bufs(c, "");
  if (lse && !lse_only) rc_decl_out(c, "lse", lse);
  put_geo(c, &g);
  fprintf(c->cu, "  cr_attention_fwd<%" PRId64 ", %" PRId64 ", %s, %s>(geo, ", g.dh, qt, g.bias >= 0 ? "true" : "false",
          lse_only ? "false" : "true");
  put_parts(c, &g);
  fprintf(c->cu, ", %s, %s, seedp, training);\n", lse_only ? "(float *)0" : "o", lse_only ? "o" : lse ? "lse" : "(float *)0");
  rc_end(c);
}

void rc_render_attention_grad(RCu *c) {
  const Node *n = c->k->n;
  IrAttnGeom g;
  if (!geom(c, n, &g)) return;
  int64_t wrt = ir_get_int(n, ATTR_WRT), qt = att_qt(g.dh), numel = rc_numel(&n->shape), parts = 0;
  for (int t = 0; t < 3; t++) parts += wrt >> t & 1;
  if (parts * g.dh != rc_lastd(&n->shape)) /* columns no selected part writes are zero */
    rc_launch(c, rc_grid_for(numel, 1), CR_BLOCK, "cr_fill(o, %" PRId64 "ll, 0.f)", numel);
  const char *bias = g.bias >= 0 ? "true" : "false";
  if (wrt & 1) {
    rc_begin(c, grid_of(g.B, g.heads, g.S, qt), 256);
    rc_decl_bufs(c, "");
    put_geo(c, &g);
    fprintf(c->cu, "  cr_attention_dq<%" PRId64 ", %" PRId64 ", %s>(geo, ", g.dh, qt, bias);
    put_parts(c, &g);
    fprintf(c->cu, ", x3, x4, x5, o + %" PRId64 "ll, seedp, training);\n", g.off[0]);
    rc_end(c);
  }
  if (wrt & 6) {
    rc_begin(c, grid_of(g.B, g.kv_heads, g.S, qt), 256);
    rc_decl_bufs(c, "");
    put_geo(c, &g);
    fprintf(c->cu, "  cr_attention_dkdv<%" PRId64 ", %" PRId64 ", %s, %s, %s>(geo, ", g.dh, qt, bias, wrt & 2 ? "true" : "false",
            wrt & 4 ? "true" : "false");
    put_parts(c, &g);
    fprintf(c->cu, ", x3, x4, x5, o + %" PRId64 "ll, o + %" PRId64 "ll, seedp, training);\n", wrt & 2 ? g.off[1] : 0,
            wrt & 4 ? g.off[2] : 0);
    rc_end(c);
  }
}
