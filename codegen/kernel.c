/* kernel.c - the kernel description of a planned train graph (kernel.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kernel.h"

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
  if (n->op == OP_PARAM) return (i = find_name(nm->params, nm->nparams, s)) >= 0 && (*kind = KS_PARAM, *index = (uint32_t)i, true);
  if (n->op != OP_INPUT) return false;
  if ((i = find_name(nm->inputs, nm->ninputs, s)) >= 0) return *kind = KS_INPUT, *index = (uint32_t)i, true;
  if (!strcmp(s, "accum_scale")) return *kind = KS_SCALE, true;
  if (!strcmp(s, "step")) return *kind = KS_STEP, true;
  if (!strcmp(s, "lr")) return *kind = KS_LR, true;
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
  else if (has_prefix(s, "grad_acc.", &rest) && (i = find_name(nm->params, nm->nparams, rest)) >= 0) o->kind = KO_GRAD, o->index = (uint32_t)i;
  else if (has_prefix(s, "param.", &rest) && (i = find_name(nm->params, nm->nparams, rest)) >= 0) o->kind = KO_PARAM, o->index = (uint32_t)i;
  else if (has_prefix(s, "adam_m.", &rest) && (i = find_name(nm->params, nm->nparams, rest)) >= 0) o->kind = KO_MOM_M, o->index = (uint32_t)i;
  else if (has_prefix(s, "adam_v.", &rest) && (i = find_name(nm->params, nm->nparams, rest)) >= 0) o->kind = KO_MOM_V, o->index = (uint32_t)i;
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
  MemPlanOpts mo = {.materialize_all = true};
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
  for (ValueId v = 0; v < g->n; v++) {
    const Node *n = &g->nodes[v];
    p->slot_of[v] = KBUF_NO_SLOT;
    if (plan->kind[v] != MP_PERSISTENT) continue;
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
  for (uint32_t i = 0; i < g->nout; i++) {
    KOut *o = &p->outs[p->nouts++];
    out_kind(g->outputs[i].name, nm, o);
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
      k->out = (KBuf){plan->offset[v], p->slot_of[v]};
      for (int i = 0; i < n->nin; i++) k->in[i] = (KBuf){plan->offset[n->in[i]], p->slot_of[n->in[i]]};
      if (ir_ops[n->op].cls != OC_GEMM) continue;
      k->gemm = true;
      switch (n->op) {
      case OP_MATMUL: gemm_of(g, n, 0, &k->g); break;
      case OP_MATMUL_ACT:
      case OP_MATMUL_GLU:
        gemm_of(g, n, 0, &k->g);
        k->g.epi = n->op == OP_MATMUL_ACT ? KEPI_ACT : KEPI_GLU;
        k->g.act = ir_get_str(n, ATTR_ACT);
        k->g.bias = n->nin == 3;
        if (n->op == OP_MATMUL_GLU) k->g.ldc = k->g.N, k->g.stride_c = k->g.M * k->g.N;
        break;
      case OP_MATMUL_ACT_GRAD:
      case OP_MATMUL_GLU_GRAD:
        gemm_of(g, n, 1, &k->g);
        k->g.epi = n->op == OP_MATMUL_ACT_GRAD ? KEPI_ACT_GRAD : KEPI_GLU_GRAD;
        k->g.act = ir_get_str(n, ATTR_ACT);
        break;
      default: return kfail(err, errlen, "%%%u: GEMM op %s has no library-call form", v, ir_ops[n->op].name);
      }
    }
  return p;
}
