/* traffic.h: where a train step's memory traffic goes (`cramc --stats`).
 *
 * The model (traffic.c; docs/passes.md, "What bytes_moved counts"): each
 * kernel of the partition reads every value made outside it once and writes
 * every value read outside it; aliased reshapes move nothing. Bytes are
 * charged per node and summed per op family. */
#ifndef CRAMC_TRAFFIC_H
#define CRAMC_TRAFFIC_H

#include <stdint.h>
#include <stdio.h>

#include "ir.h"
#include "memplan.h"

typedef enum {
  TF_GEMM,        /* linears: operands read, products written */
  TF_ATTENTION,   /* batched score GEMMs, scale/cast/softmax/dropout of [.., S, S], softmax_grad; fused attention ops */
  TF_LAYOUT,      /* reshape (not aliased), permute, slice, pad, concat, broadcast_to */
  TF_CAST,        /* f32 <-> bf16 casts outside attention */
  TF_NORM,        /* layernorm, rmsnorm (+ add / grad variants) */
  TF_ELEMENTWISE, /* the other pointwise ops: residual adds, activations, their gradients */
  TF_REDUCE,      /* sum_to, mean: bias / norm-weight gradients */
  TF_GATHER,      /* embedding, masked rows and their scatter gradients */
  TF_LOSS,        /* cross-entropy, fused decoder */
  TF_OPTIMIZER,   /* global norm, clip, AdamW */
  TF_COUNT
} TrafficFamily;

extern const char *const traffic_family_name[TF_COUNT];

typedef struct TrafficRow {
  int64_t nodes, launches, read, written;
} TrafficRow;

typedef struct Traffic {
  TrafficRow fam[TF_COUNT];
  int64_t bytes;    /* sum of every row's read + written: --stats' bytes_moved */
  int64_t launches; /* kernels of the partition, aliased reshapes excluded */
  int64_t aliases;  /* reshapes the plan made aliases */
} Traffic;

/* Family of computed node v (by structure: ops, classes and shapes). */
TrafficFamily traffic_family(const Graph *g, ValueId v);

/* The traffic of g under plan p (NULL: no aliases). node_bytes, when not
 * NULL, gets each node's share (g->n entries). Scratch in a. */
void traffic_run(const Graph *g, const MemPlan *p, Traffic *t, int64_t *node_bytes, Arena *a);

/* Step time on an H100 under the review's model (shared/gpu-step-review.md; docs/passes.md): a GEMM
 * takes the longer of its FLOPs at 650 TFLOP/s and its bytes at 2.2 TB/s, every other kernel its bytes
 * at 2.8 TB/s, each launch 2 us. node_bytes from traffic_run; *gemm_s gets the GEMMs' part. */
double traffic_h100_seconds(const Graph *g, const Traffic *t, const int64_t *node_bytes, double *gemm_s);

/* Elements of the input named "tokens" (batch x seq), 0 if there is none. */
int64_t traffic_tokens(const Graph *g);

/* The per-family table (`cramc --stats` prints it after the per-pass rows). */
void traffic_print(FILE *out, const Graph *g, const Traffic *t);

/* The `top` heaviest groups of nodes (same op, dtype and shape: one op of
 * every layer), bytes and share, after the per-family table. */
void traffic_print_heaviest(FILE *out, const Graph *g, const MemPlan *p, int top, Arena *a);

#endif
