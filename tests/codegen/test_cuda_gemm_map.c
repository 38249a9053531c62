/* test_cuda_gemm_map.c - the row-major -> column-major mapping the cuda shim
 * hands cuBLASLt (cram_cuda_to_colmajor in cram_cuda_step.h), checked on the
 * host: for every trans combination, batched with and without a shared
 * operand, padded leading dimensions, the column-major GEMM that cuBLASLt
 * would compute from the mapped descriptors (a reference loop with cuBLAS
 * semantics) equals the row-major C[p] = op(A[p]) op(B[p]) the kernel
 * description asks for, plus beta * C. Prints "N passed, M failed". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cram_cuda_step.h"

/* column-major: X(i,j) = x[i + j*ld]; op(X) = X or X^T */
static float cm_at(const float *x, int64_t ld, int trans, int64_t i, int64_t j) { return trans ? x[j + i * ld] : x[i + j * ld]; }

static int check(int ta, int tb, int64_t M, int64_t N, int64_t K, int64_t batch, int shared_b, int pad, float beta) {
  cram_cuda_gemm g = { 0 };
  g.ta = ta, g.tb = tb, g.M = M, g.N = N, g.K = K, g.batch = batch, g.beta = beta;
  int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
  g.lda = ac + pad, g.ldb = bc + pad, g.ldc = N + pad;
  g.sa = ar * g.lda, g.sb = shared_b ? 0 : br * g.ldb, g.sc = M * g.ldc;
  size_t na = (size_t)(g.sa * batch), nb = (size_t)(shared_b ? br * g.ldb : g.sb * batch), nc = (size_t)(g.sc * batch);
  float *A = malloc(na * 4), *B = malloc(nb * 4), *C0 = malloc(nc * 4), *ref = malloc(nc * 4), *got = malloc(nc * 4);
  for (size_t i = 0; i < na; i++) A[i] = (float)((i * 37 % 101) - 50) / 50.0f;
  for (size_t i = 0; i < nb; i++) B[i] = (float)((i * 53 % 89) - 44) / 44.0f;
  for (size_t i = 0; i < nc; i++) C0[i] = (float)((i * 11 % 23) - 11) / 11.0f, ref[i] = got[i] = C0[i];
  /* row-major reference: A[p] is ar x ac with lda, op(A) = ta ? A^T : A */
  for (int64_t p = 0; p < batch; p++)
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) {
        double s = 0;
        for (int64_t k = 0; k < K; k++) {
          float a = ta ? A[p * g.sa + k * g.lda + i] : A[p * g.sa + i * g.lda + k];
          float b = tb ? B[p * g.sb + j * g.ldb + k] : B[p * g.sb + k * g.ldb + j];
          s += (double)a * b;
        }
        ref[p * g.sc + i * g.ldc + j] = (float)(s + beta * C0[p * g.sc + i * g.ldc + j]);
      }
  /* what cuBLASLt computes from the mapped descriptors: D = op(A') op(B') + beta D, column-major */
  cram_cuda_colmajor c = cram_cuda_to_colmajor(&g);
  const float *Ap = B, *Bp = A; /* the library's A is our B */
  int64_t m = (int64_t)c.c_rows, n = (int64_t)c.c_cols, kk = c.transa ? (int64_t)c.a_rows : (int64_t)c.a_cols;
  int bad = 0;
  if ((c.transa ? c.a_cols : c.a_rows) != (uint64_t)m || (c.transb ? c.b_rows : c.b_cols) != (uint64_t)n ||
      (c.transb ? c.b_cols : c.b_rows) != (uint64_t)kk || c.lda < (int64_t)c.a_rows || c.ldb < (int64_t)c.b_rows ||
      c.ldc < (int64_t)c.c_rows)
    bad = 1; /* shapes / leading dimensions cuBLASLt would reject */
  for (int64_t p = 0; p < batch && !bad; p++)
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) {
        double s = 0;
        for (int64_t k = 0; k < kk; k++)
          s += (double)cm_at(Ap + p * c.stride_a, c.lda, c.transa, i, k) * cm_at(Bp + p * c.stride_b, c.ldb, c.transb, k, j);
        float *d = got + p * c.stride_c + i + j * c.ldc;
        *d = (float)(s + beta * *d);
      }
  for (size_t i = 0; i < nc && !bad; i++)
    if (fabsf(got[i] - ref[i]) > 1e-4f * (1 + fabsf(ref[i]))) bad = 1;
  if (bad)
    fprintf(stderr, "FAIL: ta=%d tb=%d M=%lld N=%lld K=%lld batch=%lld shared_b=%d pad=%d beta=%g\n", ta, tb, (long long)M,
            (long long)N, (long long)K, (long long)batch, shared_b, pad, beta);
  free(A), free(B), free(C0), free(ref), free(got);
  return bad;
}

int main(void) {
  int pass = 0, fails = 0;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
      for (int batch = 1; batch <= 3; batch += 2)
        for (int shared = 0; shared < 2; shared++)
          for (int pad = 0; pad < 2; pad++) {
            int r = check(ta, tb, 5, 7, 3, batch, shared, pad, 0.0f) + check(ta, tb, 4, 6, 9, batch, shared, pad, 1.0f);
            pass += 2 - r, fails += r;
          }
  printf("%d passed, %d failed\n", pass, fails);
  return fails ? 1 : 0;
}
