#!/usr/bin/python3
"""Tests of bench/report.py (tables, the loss agreement check, the ncu summary) on hand-made results.
Run by ctest (bench.report). Ends with "N passed, M failed"."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPORT = os.path.join(os.path.dirname(os.path.dirname(HERE)), "bench", "report.py")


def res(impl: str, mode: str, mb: int, tok_s: float, mfu: float, model: str = "bert_crammed", **kw) -> dict:
    r = {"impl": impl, "mode": mode, "model": model, "microbatch": mb, "precision": "bf16", "ms_per_step": 1.0,
         "tokens_per_s": tok_s, "mfu": mfu, "peak_memory_bytes": 3 * 2**30, "memory_kind": "x", "losses": [1.0]}
    if impl == "cramc":
        r["target"] = "cuda"
    r.update(kw)
    return r


def report(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, REPORT, *args], capture_output=True, text=True, timeout=60)


class Report(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        self.d = self.tmp.name

    def tearDown(self) -> None:
        self.tmp.cleanup()

    def put(self, name: str, obj: dict) -> str:
        p = os.path.join(self.d, name)
        with open(p, "w") as f:
            json.dump(obj, f)
        return p

    def test_table_ratio_and_goals(self) -> None:
        self.put("a.json", res("cramc", "step.so", 128, 900_000, 0.566))
        self.put("b.json", res("torch", "compile", 128, 600_000, 0.377))
        self.put("c.json", res("torch", "eager", 128, 400_000, 0.25))
        self.put("d.json", res("cramc", "step.so", 256, 700_000, 0.44))
        self.put("e.json", res("torch", "compile", 256, 650_000, 0.41))
        self.put("f.json", {"impl": "torch", "mode": "compile", "model": "bert_crammed", "microbatch": 512,
                            "precision": "bf16", "error": "out of memory"})
        self.put("notes.json", {"something": "else"})  # not a result: ignored
        md = os.path.join(self.d, "t.md")
        p = report("table", self.d, "--md", md)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("1.50x", p.stdout)   # 900k / 600k
        self.assertIn("1.08x", p.stdout)   # 700k / 650k
        self.assertIn("0.67x", p.stdout)   # eager 400k / 600k
        self.assertIn("failed: out of memory", p.stdout)
        self.assertIn("microbatch 128: 1.50x (goal >= 1.3x: met), MFU 56.6% (goal >= 55%: met)", p.stdout)
        self.assertIn("microbatch 256: 1.08x (goal >= 1.3x: NOT met), MFU 44.0% (goal >= 55%: NOT met)", p.stdout)
        with open(md) as f:
            text = f.read()
        self.assertTrue(text.startswith("| model | microbatch |"))
        self.assertEqual(text.count("| bert_crammed |"), 6)
        lines = [ln for ln in p.stdout.splitlines() if ln.startswith("bert_crammed") and "goal" not in ln]
        self.assertEqual([ln.split()[1] for ln in lines], ["128", "128", "128", "256", "256", "512"])
        self.assertIn("cramc cuda", lines[0])  # ours first within a microbatch

    def test_table_empty(self) -> None:
        p = report("table", self.d)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no benchmark results", p.stderr)

    def test_agree(self) -> None:
        a = self.put("a.json", res("cramc", "step.so", 4, 1, 0, losses=[10.0, 9.0, 8.0]))
        b = self.put("b.json", res("torch", "eager", 4, 1, 0, losses=[10.0, 9.1, 8.0]))
        p = report("agree", a, b, "--rtol", "0.02")
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertIn("worst |rel diff| 0.011", p.stdout)
        p = report("agree", a, b, "--rtol", "0.01")
        self.assertEqual(p.returncode, 1)
        self.assertIn("outside tolerance", p.stdout)
        p = report("agree", a, b, "--rtol", "0.01", "--first", "1")
        self.assertEqual(p.returncode, 0)
        p = report("agree", a, b, "--rtol", "0.01", "--first", "4")
        self.assertEqual(p.returncode, 1)
        self.assertIn("3 in common", p.stderr)
        n = self.put("n.json", res("torch", "eager", 4, 1, 0, losses=[10.0, None, 8.0]))
        p = report("agree", a, n, "--rtol", "0.5")
        self.assertEqual(p.returncode, 1)  # a non-finite loss never agrees
        s = self.put("s.json", {"impl": "torch", "mode": "compile", "skipped": "no"})
        p = report("agree", a, s, "--rtol", "0.5")
        self.assertEqual(p.returncode, 1)
        self.assertIn("no losses", p.stderr)

    def test_compile_modes(self) -> None:
        """Each torch.compile mode is its own row; ours is compared with the fastest."""
        self.put("a.json", res("cramc", "step.so", 128, 900_000, 0.566))
        self.put("b.json", res("torch", "compile", 128, 600_000, 0.377, compile_mode="reduce-overhead"))
        self.put("c.json", res("torch", "compile", 128, 750_000, 0.47, compile_mode="max-autotune"))
        p = report("table", self.d)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("torch compile reduce-overhead", p.stdout)
        self.assertIn("torch compile max-autotune", p.stdout)
        self.assertIn("microbatch 128: 1.20x", p.stdout)  # 900k / 750k, not / 600k

    def test_ncu(self) -> None:
        csv_text = "\n".join([
            "==PROF== Connected to process 1 (cram)",
            '"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream","gpu__time_duration.sum"',
            '"","","","","","","","usecond"',
            '"0","1","cram","h","gemm_a","1","7","100"',
            '"1","1","cram","h","ln_fwd","1","7","10"',
            '"2","1","cram","h","gemm_a","1","7","300"',
            '"3","1","cram","h","adamw","1","7","90"',
        ]) + "\n"
        path = os.path.join(self.d, "n.csv")
        with open(path, "w") as f:
            f.write(csv_text)
        p = report("ncu", path, "--top", "2")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("4 launches of 3 kernels, 0.500 ms of GPU time; the 2 heaviest", p.stdout)
        lines = p.stdout.splitlines()
        self.assertTrue(lines[2].split()[:4] == ["80.0%", "0.400", "2", "200.00"] and lines[2].endswith("gemm_a"),
                        lines[2])
        self.assertTrue(lines[3].endswith("adamw"), lines[3])
        self.assertNotIn("ln_fwd", p.stdout)
        with open(path, "w") as f:
            f.write("nothing useful\n")
        p = report("ncu", path)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no ncu CSV header", p.stderr)


if __name__ == "__main__":
    r = unittest.main(exit=False, verbosity=1 if "-v" not in sys.argv else 2).result
    n, bad = r.testsRun, len(r.failures) + len(r.errors)
    print(f"{n - bad} passed, {bad} failed")
    sys.exit(1 if bad else 0)
