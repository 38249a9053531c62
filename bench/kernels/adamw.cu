// adamw.cu - the AdamW update over every parameter tensor of bert_crammed (134 tensors,
// 119,589,889 f32 values; shapes from models/bert_crammed.cram), with the global-norm
// clip coefficient c applied inside:
//   m = b1 m + (1 - b1) c g;  v = b2 v + (1 - b2) (c g)^2
//   p = p - lr ((m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) + wd p)   (wd = 0 for norms)
// exactly the expressions codegen/render_cuda.c emits (ex_adam_m, ex_adam_v,
// ex_adamw_param); recipe constants b1 0.9, b2 0.98, eps 1e-12, wd 0.01.
//
//   v1  the shape of cramc's update kernel today (passes/adamw_multi.c: one launch for
//       all tensors; inside it, per tensor, one grid-stride loop per node: m, then v,
//       then p, each a cr_map of elementwise.cuh): g is read twice, m and v written then read again; every tiny tensor
//       (the 768-value norms) still costs grid-wide loop trips
//   v2  multi-tensor apply (as torch's fused AdamW / apex): one launch; a table of
//       16K-value chunks, one block per chunk, m, v and p updated in one pass with
//       float4 accesses: 28 bytes per parameter (read p, g, m, v; write p, m, v)
// Bandwidth is reported on those 28 compulsory bytes a parameter for both.
//
// build: make -C bench/kernels   run: ./adamw [version] [repeats]
#include "common.h"

static const float B1 = 0.9f, B2 = 0.98f, EPS = 1e-12f, WD = 0.01f;

struct Tensor {
  float *p, *g, *m, *v;
  long long n;
  float wd;
};
struct Chunk {
  int tensor;
  long long start;
};
static const long long CHUNK = 16384;

// s0 = lr, s1 = 1 - b1^t, s2 = 1 - b2^t, c = clip coefficient
__global__ void adamw_v1(const Tensor *ts, int nt, float s0, float s1, float s2, float c) {
  for (int i = 0; i < nt; i++) {
    const Tensor T = ts[i];
    const float wd = T.wd;
    cr_map(
      T.m, T.n, [=](float a, float b) -> float { return B1 * a + (1.f - B1) * (c * b); }, cr_at(T.m), cr_at(T.g));
    cr_map(
      T.v, T.n, [=](float a, float b) -> float { return B2 * a + (1.f - B2) * (c * b) * (c * b); }, cr_at(T.v), cr_at(T.g));
    cr_map(
      T.p, T.n, [=](float a, float b, float cc) -> float { return a - s0 * ((b / s1) / (sqrtf(cc / s2) + EPS) + wd * a); },
      cr_at(T.p), cr_at(T.m), cr_at(T.v));
  }
}

__device__ __forceinline__ void adam1(float &p, float g, float &m, float &v, float wd, float s0, float s1, float s2, float c) {
  const float cg = c * g;
  m = B1 * m + (1.f - B1) * cg;
  v = B2 * v + (1.f - B2) * cg * cg;
  p = p - s0 * ((m / s1) / (sqrtf(v / s2) + EPS) + wd * p);
}
__global__ void adamw_v2(const Tensor *ts, const Chunk *chunks, float s0, float s1, float s2, float c) {
  const Chunk ch = chunks[blockIdx.x];
  const Tensor T = ts[ch.tensor];
  const long long end = ch.start + CHUNK < T.n ? ch.start + CHUNK : T.n;
  // tensors start 16-byte aligned (the host pads offsets), chunks are multiples of 4
  const long long n4 = (end - ch.start) / 4;
  float4 *p4 = (float4 *)(T.p + ch.start), *m4 = (float4 *)(T.m + ch.start), *v4 = (float4 *)(T.v + ch.start);
  const float4 *g4 = (const float4 *)(T.g + ch.start);
  for (long long i = threadIdx.x; i < n4; i += blockDim.x) {
    float4 p = p4[i], m = m4[i], v = v4[i];
    const float4 g = g4[i];
    adam1(p.x, g.x, m.x, v.x, T.wd, s0, s1, s2, c);
    adam1(p.y, g.y, m.y, v.y, T.wd, s0, s1, s2, c);
    adam1(p.z, g.z, m.z, v.z, T.wd, s0, s1, s2, c);
    adam1(p.w, g.w, m.w, v.w, T.wd, s0, s1, s2, c);
    p4[i] = p, m4[i] = m, v4[i] = v;
  }
  for (long long e = ch.start + 4 * n4 + threadIdx.x; e < end; e += blockDim.x)
    adam1(T.p[e], T.g[e], T.m[e], T.v[e], T.wd, s0, s1, s2, c);
}

