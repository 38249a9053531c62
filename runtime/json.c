/* json.c - see json.h. */
#include "json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Start of the value of "key": (after the colon and spaces), or NULL. */
static const char *value_of(const char *obj, const char *key) {
  size_t kl = strlen(key);
  for (const char *p = strchr(obj, '"'); p; p = strchr(p + 1, '"')) {
    if (strncmp(p + 1, key, kl) == 0 && p[kl + 1] == '"') {
      const char *c = p + kl + 2;
      while (*c == ' ') c++;
      if (*c != ':') continue;
      c++;
      while (*c == ' ') c++;
      return c;
    }
  }
  return NULL;
}

double cram_json_num(const char *obj, const char *key) {
  const char *v = value_of(obj, key);
  if (!v || strncmp(v, "null", 4) == 0) return NAN;
  char *end;
  double x = strtod(v, &end);
  return end == v ? NAN : x;
}

int cram_json_str(const char *obj, const char *key, char *out, size_t cap) {
  const char *v = value_of(obj, key);
  if (!v || *v != '"' || cap == 0) return -1;
  size_t o = 0;
  for (v++; *v && *v != '"'; v++) {
    char c = *v;
    if (c == '\\' && v[1]) {
      v++;
      c = *v == 'n' ? '\n' : *v == 't' ? '\t' : *v;
      if (*v == 'u') { /* \u00XX as cram_json_put_str writes control bytes; other code points as '?' */
        char hex[5] = { 0 };
        size_t h = strnlen(v + 1, 4);
        memcpy(hex, v + 1, h);
        unsigned long cp = strtoul(hex, NULL, 16);
        c = h == 4 && cp < 0x80 ? (char)cp : '?';
        v += h;
      }
    }
    if (o + 1 < cap) out[o++] = c;
  }
  out[o] = 0;
  return 0;
}

void cram_json_put_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}
