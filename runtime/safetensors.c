/* safetensors.c - .safetensors reader (with a small JSON parser for the
 * header only) and atomic writer. See safetensors.h. Assumes a little-endian
 * host, like the rest of libcramrt. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const dtype_names[] = { "F32", "F64", "BF16", "I32", "I64" };
static const size_t dtype_sizes[] = { 4, 8, 2, 4, 8 };

const char *cram_st_dtype_name(cram_st_dtype t) { return (unsigned)t < 5 ? dtype_names[t] : "?"; }
size_t cram_st_dtype_size(cram_st_dtype t) { return (unsigned)t < 5 ? dtype_sizes[t] : 0; }

/* ---- JSON (header only) --------------------------------------------------- */

typedef struct Json {
  const char *s, *end, *start, *label;
  cram_err *err;
  bool failed;
} Json;

static bool jfail(Json *j, const char *what) {
  if (!j->failed)
    cram_err_set(j->err, CRAM_E_HEADER, "%s: malformed safetensors header: %s at header byte %lld", j->label, what,
                 (long long)(j->s - j->start));
  j->failed = true;
  return false;
}

static void jws(Json *j) {
  while (j->s < j->end && (*j->s == ' ' || *j->s == '\t' || *j->s == '\n' || *j->s == '\r')) j->s++;
}

static bool jlit(Json *j, char c) {
  jws(j);
  if (j->s < j->end && *j->s == c) {
    j->s++;
    return true;
  }
  return false;
}

static void put_utf8(char **o, unsigned cp) {
  if (cp < 0x80) *(*o)++ = (char)cp;
  else if (cp < 0x800) {
    *(*o)++ = (char)(0xc0 | (cp >> 6));
    *(*o)++ = (char)(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    *(*o)++ = (char)(0xe0 | (cp >> 12));
    *(*o)++ = (char)(0x80 | ((cp >> 6) & 0x3f));
    *(*o)++ = (char)(0x80 | (cp & 0x3f));
  } else {
    *(*o)++ = (char)(0xf0 | (cp >> 18));
    *(*o)++ = (char)(0x80 | ((cp >> 12) & 0x3f));
    *(*o)++ = (char)(0x80 | ((cp >> 6) & 0x3f));
    *(*o)++ = (char)(0x80 | (cp & 0x3f));
  }
}

static bool hex4(const char *p, unsigned *v) {
  *v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                 : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                 : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                        : 16u;
    if (d > 15) return false;
    *v = *v * 16 + d;
  }
  return true;
}

/* A JSON string into a malloc'd NUL-terminated buffer (NULL on error). */
static char *jstring(Json *j) {
  jws(j);
  if (j->s >= j->end || *j->s != '"') return jfail(j, "expected a string"), NULL;
  const char *p = ++j->s;
  size_t n = 0;
  while (p < j->end && *p != '"') {
    if (*p == '\\') p++;
    p++;
    n++;
  }
  if (p >= j->end) return jfail(j, "unterminated string"), NULL;
  char *out = malloc(n * 4 + 1), *o = out;
  if (!out) return jfail(j, "out of memory"), NULL;
  while (*j->s != '"') {
    unsigned char c = (unsigned char)*j->s++;
    if (c < 0x20) {
      free(out);
      return jfail(j, "control character in string"), NULL;
    }
    if (c != '\\') {
      *o++ = (char)c;
      continue;
    }
    char e = *j->s++;
    switch (e) {
    case '"': *o++ = '"'; break;
    case '\\': *o++ = '\\'; break;
    case '/': *o++ = '/'; break;
    case 'b': *o++ = '\b'; break;
    case 'f': *o++ = '\f'; break;
    case 'n': *o++ = '\n'; break;
    case 'r': *o++ = '\r'; break;
    case 't': *o++ = '\t'; break;
    case 'u': {
      unsigned cp;
      if (j->end - j->s < 4 || !hex4(j->s, &cp)) {
        free(out);
        return jfail(j, "bad \\u escape"), NULL;
      }
      j->s += 4;
      if (cp >= 0xd800 && cp < 0xdc00 && j->end - j->s >= 6 && j->s[0] == '\\' && j->s[1] == 'u') {
        unsigned lo;
        if (hex4(j->s + 2, &lo) && lo >= 0xdc00 && lo < 0xe000) {
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          j->s += 6;
        }
      }
      put_utf8(&o, cp);
      break;
    }
    default: free(out); return jfail(j, "bad escape in string"), NULL;
    }
  }
  j->s++;
  *o = '\0';
  return out;
}

