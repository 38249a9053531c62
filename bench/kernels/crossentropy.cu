// crossentropy.cu - the sparse MLM head's softmax cross-entropy, forward (row losses)
// and backward (dlogits = k (softmax - onehot), k = dloss / counted rows; rows whose
// target is -100 get zero gradient and no loss).
// Shapes: bert_crammed at microbatch 128: 128 x 32 masked rows = 4096 rows of
// V = 32768 logits (512 MiB of f32 logits; the decoder GEMM writes them).
//
//   v1  cramc's cross_entropy + cross_entropy_grad kernels today (cr_xent_row_part<false>,
//       cr_xent_row_grad of codegen/cuda_kernels/crossentropy.cuh): warp per row; the loss kernel reads the row twice (max, sum),
//       the gradient kernel three times (max, sum, write): five reads and one write
//   v2  llm.c's fused classifier idea: one block per row, one pass computing max and
//       sum together (online softmax), then one pass writing dlogits in place of the
//       logits and the row loss: two reads and one write
// Bandwidth is reported on the compulsory traffic (read the logits once, write the
// gradient once) for both, so the numbers compare the work the data requires.
// (r_xent_linear, the chunked decoder GEMM + CE fusion, avoids even that round trip
// for large vocabularies; it is built from the same row kernel.)
//
// build: make -C bench/kernels   run: ./crossentropy [version] [repeats]
#include "common.h"

static const int R = 4096, V = 32768, IGNORE = -100;

static void ce_ref(const float *x, const int *t, double k, double *loss, float *d) {
  for (int r = 0; r < R; r++) {
    const float *xr = x + (size_t)r * V;
    float *dr = d + (size_t)r * V;
    if (t[r] == IGNORE) {
      loss[r] = 0;
      for (int j = 0; j < V; j++) dr[j] = 0.f;
      continue;
    }
    double m = -INFINITY, s = 0;
    for (int j = 0; j < V; j++) m = fmax(m, xr[j]);
    for (int j = 0; j < V; j++) s += exp(xr[j] - m);
    loss[r] = m + log(s) - xr[t[r]];
    for (int j = 0; j < V; j++) dr[j] = (float)(k * exp(xr[j] - m) / s - (j == t[r] ? k : 0.0));
  }
}

// ---- v1: the generated kernels ------------------------------------------------------------------
// T: the kernels' scratch (used-row count at CR_SCR_USED, row losses at CR_SCR_PART)
__global__ void ce_loss_v1(char *T, const float *x0, const int *x1) { cr_xent_row_part<false>(x0, x1, T, R, V, IGNORE); }
__global__ void ce_grad_v1(float *o, const float *x0, const int *x1, const float *dloss, const char *T) {
  cr_xent_row_grad(o, x0, x1, dloss, T, R, V, IGNORE);
}

// ---- v2: block per row, online softmax, in place -------------------------------------------------
__device__ __forceinline__ void ms_combine(float &m, float &s, float m2, float s2) {
  const float mm = fmaxf(m, m2);
  s = s * __expf(m - mm) + s2 * __expf(m2 - mm);
  m = mm;
}
static const int CE_BLOCK = 512;
__global__ void __launch_bounds__(CE_BLOCK) ce_fused_v2(float *xd, double *loss, const int *tgt, float k) {
  __shared__ float sm[CE_BLOCK / 32], ss[CE_BLOCK / 32];
  const long long r = blockIdx.x;
  const int t = tgt[r], lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
  float4 *x4 = (float4 *)(xd + r * V);
  if (t == IGNORE || t < 0 || t >= V) {
    for (int j = threadIdx.x; j < V / 4; j += blockDim.x) x4[j] = make_float4(0.f, 0.f, 0.f, 0.f);
    if (threadIdx.x == 0) loss[r] = 0;
    return;
  }
  float m = -INFINITY, s = 0.f;
  for (int j = threadIdx.x; j < V / 4; j += blockDim.x) {
    const float4 v = x4[j];
    const float mx = fmaxf(fmaxf(v.x, v.y), fmaxf(v.z, v.w));
    if (mx > m) s *= __expf(m - mx), m = mx;
    s += __expf(v.x - m) + __expf(v.y - m) + __expf(v.z - m) + __expf(v.w - m);
  }
  for (int o = 16; o; o >>= 1) ms_combine(m, s, __shfl_xor_sync(0xffffffffu, m, o), __shfl_xor_sync(0xffffffffu, s, o));
  if (lane == 0) sm[wid] = m, ss[wid] = s;
  __syncthreads();
  m = sm[0], s = ss[0];
  for (int w = 1; w < CE_BLOCK / 32; w++) ms_combine(m, s, sm[w], ss[w]);
  const float xt = xd[r * V + t]; // read before anyone overwrites it
  __syncthreads();
  const float inv = 1.f / s;
  for (int j = threadIdx.x; j < V / 4; j += blockDim.x) {
    const float4 v = x4[j];
    float4 g =
      make_float4(k * __expf(v.x - m) * inv, k * __expf(v.y - m) * inv, k * __expf(v.z - m) * inv, k * __expf(v.w - m) * inv);
    if (t / 4 == j) (&g.x)[t % 4] -= k;
    x4[j] = g;
  }
  if (threadIdx.x == 0) loss[r] = (double)m + log((double)s) - (double)xt;
}

