/* test_cuda_abi.c STEP.SO [NPARAMS [PRECISION]] - a `--target cuda` artifact
 * through the loader without a GPU: it loads (no driver call at load), its
 * metadata says target "cuda", min_sm 80, precision PRECISION (default bf16,
 * the cuda target's default), its parameter table is complete;
 * create() either succeeds (a GPU is present: then the test says so and
 * stops) or returns CRAM_STEP_E_DEVICE with the one-line message that names
 * the missing driver/GPU (or the too-old GPU) and suggests --target cpu.
 * Prints "N passed, M failed". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"

static int pass, fails;
#define CHECK(c)                                                       \
  do {                                                                 \
    if (c) pass++;                                                     \
    else fails++, fprintf(stderr, "FAIL line %d: %s\n", __LINE__, #c); \
  } while (0)

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_cuda_abi STEP.SO [NPARAMS]\n");
    return 2;
  }
  cram_step_lib lib;
  cram_err err;
  memset(&err, 0, sizeof err);
  cram_status st = cram_step_load(&lib, argv[1], &err);
  CHECK(st == CRAM_OK);
  if (st != CRAM_OK) {
    fprintf(stderr, "load: %s\n", err.msg);
    return 1;
  }
  const cram_step_api *api = lib.api;
  const cram_step_meta *m = api->meta;
  CHECK(!strcmp(m->target, "cuda"));
  CHECK(m->min_sm == 80);
  CHECK(!strcmp(m->precision, argc > 3 ? argv[3] : "bf16"));
  CHECK(m->kernel_count > 0);
  CHECK(m->arena_bytes > 0);
  if (argc > 2) CHECK(m->nparams == (uint32_t)atoi(argv[2]));
  int64_t total = 0;
  for (uint32_t i = 0; i < m->nparams; i++) {
    CHECK(m->params[i].name && *m->params[i].name);
    total += m->params[i].numel;
  }
  CHECK(total == m->nparam_elems);
  cram_create_opts o = { .dropout_seed = 1 };
  cram_ctx *ctx = NULL;
  char msg[1024] = "";
  cram_step_rc rc = api->create(&o, &ctx, msg, sizeof msg);
  if (rc == CRAM_STEP_OK) {
    printf("a CUDA GPU is present: create() succeeded (the no-GPU checks are skipped)\n");
    api->destroy(ctx);
  } else {
    printf("create(): %s\n", msg);
    CHECK(rc == CRAM_STEP_E_DEVICE);
    CHECK(ctx == NULL);
    CHECK(strstr(msg, "no CUDA driver/GPU") || strstr(msg, "compute capability"));
    CHECK(strstr(msg, "use --target cpu") != NULL);
    CHECK(strchr(msg, '\n') == NULL);
  }
  cram_step_unload(&lib);
  printf("%d passed, %d failed\n", pass, fails);
  return fails ? 1 : 0;
}