/* A non-negative JSON integer. */
static bool juint(Json *j, uint64_t *v) {
  jws(j);
  if (j->s >= j->end || *j->s < '0' || *j->s > '9') return jfail(j, "expected a non-negative integer");
  uint64_t x = 0;
  while (j->s < j->end && *j->s >= '0' && *j->s <= '9') {
    unsigned d = (unsigned)(*j->s++ - '0');
    if (x > (UINT64_MAX - d) / 10) return jfail(j, "integer too large");
    x = x * 10 + d;
  }
  if (j->s < j->end && (*j->s == '.' || *j->s == 'e' || *j->s == 'E')) return jfail(j, "expected an integer");
  *v = x;
  return true;
}

/* ---- reader ----------------------------------------------------------------- */

void cram_st_free(cram_st_file *f) {
  if (!f) return;
  for (size_t i = 0; i < f->count; i++) free(f->tensors[i].name);
  for (size_t i = 0; i < f->nmeta; i++) {
    free(f->meta[i].key);
    free(f->meta[i].value);
  }
  free(f->tensors);
  free(f->meta);
  free(f->buf);
  memset(f, 0, sizeof *f);
}

static int cmp_offset(const void *a, const void *b) {
  const cram_st_tensor *x = a, *y = b;
  return x->data < y->data ? -1 : x->data > y->data;
}

static bool parse_tensor(Json *j, cram_st_tensor *t, uint64_t *begin, uint64_t *end) {
  bool have_dtype = false, have_shape = false, have_off = false;
  if (!jlit(j, '{')) return jfail(j, "expected an object for a tensor");
  if (jlit(j, '}')) return jfail(j, "empty tensor entry");
  do {
    char *k = jstring(j);
    if (!k) return false;
    if (!jlit(j, ':')) {
      free(k);
      return jfail(j, "expected ':'");
    }
    if (!strcmp(k, "dtype")) {
      free(k);
      char *v = jstring(j);
      if (!v) return false;
      int found = -1;
      for (int d = 0; d < 5; d++)
        if (!strcmp(v, dtype_names[d])) found = d;
      if (found < 0) {
        cram_err_set(j->err, CRAM_E_HEADER, "%s: tensor '%s' has unsupported dtype '%.32s' (supported: F32, F64, BF16, I32, I64)",
                     j->label, t->name, v);
        j->failed = true;
        free(v);
        return false;
      }
      free(v);
      t->dtype = (cram_st_dtype)found;
      have_dtype = true;
    } else if (!strcmp(k, "shape")) {
      free(k);
      if (!jlit(j, '[')) return jfail(j, "expected '[' for shape");
      t->rank = 0;
      if (!jlit(j, ']')) {
        do {
          uint64_t d;
          if (!juint(j, &d)) return false;
          if (t->rank >= CRAM_ST_MAX_RANK) return jfail(j, "shape has too many dimensions");
          if (d > (uint64_t)INT64_MAX) return jfail(j, "dimension too large");
          t->shape[t->rank++] = (int64_t)d;
        } while (jlit(j, ','));
        if (!jlit(j, ']')) return jfail(j, "expected ']' after shape");
      }
      have_shape = true;
    } else if (!strcmp(k, "data_offsets")) {
      free(k);
      if (!jlit(j, '[') || !juint(j, begin) || !jlit(j, ',') || !juint(j, end) || !jlit(j, ']'))
        return jfail(j, "data_offsets must be [begin, end]");
      have_off = true;
    } else {
      free(k);
      return jfail(j, "unknown key in tensor entry");
    }
  } while (jlit(j, ','));
  if (!jlit(j, '}')) return jfail(j, "expected ',' or '}' in tensor entry");
  if (!have_dtype || !have_shape || !have_off) {
    cram_err_set(j->err, CRAM_E_HEADER, "%s: tensor '%s' lacks %s", j->label, t->name,
                 !have_dtype   ? "dtype"
                 : !have_shape ? "shape"
                               : "data_offsets");
    j->failed = true;
    return false;
  }
  return true;
}

