/* test_llvm_host.c SOURCE_DIR - the cuda target's host code emitted with
 * LLVM-C (codegen/llvm_host.c), without a GPU:
 *   1. a hand-made launch sequence: the printed module binds arena /
 *      scratch / slot + offset constants and null into the right tab
 *      entries and calls the two callbacks with the right arguments; it
 *      compiles to an ELF object defining the hidden functions;
 *   2. every model of models/ and models/ablations/ (full dims: no NVRTC
 *      is involved): `cramc --emit=llvm`'s module (cg_cuda_emit_llvm) passes
 *      LLVMVerifyModule inside cramc AND after parsing the printed text back
 *      (LLVMParseIRInContext + LLVMVerifyModule here), and defines the bind
 *      and run function of each graph;
 *   3. a deliberately broken module (LLVM_HOST_TEST_BREAK: a block without
 *      terminator) is reported as one line quoting the verifier, no crash.
 * Prints "N passed, M failed". */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/IRReader.h>

#include "codegen.h"
#include "frontend.h"
#include "llvm_host.h"
#include "target_cuda.h"

static int pass, fails;
#define CHECK(c)                                                               \
  do {                                                                         \
    if (c) pass++;                                                             \
    else fails++, fprintf(stderr, "FAIL %s line %d: %s\n", cur, __LINE__, #c); \
  } while (0)
static const char *cur = "";

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = NULL;
  size_t n = 0;
  FILE *m = open_memstream(&buf, &n);
  char tmp[4096];
  size_t k;
  while (m && (k = fread(tmp, 1, sizeof tmp, f)) > 0) fwrite(tmp, 1, k, m);
  fclose(f);
  if (m) fclose(m);
  *len = n;
  return buf;
}

/* Parses text back and verifies it; true when every function is there. */
static bool reparse(const char *text, size_t len, const char *const *fns, int nfn) {
  LLVMContextRef cx = LLVMContextCreate();
  LLVMMemoryBufferRef mb = LLVMCreateMemoryBufferWithMemoryRangeCopy(text, len, "module");
  LLVMModuleRef m = NULL;
  char *msg = NULL;
  bool ok = !LLVMParseIRInContext(cx, mb, &m, &msg); /* takes the buffer */
  if (!ok) fprintf(stderr, "parse: %s\n", msg ? msg : "?");
  if (msg) LLVMDisposeMessage(msg), msg = NULL;
  if (ok && LLVMVerifyModule(m, LLVMReturnStatusAction, &msg)) ok = false, fprintf(stderr, "verify: %s\n", msg);
  if (msg) LLVMDisposeMessage(msg);
  for (int i = 0; ok && i < nfn; i++) {
    LLVMValueRef f = LLVMGetNamedFunction(m, fns[i]);
    if (!f || LLVMIsDeclaration(f) || LLVMGetVisibility(f) != LLVMHiddenVisibility)
      ok = false, fprintf(stderr, "no hidden %s\n", fns[i]);
  }
  if (m) LLVMDisposeModule(m);
  LLVMContextDispose(cx);
  return ok;
}

static void handmade(void) {
  cur = "handmade";
  /* a kernel with P = {arena+4096, slot 2, scratch+64}, a GEMM a=slot1+512, b=arena, c=scratch, no bias */
  RenderCudaRef tab[] = { { RC_ARENA, 4096 }, { 2, 0 },          { RC_SCRATCH, 64 }, { 1, 512 },
                          { RC_ARENA, 0 },    { RC_SCRATCH, 0 }, { RC_NONE, 0 } };
  RenderCudaLaunch ls[] = { { .grid = 7, .block = 256, .first = 0, .nbuf = 3 }, { .gemm = true, .first = 3, .nbuf = 4 } };
  RenderCudaHost h = { ls, 2, tab, 7 }, empty = { NULL, 0, NULL, 0 };
  LlvmHostGraph g[] = { { "fwd", &h }, { "up", &empty } };
  char *text = NULL, err[512] = "";
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  char dir[] = "/tmp/test_llvm_host.XXXXXX", obj[64];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(obj, sizeof obj, "%s/host.o", dir);
  bool ok = llvm_host_emit(g, 2, 0, mem, obj, err, sizeof err);
  fclose(mem);
  if (!ok) fprintf(stderr, "%s\n", err);
  CHECK(ok);
  const char *want[] = {
    "define hidden void @cram_cuda_fwd_bind(i64* %slots, i64 %arena, i64 %scratch, i64* %tab)",
    "add i64 %arena, 4096",
    "%slot2 = load i64",
    "add i64 %scratch, 64",
    "add i64 %slot1, 512",
    "getelementptr inbounds i64, i64* %tab, i64 6",
    "store i64 0, i64* ",
    "define hidden i32 @cram_cuda_fwd_run(i8* %rt)",
    "call i32 @cram_cuda_rt_kernel(i8* %rt, i32 0, i32 7, i32 256, i32 0)",
    "call i32 @cram_cuda_rt_gemm(i8* %rt, i32 1)",
    "declare hidden i32 @cram_cuda_rt_kernel(i8*, i32, i32, i32, i32)",
    "define hidden i32 @cram_cuda_up_run(i8* %rt)",
    "ret i32 %rc",
    "ret i32 0",
  };
  for (size_t i = 0; ok && i < sizeof want / sizeof *want; i++) {
    bool has = strstr(text, want[i]) != NULL;
    if (!has) fprintf(stderr, "missing: %s\n", want[i]);
    CHECK(has);
  }
  const char *fns[] = { "cram_cuda_fwd_bind", "cram_cuda_fwd_run", "cram_cuda_up_bind", "cram_cuda_up_run" };
  CHECK(ok && reparse(text, len, fns, 4));
  size_t olen = 0;
  char *o = slurp(obj, &olen);
  CHECK(o && olen > 64 && !memcmp(o, "\177ELF", 4));
  free(o);
  unlink(obj), rmdir(dir);
  free(text);
  /* an unwritable object path: one line, no crash */
  ok = llvm_host_emit(g, 2, 0, NULL, "/nonexistent/dir/host.o", err, sizeof err);
  CHECK(!ok && strstr(err, "LLVM cannot compile the host code") && !strchr(err, '\n'));
}

