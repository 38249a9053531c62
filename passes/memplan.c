/* memplan.c: liveness -> one activation arena with offsets (memplan.h).
 *
 * 1. kind of every node: persistent (sources, outputs), kernel-internal, or
 *    arena; lifetime [def, last use] over node order.
 * 2. in-place: node v joins the slot of input x when v is pointwise
 *    (memplan_inplace_op), x is an arena value of the same byte size whose
 *    last use is v, and x is the tail of its slot's chain. Legal because a
 *    pointwise kernel reads element i of x before writing element i of v,
 *    and nothing reads x after v.
 * 3. slots (chains) sorted by size, largest first; each goes into the best
 *    fitting gap among the already placed slots whose lifetimes overlap it
 *    (greedy by size, TFLite's planner), or at the end.
 */
#include <stdlib.h>
#include <string.h>

#include "memplan.h"

bool memplan_inplace_op(OpKind op) {
  switch (op) { /* element i of the output reads only element i (or a broadcast/scalar) of each input */
  case OP_ADD: case OP_MUL: case OP_SCALE: case OP_GELU: case OP_RELU: case OP_TANH: case OP_DROPOUT:
  case OP_GELU_GRAD: case OP_RELU_GRAD: case OP_TANH_GRAD: case OP_SQRT:
  case OP_EXP: case OP_RSQRT: case OP_SIGMOID: case OP_SILU: case OP_SIN: case OP_COS:
  case OP_SIGMOID_GRAD: case OP_SILU_GRAD:
  case OP_ADAM_M: case OP_ADAM_V: case OP_ADAMW_PARAM:
    return true;
  default: return false;
  }
}

typedef struct Slot {
  ValueId root;
  int64_t size;
  uint32_t def, last;
  int64_t offset;
} Slot;

static int by_size(const void *a, const void *b) {
  const Slot *x = a, *y = b;
  if (x->size != y->size) return x->size > y->size ? -1 : 1;
  return x->def < y->def ? -1 : x->def > y->def; /* deterministic */
}

static bool overlap(uint32_t d0, uint32_t l0, uint32_t d1, uint32_t l1) { return d0 <= l1 && d1 <= l0; }

