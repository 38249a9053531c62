/* target_cpu.c - the "cpu" target: `cramc FILE.cram --target cpu -o step.so`.
 *
 * Builds the three graphs a train loop runs (forward for eval(),
 * pass_accumulate for step(), pass_update for update()), runs the pass
 * pipeline on each (-O2: fusions + kernel partition; -O0: none), plans
 * memory, describes the kernels (kernel.h), renders them as C (render_c.c),
 * and has the C compiler build step.so (-O3 -fopenmp, cblas_sgemm from
 * OpenBLAS) with libcram_cpu_step.a (the shim). See docs/codegen.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "artifact.h"
#include "codegen.h"
#include "kernel.h"
#include "pass.h"
#include "passes.h"
#include "render_c.h"

#ifndef CRAMC_VERSION
#define CRAMC_VERSION "0.0.0"
#endif
#ifndef CRAMC_CPU_LIBDIR
#define CRAMC_CPU_LIBDIR ""
#endif

static void put_graph_tables(FILE *out, const char *pfx, const KProgram *p) {
  fprintf(out, "static const cram_cpu_slot %s_slots[] = {\n", pfx);
  for (uint32_t s = 0; s < p->nslots; s++)
    fprintf(out, "  {%s, %u, %lld}, /* %%%u */\n", k_slot_kind_name[p->slots[s].kind], p->slots[s].index,
            (long long)p->slots[s].bytes, p->slots[s].node);
  if (!p->nslots) fputs("  {0, 0, 0},\n", out);
  fprintf(out, "};\nstatic const cram_cpu_out %s_outs[] = {\n", pfx);
  for (uint32_t i = 0; i < p->nouts; i++)
    fprintf(out, "  {%s, %u, %u},\n", k_out_kind_name[p->outs[i].kind], p->outs[i].index, p->outs[i].slot);
  if (!p->nouts) fputs("  {0, 0, 0},\n", out);
  fputs("};\n\n", out);
}

/* Kernel nodes per translation unit of a split build: a large model's step.c
 * (a 128-layer model: ~15 MB) becomes units of about this many nodes, compiled
 * in parallel. CgOptions.cpu_unit_nodes overrides it (tests split small models). */
#define CPU_UNIT_NODES 4000

static FILE *open_unit(const char *dir, CgObjs *objs, char *err, size_t errlen) {
  int i = objs->n;
  int k = snprintf(objs->path[i], sizeof objs->path[i], "%s/unit%d.c", dir, i);
  if (k < 0 || (size_t)k >= sizeof objs->path[i]) return cg_fail(err, errlen, "temporary directory name too long: %s", dir), NULL;
  FILE *f = fopen(objs->path[i], "w");
  if (!f) return cg_fail(err, errlen, "cannot write '%s'", objs->path[i]), NULL;
  objs->c_source[i] = true;
  objs->n++;
  fputs("/* kernels of a step.c split into units (cramc --target cpu) */\n#include \"cram_cpu_step.h\"\n\n", f);
  return f;
}

/* The kernels of the three graphs P[] as units of dir (in objs), each about
 * total/parts nodes, cut at kernel boundaries. */
static bool put_units(KProgram *const P[3], const char *const pfx[3], int parts, const char *dir, CgObjs *objs, char *err,
                      size_t errlen) {
  uint64_t total = 0, in_unit = 0;
  for (int i = 0; i < 3; i++) total += P[i]->nnodes;
  uint64_t per = (total + (uint64_t)parts - 1) / (uint64_t)parts;
  FILE *f = open_unit(dir, objs, err, errlen);
  bool ok = f != NULL;
  for (int i = 0; ok && i < 3; i++) {
    uint32_t k0 = 0;
    for (uint32_t k = 0; ok && k < P[i]->nkernels; k++) {
      if (in_unit >= per && objs->n < parts) {
        ok = render_c_kernel_range(f, P[i], pfx[i], k0, k, true, err, errlen);
        ok = fclose(f) == 0 && ok;
        f = ok ? open_unit(dir, objs, err, errlen) : NULL;
        ok = ok && f;
        k0 = k, in_unit = 0;
      }
      in_unit += P[i]->kernels[k].count;
    }
    ok = ok && render_c_kernel_range(f, P[i], pfx[i], k0, P[i]->nkernels, true, err, errlen);
  }
  if (f && fclose(f) != 0 && ok) ok = cg_fail(err, errlen, "cannot write '%s'", objs->path[objs->n - 1]);
  return ok;
}

