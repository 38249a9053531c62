/* pass.c: the pass manager. passes/passes.def expands into pass_pipeline[];
 * pass_pipeline_run walks it in order (no dependency solver, as QBE and
 * tinygrad do), honouring -O0/-O2, --passes, --dump-after, --verify-each and
 * --stats. Also the small helpers every rewrite pass shares (re-emit a node
 * with remapped inputs, copy outputs, use counts) and the per-graph facts
 * --stats prints (ops, kernels, bytes-moved estimate, arena from memplan).
 */
#include <string.h>

#include "memplan.h"
#include "pass.h"
#include "passes.h"
#include "traffic.h"

const Pass pass_pipeline[] = {
#define PASS(name, doc, flags) { #name, doc, pass_##name, flags },
#include "passes.def"
#undef PASS
};
const int pass_pipeline_len = (int)(sizeof pass_pipeline / sizeof pass_pipeline[0]);

const Pass *pass_find(const char *name) {
  for (int i = 0; i < pass_pipeline_len; i++)
    if (!strcmp(pass_pipeline[i].name, name)) return &pass_pipeline[i];
  return NULL;
}

void pass_list(FILE *out) {
  for (int i = 0; i < pass_pipeline_len; i++) fprintf(out, "%-18s %s\n", pass_pipeline[i].name, pass_pipeline[i].doc);
}

/* ---- helpers for rewrite passes ------------------------------------------ */

ValueId pass_emit(Graph *dst, const Node *n, const ValueId *in, Diag *d) {
  SrcLoc loc = n->loc; /* the file name must outlive the source graph */
  if (loc.file) loc.file = arena_strdup(dst->arena, loc.file);
  if (ir_ops[n->op].cls == OC_SOURCE) return ir_add_source(dst, n->op, n->dtype, &n->shape, n->attr, n->nattr, loc);
  return ir_add(dst, n->op, in, n->nin, n->attr, n->nattr, loc, d);
}

void pass_copy_outputs(Graph *dst, const Graph *in, const ValueId *map) {
  for (uint32_t i = 0; i < in->nout; i++) ir_add_output(dst, in->outputs[i].name, map[in->outputs[i].value]);
}

uint32_t *pass_use_counts(const Graph *g, Arena *a) {
  uint32_t *uses = ARENA_ARRAY(a, uint32_t, g->n ? g->n : 1);
  for (ValueId v = 0; v < g->n; v++)
    for (int k = 0; k < g->nodes[v].nin; k++) uses[g->nodes[v].in[k]]++;
  for (uint32_t i = 0; i < g->nout; i++) uses[g->outputs[i].value]++;
  return uses;
}

/* A plain copy (nodes and outputs), for -O0 and the pipeline's first input. */
static Graph *copy_graph(const Graph *in, Diag *d) {
  Graph *g = ir_graph_new_like(in);
  ValueId *map = pass_copy_nodes(g, in, d);
  if (!map) {
    ir_graph_free(g);
    return NULL;
  }
  pass_copy_outputs(g, in, map);
  return g;
}

/* ---- stats --------------------------------------------------------------- */

bool pass_graph_stats(const Graph *g, PassStats *st) {
  memset(st, 0, sizeof *st);
  Arena *a = arena_new();
  MemPlanOpts mo = { 0 };
  MemPlan *p = memplan_run(g, &mo, a);
  Traffic t;
  traffic_run(g, p, &t, NULL, a);
  for (ValueId v = 0; v < g->n; v++) st->ops += ir_ops[g->nodes[v].op].cls != OC_SOURCE;
  st->kernels = t.launches;
  st->bytes_moved = t.bytes;
  if (p) {
    st->arena_bytes = p->arena_bytes;
    st->peak_bytes = p->peak_bytes;
    st->sum_bytes = p->sum_bytes;
  }
  arena_free(a);
  return p != NULL;
}

void pass_print_traffic(FILE *out, const Graph *g) {
  Arena *a = arena_new();
  MemPlanOpts mo = { 0 };
  MemPlan *p = memplan_run(g, &mo, a);
  Traffic t;
  traffic_run(g, p, &t, NULL, a);
  traffic_print(out, g, &t);
  traffic_print_heaviest(out, g, p, 16, a);
  arena_free(a);
}

