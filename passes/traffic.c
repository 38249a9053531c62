/* traffic.c: the memory-traffic model behind `cramc --stats` (traffic.h).
 *
 * A kernel (Graph.kernel, one per computed node without a partition) reads
 * each value produced outside it once, and writes each of its values that a
 * node of another kernel, or an output, reads (or that nothing reads: it is
 * computed for its own sake). A reshape the memory planner aliases
 * (memplan.h) is no kernel and moves nothing: its readers read its input's
 * bytes. Every read is charged to the node that reads it first in its kernel,
 * every write to the node that produces it; node bytes add up to the
 * bytes_moved column exactly. Sizes are the dtype's (bf16 2 bytes).
 *
 * Families say where the bytes go, by IR structure only (never by where a
 * node came from in the .cram source): "attention" is every op on a
 * score-shaped value (rank >= 4, the last two axes equal: [B,heads,S,S]) and
 * every GEMM whose both operands are batched (QK^T, PV and their gradients);
 * the rest goes by op class; the fused attention ops (class attention) are
 * "attention" too, and read only the q/k/v columns of their sources. */
#include <stdlib.h>
#include <string.h>

#include "pass.h"
#include "traffic.h"

const char *const traffic_family_name[TF_COUNT] = {
  [TF_GEMM] = "gemm", [TF_ATTENTION] = "attention",     [TF_LAYOUT] = "layout", [TF_CAST] = "cast",
  [TF_NORM] = "norm", [TF_ELEMENTWISE] = "elementwise", [TF_REDUCE] = "reduce", [TF_GATHER] = "gather",
  [TF_LOSS] = "loss", [TF_OPTIMIZER] = "optimizer",
};

static bool score_shaped(const Shape *s) { return s->rank >= 4 && s->dim[s->rank - 1] == s->dim[s->rank - 2]; }

TrafficFamily traffic_family(const Graph *g, ValueId v) {
  const Node *n = &g->nodes[v];
  OpClass c = ir_ops[n->op].cls;
  if (c == OC_GEMM) {
    bool batched = n->nin >= 2 && g->nodes[n->in[0]].shape.rank > 2 && g->nodes[n->in[1]].shape.rank > 2;
    if (n->op == OP_MATMUL_ACT_GRAD || n->op == OP_MATMUL_GLU_GRAD)
      batched = g->nodes[n->in[1]].shape.rank > 2 && g->nodes[n->in[2]].shape.rank > 2;
    return batched ? TF_ATTENTION : TF_GEMM;
  }
  switch (n->op) {
  case OP_SUMSQ:
  case OP_SQRT:
  case OP_CLIP_COEF:
  case OP_ADAM_SCHED:
  case OP_ADAM_M:
  case OP_ADAM_V:
  case OP_ADAMW_PARAM: return TF_OPTIMIZER;
  case OP_SOFTMAX:
  case OP_SOFTMAX_GRAD: return TF_ATTENTION;
  default: break;
  }
  if (c == OC_ATTENTION) return TF_ATTENTION;
  if (score_shaped(&n->shape) && c != OC_VIEW) return TF_ATTENTION;
  switch (c) {
  case OC_VIEW: return TF_LAYOUT;
  case OC_NORM: return TF_NORM;
  case OC_REDUCE: return TF_REDUCE;
  case OC_GATHER: return TF_GATHER;
  case OC_LOSS: return TF_LOSS;
  default: return n->op == OP_CAST ? TF_CAST : TF_ELEMENTWISE;
  }
}

static int64_t value_bytes(const Node *n) { return ir_shape_numel(&n->shape) * (int64_t)ir_dtype_size(n->dtype); }

/* Bytes node v's kernel reads of its input k: the whole value, except a fused
 * attention's q/k/v source, of which it reads only the columns its parts
 * cover (a source wider than q|k|v is not read in full). */
static int64_t read_bytes(const Graph *g, ValueId v, int k) {
  const Node *n = &g->nodes[v], *x = &g->nodes[n->in[k]];
  IrAttnGeom geo;
  char msg[256];
  if (ir_ops[n->op].cls != OC_ATTENTION || k > 2 || !ir_attention_geom(g, n, &geo, msg, sizeof msg)) return value_bytes(x);
  int64_t cols = 0; /* distinct parts of this node that read input k's value */
  for (int t = 0; t < 3; t++) {
    bool dup = false;
    for (int u = 0; u < t; u++) dup |= n->in[u] == n->in[t] && geo.off[u] == geo.off[t];
    if (n->in[t] == n->in[k] && !dup) cols += geo.dh;
  }
  if (cols > geo.width[k]) cols = geo.width[k];
  return value_bytes(x) / geo.width[k] * cols;
}

