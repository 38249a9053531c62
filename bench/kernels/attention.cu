// attention.cu - fused attention forward and backward (cramc's attention.cuh).
// Shape: bert_crammed at microbatch 128 - 128 sequences x 12 heads x seq 128 x head
// dim 64, q/k/v read from the packed per-head qkv GEMM output [B, S, 12, 3 * 64]
// (head h = [q_h | k_h | v_h]), no mask, no dropout; o [B, S, 12, 64], lse [B, 12, S],
// dqkv [B, S, 12, 192]. The CPU reference (double, one score row at a time) checks the
// first CHECK_B sequences of each output; the kernels run on all B.
//
//   v1  cramc's kernels today: cr_attention_fwd (one block per (sequence, head, 32-query
//       tile), online softmax over 32-key tiles in shared memory, CUDA cores) and the
//       backward as cr_attention_dq + cr_attention_dkdv (no atomics).
// Next versions to try here: mma.sync / wgmma tiles for the two GEMM-shaped inner loops,
// 16-byte loads of the tiles, bf16 storage. Run under `compute-sanitizer --tool racecheck`
// too: the emulator that checks these kernels in CI runs warps one after another.
//
// build: make -C bench/kernels   run: ./attention [version] [repeats]
#include "common.h"

static const int B = 128, H = 12, S = 128, D = 64, W = 3 * D, CHECK_B = 2;
static const float ALPHA = 0.125f; // 1 / sqrt(64)

static size_t at(int b, int s, int h, int col) { return (((size_t)b * S + s) * H + h) * W + col; }
static size_t ot(int b, int s, int h, int d) { return (((size_t)b * S + s) * H + h) * D + d; }

// o, lse and dqkv of sequences [0, nb) in double, as ir/interp_attention.c
static void attention_ref(const float *qkv, const float *dout, int nb, float *o, float *lse, float *dqkv) {
  std::vector<double> s(S), p(S), dp(S);
  for (int b = 0; b < nb; b++)
    for (int h = 0; h < H; h++) {
      for (int i = 0; i < S; i++) {
        double m = -INFINITY, l = 0;
        for (int j = 0; j < S; j++) {
          double acc = 0;
          for (int d = 0; d < D; d++) acc += (double)qkv[at(b, i, h, d)] * qkv[at(b, j, h, D + d)];
          s[j] = ALPHA * acc, m = fmax(m, s[j]);
        }
        for (int j = 0; j < S; j++) l += exp(s[j] - m);
        const double L = m + log(l);
        lse[((size_t)b * H + h) * S + i] = (float)L;
        double Di = 0;
        for (int d = 0; d < D; d++) {
          double acc = 0;
          for (int j = 0; j < S; j++) acc += exp(s[j] - L) * qkv[at(b, j, h, 2 * D + d)];
          o[ot(b, i, h, d)] = (float)acc;
          Di += acc * dout[ot(b, i, h, d)];
        }
        for (int j = 0; j < S; j++) {
          p[j] = exp(s[j] - L), dp[j] = 0;
          for (int d = 0; d < D; d++) dp[j] += (double)dout[ot(b, i, h, d)] * qkv[at(b, j, h, 2 * D + d)];
          const double ds = p[j] * (dp[j] - Di);
          for (int d = 0; d < D; d++) {
            dqkv[at(b, i, h, d)] += (float)(ALPHA * ds * qkv[at(b, j, h, D + d)]);
            dqkv[at(b, j, h, D + d)] += (float)(ALPHA * ds * qkv[at(b, i, h, d)]);
            dqkv[at(b, j, h, 2 * D + d)] += (float)(p[j] * dout[ot(b, i, h, d)]);
          }
        }
      }
    }
}

static cr_attn_geo geometry() {
  cr_attn_geo g = {};
  g.B = B, g.S = S, g.heads = H, g.kv_heads = H;
  for (int t = 0; t < 3; t++) g.qs[t] = g.ks[t] = g.vs[t] = t == 0 ? (long long)S * H * W : t == 1 ? (long long)H * W : W;
  g.alpha = ALPHA, g.p = 0, g.key = 0;
  return g;
}