void pass_print_stats(FILE *out, const char *name, const PassStats *st) {
  if (!name) {
    fprintf(out, "%-18s %8s %8s %16s %14s %14s %14s\n", "after", "ops", "kernels", "bytes_moved", "arena", "peak_live",
            "sum_buffers");
    return;
  }
  fprintf(out, "%-18s %8lld %8lld %16lld %14lld %14lld %14lld\n", name, (long long)st->ops, (long long)st->kernels,
          (long long)st->bytes_moved, (long long)st->arena_bytes, (long long)st->peak_bytes, (long long)st->sum_bytes);
}

static void stats_row(const PassOptions *o, const char *name, const Graph *g) {
  PassStats st;
  pass_graph_stats(g, &st);
  pass_print_stats(o->stats_out ? o->stats_out : stderr, name, &st);
}

/* ---- the pipeline -------------------------------------------------------- */

/* Is `name` one of the comma-separated names in list? */
static bool in_list(const char *list, const char *name) {
  size_t n = strlen(name);
  for (const char *p = list; *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && !strncmp(p, name, n)) return true;
    if (!e) break;
    p = e + 1;
  }
  return false;
}

/* Every name in --passes exists (reported one by one). */
static bool check_list(const char *list, Diag *d) {
  bool ok = true;
  for (const char *p = list; *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    bool found = false;
    for (int i = 0; i < pass_pipeline_len && !found; i++)
      found = strlen(pass_pipeline[i].name) == len && !strncmp(pass_pipeline[i].name, p, len);
    if (!found && len) {
      diag_error(d, (SrcLoc){ 0 }, "unknown pass '%.*s' in --passes (see cramc --list-passes)", (int)len, p);
      ok = false;
    }
    if (!e) break;
    p = e + 1;
  }
  return ok;
}

/* The rows whose PASS_FORWARD flag equals `forward`, in order. */
static Graph *run_rows(const Graph *in, PassCtx *cx, bool forward) {
  const PassOptions *o = cx->opt;
  if (o->only && !check_list(o->only, cx->diag)) return NULL;
  if (o->dump_after && strcmp(o->dump_after, "all") && !pass_find(o->dump_after)) {
    diag_error(cx->diag, (SrcLoc){ 0 }, "unknown pass '%s' in --dump-after (see cramc --list-passes)", o->dump_after);
    return NULL;
  }
  Graph *g = copy_graph(in, cx->diag);
  if (!g) return NULL;
  if (o->stats && !forward) {
    pass_print_stats(o->stats_out ? o->stats_out : stderr, NULL, NULL);
    stats_row(o, "(input)", g);
  }
  for (int i = 0; i < pass_pipeline_len; i++) {
    const Pass *p = &pass_pipeline[i];
    if (!(p->flags & PASS_FORWARD) != !forward) continue;
    if (o->only ? !in_list(o->only, p->name) : o->opt_level < 2) continue;
    Graph *ng = p->run(g, cx);
    if (!ng) {
      diag_note(cx->diag, (SrcLoc){ 0 }, "in pass '%s'", p->name);
      ir_graph_free(g);
      return NULL;
    }
    if (o->verify_each && !ir_verify(ng, cx->diag)) {
      diag_error(cx->diag, (SrcLoc){ 0 }, "IR does not verify after pass '%s'", p->name);
      ir_graph_free(ng);
      ir_graph_free(g);
      return NULL;
    }
    ir_graph_free(g);
    g = ng;
    if (o->dump_after && (!strcmp(o->dump_after, "all") || !strcmp(o->dump_after, p->name))) {
      FILE *f = o->dump_out ? o->dump_out : stderr;
      fprintf(f, "# after %s\n", p->name);
      ir_print(g, f);
    }
    if (o->stats && !forward) stats_row(o, p->name, g); /* forward rows report for themselves */
  }
  return g;
}

Graph *pass_pipeline_run(const Graph *in, PassCtx *cx) { return run_rows(in, cx, false); }
Graph *pass_forward_run(const Graph *fwd, PassCtx *cx) { return run_rows(fwd, cx, true); }
