/* test_cuda_emu_driver.c - a FAKE libcuda.so.1 and libcublasLt.so.13 for
 * tests/codegen/test_cuda_emu.sh (built once, installed under both names in
 * a private directory on LD_LIBRARY_PATH): device memory is host memory,
 * cuModuleLoadData ignores the cubin and dlopens $CRAM_CUDA_EMU_KERNELS (the
 * artifact's generated CUDA C compiled for the host with test_cuda_emu.h),
 * cuLaunchKernel runs it through that library's emu_launch(), and
 * cublasLtMatmul is a reference column-major GEMM with the BIAS / RELU
 * epilogues over f32 or bf16 (CUDA_R_16BF) layouts (double accumulation,
 * the result rounded to f32 and then, for a bf16 D, to nearest-even bf16). It lets the whole cuda step (shim, launch tables, kernels,
 * cuBLASLt descriptors) run on a machine without a GPU. Streams and CUDA
 * graphs: launches must name a created stream (the legacy NULL stream is
 * refused); while a stream captures, kernel launches and matmuls are
 * recorded (their arguments copied) instead of run, a graph replays them,
 * and destroying an instantiated graph prints "fake libcuda: CUDA graph of
 * N launches replayed K times" to stderr, which the test looks for. A test
 * double: the loaded kernel library and the open capture are statics. The
 * file is loaded twice (as libcuda.so.1 and as libcublasLt.so.13): the
 * cuBLASLt copy records into the libcuda copy's capture via emu_record. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cublasLt.h>
#include <cuda.h>

#define EXPORT __attribute__((visibility("default")))

static void *emu_mod;

/* ---- capture and replay ----------------------------------------------------------- */

typedef struct Op {
  void (*fn)(const void *blob);
  _Alignas(16) unsigned char blob[160];
} Op;
typedef struct FakeGraph {
  Op *ops;
  size_t n, cap;
  unsigned long replays;
} FakeGraph;
static FakeGraph *capturing; /* the open capture of the (one) stream, or NULL */
#define FAKE_STREAM ((CUstream)(uintptr_t)0x5717ea4u)

/* Appends fn(blob) to the open capture; 0 when none is open (run it now). */
EXPORT int emu_record(void (*fn)(const void *), const void *blob, size_t n) {
  if (!capturing || n > sizeof capturing->ops[0].blob) return 0;
  if (capturing->n == capturing->cap) {
    size_t cap = capturing->cap ? 2 * capturing->cap : 64;
    Op *o = realloc(capturing->ops, cap * sizeof *o);
    if (!o) return 0;
    capturing->ops = o, capturing->cap = cap;
  }
  Op *op = &capturing->ops[capturing->n++];
  op->fn = fn;
  memcpy(op->blob, blob, n);
  return 1;
}
/* Through the libcuda copy, whichever copy calls it. */
static int record(void (*fn)(const void *), const void *blob, size_t n) {
  void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  int (*rec)(void (*)(const void *), const void *, size_t) =
    h ? (int (*)(void (*)(const void *), const void *, size_t))dlsym(h, "emu_record") : NULL;
  int r = rec ? rec(fn, blob, n) : 0;
  if (h) dlclose(h);
  return r;
}

EXPORT CUresult cuStreamCreate(CUstream *s, unsigned flags) { return (void)flags, *s = FAKE_STREAM, CUDA_SUCCESS; }
EXPORT CUresult cuStreamDestroy(CUstream s) { return s == FAKE_STREAM ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE; }
EXPORT CUresult cuStreamBeginCapture(CUstream s, CUstreamCaptureMode mode) {
  (void)mode;
  if (s != FAKE_STREAM || capturing) return CUDA_ERROR_ILLEGAL_STATE;
  return (capturing = calloc(1, sizeof *capturing)) ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}
EXPORT CUresult cuStreamEndCapture(CUstream s, CUgraph *g) {
  if (s != FAKE_STREAM || !capturing) return CUDA_ERROR_ILLEGAL_STATE;
  *g = (CUgraph)capturing, capturing = NULL;
  return CUDA_SUCCESS;
}
EXPORT CUresult cuGraphInstantiate(CUgraphExec *e, CUgraph g, unsigned long long flags) {
  (void)flags;
  const FakeGraph *G = (const FakeGraph *)g;
  FakeGraph *x = calloc(1, sizeof *x);
  if (!x || !(x->ops = malloc((G->n ? G->n : 1) * sizeof *x->ops))) return free(x), CUDA_ERROR_OUT_OF_MEMORY;
  memcpy(x->ops, G->ops, G->n * sizeof *x->ops);
  x->n = G->n;
  *e = (CUgraphExec)x;
  return CUDA_SUCCESS;
}
EXPORT CUresult cuGraphLaunch(CUgraphExec e, CUstream s) {
  FakeGraph *x = (FakeGraph *)e;
  if (s != FAKE_STREAM) return CUDA_ERROR_INVALID_HANDLE;
  for (size_t i = 0; i < x->n; i++) x->ops[i].fn(x->ops[i].blob);
  x->replays++;
  return CUDA_SUCCESS;
}
EXPORT CUresult cuGraphDestroy(CUgraph g) {
  FakeGraph *G = (FakeGraph *)g;
  if (G) free(G->ops), free(G);
  return CUDA_SUCCESS;
}
EXPORT CUresult cuGraphExecDestroy(CUgraphExec e) {
  FakeGraph *x = (FakeGraph *)e;
  fprintf(stderr, "fake libcuda: CUDA graph of %zu launches replayed %lu times\n", x->n, x->replays);
  free(x->ops), free(x);
  return CUDA_SUCCESS;
}

