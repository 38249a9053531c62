/* distributed.c - MPI (through libcram_mpi.so, opened at run time) and NCCL
 * behind distributed.h; one process without an MPI launcher. */
#include "distributed.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mpi_plugin.h"

#ifndef CRAM_MPI_PLUGIN_DIR
#define CRAM_MPI_PLUGIN_DIR "" /* the build's runtime/ (CMake), tried after the executable's directory */
#endif

/* Set by the launchers a job may come from: Open MPI, PMIx (srun, prterun),
 * PMI-1/2 (MPICH, Intel MPI, srun --mpi=pmi2), MVAPICH. */
static int launched_size(void) {
  static const char *vars[] = { "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE" };
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
    const char *s = getenv(vars[i]);
    if (s && *s) return atoi(s);
  }
  return getenv("PMIX_RANK") ? 2 : 0; /* PMIx without a size variable: a job of unknown size */
}

int cram_dist_built_with_mpi(void) {
#ifdef CRAM_HAVE_MPI
  return 1;
#else
  return 0;
#endif
}

/* libcram_mpi.so: $CRAM_MPI_PLUGIN, else beside the cram executable, else in
 * the build tree, else on the library path. RTLD_GLOBAL: Open MPI's own
 * plugins resolve libmpi's symbols through the global scope. */
static void *open_plugin(char *tried, size_t len) {
  char exe[4096], path[4160];
  const char *env = getenv("CRAM_MPI_PLUGIN");
  if (env && *env) {
    snprintf(tried, len, "%s", env);
    return dlopen(env, RTLD_NOW | RTLD_GLOBAL);
  }
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    snprintf(path, sizeof path, "%s/" CRAM_MPI_PLUGIN_FILE, exe);
    snprintf(tried, len, "%s", path);
    if (access(path, F_OK) == 0) return dlopen(path, RTLD_NOW | RTLD_GLOBAL);
  }
  if (*CRAM_MPI_PLUGIN_DIR) {
    snprintf(path, sizeof path, "%s/" CRAM_MPI_PLUGIN_FILE, CRAM_MPI_PLUGIN_DIR);
    if (access(path, F_OK) == 0) {
      snprintf(tried, len, "%s", path);
      return dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    }
  }
  return dlopen(CRAM_MPI_PLUGIN_FILE, RTLD_NOW | RTLD_GLOBAL);
}

cram_status cram_dist_init(cram_dist *d, cram_err *err) {
  memset(d, 0, sizeof *d);
  d->size = 1;
  int launched = launched_size();
  if (!launched) return CRAM_OK; /* plain `cram train`: no MPI at all, nothing changes */
  char tried[4160] = CRAM_MPI_PLUGIN_FILE;
  if (!(d->plugin = open_plugin(tried, sizeof tried))) {
    const char *why = dlerror();
    if (launched < 2) return CRAM_OK; /* a job of one: nothing to share */
    return cram_err_set(err, CRAM_E_ARG,
                        "started by an MPI launcher (%d processes) but %s: every process would train alone; "
                        "build cram where MPI is installed (docs/distributed.md) or run one process",
                        launched,
                        !cram_dist_built_with_mpi() ? "this cram was built without MPI"
                        : why                       ? why
                                                    : "its MPI plugin " CRAM_MPI_PLUGIN_FILE " is not found");
  }
  cram_mpi_plugin_fn entry;
  *(void **)&entry = dlsym(d->plugin, CRAM_MPI_PLUGIN_ENTRY);
  const cram_mpi_ops *ops = entry ? entry() : NULL;
  if (!ops || ops->version != CRAM_MPI_PLUGIN_VERSION) {
    dlclose(d->plugin);
    d->plugin = NULL;
    return cram_err_set(err, CRAM_E_VERSION, "%s is not this cram's MPI plugin: rebuild them together", tried);
  }
  if (ops->init(&d->rank, &d->size, &d->local_rank, &d->mpi) != 0) {
    dlclose(d->plugin);
    d->plugin = NULL;
    return cram_err_set(err, CRAM_E_ARG, "MPI_Init failed");
  }
  d->ops = ops;
  return CRAM_OK;
}

