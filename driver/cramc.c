/* cramc.c: the compiler driver.
 *
 *   cramc FILE.cram [--emit=ir|grad-ir|train-ir|ast|step-c|c|cuda|llvm] [-D name=value]... [--summary] [-o FILE]
 *   cramc FILE.cram [--target cuda|cpu|interp] [--precision bf16|f32|f64] -o step.so  (codegen/, docs/codegen.md)
 *   cramc FILE.cram --interpret --batch B.safetensors ... --out OUT.safetensors  (interpret.c)
 *
 * Reads the file, runs the frontend, and prints what was asked for, or builds
 * the step.so artifact: target cuda by default (NVRTC cubins + cuBLASLt +
 * host code emitted with LLVM-C; compiles without a GPU), cpu (generated C +
 * BLAS), or interp (the reference interpreter; the default with
 * --precision f64, its only user).
 * Exit status: 0 success, 1 compile error (or unreadable input), 2 usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build_cleanup.h"
#include "codegen.h"
#include "cram_step.h"
#include "frontend.h"
#include "interpret.h"
#include "ir.h"
#include "pass.h"
#include "passes.h"
#include "target_cuda.h"

#ifndef CRAMC_VERSION
#define CRAMC_VERSION "0.0.0"
#endif

static const char usage_text[] =
  "usage: cramc FILE.cram [options]\n"
  "\n"
  "Compile a .cram model (see docs/cram-language.md).\n"
  "\n"
  "options:\n"
  "  --emit=ir        print the forward graph in IR text form\n"
  "  --emit=grad-ir   print the forward graph plus its backward (autodiff) in IR text form\n"
  "  --emit=train-ir  print the whole train-step graph (forward, backward, clip, AdamW)\n"
  "  -O0, -O2         optimisation pipeline on the train step: none, or all passes\n"
  "                   (--emit=train-ir defaults to -O0, --stats to -O2)\n"
  "  --passes=a,b     run only these passes (in pipeline order); see --list-passes\n"
  "  --dump-after=P   print the IR after pass P (or 'all') to stderr\n"
  "  --verify-each    run the IR verifier after every pass\n"
  "  --stats          per pass: ops, kernels, bytes moved, arena (docs/passes.md);\n"
  "                   alone (no --emit) it prints only the table, then where the\n"
  "                   bytes go (per op family, heaviest nodes, an H100 estimate)\n"
  "  --list-passes    list the pipeline's passes in order\n"
  "  --interpret ...  run the train step in the interpreter (cramc --interpret --help)\n"
  "  --emit=ast       print the parsed syntax tree (s-expressions)\n"
  "  --emit=step-c    print the C source of the artifact (of --target, default cuda)\n"
  "  --emit=c         the same (with --target cpu: the generated kernels and host code)\n"
  "  --emit=cuda      print the generated CUDA C kernels (--target cuda)\n"
  "  --emit=llvm      print the host stepping code of --target cuda as an LLVM module\n"
  "                   (the launch sequence with the planner's offsets; verified)\n"
  "  --summary        print the parameter table, parameter count and matmul FLOPs per token\n"
  "  -D name=value    override a dim (also -Dname=value); may repeat\n"
  "  -o FILE          write the artifact (default step.so), or --emit output, to FILE\n"
  "  --precision P    bf16 (the cuda default: GEMMs in bf16 with f32 accumulate, f32\n"
  "                   master weights, norms, softmax and loss; cuda or interp), f32\n"
  "                   (the cpu/interp default, and of --emit=ir/grad-ir/train-ir, --stats;\n"
  "                   exact comparisons on cuda) or f64 (interp only; implies --target interp)\n"
  "%TARGETS%"
  "  --cc CC          C compiler that links the artifact (default $CC, else the one cramc was built with)\n"
  "  --libdir DIR     where libcram_<target>_step.a and include/ are (default $CRAMC_LIBDIR, else the build)\n"
  "  --help           show this help\n"
  "  --version        show the version\n"
  "\n"
  "Without --emit or --summary cramc builds step.so for `cram train` (docs/codegen.md).\n";

/* The help, with the --target entry written from the target registry (codegen.h). */
static void print_usage(FILE *out) {
  const char *mark = strstr(usage_text, "%TARGETS%");
  fwrite(usage_text, 1, (size_t)(mark - usage_text), out);
  fprintf(out, "  --target T       artifact kind (default %s):\n", cg_default_target);
  for (int i = 0; i < cg_ntargets; i++) {
    const CgTargetInfo *t = &cg_targets[i];
    fprintf(out, "                     %-7s ", t->name);
    for (const char *h = t->help; *h;) {
      size_t n = strcspn(h, "\n");
      fprintf(out, "%s%.*s\n", h == t->help ? "" : "                             ", (int)n, h);
      h += n + (h[n] == '\n');
    }
  }
  fputs(mark + strlen("%TARGETS%"), out);
}

