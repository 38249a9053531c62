/* arena.h: chunked bump allocation for the compiler.
 *
 * Every compiler data structure (AST, IR graphs, strings) lives in an Arena and
 * is released all at once with arena_free(). Nothing frees single objects, so
 * error paths never leak: they just drop pointers into the arena.
 */
#ifndef CRAMC_ARENA_H
#define CRAMC_ARENA_H

#include <stddef.h>

typedef struct ArenaChunk ArenaChunk;

typedef struct Arena {
  ArenaChunk *head;  /* newest chunk first */
  size_t chunk_size; /* default size of a fresh chunk */
  size_t total;      /* bytes handed out, for --stats */
} Arena;

Arena *arena_new(void);                /* aborts only on malloc failure */
void arena_free(Arena *a);             /* NULL is fine */
void *arena_alloc(Arena *a, size_t n); /* zeroed, 16-byte aligned */
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_strdup(Arena *a, const char *s);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define ARENA_NEW(a, T)      ((T *)arena_alloc((a), sizeof(T)))
#define ARENA_ARRAY(a, T, n) ((T *)arena_alloc((a), sizeof(T) * (size_t)(n)))

#endif
