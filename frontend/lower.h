/* lower.h: what lower.c shares with builtins.c.
 *
 * Lowering evaluates the AST to Vals: compile-time numbers, strings, bools
 * and activation names, or tensors (ValueIds in the graph being built). A
 * builtin gets its arguments already bound and kind-checked (Call) and emits
 * IR through the lw_* helpers, which enforce the node limit, name parameters
 * and report errors at the call's .cram position.
 */
#ifndef CRAMC_FRONTEND_LOWER_H
#define CRAMC_FRONTEND_LOWER_H

#include "ast.h"

typedef enum {
  V_ERR,    /* an error was already reported: propagate silently */
  V_INT,    /* i */
  V_FLOAT,  /* f */
  V_BOOL,   /* i = 0/1 */
  V_STR,    /* s */
  V_ACT,    /* s = "gelu" | "relu" | "tanh" | "sigmoid" | "none" */
  V_TENSOR, /* t */
  V_LIST,   /* items[0..n) of any kind: [a, b, ...] */
} ValKind;

typedef struct Val Val;
struct Val {
  ValKind kind;
  int64_t i;
  double f;
  const char *s;
  ValueId t;
  const Val *items; /* V_LIST */
  int n;
};

/* String-keyed hash map (open addressing, arena memory). */
typedef struct MapEntry {
  const char *key;
  void *val;
} MapEntry;
typedef struct Map {
  Arena *arena;
  MapEntry *e;
  uint32_t cap, n;
} Map;
void *fe_map_get(const Map *m, const char *key);
void fe_map_put(Map *m, const char *key, void *val);

typedef struct Lower Lower;

/* ---- builtins.c ---------------------------------------------------------- */

typedef enum {
  PK_TENSOR,        /* a tensor */
  PK_INT,           /* an integer (dims arithmetic) */
  PK_FLOAT,         /* a number (integers are converted) */
  PK_BOOL,          /* true / false */
  PK_STR,           /* "string" */
  PK_ACT,           /* an activation name: gelu relu tanh sigmoid none */
  PK_MASK,          /* a tensor, or `none` */
  PK_INTS,          /* a list of integers: [2, 0, 1] */
  PK_TENSORS,       /* a list of tensors: [a, b] */
  PK_NUM_OR_TENSOR, /* a number (the function folds at compile time) or a tensor */
} ParamKind;

#define FE_MAX_BPARAMS 8

typedef struct BParam {
  const char *name;
  ParamKind kind;
  bool required; /* else `def` is the default */
  Val def;
} BParam;

typedef struct Call Call;
typedef Val (*LowerFn)(Lower *L, const Call *c);

typedef struct Builtin {
  const char *name;
  int np; /* parameters, required ones first */
  BParam p[FE_MAX_BPARAMS];
  LowerFn lower;
} Builtin;

struct Call {
  const Builtin *b;
  SrcLoc loc;                 /* the callee name; every node it emits points here */
  Val arg[FE_MAX_BPARAMS];    /* bound (defaults filled in) */
  bool given[FE_MAX_BPARAMS]; /* written by the caller, not defaulted */
  SrcLoc argloc[FE_MAX_BPARAMS];
};

const Builtin *fe_builtin_find(const char *name);
int fe_builtin_count(void);
const Builtin *fe_builtin_at(int i);

/* ---- lower.c: helpers for builtins --------------------------------------- */

Graph *lw_graph(Lower *L);
const Node *lw_node(Lower *L, ValueId v);
/* "f32[8,128,64]", valid until the lowering ends. */
const char *lw_type(Lower *L, ValueId v);
Val lw_error(Lower *L, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Append a computed node at the call's position (ir_add). */
Val lw_op(Lower *L, const Call *c, OpKind op, const ValueId *in, int nin, const Attr *attrs, int nattr);
/* The scoped name for the parameters of this call: repeat prefix + the
 * `name` argument (parameter index name_idx). Default names are numbered
 * (linear, linear_1, ...); an explicit name used twice in a scope is an error.
 * Returns NULL after an error. */
const char *lw_param_scope(Lower *L, const Call *c, int name_idx);
/* Create parameter "<scope>.<suffix>" (just "<scope>" when suffix is NULL)
 * of dtype f32. init: "normal" (std `scale`), "zeros", "ones", "const"
 * (value `scale`). */
Val lw_param(Lower *L, const Call *c, const char *scope, const char *suffix, int rank, const int64_t *dims, const char *init,
             double scale, int decay);
/* An existing parameter by full name (tied weights); IR_NONE if there is none. */
ValueId lw_find_param(Lower *L, const char *name);
/* A source node (sinusoid table, arange) of the given shape. */
Val lw_source(Lower *L, const Call *c, OpKind op, int rank, const int64_t *dims);
/* A scalar constant (a `fill` node) of dtype dt. */
Val lw_const(Lower *L, SrcLoc loc, DType dt, double value);
/* Checked product for shapes like [B*count, H]; reports at the call on overflow. */
bool lw_mul(Lower *L, const Call *c, int64_t a, int64_t b, int64_t *out);

#endif
