/* memplan.c: liveness -> one activation arena with offsets (memplan.h).
 *
 * 1. kind of every node: persistent (sources, outputs), kernel-internal, or
 *    arena; lifetime [def, last use] over node order.
 * 2. aliases and in-place: a reshape of an arena value IS that value's
 *    bytes (row-major: a relabelling), so it joins its input's slot and
 *    costs no copy; the slot then lives until the last read of any member.
 *    A pointwise node v (memplan_inplace_op) joins the slot of input x when
 *    x is an arena value of the same byte size and no member of x's slot
 *    (x, a reshape of it, an earlier in-place link) is read after v. Legal
 *    because a pointwise kernel reads element i of x before writing element
 *    i of v, and nothing reads those bytes after v.
 * 3. slots (chains) sorted by size, largest first; each goes into the best
 *    fitting gap among the already placed slots whose lifetimes overlap it
 *    (greedy by size, TFLite's planner), or at the end.
 */
#include <stdlib.h>
#include <string.h>

#include "memplan.h"

/* element i of the output reads only element i (or a broadcast/scalar) of each input: ops.def's INPLACE */
bool memplan_inplace_op(OpKind op) { return ir_op_is(op, OPP_INPLACE); }

bool memplan_alias_op(OpKind op) { return op == OP_RESHAPE; } /* row-major: the same bytes, relabelled */

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

/* A free block of the arena: [off, off + size). */
typedef struct Block {
  int64_t off, size;
} Block;

static int by_def(const void *a, const void *b) {
  const Slot *x = a, *y = b;
  return x->def < y->def ? -1 : x->def > y->def;
}

/* Linear scan: slots sorted by def (their order in `slots` is then the
 * schedule's); at each slot's def, the slots whose last use is before it
 * return their bytes to the free list (kept sorted by offset, neighbours
 * merged), and it takes the smallest free block that holds it, or grows the
 * arena at its top. Expiry order: a binary heap of placed slots keyed by last. */
