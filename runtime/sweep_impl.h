/* sweep_impl.h - what the files of `cram sweep` share (sweep.c: the runner,
 * sweep_downstream.c: the finetuning half): child processes, the build
 * cache, small file helpers. Not an interface outside runtime/sweep*.c. */
#ifndef CRAM_SWEEP_IMPL_H
#define CRAM_SWEEP_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "sweep.h"

#define PATHMAX  4096
#define MAX_ARGV 96

typedef struct child_result {
  int code; /* exit status, 128 + signal when killed */
  double wall_s;
  double maxrss_mib;
  double load_mean; /* NAN when /proc/loadavg is unreadable */
} child_result;

/* Runs argv with stdout and stderr appended to log_path; forwards a stop
 * request as SIGTERM (cram train checkpoints and exits 130 on it). */
cram_status sweep_run_child(const cram_sweep_opts *o, char *const argv[], const char *log_path, child_result *r, cram_err *err);

/* One cramc build into DIR/cache, keyed by sweep_build_key. */
typedef struct sweep_build_req {
  const char *label;    /* for progress lines: the variant's name */
  const char *model;    /* .cram path */
  char *const *defines; /* "k=v" */
  int ndefines;
  uint64_t key;
  const char *log; /* cramc's output */
} sweep_build_req;
typedef struct sweep_build_out {
  char so[PATHMAX]; /* the artifact (when not refused) */
  int refused;      /* cramc refused the model: why holds its diagnostic */
  char why[512];
  double compile_s; /* wall time of the first (uncached) build; NAN unknown */
} sweep_build_out;
cram_status sweep_build_key(const cram_sweep_spec *s, const char *model, char *const *defines, int ndefines, const char *cramc,
                            uint64_t *key, cram_err *err);
cram_status sweep_build(const cram_sweep_spec *s, const cram_sweep_opts *o, const char *cramc, const sweep_build_req *b,
                        sweep_build_out *out, cram_err *err);

/* After pretraining: finetune the variant's encoder on the SPEC's
 * downstream task (sweep_downstream.c); fills row->downstream or
 * row->downstream_why. vdir: the variant's directory, run: its `cram train`
 * run, rkey: its result key (a new pretraining redoes the finetuning). */
cram_status sweep_downstream(const cram_sweep_spec *s, const cram_sweep_opts *o, const cram_sweep_variant *v, const char *cramc,
                             const char *vdir, const char *run, uint64_t rkey, cram_sweep_row *row, cram_err *err);

void sweep_say(const cram_sweep_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sweep_mkdir_p(const char *path);
int sweep_exists(const char *path);
/* Whole file as a NUL-terminated string (NULL on error); *len without the NUL. */
char *sweep_slurp(const char *path, size_t *len);
/* The last non-empty lines of a log (at most `lines`), joined by " | ". */
void sweep_log_tail(const char *path, int lines, char *out, size_t cap);
uint64_t sweep_hash_str(uint64_t h, const char *s);

#endif