static bool parse_meta(Json *j, cram_st_file *f) {
  if (!jlit(j, '{')) return jfail(j, "__metadata__ must be an object");
  if (jlit(j, '}')) return true;
  do {
    char *k = jstring(j);
    if (!k) return false;
    if (!jlit(j, ':')) {
      free(k);
      return jfail(j, "expected ':'");
    }
    jws(j);
    if (j->s < j->end && *j->s == '"') {
      char *v = jstring(j);
      if (!v) {
        free(k);
        return false;
      }
      cram_st_meta *nm = realloc(f->meta, (f->nmeta + 1) * sizeof *nm);
      if (!nm) {
        free(k);
        free(v);
        return jfail(j, "out of memory");
      }
      f->meta = nm;
      f->meta[f->nmeta].key = k;
      f->meta[f->nmeta].value = v;
      f->nmeta++;
    } else {
      /* the format's metadata is string to string; a number here ("step": 4)
             * is named rather than skipped and later reported missing */
      char b[40];
      size_t o = 0;
      for (const unsigned char *p = (const unsigned char *)k; *p && o + 5 < sizeof b; p++)
        if (*p >= 0x20 && *p < 0x7f) b[o++] = (char)*p;
        else o += (size_t)snprintf(b + o, sizeof b - o, "\\x%02x", *p);
      b[o] = '\0';
      free(k);
      cram_err_set(j->err, CRAM_E_HEADER,
                   "%s: __metadata__ value of '%s' is not a string (safetensors metadata "
                   "holds strings only)",
                   j->label, b);
      j->failed = true;
      return false;
    }
  } while (jlit(j, ','));
  return jlit(j, '}') || jfail(j, "expected ',' or '}' in __metadata__");
}

