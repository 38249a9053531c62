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

#ifdef _OPENMP
#include <omp.h>
#endif

/* `omp simd` asks for vector loops; clang reports each one it cannot vectorise
 * (under the sanitizers: most) as a -Wpass-failed warning, which is no error
 * here: the loop is still correct, only scalar. Applies to the generated C too. */
#ifdef __clang__
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

#define CC_PAR_MIN 32768 /* elements below which a loop stays single-threaded */
/* multiply-adds below which a GEMM stays on one thread: a fork/join and the
 * per-thread packing of the operands cost more than they save */
#define CC_GEMM_PAR_MIN (1 << 20)

static inline int cc_threads(void) {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/* One thread pool: the generated loops and cc_gemm split work over OpenMP's
 * threads, so OpenBLAS runs each call on the calling thread. Its own pthread
 * pool would spin on the cores OpenMP's threads need (2 threads slower than 1). */
static inline void cc_blas_serial(void) {
#ifdef OPENBLAS_VERSION
  if (openblas_get_num_threads() != 1) openblas_set_num_threads(1); /* process-wide; checked per run */
#endif
}

/* exp(x) in f32 without libm, branch-free so loops over it vectorise
 * (Cephes expf: 2^n e^r, |r| <= ln2/2, degree-6 polynomial; ~1 ulp).
 * 0 below -87.3 (incl. -inf), +inf above 88.7, NaN stays NaN. */
static inline float cc_expf(float x) {
  float xc = x < -87.3f ? -87.3f : x;
  xc = xc > 88.3f ? 88.3f : xc;
  float n = (xc * 1.44269504f + 12582912.0f) - 12582912.0f; /* round to nearest */
  float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
  float z = r * r;
  float y =
    ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r +
    5.0000001201e-1f;
  y = y * z + r + 1.0f;
  union {
    int32_t i;
    float f;
  } scale = { .i = ((int32_t)n + 127) << 23 };
  y *= scale.f;
  y = x < -87.3f ? 0.0f : y;
  return x > 88.72f ? INFINITY : y;
}

static inline double cc_gelu(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }
static inline double cc_gelu_deriv(double x) {
  return 0.5 * (1.0 + erf(x / sqrt(2.0))) + x * exp(-0.5 * x * x) * 0.3989422804014327;
}
static inline double cc_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static inline double cc_silu_deriv(double x) {
  double s = cc_sigmoid(x);
  return s * (1.0 + x * (1.0 - s));
}
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
      snprintf(msg, sizeof msg, "token id %d at position %lld is outside the vocabulary [0, %lld)", (int)ids[r], (long long)r,
               (long long)V);
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

static inline void cc_sgemm(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                            int64_t ldb, float beta, float *C, int64_t ldc) {
  if (M > 0 && N > 0)
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, 1.0f, A,
                (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

/* [lo, hi) of part t of n items split T ways, in multiples of `align` */
static inline void cc_part(int64_t n, int t, int T, int64_t align, int64_t *lo, int64_t *hi) {
  int64_t blocks = (n + align - 1) / align, per = blocks / T, extra = blocks % T;
  int64_t b0 = t * per + (t < extra ? t : extra), b1 = b0 + per + (t < extra);
  *lo = b0 * align < n ? b0 * align : n;
  *hi = b1 * align < n ? b1 * align : n;
}
/* the calling thread's part (cc_part) of n items inside an OpenMP parallel region (all of them outside one) */
static inline void cc_thread_part(int64_t n, int64_t align, int64_t *lo, int64_t *hi) {
#ifdef _OPENMP
  cc_part(n, omp_get_thread_num(), omp_get_num_threads(), align, lo, hi);
#else
  cc_part(n, 0, 1, align, lo, hi);
#endif
}

/* C = op(A) op(B) (+ beta C), split over the OpenMP threads: by batch entry
 * when there are enough of them, else by rows (or columns, when wider) of
 * each C, so every thread runs single-threaded sgemm on its own block. */
static inline void cc_gemm_beta(int ta, int tb, int64_t M, int64_t N, int64_t K, int64_t batch, const float *A, int64_t lda,
                                int64_t sa, const float *B, int64_t ldb, int64_t sb, float beta, float *C, int64_t ldc,
                                int64_t sc) {
  if (batch > 1 && sb == 0 && !ta && sa == M * lda && sc == M * ldc) /* a shared B over consecutive row blocks: */
    M *= batch, batch = 1;                                           /* one GEMM, B packed once */
  if (cc_threads() <= 1 || (double)M * (double)N * (double)K * (double)batch < CC_GEMM_PAR_MIN) {
    for (int64_t p = 0; p < batch; p++) cc_sgemm(ta, tb, M, N, K, A + p * sa, lda, B + p * sb, ldb, beta, C + p * sc, ldc);
    return;
  }
  if (batch >= 2 * cc_threads() || batch % cc_threads() == 0) {
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < batch; p++) cc_sgemm(ta, tb, M, N, K, A + p * sa, lda, B + p * sb, ldb, beta, C + p * sc, ldc);
    return;
  }
#pragma omp parallel
  {
    int64_t lo, hi;
    for (int64_t p = 0; p < batch; p++) {
      const float *a = A + p * sa, *b = B + p * sb;
      float *c = C + p * sc;
      if (M >= N) {
        cc_thread_part(M, 16, &lo, &hi);
        cc_sgemm(ta, tb, hi - lo, N, K, ta ? a + lo : a + lo * lda, lda, b, ldb, beta, c + lo * ldc, ldc);
      } else {
        cc_thread_part(N, 16, &lo, &hi);
        cc_sgemm(ta, tb, M, hi - lo, K, a, lda, tb ? b + lo * ldb : b + lo, ldb, beta, c + lo, ldc);
      }
    }
  }
}

static inline void cc_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, int64_t batch, const float *A, int64_t lda,
                           int64_t sa, const float *B, int64_t ldb, int64_t sb, float *C, int64_t ldc, int64_t sc) {
  cc_gemm_beta(ta, tb, M, N, K, batch, A, lda, sa, B, ldb, sb, 0.0f, C, ldc, sc);
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
#pragma omp simd reduction(+ : mean)
    for (int64_t j = 0; j < H; j++) {
      double x = xb ? (double)(float)((double)xa[r * H + j] + (double)xb[r * H + j]) : xa[r * H + j];
      mean += x;
    }
    mean /= (double)H;
#pragma omp simd reduction(+ : var)
    for (int64_t j = 0; j < H; j++) {
      double x = xb ? (double)(float)((double)xa[r * H + j] + (double)xb[r * H + j]) : xa[r * H + j];
      var += (x - mean) * (x - mean);
    }
    var /= (double)H;
    double rstd = 1.0 / sqrt(var + eps);
#pragma omp simd
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

/* max of a row (a NaN in the row comes out of cc_row_exp anyway): 16
 * running maxima side by side, which gcc and clang both vectorise (neither
 * vectorises a max reduction over a select without fast-math) */
static inline float cc_row_max(const float *x, int64_t n) {
  float m[16], mx = -INFINITY;
  for (int k = 0; k < 16; k++) m[k] = -INFINITY;
  int64_t j = 0;
  for (; j + 16 <= n; j += 16)
    for (int k = 0; k < 16; k++) m[k] = x[j + k] > m[k] ? x[j + k] : m[k];
  for (; j < n; j++) mx = x[j] > mx ? x[j] : mx;
  for (int k = 0; k < 16; k++) mx = m[k] > mx ? m[k] : mx;
  return mx;
}

/* o[j] = exp(x[j] - mx), returning the sum (in double); o may be x.
 * Two loops: gcc vectorises neither a mixed f32/f64 one nor, with FP traps
 * assumed, cc_expf's selects (the cpu target builds with -fno-trapping-math). */
static inline double cc_row_exp(float *o, const float *x, float mx, int64_t n) {
  for (int64_t j = 0; j < n; j++) o[j] = cc_expf(x[j] - mx);
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; j++) sum += o[j];
  return sum;
}

static inline void cc_softmax(float *o, const float *x, int64_t rows, int64_t H) {
#pragma omp parallel for if (rows * H > CC_PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    float *orow = o + r * H;
    float inv = (float)(1.0 / cc_row_exp(orow, x + r * H, cc_row_max(x + r * H, H), H));
#pragma omp simd
    for (int64_t j = 0; j < H; j++) orow[j] *= inv;
  }
}

