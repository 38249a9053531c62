/* shim_core.h - the step ABI implemented once (shim_core.c) over a small
 * per-device table that each target supplies (interp_step/step_shim.c,
 * cpu_step/cpu_shim.c, cuda_step/cuda_shim.c): the state machine (step /
 * update / eval order, the dropout run count), argument checks, the
 * parameter, Adam-moment and gradient-accumulator bookkeeping, parameter
 * init from the embedded forward IR, checkpoints' get/set, the gradient norm
 * and the flat gradient buffer. A target keeps only what differs: where its
 * state lives (alloc / put / get / zero / move), how a graph runs, and where
 * a run leaves its outputs.
 *
 * Every target's `struct cram_ctx` starts with a `cram_shim` member, so the
 * core's entry points (cram_shim_<entry>, the names the generated step.c puts
 * in its cram_step_api table) take the context as it is. Not installed: the
 * generated code sees only the declarations in cram_step_shim.h. */
#ifndef CRAM_SHIM_CORE_H
#define CRAM_SHIM_CORE_H

#include <stdint.h>

#include "cram_step_shim.h"
#include "ir.h"

/* A state buffer: a host pointer (interp, cpu) or a CUDA device pointer. */
typedef uintptr_t cram_dptr;

/* The three graphs of an artifact. */
enum { CRAM_G_FWD, CRAM_G_ACC, CRAM_G_UP };

/* The scalars a run reads: the accumulation scale (acc), the AdamW step, the
 * learning rate and the hyper-parameters (up), as the shims' slots take them. */
typedef struct cram_shim_scalars {
  double scale, step, lr, hyper[CRAM_SHIM_NHYPER];
} cram_shim_scalars;

/* What a target supplies. Every function reports failures with
 * cram_shim_fail and returns its rc. */
typedef struct cram_shim_dev {
  size_t elem;   /* bytes per state element: 4 (f32), 8 (the interp target's f64) */
  size_t align;  /* each parameter's state starts on a multiple of this many bytes within its block */
  int on_device; /* grad_buffer() hands out a device pointer */
  cram_step_rc (*alloc)(cram_ctx *c, size_t bytes, cram_dptr *out); /* zero-filled */
  void (*release)(cram_ctx *c, cram_dptr p);                        /* p != 0 */
  cram_step_rc (*put)(cram_ctx *c, cram_dptr dst, const float *src, size_t n);
  cram_step_rc (*put_f64)(cram_ctx *c, cram_dptr dst, const double *src, size_t n); /* initial values */
  cram_step_rc (*get)(cram_ctx *c, float *dst, cram_dptr src, size_t n);
  cram_step_rc (*zero)(cram_ctx *c, cram_dptr dst, size_t bytes);
  cram_step_rc (*move)(cram_ctx *c, cram_dptr dst, cram_dptr src, size_t bytes); /* dst != src */
  /* Runs graph g (CRAM_G_*) on the state, the inputs (NULL for the update;
   * checked non-NULL by the core) and the scalars, dropout on when training,
   * its masks drawn from seed. A failure leaves the state as it was. */
  cram_step_rc (*run)(cram_ctx *c, int g, const void *const *inputs, const cram_shim_scalars *sc, int training, uint64_t seed);
  /* Where the last run of g left output (kind CRAM_O_*, index): 0 if it has none. */
  cram_dptr (*output)(cram_ctx *c, int g, uint32_t kind, uint32_t index);
  /* The forward's output k (meta->outputs[k]) as host f32. */
  cram_step_rc (*read_output)(cram_ctx *c, uint32_t k, float *dst);
  /* NULL, or called once the core has read what it needs of g's last run. */
  void (*done)(cram_ctx *c, int g);
  /* Frees the target's part of the context (not the context: the core does). */
  void (*destroy)(cram_ctx *c);
} cram_shim_dev;

/* The first member of every target's cram_ctx. */
typedef struct cram_shim {
  const cram_shim_dev *dev;
  const cram_step_meta *meta;
  Graph *init_ir; /* the embedded forward IR: parameter init rules */
  int training;
  uint64_t dropout_seed, runs; /* run n draws its masks from CRAM_STEP_RUN_SEED(dropout_seed, n) */
  long pending;                /* step() calls since the last update() / zero_grad() */
  cram_dptr *p, *m, *v, *g;    /* per parameter, inside the blocks below */
  cram_dptr block[4];          /* parameters, first moments, second moments, gradient accumulators */
  size_t block_bytes;          /* each block's size */
  char err[1024];
} cram_shim;

/* The context of a new create(): the target's cram_ctx of ctx_size bytes
 * (zeroed, NULL with *rc and err set as cram_shim_create_ctx does), its core
 * filled from the artifact's metadata and the options. */
cram_ctx *cram_shim_new(cram_ctx **out, const char *target, bool version_ok, const cram_step_meta *meta, size_t ctx_size,
                        const cram_shim_dev *dev, const cram_create_opts *opts, char *err, size_t errlen, cram_step_rc *rc);
/* Parses the embedded forward IR and allocates the state (zeroed): what
 * the target's create() calls once its device works, before binding. */
cram_step_rc cram_shim_setup(cram_ctx *c, const char *fwd_ir);
/* A failed create(): the message into err, the context destroyed. */
cram_step_rc cram_shim_create_failed(cram_ctx *c, cram_step_rc rc, char *err, size_t errlen);

/* The device functions of a target whose state is host memory (interp,
 * cpu): CRAM_SHIM_HOST_ALIGN-byte aligned, zero-filled blocks. */
#define CRAM_SHIM_HOST_ALIGN 64
cram_step_rc cram_shim_host_alloc(cram_ctx *c, size_t bytes, cram_dptr *out);
void cram_shim_host_release(cram_ctx *c, cram_dptr p);
cram_step_rc cram_shim_host_zero(cram_ctx *c, cram_dptr dst, size_t bytes);
cram_step_rc cram_shim_host_move(cram_ctx *c, cram_dptr dst, cram_dptr src, size_t bytes);

/* Sets the context's one-line error "<model>: <message>"; returns rc. */
cram_step_rc cram_shim_fail(cram_ctx *c, cram_step_rc rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static inline cram_shim *cram_shim_of(cram_ctx *c) { return (cram_shim *)(void *)c; }

#endif
