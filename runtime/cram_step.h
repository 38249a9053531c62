/* cram_step.h - THE step ABI: the one C interface between a compiled train
 * step (step.so, produced by cramc) and the runtime that trains with it.
 *
 * Both sides include this header. A step.so exports exactly one symbol,
 *
 *     const cram_step_api *cram_step_entry(void);
 *
 * returning a table of metadata and function pointers. The runtime dlopens
 * the artifact, calls cram_step_entry, and refuses it unless abi_version ==
 * CRAM_STEP_ABI_VERSION (any change to this file that is not purely additive
 * at the end of a struct bumps the version). Nothing in the table may touch
 * a GPU until create() is called, so `cram info` works on machines without
 * one.
 *
 * The train step is two entry points so the runtime can ramp the batch size
 * by accumulation without recompiling:
 *   step()    one microbatch: forward + backward, grad_acc += grad * scale
 *             (scale = 1/k for k microbatches, so the loss is averaged);
 *   update()  global-norm clip + AdamW from grad_acc, then grad_acc = 0;
 *             every optimizer hyper-parameter arrives in its arguments, so
 *             one artifact serves any recipe.
 * eval() computes the loss only. All host buffers are plain arrays in the
 * layout the metadata describes; parameters and optimizer state are exposed
 * as f32 whatever the device precision, for checkpoints.
 */
#ifndef CRAM_STEP_H
#define CRAM_STEP_H

#include <stddef.h>
#include <stdint.h>

/* 2: cram_update_args carries the AdamW/clip hyper-parameters;
 * 3: eval_accuracy(), cram_step_meta.has_accuracy, grad_buffer() and
 *    CRAM_DT_F64, and the run-time settings tf32 / no_graphs / cpu_profile in
 *    cram_create_opts (were environment variables read by the shims) */
#define CRAM_STEP_ABI_VERSION 3u
#define CRAM_STEP_ENTRY       "cram_step_entry"
#define CRAM_STEP_MAX_RANK    6
/* Longest parameter or input name, in bytes without the NUL: cramc refuses
 * longer names and the loader refuses an artifact declaring one. */
#define CRAM_STEP_MAX_NAME 255

