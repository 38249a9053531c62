/* cuda_shim.c - the device table of `cramc --target cuda` artifacts for the
 * shim core (shim_core/shim_core.h; linked as libcram_cuda_step.a into each).
 * Loading step.so touches no CUDA library:
 * create() dlopens libcuda.so.1 (and libcublasLt), picks the device, refuses
 * a compute capability below the artifact's cubins, loads the image for it
 * (cubin for sm_80/sm_90, PTX JIT above), allocates the arena, scratch, and
 * per parameter its value, moments and gradient accumulator on the device,
 * builds each GEMM's cuBLASLt descriptors and picks its algorithm by the
 * heuristic once. A run copies the inputs in, runs its graph's generated
 * run function (the launch sequence emitted with LLVM-C, calling back
 * cram_cuda_rt_kernel / cram_cuda_rt_gemm) and checks the kernels' error
 * word; the core moves the outputs into the state (most are computed in
 * place). No global mutable state: everything lives in cram_ctx. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cublasLt.h>
#include <cuda.h>

#include "cram_cuda_step.h"
#include "cuda_libs.h"
#include "shim_core.h"

/* The libcuda and cuBLASLt entry points, one row each: X(field, symbol,
 * return type, parameters). The rows declare the struct fields and the
 * by-name table dlsym fills them from (sym_table: each symbol names the
 * offset of its own field), so a row cannot drift from its symbol. */
