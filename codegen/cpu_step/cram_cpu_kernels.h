/* cram_cpu_kernels.h - the kernel library every `cramc --target cpu`
 * artifact includes (static functions; the generated C calls them with
 * constant shapes). Each matches its reference kernel in ir/interp_*.c in
 * the interpreter's f32 mode: values are stored as f32, arithmetic is done in
 * double and rounded once on store, so elementwise ops agree exactly and
 * reductions/GEMMs (BLAS sgemm, f32 accumulation) agree to rounding.
 * Elementwise ops are not here: codegen/render_c.c writes their loops. */
#ifndef CRAM_CPU_KERNELS_H
#define CRAM_CPU_KERNELS_H

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What every kernel gets: the arena, the persistent buffers, dropout state,
 * and room for an error message. */
typedef struct cram_cpu_run {
  char *arena;
  void *const *slot;
  uint64_t seed;
  int training;
  char *err;
  size_t errlen;
} cram_cpu_run;

#define CC_PAR_MIN 32768 /* elements below which a loop stays single-threaded */

static inline double cc_gelu(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }
static inline double cc_gelu_deriv(double x) {
  return 0.5 * (1.0 + erf(x / sqrt(2.0))) + x * exp(-0.5 * x * x) * 0.3989422804014327;
}
static inline double cc_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static inline double cc_silu_deriv(double x) { double s = cc_sigmoid(x); return s * (1.0 + x * (1.0 - s)); }
/* act codes: 0 none, 1 gelu, 2 relu, 3 sigmoid */
static inline void cc_act_pair(int act, double x, double *f, double *df) {
  switch (act) {
  case 1: *f = cc_gelu(x), *df = cc_gelu_deriv(x); break;
  case 2: *f = x > 0 ? x : 0.0, *df = x > 0 ? 1.0 : 0.0; break;
  case 3: *f = 1.0 / (1.0 + exp(-x)), *df = *f * (1.0 - *f); break;
  default: *f = x, *df = 1.0; break;
  }
}
static inline double cc_act(int act, double x) {
  double f, df;
  cc_act_pair(act, x, &f, &df);
  return f;
}

/* interp_ops.c bcast_index: element `flat` of out read from in (numpy rules). */
static inline int64_t cc_bcast(int orank, const int64_t *od, int irank, const int64_t *id, int64_t flat) {
  int64_t idx = 0, stride = 1;
  for (int a = orank - 1, b = irank - 1; a >= 0; a--, b--) {
    int64_t coord = flat % od[a];
    flat /= od[a];
    if (b >= 0) {
      if (id[b] != 1) idx += coord * stride;
      stride *= id[b];
    }
  }
  return idx;
}

/* splitmix64 as interp_ops.c hash_uniform */
static inline double cc_uniform(uint64_t seed, uint64_t key, uint64_t e) {
  uint64_t z = seed ^ (key * 0x9E3779B97F4A7C15ull) ^ (e * 0xD1B54A32D192ED03ull);
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (double)(z >> 11) * 0x1.0p-53;
}

static inline int cc_fail(const cram_cpu_run *R, const char *node, const char *msg) {
  snprintf(R->err, R->errlen, "%s: %s", node, msg);
  return -1;
}

/* ---- sources ----------------------------------------------------------------- */

static inline void cc_sinusoid(float *o, int64_t S, int64_t H) {
  for (int64_t s = 0; s < S; s++)
    for (int64_t i = 0; i < H; i += 2) {
      double div = exp((double)i * (-log(10000.0) / (double)H));
      o[s * H + i] = (float)sin((double)s * div);
      if (i + 1 < H) o[s * H + i + 1] = (float)cos((double)s * div);
    }
}

/* ---- gathers ------------------------------------------------------------------ */

