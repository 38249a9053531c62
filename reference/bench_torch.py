#!/usr/bin/python3
"""Time the PyTorch reference's train step: the baseline `cram bench` is compared with.

The model is reference/crammed_torch.py's CrammedMLM (not a copy): built from a config
preset (reference/configs/*.json) with optional `--set key=value` overrides, so it has the
same dims as a .cram model; its parameters come from a `cram export` file (--params, either
name scheme) or from the reference's own seeded init (--init-seed).

One iteration = ACCUM microbatches (forward under the chosen precision, backward of
loss/ACCUM), then global-norm clipping at 0.5 (torch.nn.utils.clip_grad_norm_) and one
torch.optim.AdamW step (lr constant, betas 0.9/0.98, eps 1e-12, weight decay 0.01 on the
decayed group only: the recipe compiled into cramc's step). WARMUP untimed iterations,
then STEPS timed ones.

Modes:
  --mode eager      plain PyTorch
  --mode compile    torch.compile(model, mode=COMPILE_MODE, fullgraph=True, dynamic=False),
                    static shapes; --compile-mode max-autotune (the default: inductor with
                    autotuned GEMMs and CUDA graphs), reduce-overhead (inductor's default
                    kernels with CUDA graphs: minutes less compile time) or default (no CUDA
                    graphs); the compile happens in the first warm-up iteration (compile_s).
                    torch < 2.0 has no torch.compile: the run is skipped with a clear line
                    (exit 0, JSON {"skipped": reason}).
  --precision bf16  torch.autocast(dtype=bfloat16) around the forward (f32 master weights)
  --precision f32   plain f32 (TF32 off)
  AdamW is fused=True on CUDA (torch >= 2.0); elsewhere the default implementation is
  used and a note says so.

Timing: on CUDA, CUDA events around every iteration and one synchronize at the end (the
loss stays on the device; nothing forces a sync per step, so the GPU pipeline never
drains: the most favourable setting for PyTorch); on CPU, time.perf_counter.
Peak memory: CUDA: torch.cuda.max_memory_allocated over the timed iterations
(memory_kind "torch-max-allocated"; max_memory_reserved too); CPU: process max RSS.

Agreement check (bench/agree.sh): --write-batches FILE --count N writes N random MLM
microbatches; --batches FILE --losses N trains N iterations on them (no warm-up) and
prints one loss per line.

JSON (--json FILE): one object with the fields of `cram bench --json` (impl, mode, model,
device, precision, microbatch, seq, accum, warmup, steps, tokens_per_step, ms_per_step[_min
/_median/_max], tokens_per_s, flops_per_token, achieved_tflops, peak_tflops, mfu,
peak_memory_bytes, memory_kind, losses, final_loss, nonfinite_losses) plus torch's own
(torch_version, compile_s, fused_adamw, reserved_bytes).

Exit status: 0 ok or skipped, 1 error (one line on stderr), 2 usage.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import sys
import time
from typing import Dict, List, Optional, Tuple

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crammed_torch as ct  # noqa: E402
import safetensors_io  # noqa: E402

CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


class Skip(Exception):
    """The requested run cannot happen here (no torch.compile, ...): reported, exit 0.
    `info` (model, microbatch) goes into the skip JSON so a table can place the row."""

    def __init__(self, msg: str, info: dict) -> None:
        super().__init__(msg)
        self.info = info


def die(msg: str, code: int = 1) -> None:
    print(f"bench_torch: {msg}", file=sys.stderr)
    sys.exit(code)


# .cram dims (as `cram bench --json` lists them under "dims") -> config fields
_DIM_FIELDS = {"vocab": "vocab", "seq": "seq", "hidden": "hidden", "heads": "heads", "ffn": "ffn",
               "layers": "layers", "batch": "batch", "masked": "prediction_count"}


def dims_from(path: str) -> List[str]:
    """`--set` overrides taking a step.so's dims from a `cram bench --json` result, so the
    reference has the same dims as the compiled .cram model (structure comes from --config)."""
    with open(path) as f:
        dims = json.load(f).get("dims")
    if not isinstance(dims, dict):
        raise ValueError(f"{path}: no \"dims\" object (not a `cram bench --json` result?)")
    return [f"{_DIM_FIELDS[k]}={v}" for k, v in dims.items() if k in _DIM_FIELDS]


def load_config(name: str, sets: List[str]) -> ct.CrammedConfig:
    path = name if os.path.exists(name) else os.path.join(CONFIGS, f"{name}.json")
    if not os.path.exists(path):
        raise ValueError(f"config '{name}': no such file, and no preset {path}")
    with open(path) as f:
        d = json.load(f)
    fields = {k: type(v) for k, v in ct.CrammedConfig().to_dict().items()}
    for kv in sets:
        if "=" not in kv:
            raise ValueError(f"--set {kv!r}: expected key=value")
        k, v = kv.split("=", 1)
        if k not in fields:
            raise ValueError(f"--set {k}: not a config field (known: {sorted(fields)})")
        t = fields[k]
        if t is bool:
            if v not in ("true", "false"):
                raise ValueError(f"--set {k}={v}: expected true or false")
            d[k] = v == "true"
        else:
            d[k] = t(v)
    return ct.CrammedConfig.from_dict(d)


def make_batches(cfg: ct.CrammedConfig, b: int, n: int, seed: int) -> Dict[str, torch.Tensor]:
    """n random MLM microbatches [n, b, seq] (reference random_batch, seeds seed..seed+n-1)."""
    bs = [ct.random_batch(cfg, seed + i, b) for i in range(n)]
    return {k: torch.stack([x[k] for x in bs]) for k in ("tokens", "targets")}


def read_batches(path: str, cfg: ct.CrammedConfig) -> Dict[str, torch.Tensor]:
    raw = safetensors_io.load_file(path)
    out = {}
    for k in ("tokens", "targets"):
        if k not in raw:
            raise ValueError(f"{path}: needs an I32 tensor '{k}' of shape [B,S] or [N,B,S]")
        t = raw[k]
        if t.dim() == 2:
            t = t.unsqueeze(0)
        if t.dim() != 3 or t.shape[2] > cfg.seq:
            raise ValueError(f"{path}: '{k}' has shape {list(raw[k].shape)}, expected [N,B,S] with S <= {cfg.seq}")
        out[k] = t.long()
    if out["tokens"].shape != out["targets"].shape:
        raise ValueError(f"{path}: 'tokens' and 'targets' differ in shape")
    return out


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def make_optimizer(model: ct.CrammedMLM, lr: float, device: str) -> Tuple[torch.optim.Optimizer, bool, str]:
    decay = [p for n, p in model.named_parameters() if ct.is_decayed(n)]
    no_decay = [p for n, p in model.named_parameters() if not ct.is_decayed(n)]
    groups = [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}]
    kw = dict(lr=lr, betas=(0.9, 0.98), eps=1e-12)
    if device == "cuda":
        try:
            return torch.optim.AdamW(groups, fused=True, **kw), True, ""
        except (TypeError, RuntimeError) as e:  # torch < 2.0: no fused AdamW
            return torch.optim.AdamW(groups, **kw), False, f"fused AdamW unavailable ({e}); using the default"
    return torch.optim.AdamW(groups, **kw), False, "fused AdamW is a CUDA feature here; using the default on CPU"


def run(args: argparse.Namespace) -> dict:
    cfg = load_config(args.config, args.set)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: no CUDA device visible to torch (torch.cuda.is_available() is False)")
    if args.mode == "compile" and not hasattr(torch, "compile"):
        raise Skip(f"torch {torch.__version__} has no torch.compile (needs torch >= 2.0)",
                   {"model": cfg.name, "microbatch": args.microbatch or cfg.batch})
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    # data
    if args.batches:
        data = read_batches(args.batches, cfg)
        kind = "file"
        mb = data["tokens"].shape[1]
    else:
        mb = args.microbatch or cfg.batch
        kind = "synthetic"
        data = make_batches(cfg, mb, min(8, (args.warmup + args.steps) * args.accum), args.seed + 1)
    pool = [(data["tokens"][i].to(dev), data["targets"][i].to(dev)) for i in range(data["tokens"].shape[0])]
    seq = pool[0][0].shape[1]

    # model
    model = ct.CrammedMLM(cfg, device=dev, dtype=torch.float32)
    if args.params:
        ct.load_params(model, safetensors_io.load_file(args.params))
    else:
        ct.init_params(model, args.init_seed)
    model.train()
    opt, fused, note = make_optimizer(model, args.lr, args.device)
    if note and not args.quiet:
        print(f"bench_torch: note: {note}", file=sys.stderr)
    params = list(model.parameters())
    fwd = model
    if args.mode == "compile":
        fwd = torch.compile(model, mode=args.compile_mode, fullgraph=True, dynamic=False)
    amp = args.precision == "bf16"
    mark_step = getattr(getattr(torch, "compiler", None), "cudagraph_mark_step_begin", None)

    def iteration(i: int) -> Tuple[List[torch.Tensor], torch.Tensor]:
        if args.mode == "compile" and mark_step is not None:
            mark_step()  # a new training step for the CUDA-graph trees
        losses = []
        for j in range(args.accum):
            tok, tgt = pool[(i * args.accum + j) % len(pool)]
            with torch.autocast(device_type=args.device, dtype=torch.bfloat16, enabled=amp):
                loss = fwd(tok, tgt)
            (loss / args.accum).backward()
            losses.append(loss.detach().clone())  # a CUDA-graph output is overwritten by the next replay
        gn = torch.nn.utils.clip_grad_norm_(params, 0.5)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return losses, gn

    cuda = args.device == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    all_losses: List[torch.Tensor] = []
    compile_s = 0.0
    for i in range(args.warmup):
        t0 = time.perf_counter()
        ls, _ = iteration(i)
        all_losses += ls
        if i == 0:
            sync()
            compile_s = time.perf_counter() - t0
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times: List[float] = []
    gn = torch.zeros(())
    if cuda:
        ev = [torch.cuda.Event(enable_timing=True) for _ in range(args.steps + 1)]
        ev[0].record()
        for s in range(args.steps):
            ls, gn = iteration(args.warmup + s)
            all_losses += ls
            ev[s + 1].record()
        torch.cuda.synchronize()
        times = [ev[s].elapsed_time(ev[s + 1]) / 1e3 for s in range(args.steps)]
        total = ev[0].elapsed_time(ev[-1]) / 1e3
    else:
        t_start = t_prev = time.perf_counter()
        for s in range(args.steps):
            ls, gn = iteration(args.warmup + s)
            all_losses += ls
            t = time.perf_counter()
            times.append(t - t_prev)
            t_prev = t
        total = t_prev - t_start
    if args.warmup == 0:
        compile_s = times[0] if args.mode == "compile" else 0.0
    losses = [float(x) for x in all_losses]
    tokens = args.accum * mb * seq
    tok_s = tokens * args.steps / total if total > 0 else 0.0
    fpt = ct.model_flops_per_token(cfg, seq)
    peak = args.peak_tflops * 1e12
    return {
        "impl": "torch", "mode": args.mode, "compile_mode": args.compile_mode if args.mode == "compile" else None,
        "model": cfg.name, "device": args.device, "precision": args.precision,
        "torch_version": torch.__version__, "data": kind, "distinct_batches": len(pool),
        "params": sum(p.numel() for p in params), "microbatch": mb, "seq": seq, "accum": args.accum,
        "warmup": args.warmup, "steps": args.steps, "tokens_per_step": tokens, "lr": args.lr,
        "compile_s": compile_s, "timed_s": total,
        "ms_per_step": 1e3 * total / args.steps, "ms_per_step_min": 1e3 * min(times),
        "ms_per_step_median": 1e3 * statistics.median(times), "ms_per_step_max": 1e3 * max(times),
        "tokens_per_s": tok_s, "flops_per_token": fpt, "achieved_tflops": fpt * tok_s / 1e12,
        "peak_tflops": args.peak_tflops, "mfu": fpt * tok_s / peak,
        "last_grad_norm": float(gn),
        "peak_memory_bytes": torch.cuda.max_memory_allocated() if cuda else peak_rss(),
        "memory_kind": "torch-max-allocated" if cuda else "host-maxrss",
        "reserved_bytes": torch.cuda.max_memory_reserved() if cuda else None,
        "fused_adamw": fused,
        "nonfinite_losses": sum(1 for x in losses if not math.isfinite(x)),
        "final_loss": losses[-1], "losses": losses,
    }


def json_safe(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, list):
        return [json_safe(v) for v in x]
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    return x


def write_json(path: Optional[str], obj: dict) -> None:
    if not path:
        return
    text = json.dumps(json_safe(obj))
    if path == "-":
        print(text)
    else:
        with open(path, "w") as f:
            f.write(text + "\n")


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(
        description="Time the PyTorch reference train step (eager or torch.compile), the baseline of `cram bench`.",
        epilog="See the module docstring and docs/benchmarks.md.")
    ap.add_argument("--config", default="bert_crammed",
                    help="preset name in reference/configs (bert_crammed, tiny, postln_noglu, ...) or a JSON path")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config field (repeatable), e.g. --set layers=2 --set vocab=64")
    ap.add_argument("--dims-from", metavar="JSON",
                    help="take vocab/seq/hidden/heads/ffn/layers/batch/masked from a `cram bench --json` result "
                         "(applied before --set)")
    ap.add_argument("--mode", choices=("eager", "compile"), default="eager")
    ap.add_argument("--compile-mode", choices=("max-autotune", "reduce-overhead", "default"), default="max-autotune",
                    help="torch.compile mode with --mode compile (default max-autotune)")
    ap.add_argument("--precision", choices=("bf16", "f32"), default="bf16")
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--microbatch", type=int, default=0, help="sequences per microbatch (default: the config's batch)")
    ap.add_argument("--accum", type=int, default=1, help="microbatches per optimizer step (default 1)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed iterations (default 3; compile happens here)")
    ap.add_argument("--steps", type=int, default=20, help="timed iterations (default 20)")
    ap.add_argument("--lr", type=float, default=1e-3, help="constant learning rate (default 1e-3)")
    ap.add_argument("--params", metavar="FILE", help="parameters: a `cram export` safetensors file (either name scheme)")
    ap.add_argument("--init-seed", type=int, default=0, help="without --params: the reference's seeded init")
    ap.add_argument("--seed", type=int, default=0, help="synthetic batch seed (default 0)")
    ap.add_argument("--batches", metavar="FILE", help="train on these microbatches (I32 tokens/targets [N,B,S])")
    ap.add_argument("--losses", type=int, default=0, metavar="N",
                    help="with --batches: N iterations, no warm-up, print the N losses one per line")
    ap.add_argument("--write-batches", metavar="FILE", help="write --count random MLM microbatches and exit")
    ap.add_argument("--count", type=int, default=20, help="microbatches for --write-batches (default 20)")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="device peak for MFU (default 989: H100 bf16)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    ap.add_argument("--json", metavar="FILE", help="write the result object to FILE ('-' = stdout)")
    ap.add_argument("--quiet", action="store_true", help="no summary")
    args = ap.parse_args(argv)
    cmode = args.compile_mode if args.mode == "compile" else None

    if args.accum < 1 or args.steps < 1 or args.warmup < 0 or args.microbatch < 0 or args.count < 1:
        ap.error("--accum, --steps and --count must be >= 1, --warmup and --microbatch >= 0")
    if args.losses:
        if not args.batches:
            ap.error("--losses needs --batches FILE")
        args.warmup, args.steps, args.accum = 0, args.losses, 1
    try:
        if args.dims_from:
            args.set = dims_from(args.dims_from) + args.set
        if args.write_batches:
            cfg = load_config(args.config, args.set)
            b = args.microbatch or cfg.batch
            data = make_batches(cfg, b, args.count, args.seed + 1)
            safetensors_io.save_file({k: v.to(torch.int32) for k, v in data.items()}, args.write_batches,
                                     metadata={"config": cfg.name, "seed": str(args.seed)})
            if not args.quiet:
                print(f"bench_torch: wrote {args.count} microbatches of [{b}, {cfg.seq}] to {args.write_batches}",
                      file=sys.stderr)
            return 0
        res = run(args)
    except Skip as e:
        print(f"bench_torch: skipped: {e}", file=sys.stderr)
        write_json(args.json, {"impl": "torch", "mode": args.mode, "compile_mode": cmode, "precision": args.precision,
                               "device": args.device, **e.info, "skipped": str(e)})
        return 0
    except (ValueError, KeyError, RuntimeError, OSError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        info = {}
        try:  # where the config itself is fine, say which row failed
            c = load_config(args.config, args.set)
            info = {"model": c.name, "microbatch": args.microbatch or c.batch}
        except (ValueError, KeyError, OSError):
            pass
        write_json(args.json, {"impl": "torch", "mode": args.mode, "compile_mode": cmode, "precision": args.precision,
                               "device": args.device, **info,
                               "error": "out of memory" if "out of memory" in str(e).lower() else msg})
        die(f"{type(e).__name__}: {msg}")
    write_json(args.json, res)
    if args.losses:
        for i, x in enumerate(res["losses"]):
            print(f"{i + 1} {x:.9g}")
    if not args.quiet:
        o = sys.stderr if args.json == "-" or args.losses else sys.stdout
        print(f"torch {res['torch_version']} {args.mode} {args.precision} on {args.device}: {res['model']} "
              f"microbatch {res['microbatch']} x seq {res['seq']}, accum {res['accum']}, {res['data']} batches", file=o)
        print(f"  {args.steps} timed iterations after {args.warmup} warm-up: {res['ms_per_step']:.3f} ms/step "
              f"(min {res['ms_per_step_min']:.3f}, median {res['ms_per_step_median']:.3f}, "
              f"max {res['ms_per_step_max']:.3f})", file=o)
        print(f"  {res['tokens_per_s']:.0f} tokens/s; {res['flops_per_token'] / 1e6:.4g} MFLOP/token -> "
              f"{res['achieved_tflops']:.4g} TFLOP/s = MFU {100 * res['mfu']:.3g}% of {args.peak_tflops:g} TFLOP/s peak",
              file=o)
        print(f"  peak memory {res['peak_memory_bytes'] / 2**20:.1f} MiB ({res['memory_kind']}); "
              f"loss: first {res['losses'][0]:.6f}, last {res['final_loss']:.6f}", file=o)
    return 0


if __name__ == "__main__":
    sys.exit(main())