/* o = [dres +] layernorm_grad(x, w, dy) */
static inline void cc_layernorm_grad(float *o, const float *x, const float *w, const float *dy, const float *dres, int64_t rows,
                                     int64_t H, double eps) {
#pragma omp parallel for if (rows * H > CC_PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * H, *d = dy + r * H;
    double mean = 0, var = 0, mg = 0, mgx = 0;
#pragma omp simd reduction(+ : mean)
    for (int64_t j = 0; j < H; j++) mean += xr[j];
    mean /= (double)H;
#pragma omp simd reduction(+ : var)
    for (int64_t j = 0; j < H; j++) var += (xr[j] - mean) * (xr[j] - mean);
    double rstd = 1.0 / sqrt(var / (double)H + eps);
#pragma omp simd reduction(+ : mg, mgx)
    for (int64_t j = 0; j < H; j++) {
      double g = d[j] * (w ? w[j] : 1.0);
      mg += g;
      mgx += g * (xr[j] - mean) * rstd;
    }
    mg /= (double)H;
    mgx /= (double)H;
#pragma omp simd
    for (int64_t j = 0; j < H; j++) {
      double g = d[j] * (w ? w[j] : 1.0);
      double v = rstd * (g - mg - (xr[j] - mean) * rstd * mgx);
      o[r * H + j] = dres ? (float)((double)dres[r * H + j] + (double)(float)v) : (float)v;
    }
  }
}