cram_status cram_st_parse(unsigned char *buf, size_t size, const char *label, cram_st_file *f, cram_err *err) {
  memset(f, 0, sizeof *f);
  f->buf = buf;
  f->size = size;
  cram_status r = CRAM_OK;
  if (size < 8) {
    r = cram_err_set(err, CRAM_E_TRUNCATED, "%s: not a safetensors file (%zu bytes, need at least 8)", label, size);
    goto fail;
  }
  uint64_t hlen;
  memcpy(&hlen, buf, 8);
  if (hlen < 2 || hlen > CRAM_ST_MAX_HEADER || hlen > size - 8) {
    r =
      cram_err_set(err, hlen > size - 8 && hlen <= CRAM_ST_MAX_HEADER ? CRAM_E_TRUNCATED : CRAM_E_HEADER,
                   "%s: safetensors header length %llu is not valid for a %zu-byte file", label, (unsigned long long)hlen, size);
    goto fail;
  }
  const unsigned char *data = buf + 8 + hlen;
  size_t dlen = size - 8 - (size_t)hlen;
  Json j = { (const char *)buf + 8, (const char *)buf + 8 + hlen, (const char *)buf + 8, label, err, false };
  uint64_t *ends = NULL;
  if (!jlit(&j, '{')) {
    jfail(&j, "header is not a JSON object");
    goto jfailed;
  }
  if (!jlit(&j, '}')) {
    do {
      char *k = jstring(&j);
      if (!k) goto jfailed;
      if (!jlit(&j, ':')) {
        free(k);
        jfail(&j, "expected ':'");
        goto jfailed;
      }
      if (!strcmp(k, "__metadata__")) {
        free(k);
        if (!parse_meta(&j, f)) goto jfailed;
        continue;
      }
      if (!*k) {
        free(k);
        jfail(&j, "empty tensor name");
        goto jfailed;
      }
      for (size_t i = 0; i < f->count; i++)
        if (!strcmp(f->tensors[i].name, k)) {
          cram_err_set(err, CRAM_E_HEADER, "%s: tensor '%s' appears twice in the header", label, k);
          free(k);
          j.failed = true;
          goto jfailed;
        }
      cram_st_tensor *nt = realloc(f->tensors, (f->count + 1) * sizeof *nt);
      uint64_t *ne = realloc(ends, (f->count + 1) * sizeof *ne);
      if (ne) ends = ne;
      if (nt) f->tensors = nt;
      if (!nt || !ne) {
        free(k);
        jfail(&j, "out of memory");
        goto jfailed;
      }
      cram_st_tensor *t = &f->tensors[f->count++];
      memset(t, 0, sizeof *t);
      t->name = k;
      uint64_t b = 0, e = 0;
      if (!parse_tensor(&j, t, &b, &e)) goto jfailed;
      /* element count without overflow, then bytes */
      int64_t numel = 1;
      for (int d = 0; d < t->rank; d++)
        if (t->shape[d] != 0 && numel > INT64_MAX / 16 / t->shape[d]) {
          cram_err_set(err, CRAM_E_HEADER, "%s: tensor '%s' shape is too large", label, t->name);
          j.failed = true;
          goto jfailed;
        } else numel *= t->shape[d];
      t->numel = numel;
      uint64_t want = (uint64_t)numel * cram_st_dtype_size(t->dtype);
      if (e < b || e > dlen) {
        cram_err_set(err, CRAM_E_HEADER, "%s: tensor '%s' data_offsets [%llu, %llu] are outside the %zu-byte data section", label,
                     t->name, (unsigned long long)b, (unsigned long long)e, dlen);
        j.failed = true;
        goto jfailed;
      }
      if (e - b != want) {
        cram_err_set(err, CRAM_E_HEADER, "%s: tensor '%s' has %llu data bytes but its %s shape needs %llu", label, t->name,
                     (unsigned long long)(e - b), dtype_names[t->dtype], (unsigned long long)want);
        j.failed = true;
        goto jfailed;
      }
      t->data = data + b;
      t->nbytes = (size_t)want;
      ends[f->count - 1] = e;
    } while (jlit(&j, ','));
    if (!jlit(&j, '}')) {
      jfail(&j, "expected ',' or '}'");
      goto jfailed;
    }
  }
  jws(&j);
  if (j.s != j.end) {
    jfail(&j, "trailing characters after the JSON object");
    goto jfailed;
  }
  free(ends);
  ends = NULL;
  /* Non-overlapping: sort by begin and check neighbours. */
  if (f->count > 1) qsort(f->tensors, f->count, sizeof *f->tensors, cmp_offset);
  for (size_t i = 1; i < f->count; i++) {
    const cram_st_tensor *a = &f->tensors[i - 1], *b2 = &f->tensors[i];
    if (a->data + a->nbytes > b2->data) {
      r = cram_err_set(err, CRAM_E_HEADER, "%s: tensors '%s' and '%s' have overlapping data", label, a->name, b2->name);
      goto fail;
    }
  }
  return CRAM_OK;
jfailed:
  free(ends);
  r = err ? err->status : CRAM_E_HEADER;
fail:
  cram_st_free(f);
  return r;
}

cram_status cram_st_read(const char *path, cram_st_file *f, cram_err *err) {
  memset(f, 0, sizeof *f);
  FILE *fp = fopen(path, "rb");
  if (!fp) return cram_err_set(err, CRAM_E_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(fp);
    return cram_err_set(err, CRAM_E_IO, "%s: not a regular file", path);
  }
  size_t size = (size_t)st.st_size;
  unsigned char *buf = malloc(size ? size : 1);
  if (!buf) {
    fclose(fp);
    return cram_err_set(err, CRAM_E_NOMEM, "%s: out of memory reading %zu bytes", path, size);
  }
  size_t got = fread(buf, 1, size, fp);
  bool bad = ferror(fp);
  fclose(fp);
  if (bad || got != size) {
    free(buf);
    return cram_err_set(err, CRAM_E_IO, "%s: read failed", path);
  }
  return cram_st_parse(buf, size, path, f, err);
}

