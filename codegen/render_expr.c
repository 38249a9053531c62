/* render_expr.c - the base expression table of the elementwise ops (see
 * render_expr.h). Written with the dialect's names so that the C renderer
 * computes in double (`tanh`, `%.17g` constants) and the CUDA one in float
 * (`tanhf`, `(float)%.9g`), each matching its reference semantics. */
#include "render_expr.h"

static void lit(FILE *o, const CgDialect *d, double v) { fprintf(o, d->lit, v); }

static void ex_add(FILE *o, const Node *n, const CgDialect *d) { (void)n, (void)d, fputs("a + b", o); }
static void ex_mul(FILE *o, const Node *n, const CgDialect *d) { (void)n, (void)d, fputs("a * b", o); }
static void ex_scale(FILE *o, const Node *n, const CgDialect *d) { lit(o, d, ir_get_float(n, ATTR_ALPHA)), fputs(" * a", o); }
static void ex_gelu(FILE *o, const Node *n, const CgDialect *d) { (void)n, fprintf(o, "%sgelu(a)", d->helper); }
static void ex_relu(FILE *o, const Node *n, const CgDialect *d) { (void)n, fprintf(o, "a > %s ? a : %s", d->zero, d->zero); }
static void ex_tanh(FILE *o, const Node *n, const CgDialect *d) { (void)n, fprintf(o, "tanh%s(a)", d->libm); }
static void ex_sqrt(FILE *o, const Node *n, const CgDialect *d) { (void)n, fprintf(o, "sqrt%s(a)", d->libm); }
static void ex_exp(FILE *o, const Node *n, const CgDialect *d) { (void)n, fprintf(o, "exp%s(a)", d->libm); }
static void ex_rsqrt(FILE *o, const Node *n, const CgDialect *d) { (void)n, fprintf(o, "%s / sqrt%s(a)", d->one, d->libm); }
static void ex_sigmoid(FILE *o, const Node *n, const CgDialect *d) { (void)n, fprintf(o, "%ssigmoid(a)", d->helper); }
static void ex_silu(FILE *o, const Node *n, const CgDialect *d) { (void)n, fprintf(o, "a * %ssigmoid(a)", d->helper); }
static void ex_sin(FILE *o, const Node *n, const CgDialect *d) { (void)n, fprintf(o, "sin%s(a)", d->libm); }
static void ex_cos(FILE *o, const Node *n, const CgDialect *d) { (void)n, fprintf(o, "cos%s(a)", d->libm); }
static void ex_sigmoid_grad(FILE *o, const Node *n, const CgDialect *d) { (void)n, fprintf(o, "b * a * (%s - a)", d->one); }
static void ex_silu_grad(FILE *o, const Node *n, const CgDialect *d) { (void)n, fprintf(o, "b * %ssilu_deriv(a)", d->helper); }
static void ex_cast(FILE *o, const Node *n, const CgDialect *d) {
  (void)n, (void)d, fputs("a", o);
} /* the load widens, the store rounds */
static void ex_gelu_grad(FILE *o, const Node *n, const CgDialect *d) { (void)n, fprintf(o, "b * %sgelu_deriv(a)", d->helper); }
static void ex_relu_grad(FILE *o, const Node *n, const CgDialect *d) { (void)n, fprintf(o, "a > %s ? b : %s", d->zero, d->zero); }
static void ex_tanh_grad(FILE *o, const Node *n, const CgDialect *d) { (void)n, fprintf(o, "b * (%s - a * a)", d->one); }
/* The optimizer ops read adam_sched's vector (ir.h IR_SCH_*) as s0..s7, loaded
 * once per kernel, not per element: the hyper-parameters arrive at run time. */
static void ex_adam_m(FILE *o, const Node *n, const CgDialect *d) { (void)n, fprintf(o, "s3 * a + (%s - s3) * (c * b)", d->one); }
static void ex_adam_v(FILE *o, const Node *n, const CgDialect *d) {
  (void)n, fprintf(o, "s4 * a + (%s - s4) * (c * b) * (c * b)", d->one);
}
static void ex_adamw_param(FILE *o, const Node *n, const CgDialect *d) {
  fprintf(o, "a - s0 * ((b / s1) / (sqrt%s(c / s2) + s5) + %s * a)", d->libm, ir_get_int(n, ATTR_DECAY) ? "s6" : "s7");
}

static const CgExprFn code_for_op[OP_COUNT] = {
  [OP_ADD] = ex_add,
  [OP_MUL] = ex_mul,
  [OP_SCALE] = ex_scale,
  [OP_GELU] = ex_gelu,
  [OP_RELU] = ex_relu,
  [OP_TANH] = ex_tanh,
  [OP_SQRT] = ex_sqrt,
  [OP_CAST] = ex_cast,
  [OP_GELU_GRAD] = ex_gelu_grad,
  [OP_RELU_GRAD] = ex_relu_grad,
  [OP_TANH_GRAD] = ex_tanh_grad,
  [OP_ADAM_M] = ex_adam_m,
  [OP_ADAM_V] = ex_adam_v,
  [OP_ADAMW_PARAM] = ex_adamw_param,
  [OP_EXP] = ex_exp,
  [OP_RSQRT] = ex_rsqrt,
  [OP_SIGMOID] = ex_sigmoid,
  [OP_SILU] = ex_silu,
  [OP_SIN] = ex_sin,
  [OP_COS] = ex_cos,
  [OP_SIGMOID_GRAD] = ex_sigmoid_grad,
  [OP_SILU_GRAD] = ex_silu_grad,
};

static CgExprFn expr_of(const CgDialect *d, OpKind op) {
  if ((unsigned)op >= OP_COUNT) return NULL;
  return d->override && d->override[op] ? d->override[op] : code_for_op[op];
}
bool cg_expr_supports(const CgDialect *d, OpKind op) { return expr_of(d, op) != NULL; }
bool cg_expr(FILE *out, const Node *n, const CgDialect *d) {
  CgExprFn f = expr_of(d, n->op);
  if (f) f(out, n, d);
  return f != NULL;
}
bool cg_expr_reads_sched(const Node *n) { return n->op == OP_ADAM_M || n->op == OP_ADAM_V || n->op == OP_ADAMW_PARAM; }
int cg_expr_nload(const Node *n) { return cg_expr_reads_sched(n) ? 3 : n->nin; }
