/* test_backend_ops.c - every op of ir/ops.def on every backend (ggml's
 * test-backend-ops idea): each op as a one-node graph (samples[] below,
 * IR text), with seeded random inputs, run by
 *   the reference interpreter (ir/interp.c, f32 mode)   - the oracle,
 *   the cpu target's renderer (render_c.c + cram_cpu_kernels.h, compiled
 *     by the C compiler as one shared object for all ops),
 *   the cuda target's renderer (render_cuda*.c + the kernel library,
 *     compiled for the host with the SIMT emulator test_cuda_emu.h; GEMM
 *     launches by a reference row-major GEMM here, as the fake cuBLASLt),
 * and compared output by output. For an op with a gradient rule the same is
 * done with its gradient: the graph `loss = mean(op(...) * r)` (r random)
 * through pass_autodiff, so the backward ops the rule builds run too.
 * Dropout runs in training mode with one seed everywhere (same masks).
 * An op without a sample fails the test, and so does a renderer without a
 * kernel for it: adding an op means adding its sample line here.
 *
 * usage: test_backend_ops CC CXX CPU_INCLUDE EMU_HEADER CUDA_KERNELS IR_DIR
 * Prints one line per case and "N passed, M failed". */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "diag.h"
#include "interp.h"
#include "kernel.h"
#include "pass.h"
#include "passes.h"
#include "render_c.h"
#include "render_cuda.h"

static int pass, fails;
static double worst[2]; /* the largest relative error that passed: cpu, cuda */
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("FAIL: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  fails++;
}

/* ---- the samples: one graph per line group, output y ------------------------------- */

/* float operands are params (so the gradient graph differentiates them), integer ones inputs;
 * input names choose the random values (see fill_input) */
