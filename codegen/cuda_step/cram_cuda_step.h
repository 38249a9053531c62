/* cram_cuda_step.h - the step ABI of `cramc --target cuda` artifacts, between
 * three parts of step.so:
 *   - the generated host C (metadata, slot/output tables, the launch tables
 *     the shim needs at create(): kernel names, node descriptions, GEMM
 *     shapes; the embedded cubins);
 *   - the generated host code (an object emitted with LLVM-C by
 *     codegen/llvm_host.c): per graph a bind function that fills the device
 *     pointer table with the planner's offsets as constants, and a run
 *     function, the straight-line launch sequence calling back into the shim;
 *   - the shim (cuda_shim.c, in libcram_cuda_step.a) that loads the CUDA
 *     driver with dlopen at create(), loads the cubin for the device,
 *     allocates device buffers, and implements the two callbacks (kernels via
 *     cuLaunchKernel, GEMMs via cuBLASLt, also loaded lazily).
 * Nothing here touches the driver at load. */
#ifndef CRAM_CUDA_STEP_H
#define CRAM_CUDA_STEP_H

#include <stddef.h>
#include <stdint.h>

#include "cram_step.h"
#include "cram_step_shim.h"

#define CRAM_CUDA_SHIM_VERSION \
  4u /* 2: LLVM-C host code (bind/run), GEMM operand dtypes; 3: kernels read the dropout seed through a device address; 4: HYPER slot */

/* slot and output kinds: CRAM_S_*, CRAM_O_* (cram_step_shim.h, slots.def) */
enum { CRAM_CUDA_L_KERNEL, CRAM_CUDA_L_GEMM };
enum { CRAM_CUDA_EPI_NONE, CRAM_CUDA_EPI_BIAS, CRAM_CUDA_EPI_RELU, CRAM_CUDA_EPI_RELU_BIAS };
enum { CRAM_CUDA_DT_F32, CRAM_CUDA_DT_BF16 }; /* GEMM operand types (cuBLASLt CUDA_R_32F / CUDA_R_16BF) */

/* One row-major GEMM C[p] = op(A[p]) op(B[p]) (+ beta C) through cuBLASLt,
 * f32 accumulate and scale; dta/dtb/dtc: CRAM_CUDA_DT_* of A, B and C (= D;
 * the bias has C's type). Its operands are the pointer table's entries
 * first..first+3 (a, b, c, bias). */
typedef struct cram_cuda_gemm {
  int ta, tb;
  int64_t M, N, K, batch, lda, ldb, ldc, sa, sb, sc;
  int epi;
  float beta;
  int dta, dtb, dtc;
} cram_cuda_gemm;

/* A row-major GEMM as the column-major call cuBLASLt makes:
 * C^T[N,M] = op(B)^T op(A)^T, so the library's A is our B and its B our A.
 * Rows/cols are of the matrices as stored (column-major), ld as given. */
typedef struct cram_cuda_colmajor {
  int transa, transb; /* of the library's A (= our B) and B (= our A) */
  uint64_t a_rows, a_cols, b_rows, b_cols, c_rows, c_cols;
  int64_t lda, ldb, ldc, stride_a, stride_b, stride_c;
} cram_cuda_colmajor;

static inline cram_cuda_colmajor cram_cuda_to_colmajor(const cram_cuda_gemm *g) {
  cram_cuda_colmajor c;
  c.transa = g->tb, c.transb = g->ta;
  c.a_rows = (uint64_t)(g->tb ? g->K : g->N), c.a_cols = (uint64_t)(g->tb ? g->N : g->K), c.lda = g->ldb;
  c.b_rows = (uint64_t)(g->ta ? g->M : g->K), c.b_cols = (uint64_t)(g->ta ? g->K : g->M), c.ldb = g->lda;
  c.c_rows = (uint64_t)g->N, c.c_cols = (uint64_t)g->M, c.ldc = g->ldc;
  c.stride_a = g->sb, c.stride_b = g->sa, c.stride_c = g->sc;
  return c;
}

/* What the shim needs of launch i at create() (the run function launches it). */
typedef struct cram_cuda_launch {
  uint32_t kind;
  const char *name; /* kernel function in the module */
  const char *node; /* "%12 (layernorm at f.cram:3:4)" for messages */
  uint32_t first;   /* in the pointer table: the kernel's P, or the GEMM's a, b, c, bias */
  cram_cuda_gemm g;
} cram_cuda_launch;

/* The generated host code of one graph (llvm_host.c; hidden symbols
 * cram_cuda_<fwd|acc|up>_bind / _run in step.so):
 *   bind(slots, arena, scratch, tab) fills tab[0, ntab) with the device
 *     pointers every launch uses: arena + OFF, scratch + OFF, slots[s] + OFF
 *     (OFF the memory planner's offsets, compiled in), 0 for no buffer;
 *   run(rt) makes the launches in order, each a call of
 *     cram_cuda_rt_kernel(rt, launch, grid, block, first) or
 *     cram_cuda_rt_gemm(rt, launch), and returns the first nonzero rc
 *     (a cram_step_rc; the callback has written the message) or 0. */
typedef void (*cram_cuda_bind_fn)(const uint64_t *slots, uint64_t arena, uint64_t scratch, uint64_t *tab);
typedef int32_t (*cram_cuda_run_fn)(void *rt);

/* The callbacks of the run functions, defined by the shim. rt is the shim's
 * per-run state; launch the index into the graph's launch table; first the
 * kernel's pointer table P = tab[first...] (on the device). */
int32_t cram_cuda_rt_kernel(void *rt, int32_t launch, int32_t grid, int32_t block, int32_t first);
int32_t cram_cuda_rt_gemm(void *rt, int32_t launch);

typedef struct cram_cuda_slot {
  uint32_t kind, index;
  uint64_t bytes;
} cram_cuda_slot;

typedef struct cram_cuda_out {
  uint32_t kind, index, slot;
} cram_cuda_out;

typedef struct cram_cuda_graph {
  uint32_t nslots;
  const cram_cuda_slot *slots;
  uint32_t nouts;
  const cram_cuda_out *outs;
  uint64_t arena_bytes, scratch_bytes;
  uint32_t nlaunch;
  const cram_cuda_launch *launches;
  uint32_t ntab; /* pointer table entries bind() fills */
  cram_cuda_bind_fn bind;
  cram_cuda_run_fn run;
} cram_cuda_graph;

typedef struct cram_cuda_image {
  int sm; /* cubin for sm_<sm>, or PTX (JIT) for compute_<sm> when ptx */
  int ptx;
  const unsigned char *data;
  size_t len;
} cram_cuda_image;

typedef struct cram_cuda_artifact {
  uint32_t shim_version;
  const cram_step_meta *meta;
  const char *fwd_ir;
  int min_sm;
  uint32_t nimages;
  const cram_cuda_image *images;
  cram_cuda_graph fwd, acc, up;
} cram_cuda_artifact;

/* The step ABI under the prefix cram_cuda_: cram_cuda_create(a, opts, out, err,
 * errlen) and the entries of cram_step_shim.h. */
CRAM_STEP_SHIM_DECLARE(cram_cuda, cram_cuda_artifact)

#endif
