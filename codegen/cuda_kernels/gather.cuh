// gather.cuh - row gathers by token id or by target mask, and their
// scatter-add gradients: embedding, masked_rows, masked_targets,
// embedding_grad, masked_rows_grad.
#pragma once
#include "common.cuh"

// o[n, H] = table[ids[r], :]; an id outside [0, V) sets the error word and yields a zero row
template <class O, class W>
__device__ __forceinline__ void cr_embedding(O o, W table, const int *ids, long long n, long long V, long long H, int *E,
                                             int code) {
  CR_GS(e, n * H) {
    const long long r = e / H, j = e % H;
    const int id = ids[r];
    if (id < 0 || id >= V) {
      cr_fail(E, code);
      o[e] = 0.f;
      continue;
    }
    o[e] = table[(long long)id * H + j];
  }
}
// dtable[V, H] += dy rows at ids (dtable zeroed by an earlier launch; f32 only: atomicAdd)
template <class D>
__device__ __forceinline__ void cr_embedding_grad(float *o, const int *ids, D dy, long long n, long long V, long long H) {
  CR_GS(e, n * H) {
    const long long r = e / H, j = e % H;
    const int id = ids[r];
    if (id >= 0 && id < V) atomicAdd(&o[(long long)id * H + j], dy[e]);
  }
}

// One block per batch row b: pos[k] = position of the k-th target != -100 of
// tg[b, :] (the first COUNT of them), -1 past the last.
template <int COUNT> __device__ __forceinline__ void cr_masked_pos(int *pos, const int *tg, long long b, long long S) {
  if (threadIdx.x == 0) {
    int k = 0;
    for (long long s = 0; s < S && k < COUNT; s++)
      if (tg[b * S + s] != -100) pos[k++] = (int)s;
    for (; k < COUNT; k++) pos[k] = -1;
  }
  __syncthreads();
}
// o[B, COUNT, H] = the rows of x[B, S, H] at the masked positions (zero rows past the last)
template <int COUNT, class O, class X>
__device__ __forceinline__ void cr_masked_rows(O o, X x, const int *tg, long long S, long long H) {
  __shared__ int pos[COUNT];
  const long long b = blockIdx.x;
  cr_masked_pos<COUNT>(pos, tg, b, S);
  for (long long e = threadIdx.x; e < COUNT * H; e += blockDim.x) {
    const long long k = e / H, j = e % H;
    o[(b * COUNT + k) * H + j] = pos[k] < 0 ? 0.f : x[(b * S + pos[k]) * H + j];
  }
}
// o[B, COUNT] = the targets at the masked positions (-100 past the last)
template <int COUNT> __device__ __forceinline__ void cr_masked_targets(int *o, const int *tg, long long S) {
  __shared__ int pos[COUNT];
  const long long b = blockIdx.x;
  cr_masked_pos<COUNT>(pos, tg, b, S);
  for (long long k = threadIdx.x; k < COUNT; k += blockDim.x) o[b * COUNT + k] = pos[k] < 0 ? -100 : tg[b * S + pos[k]];
}
// dx[B, S, H]: the rows of dy[B, slots, H] back at their positions, zero elsewhere
template <int S, class O, class D>
__device__ __forceinline__ void cr_masked_rows_grad(O o, D dy, const int *tg, long long slots, long long H) {
  __shared__ int slot_of[S];
  const long long b = blockIdx.x;
  if (threadIdx.x == 0) {
    int k = 0;
    for (long long s = 0; s < S; s++) slot_of[s] = (k < slots && tg[b * S + s] != -100) ? k++ : -1;
  }
  __syncthreads();
  for (long long e = threadIdx.x; e < S * H; e += blockDim.x) {
    const long long s = e / H, j = e % H;
    o[(b * S + s) * H + j] = slot_of[s] < 0 ? 0.f : dy[(b * slots + slot_of[s]) * H + j];
  }
}