#define CU_DRIVER_SYMS(X)                                                                                           \
  X(Init, "cuInit", CUresult, (unsigned))                                                                           \
  X(DeviceGetCount, "cuDeviceGetCount", CUresult, (int *))                                                          \
  X(DeviceGet, "cuDeviceGet", CUresult, (CUdevice *, int))                                                          \
  X(DeviceGetAttribute, "cuDeviceGetAttribute", CUresult, (int *, CUdevice_attribute, CUdevice))                    \
  X(PrimaryCtxRetain, "cuDevicePrimaryCtxRetain", CUresult, (CUcontext *, CUdevice))                                \
  X(PrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2", CUresult, (CUdevice))                                        \
  X(CtxSetCurrent, "cuCtxSetCurrent", CUresult, (CUcontext))                                                        \
  X(CtxSynchronize, "cuCtxSynchronize", CUresult, (void))                                                           \
  X(ModuleLoadData, "cuModuleLoadData", CUresult, (CUmodule *, const void *))                                       \
  X(ModuleUnload, "cuModuleUnload", CUresult, (CUmodule))                                                           \
  X(ModuleGetFunction, "cuModuleGetFunction", CUresult, (CUfunction *, CUmodule, const char *))                     \
  X(MemAlloc, "cuMemAlloc_v2", CUresult, (CUdeviceptr *, size_t))                                                   \
  X(MemFree, "cuMemFree_v2", CUresult, (CUdeviceptr))                                                               \
  X(MemcpyHtoD, "cuMemcpyHtoD_v2", CUresult, (CUdeviceptr, const void *, size_t))                                   \
  X(MemcpyDtoH, "cuMemcpyDtoH_v2", CUresult, (void *, CUdeviceptr, size_t))                                         \
  X(MemcpyDtoD, "cuMemcpyDtoD_v2", CUresult, (CUdeviceptr, CUdeviceptr, size_t))                                    \
  X(MemsetD8, "cuMemsetD8_v2", CUresult, (CUdeviceptr, unsigned char, size_t))                                      \
  X(LaunchKernel, "cuLaunchKernel", CUresult,                                                                       \
    (CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream, void **, void **)) \
  X(GetErrorString, "cuGetErrorString", CUresult, (CUresult, const char **))                                        \
  X(StreamCreate, "cuStreamCreate", CUresult, (CUstream *, unsigned))                                               \
  X(StreamDestroy, "cuStreamDestroy_v2", CUresult, (CUstream))
/* CUDA graphs: optional (a driver without them runs every launch directly) */
#define CU_GRAPH_SYMS(X)                                                                                     \
  X(StreamBeginCapture, "cuStreamBeginCapture_v2", CUresult, (CUstream, CUstreamCaptureMode))                \
  X(StreamEndCapture, "cuStreamEndCapture", CUresult, (CUstream, CUgraph *))                                 \
  X(GraphInstantiate, "cuGraphInstantiateWithFlags", CUresult, (CUgraphExec *, CUgraph, unsigned long long)) \
  X(GraphLaunch, "cuGraphLaunch", CUresult, (CUgraphExec, CUstream))                                         \
  X(GraphDestroy, "cuGraphDestroy", CUresult, (CUgraph))                                                     \
  X(GraphExecDestroy, "cuGraphExecDestroy", CUresult, (CUgraphExec))
#define CUBLASLT_SYMS(X)                                                                                                         \
  X(Create, "cublasLtCreate", cublasStatus_t, (cublasLtHandle_t *))                                                              \
  X(Destroy, "cublasLtDestroy", cublasStatus_t, (cublasLtHandle_t))                                                              \
  X(MatmulDescCreate, "cublasLtMatmulDescCreate", cublasStatus_t, (cublasLtMatmulDesc_t *, cublasComputeType_t, cudaDataType_t)) \
  X(MatmulDescDestroy, "cublasLtMatmulDescDestroy", cublasStatus_t, (cublasLtMatmulDesc_t))                                      \
  X(MatmulDescSetAttribute, "cublasLtMatmulDescSetAttribute", cublasStatus_t,                                                    \
    (cublasLtMatmulDesc_t, cublasLtMatmulDescAttributes_t, const void *, size_t))                                                \
  X(MatrixLayoutCreate, "cublasLtMatrixLayoutCreate", cublasStatus_t,                                                            \
    (cublasLtMatrixLayout_t *, cudaDataType, uint64_t, uint64_t, int64_t))                                                       \
  X(MatrixLayoutDestroy, "cublasLtMatrixLayoutDestroy", cublasStatus_t, (cublasLtMatrixLayout_t))                                \
  X(MatrixLayoutSetAttribute, "cublasLtMatrixLayoutSetAttribute", cublasStatus_t,                                                \
    (cublasLtMatrixLayout_t, cublasLtMatrixLayoutAttribute_t, const void *, size_t))                                             \
  X(PreferenceCreate, "cublasLtMatmulPreferenceCreate", cublasStatus_t, (cublasLtMatmulPreference_t *))                          \
  X(PreferenceDestroy, "cublasLtMatmulPreferenceDestroy", cublasStatus_t, (cublasLtMatmulPreference_t))                          \
  X(PreferenceSetAttribute, "cublasLtMatmulPreferenceSetAttribute", cublasStatus_t,                                              \
    (cublasLtMatmulPreference_t, cublasLtMatmulPreferenceAttributes_t, const void *, size_t))                                    \
  X(AlgoGetHeuristic, "cublasLtMatmulAlgoGetHeuristic", cublasStatus_t,                                                          \
    (cublasLtHandle_t, cublasLtMatmulDesc_t, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,             \
     cublasLtMatrixLayout_t, cublasLtMatmulPreference_t, int, cublasLtMatmulHeuristicResult_t[], int *))                         \
  X(Matmul, "cublasLtMatmul", cublasStatus_t,                                                                                    \
    (cublasLtHandle_t, cublasLtMatmulDesc_t, const void *, const void *, cublasLtMatrixLayout_t, const void *,                   \
     cublasLtMatrixLayout_t, const void *, const void *, cublasLtMatrixLayout_t, void *, cublasLtMatrixLayout_t,                 \
     const cublasLtMatmulAlgo_t *, void *, size_t, cudaStream_t))

#define SYM_FIELD(field, sym, ret, params) ret(*field) params;
typedef struct Drv {
  void *h;
  CU_DRIVER_SYMS(SYM_FIELD)
  CU_GRAPH_SYMS(SYM_FIELD)
} Drv;
typedef struct Lt {
  void *h;
  CUBLASLT_SYMS(SYM_FIELD)
} Lt;

typedef struct Sym {
  const char *name;
  size_t off; /* of its field in Drv / Lt */
} Sym;
#define DRV_SYM(field, sym, ret, params) { sym, offsetof(Drv, field) },
#define LT_SYM(field, sym, ret, params)  { sym, offsetof(Lt, field) },
static const Sym drv_syms[] = { CU_DRIVER_SYMS(DRV_SYM) };
static const Sym graph_syms[] = { CU_GRAPH_SYMS(DRV_SYM) };
static const Sym lt_syms[] = { CUBLASLT_SYMS(LT_SYM) };

#define WORKSPACE (32u << 20)
#define SEED_OFF  16u /* the dropout seed in scal (u64; after scale, step, lr) */
#define HYPER_OFF 32u /* update()'s hyper-parameters in scal (f32[CRAM_SHIM_NHYPER]) */

typedef struct GemmPlan {
  cublasLtMatmulDesc_t desc;
  cublasLtMatrixLayout_t la, lb, lc;
  cublasLtMatmulAlgo_t algo;
  CUdeviceptr a, b, c;
} GemmPlan;

_Static_assert(sizeof(CUdeviceptr) == sizeof(uint64_t), "the generated bind() writes 64-bit device pointers");

typedef struct GBind {
  const cram_cuda_graph *g;
  uint64_t *slot;   /* host copy of the slot table (device pointers) */
  uint64_t *tab;    /* the pointer table the generated bind() fills (host copy) */
  CUdeviceptr dptr; /* the same, on the device: the kernels' P */
  CUdeviceptr *own;
  CUfunction *fn;   /* per launch */
  CUgraphExec exec; /* the whole run() as a CUDA graph, captured at the second run */
  unsigned long nrun;
  int no_graph; /* capture failed: run directly from now on */
  GemmPlan *gp; /* per launch */
} GBind;

struct cram_ctx {
  cram_shim s; /* first: the core's state; its blocks are device memory */
  const cram_cuda_artifact *a;
  Drv d;
  Lt lt;
  cublasLtHandle_t lth;
  CUdevice dev;
  CUcontext cx;
  CUstream stream; /* every launch goes here (blocking: ordered with the synchronous copies) */
  int graphs;      /* CUDA graphs for run() (off: opts->no_graphs, or the driver lacks them) */
  int no_graphs;   /* cram_create_opts.no_graphs */
  CUmodule mod;
  int ctx_held;
  int tf32; /* cram_create_opts.tf32: tensor-core TF32 GEMMs (f32 in/out, ~1e-3 rounding) instead of exact f32 */
  uint32_t nin;
  CUdeviceptr arena, scratch, work, errw,
    scal; /* scal: scale, step, lr; the run's dropout seed at SEED_OFF, hyper at HYPER_OFF */
  CUdeviceptr *in;
  GBind bind[3]; /* CRAM_G_FWD, CRAM_G_ACC, CRAM_G_UP */
};

static const char *cuerr(const cram_ctx *c, CUresult r) {
  const char *s = NULL;
  if (c->d.GetErrorString) c->d.GetErrorString(r, &s);
  return s ? s : "unknown CUDA error";
}
#define CU(call, what)                                                                                  \
  do {                                                                                                  \
    CUresult r_ = (call);                                                                               \
    if (r_ != CUDA_SUCCESS) return cram_shim_fail(c, CRAM_STEP_E_DEVICE, "%s: %s", what, cuerr(c, r_)); \
  } while (0)

/* Fills the fields of `base` (a Drv or Lt) that syms[0..n) name; false with
 * *missing = the first symbol h lacks. memcpy: dlsym's void * into a function
 * pointer, as POSIX specifies. */
static bool load_syms(void *h, void *base, const Sym *syms, size_t n, const char **missing) {
  for (size_t i = 0; i < n; i++) {
    void *p = dlsym(h, syms[i].name);
    if (!p) return *missing = syms[i].name, false;
    memcpy((char *)base + syms[i].off, &p, sizeof p);
  }
  return true;
}

static cram_step_rc load_driver(cram_ctx *c) {
  c->d.h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!c->d.h)
    return cram_shim_fail(c, CRAM_STEP_E_DEVICE, "no CUDA driver/GPU: cannot load libcuda.so.1 (%s); use --target cpu",
                          dlerror());
  const char *miss = NULL;
  if (!load_syms(c->d.h, &c->d, drv_syms, sizeof drv_syms / sizeof *drv_syms, &miss))
    return cram_shim_fail(c, CRAM_STEP_E_DEVICE, "no CUDA driver/GPU: libcuda.so.1 lacks %s (driver too old); use --target cpu",
                          miss);
  c->graphs = !c->no_graphs && load_syms(c->d.h, &c->d, graph_syms, sizeof graph_syms / sizeof *graph_syms, &miss);
  CUresult r = c->d.Init(0);
  int n = 0;
  if (r != CUDA_SUCCESS || c->d.DeviceGetCount(&n) != CUDA_SUCCESS || n == 0)
    return cram_shim_fail(c, CRAM_STEP_E_DEVICE, "no CUDA driver/GPU: %s; use --target cpu",
                          r != CUDA_SUCCESS ? cuerr(c, r) : "no CUDA device found");
  return CRAM_STEP_OK;
}

