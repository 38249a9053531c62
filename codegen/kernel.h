/* kernel.h - the kernel description: one train graph (after the pass
 * pipeline) plus its memory plan, as the ordered list of kernels a step
 * launches. Renderer-independent: render_c.c writes it as C (the cpu
 * target); a CUDA renderer writes the same list as CUDA C + cuBLASLt calls.
 *
 * Every node that computes something becomes a KNode with its buffer (an
 * arena offset, or a slot: a persistent buffer the runtime binds - a
 * parameter, its moments or gradient accumulator, a batch input, a scalar
 * argument, or a buffer the artifact owns for an output or a constant).
 * GEMM-class nodes carry a KGemm: the library call (trans flags, M/N/K,
 * batch, leading dimensions) and the epilogue. Kernels follow Graph.kernel
 * (the partition of fuse_elementwise / adamw_multi); a kernel whose nodes
 * are not contiguous in node order is split, so running kernels in list order
 * is always a valid schedule. See docs/codegen.md. */
#ifndef CRAMC_KERNEL_H
#define CRAMC_KERNEL_H

#include <stdbool.h>
#include <stdint.h>

#include "ir.h"
#include "memplan.h"

/* What a persistent buffer is; the runtime binds slot pointers by kind+index (slots.def). */
typedef enum {
#define SLOT(id, what) KS_##id,
#include "slots.def"
  KS_COUNT
} KSlotKind;

typedef struct KSlot {
  KSlotKind kind;
  uint32_t index;
  int64_t bytes;
  ValueId node;
} KSlot;

/* What an output is, so the runtime copies it back into its state. */
typedef enum {
#define OUT(id, what) KO_##id,
#include "slots.def"
  KO_COUNT
} KOutKind;
/* Their names in the generated C (CRAM_S_*, CRAM_O_*: cram_step_shim.h), from the same list. */
extern const char *const k_slot_kind_name[KS_COUNT];
extern const char *const k_out_kind_name[KO_COUNT];

typedef struct KOut {
  KOutKind kind;
  uint32_t index; /* parameter index for KO_GRAD/PARAM/MOM_*; KO_OTHER: its rank among the other outputs (meta->outputs) */
  uint32_t slot;  /* the KS_OWN slot holding it */
} KOut;

/* A buffer reference: arena offset (slot == UINT32_MAX) or slot. */
typedef struct KBuf {
  int64_t offset;
  uint32_t slot;
} KBuf;
#define KBUF_NO_SLOT UINT32_MAX

typedef enum { KEPI_NONE, KEPI_BIAS, KEPI_ACT, KEPI_GLU, KEPI_ACT_GRAD, KEPI_GLU_GRAD } KEpilogue;

/* One GEMM as a BLAS call: C[p] = op(A[p]) @ op(B[p]), row-major, p < batch. */
typedef struct KGemm {
  bool ta, tb;
  int64_t M, N, K, batch;
  int64_t lda, ldb, ldc;
  int64_t stride_a, stride_b, stride_c; /* elements between batch entries (0: shared) */
  int a_in, b_in;                       /* which node inputs are A and B */
  KEpilogue epi;
  const char *act; /* "gelu" | "relu" | "sigmoid" | "none" for ACT/GLU(_GRAD) */
  bool bias;       /* ACT/GLU: + bias[N] before the activation */
} KGemm;

typedef struct KNode {
  ValueId id;
  const Node *n;
  KBuf out;
  bool out_state; /* out is a parameter / moment / gradient state buffer (KNames.state_in_place) */
  KBuf in[IR_MAX_IN];
  bool gemm;
  KGemm g;
} KNode;

typedef struct Kernel {
  uint32_t first, count; /* KNodes [first, first+count) */
  uint32_t part;         /* Graph.kernel id it came from (or node id without a partition) */
} Kernel;

typedef struct KProgram {
  const Graph *g;
  const MemPlan *plan;
  KNode *nodes;
  uint32_t nnodes;
  Kernel *kernels;
  uint32_t nkernels;
  uint32_t nsplit; /* partition kernels split for order */
  KSlot *slots;
  uint32_t nslots;
  KOut *outs;
  uint32_t nouts;
  int64_t arena_bytes;
  uint32_t *slot_of;        /* per node: its slot or KBUF_NO_SLOT */
  uint32_t nstate_in_place; /* outputs computed into their state buffer (nothing to copy back) */
} KProgram;

/* Parameter and input names, in meta order, so slots get their indices. */
typedef struct KNames {
  const char *const *params;
  uint32_t nparams;
  const char *const *inputs;
  uint32_t ninputs;
  /* Compute a new parameter, moment or gradient accumulator straight into
   * the state buffer it replaces where that is legal (kernel.c:
   * state_in_place), so the runtime has no output to copy back. The run
   * then writes the state as it goes: a target that sets this must not
   * write those buffers after a kernel has reported bad data (the cuda
   * renderer's state writes check the error word first). */
  bool state_in_place;
} KNames;

/* Builds the description of g (planned with materialize_all; buffers sized
 * by dtype: bf16 2 bytes) in arena a. NULL with a message for a graph it
 * cannot describe (an unknown persistent input). Whether a renderer handles
 * bf16 values is the renderer's business (render_c: f32 only). */
KProgram *kernel_build(const Graph *g, const KNames *names, Arena *a, char *err, size_t errlen);

#endif