/* Column sums over rows in row order, columns split over the threads (each
 * sums its columns; the same sums whatever the thread count): db[j] = sum_r
 * dy[r, j] and, with st (each row's mean and rstd), dw[j] = sum_r dy[r, j]
 * (x[r, j] - mean_r) rstd_r. dw or db may be NULL. */
static inline void cc_column_sums(float *dw, float *db, const float *x, const float *dy, const double *st, int64_t rows,
                                  int64_t H) {
  int par = rows * H > CC_PAR_MIN && H >= 32 * cc_threads();
  (void)par; /* unused without OpenMP */
#pragma omp parallel if (par)
  {
    int64_t lo, hi;
    cc_thread_part(H, 16, &lo, &hi);
    for (int64_t j0 = lo; j0 < hi; j0 += 256) {
      double aw[256], ab[256];
      int64_t w = hi - j0 < 256 ? hi - j0 : 256;
      for (int64_t j = 0; j < w; j++) aw[j] = ab[j] = 0;
      for (int64_t r = 0; r < rows; r++) {
        const float *d = dy + r * H + j0;
        if (dw) {
          const float *xr = x + r * H + j0;
          const double mean = st[2 * r], rstd = st[2 * r + 1];
#pragma omp simd
          for (int64_t j = 0; j < w; j++) aw[j] += d[j] * ((xr[j] - mean) * rstd);
        }
        if (db) {
#pragma omp simd
          for (int64_t j = 0; j < w; j++) ab[j] += d[j];
        }
      }
      for (int64_t j = 0; j < w; j++) {
        if (dw) dw[j0 + j] = (float)aw[j];
        if (db) db[j0 + j] = (float)ab[j];
      }
    }
  }
}

/* layernorm's parameter gradients over x, dy [rows, H]: dw[j] = sum_r dy xhat,
 * db[j] = sum_r dy (either may be NULL): each row's mean and rstd first (rows
 * split over the threads), then cc_column_sums. */
static inline int cc_layernorm_param_grad(const cram_cpu_run *R, const char *node, float *dw, float *db, const float *x,
                                          const float *dy, int64_t rows, int64_t H, double eps) {
  double *st = NULL;
  if (dw) {
    st = malloc((size_t)(rows > 0 ? rows : 1) * 2 * sizeof(double));
    if (!st) return cc_fail(R, node, "out of memory for the row statistics");
#pragma omp parallel for if (rows * H > CC_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
      const float *xr = x + r * H;
      double mean = 0, var = 0;
#pragma omp simd reduction(+ : mean)
      for (int64_t j = 0; j < H; j++) mean += xr[j];
      mean /= (double)H;
#pragma omp simd reduction(+ : var)
      for (int64_t j = 0; j < H; j++) var += (xr[j] - mean) * (xr[j] - mean);
      st[2 * r] = mean;
      st[2 * r + 1] = 1.0 / sqrt(var / (double)H + eps);
    }
  }
  cc_column_sums(dw, db, x, dy, st, rows, H);
  free(st);
  return 0;
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
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < H; j++) s += (double)y[r * H + j] * dy[r * H + j];
#pragma omp simd
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