// ---- v1: the kernels the cuda target runs ---------------------------------------------------------
__global__ void __launch_bounds__(CR_ATT_THREADS) fwd_v1(cr_attn_geo g, const float *qkv, float *o, float *lse, u64 seedp) {
  cr_attention_fwd<D, 32, false, true>(g, qkv, qkv + D, qkv + 2 * D, (const float *)0, o, lse, seedp, 0);
}
__global__ void __launch_bounds__(CR_ATT_THREADS)
  dq_v1(cr_attn_geo g, const float *qkv, const float *o, const float *lse, const float *dout, float *dqkv, u64 seedp) {
  cr_attention_dq<D, 32, false>(g, qkv, qkv + D, qkv + 2 * D, (const float *)0, o, lse, dout, dqkv, seedp, 0);
}
__global__ void __launch_bounds__(CR_ATT_THREADS)
  dkdv_v1(cr_attn_geo g, const float *qkv, const float *o, const float *lse, const float *dout, float *dqkv, u64 seedp) {
  cr_attention_dkdv<D, 32, false, true, true>(g, qkv, qkv + D, qkv + 2 * D, (const float *)0, o, lse, dout, dqkv + D,
                                              dqkv + 2 * D, seedp, 0);
}

int main(int argc, char **argv) {
  LabArgs args = lab_args(argc, argv, 1, "attention");
  const size_t nqkv = (size_t)B * S * H * W, no = (size_t)B * S * H * D, nl = (size_t)B * H * S;
  std::vector<float> qkv = rand_vec(nqkv, 21), dout = rand_vec(no, 22);
  const size_t cq = (size_t)CHECK_B * S * H * W, co = (size_t)CHECK_B * S * H * D, cl = (size_t)CHECK_B * H * S;
  std::vector<float> o(co), lse(cl), dqkv(cq, 0.f);
  attention_ref(qkv.data(), dout.data(), CHECK_B, o.data(), lse.data(), dqkv.data());
  float *d_qkv = to_device(qkv), *d_do = to_device(dout);
  float *d_o = device_zeros<float>(no), *d_lse = device_zeros<float>(nl), *d_dqkv = device_zeros<float>(nqkv);
  u64 *d_seed = device_zeros<u64>(1);
  const cr_attn_geo g = geometry();
  const int grid = B * H * (S / 32);
  // model FLOPs: forward 2 GEMMs (QK^T, PV), backward 5 (QK^T again, dP, dV, dQ, dK; dQ's kernel recomputes QK^T and dP)
  const double gemm = 2.0 * B * H * S * S * D, fb = 4.0 * no, bb = 4.0 * (nqkv + 3.0 * no + nl) + 4.0 * nqkv;
  bool ok = true;
  if (want(args, 1)) {
    printf("v1 (cramc attention.cuh: FlashAttention-2 structure on CUDA cores, fp32)\n");
    fwd_v1<<<grid, CR_ATT_THREADS>>>(g, d_qkv, d_o, d_lse, (u64)d_seed);
    ok &= check("o", d_o, o.data(), co, 1e-5f, 1e-4f);
    ok &= check("lse", d_lse, lse.data(), cl, 1e-5f, 1e-5f);
    double ms = time_kernel("fwd v1", args.repeats, (double)nqkv * 4 + fb + 4.0 * nl,
                            [&] { fwd_v1<<<grid, CR_ATT_THREADS>>>(g, d_qkv, d_o, d_lse, (u64)d_seed); });
    printf("        %.1f TFLOP/s (2 GEMM-shaped products)\n", 2 * gemm / (ms * 1e-3) / 1e12);
    auto bwd = [&] {
      dq_v1<<<grid, CR_ATT_THREADS>>>(g, d_qkv, d_o, d_lse, d_do, d_dqkv, (u64)d_seed);
      dkdv_v1<<<grid, CR_ATT_THREADS>>>(g, d_qkv, d_o, d_lse, d_do, d_dqkv, (u64)d_seed);
    };
    bwd();
    ok &= check("dqkv", d_dqkv, dqkv.data(), cq, 1e-5f, 1e-3f);
    ms = time_kernel("bwd v1", args.repeats, bb, bwd);
    printf("        %.1f TFLOP/s (5 GEMM-shaped products, + 2 recomputed)\n", 5 * gemm / (ms * 1e-3) / 1e12);
  }
  for (float *p : { d_qkv, d_do, d_o, d_lse, d_dqkv }) cudaCheck(cudaFree(p));
  cudaCheck(cudaFree(d_seed));
  printf("attention: %s\n", ok ? "all checks passed" : "CHECK FAILED");
  return ok ? 0 : 1;
}
