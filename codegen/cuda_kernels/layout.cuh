// layout.cuh - data movement and the simple reductions over an axis:
// permute, slice / pad / concat blocks, broadcast_to, sum_to, mean.
#pragma once
#include "common.cuh"

// o = permute(x): od the result's dims, ist[a] the input stride of result axis a
template <class O, class X>
__device__ __forceinline__ void cr_permute(O o, X x, long long n, int rank, const long long *od, const long long *ist) {
  CR_GS(e, n) {
    long long rem = e, src = 0;
    for (int a = rank - 1; a >= 0; a--) {
      src += (rem % od[a]) * ist[a];
      rem /= od[a];
    }
    o[e] = x[src];
  }
}
// `outer` blocks of `len` elements: o[a*ostride + ooff + j] = x[a*istride + ioff + j]
// (slice, pad and each input of concat)
template <class O, class X>
__device__ __forceinline__ void cr_blocks(O o, X x, long long ostride, long long ooff, long long istride, long long ioff,
                                          long long outer, long long len) {
  CR_GS(e, outer * len) {
    const long long a = e / len, j = e % len;
    o[a * ostride + ooff + j] = x[a * istride + ioff + j];
  }
}
// o[od] = x broadcast from xd (numpy rules)
template <class O, class X>
__device__ __forceinline__ void cr_broadcast(O o, X x, long long n, int orank, const long long *od, int xrank,
                                             const long long *xd) {
  CR_GS(e, n) o[e] = x[cr_bcast(orank, od, xrank, xd, e)];
}
// sum_to when the result (after leading 1s) is a suffix of x's shape (bias
// gradients): a thread per output, summed in double, no atomics
template <class O, class X> __device__ __forceinline__ void cr_sum_rows(O o, X x, long long rows, long long n) {
  CR_GS(j, n) {
    double s = 0;
    for (long long i = 0; i < rows; i++) s += x[i * n + j];
    o[j] = (float)s;
  }
}
// any other sum_to: atomicAdd into a zeroed f32 result
template <class X>
__device__ __forceinline__ void cr_sum_scatter(float *o, X x, long long n, int xrank, const long long *xd, int orank,
                                               const long long *od) {
  CR_GS(e, n) atomicAdd(&o[cr_bcast(xrank, xd, orank, od, e)], x[e]);
}
// o = mean of x over the middle axis of [outer, len, inner], in double
template <class O, class X> __device__ __forceinline__ void cr_mean(O o, X x, long long outer, long long len, long long inner) {
  CR_GS(e, outer * inner) {
    const long long a = e / inner, i = e % inner;
    double s = 0;
    for (long long l = 0; l < len; l++) s += x[(a * len + l) * inner + i];
    o[e] = (float)(s / (double)len);
  }
}
