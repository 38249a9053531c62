/* artifact.c - the parts of an artifact build every target shares
 * (artifact.h): metadata tables as C, string literals, and the C compiler
 * run with its atomic rename. Moved out of target_interp.c when the cpu
 * target arrived. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arena.h"
#include "artifact.h"
#include "build_cleanup.h"
#include "cram_step.h"
#include "cram_step_shim.h"
#include "pass.h"
#include "passes.h"

_Static_assert(CRAM_SHIM_NHYPER == IR_ADAM_HYPER, "the shims' hyper vector is the update graph's \"hyper\" input");

#ifndef CRAMC_VERSION
#define CRAMC_VERSION "0.0.0"
#endif
#ifndef CRAMC_DEFAULT_CC
#define CRAMC_DEFAULT_CC "cc"
#endif
#ifndef CRAMC_STEP_CFLAGS
#define CRAMC_STEP_CFLAGS ""
#endif

bool cg_fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return false;
}

void cg_source_hash(const char *text, size_t len, char buf[17]) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)text[i]) * 0x100000001b3ull;
  snprintf(buf, 17, "%016llx", (unsigned long long)h);
}

/* ---- writing C ------------------------------------------------------------------ */

/* A C string literal, one source line per IR line. */
void cg_put_cstr(FILE *out, const char *s, size_t len) {
  fputs("  \"", out);
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '\n') fputs(i + 1 < len ? "\\n\"\n  \"" : "\\n", out);
    else if (ch == '"' || ch == '\\') fprintf(out, "\\%c", ch);
    else if (ch < 32 || ch >= 127 || ch == '?') fprintf(out, "\\%03o", ch); /* '?': no trigraphs */
    else fputc(ch, out);
  }
  fputs("\"", out);
}

bool cg_put_graph(FILE *out, const char *var, const Graph *g, char *err, size_t errlen) {
  char *buf = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&buf, &len);
  if (!mem) return cg_fail(err, errlen, "out of memory printing the %s graph", var);
  ir_print(g, mem);
  fclose(mem);
  if (!buf) return cg_fail(err, errlen, "out of memory printing the %s graph", var);
  fprintf(out, "static const char %s[] =\n", var);
  cg_put_cstr(out, buf, len);
  fputs(";\n\n", out);
  free(buf);
  return true;
}

static void put_tensor(FILE *out, const char *name, cram_step_dtype dt, const Shape *s, int decay) {
  fputs("  {", out);
  cg_put_cstr(out, name, strlen(name));
  fprintf(out, ", %s, %d, {", dt == CRAM_DT_I32 ? "CRAM_DT_I32" : "CRAM_DT_F32", s->rank);
  for (int d = 0; d < s->rank; d++) fprintf(out, "%s%lld", d ? ", " : "", (long long)s->dim[d]);
  fprintf(out, "}, %lld, %d},\n", (long long)ir_shape_numel(s), decay);
}

/* s as one C string literal on one line (the artifact's copy of the .cram
 * source: one line, so a diff of generated code can leave it out). */
static void put_cstr_line(FILE *out, const char *s, size_t len) {
  fputc('"', out);
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '\n') fputs("\\n", out);
    else if (ch == '"' || ch == '\\') fprintf(out, "\\%c", ch);
    else if (ch < 32 || ch >= 127 || ch == '?') fprintf(out, "\\%03o", ch); /* '?': no trigraphs */
    else fputc(ch, out);
  }
  fputc('"', out);
}

