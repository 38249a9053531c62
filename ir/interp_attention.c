/* interp_attention.c: reference kernels of the fused attention ops (ops.def
 * "fused attention"), written as the unfused chain they replace:
 *   s = alpha q k^T + bias;  P = softmax_j(s);  P' = dropout(P);  o = P' v
 * one score row at a time (the [S,S] matrix never exists, as in the fused
 * kernels). Dropout draws interp_hash_uniform with the node's key and the
 * element index the unfused dropout node had, ((b*heads + h)*S + i)*S + j of
 * the [B,heads,S,S] probabilities, so fusing never changes a mask.
 *
 * Precision: everything in double; the interpreter's f32 mode rounds only the
 * results (o and dsource to their dtype, lse to f32), i.e. these ops have no
 * internal rounding point: the fused kernels keep s, P, dP and dS in f32
 * registers. (The unfused bf16 graph rounds the scores and P to bf16; the
 * fused op is the more accurate of the two.)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp_ops.h"

typedef struct Attn {
  IrAttnGeom g;
  const double *x[3]; /* q, k, v sources */
  const double *bias; /* or NULL */
  bool drop;          /* training with p > 0 */
  uint64_t seed;
} Attn;

static bool attn_init(InterpCall *c, Attn *a) {
  if (!ir_attention_geom(c->g, c->n, &a->g, c->msg, c->msglen)) return false;
  for (int t = 0; t < 3; t++) a->x[t] = c->in[t];
  a->bias = a->g.bias >= 0 ? c->in[a->g.bias] : NULL;
  a->drop = c->opts->training && a->g.p > 0;
  a->seed = c->opts->seed;
  return true;
}

/* Offset of part t (0 q, 1 k, 2 v) of head/group hg at (b, s) in its source. */
static int64_t at(const IrAttnGeom *g, int t, int64_t b, int64_t s, int64_t hg) {
  return b * g->stride[t][0] + s * g->stride[t][1] + hg * g->stride[t][2] + g->off[t];
}

static double dot(const double *a, const double *b, int64_t n) {
  double s = 0;
  for (int64_t d = 0; d < n; d++) s += a[d] * b[d];
  return s;
}

/* Scores of query row i of head h in batch b into s[S]; returns their log-sum-exp. */
static double score_row(const Attn *a, int64_t b, int64_t h, int64_t i, double *s) {
  const IrAttnGeom *g = &a->g;
  int64_t kvg = h / (g->heads / g->kv_heads);
  const double *q = a->x[0] + at(g, 0, b, i, h);
  double m = -INFINITY;
  for (int64_t j = 0; j < g->S; j++) {
    s[j] = g->alpha * dot(q, a->x[1] + at(g, 1, b, j, kvg), g->dh);
    if (a->bias) s[j] += a->bias[b * g->bias_stride[0] + h * g->bias_stride[1] + i * g->bias_stride[2] + j * g->bias_stride[3]];
    if (s[j] > m) m = s[j];
  }
  if (m == -INFINITY) return m; /* a fully masked row: P = 0 */
  double l = 0;
  for (int64_t j = 0; j < g->S; j++) l += exp(s[j] - m);
  return m + log(l);
}

/* The dropout factor of probability (b, h, i, j): 0 or 1/(1-p), 1 when dropout is off. */
static double keep(const Attn *a, int64_t b, int64_t h, int64_t i, int64_t j) {
  if (!a->drop) return 1.0;
  const IrAttnGeom *g = &a->g;
  uint64_t e = (uint64_t)(((b * g->heads + h) * g->S + i) * g->S + j);
  return interp_hash_uniform(a->seed, (uint64_t)g->key, e) < g->p ? 0.0 : 1.0 / (1.0 - g->p);
}

static double prob(double s, double lse) { return lse == -INFINITY ? 0.0 : exp(s - lse); }

static double *row_buf(InterpCall *c, int64_t S) {
  double *s = malloc((size_t)S * sizeof(double));
  if (!s) snprintf(c->msg, c->msglen, "out of memory for a %lld-element score row", (long long)S);
  return s;
}

/* torch: F.scaled_dot_product_attention(q, k, v, bias, dropout_p) per head,
 * written as softmax(alpha q k^T + bias) -> dropout -> @ v */