static void plan_linear(Slot *slots, uint32_t ns, uint32_t n, MemPlan *p, Arena *a) {
  (void)n;
  qsort(slots, ns, sizeof *slots, by_def);
  uint32_t cap = ns ? ns : 1, nfree = 0, nheap = 0;
  Block *fr = ARENA_ARRAY(a, Block, (size_t)cap + 1);
  uint32_t *heap = ARENA_ARRAY(a, uint32_t, cap); /* min-heap of slot indices by last */
  int64_t top = 0;
  for (uint32_t i = 0; i < ns; i++) {
    Slot *s = &slots[i];
    while (nheap && slots[heap[0]].last < s->def) { /* free what died before s is defined */
      const Slot *d = &slots[heap[0]];
      heap[0] = heap[--nheap];
      for (uint32_t k = 0;;) { /* sift down */
        uint32_t l = 2 * k + 1, r = l + 1, m = k;
        if (l < nheap && slots[heap[l]].last < slots[heap[m]].last) m = l;
        if (r < nheap && slots[heap[r]].last < slots[heap[m]].last) m = r;
        if (m == k) break;
        uint32_t t = heap[k];
        heap[k] = heap[m];
        heap[m] = t;
        k = m;
      }
      uint32_t lo = 0, hi = nfree; /* insert [off, off + size) by offset, merging neighbours */
      while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (fr[mid].off < d->offset) lo = mid + 1;
        else hi = mid;
      }
      Block b = { d->offset, d->size };
      bool left = lo > 0 && fr[lo - 1].off + fr[lo - 1].size == b.off;
      bool right = lo < nfree && b.off + b.size == fr[lo].off;
      if (left && right) {
        fr[lo - 1].size += b.size + fr[lo].size;
        memmove(fr + lo, fr + lo + 1, (size_t)(nfree - lo - 1) * sizeof *fr);
        nfree--;
      } else if (left) {
        fr[lo - 1].size += b.size;
      } else if (right) {
        fr[lo].off = b.off;
        fr[lo].size += b.size;
      } else {
        memmove(fr + lo + 1, fr + lo, (size_t)(nfree - lo) * sizeof *fr);
        fr[lo] = b;
        nfree++;
      }
      if (nfree && fr[nfree - 1].off + fr[nfree - 1].size == top) { /* a free tail shrinks the top */
        top = fr[nfree - 1].off;
        nfree--;
      }
    }
    uint32_t best = UINT32_MAX;
    for (uint32_t k = 0; k < nfree; k++)
      if (fr[k].size >= s->size && (best == UINT32_MAX || fr[k].size < fr[best].size)) best = k;
    if (best != UINT32_MAX) {
      s->offset = fr[best].off;
      fr[best].off += s->size;
      fr[best].size -= s->size;
      if (!fr[best].size) {
        memmove(fr + best, fr + best + 1, (size_t)(nfree - best - 1) * sizeof *fr);
        nfree--;
      }
    } else {
      s->offset = top;
      top += s->size;
    }
    if (top > p->arena_bytes) p->arena_bytes = top;
    uint32_t k = nheap++; /* push by last, sift up */
    heap[k] = i;
    while (k > 0 && slots[heap[(k - 1) / 2]].last > slots[heap[k]].last) {
      uint32_t t = heap[k];
      heap[k] = heap[(k - 1) / 2];
      heap[(k - 1) / 2] = t;
      k = (k - 1) / 2;
    }
  }
}

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
  p->alias_of = ARENA_ARRAY(a, ValueId, cap);
  bool *is_out = ARENA_ARRAY(a, bool, cap);
  bool *ext_use = ARENA_ARRAY(a, bool, cap); /* read by a node of another kernel */
  for (uint32_t i = 0; i < g->nout; i++) is_out[g->outputs[i].value] = true;
  /* Only an elementwise kernel over one size runs element by element (what a node reads at element e
   * is dead to the kernel once e is written). A kernel over values of different sizes (adamw_multi's
   * multi-tensor groups), or with a row-wise or reducing node (a norm and the casts or parameter
   * gradients a backend computes in its launch), runs its nodes concurrently or over whole rows: what
   * any of its nodes reads stays live to its last node, so no buffer it writes takes those bytes. */
  uint32_t *kernel_last = NULL;
  if (g->kernel) {
    kernel_last = ARENA_ARRAY(a, uint32_t, g->nkernels ? g->nkernels : 1);
    int64_t *numel = ARENA_ARRAY(a, int64_t, g->nkernels ? g->nkernels : 1);
    for (ValueId v = 0; v < n; v++) {
      uint32_t K = g->kernel[v];
      if (K == IR_NONE) continue;
      int64_t e = ir_shape_numel(&g->nodes[v].shape);
      OpClass cls = ir_ops[g->nodes[v].op].cls;
      bool ew = cls == OC_EW_UNARY || cls == OC_EW_BINARY;
      if (!numel[K]) numel[K] = ew ? e : -1, kernel_last[K] = IR_NONE; /* IR_NONE: element by element so far */
      else if (numel[K] != e || !ew) numel[K] = -1;
    }
    for (ValueId v = 0; v < n; v++) {
      uint32_t K = g->kernel[v];
      if (K != IR_NONE && numel[K] < 0) kernel_last[K] = v;
    }
  }
  for (ValueId v = 0; v < n; v++) {
    p->def[v] = p->last[v] = v;
    p->inplace_of[v] = p->alias_of[v] = IR_NONE;
    p->offset[v] = -1;
    const Node *nd = &g->nodes[v];
    uint32_t K = g->kernel ? g->kernel[v] : IR_NONE;
    uint32_t until = K != IR_NONE && kernel_last[K] != IR_NONE ? kernel_last[K] : v;
    for (int k = 0; k < nd->nin; k++) {
      ValueId q = nd->in[k];
      if (until > p->last[q]) p->last[q] = until;
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
  /* 2. alias and in-place chains: root[v] = first node of v's slot; slot_last[root] = the last read of any
   * member so far (members join in node order, so it is final for the reads before the current node) */
  ValueId *root = ARENA_ARRAY(a, ValueId, cap);
  uint32_t *slot_last = ARENA_ARRAY(a, uint32_t, cap);
  for (ValueId v = 0; v < n; v++) {
    root[v] = v;
    slot_last[v] = p->last[v];
    if (p->kind[v] != MP_ARENA || o->no_inplace) continue;
    const Node *nd = &g->nodes[v];
    if (memplan_alias_op(nd->op)) {
      ValueId x = nd->in[0];
      if (p->kind[x] != MP_ARENA || p->size[x] != p->size[v]) continue;
      p->alias_of[v] = p->alias_of[x] != IR_NONE ? p->alias_of[x] : x;
      root[v] = root[x];
      if (p->last[v] > slot_last[root[x]]) slot_last[root[x]] = p->last[v];
      p->nalias++;
      p->sum_bytes -= p->size[v];
      p->nbuffers--;
      continue;
    }
    if (!memplan_inplace_op(nd->op)) continue;
    for (int k = 0; k < nd->nin; k++) {
      ValueId x = nd->in[k];
      bool twice = false; /* x read twice by v (add x, x) is fine; another input in x's slot is not */
      for (int j = 0; j < nd->nin; j++) twice |= j != k && root[nd->in[j]] == root[x] && nd->in[j] != x;
      /* the same element count, not just the same aligned size: an input broadcast
       * to v's shape (a [2,1] under a [2,4] result, both one 256-byte block) is
       * read at other indices than the one being written */
      bool same_elems = ir_shape_numel(&g->nodes[x].shape) == ir_shape_numel(&nd->shape) &&
                        ir_dtype_size(g->nodes[x].dtype) == ir_dtype_size(nd->dtype);
      if (p->kind[x] != MP_ARENA || !same_elems || p->size[x] != p->size[v] || slot_last[root[x]] != v || twice) continue;
      p->inplace_of[v] = x;
      root[v] = root[x];
      slot_last[root[x]] = p->last[v];
      p->ninplace++;
      break;
    }
  }
  /* 3. place slots, greedy by size */
  uint32_t ns = 0;
  Slot *slots = ARENA_ARRAY(a, Slot, cap);
  for (ValueId v = 0; v < n; v++)
    if (p->kind[v] == MP_ARENA && root[v] == v) slots[ns++] = (Slot){ v, p->size[v], v, slot_last[v], -1 };
  bool greedy = o->planner == MP_PLAN_GREEDY || (o->planner == MP_PLAN_AUTO && ns <= MEMPLAN_GREEDY_MAX);
  if (!greedy) {
    plan_linear(slots, ns, n, p, a);
    goto placed_all;
  }
  qsort(slots, ns, sizeof *slots, by_size);
  /* Every placed slot, kept sorted by offset (binary search + memmove on
   * insert). A new slot walks this one list and looks only at the slots
   * whose lifetimes overlap its own: the gaps between those, in offset
   * order, are its candidates. This is the plan the per-slot collect-and-
   * sort gave (gaps do not depend on the order of equal offsets), in
   * O(slots^2) cheap comparisons instead of an insertion sort per slot,
   * which made a 64-layer model's plan take seconds and a 512-layer one's
   * minutes. */
  Slot **placed = ARENA_ARRAY(a, Slot *, cap);
  uint32_t nplaced = 0;
  for (uint32_t i = 0; i < ns; i++) {
    Slot *s = &slots[i];
    int64_t best = -1, best_gap = INT64_MAX, prev_end = 0;
    for (uint32_t k = 0; k < nplaced; k++) {
      const Slot *q = placed[k];
      if (!overlap(s->def, s->last, q->def, q->last)) continue;
      int64_t gap = q->offset - prev_end;
      if (gap >= s->size && gap < best_gap) {
        best = prev_end;
        best_gap = gap;
      }
      int64_t end = q->offset + q->size;
      if (end > prev_end) prev_end = end;
    }
    s->offset = best >= 0 ? best : prev_end;
    if (s->offset + s->size > p->arena_bytes) p->arena_bytes = s->offset + s->size;
    uint32_t lo = 0, hi = nplaced; /* first placed slot with a larger offset */
    while (lo < hi) {
      uint32_t mid = lo + (hi - lo) / 2;
      if (placed[mid]->offset <= s->offset) lo = mid + 1;
      else hi = mid;
    }
    memmove(placed + lo + 1, placed + lo, (size_t)(nplaced - lo) * sizeof *placed);
    placed[lo] = s;
    nplaced++;
  }
placed_all:
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
      ValueId ru = p->alias_of[u] != IR_NONE ? p->alias_of[u] : u, rv = p->alias_of[v] != IR_NONE ? p->alias_of[v] : v;
      if (ru == rv && p->offset[u] == p->offset[v]) continue; /* a reshape and the value it aliases */
      snprintf(msg, msglen, "%%%u (live %u..%u) and %%%u (live %u..%u) overlap in memory at [%lld, %lld)", u, p->def[u],
               p->last[u], v, p->def[v], p->last[v], (long long)p->offset[v], (long long)p->offset[v] + p->size[v]);
      return false;
    }
  }
  return true;
}
