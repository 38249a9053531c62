#!/usr/bin/python3
"""cramc's interpreter train step vs the independent PyTorch reference.

For tiny.cram and two ablations (post-LN without GLU; untied decoder with
biases), at small -D dims, in f32 and f64: the same parameters (written by one
side, read by the other) and the same batch go through 3 train steps (forward,
backward, clip at 0.5, AdamW) in `cramc --interpret` and in
reference/crammed_torch.py; loss [3], grad_norm [3], grad.<p> (step 1) and
param.<p> (after step 3) must agree:

    rel(a, b) = max|a - b| / max|b|   per tensor (b = torch; max|b| = 0 -> max|a - b|)
    f32: rel <= 1e-4      f64: rel <= 1e-9

Exception (docs/reference.md, "Caveat"): the key third of attn.qkv.bias has an
identically-zero true gradient, so its computed gradient is rounding noise that
AdamW (eps 1e-12) turns into updates of up to ~lr; those entries of
param.*.attn.qkv.bias are compared with an absolute tolerance of 4 * lr * steps.

Also: --accum 2 on a batch of 2 microbatches equals one step on the whole batch
(every sequence has the same number of targets), and params initialised by
cramc (--init-seed, read back from a --lr 0 run) are accepted by torch.

Usage: test_interp_vs_torch.py [--cramc PATH] [-v]. Prints "N passed, M failed".
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "reference"))
import safetensors_io  # noqa: E402

REF = os.path.join(ROOT, "reference", "crammed_torch.py")
PY = "/usr/bin/python3"
STEPS = 3
LR = 1e-3
DIMS = dict(vocab=64, seq=16, hidden=16, heads=2, ffn=32, layers=2, batch=2)
MASKED = (DIMS["seq"] * 25 + 50) // 100  # models' masked=(seq*mask_pct+50)/100
TOL = {"f32": 1e-4, "f64": 1e-9}

# .cram file -> reference config overrides that make the torch model the same model.
CASES = [
    ("tiny", "models/tiny.cram", "tiny.json", {}),
    ("postln_noglu", "models/ablations/postln_noglu.cram", "postln_noglu.json",
     {"positions": "scaled-sinusoidal", "sparse_prediction": True}),
    ("untied_biases", "models/ablations/untied_biases.cram", "untied_biases.json",
     {"head_transform": False, "positions": "scaled-sinusoidal"}),
]

passed = failed = 0
verbose = False


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
        if verbose:
            print("ok   " + what)
    else:
        failed += 1
        print("FAIL " + what)


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise RuntimeError("command failed (%d): %s\n%s%s" % (r.returncode, " ".join(cmd), r.stdout, r.stderr))
    return r


def make_config(tmp, name, preset, over, batch):
    with open(os.path.join(ROOT, "reference", "configs", preset)) as f:
        cfg = json.load(f)
    cfg.update({k: v for k, v in DIMS.items()})
    cfg.update(over)
    cfg["batch"] = batch
    cfg["prediction_count"] = MASKED
    path = os.path.join(tmp, name + ".json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def defines(batch):
    out = []
    for k, v in DIMS.items():
        out += ["-D", "%s=%d" % (k, batch if k == "batch" else v)]
    return out


def rel(a, b):
    d = (a.double() - b.double()).abs().max().item() if a.numel() else 0.0
    s = b.double().abs().max().item() if b.numel() else 0.0
    return d / s if s > 0 else d


def key_rows_mask(n, hidden, heads):
    """True for the key entries of a per-head interleaved qkv bias [3H]."""
    import torch
    dh = hidden // heads
    m = torch.zeros(n, dtype=torch.bool)
    for h in range(heads):
        m[3 * dh * h + dh: 3 * dh * h + 2 * dh] = True
    return m


def compare(c, t, dtype, label):
    """Every tensor of the torch output t in the cramc output c; returns the worst rel."""
    worst = 0.0
    check(set(c) == set(t), "%s: same tensor names (cramc-only %s, torch-only %s)"
          % (label, sorted(set(c) - set(t))[:3], sorted(set(t) - set(c))[:3]))
    for name in sorted(t):
        if name not in c:
            continue
        a, b = c[name], t[name]
        if tuple(a.shape) != tuple(b.shape):
            check(False, "%s: %s shape %s vs %s" % (label, name, tuple(a.shape), tuple(b.shape)))
            continue
        if name.startswith("param.") and name.endswith("attn.qkv.bias"):
            m = key_rows_mask(b.numel(), DIMS["hidden"], DIMS["heads"])
            absd = (a.double() - b.double()).abs()[m].max().item()
            check(absd <= 4 * LR * STEPS, "%s: %s key part abs diff %.2e <= %.1e" % (label, name, absd, 4 * LR * STEPS))
            a, b = a[~m], b[~m]
        r = rel(a, b)
        worst = max(worst, r)
        check(r <= TOL[dtype], "%s: %s rel %.2e <= %.0e" % (label, name, r, TOL[dtype]))
    return worst


def main():
    global verbose
    ap = argparse.ArgumentParser()
    ap.add_argument("--cramc", default=os.path.join(ROOT, "build", "driver", "cramc"))
    ap.add_argument("-v", action="store_true")
    args = ap.parse_args()
    verbose = args.v
    t0 = time.time()
    worst = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, cram, preset, over in CASES:
            cfg = make_config(tmp, name, preset, over, DIMS["batch"])
            for dtype in ("f32", "f64"):
                label = "%s/%s" % (name, dtype)
                try:
                    P, B = os.path.join(tmp, "P.st"), os.path.join(tmp, "B.st")
                    T, C = os.path.join(tmp, "T.st"), os.path.join(tmp, "C.st")
                    if name == "tiny" and dtype == "f64":
                        # parameters from cramc's init (a --lr 0 --weight-decay 0 run leaves them unchanged)
                        run([PY, REF, "--config", cfg, "--init", "3", "--write-params", P, "--write-batch", B])
                        run([args.cramc, os.path.join(ROOT, cram), "--interpret", *defines(DIMS["batch"]),
                             "--batch", B, "--init-seed", "11", "--lr", "0", "--weight-decay", "0",
                             "--precision", "f64", "--out", C])
                        init = {k[len("param."):]: v for k, v in safetensors_io.load_file(C).items()
                                if k.startswith("param.")}
                        safetensors_io.save_file(init, P)
                        w = init["embedding.weight"].double()
                        check(abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 0.002,
                              "%s: cramc init N(0, 0.02): std %.4f mean %.4f" % (label, w.std().item(), w.mean().item()))
                        check((init["final_norm.weight"] == 1).all().item() and (init["final_norm.bias"] == 0).all().item(),
                              "%s: cramc init norms 1 / 0" % label)
                        check(abs(init["pos.scale"].item() - 0.25) < 1e-15, "%s: cramc init pos.scale 1/sqrt(16)" % label)
                    else:
                        run([PY, REF, "--config", cfg, "--init", "7", "--dtype", dtype, "--write-params", P,
                             "--write-batch", B])
                    run([PY, REF, "--config", cfg, "--params", P, "--batch", B, "--steps", str(STEPS), "--dtype", dtype,
                         "--lr", str(LR), "--threads", "1", "--out", T])
                    run([args.cramc, os.path.join(ROOT, cram), "--interpret", *defines(DIMS["batch"]), "--params", P,
                         "--batch", B, "--steps", str(STEPS), "--precision", dtype, "--lr", str(LR), "--out", C])
                    c, t = safetensors_io.load_file(C), safetensors_io.load_file(T)
                    worst[label] = compare(c, t, dtype, label)
                    check(c["loss"][STEPS - 1] < c["loss"][0], "%s: loss decreases over %d steps" % (label, STEPS))
                except Exception as e:  # a failing command is a failed check, not a crash
                    check(False, "%s: %s" % (label, e))
        # accumulation: 2 microbatches of 2 == one step on the 4-sequence batch
        name, cram, preset, over = CASES[0]
        cfg = make_config(tmp, "accum", preset, over, 2 * DIMS["batch"])
        for dtype in ("f32", "f64"):
            label = "accum2/%s" % dtype
            try:
                P, B = os.path.join(tmp, "P.st"), os.path.join(tmp, "B.st")
                T, C = os.path.join(tmp, "T.st"), os.path.join(tmp, "C.st")
                run([PY, REF, "--config", cfg, "--init", "5", "--dtype", dtype, "--write-params", P, "--write-batch", B])
                run([PY, REF, "--config", cfg, "--params", P, "--batch", B, "--steps", str(STEPS), "--dtype", dtype,
                     "--lr", str(LR), "--threads", "1", "--out", T])
                run([args.cramc, os.path.join(ROOT, cram), "--interpret", *defines(DIMS["batch"]), "--accum", "2",
                     "--params", P, "--batch", B, "--steps", str(STEPS), "--precision", dtype, "--lr", str(LR),
                     "--out", C])
                worst[label] = compare(safetensors_io.load_file(C), safetensors_io.load_file(T), dtype, label)
            except Exception as e:
                check(False, "%s: %s" % (label, e))
    for k, v in worst.items():
        print("worst relative error %-22s %.3e" % (k, v))
    print("time %.1f s" % (time.time() - t0))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
