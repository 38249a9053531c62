// glu.cuh - gated linear units and the epilogues of the fused GEMMs that
// cuBLASLt cannot apply exactly (its GELU epilogue is the tanh
// approximation): activation, GLU, and their gradients. y is the GEMM's f32
// result in scratch (or the output itself, finished in place).
#pragma once
#include "common.cuh"

// o[rows, F] = x[:, :F] * act(x[:, F:])
template <class O, class X> __device__ __forceinline__ void cr_glu(O o, X x, long long rows, long long F, int act) {
  CR_GS(e, rows * F) {
    const long long r = e / F, j = e % F;
    o[e] = x[r * 2 * F + j] * cr_act(act, x[r * 2 * F + F + j]);
  }
}
// glu_grad(x[rows, 2F], dy[rows, F]) -> o[rows, 2F]
template <class O, class X, class D>
__device__ __forceinline__ void cr_glu_grad(O o, X x, D dy, long long rows, long long F, int act) {
  CR_GS(e, rows * F) {
    const long long r = e / F, j = e % F;
    float f, df;
    const float d = dy[e];
    cr_act_pair(act, x[r * 2 * F + F + j], &f, &df);
    o[r * 2 * F + j] = d * f;
    o[r * 2 * F + F + j] = d * x[r * 2 * F + j] * df;
  }
}

// matmul_act: o = act(y)
template <class O, class Y> __device__ __forceinline__ void cr_act_epilogue(O o, Y y, long long n, int act) {
  CR_GS(e, n) o[e] = cr_act(act, y[e]);
}
// matmul_glu: o[rows, F] = (y[:, :F] + b[:F]) * act(y[:, F:] + b[F:]), y f32
template <bool BIAS, class O, class B>
__device__ __forceinline__ void cr_glu_epilogue(O o, const float *y, B bias, long long rows, long long F, int act) {
  CR_GS(e, rows * F) {
    const long long r = e / F, j = e % F;
    float a = y[r * 2 * F + j], gg = y[r * 2 * F + F + j];
    if constexpr (BIAS) a += bias[j], gg += bias[F + j];
    o[e] = a * cr_act(act, gg);
  }
}
// matmul_act_grad: o = y * act'(x) (relu: y where x > 0)
template <class O, class X, class Y> __device__ __forceinline__ void cr_act_grad_epilogue(O o, X x, Y y, long long n, int act) {
  CR_GS(e, n) {
    float f, df;
    cr_act_pair(act, x[e], &f, &df);
    const float g = y[e];
    o[e] = act == CR_ACT_RELU ? (x[e] > 0.f ? g : 0.f) : g * df;
  }
}
