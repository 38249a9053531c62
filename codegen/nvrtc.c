/* nvrtc.c - the generated CUDA C to cubin (sm_80, sm_90) and PTX through
 * NVRTC, loaded with dlopen; one thread per architecture; a cache keyed by
 * the source hash. See nvrtc.h and docs/codegen.md. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nvrtc.h"

typedef int nvrtcResult;
typedef struct _nvrtcProgram *nvrtcProgram;

typedef struct Nvrtc {
  void *h;
  const char *(*GetErrorString)(nvrtcResult);
  nvrtcResult (*Version)(int *, int *);
  nvrtcResult (*CreateProgram)(nvrtcProgram *, const char *, const char *, int, const char *const *, const char *const *);
  nvrtcResult (*CompileProgram)(nvrtcProgram, int, const char *const *);
  nvrtcResult (*GetProgramLogSize)(nvrtcProgram, size_t *);
  nvrtcResult (*GetProgramLog)(nvrtcProgram, char *);
  nvrtcResult (*GetCUBINSize)(nvrtcProgram, size_t *);
  nvrtcResult (*GetCUBIN)(nvrtcProgram, char *);
  nvrtcResult (*GetPTXSize)(nvrtcProgram, size_t *);
  nvrtcResult (*GetPTX)(nvrtcProgram, char *);
  nvrtcResult (*DestroyProgram)(nvrtcProgram *);
} Nvrtc;

static bool nvrtc_load(Nvrtc *r, char *err, size_t errlen) {
  static const char *names[] = { "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so", "/usr/local/cuda/lib64/libnvrtc.so", NULL };
  memset(r, 0, sizeof *r);
  const char *env = getenv("CRAMC_NVRTC");
  if (env && *env) r->h = dlopen(env, RTLD_NOW | RTLD_LOCAL);
  for (int i = 0; !r->h && names[i]; i++) r->h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
  if (!r->h) {
    snprintf(err, errlen, "NVRTC not found (libnvrtc.so.13 from the CUDA toolkit; set CRAMC_NVRTC to its path): %s", dlerror());
    return false;
  }
#define SYM(f)                                               \
  do {                                                       \
    if (!(*(void **)&r->f = dlsym(r->h, "nvrtc" #f))) {      \
      snprintf(err, errlen, "NVRTC library lacks nvrtc" #f); \
      return false;                                          \
    }                                                        \
  } while (0)
  SYM(GetErrorString);
  SYM(Version);
  SYM(CreateProgram);
  SYM(CompileProgram);
  SYM(GetProgramLogSize);
  SYM(GetProgramLog);
  SYM(GetCUBINSize);
  SYM(GetCUBIN);
  SYM(GetPTXSize);
  SYM(GetPTX);
  SYM(DestroyProgram);
#undef SYM
  return true;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
  return h;
}

typedef struct Job {
  const Nvrtc *r;
  const char *src, *name;
  const CgEmbedded *hdr; /* the headers the source #includes by name */
  int nhdr;
  const char *const *extra;
  const char *inc; /* "-I<CUDA include dir>" (cuda_bf16.h), or NULL */
  CgCubin *out;
  char err[1024];
  bool ok;
} Job;

/* "name(LINE): error: msg" -> the kernel around LINE and the message */
static void explain(const char *src, const char *name, const char *log, int sm, bool ptx, char *err, size_t errlen) {
  const char *e = strstr(log, ": error");
  if (!e) e = strstr(log, "error");
  long line = 0;
  const char *ls = e ? e : log;
  while (ls > log && ls[-1] != '\n') ls--;
  const char *paren = strchr(ls, '(');
  if (paren && paren < (e ? e : ls + strlen(ls))) line = strtol(paren + 1, NULL, 10);
  const char *msg = e ? e : log;
  size_t mlen = strcspn(msg, "\n");
  if (line && ((size_t)(paren - ls) != strlen(name) || strncmp(ls, name, strlen(name)))) { /* in a library header */
    snprintf(err, errlen, "nvrtc (%s_%d): %.*s:%ld%.*s", ptx ? "compute" : "sm", sm, (int)(paren - ls), ls, line, (int)mlen, msg);
    return;
  }
  char kname[128] = "?";
  const char *p = src;
  for (long l = 1; *p && l < line; l++) {
    const char *k = strstr(p, "__launch_bounds__"), *f = strstr(p, "__noinline__ void ");
    const char *nl = strchr(p, '\n');
    if (k && (!nl || k < nl)) {
      const char *nm = strchr(k, ')');
      if (nm) sscanf(nm + 1, " %127[A-Za-z0-9_]", kname);
    } else if (f && (!nl || f < nl)) sscanf(f + strlen("__noinline__ void "), "%127[A-Za-z0-9_]", kname);
    if (!nl) break;
    p = nl + 1;
  }
  if (!line) {
    snprintf(err, errlen, "nvrtc (%s_%d): %.*s", ptx ? "compute" : "sm", sm, (int)mlen, msg);
    return;
  }
  snprintf(err, errlen, "nvrtc (%s_%d): kernel %s, %s:%ld%.*s", ptx ? "compute" : "sm", sm, kname, name, line, (int)mlen, msg);
}

