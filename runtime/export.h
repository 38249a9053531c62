/* export.h - parameters of a checkpoint as a plain safetensors file that other
 * code can load: `cram export`.
 *
 * Two naming schemes. CRAM_NAMES_CRAMC keeps cramc's names
 * ("layers.3.attn.qkv.weight"). CRAM_NAMES_CRAMMING renames to the state-dict
 * names of the reference implementation (JonasGeiping/cramming,
 * ScriptableLMForPreTraining: "encoder.layers.3.attn.self_attention.
 * query_key_value.weight"), adds what that state dict holds beyond our
 * parameters (the tied "decoder.weight", each layer's attention
 * "norm_factor" buffer = 1/sqrt(head dim)) and refuses parameters that have
 * no counterpart there. Our tensor layouts already follow the reference (QKV
 * interleaved per head, GLU value|gate, [out, in] weights), so values are
 * copied unchanged. */
#ifndef CRAM_EXPORT_H
#define CRAM_EXPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "cram_step.h"
#include "status.h"

typedef enum cram_export_names { CRAM_NAMES_CRAMMING, CRAM_NAMES_CRAMC } cram_export_names;

/* The reference's name for one of our parameter names; false if it has none. */
bool cram_export_name(const char *ours, char *out, size_t outlen);

/* Reads the param.<name> tensors of checkpoint `ckpt` (validated against the
 * model's parameter table), writes them to `out` atomically. */
cram_status cram_export(const cram_step_meta *meta, const char *ckpt, const char *out, cram_export_names names, cram_err *err);

/* What makes the exported weights self-describing, beside `out` (stem =
 * out without ".safetensors"): STEM.cram (the .cram source the step was
 * compiled from), STEM.json (model, dims, parameters with shapes and the
 * names used, source hash, the tokenizer's hash) and the tokenizer
 * STEM.vocab.txt (+ STEM.tokenizer.json when there is one), copied from
 * data_dir, or else from the directory the checkpoint records; its hash must
 * be the one the run trained with (no data directory known: no tokenizer,
 * said by a "note: " line). `written` gets the file names, one per line. */
cram_status cram_export_bundle(const cram_step_meta *meta, const char *ckpt, const char *out, const char *data_dir,
                               cram_export_names names, char *written, size_t written_len, cram_err *err);

#endif
