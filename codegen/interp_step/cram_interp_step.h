/* cram_interp_step.h - the step ABI implemented by the reference interpreter:
 * the shim (step_shim.c) linked into every `cramc --target interp` artifact.
 *
 * The generated C file of an artifact holds only data (the metadata tables of
 * cram_step_meta and the IR text of its three graphs) plus cram_step_entry(),
 * whose table points at the functions below; create() is wrapped there so the
 * context learns which artifact it belongs to. Everything mutable lives in
 * cram_ctx: several contexts (or artifacts) can coexist in one process.
 * See docs/codegen.md. */
#ifndef CRAM_INTERP_STEP_H
#define CRAM_INTERP_STEP_H

#include <stddef.h>

#include "cram_step.h"

/* Bumped when the generated file and the shim stop fitting each other;
 * cramc writes the value it was built with and create() checks it. */
#define CRAM_INTERP_SHIM_VERSION 1u

typedef struct cram_interp_artifact {
  uint32_t shim_version;   /* CRAM_INTERP_SHIM_VERSION of the generator */
  const cram_step_meta *meta;
  int f64;                 /* 1: interpreter f64 mode; 0: f32 mode */
  const char *fwd_ir;      /* forward graph (eval): output "loss" */
  const char *acc_ir;      /* pass_accumulate graph (step) */
  const char *up_ir;       /* pass_update graph (update) */
} cram_interp_artifact;

cram_step_rc cram_interp_create(const cram_interp_artifact *a, const cram_create_opts *opts, cram_ctx **out,
                                char *err, size_t errlen);
void cram_interp_destroy(cram_ctx *ctx);
const char *cram_interp_last_error(const cram_ctx *ctx);
cram_step_rc cram_interp_init_params(cram_ctx *ctx, uint64_t seed);
cram_step_rc cram_interp_get_param(cram_ctx *ctx, uint32_t i, float *dst);
cram_step_rc cram_interp_set_param(cram_ctx *ctx, uint32_t i, const float *src);
cram_step_rc cram_interp_get_moments(cram_ctx *ctx, uint32_t i, float *m, float *v);
cram_step_rc cram_interp_set_moments(cram_ctx *ctx, uint32_t i, const float *m, const float *v);
cram_step_rc cram_interp_step(cram_ctx *ctx, const void *const *inputs, float scale, float *loss);
cram_step_rc cram_interp_update(cram_ctx *ctx, const cram_update_args *args, float *grad_norm);
cram_step_rc cram_interp_eval(cram_ctx *ctx, const void *const *inputs, float *loss);
cram_step_rc cram_interp_grad_norm(cram_ctx *ctx, float *norm);
cram_step_rc cram_interp_zero_grad(cram_ctx *ctx);

#endif
