/* render_cuda_xent.c - cross-entropy nodes of the CUDA renderer
 * (crossentropy.cuh): the target count, per-row losses reduced in double,
 * the logits gradient; and the fused decoder + cross-entropy (xent_linear)
 * in chunks of rows, so no [rows x vocab] logits tensor exists. */
#include "render_cuda_impl.h"

/* one block: checks the targets (input ti), counts the used rows into scratch */
static void count_targets(RCu *c, int ti, int64_t N, int64_t V, int64_t ignore) {
  rc_launch(c, 1, 1024, "cr_count_targets(x%d, %" PRId64 "ll, %" PRId64 "ll, %" PRId64 "ll, T, E, code)", ti, N, V, ignore);
}
/* the n row partials at scratch offset off summed: o[0] = their mean over the used rows
 * (losses), or o[0] = their sum and o[1] = the used rows (hits) */
static void part_reduce(RCu *c, bool hits, int64_t n, int64_t off) {
  rc_launch(c, 1, 1024, "cr_part_reduce<%s>(o, T, %" PRId64 "ll, %" PRId64 "ll)", hits ? "true" : "false", off, n);
}

void rc_render_cross_entropy(RCu *c) {
  const Shape *ls = rc_in_shape(c, 0);
  int64_t N = ls->dim[0], V = ls->dim[1], ignore = ir_get_int(c->k->n, ATTR_IGNORE);
  count_targets(c, 1, N, V, ignore);
  if (c->k->n->op == OP_CROSS_ENTROPY || c->k->n->op == OP_XENT_HITS) {
    bool hits = c->k->n->op == OP_XENT_HITS;
    rc_need_scratch(c, CR_SCR_PART + (uint64_t)N * 8);
    rc_launch(c, rc_grid_rows(N), CR_BLOCK, "cr_xent_row_part<%s>(x0, x1, T, %" PRId64 "ll, %" PRId64 "ll, %" PRId64 "ll)",
              hits ? "true" : "false", N, V, ignore);
    part_reduce(c, hits, N, CR_SCR_PART);
  } else {
    rc_need_scratch(c, CR_SCR_PART);
    rc_launch(c, rc_grid_rows(N), CR_BLOCK, "cr_xent_row_grad(o, x0, x1, x2, T, %" PRId64 "ll, %" PRId64 "ll, %" PRId64 "ll)", N,
              V, ignore);
  }
}

/* Fused decoder + cross-entropy in chunks of rows: z = x_c op(W) [+ b] into
 * scratch (cuBLASLt, bias epilogue), a warp-per-row kernel (row losses, or z
 * turned into dlogits), then dx = dz op(W)^T / dW += ... / db += colsum(dz).
 * bf16 operands (autocast) follow the unfused chain's roundings, as the
 * interpreter's kernel: z is the GEMM's bf16 output and the bias is added in
 * f32 after it (so no bias epilogue), dz is stored as bf16 for the GEMMs
 * (f32, in its own region, for db), and dW, a bf16 result, accumulates over
 * chunks in f32 scratch and is rounded once at the end. */