static void *compile_one(void *arg) {
  Job *j = arg;
  const Nvrtc *r = j->r;
  char arch[32];
  snprintf(arch, sizeof arch, "--gpu-architecture=%s_%d", j->out->ptx ? "compute" : "sm", j->out->sm);
  const char *opts[32] = { arch, "--std=c++17", "-default-device", "-lineinfo" };
  int no = 4;
  if (j->inc) opts[no++] = j->inc;
  for (int i = 0; j->extra && j->extra[i] && no < 31; i++) opts[no++] = j->extra[i];
  nvrtcProgram prog = NULL;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  const char *htext[64], *hname[64];
  int nh = j->nhdr < 64 ? j->nhdr : 64;
  for (int i = 0; i < nh; i++) htext[i] = j->hdr[i].text, hname[i] = j->hdr[i].name;
  nvrtcResult rc = r->CreateProgram(&prog, j->src, j->name, nh, htext, hname);
  if (rc) {
    snprintf(j->err, sizeof j->err, "nvrtcCreateProgram: %s", r->GetErrorString(rc));
    return NULL;
  }
  rc = r->CompileProgram(prog, no, opts);
  if (rc) {
    size_t n = 0;
    r->GetProgramLogSize(prog, &n);
    char *log = calloc(n + 1, 1);
    if (log) r->GetProgramLog(prog, log);
    explain(j->src, j->name, log ? log : "", j->out->sm, j->out->ptx, j->err, sizeof j->err);
    free(log);
    r->DestroyProgram(&prog);
    return NULL;
  }
  size_t n = 0;
  rc = j->out->ptx ? r->GetPTXSize(prog, &n) : r->GetCUBINSize(prog, &n);
  if (!rc && (j->out->data = malloc(n ? n : 1)))
    rc = j->out->ptx ? r->GetPTX(prog, (char *)j->out->data) : r->GetCUBIN(prog, (char *)j->out->data);
  if (rc || !j->out->data)
    snprintf(j->err, sizeof j->err, "nvrtc: cannot fetch the %s: %s", j->out->ptx ? "PTX" : "cubin",
             rc ? r->GetErrorString(rc) : "out of memory");
  else j->out->len = n, j->ok = true;
  r->DestroyProgram(&prog);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  j->out->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  return NULL;
}

static bool cache_dir(char *buf, size_t len) {
  const char *e = getenv("CRAMC_NVRTC_CACHE");
  if (e && !strcmp(e, "0")) return false;
  const char *d = getenv("CRAMC_CACHE_DIR"), *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  if (d && *d) snprintf(buf, len, "%s", d);
  else if (x && *x) snprintf(buf, len, "%s/cramc", x);
  else if (home && *home) snprintf(buf, len, "%s/.cache/cramc", home);
  else return false;
  return true;
}
static void mkdirs(const char *path) {
  char tmp[1024];
  snprintf(tmp, sizeof tmp, "%s", path);
  for (char *p = tmp + 1; *p; p++)
    if (*p == '/') *p = '\0', mkdir(tmp, 0777), *p = '/';
  mkdir(tmp, 0777);
}

/* The toolkit's include directory, which the kernel library's #include <cuda_bf16.h>
 * needs (NVRTC searches no directory by itself): $CRAMC_CUDA_INCLUDE, else the
 * include/ next to the loaded libnvrtc (lib64/.. or targets/<arch>/lib/..),
 * else $CUDA_HOME/include, /usr/local/cuda/include. "" when none has it. */
static void cuda_include(const Nvrtc *r, char *opt, size_t n) {
  char cand[4][600] = { { 0 } };
  const char *env = getenv("CRAMC_CUDA_INCLUDE");
  if (env && *env) snprintf(cand[0], sizeof cand[0], "%s", env);
  Dl_info info;
  if (dladdr(*(void **)&r->Version, &info) && info.dli_fname) {
    char real[PATH_MAX];
    const char *lib = realpath(info.dli_fname, real) ? real : info.dli_fname;
    const char *slash = strrchr(lib, '/');
    if (slash) snprintf(cand[1], sizeof cand[1], "%.*s/../include", (int)(slash - lib), lib);
  }
  env = getenv("CUDA_HOME");
  if (env && *env) snprintf(cand[2], sizeof cand[2], "%s/include", env);
  snprintf(cand[3], sizeof cand[3], "/usr/local/cuda/include");
  opt[0] = '\0';
  for (int i = 0; i < 4; i++) {
    char hdr[700];
    snprintf(hdr, sizeof hdr, "%.599s/cuda_bf16.h", cand[i]);
    if (cand[i][0] && access(hdr, R_OK) == 0) {
      snprintf(opt, n, "-I%.599s", cand[i]);
      return;
    }
  }
}

