/* cse.c: common subexpression elimination.
 *
 * Rewrites: two nodes with the same op, the same attributes and the same
 * (already deduplicated) inputs become one; uses of the second read the
 * first. Autodiff re-derives values the forward already has (the normalised
 * x of layernorm_grad's weight gradient, reshapes of the same activation).
 * Legal because every op is a pure function of its inputs and attributes:
 * dropout draws its mask from (seed, key, element), so equal key and input
 * give the same mask. Never merged: input and param nodes (each is a distinct
 * external buffer, even at equal type). Constant sources (fill, sinusoid)
 * merge when their types and attributes are equal.
 */
#include <string.h>

#include "pass.h"
#include "passes.h"

static uint64_t mix(uint64_t h, uint64_t x) {
  h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdull;
}

static uint64_t attr_hash(uint64_t h, const Attr *a) {
  h = mix(h, (uint64_t)a->id);
  switch (ir_attrs[a->id].kind) {
  case AK_INT: return mix(h, (uint64_t)a->u.i);
  case AK_FLOAT: {
    uint64_t bits;
    memcpy(&bits, &a->u.f, sizeof bits);
    return mix(h, bits);
  }
  case AK_STR:
    for (const char *s = a->u.s; *s; s++) h = mix(h, (unsigned char)*s);
    return h;
  case AK_INTS:
    for (uint32_t i = 0; i < a->u.ints.n; i++) h = mix(h, (uint64_t)a->u.ints.v[i]);
    return mix(h, a->u.ints.n);
  }
  return h;
}

static bool attr_eq(const Attr *a, const Attr *b) {
  if (a->id != b->id) return false;
  switch (ir_attrs[a->id].kind) {
  case AK_INT: return a->u.i == b->u.i;
  case AK_FLOAT: return !memcmp(&a->u.f, &b->u.f, sizeof a->u.f); /* bitwise: -0.0 != 0.0 */
  case AK_STR: return !strcmp(a->u.s, b->u.s);
  case AK_INTS: return a->u.ints.n == b->u.ints.n && !memcmp(a->u.ints.v, b->u.ints.v, a->u.ints.n * sizeof(int64_t));
  }
  return false;
}

/* n (with inputs in[]) computes the same value as dst node m. */
static bool same(const Node *n, const ValueId *in, const Node *m) {
  if (n->op != m->op || n->nin != m->nin || n->nattr != m->nattr || n->dtype != m->dtype || !ir_shape_eq(&n->shape, &m->shape))
    return false;
  for (int k = 0; k < n->nin; k++)
    if (in[k] != m->in[k]) return false;
  for (int k = 0; k < n->nattr; k++)
    if (!attr_eq(&n->attr[k], &m->attr[k])) return false;
  return true;
}

static uint64_t node_hash(const Node *n, const ValueId *in) {
  uint64_t h = mix((uint64_t)n->op, n->dtype);
  for (int d = 0; d < n->shape.rank; d++) h = mix(h, (uint64_t)n->shape.dim[d]);
  for (int k = 0; k < n->nin; k++) h = mix(h, in[k]);
  for (int k = 0; k < n->nattr; k++) h = attr_hash(h, &n->attr[k]);
  return h;
}

Graph *pass_cse(const Graph *in, PassCtx *cx) {
  Graph *g = ir_graph_new_like(in);
  ValueId *map = ARENA_ARRAY(g->arena, ValueId, in->n ? in->n : 1);
  uint32_t cap = 16;
  while (cap < 2 * in->n) cap *= 2;
  ValueId *table = ARENA_ARRAY(g->arena, ValueId, cap); /* open addressing over dst ids */
  for (uint32_t i = 0; i < cap; i++) table[i] = IR_NONE;
  for (ValueId v = 0; v < in->n; v++) {
    const Node *n = &in->nodes[v];
    ValueId ins[IR_MAX_IN];
    for (int k = 0; k < n->nin; k++) ins[k] = map[n->in[k]];
    bool external = n->op == OP_INPUT || n->op == OP_PARAM;
    uint64_t h = node_hash(n, ins);
    uint32_t slot = (uint32_t)h & (cap - 1);
    if (!external) {
      while (table[slot] != IR_NONE && !same(n, ins, &g->nodes[table[slot]])) slot = (slot + 1) & (cap - 1);
      if (table[slot] != IR_NONE) {
        map[v] = table[slot];
        continue;
      }
    }
    map[v] = pass_emit(g, n, ins, cx->diag);
    if (map[v] == IR_NONE) {
      ir_graph_free(g);
      return NULL;
    }
    if (!external) table[slot] = map[v];
  }
  pass_copy_outputs(g, in, map);
  return g;
}