/* step.c to out; with dir and objs (a build), the kernels of a model of
 * more than CPU_UNIT_NODES (or o->cpu_unit_nodes) kernel nodes go to parallel-compiled units instead. */
static bool emit_cpu(const Graph *fwd, const CgOptions *o, FILE *out, const char *dir, CgObjs *objs, char *err, size_t errlen) {
  Graph *G[3];
  if (!cg_train_graphs(fwd, o, G, err, errlen)) return false;
  Arena *ar = arena_new();
  bool ok = false;
  /* parameter and input names in metadata order */
  uint32_t np = 0, nin = 0;
  const char **pn = ARENA_ARRAY(ar, const char *, fwd->n + 1), **in = ARENA_ARRAY(ar, const char *, fwd->n + 1);
  for (uint32_t v = 0; v < fwd->n; v++) {
    if (fwd->nodes[v].op == OP_PARAM) pn[np++] = ir_get_str(&fwd->nodes[v], ATTR_NAME);
    if (fwd->nodes[v].op == OP_INPUT) in[nin++] = ir_get_str(&fwd->nodes[v], ATTR_NAME);
  }
  KNames names = { pn, np, in, nin, .state_in_place = false }; /* the cpu shim copies outputs back after a run */
  KProgram *P[3];
  static const char *pfx[3] = { "fwd", "acc", "up" };
  uint64_t arena = 0;
  int64_t nk = 0;
  for (int i = 0; i < 3; i++) {
    char kerr[512];
    for (uint32_t v = 0; v < G[i]->n; v++) /* the C kernels compute on f32 buffers only */
      if (G[i]->nodes[v].dtype == DT_BF16) {
        cg_fail(err, errlen, "%s graph: %%%u (%s): dtype bf16 is not supported by the cpu target (--precision f32)", pfx[i], v,
                ir_ops[G[i]->nodes[v].op].name);
        goto out;
      }
    if (!(P[i] = kernel_build(G[i], &names, ar, kerr, sizeof kerr))) {
      cg_fail(err, errlen, "%s graph: %s", pfx[i], kerr);
      goto out;
    }
    if ((uint64_t)P[i]->arena_bytes > arena) arena = (uint64_t)P[i]->arena_bytes;
    if (i) nk += P[i]->nkernels;
  }
  uint64_t nodes = (uint64_t)P[0]->nnodes + P[1]->nnodes + P[2]->nnodes,
           per = o->cpu_unit_nodes > 0 ? (uint64_t)o->cpu_unit_nodes : CPU_UNIT_NODES;
  uint64_t parts = dir ? (nodes + per - 1) / per : 1;
  if (parts > CG_MAX_OBJS) parts = CG_MAX_OBJS;
  if (parts > 1 && !put_units(P, pfx, (int)parts, dir, objs, err, errlen)) goto out;
  char hash[17];
  cg_source_hash(o->src_text, o->src_len, hash);
  fprintf(out,
          "/* step.so source generated by cramc %s --target cpu -O%d from %s (FNV-1a 64 %s).\n"
          " * Kernels (one C function each, nodes in order) and host functions for the\n"
          " * forward (eval), accumulate (step) and update graphs; run by the shim in\n"
          " * libcram_cpu_step.a (docs/codegen.md). */\n"
          "#include \"cram_cpu_step.h\"\n\n"
          "#ifndef CRAM_CPU_ABI_VERSION\n#define CRAM_CPU_ABI_VERSION CRAM_STEP_ABI_VERSION\n#endif\n\n",
          CRAMC_VERSION, o->opt_level, o->src_path, hash);
  if (!cg_put_graph(out, "fwd_ir", fwd, err, errlen)) goto out;
  CgMeta m = { "cpu", "f32", "CRAM_CPU_ABI_VERSION", arena, nk };
  if (!cg_put_meta(out, fwd, o, &m, err, errlen)) goto out;
  for (int i = 0; i < 3; i++) {
    fprintf(out, "/* ---- %s graph: %u kernels, %u nodes, arena %lld bytes ---- */\n\n", pfx[i], P[i]->nkernels, P[i]->nnodes,
            (long long)P[i]->arena_bytes);
    char rerr[512];
    if (parts > 1) render_c_kernel_decls(out, P[i], pfx[i]);
    else if (!render_c_kernels(out, P[i], pfx[i], rerr, sizeof rerr)) {
      cg_fail(err, errlen, "%s graph: %s", pfx[i], rerr);
      goto out;
    }
    render_c_host(out, P[i], pfx[i]);
    if (!render_c_kernel_table(out, P[i], pfx[i])) {
      cg_fail(err, errlen, "out of memory");
      goto out;
    }
    put_graph_tables(out, pfx[i], P[i]);
  }
  fputs("static const cram_cpu_artifact artifact = {\n  CRAM_CPU_SHIM_VERSION, &meta, fwd_ir,\n", out);
  for (int i = 0; i < 3; i++)
    fprintf(out, "  {%u, %s_slots, %u, %s_outs, %lluu, %s_run, %u, %s_kernels},\n", P[i]->nslots, pfx[i], P[i]->nouts, pfx[i],
            (unsigned long long)P[i]->arena_bytes, pfx[i], P[i]->nkernels, pfx[i]);
  fputs("};\n\n", out);
  cg_put_step_api(out, &m);
  ok = !ferror(out);
  if (!ok) cg_fail(err, errlen, "cannot write the generated C");
out:
  for (int i = 0; i < 3; i++) ir_graph_free(G[i]);
  arena_free(ar);
  return ok;
}