static cram_step_rc load_lt(cram_ctx *c) {
  char tried[720];
  cram_cuda_search where = cram_cuda_search_from_env();
  c->lt.h = cram_cuda_open_lib(&where, &cram_cuda_lib_cublaslt, NULL, 0, tried, sizeof tried);
  if (!c->lt.h) return cram_shim_fail(c, CRAM_STEP_E_DEVICE, "cannot load cuBLASLt (libcublasLt.so.13); looked in: %s", tried);
  const char *miss = NULL;
  if (!load_syms(c->lt.h, &c->lt, lt_syms, sizeof lt_syms / sizeof *lt_syms, &miss))
    return cram_shim_fail(c, CRAM_STEP_E_DEVICE, "libcublasLt lacks %s", miss);
  if (c->lt.Create(&c->lth) != CUBLAS_STATUS_SUCCESS) return cram_shim_fail(c, CRAM_STEP_E_DEVICE, "cublasLtCreate failed");
  return CRAM_STEP_OK;
}

static cram_step_rc dalloc(cram_ctx *c, CUdeviceptr *p, uint64_t bytes) {
  CUresult r = c->d.MemAlloc(p, bytes ? (bytes + 255) / 256 * 256 : 256);
  if (r != CUDA_SUCCESS)
    return cram_shim_fail(c, CRAM_STEP_E_NOMEM, "device allocation of %llu bytes: %s", (unsigned long long)bytes, cuerr(c, r));
  return CRAM_STEP_OK;
}

static size_t in_bytes(const cram_tensor_info *t) { return (size_t)t->numel * (t->dtype == CRAM_DT_BF16 ? 2 : 4); }

/* Binds slots to device buffers, has the generated bind() fill the pointer
 * table (uploaded for the kernels; GEMMs read their operands from the host
 * copy), resolves kernels, plans GEMMs. */
