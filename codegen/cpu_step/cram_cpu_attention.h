/* cram_cpu_attention.h - the fused attention kernels of the cpu target
 * (ops.def: attention + attention_lse, attention_grad), included by
 * cram_cpu_kernels.h. Reference: ir/interp_attention.c.
 *
 * One OpenMP region over (batch, kv group) blocks; each thread works a
 * query tile of CC_ATTN_TILE rows at a time with single-threaded sgemm calls
 * that read q, k, v and write o, dq, dk, dv in place through their row
 * strides (the per-head-interleaved qkv layout of the GEMM that made them: no
 * copies). The only scratch is one tile x S block of scores and one of their
 * gradients per thread: the [B, heads, S, S] probabilities never exist.
 * Scores, probabilities and their gradients stay f32; the softmax row sums
 * and D = rowsum(do * o) are accumulated in double. */
#ifndef CRAM_CPU_ATTENTION_H
#define CRAM_CPU_ATTENTION_H

#define CC_ATTN_TILE 64 /* query rows per tile: a 64 x S score block fits L2 for S up to a few thousand */

/* The geometry of one fused attention node (ir.h's IrAttnGeom, as constants
 * of the generated code). Parts t = 0, 1, 2 are q, k, v; their pointers are
 * already offset to the part's first element; stride[t] = element strides of
 * (batch, seq, head). Query head h reads kv group h / (heads / kv_heads). */
typedef struct cc_attn {
  int64_t B, S, heads, kv_heads, dh;
  int64_t stride[3][3];
  int64_t bias_stride[4]; /* (b, h, i, j); 0 = broadcast */
  float alpha;
  double p;     /* dropout probability */
  uint64_t key; /* dropout mask stream */
} cc_attn;

/* The dropout factor of (b, h, i, j), as the unfused dropout node's mask on
 * the [B, heads, S, S] probabilities: 0 or 1/(1-p). */
static inline float cc_attn_keep(const cram_cpu_run *R, const cc_attn *a, int64_t b, int64_t h, int64_t i, int64_t j) {
  uint64_t e = (uint64_t)(((b * a->heads + h) * a->S + i) * a->S + j);
  return cc_uniform(R->seed, a->key, e) < a->p ? 0.0f : (float)(1.0 / (1.0 - a->p));
}

/* s[r][j] = alpha q_(i0+r) . k_j + bias for rows i0 .. i0+n-1 of head h (ld S). */
static inline void cc_attn_scores(const cc_attn *a, const float *q, const float *k, const float *bias, int64_t b, int64_t h,
                                  int64_t i0, int64_t n, float *s) {
  int64_t g = h / (a->heads / a->kv_heads), S = a->S;
  const float *qh = q + b * a->stride[0][0] + i0 * a->stride[0][1] + h * a->stride[0][2];
  const float *kh = k + b * a->stride[1][0] + g * a->stride[1][2];
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)S, (int)a->dh, a->alpha, qh, (int)a->stride[0][1], kh,
              (int)a->stride[1][1], 0.0f, s, (int)S);
  if (!bias) return;
  const int64_t *bs = a->bias_stride;
  for (int64_t r = 0; r < n; r++) {
    const float *br = bias + b * bs[0] + h * bs[1] + (i0 + r) * bs[2];
    float *sr = s + r * S;
    if (bs[3] == 1) {
#pragma omp simd
      for (int64_t j = 0; j < S; j++) sr[j] += br[j];
    } else {
      for (int64_t j = 0; j < S; j++) sr[j] += br[j * bs[3]];
    }
  }
}

/* Row r of s becomes P = exp(s - lse) (0 for a fully masked row, lse = -inf). */
static inline void cc_attn_probs(float *s, int64_t S, float lse) {
  if (lse == -INFINITY) {
    memset(s, 0, (size_t)S * sizeof(float));
    return;
  }
#pragma omp simd
  for (int64_t j = 0; j < S; j++) s[j] = cc_expf(s[j] - lse);
}