void rc_render_xent_linear(RCu *c) {
  const Node *n = c->k->n;
  const KNode *k = c->k;
  const Graph *gr = rc_graph(c);
  const Shape *xs = rc_in_shape(c, 0), *ws = rc_in_shape(c, 1);
  bool tb = ir_get_int(n, ATTR_TRANS_B) != 0, bias = n->nin == 4, bf = rc_is_bf16(gr, n->in[0]);
  int64_t N = xs->dim[0], H = xs->dim[1], V = ws->dim[tb ? 0 : 1], ignore = ir_get_int(n, ATTR_IGNORE);
  int64_t es = bf ? 2 : 4, os = rc_is_bf16(gr, k->id) ? 2 : 4; /* bytes per element: x, W, z; the result */
  /* -1 the loss, -2 the accuracy counts, else the gradient's wrt */
  int wrt = n->op == OP_XENT_LINEAR ? -1 : n->op == OP_XENT_LINEAR_HITS ? -2 : (int)ir_get_int(n, ATTR_WRT);
  int64_t chunk = N < c->xent_chunk ? N : c->xent_chunk;
  bool acc32 = wrt == 1 && os == 2 && chunk < N; /* dW summed over chunks in f32 */
  int64_t zoff = CR_SCR_PART + N * 8;            /* z after the per-row losses */
  zoff = (zoff + 255) / 256 * 256;
  int64_t goff = (zoff + chunk * V * es + 255) / 256 * 256; /* bf16: f32 dz for db, or the f32 dW */
  int64_t gf = bf && wrt == 2 ? goff : zoff;                /* where the f32 dz of db lives */
  rc_need_scratch(c, (uint64_t)(zoff + chunk * V * es));
  if (bf && wrt == 2) rc_need_scratch(c, (uint64_t)(goff + chunk * V * 4));
  if (acc32) rc_need_scratch(c, (uint64_t)(goff + V * H * 4));
  count_targets(c, 2, N, V, ignore);
  char zp[64], gp[64];
  snprintf(zp, sizeof zp, bf ? "cr_bf16p(T + %" PRId64 ")" : "(float *)(T + %" PRId64 ")", zoff);
  if (gf != zoff) snprintf(gp, sizeof gp, "(float *)(T + %" PRId64 ")", gf);
  else snprintf(gp, sizeof gp, "%s", zp);
  HGemm none = { .bias = { 0, KBUF_NO_SLOT }, .batch = 1, .bf_a = bf, .bf_b = bf, .bf_c = bf };
  for (int64_t r0 = 0; r0 < N; r0 += chunk) {
    int64_t nr = N - r0 < chunk ? N - r0 : chunk;
    KBuf xc = rc_norm(k->in[0]);
    xc.offset += r0 * H * es; /* the chunk's rows (within the slot for a slot buffer) */
    HGemm z = none;
    z.tb = tb, z.M = nr, z.N = V, z.K = H, z.lda = H, z.ldb = tb ? H : V, z.ldc = V;
    z.a = xc, z.b = rc_norm(k->in[1]), z.o = rc_scratch_buf(zoff);
    if (bias && !bf) z.has_bias = true, z.bias = rc_norm(k->in[3]), z.epi = RC_EPI_BIAS;
    rc_gemm_entry(c, &z);
    rc_launch(c, rc_grid_rows(nr), CR_BLOCK,
              "cr_xent_chunk_rows<%s, %s>(%s, %s, %s, x2, T, %" PRId64 "ll, %" PRId64 "ll, %" PRId64 "ll, %" PRId64 "ll)",
              wrt == -1   ? "CR_XENT_LOSS"
              : wrt == -2 ? "CR_XENT_HITS"
                          : "CR_XENT_GRAD",
              bias && bf ? "true" : "false", zp, bias && bf ? "x3" : "(const float *)0", gp, r0, nr, V, ignore);
    if (wrt == 0) {
      KBuf oc = rc_norm(k->out);
      oc.offset += r0 * H * os;
      HGemm d = none;
      d.tb = !tb, d.M = nr, d.N = H, d.K = V, d.lda = V, d.ldb = tb ? H : V, d.ldc = H;
      d.a = rc_scratch_buf(zoff), d.b = rc_norm(k->in[1]), d.o = oc, d.bf_c = os == 2;
      rc_gemm_entry(c, &d);
    } else if (wrt == 1) {
      KBuf xc2 = rc_norm(k->in[0]), oc = acc32 ? rc_scratch_buf(goff) : rc_norm(k->out);
      xc2.offset += r0 * H * es;
      HGemm d = none;
      d.ta = true, d.K = nr, d.beta = r0 ? 1.f : 0.f, d.o = oc, d.bf_c = !acc32 && os == 2;
      if (tb) d.M = V, d.N = H, d.lda = V, d.ldb = H, d.ldc = H, d.a = rc_scratch_buf(zoff), d.b = xc2;
      else d.M = H, d.N = V, d.lda = H, d.ldb = V, d.ldc = V, d.a = xc2, d.b = rc_scratch_buf(zoff);
      rc_gemm_entry(c, &d);
    } else if (wrt == 2) {
      rc_launch(c, rc_grid_for(V, 1), CR_BLOCK,
                "cr_colsum<%s>(o, (const float *)(T + %" PRId64 "), %" PRId64 "ll, %" PRId64 "ll)", r0 ? "true" : "false", gf, nr,
                V);
    }
  }
  if (wrt < 0) part_reduce(c, wrt == -2, N, CR_SCR_PART);
  if (acc32) /* the f32 sum of the chunks' dW, rounded once */
    rc_launch(c, rc_grid_for(V * H, 1), CR_BLOCK, "cr_copy(o, (const float *)(T + %" PRId64 "), %" PRId64 "ll)", goff, V * H);
}
