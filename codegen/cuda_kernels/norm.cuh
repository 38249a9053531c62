// norm.cuh - LayerNorm and RMSNorm over the last axis, forward and backward:
// one warp per row (8 rows per 256-thread block), __shfl_xor_sync
// reductions, f32 math on f32 or bf16 storage.
#pragma once
#include "common.cuh"

// o = (x - mean) * rstd [* w [+ b]] with x = xa (+ xb when ADD: add_layernorm, or a residual add and the norm of
// its sum, which SUM also stores into sum); B implies W
template <bool ADD, bool W, bool B, bool SUM = false, class O, class X, class Y, class WT, class BT, class S = float *>
__device__ __forceinline__ void cr_layernorm(O o, X x0, Y x1, WT w, BT bi, long long rows, long long H, float eps, S sum = S()) {
  long long r;
  int lane;
  if (!cr_row(rows, &r, &lane)) return;
  const auto xa = x0 + r * H;
  const auto orow = o + r * H;
  auto xv = [&](long long j) -> float { // with SUM the stored sum: it may have taken xa's bytes (the planner's in-place)
    if constexpr (SUM) return sum[r * H + j];
    else if constexpr (ADD) return xa[j] + (x1 + r * H)[j];
    else return xa[j];
  };
  float s = 0.f;
  for (long long j = lane; j < H; j += 32) {
    if constexpr (SUM) {
      const float v = xa[j] + (x1 + r * H)[j]; // read before this thread's store of the same element
      sum[r * H + j] = v;
      s += v;
    } else {
      s += xv(j);
    }
  }
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

// A row's mean and 1 / sqrt(variance + eps) by its warp (lane: this thread's), as cr_layernorm
// computes them: the backward kernels recompute them from x rather than storing them.
template <class X>
__device__ __forceinline__ void cr_row_stats(X xr, long long H, int lane, float eps, float *mean, float *rstd) {
  float s = 0.f;
  for (long long j = lane; j < H; j += 32) s += xr[j];
  const float m = cr_warp_sum(s) / (float)H;
  float q = 0.f;
  for (long long j = lane; j < H; j += 32) {
    const float t = xr[j] - m;
    q += t * t;
  }
  *mean = m;
  *rstd = rsqrtf(cr_warp_sum(q) / (float)H + eps);
}

// dx of layernorm(x [, w]) for dy; with ADD (layernorm_grad_add) dres is added: dx + dres.
// STORE: into o; COPY: (also) into o2, rounded by o2's store (the bf16 GEMM operand of the cast
// the renderer folded in: the same value a cast of o gives)
template <bool W, bool ADD, bool STORE = true, bool COPY = false, class O, class X, class WT, class D, class R,
          class O2 = float *>
__device__ __forceinline__ void cr_layernorm_grad(O o, X x, WT w, D dy, R dres, long long rows, long long H, float eps,
                                                  O2 o2 = O2()) {
  long long r;
  int lane;
  if (!cr_row(rows, &r, &lane)) return;
  const auto xr = x + r * H;
  const auto d = dy + r * H;
  float mean, rstd;
  cr_row_stats(xr, H, lane, eps, &mean, &rstd);
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
    float v = rstd * (gv(j) - mg - (xr[j] - mean) * rstd * mgx);
    if constexpr (ADD) v = dres[r * H + j] + v;
    if constexpr (STORE) o[r * H + j] = v;
    if constexpr (COPY) o2[r * H + j] = v;
  }
}

