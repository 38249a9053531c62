/* kernel.c - the kernel description of a planned train graph (kernel.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kernel.h"
#include "passes.h"

const char *const k_slot_kind_name[KS_COUNT] = {
#define SLOT(id, what) "CRAM_S_" #id,
#include "slots.def"
};
const char *const k_out_kind_name[KO_COUNT] = {
#define OUT(id, what) "CRAM_O_" #id,
#include "slots.def"
};

static KProgram *kfail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static KProgram *kfail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return NULL;
}

static int find_name(const char *const *names, uint32_t n, const char *s) {
  for (uint32_t i = 0; i < n; i++)
    if (!strcmp(names[i], s)) return (int)i;
  return -1;
}

static bool has_prefix(const char *s, const char *p, const char **rest) {
  size_t k = strlen(p);
  if (strncmp(s, p, k)) return false;
  *rest = s + k;
  return true;
}

/* Slot kind and index of a source node; false if it names nothing known. */
static bool source_slot(const Node *n, const KNames *nm, KSlotKind *kind, uint32_t *index) {
  const char *s = n->op == OP_PARAM || n->op == OP_INPUT ? ir_get_str(n, ATTR_NAME) : NULL, *rest;
  int i;
  *index = 0;
  if (n->op == OP_FILL || n->op == OP_SINUSOID || n->op == OP_ARANGE) return *kind = KS_OWN, true;
  if (n->op == OP_PARAM)
    return (i = find_name(nm->params, nm->nparams, s)) >= 0 && (*kind = KS_PARAM, *index = (uint32_t)i, true);
  if (n->op != OP_INPUT) return false;
  if ((i = find_name(nm->inputs, nm->ninputs, s)) >= 0) return *kind = KS_INPUT, *index = (uint32_t)i, true;
  if (!strcmp(s, "accum_scale")) return *kind = KS_SCALE, true;
  if (!strcmp(s, "step")) return *kind = KS_STEP, true;
  if (!strcmp(s, "lr")) return *kind = KS_LR, true;
  if (!strcmp(s, "hyper")) return *kind = KS_HYPER, true;
  KSlotKind k = KS_COUNT;
  if (has_prefix(s, "grad_acc.", &rest)) k = KS_GRAD;
  else if (has_prefix(s, "adam_m.", &rest)) k = KS_MOM_M;
  else if (has_prefix(s, "adam_v.", &rest)) k = KS_MOM_V;
  if (k == KS_COUNT || (i = find_name(nm->params, nm->nparams, rest)) < 0) return false;
  return *kind = k, *index = (uint32_t)i, true;
}

static void out_kind(const char *s, const KNames *nm, KOut *o) {
  const char *rest;
  int i;
  o->kind = KO_OTHER;
  o->index = 0;
  if (!strcmp(s, "loss")) o->kind = KO_LOSS;
  else if (!strcmp(s, "grad_norm")) o->kind = KO_GRAD_NORM;
  else if (!strcmp(s, PASS_ACCURACY_OUTPUT)) o->kind = KO_HITS;
  else if (has_prefix(s, "grad_acc.", &rest) && (i = find_name(nm->params, nm->nparams, rest)) >= 0)
    o->kind = KO_GRAD, o->index = (uint32_t)i;
  else if (has_prefix(s, "param.", &rest) && (i = find_name(nm->params, nm->nparams, rest)) >= 0)
    o->kind = KO_PARAM, o->index = (uint32_t)i;
  else if (has_prefix(s, "adam_m.", &rest) && (i = find_name(nm->params, nm->nparams, rest)) >= 0)
    o->kind = KO_MOM_M, o->index = (uint32_t)i;
  else if (has_prefix(s, "adam_v.", &rest) && (i = find_name(nm->params, nm->nparams, rest)) >= 0)
    o->kind = KO_MOM_V, o->index = (uint32_t)i;
}

/* The state source an output replaces: grad_acc.<p> / <p> / adam_m.<p> /
 * adam_v.<p> for the outputs of those names; IR_NONE for other outputs. */
static ValueId state_source(const Graph *g, const KOut *o, const KNames *nm) {
  static const KSlotKind of[] = { [KO_GRAD] = KS_GRAD, [KO_PARAM] = KS_PARAM, [KO_MOM_M] = KS_MOM_M, [KO_MOM_V] = KS_MOM_V };
  if (o->kind != KO_GRAD && o->kind != KO_PARAM && o->kind != KO_MOM_M && o->kind != KO_MOM_V) return IR_NONE;
  for (ValueId v = 0; v < g->n; v++) {
    KSlotKind k;
    uint32_t i;
    if (ir_ops[g->nodes[v].op].cls == OC_SOURCE && g->nodes[v].op != OP_FILL && g->nodes[v].op != OP_SINUSOID &&
        source_slot(&g->nodes[v], nm, &k, &i) && k == of[o->kind] && i == o->index)
      return v;
  }
  return IR_NONE;
}

