/* test_cuda_libs.c FAKE_LIB - the search order of codegen/cuda_step/cuda_libs.c
 * on fake installs: a loadable library (FAKE_LIB, built from fake_lib.c) is
 * copied into one place after another, from the last in the order to the
 * first, and each time the newly added, earlier place must win. Then: the
 * loader path beats them all (a child run with LD_LIBRARY_PATH), a file that
 * exists but does not load is named and skipped, and a failed search names
 * every place in order (and truncates within its buffer). Unique library
 * names, so the machine's real libraries never answer. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cuda_libs.h"

static int fails;
#define CHECK(cond, ...)                                   \
  do {                                                     \
    if (!(cond)) {                                         \
      fails++;                                             \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                        \
      fputc('\n', stderr);                                 \
    }                                                      \
  } while (0)

static const char *const fake_names[] = { "libcramfakelt.so.13", "libcramfakelt.so.12", NULL };
static const char *const absent_names[] = { "libcramabsent.so.1", NULL };
static char T[512]; /* short, so every path built from it fits PATH_MAX */

static void mkdir_p(const char *path) {
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s", path);
  for (char *s = p + 1; *s; s++)
    if (*s == '/') {
      *s = 0;
      mkdir(p, 0755);
      *s = '/';
    }
  mkdir(p, 0755);
}

/* T/rel, with its folder created */
static const char *at(const char *rel) {
  static char buf[4][PATH_MAX];
  static int k;
  char *p = buf[k++ % 4];
  snprintf(p, PATH_MAX, "%s/%s", T, rel);
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", p);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = 0, mkdir_p(dir);
  return p;
}

static void copy_file(const char *src, const char *dst) {
  FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
  if (!in || !out) {
    fprintf(stderr, "test_cuda_libs: cannot copy %s to %s: %s\n", src, dst, strerror(errno));
    exit(1);
  }
  char b[65536];
  for (size_t n; (n = fread(b, 1, sizeof b, in)) > 0;) fwrite(b, 1, n, out);
  fclose(in);
  fclose(out);
}

static void touch_exe(const char *path) {
  FILE *f = fopen(path, "w");
  if (f) fputs("#!/bin/sh\n", f), fclose(f);
  chmod(path, 0755);
}

/* Searches; expects the library loaded from T/want (NULL: not found). */
static void expect(const cram_cuda_search *s, const char *const *names, const char *want, const char *what) {
  cram_cuda_lib lib = { "fake", names, cram_cuda_lib_cublaslt.wheel_dirs };
  char found[PATH_MAX], tried[8192];
  void *h = cram_cuda_open_lib(s, &lib, found, sizeof found, tried, sizeof tried);
  if (!want) {
    CHECK(!h, "%s: expected no library, got %s", what, found);
  } else {
    char full[PATH_MAX];
    snprintf(full, sizeof full, "%s/%s", T, want);
    CHECK(h && !strcmp(found, full), "%s: expected %s, got %s (tried: %s)", what, full, h ? found : "nothing", tried);
    if (h) {
      int (*marker)(void) = (int (*)(void))dlsym(h, "cram_fake_lib_marker");
      CHECK(marker && marker() == 42, "%s: the loaded file is not the fake library", what);
    }
  }
  if (h) dlclose(h);
}

