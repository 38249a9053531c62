/* ir.h: the cramc IR, a static-shape SSA tensor graph.
 *
 * A Graph is a flat array of Nodes in topological order: nodes are only ever
 * appended and may only read earlier nodes, so a value's id (ValueId) is its
 * index and "%12" in the text form is nodes[12]. Graphs own an Arena; a pass
 * builds a new graph rather than editing one in place.
 *
 * What an op is (name, arity, attributes, shape rule) lives in ops.def and
 * nowhere else; OpInfo below is its expansion.
 */
#ifndef CRAMC_IR_H
#define CRAMC_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "arena.h"
#include "diag.h"

/* ---- dtypes and shapes -------------------------------------------------- */

typedef enum { DT_F32, DT_BF16, DT_I32, DT_COUNT } DType;

#define IR_MAX_RANK 6
typedef struct Shape {
  uint8_t rank;             /* 0 = scalar */
  int64_t dim[IR_MAX_RANK]; /* each >= 1 */
} Shape;

/* Largest element count of one tensor; keeps every byte size far from int64 overflow. */
#define IR_MAX_NUMEL (INT64_C(1) << 40)

/* The optimizer's runtime vectors (ops.def "optimizer ops"; passes/adamw.c):
 * input `hyper` f32[IR_ADAM_HYPER], the AdamW/clip hyper-parameters the
 * runtime passes each update (cram_update_args), and adam_sched's result
 * f32[IR_ADAM_SCHED], what the per-element kernels read. */
enum { IR_HYP_BETA1, IR_HYP_BETA2, IR_HYP_EPS, IR_HYP_WD, IR_HYP_WD_OTHER, IR_HYP_MAX_NORM, IR_ADAM_HYPER };
enum { IR_SCH_LR, IR_SCH_BC1, IR_SCH_BC2, IR_SCH_BETA1, IR_SCH_BETA2, IR_SCH_EPS, IR_SCH_WD, IR_SCH_WD_OTHER, IR_ADAM_SCHED };

const char *ir_dtype_name(DType t); /* "f32" */
bool ir_dtype_parse(const char *s, size_t n, DType *out);
size_t ir_dtype_size(DType t); /* bytes per element */
int64_t ir_shape_numel(const Shape *s);
bool ir_shape_eq(const Shape *a, const Shape *b);
Shape ir_shape_make(int rank, const int64_t *dims);
/* "f32[8,128,64]" into buf; returns buf. */
char *ir_type_str(DType t, const Shape *s, char *buf, size_t n);

/* ---- attributes ---------------------------------------------------------- */

typedef enum {
#define ATTR(id, name, kind) ATTR_##id,
#include "attrs.def"
#undef ATTR
  ATTR_COUNT
} AttrId;

typedef enum { AK_INT, AK_FLOAT, AK_STR, AK_INTS } AttrKind;

typedef struct AttrInfo {
  const char *name;
  AttrKind kind;
} AttrInfo;
extern const AttrInfo ir_attrs[ATTR_COUNT];

typedef struct Attr {
  AttrId id;
  union {
    int64_t i;     /* AK_INT */
    double f;      /* AK_FLOAT */
    const char *s; /* AK_STR (owned by the graph's arena once added) */
    struct {
      const int64_t *v;
      uint32_t n;
    } ints; /* AK_INTS */
  } u;
} Attr;

#define IR_MAX_ATTRS 6 /* most attributes any op row asks for (attention_grad) */

/* Attribute constructors for builders. */
static inline Attr ir_attr_int(AttrId id, int64_t v) {
  Attr a = { .id = id };
  a.u.i = v;
  return a;
}
static inline Attr ir_attr_float(AttrId id, double v) {
  Attr a = { .id = id };
  a.u.f = v;
  return a;
}
static inline Attr ir_attr_str(AttrId id, const char *s) {
  Attr a = { .id = id };
  a.u.s = s;
  return a;
}
static inline Attr ir_attr_ints(AttrId id, const int64_t *v, uint32_t n) {
  Attr a = { .id = id };
  a.u.ints.v = v;
  a.u.ints.n = n;
  return a;
}

/* ---- ops ----------------------------------------------------------------- */

typedef enum {
#define OP(id, name, min_in, max_in, cls, attrs, shape, interp, grad, ...) OP_##id,
#include "ops.def"
#undef OP
  OP_COUNT
} OpKind;