/* ---- NCCL, opened at run time so cram does not depend on it ------------------------- */

/* The few NCCL and CUDA driver entries used, declared here (nccl.h is not
 * needed to build): these are NCCL's stable ABI since 2.0. */
typedef struct {
  char internal[128];
} nccl_unique_id;
typedef struct nccl_comm *nccl_comm_t;
enum { NCCL_SUCCESS = 0, NCCL_FLOAT32 = 7, NCCL_FLOAT64 = 8, NCCL_SUM = 0 };

typedef struct nccl_state {
  void *lib, *cuda;
  nccl_comm_t comm;
  int (*get_unique_id)(nccl_unique_id *);
  int (*comm_init_rank)(nccl_comm_t *, int, nccl_unique_id, int);
  int (*all_reduce)(const void *, void *, size_t, int, int, nccl_comm_t, void *);
  int (*comm_destroy)(nccl_comm_t);
  const char *(*error_string)(int);
  int (*ctx_synchronize)(void);
} nccl_state;

static void nccl_close(nccl_state *s) {
  if (!s) return;
  if (s->comm && s->comm_destroy) s->comm_destroy(s->comm);
  if (s->lib) dlclose(s->lib);
  if (s->cuda) dlclose(s->cuda);
  free(s);
}

void cram_dist_finalize(cram_dist *d) {
  nccl_close(d->nccl);
  d->nccl = NULL;
  if (d->ops && d->mpi) d->ops->finalize();
  /* the plugin stays mapped: Open MPI leaves threads and handlers behind */
  d->ops = NULL, d->mpi = 0;
}

cram_status cram_dist_agree(const cram_dist *d, cram_status r, double *sum, int n, cram_err *err) {
  if (d->size < 2) return r;
  double buf[16];
  if (n < 0 || n > 15) return cram_err_set(err, CRAM_E_ARG, "cram_dist_agree: %d values (at most 15)", n);
  buf[0] = r != CRAM_OK;
  for (int i = 0; i < n; i++) buf[i + 1] = sum[i];
  d->ops->sum_f64(buf, n + 1);
  if (buf[0] == 0) {
    for (int i = 0; i < n; i++) sum[i] = buf[i + 1];
    return CRAM_OK;
  }
  /* the lowest failing rank tells everyone what happened */
  int32_t root = r != CRAM_OK ? d->rank : d->size;
  d->ops->min_i32(&root, 1);
  struct {
    int status;
    char msg[CRAM_ERR_MAX];
  } e;
  memset(&e, 0, sizeof e);
  if (d->rank == root) {
    e.status = (int)r;
    snprintf(e.msg, sizeof e.msg, "%s", err ? err->msg : "failed");
  }
  d->ops->bcast(&e, (int)sizeof e, root);
  cram_err_set(err, (cram_status)e.status, "rank %d: %.*s", (int)root, (int)sizeof e.msg - 16, e.msg);
  return (cram_status)e.status;
}

int cram_dist_differs(const cram_dist *d, const uint64_t *v, int n) {
  if (d->size < 2) return -1;
  uint64_t lo[8], hi[8];
  if (n > 8) n = 8;
  memcpy(lo, v, (size_t)n * sizeof *v);
  memcpy(hi, v, (size_t)n * sizeof *v);
  d->ops->min_u64(lo, n);
  d->ops->max_u64(hi, n);
  for (int i = 0; i < n; i++)
    if (lo[i] != hi[i]) return i;
  return -1;
}

/* One rank's NCCL set-up: libnccl, the unique id from rank 0, the communicator.
 * The step's create() left its CUDA context current on this thread, and NCCL
 * works in the current context. */