static inline int cc_embedding(const cram_cpu_run *R, const char *node, float *o, const float *table, const int32_t *ids,
                        int64_t n, int64_t V, int64_t H) {
  for (int64_t r = 0; r < n; r++)
    if (ids[r] < 0 || ids[r] >= V) {
      char msg[200];
      snprintf(msg, sizeof msg, "token id %d at position %lld is outside the vocabulary [0, %lld)", (int)ids[r],
               (long long)r, (long long)V);
      return cc_fail(R, node, msg);
    }
#pragma omp parallel for if (n * H > CC_PAR_MIN)
  for (int64_t r = 0; r < n; r++) memcpy(o + r * H, table + (int64_t)ids[r] * H, (size_t)H * sizeof(float));
  return 0;
}

/* Prediction slots of sequence b: the first `count` positions whose target is
 * not -100, in position order (as interp_masked_rows); unused slots are
 * padding. Found on the fly, so the kernels need no scratch memory. */
static inline void cc_masked_rows(float *o, const float *x, const int32_t *t, int64_t B, int64_t S, int64_t H, int64_t count) {
  for (int64_t b = 0; b < B; b++) {
    int64_t k = 0;
    for (int64_t s = 0; s < S && k < count; s++)
      if (t[b * S + s] != -100) memcpy(o + (b * count + k++) * H, x + (b * S + s) * H, (size_t)H * sizeof(float));
    memset(o + (b * count + k) * H, 0, (size_t)((count - k) * H) * sizeof(float));
  }
}

static inline void cc_masked_targets(int32_t *o, const int32_t *t, int64_t B, int64_t S, int64_t count) {
  for (int64_t b = 0; b < B; b++) {
    int64_t k = 0;
    for (int64_t s = 0; s < S && k < count; s++)
      if (t[b * S + s] != -100) o[b * count + k++] = t[b * S + s];
    for (; k < count; k++) o[b * count + k] = -100;
  }
}

static inline void cc_embedding_grad(float *o, const int32_t *ids, const float *dy, int64_t n, int64_t V, int64_t H) {
  memset(o, 0, (size_t)(V * H) * sizeof(float));
  /* ids were checked by the forward embedding; skip any outside the table */
  for (int64_t r = 0; r < n; r++) {
    if (ids[r] < 0 || ids[r] >= V) continue;
    float *d = o + (int64_t)ids[r] * H;
    for (int64_t j = 0; j < H; j++) d[j] = (float)((double)d[j] + (double)dy[r * H + j]);
  }
}

static inline void cc_masked_rows_grad(float *o, const float *dy, const int32_t *t, int64_t B, int64_t S, int64_t H,
                                int64_t slots) {
  memset(o, 0, (size_t)(B * S * H) * sizeof(float));
  for (int64_t b = 0; b < B; b++) {
    int64_t k = 0;
    for (int64_t s = 0; s < S && k < slots; s++)
      if (t[b * S + s] != -100) {
        memcpy(o + (b * S + s) * H, dy + (b * slots + k) * H, (size_t)H * sizeof(float));
        k++;
      }
  }
}

/* ---- GEMM: C[p] = op(A[p]) op(B[p]), row-major ----------------------------------- */

static inline void cc_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, int64_t batch, const float *A, int64_t lda,
                    int64_t sa, const float *B, int64_t ldb, int64_t sb, float *C, int64_t ldc, int64_t sc) {
  for (int64_t p = 0; p < batch; p++)
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K,
                1.0f, A + p * sa, (int)lda, B + p * sb, (int)ldb, 0.0f, C + p * sc, (int)ldc);
}

/* y = act(y + bias) in place, rows x N */
static inline void cc_epi_bias_act(float *y, const float *bias, int64_t rows, int64_t N, int act) {
#pragma omp parallel for if (rows * N > CC_PAR_MIN)
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < N; j++) {
      double v = bias ? (double)(float)((double)y[r * N + j] + (double)bias[j]) : (double)y[r * N + j];
      y[r * N + j] = (float)cc_act(act, v);
    }
}