typedef enum {
  OC_SOURCE,    /* no inputs: batch inputs, parameters, constant tables */
  OC_GATHER,    /* index-driven row gathers */
  OC_GEMM,      /* matrix products */
  OC_EW_UNARY,  /* elementwise, one input */
  OC_EW_BINARY, /* elementwise, two inputs with broadcasting */
  OC_NORM,      /* row-wise over the last axis */
  OC_REDUCE,    /* reductions over an axis */
  OC_LOSS,      /* scalar objectives */
  OC_VIEW,      /* layout changes: reshape, permute, slice */
  OC_ATTENTION, /* fused attention (forward, log-sum-exp, backward): one kernel per (batch, head) tile */
} OpClass;

typedef struct Graph Graph;
typedef struct Node Node;

/* Shape rule: computes a node's dtype and shape from its inputs and
 * attributes; on failure writes a one-line reason into msg and returns false. */
typedef bool (*ShapeFn)(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen);

/* The properties column of ops.def (see there): P(X) = 1u << OPP_X. */
typedef enum { OPP_POINTWISE, OPP_INPLACE, OPP_CLOSES, OPP_SCATTER, OPP_SAME_DTYPE, OPP_WIDENS } OpProp;

/* The gemm form column of ops.def: how a GEMM-like op runs as a library GEMM. */
typedef enum {
  IR_GEMM_NO,       /* not a GEMM */
  IR_GEMM_PLAIN,    /* C = op(A) op(B) */
  IR_GEMM_ACT,      /* act(C + bias) */
  IR_GEMM_GLU,      /* glu(C + bias) */
  IR_GEMM_ACT_GRAD, /* act'(pre) * C, pre = input 0 */
  IR_GEMM_GLU_GRAD, /* glu_grad(pre, C) */
} IrGemmForm;

typedef struct OpInfo {
  const char *name;
  uint8_t min_in, max_in;
  OpClass cls;
  uint32_t attrs;  /* mask of (1u << ATTR_*) */
  ShapeFn shape;   /* NULL for sources */
  uint32_t props;  /* mask of (1u << OPP_*) */
  IrGemmForm gemm; /* IR_GEMM_NO unless cls == OC_GEMM */
  uint8_t gemm_a;  /* input index of the GEMM's A (B is the next) */
} OpInfo;
extern const OpInfo ir_ops[OP_COUNT];

/* Whether op has property p (ops.def's properties column). */
static inline bool ir_op_is(OpKind op, OpProp p) { return (unsigned)op < OP_COUNT && (ir_ops[op].props >> p) & 1u; }

bool ir_op_parse(const char *s, size_t n, OpKind *out);

/* ---- activations (acts.def) ------------------------------------------------ */

/* The `act` attribute's values, numbered as acts.def (every backend uses the
 * same numbering: the CUDA library's cr_act_kind is expanded from that file). */
typedef enum {
#define ACT(id, name) ACT_##id,
#include "acts.def"
#undef ACT
  ACT_COUNT
} IrAct;
extern const char *const ir_act_names[ACT_COUNT];
/* The activation named s (NUL-terminated), or -1. */
int ir_act_parse(const char *s);

/* ---- graphs -------------------------------------------------------------- */

typedef uint32_t ValueId;
#define IR_NONE   ((ValueId)UINT32_MAX)
#define IR_MAX_IN 7 /* attention_grad: q, k, v, o, lse, do, bias */

struct Node {
  OpKind op;
  DType dtype;
  Shape shape;
  uint8_t nin;
  ValueId in[IR_MAX_IN]; /* earlier nodes only */
  uint8_t nattr;
  Attr attr[IR_MAX_ATTRS]; /* sorted by AttrId */
  SrcLoc loc;              /* the .cram position that produced it; kept by passes */
};

typedef struct Output {
  const char *name; /* "loss", or a user-named extra output */
  ValueId value;
} Output;

/* A dim of the model (`dims` in the .cram, after -D overrides): metadata the
 * frontend records and every pass carries (ir_graph_new_like), so that
 * codegen writes the artifact's dims table without the frontend. */
typedef struct IrDim {
  const char *name;
  int64_t value;
} IrDim;

struct Graph {
  Arena *arena;     /* owns nodes, strings, attribute arrays */
  const char *name; /* model name */
  IrDim *dims;      /* the model's dims, in source order */
  uint32_t ndims, dimcap;
  Node *nodes;
  uint32_t n, cap;
  Output *outputs;
  uint32_t nout, outcap;
  /* Kernel partition (passes/fuse_elementwise.c, adamw_multi.c; docs/passes.md):
   * kernel[v] = the kernel that computes node v (IR_NONE for sources), ids
   * 0..nkernels-1; NULL = one kernel per computed node. Semantics never
   * depend on it; a pass that builds a new graph drops it. */
  uint32_t *kernel;
  uint32_t nkernels;
};