bool cg_put_meta(FILE *out, const Graph *fwd, const CgOptions *o, const CgMeta *m, char *err, size_t errlen) {
  Arena *ar = arena_new();
  const IrDim *dims = fwd->dims; /* the frontend's values, -D overrides applied */
  int ndims = (int)fwd->ndims;
  char hash[17];
  cg_source_hash(o->src_text, o->src_len, hash);
  fputs("static const cram_dim dims[] = {\n", out);
  for (int i = 0; i < ndims; i++) {
    fputs("  {", out);
    cg_put_cstr(out, dims[i].name, strlen(dims[i].name));
    fprintf(out, ", %lld},\n", (long long)dims[i].value);
  }
  if (!ndims) fputs("  {0, 0},\n", out);
  fputs("};\n\nstatic const cram_tensor_info inputs[] = {\n", out);
  int nin = 0, np = 0;
  int64_t nelems = 0, tokens = 0, flops = 0;
  for (uint32_t v = 0; v < fwd->n; v++) {
    const Node *n = &fwd->nodes[v];
    if (n->op != OP_INPUT) continue;
    const char *name = ir_get_str(n, ATTR_NAME);
    put_tensor(out, name, n->dtype == DT_I32 ? CRAM_DT_I32 : CRAM_DT_F32, &n->shape, 0);
    if (!strcmp(name, "tokens")) tokens = ir_shape_numel(&n->shape);
    nin++;
  }
  if (!nin) fputs("  {0},\n", out);
  fputs("};\n\nstatic const cram_tensor_info params[] = {\n", out);
  for (uint32_t v = 0; v < fwd->n; v++) {
    const Node *n = &fwd->nodes[v];
    if (n->op != OP_PARAM) continue;
    put_tensor(out, ir_get_str(n, ATTR_NAME), CRAM_DT_F32, &n->shape, ir_get_int(n, ATTR_DECAY) ? 1 : 0);
    nelems += ir_shape_numel(&n->shape);
    np++;
  }
  if (!np) fputs("  {0},\n", out);
  /* predict()'s outputs: every forward output but the loss, f32 on the host. */
  fputs("};\n\nstatic const cram_tensor_info outputs[] = {\n", out);
  int nout = 0;
  for (uint32_t i = 0; i < fwd->nout; i++) {
    if (!strcmp(fwd->outputs[i].name, "loss")) continue;
    put_tensor(out, fwd->outputs[i].name, CRAM_DT_F32, &fwd->nodes[fwd->outputs[i].value].shape, 0);
    nout++;
  }
  if (!nout) fputs("  {0},\n", out);
  for (uint32_t v = 0; v < fwd->n; v++) {
    int64_t f = ir_node_flops(fwd, &fwd->nodes[v]);
    flops = __builtin_add_overflow(flops, f, &flops) ? INT64_MAX : flops;
  }
  /* Estimate: backward = 2x forward matmul FLOPs (docs/codegen.md). */
  double fpt = tokens > 0 ? 3.0 * (double)flops / (double)tokens : 0.0;
  fputs("};\n\nstatic const cram_step_meta meta = {\n", out);
  fprintf(out, "  .abi_version = %s,\n  .model = ", m->abi_macro);
  cg_put_cstr(out, fwd->name, strlen(fwd->name));
  fprintf(out,
          ",\n  .target = \"%s\",\n  .precision = \"%s\",\n  .cramc_version = \"%s\",\n"
          "  .source_hash = \"%s\",\n  .min_sm = 0,\n  .ndims = %d,\n  .dims = dims,\n"
          "  .ninputs = %d,\n  .inputs = inputs,\n  .nparams = %d,\n  .params = params,\n"
          "  .nparam_elems = %lld,\n  .arena_bytes = %llu,\n  .kernel_count = %lld,\n"
          "  .flops_per_token = %.17g,\n  .noutputs = %d,\n  .outputs = outputs,\n  .source = ",
          m->target, m->precision, CRAMC_VERSION, hash, ndims, nin, np, (long long)nelems, (unsigned long long)m->arena_bytes,
          (long long)m->kernel_count, fpt, nout);
  if (o->src_text) put_cstr_line(out, o->src_text, o->src_len); /* `cram export` writes it beside the weights */
  else fputs("0", out);
  fprintf(out, ",\n  .has_accuracy = %d,\n};\n\n", pass_accuracy_loss(fwd) != IR_NONE);
  arena_free(ar);
  if (ferror(out)) return cg_fail(err, errlen, "cannot write the generated C");
  return true;
}

/* ---- the entry table ------------------------------------------------------------ */

#define CG_ENTRY_NAME(P, ret, name, params) #name,
static const char *const step_entries[] = { CRAM_STEP_SHIM_ENTRIES(CG_ENTRY_NAME, _) };