static cram_step_rc bind_init(cram_ctx *c, GBind *b, const cram_cuda_graph *g) {
  b->g = g;
  size_t ns = g->nslots ? g->nslots : 1, nl = g->nlaunch ? g->nlaunch : 1;
  if (!(b->slot = calloc(ns, sizeof *b->slot)) || !(b->own = calloc(ns, sizeof *b->own)) ||
      !(b->fn = calloc(nl, sizeof *b->fn)) || !(b->gp = calloc(nl, sizeof *b->gp)))
    return cram_shim_fail(c, CRAM_STEP_E_NOMEM, "out of memory");
  cram_step_rc rc;
  for (uint32_t s = 0; s < g->nslots; s++) {
    const cram_cuda_slot *sl = &g->slots[s];
    switch (sl->kind) {
    case CRAM_S_PARAM: b->slot[s] = c->s.p[sl->index]; break;
    case CRAM_S_GRAD: b->slot[s] = c->s.g[sl->index]; break;
    case CRAM_S_MOM_M: b->slot[s] = c->s.m[sl->index]; break;
    case CRAM_S_MOM_V: b->slot[s] = c->s.v[sl->index]; break;
    case CRAM_S_INPUT: b->slot[s] = c->in[sl->index]; break;
    case CRAM_S_SCALE: b->slot[s] = c->scal; break;
    case CRAM_S_STEP: b->slot[s] = c->scal + 4; break;
    case CRAM_S_LR: b->slot[s] = c->scal + 8; break;
    case CRAM_S_HYPER: b->slot[s] = c->scal + HYPER_OFF; break;
    default:
      if ((rc = dalloc(c, &b->own[s], sl->bytes)) != CRAM_STEP_OK) return rc;
      b->slot[s] = b->own[s];
    }
  }
  if (!g->bind || !g->run) return cram_shim_fail(c, CRAM_STEP_E_STATE, "artifact without its host code (corrupt?)");
  size_t nt = g->ntab ? g->ntab : 1;
  if (!(b->tab = calloc(nt, sizeof *b->tab))) return cram_shim_fail(c, CRAM_STEP_E_NOMEM, "out of memory");
  g->bind(b->slot, c->arena, c->scratch, b->tab);
  if ((rc = dalloc(c, &b->dptr, nt * sizeof *b->tab)) != CRAM_STEP_OK) return rc;
  CU(c->d.MemcpyHtoD(b->dptr, b->tab, nt * sizeof *b->tab), "uploading the pointer tables");
  for (uint32_t i = 0; i < g->nlaunch; i++) {
    const cram_cuda_launch *L = &g->launches[i];
    if (L->kind == CRAM_CUDA_L_KERNEL) {
      if (!L->name) continue;
      CUresult r = c->d.ModuleGetFunction(&b->fn[i], c->mod, L->name);
      if (r != CUDA_SUCCESS) return cram_shim_fail(c, CRAM_STEP_E_DEVICE, "kernel %s of %s: %s", L->name, L->node, cuerr(c, r));
      continue;
    }
    /* row-major C = op(A) op(B) as column-major C^T = op(B)^T op(A)^T */
    const cram_cuda_gemm *G = &L->g;
    GemmPlan *P = &b->gp[i];
    const cram_cuda_colmajor cm = cram_cuda_to_colmajor(G);
    cublasOperation_t ta = cm.transa ? CUBLAS_OP_T : CUBLAS_OP_N, tb = cm.transb ? CUBLAS_OP_T : CUBLAS_OP_N;
    int32_t epi = G->epi == CRAM_CUDA_EPI_BIAS        ? CUBLASLT_EPILOGUE_BIAS
                  : G->epi == CRAM_CUDA_EPI_RELU      ? CUBLASLT_EPILOGUE_RELU
                  : G->epi == CRAM_CUDA_EPI_RELU_BIAS ? CUBLASLT_EPILOGUE_RELU_BIAS
                                                      : CUBLASLT_EPILOGUE_DEFAULT;
    if (L->first + 4 > g->ntab)
      return cram_shim_fail(c, CRAM_STEP_E_STATE, "GEMM of %s outside the pointer table (artifact corrupt?)", L->node);
    const uint64_t *op = &b->tab[L->first]; /* a, b, c, bias */
    P->a = op[1], P->b = op[0], P->c = op[2];
    CUdeviceptr bias = op[3];
    /* bf16 A/B (C bf16 or f32) with f32 compute and scale: a documented cuBLASLt combination; TF32 only for f32 */
    cudaDataType ta_dt = G->dtb == CRAM_CUDA_DT_BF16 ? CUDA_R_16BF : CUDA_R_32F; /* the library's A is our B */
    cudaDataType tb_dt = G->dta == CRAM_CUDA_DT_BF16 ? CUDA_R_16BF : CUDA_R_32F;
    cudaDataType tc_dt = G->dtc == CRAM_CUDA_DT_BF16 ? CUDA_R_16BF : CUDA_R_32F;
    bool tf32 = c->tf32 && ta_dt == CUDA_R_32F && tb_dt == CUDA_R_32F;
    bool ok = c->lt.MatmulDescCreate(&P->desc, tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F, CUDA_R_32F) ==
                CUBLAS_STATUS_SUCCESS &&
              c->lt.MatmulDescSetAttribute(P->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta) == 0 &&
              c->lt.MatmulDescSetAttribute(P->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb) == 0 &&
              c->lt.MatmulDescSetAttribute(P->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi) == 0 &&
              (!bias || c->lt.MatmulDescSetAttribute(P->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias) == 0) &&
              c->lt.MatrixLayoutCreate(&P->la, ta_dt, cm.a_rows, cm.a_cols, cm.lda) == 0 &&
              c->lt.MatrixLayoutCreate(&P->lb, tb_dt, cm.b_rows, cm.b_cols, cm.ldb) == 0 &&
              c->lt.MatrixLayoutCreate(&P->lc, tc_dt, cm.c_rows, cm.c_cols, cm.ldc) == 0;
    if (ok && G->batch > 1) {
      int32_t bc = (int32_t)G->batch;
      int64_t sa = cm.stride_a, sb = cm.stride_b, sc = cm.stride_c;
      ok = c->lt.MatrixLayoutSetAttribute(P->la, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof bc) == 0 &&
           c->lt.MatrixLayoutSetAttribute(P->la, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sa, sizeof sa) == 0 &&
           c->lt.MatrixLayoutSetAttribute(P->lb, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof bc) == 0 &&
           c->lt.MatrixLayoutSetAttribute(P->lb, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sb, sizeof sb) == 0 &&
           c->lt.MatrixLayoutSetAttribute(P->lc, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof bc) == 0 &&
           c->lt.MatrixLayoutSetAttribute(P->lc, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sc, sizeof sc) == 0;
    }
    cublasLtMatmulPreference_t pref = NULL;
    cublasLtMatmulHeuristicResult_t res;
    int nres = 0;
    size_t ws = WORKSPACE;
    ok = ok && c->lt.PreferenceCreate(&pref) == 0 &&
         c->lt.PreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws) == 0 &&
         c->lt.AlgoGetHeuristic(c->lth, P->desc, P->la, P->lb, P->lc, P->lc, pref, 1, &res, &nres) == 0 && nres > 0;
    if (pref) c->lt.PreferenceDestroy(pref);
    if (!ok) return cram_shim_fail(c, CRAM_STEP_E_DEVICE, "cuBLASLt has no algorithm for the GEMM of %s", L->node);
    P->algo = res.algo;
  }
  return CRAM_STEP_OK;
}

