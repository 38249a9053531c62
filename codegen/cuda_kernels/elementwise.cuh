// elementwise.cuh - elementwise launches: the operand loaders and the loops a
// renderer's expression is mapped over (a fused run of elementwise nodes is
// one launch of such loops), plus the elementwise ops that need no
// expression: fill, copy, dropout, arange, the sinusoid table.
#pragma once
#include "common.cuh"

// Operands of an elementwise node: element e of the result reads
//   cr_at      p[e]          (same shape)
//   cr_first   p[0]          (a scalar)
//   cr_mod     p[e % n]      (a suffix of the result's shape: a bias)
//   cr_bc      p[cr_bcast()] (any other numpy broadcast)
// quad(e4) is elements 4*e4 .. 4*e4+3 for the float4 path (f32, same shape or scalar);
// oct(e8) is elements 8*e8 .. 8*e8+7 for the 16-byte path (f32 or bf16, same shape or scalar).

// Eight consecutive elements as floats, and their 16-byte loads and stores:
// one uint4 of bf16, or two float4 of f32 (every address 16-byte aligned).
struct cr_oct {
  float v[8];
};
__device__ __forceinline__ cr_oct cr_load8(const float *p, long long e8) {
  const float4 a = ((const float4 *)p)[2 * e8], b = ((const float4 *)p)[2 * e8 + 1];
  return cr_oct{ { a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w } };
}
__device__ __forceinline__ cr_oct cr_load8(cr_bf16p p, long long e8) {
  alignas(16) __nv_bfloat16 h[8];
  *(uint4 *)h = ((const uint4 *)p.p)[e8];
  cr_oct r;
  for (int k = 0; k < 8; k++) r.v[k] = __bfloat162float(h[k]);
  return r;
}
__device__ __forceinline__ void cr_store8(float *o, long long e8, const cr_oct &r) {
  ((float4 *)o)[2 * e8] = float4{ r.v[0], r.v[1], r.v[2], r.v[3] };
  ((float4 *)o)[2 * e8 + 1] = float4{ r.v[4], r.v[5], r.v[6], r.v[7] };
}
__device__ __forceinline__ void cr_store8(cr_bf16p o, long long e8, const cr_oct &r) {
  alignas(16) __nv_bfloat16 h[8];
  for (int k = 0; k < 8; k++) h[k] = __float2bfloat16_rn(r.v[k]);
  ((uint4 *)o.p)[e8] = *(const uint4 *)h;
}
template <class P> struct cr_at_t {
  P p;
  __device__ __forceinline__ float operator()(long long e) const { return p[e]; }
  __device__ __forceinline__ float4 quad(long long e4) const { return ((const float4 *)p)[e4]; }
  __device__ __forceinline__ cr_oct oct(long long e8) const { return cr_load8(p, e8); }
};
template <class P> struct cr_first_t {
  P p;
  __device__ __forceinline__ float operator()(long long) const { return p[0]; }
  __device__ __forceinline__ float4 quad(long long) const {
    const float v = p[0];
    return float4{ v, v, v, v };
  }
  __device__ __forceinline__ cr_oct oct(long long) const {
    const float v = p[0];
    return cr_oct{ { v, v, v, v, v, v, v, v } };
  }
};
template <class P> struct cr_mod_t {
  P p;
  long long n;
  __device__ __forceinline__ float operator()(long long e) const { return p[e % n]; }
};
template <class P> struct cr_bc_t {
  P p;
  int orank, irank;
  const long long *od, *id;
  __device__ __forceinline__ float operator()(long long e) const { return p[cr_bcast(orank, od, irank, id, e)]; }
};
template <class P> __device__ __forceinline__ cr_at_t<P> cr_at(P p) { return cr_at_t<P>{ p }; }
template <class P> __device__ __forceinline__ cr_first_t<P> cr_first(P p) { return cr_first_t<P>{ p }; }
template <class P> __device__ __forceinline__ cr_mod_t<P> cr_mod(P p, long long n) { return cr_mod_t<P>{ p, n }; }
template <class P>
__device__ __forceinline__ cr_bc_t<P> cr_bc(P p, int orank, const long long *od, int irank, const long long *id) {
  return cr_bc_t<P>{ p, orank, irank, od, id };
}

// o[e] = f(x(e)...) for e in [0, n)
template <class O, class F, class... X> __device__ __forceinline__ void cr_map(O o, long long n, F f, X... x) {
  CR_GS(e, n) o[e] = f(x(e)...);
}
// The float4 path: n % 4 == 0, o and every same-shape operand 16-byte aligned.
template <class F, class... X> __device__ __forceinline__ void cr_map4(float *o, long long n, F f, X... x) {
  CR_GS(e4, n / 4) {
    auto lanes = [&](auto... q) { return float4{ f(q.x...), f(q.y...), f(q.z...), f(q.w...) }; };
    ((float4 *)o)[e4] = lanes(x.quad(e4)...);
  }
}

// The 16-byte path: n % 8 == 0, o and every same-shape operand 16-byte
// aligned, any mix of f32 and bf16 (bf16 moves 8 elements per load or store
// instead of one 2-byte access each).
template <class O, class F, class... X> __device__ __forceinline__ void cr_map8(O o, long long n, F f, X... x) {
  CR_GS(e8, n / 8) {
    auto lanes = [&](auto... q) {
      cr_oct r;
      for (int k = 0; k < 8; k++) r.v[k] = f(q.v[k]...);
      return r;
    };
    cr_store8(o, e8, lanes(x.oct(e8)...));
  }
}

template <class O, class V> __device__ __forceinline__ void cr_fill(O o, long long n, V v) { CR_GS(e, n) o[e] = v; }
template <class O, class X> __device__ __forceinline__ void cr_copy(O o, X x, long long n) { CR_GS(e, n) o[e] = x[e]; }

// Inverted dropout with the per-run seed read from device memory at seedp (so
// a replayed CUDA graph draws a new mask); identity when not training.
template <class O, class X>
__device__ __forceinline__ void cr_dropout(O o, X x, long long n, double p, u64 key, u64 seedp, int training) {
  if (!training || p == 0.0) {
    if ((const void *)o != (const void *)x) CR_GS(e, n) o[e] = x[e];
    return;
  }
  const u64 seed = *(const u64 *)seedp;
  CR_GS(e, n) o[e] = cr_uniform(seed, key, (u64)e) < p ? 0.f : (float)((double)x[e] / (1.0 - p));
}

// o[n] = 0, 1, ..., n-1 (arange)
template <class O> __device__ __forceinline__ void cr_arange(O o, long long n) { CR_GS(e, n) o[e] = (float)e; }

// o[S, H]: the sinusoidal position table, computed in double
template <class O> __device__ __forceinline__ void cr_sinusoid(O o, long long S, long long H) {
  CR_GS(e, S * H) {
    const long long s = e / H, i = e % H, i2 = i & ~1ll;
    const double div = exp((double)i2 * (-log(10000.0) / (double)H));
    o[e] = (float)((i & 1) ? cos((double)s * div) : sin((double)s * div));
  }
}
