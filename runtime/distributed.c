/* distributed.c - MPI and NCCL behind distributed.h; one process without MPI. */
#include "distributed.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef CRAM_HAVE_MPI
#include <limits.h>
#include <mpi.h>
#endif

/* Set by the launchers a job may come from: Open MPI, PMIx (srun, prterun),
 * PMI-1/2 (MPICH, Intel MPI, srun --mpi=pmi2), MVAPICH. */
static int launched_size(void) {
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"};
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

cram_status cram_dist_init(cram_dist *d, cram_err *err) {
    memset(d, 0, sizeof *d);
    d->size = 1;
    int launched = launched_size();
#ifdef CRAM_HAVE_MPI
    if (!launched) return CRAM_OK; /* plain `cram train`: no MPI at all, nothing changes */
    int already = 0;
    MPI_Initialized(&already);
    if (!already) {
        if (MPI_Init(NULL, NULL) != MPI_SUCCESS) return cram_err_set(err, CRAM_E_ARG, "MPI_Init failed");
        d->mpi = 1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    /* the node-local rank picks the GPU: the ranks sharing memory with this one */
    MPI_Comm node;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_rank(node, &d->local_rank);
        MPI_Comm_free(&node);
    }
    return CRAM_OK;
#else
    if (launched > 1)
        return cram_err_set(err, CRAM_E_ARG,
                            "started by an MPI launcher (%d processes) but this cram was built without MPI: every "
                            "process would train alone; rebuild with MPI (docs/distributed.md) or run one process",
                            launched);
    (void)err;
    return CRAM_OK;
#endif
}

/* ---- NCCL, opened at run time so cram does not depend on it ------------------------- */

/* The few NCCL and CUDA driver entries used, declared here (nccl.h is not
 * needed to build): these are NCCL's stable ABI since 2.0. */
typedef struct { char internal[128]; } nccl_unique_id;
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
#ifdef CRAM_HAVE_MPI
    if (d->mpi) MPI_Finalize();
#endif
    d->mpi = 0;
}