void traffic_run(const Graph *g, const MemPlan *p, Traffic *t, int64_t *node_bytes, Arena *a) {
  memset(t, 0, sizeof *t);
  uint32_t cap = g->n ? g->n : 1;
  uint32_t *uses = pass_use_counts(g, a);
  bool *is_out = ARENA_ARRAY(a, bool, cap), *ext_use = ARENA_ARRAY(a, bool, cap);
  uint32_t *seen = ARENA_ARRAY(a, uint32_t, cap); /* kernel+1 that last counted a read of the value */
  bool *launched = ARENA_ARRAY(a, bool, cap);     /* per kernel: holds a node that is not an alias */
  for (uint32_t i = 0; i < g->nout; i++) is_out[g->outputs[i].value] = true;
  if (node_bytes) memset(node_bytes, 0, sizeof *node_bytes * cap);
#define ALIAS(v)  (p && p->alias_of[v] != IR_NONE)
#define KERNEL(v) (g->kernel ? g->kernel[v] : (v))
  for (ValueId v = 0; v < g->n; v++) {
    const Node *n = &g->nodes[v];
    if (ir_ops[n->op].cls == OC_SOURCE) continue;
    TrafficRow *row = &t->fam[traffic_family(g, v)];
    row->nodes++;
    if (ALIAS(v)) {
      t->aliases++;
      continue;
    }
    uint32_t kv = KERNEL(v);
    if (!launched[kv]) launched[kv] = true, row->launches++, t->launches++;
    for (int k = 0; k < n->nin; k++) {
      ValueId q = n->in[k];
      bool src = ir_ops[g->nodes[q].op].cls == OC_SOURCE;
      if (!src && KERNEL(q) == kv) continue; /* stays in registers inside the kernel */
      if (!src) ext_use[q] = true;
      if (seen[q] == kv + 1) continue;
      seen[q] = kv + 1;
      int64_t b = read_bytes(g, v, k);
      row->read += b;
      if (node_bytes) node_bytes[v] += b;
    }
  }
  /* an alias's readers make its input a value that reaches memory */
  for (ValueId v = g->n; v-- > 0;)
    if (ALIAS(v) && (ext_use[v] || is_out[v])) ext_use[g->nodes[v].in[0]] = true;
  for (ValueId v = 0; v < g->n; v++) {
    const Node *n = &g->nodes[v];
    if (ir_ops[n->op].cls == OC_SOURCE || ALIAS(v) || !(ext_use[v] || is_out[v] || !uses[v])) continue;
    int64_t b = value_bytes(n);
    t->fam[traffic_family(g, v)].written += b;
    if (node_bytes) node_bytes[v] += b;
  }
#undef ALIAS
#undef KERNEL
  for (int f = 0; f < TF_COUNT; f++) t->bytes += t->fam[f].read + t->fam[f].written;
}

/* The H100 constants of shared/gpu-step-review.md's model (bf16 dense GEMMs as cuBLASLt reaches them at
 * these shapes, HBM3 as streaming kernels reach it, one CUDA-graph node). */
#define H100_GEMM_FLOPS   650e12
#define H100_GEMM_BYTES   2.2e12
#define H100_STREAM_BYTES 2.8e12
#define H100_LAUNCH_S     2e-6

double traffic_h100_seconds(const Graph *g, const Traffic *t, const int64_t *node_bytes, double *gemm_s) {
  double gs = 0, other = 0;
  for (ValueId v = 0; v < g->n; v++) {
    const Node *n = &g->nodes[v];
    if (ir_ops[n->op].cls == OC_SOURCE) continue;
    double b = (double)node_bytes[v];
    if (ir_ops[n->op].cls == OC_GEMM || ir_ops[n->op].cls == OC_ATTENTION) { /* attention: its tensor-core GEMMs */
      double f = (double)ir_node_flops(g, n) / H100_GEMM_FLOPS, m = b / H100_GEMM_BYTES;
      gs += f > m ? f : m;
    } else {
      other += b / H100_STREAM_BYTES;
    }
  }
  if (gemm_s) *gemm_s = gs;
  return gs + other + (double)t->launches * H100_LAUNCH_S;
}

int64_t traffic_tokens(const Graph *g) {
  for (ValueId v = 0; v < g->n; v++)
    if (g->nodes[v].op == OP_INPUT && !strcmp(ir_get_str(&g->nodes[v], ATTR_NAME), "tokens"))
      return ir_shape_numel(&g->nodes[v].shape);
  return 0;
}

