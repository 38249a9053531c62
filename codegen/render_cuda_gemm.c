/* render_cuda_gemm.c - GEMM nodes of the CUDA renderer: a cuBLASLt entry
 * (row-major C = op(A) op(B) as column-major C^T = op(B)^T op(A)^T, strided
 * batches, f32 accumulate, the BIAS / RELU(_BIAS) epilogues in cuBLASLt),
 * then the library's epilogue kernel (glu.cuh) where cuBLASLt has no exact
 * one: gelu / sigmoid (cuBLASLt's GELU is the tanh approximation), GLU and
 * the activation gradients. */
#include "render_cuda_impl.h"

/* Our kernel (not cuBLASLt) applies the activation: gelu, sigmoid. */
static bool gemm_own_epi(const KGemm *g) {
  if (g->epi != KEPI_ACT || !g->act) return false;
  int a = ir_act_parse(g->act);
  return a > ACT_NONE && a != ACT_RELU;
}
/* The GEMM result goes to f32 scratch for a GLU (grad) kernel, and when our
 * kernel finishes it into a bf16 output: one rounding, after the epilogue, as
 * the interpreter's fused op. */
bool rc_gemm_to_scratch(const Graph *gr, const KNode *k) {
  const KGemm *g = &k->g;
  return g->epi == KEPI_GLU || g->epi == KEPI_GLU_GRAD || (rc_is_bf16(gr, k->id) && (gemm_own_epi(g) || g->epi == KEPI_ACT_GRAD));
}

void rc_render_gemm(RCu *c) {
  const KGemm *g = &c->k->g;
  const KNode *k = c->k;
  const Graph *gr = rc_graph(c);
  int64_t rows = g->batch * g->M;
  const char *act = rc_act(g->act);
  bool own_epi = gemm_own_epi(g), scratch = rc_gemm_to_scratch(gr, k);
  HGemm h = { .ta = g->ta,
              .tb = g->tb,
              .M = g->M,
              .N = g->N,
              .K = g->K,
              .batch = g->batch,
              .lda = g->lda,
              .ldb = g->ldb,
              .ldc = g->ldc,
              .sa = g->stride_a,
              .sb = g->stride_b,
              .sc = g->stride_c,
              .a = rc_norm(k->in[g->a_in]),
              .b = rc_norm(k->in[g->b_in]),
              .o = scratch ? rc_scratch_buf(0) : rc_norm(k->out),
              .bias = { 0, KBUF_NO_SLOT },
              .bf_a = rc_is_bf16(gr, k->n->in[g->a_in]),
              .bf_b = rc_is_bf16(gr, k->n->in[g->b_in]),
              .bf_c = !scratch && rc_is_bf16(gr, k->id) };
  if (g->epi == KEPI_ACT) {
    bool relu = g->act && ir_act_parse(g->act) == ACT_RELU;
    if (g->bias) h.has_bias = true, h.bias = rc_norm(k->in[2]);
    h.epi = relu ? (g->bias ? RC_EPI_RELU_BIAS : RC_EPI_RELU) : (g->bias ? RC_EPI_BIAS : RC_EPI_NONE);
  }
  if (scratch) rc_need_scratch(c, (uint64_t)(rows * g->N) * 4);
  rc_gemm_entry(c, &h);
  const char *y = scratch ? "(const float *)T" : "o";
  if (own_epi) {
    rc_launch(c, rc_grid_for(rows * g->N, 1), CR_BLOCK, "cr_act_epilogue(o, %s, %" PRId64 "ll, %s)", y, rows * g->N, act);
  } else if (g->epi == KEPI_GLU) {
    int64_t F = g->N / 2;
    rc_launch(c, rc_grid_for(rows * F, 1), CR_BLOCK,
              "cr_glu_epilogue<%s>(o, (const float *)T, %s, %" PRId64 "ll, %" PRId64 "ll, %s)", g->bias ? "true" : "false",
              g->bias ? "x2" : "(const float *)0", rows, F, act);
  } else if (g->epi == KEPI_ACT_GRAD) {
    rc_launch(c, rc_grid_for(rc_numel(&k->n->shape), 1), CR_BLOCK, "cr_act_grad_epilogue(o, x0, %s, %" PRId64 "ll, %s)", y,
              rc_numel(&k->n->shape), act);
  } else if (g->epi == KEPI_GLU_GRAD) {
    rc_launch(c, rc_grid_for(rows * g->N, 1), CR_BLOCK, "cr_glu_grad(o, x0, (const float *)T, %" PRId64 "ll, %" PRId64 "ll, %s)",
              rows, g->N, act);
  }
}