typedef struct Options {
  const char *input;
  const char *output;
  const char *emit; /* NULL, "ir", "grad-ir", "train-ir", "ast", "step-c", "c", "cuda", "llvm" */
  const char *target, *cc, *libdir;
  bool summary;
  const char *precision; /* "bf16" | "f32" | "f64"; NULL: bf16 for cuda, else f32 */
  FeDefine *defs;
  int ndefs;
  PassOptions popt; /* -O, --passes, --dump-after, --verify-each, --stats */
  bool opt_given;
} Options;

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "cramc: error: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, " (see cramc --help)\n");
  return 2;
}

/* "name=value" into a define; false when malformed. */
static bool parse_define(char *s, FeDefine *d) {
  char *eq = strchr(s, '=');
  if (!eq || eq == s || !eq[1]) return false;
  *eq = '\0';
  d->name = s;
  d->value = eq + 1;
  return true;
}

/* The directory -o writes into must exist and be writable: said before any
 * compiling, not after it in a linker's words. */
static bool output_dir_ok(const char *out) {
  if (!out) return true;
  const char *slash = strrchr(out, '/');
  char dir[4096];
  if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == out) snprintf(dir, sizeof dir, "/");
  else snprintf(dir, sizeof dir, "%.*s", (int)(slash - out), out);
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "cramc: error: cannot write '%s': directory '%s' does not exist\n", out, dir);
    return false;
  }
  if (access(dir, W_OK) != 0) {
    fprintf(stderr, "cramc: error: cannot write '%s': directory '%s' is not writable\n", out, dir);
    return false;
  }
  return true;
}

