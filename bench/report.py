#!/usr/bin/env python3
"""Tables and checks over benchmark results (`cram bench --json`, reference/bench_torch.py --json).

    bench/report.py table DIR [--md FILE]
        One row per result file DIR/*.json (model, microbatch, implementation, precision,
        ms/step, tokens/s, ratio to the fastest torch.compile mode run for the same model
        and microbatch, MFU,
        peak memory), printed as text; --md also writes it as a markdown table. Skipped or
        failed runs are rows saying so. Below the table: the issue-9 goals for
        bert_crammed (>= 1.3x torch.compile tokens/s and >= 55% MFU), met or not, per
        microbatch.

    bench/report.py agree OURS.json REF.json --rtol R [--first N] [--noise A.json B.json]
        Compares the first N losses (default all common ones) step by step:
        |ours - ref| / |ref| <= R for every step. Prints the losses side by side and the
        worst relative difference; exit 1 if any step is outside R. --noise prints the same
        statistic between two other runs (e.g. the reference in bf16 vs in f32: the bf16
        noise floor) for context.

    bench/report.py ncu CSV [--top N]
        The N (default 10) kernels with the most GPU time in an Nsight Compute CSV export
        (`ncu --import R.ncu-rep --csv --page raw --print-units base`, with the metric
        gpu__time_duration.sum): launches, total and mean time, share of the total, summed
        over launches of the same kernel name.

Needs only the Python standard library. Exit status: 0 ok, 1 check failed or bad input, 2 usage.
"""
from __future__ import annotations

import argparse
import csv
import glob
import json
import math
import os
import sys
from typing import Dict, List, Optional, Tuple

GOAL_RATIO = 1.3   # issue 9: tokens/s >= 1.3 x torch.compile, same run
GOAL_MFU = 0.55    # issue 9: >= 55% MFU of 989 TFLOP/s