static void bind_free(cram_ctx *c, GBind *b) {
  if (!b->g) return;
  for (uint32_t i = 0; b->gp && i < b->g->nlaunch; i++) {
    if (b->gp[i].desc) c->lt.MatmulDescDestroy(b->gp[i].desc);
    if (b->gp[i].la) c->lt.MatrixLayoutDestroy(b->gp[i].la);
    if (b->gp[i].lb) c->lt.MatrixLayoutDestroy(b->gp[i].lb);
    if (b->gp[i].lc) c->lt.MatrixLayoutDestroy(b->gp[i].lc);
  }
  if (b->exec) c->d.GraphExecDestroy(b->exec);
  for (uint32_t s = 0; b->own && s < b->g->nslots; s++)
    if (b->own[s]) c->d.MemFree(b->own[s]);
  if (b->dptr) c->d.MemFree(b->dptr);
  free(b->slot), free(b->tab), free(b->own), free(b->fn), free(b->gp);
}

/* ---- the state in device memory ----------------------------------------------------- */

static cram_step_rc d_alloc(cram_ctx *c, size_t bytes, cram_dptr *out) {
  CUdeviceptr p = 0;
  cram_step_rc rc = dalloc(c, &p, bytes);
  if (rc != CRAM_STEP_OK) return rc;
  *out = (cram_dptr)p;
  CU(c->d.MemsetD8(p, 0, (bytes + 255) / 256 * 256), "memset");
  return CRAM_STEP_OK;
}
static void d_release(cram_ctx *c, cram_dptr p) {
  if (c->ctx_held) c->d.MemFree((CUdeviceptr)p);
}
static cram_step_rc d_put(cram_ctx *c, cram_dptr dst, const float *src, size_t n) {
  CU(c->d.MemcpyHtoD((CUdeviceptr)dst, src, n * 4), "writing state to the device");
  return CRAM_STEP_OK;
}
static cram_step_rc d_put_f64(cram_ctx *c, cram_dptr dst, const double *src, size_t n) {
  float *f = malloc((n ? n : 1) * sizeof(float));
  if (!f) return cram_shim_fail(c, CRAM_STEP_E_NOMEM, "out of memory");
  for (size_t k = 0; k < n; k++) f[k] = (float)src[k];
  cram_step_rc rc = d_put(c, dst, f, n);
  free(f);
  return rc;
}
static cram_step_rc d_get(cram_ctx *c, float *dst, cram_dptr src, size_t n) {
  CU(c->d.MemcpyDtoH(dst, (CUdeviceptr)src, n * 4), "reading state from the device");
  return CRAM_STEP_OK;
}
static cram_step_rc d_zero(cram_ctx *c, cram_dptr dst, size_t bytes) {
  CU(c->d.MemsetD8((CUdeviceptr)dst, 0, bytes), "memset");
  return CRAM_STEP_OK;
}
static cram_step_rc d_move(cram_ctx *c, cram_dptr dst, cram_dptr src, size_t bytes) {
  CU(c->d.MemcpyDtoD((CUdeviceptr)dst, (CUdeviceptr)src, bytes), "moving outputs");
  return CRAM_STEP_OK;
}