/* o[r,j] = (y[r,j] + b[j]) * act(y[r,F+j] + b[F+j]) */
static inline void cc_epi_glu(float *o, const float *y, const float *bias, int64_t rows, int64_t F, int act) {
#pragma omp parallel for if (rows * F > CC_PAR_MIN)
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < F; j++) {
      double a = y[r * 2 * F + j], g = y[r * 2 * F + F + j];
      if (bias) a = (double)(float)(a + (double)bias[j]), g = (double)(float)(g + (double)bias[F + j]);
      o[r * F + j] = (float)(a * cc_act(act, g));
    }
}

/* o = act'(pre) * o in place (relu: pre > 0 ? o : 0) */
static inline void cc_epi_act_grad(float *o, const float *pre, int64_t n, int act) {
#pragma omp parallel for if (n > CC_PAR_MIN)
  for (int64_t e = 0; e < n; e++) {
    double f, df;
    cc_act_pair(act, pre[e], &f, &df);
    o[e] = act == 2 ? (pre[e] > 0 ? o[e] : 0.0f) : (float)((double)o[e] * df);
  }
}

/* glu_grad(x[rows,2F], dy[rows,F]) -> o[rows,2F] */
static inline void cc_glu_grad(float *o, const float *x, const float *dy, int64_t rows, int64_t F, int act) {
#pragma omp parallel for if (rows * F > CC_PAR_MIN)
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < F; j++) {
      double f, df, d = dy[r * F + j];
      cc_act_pair(act, x[r * 2 * F + F + j], &f, &df);
      o[r * 2 * F + j] = (float)(d * f);
      o[r * 2 * F + F + j] = (float)(d * (double)x[r * 2 * F + j] * df);
    }
}

static inline void cc_glu(float *o, const float *x, int64_t rows, int64_t F, int act) { cc_epi_glu(o, x, NULL, rows, F, act); }

/* ---- row-wise -------------------------------------------------------------------- */

/* layernorm(a [+ b]) with optional weight/bias */
static inline void cc_layernorm(float *o, const float *xa, const float *xb, const float *w, const float *bias, int64_t rows,
                         int64_t H, double eps) {
#pragma omp parallel for if (rows * H > CC_PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    double mean = 0, var = 0;
    for (int64_t j = 0; j < H; j++) {
      double x = xb ? (double)(float)((double)xa[r * H + j] + (double)xb[r * H + j]) : xa[r * H + j];
      mean += x;
    }
    mean /= (double)H;
    for (int64_t j = 0; j < H; j++) {
      double x = xb ? (double)(float)((double)xa[r * H + j] + (double)xb[r * H + j]) : xa[r * H + j];
      var += (x - mean) * (x - mean);
    }
    var /= (double)H;
    double rstd = 1.0 / sqrt(var + eps);
    for (int64_t j = 0; j < H; j++) {
      double x = xb ? (double)(float)((double)xa[r * H + j] + (double)xb[r * H + j]) : xa[r * H + j];
      o[r * H + j] = (float)((x - mean) * rstd * (w ? w[j] : 1.0) + (bias ? bias[j] : 0.0));
    }
  }
}

static inline void cc_rmsnorm(float *o, const float *x, const float *w, int64_t rows, int64_t H, double eps) {
#pragma omp parallel for if (rows * H > CC_PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    double ms = 0;
    for (int64_t j = 0; j < H; j++) ms += (double)x[r * H + j] * x[r * H + j];
    double rr = 1.0 / sqrt(ms / (double)H + eps);
    for (int64_t j = 0; j < H; j++) o[r * H + j] = (float)(x[r * H + j] * rr * (w ? w[j] : 1.0));
  }
}

static inline void cc_softmax(float *o, const float *x, int64_t rows, int64_t H) {
#pragma omp parallel for if (rows * H > CC_PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    double mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < H; j++) mx = x[r * H + j] > mx ? x[r * H + j] : mx;
    for (int64_t j = 0; j < H; j++) sum += exp(x[r * H + j] - mx);
    for (int64_t j = 0; j < H; j++) o[r * H + j] = (float)(exp(x[r * H + j] - mx) / sum);
  }
}