bool cg_nvrtc_compile(const char *src, const char *name, const CgEmbedded *hdr, int nhdr, const char *const *extra_opts,
                      CgCubin *out, int n, char *err, size_t errlen) {
  if (nhdr > 64) {
    snprintf(err, errlen, "nvrtc: more than 64 headers");
    return false;
  }
  Nvrtc r;
  if (!nvrtc_load(&r, err, errlen)) return false; /* (a half-loaded libnvrtc stays: see the end) */
  int maj = 0, min = 0;
  r.Version(&maj, &min);
  char inc[640];
  cuda_include(&r, inc, sizeof inc);
  uint64_t h = fnv(0xcbf29ce484222325ull, src, strlen(src));
  h = fnv(h, inc, strlen(inc) + 1);
  for (int i = 0; i < nhdr; i++) h = fnv(fnv(h, hdr[i].name, strlen(hdr[i].name) + 1), hdr[i].text, strlen(hdr[i].text) + 1);
  h = fnv(h, &maj, sizeof maj), h = fnv(h, &min, sizeof min);
  for (int i = 0; extra_opts && extra_opts[i]; i++) h = fnv(h, extra_opts[i], strlen(extra_opts[i]) + 1);
  char dir[900], path[n > 0 ? n : 1][1100];
  bool cache = cache_dir(dir, sizeof dir);
  Job *jobs = calloc((size_t)(n > 0 ? n : 1), sizeof *jobs);
  pthread_t *th = calloc((size_t)(n > 0 ? n : 1), sizeof *th);
  bool *started = calloc((size_t)(n > 0 ? n : 1), sizeof *started);
  bool ok = jobs && th && started;
  if (!ok) snprintf(err, errlen, "out of memory");
  for (int i = 0; ok && i < n; i++) {
    out[i].data = NULL, out[i].len = 0, out[i].seconds = 0, out[i].cached = false;
    jobs[i] = (Job){ &r, src, name, hdr, nhdr, extra_opts, inc[0] ? inc : NULL, &out[i], "", false };
    if (cache) {
      snprintf(path[i], sizeof path[i], "%s/nvrtc/%016" PRIx64 "-%s%d.bin", dir, h, out[i].ptx ? "ptx" : "sm", out[i].sm);
      FILE *f = fopen(path[i], "rb");
      if (f) {
        fseek(f, 0, SEEK_END);
        long len = ftell(f);
        fseek(f, 0, SEEK_SET);
        if (len > 0 && (out[i].data = malloc((size_t)len)) && fread(out[i].data, 1, (size_t)len, f) == (size_t)len) {
          out[i].len = (size_t)len, out[i].cached = true, jobs[i].ok = true;
          fclose(f);
          continue;
        }
        free(out[i].data), out[i].data = NULL;
        fclose(f);
      }
    }
    pthread_attr_t at; /* NVRTC's front end recurses deeply: give it a main-thread-sized stack */
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, (size_t)256 << 20);
    started[i] = pthread_create(&th[i], &at, compile_one, &jobs[i]) == 0;
    pthread_attr_destroy(&at);
    if (!started[i]) compile_one(&jobs[i]);
  }
  for (int i = 0; jobs && th && started && i < n; i++) { /* every thread, even after a failure: jobs[] is freed below */
    if (started[i]) pthread_join(th[i], NULL);
    if (!jobs[i].ok && ok) {
      snprintf(err, errlen, "%s", jobs[i].err);
      ok = false;
    }
  }
  for (int i = 0; ok && cache && i < n; i++) {
    if (out[i].cached) continue;
    char d2[1000], tmp[1200];
    snprintf(d2, sizeof d2, "%s/nvrtc", dir);
    mkdirs(d2);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path[i], (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) continue; /* the cache is best effort */
    bool w = fwrite(out[i].data, 1, out[i].len, f) == out[i].len;
    if (fclose(f) || !w || rename(tmp, path[i])) unlink(tmp);
  }
  if (!ok) cg_nvrtc_free(out, n);
  free(jobs), free(th), free(started);
  /* libnvrtc stays loaded: it keeps one-time allocations in its own data,
   * which dlclose would turn into leaks (LeakSanitizer); a second dlopen is
   * then only a reference count. */
  return ok;
}

void cg_nvrtc_free(CgCubin *out, int n) {
  for (int i = 0; i < n; i++) free(out[i].data), out[i].data = NULL, out[i].len = 0;
}
