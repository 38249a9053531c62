/* distributed.h - data-parallel training across processes: the few
 * collectives `cram train` needs, over MPI (host gradients) and NCCL (CUDA
 * gradients, libnccl opened at run time). Built with MPI when CMake finds it
 * (CRAM_HAVE_MPI); without it, or when the process was not started by an MPI
 * launcher, every function acts for one process (rank 0 of 1) and the
 * collectives are no-ops, so the trainer has no special cases for it.
 * Every function marked "collective" must be called by all ranks in the same
 * order. Details: docs/distributed.md. */
#ifndef CRAM_DISTRIBUTED_H
#define CRAM_DISTRIBUTED_H

#include <stdint.h>

#include "cram_step.h"
#include "status.h"

typedef struct cram_dist {
  int rank, size; /* in MPI_COMM_WORLD; 0 and 1 without MPI */
  int local_rank; /* among the ranks of this node: the GPU a rank takes */
  int mpi;        /* this process initialised MPI (cram_dist_finalize ends it) */
  void *plugin;   /* libcram_mpi.so (mpi_plugin.h), opened only under an MPI launcher */
  const struct cram_mpi_ops *ops;
  void *nccl; /* NCCL communicator and entry points, set up on the first device all-reduce */
} cram_dist;

/* 1 when this cram was built with MPI. */
int cram_dist_built_with_mpi(void);

/* Joins the job when an MPI launcher (mpirun, srun) started this process,
 * else sets up one process. Refuses a launch of several processes without
 * the MPI plugin (every process would train alone into the same run directory). */
cram_status cram_dist_init(cram_dist *d, cram_err *err);
void cram_dist_finalize(cram_dist *d);

/* Collective. Every rank passes its own status r (err holding its message
 * when r != CRAM_OK). If any rank failed, every rank returns the status of
 * the lowest failing rank, with err = "rank R: <its message>" (size > 1);
 * otherwise the n values of sum are summed over the ranks in place. */
cram_status cram_dist_agree(const cram_dist *d, cram_status r, double *sum, int n, cram_err *err);

/* Collective: the index of the first of v[0..n-1] that is not the same on
 * every rank, or -1. */
int cram_dist_differs(const cram_dist *d, const uint64_t *v, int n);

/* Collective: sums the gradient buffer over the ranks in place (MPI for host
 * buffers, NCCL for device ones). Failures come back agreed (as
 * cram_dist_agree), except that an MPI failure aborts the job (MPI's
 * default error handler). */
cram_status cram_dist_sum_grads(cram_dist *d, const cram_grad_buffer *gb, cram_err *err);

#endif