/* P' = P * dropout factor, in place, for rows i0 .. i0+n-1 of head h. */
static inline void cc_attn_drop(const cram_cpu_run *R, const cc_attn *a, float *s, int64_t b, int64_t h, int64_t i0, int64_t n) {
  for (int64_t r = 0; r < n; r++)
    for (int64_t j = 0; j < a->S; j++) s[r * a->S + j] *= cc_attn_keep(R, a, b, h, i0 + r, j);
}

/* o = softmax(alpha q k^T + bias) (dropout) v, o [B, S, heads, dh] contiguous;
 * lse [B, heads, S] = the rows' log-sum-exp before dropout; either may be NULL
 * (not wanted: an attention_lse without its sibling passes o = NULL). */
static inline int cc_attention(const cram_cpu_run *R, const char *node, const cc_attn *a, const float *q, const float *k,
                               const float *v, const float *bias, float *o, float *lse) {
  int64_t S = a->S, dh = a->dh, grp = a->heads / a->kv_heads, blocks = a->B * a->heads;
  int drop = R->training && a->p > 0, fail = 0;
#pragma omp parallel if (blocks > 1 && S * S * dh > CC_PAR_MIN)
  {
    float *s = malloc((size_t)(CC_ATTN_TILE * S) * sizeof(float));
    if (!s) {
#pragma omp atomic write
      fail = 1;
    }
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < blocks; bh++) {
      if (!s) continue;
      int64_t b = bh / a->heads, h = bh % a->heads, g = h / grp;
      const float *vh = v + b * a->stride[2][0] + g * a->stride[2][2];
      for (int64_t i0 = 0; i0 < S; i0 += CC_ATTN_TILE) {
        int64_t n = S - i0 < CC_ATTN_TILE ? S - i0 : CC_ATTN_TILE;
        cc_attn_scores(a, q, k, bias, b, h, i0, n, s);
        for (int64_t r = 0; r < n; r++) {
          float *sr = s + r * S, m = -INFINITY;
          for (int64_t j = 0; j < S; j++) m = sr[j] > m ? sr[j] : m;
          float L = -INFINITY;
          if (m != -INFINITY) {
            double sum = 0;
#pragma omp simd reduction(+ : sum)
            for (int64_t j = 0; j < S; j++) sum += cc_expf(sr[j] - m);
            L = m + (float)log(sum);
          }
          cc_attn_probs(sr, S, L);
          if (lse) lse[(b * a->heads + h) * S + i0 + r] = L;
        }
        if (!o) continue; /* attention_lse alone */
        if (drop) cc_attn_drop(R, a, s, b, h, i0, n);
        float *oh = o + ((b * S + i0) * a->heads + h) * dh;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)dh, (int)S, 1.0f, s, (int)S, vh, (int)a->stride[2][1],
                    0.0f, oh, (int)(a->heads * dh));
      }
    }
    free(s);
  }
  if (fail) snprintf(R->err, R->errlen, "%s: out of memory for a %d x %lld score tile", node, CC_ATTN_TILE, (long long)S);
  return fail ? -1 : 0;
}

/* The FlashAttention-2 backward from o and lse: dP' = do v^T, dP = dP' * the
 * dropout factor, D = rowsum(do * o), dS = P (dP - D); dq = alpha dS k,
 * dk = alpha dS^T q, dv = P'^T do. d[t] (NULL: part t not wanted) points to
 * part t in the gradient buffer dsrc of dsrc_numel elements (the layout of
 * the source it belongs to: strides stride[t]), which is zeroed first.
 * Parallel over (batch, kv group): the query heads of a group add into the
 * same dk/dv rows one after another, so no two threads write one element. */
