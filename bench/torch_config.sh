# torch_config.sh - sourced by bench/agree.sh and bench/run_gpu.sh: the
# reference config (reference/configs preset + --set overrides) with the same
# structure as a .cram model of the library. Dims (vocab, seq, hidden, ...)
# come from the artifact itself (bench_torch.py --dims-from a `cram bench
# --json` result), so only the structure is listed here.
# torch_config MODEL -> prints the bench_torch.py arguments, or fails.
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
