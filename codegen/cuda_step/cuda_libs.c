/* cuda_libs.c - the search of cuda_libs.h: the places CUDA installations put
 * cuBLASLt, tried in a fixed order, every one named when all fail. Python's
 * installs are found from the python3 executables on $PATH and their
 * lib/python3.N folders, without running Python (a step must not spawn one). */
#define _GNU_SOURCE
#include "cuda_libs.h"

#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <link.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const cublaslt_names[] = { "libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so", NULL };
/* CUDA 13 wheels (nvidia-cublas) share one folder; CUDA 12 ones (nvidia-cublas-cu12) have their own */
static const char *const cublaslt_wheels[] = { "nvidia/cu13/lib", "nvidia/cublas/lib", NULL };
const cram_cuda_lib cram_cuda_lib_cublaslt = { "cuBLASLt", cublaslt_names, cublaslt_wheels };

cram_cuda_search cram_cuda_search_from_env(void) {
  cram_cuda_search s = { getenv("CUDA_HOME"), getenv("CUDA_PATH"), getenv("PATH"), getenv("HOME"), "" };
  return s;
}

#define MAX_PLACES 64
#define MAX_PY     8 /* python3.N folders per prefix */

/* One search: the places already looked at (so a folder reached twice is
 * tried once) and the message listing them. */
typedef struct Search {
  const cram_cuda_lib *lib;
  char *tried;
  size_t cap, len;
  bool truncated;
  char seen[MAX_PLACES][PATH_MAX];
  int nseen;
  void *h;
  char *found;
  size_t found_cap;
} Search;

static void note(Search *S, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(Search *S, const char *fmt, ...) {
  if (S->truncated || !S->cap) return;
  char buf[PATH_MAX + 256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  const char *sep = S->len ? "; " : "";
  size_t need = strlen(sep) + strlen(buf);
  if (S->len + need + 4 > S->cap) { /* keep room for "..." */
    if (S->len + 4 <= S->cap) memcpy(S->tried + S->len, "...", 4);
    S->truncated = true;
    return;
  }
  S->len += (size_t)snprintf(S->tried + S->len, S->cap - S->len, "%s%s", sep, buf);
}

static bool is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void set_found(Search *S, const char *path) {
  if (S->found && S->found_cap) snprintf(S->found, S->found_cap, "%s", path);
}

/* Tries lib's names in folder dir (once per folder). */
static void try_dir(Search *S, const char *dir) {
  if (S->h) return;
  for (int i = 0; i < S->nseen; i++)
    if (!strcmp(S->seen[i], dir)) return;
  if (S->nseen < MAX_PLACES) snprintf(S->seen[S->nseen++], PATH_MAX, "%s", dir);
  if (!is_dir(dir)) {
    note(S, "%s (no such folder)", dir);
    return;
  }
  for (const char *const *n = S->lib->sonames; *n; n++) {
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s/%s", dir, *n) >= (int)sizeof p) continue;
    if (access(p, F_OK) != 0) continue;
    if ((S->h = dlopen(p, RTLD_NOW | RTLD_LOCAL))) {
      set_found(S, p);
      return;
    }
    note(S, "%s (%s)", p, dlerror());
    return;
  }
  note(S, "%s (no %s there)", dir, S->lib->sonames[0]);
}

static void try_prefix_dir(Search *S, const char *prefix, const char *sub) {
  if (!prefix || !*prefix) return;
  char d[PATH_MAX];
  if (snprintf(d, sizeof d, "%s/%s", prefix, sub) < (int)sizeof d) try_dir(S, d);
}

/* A site-packages folder: its wheel folders. One that does not exist (a venv
 * has no dist-packages, Debian no site-packages) is no place to look. */
static void try_site(Search *S, const char *site) {
  if (!is_dir(site)) return;
  for (const char *const *w = S->lib->wheel_dirs; *w && !S->h; w++) try_prefix_dir(S, site, *w);
}

static int by_name_desc(const void *a, const void *b) { return strcmp((const char *)b, (const char *)a); }

/* The python3.N folders of dir (newest first), e.g. prefix/lib -> python3.12. */
static int python_dirs(const char *dir, char out[MAX_PY][NAME_MAX + 1]) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) && n < MAX_PY;) {
    const char *v = e->d_name;
    if (strncmp(v, "python3.", 8) || !v[8] || strspn(v + 8, "0123456789") != strlen(v + 8)) continue;
    snprintf(out[n++], NAME_MAX + 1, "%s", v);
  }
  closedir(d);
  qsort(out, (size_t)n, sizeof out[0], by_name_desc);
  return n;
}

