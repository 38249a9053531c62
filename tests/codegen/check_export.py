"""check_export.py CHECKPOINT EXPORT LAYERS: the file `cram export` wrote holds
every parameter of the checkpoint under the reference's state-dict name with
identical bytes, plus the tied decoder.weight and one norm_factor buffer per
layer. Standard library only (reads the safetensors header itself)."""
import json
import math
import re
import struct
import sys


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    return {k: (v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in header.items()}


RULES = [(r"^embedding\.weight$", "encoder.embedding.word_embedding.weight"),
         (r"^pos\.scale$", "encoder.embedding.pos_embedding.scale_factor"),
         (r"^emb_norm\.(weight|bias)$", r"encoder.embedding.norm.\1"),
         (r"^final_norm\.(weight|bias)$", r"encoder.final_norm.\1"),
         (r"^layers\.(\d+)\.(norm1|norm2)\.(weight|bias)$", r"encoder.layers.\1.\2.\3"),
         (r"^layers\.(\d+)\.attn\.qkv\.(weight|bias)$", r"encoder.layers.\1.attn.self_attention.query_key_value.\2"),
         (r"^layers\.(\d+)\.attn\.out\.(weight|bias)$", r"encoder.layers.\1.attn.dense.\2"),
         (r"^layers\.(\d+)\.ffn\.in\.(weight|bias)$", r"encoder.layers.\1.ffn.dense_in.\2"),
         (r"^layers\.(\d+)\.ffn\.out\.(weight|bias)$", r"encoder.layers.\1.ffn.dense_out.\2")]


def reference_name(ours):
    for pat, rep in RULES:
        if re.match(pat, ours):
            return re.sub(pat, rep, ours)
    raise SystemExit(f"no rule for {ours}")


def main():
    ckpt, exp, layers, head_dim = load(sys.argv[1]), load(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    fails = 0
    expected = set()
    for key, (shape, raw) in ckpt.items():
        if not key.startswith("param."):
            continue
        name = reference_name(key[len("param."):])
        expected.add(name)
        if name not in exp or exp[name] != (shape, raw):
            print(f"FAIL: {name} missing or different from {key}")
            fails += 1
    if exp.get("decoder.weight") != exp.get("encoder.embedding.word_embedding.weight"):
        print("FAIL: decoder.weight is not the tied word embedding")
        fails += 1
    for layer in range(layers):
        name = f"encoder.layers.{layer}.attn.self_attention.norm_factor"
        expected.add(name)
        value = struct.unpack("<f", exp.get(name, ([], b"\0\0\0\0"))[1])[0]
        if abs(value - 1 / math.sqrt(head_dim)) > 1e-7:
            print(f"FAIL: {name} = {value}")
            fails += 1
    extra = set(exp) - expected - {"decoder.weight"}
    if extra:
        print(f"FAIL: unexpected tensors {sorted(extra)}")
        fails += 1
    print(f"export: {len(exp)} tensors checked, {fails} failures")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