const cram_st_tensor *cram_st_find(const cram_st_file *f, const char *name) {
  for (size_t i = 0; i < f->count; i++)
    if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
  return NULL;
}

const char *cram_st_meta_get(const cram_st_file *f, const char *key) {
  for (size_t i = 0; i < f->nmeta; i++)
    if (!strcmp(f->meta[i].key, key)) return f->meta[i].value;
  return NULL;
}

/* One element at p, unaligned, in the host's byte order (the format's little
 * endian on every host cram runs on). */
#define ST_LOAD_STORE(T, name)                 \
  static T ld_##name(const unsigned char *p) { \
    T v;                                       \
    memcpy(&v, p, sizeof v);                   \
    return v;                                  \
  }                                            \
  static void st_##name(unsigned char *p, T v) { memcpy(p, &v, sizeof v); }
ST_LOAD_STORE(float, f32)
ST_LOAD_STORE(double, f64)
ST_LOAD_STORE(uint16_t, u16)
ST_LOAD_STORE(uint32_t, u32)
ST_LOAD_STORE(int32_t, i32)
ST_LOAD_STORE(int64_t, i64)

static float bf16_to_f32(uint16_t h) {
  unsigned char b[4];
  st_u32(b, (uint32_t)h << 16);
  return ld_f32(b);
}

/* Round to nearest even; NaN stays NaN (quiet), infinities stay. */
static uint16_t f32_to_bf16(float f) {
  unsigned char b[4];
  st_f32(b, f);
  uint32_t u = ld_u32(b);
  if ((u & 0x7f800000u) == 0x7f800000u) u = (u & 0xffff0000u) | ((u & 0xffffu) ? 0x00400000u : 0);
  else u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

double cram_st_get(const cram_st_tensor *t, int64_t i) {
  const unsigned char *p = t->data + (size_t)i * cram_st_dtype_size(t->dtype);
  switch (t->dtype) {
  case CRAM_ST_F32: return ld_f32(p);
  case CRAM_ST_F64: return ld_f64(p);
  case CRAM_ST_BF16: return bf16_to_f32(ld_u16(p));
  case CRAM_ST_I32: return ld_i32(p);
  case CRAM_ST_I64: return (double)ld_i64(p);
  }
  return 0;
}

void cram_st_put(cram_st_dtype t, unsigned char *out, int64_t i, double x) {
  unsigned char *p = out + (size_t)i * cram_st_dtype_size(t);
  switch (t) {
  case CRAM_ST_F32: st_f32(p, (float)x); break;
  case CRAM_ST_F64: st_f64(p, x); break;
  case CRAM_ST_BF16: st_u16(p, f32_to_bf16((float)x)); break;
  case CRAM_ST_I32: st_i32(p, (int32_t)x); break;
  case CRAM_ST_I64: st_i64(p, (int64_t)x); break;
  }
}

/* ---- writer ----------------------------------------------------------------- */

typedef struct Buf {
  char *p;
  size_t n, cap;
  bool oom;
} Buf;

static void bput(Buf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1) cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) {
      b->oom = true;
      return;
    }
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

static void bputs(Buf *b, const char *s) { bput(b, s, strlen(s)); }

static void bstr(Buf *b, const char *s) {
  bputs(b, "\"");
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    char tmp[8];
    if (*p == '"' || *p == '\\') {
      tmp[0] = '\\';
      tmp[1] = (char)*p;
      bput(b, tmp, 2);
    } else if (*p < 0x20) {
      snprintf(tmp, sizeof tmp, "\\u%04x", *p);
      bputs(b, tmp);
    } else bput(b, (const char *)p, 1);
  }
  bputs(b, "\"");
}