#ifdef __cplusplus
extern "C" {
#endif

/* CRAM_DT_F64 (v3) only describes the interp target's gradient buffer (grad_buffer). */
typedef enum cram_step_dtype { CRAM_DT_F32 = 0, CRAM_DT_BF16 = 1, CRAM_DT_I32 = 2, CRAM_DT_F64 = 3 } cram_step_dtype;

/* Return code of every entry point; details via last_error(). */
typedef enum cram_step_rc {
  CRAM_STEP_OK = 0,
  CRAM_STEP_E_ARG,    /* bad argument (index out of range, NULL buffer) */
  CRAM_STEP_E_DATA,   /* bad batch data (token id outside the vocabulary) */
  CRAM_STEP_E_DEVICE, /* no usable device / driver, or a device call failed */
  CRAM_STEP_E_NOMEM,
  CRAM_STEP_E_STATE /* called in the wrong order (e.g. update before step) */
} cram_step_rc;

typedef struct cram_tensor_info {
  const char *name;      /* "layers.3.attn.qkv.weight", "tokens" */
  cram_step_dtype dtype; /* as stored by the step (host copies are f32 or i32) */
  uint32_t rank;
  int64_t shape[CRAM_STEP_MAX_RANK];
  int64_t numel;
  uint32_t decay; /* params: 1 = AdamW weight decay applies */
} cram_tensor_info;

typedef struct cram_dim {
  const char *name; /* a `dims` entry of the .cram file */
  int64_t value;
} cram_dim;

typedef struct cram_step_meta {
  uint32_t abi_version;  /* CRAM_STEP_ABI_VERSION of the compiler that built it */
  const char *model;     /* `model` name */
  const char *target;    /* "cuda" | "cpu" | "interp" */
  const char *precision; /* "bf16" | "f32" | "f64" */
  const char *cramc_version;
  const char *source_hash; /* FNV-1a 64 of the .cram text, hex */
  int32_t min_sm;          /* CUDA: lowest compute capability *10 it runs on (80); 0 otherwise */
  uint32_t ndims;
  const cram_dim *dims;
  uint32_t ninputs; /* per-microbatch inputs, in the order step() takes them */
  const cram_tensor_info *inputs;
  uint32_t nparams;
  const cram_tensor_info *params;
  int64_t nparam_elems; /* total parameter count */
  uint64_t arena_bytes; /* device memory planned for one step */
  uint32_t kernel_count;
  double flops_per_token; /* model FLOPs of one train step per token (for MFU) */
  /* The forward graph's outputs besides the loss (`output` lines of the .cram
   * file, e.g. a classifier's logits), in source order, as predict() writes
   * them (host copies f32). */
  uint32_t noutputs;
  const cram_tensor_info *outputs;
  const char *source;    /* the .cram text it was compiled from (v2; NULL if not kept) */
  uint32_t has_accuracy; /* 1: the loss is a cross_entropy and eval_accuracy() counts hits (v3) */
} cram_step_meta;

/* Everything update() needs besides the step's state: nothing about the
 * optimizer is compiled in. The crammed recipe: betas (0.9, 0.98), eps 1e-12,
 * weight_decay 0.01, weight_decay_other 0, max_norm 0.5. */
typedef struct cram_update_args {
  float lr;
  int64_t step;              /* 1-based AdamW step, for bias correction */
  double beta1, beta2;       /* Adam moment decays, in [0, 1) */
  double eps;                /* added to sqrt(v_hat) */
  double weight_decay;       /* decoupled decay of params with decay = 1 */
  double weight_decay_other; /* decay of params with decay = 0 (norms, biases); 0 = they skip it */
  double max_norm;           /* global-norm gradient clip; <= 0: no clipping */
} cram_update_args;

/* The crammed recipe's update() arguments at learning rate LR, AdamW step STEP. */
#define CRAM_UPDATE_ARGS_RECIPE(LR, STEP)         \
  ((cram_update_args){ .lr = (LR),                \
                       .step = (STEP),            \
                       .beta1 = 0.9,              \
                       .beta2 = 0.98,             \
                       .eps = 1e-12,              \
                       .weight_decay = 0.01,      \
                       .weight_decay_other = 0.0, \
                       .max_norm = 0.5 })

/* The dropout seed of a context's run N (0-based: every step, update, eval and
 * predict call is one run). A trainer resuming after N runs creates its context
 * with dropout_seed = CRAM_STEP_RUN_SEED(seed, N) to continue the same masks. */
#define CRAM_STEP_RUN_SEED(SEED, N) ((uint64_t)(SEED) + 0x9e3779b97f4a7c15ull * (uint64_t)(N))

/* How a context runs. Zero-initialised options are the defaults; the
 * targets ignore the fields that are not theirs. Run-time settings live here,
 * never in the environment: the runtime (cram_step_opts_from_env in
 * runtime/loader.c) maps its environment variables onto them. */
typedef struct cram_create_opts {
  int device;   /* CUDA ordinal; ignored on CPU */
  int training; /* 1 = dropout active (finetuning) */
  uint64_t dropout_seed;
  int tf32;                /* cuda, f32 GEMMs: 1 = TF32 tensor cores (~1e-3 rounding) instead of exact f32 (v3) */
  int no_graphs;           /* cuda: 1 = launch kernels one by one instead of replaying CUDA graphs (v3) */
  const char *cpu_profile; /* cpu: time each kernel and write the profile to this file at destroy() (v3) */
} cram_create_opts;

typedef struct cram_ctx cram_ctx;

/* The whole gradient accumulator as one flat array (v3), for data-parallel
 * training: every rank sums it in place (all-reduce) between its last step()
 * and update(). The order of parameters and any alignment padding inside it
 * are the step's own business; padding stays zero. */
typedef struct cram_grad_buffer {
  void *data;            /* host pointer, or a CUDA device pointer when on_device */
  cram_step_dtype dtype; /* CRAM_DT_F32, or CRAM_DT_F64 (interp) */
  int64_t count;         /* elements, including any alignment padding */
  int32_t on_device;     /* 1: data is a CUdeviceptr of the context's device */
} cram_grad_buffer;

typedef struct cram_step_api {
  uint32_t abi_version; /* first field, always: checked before anything else */
  uint32_t struct_size; /* sizeof(cram_step_api) of the builder */
  const cram_step_meta *meta;

  cram_step_rc (*create)(const cram_create_opts *opts, cram_ctx **out, char *err, size_t errlen);
  void (*destroy)(cram_ctx *ctx);
  const char *(*last_error)(const cram_ctx *ctx);

  /* Parameters from the init rules of the .cram file (seeded, reproducible);
   * zeroes Adam moments and gradient accumulators. */
  cram_step_rc (*init_params)(cram_ctx *ctx, uint64_t seed);
  /* Host f32 copies of parameter i (meta->params[i]) and its Adam moments. */
  cram_step_rc (*get_param)(cram_ctx *ctx, uint32_t i, float *dst);
  cram_step_rc (*set_param)(cram_ctx *ctx, uint32_t i, const float *src);
  cram_step_rc (*get_moments)(cram_ctx *ctx, uint32_t i, float *m, float *v);
  cram_step_rc (*set_moments)(cram_ctx *ctx, uint32_t i, const float *m, const float *v);

  /* inputs[j] points to meta->inputs[j].numel values (int32_t for i32, float otherwise). */
  cram_step_rc (*step)(cram_ctx *ctx, const void *const *inputs, float scale, float *loss);
  cram_step_rc (*update)(cram_ctx *ctx, const cram_update_args *args, float *grad_norm);
  cram_step_rc (*eval)(cram_ctx *ctx, const void *const *inputs, float *loss);

  /* The trainer's NaN/Inf guard: grad_norm() is the global L2 norm of
   * grad_acc before clipping, without side effects (update() is skipped when
   * it is not finite); zero_grad() drops grad_acc without touching
   * parameters or moments (a skipped update). */
  cram_step_rc (*grad_norm)(cram_ctx *ctx, float *norm);
  cram_step_rc (*zero_grad)(cram_ctx *ctx);

  /* eval() that also hands back the forward's other outputs: outputs[k]
   * receives meta->outputs[k].numel floats (a NULL outputs, or a NULL
   * outputs[k], skips it). Dropout off, no gradients, state untouched: what
   * finetuning's dev evaluation needs (the class logits). */
  cram_step_rc (*predict)(cram_ctx *ctx, const void *const *inputs, float *loss, float *const *outputs);

  /* eval() plus the masked-token accuracy of the batch (v3): *correct = the
   * rows whose argmax over the logits is the target (the first index among
   * ties, as torch.argmax), *counted = the rows whose target is not ignored,
   * so accuracy = sum correct / sum counted over a data set. Both 0 when
   * meta->has_accuracy is 0 (the loss is not a cross_entropy). */
  cram_step_rc (*eval_accuracy)(cram_ctx *ctx, const void *const *inputs, float *loss, double *correct, double *counted);

  /* v3: grad_acc as one flat buffer the caller may modify in place; valid
   * until destroy() (the pointer does not move), meaningful between step()
   * and update(). Device work writing it is ordered before later work on
   * the CUDA legacy default stream (synchronize the context to use another). */
  cram_step_rc (*grad_buffer)(cram_ctx *ctx, cram_grad_buffer *out);
} cram_step_api;

typedef const cram_step_api *(*cram_step_entry_fn)(void);

#ifdef __cplusplus
}
#endif
#endif