/* Returns -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, Options *o) {
  o->defs = calloc((size_t)argc, sizeof(FeDefine));
  if (!o->defs) {
    fputs("cramc: error: out of memory\n", stderr);
    return 1;
  }
  for (int i = 1; i < argc; i++) {
    char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      print_usage(stdout);
      return 0;
    }
    if (!strcmp(a, "--version")) {
      printf("cramc %s\n", CRAMC_VERSION);
      return 0;
    }
    if (!strncmp(a, "--emit=", 7)) {
      if (strcmp(a + 7, "ir") && strcmp(a + 7, "grad-ir") && strcmp(a + 7, "train-ir") && strcmp(a + 7, "ast") &&
          strcmp(a + 7, "step-c") && strcmp(a + 7, "c") && strcmp(a + 7, "cuda") && strcmp(a + 7, "llvm"))
        return usage_error("unknown --emit kind '%s' (expected ir, grad-ir, train-ir, ast, step-c, c, cuda or llvm)", a + 7);
      o->emit = a + 7;
    } else if (!strcmp(a, "--target") || !strcmp(a, "--precision") || !strcmp(a, "--cc") || !strcmp(a, "--libdir")) {
      if (i + 1 >= argc) return usage_error("%s needs a value", a);
      const char *v = argv[++i];
      if (!strcmp(a, "--target")) {
        if (!cg_target_find(v)) {
          char list[256] = "";
          for (int t = 0; t < cg_ntargets; t++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", t ? (t + 1 < cg_ntargets ? ", " : " or ") : "",
                     cg_targets[t].name);
          char msg[400];
          snprintf(msg, sizeof msg, "unknown --target '%s' (expected %s)", v, list);
          return usage_error("%s", msg);
        }
        o->target = v;
      } else if (!strcmp(a, "--precision")) {
        if (strcmp(v, "bf16") && strcmp(v, "f32") && strcmp(v, "f64"))
          return usage_error("--precision must be bf16, f32 or f64, got '%s'", v);
        o->precision = v;
      } else if (!strcmp(a, "--cc")) {
        o->cc = v;
      } else {
        o->libdir = v;
      }
    } else if (!strcmp(a, "-O0") || !strcmp(a, "-O1") || !strcmp(a, "-O2")) {
      o->popt.opt_level = a[2] == '0' ? 0 : 2; /* -O1 = -O2: there is one level of optimisation */
      o->opt_given = true;
    } else if (!strncmp(a, "--passes=", 9)) {
      o->popt.only = a + 9;
      o->opt_given = true;
    } else if (!strncmp(a, "--dump-after=", 13)) {
      o->popt.dump_after = a + 13;
    } else if (!strcmp(a, "--verify-each")) {
      o->popt.verify_each = true;
    } else if (!strcmp(a, "--stats")) {
      o->popt.stats = true;
    } else if (!strcmp(a, "--list-passes")) {
      pass_list(stdout);
      return 0;
    } else if (!strcmp(a, "--summary")) {
      o->summary = true;
    } else if (!strncmp(a, "-D", 2)) {
      char *def = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
      if (!def) return usage_error("%s needs name=value", a);
      char *copy = strdup(def);
      if (!copy) {
        fputs("cramc: error: out of memory\n", stderr);
        return 1;
      }
      if (!parse_define(copy, &o->defs[o->ndefs])) {
        free(copy);
        return usage_error("malformed define '%s' (expected -D name=value)", def);
      }
      /* a second -D of one name would be reported by the frontend as "no dim named" */
      for (int k = 0; k < o->ndefs; k++)
        if (!strcmp(o->defs[k].name, copy)) {
          fprintf(stderr, "cramc: error: -D %s given twice (%s=%s and %s=%s): give each dim once (see cramc --help)\n", copy,
                  copy, o->defs[k].value, copy, o->defs[o->ndefs].value);
          free(copy);
          return 2;
        }
      o->ndefs++;
    } else if (!strcmp(a, "-o")) {
      if (i + 1 >= argc) return usage_error("%s needs a file name", a);
      o->output = argv[++i];
    } else if (!strcmp(a, "--emit")) { /* the kind goes after '=' (a following word would be the input) */
      return usage_error("--emit takes its kind after '=': --emit=%s",
                         i + 1 < argc && argv[i + 1][0] != '-' ? argv[i + 1] : "ir");
    } else if (a[0] == '-' && a[1]) {
      return usage_error("unknown option '%s'", a);
    } else {
      if (o->input) return usage_error("more than one input file ('%s')", a);
      o->input = a;
    }
  }
  if (!o->input) return usage_error("%s", "no input file");
  bool cuda_emit = o->emit && (!strcmp(o->emit, "cuda") || !strcmp(o->emit, "llvm"));
  if (cuda_emit && o->target && strcmp(o->target, "cuda")) return usage_error("--emit=%s is the cuda target's", o->emit);
  if (cuda_emit) o->target = "cuda";
  /* The default target (cuda: it compiles without a GPU), unless it cannot
   * compute in the precision asked for: then the first target that can (f64: interp). */
  const CgTargetInfo *t = cg_target_find(o->target ? o->target : cg_default_target);
  for (int i = 0; !o->target && o->precision && !cg_target_accepts(t, o->precision) && i < cg_ntargets; i++)
    if (cg_target_accepts(&cg_targets[i], o->precision)) t = &cg_targets[i];
  o->target = t->name;
  o->popt.fused_attention = t->fused_attention;
  /* the target's own precision (bf16 for cuda) for what builds or prints the artifact; the IR views stay f32 unless asked */
  bool ir_view =
    o->emit && (!strcmp(o->emit, "ir") || !strcmp(o->emit, "grad-ir") || !strcmp(o->emit, "train-ir") || !strcmp(o->emit, "ast"));
  if (!o->precision) o->precision = !ir_view && !o->summary && !o->popt.stats ? t->precision : "f32";
  if (!cg_target_accepts(t, o->precision)) {
    char why[256];
    snprintf(why, sizeof why, t->refuse, o->precision);
    char msg[400];
    snprintf(msg, sizeof msg, "--target %s %s", t->name, why);
    return usage_error("%s", msg);
  }
  return -1;
}