cram_status cram_st_write(const char *path, const cram_st_tensor *ts, size_t n, const cram_st_meta *meta, size_t nmeta,
                          cram_err *err) {
  Buf h = { 0 };
  char num[64];
  uint64_t off = 0;
  bputs(&h, "{");
  bool first = true;
  if (nmeta) {
    bputs(&h, "\"__metadata__\":{");
    for (size_t i = 0; i < nmeta; i++) {
      if (i) bputs(&h, ",");
      bstr(&h, meta[i].key);
      bputs(&h, ":");
      bstr(&h, meta[i].value);
    }
    bputs(&h, "}");
    first = false;
  }
  for (size_t i = 0; i < n; i++) {
    const cram_st_tensor *t = &ts[i];
    if (!t->name || !*t->name || !strcmp(t->name, "__metadata__") || (unsigned)t->dtype > CRAM_ST_I64 || t->rank < 0 ||
        t->rank > CRAM_ST_MAX_RANK) {
      free(h.p);
      return cram_err_set(err, CRAM_E_ARG, "%s: invalid tensor #%zu ('%s') to write", path, i, t->name ? t->name : "");
    }
    for (size_t k = 0; k < i; k++)
      if (!strcmp(ts[k].name, t->name)) {
        free(h.p);
        return cram_err_set(err, CRAM_E_ARG, "%s: tensor '%s' given twice", path, t->name);
      }
    int64_t numel = 1;
    for (int d = 0; d < t->rank; d++) numel *= t->shape[d];
    uint64_t nb = (uint64_t)numel * cram_st_dtype_size(t->dtype);
    if (!first) bputs(&h, ",");
    first = false;
    bstr(&h, t->name);
    bputs(&h, ":{\"dtype\":\"");
    bputs(&h, dtype_names[t->dtype]);
    bputs(&h, "\",\"shape\":[");
    for (int d = 0; d < t->rank; d++) {
      snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)t->shape[d]);
      bputs(&h, num);
    }
    snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off, (unsigned long long)(off + nb));
    bputs(&h, num);
    off += nb;
  }
  bputs(&h, "}");
  while (!h.oom && h.n % 8) bputs(&h, " ");
  if (h.oom) {
    free(h.p);
    return cram_err_set(err, CRAM_E_NOMEM, "%s: out of memory building the header", path);
  }
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 32);
  if (!tmp) {
    free(h.p);
    return cram_err_set(err, CRAM_E_NOMEM, "%s: out of memory", path);
  }
  snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
  cram_status r = CRAM_OK;
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    r = cram_err_set(err, CRAM_E_IO, "%s: cannot create '%s': %s", path, tmp, strerror(errno));
    goto out;
  }
  uint64_t hl = h.n;
  bool ok = fwrite(&hl, 8, 1, f) == 1 && fwrite(h.p, 1, h.n, f) == h.n;
  for (size_t i = 0; ok && i < n; i++) {
    int64_t numel = 1;
    for (int d = 0; d < ts[i].rank; d++) numel *= ts[i].shape[d];
    size_t nb = (size_t)numel * cram_st_dtype_size(ts[i].dtype);
    if (nb && (!ts[i].data || fwrite(ts[i].data, 1, nb, f) != nb)) ok = false;
  }
  int e = errno;
  if (!ok || fflush(f) != 0 || fsync(fileno(f)) != 0) {
    if (!ok) e = errno ? errno : e;
    fclose(f);
    remove(tmp);
    r = cram_err_set(err, CRAM_E_IO, "%s: write failed: %s", path, strerror(e ? e : EIO));
    goto out;
  }
  if (fclose(f) != 0 || rename(tmp, path) != 0) {
    e = errno;
    remove(tmp);
    r = cram_err_set(err, CRAM_E_IO, "%s: cannot finish writing: %s", path, strerror(e));
  }
out:
  free(tmp);
  free(h.p);
  return r;
}
