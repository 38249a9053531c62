# torch_config.sh - sourced by bench/agree.sh and bench/on-device.sh: the
# reference config (reference/configs preset + --set overrides) with the same
# structure as a .cram model of the library. Dims (vocab, seq, hidden, ...)
# come from the artifact itself (bench_torch.py --dims-from a `cram bench
# --json` result), so only the structure is listed here.
# torch_config MODEL -> prints the bench_torch.py arguments, or fails.
# step_dims_json CRAM STEP.so -> prints {"model": ..., "dims": {...}} (what
#   bench_torch.py --dims-from reads) from `cram info`: no GPU, no step run.
torch_config() {
  case "$1" in
    bert_crammed) echo "--config bert_crammed" ;;
    tiny) echo "--config tiny" ;;
    # models/ablations/postln_noglu.cram: post-LN, no final norm, plain GELU FFN
    # (positions and sparse prediction as the crammed recipe)
    postln_noglu) echo "--config tiny --set name=postln_noglu --set norm_scheme=post --set final_norm=false --set ffn_type=gelu" ;;
    *) echo "torch_config: no reference config for model '$1' (add it to bench/torch_config.sh)" >&2; return 1 ;;
  esac
}

step_dims_json() {
  "$1" info "$2" | awk '
    $1 == "model" && !m { m = $2 }
    $1 == "dims" && !d { for (i = 2; i <= NF; i++) { split($i, kv, "="); d = d (d ? "," : "") "\"" kv[1] "\":" kv[2] } }
    END { if (!m || !d) exit 1; printf "{\"model\":\"%s\",\"dims\":{%s}}\n", m, d }'
}
