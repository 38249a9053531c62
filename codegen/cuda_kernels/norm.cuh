// norm.cuh - LayerNorm and RMSNorm over the last axis, forward and backward:
// one warp per row (8 rows per 256-thread block), __shfl_xor_sync
// reductions, f32 math on f32 or bf16 storage.
#pragma once
#include "common.cuh"

// o = (x - mean) * rstd [* w [+ b]] with x = xa (+ xb when ADD: add_layernorm); B implies W
template <bool ADD, bool W, bool B, class O, class X, class Y, class WT, class BT>
__device__ __forceinline__ void cr_layernorm(O o, X x0, Y x1, WT w, BT bi, long long rows, long long H, float eps) {
  long long r;
  int lane;
  if (!cr_row(rows, &r, &lane)) return;
  const auto xa = x0 + r * H;
  const auto orow = o + r * H;
  auto xv = [&](long long j) -> float {
    if constexpr (ADD) return xa[j] + (x1 + r * H)[j];
    else return xa[j];
  };
  float s = 0.f;
  for (long long j = lane; j < H; j += 32) s += xv(j);
  const float mean = cr_warp_sum(s) / (float)H;
  float q = 0.f;
  for (long long j = lane; j < H; j += 32) {
    const float d = xv(j) - mean;
    q += d * d;
  }
  const float rstd = rsqrtf(cr_warp_sum(q) / (float)H + eps);
  for (long long j = lane; j < H; j += 32) {
    if constexpr (W && B) orow[j] = (xv(j) - mean) * rstd * w[j] + bi[j];
    else if constexpr (W) orow[j] = (xv(j) - mean) * rstd * w[j];
    else orow[j] = (xv(j) - mean) * rstd;
  }
}

// dx of layernorm(x [, w]) for dy; with ADD (layernorm_grad_add) dres is added: dx + dres
template <bool W, bool ADD, class O, class X, class WT, class D, class R>
__device__ __forceinline__ void cr_layernorm_grad(O o, X x, WT w, D dy, R dres, long long rows, long long H, float eps) {
  long long r;
  int lane;
  if (!cr_row(rows, &r, &lane)) return;
  const auto xr = x + r * H;
  const auto d = dy + r * H;
  float s = 0.f;
  for (long long j = lane; j < H; j += 32) s += xr[j];
  const float mean = cr_warp_sum(s) / (float)H;
  float q = 0.f;
  for (long long j = lane; j < H; j += 32) {
    const float t = xr[j] - mean;
    q += t * t;
  }
  const float rstd = rsqrtf(cr_warp_sum(q) / (float)H + eps);
  auto gv = [&](long long j) -> float {
    if constexpr (W) return d[j] * w[j];
    else return d[j];
  };
  float mg = 0.f, mgx = 0.f;
  for (long long j = lane; j < H; j += 32) {
    const float g = gv(j);
    mg += g;
    mgx += g * (xr[j] - mean) * rstd;
  }
  mg = cr_warp_sum(mg) / (float)H, mgx = cr_warp_sum(mgx) / (float)H;
  for (long long j = lane; j < H; j += 32) {
    const float v = rstd * (gv(j) - mg - (xr[j] - mean) * rstd * mgx);
    if constexpr (ADD) o[r * H + j] = dres[r * H + j] + v;
    else o[r * H + j] = v;
  }
}

// o = x * rsqrt(mean(x^2) + eps) [* w]
template <bool W, class O, class X, class WT>
__device__ __forceinline__ void cr_rmsnorm(O o, X x, WT w, long long rows, long long H, float eps) {
  long long r;
  int lane;
  if (!cr_row(rows, &r, &lane)) return;
  const auto xr = x + r * H;
  float s = 0.f;
  for (long long j = lane; j < H; j += 32) s += xr[j] * xr[j];
  const float rr = rsqrtf(cr_warp_sum(s) / (float)H + eps);
  for (long long j = lane; j < H; j += 32) {
    if constexpr (W) o[r * H + j] = xr[j] * rr * w[j];
    else o[r * H + j] = xr[j] * rr;
  }
}

// dx of rmsnorm(x [, w]) for dy
template <bool W, class O, class X, class WT, class D>
__device__ __forceinline__ void cr_rmsnorm_grad(O o, X x, WT w, D dy, long long rows, long long H, float eps) {
  long long r;
  int lane;
  if (!cr_row(rows, &r, &lane)) return;
  const auto xr = x + r * H;
  const auto d = dy + r * H;
  auto gv = [&](long long j) -> float {
    if constexpr (W) return d[j] * w[j];
    else return d[j];
  };
  float ms = 0.f, mgx = 0.f;
  for (long long j = lane; j < H; j += 32) {
    ms += xr[j] * xr[j];
    mgx += gv(j) * xr[j];
  }
  const float rr = rsqrtf(cr_warp_sum(ms) / (float)H + eps);
  mgx = cr_warp_sum(mgx) / (float)H;
  for (long long j = lane; j < H; j += 32) {
    if constexpr (W) o[r * H + j] = rr * d[j] * w[j] - rr * rr * rr * xr[j] * mgx;
    else o[r * H + j] = rr * d[j] - rr * rr * rr * xr[j] * mgx;
  }
}