/* May output v be computed into state buffer s (the value it replaces)?
 * Kernels run in node order (kernel_build splits any that would not), so it
 * may when no node after v reads s, and v itself reads s only as a
 * pointwise op reads its in-place input: element i before writing element i
 * (memplan_inplace_op, same shape). v must be pointwise, the graph's only
 * output of v, and of s's dtype and shape. A renderer that fuses nodes into one launch keeps its
 * own rule for reads of s inside the launch (render_cuda: can_join). */
static bool state_in_place(const Graph *g, ValueId v, ValueId s, const uint32_t *nout_of) {
  const Node *n = &g->nodes[v];
  /* pointwise ops only (the cuda renderer guards state writes in its elementwise launches); dropout is its own kernel */
  if (!memplan_inplace_op(n->op) || n->op == OP_DROPOUT || nout_of[v] != 1 || n->dtype != g->nodes[s].dtype ||
      !ir_shape_eq(&n->shape, &g->nodes[s].shape))
    return false;
  for (ValueId u = v; u < g->n; u++)
    for (int k = 0; k < g->nodes[u].nin; k++)
      if (g->nodes[u].in[k] == s && (u != v || !memplan_inplace_op(n->op))) return false;
  return true;
}

/* C = op(in[a]) @ op(in[a+1]) as interp_matmul defines it. */
static void gemm_of(const Graph *g, const Node *n, int a, KGemm *k) {
  const Shape *as = &g->nodes[n->in[a]].shape, *bs = &g->nodes[n->in[a + 1]].shape;
  k->ta = ir_get_int(n, ATTR_TRANS_A) != 0;
  k->tb = ir_get_int(n, ATTR_TRANS_B) != 0;
  int64_t ar = as->dim[as->rank - 2], ac = as->dim[as->rank - 1];
  int64_t br = bs->dim[bs->rank - 2], bc = bs->dim[bs->rank - 1];
  k->M = k->ta ? ac : ar;
  k->K = k->ta ? ar : ac;
  k->N = k->tb ? br : bc;
  k->batch = ir_shape_numel(as) / (ar * ac);
  k->lda = ac;
  k->ldb = bc;
  k->ldc = k->N;
  k->stride_a = ar * ac;
  k->stride_b = bs->rank > 2 ? br * bc : 0;
  k->stride_c = k->M * k->N;
  k->a_in = a;
  k->b_in = a + 1;
  k->epi = KEPI_NONE;
  k->act = "none";
  k->bias = false;
}

