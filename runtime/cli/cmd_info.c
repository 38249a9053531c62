/* cmd_info.c - `cram info STEP.so`: the metadata of a compiled train step
 * (model, target, precision, versions, dims, inputs, parameter table,
 * totals). Only loads the artifact and reads its table; never creates a
 * context, so it runs on machines without a GPU. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../loader.h"
#include "cli.h"

static const char *dt(cram_step_dtype t) { return t == CRAM_DT_F32 ? "f32" : t == CRAM_DT_BF16 ? "bf16" : "i32"; }

static void shape(char *b, size_t n, const cram_tensor_info *t) {
  size_t o = (size_t)snprintf(b, n, "[");
  for (uint32_t d = 0; d < t->rank && o < n; d++) o += (size_t)snprintf(b + o, n - o, "%s%" PRId64, d ? ", " : "", t->shape[d]);
  if (o < n) snprintf(b + o, n - o, "]");
}

int cram_cmd_info(int argc, char **argv) {
  const cli_command cmd = { "info",
                            "usage: cram info STEP.so\n"
                            "\n"
                            "Print what a compiled train step contains: model, target, precision, the\n"
                            "cramc version and source hash it was built from, step ABI version, dims,\n"
                            "batch inputs, the parameter table (name, shape, count, weight decay), total\n"
                            "parameters, planned device memory and kernel count. Touches no GPU.\n"
                            "\n",
                            NULL, 0, NULL };
  const char *pos[1], *path = NULL;
  size_t np = 1;
  int pr = cli_parse(&cmd, argc, argv, pos, &np);
  if (pr) return pr < 0 ? 0 : pr;
  if (np) path = pos[0];
  if (!path) {
    fprintf(stderr, "cram info: no step.so given (see cram info --help)\n");
    return 2;
  }
  cram_err err = { 0 };
  cram_step_lib lib;
  if (cram_step_load(&lib, path, &err) != CRAM_OK) {
    fprintf(stderr, "cram info: %s\n", err.msg);
    return 1;
  }
  const cram_step_api *api = lib.api;
  const cram_step_meta *m = api->meta;
#define S(x) ((x) ? (x) : "?")
  printf("%s\n", path);
  printf("  model         %s\n", S(m->model));
  printf("  target        %s", S(m->target));
  if (m->min_sm) printf(" (sm_%d+)", m->min_sm);
  printf("\n  precision     %s\n", S(m->precision));
  printf("  cramc         %s\n", S(m->cramc_version));
  printf("  source hash   %s\n", S(m->source_hash));
  printf("  step ABI      v%u (%u-byte table)\n", api->abi_version, api->struct_size);
  printf("  dims         ");
  for (uint32_t i = 0; i < m->ndims; i++) printf(" %s=%" PRId64, S(m->dims[i].name), m->dims[i].value);
  printf("\n  inputs\n");
  char sh[256];
  for (uint32_t i = 0; i < m->ninputs; i++) {
    shape(sh, sizeof sh, &m->inputs[i]);
    printf("    %-12s %s%s\n", m->inputs[i].name, dt(m->inputs[i].dtype), sh);
  }
  printf("  parameters    %u tensors\n", m->nparams);
  size_t w = 4;
  for (uint32_t i = 0; i < m->nparams; i++)
    if (strlen(m->params[i].name) > w) w = strlen(m->params[i].name);
  for (uint32_t i = 0; i < m->nparams; i++) {
    shape(sh, sizeof sh, &m->params[i]);
    printf("    %-*s %-18s %12" PRId64 "  %s\n", (int)w, m->params[i].name, sh, m->params[i].numel,
           m->params[i].decay ? "decay" : "no-decay");
  }
  printf("  total params  %" PRId64 "\n", m->nparam_elems);
  printf("  arena bytes   %" PRIu64 " (%.1f MiB)\n", m->arena_bytes, (double)m->arena_bytes / 1048576.0);
  printf("  kernels       %u\n", m->kernel_count);
  printf("  flops/token   %.6g\n", m->flops_per_token);
#undef S
  cram_step_unload(&lib);
  return 0;
}