void cg_put_step_api(FILE *out, const CgMeta *m) {
  fprintf(out,
          "static cram_step_rc create(const cram_create_opts *opts, cram_ctx **out, char *err, size_t errlen) {\n"
          "  return cram_%s_create(&artifact, opts, out, err, errlen);\n"
          "}\n\n"
          "static const cram_step_api api = {\n"
          "  %s, sizeof(cram_step_api), &meta,\n"
          "  create,",
          m->target, m->abi_macro);
  int col = (int)strlen("  create,");
  for (size_t i = 0; i < sizeof step_entries / sizeof step_entries[0]; i++) {
    int w = (int)strlen(step_entries[i]) + (int)strlen(" cram_shim_,");
    if (col + w > 80) fputs("\n ", out), col = 1;
    col += fprintf(out, " cram_shim_%s,", step_entries[i]);
  }
  fputs("\n};\n\n"
        "__attribute__((visibility(\"default\"))) const cram_step_api *cram_step_entry(void);\n"
        "const cram_step_api *cram_step_entry(void) { return &api; }\n",
        out);
}

/* ---- building the shared object --------------------------------------------------- */

static const char *pick_cc(const CgOptions *o) {
  if (o->cc && *o->cc) return o->cc;
  const char *e = getenv("CC");
  if (e && *e) return e;
  /* The compiler that built the library: its objects (and sanitizer runtime,
   * in an ASan build) must match the final link. */
  if (*CRAMC_DEFAULT_CC && access(CRAMC_DEFAULT_CC, X_OK) == 0) return CRAMC_DEFAULT_CC;
  return "cc";
}

/* Splits s on blanks into argv (arena copies); returns the count. */
static int split(Arena *ar, const char *s, char **argv, int max) {
  int n = 0;
  while (*s && n < max) {
    while (*s == ' ' || *s == '\t') s++;
    size_t k = strcspn(s, " \t");
    if (k) argv[n++] = arena_strndup(ar, s, k);
    s += k;
  }
  return n;
}

/* First line of the compiler's log that says "error", else its first line. */
static void log_line(const char *path, char *buf, size_t n) {
  buf[0] = '\0';
  FILE *f = fopen(path, "r");
  if (!f) return;
  char line[512];
  bool have = false;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = '\0';
    if (!have && *line) snprintf(buf, n, "%.*s", (int)n - 1, line), have = true;
    if (strstr(line, "error")) {
      snprintf(buf, n, "%.*s", (int)n - 1, line);
      break;
    }
  }
  fclose(f);
}

/* Starts argv with stdout and stderr into log, in process group `group` (0: a
 * new group led by the child), so that a signal can stop the compiler driver
 * and the cc1/as/ld it runs together, and with TMPDIR = the build's own
 * directory, so that the compiler's temporaries (cc*.s, clang's *.o) are
 * removed with it; the child's pid, or -1. */
static pid_t spawn(char *const *argv, const char *log, pid_t group, const char *tmpdir) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid > 0) setpgid(pid, group ? group : pid); /* also here: no race with a signal before the child's own call */
  if (pid == 0) {
    setpgid(0, group);
    setenv("TMPDIR", tmpdir, 1);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) dup2(fd, 1), dup2(fd, 2), close(fd);
    execvp(argv[0], argv);
    fprintf(stderr, "cannot run '%s': %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  return pid;
}

