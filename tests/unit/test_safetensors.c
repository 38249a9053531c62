/* test_safetensors.c: runtime/safetensors.h — round trip of every dtype and
 * the metadata, the byte layout (u64 header length, header padded to 8),
 * and every validation failure (short file, bad header length, malformed
 * JSON, unknown dtype, shape/bytes mismatch, offsets out of range,
 * overlapping tensors, duplicate names) with a one-line error naming the
 * file. Prints "N passed, M failed"; exit status 1 on any failure. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "safetensors.h"

#include "check.h"

/* Builds an image: u64 len + header + data. */
static unsigned char *image(const char *header, const void *data, size_t dlen, size_t *size) {
  size_t hl = strlen(header);
  *size = 8 + hl + dlen;
  unsigned char *b = malloc(*size);
  uint64_t h = hl;
  memcpy(b, &h, 8);
  memcpy(b + 8, header, hl);
  if (dlen) memcpy(b + 8 + hl, data, dlen);
  return b;
}

static void expect_bad(const char *header, size_t dlen, const char *needle) {
  unsigned char zeros[64] = { 0 };
  size_t size;
  unsigned char *b = image(header, zeros, dlen, &size);
  cram_st_file f;
  cram_err err = { 0 };
  cram_status r = cram_st_parse(b, size, "bad.safetensors", &f, &err);
  CHECK(r != CRAM_OK);
  CHECK(strstr(err.msg, "bad.safetensors") != NULL);
  if (!strstr(err.msg, needle)) {
    n_fail++;
    fprintf(stderr, "expected '%s' in: %s (header %s)\n", needle, err.msg, header);
  } else n_pass++;
  CHECK(strchr(err.msg, '\n') == NULL);
  cram_st_free(&f);
}