/* ---- lifecycle ------------------------------------------------------------------------- */

static void d_destroy(cram_ctx *c) {
  if (c->ctx_held) {
    c->d.CtxSynchronize();
    for (int g = 0; g < 3; g++) bind_free(c, &c->bind[g]);
    for (uint32_t i = 0; c->in && i < c->nin; i++)
      if (c->in[i]) c->d.MemFree(c->in[i]);
    CUdeviceptr bufs[] = { c->arena, c->scratch, c->work, c->errw, c->scal };
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
      if (bufs[i]) c->d.MemFree(bufs[i]);
    if (c->lth) c->lt.Destroy(c->lth);
    if (c->mod) c->d.ModuleUnload(c->mod);
    if (c->stream) c->d.StreamDestroy(c->stream);
    c->d.PrimaryCtxRelease(c->dev);
  }
  free(c->in);
  if (c->lt.h) dlclose(c->lt.h);
  if (c->d.h) dlclose(c->d.h);
}

static cram_step_rc create_body(cram_ctx *c, const cram_create_opts *opts) {
  const cram_cuda_artifact *a = c->a;
  c->tf32 = opts && opts->tf32;
  c->no_graphs = opts && opts->no_graphs;
  cram_step_rc rc = load_driver(c);
  if (rc != CRAM_STEP_OK) return rc;
  int ndev = 0, ord = opts ? opts->device : 0;
  c->d.DeviceGetCount(&ndev);
  if (ord < 0 || ord >= ndev) return cram_shim_fail(c, CRAM_STEP_E_DEVICE, "CUDA device %d does not exist (%d found)", ord, ndev);
  CU(c->d.DeviceGet(&c->dev, ord), "cuDeviceGet");
  int maj = 0, min = 0;
  CU(c->d.DeviceGetAttribute(&maj, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, c->dev), "compute capability");
  CU(c->d.DeviceGetAttribute(&min, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, c->dev), "compute capability");
  int sm = maj * 10 + min;
  if (sm < a->min_sm)
    return cram_shim_fail(c, CRAM_STEP_E_DEVICE,
                          "GPU %d has compute capability %d.%d, older than this artifact's cubins (sm_%d+); use --target cpu",
                          ord, maj, min, a->min_sm);
  CU(c->d.PrimaryCtxRetain(&c->cx, c->dev), "cuDevicePrimaryCtxRetain");
  c->ctx_held = 1;
  CU(c->d.CtxSetCurrent(c->cx), "cuCtxSetCurrent");
  CU(c->d.StreamCreate(&c->stream, CU_STREAM_DEFAULT), "cuStreamCreate");
  /* the image: a cubin of the same major (sm_80 runs on 8.x), else PTX for newer */
  const cram_cuda_image *img = NULL;
  for (uint32_t i = 0; i < a->nimages; i++) {
    const cram_cuda_image *im = &a->images[i];
    if (!im->ptx && im->sm / 10 == maj && im->sm <= sm && (!img || img->ptx || im->sm > img->sm)) img = im;
    if (im->ptx && im->sm <= sm && !img) img = im;
  }
  if (!img) return cram_shim_fail(c, CRAM_STEP_E_DEVICE, "no kernel image for compute capability %d.%d", maj, min);
  CU(c->d.ModuleLoadData(&c->mod, img->data), "loading the kernels (cuModuleLoadData)");
  if ((rc = load_lt(c)) != CRAM_STEP_OK) return rc;
  uint64_t ab = a->fwd.arena_bytes, sb = a->fwd.scratch_bytes;
  const cram_cuda_graph *gs[] = { &a->acc, &a->up };
  for (int i = 0; i < 2; i++) {
    if (gs[i]->arena_bytes > ab) ab = gs[i]->arena_bytes;
    if (gs[i]->scratch_bytes > sb) sb = gs[i]->scratch_bytes;
  }
  if ((rc = dalloc(c, &c->arena, ab)) || (rc = dalloc(c, &c->scratch, sb)) || (rc = dalloc(c, &c->work, WORKSPACE)) ||
      (rc = dalloc(c, &c->errw, 4)) || (rc = dalloc(c, &c->scal, HYPER_OFF + 4 * CRAM_SHIM_NHYPER)))
    return rc;
  /* parameters, moments, gradients: one device block each, 256-byte aligned as cuBLASLt prefers its operands */
  if ((rc = cram_shim_setup(c, a->fwd_ir)) != CRAM_STEP_OK) return rc;
  if (!(c->in = calloc(c->nin ? c->nin : 1, sizeof *c->in))) return cram_shim_fail(c, CRAM_STEP_E_NOMEM, "out of memory");
  for (uint32_t i = 0; i < c->nin; i++)
    if ((rc = dalloc(c, &c->in[i], in_bytes(&c->s.meta->inputs[i])))) return rc;
  const cram_cuda_graph *all[3] = { &a->fwd, &a->acc, &a->up };
  for (int g = 0; g < 3; g++)
    if ((rc = bind_init(c, &c->bind[g], all[g])) != CRAM_STEP_OK) return rc;
  return CRAM_STEP_OK;
}