def load(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise SystemExit(f"report: {path}: {e}")


def label(r: dict) -> str:
    if r.get("impl") == "cramc":
        return f"cramc {r.get('target', '?')}"
    if r.get("mode") == "compile" and r.get("compile_mode"):
        return f"torch compile {r['compile_mode']}"
    return f"torch {r.get('mode', '?')}"


def fmt_mem(b) -> str:
    return "-" if not b else f"{b / 2**30:.2f} GiB" if b >= 2**30 else f"{b / 2**20:.1f} MiB"


def table_rows(results: List[Tuple[str, dict]]) -> Tuple[List[List[str]], List[str]]:
    compiled: Dict[Tuple[str, int], float] = {}
    for _, r in results:
        if r.get("impl") == "torch" and r.get("mode") == "compile" and r.get("tokens_per_s"):
            key = (r.get("model"), r.get("microbatch"))  # the fastest compile mode is the baseline
            compiled[key] = max(compiled.get(key, 0.0), r["tokens_per_s"])
    order = {"cramc": 0, "torch": 1}
    results = sorted(results, key=lambda x: (str(x[1].get("model")), x[1].get("microbatch") or 0,
                                             order.get(x[1].get("impl"), 2), str(x[1].get("mode"))))
    rows, goals = [], []
    for name, r in results:
        model, mb = r.get("model", "?"), r.get("microbatch")
        if "skipped" in r or "error" in r:
            why = r.get("skipped") or r.get("error")
            rows.append([str(model), str(mb or "-"), label(r), r.get("precision", "?"), "-", "-", "-", "-", "-",
                         f"{'skipped' if 'skipped' in r else 'failed'}: {why}"])
            continue
        ref = compiled.get((model, mb))
        ratio = r["tokens_per_s"] / ref if ref else None
        mfu = r.get("mfu")
        rows.append([str(model), str(mb), label(r), r.get("precision", "?"), f"{r['ms_per_step']:.2f}",
                     f"{r['tokens_per_s']:,.0f}", f"{ratio:.2f}x" if ratio else "-",
                     f"{100 * mfu:.1f}%" if mfu is not None else "-", fmt_mem(r.get("peak_memory_bytes")),
                     r.get("memory_kind", "")])
        if r.get("impl") == "cramc" and model == "bert_crammed":
            ok_r = ratio is not None and ratio >= GOAL_RATIO
            ok_m = mfu is not None and mfu >= GOAL_MFU
            goals.append(f"bert_crammed microbatch {mb}: "
                         f"{'%.2fx' % ratio if ratio else 'no torch.compile number'} (goal >= {GOAL_RATIO}x: "
                         f"{'met' if ok_r else 'NOT met'}), MFU {100 * (mfu or 0):.1f}% (goal >= {100 * GOAL_MFU:.0f}%: "
                         f"{'met' if ok_m else 'NOT met'})")
    return rows, goals


HEAD = ["model", "microbatch", "implementation", "precision", "ms/step", "tokens/s", "vs torch.compile", "MFU",
        "peak memory", "memory measured as / note"]


def cmd_table(args: argparse.Namespace) -> int:
    files = sorted(glob.glob(os.path.join(args.dir, "*.json")))
    results = [(f, load(f)) for f in files]
    results = [(f, r) for f, r in results if isinstance(r, dict) and "impl" in r]
    if not results:
        print(f"report: no benchmark results (*.json with an \"impl\" field) in {args.dir}", file=sys.stderr)
        return 1
    rows, goals = table_rows(results)
    w = [max(len(HEAD[i]), *(len(r[i]) for r in rows)) for i in range(len(HEAD))]
    line = lambda cells: "  ".join(c.ljust(w[i]) if i < 4 or i == 9 else c.rjust(w[i]) for i, c in enumerate(cells))
    print(line(HEAD))
    for r in rows:
        print(line(r))
    for g in goals:
        print(g)
    if args.md:
        with open(args.md, "w") as f:
            f.write("| " + " | ".join(HEAD) + " |\n|" + "|".join("---" for _ in HEAD) + "|\n")
            for r in rows:
                f.write("| " + " | ".join(c.replace("|", "/") for c in r) + " |\n")
            if goals:
                f.write("\n" + "\n".join(f"- {g}" for g in goals) + "\n")
    return 0


def rel_diffs(a: List[Optional[float]], b: List[Optional[float]], n: int) -> List[float]:
    out = []
    for x, y in zip(a[:n], b[:n]):
        if x is None or y is None or not (math.isfinite(x) and math.isfinite(y)):
            out.append(math.inf)
        else:
            out.append(abs(x - y) / max(abs(y), 1e-30))
    return out


def cmd_agree(args: argparse.Namespace) -> int:
    ours, ref = load(args.ours), load(args.ref)
    for p, r in ((args.ours, ours), (args.ref, ref)):
        if not isinstance(r.get("losses"), list) or not r["losses"]:
            print(f"report: {p}: no losses (skipped or failed run?)", file=sys.stderr)
            return 1
    n = min(len(ours["losses"]), len(ref["losses"]))
    if args.first:
        if args.first > n:
            print(f"report: asked for {args.first} losses, the runs have {n} in common", file=sys.stderr)
            return 1
        n = args.first
    d = rel_diffs(ours["losses"], ref["losses"], n)
    print(f"{'step':>4}  {label(ours) + ' ' + str(ours.get('precision')):>22}  "
          f"{label(ref) + ' ' + str(ref.get('precision')):>22}  {'|rel diff|':>10}")
    for i in range(n):
        flag = "" if d[i] <= args.rtol else "  <-- outside tolerance"
        print(f"{i + 1:>4}  {ours['losses'][i]!s:>22}  {ref['losses'][i]!s:>22}  {d[i]:>10.3g}{flag}")
    worst = max(d)
    if args.noise:
        a, b = load(args.noise[0]), load(args.noise[1])
        nd = rel_diffs(a.get("losses") or [], b.get("losses") or [], n)
        if nd:
            print(f"noise floor ({label(a)} {a.get('precision')} vs {label(b)} {b.get('precision')}): "
                  f"worst |rel diff| {max(nd):.3g}")
    ok = worst <= args.rtol
    print(f"loss agreement over {n} steps: worst |rel diff| {worst:.3g}, tolerance {args.rtol:g}: "
          f"{'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


NCU_UNITS = {"nsecond": 1e-9, "ns": 1e-9, "usecond": 1e-6, "us": 1e-6, "msecond": 1e-3, "ms": 1e-3,
             "second": 1.0, "s": 1.0}


def cmd_ncu(args: argparse.Namespace) -> int:
    try:
        with open(args.csv, newline="") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        print(f"report: {args.csv}: {e}", file=sys.stderr)
        return 1
    # ncu prints its own lines (==PROF==, the program's output) before the header
    head = next((i for i, r in enumerate(rows) if "Kernel Name" in r), None)
    if head is None:
        print(f"report: {args.csv}: no ncu CSV header (a 'Kernel Name' column)", file=sys.stderr)
        return 1
    cols = rows[head]
    k = cols.index("Kernel Name")
    t = next((i for i, c in enumerate(cols) if c.startswith("gpu__time_duration")), None)
    if t is None:
        print(f"report: {args.csv}: no gpu__time_duration column (profile with --metrics gpu__time_duration.sum)",
              file=sys.stderr)
        return 1
    scale = 1e-9  # --print-units base: nanoseconds
    per: Dict[str, List[float]] = {}
    for r in rows[head + 1:]:
        if len(r) <= max(k, t):
            continue
        cell = r[t].replace(",", "")
        if r[t] in NCU_UNITS and not r[k]:  # the units row
            scale = NCU_UNITS[r[t]]
            continue
        try:
            v = float(cell)
        except ValueError:
            continue
        per.setdefault(r[k], []).append(v * scale)
    if not per:
        print(f"report: {args.csv}: no kernel rows", file=sys.stderr)
        return 1
    total = sum(sum(v) for v in per.values())
    top = sorted(per.items(), key=lambda kv: -sum(kv[1]))[:args.top]
    launches = sum(len(v) for v in per.values())
    print(f"{launches} launches of {len(per)} kernels, {1e3 * total:.3f} ms of GPU time; the {len(top)} heaviest:")
    print(f"{'share':>6}  {'total ms':>9}  {'launches':>8}  {'mean us':>9}  kernel")
    for name, v in top:
        short = name if len(name) <= 100 else name[:97] + "..."
        print(f"{100 * sum(v) / total:5.1f}%  {1e3 * sum(v):9.3f}  {len(v):8d}  {1e6 * sum(v) / len(v):9.2f}  {short}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="benchmark tables and the loss agreement check (see module doc)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("table", help="one table over DIR/*.json")
    t.add_argument("dir")
    t.add_argument("--md", metavar="FILE", help="also write a markdown table")
    a = sub.add_parser("agree", help="per-step loss agreement of two runs")
    a.add_argument("ours")
    a.add_argument("ref")
    a.add_argument("--rtol", type=float, required=True, help="per-step |ours - ref| / |ref| bound")
    a.add_argument("--first", type=int, default=0, help="compare the first N losses (default: all common)")
    a.add_argument("--noise", nargs=2, metavar=("A.json", "B.json"), help="also report A vs B (context)")
    n = sub.add_parser("ncu", help="the heaviest kernels of an Nsight Compute CSV export")
    n.add_argument("csv")
    n.add_argument("--top", type=int, default=10)
    args = ap.parse_args(argv)
    return {"table": cmd_table, "agree": cmd_agree, "ncu": cmd_ncu}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