EXPORT CUresult cuInit(unsigned f) { return (void)f, CUDA_SUCCESS; }
EXPORT CUresult cuDeviceGetCount(int *n) { return *n = 1, CUDA_SUCCESS; }
EXPORT CUresult cuDeviceGet(CUdevice *d, int o) { return *d = o, CUDA_SUCCESS; }
EXPORT CUresult cuDeviceGetAttribute(int *v, CUdevice_attribute a, CUdevice d) {
  (void)d;
  const char *sm = getenv("CRAM_CUDA_EMU_SM");
  int s = sm ? atoi(sm) : 90;
  *v = a == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR   ? s / 10
       : a == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR ? s % 10
                                                           : 0;
  return CUDA_SUCCESS;
}
EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext *c, CUdevice d) { return (void)d, *c = (CUcontext)1, CUDA_SUCCESS; }
EXPORT CUresult cuDevicePrimaryCtxRelease(CUdevice d) { return (void)d, CUDA_SUCCESS; }
EXPORT CUresult cuCtxSetCurrent(CUcontext c) { return (void)c, CUDA_SUCCESS; }
EXPORT CUresult cuCtxSynchronize(void) { return CUDA_SUCCESS; }
EXPORT CUresult cuModuleLoadData(CUmodule *m, const void *img) {
  (void)img;
  const char *k = getenv("CRAM_CUDA_EMU_KERNELS");
  if (!k || !(emu_mod = dlopen(k, RTLD_NOW | RTLD_LOCAL))) {
    fprintf(stderr, "fake libcuda: cannot load CRAM_CUDA_EMU_KERNELS: %s\n", k ? dlerror() : "unset");
    return CUDA_ERROR_INVALID_IMAGE;
  }
  *m = (CUmodule)emu_mod;
  return CUDA_SUCCESS;
}
EXPORT CUresult cuModuleUnload(CUmodule m) { return (void)m, CUDA_SUCCESS; }
EXPORT CUresult cuModuleGetFunction(CUfunction *f, CUmodule m, const char *name) {
  void *p = dlsym((void *)m, name);
  if (!p) return CUDA_ERROR_NOT_FOUND;
  *f = (CUfunction)p;
  return CUDA_SUCCESS;
}
EXPORT CUresult cuMemAlloc(CUdeviceptr *p, size_t n) {
  void *q = aligned_alloc(256, (n + 255) / 256 * 256);
  if (!q) return CUDA_ERROR_OUT_OF_MEMORY;
  memset(q, 0xA5, n); /* garbage, as device memory is */
  *p = (CUdeviceptr)(uintptr_t)q;
  return CUDA_SUCCESS;
}
EXPORT CUresult cuMemFree(CUdeviceptr p) { return free((void *)(uintptr_t)p), CUDA_SUCCESS; }
EXPORT CUresult cuMemcpyHtoD(CUdeviceptr d, const void *s, size_t n) { return memcpy((void *)(uintptr_t)d, s, n), CUDA_SUCCESS; }
EXPORT CUresult cuMemcpyDtoH(void *d, CUdeviceptr s, size_t n) { return memcpy(d, (void *)(uintptr_t)s, n), CUDA_SUCCESS; }
EXPORT CUresult cuMemcpyDtoD(CUdeviceptr d, CUdeviceptr s, size_t n) {
  return memmove((void *)(uintptr_t)d, (void *)(uintptr_t)s, n), CUDA_SUCCESS;
}
EXPORT CUresult cuMemsetD8(CUdeviceptr d, unsigned char v, size_t n) { return memset((void *)(uintptr_t)d, v, n), CUDA_SUCCESS; }
/* A kernel of the artifact: (void *const *P, char *T, u64 seed, int training, int *E, int code). */
typedef struct KLaunch {
  void *f;
  unsigned gx, bx;
  void *P, *T;
  unsigned long long seed;
  int training;
  void *E;
  int code;
} KLaunch;
static void run_kernel(const void *blob) {
  KLaunch k;
  memcpy(&k, blob, sizeof k);
  void (*launch)(void *, unsigned, unsigned, void **) =
    (void (*)(void *, unsigned, unsigned, void **))dlsym(emu_mod, "emu_launch");
  void *params[] = { &k.P, &k.T, &k.seed, &k.training, &k.E, &k.code };
  if (launch) launch(k.f, k.gx, k.bx, params);
}
EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                               unsigned smem, CUstream s, void **params, void **extra) {
  (void)smem, (void)extra;
  if (s != FAKE_STREAM) return CUDA_ERROR_INVALID_HANDLE; /* launches go on the step's stream */
  if (gy != 1 || gz != 1 || by != 1 || bz != 1 || bx > 1024 || bx % 32) return CUDA_ERROR_INVALID_VALUE;
  if (!dlsym(emu_mod, "emu_launch")) return CUDA_ERROR_NOT_FOUND;
  KLaunch k = { (void *)f,
                gx,
                bx,
                *(void **)params[0],
                *(void **)params[1],
                *(unsigned long long *)params[2],
                *(int *)params[3],
                *(void **)params[4],
                *(int *)params[5] };
  if (!record(run_kernel, &k, sizeof k)) run_kernel(&k);
  return CUDA_SUCCESS;
}
EXPORT CUresult cuGetErrorString(CUresult r, const char **s) { return *s = r ? "fake libcuda error" : "no error", CUDA_SUCCESS; }

