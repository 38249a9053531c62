/* arena.c: see arena.h. Chunks grow to fit large requests; alignment is 16 so
 * any C object (including long double / SIMD types) can be placed. */
#include "arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ArenaChunk {
  ArenaChunk *next;
  size_t used, cap;
  _Alignas(16) unsigned char data[];
};

static void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (!p) {
    fprintf(stderr, "cramc: out of memory (%zu bytes)\n", n);
    abort();
  }
  return p;
}

Arena *arena_new(void) {
  Arena *a = xmalloc(sizeof *a);
  a->head = NULL;
  a->chunk_size = 64 * 1024;
  a->total = 0;
  return a;
}

void arena_free(Arena *a) {
  if (!a) return;
  for (ArenaChunk *c = a->head, *next; c; c = next) {
    next = c->next;
    free(c);
  }
  free(a);
}

void *arena_alloc(Arena *a, size_t n) {
  size_t need = (n + 15) & ~(size_t)15;
  if (need < n) { /* overflow of the rounding itself */
    fprintf(stderr, "cramc: allocation of %zu bytes is too large\n", n);
    abort();
  }
  ArenaChunk *c = a->head;
  if (!c || c->cap - c->used < need) {
    size_t cap = need > a->chunk_size ? need : a->chunk_size;
    c = xmalloc(sizeof *c + cap);
    c->used = 0;
    c->cap = cap;
    c->next = a->head;
    a->head = c;
  }
  void *p = c->data + c->used;
  c->used += need;
  a->total += need;
  memset(p, 0, n);
  return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n) {
  char *p = arena_alloc(a, n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

char *arena_strdup(Arena *a, const char *s) { return arena_strndup(a, s, strlen(s)); }

char *arena_printf(Arena *a, const char *fmt, ...) {
  va_list ap, ap2;
  /* Never true (fmt is a format literal), but says so to gcc, whose
   * -Wformat-truncation otherwise misfires under -fsanitize=undefined. */
  if (!fmt) fmt = "";
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  char *p = arena_alloc(a, (size_t)n + 1);
  vsnprintf(p, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  return p;
}
