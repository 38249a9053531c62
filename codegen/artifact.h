/* artifact.h - what every target's artifact build shares (codegen/artifact.c):
 * the metadata tables of cram_step_meta written as C, C string literals, and
 * the build itself (generated C into a private temp dir, the system C
 * compiler, atomic rename onto the output). target_interp.c and
 * target_cpu.c differ only in the C they write and the flags/libraries of
 * the link. Library code: errors come back as one line in err. */
#ifndef CRAMC_ARTIFACT_H
#define CRAMC_ARTIFACT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "codegen.h"

bool cg_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A C string literal, one source line per embedded newline. */
void cg_put_cstr(FILE *out, const char *s, size_t len);

/* `static const char var[] = "<ir_print(g)>";` */
bool cg_put_graph(FILE *out, const char *var, const Graph *g, char *err, size_t errlen);

/* The artifact's three graphs of model fwd, each through the pass pipeline
 * at o->opt_level (o NULL: as built, for the interp target): G[0] the
 * forward (eval, with the accuracy count: pass_eval_metrics), G[1]
 * accumulate (step: forward, backward, gradient accumulation), G[2] update
 * (clip + AdamW). The caller frees G[]; on failure all three are NULL and
 * err holds every diagnostic line the passes wrote (newline-separated). */
bool cg_train_graphs(const Graph *fwd, const CgOptions *o, Graph *G[3], char *err, size_t errlen);

/* What differs between targets in the metadata. */
typedef struct CgMeta {
  const char *target;    /* "interp" | "cpu" | "cuda": also the shim's prefix cram_<target>_ */
  const char *precision; /* "bf16" | "f32" | "f64" */
  const char *abi_macro; /* the C expression written as .abi_version */
  uint64_t arena_bytes;
  int64_t kernel_count;
} CgMeta;

/* Writes `static const cram_dim dims[]`, `inputs[]`, `params[]` and
 * `static const cram_step_meta meta` for model fwd. */
bool cg_put_meta(FILE *out, const Graph *fwd, const CgOptions *o, const CgMeta *m, char *err, size_t errlen);

/* Writes the end of every target's step.c, after `static const
 * cram_<target>_artifact artifact` and `meta`: create() bound to the artifact,
 * the cram_step_api table over the shim's cram_<target>_<entry> functions (the
 * entries of CRAM_STEP_SHIM_ENTRIES, cram_step_shim.h; abi_version written as
 * m->abi_macro), and the exported cram_step_entry(). */
void cg_put_step_api(FILE *out, const CgMeta *m);

/* Objects a target links beside its step.c (paths in the build's temp dir).
 * An entry marked c_source is a C translation unit of a split step.c: the
 * build compiles those in parallel (step.c's flags, -c) before the link. */
#define CG_MAX_OBJS 20
typedef struct CgObjs {
  int n;
  char path[CG_MAX_OBJS][4096];
  bool c_source[CG_MAX_OBJS];
} CgObjs;

/* What distinguishes one target's step.so: its runtime library
 * (LIBDIR/libcram_<name>_step.a with LIBDIR/include/cram_<name>_step.h, LIBDIR
 * from --libdir, $CRAMC_LIBDIR or the build directory), the C it generates,
 * and the compiler flags around it. */
typedef struct CgTarget {
  const char *name;           /* "interp" | "cpu" | "cuda" */
  const char *default_libdir; /* the build directory, compiled in */
  bool (*emit)(const Graph *fwd, const CgOptions *o, FILE *f, char *err, size_t errlen);
  const char *const *cflags; /* before the source (NULL-terminated) */
  const char *const *libs;   /* after the runtime library (NULL-terminated) */
  /* Optional, used instead of emit when set: writes step.c to f and extra
   * objects (the cuda target's LLVM host code) or C units (the cpu target's
   * kernels of a large model) into dir, listed in objs; they are linked
   * after step.c and removed with the temp dir. */
  bool (*emit_objs)(const Graph *fwd, const CgOptions *o, FILE *f, const char *dir, CgObjs *objs, char *err, size_t errlen);
} CgTarget;

/* Builds `output` for target t: emit() (or emit_objs()) into TMP/step.c, then
 *   CC [$CRAMC_STEP_CFLAGS] cflags... -I LIBDIR/include -o OUTPUT.tmp.PID TMP/step.c [OBJS...] LIB libs...
 * and renames onto output (atomic: a failed build leaves nothing). */
bool cg_build_target(const CgTarget *t, const Graph *fwd, const CgOptions *o, const char *output, char *err, size_t errlen);

#endif