#define PRM(id, nm, shp) "%" #id " = param {name=\"" nm "\", init=\"normal\", scale=1, decay=0} : f32[" shp "]\n"
#define INP(id, nm, ty)  "%" #id " = input {name=\"" nm "\"} : " ty "\n"
typedef struct Sample {
  const char *op; /* the op under test (the last node) */
  const char *ir; /* body; the output is the last node */
} Sample;
static const Sample samples[] = {
  { "sinusoid", "%0 = sinusoid : f32[6,8]\n" },
  { "fill", "%0 = fill {value=1.5} : f32[3,4]\n" },
  { "arange", "%0 = arange : f32[7]\n" },
  { "embedding", INP(0, "ids", "i32[2,3]") PRM(1, "table", "5,8") "%2 = embedding %1, %0 : f32[2,3,8]\n" },
  { "masked_rows", PRM(0, "x", "2,5,4") INP(1, "tg", "i32[2,5]") "%2 = masked_rows %0, %1 {slots=2} : f32[4,4]\n" },
  { "masked_targets", INP(0, "tg", "i32[2,5]") "%1 = masked_targets %0 {slots=2} : i32[4]\n" },
  { "matmul", PRM(0, "a", "2,3,4") PRM(1, "b", "5,4") "%2 = matmul %0, %1 {trans_a=0, trans_b=1} : f32[2,3,5]\n" },
  { "matmul", PRM(0, "a", "2,4,3") PRM(1, "b", "2,4,5") "%2 = matmul %0, %1 {trans_a=1, trans_b=0} : f32[2,3,5]\n" },
  { "add", PRM(0, "x", "3,8") PRM(1, "b", "8") "%2 = add %0, %1 : f32[3,8]\n" },
  { "add", PRM(0, "x", "3,1") PRM(1, "y", "2,1,4") "%2 = add %0, %1 : f32[2,3,4]\n" },
  { "mul", PRM(0, "x", "3,8") PRM(1, "s", "1") "%2 = mul %0, %1 : f32[3,8]\n" },
  { "scale", PRM(0, "x", "3,8") "%1 = scale %0 {alpha=0.375} : f32[3,8]\n" },
  { "gelu", PRM(0, "x", "3,8") "%1 = gelu %0 : f32[3,8]\n" },
  { "relu", PRM(0, "x", "3,8") "%1 = relu %0 : f32[3,8]\n" },
  { "tanh", PRM(0, "x", "3,8") "%1 = tanh %0 : f32[3,8]\n" },
  { "dropout", PRM(0, "x", "4,8") "%1 = dropout %0 {p=0.25, key=7} : f32[4,8]\n" },
  { "exp", PRM(0, "x", "3,8") "%1 = exp %0 : f32[3,8]\n" },
  { "rsqrt", PRM(0, "pos", "3,8") "%1 = rsqrt %0 : f32[3,8]\n" },
  { "sigmoid", PRM(0, "x", "3,8") "%1 = sigmoid %0 : f32[3,8]\n" },
  { "silu", PRM(0, "x", "3,8") "%1 = silu %0 : f32[3,8]\n" },
  { "sin", PRM(0, "x", "3,8") "%1 = sin %0 : f32[3,8]\n" },
  { "cos", PRM(0, "x", "3,8") "%1 = cos %0 : f32[3,8]\n" },
  { "cast", PRM(0, "x", "3,8") "%1 = cast %0 {to=\"f32\"} : f32[3,8]\n" },
  { "glu", PRM(0, "x", "3,8") "%1 = glu %0 {act=\"gelu\"} : f32[3,4]\n" },
  { "glu", PRM(0, "x", "3,8") "%1 = glu %0 {act=\"sigmoid\"} : f32[3,4]\n" },
  { "layernorm", PRM(0, "x", "3,8") PRM(1, "w", "8") PRM(2, "b", "8") "%3 = layernorm %0, %1, %2 {eps=1e-05} : f32[3,8]\n" },
  { "layernorm", PRM(0, "x", "3,8") "%1 = layernorm %0 {eps=1e-05} : f32[3,8]\n" },
  /* a residual sum and its norm, partitioned into one kernel (build_case): cuda's one row-wise pass stores the
   * sum (read again by the last add) and the norm */
  { "add", PRM(0, "a", "2,35,40") PRM(1, "b", "2,35,40") PRM(2, "w", "40")
             PRM(3, "bi", "40") "%4 = add %0, %1 : f32[2,35,40]\n%5 = layernorm %4, %2, %3 {eps=1e-05} : f32[2,35,40]\n"
                                "%6 = add %5, %4 : f32[2,35,40]\n" },
  /* 70 rows: the cuda partials' two blocks of 35 rows, each a 32-row step and a partial one */
  { "layernorm",
    PRM(0, "x", "2,35,40") PRM(1, "w", "40") PRM(2, "b", "40") "%3 = layernorm %0, %1, %2 {eps=1e-05} : f32[2,35,40]\n" },
  { "rmsnorm", PRM(0, "x", "3,8") PRM(1, "w", "8") "%2 = rmsnorm %0, %1 {eps=1e-05} : f32[3,8]\n" },
  { "softmax", PRM(0, "x", "2,3,8") "%1 = softmax %0 : f32[2,3,8]\n" },
  { "mean", PRM(0, "x", "2,3,4") "%1 = mean %0 {axis=1} : f32[2,4]\n" },
  { "cross_entropy", PRM(0, "z", "4,6") INP(1, "tg", "i32[4]") "%2 = cross_entropy %0, %1 {ignore=-100} : f32[]\n" },
  { "xent_hits", PRM(0, "z", "7,6") INP(1, "tg", "i32[7]") "%2 = xent_hits %0, %1 {ignore=-100} : f32[2]\n" },
  { "reshape", PRM(0, "x", "2,3,4") "%1 = reshape %0 {shape=[6,4]} : f32[6,4]\n" },
  { "permute", PRM(0, "x", "2,3,4") "%1 = permute %0 {perm=[2,0,1]} : f32[4,2,3]\n" },
  { "slice", PRM(0, "x", "2,6,3") "%1 = slice %0 {axis=1, start=2, len=3} : f32[2,3,3]\n" },
  { "gelu_grad", PRM(0, "x", "3,8") PRM(1, "dy", "3,8") "%2 = gelu_grad %0, %1 : f32[3,8]\n" },
  { "relu_grad", PRM(0, "x", "3,8") PRM(1, "dy", "3,8") "%2 = relu_grad %0, %1 : f32[3,8]\n" },
  { "tanh_grad", PRM(0, "y", "3,8") PRM(1, "dy", "3,8") "%2 = tanh_grad %0, %1 : f32[3,8]\n" },
  { "sigmoid_grad", PRM(0, "y", "3,8") PRM(1, "dy", "3,8") "%2 = sigmoid_grad %0, %1 : f32[3,8]\n" },
  { "silu_grad", PRM(0, "x", "3,8") PRM(1, "dy", "3,8") "%2 = silu_grad %0, %1 : f32[3,8]\n" },
  { "glu_grad", PRM(0, "x", "3,8") PRM(1, "dy", "3,4") "%2 = glu_grad %0, %1 {act=\"gelu\"} : f32[3,8]\n" },
  { "layernorm_grad",
    PRM(0, "x", "3,8") PRM(1, "w", "8") PRM(2, "dy", "3,8") "%3 = layernorm_grad %0, %1, %2 {eps=1e-05} : f32[3,8]\n" },
  { "layernorm_wgrad", PRM(0, "x", "2,35,40") PRM(1, "dy", "2,35,40") "%2 = layernorm_wgrad %0, %1 {eps=1e-05} : f32[40]\n" },
  { "layernorm_bgrad", PRM(0, "x", "3,8") PRM(1, "dy", "3,8") "%2 = layernorm_bgrad %0, %1 {eps=1e-05} : f32[8]\n" },
  /* layernorm_grad_add with its parameter gradients, partitioned into one kernel (build_case): on cuda one pass
   * over x and dy writes dx and the blocks' partial sums (70 rows: 3 blocks of 32, 32 and 6 rows) */
  { "layernorm_bgrad",
    PRM(0, "x", "2,35,40") PRM(1, "w", "40") PRM(2, "dy", "2,35,40")
      PRM(3, "dr", "2,35,40") "%4 = layernorm_grad_add %0, %1, %2, %3 {eps=1e-05} : f32[2,35,40]\n"
                              "%5 = layernorm_wgrad %0, %2 {eps=1e-05} : f32[40]\n"
                              "%6 = layernorm_bgrad %0, %2 {eps=1e-05} : f32[40]\n"
                              "%7 = add %4, %5 : f32[2,35,40]\n"
                              "%8 = add %7, %6 : f32[2,35,40]\n"
                              "%9 = layernorm_bgrad %0, %8 {eps=1e-05} : f32[40]\n" }, /* y: column sums of dx + dw + db */
  /* the sibling pair, partitioned into one kernel (build_case): one pass writes both */
  { "layernorm_bgrad", PRM(0, "x", "2,35,40") PRM(1, "dy", "2,35,40") "%2 = layernorm_wgrad %0, %1 {eps=1e-05} : f32[40]\n"
                                                                      "%3 = layernorm_bgrad %0, %1 {eps=1e-05} : f32[40]\n" },
  { "rmsnorm_grad",
    PRM(0, "x", "3,8") PRM(1, "w", "8") PRM(2, "dy", "3,8") "%3 = rmsnorm_grad %0, %1, %2 {eps=1e-05} : f32[3,8]\n" },
  { "softmax_grad", PRM(0, "y", "3,8") PRM(1, "dy", "3,8") "%2 = softmax_grad %0, %1 : f32[3,8]\n" },
  { "cross_entropy_grad",
    PRM(0, "z", "4,6") INP(1, "tg", "i32[4]") PRM(2, "dl", "") "%3 = cross_entropy_grad %0, %1, %2 {ignore=-100} : f32[4,6]\n" },
  { "embedding_grad", INP(0, "ids", "i32[2,3]") PRM(1, "dy", "2,3,8") "%2 = embedding_grad %0, %1 {rows=5} : f32[5,8]\n" },
  { "masked_rows_grad", PRM(0, "dy", "4,4") INP(1, "tg", "i32[2,5]") "%2 = masked_rows_grad %0, %1 {slots=2} : f32[2,5,4]\n" },
  { "sum_to", PRM(0, "x", "2,3,8") "%1 = sum_to %0 {shape=[8]} : f32[8]\n" },
  { "sum_to", PRM(0, "x", "2,3,8") "%1 = sum_to %0 {shape=[2,1,8]} : f32[2,1,8]\n" },
  { "broadcast_to", PRM(0, "x", "3,1") "%1 = broadcast_to %0 {shape=[2,3,4]} : f32[2,3,4]\n" },
  { "pad", PRM(0, "x", "2,3,2") "%1 = pad %0 {axis=1, start=1, size=5} : f32[2,5,2]\n" },
  { "sumsq", PRM(0, "x", "3,8") "%1 = sumsq %0 : f32[]\n" },
  { "sqrt", PRM(0, "pos", "3,8") "%1 = sqrt %0 : f32[3,8]\n" },
  { "clip_coef", PRM(0, "pos", "") INP(1, "hyper", "f32[6]") "%2 = clip_coef %0, %1 : f32[]\n" },
  { "adam_sched",
    INP(0, "step", "f32[]") INP(1, "lr", "f32[]") INP(2, "hyper", "f32[6]") "%3 = adam_sched %0, %1, %2 : f32[8]\n" },
  { "adam_m",
    PRM(0, "m", "3,8") PRM(1, "g", "3,8") PRM(2, "c", "") INP(3, "sched", "f32[8]") "%4 = adam_m %0, %1, %2, %3 : f32[3,8]\n" },
  { "adam_v",
    PRM(0, "pos", "3,8") PRM(1, "g", "3,8") PRM(2, "c", "") INP(3, "sched", "f32[8]") "%4 = adam_v %0, %1, %2, %3 : f32[3,8]\n" },
  { "adamw_param", PRM(0, "p", "3,8") PRM(1, "m", "3,8") PRM(2, "pos", "3,8")
                     INP(3, "sched", "f32[8]") "%4 = adamw_param %0, %1, %2, %3 {decay=1} : f32[3,8]\n" },
  { "adamw_param", PRM(0, "p", "3,8") PRM(1, "m", "3,8") PRM(2, "pos", "3,8")
                     INP(3, "sched", "f32[8]") "%4 = adamw_param %0, %1, %2, %3 {decay=0} : f32[3,8]\n" },
  { "concat", PRM(0, "a", "2,3") PRM(1, "b", "2,2") PRM(2, "c", "2,1") "%3 = concat %0, %1, %2 {axis=1} : f32[2,6]\n" },
  { "matmul_act", PRM(0, "a", "2,3,4") PRM(1, "b", "5,4")
                    PRM(2, "bias", "5") "%3 = matmul_act %0, %1, %2 {trans_a=0, trans_b=1, act=\"gelu\"} : f32[2,3,5]\n" },
  { "matmul_act",
    PRM(0, "a", "3,4") PRM(1, "b", "4,5") "%2 = matmul_act %0, %1 {trans_a=0, trans_b=0, act=\"relu\"} : f32[3,5]\n" },
  { "matmul_glu", PRM(0, "a", "3,4") PRM(1, "b", "8,4")
                    PRM(2, "bias", "8") "%3 = matmul_glu %0, %1, %2 {trans_a=0, trans_b=1, act=\"gelu\"} : f32[3,4]\n" },
  { "matmul_act_grad", PRM(0, "pre", "3,4") PRM(1, "dy", "3,5")
                         PRM(2, "b", "4,5") "%3 = matmul_act_grad %0, %1, %2 {trans_a=0, trans_b=1, act=\"gelu\"} : f32[3,4]\n" },
  { "matmul_glu_grad", PRM(0, "pre", "3,8") PRM(1, "dy", "3,5")
                         PRM(2, "b", "4,5") "%3 = matmul_glu_grad %0, %1, %2 {trans_a=0, trans_b=1, act=\"gelu\"} : f32[3,8]\n" },
  { "add_layernorm", PRM(0, "a", "3,8") PRM(1, "b", "3,8") PRM(2, "w", "8")
                       PRM(3, "bias", "8") "%4 = add_layernorm %0, %1, %2, %3 {eps=1e-05} : f32[3,8]\n" },
  { "layernorm_grad_add", PRM(0, "x", "3,8") PRM(1, "w", "8") PRM(2, "dy", "3,8")
                            PRM(3, "dr", "3,8") "%4 = layernorm_grad_add %0, %1, %2, %3 {eps=1e-05} : f32[3,8]\n" },
  { "xent_linear", PRM(0, "x", "5,4") PRM(1, "w", "6,4") INP(2, "tg", "i32[5]")
                     PRM(3, "b", "6") "%4 = xent_linear %0, %1, %2, %3 {trans_b=1, ignore=-100} : f32[]\n" },
  { "xent_linear_hits", PRM(0, "x", "9,4") PRM(1, "w", "6,4") INP(2, "tg", "i32[9]")
                          PRM(3, "b", "6") "%4 = xent_linear_hits %0, %1, %2, %3 {trans_b=1, ignore=-100} : f32[2]\n" },
  { "xent_linear_hits", PRM(0, "x", "9,4") PRM(1, "w", "4,6")
                          INP(2, "tg", "i32[9]") "%3 = xent_linear_hits %0, %1, %2 {trans_b=0, ignore=-100} : f32[2]\n" },
  { "xent_linear_grad", PRM(0, "x", "5,4") PRM(1, "w", "6,4") INP(
                          2, "tg", "i32[5]") "%3 = xent_linear_grad %0, %1, %2 {trans_b=1, ignore=-100, wrt=0} : f32[5,4]\n" },
  { "xent_linear_grad", PRM(0, "x", "5,4") PRM(1, "w", "4,6") INP(
                          2, "tg", "i32[5]") "%3 = xent_linear_grad %0, %1, %2 {trans_b=0, ignore=-100, wrt=1} : f32[4,6]\n" },
  { "xent_linear_grad", PRM(0, "x", "5,4") PRM(1, "w", "6,4") INP(2, "tg", "i32[5]")
                          PRM(3, "b", "6") "%4 = xent_linear_grad %0, %1, %2, %3 {trans_b=1, ignore=-100, wrt=2} : f32[6]\n" },
/* fused attention: packed qkv [B,S,heads,3dh] with a key-padding bias and dropout; multi-query (k/v one group);
   * the backward of packed qkv (wrt=7) and of a shared k/v source (wrt=6) */
#define ATT_ATTRS(extra) "{alpha=0.7, p=0.25, key=3" extra ", head_dim=2, offsets=[0, 2, 4]}"
  { "attention",
    PRM(0, "qkv", "2,5,3,6") INP(1, "mask", "f32[2,1,1,5]") "%2 = attention %0, %0, %0, %1 " ATT_ATTRS("") " : f32[2,5,3,2]\n" },
  { "attention",
    PRM(0, "q", "2,5,2,2") PRM(
      1, "kv", "2,5,1,4") "%2 = attention %0, %1, %1 {alpha=0.7, p=0, key=3, head_dim=2, offsets=[0, 0, 2]} : f32[2,5,2,2]\n" },
  { "attention_lse", PRM(0, "qkv", "2,5,3,6")
                       INP(1, "mask", "f32[2,1,1,5]") "%2 = attention_lse %0, %0, %0, %1 " ATT_ATTRS("") " : f32[2,3,5]\n" },
  { "attention_grad", PRM(0, "qkv", "2,5,3,6") INP(1, "mask", "f32[2,1,1,5]") PRM(2, "o", "2,5,3,2")
                        PRM(3, "do", "2,5,3,2") "%4 = attention_lse %0, %0, %0, %1 " ATT_ATTRS(
                          "") " : f32[2,3,5]\n"
                              "%5 = attention_grad %0, %0, %0, %2, %4, %3, %1 " ATT_ATTRS(", wrt=7") " : f32[2,5,3,6]\n" },
  { "attention_grad",
    PRM(0, "q", "2,5,2,2") PRM(1, "kv", "2,5,1,4") PRM(2, "o", "2,5,2,2") PRM(
      3, "do", "2,5,2,2") "%4 = attention_lse %0, %1, %1 {alpha=0.7, p=0, key=3, head_dim=2, offsets=[0, 0, 2]} : f32[2,2,5]\n"
                          "%5 = attention_grad %0, %1, %1, %2, %4, %3 {alpha=0.7, p=0, key=3, wrt=6, head_dim=2, offsets=[0, 0, "
                          "2]} : f32[2,5,1,4]\n" },
/* several tiles: 40 rows = a 32-row tile and a partial one (cuda; cpu: 64-row tiles), head dim 4 */
#define ATT_TILES(extra) "{alpha=0.25, p=0.25, key=5" extra ", head_dim=16, offsets=[0, 16, 32]}"
  { "attention", PRM(0, "qkv", "1,40,2,48")
                   INP(1, "mask", "f32[1,1,1,40]") "%2 = attention %0, %0, %0, %1 " ATT_TILES("") " : f32[1,40,2,16]\n" },
  { "attention_grad", PRM(0, "qkv", "1,40,2,48") INP(1, "mask", "f32[1,1,1,40]") PRM(2, "o", "1,40,2,16")
                        PRM(3, "do", "1,40,2,16") "%4 = attention_lse %0, %0, %0, %1 " ATT_TILES(
                          "") " : f32[1,2,40]\n"
                              "%5 = attention_grad %0, %0, %0, %2, %4, %3, %1 " ATT_TILES(", wrt=7") " : f32[1,40,2,48]\n" },
#undef ATT_TILES
#undef ATT_ATTRS
};

