/* lower.c: AST -> forward graph.
 *
 * Walks the statements in order with one environment (dims, inputs, values)
 * and emits IR with ir_add / ir_add_source:
 *   - dims are evaluated on the spot (checked int64, must be >= 1); a -D
 *     override replaces a definition before later dims are evaluated;
 *   - expressions evaluate to Vals: numbers fold at compile time, tensor
 *     arithmetic becomes add / mul / scale nodes, calls go to builtins.c;
 *   - `repeat N as NAME:` unrolls its body N times with parameter prefix
 *     "NAME.i." (a fresh naming scope per iteration);
 *   - `def f(a, b):` records a function; each call lowers its body again
 *     (inlined, like repeat) with the arguments bound in a local map that
 *     shadows the global environment, under the parameter prefix "f." (or
 *     name=). Recursion is an error: every call is unrolled.
 *
 * Error policy (one mistake, one message): a statement with an error binds
 * its name as poisoned, and any use of a poisoned name evaluates silently to
 * V_ERR; a repeat stops unrolling after the first iteration with errors; and
 * lowering stops once the Diag has printed its maximum number of errors.
 * Every node's SrcLoc is the .cram call that produced it, with the file name
 * copied into the graph's arena so it outlives the source buffer.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "lower.h"

typedef enum {
  B_DIM,    /* dims NAME=...: dim */
  B_INPUT,  /* input NAME: val */
  B_VALUE,  /* NAME = ...: val */
  B_POISON, /* its definition had an error */
  B_ARG,    /* a def's argument (any kind of value) */
} BindKind;

typedef struct Binding {
  BindKind kind;
  int64_t dim;
  Val val;
  SrcLoc loc; /* first definition */
} Binding;

typedef struct ParamRec {
  ValueId v;
  SrcLoc loc;
} ParamRec;

/* A def statement: checked once when it is reached, lowered at every call. */
typedef struct DefRec {
  const Stmt *s;
  bool bad;    /* its body had an error (reported once): calls are silently V_ERR */
  bool active; /* a call is being lowered: calling it again is recursion */
} DefRec;

#define FE_MAX_DEF_PARAMS 16

struct Lower {
  Arena *arena; /* scratch: freed with the AST */
  Graph *g;
  Diag *diag;
  const char *gfile;  /* the file name, in the graph's arena */
  Map env;            /* name -> Binding */
  Map params;         /* full parameter name -> ParamRec */
  Map scopes;         /* scoped name (prefix + name) -> SrcLoc* of its first use */
  Map auto_next;      /* scoped default name -> int* next suffix to try */
  Map funcs;          /* def name -> DefRec */
  Map *locals;        /* inside a def call: its arguments and assignments; NULL at the top level */
  Val ret;            /* the value of the def call being lowered, once its return ran */
  const char *prefix; /* repeat prefix, "" or "layers.3." */
  const FeDefine *defs;
  int ndefs;
  bool *def_used;
  bool stop;    /* node limit hit or too many errors */
  Output *outs; /* extra outputs in order */
  int nouts, outcap;
};

/* ---- maps ---------------------------------------------------------------- */

static uint32_t hash_str(const char *s) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