int main(int argc, char **argv) {
  LabArgs args = lab_args(argc, argv, 2, "crossentropy");
  static_assert(V % 4 == 0, "v2 reads float4");
  const size_t n = (size_t)R * V;
  std::vector<float> x = rand_vec(n, 31, -6.f, 6.f), d(n);
  std::vector<int> t(R);
  Rng rng(32);
  int used = 0;
  for (int r = 0; r < R; r++) {
    t[r] = rng.uniform(0.f, 1.f) < 0.1f ? IGNORE : (int)rng.uniform(0.f, (float)V) % V;
    used += t[r] != IGNORE;
  }
  const float k = 1.f / (float)used; // d(mean loss) / d(row loss)
  std::vector<double> loss(R);
  ce_ref(x.data(), t.data(), k, loss.data(), d.data());
  std::vector<float> lossf(loss.begin(), loss.end());
  float *d_x = to_device(x), *d_w = device_zeros<float>(n), *d_o = device_zeros<float>(n);
  int *d_t = to_device(t);
  double *d_part = device_zeros<double>(R);
  // v1's scratch: the used-row count (set here; cr_count_targets does it in cramc), then the row losses
  char *d_T = (char *)device_zeros<double>(CR_SCR_PART / 8 + R);
  cudaCheck(cudaMemcpy(d_T + CR_SCR_USED, &used, sizeof used, cudaMemcpyHostToDevice));
  const float one = 1.f; // dloss: k = 1 / used
  float *d_one = to_device(std::vector<float>{ one });
  float *d_lossf = device_zeros<float>(R);
  const double bytes = 2.0 * n * sizeof(float);
  auto loss_to_float = [&](void) { // the checker compares floats
    std::vector<double> p(R);
    cudaCheck(cudaMemcpy(p.data(), d_part, R * sizeof(double), cudaMemcpyDeviceToHost));
    std::vector<float> pf(p.begin(), p.end());
    cudaCheck(cudaMemcpy(d_lossf, pf.data(), R * sizeof(float), cudaMemcpyHostToDevice));
  };
  bool ok = true;
  if (want(args, 1)) {
    printf("v1 (cramc cross_entropy + cross_entropy_grad today: two kernels)\n");
    const int g = cr_grid_rows(R);
    ce_loss_v1<<<g, CR_BLOCK>>>(d_T, d_x, d_t);
    ce_grad_v1<<<g, CR_BLOCK>>>(d_o, d_x, d_t, d_one, d_T);
    cudaCheck(cudaMemcpy(d_part, d_T + CR_SCR_PART, R * sizeof(double), cudaMemcpyDeviceToDevice));
    loss_to_float();
    ok &= check("row loss", d_lossf, lossf.data(), R, 1e-5f, 1e-5f);
    ok &= check("dlogits", d_o, d.data(), n, 1e-10f, 1e-3f);
    time_kernel("v1", args.repeats, bytes, [&] {
      ce_loss_v1<<<g, CR_BLOCK>>>(d_T, d_x, d_t);
      ce_grad_v1<<<g, CR_BLOCK>>>(d_o, d_x, d_t, d_one, d_T);
    });
  }
  if (want(args, 2)) {
    printf("v2 (fused, block per row, online softmax, dlogits in place)\n");
    cudaCheck(cudaMemcpy(d_w, d_x, n * sizeof(float), cudaMemcpyDeviceToDevice));
    cudaCheck(cudaMemset(d_part, 0, R * sizeof(double)));
    ce_fused_v2<<<R, CE_BLOCK>>>(d_w, d_part, d_t, k);
    loss_to_float();
    ok &= check("row loss", d_lossf, lossf.data(), R, 1e-5f, 1e-5f);
    ok &= check("dlogits", d_w, d.data(), n, 1e-10f, 1e-3f);
    // in place: each timed call starts from a fresh copy of the logits; the copy is timed
    // separately and subtracted
    const double tc = time_kernel("copy", args.repeats, bytes,
                                  [&] { cudaCheck(cudaMemcpyAsync(d_w, d_x, n * sizeof(float), cudaMemcpyDeviceToDevice)); });
    const double tt = time_kernel("copy+v2", args.repeats, 2 * bytes, [&] {
      cudaCheck(cudaMemcpyAsync(d_w, d_x, n * sizeof(float), cudaMemcpyDeviceToDevice));
      ce_fused_v2<<<R, CE_BLOCK>>>(d_w, d_part, d_t, k);
    });
    printf("  time  %-10s %9.4f ms  %8.1f GB/s  (copy subtracted)\n", "v2", tt - tc, bytes / ((tt - tc) * 1e-3) / 1e9);
  }
  for (float *p : { d_x, d_w, d_o, d_lossf, d_one }) cudaCheck(cudaFree(p));
  cudaCheck(cudaFree(d_T));
  cudaCheck(cudaFree(d_t));
  cudaCheck(cudaFree(d_part));
  printf("crossentropy: %s\n", ok ? "all checks passed" : "CHECK FAILED");
  return ok ? 0 : 1;
}