/* Read the whole file; prints the reason and returns NULL on failure. */
char *cramc_read_source(const char *path, size_t *len) {
  struct stat st;
  if (stat(path, &st) != 0) {
    fprintf(stderr, "cramc: error: cannot open '%s': %s\n", path, strerror(errno));
    return NULL;
  }
  if (S_ISDIR(st.st_mode)) {
    fprintf(stderr, "cramc: error: '%s' is a directory, not a .cram file\n", path);
    return NULL;
  }
  if (S_ISREG(st.st_mode) && st.st_size > (off_t)FE_MAX_SOURCE) {
    fprintf(stderr, "cramc: error: '%s' is too large (%lld bytes, limit %u MiB)\n", path, (long long)st.st_size,
            FE_MAX_SOURCE >> 20);
    return NULL;
  }
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "cramc: error: cannot open '%s': %s\n", path, strerror(errno));
    return NULL;
  }
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap + 1);
  while (buf) {
    if (n == cap) {
      if (cap > FE_MAX_SOURCE) break; /* the frontend reports "too large" */
      char *nb = realloc(buf, cap * 2 + 1);
      if (!nb) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
      cap *= 2;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) break;
  }
  bool err = ferror(f);
  fclose(f);
  if (!buf || err) {
    fprintf(stderr, "cramc: error: cannot read '%s'%s\n", path, buf ? "" : ": out of memory");
    free(buf);
    return NULL;
  }
  buf[n] = '\0';
  *len = n;
  return buf;
}

/* 119589889 -> "119,589,889" */
static const char *commas(int64_t v, char *buf, size_t n) {
  char raw[32];
  snprintf(raw, sizeof raw, "%lld", (long long)v);
  size_t len = strlen(raw), j = 0;
  size_t start = raw[0] == '-' ? 1 : 0;
  for (size_t i = 0; i < len && j + 2 < n; i++) {
    if (i > start && (len - i) % 3 == 0) buf[j++] = ',';
    buf[j++] = raw[i];
  }
  buf[j] = '\0';
  return buf;
}

static void print_summary(const Graph *g, FILE *out) {
  char a[40], b[40], t[IR_MAX_RANK * 24 + 8];
  fprintf(out, "model: %s\n\n", g->name);
  size_t w = strlen("parameter");
  for (uint32_t i = 0; i < g->n; i++)
    if (g->nodes[i].op == OP_PARAM && strlen(ir_get_str(&g->nodes[i], ATTR_NAME)) > w)
      w = strlen(ir_get_str(&g->nodes[i], ATTR_NAME));
  fprintf(out, "%-*s  %-16s %15s  %s\n", (int)w, "parameter", "shape", "count", "decay");
  int64_t total = 0, nparams = 0;
  for (uint32_t i = 0; i < g->n; i++) {
    const Node *n = &g->nodes[i];
    if (n->op != OP_PARAM) continue;
    int64_t c = ir_shape_numel(&n->shape);
    total += c;
    nparams++;
    int k = snprintf(t, sizeof t, "[");
    for (int d = 0; d < n->shape.rank; d++)
      k += snprintf(t + k, sizeof t - (size_t)k, "%s%lld", d ? "," : "", (long long)n->shape.dim[d]);
    snprintf(t + k, sizeof t - (size_t)k, "]");
    fprintf(out, "%-*s  %-16s %15s  %s\n", (int)w, ir_get_str(n, ATTR_NAME), t, commas(c, a, sizeof a),
            ir_get_int(n, ATTR_DECAY) ? "yes" : "no");
  }
  fprintf(out, "\nparameter tensors: %lld\n", (long long)nparams);
  fprintf(out, "total parameters: %s\n", commas(total, a, sizeof a));
  int64_t flops = 0;
  for (uint32_t i = 0; i < g->n; i++) {
    int64_t f = ir_node_flops(g, &g->nodes[i]);
    flops = __builtin_add_overflow(flops, f, &flops) ? INT64_MAX : flops;
  }
  int64_t tokens = 0;
  for (uint32_t i = 0; i < g->n; i++)
    if (g->nodes[i].op == OP_INPUT && !strcmp(ir_get_str(&g->nodes[i], ATTR_NAME), "tokens"))
      tokens = ir_shape_numel(&g->nodes[i].shape);
  if (tokens > 0)
    fprintf(
      out,
      "forward matmul FLOPs per token: %s (all matmul FLOPs, 2 per multiply-add, %s / %s tokens = numel of input 'tokens')\n",
      commas(flops / tokens, a, sizeof a), commas(flops, b, sizeof b), commas(tokens, t, sizeof t));
  else
    fprintf(out, "forward matmul FLOPs: %s per step (no input named 'tokens', so no per-token figure)\n",
            commas(flops, a, sizeof a));
}

