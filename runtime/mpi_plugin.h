/* mpi_plugin.h - the table libcram_mpi.so (mpi_plugin.c, built where CMake
 * finds MPI and linked with it) hands to distributed.c, which dlopens it only
 * when an MPI launcher started `cram`: so the cram binary itself never
 * depends on libmpi (a machine without MPI runs it as before). All calls are
 * on MPI_COMM_WORLD; an MPI error aborts the job (MPI's default handler). */
#ifndef CRAM_MPI_PLUGIN_H
#define CRAM_MPI_PLUGIN_H

#include <stdint.h>

#define CRAM_MPI_PLUGIN_FILE    "libcram_mpi.so"
#define CRAM_MPI_PLUGIN_ENTRY   "cram_mpi_plugin"
#define CRAM_MPI_PLUGIN_VERSION 1u

typedef struct cram_mpi_ops {
  uint32_t version; /* CRAM_MPI_PLUGIN_VERSION */
  /* MPI_Init unless already initialised (*owned = 1 then); rank, size, node-local rank. 0 = ok. */
  int (*init)(int *rank, int *size, int *local_rank, int *owned);
  void (*finalize)(void);
  /* in-place all-reduces */
  void (*sum_f64)(double *v, int64_t n);
  void (*sum_f32)(float *v, int64_t n);
  void (*min_i32)(int32_t *v, int n);
  void (*min_u64)(uint64_t *v, int n);
  void (*max_u64)(uint64_t *v, int n);
  void (*bcast)(void *buf, int bytes, int root);
} cram_mpi_ops;

typedef const cram_mpi_ops *(*cram_mpi_plugin_fn)(void);

#endif