void *fe_map_get(const Map *m, const char *key) {
  if (!m->cap) return NULL;
  for (uint32_t i = hash_str(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    if (!m->e[i].key) return NULL;
    if (strcmp(m->e[i].key, key) == 0) return m->e[i].val;
  }
}

void fe_map_put(Map *m, const char *key, void *val) {
  if ((m->n + 1) * 2 > m->cap) { /* keep the load under 1/2; old tables stay in the arena */
    uint32_t cap = m->cap ? m->cap * 2 : 64;
    MapEntry *e = ARENA_ARRAY(m->arena, MapEntry, cap);
    for (uint32_t j = 0; j < m->cap; j++) {
      if (!m->e[j].key) continue;
      uint32_t i = hash_str(m->e[j].key) & (cap - 1);
      while (e[i].key) i = (i + 1) & (cap - 1);
      e[i] = m->e[j];
    }
    m->e = e;
    m->cap = cap;
  }
  uint32_t i = hash_str(key) & (m->cap - 1);
  for (; m->e[i].key; i = (i + 1) & (m->cap - 1))
    if (strcmp(m->e[i].key, key) == 0) {
      m->e[i].val = val;
      return;
    }
  m->e[i] = (MapEntry){ key, val };
  m->n++;
}

/* ---- helpers for builtins.c ---------------------------------------------- */

Graph *lw_graph(Lower *L) { return L->g; }
const Node *lw_node(Lower *L, ValueId v) { return ir_node(L->g, v); }

const char *lw_type(Lower *L, ValueId v) {
  const Node *n = ir_node(L->g, v);
  char buf[160];
  ir_type_str(n->dtype, &n->shape, buf, sizeof buf);
  return arena_strdup(L->arena, buf);
}

static SrcLoc gloc(const Lower *L, SrcLoc loc) {
  loc.file = L->gfile;
  return loc;
}

Val lw_error(Lower *L, SrcLoc loc, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  diag_error(L->diag, loc, "%s", msg);
  return (Val){ .kind = V_ERR };
}

static Val tensor(ValueId v) { return (Val){ .kind = V_TENSOR, .t = v }; }

static bool room(Lower *L, SrcLoc loc) {
  if (L->g->n < FE_MAX_NODES) return true;
  if (!L->stop) lw_error(L, loc, "model too large: more than %u IR nodes", FE_MAX_NODES);
  L->stop = true;
  return false;
}

Val lw_op(Lower *L, const Call *c, OpKind op, const ValueId *in, int nin, const Attr *attrs, int nattr) {
  if (!room(L, c->loc)) return (Val){ .kind = V_ERR };
  ValueId v = ir_add(L->g, op, in, nin, attrs, nattr, gloc(L, c->loc), L->diag);
  return v == IR_NONE ? (Val){ .kind = V_ERR } : tensor(v);
}

bool lw_mul(Lower *L, const Call *c, int64_t a, int64_t b, int64_t *out) {
  if (!__builtin_mul_overflow(a, b, out)) return true;
  lw_error(L, c->loc, "%s(): size overflows 64 bits", c->b->name);
  return false;
}

/* Build a shape, checking every dim >= 1 and the element limit. */
static bool make_shape(Lower *L, SrcLoc loc, DType dt, int rank, const int64_t *dims, Shape *out) {
  if (rank > IR_MAX_RANK) {
    lw_error(L, loc, "tensor rank %d exceeds the limit of %d", rank, IR_MAX_RANK);
    return false;
  }
  int64_t numel = 1;
  bool overflow = false;
  for (int i = 0; i < rank; i++) {
    if (dims[i] < 1) {
      lw_error(L, loc, "tensor dimension %d must be positive, got %lld", i, (long long)dims[i]);
      return false;
    }
    if (!overflow && __builtin_mul_overflow(numel, dims[i], &numel)) overflow = true;
  }
  if (overflow || numel > IR_MAX_NUMEL) {
    char buf[256] = "";
    int n = snprintf(buf, sizeof buf, "%s[", ir_dtype_name(dt));
    for (int i = 0; i < rank && n > 0 && (size_t)n < sizeof buf; i++)
      n += snprintf(buf + n, sizeof buf - (size_t)n, "%s%lld", i ? "," : "", (long long)dims[i]);
    if (n > 0 && (size_t)n < sizeof buf) snprintf(buf + n, sizeof buf - (size_t)n, "]");
    lw_error(L, loc, "tensor too large: %s has more than 2^40 elements", buf);
    return false;
  }
  *out = ir_shape_make(rank, dims);
  return true;
}

Val lw_source(Lower *L, const Call *c, OpKind op, int rank, const int64_t *dims) {
  Shape s;
  if (!room(L, c->loc) || !make_shape(L, c->loc, DT_F32, rank, dims, &s)) return (Val){ .kind = V_ERR };
  return tensor(ir_add_source(L->g, op, DT_F32, &s, NULL, 0, gloc(L, c->loc)));
}

Val lw_const(Lower *L, SrcLoc loc, DType dt, double value) {
  if (!room(L, loc)) return (Val){ .kind = V_ERR };
  Shape scalar = { .rank = 0 };
  Attr a = ir_attr_float(ATTR_VALUE, value);
  return tensor(ir_add_source(L->g, OP_FILL, dt, &scalar, &a, 1, gloc(L, loc)));
}

static bool valid_param_name(const char *s) {
  if (!*s || *s == '.') return false;
  for (const char *p = s; *p; p++) {
    bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '.';
    if (!ok || (*p == '.' && (p[1] == '.' || p[1] == '\0'))) return false;
  }
  return true;
}

/* The scoped name of `name` (prefix + name): an explicit name must be new in
 * this scope; a default one is numbered (name, name_1, ...). `what` is the
 * builtin or def for messages. */
static const char *scope_name(Lower *L, const char *what, const char *name, bool given, SrcLoc loc) {
  Arena *ga = L->g->arena;
  if (!valid_param_name(name)) {
    lw_error(L, loc, "%s(): invalid name \"%s\" (use letters, digits, '_' and '.'-separated parts)", what, name);
    return NULL;
  }
  SrcLoc *first = ARENA_NEW(L->arena, SrcLoc);
  *first = loc;
  if (given) {
    const char *full = arena_printf(ga, "%s%s", L->prefix, name);
    SrcLoc *prev = fe_map_get(&L->scopes, full);
    if (prev) {
      lw_error(L, loc, "duplicate name \"%s\": parameters named '%s.*' already exist", name, full);
      diag_note(L->diag, *prev, "first defined here");
      return NULL;
    }
    fe_map_put(&L->scopes, full, first);
    return full;
  }
  /* a default name: the first free of name, name_1, name_2, ... in this scope */
  const char *base = arena_printf(L->arena, "%s%s", L->prefix, name);
  int *next = fe_map_get(&L->auto_next, base);
  if (!next) {
    next = ARENA_NEW(L->arena, int);
    fe_map_put(&L->auto_next, base, next);
  }
  for (;; (*next)++) {
    const char *full = *next ? arena_printf(ga, "%s_%d", base, *next) : arena_strdup(ga, base);
    if (!fe_map_get(&L->scopes, full)) {
      (*next)++;
      fe_map_put(&L->scopes, full, first);
      return full;
    }
  }
}

const char *lw_param_scope(Lower *L, const Call *c, int name_idx) {
  return scope_name(L, c->b->name, c->arg[name_idx].s, c->given[name_idx], c->given[name_idx] ? c->argloc[name_idx] : c->loc);
}

Val lw_param(Lower *L, const Call *c, const char *scope, const char *suffix, int rank, const int64_t *dims, const char *init,
             double scale, int decay) {
  const char *full = suffix ? arena_printf(L->g->arena, "%s.%s", scope, suffix) : scope;
  ParamRec *prev = fe_map_get(&L->params, full);
  if (prev) {
    lw_error(L, c->loc, "%s(): parameter '%s' is already defined", c->b->name, full);
    diag_note(L->diag, prev->loc, "first defined here");
    return (Val){ .kind = V_ERR };
  }
  Shape s;
  if (!room(L, c->loc) || !make_shape(L, c->loc, DT_F32, rank, dims, &s)) return (Val){ .kind = V_ERR };
  Attr at[4] = { ir_attr_str(ATTR_NAME, full), ir_attr_str(ATTR_INIT, init), ir_attr_float(ATTR_SCALE, scale),
                 ir_attr_int(ATTR_DECAY, decay) };
  ValueId v = ir_add_source(L->g, OP_PARAM, DT_F32, &s, at, 4, gloc(L, c->loc));
  ParamRec *rec = ARENA_NEW(L->arena, ParamRec);
  *rec = (ParamRec){ v, c->loc };
  fe_map_put(&L->params, full, rec);
  return tensor(v);
}

ValueId lw_find_param(Lower *L, const char *name) {
  ParamRec *r = fe_map_get(&L->params, name);
  return r ? r->v : IR_NONE;
}

/* ---- expressions --------------------------------------------------------- */

static const char *kind_str(Lower *L, Val v) {
  switch (v.kind) {
  case V_INT: return "an integer";
  case V_FLOAT: return "a number";
  case V_BOOL: return "a bool";
  case V_STR: return "a string";
  case V_ACT: return arena_printf(L->arena, "the activation name '%s'", v.s);
  case V_TENSOR: return arena_printf(L->arena, "tensor %s", lw_type(L, v.t));
  case V_LIST: return arena_printf(L->arena, "a list of %d", v.n);
  case V_ERR: break;
  }
  return "an invalid value";
}

static bool is_act_name(const char *s) {
  return !strcmp(s, "gelu") || !strcmp(s, "relu") || !strcmp(s, "tanh") || !strcmp(s, "sigmoid") || !strcmp(s, "none");
}

/* The closest of the given candidate strings to `name`, or NULL. */
typedef struct Suggest {
  const char *best;
  int dist;
  int limit;
} Suggest;

static void suggest(Suggest *s, const char *name, const char *cand) {
  int d = fe_edit_distance(name, cand, s->limit);
  if (d <= s->limit && (!s->best || d < s->dist)) {
    s->best = cand;
    s->dist = d;
  }
}

static int suggest_limit(const char *name) {
  size_t n = strlen(name);
  return n <= 3 ? 1 : n <= 6 ? 2 : 3;
}

static Val eval(Lower *L, const Expr *e);

/* A name: the def call's locals first, then the global environment. */
static Binding *lookup(const Lower *L, const char *name) {
  Binding *b = L->locals ? fe_map_get(L->locals, name) : NULL;
  return b ? b : fe_map_get(&L->env, name);
}

static Val eval_ident(Lower *L, const Expr *e) {
  Binding *b = lookup(L, e->str);
  if (b) {
    switch (b->kind) {
    case B_DIM: return (Val){ .kind = V_INT, .i = b->dim };
    case B_INPUT:
    case B_ARG:
    case B_VALUE: return b->val;
    case B_POISON: return (Val){ .kind = V_ERR };
    }
  }
  if (is_act_name(e->str)) return (Val){ .kind = V_ACT, .s = e->str };
  const Builtin *bf = fe_builtin_find(e->str);
  /* a one-tensor builtin named where a value is wanted is most likely an activation (act=silu) */
  if (bf && bf->np == 1 && (bf->p[0].kind == PK_TENSOR || bf->p[0].kind == PK_NUM_OR_TENSOR))
    return lw_error(L, e->loc,
                    "'%s' is a function, not an activation name: act= takes gelu, relu, tanh, sigmoid or none "
                    "(call it as %s(...) elsewhere)",
                    e->str, e->str);
  if (bf || fe_map_get(&L->funcs, e->str)) return lw_error(L, e->loc, "'%s' is a function; call it as %s(...)", e->str, e->str);
  Suggest s = { .limit = suggest_limit(e->str) };
  for (uint32_t i = 0; i < L->env.cap; i++)
    if (L->env.e[i].key) suggest(&s, e->str, L->env.e[i].key);
  for (uint32_t i = 0; L->locals && i < L->locals->cap; i++)
    if (L->locals->e[i].key) suggest(&s, e->str, L->locals->e[i].key);
  if (s.best) return lw_error(L, e->loc, "undefined name '%s' (did you mean '%s'?)", e->str, s.best);
  return lw_error(L, e->loc, "undefined name '%s'", e->str);
}

/* numpy broadcasting, checked here for a message in .cram terms */
static bool broadcastable(const Shape *a, const Shape *b) {
  int ra = a->rank, rb = b->rank;
  for (int i = 1; i <= ra && i <= rb; i++) {
    int64_t x = a->dim[ra - i], y = b->dim[rb - i];
    if (x != y && x != 1 && y != 1) return false;
  }
  return true;
}

static Val tensor_op(Lower *L, const Expr *e, OpKind op, ValueId a, ValueId b) {
  const Node *na = ir_node(L->g, a), *nb = ir_node(L->g, b);
  const char *verb = e->op == '-' ? "subtract" : op == OP_ADD ? "add" : "multiply";
  if (na->dtype != nb->dtype)
    return lw_error(L, e->loc, "cannot %s %s and %s: dtypes differ", verb, lw_type(L, a), lw_type(L, b));
  if (na->dtype == DT_I32)
    return lw_error(L, e->loc, "cannot %s i32 tensors (%s): arithmetic needs f32 or bf16", verb, lw_type(L, a));
  if (!broadcastable(&na->shape, &nb->shape))
    return lw_error(L, e->loc, "cannot %s %s and %s: shapes do not broadcast", verb, lw_type(L, a), lw_type(L, b));
  if (!room(L, e->loc)) return (Val){ .kind = V_ERR };
  ValueId in[2] = { a, b };
  ValueId v = ir_add(L->g, op, in, 2, NULL, 0, gloc(L, e->loc), L->diag);
  return v == IR_NONE ? (Val){ .kind = V_ERR } : tensor(v);
}

static bool is_number(Val v) { return v.kind == V_INT || v.kind == V_FLOAT; }
static double as_double(Val v) { return v.kind == V_INT ? (double)v.i : v.f; }

static Val scale_by(Lower *L, SrcLoc loc, ValueId t, double alpha) {
  if (!room(L, loc)) return (Val){ .kind = V_ERR };
  Attr at = ir_attr_float(ATTR_ALPHA, alpha);
  ValueId v = ir_add(L->g, OP_SCALE, &t, 1, &at, 1, gloc(L, loc), L->diag);
  return v == IR_NONE ? (Val){ .kind = V_ERR } : tensor(v);
}

/* tensor - tensor, tensor +- number, number +- tensor, tensor / number:
 * add / scale nodes (a number becomes a scalar fill of the tensor's dtype). */
static Val tensor_arith(Lower *L, const Expr *e, Val a, Val b) {
  char op = e->op;
  ValueId t = a.kind == V_TENSOR ? a.t : b.t;
  if (ir_node(L->g, t)->dtype == DT_I32)
    return lw_error(L, e->loc, "cannot apply '%c' to an i32 tensor (%s): arithmetic needs f32 or bf16", op, lw_type(L, t));
  if (a.kind == V_TENSOR && b.kind == V_TENSOR) { /* '-' */
    Val nb = scale_by(L, e->loc, b.t, -1.0);
    return nb.kind == V_TENSOR ? tensor_op(L, e, OP_ADD, a.t, nb.t) : nb;
  }
  if (op == '/') {
    double y = as_double(b);
    if (y == 0) return lw_error(L, e->loc, "division by zero");
    return scale_by(L, e->loc, a.t, 1.0 / y);
  }
  /* + or - with one number */
  double c = as_double(a.kind == V_TENSOR ? b : a);
  if (op == '-' && a.kind == V_TENSOR) c = -c;
  ValueId x = t;
  if (op == '-' && b.kind == V_TENSOR) { /* number - tensor */
    Val nx = scale_by(L, e->loc, t, -1.0);
    if (nx.kind != V_TENSOR) return nx;
    x = nx.t;
  }
  Val k = lw_const(L, e->loc, ir_node(L->g, t)->dtype, c);
  return k.kind == V_TENSOR ? tensor_op(L, e, OP_ADD, x, k.t) : k;
}

static Val eval_binary(Lower *L, const Expr *e) {
  Val a = eval(L, e->lhs), b = eval(L, e->rhs);
  if (a.kind == V_ERR || b.kind == V_ERR) return (Val){ .kind = V_ERR };
  char op = e->op;
  if (a.kind == V_INT && b.kind == V_INT) {
    int64_t r;
    const char *why = "";
    if (!fe_int_binop(op, a.i, b.i, &r, &why))
      return lw_error(L, e->loc, "%s in '%lld %c %lld'", why, (long long)a.i, op, (long long)b.i);
    return (Val){ .kind = V_INT, .i = r };
  }
  if (is_number(a) && is_number(b)) {
    double x = as_double(a), y = as_double(b), r = 0;
    switch (op) {
    case '+': r = x + y; break;
    case '-': r = x - y; break;
    case '*': r = x * y; break;
    case '/':
      if (y == 0) return lw_error(L, e->loc, "division by zero");
      r = x / y;
      break;
    default: return lw_error(L, e->loc, "'%%' needs two integers, got %s and %s", kind_str(L, a), kind_str(L, b));
    }
    return (Val){ .kind = V_FLOAT, .f = r };
  }
  if (a.kind == V_TENSOR && b.kind == V_TENSOR && (op == '+' || op == '*'))
    return tensor_op(L, e, op == '+' ? OP_ADD : OP_MUL, a.t, b.t);
  if (op == '*' && ((is_number(a) && b.kind == V_TENSOR) || (a.kind == V_TENSOR && is_number(b)))) {
    ValueId t = a.kind == V_TENSOR ? a.t : b.t;
    double alpha = as_double(a.kind == V_TENSOR ? b : a);
    if (ir_node(L->g, t)->dtype == DT_I32) return lw_error(L, e->loc, "cannot scale an i32 tensor (%s)", lw_type(L, t));
    return scale_by(L, e->loc, t, alpha);
  }
  bool tt = a.kind == V_TENSOR && b.kind == V_TENSOR;
  bool tn = (a.kind == V_TENSOR && is_number(b)) || (is_number(a) && b.kind == V_TENSOR);
  if ((tt && op == '-') || (tn && (op == '+' || op == '-')) || (a.kind == V_TENSOR && is_number(b) && op == '/'))
    return tensor_arith(L, e, a, b);
  const char *hint = "";
  if (tt) hint = " (tensors support + - and *; a tensor divides only by a number)";
  else if (a.kind == V_TENSOR || b.kind == V_TENSOR)
    hint = " (a tensor combines with a number by + - * and a tensor divided by a number)";
  return lw_error(L, e->loc, "type error: cannot apply '%c' to %s and %s%s", op, kind_str(L, a), kind_str(L, b), hint);
}

static bool kind_ok(Val v, ParamKind k) {
  switch (k) {
  case PK_TENSOR: return v.kind == V_TENSOR;
  case PK_INT: return v.kind == V_INT;
  case PK_FLOAT: return v.kind == V_INT || v.kind == V_FLOAT;
  case PK_BOOL: return v.kind == V_BOOL;
  case PK_STR: return v.kind == V_STR;
  case PK_ACT: return v.kind == V_ACT;
  case PK_MASK: return v.kind == V_TENSOR || (v.kind == V_ACT && !strcmp(v.s, "none"));
  case PK_NUM_OR_TENSOR: return v.kind == V_TENSOR || v.kind == V_INT || v.kind == V_FLOAT;
  case PK_INTS:
  case PK_TENSORS:
    if (v.kind != V_LIST) return false;
    for (int i = 0; i < v.n; i++)
      if (v.items[i].kind != (k == PK_INTS ? V_INT : V_TENSOR)) return false;
    return true;
  }
  return false;
}

static const char *kind_want(ParamKind k) {
  switch (k) {
  case PK_TENSOR: return "a tensor";
  case PK_INT: return "an integer";
  case PK_FLOAT: return "a number";
  case PK_BOOL: return "true or false";
  case PK_STR: return "a string";
  case PK_ACT: return "an activation (gelu, relu, tanh, sigmoid, none)";
  case PK_MASK: return "a tensor or none";
  case PK_NUM_OR_TENSOR: return "a number or a tensor";
  case PK_INTS: return "a list of integers ([2, 0, 1])";
  case PK_TENSORS: return "a list of tensors ([a, b])";
  }
  return "?";
}

static const char *param_list(Lower *L, const Builtin *b) {
  char *s = "";
  for (int i = 0; i < b->np; i++) s = arena_printf(L->arena, "%s%s%s", s, i ? ", " : "", b->p[i].name);
  return s;
}

static void lower_stmts(Lower *L, const Stmt *s, int depth);

/* A call of def df: arguments bound like a builtin's (positional, then by
 * keyword; `name=` names the parameter scope unless the def has a parameter
 * called name), then the body lowered in a fresh local map. */
static Val call_def(Lower *L, const Expr *e, DefRec *df) {
  const Stmt *d = df->s;
  Val arg[FE_MAX_DEF_PARAMS];
  bool given[FE_MAX_DEF_PARAMS] = { false }, bad = false, has_name_param = false;
  const char *name = d->name;
  bool name_given = false;
  SrcLoc name_loc = e->loc;
  for (int j = 0; j < d->nnames; j++) has_name_param |= !strcmp(d->names[j].name, "name");
  int npos = 0;
  for (int i = 0; i < e->nargs; i++) {
    const Arg *a = &e->args[i];
    Val v = eval(L, a->val);
    if (v.kind == V_ERR) {
      bad = true;
      continue;
    }
    int slot = -1;
    if (!a->key) {
      if (npos >= d->nnames) {
        if (!bad) lw_error(L, a->loc, "too many arguments to %s(): it takes %d, got %d", d->name, d->nnames, e->nargs);
        bad = true;
        continue;
      }
      slot = npos++;
    } else if (!strcmp(a->key, "name") && !has_name_param) {
      if (v.kind != V_STR) {
        lw_error(L, a->val->loc, "%s(): argument 'name' must be a string, got %s", d->name, kind_str(L, v));
        bad = true;
      }
      name = v.s, name_given = true, name_loc = a->val->loc;
      continue;
    } else {
      for (int j = 0; j < d->nnames; j++)
        if (!strcmp(d->names[j].name, a->key)) slot = j;
      if (slot < 0) {
        lw_error(L, a->loc, "unknown option '%s' for %s()", a->key, d->name);
        bad = true;
        continue;
      }
      if (given[slot]) {
        lw_error(L, a->loc, "%s(): argument '%s' given twice", d->name, a->key);
        bad = true;
        continue;
      }
    }
    given[slot] = true;
    arg[slot] = v;
  }
  for (int j = 0; j < d->nnames && !bad; j++)
    if (!given[j]) {
      lw_error(L, e->loc, "%s(): missing argument '%s'", d->name, d->names[j].name);
      bad = true;
    }
  if (bad || df->bad) return (Val){ .kind = V_ERR };
  if (df->active) {
    lw_error(L, e->loc, "recursive call of '%s': a def is inlined at every call, so it cannot call itself", d->name);
    diag_note(L->diag, d->name_loc, "'%s' is defined here", d->name);
    return (Val){ .kind = V_ERR };
  }
  const char *scope = scope_name(L, d->name, name, name_given, name_loc);
  if (!scope) return (Val){ .kind = V_ERR };
  Map locals = { .arena = L->arena };
  for (int j = 0; j < d->nnames; j++) {
    Binding *b = ARENA_NEW(L->arena, Binding);
    *b = (Binding){ .kind = B_ARG, .val = arg[j], .loc = d->names[j].loc };
    fe_map_put(&locals, d->names[j].name, b);
  }
  const char *outer_prefix = L->prefix;
  Map *outer_locals = L->locals;
  Val outer_ret = L->ret;
  L->prefix = arena_printf(L->arena, "%s.", scope);
  L->locals = &locals;
  L->ret = (Val){ .kind = V_ERR };
  df->active = true;
  int before = L->diag->nerrors;
  lower_stmts(L, d->body, 1);
  df->active = false;
  Val r = L->ret;
  L->prefix = outer_prefix;
  L->locals = outer_locals;
  L->ret = outer_ret;
  if (L->diag->nerrors > before) {
    df->bad = true; /* report a mistake in the body once */
    return (Val){ .kind = V_ERR };
  }
  return r;
}

static Val eval_call(Lower *L, const Expr *e) {
  DefRec *df = fe_map_get(&L->funcs, e->str);
  if (df) return call_def(L, e, df);
  const Builtin *b = fe_builtin_find(e->str);
  if (!b) {
    for (int i = 0; i < e->nargs; i++) eval(L, e->args[i].val); /* errors inside the arguments, too */
    Binding *bd = lookup(L, e->str);
    if (bd) return lw_error(L, e->loc, "'%s' is not a function", e->str);
    Suggest s = { .limit = suggest_limit(e->str) };
    for (int i = 0; i < fe_builtin_count(); i++) suggest(&s, e->str, fe_builtin_at(i)->name);
    for (uint32_t i = 0; i < L->funcs.cap; i++)
      if (L->funcs.e[i].key) suggest(&s, e->str, L->funcs.e[i].key);
    if (s.best) return lw_error(L, e->loc, "unknown function '%s' (did you mean '%s'?)", e->str, s.best);
    return lw_error(L, e->loc, "unknown function '%s'", e->str);
  }
  Call c = { .b = b, .loc = e->loc };
  bool bad = false;
  int npos = 0;
  /* Surplus positional arguments first: they shift every other argument, so
   * the kind mismatches they cause would only hide the real mistake. */
  int ngiven = 0, surplus = -1;
  for (int i = 0; i < e->nargs; i++)
    if (!e->args[i].key && ++ngiven > b->np && surplus < 0) surplus = i;
  if (surplus >= 0) {
    for (int i = 0; i < e->nargs; i++) eval(L, e->args[i].val); /* errors inside the arguments, too */
    return lw_error(L, e->args[surplus].loc, "too many arguments to %s(): it takes at most %d (%s), got %d positional", b->name,
                    b->np, param_list(L, b), ngiven);
  }
  for (int i = 0; i < e->nargs; i++) {
    const Arg *a = &e->args[i];
    Val v = eval(L, a->val);
    int slot = -1;
    if (!a->key) {
      if (npos >= b->np) {
        if (!bad)
          lw_error(L, a->loc, "too many arguments to %s(): it takes at most %d (%s), got %d", b->name, b->np, param_list(L, b),
                   e->nargs);
        bad = true;
        continue;
      }
      slot = npos++;
    } else {
      for (int j = 0; j < b->np; j++)
        if (!strcmp(b->p[j].name, a->key)) slot = j;
      if (slot < 0) {
        Suggest s = { .limit = suggest_limit(a->key) };
        for (int j = 0; j < b->np; j++) suggest(&s, a->key, b->p[j].name);
        if (s.best)
          lw_error(L, a->loc, "unknown option '%s' for %s() (did you mean '%s'? valid: %s)", a->key, b->name, s.best,
                   param_list(L, b));
        else lw_error(L, a->loc, "unknown option '%s' for %s() (valid: %s)", a->key, b->name, param_list(L, b));
        bad = true;
        continue;
      }
      if (c.given[slot]) {
        lw_error(L, a->loc, "%s(): argument '%s' given twice", b->name, a->key);
        bad = true;
        continue;
      }
    }
    c.given[slot] = true;
    c.argloc[slot] = a->val->loc;
    c.arg[slot] = v;
    if (v.kind == V_ERR) {
      bad = true;
    } else if (!kind_ok(v, b->p[slot].kind)) {
      lw_error(L, a->val->loc, "%s(): argument '%s' must be %s, got %s", b->name, b->p[slot].name, kind_want(b->p[slot].kind),
               kind_str(L, v));
      bad = true;
    }
  }
  for (int j = 0; j < b->np; j++) {
    if (c.given[j]) continue;
    if (b->p[j].required) {
      if (!bad) lw_error(L, e->loc, "%s(): missing argument '%s' (takes %s)", b->name, b->p[j].name, param_list(L, b));
      bad = true;
    }
    c.arg[j] = b->p[j].def;
    c.argloc[j] = e->loc;
  }
  if (bad) return (Val){ .kind = V_ERR };
  return b->lower(L, &c);
}

/* Expression trees are at most FE_MAX_EXPR_DEPTH high (parse.c), so this
 * recursion is bounded. */
static Val eval(Lower *L, const Expr *e) {
  switch (e->kind) {
  case EX_INT: return (Val){ .kind = V_INT, .i = e->ival };
  case EX_FLOAT: return (Val){ .kind = V_FLOAT, .f = e->fval };
  case EX_STR: return (Val){ .kind = V_STR, .s = e->str };
  case EX_BOOL: return (Val){ .kind = V_BOOL, .i = e->ival };
  case EX_IDENT: return eval_ident(L, e);
  case EX_CALL: return eval_call(L, e);
  case EX_BIN: return eval_binary(L, e);
  case EX_LIST: {
    Val *items = ARENA_ARRAY(L->arena, Val, e->nargs ? e->nargs : 1);
    bool bad = false;
    for (int i = 0; i < e->nargs; i++) bad |= (items[i] = eval(L, e->args[i].val)).kind == V_ERR;
    return bad ? (Val){ .kind = V_ERR } : (Val){ .kind = V_LIST, .items = items, .n = e->nargs };
  }
  case EX_NEG: {
    Val a = eval(L, e->lhs);
    if (a.kind == V_ERR) return a;
    if (a.kind == V_INT) {
      if (a.i == INT64_MIN) return lw_error(L, e->loc, "integer overflow (dims are 64-bit)");
      return (Val){ .kind = V_INT, .i = -a.i };
    }
    if (a.kind == V_FLOAT) return (Val){ .kind = V_FLOAT, .f = -a.f };
    if (a.kind == V_TENSOR && ir_node(L->g, a.t)->dtype != DT_I32) return scale_by(L, e->loc, a.t, -1.0);
    return lw_error(L, e->loc, "type error: cannot negate %s", kind_str(L, a));
  }
  }
  return (Val){ .kind = V_ERR };
}

/* ---- statements ---------------------------------------------------------- */

/* Binds in the def call's locals when inside one, else globally. */
static void bind(Lower *L, const char *name, BindKind k, SrcLoc loc, Val v, int64_t dim) {
  Map *m = L->locals ? L->locals : &L->env;
  Binding *b = fe_map_get(m, name);
  if (!b) {
    b = ARENA_NEW(L->arena, Binding);
    b->loc = loc;
    fe_map_put(m, name, b);
  }
  b->kind = k;
  b->val = v;
  b->dim = dim;
}

static const char *bind_what(BindKind k) { return k == B_DIM ? "dim" : k == B_INPUT ? "input" : "value"; }

static const char *a_bind_what(BindKind k) { return k == B_DIM ? "a dim" : k == B_INPUT ? "an input" : "a value"; }

/* A new dim or input must not reuse any name. */
static bool fresh_name(Lower *L, const char *name, SrcLoc loc, const char *what) {
  Binding *b = fe_map_get(&L->env, name);
  if (!b) return true;
  lw_error(L, loc, "duplicate name '%s': already defined as %s", name, a_bind_what(b->kind));
  diag_note(L->diag, b->loc, "first defined here");
  return false;
}

static void lower_dims(Lower *L, const Stmt *s) {
  for (int i = 0; i < s->ndims; i++) {
    const DimDef *d = &s->dims[i];
    if (!fresh_name(L, d->name, d->loc, "dim")) continue;
    Val v = { .kind = V_ERR };
    int di = -1;
    for (int j = 0; j < L->ndefs; j++)
      if (!strcmp(L->defs[j].name, d->name)) di = j;
    if (di >= 0) {
      L->def_used[di] = true;
      if (fe_parse_int(L->defs[di].value, &v.i)) v.kind = V_INT;
      else lw_error(L, (SrcLoc){ 0 }, "-D %s=%s: the value must be an integer", L->defs[di].name, L->defs[di].value);
    } else if (d->val) {
      v = eval(L, d->val);
      if (v.kind != V_INT && v.kind != V_ERR) {
        lw_error(L, d->val->loc, "dim '%s' must be an integer, got %s", d->name, kind_str(L, v));
        v.kind = V_ERR;
      }
    }
    if (v.kind == V_INT && v.i < 1) {
      lw_error(L, di >= 0 ? d->loc : d->val->loc, "dim '%s' must be positive, got %lld%s", d->name, (long long)v.i,
               di >= 0 ? " (from -D)" : "");
      v.kind = V_ERR;
    }
    bind(L, d->name, v.kind == V_INT ? B_DIM : B_POISON, d->loc, v, v.i);
    if (v.kind == V_INT) ir_graph_add_dim(L->g, d->name, v.i); /* the artifact's dims table (codegen) */
  }
}

static void lower_input(Lower *L, const Stmt *s) {
  if (!fresh_name(L, s->name, s->name_loc, "input")) return;
  if (s->rank < 0) {
    bind(L, s->name, B_POISON, s->name_loc, (Val){ 0 }, 0);
    return;
  }
  int64_t dims[IR_MAX_RANK];
  bool ok = true;
  for (int i = 0; i < s->rank; i++) {
    Val v = eval(L, s->shape[i]);
    if (v.kind == V_ERR) {
      ok = false;
    } else if (v.kind != V_INT) {
      lw_error(L, s->shape[i]->loc, "input dimension must be an integer, got %s", kind_str(L, v));
      ok = false;
    } else if (v.i < 1) {
      lw_error(L, s->shape[i]->loc, "input dimension must be positive, got %lld", (long long)v.i);
      ok = false;
    }
    dims[i] = v.i;
  }
  Shape sh;
  if (!ok || !room(L, s->name_loc) || !make_shape(L, s->name_loc, s->dtype, s->rank, dims, &sh)) {
    bind(L, s->name, B_POISON, s->name_loc, (Val){ 0 }, 0);
    return;
  }
  Attr at = ir_attr_str(ATTR_NAME, arena_strdup(L->g->arena, s->name));
  ValueId v = ir_add_source(L->g, OP_INPUT, s->dtype, &sh, &at, 1, gloc(L, s->name_loc));
  bind(L, s->name, B_INPUT, s->name_loc, tensor(v), 0);
}

static void lower_assign(Lower *L, const Stmt *s) {
  Binding *b = lookup(L, s->name);
  if (b && (b->kind == B_DIM || b->kind == B_INPUT)) {
    lw_error(L, s->name_loc, "cannot assign to %s '%s'", bind_what(b->kind), s->name);
    diag_note(L->diag, b->loc, "'%s' is defined here", s->name);
    return;
  }
  Val v = s->expr ? eval(L, s->expr) : (Val){ .kind = V_ERR };
  if (v.kind != V_TENSOR && v.kind != V_ERR) {
    lw_error(L, s->expr->loc, "'%s' must be bound to a tensor, got %s (constants go in 'dims')", s->name, kind_str(L, v));
    v.kind = V_ERR;
  }
  bind(L, s->name, v.kind == V_TENSOR ? B_VALUE : B_POISON, s->name_loc, v, 0);
}

static void lower_output(Lower *L, const Stmt *s) {
  for (int i = 0; i < s->nnames; i++) {
    const Name *n = &s->names[i];
    if (!strcmp(n->name, "loss")) {
      diag_warn(L->diag, n->loc, "'loss' is always an output; listing it has no effect");
      continue;
    }
    Binding *b = fe_map_get(&L->env, n->name);
    if (!b) {
      Expr id = { .kind = EX_IDENT, .loc = n->loc, .str = n->name };
      eval_ident(L, &id); /* reports undefined name (with a suggestion) */
      continue;
    }
    if (b->kind == B_POISON) continue;
    if (b->kind == B_DIM) {
      lw_error(L, n->loc, "output '%s' is a dim, not a tensor", n->name);
      continue;
    }
    bool dup = false;
    for (int j = 0; j < L->nouts; j++) dup |= !strcmp(L->outs[j].name, n->name);
    if (dup) {
      lw_error(L, n->loc, "'%s' is already an output", n->name);
      continue;
    }
    if (L->nouts == L->outcap) {
      L->outcap = L->outcap ? L->outcap * 2 : 8;
      Output *o = ARENA_ARRAY(L->arena, Output, L->outcap);
      if (L->nouts) memcpy(o, L->outs, sizeof(Output) * (size_t)L->nouts);
      L->outs = o;
    }
    L->outs[L->nouts++] = (Output){ arena_strdup(L->g->arena, n->name), b->val.t };
  }
}

static void lower_repeat(Lower *L, const Stmt *s, int depth) {
  Val n = eval(L, s->expr);
  if (n.kind == V_ERR) return;
  if (n.kind != V_INT) {
    lw_error(L, s->expr->loc, "repeat count must be an integer, got %s", kind_str(L, n));
    return;
  }
  if (n.i < 1 || n.i > FE_MAX_REPEAT) {
    lw_error(L, s->expr->loc, "repeat count must be between 1 and %d, got %lld", FE_MAX_REPEAT, (long long)n.i);
    return;
  }
  const char *name = s->name;
  if (!name) {
    if (s->expr->kind != EX_IDENT) {
      lw_error(L, s->expr->loc, "name the repeated parameters with 'as': repeat <count> as NAME:");
      return;
    }
    name = s->expr->str;
  }
  const char *outer = L->prefix;
  for (int64_t i = 0; i < n.i && !L->stop; i++) {
    int before = L->diag->nerrors;
    L->prefix = arena_printf(L->arena, "%s%s.%lld.", outer, name, (long long)i);
    lower_stmts(L, s->body, depth + 1);
    if (L->diag->nerrors > before) break; /* report a mistake in the body once */
  }
  L->prefix = outer;
}

static const char *stmt_keyword(StmtKind k) {
  static const char *kw[] = { "model", "dims", "input", "", "output", "repeat", "def", "return" };
  return kw[k];
}

/* Does any expression under e name `name`? (the unused-parameter warning) */
static bool expr_uses(const Expr *e, const char *name) {
  if (!e) return false;
  if (e->kind == EX_IDENT) return !strcmp(e->str, name);
  if (expr_uses(e->lhs, name) || expr_uses(e->rhs, name)) return true;
  for (int i = 0; i < e->nargs; i++)
    if (expr_uses(e->args[i].val, name)) return true;
  return false;
}
static bool stmts_use(const Stmt *s, const char *name) {
  for (; s; s = s->next)
    if (expr_uses(s->expr, name) || stmts_use(s->body, name)) return true;
  return false;
}

/* The statements of a def body: assignments, repeats, and one return at the
 * end of the body (not inside a repeat). Reports each misplaced statement. */
static bool check_def_body(Lower *L, const Stmt *s, bool top) {
  bool ok = true;
  for (; s; s = s->next) {
    if (s->kind == ST_RETURN && (!top || s->next)) {
      lw_error(L, s->loc, top ? "'return' must be the last statement of a def" : "'return' is not allowed inside repeat");
      ok = false;
    } else if (s->kind != ST_ASSIGN && s->kind != ST_REPEAT && s->kind != ST_RETURN) {
      lw_error(L, s->loc, "'%s' is not allowed inside def (only NAME = EXPR, repeat and return)", stmt_keyword(s->kind));
      ok = false;
    }
    if (s->kind == ST_REPEAT) ok &= check_def_body(L, s->body, false);
    if (top && !s->next && s->kind != ST_RETURN && ok) {
      lw_error(L, s->loc, "the def ends without 'return' (its last statement must be: return EXPR)");
      ok = false;
    }
  }
  return ok;
}

/* def NAME(params): checked here once; each call lowers the body (call_def). */
static void lower_def(Lower *L, const Stmt *s) {
  if (fe_builtin_find(s->name)) {
    lw_error(L, s->name_loc, "cannot define '%s': it is a builtin function", s->name);
    return;
  }
  DefRec *prev = fe_map_get(&L->funcs, s->name);
  if (prev) {
    lw_error(L, s->name_loc, "duplicate def '%s'", s->name);
    diag_note(L->diag, prev->s->name_loc, "first defined here");
    return;
  }
  Binding *b = fe_map_get(&L->env, s->name);
  if (b) {
    lw_error(L, s->name_loc, "cannot define '%s': it is already %s", s->name, a_bind_what(b->kind));
    diag_note(L->diag, b->loc, "'%s' is defined here", s->name);
    return;
  }
  DefRec *d = ARENA_NEW(L->arena, DefRec);
  d->s = s;
  fe_map_put(&L->funcs, s->name, d);
  if (s->nnames > FE_MAX_DEF_PARAMS) {
    lw_error(L, s->names[FE_MAX_DEF_PARAMS].loc, "too many parameters (a def takes at most %d)", FE_MAX_DEF_PARAMS);
    d->bad = true;
  }
  for (int i = 0; i < s->nnames; i++)
    for (int j = 0; j < i; j++)
      if (!strcmp(s->names[i].name, s->names[j].name)) {
        lw_error(L, s->names[i].loc, "duplicate parameter '%s'", s->names[i].name);
        d->bad = true;
      }
  if (!check_def_body(L, s->body, true)) d->bad = true;
  if (d->bad) return;
  for (int i = 0; i < s->nnames; i++)
    if (!stmts_use(s->body, s->names[i].name))
      diag_warn(L->diag, s->names[i].loc, "parameter '%s' of '%s' is never used", s->names[i].name, s->name);
}

/* depth 0: the top level; > 0 inside repeat or a def call (L->locals set). */
static void lower_stmts(Lower *L, const Stmt *s, int depth) {
  for (; s && !L->stop; s = s->next) {
    if (L->diag->max_errors && L->diag->nerrors > L->diag->max_errors) {
      L->stop = true;
      return;
    }
    if (s->kind == ST_DEF && (depth > 0 || L->locals)) {
      lw_error(L, s->loc, "'def' is only allowed at the top level");
      continue;
    }
    if (s->kind == ST_RETURN && !L->locals) {
      lw_error(L, s->loc, "'return' outside a def");
      continue;
    }
    if (depth > 0 && s->kind != ST_ASSIGN && s->kind != ST_REPEAT && s->kind != ST_RETURN) {
      lw_error(L, s->loc, "'%s' is not allowed inside repeat (only NAME = EXPR and nested repeat)", stmt_keyword(s->kind));
      continue;
    }
    switch (s->kind) {
    case ST_MODEL: break; /* handled by fe_lower */
    case ST_DIMS: lower_dims(L, s); break;
    case ST_INPUT: lower_input(L, s); break;
    case ST_ASSIGN: lower_assign(L, s); break;
    case ST_OUTPUT: lower_output(L, s); break;
    case ST_REPEAT: lower_repeat(L, s, depth); break;
    case ST_DEF: lower_def(L, s); break;
    case ST_RETURN: {
      Val v = eval(L, s->expr);
      if (v.kind != V_TENSOR && v.kind != V_ERR)
        v = lw_error(L, s->expr->loc, "a def must return a tensor, got %s", kind_str(L, v));
      L->ret = v;
      break;
    }
    }
  }
}

/* A parameter no output depends on gets no gradient and never trains:
 * almost always a mistake (a value computed and then not used). */
static void warn_unused_params(const Graph *g, Diag *d) {
  bool *live = calloc(g->n ? g->n : 1, 1);
  if (!live) return;
  for (uint32_t i = 0; i < g->nout; i++) live[g->outputs[i].value] = true;
  for (ValueId v = g->n; v-- > 0;)
    if (live[v])
      for (int k = 0; k < g->nodes[v].nin; k++) live[g->nodes[v].in[k]] = true;
  for (ValueId v = 0; v < g->n; v++)
    if (g->nodes[v].op == OP_PARAM && !live[v])
      diag_warn(d, g->nodes[v].loc, "parameter '%s' does not affect the loss or any output: it is never trained",
                ir_get_str(&g->nodes[v], ATTR_NAME));
  free(live);
}

Graph *fe_lower(const Program *p, const FeDefine *defs, int ndefs, Diag *d) {
  int errors_before = p->errors_before;
  const Stmt *model = NULL;
  const Stmt *first = p->stmts;
  for (const Stmt *s = p->stmts; s; s = s->next) {
    if (s->kind != ST_MODEL) continue;
    if (model) {
      diag_error(d, s->loc, "duplicate 'model' statement");
      diag_note(d, model->loc, "first defined here");
    } else {
      model = s;
    }
  }
  SrcLoc top = { p->file, 1, 1 };
  if (!first && d->nerrors == errors_before) diag_error(d, top, "empty model: expected 'model NAME' as the first line");
  else if (first && first->kind != ST_MODEL) diag_error(d, first->loc, "expected 'model NAME' as the first statement");

  Arena *scratch = arena_new();
  Graph *g = ir_graph_new(model ? model->name : "unnamed");
  g->name = arena_strdup(g->arena, model ? model->name : "unnamed");
  Lower L = { .arena = scratch, .g = g, .diag = d, .prefix = "", .defs = defs, .ndefs = ndefs };
  L.gfile = arena_strdup(g->arena, p->file ? p->file : "<input>");
  L.env.arena = L.params.arena = L.scopes.arena = L.auto_next.arena = L.funcs.arena = scratch;
  L.def_used = ARENA_ARRAY(scratch, bool, ndefs > 0 ? ndefs : 1);

  lower_stmts(&L, p->stmts, 0);

  if (!L.stop) {
    for (int i = 0; i < ndefs; i++) {
      if (L.def_used[i]) continue;
      Binding *b = fe_map_get(&L.env, defs[i].name);
      lw_error(&L, (SrcLoc){ 0 }, "-D %s=%s: the model has no dim named '%s'%s", defs[i].name, defs[i].value, defs[i].name,
               b ? " (it is not a dim)" : "");
    }
    Binding *loss = fe_map_get(&L.env, "loss");
    if (!loss) {
      if (first && d->nerrors == errors_before)
        diag_error(d, model ? model->loc : first->loc, "the model defines no 'loss' (write: loss = cross_entropy(...))");
    } else if (loss->kind == B_VALUE) {
      const Node *n = ir_node(g, loss->val.t);
      if (n->shape.rank != 0 || n->dtype != DT_F32)
        diag_error(d, loss->loc, "'loss' must be an f32 scalar, got %s", lw_type(&L, loss->val.t));
      else ir_add_output(g, "loss", loss->val.t);
    } else if (loss->kind != B_POISON) {
      diag_error(d, loss->loc, "'loss' must be a computed value");
    }
    for (int i = 0; i < L.nouts; i++) ir_add_output(g, L.outs[i].name, L.outs[i].value);
    if (d->nerrors == errors_before) warn_unused_params(g, d);
  }
  arena_free(scratch);
  if (d->nerrors > errors_before) {
    ir_graph_free(g);
    return NULL;
  }
  return g;
}
