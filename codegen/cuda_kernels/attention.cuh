// attention.cuh - fused attention (ops.def: attention + attention_lse,
// attention_grad), FlashAttention-2's structure on CUDA cores:
//
//   forward   one block per (batch, head, tile of QT query rows): the Q tile
//             and, one after another, tiles of KT keys and values sit in
//             shared memory; scores, an online softmax (running max and sum
//             per row, the partial output rescaled when the max grows) and
//             P V never leave the block. Writes o and the rows' log-sum-exp.
//   backward  two kernels, no atomics (deterministic): dQ per (batch, head,
//             query tile) looping over key tiles, and dK/dV per (batch, kv
//             group, key tile) looping over the group's heads and the query
//             rows; both rebuild P from the forward's lse, and dS = P (dP - D)
//             with D = rowsum(do * o).
//
// q, k, v are read in place from the layout the qkv GEMM wrote (bshd: element
// strides of batch, seq and head; the pointers already point at the part's
// first column), o and do are [B, S, heads, dh] and the gradients are written
// in the layout of the source they belong to, so no copy surrounds the kernels.
// Each block has 256 threads: TPR threads per query row (8 for head dims up
// to 64, 16 above), each holding EPT of the tile's scores and DPT of the
// row's output columns; tiles are stored f32 in static shared memory, rows
// padded by one float against bank conflicts (<= 37 KB a block).
//
// Dropout: the mask of the unfused graph's dropout node (the same hash,
// element ((b*heads + h)*S + i)*S + j). A fully masked row (all scores -inf)
// gives P = 0, o = 0 and lse = -inf, as the interpreter's reference
// (ir/interp_attention.c). Not done yet: tensor-core (mma) tiles and 16-byte
// vector loads of the tiles, which need a GPU to tune.
#pragma once
#include "common.cuh"

#define CR_ATT_THREADS 256

// the node's geometry (ir.h IrAttnGeom), constant per launch
struct cr_attn_geo {
  long long B, S, heads, kv_heads;
  long long qs[3], ks[3], vs[3]; // element strides (batch, seq, head) of the q, k, v parts
  long long bs[4];               // bias strides (b, h, i, j); 0 = broadcast
  float alpha;                   // score scale
  double p;                      // dropout probability
  u64 key;                       // dropout mask stream
};

// QT (chosen by the renderer, render_cuda_attention.c: 32 for head dims up to
// 64, 16 above, so the tiles fit 48 KB of static shared memory) = rows
// (queries, or keys in dK/dV) a block owns
template <int DH, int QT_> struct cr_att_cfg {
  static_assert(CR_ATT_THREADS % QT_ == 0 && CR_ATT_THREADS / QT_ <= 32, "a row's threads are lanes of one warp");
  static constexpr int QT = QT_;
  static constexpr int KT = QT; // rows of the tile it streams (keys, or queries in dK/dV)
  static constexpr int TPR = CR_ATT_THREADS / QT;
  static constexpr int EPT = KT / TPR; // scores per thread per tile
  static constexpr int DPT = (DH + TPR - 1) / TPR;
};

