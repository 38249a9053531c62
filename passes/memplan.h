/* memplan.h: the memory planner (passes/memplan.c; docs/passes.md).
 *
 * Liveness over the graph's node order (a topological schedule) gives each
 * activation an interval [def, last use]; activations are then packed into
 * one arena with byte offsets, greedy by size with best fit among the gaps
 * (TFLite's greedy-by-size planner, ggml-alloc's reuse by liveness), after
 * in-place reuse: a pointwise op whose same-size input dies at it writes
 * into that input's slot. Very large graphs are planned by a linear scan
 * over the schedule instead (MemPlanner). The step allocates one block and carves it by
 * these offsets, as llm.c's malloc_and_point_parameters does.
 *
 * Not in the arena (persistent buffers, owned by the runtime): inputs,
 * params, constant sources (fill, sinusoid) and graph outputs. Not in memory
 * at all: values consumed only inside their own kernel (Graph.kernel), unless
 * materialize_all asks for them (the interpreter computes every node).
 */
#ifndef CRAMC_MEMPLAN_H
#define CRAMC_MEMPLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ir.h"

typedef enum {
  MP_ARENA,      /* an offset in the activation arena */
  MP_PERSISTENT, /* input, param, constant or output: its own buffer */
  MP_INTERNAL,   /* lives in registers inside its kernel */
} MemKind;

/* How slots get their offsets. Greedy by size (largest first, best fit among
 * the gaps of the slots whose lifetimes overlap) packs tightest but costs
 * O(slots^2); the linear scan walks the schedule once, freeing slots whose
 * lifetime ended and giving each new one the best-fitting free block
 * (O(slots x free blocks), near-linear), at some cost in arena size. AUTO
 * takes greedy up to MEMPLAN_GREEDY_MAX slots (every shipped model and any
 * 64-layer one), the linear scan beyond (a 1,024-layer model's plan in well
 * under a second instead of minutes). */
typedef enum { MP_PLAN_AUTO, MP_PLAN_GREEDY, MP_PLAN_LINEAR } MemPlanner;
#define MEMPLAN_GREEDY_MAX 4096u

typedef struct MemPlanOpts {
  size_t elem_size;     /* bytes per element; 0 = the node's dtype size (8 plans for the f64 interpreter) */
  size_t align;         /* 0 = 256 bytes */
  bool materialize_all; /* plan kernel-internal values too */
  bool no_inplace;      /* turn off in-place reuse and reshape aliases: every value its own bytes */
  MemPlanner planner;   /* 0 = AUTO */
} MemPlanOpts;

typedef struct MemPlan {
  uint32_t n;           /* = g->n */
  uint8_t *kind;        /* MemKind per node */
  int64_t *offset;      /* byte offset in the arena (MP_ARENA), else -1 */
  int64_t *size;        /* aligned bytes (MP_ARENA), else 0 */
  uint32_t *def, *last; /* lifetime in schedule positions (node ids): [def, last] */
  ValueId *inplace_of;  /* the input whose slot this node overwrites, or IR_NONE */
  ValueId *alias_of;    /* a reshape that is its input's bytes: the value it aliases (never itself an alias), or IR_NONE */
  int64_t arena_bytes;  /* size of the arena */
  int64_t peak_bytes;   /* max over time of live arena bytes (a lower bound on arena_bytes) */
  int64_t sum_bytes;    /* sum of every MP_ARENA buffer's size: the arena with no reuse */
  uint32_t nbuffers, ninplace, nalias;
} MemPlan;

/* Plans g; everything lives in arena a. NULL only on an int64 overflow. */
MemPlan *memplan_run(const Graph *g, const MemPlanOpts *o, Arena *a);

/* Independent check of a plan: no two arena buffers whose lifetimes overlap
 * share a byte (a node and the input it overwrites in place excepted), every
 * buffer fits in the arena. On failure writes the first conflict into msg. */
bool memplan_check(const Graph *g, const MemPlan *p, char *msg, size_t msglen);

/* The pointwise ops that may write their output over a same-size input. */
bool memplan_inplace_op(OpKind op);
/* The ops whose result is their input's bytes (reshape): planned as an alias,
 * no copy; a renderer skips a node whose buffer equals its input's. */
bool memplan_alias_op(OpKind op);

#endif
