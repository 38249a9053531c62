/* sweep.c - running a sweep: lock, compile (cached), train, evaluate,
 * record; see sweep.h. Compiler and trainer run as child processes (cramc,
 * `cram train`, `cram eval`), so a variant that crashes or diverges is a row
 * of the table and never takes the sweep down with it. */
#define _GNU_SOURCE /* wait4 */
#include "sweep.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checksum.h"
#include "loader.h"
#include "sweep_impl.h"
#include "sweep_json.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void sweep_say(const cram_sweep_opts *o, const char *fmt, ...) {
  if (!o->log) return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  o->log(line, o->user);
}

int sweep_mkdir_p(const char *path) {
  char b[PATHMAX];
  if (snprintf(b, sizeof b, "%s", path) >= (int)sizeof b) return errno = ENAMETOOLONG, -1;
  for (char *c = b + 1; *c; c++) {
    if (*c != '/') continue;
    *c = 0;
    if (mkdir(b, 0777) && errno != EEXIST) return -1;
    *c = '/';
  }
  return mkdir(b, 0777) && errno != EEXIST ? -1 : 0;
}

int sweep_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

/* Whole file as a NUL-terminated string (NULL on error); *len without the NUL. */
char *sweep_slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *b = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n + 65536 + 1 > cap) {
      cap = cap ? 2 * cap : 65536 * 2;
      char *t = realloc(b, cap);
      if (!t) {
        free(b);
        fclose(f);
        return NULL;
      }
      b = t;
    }
    size_t r = fread(b + n, 1, 65536, f);
    n += r;
    if (r < 65536) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(b);
    return NULL;
  }
  b[n] = 0;
  if (len) *len = n;
  return b;
}

/* ---- the lock: one sweep per output directory ------------------------------ */

static cram_status take_lock(const char *dir, int *fd_out, cram_err *err) {
  char p[PATHMAX];
  snprintf(p, sizeof p, "%s/.sweep.lock", dir);
  int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) return cram_err_set(err, CRAM_E_IO, "%s: %s", p, strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = "?";
    ssize_t r = pread(fd, pid, sizeof pid - 1, 0);
    pid[r > 0 ? r : 1] = 0;
    pid[strcspn(pid, "\n")] = 0;
    close(fd);
    return cram_err_set(err, CRAM_E_IO, "%s: another cram sweep (pid %s) is writing into this directory", dir, pid);
  }
  char b[32];
  int n = snprintf(b, sizeof b, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, b, (size_t)n, 0) != n) {
    close(fd);
    return cram_err_set(err, CRAM_E_IO, "%s: %s", p, strerror(errno));
  }
  *fd_out = fd;
  return CRAM_OK;
}

/* ---- child processes -------------------------------------------------------- */

static double loadavg1(void) {
  FILE *f = fopen("/proc/loadavg", "r");
  double v = NAN;
  if (f) {
    if (fscanf(f, "%lf", &v) != 1) v = NAN;
    fclose(f);
  }
  return v;
}

/* Runs argv with stdout and stderr appended to log_path; forwards a stop
 * request as SIGTERM (cram train checkpoints and exits 130 on it). */