// max / sum over the TPR threads of one row (consecutive lanes of one warp)
template <int TPR> __device__ __forceinline__ float cr_att_max(float v) {
  for (int o = TPR / 2; o; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
template <int TPR> __device__ __forceinline__ float cr_att_sum(float v) {
  for (int o = TPR / 2; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// the dropout factor of probability (b, h, i, j): 0 or 1/(1-p)
__device__ __forceinline__ float cr_att_keep(const cr_attn_geo &g, u64 seed, long long b, long long h, long long i, long long j) {
  const u64 e = (u64)(((b * g.heads + h) * g.S + i) * g.S + j);
  return cr_uniform(seed, g.key, e) < g.p ? 0.f : (float)(1.0 / (1.0 - g.p));
}

// rows [r0, r0 + n) of part x (head hx, batch b) into dst[n][DH+1], zeros past S
template <int DH, class X>
__device__ __forceinline__ void cr_att_load(float (*dst)[DH + 1], int n, X x, const long long *st, long long b, long long hx,
                                            long long r0, long long S) {
  for (int e = threadIdx.x; e < n * DH; e += CR_ATT_THREADS) {
    const int r = e / DH, d = e % DH;
    const long long s = r0 + r;
    dst[r][d] = s < S ? (float)x[b * st[0] + s * st[1] + hx * st[2] + d] : 0.f;
  }
}

// alpha <a, b> over DH columns of two shared rows
template <int DH> __device__ __forceinline__ float cr_att_dot(const float *a, const float *b) {
  float s = 0.f;
#pragma unroll 8
  for (int d = 0; d < DH; d++) s += a[d] * b[d];
  return s;
}

template <bool HAS_BIAS, class Bi>
__device__ __forceinline__ float cr_att_bias(const cr_attn_geo &g, Bi bias, long long b, long long h, long long i, long long j) {
  if (!HAS_BIAS || i >= g.S || j >= g.S) return 0.f;
  return (float)bias[b * g.bs[0] + h * g.bs[1] + i * g.bs[2] + j * g.bs[3]];
}

// o (WRITE_O) and lse (nullable) of one (batch, head, query tile) block
template <int DH, int QT, bool HAS_BIAS, bool WRITE_O, class X, class Bi, class O>
__device__ __forceinline__ void cr_attention_fwd(const cr_attn_geo &g, X q, X k, X v, Bi bias, O o, float *lse, u64 seedp,
                                                 int training) {
  typedef cr_att_cfg<DH, QT> C;
  __shared__ float sq[C::QT][DH + 1], sk[C::KT][DH + 1], sv[C::KT][DH + 1], sp[C::QT][C::KT + 1];
  const long long S = g.S, ntile = (S + C::QT - 1) / C::QT;
  const long long qt = blockIdx.x % ntile, h = (blockIdx.x / ntile) % g.heads, b = blockIdx.x / ntile / g.heads;
  const long long kvh = h / (g.heads / g.kv_heads), i0 = qt * C::QT;
  const int r = threadIdx.x / C::TPR, sub = threadIdx.x % C::TPR;
  const long long i = i0 + r;
  const bool drop = training && g.p > 0;
  const u64 seed = drop ? *(const u64 *)seedp : 0;
  cr_att_load<DH>(sq, C::QT, q, g.qs, b, h, i0, S);
  float m = -INFINITY, l = 0.f, acc[C::DPT];
  for (int t = 0; t < C::DPT; t++) acc[t] = 0.f;
  for (long long j0 = 0; j0 < S; j0 += C::KT) {
    __syncthreads(); // the previous tile's readers are done
    cr_att_load<DH>(sk, C::KT, k, g.ks, b, kvh, j0, S);
    cr_att_load<DH>(sv, C::KT, v, g.vs, b, kvh, j0, S);
    __syncthreads();
    float s[C::EPT], tmax = -INFINITY;
    for (int u = 0; u < C::EPT; u++) {
      const int jj = sub + u * C::TPR;
      const long long j = j0 + jj;
      s[u] = j < S ? g.alpha * cr_att_dot<DH>(sq[r], sk[jj]) + cr_att_bias<HAS_BIAS>(g, bias, b, h, i, j) : -INFINITY;
      tmax = fmaxf(tmax, s[u]);
    }
    const float mnew = fmaxf(m, cr_att_max<C::TPR>(tmax));
    const float corr = m == -INFINITY ? 0.f : __expf(m - mnew);
    float psum = 0.f;
    for (int u = 0; u < C::EPT; u++) {
      const int jj = sub + u * C::TPR;
      const float pj = mnew == -INFINITY ? 0.f : __expf(s[u] - mnew);
      psum += pj;
      sp[r][jj] = drop && i < S && j0 + jj < S ? pj * cr_att_keep(g, seed, b, h, i, j0 + jj) : pj;
    }
    l = l * corr + cr_att_sum<C::TPR>(psum);
    m = mnew;
    __syncthreads(); // sp complete
    for (int t = 0; t < C::DPT; t++) {
      const int d = sub + t * C::TPR;
      if (d >= DH) break;
      float a = acc[t] * corr;
      for (int jj = 0; jj < C::KT; jj++) a += sp[r][jj] * sv[jj][d];
      acc[t] = a;
    }
  }
  if (i >= S) return;
  if (WRITE_O) {
    const float inv = l > 0.f ? 1.f / l : 0.f;
    for (int t = 0; t < C::DPT; t++) {
      const int d = sub + t * C::TPR;
      if (d < DH) o[((b * S + i) * g.heads + h) * DH + d] = acc[t] * inv;
    }
  }
  if (lse && sub == 0) lse[(b * g.heads + h) * S + i] = m == -INFINITY ? -INFINITY : m + logf(l);
}

// P of score s for a row with log-sum-exp L (0 for a fully masked row)
__device__ __forceinline__ float cr_att_prob(float s, float L) { return L == -INFINITY ? 0.f : __expf(s - L); }

// dq = alpha dS k for one (batch, head, query tile) block; dq points at the q
// part of the gradient buffer, which has the q source's strides
template <int DH, int QT, bool HAS_BIAS, class X, class Bi, class Yo, class Yd, class O>
__device__ __forceinline__ void cr_attention_dq(const cr_attn_geo &g, X q, X k, X v, Bi bias, Yo o, const float *lse, Yd dout,
                                                O dq, u64 seedp, int training) {
  typedef cr_att_cfg<DH, QT> C;
  __shared__ float sq[C::QT][DH + 1], sdo[C::QT][DH + 1], sk[C::KT][DH + 1], sv[C::KT][DH + 1], sds[C::QT][C::KT + 1];
  const long long S = g.S, ntile = (S + C::QT - 1) / C::QT;
  const long long qt = blockIdx.x % ntile, h = (blockIdx.x / ntile) % g.heads, b = blockIdx.x / ntile / g.heads;
  const long long kvh = h / (g.heads / g.kv_heads), i0 = qt * C::QT;
  const int r = threadIdx.x / C::TPR, sub = threadIdx.x % C::TPR;
  const long long i = i0 + r;
  const bool drop = training && g.p > 0;
  const u64 seed = drop ? *(const u64 *)seedp : 0;
  const long long os[3] = { S * g.heads * DH, g.heads * DH, DH }; // o and do: [B, S, heads, dh]
  cr_att_load<DH>(sq, C::QT, q, g.qs, b, h, i0, S);
  cr_att_load<DH>(sdo, C::QT, dout, os, b, h, i0, S);
  __syncthreads(); // the tiles are complete before D reads them
  float D = 0.f;   // rowsum(do * o) of row i
  for (int t = 0; t < C::DPT; t++) {
    const int d = sub + t * C::TPR;
    if (d < DH && i < S) D += sdo[r][d] * (float)o[((b * S + i) * g.heads + h) * DH + d];
  }
  D = cr_att_sum<C::TPR>(D);
  const float L = i < S ? lse[(b * g.heads + h) * S + i] : -INFINITY;
  float acc[C::DPT];
  for (int t = 0; t < C::DPT; t++) acc[t] = 0.f;
  for (long long j0 = 0; j0 < S; j0 += C::KT) {
    __syncthreads();
    cr_att_load<DH>(sk, C::KT, k, g.ks, b, kvh, j0, S);
    cr_att_load<DH>(sv, C::KT, v, g.vs, b, kvh, j0, S);
    __syncthreads();
    for (int u = 0; u < C::EPT; u++) {
      const int jj = sub + u * C::TPR;
      const long long j = j0 + jj;
      float ds = 0.f;
      if (j < S && i < S) {
        const float s = g.alpha * cr_att_dot<DH>(sq[r], sk[jj]) + cr_att_bias<HAS_BIAS>(g, bias, b, h, i, j);
        float dp = cr_att_dot<DH>(sdo[r], sv[jj]);
        if (drop) dp *= cr_att_keep(g, seed, b, h, i, j);
        ds = cr_att_prob(s, L) * (dp - D);
      }
      sds[r][jj] = ds;
    }
    __syncthreads();
    for (int t = 0; t < C::DPT; t++) {
      const int d = sub + t * C::TPR;
      if (d >= DH) break;
      float a = acc[t];
      for (int jj = 0; jj < C::KT; jj++) a += sds[r][jj] * sk[jj][d];
      acc[t] = a;
    }
  }
  if (i >= S) return;
  for (int t = 0; t < C::DPT; t++) {
    const int d = sub + t * C::TPR;
    if (d < DH) dq[b * g.qs[0] + i * g.qs[1] + h * g.qs[2] + d] = g.alpha * acc[t];
  }
}

// dk = alpha dS^T q and dv = P'^T do for one (batch, kv group, key tile)
// block, summed over the group's query heads and every query row; dk / dv
// point at their parts of the gradient buffer (strides of the k / v source)
template <int DH, int QT, bool HAS_BIAS, bool WRITE_DK, bool WRITE_DV, class X, class Bi, class Yo, class Yd, class O>
__device__ __forceinline__ void cr_attention_dkdv(const cr_attn_geo &g, X q, X k, X v, Bi bias, Yo o, const float *lse, Yd dout,
                                                  O dk, O dv, u64 seedp, int training) {
  typedef cr_att_cfg<DH, QT> C;
  __shared__ float sk[C::QT][DH + 1], sv[C::QT][DH + 1], sq[C::KT][DH + 1], sdo[C::KT][DH + 1];
  __shared__ float spk[C::KT][C::QT + 1], sds[C::KT][C::QT + 1], sD[C::KT], sL[C::KT];
  const long long S = g.S, ntile = (S + C::QT - 1) / C::QT;
  const long long kt = blockIdx.x % ntile, kvh = (blockIdx.x / ntile) % g.kv_heads, b = blockIdx.x / ntile / g.kv_heads;
  const long long grp = g.heads / g.kv_heads, j0 = kt * C::QT;
  const int c = threadIdx.x / C::TPR, sub = threadIdx.x % C::TPR; // key row c of the block, j = j0 + c
  const long long j = j0 + c;
  const bool drop = training && g.p > 0;
  const u64 seed = drop ? *(const u64 *)seedp : 0;
  const long long os[3] = { S * g.heads * DH, g.heads * DH, DH };
  cr_att_load<DH>(sk, C::QT, k, g.ks, b, kvh, j0, S);
  cr_att_load<DH>(sv, C::QT, v, g.vs, b, kvh, j0, S);
  float adk[C::DPT], adv[C::DPT];
  for (int t = 0; t < C::DPT; t++) adk[t] = adv[t] = 0.f;
  for (long long h = kvh * grp; h < (kvh + 1) * grp; h++)
    for (long long i0 = 0; i0 < S; i0 += C::KT) {
      __syncthreads();
      cr_att_load<DH>(sq, C::KT, q, g.qs, b, h, i0, S);
      cr_att_load<DH>(sdo, C::KT, dout, os, b, h, i0, S);
      if (threadIdx.x < C::KT) { // the chunk's D = rowsum(do * o) and lse, one thread a row
        const long long i = i0 + threadIdx.x;
        float D = 0.f;
        if (i < S)
          for (int d = 0; d < DH; d++)
            D += (float)dout[((b * S + i) * g.heads + h) * DH + d] * (float)o[((b * S + i) * g.heads + h) * DH + d];
        sD[threadIdx.x] = D;
        sL[threadIdx.x] = i < S ? lse[(b * g.heads + h) * S + i] : -INFINITY;
      }
      __syncthreads();
      for (int u = 0; u < C::EPT; u++) {
        const int ii = sub + u * C::TPR;
        const long long i = i0 + ii;
        float pk = 0.f, ds = 0.f;
        if (i < S && j < S) {
          const float s = g.alpha * cr_att_dot<DH>(sq[ii], sk[c]) + cr_att_bias<HAS_BIAS>(g, bias, b, h, i, j);
          const float P = cr_att_prob(s, sL[ii]), keep = drop ? cr_att_keep(g, seed, b, h, i, j) : 1.f;
          pk = P * keep;
          ds = P * (cr_att_dot<DH>(sdo[ii], sv[c]) * keep - sD[ii]);
        }
        spk[ii][c] = pk;
        sds[ii][c] = ds;
      }
      __syncthreads();
      for (int t = 0; t < C::DPT; t++) {
        const int d = sub + t * C::TPR;
        if (d >= DH) break;
        float a = adk[t], e = adv[t];
        for (int ii = 0; ii < C::KT; ii++) a += sds[ii][c] * sq[ii][d], e += spk[ii][c] * sdo[ii][d];
        adk[t] = a, adv[t] = e;
      }
    }
  if (j >= S) return;
  for (int t = 0; t < C::DPT; t++) {
    const int d = sub + t * C::TPR;
    if (d >= DH) break;
    if (WRITE_DK) dk[b * g.ks[0] + j * g.ks[1] + kvh * g.ks[2] + d] = g.alpha * adk[t];
    if (WRITE_DV) dv[b * g.vs[0] + j * g.vs[1] + kvh * g.vs[2] + d] = adv[t];
  }
}