// bert_crammed's parameters in graph order: (numel, decayed)
static std::vector<std::pair<long long, bool>> bert_params() {
  const long long V = 32768, H = 768, F = 3072;
  std::vector<std::pair<long long, bool>> ps = { { V * H, true }, { 1, true }, { H, false }, { H, false } };
  for (int l = 0; l < 16; l++) {
    ps.insert(ps.end(), { { H, false },
                          { H, false },
                          { 3 * H * H, true },
                          { H * H, true },
                          { H, false },
                          { H, false },
                          { F * H, true },
                          { H * F / 2, true } });
  }
  ps.insert(ps.end(), { { H, false }, { H, false } });
  return ps;
}

int main(int argc, char **argv) {
  LabArgs args = lab_args(argc, argv, 2, "adamw");
  auto ps = bert_params();
  std::vector<long long> off;
  long long total = 0, count = 0;
  for (auto &pr : ps) off.push_back(total), total += (pr.first + 3) / 4 * 4, count += pr.first;
  printf("%zu tensors, %lld parameters\n", ps.size(), count);
  if (ps.size() != 134 || count != 119589889) {
    fprintf(stderr, "adamw: bert_crammed's table is wrong (want 134 tensors, 119589889 parameters)\n");
    return 1;
  }
  std::vector<float> p = rand_vec(total, 41, -0.1f, 0.1f), g = rand_vec(total, 42, -1e-2f, 1e-2f),
                     m = rand_vec(total, 43, -1e-3f, 1e-3f), v = rand_vec(total, 44, 0.f, 1e-5f);
  const float lr = 1e-3f, c = 0.7f;
  const int t = 3;
  const float s1 = 1.f - powf(B1, (float)t), s2 = 1.f - powf(B2, (float)t);
  std::vector<float> pr = p, mr = m, vr = v;
  for (size_t i = 0; i < ps.size(); i++)
    for (long long e = off[i]; e < off[i] + ps[i].first; e++) {
      const double cg = (double)c * g[e], wd = ps[i].second ? WD : 0.0;
      mr[e] = (float)(B1 * (double)m[e] + (1.0 - B1) * cg);
      vr[e] = (float)(B2 * (double)v[e] + (1.0 - B2) * cg * cg);
      pr[e] = (float)(p[e] - lr * (((double)mr[e] / s1) / (sqrt((double)vr[e] / s2) + EPS) + wd * p[e]));
    }
  float *d_p = to_device(p), *d_g = to_device(g), *d_m = to_device(m), *d_v = to_device(v);
  std::vector<Tensor> ts;
  std::vector<Chunk> chunks;
  for (size_t i = 0; i < ps.size(); i++) {
    ts.push_back({ d_p + off[i], d_g + off[i], d_m + off[i], d_v + off[i], ps[i].first, ps[i].second ? WD : 0.f });
    for (long long s = 0; s < ps[i].first; s += CHUNK) chunks.push_back({ (int)i, s });
  }
  Tensor *d_ts = to_device(ts);
  Chunk *d_ch = to_device(chunks);
  const double bytes = 28.0 * (double)count;
  auto reset = [&] {
    cudaCheck(cudaMemcpy(d_p, p.data(), total * sizeof(float), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(d_m, m.data(), total * sizeof(float), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(d_v, v.data(), total * sizeof(float), cudaMemcpyHostToDevice));
  };
  // rtol: float vs double of a division by sqrt(v) near eps-free values; p changes by ~lr
  bool ok = true;
  const int nt = (int)ts.size(), g1 = cr_grid(total);
  if (want(args, 1)) {
    printf("v1 (cramc's multi-tensor update today: per tensor, a loop per node)\n");
    adamw_v1<<<g1, CR_BLOCK>>>(d_ts, nt, lr, s1, s2, c);
    ok &= check("p", d_p, pr.data(), total, 1e-7f, 1e-5f);
    ok &= check("m", d_m, mr.data(), total, 1e-9f, 1e-5f);
    ok &= check("v", d_v, vr.data(), total, 1e-12f, 1e-5f);
    time_kernel("v1", args.repeats, bytes, [&] { adamw_v1<<<g1, CR_BLOCK>>>(d_ts, nt, lr, s1, s2, c); });
    reset();
  }
  if (want(args, 2)) {
    printf("v2 (multi-tensor apply: 16K chunks, one pass, float4)\n");
    const int nc = (int)chunks.size();
    adamw_v2<<<nc, CR_BLOCK>>>(d_ts, d_ch, lr, s1, s2, c);
    ok &= check("p", d_p, pr.data(), total, 1e-7f, 1e-5f);
    ok &= check("m", d_m, mr.data(), total, 1e-9f, 1e-5f);
    ok &= check("v", d_v, vr.data(), total, 1e-12f, 1e-5f);
    time_kernel("v2", args.repeats, bytes, [&] { adamw_v2<<<nc, CR_BLOCK>>>(d_ts, d_ch, lr, s1, s2, c); });
  }
  for (float *q : { d_p, d_g, d_m, d_v }) cudaCheck(cudaFree(q));
  cudaCheck(cudaFree(d_ts));
  cudaCheck(cudaFree(d_ch));
  printf("adamw: %s\n", ok ? "all checks passed" : "CHECK FAILED");
  return ok ? 0 : 1;
}
