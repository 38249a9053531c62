/* interp.h: the CPU reference interpreter, the oracle of cramc.
 *
 * Executes any IR graph, node by node, with naive loops written for clarity
 * and exactness. Every value is held as an array of doubles (i32 values are
 * exact in a double). Precision is a mode:
 *   INTERP_F64  compute and keep every result in double;
 *   INTERP_F32  compute each op in double, then round its result to the
 *               node's dtype (f32, or bf16 for bf16 nodes), so values match
 *               an f32 execution to within accumulation-order effects.
 * Deterministic: no threads, fixed loop order, dropout from a counter-based hash.
 *
 * Storage is the caller's choice: bufs[v] != NULL means "compute node v into
 * this buffer" (this is how planned, aliased arenas are tested); NULL means the
 * interpreter allocates it (free with interp_free). Sources (input, param) must
 * be provided by the caller.
 */
#ifndef CRAMC_INTERP_H
#define CRAMC_INTERP_H

#include <stdbool.h>
#include <stdint.h>

#include "ir.h"

typedef enum { INTERP_F64, INTERP_F32 } InterpPrecision;

typedef struct InterpOpts {
  InterpPrecision prec;
  bool training; /* dropout active (finetuning); off = pretraining / eval */
  uint64_t seed; /* dropout randomness */
} InterpOpts;

/* Runs the graph. bufs has g->n entries. On a data error (token id out of
 * range, ...) writes a message naming the node into err and returns false. */
bool interp_run(const Graph *g, const InterpOpts *o, double **bufs, bool *owned, char *err, size_t errlen);

/* Frees the buffers interp_run allocated (owned[v] true). */
void interp_free(const Graph *g, double **bufs, bool *owned);

/* Rounding used by the f32 mode, exposed for tests and backends. */
double interp_round_f32(double x);
double interp_round_bf16(double x);

#endif