/* ---- running ------------------------------------------------------------------------- */

/* What the generated run() hands back to the callbacks below. */
typedef struct RunState {
  cram_ctx *c;
  GBind *b;
  unsigned long long seedp; /* the kernels' seed argument: the device address of the seed (scal + SEED_OFF) */
  int training;
} RunState;

static const float one_f = 1.0f;

int32_t cram_cuda_rt_kernel(void *rt, int32_t launch, int32_t grid, int32_t block, int32_t first) {
  RunState *s = rt;
  cram_ctx *c = s->c;
  const GBind *b = s->b;
  if (launch < 0 || (uint32_t)launch >= b->g->nlaunch || first < 0 || (uint32_t)first > b->g->ntab)
    return cram_shim_fail(c, CRAM_STEP_E_STATE, "launch %d outside the launch table (artifact corrupt?)", (int)launch);
  if (!b->fn[launch]) return CRAM_STEP_OK;
  const cram_cuda_launch *L = &b->g->launches[launch];
  CUdeviceptr P = b->dptr + (CUdeviceptr)first * sizeof(uint64_t);
  int code = launch + 1;
  void *args[] = { &P, &c->scratch, &s->seedp, &s->training, &c->errw, &code };
  CUresult r = c->d.LaunchKernel(b->fn[launch], (unsigned)grid, 1, 1, (unsigned)block, 1, 1, 0, c->stream, args, NULL);
  if (r != CUDA_SUCCESS) return cram_shim_fail(c, CRAM_STEP_E_DEVICE, "launching %s for %s: %s", L->name, L->node, cuerr(c, r));
  return CRAM_STEP_OK;
}

int32_t cram_cuda_rt_gemm(void *rt, int32_t launch) {
  RunState *s = rt;
  cram_ctx *c = s->c;
  const GBind *b = s->b;
  if (launch < 0 || (uint32_t)launch >= b->g->nlaunch || b->g->launches[launch].kind != CRAM_CUDA_L_GEMM)
    return cram_shim_fail(c, CRAM_STEP_E_STATE, "GEMM %d outside the launch table (artifact corrupt?)", (int)launch);
  const cram_cuda_launch *L = &b->g->launches[launch];
  const GemmPlan *P = &b->gp[launch];
  if (c->lt.Matmul(c->lth, P->desc, &one_f, (const void *)P->a, P->la, (const void *)P->b, P->lb, &L->g.beta, (const void *)P->c,
                   P->lc, (void *)P->c, P->lc, &P->algo, (void *)c->work, WORKSPACE, (cudaStream_t)c->stream) != 0)
    return cram_shim_fail(c, CRAM_STEP_E_DEVICE, "cuBLASLt matmul failed for %s", L->node);
  return CRAM_STEP_OK;
}

/* The graph's launches: the generated run() directly at the first run;
 * captured into a CUDA graph at the second, and that graph launched from
 * then on: one launch instead of ~1,300 for a bert_crammed step. Dropout on
 * too: the kernels read the seed from device memory, not from their (fixed)
 * arguments, and `training` is fixed per graph (acc: the context's; eval,
 * update: 0). A failed capture falls back to direct runs. */
static cram_step_rc launch_all(cram_ctx *c, GBind *b, RunState *st) {
  if (b->exec) {
    CU(c->d.GraphLaunch(b->exec, c->stream), "launching the step's CUDA graph");
    return CRAM_STEP_OK;
  }
  bool capture = c->graphs && !b->no_graph && b->nrun++ > 0;
  if (capture && c->d.StreamBeginCapture(c->stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL) != CUDA_SUCCESS)
    capture = false, b->no_graph = 1;
  int32_t rc = b->g->run(st); /* the generated launch sequence (nothing runs yet while capturing) */
  if (!capture) return (cram_step_rc)rc;
  CUgraph gr = NULL;
  CUresult r = c->d.StreamEndCapture(c->stream, &gr);
  if (r == CUDA_SUCCESS && rc == CRAM_STEP_OK) r = c->d.GraphInstantiate(&b->exec, gr, 0);
  if (gr) c->d.GraphDestroy(gr);
  if (rc != CRAM_STEP_OK) return (cram_step_rc)rc;
  if (r != CUDA_SUCCESS) { /* no graph for this driver/graph: run it the plain way */
    b->exec = NULL, b->no_graph = 1;
    return (cram_step_rc)b->g->run(st);
  }
  CU(c->d.GraphLaunch(b->exec, c->stream), "launching the step's CUDA graph");
  return CRAM_STEP_OK;
}

/* Runs graph g: the scalars and the inputs uploaded, the error word cleared,
 * the launches (or their CUDA graph), the error word checked. */
