/* loader.h - loading a compiled train step (step.so) through the step ABI
 * (cram_step.h), and small queries on its metadata.
 *
 * cram_step_load() dlopens the artifact, finds cram_step_entry and checks the
 * table before anything else touches it; every refusal is one line naming the
 * file: not a file, not a shared object, truncated (ELF segments past the
 * end of the file, checked before dlopen maps them), built for another
 * machine, not a cramc artifact (no entry symbol), built for another step ABI
 * version, table smaller than v1. Loading never touches a GPU (create() does),
 * so `cram info` works anywhere. The library is never unmapped (see
 * cram_step_unload). */
#ifndef CRAM_LOADER_H
#define CRAM_LOADER_H

#include <stdint.h>

#include "cram_step.h"
#include "status.h"

typedef struct cram_step_lib {
  void *handle;
  const cram_step_api *api;
} cram_step_lib;

cram_status cram_step_load(cram_step_lib *lib, const char *path, cram_err *err);
/* Releases the handle. The code stays mapped until the process exits: the
 * libraries a cpu artifact links (OpenBLAS, libgomp) keep worker threads
 * that cannot be stopped, and unmapping them crashed `cram` at exit. */
void cram_step_unload(cram_step_lib *lib);

/* Checks a table (as returned by cram_step_entry) for use by this runtime:
 * ABI version, struct size, metadata present and self-consistent. */
cram_status cram_step_check(const cram_step_api *api, const char *label, cram_err *err);

/* Value of dim `name` in meta->dims, or `dflt` when the model has no such dim. */
int64_t cram_step_dim(const cram_step_meta *m, const char *name, int64_t dflt);
/* Index of the input named `name`, or -1. */
int cram_step_input(const cram_step_meta *m, const char *name);
/* One-line text of a cram_step_rc ("bad batch data"). */
const char *cram_step_rc_str(cram_step_rc rc);

/* The create() options the environment sets, over *o's other fields: the one
 * place cram reads them (the shims read none):
 *   CRAM_CUDA_TF32=1    o->tf32 = 1 (TF32 tensor cores for f32 GEMMs)
 *   CRAM_CUDA_GRAPHS=0  o->no_graphs = 1 (kernels launched one by one) */
void cram_step_opts_from_env(cram_create_opts *o);

#endif