void traffic_print(FILE *out, const Graph *g, const Traffic *t) {
  int64_t tokens = traffic_tokens(g);
  fprintf(out, "\n%-12s %8s %9s %16s %16s %16s %7s %12s\n", "family", "nodes", "launches", "bytes_read", "bytes_written",
          "bytes_moved", "share", "bytes/token");
  for (int f = 0; f < TF_COUNT; f++) {
    const TrafficRow *r = &t->fam[f];
    int64_t b = r->read + r->written;
    fprintf(out, "%-12s %8lld %9lld %16lld %16lld %16lld %6.1f%% %12.0f\n", traffic_family_name[f], (long long)r->nodes,
            (long long)r->launches, (long long)r->read, (long long)r->written, (long long)b,
            t->bytes ? 100.0 * (double)b / (double)t->bytes : 0.0, tokens ? (double)b / (double)tokens : 0.0);
  }
  fprintf(out, "%-12s %8s %9lld %16s %16s %16lld %6.1f%% %12.0f\n", "total", "", (long long)t->launches, "", "",
          (long long)t->bytes, 100.0, tokens ? (double)t->bytes / (double)tokens : 0.0);
  fprintf(out, "(%lld reshapes planned as aliases: no launch, no bytes; tokens per step %lld)\n", (long long)t->aliases,
          (long long)tokens);
}

/* One row of the heaviest-node list: every node of one op, dtype and shape (the same op in every layer). */
typedef struct Group {
  ValueId first;
  int64_t count, bytes;
} Group;

static int by_bytes(const void *a, const void *b) {
  const Group *x = a, *y = b;
  if (x->bytes != y->bytes) return x->bytes > y->bytes ? -1 : 1;
  return x->first < y->first ? -1 : x->first > y->first;
}

static void put_shape(FILE *out, const Node *n) {
  fprintf(out, "%s[", ir_dtype_name(n->dtype));
  for (int d = 0; d < n->shape.rank; d++) fprintf(out, "%s%lld", d ? "," : "", (long long)n->shape.dim[d]);
  fputc(']', out);
}

void traffic_print_heaviest(FILE *out, const Graph *g, const MemPlan *p, int top, Arena *a) {
  uint32_t cap = g->n ? g->n : 1, ng = 0;
  int64_t *nb = ARENA_ARRAY(a, int64_t, cap);
  Traffic t;
  traffic_run(g, p, &t, nb, a);
  Group *gr = ARENA_ARRAY(a, Group, cap);
  for (ValueId v = 0; v < g->n; v++) {
    const Node *n = &g->nodes[v];
    if (ir_ops[n->op].cls == OC_SOURCE || !nb[v]) continue;
    uint32_t i = 0;
    for (; i < ng; i++) {
      const Node *f = &g->nodes[gr[i].first];
      if (f->op == n->op && f->dtype == n->dtype && ir_shape_eq(&f->shape, &n->shape)) break;
    }
    if (i == ng) gr[ng++] = (Group){ v, 0, 0 };
    gr[i].count++;
    gr[i].bytes += nb[v];
  }
  double gemm_s, step_s = traffic_h100_seconds(g, &t, nb, &gemm_s);
  fprintf(out,
          "H100 estimate (GEMMs: max(FLOPs / 650 TFLOP/s, bytes / 2.2 TB/s); other kernels: bytes / 2.8 TB/s; "
          "2 us a launch): %.1f ms a step (GEMMs %.1f ms, other kernels %.1f ms, launches %.1f ms)\n",
          step_s * 1e3, gemm_s * 1e3, (step_s - gemm_s - (double)t.launches * H100_LAUNCH_S) * 1e3,
          (double)t.launches * H100_LAUNCH_S * 1e3);
  qsort(gr, ng, sizeof *gr, by_bytes);
  fprintf(out, "\nheaviest nodes (op, result type; bytes read by the node's kernel for it + bytes it writes):\n");
  for (uint32_t i = 0; i < ng && (int)i < top; i++) {
    const Node *n = &g->nodes[gr[i].first];
    fprintf(out, "  %-12s %-20s x%-4lld %16lld %6.1f%%  ", traffic_family_name[traffic_family(g, gr[i].first)],
            ir_ops[n->op].name, (long long)gr[i].count, (long long)gr[i].bytes,
            t.bytes ? 100.0 * (double)gr[i].bytes / (double)t.bytes : 0.0);
    put_shape(out, n);
    if (n->loc.file) fprintf(out, "  (first %%%u, %s:%u)", gr[i].first, n->loc.file, n->loc.line);
    fputc('\n', out);
  }
}