static cram_step_rc d_run(cram_ctx *c, int g, const void *const *inputs, const cram_shim_scalars *sc, int training,
                          uint64_t seed) {
  GBind *b = &c->bind[g];
  if (g == CRAM_G_ACC) {
    float scale = (float)sc->scale;
    CU(c->d.MemcpyHtoD(c->scal, &scale, 4), "uploading the scale");
  } else if (g == CRAM_G_UP) {
    float sl[2] = { (float)sc->step, (float)sc->lr }, hf[CRAM_SHIM_NHYPER];
    for (int i = 0; i < CRAM_SHIM_NHYPER; i++) hf[i] = (float)sc->hyper[i];
    CU(c->d.MemcpyHtoD(c->scal + 4, sl, 8), "uploading step and lr");
    CU(c->d.MemcpyHtoD(c->scal + HYPER_OFF, hf, sizeof hf), "uploading the optimizer hyper-parameters");
  }
  for (uint32_t i = 0; inputs && i < c->nin; i++)
    CU(c->d.MemcpyHtoD(c->in[i], inputs[i], in_bytes(&c->s.meta->inputs[i])), "uploading inputs");
  CU(c->d.MemsetD8(c->errw, 0, 4), "memset");
  /* the seed of this run, uploaded before the launches or the replay */
  if (training) CU(c->d.MemcpyHtoD(c->scal + SEED_OFF, &seed, 8), "uploading the dropout seed");
  RunState st = { c, b, (unsigned long long)(c->scal + SEED_OFF), training };
  cram_step_rc rc = launch_all(c, b, &st);
  if (rc != CRAM_STEP_OK) return rc;
  int e = 0;
  CU(c->d.MemcpyDtoH(&e, c->errw, 4), "running the step");
  if (e > 0 && (uint32_t)e <= b->g->nlaunch)
    return cram_shim_fail(c, CRAM_STEP_E_DATA, "%s: bad data (token id / target outside its range, or step < 1)",
                          b->g->launches[e - 1].node);
  return CRAM_STEP_OK;
}

static cram_dptr d_output(cram_ctx *c, int g, uint32_t kind, uint32_t index) {
  const GBind *b = &c->bind[g];
  for (uint32_t i = 0; i < b->g->nouts; i++)
    if (b->g->outs[i].kind == kind && b->g->outs[i].index == index) return (cram_dptr)b->slot[b->g->outs[i].slot];
  return 0;
}

/* Output k of the forward graph to host f32: the slot holds f32, or bf16
 * (autocast) which is widened here (bf16 = the top half of an f32). */
static cram_step_rc d_read_output(cram_ctx *c, uint32_t k, float *dst) {
  const cram_cuda_graph *g = c->bind[CRAM_G_FWD].g;
  size_t n = (size_t)c->s.meta->outputs[k].numel;
  for (uint32_t i = 0; i < g->nouts; i++) {
    if (g->outs[i].kind != CRAM_O_OTHER || g->outs[i].index != k) continue;
    uint64_t bytes = g->slots[g->outs[i].slot].bytes;
    CUdeviceptr src = c->bind[CRAM_G_FWD].slot[g->outs[i].slot];
    if (bytes == n * 4) {
      CU(c->d.MemcpyDtoH(dst, src, n * 4), "reading an output");
      return CRAM_STEP_OK;
    }
    if (bytes != n * 2) break;
    uint16_t *h = malloc((n ? n : 1) * 2);
    if (!h) return cram_shim_fail(c, CRAM_STEP_E_NOMEM, "out of memory");
    CUresult r = c->d.MemcpyDtoH(h, src, n * 2);
    for (size_t j = 0; r == CUDA_SUCCESS && j < n; j++) {
      uint32_t u = (uint32_t)h[j] << 16;
      memcpy(&dst[j], &u, 4);
    }
    free(h);
    if (r != CUDA_SUCCESS) return cram_shim_fail(c, CRAM_STEP_E_DEVICE, "reading an output: %s", cuerr(c, r));
    return CRAM_STEP_OK;
  }
  return cram_shim_fail(c, CRAM_STEP_E_STATE, "output '%s' is not in the compiled forward graph", c->s.meta->outputs[k].name);
}

static const cram_shim_dev cuda_dev = {
  .elem = sizeof(float),
  .align = 256,
  .on_device = 1,
  .alloc = d_alloc,
  .release = d_release,
  .put = d_put,
  .put_f64 = d_put_f64,
  .get = d_get,
  .zero = d_zero,
  .move = d_move,
  .run = d_run,
  .output = d_output,
  .read_output = d_read_output,
  .done = NULL,
  .destroy = d_destroy,
};

cram_step_rc cram_cuda_create(const cram_cuda_artifact *a, const cram_create_opts *opts, cram_ctx **out, char *err,
                              size_t errlen) {
  cram_step_rc rc;
  cram_ctx *c = cram_shim_new(out, "cuda", a && a->shim_version == CRAM_CUDA_SHIM_VERSION, a ? a->meta : NULL, sizeof *c,
                              &cuda_dev, opts, err, errlen, &rc);
  if (!c) return rc;
  c->a = a;
  c->nin = a->meta->ninputs;
  if ((rc = create_body(c, opts)) != CRAM_STEP_OK) return cram_shim_create_failed(c, rc, err, errlen);
  *out = c;
  return CRAM_STEP_OK;
}