static inline int cc_cross_entropy(const cram_cpu_run *R, const char *node, float *o, const float *x, const int32_t *t, int64_t N,
                                   int64_t V, int64_t ignore) {
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

/* the first index of the largest of x[0..V) (torch.argmax among ties) */
static inline int64_t cc_row_argmax(const float *x, int64_t V) {
  int64_t best = 0;
  for (int64_t j = 1; j < V; j++)
    if (x[j] > x[best]) best = j;
  return best;
}

/* o[0] = rows whose argmax is the target, o[1] = rows counted (xent_hits) */
static inline int cc_xent_hits(const cram_cpu_run *R, const char *node, float *o, const float *x, const int32_t *t, int64_t N,
                               int64_t V, int64_t ignore) {
  int64_t used, hits = 0;
  if (cc_check_targets(R, node, t, N, V, ignore, &used)) return -1;
#pragma omp parallel for reduction(+ : hits) if (N * V > CC_PAR_MIN)
  for (int64_t r = 0; r < N; r++) hits += t[r] != ignore && cc_row_argmax(x + r * V, V) == t[r];
  o[0] = (float)hits, o[1] = (float)used;
  return 0;
}

/* Fused decoder + cross-entropy (interp_fused.c xent_linear*) for every
 * output of one group at once (any may be NULL): per chunk of rows the logits
 * by one sgemm into scratch, log-softmax per row in f32 with double sums, the
 * mean loss into loss[0], and from the same probabilities dx = G op(W)^T,
 * dW = G^T x (or x^T G), db = sum_rows G; the accuracy counts (xent_hits)
 * into hits[2]. */
#define CC_XENT_CHUNK_ELEMS (1 << 23) /* logits per chunk: 32 MB of scratch, so that dW is one GEMM over many rows */
static inline int cc_xent(const cram_cpu_run *R, const char *node, float *loss, float *dx, float *dW, float *db, float *hits,
                          const float *x, const float *W, const int32_t *t, const float *b, int64_t N, int64_t H, int64_t V,
                          int tb, int64_t ignore) {
  int64_t used;
  if (cc_check_targets(R, node, t, N, V, ignore, &used)) return -1;
  int64_t chunk = CC_XENT_CHUNK_ELEMS / (V > 0 ? V : 1);
  chunk = chunk < 16 ? 16 : chunk > N ? (N > 0 ? N : 1) : chunk;
  float *z = malloc((size_t)(chunk * V) * sizeof(float));
  double *acc = db ? calloc((size_t)V, sizeof(double)) : NULL;
  if (!z || (db && !acc)) return free(z), free(acc), cc_fail(R, node, "out of memory for the logits chunk");
  int grad = dx || dW || db;
  double total = 0;
  int64_t nhit = 0;
  float k = used ? (float)(1.0 / (double)used) : 0.0f;
  for (int64_t r0 = 0; r0 < N; r0 += chunk) {
    int64_t nr = N - r0 < chunk ? N - r0 : chunk;
    cc_gemm(0, tb, nr, V, H, 1, x + r0 * H, H, 0, W, tb ? H : V, 0, z, V, 0); /* z[nr,V] = x op(W) */
#pragma omp parallel for reduction(+ : total, nhit) if (nr * V > CC_PAR_MIN)
    for (int64_t i = 0; i < nr; i++) {
      float *zr = z + i * V;
      int32_t tr = t[r0 + i];
      if (tr == ignore) {
        memset(zr, 0, (size_t)V * sizeof(float));
        continue;
      }
      if (b) {
#pragma omp simd
        for (int64_t j = 0; j < V; j++) zr[j] += b[j];
      }
      if (hits) nhit += cc_row_argmax(zr, V) == tr;
      float mx = cc_row_max(zr, V), ztr = zr[tr];
      double sum = cc_row_exp(zr, zr, mx, V);
      total += mx + log(sum) - ztr;
      if (!grad) continue;
      float s = (float)(k / sum);
#pragma omp simd
      for (int64_t j = 0; j < V; j++) zr[j] *= s;
      zr[tr] -= k;
    }
    if (dx) cc_gemm(0, !tb, nr, H, V, 1, z, V, 0, W, tb ? H : V, 0, dx + r0 * H, H, 0);
    if (dW && tb) cc_gemm_beta(1, 0, V, H, nr, 1, z, V, 0, x + r0 * H, H, 0, r0 ? 1.0f : 0.0f, dW, H, 0);
    if (dW && !tb) cc_gemm_beta(1, 0, H, V, nr, 1, x + r0 * H, H, 0, z, V, 0, r0 ? 1.0f : 0.0f, dW, V, 0);
    if (db)
#pragma omp parallel for if (nr * V > CC_PAR_MIN)
      for (int64_t j0 = 0; j0 < V; j0 += 1024)
        for (int64_t i = 0; i < nr; i++)
#pragma omp simd
          for (int64_t j = j0; j < (V - j0 < 1024 ? V : j0 + 1024); j++) acc[j] += z[i * V + j];
  }
  if (loss) loss[0] = (float)(used ? total / (double)used : 0.0);
  if (hits) hits[0] = (float)nhit, hits[1] = (float)used;
  if (dW && N <= 0) memset(dW, 0, (size_t)(V * H) * sizeof(float));
  for (int64_t j = 0; db && j < V; j++) db[j] = (float)acc[j];
  free(acc);
  free(z);
  return 0;
}

/* ---- layout ------------------------------------------------------------------------- */

/* out[e] = in[src(e)] for a permutation: istride[a] = input stride of output axis a */
static inline void cc_permute(void *o, const void *x, int rank, const int64_t *od, const int64_t *istride, int64_t n) {
  const int32_t *xi = x;
  int32_t *oi = o;
  int64_t inner = rank ? od[rank - 1] : 1, ist = rank ? istride[rank - 1] : 1;
#pragma omp parallel for if (n > CC_PAR_MIN)
  for (int64_t row = 0; row < n / inner; row++) {
    int64_t rem = row, src = 0;
    for (int a = rank - 2; a >= 0; a--) {
      src += (rem % od[a]) * istride[a];
      rem /= od[a];
    }
    int32_t *dst = oi + row * inner;
    if (ist == 1) memcpy(dst, xi + src, (size_t)inner * 4);
    else
      for (int64_t j = 0; j < inner; j++) dst[j] = xi[src + j * ist];
  }
}

/* slice/pad/concat pieces: copy `outer` blocks of `len` 4-byte elements */
static inline void cc_blocks(void *o, int64_t ostride, int64_t ooff, const void *x, int64_t istride, int64_t ioff, int64_t outer,
                             int64_t len) {
  for (int64_t a = 0; a < outer; a++)
    memcpy((int32_t *)o + a * ostride + ooff, (const int32_t *)x + a * istride + ioff, (size_t)len * 4);
}

/* sum over leading axes: o[j] = sum_r x[r, j], x viewed as [rows, no] */
static inline void cc_sum_rows(float *o, const float *x, int64_t rows, int64_t no) {
  cc_column_sums(NULL, o, NULL, x, NULL, rows, no);
}

/* sum over trailing axes: o[r] = sum_j x[r, j], x viewed as [no, len] */
static inline void cc_sum_cols(float *o, const float *x, int64_t no, int64_t len) {
#pragma omp parallel for if (no * len > CC_PAR_MIN)
  for (int64_t r = 0; r < no; r++) {
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < len; j++) s += x[r * len + j];
    o[r] = (float)s;
  }
}

