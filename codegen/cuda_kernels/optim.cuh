// optim.cuh - the scalar kernels of the update graph: the squared norm
// (per-block partials, then one block sums them in double: deterministic),
// the clip coefficient and AdamW's bias-correction schedule.
#pragma once
#include "common.cuh"

// phase 1 (gridDim.x blocks): the block's sum of x^2 into the partials
template <class X> __device__ __forceinline__ void cr_sumsq_partials(X x, long long n, char *T) {
  double s = 0;
  CR_GS(e, n) s += (double)x[e] * x[e];
  s = cr_block_sum_d(s);
  if (threadIdx.x == 0) ((double *)(T + CR_SCR_PART))[blockIdx.x] = s;
}
// phase 1 of the global gradient norm (adamw_multi's sumsq group) as ONE
// launch: each block sums its grid-stride share of every tensor xs[t] (ns[t]
// elements), in tensor order, so the result does not depend on timing
template <class X> __device__ __forceinline__ void cr_sumsq_multi_partials(const X *xs, const long long *ns, int count, char *T) {
  double s = 0;
  for (int t = 0; t < count; t++) {
    const X x = xs[t];
    CR_GS(e, ns[t]) s += (double)x[e] * x[e];
  }
  s = cr_block_sum_d(s);
  if (threadIdx.x == 0) ((double *)(T + CR_SCR_PART))[blockIdx.x] = s;
}
// phase 2 (one block): o[0] = the sum of the nb partials
template <class O> __device__ __forceinline__ void cr_sumsq_final(O o, const char *T, int nb) {
  const double *part = (const double *)(T + CR_SCR_PART);
  double s = 0.0;
  for (int i = threadIdx.x; i < nb; i += blockDim.x) s += part[i];
  s = cr_block_sum_d(s);
  if (threadIdx.x == 0) o[0] = (float)s;
}
// o[0] = min(1, max_norm / (sqrt(sumsq) + 1e-6)) (1 when max_norm <= 0; NaN propagates);
// max_norm = hyper[5] (ir.h IR_HYP_MAX_NORM), a run-time input
template <class O, class X, class H> __device__ __forceinline__ void cr_clip_coef(O o, X sumsq, H hyper) {
  if (threadIdx.x) return;
  const double max_norm = hyper[5];
  const double coef = max_norm / (sqrt((double)sumsq[0]) + 1e-6);
  o[0] = (float)(max_norm <= 0 ? 1.0 : (coef < 1.0 ? coef : 1.0));
  if (max_norm > 0 && isnan(coef)) o[0] = (float)coef;
}
// o = {lr, 1 - beta1^t, 1 - beta2^t, beta1, beta2, eps, wd, wd_other} (ir.h IR_SCH_*) from
// hyper = {beta1, beta2, eps, wd, wd_other, max_norm} (IR_HYP_*); a step t that is not a
// positive integer sets the error word
template <class O, class S, class L, class H>
__device__ __forceinline__ void cr_adam_sched(O o, S step, L lr, H hyper, int *E, int code) {
  if (threadIdx.x) return;
  const double t = step[0], beta1 = hyper[0], beta2 = hyper[1];
  if (!(t >= 1) || t != floor(t)) {
    cr_fail(E, code);
    return;
  }
  o[0] = lr[0];
  o[1] = (float)(1.0 - pow(beta1, t));
  o[2] = (float)(1.0 - pow(beta2, t));
  for (int i = 0; i < 5; i++) o[3 + i] = hyper[i];
}