bool cg_cpu_emit_c(const Graph *fwd, const CgOptions *o, FILE *out, char *err, size_t errlen) {
  return emit_cpu(fwd, o, out, NULL, NULL, err, errlen);
}

static bool emit_objs(const Graph *fwd, const CgOptions *o, FILE *out, const char *dir, CgObjs *objs, char *err, size_t errlen) {
  return emit_cpu(fwd, o, out, dir, objs, err, errlen);
}

/* ---- building the shared object --------------------------------------------------- */

/* -march=native: the artifact runs where cramc built it (vector width of the
 * f64 elementwise math: AdamW's divisions and square roots); -fno-trapping-math:
 * no FP exceptions are looked at, and without it gcc keeps the selects of the
 * kernels' branch-free math (cc_expf) out of vector loops; -fno-math-errno:
 * nothing reads errno, and without it sqrt() stays a scalar call with an errno
 * check, so AdamW's loop does not vectorise (bert_crammed layers=2: 318 -> 116
 * ms of AdamW per update at one thread; sqrt is correctly rounded either way) */
static const char *const cpu_cflags[] = { "-std=c17",           "-shared",         "-fPIC", "-O3", "-march=native", "-fopenmp",
                                          "-fno-trapping-math", "-fno-math-errno", NULL };
static const char *const cpu_libs[] = { "-lopenblas", "-lm", NULL };

bool cg_cpu_build(const Graph *fwd, const CgOptions *o, const char *output, char *err, size_t errlen) {
  static const CgTarget target = { "cpu", CRAMC_CPU_LIBDIR, cg_cpu_emit_c, cpu_cflags, cpu_libs, emit_objs };
  return cg_build_target(&target, fwd, o, output, err, errlen);
}
