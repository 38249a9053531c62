/* cuda_lib.h - the CUDA kernel library (codegen/cuda_kernels/<family>.cuh and
 * ir/acts.def, which the library's common.cuh includes), embedded in cramc at
 * build time by embed_files.cmake. The CUDA renderer #includes every .cuh of
 * it in the generated translation unit, and nvrtc.c hands all of them to
 * NVRTC as headers: the generated source holds launches and constants, the
 * kernel bodies live in the .cuh files. */
#ifndef CRAMC_CUDA_LIB_H
#define CRAMC_CUDA_LIB_H

typedef struct CgEmbedded {
  const char *name; /* base name, as #included: "norm.cuh" */
  const char *text; /* NUL-terminated */
} CgEmbedded;

/* common.cuh first, then the other files in name order */
extern const CgEmbedded cg_cuda_lib[];
extern const int cg_cuda_lib_count;

#endif