/* Parameter and input names travel in the artifact's metadata and in
 * checkpoints: refuse one longer than the step ABI carries, at its source. */
static bool names_fit(const Graph *g, Diag *d) {
  bool ok = true;
  for (uint32_t i = 0; i < g->n; i++) {
    const Node *n = &g->nodes[i];
    if (n->op != OP_PARAM && n->op != OP_INPUT) continue;
    size_t len = strlen(ir_get_str(n, ATTR_NAME));
    if (len <= CRAM_STEP_MAX_NAME) continue;
    diag_error(d, n->loc,
               "%s name '%.40s...' is %zu characters, longer than the %d a step.so and its checkpoints carry: "
               "shorten its name=\"...\"",
               n->op == OP_PARAM ? "parameter" : "input", ir_get_str(n, ATTR_NAME), len, CRAM_STEP_MAX_NAME);
    ok = false;
  }
  return ok;
}

/* The forward graph of the model: the forward passes (fuse_attention,
 * passes.def section 0) when `optimise`, then autocast_bf16 at --precision
 * bf16 (before autodiff, so every later graph is mixed precision). */
static Graph *compile_fwd(const Options *o, bool optimise, const char *text, size_t len, Diag *d) {
  Graph *g = fe_compile(o->input, text, len, o->defs, o->ndefs, d);
  if (g && !names_fit(g, d)) {
    ir_graph_free(g);
    return NULL;
  }
  if (g && optimise) {
    PassOptions po = o->popt;
    if (!o->opt_given) po.opt_level = 2; /* builds and --stats default to -O2 */
    PassCtx cx = { d, &po };
    Graph *f = pass_forward_run(g, &cx);
    ir_graph_free(g);
    g = f;
  }
  if (g && !strcmp(o->precision, "bf16")) {
    Graph *m = pass_autocast_bf16(g, d);
    ir_graph_free(g);
    g = m;
  }
  return g;
}

/* The pass pipeline on a train-step graph (frees g); NULL after a diagnostic. */
static Graph *optimise(Graph *g, Options *o, Diag *d) {
  if (!g) return NULL;
  PassCtx cx = { d, &o->popt };
  Graph *r = pass_pipeline_run(g, &cx);
  ir_graph_free(g);
  return r;
}

/* `cramc FILE --stats` with no --emit: the train step through the pipeline
 * (-O2 unless told otherwise), the per-pass table to stdout, no artifact. */
static int stats_only(Options *o, const char *text, size_t len, Diag *d) {
  if (!o->opt_given) o->popt.opt_level = 2;
  o->popt.stats_out = stdout;
  Graph *fwd = compile_fwd(o, true, text, len, d);
  Graph *g = fwd ? optimise(cramc_train_ir(fwd, d), o, d) : NULL;
  ir_graph_free(fwd);
  if (g) pass_print_traffic(stdout, g);
  int rc = g ? 0 : 1;
  ir_graph_free(g);
  return rc;
}

/* The environment knobs of cramc (documented in docs/codegen.md) are read
 * here, in the CLI, and passed to the library as CgOptions. */
/* A positive integer from the environment, else 0. */
static int64_t env_int(const char *name) {
  const char *e = getenv(name);
  long long v = e ? strtoll(e, NULL, 10) : 0;
  return v > 0 ? v : 0;
}