/* o = [dres +] layernorm_grad(x, w, dy) */
static inline void cc_layernorm_grad(float *o, const float *x, const float *w, const float *dy, const float *dres, int64_t rows,
                              int64_t H, double eps) {
#pragma omp parallel for if (rows * H > CC_PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * H, *d = dy + r * H;
    double mean = 0, var = 0, mg = 0, mgx = 0;
    for (int64_t j = 0; j < H; j++) mean += xr[j];
    mean /= (double)H;
    for (int64_t j = 0; j < H; j++) var += (xr[j] - mean) * (xr[j] - mean);
    double rstd = 1.0 / sqrt(var / (double)H + eps);
    for (int64_t j = 0; j < H; j++) {
      double g = d[j] * (w ? w[j] : 1.0);
      mg += g;
      mgx += g * (xr[j] - mean) * rstd;
    }
    mg /= (double)H;
    mgx /= (double)H;
    for (int64_t j = 0; j < H; j++) {
      double g = d[j] * (w ? w[j] : 1.0);
      double v = rstd * (g - mg - (xr[j] - mean) * rstd * mgx);
      o[r * H + j] = dres ? (float)((double)dres[r * H + j] + (double)(float)v) : (float)v;
    }
  }
}

static inline void cc_rmsnorm_grad(float *o, const float *x, const float *w, const float *dy, int64_t rows, int64_t H,
                            double eps) {
#pragma omp parallel for if (rows * H > CC_PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * H, *d = dy + r * H;
    double ms = 0, mgx = 0;
    for (int64_t j = 0; j < H; j++) {
      ms += (double)xr[j] * xr[j];
      mgx += d[j] * (w ? w[j] : 1.0) * xr[j];
    }
    double rr = 1.0 / sqrt(ms / (double)H + eps);
    mgx /= (double)H;
    for (int64_t j = 0; j < H; j++) o[r * H + j] = (float)(rr * d[j] * (w ? w[j] : 1.0) - rr * rr * rr * xr[j] * mgx);
  }
}

static inline void cc_softmax_grad(float *o, const float *y, const float *dy, int64_t rows, int64_t H) {
#pragma omp parallel for if (rows * H > CC_PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    double s = 0;
    for (int64_t j = 0; j < H; j++) s += (double)y[r * H + j] * dy[r * H + j];
    for (int64_t j = 0; j < H; j++) o[r * H + j] = (float)(y[r * H + j] * (dy[r * H + j] - s));
  }
}

/* ---- reductions and losses ---------------------------------------------------------- */

static inline void cc_mean(float *o, const float *x, int64_t outer, int64_t len, int64_t inner) {
  for (int64_t a = 0; a < outer; a++)
    for (int64_t i = 0; i < inner; i++) {
      double s = 0;
      for (int64_t l = 0; l < len; l++) s += x[(a * len + l) * inner + i];
      o[a * inner + i] = (float)(s / (double)len);
    }
}

static inline int cc_check_targets(const cram_cpu_run *R, const char *node, const int32_t *t, int64_t N, int64_t V,
                            int64_t ignore, int64_t *used) {
  *used = 0;
  for (int64_t r = 0; r < N; r++) {
    if (t[r] == ignore) continue;
    if (t[r] < 0 || t[r] >= V) {
      char msg[200];
      snprintf(msg, sizeof msg, "target %d in row %lld is outside [0, %lld)", (int)t[r], (long long)r, (long long)V);
      return cc_fail(R, node, msg);
    }
    ++*used;
  }
  return 0;
}

static inline int cc_cross_entropy(const cram_cpu_run *R, const char *node, float *o, const float *x, const int32_t *t,
                            int64_t N, int64_t V, int64_t ignore) {
  int64_t used;
  if (cc_check_targets(R, node, t, N, V, ignore, &used)) return -1;
  double total = 0;
#pragma omp parallel for reduction(+ : total) if (N * V > CC_PAR_MIN)
  for (int64_t r = 0; r < N; r++) {
    if (t[r] == ignore) continue;
    const float *xr = x + r * V;
    double mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < V; j++) mx = xr[j] > mx ? xr[j] : mx;
    for (int64_t j = 0; j < V; j++) sum += exp(xr[j] - mx);
    total += mx + log(sum) - xr[t[r]];
  }
  o[0] = (float)(used ? total / (double)used : 0.0);
  return 0;
}

