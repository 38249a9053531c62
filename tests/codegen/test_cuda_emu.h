/* test_cuda_emu.h - force-included (g++ -include) when the generated CUDA C
 * of an artifact is compiled for the HOST by tests/codegen/test_cuda_emu.sh:
 * a tiny SIMT emulator so the kernels run without a GPU. Blocks run one after
 * another; the threads of a block are ucontext fibers switched at every
 * barrier (__syncthreads, and each warp shuffle is two barriers), so
 * __shared__ (static here) and warp reductions behave as on the device for
 * the kernels cramc writes (uniform control flow per warp). Exported:
 * emu_launch(), called by the fake libcuda (test_cuda_emu_driver.c). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

struct emu_dim3 {
  unsigned x, y, z;
};
static emu_dim3 threadIdx, blockIdx, blockDim, gridDim;
struct float4 {
  float x, y, z, w;
};
struct uint4 {
  unsigned x, y, z, w;
};

#define __global__
#define __device__
#define __forceinline__ inline
#define __noinline__    __attribute__((noinline))
#define __launch_bounds__(n)
#define __shared__ static

static ucontext_t emu_main;
static ucontext_t *emu_fib;
static unsigned emu_cur;
static double emu_slot[1024];

static void emu_yield(void) { swapcontext(&emu_fib[emu_cur], &emu_main); }
static inline void __syncthreads(void) { emu_yield(); }
template <typename T> static inline T __shfl_xor_sync(unsigned, T v, int o) {
  unsigned me = threadIdx.x;
  emu_slot[me] = (double)v;
  emu_yield();
  T r = (T)emu_slot[me ^ (unsigned)o];
  emu_yield();
  return r;
}
static inline int atomicCAS(int *a, int cmp, int v) {
  int o = *a;
  if (o == cmp) *a = v;
  return o;
}
static inline int atomicAdd(int *a, int v) {
  int o = *a;
  *a += v;
  return o;
}
static inline float atomicAdd(float *a, float v) {
  float o = *a;
  *a += v;
  return o;
}
#define __expf expf
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline float __int_as_float(int i) {
  float f;
  memcpy(&f, &i, 4);
  return f;
}
/* cuda_bf16.h as the renderer uses it (the scripts put an empty cuda_bf16.h
 * first on the include path): bf16 storage, exact widening, round to nearest even. */
struct __nv_bfloat16 {
  unsigned short x;
};
static inline float __bfloat162float(__nv_bfloat16 h) {
  uint32_t u = (uint32_t)h.x << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
static inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) == 0x7f800000u) return __nv_bfloat16{ (unsigned short)((u >> 16) | ((u & 0x7fffffu) ? 0x40u : 0u)) };
  u += 0x7fffu + ((u >> 16) & 1u);
  return __nv_bfloat16{ (unsigned short)(u >> 16) };
}

typedef void (*emu_kernel)(void *const *, char *, unsigned long long, int, int *, int);
struct emu_args {
  emu_kernel fn;
  void *const *P;
  char *T;
  unsigned long long seed;
  int training;
  int *E;
  int code;
};
static emu_args emu_a;
static bool emu_done[1024];
static void emu_entry(void) {
  emu_a.fn(emu_a.P, emu_a.T, emu_a.seed, emu_a.training, emu_a.E, emu_a.code);
  emu_done[emu_cur] = true; /* then uc_link resumes emu_main */
}

extern "C" __attribute__((visibility("default"))) void emu_launch(void *fn, unsigned grid, unsigned block, void **params) {
  static char *stacks;
  static const size_t SS = 64 << 10;
  if (!stacks) stacks = (char *)malloc(SS * 1024), emu_fib = (ucontext_t *)calloc(1024, sizeof(ucontext_t));
  emu_a.fn = (emu_kernel)fn;
  emu_a.P = *(void *const **)params[0];
  emu_a.T = *(char **)params[1];
  emu_a.seed = *(unsigned long long *)params[2];
  emu_a.training = *(int *)params[3];
  emu_a.E = *(int **)params[4];
  emu_a.code = *(int *)params[5];
  gridDim = { grid, 1, 1 }, blockDim = { block, 1, 1 };
  for (unsigned b = 0; b < grid; b++) {
    blockIdx = { b, 0, 0 };
    for (unsigned t = 0; t < block; t++) {
      getcontext(&emu_fib[t]);
      emu_fib[t].uc_stack.ss_sp = stacks + t * SS;
      emu_fib[t].uc_stack.ss_size = SS;
      emu_fib[t].uc_link = &emu_main;
      makecontext(&emu_fib[t], emu_entry, 0);
      emu_done[t] = false;
    }
    for (bool any = true; any;) { /* rounds: every live thread runs to its next barrier */
      any = false;
      for (unsigned t = 0; t < block; t++) {
        if (emu_done[t]) continue;
        any = true;
        emu_cur = t, threadIdx = { t, 0, 0 };
        swapcontext(&emu_main, &emu_fib[t]);
      }
    }
  }
}
