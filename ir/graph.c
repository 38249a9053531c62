/* graph.c: building graphs (ir_graph_new, ir_add_source, ir_add,
 * ir_add_output) and reading node attributes.
 *
 * Builders check as they build, in the manner of ggml's ggml_add_impl: a node
 * that reaches the graph has a valid arity, inputs that precede it, exactly
 * the attributes its op row asks for (sorted by AttrId), and the type its
 * shape rule computed. Everything a node points to (strings, int arrays) is
 * copied into the graph's arena, so a graph never borrows caller memory.
 */
#include <math.h>
#include <string.h>

#include "ir_impl.h"

Graph *ir_graph_new(const char *name) {
  Arena *a = arena_new();
  Graph *g = ARENA_NEW(a, Graph);
  g->arena = a;
  g->name = arena_strdup(a, name ? name : "");
  return g;
}

Graph *ir_graph_new_like(const Graph *in) {
  Graph *g = ir_graph_new(in->name);
  for (uint32_t i = 0; i < in->ndims; i++) ir_graph_add_dim(g, in->dims[i].name, in->dims[i].value);
  return g;
}

void ir_graph_add_dim(Graph *g, const char *name, int64_t value) {
  if (g->ndims == g->dimcap) { /* arena arrays do not grow: a doubled copy */
    uint32_t cap = g->dimcap ? 2 * g->dimcap : 16;
    IrDim *d = ARENA_ARRAY(g->arena, IrDim, cap);
    if (g->ndims) memcpy(d, g->dims, g->ndims * sizeof *d);
    g->dims = d, g->dimcap = cap;
  }
  g->dims[g->ndims++] = (IrDim){ arena_strdup(g->arena, name), value };
}

void ir_graph_free(Graph *g) {
  if (g) arena_free(g->arena); /* the Graph itself lives in its arena */
}

/* ---- shared checks ------------------------------------------------------- */

bool ir_check_attrs(OpKind op, const Attr *attrs, int nattr, char *msg, size_t msglen) {
  uint32_t want = ir_ops[op].attrs, seen = 0;
  if (nattr < 0 || (nattr > 0 && !attrs)) {
    snprintf(msg, msglen, "invalid attribute list");
    return false;
  }
  for (int i = 0; i < nattr; i++) {
    AttrId id = attrs[i].id;
    if ((unsigned)id >= ATTR_COUNT) {
      snprintf(msg, msglen, "unknown attribute id %d", (int)id);
      return false;
    }
    const char *name = ir_attrs[id].name;
    if (!(want & (1u << id))) {
      snprintf(msg, msglen, "unexpected attribute '%s'", name);
      return false;
    }
    if (seen & (1u << id)) {
      snprintf(msg, msglen, "attribute '%s' is given twice", name);
      return false;
    }
    seen |= 1u << id;
    if ((ir_attrs[id].kind == AK_STR && !attrs[i].u.s) ||
        (ir_attrs[id].kind == AK_INTS && attrs[i].u.ints.n > 0 && !attrs[i].u.ints.v)) {
      snprintf(msg, msglen, "attribute '%s' has no value", name);
      return false;
    }
  }
  for (int id = 0; id < ATTR_COUNT; id++)
    if ((want & ~seen) & (1u << id)) {
      snprintf(msg, msglen, "missing attribute '%s'", ir_attrs[id].name);
      return false;
    }
  return true;
}

static const Attr *find_attr(const Attr *attrs, int nattr, AttrId id) {
  for (int i = 0; i < nattr; i++)
    if (attrs[i].id == id) return &attrs[i];
  return NULL;
}

/* Sources have no shape rule (their type is declared), so the rules about
 * their attribute values and types live here. */