static bool env_is(const char *name, const char *value) {
  const char *e = getenv(name);
  return e && !strcmp(e, value);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--interpret")) return cramc_interpret_main(argc, argv);
  Options o = { 0 };
#ifndef NDEBUG
  o.popt.verify_each = true; /* debug builds check the IR after every pass */
#endif
  int rc = parse_args(argc, argv, &o);
  if (rc >= 0) goto done;
  cg_cleanup_install(); /* Ctrl-C during a build leaves no temporary files */
  rc = 1;
  if (!output_dir_ok(o.output)) goto done;
  size_t len = 0;
  char *text = cramc_read_source(o.input, &len);
  if (!text) goto done;
  Diag d;
  diag_init(&d, stderr);
  if (!o.emit && !o.summary && o.popt.stats) {
    rc = stats_only(&o, text, len, &d);
    free(text);
    goto done;
  }
  CgOptions cg = { .src_path = o.input,
                   .src_text = text,
                   .src_len = len,
                   .f64 = !strcmp(o.precision, "f64"),
                   .bf16 = !strcmp(o.precision, "bf16"),
                   .cc = o.cc,
                   .libdir = o.libdir,
                   .opt_level = o.opt_given ? o.popt.opt_level : 2,
                   .xent_chunk = env_int("CRAMC_XENT_CHUNK"),
                   .no_ptx = env_is("CRAMC_NVRTC_PTX", "0"),
                   .nvrtc_log = getenv("CRAMC_NVRTC_TIMES") ? stderr : NULL,
                   .cpu_unit_nodes = env_int("CRAMC_CPU_UNIT_NODES") };
  if (!o.emit && !o.summary) {
    /* Check the model first, so an error in it is reported before anything else. */
    Graph *g = compile_fwd(&o, !o.opt_given || o.popt.opt_level >= 2 || o.popt.only, text, len, &d);
    char err[1024];
    if (g && !cg_target_find(o.target)->build(g, &cg, o.output ? o.output : "step.so", err, sizeof err))
      fprintf(stderr, "cramc: error: %s\n", err);
    else if (g) rc = 0;
    ir_graph_free(g);
    free(text);
    goto done;
  }
  FILE *out = stdout;
  if (o.emit && o.output && !(out = fopen(o.output, "w"))) {
    fprintf(stderr, "cramc: error: cannot write '%s': %s\n", o.output, strerror(errno));
    free(text);
    goto done;
  }
  if (o.emit && !strcmp(o.emit, "ast")) {
    rc = fe_print_ast(o.input, text, len, out, &d) ? 0 : 1;
    if (o.summary) fprintf(stderr, "cramc: note: --summary is ignored with --emit=ast\n");
  } else {
    /* the IR views stay as the frontend built them unless -O / --passes / --stats / --dump-after ask; artifacts default to -O2 */
    bool ir_view = o.emit && (!strcmp(o.emit, "ir") || !strcmp(o.emit, "grad-ir") || !strcmp(o.emit, "train-ir"));
    bool fwd_opt = ir_view ? (o.opt_given && (o.popt.opt_level >= 2 || o.popt.only)) || o.popt.stats || o.popt.dump_after
                           : !o.opt_given || o.popt.opt_level >= 2 || o.popt.only;
    Graph *g = compile_fwd(&o, fwd_opt, text, len, &d);
    if (g && o.emit && !strcmp(o.emit, "grad-ir")) { /* forward + backward */
      Graph *fwd = g;
      g = pass_autodiff(fwd, &d);
      ir_graph_free(fwd);
    } else if (g && o.emit && !strcmp(o.emit, "train-ir")) { /* forward + backward + clip + AdamW */
      Graph *fwd = g;
      g = cramc_train_ir(fwd, &d);
      ir_graph_free(fwd);
      if (o.opt_given || o.popt.stats || o.popt.dump_after) g = optimise(g, &o, &d);
    }
    char err[1024];
    bool emit_c = o.emit && (!strcmp(o.emit, "step-c") || !strcmp(o.emit, "c"));
    bool llvm = o.emit && !strcmp(o.emit, "llvm");
    if (g && o.emit && (!strcmp(o.emit, "cuda") || llvm)) {
      if (!(llvm ? cg_cuda_emit_llvm(g, &cg, 0, out, err, sizeof err) : cg_cuda_emit_cu(g, &cg, out, err, sizeof err))) {
        fprintf(stderr, "cramc: error: %s\n", err);
        ir_graph_free(g);
        g = NULL;
      }
    } else if (g && emit_c) {
      if (!cg_target_find(o.target)->emit_c(g, &cg, out, err, sizeof err)) {
        fprintf(stderr, "cramc: error: %s\n", err);
        ir_graph_free(g);
        g = NULL;
      }
    } else if (g && o.emit) {
      ir_print(g, out);
    }
    if (g) {
      if (o.summary) print_summary(g, stdout);
      rc = 0;
    }
    ir_graph_free(g);
  }
  if (out != stdout && fclose(out) != 0) {
    fprintf(stderr, "cramc: error: cannot write '%s'\n", o.output);
    rc = 1;
  }
  free(text);
done:
  for (int i = 0; i < o.ndefs; i++) free((char *)o.defs[i].name);
  free(o.defs);
  return rc;
}