bool interp_attention(InterpCall *c) {
  Attn a;
  if (!attn_init(c, &a)) return false;
  const IrAttnGeom *g = &a.g;
  double *s = row_buf(c, g->S);
  if (!s) return false;
  int64_t grp = g->heads / g->kv_heads;
  for (int64_t b = 0; b < g->B; b++)
    for (int64_t h = 0; h < g->heads; h++)
      for (int64_t i = 0; i < g->S; i++) {
        double lse = score_row(&a, b, h, i, s);
        double *o = c->out + ((b * g->S + i) * g->heads + h) * g->dh;
        memset(o, 0, (size_t)g->dh * sizeof(double));
        for (int64_t j = 0; j < g->S; j++) {
          double pj = prob(s[j], lse) * keep(&a, b, h, i, j);
          const double *v = a.x[2] + at(g, 2, b, j, h / grp);
          for (int64_t d = 0; d < g->dh; d++) o[d] += pj * v[d];
        }
      }
  free(s);
  return true;
}

/* logsumexp_j of the scores (before dropout): torch.logsumexp(alpha q k^T + bias, -1) */
bool interp_attention_lse(InterpCall *c) {
  Attn a;
  if (!attn_init(c, &a)) return false;
  const IrAttnGeom *g = &a.g;
  double *s = row_buf(c, g->S);
  if (!s) return false;
  for (int64_t b = 0; b < g->B; b++)
    for (int64_t h = 0; h < g->heads; h++)
      for (int64_t i = 0; i < g->S; i++) c->out[(b * g->heads + h) * g->S + i] = score_row(&a, b, h, i, s);
  free(s);
  return true;
}

/* The FlashAttention-2 backward, one query row at a time, P recomputed from
 * the lse input: dP' = do v^T, dP = dropout(dP'), D = rowsum(do * o),
 * dS = P (dP - D); dq = alpha dS k, dk = alpha dS^T q, dv = P'^T do. The parts
 * in wrt land at their offsets in the (shared) source's layout; k/v groups
 * sum over the query heads that read them. */
bool interp_attention_grad(InterpCall *c) {
  Attn a;
  if (!attn_init(c, &a)) return false;
  const IrAttnGeom *g = &a.g;
  const double *o = c->in[3], *lse = c->in[4], *dout = c->in[5];
  int64_t wrt = ir_get_int(c->n, ATTR_WRT), grp = g->heads / g->kv_heads;
  memset(c->out, 0, (size_t)ir_shape_numel(&c->n->shape) * sizeof(double));
  double *s = row_buf(c, g->S);
  if (!s) return false;
  for (int64_t b = 0; b < g->B; b++)
    for (int64_t h = 0; h < g->heads; h++)
      for (int64_t i = 0; i < g->S; i++) {
        int64_t kvg = h / grp, orow = ((b * g->S + i) * g->heads + h) * g->dh;
        (void)score_row(&a, b, h, i, s);
        double L = lse[(b * g->heads + h) * g->S + i], D = dot(dout + orow, o + orow, g->dh);
        const double *q = a.x[0] + at(g, 0, b, i, h), *di = dout + orow;
        for (int64_t j = 0; j < g->S; j++) {
          const double *k = a.x[1] + at(g, 1, b, j, kvg), *v = a.x[2] + at(g, 2, b, j, kvg);
          double p = prob(s[j], L), f = keep(&a, b, h, i, j);
          double ds = p * (dot(di, v, g->dh) * f - D) * g->alpha;
          if (wrt & 1) {
            double *dq = c->out + at(g, 0, b, i, h);
            for (int64_t d = 0; d < g->dh; d++) dq[d] += ds * k[d];
          }
          if (wrt & 2) {
            double *dk = c->out + at(g, 1, b, j, kvg);
            for (int64_t d = 0; d < g->dh; d++) dk[d] += ds * q[d];
          }
          if (wrt & 4) {
            double *dv = c->out + at(g, 2, b, j, kvg);
            for (int64_t d = 0; d < g->dh; d++) dv[d] += p * f * di[d];
          }
        }
      }
  free(s);
  return true;
}