bool ir_check_source(OpKind op, DType dt, const Shape *s, const Attr *attrs, int nattr, char *msg, size_t msglen) {
  static const char *const inits[] = { "normal", "zeros", "ones", "const" };
  if ((unsigned)op >= OP_COUNT || ir_ops[op].cls != OC_SOURCE) {
    snprintf(msg, msglen, "not a source op");
    return false;
  }
  if (!ir_check_attrs(op, attrs, nattr, msg, msglen) || !ir_check_type(dt, s, msg, msglen)) return false;
  const Attr *name = find_attr(attrs, nattr, ATTR_NAME), *init = find_attr(attrs, nattr, ATTR_INIT);
  const Attr *scale = find_attr(attrs, nattr, ATTR_SCALE), *decay = find_attr(attrs, nattr, ATTR_DECAY);
  if (name && !name->u.s[0]) {
    snprintf(msg, msglen, "name must not be empty");
    return false;
  }
  if (init) {
    bool known = false;
    for (size_t i = 0; i < sizeof inits / sizeof inits[0]; i++) known |= strcmp(init->u.s, inits[i]) == 0;
    if (!known) {
      snprintf(msg, msglen, "init must be one of normal, zeros, ones, const");
      return false;
    }
    /* A trainable tensor is float: AdamW updates it and autodiff gives it a gradient. */
    if (dt != DT_F32 && dt != DT_BF16) {
      snprintf(msg, msglen, "a parameter must be f32 or bf16, got %s", ir_dtype_name(dt));
      return false;
    }
  }
  if (scale && !(isfinite(scale->u.f) && (scale->u.f >= 0 || (init && !strcmp(init->u.s, "const"))))) {
    snprintf(msg, msglen, "scale=%g must be finite (and >= 0 unless init=\"const\")", scale->u.f);
    return false;
  }
  if (decay && decay->u.i != 0 && decay->u.i != 1) {
    snprintf(msg, msglen, "decay must be 0 or 1");
    return false;
  }
  /* arange: a float vector */
  if (op == OP_ARANGE && (s->rank != 1 || (dt != DT_F32 && dt != DT_BF16))) {
    char t[IR_TYPE_STR_MAX];
    snprintf(msg, msglen, "must be a float [N] vector, got %s", ir_type_str(dt, s, t, sizeof t));
    return false;
  }
  /* Another attribute-less source is a constant table (sinusoid): a float [S,H] matrix. */
  if (op != OP_ARANGE && ir_ops[op].attrs == 0 && (s->rank != 2 || (dt != DT_F32 && dt != DT_BF16))) {
    char t[IR_TYPE_STR_MAX];
    snprintf(msg, msglen, "must be a float [S,H] matrix, got %s", ir_type_str(dt, s, t, sizeof t));
    return false;
  }
  return true;
}

/* ---- appending ----------------------------------------------------------- */

/* Arrays grow by doubling inside the arena; the old block is simply left
 * behind (at most as much again as the final array). */
static Node *append_node(Graph *g) {
  if (g->n == g->cap) {
    IR_ASSERT(g->cap < UINT32_MAX / 4); /* keeps ids below IR_NONE */
    uint32_t cap = g->cap ? g->cap * 2 : 64;
    Node *nodes = ARENA_ARRAY(g->arena, Node, cap);
    if (g->n) memcpy(nodes, g->nodes, sizeof(Node) * g->n);
    g->nodes = nodes;
    g->cap = cap;
  }
  return &g->nodes[g->n++];
}

/* Copy attributes into n->attr sorted by AttrId, strings and arrays into the
 * arena. `attrs` has passed ir_check_attrs, so ids are distinct and few. */
static void copy_attrs(Graph *g, Node *n, const Attr *attrs, int nattr) {
  IR_ASSERT(nattr <= IR_MAX_ATTRS);
  n->nattr = 0;
  for (int id = 0; id < ATTR_COUNT; id++) {
    const Attr *a = find_attr(attrs, nattr, (AttrId)id);
    if (!a) continue;
    Attr c = *a;
    if (ir_attrs[id].kind == AK_STR) c.u.s = arena_strdup(g->arena, a->u.s);
    if (ir_attrs[id].kind == AK_INTS && a->u.ints.n) {
      int64_t *v = ARENA_ARRAY(g->arena, int64_t, a->u.ints.n);
      memcpy(v, a->u.ints.v, sizeof(int64_t) * a->u.ints.n);
      c.u.ints.v = v;
    }
    n->attr[n->nattr++] = c;
  }
}

ValueId ir_add_source(Graph *g, OpKind op, DType dt, const Shape *shape, const Attr *attrs, int nattr, SrcLoc loc) {
  char msg[IR_MSG_MAX];
  /* No Diag here: a bad source is a bug in the caller (the frontend checks
   * user dims before it builds), so it is an internal error. */
  if (!ir_check_source(op, dt, shape, attrs, nattr, msg, sizeof msg)) ir_internal_error(__FILE__, __LINE__, msg);
  Node *n = append_node(g);
  n->op = op;
  n->dtype = dt;
  n->shape = *shape;
  n->loc = loc;
  copy_attrs(g, n, attrs, nattr);
  return g->n - 1;
}

static ValueId add_error(Diag *d, SrcLoc loc, const char *op, const char *msg) {
  if (d) diag_error(d, loc, "%s: %s", op, msg);
  return IR_NONE;
}