MemPlan *memplan_run(const Graph *g, const MemPlanOpts *o, Arena *a) {
  uint32_t n = g->n, cap = n ? n : 1;
  int64_t align = o->align ? (int64_t)o->align : 256;
  MemPlan *p = ARENA_NEW(a, MemPlan);
  p->n = n;
  p->kind = ARENA_ARRAY(a, uint8_t, cap);
  p->offset = ARENA_ARRAY(a, int64_t, cap);
  p->size = ARENA_ARRAY(a, int64_t, cap);
  p->def = ARENA_ARRAY(a, uint32_t, cap);
  p->last = ARENA_ARRAY(a, uint32_t, cap);
  p->inplace_of = ARENA_ARRAY(a, ValueId, cap);
  bool *is_out = ARENA_ARRAY(a, bool, cap);
  bool *ext_use = ARENA_ARRAY(a, bool, cap); /* read by a node of another kernel */
  for (uint32_t i = 0; i < g->nout; i++) is_out[g->outputs[i].value] = true;
  for (ValueId v = 0; v < n; v++) {
    p->def[v] = p->last[v] = v;
    p->inplace_of[v] = IR_NONE;
    p->offset[v] = -1;
    const Node *nd = &g->nodes[v];
    for (int k = 0; k < nd->nin; k++) {
      ValueId q = nd->in[k];
      if (v > p->last[q]) p->last[q] = v;
      if (!g->kernel || g->kernel[q] != g->kernel[v]) ext_use[q] = true;
    }
  }
  /* 1. kinds and sizes */
  for (ValueId v = 0; v < n; v++) {
    const Node *nd = &g->nodes[v];
    if (ir_ops[nd->op].cls == OC_SOURCE || is_out[v]) p->kind[v] = MP_PERSISTENT;
    else if (g->kernel && !o->materialize_all && !ext_use[v] && p->last[v] != v) p->kind[v] = MP_INTERNAL;
    else {
      p->kind[v] = MP_ARENA;
      int64_t es = o->elem_size ? (int64_t)o->elem_size : (int64_t)ir_dtype_size(nd->dtype), bytes;
      if (__builtin_mul_overflow(ir_shape_numel(&nd->shape), es, &bytes) || bytes > INT64_MAX - align) return NULL;
      p->size[v] = (bytes + align - 1) / align * align;
      p->sum_bytes += p->size[v];
      p->nbuffers++;
    }
  }
  /* 2. in-place chains: root[v] = first node of v's slot; tail[root] = its newest member */
  ValueId *root = ARENA_ARRAY(a, ValueId, cap), *tail = ARENA_ARRAY(a, ValueId, cap);
  uint32_t *slot_last = ARENA_ARRAY(a, uint32_t, cap);
  for (ValueId v = 0; v < n; v++) {
    root[v] = tail[v] = v;
    slot_last[v] = p->last[v];
    if (p->kind[v] != MP_ARENA || o->no_inplace || !memplan_inplace_op(g->nodes[v].op)) continue;
    const Node *nd = &g->nodes[v];
    for (int k = 0; k < nd->nin; k++) {
      ValueId x = nd->in[k];
      bool twice = false; /* x read twice by v (add x, x) is fine; another input in x's slot is not */
      for (int j = 0; j < nd->nin; j++) twice |= j != k && root[nd->in[j]] == root[x] && nd->in[j] != x;
      if (p->kind[x] != MP_ARENA || p->size[x] != p->size[v] || p->last[x] != v || tail[root[x]] != x || twice)
        continue;
      p->inplace_of[v] = x;
      root[v] = root[x];
      tail[root[x]] = v;
      p->ninplace++;
      break;
    }
  }
  for (ValueId v = 0; v < n; v++)
    if (p->kind[v] == MP_ARENA && p->last[v] > slot_last[root[v]]) slot_last[root[v]] = p->last[v];
  /* 3. place slots, greedy by size */
  uint32_t ns = 0;
  Slot *slots = ARENA_ARRAY(a, Slot, cap);
  for (ValueId v = 0; v < n; v++)
    if (p->kind[v] == MP_ARENA && root[v] == v) slots[ns++] = (Slot){v, p->size[v], v, slot_last[v], -1};
  qsort(slots, ns, sizeof *slots, by_size);
  Slot **placed = ARENA_ARRAY(a, Slot *, cap); /* overlapping placed slots, sorted by offset */
  for (uint32_t i = 0; i < ns; i++) {
    Slot *s = &slots[i];
    uint32_t np = 0;
    for (uint32_t j = 0; j < i; j++)
      if (overlap(s->def, s->last, slots[j].def, slots[j].last)) {
        uint32_t k = np++; /* insertion sort by offset: these lists stay short */
        while (k > 0 && placed[k - 1]->offset > slots[j].offset) {
          placed[k] = placed[k - 1];
          k--;
        }
        placed[k] = &slots[j];
      }
    int64_t best = -1, best_gap = INT64_MAX, prev_end = 0;
    for (uint32_t k = 0; k < np; k++) {
      int64_t gap = placed[k]->offset - prev_end;
      if (gap >= s->size && gap < best_gap) {
        best = prev_end;
        best_gap = gap;
      }
      int64_t end = placed[k]->offset + placed[k]->size;
      if (end > prev_end) prev_end = end;
    }
    s->offset = best >= 0 ? best : prev_end;
    if (s->offset + s->size > p->arena_bytes) p->arena_bytes = s->offset + s->size;
  }
  for (uint32_t i = 0; i < ns; i++) p->offset[slots[i].root] = slots[i].offset;
  for (ValueId v = 0; v < n; v++)
    if (p->kind[v] == MP_ARENA) p->offset[v] = p->offset[root[v]];
  /* peak live bytes: a sweep over the schedule with slot intervals */
  int64_t *delta = ARENA_ARRAY(a, int64_t, (size_t)cap + 1);
  for (uint32_t i = 0; i < ns; i++) {
    delta[slots[i].def] += slots[i].size;
    delta[slots[i].last + 1] -= slots[i].size;
  }
  for (int64_t t = 0, live = 0; t < (int64_t)n; t++) {
    live += delta[t];
    if (live > p->peak_bytes) p->peak_bytes = live;
  }
  return p;
}

bool memplan_check(const Graph *g, const MemPlan *p, char *msg, size_t msglen) {
  for (ValueId v = 0; v < p->n; v++) {
    if (p->kind[v] != MP_ARENA) continue;
    if (p->offset[v] < 0 || p->offset[v] + p->size[v] > p->arena_bytes) {
      snprintf(msg, msglen, "%%%u [%lld, +%lld) lies outside the arena of %lld bytes", v, (long long)p->offset[v],
               (long long)p->size[v], (long long)p->arena_bytes);
      return false;
    }
    for (ValueId u = 0; u < v; u++) {
      if (p->kind[u] != MP_ARENA || !overlap(p->def[u], p->last[u], p->def[v], p->last[v])) continue;
      if (p->offset[u] >= p->offset[v] + p->size[v] || p->offset[v] >= p->offset[u] + p->size[u]) continue;
      if (p->inplace_of[v] == u && p->last[u] == v && memplan_inplace_op(g->nodes[v].op)) continue;
      snprintf(msg, msglen, "%%%u (live %u..%u) and %%%u (live %u..%u) overlap in memory at [%lld, %lld)", u,
               p->def[u], p->last[u], v, p->def[v], p->last[v], (long long)p->offset[v], (long long)p->offset[v] + p->size[v]);
      return false;
    }
  }
  return true;
}