cram_status sweep_run_child(const cram_sweep_opts *o, char *const argv[], const char *log_path, child_result *r, cram_err *err) {
  int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
  if (fd < 0) return cram_err_set(err, CRAM_E_IO, "%s: %s", log_path, strerror(errno));
  double t0 = now_s();
  pid_t pid = fork();
  if (pid < 0) {
    close(fd);
    return cram_err_set(err, CRAM_E_IO, "fork: %s", strerror(errno));
  }
  if (pid == 0) {
    dup2(fd, 1);
    dup2(fd, 2);
    execvp(argv[0], argv);
    dprintf(2, "cram sweep: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(fd);
  int status = 0, forwarded = 0;
  struct rusage ru;
  memset(&ru, 0, sizeof ru);
  double load_sum = 0, next_sample = t0;
  int load_n = 0;
  for (;;) {
    pid_t w = wait4(pid, &status, WNOHANG, &ru);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) return cram_err_set(err, CRAM_E_IO, "wait: %s", strerror(errno));
    if (o->stop && *o->stop && !forwarded) {
      kill(pid, SIGTERM);
      forwarded = 1;
    }
    double t = now_s();
    if (t >= next_sample) {
      double l = loadavg1();
      if (isfinite(l)) load_sum += l, load_n++;
      next_sample = t + 1.0;
    }
    struct timespec nap = { 0, 50 * 1000 * 1000 };
    nanosleep(&nap, NULL);
  }
  r->wall_s = now_s() - t0;
  r->code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r->maxrss_mib = (double)ru.ru_maxrss / 1024.0;
  r->load_mean = load_n ? load_sum / load_n : NAN;
  return CRAM_OK;
}

/* The last non-empty lines of a log (at most `lines`), joined by " | ". */
void sweep_log_tail(const char *path, int lines, char *out, size_t cap) {
  out[0] = 0;
  size_t n;
  char *t = sweep_slurp(path, &n);
  if (!t) return;
  while (n && (t[n - 1] == '\n' || t[n - 1] == '\r')) t[--n] = 0;
  char *start = t + n;
  for (int k = 0; k < lines && start > t; k++) {
    char *c = start - 1;
    while (c > t && c[-1] != '\n') c--;
    start = c;
    while (start > t && start[-1] == '\n') start--;
  }
  while (*start == '\n') start++;
  size_t o = 0;
  for (char *c = start; *c && o + 4 < cap; c++) {
    if (*c == '\n') {
      if (o + 4 >= cap) break;
      memcpy(out + o, " | ", 3), o += 3;
    } else if ((unsigned char)*c >= 0x20 || *c == '\t') {
      out[o++] = *c;
    }
  }
  out[o] = 0;
  free(t);
}

/* The "error:" lines of a compiler log joined by " | " (else its tail): the
 * diagnostic a failed row shows. */
static void error_lines(const char *path, char *out, size_t cap) {
  out[0] = 0;
  char *t = sweep_slurp(path, NULL);
  size_t o = 0;
  for (char *line = t; line && *line;) {
    char *end = strchr(line, '\n');
    if (end) *end = 0;
    if (strstr(line, "error:") && o + 8 < cap) o += (size_t)snprintf(out + o, cap - o, "%s%s", o ? " | " : "", line);
    if (!end) break;
    line = end + 1;
  }
  free(t);
  if (o >= cap) o = cap - 1;
  out[o] = 0;
  if (!o) sweep_log_tail(path, 3, out, cap);
}

/* ---- finding cramc ------------------------------------------------------------ */

/* NULL when `cram` is not a path with a folder part. */
static int beside(const char *cram, const char *rel, char *out, size_t cap) {
  const char *slash = strrchr(cram, '/');
  if (!slash) return -1;
  snprintf(out, cap, "%.*s/%s", (int)(slash - cram), cram, rel);
  return access(out, X_OK);
}

static void find_cramc(const cram_sweep_opts *o, char *out, size_t cap) {
  const char *env = getenv("CRAMC");
  if (o->cramc) snprintf(out, cap, "%s", o->cramc);
  else if (env && *env) snprintf(out, cap, "%s", env);
  else if (beside(o->cram, "cramc", out, cap) == 0) return;           /* installed side by side */
  else if (beside(o->cram, "../driver/cramc", out, cap) == 0) return; /* the build tree */
  else snprintf(out, cap, "cramc");                                   /* PATH */
}

/* ---- keys ---------------------------------------------------------------------- */

uint64_t sweep_hash_str(uint64_t h, const char *s) {
  h = cram_fnv1a64(h, s, strlen(s));
  return cram_fnv1a64(h, "", 1); /* separator: "ab","c" != "a","bc" */
}

/* Build key: the model text, its overrides, the target and the compiler
 * binary (size and mtime stand for its version: a rebuilt cramc recompiles). */
cram_status sweep_build_key(const cram_sweep_spec *s, const char *model, char *const *defines, int ndefines, const char *cramc,
                            uint64_t *key, cram_err *err) {
  size_t n;
  char *text = sweep_slurp(model, &n);
  if (!text) return cram_err_set(err, CRAM_E_IO, "%s: %s", model, strerror(errno ? errno : EIO));
  uint64_t h = cram_fnv1a64(CRAM_FNV1A64_INIT, text, n);
  free(text);
  for (int i = 0; i < ndefines; i++) h = sweep_hash_str(h, defines[i]);
  h = sweep_hash_str(h, s->target);
  struct stat st;
  char id[96] = "PATH";
  if (strchr(cramc, '/') && stat(cramc, &st) == 0)
    snprintf(id, sizeof id, "%lld:%lld", (long long)st.st_size, (long long)st.st_mtime);
  *key = sweep_hash_str(h, id);
  return CRAM_OK;
}

/* Result key: the artifact and everything the run depends on. */
static uint64_t result_key(const cram_sweep_spec *s, uint64_t akey) {
  char b[256];
  snprintf(b, sizeof b, "%016" PRIx64 " %.17g %" PRIu64 " %" PRIu64 " %.17g %" PRIu64 " %" PRIu64 " %" PRIu64, akey, s->budget_s,
           s->budget_tokens, s->budget_steps, s->budget_flops, s->seed, s->eval_seqs, s->eval_every);
  uint64_t h = sweep_hash_str(CRAM_FNV1A64_INIT, b);
  h = sweep_hash_str(h, s->data);
  for (int i = 0; i < s->ntrain_args; i++) h = sweep_hash_str(h, s->train_args[i]);
  return h;
}

/* ---- one variant ------------------------------------------------------------- */

typedef struct vpaths {
  char dir[PATHMAX], run[PATHMAX], result[PATHMAX], compile_log[PATHMAX], train_log[PATHMAX], eval_log[PATHMAX];
  char artifact[PATHMAX];
} vpaths;

static int variant_paths(const cram_sweep_opts *o, const char *name, uint64_t akey, vpaths *p) {
  int bad = snprintf(p->dir, sizeof p->dir, "%s/variants/%s", o->out_dir, name) >= (int)sizeof p->dir - 32;
  bad |= snprintf(p->run, sizeof p->run, "%s/run", p->dir) < 0;
  bad |= snprintf(p->result, sizeof p->result, "%s/result.json", p->dir) < 0;
  bad |= snprintf(p->compile_log, sizeof p->compile_log, "%s/compile.log", p->dir) < 0;
  bad |= snprintf(p->train_log, sizeof p->train_log, "%s/train.log", p->dir) < 0;
  bad |= snprintf(p->eval_log, sizeof p->eval_log, "%s/eval.log", p->dir) < 0;
  bad |= snprintf(p->artifact, sizeof p->artifact, "%s/cache/%016" PRIx64 ".so", o->out_dir, akey) < 0;
  return bad ? -1 : 0;
}

/* Compiles b into the cache (<key>.so) unless it is there already. A
 * refused model is cached too (<key>.err, its diagnostic): the same source
 * fails the same way. */
cram_status sweep_build(const cram_sweep_spec *s, const cram_sweep_opts *o, const char *cramc, const sweep_build_req *b,
                        sweep_build_out *out, cram_err *err) {
  char meta[PATHMAX], errf[PATHMAX];
  out->refused = 0, out->why[0] = 0, out->compile_s = NAN;
  int bad = snprintf(out->so, sizeof out->so, "%s/cache/%016" PRIx64 ".so", o->out_dir, b->key) >= (int)sizeof out->so;
  bad |= snprintf(meta, sizeof meta, "%s/cache/%016" PRIx64 ".json", o->out_dir, b->key) >= (int)sizeof meta;
  bad |= snprintf(errf, sizeof errf, "%s/cache/%016" PRIx64 ".err", o->out_dir, b->key) >= (int)sizeof errf;
  if (bad) return cram_err_set(err, CRAM_E_ARG, "%s: path too long", o->out_dir);
  char *cached_err = sweep_slurp(errf, NULL);
  if (cached_err) {
    out->refused = 1;
    snprintf(out->why, sizeof out->why, "%s", cached_err);
    free(cached_err);
    sweep_say(o, "%s: compile error cached (%s)", b->label, errf);
    return CRAM_OK;
  }
  if (sweep_exists(out->so)) {
    char *m = sweep_slurp(meta, NULL);
    out->compile_s = m ? cram_json_num(m, "compile_s") : NAN;
    free(m);
    sweep_say(o, "%s: compiled artifact cached (%s)", b->label, out->so);
    return CRAM_OK;
  }
  char tmp[PATHMAX + 16];
  snprintf(tmp, sizeof tmp, "%s.tmp%ld", out->so, (long)getpid());
  char *argv[MAX_ARGV];
  int a = 0;
  argv[a++] = (char *)cramc;
  argv[a++] = (char *)b->model;
  for (int i = 0; i < b->ndefines; i++) argv[a++] = "-D", argv[a++] = b->defines[i];
  argv[a++] = "--target";
  argv[a++] = s->target;
  argv[a++] = "-o";
  argv[a++] = tmp;
  argv[a] = NULL;
  sweep_say(o, "%s: compiling %s (--target %s)", b->label, b->model, s->target);
  remove(b->log);
  child_result r;
  cram_status st = sweep_run_child(o, argv, b->log, &r, err);
  if (st) return st;
  if (r.code != 0) {
    remove(tmp);
    if (o->stop && *o->stop) return cram_err_set(err, CRAM_E_INTERRUPTED, "interrupted while compiling %s", b->label);
    out->refused = 1;
    error_lines(b->log, out->why, sizeof out->why);
    if (!out->why[0]) snprintf(out->why, sizeof out->why, "cramc exited with status %d", r.code);
    FILE *f = r.code == 1 ? fopen(errf, "w") : NULL; /* 1 = the model was refused; other codes may not repeat */
    if (f) fputs(out->why, f), fclose(f);
    return CRAM_OK;
  }
  if (rename(tmp, out->so) != 0) return cram_err_set(err, CRAM_E_IO, "%s: %s", out->so, strerror(errno));
  out->compile_s = r.wall_s;
  FILE *f = fopen(meta, "w");
  if (f) {
    fprintf(f, "{\"compile_s\":%.3f}\n", r.wall_s);
    fclose(f);
  }
  return CRAM_OK;
}

/* The variant's own build: a refusal makes its row a compile error. */
static cram_status compile_variant(const cram_sweep_spec *s, const cram_sweep_opts *o, const cram_sweep_variant *v,
                                   const char *cramc, uint64_t akey, vpaths *p, cram_sweep_row *row, cram_err *err) {
  sweep_build_req b = { v->name, v->model, v->defines, v->ndefines, akey, p->compile_log };
  sweep_build_out out;
  cram_status st = sweep_build(s, o, cramc, &b, &out, err);
  if (st) return st;
  snprintf(p->artifact, sizeof p->artifact, "%s", out.so);
  row->compile_s = out.compile_s;
  if (out.refused) {
    row->outcome = CRAM_ROW_COMPILE_ERROR;
    snprintf(row->why, sizeof row->why, "%s", out.why);
  }
  return CRAM_OK;
}

/* Parameters and FLOPs per token from the artifact's metadata. */
static cram_status read_meta(const vpaths *p, cram_sweep_row *row, cram_err *err) {
  cram_step_lib lib;
  cram_status st = cram_step_load(&lib, p->artifact, err);
  if (st) return st;
  row->params = lib.api->meta->nparam_elems;
  row->flops_per_token = lib.api->meta->flops_per_token;
  cram_step_unload(&lib);
  return CRAM_OK;
}

/* Final numbers of a run from its metrics.jsonl. */
static void read_metrics(const char *run, cram_sweep_row *row) {
  char path[PATHMAX + 32];
  snprintf(path, sizeof path, "%s/metrics.jsonl", run);
  char *t = sweep_slurp(path, NULL);
  if (!t) return;
  double last[10];
  int nl = 0, total = 0;
  for (char *line = t; *line;) {
    char *end = strchr(line, '\n');
    if (end) *end = 0;
    if (line[0] == '{' && !strstr(line, "\"eval")) {
      double tok = cram_json_num(line, "tokens"), tm = cram_json_num(line, "time"), st = cram_json_num(line, "step"),
             loss = cram_json_num(line, "loss");
      if (isfinite(tok)) row->tokens = (uint64_t)tok;
      if (isfinite(tm)) row->train_s = tm;
      if (isfinite(st)) row->steps = (uint64_t)st;
      if (isfinite(loss) && cram_json_num(line, "skipped") != 1) last[total++ % 10] = loss, nl = nl < 10 ? nl + 1 : 10;
    }
    if (!end) break;
    line = end + 1;
  }
  free(t);
  double sum = 0;
  for (int i = 0; i < nl; i++) sum += last[i];
  row->train_loss = nl ? sum / nl : NAN;
  row->tok_s = row->train_s > 0 ? (double)row->tokens / row->train_s : NAN;
}

/* The budget and evaluation flags of `cram train`. */
static int budget_args(const cram_sweep_spec *s, char bufs[5][64], char **argv, int a) {
  if (s->budget_s > 0) {
    snprintf(bufs[0], 64, "%.17gs", s->budget_s);
    argv[a++] = "--budget", argv[a++] = bufs[0];
  }
  if (s->budget_tokens) {
    snprintf(bufs[1], 64, "%" PRIu64, s->budget_tokens);
    argv[a++] = "--tokens", argv[a++] = bufs[1];
  } else if (s->budget_steps) {
    snprintf(bufs[1], 64, "%" PRIu64, s->budget_steps);
    argv[a++] = "--steps", argv[a++] = bufs[1];
  } else if (s->budget_flops > 0) {
    snprintf(bufs[1], 64, "%.17g", s->budget_flops);
    argv[a++] = "--flops", argv[a++] = bufs[1];
  }
  if (s->eval_every) {
    snprintf(bufs[2], 64, "%" PRIu64, s->eval_every);
    snprintf(bufs[3], 64, "%" PRIu64, s->eval_seqs);
    argv[a++] = "--eval-every", argv[a++] = bufs[2];
    argv[a++] = "--eval-seqs", argv[a++] = bufs[3];
  }
  return a;
}

static cram_status train_variant(const cram_sweep_spec *s, const cram_sweep_opts *o, const cram_sweep_variant *v, const vpaths *p,
                                 cram_sweep_row *row, cram_err *err) {
  char ckpt[PATHMAX + 32], seed[32], bufs[5][64];
  snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", p->run);
  snprintf(seed, sizeof seed, "%" PRIu64, s->seed);
  char *argv[MAX_ARGV];
  int a = 0, resume = sweep_exists(ckpt);
  argv[a++] = (char *)o->cram;
  argv[a++] = "train";
  argv[a++] = (char *)p->artifact;
  argv[a++] = "--data";
  argv[a++] = s->data;
  if (resume) {
    argv[a++] = "--resume";
    argv[a++] = (char *)p->run;
  } else {
    char m[PATHMAX + 32];
    snprintf(m, sizeof m, "%s/metrics.jsonl", p->run); /* a run killed before its first checkpoint starts over */
    remove(m);
    remove(p->train_log);
    argv[a++] = "--out";
    argv[a++] = (char *)p->run;
    argv[a++] = "--seed";
    argv[a++] = seed;
    a = budget_args(s, bufs, argv, a);
    for (int i = 0; i < s->ntrain_args; i++) argv[a++] = s->train_args[i];
  }
  argv[a++] = "--progress-every";
  argv[a++] = "5s";
  argv[a] = NULL;
  sweep_say(o, "%s: %s training", v->name, resume ? "resuming" : "starting");
  child_result r;
  cram_status st = sweep_run_child(o, argv, p->train_log, &r, err);
  if (st) return st;
  if (r.code == 130 || (o->stop && *o->stop))
    return cram_err_set(err, CRAM_E_INTERRUPTED, "interrupted while training %s (checkpoint kept in %s)", v->name, p->run);
  row->peak_rss_mib = r.maxrss_mib;
  row->load_mean = r.load_mean;
  read_metrics(p->run, row);
  if (r.code == 3) {
    row->outcome = CRAM_ROW_DIVERGED;
    sweep_log_tail(p->train_log, 1, row->why, sizeof row->why);
  } else if (r.code != 0) {
    row->outcome = CRAM_ROW_FAILED;
    sweep_log_tail(p->train_log, 2, row->why, sizeof row->why);
    if (!row->why[0]) snprintf(row->why, sizeof row->why, "cram train exited with status %d", r.code);
  }
  return CRAM_OK;
}

static cram_status eval_variant(const cram_sweep_spec *s, const cram_sweep_opts *o, const cram_sweep_variant *v, const vpaths *p,
                                cram_sweep_row *row, cram_err *err) {
  char ckpt[PATHMAX + 32], seed[32], maxs[32];
  snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", p->run);
  snprintf(seed, sizeof seed, "%" PRIu64, s->seed);
  snprintf(maxs, sizeof maxs, "%" PRIu64, s->eval_seqs);
  char *argv[16];
  int a = 0;
  argv[a++] = (char *)o->cram, argv[a++] = "eval", argv[a++] = (char *)p->artifact, argv[a++] = "--data";
  argv[a++] = s->data, argv[a++] = "--checkpoint", argv[a++] = ckpt, argv[a++] = "--seed", argv[a++] = seed;
  argv[a++] = "--json";
  if (s->eval_seqs) argv[a++] = "--max-seqs", argv[a++] = maxs;
  argv[a] = NULL;
  remove(p->eval_log);
  child_result r;
  cram_status st = sweep_run_child(o, argv, p->eval_log, &r, err);
  if (st) return st;
  if (o->stop && *o->stop) return cram_err_set(err, CRAM_E_INTERRUPTED, "interrupted while evaluating %s", v->name);
  char *t = r.code == 0 ? sweep_slurp(p->eval_log, NULL) : NULL;
  const char *js = t ? strchr(t, '{') : NULL;
  row->heldout_loss = js ? cram_json_num(js, "loss") : NAN;
  row->heldout_accuracy = js ? cram_json_num(js, "accuracy") : NAN;
  double n = js ? cram_json_num(js, "sequences") : NAN;
  row->heldout_seqs = isfinite(n) ? (uint64_t)n : 0;
  free(t);
  if (!isfinite(row->heldout_loss)) {
    row->outcome = CRAM_ROW_FAILED;
    sweep_log_tail(p->eval_log, 2, row->why, sizeof row->why);
    if (!row->why[0]) snprintf(row->why, sizeof row->why, "cram eval exited with status %d", r.code);
  }
  return CRAM_OK;
}

/* The SPEC's downstream task for a pretrained variant (sweep_downstream.c), its row saved again with the metric. */
static cram_status downstream_step(const cram_sweep_spec *s, const cram_sweep_opts *o, const cram_sweep_variant *v,
                                   const char *cramc, const vpaths *p, uint64_t rkey, cram_sweep_row *row, cram_err *err) {
  if (!s->downstream.task || row->outcome != CRAM_ROW_DONE) return CRAM_OK;
  cram_status st = sweep_downstream(s, o, v, cramc, p->dir, p->run, rkey, row, err);
  if (st) return st;
  if (row->downstream_why[0]) sweep_say(o, "%s: no downstream metric: %s", v->name, row->downstream_why);
  return cram_sweep_row_save(p->result, rkey, row, err);
}

static cram_status run_variant(const cram_sweep_spec *s, const cram_sweep_opts *o, const cram_sweep_variant *v, const char *cramc,
                               cram_sweep_row *row, cram_err *err) {
  uint64_t akey = 0;
  cram_status st = sweep_build_key(s, v->model, v->defines, v->ndefines, cramc, &akey, err);
  if (st) return st;
  uint64_t rkey = result_key(s, akey);
  vpaths p;
  if (variant_paths(o, v->name, akey, &p)) return cram_err_set(err, CRAM_E_ARG, "%s: path too long", o->out_dir);
  if (sweep_mkdir_p(p.dir)) return cram_err_set(err, CRAM_E_IO, "%s: %s", p.dir, strerror(errno));
  if (cram_sweep_row_load(p.result, rkey, row) == 0 &&
      (!o->rerun_failed || row->outcome == CRAM_ROW_DONE || row->outcome == CRAM_ROW_COMPILE_ERROR)) {
    sweep_say(o, "%s: kept (%s)", v->name, cram_sweep_outcome_str(row->outcome));
    return downstream_step(s, o, v, cramc, &p, rkey, row, err);
  }
  char rk[32];
  snprintf(rk, sizeof rk, "%016" PRIx64, rkey);
  char keyfile[PATHMAX + 16];
  snprintf(keyfile, sizeof keyfile, "%s/key", p.dir);
  char *old = sweep_slurp(keyfile, NULL);
  if (old && strncmp(old, rk, 16) != 0) { /* the SPEC changed for this variant: start its run over */
    char ck[PATHMAX + 32];
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", p.run);
    remove(ck);
  }
  free(old);
  FILE *kf = fopen(keyfile, "w");
  if (kf) fprintf(kf, "%s\n", rk), fclose(kf);
  memset(row, 0, sizeof *row);
  snprintf(row->name, sizeof row->name, "%s", v->name);
  row->heldout_loss = row->heldout_accuracy = row->downstream = row->train_loss = row->tok_s = row->compile_s = row->load_mean =
    NAN;
  row->outcome = CRAM_ROW_DONE;
  if ((st = compile_variant(s, o, v, cramc, akey, &p, row, err))) return st;
  if (row->outcome == CRAM_ROW_DONE && (st = read_meta(&p, row, err))) {
    row->outcome = CRAM_ROW_FAILED;
    snprintf(row->why, sizeof row->why, "%.500s", err->msg);
    st = CRAM_OK;
  }
  if (row->outcome == CRAM_ROW_DONE && (st = train_variant(s, o, v, &p, row, err))) return st;
  if (row->outcome == CRAM_ROW_DONE && (st = eval_variant(s, o, v, &p, row, err))) return st;
  sweep_say(o, "%s: %s%s%s", v->name, cram_sweep_outcome_str(row->outcome), row->why[0] ? ": " : "", row->why);
  if ((st = cram_sweep_row_save(p.result, rkey, row, err))) return st;
  return downstream_step(s, o, v, cramc, &p, rkey, row, err);
}

const char *cram_sweep_outcome_str(cram_sweep_outcome o) {
  switch (o) {
  case CRAM_ROW_DONE: return "done";
  case CRAM_ROW_COMPILE_ERROR: return "compile error";
  case CRAM_ROW_DIVERGED: return "diverged";
  case CRAM_ROW_FAILED: return "failed";
  case CRAM_ROW_PENDING: return "pending";
  }
  return "?";
}

cram_status cram_sweep_run(const cram_sweep_spec *s, const cram_sweep_opts *o, cram_sweep_row *rows, cram_err *err) {
  if (sweep_mkdir_p(o->out_dir)) return cram_err_set(err, CRAM_E_IO, "%s: %s", o->out_dir, strerror(errno));
  char cache[PATHMAX];
  snprintf(cache, sizeof cache, "%s/cache", o->out_dir);
  if (sweep_mkdir_p(cache)) return cram_err_set(err, CRAM_E_IO, "%s: %s", cache, strerror(errno));
  int lock = -1;
  cram_status st = take_lock(o->out_dir, &lock, err);
  if (st) return st;
  char cramc[PATHMAX];
  find_cramc(o, cramc, sizeof cramc);
  for (int i = 0; i < s->nvariants; i++) {
    memset(&rows[i], 0, sizeof rows[i]);
    snprintf(rows[i].name, sizeof rows[i].name, "%s", s->variants[i].name);
    rows[i].outcome = CRAM_ROW_PENDING;
    rows[i].heldout_loss = rows[i].heldout_accuracy = rows[i].downstream = rows[i].train_loss = rows[i].tok_s =
      rows[i].compile_s = rows[i].load_mean = NAN;
  }
  for (int i = 0; i < s->nvariants && !st; i++) {
    if (o->stop && *o->stop) st = cram_err_set(err, CRAM_E_INTERRUPTED, "interrupted before %s", s->variants[i].name);
    else st = run_variant(s, o, &s->variants[i], cramc, &rows[i], err);
    if (st == CRAM_E_INTERRUPTED) rows[i].outcome = CRAM_ROW_PENDING;
  }
  cram_err rep = { 0 };
  cram_status rs = cram_sweep_report(s, o, rows, &rep);
  close(lock);
  if (!st && rs) {
    *err = rep;
    return rs;
  }
  return st;
}