ValueId ir_add(Graph *g, OpKind op, const ValueId *in, int nin, const Attr *attrs, int nattr, SrcLoc loc, Diag *d) {
  char msg[IR_MSG_MAX];
  if ((unsigned)op >= OP_COUNT) {
    snprintf(msg, sizeof msg, "op id %d is not in ops.def", (int)op);
    return add_error(d, loc, "ir_add", msg);
  }
  const OpInfo *info = &ir_ops[op];
  if (!info->shape) return add_error(d, loc, info->name, "is a source op; build it with ir_add_source");
  if (nin > 0 && !in) return add_error(d, loc, info->name, "the input array is NULL");
  if (nin < info->min_in || nin > info->max_in) {
    if (info->min_in == info->max_in) snprintf(msg, sizeof msg, "expects %d inputs, got %d", info->min_in, nin);
    else snprintf(msg, sizeof msg, "expects %d to %d inputs, got %d", info->min_in, info->max_in, nin);
    return add_error(d, loc, info->name, msg);
  }
  for (int i = 0; i < nin; i++)
    if (in[i] >= g->n) {
      if (in[i] == IR_NONE) snprintf(msg, sizeof msg, "input %d is IR_NONE (from an earlier error?)", i);
      else snprintf(msg, sizeof msg, "input %d is %%%u, which is not defined (the graph has %u values)", i, in[i], g->n);
      return add_error(d, loc, info->name, msg);
    }
  if (!ir_check_attrs(op, attrs, nattr, msg, sizeof msg)) return add_error(d, loc, info->name, msg);

  /* Type the node before it joins the graph: the rule sees it with the
   * caller's attribute pointers, which are copied only on success. */
  IR_ASSERT(nattr <= IR_MAX_ATTRS); /* an ops.def row asks for more than a Node holds */
  Node tmp = { .op = op, .nin = (uint8_t)nin, .loc = loc };
  for (int i = 0; i < nin; i++) tmp.in[i] = in[i];
  for (int i = 0; i < nattr; i++) tmp.attr[i] = attrs[i];
  tmp.nattr = (uint8_t)nattr;
  if (!info->shape(g, &tmp, &tmp.dtype, &tmp.shape, msg, sizeof msg)) return add_error(d, loc, info->name, msg);

  Node *n = append_node(g);
  *n = tmp;
  copy_attrs(g, n, attrs, nattr);
  return g->n - 1;
}

void ir_add_output(Graph *g, const char *name, ValueId v) {
  IR_ASSERT(name && v < g->n);
  if (g->nout == g->outcap) {
    IR_ASSERT(g->outcap < UINT32_MAX / 4);
    uint32_t cap = g->outcap ? g->outcap * 2 : 4;
    Output *o = ARENA_ARRAY(g->arena, Output, cap);
    if (g->nout) memcpy(o, g->outputs, sizeof(Output) * g->nout);
    g->outputs = o;
    g->outcap = cap;
  }
  g->outputs[g->nout++] = (Output){ arena_strdup(g->arena, name), v };
}

/* ---- reading attributes -------------------------------------------------- */

const Attr *ir_attr(const Node *n, AttrId id) {
  for (int i = 0; i < n->nattr && i < IR_MAX_ATTRS; i++)
    if (n->attr[i].id == id) return &n->attr[i];
  return NULL;
}

static const Attr *get(const Node *n, AttrId id, AttrKind kind) {
  const Attr *a = ir_attr(n, id);
  IR_ASSERT(a && ir_attrs[id].kind == kind);
  return a;
}

int64_t ir_get_int(const Node *n, AttrId id) { return get(n, id, AK_INT)->u.i; }
double ir_get_float(const Node *n, AttrId id) { return get(n, id, AK_FLOAT)->u.f; }
const char *ir_get_str(const Node *n, AttrId id) { return get(n, id, AK_STR)->u.s; }

/* The ops one kernel computes together when the second follows the first with the same inputs and attributes. */
static const struct {
  OpKind first, second;
} sibling_ops[] = { { OP_ATTENTION, OP_ATTENTION_LSE }, { OP_LAYERNORM_WGRAD, OP_LAYERNORM_BGRAD } };

bool ir_siblings(const Node *o, const Node *lse) {
  bool pair = false;
  for (size_t i = 0; i < sizeof sibling_ops / sizeof sibling_ops[0]; i++)
    pair |= o->op == sibling_ops[i].first && lse->op == sibling_ops[i].second;
  if (!pair || o->nin != lse->nin || o->nattr != lse->nattr) return false;
  for (int k = 0; k < o->nin; k++)
    if (o->in[k] != lse->in[k]) return false;
  for (int i = 0; i < o->nattr; i++) {
    const Attr *a = &o->attr[i], *b = &lse->attr[i];
    if (a->id != b->id) return false;
    switch (ir_attrs[a->id].kind) {
    case AK_INT:
      if (a->u.i != b->u.i) return false;
      break;
    case AK_FLOAT:
      if (memcmp(&a->u.f, &b->u.f, sizeof a->u.f)) return false;
      break;
    case AK_STR:
      if (strcmp(a->u.s, b->u.s)) return false;
      break;
    case AK_INTS:
      if (a->u.ints.n != b->u.ints.n || memcmp(a->u.ints.v, b->u.ints.v, a->u.ints.n * sizeof *a->u.ints.v)) return false;
      break;
    }
  }
  return true;
}

bool ir_norm_grad_params(const Node *g, const Node *p) {
  if ((g->op != OP_LAYERNORM_GRAD && g->op != OP_LAYERNORM_GRAD_ADD) || p->op != OP_LAYERNORM_WGRAD) return false;
  int dy = g->op == OP_LAYERNORM_GRAD_ADD ? g->nin - 2 : g->nin - 1;
  return p->in[0] == g->in[0] && p->in[1] == g->in[dy] && ir_get_float(p, ATTR_EPS) == ir_get_float(g, ATTR_EPS);
}

bool ir_kernel_follows(const Node *a, const Node *b) { return ir_siblings(a, b) || ir_norm_grad_params(a, b); }
