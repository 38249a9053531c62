/* test_ckpt.c: runtime/ckpt.h — round trip of params, Adam moments and state
 * through a checkpoint; a write that fails part-way (disk full, simulated
 * with RLIMIT_FSIZE in a child) leaves the previous checkpoint intact and
 * no temp file; truncated / corrupted / foreign checkpoints are refused with
 * one line naming the file. Uses an in-process fake step table.
 * Prints "N passed, M failed". */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ckpt.h"
#include "safetensors.h"

#include "check.h"

#define N 3000
struct cram_ctx {
  float p[N], m[N], v[N];
};
static const cram_tensor_info params[] = { { "w", CRAM_DT_F32, 2, { 30, 100 }, N, 1 } };
static const cram_step_meta meta = {
  .abi_version = 1, .model = "fake", .source_hash = "abc", .nparams = 1, .params = params, .nparam_elems = N
};
static const char *le(const cram_ctx *c) {
  (void)c;
  return "fake";
}
static cram_step_rc gp(cram_ctx *c, uint32_t i, float *d) {
  (void)i;
  memcpy(d, c->p, sizeof c->p);
  return 0;
}
static cram_step_rc sp(cram_ctx *c, uint32_t i, const float *s) {
  (void)i;
  memcpy(c->p, s, sizeof c->p);
  return 0;
}
static cram_step_rc gm(cram_ctx *c, uint32_t i, float *m, float *v) {
  (void)i;
  memcpy(m, c->m, sizeof c->m);
  memcpy(v, c->v, sizeof c->v);
  return 0;
}
static cram_step_rc sm(cram_ctx *c, uint32_t i, const float *m, const float *v) {
  (void)i;
  memcpy(c->m, m, sizeof c->m);
  memcpy(c->v, v, sizeof c->v);
  return 0;
}
static const cram_step_api api = { .abi_version = 1,
                                   .struct_size = sizeof(cram_step_api),
                                   .meta = &meta,
                                   .last_error = le,
                                   .get_param = gp,
                                   .set_param = sp,
                                   .get_moments = gm,
                                   .set_moments = sm };

static void fill(cram_ctx *c, float base) {
  for (int i = 0; i < N; i++) c->p[i] = base + (float)i, c->m[i] = base * 2 + (float)i, c->v[i] = base * 3;
}

int main(void) {
  char dir[] = "/tmp/test_ckpt_XXXXXX";
  if (!mkdtemp(dir)) return 1;
  char path[512], bad[512];
  snprintf(path, sizeof path, "%s/%s", dir, CRAM_CKPT_FILE);
  static cram_ctx a, b;
  fill(&a, 1.5f);
  cram_train_state st = { .step = 12,
                          .attempts = 13,
                          .seq_pos = 832,
                          .tokens = 13312,
                          .skipped = 1,
                          .bad_run = 0,
                          .elapsed = 1.0 / 3.0,
                          .seed = 7,
                          .shuffle = 1,
                          .steps = 30,
                          .budget = 0,
                          .batch = 16,
                          .ramp = 0.5,
                          .peak_lr = 1e-3,
                          .mask_n = 4 };
  cram_err err = { 0 };
  CHECK(cram_ckpt_save(path, &api, &a, &st, &err) == CRAM_OK);
  cram_train_state st2;
  CHECK(cram_ckpt_load(path, &api, &b, &st2, &err) == CRAM_OK);
  CHECK(memcmp(&a, &b, sizeof a) == 0);
  CHECK(st2.step == 12 && st2.attempts == 13 && st2.seq_pos == 832 && st2.elapsed == 1.0 / 3.0 && st2.shuffle == 1 &&
        st2.ramp == 0.5 && st2.peak_lr == 1e-3 && st2.mask_n == 4 && st2.seed == 7 && st2.batch == 16);
  cram_st_file f;
  CHECK(cram_st_read(path, &f, &err) == CRAM_OK && cram_st_find(&f, "param.w") && cram_st_find(&f, "adam_m.w") &&
        cram_st_find(&f, "adam_v.w") && strcmp(cram_st_meta_get(&f, "format"), CRAM_CKPT_FORMAT) == 0);
  cram_st_free(&f);

  /* Disk full while writing a newer checkpoint: the old one stays valid. */
  pid_t pid = fork();
  if (pid == 0) {
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = { 8192, 8192 };
    setrlimit(RLIMIT_FSIZE, &rl);
    static cram_ctx c;
    fill(&c, 9.0f);
    cram_train_state s3 = st;
    s3.step = 99;
    cram_err e2 = { 0 };
    cram_status r = cram_ckpt_save(path, &api, &c, &s3, &e2);
    _exit(r == CRAM_E_IO && strstr(e2.msg, path) && !strchr(e2.msg, '\n') ? 0 : 1);
  }
  int ws = 0;
  waitpid(pid, &ws, 0);
  CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
  memset(&b, 0, sizeof b);
  CHECK(cram_ckpt_load(path, &api, &b, &st2, &err) == CRAM_OK && st2.step == 12);
  CHECK(memcmp(&a, &b, sizeof a) == 0);
  char cmd[2400];
  snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp > /dev/null", dir);
  CHECK(system(cmd) != 0); /* no temp file left behind */

  /* Truncated and corrupted copies. */
  snprintf(bad, sizeof bad, "%s/trunc.safetensors", dir);
  snprintf(cmd, sizeof cmd, "head -c 5000 %s > %s", path, bad);
  CHECK(system(cmd) == 0);
  CHECK(cram_ckpt_load(bad, &api, &b, &st2, &err) != CRAM_OK && strstr(err.msg, bad) && !strchr(err.msg, '\n'));
  snprintf(cmd, sizeof cmd, "cp %s %s && printf 'XXXXXXXX' | dd of=%s bs=1 conv=notrunc 2>/dev/null", path, bad, bad);
  CHECK(system(cmd) == 0);
  CHECK(cram_ckpt_load(bad, &api, &b, &st2, &err) != CRAM_OK && strstr(err.msg, bad));
  /* A safetensors file that is not a checkpoint. */
  cram_st_tensor t = { .name = "x", .dtype = CRAM_ST_F32, .rank = 1, .shape = { 2 }, .data = (const unsigned char *)a.p };
  CHECK(cram_st_write(bad, &t, 1, NULL, 0, &err) == CRAM_OK);
  CHECK(cram_ckpt_load(bad, &api, &b, &st2, &err) != CRAM_OK && strstr(err.msg, "not a cram checkpoint"));
  /* Another model's checkpoint. */
  cram_step_meta other = meta;
  other.model = "other";
  CHECK(cram_ckpt_read_state(path, &other, &st2, &err) != CRAM_OK && strstr(err.msg, "model 'fake'"));
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) n_fail++;
  return check_summary("test_ckpt");
}
