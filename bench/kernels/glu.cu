// glu.cu - the GLU of the crammed FFN, forward and backward:
//   o[r, j] = x[r, j] * gelu(x[r, F + j])           (value | gate halves of ffn.in's output)
//   dx[r, j] = dy[r, j] gelu(gate);  dx[r, F + j] = dy[r, j] value gelu'(gate)
// GELU is the exact erf form. Shapes: bert_crammed at microbatch 256: 32768 rows,
// ffn.in output 2F = 3072, F = 1536.
//
//   v1  cramc's glu / glu_grad kernels today (codegen/render_cuda.c r_glu, r_glu_grad /
//       cr_glu_grad_body): grid-stride over output elements, a 64-bit division and
//       modulo per element, the activation through the cr_act switch
//   v2  four consecutive columns a thread (float4 loads and stores), rows and columns
//       from a 2-D grid (no division), GELU inlined
// The real target is fusing this into the ffn.in GEMM's epilogue (and its gradient
// into the dgrad GEMM's), removing the round trip entirely: this lab measures what
// the standalone kernel costs until then.
//
// build: make -C bench/kernels   run: ./glu [version] [repeats]
#include "common.h"

static const int ROWS = 32768, F = 1536;

static void glu_ref(const float *x, float *o) {
  for (int r = 0; r < ROWS; r++)
    for (int j = 0; j < F; j++) {
      const float *xr = x + (size_t)r * 2 * F;
      o[(size_t)r * F + j] = (float)(xr[j] * gelu_ref(xr[F + j]));
    }
}
static void glu_bwd_ref(const float *x, const float *dy, float *dx) {
  for (int r = 0; r < ROWS; r++)
    for (int j = 0; j < F; j++) {
      const float *xr = x + (size_t)r * 2 * F;
      const double d = dy[(size_t)r * F + j];
      dx[(size_t)r * 2 * F + j] = (float)(d * gelu_ref(xr[F + j]));
      dx[(size_t)r * 2 * F + F + j] = (float)(d * xr[j] * gelu_d_ref(xr[F + j]));
    }
}

// ---- v1: the generated kernels ------------------------------------------------------------------
__global__ void glu_v1(float *o, const float *x0, int act) { cr_glu(o, x0, ROWS, F, act); }
__global__ void glu_bwd_v1(float *o, const float *x, const float *dy, int act) { cr_glu_grad(o, x, dy, ROWS, F, act); }

// ---- v2: float4, 2-D grid -----------------------------------------------------------------------
static_assert(F % 4 == 0, "v2 moves four columns a thread");
static const int TX = 128; // threads a block along the columns: F/4 = 384 = 3 blocks
__global__ void glu_v2(float *o, const float *x) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x; // float4 column
  const long long r = blockIdx.y;
  if (c >= F / 4) return;
  const float4 v = ((const float4 *)(x + r * 2 * F))[c], g = ((const float4 *)(x + r * 2 * F + F))[c];
  ((float4 *)(o + r * F))[c] = make_float4(v.x * cr_gelu(g.x), v.y * cr_gelu(g.y), v.z * cr_gelu(g.z), v.w * cr_gelu(g.w));
}
__global__ void glu_bwd_v2(float *o, const float *x, const float *dy) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  const long long r = blockIdx.y;
  if (c >= F / 4) return;
  const float4 v = ((const float4 *)(x + r * 2 * F))[c], g = ((const float4 *)(x + r * 2 * F + F))[c];
  const float4 d = ((const float4 *)(dy + r * F))[c];
  ((float4 *)(o + r * 2 * F))[c] = make_float4(d.x * cr_gelu(g.x), d.y * cr_gelu(g.y), d.z * cr_gelu(g.z), d.w * cr_gelu(g.w));
  ((float4 *)(o + r * 2 * F + F))[c] = make_float4(d.x * v.x * cr_gelu_deriv(g.x), d.y * v.y * cr_gelu_deriv(g.y),
                                                   d.z * v.z * cr_gelu_deriv(g.z), d.w * v.w * cr_gelu_deriv(g.w));
}

int main(int argc, char **argv) {
  LabArgs args = lab_args(argc, argv, 2, "glu");
  const size_t nx = (size_t)ROWS * 2 * F, no = (size_t)ROWS * F;
  std::vector<float> x = rand_vec(nx, 21, -3.f, 3.f), dy = rand_vec(no, 22), o(no), dx(nx);
  glu_ref(x.data(), o.data());
  glu_bwd_ref(x.data(), dy.data(), dx.data());
  float *d_x = to_device(x), *d_dy = to_device(dy), *d_o = device_zeros<float>(no), *d_dx = device_zeros<float>(nx);
  const double fwd_bytes = (double)(nx + no) * sizeof(float), bwd_bytes = (double)(2 * nx + no) * sizeof(float);
  const int g1 = cr_grid((long long)ROWS * F);
  const dim3 g2(ceil_div(F / 4, TX), ROWS);
  bool ok = true;
  if (want(args, 1)) {
    printf("v1 (cramc glu / glu_grad today)\n");
    glu_v1<<<g1, CR_BLOCK>>>(d_o, d_x, CR_ACT_GELU);
    ok &= check("o", d_o, o.data(), no, 1e-5f, 1e-4f);
    time_kernel("fwd v1", args.repeats, fwd_bytes, [&] { glu_v1<<<g1, CR_BLOCK>>>(d_o, d_x, CR_ACT_GELU); });
    glu_bwd_v1<<<g1, CR_BLOCK>>>(d_dx, d_x, d_dy, CR_ACT_GELU);
    ok &= check("dx", d_dx, dx.data(), nx, 1e-5f, 1e-4f);
    time_kernel("bwd v1", args.repeats, bwd_bytes, [&] { glu_bwd_v1<<<g1, CR_BLOCK>>>(d_dx, d_x, d_dy, CR_ACT_GELU); });
  }
  if (want(args, 2)) {
    printf("v2 (float4, 2-D grid)\n");
    cudaCheck(cudaMemset(d_o, 0, no * sizeof(float)));
    cudaCheck(cudaMemset(d_dx, 0, nx * sizeof(float)));
    glu_v2<<<g2, TX>>>(d_o, d_x);
    ok &= check("o", d_o, o.data(), no, 1e-5f, 1e-4f);
    time_kernel("fwd v2", args.repeats, fwd_bytes, [&] { glu_v2<<<g2, TX>>>(d_o, d_x); });
    glu_bwd_v2<<<g2, TX>>>(d_dx, d_x, d_dy);
    ok &= check("dx", d_dx, dx.data(), nx, 1e-5f, 1e-4f);
    time_kernel("bwd v2", args.repeats, bwd_bytes, [&] { glu_bwd_v2<<<g2, TX>>>(d_dx, d_x, d_dy); });
  }
  for (float *p : { d_x, d_dy, d_o, d_dx }) cudaCheck(cudaFree(p));
  printf("glu: %s\n", ok ? "all checks passed" : "CHECK FAILED");
  return ok ? 0 : 1;
}