/* Whether child pid exited with status 0. */
static bool reap(pid_t pid) {
  int st = 0;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return false;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* The C units of a split step.c (objs->c_source), all compiled at once with
 * step.c's compiler and flags (-c) into objects that replace them in objs. */
static bool compile_units(Arena *ar, const CgTarget *t, const char *cc, const char *inc, const char *tmpdir, CgObjs *objs,
                          char *err, size_t errlen) {
  pid_t pid[CG_MAX_OBJS], group = 0;
  char *obj[CG_MAX_OBJS], *log[CG_MAX_OBJS];
  bool ok = true;
  for (int i = 0; i < objs->n; i++) {
    pid[i] = -1;
    if (!objs->c_source[i]) continue;
    char *argv[128];
    int ac = split(ar, cc, argv, 32);
    ac += split(ar, CRAMC_STEP_CFLAGS, argv + ac, 16);
    for (int f = 0; t->cflags && t->cflags[f] && ac < 96; f++)
      if (strcmp(t->cflags[f], "-shared") != 0) argv[ac++] = (char *)t->cflags[f];
    obj[i] = arena_printf(ar, "%s.o", objs->path[i]);
    log[i] = arena_printf(ar, "%s.log", objs->path[i]);
    argv[ac++] = "-c";
    argv[ac++] = "-I";
    argv[ac++] = (char *)inc;
    argv[ac++] = "-o";
    argv[ac++] = obj[i];
    argv[ac++] = objs->path[i];
    argv[ac] = NULL;
    if ((pid[i] = spawn(argv, log[i], group, tmpdir)) < 0)
      ok = cg_fail(err, errlen, "cannot start the C compiler: %s", strerror(errno));
    else if (!group) group = pid[i], cg_cleanup_child(group); /* one group: a signal stops every unit's compiler */
  }
  for (int i = 0; i < objs->n; i++) {
    if (!objs->c_source[i]) continue;
    bool built = pid[i] >= 0 && reap(pid[i]);
    if (!built && ok) {
      char line[400];
      log_line(log[i], line, sizeof line);
      ok = cg_fail(err, errlen, "C compiler '%s' failed on %s%s%s", cc, objs->path[i], *line ? ": " : "", line);
    }
    unlink(log[i]);
    unlink(objs->path[i]);
    snprintf(objs->path[i], sizeof objs->path[i], "%s", obj[i]); /* removed with the other objects */
    objs->c_source[i] = false;
  }
  cg_cleanup_child(0);
  return ok;
}

bool cg_build_target(const CgTarget *t, const Graph *fwd, const CgOptions *o, const char *output, char *err, size_t errlen) {
  const char *libdir = o->libdir && *o->libdir ? o->libdir : getenv("CRAMC_LIBDIR");
  if (!libdir || !*libdir) libdir = t->default_libdir;
  if (!*libdir) return cg_fail(err, errlen, "no %s runtime library directory: set CRAMC_LIBDIR or pass --libdir", t->name);
  Arena *ar = arena_new();
  bool ok = false;
  char *tmpdir = NULL, *csrc = NULL, *clog = NULL, *tmpout = NULL;
  CgObjs *objs = NULL;
  char *lib = arena_printf(ar, "%s/libcram_%s_step.a", libdir, t->name);
  char *inc = arena_printf(ar, "%s/include", libdir);
  char *hdr = arena_printf(ar, "%s/cram_%s_step.h", inc, t->name);
  if (access(lib, R_OK) != 0 || access(hdr, R_OK) != 0) {
    cg_fail(err, errlen, "%s runtime library not found: %s (build the cram_%s_step target, or set CRAMC_LIBDIR / --libdir)",
            t->name, access(lib, R_OK) != 0 ? lib : hdr, t->name);
    goto out;
  }
  const char *tbase = getenv("TMPDIR");
  tmpdir = arena_printf(ar, "%s/cramc-XXXXXX", tbase && *tbase ? tbase : "/tmp");
  if (!mkdtemp(tmpdir)) {
    cg_fail(err, errlen, "cannot create a temporary directory in %s: %s", tbase && *tbase ? tbase : "/tmp", strerror(errno));
    tmpdir = NULL;
    goto out;
  }
  cg_cleanup_begin(tmpdir); /* a signal from here on leaves nothing behind */
  csrc = arena_printf(ar, "%s/step.c", tmpdir);
  clog = arena_printf(ar, "%s/cc.log", tmpdir);
  FILE *f = fopen(csrc, "w");
  if (!f) {
    cg_fail(err, errlen, "cannot write '%s': %s", csrc, strerror(errno));
    goto out;
  }
  objs = calloc(1, sizeof *objs);
  bool wrote = objs && (t->emit_objs ? t->emit_objs(fwd, o, f, tmpdir, objs, err, errlen) : t->emit(fwd, o, f, err, errlen));
  if (!objs) cg_fail(err, errlen, "out of memory");
  if (fclose(f) != 0 && wrote) wrote = cg_fail(err, errlen, "cannot write '%s'", csrc);
  if (!wrote) goto out;

  /* Temp file next to the output, so the rename is atomic (same filesystem). */
  tmpout = arena_printf(ar, "%s.tmp.%ld", output, (long)getpid());
  cg_cleanup_output(tmpout);
  const char *cc = pick_cc(o);
  if (!compile_units(ar, t, cc, inc, tmpdir, objs, err, errlen)) goto out;
  char *argv[128];
  int ac = split(ar, cc, argv, 32);
  if (!ac) {
    cg_fail(err, errlen, "empty C compiler name");
    goto out;
  }
  ac += split(ar, CRAMC_STEP_CFLAGS, argv + ac, 16);
  for (int i = 0; t->cflags && t->cflags[i] && ac < 96; i++) argv[ac++] = (char *)t->cflags[i];
  argv[ac++] = "-I";
  argv[ac++] = inc;
  argv[ac++] = "-o";
  argv[ac++] = tmpout;
  argv[ac++] = csrc;
  for (int i = 0; i < objs->n && i < CG_MAX_OBJS; i++) argv[ac++] = objs->path[i];
  argv[ac++] = lib;
  for (int i = 0; t->libs && t->libs[i] && ac < 126; i++) argv[ac++] = (char *)t->libs[i];
  argv[ac] = NULL;
  pid_t pid = spawn(argv, clog, 0, tmpdir);
  if (pid < 0) {
    cg_fail(err, errlen, "cannot start the C compiler: %s", strerror(errno));
    goto out;
  }
  cg_cleanup_child(pid);
  bool built = reap(pid);
  cg_cleanup_child(0);
  if (!built) {
    char line[400];
    log_line(clog, line, sizeof line);
    cg_fail(err, errlen, "C compiler '%s' failed building %s%s%s", cc, output, *line ? ": " : "", line);
    unlink(tmpout);
    goto out;
  }
  if (rename(tmpout, output) != 0) {
    cg_fail(err, errlen, "cannot write '%s': %s", output, strerror(errno));
    unlink(tmpout);
    goto out;
  }
  ok = true;
out:
  cg_cleanup_end();
  for (int i = 0; objs && i < objs->n && i < CG_MAX_OBJS; i++) unlink(objs->path[i]);
  free(objs);
  if (csrc) unlink(csrc);
  if (clog) unlink(clog);
  if (tmpdir) rmdir(tmpdir);
  arena_free(ar);
  return ok;
}

bool cg_train_graphs(const Graph *fwd, const CgOptions *o, Graph *G[3], char *err, size_t errlen) {
  G[0] = G[1] = G[2] = NULL;
  char *dbuf = NULL;
  size_t dlen = 0;
  FILE *dmem = open_memstream(&dbuf, &dlen);
  if (!dmem) return cg_fail(err, errlen, "out of memory");
  Diag d;
  diag_init(&d, dmem);
  Graph *ad = pass_autodiff(fwd, &d), *acc0 = ad ? pass_accumulate(ad, &d) : NULL;
  AdamWOptions ao = pass_adamw_defaults();
  Graph *up0 = acc0 ? pass_update(fwd, &ao, &d) : NULL;
  Graph *ev = up0 ? pass_eval_metrics(fwd, &d) : NULL; /* eval's forward: + the accuracy counts */
  if (ev && !o) {                                      /* as built: the interp target runs them so */
    G[0] = ev, G[1] = acc0, G[2] = up0;
    ev = acc0 = up0 = NULL;
  } else if (ev) {
    PassOptions po = { .opt_level = o->opt_level };
    PassCtx cx = { &d, &po };
    G[0] = pass_pipeline_run(ev, &cx);
    G[1] = G[0] ? pass_pipeline_run(acc0, &cx) : NULL;
    G[2] = G[1] ? pass_pipeline_run(up0, &cx) : NULL;
  }
  ir_graph_free(ad), ir_graph_free(acc0), ir_graph_free(up0), ir_graph_free(ev);
  fclose(dmem);
  bool ok = G[2] != NULL;
  if (!ok) {
    for (int i = 0; i < 3; i++) ir_graph_free(G[i]), G[i] = NULL;
    /* every diagnostic line (a failing pass may report several), without the last newline */
    size_t n = dbuf ? strlen(dbuf) : 0;
    while (n && dbuf[n - 1] == '\n') dbuf[--n] = '\0';
    cg_fail(err, errlen, "building the train graphs failed: %s", n ? dbuf : "unknown reason");
  }
  free(dbuf);
  return ok;
}
