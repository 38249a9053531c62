// common.cuh - what every kernel of cramc's CUDA library shares: index and
// pointer types, bf16 storage, the grid-stride loop, activations, warp and
// block reductions, the dropout hash and the error word.
//
// The library (codegen/cuda_kernels/<family>.cuh) is embedded in cramc at build time
// and handed to NVRTC as headers; the generated translation unit includes
// every file and holds only thin extern "C" __global__ wrappers that read
// their buffers from the launch's pointer table and call one of these
// functions with the node's constants (docs/codegen.md, "The CUDA kernel
// library"). Functions are __forceinline__ so those constants fold as if the
// kernel had been written for the shape. The same files are included by the
// kernel lab (bench/kernels) and, compiled for the host, by the SIMT emulator
// of tests/codegen (test_cuda_emu.h).
#pragma once
#include <cuda_bf16.h>

typedef long long i64;
typedef unsigned long long u64;

// bf16 storage, f32 math: a load converts to float (exact), a store rounds to
// nearest even (__float2bfloat16_rn, as the interpreter's interp_round_bf16);
// bf16 to bf16 copies are exact.
struct cr_bfref {
  __nv_bfloat16 *p;
  __device__ __forceinline__ operator float() const { return __bfloat162float(*p); }
  __device__ __forceinline__ cr_bfref &operator=(float v) {
    *p = __float2bfloat16_rn(v);
    return *this;
  }
  __device__ __forceinline__ cr_bfref &operator=(const cr_bfref &o) {
    *p = *o.p;
    return *this;
  }
};
struct cr_bf16p {
  __nv_bfloat16 *p;
  __device__ __forceinline__ explicit cr_bf16p(void *q) : p((__nv_bfloat16 *)q) {}
  __device__ __forceinline__ cr_bfref operator[](long long i) const { return cr_bfref{ p + i }; }
  __device__ __forceinline__ cr_bf16p operator+(long long i) const { return cr_bf16p(p + i); }
  __device__ __forceinline__ explicit operator const void *() const { return p; }
};

#ifndef NULL
#define NULL 0
#endif
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

// grid-stride loop over [0, n)
#define CR_GS(e, n) \
  for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < (long long)(n); e += (long long)gridDim.x * blockDim.x)

// Activations, numbered as ir/acts.def (CR_ACT_<NAME>, generated from the same table).
enum cr_act_kind {
#define ACT(id, name, ...) CR_ACT_##id,
#include "acts.def"
#undef ACT
};
__device__ __forceinline__ float cr_gelu(float x) { return 0.5f * x * (1.f + erff(x * 0.70710678118654752f)); }
__device__ __forceinline__ float cr_gelu_deriv(float x) {
  return 0.5f * (1.f + erff(x * 0.70710678118654752f)) + x * __expf(-0.5f * x * x) * 0.3989422804014327f;
}
__device__ __forceinline__ float cr_sigmoid(float x) { return 1.f / (1.f + expf(-x)); }
__device__ __forceinline__ float cr_silu_deriv(float x) {
  const float s = cr_sigmoid(x);
  return s * (1.f + x * (1.f - s));
}
// f(x) and f'(x) of activation `act` (erf GELU, not the tanh approximation)
__device__ __forceinline__ void cr_act_pair(int act, float x, float *f, float *df) {
  switch (act) {
  case CR_ACT_GELU: *f = cr_gelu(x), *df = cr_gelu_deriv(x); break;
  case CR_ACT_RELU: *f = x > 0.f ? x : 0.f, *df = x > 0.f ? 1.f : 0.f; break;
  case CR_ACT_SIGMOID: *f = 1.f / (1.f + __expf(-x)), *df = *f * (1.f - *f); break;
  default: *f = x, *df = 1.f; break;
  }
}
__device__ __forceinline__ float cr_act(int act, float x) {
  float f, df;
  cr_act_pair(act, x, &f, &df);
  return f;
}

// The flat index into a broadcast operand (dims id, rank irank; numpy rules)
// of element `flat` of the result (dims od, rank orank).
__device__ __forceinline__ long long cr_bcast(int orank, const long long *od, int irank, const long long *id, long long flat) {
  long long idx = 0, stride = 1;
  for (int a = orank - 1, b = irank - 1; a >= 0; a--, b--) {
    const long long coord = flat % od[a];
    flat /= od[a];
    if (b >= 0) {
      if (id[b] != 1) idx += coord * stride;
      stride *= id[b];
    }
  }
  return idx;
}

// splitmix64, as interp_ops.c hash_uniform: the same dropout masks as the cpu/interp targets
__device__ __forceinline__ double cr_uniform(u64 seed, u64 key, u64 e) {
  u64 z = seed ^ (key * 0x9E3779B97F4A7C15ull) ^ (e * 0xD1B54A32D192ED03ull);
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (double)(z >> 11) * 1.1102230246251565e-16;
}

__device__ __forceinline__ float cr_warp_sum(float v) {
  for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float cr_warp_max(float v) {
  for (int o = 16; o; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
// the warp's largest v and, among equal ones, the smallest index i (torch.argmax's
// choice when each lane scanned its columns in ascending order), in every lane
__device__ __forceinline__ void cr_warp_argmax(float &v, long long &i) {
  for (int o = 16; o; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const long long oi = __shfl_xor_sync(0xffffffffu, i, o);
    if (ov > v || (ov == v && oi < i)) v = ov, i = oi;
  }
}
__device__ __forceinline__ double cr_warp_sum_d(double v) {
  for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
// whole-block sum (blockDim.x a multiple of 32, <= 1024); the result in every thread
__device__ __forceinline__ double cr_block_sum_d(double v) {
  __shared__ double w[32];
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = cr_warp_sum_d(v);
  __syncthreads();
  if (lane == 0) w[wid] = v;
  __syncthreads();
  v = lane < nw ? w[lane] : 0.0;
  return cr_warp_sum_d(v);
}

// A kernel reports a bad token id / target / step by setting the error word
// to its launch number (first error wins).
__device__ __forceinline__ void cr_fail(int *E, int code) { atomicCAS(E, 0, code); }

// Warp-per-row kernels (8 rows per 256-thread block): this thread's row and
// lane; false past the last row.
__device__ __forceinline__ bool cr_row(long long rows, long long *r, int *lane) {
  *r = (long long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  *lane = threadIdx.x & 31;
  return *r < rows;
}

// Scratch layout of the loss and norm kernels: [0, 64) counters, [64, ...) doubles.
#define CR_SCR_USED 0
#define CR_SCR_PART 64
