/* targets.c - the registry of the targets cramc builds (codegen.h): the
 * driver validates --target / --precision, prints the help and builds or
 * emits through this table; a new backend is one entry here (plus its
 * renderer and its shim's device table, docs/codegen.md "Adding a backend"). */
#include <string.h>

#include "codegen.h"
#include "target_cuda.h"

const CgTargetInfo cg_targets[] = {
  { "interp", "the reference interpreter behind the step ABI (the correctness baseline)", "f32", "f32 bf16 f64",
    "computes in f32, bf16 or f64, not %s", cg_interp_build, cg_interp_emit_c, true },
  { "cpu", "generated C kernels + OpenBLAS, -O2 fused, -O0 unfused", "f32", "f32",
    "computes in f32 only; --precision %s is for the interp (and cuda) targets", cg_cpu_build, cg_cpu_emit_c, true },
  { "cuda",
    "CUDA C kernels compiled by NVRTC for sm_80/sm_90 + cuBLASLt GEMMs + host code\n"
    "from LLVM; builds anywhere, needs a GPU to run (the default)",
    "bf16", "bf16 f32", "computes in bf16 or f32; --precision %s is for the interp target", cg_cuda_build, cg_cuda_emit_c, true },
};
const int cg_ntargets = (int)(sizeof cg_targets / sizeof cg_targets[0]);
const char *const cg_default_target = "cuda";

const CgTargetInfo *cg_target_find(const char *name) {
  for (int i = 0; name && i < cg_ntargets; i++)
    if (!strcmp(cg_targets[i].name, name)) return &cg_targets[i];
  return NULL;
}

bool cg_target_accepts(const CgTargetInfo *t, const char *precision) {
  size_t n = strlen(precision);
  for (const char *p = t->precisions; (p = strstr(p, precision)); p += n)
    if ((p == t->precisions || p[-1] == ' ') && (p[n] == ' ' || !p[n])) return true;
  return false;
}