static inline int cc_attention_grad(const cram_cpu_run *R, const char *node, const cc_attn *a, const float *q, const float *k,
                                    const float *v, const float *bias, const float *o, const float *lse, const float *dout,
                                    float *dsrc, int64_t dsrc_numel, float *const d[3]) {
  int64_t S = a->S, dh = a->dh, grp = a->heads / a->kv_heads, blocks = a->B * a->kv_heads, ldo = a->heads * dh;
  int drop = R->training && a->p > 0, fail = 0;
  memset(dsrc, 0, (size_t)dsrc_numel * sizeof(float));
#pragma omp parallel if (blocks > 1 && S * S * dh > CC_PAR_MIN)
  {
    float *s = malloc((size_t)(2 * CC_ATTN_TILE * S) * sizeof(float)), *dp = s ? s + CC_ATTN_TILE * S : NULL;
    if (!s) {
#pragma omp atomic write
      fail = 1;
    }
#pragma omp for schedule(static)
    for (int64_t bg = 0; bg < blocks; bg++) {
      if (!s) continue;
      int64_t b = bg / a->kv_heads, g = bg % a->kv_heads;
      const float *kh = k + b * a->stride[1][0] + g * a->stride[1][2], *vh = v + b * a->stride[2][0] + g * a->stride[2][2];
      float *dk = d[1] ? d[1] + b * a->stride[1][0] + g * a->stride[1][2] : NULL;
      float *dv = d[2] ? d[2] + b * a->stride[2][0] + g * a->stride[2][2] : NULL;
      for (int64_t h = g * grp; h < (g + 1) * grp; h++)
        for (int64_t i0 = 0; i0 < S; i0 += CC_ATTN_TILE) {
          int64_t n = S - i0 < CC_ATTN_TILE ? S - i0 : CC_ATTN_TILE;
          const float *oh = o + ((b * S + i0) * a->heads + h) * dh, *doh = dout + ((b * S + i0) * a->heads + h) * dh;
          const float *qh = q + b * a->stride[0][0] + i0 * a->stride[0][1] + h * a->stride[0][2];
          cc_attn_scores(a, q, k, bias, b, h, i0, n, s);
          for (int64_t r = 0; r < n; r++) cc_attn_probs(s + r * S, S, lse[(b * a->heads + h) * S + i0 + r]);
          /* dp = do v^T (dP' of the dropped probabilities) */
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)S, (int)dh, 1.0f, doh, (int)ldo, vh,
                      (int)a->stride[2][1], 0.0f, dp, (int)S);
          for (int64_t r = 0; r < n; r++) {
            float *sr = s + r * S, *dr = dp + r * S;
            double D = 0;
            const float *orow = oh + r * ldo, *drow = doh + r * ldo;
#pragma omp simd reduction(+ : D)
            for (int64_t e = 0; e < dh; e++) D += (double)orow[e] * drow[e];
            if (drop)
              for (int64_t j = 0; j < S; j++) dr[j] *= cc_attn_keep(R, a, b, h, i0 + r, j);
            float Df = (float)D;
            /* dr = dS; sr keeps P for dv (P' = P * keep, rebuilt below) */
#pragma omp simd
            for (int64_t j = 0; j < S; j++) dr[j] = sr[j] * (dr[j] - Df);
          }
          if (dv) {
            if (drop) cc_attn_drop(R, a, s, b, h, i0, n);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)S, (int)dh, (int)n, 1.0f, s, (int)S, doh, (int)ldo, 1.0f,
                        dv, (int)a->stride[2][1]);
          }
          if (d[0])
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)dh, (int)S, a->alpha, dp, (int)S, kh,
                        (int)a->stride[1][1], 1.0f, d[0] + b * a->stride[0][0] + i0 * a->stride[0][1] + h * a->stride[0][2],
                        (int)a->stride[0][1]);
          if (dk)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)S, (int)dh, (int)n, a->alpha, dp, (int)S, qh,
                        (int)a->stride[0][1], 1.0f, dk, (int)a->stride[1][1]);
        }
    }
    free(s);
  }
  if (fail) snprintf(R->err, R->errlen, "%s: out of memory for a %d x %lld score tile", node, CC_ATTN_TILE, (long long)S);
  return fail ? -1 : 0;
}

#endif
