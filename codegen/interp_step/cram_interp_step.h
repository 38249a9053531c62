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
#include "cram_step_shim.h"

/* Bumped when the generated file and the shim stop fitting each other;
 * cramc writes the value it was built with and create() checks it. */
#define CRAM_INTERP_SHIM_VERSION 1u

typedef struct cram_interp_artifact {
  uint32_t shim_version; /* CRAM_INTERP_SHIM_VERSION of the generator */
  const cram_step_meta *meta;
  int f64;            /* 1: interpreter f64 mode; 0: f32 mode */
  const char *fwd_ir; /* forward graph (eval): output "loss" */
  const char *acc_ir; /* pass_accumulate graph (step) */
  const char *up_ir;  /* pass_update graph (update) */
} cram_interp_artifact;

/* The step ABI under the prefix cram_interp_: cram_interp_create(a, opts, out, err,
 * errlen) and the entries of cram_step_shim.h. */
CRAM_STEP_SHIM_DECLARE(cram_interp, cram_interp_artifact)

#endif