Graph *ir_graph_new(const char *name);     /* own arena */
Graph *ir_graph_new_like(const Graph *in); /* empty, with in's name and dims: a pass's output */
void ir_graph_add_dim(Graph *g, const char *name, int64_t value);
void ir_graph_free(Graph *g); /* NULL is fine */

/* Append a source node (input, param, sinusoid) with an explicit type. */
ValueId ir_add_source(Graph *g, OpKind op, DType dt, const Shape *shape, const Attr *attrs, int nattr, SrcLoc loc);
/* Append a computed node; its shape comes from the op's shape rule. On a
 * shape error reports "<op>: <reason>" at loc and returns IR_NONE. Attribute
 * strings and arrays are copied into the graph's arena. */
ValueId ir_add(Graph *g, OpKind op, const ValueId *in, int nin, const Attr *attrs, int nattr, SrcLoc loc, Diag *d);
void ir_add_output(Graph *g, const char *name, ValueId v);

static inline const Node *ir_node(const Graph *g, ValueId v) { return &g->nodes[v]; }
const Attr *ir_attr(const Node *n, AttrId id); /* NULL if absent */
int64_t ir_get_int(const Node *n, AttrId id);  /* IR_ASSERTs presence */
double ir_get_float(const Node *n, AttrId id);
const char *ir_get_str(const Node *n, AttrId id);

/* Structural checks: arity, attributes, topological order, dtypes/shapes
 * agree with the shape rules. Reports each problem; returns true if clean. */
bool ir_verify(const Graph *g, Diag *d);

/* ---- text form ----------------------------------------------------------- */

/* Print the graph in the text form parsed by ir_parse (round-trips exactly). */
void ir_print(const Graph *g, FILE *out);
/* Parse the text form; `file` names the text for diagnostics. Returns NULL
 * after reporting errors to d. */
Graph *ir_parse(const char *text, size_t len, const char *file, Diag *d);

/* ---- fused attention (ir/shape_attention.c) ---------------------------------
 * The geometry of an attention / attention_lse / attention_grad node, as the
 * shape rules check it and every kernel (interpreter, renderers) reads it.
 * Sources are "bshd": q, k, v are rank-4 [B, S, G, W] tensors; part t (0 = q,
 * 1 = k, 2 = v) of head g is X_t[b, s, g, off[t] : off[t] + dh]. Query head h
 * uses key/value group h / (heads / kv_heads). Element strides below are in
 * elements of the source (the last axis is contiguous). */
typedef struct IrAttnGeom {
  int64_t B, S, heads, kv_heads, dh;
  int64_t off[3];         /* q_off, k_off, v_off */
  int64_t width[3];       /* W of the q, k, v sources (row length of one (b, s, g) entry: G * W per s) */
  int64_t stride[3][3];   /* part t: element strides of batch, seq, head */
  int bias;               /* input index of the bias, or -1 */
  int64_t bias_stride[4]; /* bias element strides over (b, h, i, j); 0 = broadcast */
  double alpha, p;        /* score scale; dropout probability */
  int64_t key;            /* dropout mask stream (as the dropout op's key) */
} IrAttnGeom;
/* Fills geo from n (an OC_ATTENTION node) and its inputs; false with a
 * one-line reason in msg when they do not fit together. */
bool ir_attention_geom(const Graph *g, const Node *n, IrAttnGeom *geo, char *msg, size_t msglen);
/* b is the sibling of a: attention_lse of attention (the forward writes o and
 * lse), or layernorm_bgrad of layernorm_wgrad (one pass over x and dy), with
 * the same inputs and attributes. A backend computes the two in one kernel;
 * the passes keep such a pair adjacent (fuse_attention and the layernorm
 * gradient rule emit them so, sink leaves them, the partition makes them one
 * kernel). */
bool ir_siblings(const Node *a, const Node *b);
/* p is the layernorm_wgrad of the same x, dy and eps as the norm gradient g
 * (layernorm_grad or layernorm_grad_add): built right after it, it joins g's
 * kernel (with its layernorm_bgrad sibling), and a backend may compute the
 * parameter gradients in g's pass over x and dy. */
bool ir_norm_grad_params(const Node *g, const Node *p);
/* b, right after a, is computed in a's kernel: ir_siblings or ir_norm_grad_params (the partition joins
 * them; sink keeps them adjacent). */
bool ir_kernel_follows(const Node *a, const Node *b);

/* ---- facts for --summary ------------------------------------------------- */

int64_t ir_node_flops(const Graph *g, const Node *n); /* multiply-adds count 2; GEMMs only for now */

#endif