cram_status cram_dist_agree(const cram_dist *d, cram_status r, double *sum, int n, cram_err *err) {
    if (d->size < 2) return r;
#ifdef CRAM_HAVE_MPI
    double buf[16];
    if (n < 0 || n > 15) return cram_err_set(err, CRAM_E_ARG, "cram_dist_agree: %d values (at most 15)", n);
    buf[0] = r != CRAM_OK;
    for (int i = 0; i < n; i++) buf[i + 1] = sum[i];
    MPI_Allreduce(MPI_IN_PLACE, buf, n + 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    if (buf[0] == 0) {
        for (int i = 0; i < n; i++) sum[i] = buf[i + 1];
        return CRAM_OK;
    }
    /* the lowest failing rank tells everyone what happened */
    int root = r != CRAM_OK ? d->rank : d->size;
    MPI_Allreduce(MPI_IN_PLACE, &root, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    struct {
        int status;
        char msg[CRAM_ERR_MAX];
    } e;
    memset(&e, 0, sizeof e);
    if (d->rank == root) {
        e.status = (int)r;
        snprintf(e.msg, sizeof e.msg, "%s", err ? err->msg : "failed");
    }
    MPI_Bcast(&e, (int)sizeof e, MPI_BYTE, root, MPI_COMM_WORLD);
    cram_err_set(err, (cram_status)e.status, "rank %d: %.*s", root, (int)sizeof e.msg - 16, e.msg);
    return (cram_status)e.status;
#else
    (void)sum, (void)n, (void)err;
    return r;
#endif
}

int cram_dist_differs(const cram_dist *d, const uint64_t *v, int n) {
    if (d->size < 2) return -1;
#ifdef CRAM_HAVE_MPI
    uint64_t lo[8], hi[8];
    if (n > 8) n = 8;
    MPI_Allreduce(v, lo, n, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(v, hi, n, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    for (int i = 0; i < n; i++)
        if (lo[i] != hi[i]) return i;
#else
    (void)v, (void)n;
#endif
    return -1;
}

#ifdef CRAM_HAVE_MPI
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
        r = cram_err_set(err, CRAM_E_ARG, "%s: multi-GPU training needs NCCL (libnccl.so.2) and the CUDA driver",
                         dlerror());
    else {
        *(void **)&s->get_unique_id = dlsym(s->lib, "ncclGetUniqueId");
        *(void **)&s->comm_init_rank = dlsym(s->lib, "ncclCommInitRank");
        *(void **)&s->all_reduce = dlsym(s->lib, "ncclAllReduce");
        *(void **)&s->comm_destroy = dlsym(s->lib, "ncclCommDestroy");
        *(void **)&s->error_string = dlsym(s->lib, "ncclGetErrorString");
        *(void **)&s->ctx_synchronize = dlsym(s->cuda, "cuCtxSynchronize");
        if (!s->get_unique_id || !s->comm_init_rank || !s->all_reduce || !s->comm_destroy || !s->error_string ||
            !s->ctx_synchronize)
            r = cram_err_set(err, CRAM_E_ARG, "libnccl.so.2 lacks ncclAllReduce and friends (NCCL 2 needed)");
    }
    int rc = 0;
    if (r == CRAM_OK && d->rank == 0 && (rc = s->get_unique_id(&id)) != NCCL_SUCCESS)
        r = cram_err_set(err, CRAM_E_ARG, "ncclGetUniqueId: %s", s->error_string(rc));
    /* every rank learns whether rank 0 has an id before waiting for it */
    if ((r = cram_dist_agree(d, r, NULL, 0, err)) == CRAM_OK) {
        MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
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
#endif

cram_status cram_dist_sum_grads(cram_dist *d, const cram_grad_buffer *gb, cram_err *err) {
    if (d->size < 2) return CRAM_OK;
#ifdef CRAM_HAVE_MPI
    int f64 = gb->dtype == CRAM_DT_F64;
    cram_status r = CRAM_OK;
    if (!gb->data || gb->count < 0 || (!f64 && gb->dtype != CRAM_DT_F32))
        r = cram_err_set(err, CRAM_E_ARG, "the step's gradient buffer is not f32/f64 (dtype %d)", (int)gb->dtype);
    if ((r = cram_dist_agree(d, r, NULL, 0, err)) != CRAM_OK) return r;
    if (gb->on_device) {
        if (!d->nccl && (r = nccl_open(d, (nccl_state **)&d->nccl, err)) != CRAM_OK) return r;
        nccl_state *s = d->nccl;
        /* the default stream: the step's stream is a blocking one, ordered with it */
        int rc = s->all_reduce(gb->data, gb->data, (size_t)gb->count, f64 ? NCCL_FLOAT64 : NCCL_FLOAT32, NCCL_SUM,
                               s->comm, NULL);
        if (rc != NCCL_SUCCESS) r = cram_err_set(err, CRAM_E_IO, "ncclAllReduce: %s", s->error_string(rc));
        else if ((rc = s->ctx_synchronize()) != 0) r = cram_err_set(err, CRAM_E_IO, "cuCtxSynchronize after ncclAllReduce failed (CUDA error %d)", rc);
        return cram_dist_agree(d, r, NULL, 0, err);
    }
    /* MPI counts are int: large buffers go in chunks */
    char *p = gb->data;
    size_t esz = f64 ? 8 : 4;
    for (int64_t left = gb->count; left > 0;) {
        int n = left > INT_MAX / 2 ? INT_MAX / 2 : (int)left;
        MPI_Allreduce(MPI_IN_PLACE, p, n, f64 ? MPI_DOUBLE : MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        p += (size_t)n * esz;
        left -= n;
    }
    return CRAM_OK;
#else
    (void)gb, (void)err;
    return CRAM_OK;
#endif
}