/* Ops whose kernel a backend does not have YET (as the fused attention ops had
 * while they landed in the IR before the cpu and cuda kernels). Their samples still
 * run on the interpreter; on a listed backend the renderer must refuse them
 * with an error, and the moment it renders one the test fails, asking for the
 * entry to be removed here: so the list cannot outlive the kernels it waits
 * for, and an op cannot be forgotten. The fuse_attention pass only fires for
 * targets that render these ops (PassOptions.fused_attention). */
static const char *const not_rendered[][2] = {
  /* backend, op (none today: every op renders on cpu and cuda) */
  { NULL, NULL },
};
static bool is_not_rendered(const char *backend, const Graph *g) {
  for (size_t i = 0; not_rendered[i][0]; i++)
    for (ValueId v = 0; v < g->n; v++)
      if (!strcmp(not_rendered[i][0], backend) && !strcmp(not_rendered[i][1], ir_ops[g->nodes[v].op].name)) return true;
  return false;
}
#define NSAMPLES (sizeof samples / sizeof samples[0])

/* ---- one case: a graph, its inputs, and what each backend made of it ------------------- */

typedef struct Case {
  char name[96];
  Graph *g;
  KProgram *P;
  float **val;      /* per node: f32 data of sources (NULL otherwise) */
  int32_t **ival;   /* per node: i32 data of sources */
  bool *owned;      /* per node: the interpreter allocated its buffer */
  RenderCudaHost h; /* the CUDA launch list */
  uint64_t scratch;
  bool ok;         /* built and rendered */
  bool pending[2]; /* cpu, cuda: a not_rendered op; the interpreter alone runs it */
} Case;

