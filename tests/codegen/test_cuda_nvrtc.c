/* test_cuda_nvrtc.c - codegen/nvrtc.c without a GPU: a small kernel compiles
 * to an sm_80 and an sm_90 cubin and compute_90 PTX (non-empty, ELF / PTX
 * text), a second compile is a cache hit with the same bytes, and a compile
 * error comes back as one line naming the image, the kernel and the source
 * line; a source that #includes headers given by name (the kernel library's
 * mechanism) compiles, and an error inside a header names the header and its
 * line. Prints "N passed, M failed". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nvrtc.h"

static int pass, fails;
#define CHECK(c)                                                       \
  do {                                                                 \
    if (c) pass++;                                                     \
    else fails++, fprintf(stderr, "FAIL line %d: %s\n", __LINE__, #c); \
  } while (0)

int main(void) {
  char dir[] = "/tmp/test_cuda_nvrtc.XXXXXX";
  if (!mkdtemp(dir)) return 1;
  setenv("CRAMC_CACHE_DIR", dir, 1);
  unsetenv("CRAMC_NVRTC_CACHE");
  const char *good = "extern \"C\" __global__ void __launch_bounds__(256) k_ok(float *x, long long n) {\n"
                     "  for (long long e = blockIdx.x * blockDim.x + threadIdx.x; e < n; e += gridDim.x * blockDim.x)\n"
                     "    x[e] = erff(x[e]);\n}\n";
  char err[1024] = "";
  CgCubin img[3] = { { .sm = 80 }, { .sm = 90 }, { .sm = 90, .ptx = true } };
  bool ok = cg_nvrtc_compile(good, "t.cu", NULL, 0, NULL, img, 3, err, sizeof err);
  if (!ok) fprintf(stderr, "%s\n", err);
  CHECK(ok);
  if (ok) {
    CHECK(img[0].len > 4 && !memcmp(img[0].data, "\177ELF", 4));
    CHECK(img[1].len > 4 && !memcmp(img[1].data, "\177ELF", 4));
    CHECK(img[2].len > 0 && strstr((const char *)img[2].data, ".target sm_90") != NULL);
    CHECK(!img[0].cached);
    CgCubin again[1] = { { .sm = 90 } };
    CHECK(cg_nvrtc_compile(good, "t.cu", NULL, 0, NULL, again, 1, err, sizeof err));
    CHECK(again[0].cached && again[0].len == img[1].len && !memcmp(again[0].data, img[1].data, img[1].len));
    cg_nvrtc_free(again, 1);
  }
  cg_nvrtc_free(img, 3);
  const char *bad = "// line 1\n"
                    "extern \"C\" __global__ void __launch_bounds__(32) k_bad(float *x) {\n"
                    "  x[0] = undefined_name;\n}\n";
  CgCubin b[1] = { { .sm = 90 } };
  ok = cg_nvrtc_compile(bad, "bad.cu", NULL, 0, NULL, b, 1, err, sizeof err);
  printf("error: %s\n", err);
  CHECK(!ok);
  CHECK(strstr(err, "nvrtc (sm_90)") && strstr(err, "kernel k_bad") && strstr(err, "bad.cu:3") && strstr(err, "undefined"));
  CHECK(!strchr(err, '\n'));
  /* headers by name, as the cuda target passes codegen/cuda_kernels */
  const CgEmbedded hdr[] = { { "lib.cuh", "#pragma once\n__device__ __forceinline__ float twice(float x) { return 2.f * x; }\n" },
                             { "bad.cuh", "#pragma once\n__device__ float oops(float x) { return x + missing; }\n" } };
  const char *uses =
    "#include \"lib.cuh\"\nextern \"C\" __global__ void __launch_bounds__(32) k_h(float *x) { x[0] = twice(x[0]); }\n";
  CgCubin h[1] = { { .sm = 90 } };
  ok = cg_nvrtc_compile(uses, "h.cu", hdr, 1, NULL, h, 1, err, sizeof err);
  if (!ok) fprintf(stderr, "%s\n", err);
  CHECK(ok && h[0].len > 4);
  cg_nvrtc_free(h, 1);
  const char *uses_bad =
    "#include \"bad.cuh\"\nextern \"C\" __global__ void __launch_bounds__(32) k_b(float *x) { x[0] = oops(x[0]); }\n";
  ok = cg_nvrtc_compile(uses_bad, "hb.cu", hdr, 2, NULL, h, 1, err, sizeof err);
  printf("error: %s\n", err);
  CHECK(!ok && strstr(err, "bad.cuh:2") && strstr(err, "missing") && !strchr(err, '\n'));
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd)) fprintf(stderr, "cannot remove %s\n", dir);
  printf("%d passed, %d failed\n", pass, fails);
  return fails ? 1 : 0;
}
