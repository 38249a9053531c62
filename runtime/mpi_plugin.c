/* mpi_plugin.c - libcram_mpi.so: the MPI calls of distributed.c (mpi_plugin.h). */
#include "mpi_plugin.h"

#include <limits.h>
#include <mpi.h>

static int init(int *rank, int *size, int *local_rank, int *owned) {
  int already = 0;
  MPI_Initialized(&already);
  *owned = 0;
  if (!already) {
    if (MPI_Init(NULL, NULL) != MPI_SUCCESS) return -1;
    *owned = 1;
  }
  MPI_Comm_rank(MPI_COMM_WORLD, rank);
  MPI_Comm_size(MPI_COMM_WORLD, size);
  /* the node-local rank picks the GPU: the ranks sharing memory with this one */
  MPI_Comm node;
  *local_rank = 0;
  if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, *rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
    MPI_Comm_rank(node, local_rank);
    MPI_Comm_free(&node);
  }
  return 0;
}

static void finalize(void) { MPI_Finalize(); }

/* MPI counts are int: large buffers go in chunks */
static void sum(void *v, int64_t n, MPI_Datatype t, int esz) {
  char *p = v;
  while (n > 0) {
    int c = n > INT_MAX / 2 ? INT_MAX / 2 : (int)n;
    MPI_Allreduce(MPI_IN_PLACE, p, c, t, MPI_SUM, MPI_COMM_WORLD);
    p += (int64_t)c * esz;
    n -= c;
  }
}
static void sum_f64(double *v, int64_t n) { sum(v, n, MPI_DOUBLE, 8); }
static void sum_f32(float *v, int64_t n) { sum(v, n, MPI_FLOAT, 4); }
static void min_i32(int32_t *v, int n) { MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_INT32_T, MPI_MIN, MPI_COMM_WORLD); }
static void min_u64(uint64_t *v, int n) { MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD); }
static void max_u64(uint64_t *v, int n) { MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD); }
static void bcast(void *buf, int bytes, int root) { MPI_Bcast(buf, bytes, MPI_BYTE, root, MPI_COMM_WORLD); }

static const cram_mpi_ops ops = { CRAM_MPI_PLUGIN_VERSION, init, finalize, sum_f64, sum_f32, min_i32, min_u64, max_u64, bcast };

const cram_mpi_ops *cram_mpi_plugin(void);
const cram_mpi_ops *cram_mpi_plugin(void) { return &ops; }
