/* cpu_profile.c - the opt-in per-kernel profile of a cpu-target step; see
 * cpu_profile.h. The file (tab-separated, one line per kernel that ran):
 *   graph  kernel  family  runs  total_ns  cpu_ns  bytes  ops
 * graph is fwd/acc/up, runs the counted runs of its graph, total_ns the
 * kernel's wall time summed over them, cpu_ns the calling thread's CPU time
 * (all of it with one thread, and unlike wall time not inflated by other
 * processes on a loaded machine), bytes per run (cram_cpu_kernel). */
#include "cpu_profile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct cram_cpu_prof {
  const cram_cpu_artifact *a;
  FILE *f;
  uint64_t runs[3];         /* runs per graph, the uncounted first included */
  uint64_t *ns[3], *cpu[3]; /* per graph, per kernel: wall, calling thread's CPU */
};

static const cram_cpu_graph *graph_of(const cram_cpu_artifact *a, int which) {
  return which == 0 ? &a->fwd : which == 1 ? &a->acc : &a->up;
}

cram_cpu_prof *cram_cpu_prof_open(const cram_cpu_artifact *a, const char *path, int *failed, char *err, size_t errlen) {
  *failed = 0;
  if (!path || !*path) return NULL;
  *failed = 1;
  cram_cpu_prof *p = calloc(1, sizeof *p);
  if (!p) return snprintf(err, errlen, "out of memory for the profile"), NULL;
  p->a = a;
  for (int i = 0; i < 3; i++)
    if (!(p->ns[i] = calloc(graph_of(a, i)->nkernels + 1u, sizeof *p->ns[i])) ||
        !(p->cpu[i] = calloc(graph_of(a, i)->nkernels + 1u, sizeof *p->cpu[i]))) {
      snprintf(err, errlen, "out of memory for the profile");
      cram_cpu_prof_close(p);
      return NULL;
    }
  if (!(p->f = fopen(path, "w"))) {
    snprintf(err, errlen, "%s: cannot write the profile there", path);
    cram_cpu_prof_close(p);
    return NULL;
  }
  *failed = 0;
  return p;
}

static uint64_t now_ns(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int cram_cpu_prof_run(cram_cpu_prof *p, int which, const cram_cpu_run *R) {
  const cram_cpu_graph *g = graph_of(p->a, which);
  int counted = p->runs[which]++ > 0;
  cc_blas_serial();
  for (uint32_t k = 0; k < g->nkernels; k++) {
    uint64_t t0 = now_ns(CLOCK_MONOTONIC), c0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
    if (g->kernels[k].run(R)) return -1;
    if (counted) {
      p->cpu[which][k] += now_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
      p->ns[which][k] += now_ns(CLOCK_MONOTONIC) - t0;
    }
  }
  return 0;
}

void cram_cpu_prof_close(cram_cpu_prof *p) {
  if (!p) return;
  static const char *const name[3] = { "fwd", "acc", "up" };
  if (p->f) {
    fputs("# graph\tkernel\tfamily\truns\ttotal_ns\tcpu_ns\tbytes\tops\n", p->f);
    for (int i = 0; i < 3; i++) {
      const cram_cpu_graph *g = graph_of(p->a, i);
      for (uint32_t k = 0; p->runs[i] > 1 && k < g->nkernels; k++)
        fprintf(p->f, "%s\t%u\t%s\t%llu\t%llu\t%llu\t%llu\t%s\n", name[i], k, g->kernels[k].family,
                (unsigned long long)(p->runs[i] - 1), (unsigned long long)p->ns[i][k], (unsigned long long)p->cpu[i][k],
                (unsigned long long)g->kernels[k].bytes, g->kernels[k].ops);
    }
    fclose(p->f);
  }
  for (int i = 0; i < 3; i++) free(p->ns[i]), free(p->cpu[i]);
  free(p);
}