KProgram *kernel_build(const Graph *g, const KNames *nm, Arena *a, char *err, size_t errlen) {
  MemPlanOpts mo = { .materialize_all = true };
  MemPlan *plan = memplan_run(g, &mo, a);
  if (!plan) return kfail(err, errlen, "memory plan overflows");
  KProgram *p = ARENA_NEW(a, KProgram);
  uint32_t cap = g->n ? g->n : 1;
  p->g = g;
  p->plan = plan;
  p->arena_bytes = plan->arena_bytes;
  p->nodes = ARENA_ARRAY(a, KNode, cap);
  p->kernels = ARENA_ARRAY(a, Kernel, cap + 1);
  p->slots = ARENA_ARRAY(a, KSlot, cap);
  p->outs = ARENA_ARRAY(a, KOut, g->nout ? g->nout : 1);
  p->slot_of = ARENA_ARRAY(a, uint32_t, cap);
  bool *seen = ARENA_ARRAY(a, bool, cap);
  /* outputs computed into the state they replace: no buffer of their own */
  ValueId *state_of = ARENA_ARRAY(a, ValueId, cap);
  uint32_t *nout_of = ARENA_ARRAY(a, uint32_t, cap);
  for (ValueId v = 0; v < g->n; v++) state_of[v] = IR_NONE;
  for (uint32_t i = 0; i < g->nout; i++) nout_of[g->outputs[i].value]++;
  for (uint32_t i = 0; nm->state_in_place && i < g->nout; i++) {
    KOut o;
    out_kind(g->outputs[i].name, nm, &o);
    ValueId v = g->outputs[i].value, s = state_source(g, &o, nm);
    if (s != IR_NONE && state_in_place(g, v, s, nout_of)) state_of[v] = s;
  }
  for (ValueId v = 0; v < g->n; v++) {
    const Node *n = &g->nodes[v];
    p->slot_of[v] = KBUF_NO_SLOT;
    if (plan->kind[v] != MP_PERSISTENT || state_of[v] != IR_NONE) continue;
    KSlot *s = &p->slots[p->nslots];
    s->node = v;
    s->bytes = ir_shape_numel(&n->shape) * (int64_t)ir_dtype_size(n->dtype);
    if (ir_ops[n->op].cls == OC_SOURCE) {
      if (!source_slot(n, nm, &s->kind, &s->index))
        return kfail(err, errlen, "%%%u: %s '%s' is neither a parameter, a batch input nor a train-step input", v,
                     ir_ops[n->op].name, n->op == OP_PARAM || n->op == OP_INPUT ? ir_get_str(n, ATTR_NAME) : "?");
    } else {
      s->kind = KS_OWN;
      s->index = 0;
    }
    p->slot_of[v] = p->nslots++;
  }
  for (ValueId v = 0; v < g->n; v++)
    if (state_of[v] != IR_NONE) p->slot_of[v] = p->slot_of[state_of[v]], p->nstate_in_place++;
  uint32_t nother = 0;
  for (uint32_t i = 0; i < g->nout; i++) {
    KOut *o = &p->outs[p->nouts++];
    out_kind(g->outputs[i].name, nm, o);
    if (o->kind == KO_OTHER) o->index = nother++; /* meta->outputs[index] (the forward's non-loss outputs, in order) */
    o->slot = p->slot_of[g->outputs[i].value];
    if (o->slot == KBUF_NO_SLOT) return kfail(err, errlen, "output '%s' has no buffer", g->outputs[i].name);
  }
  /* Kernel 0: the constants (fill, sinusoid), recomputed at the start of a run. */
  Kernel *cur = NULL;
  for (int pass = 0; pass < 2; pass++)
    for (ValueId v = 0; v < g->n; v++) {
      const Node *n = &g->nodes[v];
      bool is_const = n->op == OP_FILL || n->op == OP_SINUSOID || n->op == OP_ARANGE;
      if (pass == 0 ? !is_const : ir_ops[n->op].cls == OC_SOURCE) continue;
      uint32_t part = pass == 0 ? UINT32_MAX : g->kernel && g->kernel[v] != IR_NONE ? g->kernel[v] : cap + v;
      if (!cur || cur->part != part) {
        if (pass == 1 && part < cap && seen[part]) p->nsplit++;
        if (pass == 1 && part < cap) seen[part] = true;
        cur = &p->kernels[p->nkernels++];
        cur->first = p->nnodes;
        cur->count = 0;
        cur->part = part;
      }
      KNode *k = &p->nodes[p->nnodes++];
      cur->count++;
      memset(k, 0, sizeof *k);
      k->id = v;
      k->n = n;
      k->out = (KBuf){ plan->offset[v], p->slot_of[v] };
      k->out_state = state_of[v] != IR_NONE;
      for (int i = 0; i < n->nin; i++) k->in[i] = (KBuf){ plan->offset[n->in[i]], p->slot_of[n->in[i]] };
      if (ir_ops[n->op].cls != OC_GEMM) continue;
      k->gemm = true;
      /* ops.def's gemm form: which inputs are A and B, and the epilogue */
      static const KEpilogue epi_of[] = { [IR_GEMM_PLAIN] = KEPI_NONE,
                                          [IR_GEMM_ACT] = KEPI_ACT,
                                          [IR_GEMM_GLU] = KEPI_GLU,
                                          [IR_GEMM_ACT_GRAD] = KEPI_ACT_GRAD,
                                          [IR_GEMM_GLU_GRAD] = KEPI_GLU_GRAD };
      IrGemmForm form = ir_ops[n->op].gemm;
      if (form == IR_GEMM_NO) return kfail(err, errlen, "%%%u: GEMM op %s has no library-call form", v, ir_ops[n->op].name);
      gemm_of(g, n, ir_ops[n->op].gemm_a, &k->g);
      k->g.epi = epi_of[form];
      if (form != IR_GEMM_PLAIN) k->g.act = ir_get_str(n, ATTR_ACT);
      if (form == IR_GEMM_ACT || form == IR_GEMM_GLU) k->g.bias = n->nin == 3;
      if (form == IR_GEMM_GLU) k->g.ldc = k->g.N, k->g.stride_c = k->g.M * k->g.N;
    }
  return p;
}
