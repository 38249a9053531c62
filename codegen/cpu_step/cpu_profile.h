/* cpu_profile.h - the opt-in per-kernel profile of a cpu-target step
 * (cpu_profile.c): on when cram_create_opts.cpu_profile names a file at
 * create(); then each graph run calls its kernels one by one under a
 * clock instead of its host function, and destroy() writes one line per
 * kernel. Off, it costs one pointer test per run. */
#ifndef CRAM_CPU_PROFILE_H
#define CRAM_CPU_PROFILE_H

#include <stddef.h>

#include "cram_cpu_step.h"

typedef struct cram_cpu_prof cram_cpu_prof;

/* NULL with *failed = 0 when profiling is off (path NULL or empty); NULL with
 * *failed = 1 and a message in err when the file cannot be written or memory
 * is short. */
cram_cpu_prof *cram_cpu_prof_open(const cram_cpu_artifact *a, const char *path, int *failed, char *err, size_t errlen);

/* Runs graph `which` (0 fwd, 1 acc, 2 up) kernel by kernel, timing each
 * (the first run of each graph is not counted: first-touch page faults). */
int cram_cpu_prof_run(cram_cpu_prof *p, int which, const cram_cpu_run *R);

/* Writes the profile and frees it (NULL: nothing). */
void cram_cpu_prof_close(cram_cpu_prof *p);

#endif