static inline int cc_cross_entropy_grad(const cram_cpu_run *R, const char *node, float *o, const float *x, const int32_t *t,
                                 const float *dloss, int64_t N, int64_t V, int64_t ignore) {
  int64_t used;
  if (cc_check_targets(R, node, t, N, V, ignore, &used)) return -1;
  double k = used ? dloss[0] / (double)used : 0.0;
#pragma omp parallel for if (N * V > CC_PAR_MIN)
  for (int64_t r = 0; r < N; r++) {
    const float *xr = x + r * V;
    float *d = o + r * V;
    if (t[r] == ignore) {
      memset(d, 0, (size_t)V * sizeof(float));
      continue;
    }
    double mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < V; j++) mx = xr[j] > mx ? xr[j] : mx;
    for (int64_t j = 0; j < V; j++) sum += exp(xr[j] - mx);
    for (int64_t j = 0; j < V; j++) d[j] = (float)(k * exp(xr[j] - mx) / sum - (j == t[r] ? k : 0.0));
  }
  return 0;
}

/* Fused decoder + cross-entropy (interp_fused.c xent_linear*): logits of a
 * chunk of rows by sgemm into scratch, then log-softmax per row in double.
 * wrt < 0: the mean loss into o[0]; wrt 0/1/2: d/dx, d/dW, d/db into o. */
#define CC_XENT_CHUNK 64
static inline int cc_xent_linear(const cram_cpu_run *R, const char *node, float *o, const float *x, const float *W,
                          const int32_t *t, const float *b, int64_t N, int64_t H, int64_t V, int tb, int64_t ignore,
                          int wrt) {
  int64_t used;
  if (cc_check_targets(R, node, t, N, V, ignore, &used)) return -1;
  float *z = malloc((size_t)(CC_XENT_CHUNK * V) * sizeof(float));
  if (!z) return cc_fail(R, node, "out of memory for the logits chunk");
  double total = 0, k = used ? 1.0 / (double)used : 0.0;
  if (wrt == 0) memset(o, 0, (size_t)(N * H) * sizeof(float));
  if (wrt == 1) memset(o, 0, (size_t)(V * H) * sizeof(float));
  if (wrt == 2) memset(o, 0, (size_t)V * sizeof(float));
  double *acc = wrt == 2 ? calloc((size_t)V, sizeof(double)) : NULL;
  if (wrt == 2 && !acc) return free(z), cc_fail(R, node, "out of memory");
  for (int64_t r0 = 0; r0 < N; r0 += CC_XENT_CHUNK) {
    int64_t nr = N - r0 < CC_XENT_CHUNK ? N - r0 : CC_XENT_CHUNK;
    /* z[nr,V] = x[r0:r0+nr] op(W) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)nr, (int)V, (int)H, 1.0f, x + r0 * H,
                (int)H, W, tb ? (int)H : (int)V, 0.0f, z, (int)V);
#pragma omp parallel for reduction(+ : total) if (nr * V > CC_PAR_MIN)
    for (int64_t i = 0; i < nr; i++) {
      float *zr = z + i * V;
      int32_t tr = t[r0 + i];
      if (tr == ignore) {
        memset(zr, 0, (size_t)V * sizeof(float));
        continue;
      }
      double mx = -INFINITY, sum = 0;
      for (int64_t j = 0; j < V; j++) {
        if (b) zr[j] = (float)((double)zr[j] + (double)b[j]);
        mx = zr[j] > mx ? zr[j] : mx;
      }
      for (int64_t j = 0; j < V; j++) sum += exp(zr[j] - mx);
      if (wrt < 0) {
        total += mx + log(sum) - zr[tr];
        continue;
      }
      for (int64_t j = 0; j < V; j++) zr[j] = (float)(k * exp(zr[j] - mx) / sum - (j == tr ? k : 0.0));
    }
    if (wrt == 0) /* dx[r0..] = G W^T-ish: G[nr,V] op(W)^T */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, tb ? CblasNoTrans : CblasTrans, (int)nr, (int)H, (int)V, 1.0f, z, (int)V,
                  W, tb ? (int)H : (int)V, 0.0f, o + r0 * H, (int)H);
    else if (wrt == 1) { /* dW += G^T x (tb: [V,H]) or x^T G ([H,V]) */
      if (tb)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)V, (int)H, (int)nr, 1.0f, z, (int)V, x + r0 * H, (int)H,
                    1.0f, o, (int)H);
      else
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)H, (int)V, (int)nr, 1.0f, x + r0 * H, (int)H, z, (int)V,
                    1.0f, o, (int)V);
    } else if (wrt == 2)
      for (int64_t i = 0; i < nr; i++)
        for (int64_t j = 0; j < V; j++) acc[j] += z[i * V + j];
  }
  if (wrt < 0) o[0] = (float)(used ? total / (double)used : 0.0);
  if (wrt == 2)
    for (int64_t j = 0; j < V; j++) o[j] = (float)acc[j];
  free(acc);
  free(z);
  return 0;
}