/* ---- cuBLASLt ---------------------------------------------------------------------- */

typedef struct Desc {
  int32_t ta, tb, epi;
  const float *bias;
} Desc;
typedef struct Lay {
  uint64_t rows, cols;
  int64_t ld, stride;
  int32_t batch;
  int bf16;
} Lay;

static float bf16_load(const uint16_t *p) {
  uint32_t u = (uint32_t)*p << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
/* round to nearest even, as __float2bfloat16_rn and the interpreter's interp_round_bf16 */
static uint16_t bf16_round(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) == 0x7f800000u) return (uint16_t)((u >> 16) | ((u & 0x7fffffu) ? 0x40u : 0u));
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

EXPORT cublasStatus_t cublasLtCreate(cublasLtHandle_t *h) { return *h = (cublasLtHandle_t)malloc(1), CUBLAS_STATUS_SUCCESS; }
EXPORT cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) { return free(h), CUBLAS_STATUS_SUCCESS; }
EXPORT cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t c, cudaDataType_t s) {
  (void)c, (void)s;
  *d = (cublasLtMatmulDesc_t)calloc(1, sizeof(Desc));
  return CUBLAS_STATUS_SUCCESS;
}
EXPORT cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) { return free(d), CUBLAS_STATUS_SUCCESS; }
EXPORT cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, const void *v,
                                                     size_t n) {
  Desc *D = (Desc *)d;
  (void)n;
  if (a == CUBLASLT_MATMUL_DESC_TRANSA) D->ta = *(const int32_t *)v;
  else if (a == CUBLASLT_MATMUL_DESC_TRANSB) D->tb = *(const int32_t *)v;
  else if (a == CUBLASLT_MATMUL_DESC_EPILOGUE) D->epi = *(const int32_t *)v;
  else if (a == CUBLASLT_MATMUL_DESC_BIAS_POINTER) D->bias = *(const float *const *)v;
  else return CUBLAS_STATUS_NOT_SUPPORTED;
  return CUBLAS_STATUS_SUCCESS;
}
EXPORT cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType t, uint64_t r, uint64_t c, int64_t ld) {
  if (t != CUDA_R_32F && t != CUDA_R_16BF) return CUBLAS_STATUS_NOT_SUPPORTED;
  Lay *L = calloc(1, sizeof *L);
  L->rows = r, L->cols = c, L->ld = ld, L->batch = 1, L->bf16 = t == CUDA_R_16BF;
  *l = (cublasLtMatrixLayout_t)L;
  return ld < (int64_t)r ? CUBLAS_STATUS_INVALID_VALUE : CUBLAS_STATUS_SUCCESS;
}
EXPORT cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) { return free(l), CUBLAS_STATUS_SUCCESS; }
EXPORT cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t l, cublasLtMatrixLayoutAttribute_t a, const void *v,
                                                       size_t n) {
  Lay *L = (Lay *)l;
  (void)n;
  if (a == CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT) L->batch = *(const int32_t *)v;
  else if (a == CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET) L->stride = *(const int64_t *)v;
  else return CUBLAS_STATUS_NOT_SUPPORTED;
  return CUBLAS_STATUS_SUCCESS;
}
EXPORT cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p) {
  return *p = (cublasLtMatmulPreference_t)malloc(1), CUBLAS_STATUS_SUCCESS;
}
EXPORT cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) { return free(p), CUBLAS_STATUS_SUCCESS; }
EXPORT cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t a,
                                                           const void *v, size_t n) {
  return (void)p, (void)a, (void)v, (void)n, CUBLAS_STATUS_SUCCESS;
}
EXPORT cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t d, cublasLtMatrixLayout_t a,
                                                     cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c,
                                                     cublasLtMatrixLayout_t dd, cublasLtMatmulPreference_t p, int req,
                                                     cublasLtMatmulHeuristicResult_t r[], int *n) {
  (void)h, (void)d, (void)a, (void)b, (void)c, (void)dd, (void)p;
  if (req > 0) memset(&r[0], 0, sizeof r[0]);
  *n = req > 0;
  return CUBLAS_STATUS_SUCCESS;
}
/* element (i, j) of op(X), batch entry p */
static float at(const void *x, const Lay *L, int32_t p, int trans, uint64_t i, uint64_t j) {
  uint64_t e = (uint64_t)(p * L->stride) + (trans ? j + i * (uint64_t)L->ld : i + j * (uint64_t)L->ld);
  return L->bf16 ? bf16_load((const uint16_t *)x + e) : ((const float *)x)[e];
}
typedef struct MM {
  const Desc *d;
  const Lay *a, *b, *c;
  float al, be;
  const void *A, *B;
  void *D;
} MM;
static void run_matmul(const void *blob) {
  MM m;
  memcpy(&m, blob, sizeof m);
  const Desc *d = m.d;
  const Lay *a = m.a, *b = m.b, *c = m.c;
  uint64_t M = d->ta ? a->cols : a->rows, k = d->ta ? a->rows : a->cols, n = d->tb ? b->rows : b->cols;
  for (int32_t p = 0; p < c->batch; p++)
    for (uint64_t j = 0; j < n; j++)
      for (uint64_t i = 0; i < M; i++) {
        double acc = 0;
        for (uint64_t q = 0; q < k; q++) acc += (double)at(m.A, a, p, d->ta, i, q) * at(m.B, b, p, d->tb, q, j);
        float v = (float)(m.al * acc + (m.be != 0 ? m.be * at(m.D, c, p, 0, i, j) : 0.0));
        /* the bias has D's type (CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE's default) */
        if (d->epi == CUBLASLT_EPILOGUE_BIAS || d->epi == CUBLASLT_EPILOGUE_RELU_BIAS)
          v += c->bf16 ? bf16_load((const uint16_t *)(const void *)d->bias + i) : d->bias[i];
        if (d->epi == CUBLASLT_EPILOGUE_RELU || d->epi == CUBLASLT_EPILOGUE_RELU_BIAS) v = v > 0 ? v : 0;
        uint64_t e = (uint64_t)(p * c->stride) + i + j * (uint64_t)c->ld;
        if (c->bf16) ((uint16_t *)m.D)[e] = bf16_round(v);
        else ((float *)m.D)[e] = v;
      }
}
EXPORT cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t desc, const void *alpha, const void *A,
                                     cublasLtMatrixLayout_t la, const void *B, cublasLtMatrixLayout_t lb, const void *beta,
                                     const void *C, cublasLtMatrixLayout_t lc, void *D, cublasLtMatrixLayout_t ld,
                                     const cublasLtMatmulAlgo_t *algo, void *ws, size_t wss, cudaStream_t s) {
  (void)h, (void)algo, (void)ws, (void)wss, (void)ld;
  if (!s) return CUBLAS_STATUS_INVALID_VALUE; /* the step's stream, not the legacy one */
  const Desc *d = (const Desc *)desc;
  const Lay *a = (const Lay *)la, *b = (const Lay *)lb, *c = (const Lay *)lc;
  uint64_t m = d->ta ? a->cols : a->rows, k = d->ta ? a->rows : a->cols, n = d->tb ? b->rows : b->cols;
  if ((d->tb ? b->cols : b->rows) != k || c->rows != m || c->cols != n || C != D) return CUBLAS_STATUS_INVALID_VALUE;
  if (a->bf16 != b->bf16) return CUBLAS_STATUS_NOT_SUPPORTED; /* A and B of one type, as cuBLASLt's table */
  /* alpha and beta are host pointers: their values are what a capture keeps */
  MM mm = { d, a, b, c, *(const float *)alpha, *(const float *)beta, A, B, D };
  if (!record(run_matmul, &mm, sizeof mm)) run_matmul(&mm);
  return CUBLAS_STATUS_SUCCESS;
}