static int nmodels;

static void one_model(const char *path) {
  cur = path;
  size_t len = 0;
  char *src = slurp(path, &len);
  CHECK(src != NULL);
  if (!src) return;
  char *dbuf = NULL;
  size_t dlen = 0;
  FILE *dmem = open_memstream(&dbuf, &dlen);
  Diag d;
  diag_init(&d, dmem);
  Graph *fwd = fe_compile(path, src, len, NULL, 0, &d);
  fclose(dmem);
  CHECK(fwd != NULL);
  if (!fwd) fprintf(stderr, "%s\n", dbuf ? dbuf : "");
  free(dbuf);
  if (fwd) {
    CgOptions o = { .src_path = path, .src_text = src, .src_len = len, .opt_level = 2 };
    char *text = NULL, err[1024] = "";
    size_t n = 0;
    FILE *mem = open_memstream(&text, &n);
    bool ok = cg_cuda_emit_llvm(fwd, &o, 0, mem, err, sizeof err);
    fclose(mem);
    if (!ok) fprintf(stderr, "%s: %s\n", path, err);
    CHECK(ok);
    CHECK(ok && strstr(text, "define hidden i32 @cram_cuda_acc_run(i8* %rt)"));
    const char *fns[] = { "cram_cuda_fwd_bind", "cram_cuda_fwd_run", "cram_cuda_acc_bind",
                          "cram_cuda_acc_run",  "cram_cuda_up_bind", "cram_cuda_up_run" };
    bool rp = ok && reparse(text, n, fns, 6);
    CHECK(rp);
    printf("%-50s %s (%zu bytes of IR)\n", path, rp ? "verifies" : "FAILS", n);
    free(text);
    if (strstr(path, "/tiny.cram")) { /* the negative case, on a real module */
      ok = cg_cuda_emit_llvm(fwd, &o, LLVM_HOST_TEST_BREAK, NULL, err, sizeof err);
      printf("broken module: %s\n", err);
      CHECK(!ok && strstr(err, "does not verify") && strstr(err, "terminator") && !strchr(err, '\n'));
    }
    nmodels++;
  }
  ir_graph_free(fwd);
  free(src);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void models_in(const char *dir) {
  DIR *dp = opendir(dir);
  CHECK(dp != NULL);
  if (!dp) return;
  char *names[64];
  int n = 0;
  for (struct dirent *e; n < 64 && (e = readdir(dp));) {
    size_t l = strlen(e->d_name);
    if (l > 5 && !strcmp(e->d_name + l - 5, ".cram")) names[n++] = strdup(e->d_name);
  }
  closedir(dp);
  qsort(names, (size_t)n, sizeof *names, by_name);
  for (int i = 0; i < n; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    one_model(path);
    free(names[i]);
  }
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: test_llvm_host SOURCE_DIR\n");
    return 2;
  }
  CHECK(llvm_host_available());
  handmade();
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/models", argv[1]);
  models_in(dir);
  snprintf(dir, sizeof dir, "%s/models/ablations", argv[1]);
  models_in(dir);
  cur = "";
  CHECK(nmodels >= 10); /* 3 models + 7 ablations today */
  printf("%d models; %d passed, %d failed\n", nmodels, pass, fails);
  return fails ? 1 : 0;
}
