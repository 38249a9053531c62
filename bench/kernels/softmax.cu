// softmax.cu - attention softmax over keys, forward and backward.
// Shapes: bert_crammed at microbatch 256: 256 sequences x 12 heads x 128 queries =
// 393216 rows of S = 128 scores (the [B, heads, S, S] tensor the step materialises).
//
//   forward  v1  cramc's softmax kernel today (cr_softmax, codegen/cuda_kernels/softmax.cuh):
//                warp per row, three passes over the row (max, sum, write)
//            v2  warp per row, the row in registers (S/32 = 4 values a lane, one
//                float4 load), one read and one write
//   backward v1  cramc's softmax_grad today (cr_softmax_grad): o = y (d - sum(y d))
//            v2  the same in registers with float4
// A fused attention kernel (scores, softmax and P V per (sequence, head) in shared
// memory, never writing S or P) would remove these tensors; shared/perf-anchors.md
// section 3 estimates what that is worth at S = 128.
//
// build: make -C bench/kernels   run: ./softmax [version] [repeats]
#include "common.h"

static const int ROWS = 256 * 12 * 128, S = 128;

static void softmax_ref(const float *x, float *y) {
  for (int r = 0; r < ROWS; r++) {
    const float *xr = x + (size_t)r * S;
    double m = -INFINITY, s = 0;
    for (int j = 0; j < S; j++) m = fmax(m, xr[j]);
    for (int j = 0; j < S; j++) s += exp(xr[j] - m);
    for (int j = 0; j < S; j++) y[(size_t)r * S + j] = (float)(exp(xr[j] - m) / s);
  }
}
static void softmax_bwd_ref(const float *y, const float *d, float *o) {
  for (int r = 0; r < ROWS; r++) {
    const float *yr = y + (size_t)r * S, *dr = d + (size_t)r * S;
    double s = 0;
    for (int j = 0; j < S; j++) s += (double)yr[j] * dr[j];
    for (int j = 0; j < S; j++) o[(size_t)r * S + j] = (float)(yr[j] * (dr[j] - s));
  }
}

// ---- v1: the generated kernels ---------------------------------------------------------------
__global__ void softmax_v1(float *o, const float *x0) { cr_softmax(o, x0, ROWS, S); }
__global__ void softmax_bwd_v1(float *o, const float *x0, const float *x1) { cr_softmax_grad(o, x0, x1, ROWS, S); }

// ---- v2: one float4 a lane ----------------------------------------------------------------------
static_assert(S == 128, "v2 holds a row as one float4 per lane");
__global__ void softmax_v2(float *o, const float *x) {
  const long long r = (long long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x & 31;
  if (r >= ROWS) return;
  const float4 v = ((const float4 *)(x + r * S))[lane];
  const float m = cr_warp_max(fmaxf(fmaxf(v.x, v.y), fmaxf(v.z, v.w)));
  const float a = __expf(v.x - m), b = __expf(v.y - m), c = __expf(v.z - m), d = __expf(v.w - m);
  const float inv = 1.f / cr_warp_sum(a + b + c + d);
  ((float4 *)(o + r * S))[lane] = make_float4(a * inv, b * inv, c * inv, d * inv);
}
__global__ void softmax_bwd_v2(float *o, const float *y, const float *d) {
  const long long r = (long long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x & 31;
  if (r >= ROWS) return;
  const float4 p = ((const float4 *)(y + r * S))[lane], g = ((const float4 *)(d + r * S))[lane];
  const float s = cr_warp_sum(p.x * g.x + p.y * g.y + p.z * g.z + p.w * g.w);
  ((float4 *)(o + r * S))[lane] = make_float4(p.x * (g.x - s), p.y * (g.y - s), p.z * (g.z - s), p.w * (g.w - s));
}

int main(int argc, char **argv) {
  LabArgs args = lab_args(argc, argv, 2, "softmax");
  const size_t n = (size_t)ROWS * S;
  std::vector<float> x = rand_vec(n, 11, -4.f, 4.f), dy = rand_vec(n, 12), y(n), dx(n);
  softmax_ref(x.data(), y.data());
  softmax_bwd_ref(y.data(), dy.data(), dx.data());
  float *d_x = to_device(x), *d_y = to_device(y), *d_dy = to_device(dy);
  float *d_o = device_zeros<float>(n), *d_dx = device_zeros<float>(n);
  const double B = (double)n * sizeof(float);
  const int grid = cr_grid_rows(ROWS);
  bool ok = true;
  if (want(args, 1)) {
    printf("v1 (cramc softmax / softmax_grad today)\n");
    softmax_v1<<<grid, CR_BLOCK>>>(d_o, d_x);
    ok &= check("y", d_o, y.data(), n, 1e-6f, 1e-4f);
    time_kernel("fwd v1", args.repeats, 2 * B, [&] { softmax_v1<<<grid, CR_BLOCK>>>(d_o, d_x); });
    softmax_bwd_v1<<<grid, CR_BLOCK>>>(d_dx, d_y, d_dy);
    ok &= check("dx", d_dx, dx.data(), n, 1e-6f, 1e-4f);
    time_kernel("bwd v1", args.repeats, 3 * B, [&] { softmax_bwd_v1<<<grid, CR_BLOCK>>>(d_dx, d_y, d_dy); });
  }
  if (want(args, 2)) {
    printf("v2 (row in registers, float4)\n");
    cudaCheck(cudaMemset(d_o, 0, n * sizeof(float)));
    cudaCheck(cudaMemset(d_dx, 0, n * sizeof(float)));
    softmax_v2<<<grid, CR_BLOCK>>>(d_o, d_x);
    ok &= check("y", d_o, y.data(), n, 1e-6f, 1e-4f);
    time_kernel("fwd v2", args.repeats, 2 * B, [&] { softmax_v2<<<grid, CR_BLOCK>>>(d_o, d_x); });
    softmax_bwd_v2<<<grid, CR_BLOCK>>>(d_dx, d_y, d_dy);
    ok &= check("dx", d_dx, dx.data(), n, 1e-6f, 1e-4f);
    time_kernel("bwd v2", args.repeats, 3 * B, [&] { softmax_bwd_v2<<<grid, CR_BLOCK>>>(d_dx, d_y, d_dy); });
  }
  for (float *p : { d_x, d_y, d_dy, d_o, d_dx }) cudaCheck(cudaFree(p));
  printf("softmax: %s\n", ok ? "all checks passed" : "CHECK FAILED");
  return ok ? 0 : 1;
}
