/* cuda_libs.h - where a cuda step finds the CUDA libraries it dlopens at
 * create(), on a machine it was not built on (docs/codegen.md, "Finding the
 * CUDA libraries"). The driver (libcuda.so.1) is always on the loader path;
 * cuBLASLt may live in the toolkit, or only in a Python install's NVIDIA
 * wheels (a PyTorch machine without a toolkit on the loader path). */
#ifndef CRAM_CUDA_LIBS_H
#define CRAM_CUDA_LIBS_H

#include <stddef.h>

/* What the search reads from the environment, passed in so tests can point
 * every place at a fake tree. */
typedef struct cram_cuda_search {
  const char *cuda_home; /* $CUDA_HOME: a toolkit or conda prefix (lib64/, lib/), or NULL */
  const char *cuda_path; /* $CUDA_PATH: the same, as some installers name it, or NULL */
  const char *path;      /* $PATH: each python3 on it names a Python install */
  const char *home;      /* $HOME: the user's own site-packages, or NULL */
  const char *root;      /* prepended to the fixed folders (/usr/local/cuda/lib64); "" = / */
} cram_cuda_search;

/* One library: the names to try, most wanted first (NULL-terminated), and
 * the folders under a site-packages dir where NVIDIA's wheels put it. */
typedef struct cram_cuda_lib {
  const char *what; /* for messages: "cuBLASLt" */
  const char *const *sonames;
  const char *const *wheel_dirs;
} cram_cuda_lib;

extern const cram_cuda_lib cram_cuda_lib_cublaslt;

/* This process's environment (getenv), root "". */
cram_cuda_search cram_cuda_search_from_env(void);

/* dlopen()s (RTLD_NOW | RTLD_LOCAL) the first of lib's names found, in this
 * order: the loader path (LD_LIBRARY_PATH, rpath, ld.so.cache, the system
 * folders); $CUDA_HOME/{lib64,lib}; $CUDA_PATH/{lib64,lib}; /usr/local/cuda/lib64;
 * then per python3 on $PATH (in $PATH order; the install it is in, then the
 * one its symlink resolves to) lib/python3.N/{site,dist}-packages,
 * lib/python3/dist-packages and local/lib/python3.N/dist-packages, each
 * with lib's wheel folders; last ~/.local/lib/python3.N/site-packages.
 * Returns the handle and, if found != NULL, the path it was loaded from; or
 * NULL with `tried` holding every place looked at and why it failed
 * ("; "-separated, truncated with "..." to tried_cap). */
void *cram_cuda_open_lib(const cram_cuda_search *s, const cram_cuda_lib *lib, char *found, size_t found_cap, char *tried,
                         size_t tried_cap);

#endif