int main(void) {
  char dir[] = "/tmp/test_st_XXXXXX";
  if (!mkdtemp(dir)) return 1;
  char path[512];
  snprintf(path, sizeof path, "%s/a.safetensors", dir);

  /* round trip */
  cram_st_dtype dts[] = { CRAM_ST_F32, CRAM_ST_F64, CRAM_ST_BF16, CRAM_ST_I32, CRAM_ST_I64 };
  const char *names[] = { "w.f32", "w.f64", "w.bf16", "tokens", "big" };
  unsigned char bufs[5][6 * 8];
  cram_st_tensor ts[6];
  double vals[6] = { 1.5, -2.25, 3.0, 0.0, 1e-3, -100 };
  for (int k = 0; k < 5; k++) {
    memset(&ts[k], 0, sizeof ts[k]);
    ts[k].name = (char *)names[k];
    ts[k].dtype = dts[k];
    ts[k].rank = 2;
    ts[k].shape[0] = 2;
    ts[k].shape[1] = 3;
    for (int i = 0; i < 6; i++) cram_st_put(dts[k], bufs[k], i, dts[k] >= CRAM_ST_I32 ? (double)(i * 7 - 20) : vals[i]);
    ts[k].data = bufs[k];
  }
  memset(&ts[5], 0, sizeof ts[5]);
  ts[5].name = "scalar \"q\"";
  ts[5].dtype = CRAM_ST_F32;
  ts[5].rank = 0;
  float sv = 42.0f;
  ts[5].data = (const unsigned char *)&sv;
  cram_st_meta meta[] = { { "config", "{\"a\": 1}\n" }, { "steps", "3" } };
  cram_err err = { 0 };
  CHECK(cram_st_write(path, ts, 6, meta, 2, &err) == CRAM_OK);
  cram_st_file f;
  CHECK(cram_st_read(path, &f, &err) == CRAM_OK);
  CHECK(f.count == 6);
  uint64_t hl;
  memcpy(&hl, f.buf, 8);
  CHECK(hl % 8 == 0);
  for (int k = 0; k < 5; k++) {
    const cram_st_tensor *t = cram_st_find(&f, names[k]);
    CHECK(t && t->dtype == dts[k] && t->rank == 2 && t->shape[0] == 2 && t->shape[1] == 3 && t->numel == 6);
    for (int i = 0; t && i < 6; i++) {
      double want = dts[k] >= CRAM_ST_I32 ? (double)(i * 7 - 20) : vals[i];
      if (dts[k] == CRAM_ST_F32) want = (float)want;
      if (dts[k] == CRAM_ST_BF16 && i == 4) want = 0.00099945068359375; /* 1e-3 in bf16 */
      CHECK(cram_st_get(t, i) == want);
    }
  }
  const cram_st_tensor *s = cram_st_find(&f, "scalar \"q\"");
  CHECK(s && s->rank == 0 && s->numel == 1 && cram_st_get(s, 0) == 42.0);
  CHECK(cram_st_meta_get(&f, "steps") && !strcmp(cram_st_meta_get(&f, "steps"), "3"));
  CHECK(cram_st_meta_get(&f, "config") && !strcmp(cram_st_meta_get(&f, "config"), "{\"a\": 1}\n"));
  CHECK(cram_st_find(&f, "nope") == NULL);
  cram_st_free(&f);
  /* no temp file left behind */
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  CHECK(access(tmp, F_OK) != 0);

  /* duplicate name refused by the writer */
  cram_st_tensor dup[2] = { ts[0], ts[0] };
  CHECK(cram_st_write(path, dup, 2, NULL, 0, &err) == CRAM_E_ARG);

  /* reader errors */
  CHECK(cram_st_read("/nonexistent/x.safetensors", &f, &err) == CRAM_E_IO && strstr(err.msg, "/nonexistent/x"));
  {
    unsigned char *b = malloc(4);
    memset(b, 0, 4);
    CHECK(cram_st_parse(b, 4, "bad.safetensors", &f, &err) != CRAM_OK && strstr(err.msg, "bad.safetensors"));
  }
  {
    unsigned char *b = malloc(16);
    uint64_t huge = UINT64_C(1) << 60;
    memcpy(b, &huge, 8);
    memset(b + 8, ' ', 8);
    CHECK(cram_st_parse(b, 16, "bad.safetensors", &f, &err) != CRAM_OK && strstr(err.msg, "header length"));
  }
  expect_bad("[1,2]", 0, "JSON object");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4, "expected");
  expect_bad("{\"a\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,2]}}", 2, "unsupported dtype");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "needs 8");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", 4, "outside");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, "outside");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
             8, "overlapping");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
             8, "twice");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "lacks data_offsets");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "integer");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "integer");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4, "unknown key");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999,99999999999,99999999999],\"data_offsets\":[0,4]}}", 4,
             "too large");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x", 4, "trailing");
  expect_bad("{\"a\x01\":{}}", 0, "control character");
  expect_bad("{\"\\q\":{}}", 0, "bad escape");
  expect_bad("{\"a", 0, "unterminated");
  expect_bad("{\"__metadata__\":[1]}", 0, "__metadata__");
  /* metadata is string to string (as the format defines it): a number or an
     * object is refused, naming the key, not skipped and later "missing" */
  expect_bad("{\"__metadata__\":{\"step\":4}}", 0, "value of 'step' is not a string");
  expect_bad("{\"__metadata__\":{\"n\":{\"x\":[1,2,{}]}}}", 0, "value of 'n' is not a string");
  /* valid corner cases: empty header object, escapes */
  {
    const char *h = "{\"__metadata__\":{\"s\":\"\\u00e9\\n\"},"
                    "\"\\u0041\":{\"shape\":[],\"dtype\":\"I32\",\"data_offsets\":[0,4]}}  ";
    int32_t v = -7;
    size_t size;
    unsigned char *b = image(h, &v, 4, &size);
    CHECK(cram_st_parse(b, size, "ok", &f, &err) == CRAM_OK);
    CHECK(f.count == 1 && cram_st_find(&f, "A") && cram_st_get(cram_st_find(&f, "A"), 0) == -7.0);
    CHECK(cram_st_meta_get(&f, "s") && !strcmp(cram_st_meta_get(&f, "s"), "\xc3\xa9\n"));
    CHECK(cram_st_meta_get(&f, "n") == NULL);
    cram_st_free(&f);
    b = image("{}", NULL, 0, &size);
    CHECK(cram_st_parse(b, size, "ok", &f, &err) == CRAM_OK && f.count == 0);
    cram_st_free(&f);
  }
  /* every truncation of a valid file fails cleanly */
  {
    cram_st_file g;
    CHECK(cram_st_read(path, &g, &err) == CRAM_OK);
    int bad = 0;
    for (size_t cut = 0; cut < g.size; cut++) {
      unsigned char *b = malloc(cut ? cut : 1);
      memcpy(b, g.buf, cut);
      cram_st_file h;
      if (cram_st_parse(b, cut, "cut", &h, &err) == CRAM_OK) bad++;
      cram_st_free(&h);
    }
    CHECK(bad == 0);
    cram_st_free(&g);
  }
  remove(path);
  rmdir(dir);
  return check_summary("test_safetensors");
}