/* ---- layout ------------------------------------------------------------------------- */

/* out[e] = in[src(e)] for a permutation: istride[a] = input stride of output axis a */
static inline void cc_permute(void *o, const void *x, int rank, const int64_t *od, const int64_t *istride, int64_t n) {
  const int32_t *xi = x;
  int32_t *oi = o;
#pragma omp parallel for if (n > CC_PAR_MIN)
  for (int64_t e = 0; e < n; e++) {
    int64_t rem = e, src = 0;
    for (int a = rank - 1; a >= 0; a--) {
      src += (rem % od[a]) * istride[a];
      rem /= od[a];
    }
    oi[e] = xi[src];
  }
}

/* slice/pad/concat pieces: copy `outer` blocks of `len` 4-byte elements */
static inline void cc_blocks(void *o, int64_t ostride, int64_t ooff, const void *x, int64_t istride, int64_t ioff,
                      int64_t outer, int64_t len) {
  for (int64_t a = 0; a < outer; a++)
    memcpy((int32_t *)o + a * ostride + ooff, (const int32_t *)x + a * istride + ioff, (size_t)len * 4);
}

static inline int cc_sum_to(const cram_cpu_run *R, const char *node, float *o, const float *x, int xrank,
                            const int64_t *xd, int orank, const int64_t *od, int64_t nx, int64_t no) {
  double *acc = calloc((size_t)(no > 0 ? no : 1), sizeof(double)); /* sums in double, as the interpreter */
  if (!acc) return cc_fail(R, node, "out of memory for the reduction");
  for (int64_t e = 0; e < nx; e++) acc[cc_bcast(xrank, xd, orank, od, e)] += x[e];
  for (int64_t e = 0; e < no; e++) o[e] = (float)acc[e];
  free(acc);
  return 0;
}

/* ---- optimizer ------------------------------------------------------------------------ */

static inline void cc_sumsq(float *o, const float *x, int64_t n) {
  double s = 0;
#pragma omp parallel for reduction(+ : s) if (n > CC_PAR_MIN)
  for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
  o[0] = (float)s;
}

static inline int cc_adam_sched(const cram_cpu_run *R, const char *node, float *o, const float *step, const float *lr,
                         double b1, double b2) {
  double t = step[0];
  if (!(t >= 1) || t != floor(t)) {
    char msg[100];
    snprintf(msg, sizeof msg, "step must be an integer >= 1, got %g", t);
    return cc_fail(R, node, msg);
  }
  o[0] = lr[0];
  o[1] = (float)(1.0 - pow(b1, t));
  o[2] = (float)(1.0 - pow(b2, t));
  return 0;
}

#endif
