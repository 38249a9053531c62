// crossentropy.cuh - cross-entropy over logit rows (mean over the rows whose
// target is not `ignore`), its gradient, and the row kernel of the fused
// decoder + cross-entropy (xent_linear), which runs on chunks of rows whose
// logits a cuBLASLt GEMM wrote to scratch. Losses are reduced in double:
// per-row partials in scratch, then one block sums them (deterministic).
#pragma once
#include "common.cuh"

// One block of 1024: checks the targets (a target outside [0, V) sets the
// error word) and counts the used rows into scratch (CR_SCR_USED).
__device__ __forceinline__ void cr_count_targets(const int *tg, long long N, long long V, long long ignore, char *T, int *E,
                                                 int code) {
  __shared__ int cnt;
  if (threadIdx.x == 0) cnt = 0;
  __syncthreads();
  int mine = 0;
  for (long long r = threadIdx.x; r < N; r += blockDim.x) {
    const int t = tg[r];
    if (t == ignore) continue;
    if (t < 0 || t >= V) cr_fail(E, code);
    else mine++;
  }
  atomicAdd(&cnt, mine);
  __syncthreads();
  if (threadIdx.x == 0) *(int *)(T + CR_SCR_USED) = cnt;
}
// The sum of the n row partials (doubles at T + off): HITS, o[0] = it and
// o[1] = used rows (xent_hits); else o[0] = it / used rows (the mean loss)
template <bool HITS, class O> __device__ __forceinline__ void cr_part_reduce(O o, const char *T, long long off, long long n) {
  const double *part = (const double *)(T + off);
  double s = 0;
  for (long long i = threadIdx.x; i < n; i += blockDim.x) s += part[i];
  s = cr_block_sum_d(s);
  if (threadIdx.x != 0) return;
  const int used = *(const int *)(T + CR_SCR_USED);
  if constexpr (HITS) o[0] = (float)s, o[1] = (float)used;
  else o[0] = (float)(used ? s / used : 0.0);
}
// *part = 1 when the first argmax of the row's logits z(0 .. V) is its target t, else 0
template <class Z> __device__ __forceinline__ void cr_row_hit(Z z, int t, long long V, int lane, double *part) {
  float m = -INFINITY;
  long long at = V;
  for (long long j = lane; j < V; j += 32)
    if (z(j) > m) m = z(j), at = j;
  cr_warp_argmax(m, at);
  if (lane == 0) *part = at == t ? 1.0 : 0.0;
}
// Row r's partial: HITS, 1 when its argmax is the target; else its loss
// logsumexp(x[r]) - x[r, t]; 0 for an unused row
template <bool HITS, class X>
__device__ __forceinline__ void cr_xent_row_part(X x, const int *tg, char *T, long long N, long long V, long long ignore) {
  long long r;
  int lane;
  if (!cr_row(N, &r, &lane)) return;
  double *part = (double *)(T + CR_SCR_PART);
  const int t = tg[r];
  if (t == ignore || t < 0 || t >= V) {
    if (lane == 0) part[r] = 0;
    return;
  }
  const auto xr = x + r * V;
  if constexpr (HITS) {
    cr_row_hit([&](long long j) -> float { return (float)xr[j]; }, t, V, lane, part + r);
  } else {
    float m = -INFINITY;
    for (long long j = lane; j < V; j += 32) m = fmaxf(m, xr[j]);
    m = cr_warp_max(m);
    float s = 0.f;
    for (long long j = lane; j < V; j += 32) s += __expf(xr[j] - m);
    s = cr_warp_sum(s);
    if (lane == 0) part[r] = (double)m + log((double)s) - (double)xr[t];
  }
}
// dlogits = dloss / used * (softmax(x[r]) - onehot(t)); zero rows for unused targets
template <class O, class X, class S>
__device__ __forceinline__ void cr_xent_row_grad(O o, X x, const int *tg, S dloss, const char *T, long long N, long long V,
                                                 long long ignore) {
  long long r;
  int lane;
  if (!cr_row(N, &r, &lane)) return;
  const int t = tg[r];
  const auto d = o + r * V;
  const auto xr = x + r * V;
  if (t == ignore || t < 0 || t >= V) {
    for (long long j = lane; j < V; j += 32) d[j] = 0.f;
    return;
  }
  const int used = *(const int *)(T + CR_SCR_USED);
  const float k = used ? dloss[0] / (float)used : 0.f;
  float m = -INFINITY;
  for (long long j = lane; j < V; j += 32) m = fmaxf(m, xr[j]);
  m = cr_warp_max(m);
  float s = 0.f;
  for (long long j = lane; j < V; j += 32) s += __expf(xr[j] - m);
  const float inv = 1.f / cr_warp_sum(s);
  for (long long j = lane; j < V; j += 32) d[j] = k * __expf(xr[j] - m) * inv - (j == t ? k : 0.f);
}