/* A Python install under prefix (the folder holding bin/python3). */
static void try_python_prefix(Search *S, const char *prefix) {
  char py[MAX_PY][NAME_MAX + 1], base[PATH_MAX], site[PATH_MAX];
  static const char *const libs[] = { "lib", "local/lib" };
  for (int l = 0; l < 2 && !S->h; l++) {
    if (snprintf(base, sizeof base, "%s/%s", prefix, libs[l]) >= (int)sizeof base) continue;
    int n = python_dirs(base, py);
    if (!n && l == 0) note(S, "%s/python3.N (none)", base);
    for (int i = 0; i < n && !S->h; i++) {
      if (snprintf(site, sizeof site, "%s/%s/site-packages", base, py[i]) < (int)sizeof site) try_site(S, site);
      if (snprintf(site, sizeof site, "%s/%s/dist-packages", base, py[i]) < (int)sizeof site) try_site(S, site);
    }
    /* Debian's python3-* packages */
    if (l == 0 && snprintf(site, sizeof site, "%s/python3/dist-packages", base) < (int)sizeof site) try_site(S, site);
  }
}

/* prefix of .../bin/python3 = the folder above bin */
static bool parent_of_bin(const char *exe, char *prefix, size_t cap) {
  const char *slash = strrchr(exe, '/');
  if (!slash || slash == exe) return false;
  size_t n = (size_t)(slash - exe); /* exe's folder */
  while (n > 0 && exe[n - 1] != '/') n--;
  if (n <= 1 || n - 1 >= cap) return false;
  memcpy(prefix, exe, n - 1);
  prefix[n - 1] = 0;
  return true;
}

static void try_pythons_on_path(Search *S, const char *path) {
  if (!path) return;
  const char *p = path;
  while (*p && !S->h) {
    size_t n = strcspn(p, ":");
    char exe[PATH_MAX], prefix[PATH_MAX], real[PATH_MAX];
    if (n > 0 && n + 9 < sizeof exe) {
      snprintf(exe, sizeof exe, "%.*s/python3", (int)n, p);
      if (access(exe, X_OK) == 0) {
        if (parent_of_bin(exe, prefix, sizeof prefix)) try_python_prefix(S, prefix);
        /* a venv's python3 links to its base interpreter, whose packages it may use */
        char rprefix[PATH_MAX];
        if (!S->h && realpath(exe, real) && parent_of_bin(real, rprefix, sizeof rprefix) && strcmp(rprefix, prefix))
          try_python_prefix(S, rprefix);
      }
    }
    p += n;
    if (*p == ':') p++;
  }
}

static void try_user_site(Search *S, const char *home) {
  if (!home || !*home) return;
  char base[PATH_MAX], site[PATH_MAX], py[MAX_PY][NAME_MAX + 1];
  if (snprintf(base, sizeof base, "%s/.local/lib", home) >= (int)sizeof base) return;
  int n = python_dirs(base, py);
  for (int i = 0; i < n && !S->h; i++)
    if (snprintf(site, sizeof site, "%s/%s/site-packages", base, py[i]) < (int)sizeof site) try_site(S, site);
}

static void try_loader(Search *S) {
  char names[256] = "";
  size_t len = 0;
  for (const char *const *n = S->lib->sonames; *n && !S->h; n++) {
    if ((S->h = dlopen(*n, RTLD_NOW | RTLD_LOCAL))) {
      struct link_map *lm = NULL;
      set_found(S, dlinfo(S->h, RTLD_DI_LINKMAP, &lm) == 0 && lm && lm->l_name && *lm->l_name ? lm->l_name : *n);
      return;
    }
    len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", len ? ", " : "", *n);
    if (len >= sizeof names) len = sizeof names - 1;
  }
  note(S, "the loader path (LD_LIBRARY_PATH, ld.so.cache: no %s)", names);
}

void *cram_cuda_open_lib(const cram_cuda_search *s, const cram_cuda_lib *lib, char *found, size_t found_cap, char *tried,
                         size_t tried_cap) {
  Search *S = calloc(1, sizeof *S);
  if (!S) {
    if (tried_cap) snprintf(tried, tried_cap, "out of memory");
    return NULL;
  }
  S->lib = lib, S->tried = tried, S->cap = tried_cap, S->found = found, S->found_cap = found_cap;
  if (tried_cap) tried[0] = 0;
  if (found_cap) found[0] = 0;
  const char *root = s->root ? s->root : "";
  char fixed[PATH_MAX];

  try_loader(S);
  const char *homes[2] = { s->cuda_home, s->cuda_path };
  const char *envs[2] = { "$CUDA_HOME", "$CUDA_PATH" };
  for (int i = 0; i < 2 && !S->h; i++) {
    if (!homes[i] || !*homes[i]) {
      note(S, "%s (unset)", envs[i]);
      continue;
    }
    try_prefix_dir(S, homes[i], "lib64");
    try_prefix_dir(S, homes[i], "lib");
  }
  if (!S->h && snprintf(fixed, sizeof fixed, "%s/usr/local/cuda/lib64", root) < (int)sizeof fixed) try_dir(S, fixed);
  if (!S->h) try_pythons_on_path(S, s->path);
  if (!S->h) try_user_site(S, s->home);

  void *h = S->h;
  free(S);
  return h;
}