static uint64_t rng_state;
static double urand(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return (double)((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
}
/* random source values by name: ids/targets in range (targets sometimes ignored),
 * a step of 3, positive values where the op needs them, else uniform [-1, 1) */
static void fill_input(Case *c, ValueId v, int64_t vocab) {
  const Node *n = &c->g->nodes[v];
  int64_t N = ir_shape_numel(&n->shape);
  const char *nm = ir_get_str(n, ATTR_NAME);
  if (n->dtype == DT_I32) {
    int32_t *d = c->ival[v] = calloc((size_t)(N ? N : 1), 4);
    for (int64_t i = 0; i < N; i++) d[i] = !strcmp(nm, "tg") && urand() < 0.25 ? -100 : (int32_t)(urand() * (double)vocab);
    return;
  }
  float *d = c->val[v] = calloc((size_t)(N ? N : 1), 4);
  for (int64_t i = 0; i < N; i++) {
    if (!strcmp(nm, "step")) d[i] = 3.f;
    else if (!strcmp(nm, "lr")) d[i] = 1e-3f;
    /* the optimizer's run-time vectors (ir.h IR_HYP_*, IR_SCH_*): betas, eps, decays, clip; lr, bias corrections */
    else if (!strcmp(nm, "hyper")) d[i] = (const float[]){ 0.9f, 0.98f, 1e-8f, 0.01f, 0.02f, 0.5f }[i % 6];
    else if (!strcmp(nm, "sched")) d[i] = (const float[]){ 1e-3f, 0.271f, 0.059f, 0.9f, 0.98f, 1e-8f, 0.01f, 0.02f }[i % 8];
    else if (!strncmp(nm, "pos", 3)) d[i] = (float)(0.25 + urand());
    else d[i] = (float)(2.0 * urand() - 1.0);
  }
}

/* the value of the integer attribute bounding the op's ids (vocab / rows / V) */
static int64_t vocab_of(const Graph *g) {
  const Node *n = &g->nodes[g->n - 1];
  for (uint32_t v = 0; v < g->n; v++) {
    const Node *m = &g->nodes[v];
    if (m->op == OP_EMBEDDING) return g->nodes[m->in[0]].shape.dim[0];
    if (m->op == OP_EMBEDDING_GRAD) return ir_get_int(m, ATTR_ROWS);
    if (m->op == OP_CROSS_ENTROPY || m->op == OP_CROSS_ENTROPY_GRAD || m->op == OP_XENT_HITS)
      return g->nodes[m->in[0]].shape.dim[1];
    if (m->op == OP_XENT_LINEAR || m->op == OP_XENT_LINEAR_GRAD || m->op == OP_XENT_LINEAR_HITS)
      return g->nodes[m->in[1]].shape.dim[ir_get_int(m, ATTR_TRANS_B) ? 0 : 1];
  }
  (void)n;
  return 4;
}

static Graph *parse(const char *text, Diag *d) { return ir_parse(text, strlen(text), "sample", d); }

/* "graph t\n" + body + "output y = %last\n" */
static char *graph_text(const char *body) {
  int last = -1;
  for (const char *p = body; (p = strchr(p, '%'));) {
    if (p == body || p[-1] == '\n') last = atoi(p + 1);
    p++;
  }
  char *t = NULL;
  if (asprintf(&t, "graph t\n%soutput y = %%%d\n", body, last) < 0) return NULL;
  return t;
}
/* the gradient graph's text: loss = mean(reshape(y * r)), r a random input */
static char *loss_text(const char *body, const Graph *g) {
  ValueId y = g->outputs[0].value;
  const Node *n = &g->nodes[y];
  char shp[128] = "";
  size_t l = 0;
  for (int d = 0; d < n->shape.rank; d++)
    l += (size_t)snprintf(shp + l, sizeof shp - l, "%s%" PRId64, d ? "," : "", n->shape.dim[d]);
  int64_t N = ir_shape_numel(&n->shape);
  uint32_t k = g->n;
  char *t = NULL;
  if (asprintf(&t,
               "graph t\n%s%%%u = input {name=\"r\"} : f32[%s]\n%%%u = mul %%%u, %%%u : f32[%s]\n"
               "%%%u = reshape %%%u {shape=[%" PRId64 "]} : f32[%" PRId64
               "]\n%%%u = mean %%%u {axis=0} : f32[]\noutput loss = %%%u\n",
               body, k, shp, k + 1, y, k, shp, k + 2, k + 1, N, N, k + 3, k + 2, k + 3) < 0)
    return NULL;
  return t;
}

/* Takes g: the case owns it (or its partitioned copy, g freed). */
static bool build_case(Case *c, Graph *g, Arena *ar) {
  /* a pair one kernel computes (ir_siblings), or a norm of a sum: partitioned, as the pipeline does */
  bool siblings = false;
  for (ValueId v = 1; v < g->n; v++)
    siblings |=
      ir_siblings(&g->nodes[v - 1], &g->nodes[v]) || (g->nodes[v].op == OP_LAYERNORM && g->nodes[g->nodes[v].in[0]].op == OP_ADD);
  if (siblings) {
    Diag d;
    diag_init(&d, stderr);
    Graph *p = pass_partition_kernels(g, false, &d);
    if (!p) {
      fail("%s: the kernel partition fails", c->name);
      ir_graph_free(g);
      return false;
    }
    ir_graph_free(g);
    g = p;
  }
  c->g = g;
  c->val = calloc(g->n, sizeof *c->val);
  c->ival = calloc(g->n, sizeof *c->ival);
  const char **pn = ARENA_ARRAY(ar, const char *, g->n + 1), **in = ARENA_ARRAY(ar, const char *, g->n + 1);
  uint32_t np = 0, ni = 0;
  int64_t vocab = vocab_of(g);
  for (ValueId v = 0; v < g->n; v++) {
    const Node *n = &g->nodes[v];
    if (n->op == OP_PARAM) pn[np++] = ir_get_str(n, ATTR_NAME);
    if (n->op == OP_INPUT) in[ni++] = ir_get_str(n, ATTR_NAME);
    if (n->op == OP_PARAM || n->op == OP_INPUT) fill_input(c, v, vocab);
  }
  KNames names = { pn, np, in, ni, .state_in_place = false };
  char err[512];
  if (!(c->P = kernel_build(g, &names, ar, err, sizeof err))) {
    fail("%s: kernel_build: %s", c->name, err);
    return false;
  }
  return true;
}

/* the bytes of value v after a backend's run */
static const void *value_ptr(const KProgram *P, ValueId v, char *arena, void *const *slot) {
  uint32_t s = P->slot_of[v];
  return s != KBUF_NO_SLOT ? slot[s] : arena + P->plan->offset[v];
}
/* pointers of the case's slots: sources are the case's data, KS_OWN fresh zeroed buffers */
static void **bind_slots(const Case *c) {
  void **slot = calloc(c->P->nslots + 1, sizeof *slot);
  for (uint32_t s = 0; s < c->P->nslots; s++) {
    ValueId v = c->P->slots[s].node;
    const Node *n = &c->g->nodes[v];
    if (n->op == OP_PARAM || n->op == OP_INPUT) {
      size_t bytes = (size_t)ir_shape_numel(&n->shape) * 4;
      slot[s] = malloc(bytes ? bytes : 4); /* a copy: a kernel may write its output in place */
      memcpy(slot[s], n->dtype == DT_I32 ? (void *)c->ival[v] : (void *)c->val[v], bytes);
    } else {
      slot[s] = calloc(1, c->P->slots[s].bytes ? (size_t)c->P->slots[s].bytes : 4);
    }
  }
  return slot;
}
static void free_slots(const Case *c, void **slot) {
  for (uint32_t s = 0; s < c->P->nslots; s++) free(slot[s]);
  free(slot);
}

/* Compares every graph output of the backend's run with the interpreter's. */
static void compare(const Case *c, const char *backend, double *const *ref, char *arena, void *const *slot, double tol) {
  for (uint32_t o = 0; o < c->g->nout; o++) {
    ValueId v = c->g->outputs[o].value;
    const Node *n = &c->g->nodes[v];
    int64_t N = ir_shape_numel(&n->shape);
    const void *got = value_ptr(c->P, v, arena, slot);
    double maxref = 0, maxerr = 0;
    for (int64_t i = 0; i < N; i++) {
      double g = n->dtype == DT_I32 ? ((const int32_t *)got)[i] : ((const float *)got)[i];
      maxref = fmax(maxref, fabs(ref[v][i]));
      double e = fabs(g - ref[v][i]);
      maxerr = isnan(g) != isnan(ref[v][i]) ? INFINITY : fmax(maxerr, e);
    }
    double rel = maxerr / fmax(maxref, 1e-3);
    double *w = &worst[strcmp(backend, "cpu") != 0];
    if (rel <= tol) pass++, *w = fmax(*w, rel);
    else
      fail("%s on %s: output %s differs from the interpreter: max error %.3g (relative %.3g > %.0e)", c->name, backend,
           c->g->outputs[o].name, maxerr, rel, tol);
  }
}

/* ---- the cpu renderer ------------------------------------------------------------------ */

typedef struct cram_cpu_run_t {
  char *arena;
  void *const *slot;
  uint64_t seed;
  int training;
  char *err;
  size_t errlen;
} cram_cpu_run_t; /* = cram_cpu_run (cram_cpu_kernels.h), which is not includable here */

#define SEED 5u

static void run_cpu(Case *cs, size_t n, void *so, double ***ref) {
  for (size_t i = 0; i < n; i++) {
    Case *c = &cs[i];
    if (!c->ok || c->pending[0]) continue;
    char sym[64];
    snprintf(sym, sizeof sym, "t%zu_entry", i);
    int (*run)(const cram_cpu_run_t *) = (int (*)(const cram_cpu_run_t *))dlsym(so, sym);
    if (!run) {
      fail("%s on cpu: %s not in the compiled kernels", c->name, sym);
      continue;
    }
    char *arena = calloc(1, (size_t)c->P->arena_bytes + 64);
    void **slot = bind_slots(c);
    char err[256] = "";
    cram_cpu_run_t R = { arena, slot, SEED, 1, err, sizeof err };
    if (run(&R)) fail("%s on cpu: %s", c->name, err);
    else compare(c, "cpu", ref[i], arena, slot, 2e-6);
    free_slots(c, slot);
    free(arena);
  }
}

/* ---- the cuda renderer on the emulator --------------------------------------------------- */

static float bf16_load(const void *p, int64_t i) {
  uint32_t u = (uint32_t)((const uint16_t *)p)[i] << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
/* what the fake cuBLASLt computes: row-major C[p] = op(A[p]) op(B[p]) (+ beta C) (+ bias) (relu) */
static void ref_gemm(const RenderCudaGemm *g, const void *A, const void *B, float *C, const float *bias) {
  if (g->a_bf16 || g->b_bf16 || g->c_bf16) return; /* the samples are f32 */
  const float *a = A, *b = B;
  for (int64_t p = 0; p < g->batch; p++)
    for (int64_t i = 0; i < g->M; i++)
      for (int64_t j = 0; j < g->N; j++) {
        double s = 0;
        for (int64_t k = 0; k < g->K; k++)
          s += (double)a[p * g->sa + (g->ta ? k * g->lda + i : i * g->lda + k)] *
               b[p * g->sb + (g->tb ? j * g->ldb + k : k * g->ldb + j)];
        float *cp = &C[p * g->sc + i * g->ldc + j];
        float r = (float)s + (g->beta != 0.f ? g->beta * *cp : 0.f);
        if (g->epi == 1 || g->epi == 3) r += bias[j];
        if (g->epi == 2 || g->epi == 3) r = r > 0.f ? r : 0.f;
        *cp = r;
      }
}
static void run_cuda(Case *cs, size_t n, void *so, double ***ref) {
  void (*launch)(void *, unsigned, unsigned, void **) = (void (*)(void *, unsigned, unsigned, void **))dlsym(so, "emu_launch");
  if (!launch) {
    fail("cuda: the emulated kernels have no emu_launch");
    return;
  }
  (void)bf16_load;
  for (size_t i = 0; i < n; i++) {
    Case *c = &cs[i];
    if (!c->ok || c->pending[1]) continue;
    char *arena = calloc(1, (size_t)c->P->arena_bytes + 64);
    char *scratch = calloc(1, (size_t)c->scratch + 64);
    void **slot = bind_slots(c);
    uint64_t seed = SEED;
    int E = 0, training = 1;
    bool ok = true;
    for (uint32_t l = 0; ok && l < c->h.nlaunch; l++) {
      const RenderCudaLaunch *L = &c->h.launch[l];
      void *ptr[64];
      for (uint32_t b = 0; b < L->nbuf && b < 64; b++) {
        RenderCudaRef r = c->h.tab[L->first + b];
        ptr[b] = r.base == RC_NONE      ? NULL
                 : r.base == RC_ARENA   ? arena + r.off
                 : r.base == RC_SCRATCH ? scratch + r.off
                                        : (char *)slot[r.base] + r.off;
      }
      if (L->gemm) {
        ref_gemm(&L->g, ptr[0], ptr[1], ptr[2], ptr[3]);
        continue;
      }
      char name[32];
      snprintf(name, sizeof name, "k_%016" PRIx64, L->kernel);
      void *fn = dlsym(so, name);
      if (!fn) {
        fail("%s on cuda: kernel %s not in the compiled source", c->name, name);
        ok = false;
        break;
      }
      void *P = ptr;
      char *T = scratch;
      uint64_t sp = (uint64_t)(uintptr_t)&seed;
      int *Ep = &E, code = (int)l + 1;
      void *params[] = { &P, &T, &sp, &training, &Ep, &code };
      launch(fn, L->grid, L->block, params);
      if (E) {
        fail("%s on cuda: launch %u set the error word", c->name, l);
        ok = false;
      }
    }
    if (ok) compare(c, "cuda", ref[i], arena, slot, 2e-5);
    free_slots(c, slot);
    free(arena), free(scratch);
  }
}

/* ---- driver ---------------------------------------------------------------------------------- */

static bool sh(const char *cmd) {
  int rc = system(cmd);
  if (rc) fail("command failed (%d): %s", rc, cmd);
  return rc == 0;
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: %s CC CXX CPU_INCLUDE EMU_HEADER CUDA_KERNELS IR_DIR\n", argv[0]);
    return 2;
  }
  const char *cc = argv[1], *cxx = argv[2], *cpuinc = argv[3], *emu = argv[4], *lib = argv[5], *irdir = argv[6];
  char dir[] = "/tmp/test_backend_ops.XXXXXX";
  if (!mkdtemp(dir)) return 1;
  Diag d;
  diag_init(&d, stderr);
  Arena *ar = arena_new();

  /* every op but the caller-fed sources has a sample */
  for (int op = 0; op < OP_COUNT; op++) {
    if (op == OP_INPUT || op == OP_PARAM) continue;
    bool has = false;
    for (size_t s = 0; s < NSAMPLES; s++) has |= !strcmp(samples[s].op, ir_ops[op].name);
    if (has) pass++;
    else fail("op %s has no sample in test_backend_ops.c", ir_ops[op].name);
  }

  /* the cases: each sample's forward graph, and its gradient graph where the op has a rule */
  Case *cs = calloc(2 * NSAMPLES, sizeof *cs);
  size_t n = 0;
  for (size_t s = 0; s < NSAMPLES; s++) {
    char *text = graph_text(samples[s].ir);
    Graph *g = text ? parse(text, &d) : NULL;
    free(text);
    if (!g || !ir_verify(g, &d)) {
      fail("sample %zu (%s) does not parse", s, samples[s].op);
      ir_graph_free(g);
      continue;
    }
    const Node *last = &g->nodes[g->outputs[0].value];
    if (strcmp(ir_ops[last->op].name, samples[s].op)) fail("sample %zu is not an %s", s, samples[s].op);
    bool grad = pass_has_grad_rule(last->op) && last->dtype == DT_F32;
    char *lt = grad ? loss_text(samples[s].ir, g) : NULL; /* before build_case, which may replace g */
    snprintf(cs[n].name, sizeof cs[n].name, "%s #%zu", samples[s].op, s);
    cs[n].ok = build_case(&cs[n], g, ar);
    n++;
    if (!grad) continue;
    Graph *f = lt ? parse(lt, &d) : NULL;
    free(lt);
    Graph *bw = f ? pass_autodiff(f, &d) : NULL;
    ir_graph_free(f);
    if (!bw) {
      fail("%s: the gradient graph does not build", samples[s].op);
      continue;
    }
    snprintf(cs[n].name, sizeof cs[n].name, "%s #%zu gradient", samples[s].op, s);
    cs[n].ok = build_case(&cs[n], bw, ar);
    n++;
  }

  /* the interpreter's outputs */
  double ***ref = calloc(n, sizeof *ref);
  for (size_t i = 0; i < n; i++) {
    Case *c = &cs[i];
    if (!c->ok) continue;
    ref[i] = calloc(c->g->n, sizeof **ref);
    c->owned = calloc(c->g->n, 1);
    for (ValueId v = 0; v < c->g->n; v++) {
      if (!c->val[v] && !c->ival[v]) continue;
      int64_t N = ir_shape_numel(&c->g->nodes[v].shape);
      ref[i][v] = calloc((size_t)(N ? N : 1), sizeof(double));
      for (int64_t e = 0; e < N; e++) ref[i][v][e] = c->val[v] ? c->val[v][e] : c->ival[v][e];
    }
    InterpOpts io = { INTERP_F32, true, SEED };
    char err[512];
    if (!interp_run(c->g, &io, ref[i], c->owned, err, sizeof err)) {
      fail("%s: the interpreter fails: %s", c->name, err);
      c->ok = false;
    }
  }

  /* both renderers, every case into one source each */
  char cpath[600], cupath[600], cso[600], cuso[600], cmd[4096];
  snprintf(cpath, sizeof cpath, "%s/ops.c", dir), snprintf(cupath, sizeof cupath, "%s/ops.cu", dir);
  snprintf(cso, sizeof cso, "%s/cpu.so", dir), snprintf(cuso, sizeof cuso, "%s/cuda.so", dir);
  FILE *cf = fopen(cpath, "w"), *cuf = fopen(cupath, "w"), *host = fopen("/dev/null", "w");
  if (!cf || !cuf || !host) return 1;
  fputs("#include \"cram_cpu_kernels.h\"\n", cf);
  render_cuda_prelude(cuf);
  RenderCudaSeen seen = { NULL, 0, 0 };
  for (size_t i = 0; i < n; i++) {
    Case *c = &cs[i];
    if (!c->ok) continue;
    char pfx[32], err[512];
    snprintf(pfx, sizeof pfx, "t%zu", i);
    c->pending[0] = is_not_rendered("cpu", c->g), c->pending[1] = is_not_rendered("cuda", c->g);
    if (c->pending[0] || c->pending[1]) {
      /* a scratch stream: a refused render leaves partial text behind */
      FILE *tmp = tmpfile();
      RenderCudaSeen tseen = { NULL, 0, 0 };
      uint64_t tscratch = 0;
      RenderCudaHost th = { 0 };
      bool cpu_ok = c->pending[0] && tmp && render_c_kernels(tmp, c->P, pfx, err, sizeof err);
      bool cuda_ok = c->pending[1] && tmp && render_cuda_graph(tmp, host, c->P, pfx, 0, &tseen, &tscratch, &th, err, sizeof err);
      free(tseen.h);
      render_cuda_host_free(&th);
      if (tmp) fclose(tmp);
      if (cpu_ok) fail("%s on cpu: renders now: remove its op from not_rendered[] in test_backend_ops.c", c->name);
      else if (c->pending[0]) pass++, printf("%s on cpu: not rendered yet (expected: not_rendered[])\n", c->name);
      if (cuda_ok) fail("%s on cuda: renders now: remove its op from not_rendered[] in test_backend_ops.c", c->name);
      else if (c->pending[1]) pass++, printf("%s on cuda: not rendered yet (expected: not_rendered[])\n", c->name);
      if (c->pending[0] && c->pending[1]) {
        c->ok = false; /* the interpreter ran it; nothing to compare against */
        continue;
      }
    }
    if (!c->pending[0]) {
      if (!render_c_kernels(cf, c->P, pfx, err, sizeof err)) {
        fail("%s on cpu: %s", c->name, err);
        c->ok = false;
        continue;
      }
      render_c_host(cf, c->P, pfx);
      fprintf(cf, "int %s_entry(const cram_cpu_run *R) { return %s_run(R); }\n", pfx, pfx);
    }
    if (!c->pending[1] && !render_cuda_graph(cuf, host, c->P, pfx, 0, &seen, &c->scratch, &c->h, err, sizeof err)) {
      fail("%s on cuda: %s", c->name, err);
      c->ok = false;
    }
  }
  free(seen.h);
  fclose(cf), fclose(cuf), fclose(host);
  snprintf(cmd, sizeof cmd, "%s -std=c17 -O1 -w -shared -fPIC -fopenmp -I '%s' -o '%s' '%s' -lopenblas -lm", cc, cpuinc, cso,
           cpath);
  void *cso_h = sh(cmd) ? dlopen(cso, RTLD_NOW | RTLD_LOCAL) : NULL;
  snprintf(cmd, sizeof cmd,
           "mkdir -p '%s/inc' && echo > '%s/inc/cuda_bf16.h' && %s -std=c++17 -O1 -w -shared -fPIC -I '%s/inc' -I '%s' -I '%s' "
           "-include '%s' -x c++ '%s' -o '%s'",
           dir, dir, cxx, dir, lib, irdir, emu, cupath, cuso);
  void *cuso_h = sh(cmd) ? dlopen(cuso, RTLD_NOW | RTLD_LOCAL) : NULL;
  if (!cso_h || !cuso_h) fail("cannot load the compiled kernels: %s", dlerror());
  if (cso_h) run_cpu(cs, n, cso_h, ref);
  if (cuso_h) run_cuda(cs, n, cuso_h, ref);
  printf("%zu cases (%zu samples, forward and gradient) on cpu and cuda (emulated) against the interpreter;\n"
         "largest relative error: cpu %.2g (limit 2e-6), cuda %.2g (limit 2e-5)\n",
         n, NSAMPLES, worst[0], worst[1]);

  for (size_t i = 0; i < n; i++) {
    Case *c = &cs[i];
    if (ref[i]) {
      interp_free(c->g, ref[i], c->owned); /* what the interpreter allocated, then the sources */
      for (ValueId v = 0; v < c->g->n; v++)
        if (!c->owned[v]) free(ref[i][v]);
      free(ref[i]), free(c->owned);
    }
    for (ValueId v = 0; c->g && v < c->g->n; v++) free(c->val[v]), free(c->ival[v]);
    free(c->val), free(c->ival);
    render_cuda_host_free(&c->h);
    ir_graph_free(c->g);
  }
  free(ref), free(cs);
  arena_free(ar);
  if (cso_h) dlclose(cso_h);
  if (cuso_h) dlclose(cuso_h);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd)) fprintf(stderr, "cannot remove %s\n", dir);
  printf("%d passed, %d failed\n", pass, fails);
  return fails ? 1 : 0;
}