static int loader_child(const char *t) {
  snprintf(T, sizeof T, "%s", t);
  char root[PATH_MAX];
  snprintf(root, sizeof root, "%s/emptyroot", T);
  cram_cuda_search s = { NULL, NULL, "", NULL, root };
  expect(&s, fake_names, "ldpath/libcramfakelt.so.13", "loader path");
  return fails ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "--loader-child")) return loader_child(argv[2]);
  if (argc != 2) {
    fprintf(stderr, "usage: test_cuda_libs FAKE_LIB.so\n");
    return 2;
  }
  const char *fake = argv[1];
  const char *tmp = getenv("TMPDIR");
  snprintf(T, sizeof T, "%s/test_cuda_libs.XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(T)) return perror("mkdtemp"), 1;

  /* a venv whose python3 links to a base install; a Debian-style /usr; a user site */
  touch_exe(at("base/bin/python3"));
  mkdir_p(at("venv/bin"));
  if (symlink(at("base/bin/python3"), at("venv/bin/python3")) != 0) return perror("symlink"), 1;
  touch_exe(at("usr/bin/python3"));
  mkdir_p(at("venv/lib/python3.12/site-packages"));
  mkdir_p(at("base/lib/python3.11/dist-packages"));
  mkdir_p(at("usr/lib/python3/dist-packages"));
  char path[2 * PATH_MAX];
  snprintf(path, sizeof path, "/nonexistent:%s/venv/bin:%s/usr/bin", T, T);
  char home[PATH_MAX], root[PATH_MAX], cuda_home[PATH_MAX], cuda_path[PATH_MAX];
  snprintf(home, sizeof home, "%s/home", T);
  snprintf(root, sizeof root, "%s/root", T);
  snprintf(cuda_home, sizeof cuda_home, "%s/cudahome", T);
  snprintf(cuda_path, sizeof cuda_path, "%s/cudapath", T);
  cram_cuda_search s = { cuda_home, cuda_path, path, home, root };

  expect(&s, fake_names, NULL, "nothing installed");
  /* from the last place in the order to the first */
  static const struct {
    const char *file, *what;
  } steps[] = {
    { "home/.local/lib/python3.12/site-packages/nvidia/cu13/lib/libcramfakelt.so.13", "user site-packages" },
    { "usr/lib/python3/dist-packages/nvidia/cu13/lib/libcramfakelt.so.13", "Debian dist-packages (2nd python3 on PATH)" },
    { "base/lib/python3.11/dist-packages/nvidia/cublas/lib/libcramfakelt.so.12",
      "the venv's base install, CUDA 12 wheel layout" },
    { "venv/lib/python3.12/site-packages/nvidia/cublas/lib/libcramfakelt.so.12", "venv, CUDA 12 wheel layout" },
    { "venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcramfakelt.so.13", "venv, CUDA 13 wheel layout" },
    { "root/usr/local/cuda/lib64/libcramfakelt.so.13", "/usr/local/cuda/lib64" },
    { "cudapath/lib/libcramfakelt.so.13", "$CUDA_PATH/lib" },
    { "cudahome/lib/libcramfakelt.so.13", "$CUDA_HOME/lib" },
    { "cudahome/lib64/libcramfakelt.so.12", "$CUDA_HOME/lib64 (.so.12)" },
    { "cudahome/lib64/libcramfakelt.so.13", "$CUDA_HOME/lib64 (.so.13 before .so.12)" },
  };
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    copy_file(fake, at(steps[i].file));
    expect(&s, fake_names, steps[i].file, steps[i].what);
  }

  /* a file that does not load is named, and the next place is used */
  FILE *f = fopen(at("cudahome/lib64/libcramfakelt.so.13"), "w");
  if (f) fputs("not a shared object\n", f), fclose(f);
  {
    cram_cuda_lib lib = { "fake", fake_names, cram_cuda_lib_cublaslt.wheel_dirs };
    char found[PATH_MAX], tried[8192];
    void *h = cram_cuda_open_lib(&s, &lib, found, sizeof found, tried, sizeof tried);
    CHECK(h && strstr(found, "/cudahome/lib/libcramfakelt.so.13"), "broken file: expected $CUDA_HOME/lib, got %s",
          h ? found : "nothing");
    CHECK(strstr(tried, "/cudahome/lib64/libcramfakelt.so.13 ("), "broken file not named: %s", tried);
    if (h) dlclose(h);
  }

  /* a failed search names every place, in order */
  {
    cram_cuda_lib lib = { "absent", absent_names, cram_cuda_lib_cublaslt.wheel_dirs };
    char tried[8192], small[96];
    CHECK(!cram_cuda_open_lib(&s, &lib, NULL, 0, tried, sizeof tried), "absent library found");
    const char *order[] = { "the loader path",
                            "/cudahome/lib64 (no libcramabsent.so.1 there)",
                            "/cudahome/lib (",
                            "/cudapath/lib64 (no such folder)",
                            "/cudapath/lib (",
                            "/root/usr/local/cuda/lib64 (",
                            "/venv/lib/python3.12/site-packages/nvidia/cu13/lib (",
                            "/venv/lib/python3.12/site-packages/nvidia/cublas/lib (",
                            "/base/lib/python3.11/dist-packages/nvidia/cublas/lib (",
                            "/usr/lib/python3/dist-packages/nvidia/cu13/lib (",
                            "/home/.local/lib/python3.12/site-packages/nvidia/cu13/lib (" };
    const char *prev = tried;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
      const char *p = strstr(tried, order[i]);
      CHECK(p && p >= prev, "place %zu '%s' missing or out of order in: %s", i, order[i], tried);
      if (p) prev = p;
    }
    CHECK(!strstr(tried, "/nonexistent"), "a PATH entry without python3 was searched: %s", tried);
    cram_cuda_search unset = { NULL, "", "", NULL, root };
    CHECK(!cram_cuda_open_lib(&unset, &lib, NULL, 0, tried, sizeof tried), "absent library found");
    CHECK(strstr(tried, "$CUDA_HOME (unset)") && strstr(tried, "$CUDA_PATH (unset)"), "unset variables: %s", tried);
    CHECK(!cram_cuda_open_lib(&s, &lib, NULL, 0, small, sizeof small), "absent library found");
    size_t n = strlen(small);
    CHECK(n < sizeof small && n >= 3 && !strcmp(small + n - 3, "..."), "truncation: '%s'", small);
  }

  /* the loader path comes first: a child with LD_LIBRARY_PATH */
  copy_file(fake, at("ldpath/libcramfakelt.so.13"));
  pid_t pid = fork();
  if (pid == 0) {
    char ld[PATH_MAX + 32];
    snprintf(ld, sizeof ld, "%s/ldpath", T);
    setenv("LD_LIBRARY_PATH", ld, 1);
    execl("/proc/self/exe", "test_cuda_libs", "--loader-child", T, (char *)NULL);
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "loader path child: status %d", st);

  char rm[PATH_MAX + 16];
  snprintf(rm, sizeof rm, "rm -rf '%s'", T);
  if (system(rm) != 0) fprintf(stderr, "test_cuda_libs: could not remove %s\n", T);
  if (fails) {
    fprintf(stderr, "test_cuda_libs: %d check(s) failed\n", fails);
    return 1;
  }
  printf("test_cuda_libs: search order ok\n");
  return 0;
}