// layernorm's parameter gradients (layernorm_wgrad dw = sum over rows of
// dy xhat, layernorm_bgrad db = sum over rows of dy) as per-block partial
// sums, then one pass over the blocks: no single-thread column loops, no
// atomics, the same sums on every run. Phase 1: block b takes rows
// [b R, (b+1) R), CR_LNPG_ROWS at a time: a warp per row writes the row's
// mean and rstd to shared memory (as cr_layernorm computes them), then thread
// t sums columns t, t + blockDim.x, ... over those rows (coalesced loads) into
// part[b] = [dw partial[H] | db partial[H]] at T + CR_SCR_PART.
#define CR_LNPG_ROWS 32
template <bool DW, class X, class D>
__device__ __forceinline__ void cr_layernorm_param_partials(X x, D dy, long long rows, long long H, float eps, long long R,
                                                            char *T) {
  __shared__ float st[2 * CR_LNPG_ROWS];
  float *part = (float *)(T + CR_SCR_PART) + (long long)blockIdx.x * 2 * H;
  const long long r0 = (long long)blockIdx.x * R, r1 = r0 + R < rows ? r0 + R : rows;
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
  for (long long j = threadIdx.x; j < H; j += blockDim.x) part[j] = part[H + j] = 0.f;
  for (long long c0 = r0; c0 < r1; c0 += CR_LNPG_ROWS) {
    const int nr = (int)(r1 - c0 < CR_LNPG_ROWS ? r1 - c0 : CR_LNPG_ROWS);
    if constexpr (DW) {
      for (int i0 = 0; i0 < nr; i0 += nw) { // every warp the same trip count (a dead row recomputes row c0)
        const int i = i0 + wid < nr ? i0 + wid : 0;
        const auto xr = x + (c0 + i) * H;
        float mean, rstd;
        cr_row_stats(xr, H, lane, eps, &mean, &rstd);
        if (lane == 0 && i0 + wid < nr) st[2 * i] = mean, st[2 * i + 1] = rstd;
      }
      __syncthreads();
    }
    for (long long j = threadIdx.x; j < H; j += blockDim.x) {
      float aw = 0.f, ab = 0.f;
      for (int i = 0; i < nr; i++) {
        const float d = dy[(c0 + i) * H + j];
        if constexpr (DW) aw += d * ((x[(c0 + i) * H + j] - st[2 * i]) * st[2 * i + 1]);
        ab += d;
      }
      part[j] += aw;
      part[H + j] += ab;
    }
    __syncthreads(); // st is rewritten by the next rows
  }
}
// Phase 2: column j summed over the nb blocks' partials in block order.
template <class OW, class OB>
__device__ __forceinline__ void cr_layernorm_param_final(OW dw, OB db, long long H, int nb, const char *T) {
  const float *part = (const float *)(T + CR_SCR_PART);
  CR_GS(j, H) {
    double sw = 0, sb = 0;
    for (int b = 0; b < nb; b++) sw += part[(long long)b * 2 * H + j], sb += part[(long long)b * 2 * H + H + j];
    if (dw) dw[j] = (float)sw;
    if (db) db[j] = (float)sb;
  }
}

// layernorm_grad(_add) with its layernorm_wgrad / layernorm_bgrad in one pass
// over x and dy (the renderer joins them when the partition put them in the
// norm's kernel): the row-wise dx as cr_layernorm_grad computes it, a warp per
// row, each block taking rows [b R, (b+1) R); lane l of a warp sums dy * xhat
// and dy of its columns l + 32 k (k < CPL, CPL = ceil(H / 32) <= 32) over the
// warp's rows in registers; the block's warps then add theirs into shared
// memory one warp after another, and the block's sums go to part[b] (T +
// CR_SCR_PART) for cr_layernorm_param_final: no atomics, the same sums every
// run.
template <int CPL, bool W, bool ADD, bool STORE, bool COPY, class O, class X, class WT, class D, class R, class O2>
__device__ __forceinline__ void cr_layernorm_grad_params(O o, X x, WT w, D dy, R dres, long long rows, long long H, float eps,
                                                         O2 o2, long long RB, char *T) {
  __shared__ float acc[2 * 32 * CPL];
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
  const long long r0 = (long long)blockIdx.x * RB, r1 = r0 + RB < rows ? r0 + RB : rows;
  float aw[CPL], ab[CPL];
#pragma unroll
  for (int k = 0; k < CPL; k++) aw[k] = ab[k] = 0.f;
  for (long long rb = r0; rb < r1; rb += nw) { // every warp the same trip count (a dead row recomputes row r0, stores nothing)
    const bool live = rb + wid < r1;
    const long long r = live ? rb + wid : r0;
    const auto xr = x + r * H;
    const auto d = dy + r * H;
    float mean, rstd;
    cr_row_stats(xr, H, lane, eps, &mean, &rstd);
    float mg = 0.f, mgx = 0.f;
#pragma unroll
    for (int k = 0; k < CPL; k++) {
      const long long j = lane + 32 * k;
      if (j < H) {
        const float dv = d[j], xh = (xr[j] - mean) * rstd;
        float g = dv;
        if constexpr (W) g = dv * w[j];
        mg += g;
        mgx += g * (xr[j] - mean) * rstd; // as cr_layernorm_grad: the same dx
        if (live) aw[k] += dv * xh, ab[k] += dv;
      }
    }
    mg = cr_warp_sum(mg) / (float)H, mgx = cr_warp_sum(mgx) / (float)H;
    for (long long j = lane; live && j < H; j += 32) {
      float g = d[j];
      if constexpr (W) g = g * w[j];
      float v = rstd * (g - mg - (xr[j] - mean) * rstd * mgx);
      if constexpr (ADD) v = dres[r * H + j] + v;
      if constexpr (STORE) o[r * H + j] = v;
      if constexpr (COPY) o2[r * H + j] = v;
    }
  }
  for (int i = threadIdx.x; i < 2 * 32 * CPL; i += blockDim.x) acc[i] = 0.f;
  for (int u = 0; u < nw; u++) {
    __syncthreads();
    if (wid == u)
#pragma unroll
      for (int k = 0; k < CPL; k++) acc[lane + 32 * k] += aw[k], acc[32 * CPL + lane + 32 * k] += ab[k];
  }
  __syncthreads();
  float *part = (float *)(T + CR_SCR_PART) + (long long)blockIdx.x * 2 * H;
  for (long long j = threadIdx.x; j < H; j += blockDim.x) part[j] = acc[j], part[H + j] = acc[32 * CPL + j];
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
