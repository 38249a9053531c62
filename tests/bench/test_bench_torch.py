#!/usr/bin/python3
"""Self-tests of reference/bench_torch.py (the PyTorch baseline of `cram bench`) on the CPU.

Run by ctest (bench.torch) or directly: /usr/bin/python3 tests/bench/test_bench_torch.py [-v].
The GPU paths (CUDA events, fused AdamW, torch.compile with CUDA graphs) run in
bench/on-device.sh; here: eager in f32 and bf16 autocast on tiny dims, the JSON contract
shared with `cram bench --json`, the compile skip on torch 1.x, batches and losses mode,
--dims-from, the cramming-name import of `cram export` files, the FLOP count, errors.
Ends with "N passed, M failed".
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import unittest

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "reference"))
import crammed_torch as ct  # noqa: E402

BENCH = os.path.join(REPO, "reference", "bench_torch.py")
SMALL = ["--config", "tiny", "--set", "seq=16", "--set", "hidden=32", "--set", "heads=2", "--set", "ffn=64",
         "--set", "layers=1", "--set", "vocab=64", "--set", "prediction_count=4", "--microbatch", "4",
         "--device", "cpu", "--threads", "1"]
# the fields `cram bench --json` also writes (runtime/cli/cmd_bench.c), shared by both tables
SHARED = ["impl", "mode", "model", "device", "precision", "data", "distinct_batches", "params", "microbatch", "seq",
          "accum", "warmup", "steps", "tokens_per_step", "lr", "timed_s", "ms_per_step", "ms_per_step_min",
          "ms_per_step_median", "ms_per_step_max", "tokens_per_s", "flops_per_token", "achieved_tflops",
          "peak_tflops", "mfu", "last_grad_norm", "peak_memory_bytes", "memory_kind", "nonfinite_losses",
          "final_loss", "losses"]


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, BENCH, *args], capture_output=True, text=True, timeout=240)


class BenchTorch(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        self.d = self.tmp.name

    def tearDown(self) -> None:
        self.tmp.cleanup()

    def run_json(self, *args: str) -> dict:
        out = os.path.join(self.d, "r.json")
        p = bench(*SMALL, *args, "--json", out)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(out) as f:
            return json.load(f)

    def test_eager_f32_json(self) -> None:
        r = self.run_json("--precision", "f32", "--warmup", "2", "--steps", "3")
        for k in SHARED:
            self.assertIn(k, r)
        self.assertEqual((r["impl"], r["mode"], r["precision"], r["device"]), ("torch", "eager", "f32", "cpu"))
        for k in ("ms_per_step", "tokens_per_s", "flops_per_token", "mfu", "peak_memory_bytes", "timed_s"):
            self.assertGreater(r[k], 0, k)
        self.assertLessEqual(r["ms_per_step_min"], r["ms_per_step_median"])
        self.assertLessEqual(r["ms_per_step_median"], r["ms_per_step_max"])
        self.assertEqual(len(r["losses"]), 5)
        self.assertEqual(r["tokens_per_step"], 4 * 16)
        self.assertAlmostEqual(r["mfu"], r["flops_per_token"] * r["tokens_per_s"] / 989e12, delta=1e-6 * r["mfu"])
        # at init the loss is about ln(vocab)
        self.assertLess(abs(r["losses"][0] - math.log(64)), 0.5)
        self.assertFalse(r["fused_adamw"])  # CUDA only

    def test_accum_and_bf16(self) -> None:
        r = self.run_json("--precision", "bf16", "--warmup", "1", "--steps", "2", "--accum", "2")
        self.assertEqual(len(r["losses"]), 6)
        self.assertEqual(r["tokens_per_step"], 2 * 4 * 16)
        self.assertTrue(all(math.isfinite(x) for x in r["losses"]))

    def test_compile_mode(self) -> None:
        out = os.path.join(self.d, "c.json")
        p = bench(*SMALL, "--mode", "compile", "--precision", "f32", "--warmup", "1", "--steps", "1", "--json", out)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(out) as f:
            r = json.load(f)
        if hasattr(torch, "compile"):
            self.assertNotIn("skipped", r)
            self.assertEqual(r["mode"], "compile")
        else:  # torch 1.x: a clear skip, placed in the table by model and microbatch
            self.assertIn("skipped: torch", p.stderr)
            self.assertIn("no torch.compile", r["skipped"])
            self.assertEqual((r["model"], r["microbatch"]), ("tiny", 4))

    def test_batches_losses_deterministic(self) -> None:
        b = os.path.join(self.d, "b.safetensors")
        p = bench(*SMALL, "--write-batches", b, "--count", "3")
        self.assertEqual(p.returncode, 0, p.stderr)
        runs = []
        for _ in range(2):
            p = bench(*SMALL, "--precision", "f32", "--batches", b, "--losses", "5", "--init-seed", "3")
            self.assertEqual(p.returncode, 0, p.stderr)
            lines = p.stdout.split("\n")[:5]
            self.assertEqual([ln.split()[0] for ln in lines], ["1", "2", "3", "4", "5"])
            runs.append([float(ln.split()[1]) for ln in lines])
        self.assertEqual(runs[0], runs[1])
        self.assertNotEqual(runs[0][0], runs[0][3])  # batch 4 = batch 1 again, after 3 updates

    def test_dims_from(self) -> None:
        j = os.path.join(self.d, "ours.json")
        with open(j, "w") as f:
            json.dump({"dims": {"batch": 2, "seq": 8, "hidden": 16, "heads": 2, "ffn": 32, "layers": 1,
                                "vocab": 32, "mask_pct": 25, "masked": 2}}, f)
        out = os.path.join(self.d, "r.json")
        p = bench("--config", "tiny", "--dims-from", j, "--device", "cpu", "--precision", "f32", "--steps", "1",
                  "--warmup", "0", "--json", out)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(out) as f:
            r = json.load(f)
        self.assertEqual((r["microbatch"], r["seq"]), (2, 8))
        cfg = ct.CrammedConfig.from_json(os.path.join(REPO, "reference", "configs", "tiny.json"))
        small = ct.CrammedConfig(**{**cfg.to_dict(), "batch": 2, "seq": 8, "hidden": 16, "heads": 2, "ffn": 32,
                                    "layers": 1, "vocab": 32, "prediction_count": 2})
        self.assertEqual(r["params"], ct.param_count(small))

    def test_flops_formula(self) -> None:
        # hand-derived for the crammed BERT: 6 N_matmul + 12 L S H + 6 H V count / S
        c = ct.CrammedConfig.from_json(os.path.join(REPO, "reference", "configs", "bert_crammed.json"))
        n = 16 * (768 * 2304 + 768 * 768 + 768 * 3072 + 1536 * 768)
        self.assertEqual(n, 94_371_840)
        want = 6 * n + 12 * 16 * 128 * 768 + 6 * 768 * 32768 * 32 / 128
        self.assertEqual(ct.model_flops_per_token(c), want)
        self.assertEqual(want, 622_854_144)  # = 3 x cramc --summary's 207,618,048 (tests/bench/test_bench_cli.sh)

    def test_cramming_names(self) -> None:
        cfg = ct.CrammedConfig(name="t", vocab=16, seq=8, hidden=8, heads=2, ffn=16, layers=1, prediction_count=2)
        m = ct.CrammedMLM(cfg)
        ct.init_params(m, 1)
        own = {n: p.detach().clone() for n, p in m.named_parameters()}
        theirs = {
            "encoder.embedding.word_embedding.weight": own["embedding.weight"],
            "encoder.embedding.pos_embedding.scale_factor": own["pos.scale"],
            "encoder.embedding.norm.weight": own["emb_norm.weight"], "encoder.embedding.norm.bias": own["emb_norm.bias"],
            "encoder.final_norm.weight": own["final_norm.weight"], "encoder.final_norm.bias": own["final_norm.bias"],
            "decoder.weight": own["embedding.weight"].clone(),
            "encoder.layers.0.attn.self_attention.norm_factor": torch.tensor(0.5),
        }
        for a, b in (("norm1.", "norm1."), ("norm2.", "norm2."), ("attn.self_attention.query_key_value.", "attn.qkv."),
                     ("attn.dense.", "attn.out."), ("ffn.dense_in.", "ffn.in."), ("ffn.dense_out.", "ffn.out.")):
            for n, t in own.items():
                if n.startswith("layers.0." + b):
                    theirs["encoder.layers.0." + a + n[len("layers.0." + b):]] = t
        got = ct.from_cramming_names(cfg, theirs)
        self.assertEqual(sorted(got), sorted(own))
        m2 = ct.CrammedMLM(cfg)
        ct.load_params(m2, theirs)
        for n, p in m2.named_parameters():
            self.assertTrue(torch.equal(p, own[n]), n)
        bad = dict(theirs, **{"decoder.weight": own["embedding.weight"] + 1})
        with self.assertRaisesRegex(ValueError, "differs from the word embedding"):
            ct.from_cramming_names(cfg, bad)
        bad = dict(theirs, **{"encoder.layers.0.attn.self_attention.norm_factor": torch.tensor(0.3)})
        with self.assertRaisesRegex(ValueError, "1/sqrt"):
            ct.from_cramming_names(cfg, bad)
        with self.assertRaisesRegex(KeyError, "no counterpart"):
            ct.from_cramming_names(cfg, dict(theirs, **{"encoder.layers.0.attn.rotary.weight": own["pos.scale"]}))

    def test_errors(self) -> None:
        p = bench(*SMALL, "--set", "nonsense=1")
        self.assertEqual(p.returncode, 1)
        self.assertIn("not a config field", p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1)
        p = bench(*SMALL, "--losses", "3")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--losses needs --batches", p.stderr)
        p = bench(*SMALL, "--steps", "0")
        self.assertEqual(p.returncode, 2)
        pfile = os.path.join(self.d, "p.safetensors")
        import safetensors_io
        safetensors_io.save_file({"embedding.weight": torch.zeros(64, 32)}, pfile)
        out = os.path.join(self.d, "e.json")
        p = bench(*SMALL, "--params", pfile, "--json", out)
        self.assertEqual(p.returncode, 1)
        self.assertIn("parameter names do not match", p.stderr)
        with open(out) as f:
            r = json.load(f)
        self.assertIn("parameter names do not match", r["error"])
        self.assertEqual(r["model"], "tiny")
        if not torch.cuda.is_available():
            p = bench(*SMALL[:-4], "--device", "cuda")
            self.assertEqual(p.returncode, 1)
            self.assertIn("no CUDA device visible", p.stderr)


if __name__ == "__main__":
    res = unittest.main(exit=False, verbosity=1 if "-v" not in sys.argv else 2).result
    n, bad = res.testsRun, len(res.failures) + len(res.errors)
    print(f"{n - bad} passed, {bad} failed")
    sys.exit(1 if bad else 0)
