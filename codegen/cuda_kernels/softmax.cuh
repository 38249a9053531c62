// softmax.cuh - softmax over the last axis and its gradient: one warp per row.
#pragma once
#include "common.cuh"

template <class O, class X> __device__ __forceinline__ void cr_softmax(O o, X x, long long rows, long long H) {
  long long r;
  int lane;
  if (!cr_row(rows, &r, &lane)) return;
  const auto xr = x + r * H;
  const auto orow = o + r * H;
  float m = -INFINITY;
  for (long long j = lane; j < H; j += 32) m = fmaxf(m, xr[j]);
  m = cr_warp_max(m);
  float s = 0.f;
  for (long long j = lane; j < H; j += 32) s += __expf(xr[j] - m);
  const float inv = 1.f / cr_warp_sum(s);
  for (long long j = lane; j < H; j += 32) orow[j] = __expf(xr[j] - m) * inv;
}

// dx = y * (dy - sum(y * dy)) for y = softmax(x)
template <class O, class Y, class D>
__device__ __forceinline__ void cr_softmax_grad(O o, Y y0, D dy, long long rows, long long H) {
  long long r;
  int lane;
  if (!cr_row(rows, &r, &lane)) return;
  const auto y = y0 + r * H;
  const auto d = dy + r * H;
  float s = 0.f;
  for (long long j = lane; j < H; j += 32) s += y[j] * d[j];
  s = cr_warp_sum(s);
  for (long long j = lane; j < H; j += 32) o[r * H + j] = y[j] * (d[j] - s);
}
