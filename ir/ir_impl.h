/* ir_impl.h: private to ir/; nothing outside this folder includes it.
 *
 * The shape rules named in ops.def, and the checks that ir_add,
 * ir_add_source, ir_verify and ir_parse share so that each check exists once.
 */
#ifndef CRAMC_IR_IMPL_H
#define CRAMC_IR_IMPL_H

#include "ir.h"

/* Big enough for any ir_type_str result: "bf16[" + 6 * (19 digits + ',') + "]". */
#define IR_TYPE_STR_MAX 160
/* Big enough for any shape-rule or check message (messages hold up to three types). */
#define IR_MSG_MAX 640

/* Shape rules, one per distinct name in ops.def's shape column. A row naming
 * a rule that is not declared here fails to compile. */
#define IR_SHAPE_RULE(fn) bool fn(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen)
IR_SHAPE_RULE(shape_embedding);
IR_SHAPE_RULE(shape_masked_rows);
IR_SHAPE_RULE(shape_masked_targets);
IR_SHAPE_RULE(shape_matmul);
IR_SHAPE_RULE(shape_broadcast);
IR_SHAPE_RULE(shape_same);
IR_SHAPE_RULE(shape_cast);
IR_SHAPE_RULE(shape_glu);
IR_SHAPE_RULE(shape_norm);
IR_SHAPE_RULE(shape_mean);
IR_SHAPE_RULE(shape_cross_entropy);
IR_SHAPE_RULE(shape_xent_hits);
IR_SHAPE_RULE(shape_reshape);
IR_SHAPE_RULE(shape_permute);
IR_SHAPE_RULE(shape_slice);
/* backward ops (autodiff): ir/shape_grad.c */
IR_SHAPE_RULE(shape_grad_pair);
IR_SHAPE_RULE(shape_glu_grad);
IR_SHAPE_RULE(shape_norm_grad);
IR_SHAPE_RULE(shape_norm_param_grad);
IR_SHAPE_RULE(shape_cross_entropy_grad);
IR_SHAPE_RULE(shape_embedding_grad);
IR_SHAPE_RULE(shape_masked_rows_grad);
IR_SHAPE_RULE(shape_sum_to);
IR_SHAPE_RULE(shape_broadcast_to);
IR_SHAPE_RULE(shape_pad);
/* optimizer ops (ir/shape_optim.c) */
IR_SHAPE_RULE(shape_sumsq);
IR_SHAPE_RULE(shape_clip_coef);
IR_SHAPE_RULE(shape_adam_sched);
IR_SHAPE_RULE(shape_adam_state);
IR_SHAPE_RULE(shape_adamw_param);
/* fused ops (ir/shape_fused.c) */
IR_SHAPE_RULE(shape_concat);
IR_SHAPE_RULE(shape_matmul_epi);
IR_SHAPE_RULE(shape_matmul_epi_grad);
IR_SHAPE_RULE(shape_add_norm);
IR_SHAPE_RULE(shape_norm_grad_add);
IR_SHAPE_RULE(shape_xent_linear);
IR_SHAPE_RULE(shape_xent_linear_grad);
IR_SHAPE_RULE(shape_xent_linear_hits);
/* fused attention (ir/shape_attention.c) */
IR_SHAPE_RULE(shape_attention);
IR_SHAPE_RULE(shape_attention_grad);

/* A type is well formed: known dtype, rank <= IR_MAX_RANK, dims >= 1,
 * element count <= IR_MAX_NUMEL (computed without overflow). */
bool ir_check_type(DType dt, const Shape *s, char *msg, size_t msglen);

/* The attribute list fits op: every id known and in the op's mask, none
 * twice, none missing, strings and arrays present. Order is not checked. */
bool ir_check_attrs(OpKind op, const Attr *attrs, int nattr, char *msg, size_t msglen);

/* A source node (input, param, sinusoid) is well formed: its attributes
 * (ir_check_attrs plus their values: non-empty name, known init, ...) and its
 * declared type. */
bool ir_check_source(OpKind op, DType dt, const Shape *s, const Attr *attrs, int nattr, char *msg, size_t msglen);

#endif