// The row kernel of one chunk of the fused decoder: rows r0 .. r0+nr of the
// batch, logits z[nr, V] in scratch (bf16 or f32) [+ an f32 bias added after
// the bf16 GEMM, as the unfused chain rounds]. MODE CR_XENT_LOSS: the row
// losses into the partials at r0; CR_XENT_GRAD: g[nr, V] = dlogits / used (g
// is z itself, or an f32 copy for db when z is bf16); CR_XENT_HITS: 1 per row
// whose argmax is its target into the partials (accuracy).
enum { CR_XENT_LOSS, CR_XENT_GRAD, CR_XENT_HITS };
template <int MODE, bool BIAS, class ZP, class B, class G>
__device__ __forceinline__ void cr_xent_chunk_rows(ZP z, B bias, G g, const int *tg, char *T, long long r0, long long nr,
                                                   long long V, long long ignore) {
  long long r;
  int lane;
  if (!cr_row(nr, &r, &lane)) return;
  const int t = tg[r0 + r];
  const auto zr = z + r * V;
  const auto gr = g + r * V;
  double *part = (double *)(T + CR_SCR_PART);
  auto Z = [&](long long j) -> float {
    if constexpr (BIAS) return (float)zr[j] + bias[j];
    else return (float)zr[j];
  };
  if (t == ignore || t < 0 || t >= V) {
    if (lane == 0) part[r0 + r] = 0;
    if constexpr (MODE == CR_XENT_GRAD)
      for (long long j = lane; j < V; j += 32) gr[j] = 0.f;
    return;
  }
  if constexpr (MODE == CR_XENT_HITS) {
    cr_row_hit(Z, t, V, lane, part + r0 + r);
    return;
  }
  float m = -INFINITY;
  for (long long j = lane; j < V; j += 32) m = fmaxf(m, Z(j));
  m = cr_warp_max(m);
  float s = 0.f;
  for (long long j = lane; j < V; j += 32) s += __expf(Z(j) - m);
  s = cr_warp_sum(s);
  if constexpr (MODE == CR_XENT_LOSS) {
    if (lane == 0) part[r0 + r] = (double)m + log((double)s) - (double)Z(t);
  } else {
    const int used = *(const int *)(T + CR_SCR_USED);
    const float k = used ? 1.f / (float)used : 0.f, inv = 1.f / s;
    for (long long j = lane; j < V; j += 32) gr[j] = k * __expf(Z(j) - m) * inv - (j == t ? k : 0.f);
  }
}
// db of the fused decoder: o[V] (+)= column sums of the chunk's f32 dlogits z[nr, V]
template <bool ACC, class O> __device__ __forceinline__ void cr_colsum(O o, const float *z, long long nr, long long V) {
  CR_GS(j, V) {
    float s = 0.f;
    for (long long i = 0; i < nr; i++) s += z[i * V + j];
    if constexpr (ACC) o[j] = o[j] + s;
    else o[j] = s;
  }
}
