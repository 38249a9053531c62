/* nvrtc.h - CUDA C -> cubin/PTX at cramc time (codegen/nvrtc.c). libnvrtc is
 * loaded with dlopen, so cramc itself runs (and builds other targets) where
 * the CUDA toolkit is absent. */
#ifndef CRAMC_NVRTC_H
#define CRAMC_NVRTC_H

#include <stdbool.h>
#include <stddef.h>

#include "cuda_lib.h"

typedef struct CgCubin {
  int sm;              /* 80, 90, ... */
  bool ptx;            /* PTX for compute_<sm> instead of a cubin */
  unsigned char *data; /* malloc'd */
  size_t len;
  double seconds; /* compile time (0 for a cache hit) */
  bool cached;
} CgCubin;

/* Compiles src (named `name` in messages), which may #include the nhdr
 * headers hdr[] by name (the kernel library, cuda_lib.h), for each of
 * out[0..n) (sm/ptx set by the caller) in parallel, one thread each; results
 * are cached under $CRAMC_CACHE_DIR (default $XDG_CACHE_HOME/cramc or
 * ~/.cache/cramc) by the FNV-1a hash of the source, headers, options and
 * nvrtc version unless CRAMC_NVRTC_CACHE=0. extra_opts: NULL-terminated
 * (e.g. "-DX=1"), may be NULL. Errors come back as one line naming the
 * kernel and source line (or the header and its line). */
bool cg_nvrtc_compile(const char *src, const char *name, const CgEmbedded *hdr, int nhdr, const char *const *extra_opts,
                      CgCubin *out, int n, char *err, size_t errlen);
void cg_nvrtc_free(CgCubin *out, int n);

#endif