static cram_status nccl_open(const cram_dist *d, nccl_state **out, cram_err *err) {
  nccl_state *s = calloc(1, sizeof *s);
  nccl_unique_id id;
  memset(&id, 0, sizeof id);
  cram_status r = CRAM_OK;
  if (!s) r = cram_err_set(err, CRAM_E_NOMEM, "out of memory");
  else if (!(s->lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL)) ||
           !(s->cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL)))
    r = cram_err_set(err, CRAM_E_ARG, "%s: multi-GPU training needs NCCL (libnccl.so.2) and the CUDA driver", dlerror());
  else {
    *(void **)&s->get_unique_id = dlsym(s->lib, "ncclGetUniqueId");
    *(void **)&s->comm_init_rank = dlsym(s->lib, "ncclCommInitRank");
    *(void **)&s->all_reduce = dlsym(s->lib, "ncclAllReduce");
    *(void **)&s->comm_destroy = dlsym(s->lib, "ncclCommDestroy");
    *(void **)&s->error_string = dlsym(s->lib, "ncclGetErrorString");
    *(void **)&s->ctx_synchronize = dlsym(s->cuda, "cuCtxSynchronize");
    if (!s->get_unique_id || !s->comm_init_rank || !s->all_reduce || !s->comm_destroy || !s->error_string || !s->ctx_synchronize)
      r = cram_err_set(err, CRAM_E_ARG, "libnccl.so.2 lacks ncclAllReduce and friends (NCCL 2 needed)");
  }
  int rc = 0;
  if (r == CRAM_OK && d->rank == 0 && (rc = s->get_unique_id(&id)) != NCCL_SUCCESS)
    r = cram_err_set(err, CRAM_E_ARG, "ncclGetUniqueId: %s", s->error_string(rc));
  /* every rank learns whether rank 0 has an id before waiting for it */
  if ((r = cram_dist_agree(d, r, NULL, 0, err)) == CRAM_OK) {
    d->ops->bcast(&id, (int)sizeof id, 0);
    if ((rc = s->comm_init_rank(&s->comm, d->size, id, d->rank)) != NCCL_SUCCESS) {
      s->comm = NULL;
      r = cram_err_set(err, CRAM_E_ARG, "ncclCommInitRank: %s", s->error_string(rc));
    }
    r = cram_dist_agree(d, r, NULL, 0, err);
  }
  if (r != CRAM_OK) {
    nccl_close(s);
    return r;
  }
  *out = s;
  return CRAM_OK;
}

cram_status cram_dist_sum_grads(cram_dist *d, const cram_grad_buffer *gb, cram_err *err) {
  if (d->size < 2) return CRAM_OK;
  int f64 = gb->dtype == CRAM_DT_F64;
  cram_status r = CRAM_OK;
  if (!gb->data || gb->count < 0 || (!f64 && gb->dtype != CRAM_DT_F32))
    r = cram_err_set(err, CRAM_E_ARG, "the step's gradient buffer is not f32/f64 (dtype %d)", (int)gb->dtype);
  if ((r = cram_dist_agree(d, r, NULL, 0, err)) != CRAM_OK) return r;
  if (gb->on_device) {
    if (!d->nccl && (r = nccl_open(d, (nccl_state **)&d->nccl, err)) != CRAM_OK) return r;
    nccl_state *s = d->nccl;
    /* the default stream: the step's stream is a blocking one, ordered with it */
    int rc = s->all_reduce(gb->data, gb->data, (size_t)gb->count, f64 ? NCCL_FLOAT64 : NCCL_FLOAT32, NCCL_SUM, s->comm, NULL);
    if (rc != NCCL_SUCCESS) r = cram_err_set(err, CRAM_E_IO, "ncclAllReduce: %s", s->error_string(rc));
    else if ((rc = s->ctx_synchronize()) != 0)
      r = cram_err_set(err, CRAM_E_IO, "cuCtxSynchronize after ncclAllReduce failed (CUDA error %d)", rc);
    return cram_dist_agree(d, r, NULL, 0, err);
  }
  if (f64) d->ops->sum_f64(gb->data, gb->count);
  else d->ops->sum_f32(gb->data, gb->count);
  return CRAM_OK;
}