static inline int cc_sum_to(const cram_cpu_run *R, const char *node, float *o, const float *x, int xrank, const int64_t *xd,
                            int orank, const int64_t *od, int64_t nx, int64_t no) {
  /* the output's shape without leading 1s: a suffix of x's (sum over rows), or
   * x's leading dims followed by 1s (sum within rows)? */
  int lead = 0;
  while (lead < orank && od[lead] == 1) lead++;
  int suffix = orank - lead <= xrank, prefix = orank == xrank, k = 0;
  for (int a = lead; suffix && a < orank; a++) suffix = od[a] == xd[xrank - orank + a];
  while (k < orank && od[k] == xd[k]) k++;
  for (int a = k; prefix && a < orank; a++) prefix = od[a] == 1;
  if (no > 0 && suffix) return cc_sum_rows(o, x, nx / no, no), 0;
  if (no > 0 && prefix) return cc_sum_cols(o, x, no, nx / no), 0;
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

/* o = [lr, 1 - beta1^t, 1 - beta2^t, beta1, beta2, eps, wd, wd_other] from
 * hyper = [beta1, beta2, eps, wd, wd_other, max_norm] (ir.h IR_SCH_*, IR_HYP_*) */
static inline int cc_adam_sched(const cram_cpu_run *R, const char *node, float *o, const float *step, const float *lr,
                                const float *hyper) {
  double t = step[0], b1 = hyper[0], b2 = hyper[1];
  if (!(t >= 1) || t != floor(t)) {
    char msg[100];
    snprintf(msg, sizeof msg, "step must be an integer >= 1, got %g", t);
    return cc_fail(R, node, msg);
  }
  o[0] = lr[0];
  o[1] = (float)(1.0 - pow(b1, t));
  o[2] = (float)(1.0 - pow(b2, t));
  for (int i = 0; i < 5; i++) o[3 + i] = hyper[i];
  return 0;
}

#include "cram_cpu_attention.h" /* the fused attention kernels */

#endif
