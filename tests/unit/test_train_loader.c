/* test_train_loader.c: runtime/loader.h — refusals of step.so artifacts with
 * one clear line: missing file, directory, non-ELF file, truncated ELF (cut
 * anywhere), another machine's library, shared object without
 * cram_step_entry, wrong ABI version, table smaller than v1, a parameter over
 * the IR's 2^40 elements; and a good minimal artifact loads. The .so files are built here
 * with `cc` (skipped with a note if no compiler). Runs from the source root.
 * Prints "N passed, M failed". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loader.h"

#include "check.h"

static char dir[] = "/tmp/test_loader_XXXXXX";

static int build(const char *name, const char *src) {
  char c[512], so[512], cmd[2048];
  snprintf(c, sizeof c, "%s/%s.c", dir, name);
  snprintf(so, sizeof so, "%s/%s.so", dir, name);
  FILE *f = fopen(c, "w");
  if (!f) return -1;
  fputs(src, f);
  fclose(f);
  snprintf(cmd, sizeof cmd, "cc -shared -fPIC -I runtime -o %s %s 2>&1", so, c);
  return system(cmd);
}

static void expect(const char *file, const char *needle) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, file);
  cram_step_lib lib;
  cram_err err = { 0 };
  cram_status r = cram_step_load(&lib, p, &err);
  CHECK(r != CRAM_OK);
  CHECK(strchr(err.msg, '\n') == NULL && strstr(err.msg, p) != NULL);
  if (!strstr(err.msg, needle)) {
    n_fail++;
    fprintf(stderr, "expected '%s' in: %s\n", needle, err.msg);
  } else n_pass++;
}

#define TABLE(ver, size)                                                                                           \
  "#include \"cram_step.h\"\n"                                                                                     \
  "static const cram_step_meta meta = {.abi_version = " ver ", .model = \"m\", .target = \"cpu\"};\n"              \
  "static cram_step_rc f(void) { return CRAM_STEP_OK; }\n"                                                         \
  "#define F (void *)f\n"                                                                                          \
  "static const cram_step_api api = {" ver ", " size ", &meta, F, F, F, F, F, F, F, F, F, F, F, F, F, F, F, F};\n" \
  "const cram_step_api *cram_step_entry(void) { return &api; }\n"

int main(void) {
  if (!mkdtemp(dir)) return 1;
  char p[512];
  snprintf(p, sizeof p, "%s/text.so", dir);
  FILE *f = fopen(p, "w");
  fputs("not an elf file\n", f);
  fclose(f);
  expect("missing.so", "No such file");
  expect("", "not a file");
  expect("text.so", "not a shared object");
  if (system("cc --version > /dev/null 2>&1") != 0) {
    printf("(no cc: skipping the built-artifact cases)\n");
  } else {
    CHECK(build("nosym", "int something(void) { return 1; }\n") == 0);
    expect("nosym.so", "not a cramc artifact (no cram_step_entry symbol)");
    CHECK(build("v4", TABLE("4", "sizeof(cram_step_api)")) == 0);
    expect("v4.so", "built for step ABI v4, this cram speaks v3: recompile with this cramc");
    /* v1 artifacts took the optimizer hyper-parameters as constants: refused, not misread */
    CHECK(build("v1", TABLE("1", "sizeof(cram_step_api)")) == 0);
    expect("v1.so", "built for step ABI v1, this cram speaks v3: recompile with this cramc");
    /* v2 artifacts have no eval_accuracy() and grad_buffer() entries: refused the same way */
    CHECK(build("v2", TABLE("2", "sizeof(cram_step_api)")) == 0);
    expect("v2.so", "built for step ABI v2, this cram speaks v3: recompile with this cramc");
    CHECK(build("small", TABLE("3", "16")) == 0);
    expect("small.so", "smaller than");
    CHECK(build("good", TABLE("3", "sizeof(cram_step_api)")) == 0);
    snprintf(p, sizeof p, "%s/good.so", dir);
    cram_step_lib lib;
    cram_err err = { 0 };
    CHECK(cram_step_load(&lib, p, &err) == CRAM_OK);
    if (lib.api) {
      CHECK(strcmp(lib.api->meta->model, "m") == 0);
      cram_step_unload(&lib);
    }
    /* truncated ELF: the first 200 bytes of a real shared object */
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "head -c 200 %s/good.so > %s/trunc.so", dir, dir);
    CHECK(system(cmd) == 0);
    expect("trunc.so", "truncated step.so (200 bytes");
    /* cut at every 1/8 of the file: refused before dlopen maps past the end (it died with SIGBUS) */
    for (int k = 1; k < 8; k++) {
      snprintf(cmd, sizeof cmd, "n=$(stat -c %%s %s/good.so); head -c $((n * %d / 8)) %s/good.so > %s/cut%d.so", dir, k, dir, dir,
               k);
      CHECK(system(cmd) == 0);
      char name[32];
      snprintf(name, sizeof name, "cut%d.so", k);
      expect(name, "truncated step.so");
    }
    /* another machine's library: e_machine (bytes 18-19) set to aarch64 (183) or x86-64 (62) */
    snprintf(cmd, sizeof cmd,
             "cp %s/good.so %s/arch.so && printf '\\267\\000' | dd of=%s/arch.so bs=1 seek=18 conv=notrunc 2>/dev/null"
             " && [ \"$(uname -m)\" = aarch64 ] && printf '\\076\\000' | dd of=%s/arch.so bs=1 seek=18 conv=notrunc 2>/dev/null;"
             " true",
             dir, dir, dir, dir);
    CHECK(system(cmd) == 0);
    expect("arch.so", "built for ");
    expect("arch.so", "rebuild it with cramc here");
    /* a parameter of 2^62 elements: refused at load (it sized a checkpoint buffer that wrapped to 0) */
    CHECK(build("huge", "#include \"cram_step.h\"\n"
                        "static const cram_tensor_info ps[] = {{\"w\", CRAM_DT_F32, 2, {INT64_C(1) << 31, INT64_C(1) << 31},"
                        " INT64_C(1) << 62, 1}};\n"
                        "static const cram_step_meta meta = {.abi_version = CRAM_STEP_ABI_VERSION, .model = \"m\","
                        " .target = \"cpu\", .nparams = 1, .params = ps, .nparam_elems = INT64_C(1) << 62};\n"
                        "static cram_step_rc f(void) { return CRAM_STEP_OK; }\n"
                        "#define F (void *)f\n"
                        "static const cram_step_api api = {CRAM_STEP_ABI_VERSION, sizeof(cram_step_api), &meta,"
                        " F, F, F, F, F, F, F, F, F, F, F, F, F, F, F, F};\n"
                        "const cram_step_api *cram_step_entry(void) { return &api; }\n") == 0);
    expect("huge.so", "over 2^40 elements");
  }
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) n_fail++;
  return check_summary("test_train_loader");
}
