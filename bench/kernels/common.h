// common.h - shared by the kernel lab (bench/kernels/*.cu), in the manner of
// llm.c's dev/cuda/common.h: error checks, seeded random inputs, a checker
// that compares a device buffer with a CPU reference, and a timer that runs a
// launch many times between CUDA events and reports achieved bandwidth.
//
// Every lab binary: `./NAME [version] [repeats]` - checks each kernel version
// (or just the one given) against the CPU reference, then times it. Exit
// status 0 only if every checked version agrees.
#pragma once
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <cuda_runtime.h>

#define cudaCheck(call) cuda_check_((call), #call, __FILE__, __LINE__)
static inline void cuda_check_(cudaError_t e, const char *what, const char *file, int line) {
  if (e != cudaSuccess) {
    fprintf(stderr, "%s:%d: %s: %s\n", file, line, what, cudaGetErrorString(e));
    exit(1);
  }
}

// Device memory peak for the "% of peak" column: H100 SXM HBM3 (NVIDIA spec sheet; shared/perf-anchors.md
// says ~3.0 TB/s is achievable) unless LAB_PEAK_GBPS names another (H200: 4800).
static inline double peak_gbps() {
  const char *e = getenv("LAB_PEAK_GBPS");
  double v = e ? atof(e) : 0.0;
  return v > 0 ? v : 3350.0;
}

// Deterministic inputs: a 64-bit LCG, uniform in [lo, hi).
struct Rng {
  unsigned long long s;
  explicit Rng(unsigned long long seed) : s(seed * 6364136223846793005ull + 1442695040888963407ull) {}
  float uniform(float lo, float hi) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (float)((s >> 40) * (1.0 / 16777216.0));
  }
};
static inline std::vector<float> rand_vec(size_t n, unsigned long long seed, float lo = -1.f, float hi = 1.f) {
  Rng r(seed);
  std::vector<float> v(n);
  for (auto &x : v) x = r.uniform(lo, hi);
  return v;
}

template <typename T> static T *to_device(const std::vector<T> &h) {
  T *d = nullptr;
  cudaCheck(cudaMalloc(&d, h.size() * sizeof(T)));
  cudaCheck(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}
template <typename T> static T *device_zeros(size_t n) {
  T *d = nullptr;
  cudaCheck(cudaMalloc(&d, n * sizeof(T)));
  cudaCheck(cudaMemset(d, 0, n * sizeof(T)));
  return d;
}

// Compares n device floats with the reference: |got - ref| <= atol + rtol |ref| everywhere.
// Prints the worst element; returns false (after printing a few mismatches) otherwise.
static bool check(const char *label, const float *dev, const float *ref, size_t n, float atol, float rtol) {
  std::vector<float> got(n);
  cudaCheck(cudaMemcpy(got.data(), dev, n * sizeof(float), cudaMemcpyDeviceToHost));
  size_t bad = 0, worst = 0;
  double worst_err = -1;
  for (size_t i = 0; i < n; i++) {
    double err = fabs((double)got[i] - ref[i]), lim = atol + rtol * fabs((double)ref[i]);
    if (!(err <= lim)) { // NaN fails too
      if (bad++ < 5) fprintf(stderr, "  %s[%zu]: got %.8g, want %.8g\n", label, i, got[i], ref[i]);
    }
    if (err > worst_err || err != err) worst_err = err, worst = i;
  }
  printf("  check %-10s %zu values, max |err| %.3g at %zu%s\n", label, n, worst_err, worst, bad ? "  MISMATCH" : "");
  return bad == 0;
}

// Runs launch() `repeats` times between two events (after one untimed run) and
// prints ms per call and the bandwidth of `bytes` moved per call.
template <typename F> static double time_kernel(const char *label, int repeats, double bytes, F launch) {
  cudaEvent_t a, b;
  cudaCheck(cudaEventCreate(&a));
  cudaCheck(cudaEventCreate(&b));
  launch();
  cudaCheck(cudaGetLastError());
  cudaCheck(cudaDeviceSynchronize());
  cudaCheck(cudaEventRecord(a));
  for (int i = 0; i < repeats; i++) launch();
  cudaCheck(cudaEventRecord(b));
  cudaCheck(cudaEventSynchronize(b));
  cudaCheck(cudaGetLastError());
  float ms = 0;
  cudaCheck(cudaEventElapsedTime(&ms, a, b));
  ms /= (float)repeats;
  double gbps = bytes / (ms * 1e-3) / 1e9;
  printf("  time  %-10s %9.4f ms  %8.1f GB/s  (%.0f%% of %.0f GB/s)\n", label, ms, gbps, 100.0 * gbps / peak_gbps(), peak_gbps());
  cudaCheck(cudaEventDestroy(a));
  cudaCheck(cudaEventDestroy(b));
  return ms;
}

// argv: [version] [repeats]; version 0 = all.
struct LabArgs {
  int version = 0, repeats = 50;
};
static inline LabArgs lab_args(int argc, char **argv, int nversions, const char *name) {
  LabArgs a;
  if (argc > 1) a.version = atoi(argv[1]);
  if (argc > 2) a.repeats = atoi(argv[2]);
  if (a.version < 0 || a.version > nversions || a.repeats < 1) {
    fprintf(stderr, "usage: %s [version 1..%d, 0 = all] [repeats >= 1]\n", name, nversions);
    exit(2);
  }
  int dev = 0;
  cudaDeviceProp p;
  cudaCheck(cudaGetDevice(&dev));
  cudaCheck(cudaGetDeviceProperties(&p, dev));
  printf("%s on %s (sm_%d%d, %d SMs)\n", name, p.name, p.major, p.minor, p.multiProcessorCount);
  return a;
}
static inline bool want(const LabArgs &a, int v) { return a.version == 0 || a.version == v; }

static inline int ceil_div(long long a, long long b) { return (int)((a + b - 1) / b); }

// The kernel library of cramc's cuda target (codegen/cuda_kernels: cr_warp_sum,
// cr_layernorm, ...; the Makefile puts it and ir/ on the include path), so the v1
// kernels below are the code the cuda target runs, not copies of it.
#include "attention.cuh"
#include "common.cuh"
#include "crossentropy.cuh"
#include "elementwise.cuh"
#include "glu.cuh"
#include "norm.cuh"
#include "softmax.cuh"
// codegen: CR_BLOCK threads a block; grid_for(n) = ceil(n / CR_BLOCK) capped (grid-stride loops); warp per row, 8 rows a block
static const int CR_BLOCK = 256;
static inline int cr_grid(long long n) {
  long long g = (n + CR_BLOCK - 1) / CR_BLOCK;
  return (int)(g < 1 ? 1 : g > 4096 ? 4096 : g); // CR_GRID_CAP
}
static inline int cr_grid_rows(long long rows) { return ceil_div(rows, CR_BLOCK / 32); }

// CPU GELU (exact erf form), as the reference and the interpreter
static inline double gelu_ref(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }
static inline double gelu_d_ref(double x) { return 0.5 * (1.0 + erf(x / sqrt(2.0))) + x * exp(-0.5 * x * x) / sqrt(2.0 * M_PI); }
