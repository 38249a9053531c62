#!/usr/bin/python3
"""Self-tests of the PyTorch crammed-BERT reference (reference/crammed_torch.py).

Plain unittest; run by ctest (label `reference`) or directly:
    /usr/bin/python3 tests/reference/test_reference.py [-v]
Ends with a line "N passed, M failed". Sized to stay well under a minute on two
CPU cores even with the netlib reference BLAS.
"""
from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import unittest
from typing import Dict, Optional

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
REF = os.path.join(REPO, "reference")
CONFIGS = os.path.join(REF, "configs")
sys.path.insert(0, REF)

import crammed_torch as ct  # noqa: E402
import safetensors_io as st  # noqa: E402

Tensor = torch.Tensor


def functional_call(model: torch.nn.Module, params: Dict[str, Tensor], args: tuple) -> Tensor:
    try:  # torch >= 2.0
        from torch.func import functional_call as fc  # type: ignore[attr-defined]
    except ImportError:  # torch 1.13
        from torch.nn.utils.stateless import functional_call as fc
    return fc(model, params, args)


def micro(**over: object) -> ct.CrammedConfig:
    """A config small enough for f64 gradcheck of every parameter."""
    base = dict(name="micro", vocab=13, seq=6, hidden=8, heads=2, ffn=12, layers=2, batch=2,
                prediction_count=2)
    base.update(over)
    return ct.CrammedConfig(**base)  # type: ignore[arg-type]


ABLATIONS: Dict[str, Dict[str, object]] = {
    "crammed": {},
    "postln_gelu_learned_dense": dict(norm_scheme="post", final_norm=False, ffn_type="gelu",
                                      positions="learned", sparse_prediction=False),
    "untied_biases_head_sin": dict(linear_bias=True, qkv_bias=True, head_transform=True,
                                   tie_decoder=False, decoder_bias=True, positions="sinusoidal"),
    "rmsnorm_noembnorm": dict(norm="rmsnorm", emb_norm=False, norm_eps=1e-6),
    "rmsnorm_post_head": dict(norm="rmsnorm", norm_scheme="post", head_transform=True, linear_bias=True),
}


def make_model(cfg: ct.CrammedConfig, seed: int = 0, dtype: torch.dtype = torch.float64) -> ct.CrammedMLM:
    model = ct.CrammedMLM(cfg, dtype=dtype)
    ct.init_params(model, seed)
    # Perturb the deterministic inits (norm weights 1, biases 0, ...) so that every
    # parameter's role is visible in the checks.
    gen = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for _, p in model.named_parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen, dtype=torch.float64).to(dtype))
    return model


def targets_with(cfg: ct.CrammedConfig, tokens: Tensor, per_seq: int, seed: int) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    b, s = tokens.shape
    pos = torch.argsort(torch.rand(b, s, generator=gen), dim=1)[:, :per_seq]
    t = torch.full_like(tokens, ct.IGNORE_INDEX)
    t.scatter_(1, pos, torch.randint(0, cfg.vocab, (b, per_seq), generator=gen))
    return t


# ---------------------------------------------------------------------------
# A second, deliberately naive implementation written straight from the spec
# (per-head loops, explicit formulas, dense prediction). The module code must agree.
# ---------------------------------------------------------------------------

def naive_loss(P: Dict[str, Tensor], cfg: ct.CrammedConfig, tokens: Tensor, targets: Tensor,
               mask: Optional[Tensor] = None) -> Tensor:
    b, s = tokens.shape
    H, nh = cfg.hidden, cfg.heads
    dh = H // nh
    eps = cfg.norm_eps

    def norm(x: Tensor, pre: str) -> Tensor:
        if cfg.norm == "layernorm":
            mu = x.mean(-1, keepdim=True)
            var = ((x - mu) ** 2).mean(-1, keepdim=True)
            return (x - mu) / torch.sqrt(var + eps) * P[pre + ".weight"] + P[pre + ".bias"]
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * P[pre + ".weight"]

    def lin(x: Tensor, pre: str, w: Optional[Tensor] = None) -> Tensor:
        y = x @ (P[pre + ".weight"] if w is None else w).t()
        return y + P[pre + ".bias"] if pre + ".bias" in P else y

    def gelu(z: Tensor) -> Tensor:
        return 0.5 * z * (1.0 + torch.erf(z / math.sqrt(2.0)))

    pe = torch.tensor([[math.sin(p / 10000 ** (j / H)) if j % 2 == 0 else math.cos(p / 10000 ** ((j - 1) / H))
                        for j in range(H)] for p in range(s)], dtype=torch.float64).to(P["embedding.weight"].dtype)
    x = P["embedding.weight"][tokens]
    if cfg.positions == "scaled-sinusoidal":
        x = x + P["pos.scale"] * pe
    elif cfg.positions == "sinusoidal":
        x = x + pe
    else:
        x = x + P["pos.weight"][:s]
    if cfg.emb_norm:
        x = norm(x, "emb_norm")

    def attention(x: Tensor, pre: str) -> Tensor:
        W = P[pre + ".qkv.weight"]
        bias = P.get(pre + ".qkv.bias")
        heads = []
        for h in range(nh):
            r = 3 * dh * h  # per-head interleaved rows: Q_h, K_h, V_h
            q, k, v = (x @ W[r + i * dh:r + (i + 1) * dh].t()
                       + (0 if bias is None else bias[r + i * dh:r + (i + 1) * dh]) for i in range(3))
            sc = q @ k.transpose(-1, -2) / math.sqrt(dh)
            if mask is not None:
                sc = sc + (1.0 - mask)[:, None, :] * -10000.0
            e = torch.exp(sc - sc.max(-1, keepdim=True).values)
            heads.append((e / e.sum(-1, keepdim=True)) @ v)
        return lin(torch.cat(heads, dim=-1), pre + ".out")

    def ffn(x: Tensor, pre: str) -> Tensor:
        y = lin(x, pre + ".in")
        if cfg.ffn_type == "glu":
            f2 = cfg.ffn // 2
            y = y[..., :f2] * gelu(y[..., f2:])  # value = first half, gate = second half
        else:
            y = gelu(y)
        return lin(y, pre + ".out")

    for i in range(cfg.layers):
        L = f"layers.{i}"
        if cfg.norm_scheme == "pre":
            x = x + attention(norm(x, L + ".norm1"), L + ".attn")
            x = x + ffn(norm(x, L + ".norm2"), L + ".ffn")
        else:
            x = norm(x + attention(x, L + ".attn"), L + ".norm1")
            x = norm(x + ffn(x, L + ".ffn"), L + ".norm2")
    if cfg.final_norm:
        x = norm(x, "final_norm")
    if cfg.head_transform:
        x = norm(gelu(lin(x, "head.dense")), "head.norm")
    W = P["embedding.weight"] if cfg.tie_decoder else P["decoder.weight"]
    logits = x @ W.t() + (P["decoder.bias"] if cfg.decoder_bias else 0)
    sel = targets != ct.IGNORE_INDEX
    lg, tg = logits[sel], targets[sel]
    nll = torch.logsumexp(lg, -1) - lg.gather(1, tg[:, None])[:, 0]
    return nll.mean()


# ---------------------------------------------------------------------------

class TestShapesAndNames(unittest.TestCase):
    def test_param_count_bert_crammed(self) -> None:
        cfg = ct.CrammedConfig.from_json(os.path.join(CONFIGS, "bert_crammed.json"))
        self.assertEqual(ct.param_count(cfg), 119_589_889)
        self.assertEqual(ct.param_count(cfg), ct.param_count(ct.CrammedConfig()))  # defaults = crammed

    def test_presets_load(self) -> None:
        for f in sorted(os.listdir(CONFIGS)):
            if f.endswith(".json"):
                cfg = ct.CrammedConfig.from_json(os.path.join(CONFIGS, f))
                self.assertGreater(ct.param_count(cfg), 0, f)
        tiny = ct.CrammedConfig.from_json(os.path.join(CONFIGS, "tiny.json"))
        self.assertEqual((tiny.layers, tiny.hidden, tiny.heads, tiny.ffn, tiny.vocab, tiny.seq, tiny.batch,
                          tiny.prediction_count), (2, 64, 4, 256, 8192, 128, 8, 32))

    def test_unknown_key_rejected(self) -> None:
        with self.assertRaises(ValueError):
            ct.CrammedConfig.from_dict({"hiden": 3})
        with self.assertRaises(ValueError):
            ct.CrammedConfig.from_dict({"norm": "batchnorm"})

    def test_names_crammed(self) -> None:
        cfg = ct.CrammedConfig.from_json(os.path.join(CONFIGS, "bert_crammed.json"))
        model = ct.CrammedMLM(cfg, device="meta")
        got = {n: list(p.shape) for n, p in model.named_parameters()}
        want = {"embedding.weight": [32768, 768], "pos.scale": [1],
                "emb_norm.weight": [768], "emb_norm.bias": [768],
                "final_norm.weight": [768], "final_norm.bias": [768]}
        for i in range(16):
            L = f"layers.{i}."
            want.update({L + "norm1.weight": [768], L + "norm1.bias": [768],
                         L + "attn.qkv.weight": [2304, 768], L + "attn.out.weight": [768, 768],
                         L + "norm2.weight": [768], L + "norm2.bias": [768],
                         L + "ffn.in.weight": [3072, 768], L + "ffn.out.weight": [768, 1536]})
        self.assertEqual(got, want)
        # The sinusoid table is a non-persistent buffer: nothing but parameters is exchanged.
        self.assertEqual(sorted(model.state_dict()), sorted(want))

    def test_names_all_options(self) -> None:
        cfg = ct.CrammedConfig.from_json(os.path.join(CONFIGS, "untied_biases.json"))
        got = {n: list(p.shape) for n, p in ct.CrammedMLM(cfg, device="meta").named_parameters()}
        H, F_, V = 64, 256, 8192
        for n, s in {"layers.1.attn.qkv.bias": [3 * H], "layers.1.attn.out.bias": [H],
                     "layers.1.ffn.in.bias": [F_], "layers.1.ffn.out.bias": [H],
                     "layers.1.ffn.out.weight": [H, F_ // 2], "head.dense.weight": [H, H],
                     "head.dense.bias": [H], "head.norm.weight": [H], "head.norm.bias": [H],
                     "decoder.weight": [V, H], "decoder.bias": [V]}.items():
            self.assertEqual(got.get(n), s, n)
        self.assertFalse(any(n.startswith("pos.") for n in got))  # plain sinusoid: no params

        cfg = ct.CrammedConfig.from_json(os.path.join(CONFIGS, "postln_noglu.json"))
        got = {n: list(p.shape) for n, p in ct.CrammedMLM(cfg, device="meta").named_parameters()}
        self.assertEqual(got["pos.weight"], [128, 64])
        self.assertEqual(got["layers.0.ffn.out.weight"], [64, 256])
        self.assertNotIn("final_norm.weight", got)
        self.assertNotIn("decoder.weight", got)

        got = [n for n, _ in ct.CrammedMLM(micro(norm="rmsnorm"), device="meta").named_parameters()]
        self.assertIn("layers.0.norm1.weight", got)
        self.assertFalse(any(n.endswith("norm1.bias") or n.startswith("emb_norm.b") for n in got))

    def test_decay_groups(self) -> None:
        cfg = micro(**ABLATIONS["untied_biases_head_sin"])  # type: ignore[arg-type]
        cfg = ct.CrammedConfig(**{**cfg.to_dict(), "positions": "scaled-sinusoidal"})  # type: ignore[arg-type]
        names = [n for n, _ in ct.CrammedMLM(cfg, device="meta").named_parameters()]
        decayed = {n for n in names if ct.is_decayed(n)}
        self.assertEqual(decayed, {n for n in names if n.endswith(".weight") and "norm" not in n} | {"pos.scale"})
        self.assertIn("decoder.weight", decayed)
        self.assertIn("embedding.weight", decayed)
        self.assertNotIn("head.norm.weight", decayed)
        self.assertTrue(ct.is_decayed("pos.weight"))


class TestSemantics(unittest.TestCase):
    def test_matches_naive_spec(self) -> None:
        """Module forward == straight-from-spec implementation, every ablation, f64."""
        for label, over in ABLATIONS.items():
            for with_mask in (False, True):
                with self.subTest(ablation=label, mask=with_mask):
                    cfg = micro(**over)  # type: ignore[arg-type]
                    model = make_model(cfg, seed=3)
                    gen = torch.Generator().manual_seed(4)
                    tokens = torch.randint(0, cfg.vocab, (cfg.batch, cfg.seq), generator=gen)
                    targets = targets_with(cfg, tokens, cfg.prediction_count, seed=5)
                    mask = None
                    if with_mask:
                        mask = torch.ones(cfg.batch, cfg.seq, dtype=torch.float64)
                        mask[0, -2:] = 0.0
                    P = {n: p.detach() for n, p in model.named_parameters()}
                    a = model(tokens, targets, mask)
                    b = naive_loss(P, cfg, tokens, targets, mask)
                    self.assertLess(abs(float(a) - float(b)), 1e-11, (float(a), float(b)))

    def test_attention_vs_multiheadattention(self) -> None:
        """Converting our per-head interleaved QKV to PyTorch's [Q|K|V] block layout reproduces
        nn.MultiheadAttention (an implementation we did not write)."""
        cfg = micro(hidden=12, heads=3, qkv_bias=True, linear_bias=True)
        attn = ct.Attention(cfg, dtype=torch.float64)
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in attn.parameters():
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
        H, nh, dh = 12, 3, 4
        # interleaved row index for (part in {q,k,v}, head h, j) is 3*dh*h + part*dh + j
        perm = torch.tensor([3 * dh * h + part * dh + j for part in range(3) for h in range(nh) for j in range(dh)])
        mha = torch.nn.MultiheadAttention(H, nh, bias=True, batch_first=True, dtype=torch.float64)
        with torch.no_grad():
            mha.in_proj_weight.copy_(attn.qkv.weight[perm])
            mha.in_proj_bias.copy_(attn.qkv.bias[perm])
            mha.out_proj.weight.copy_(attn.out.weight)
            mha.out_proj.bias.copy_(attn.out.bias)
        x = torch.randn(2, 5, H, generator=gen, dtype=torch.float64)
        keep = torch.ones(2, 5, dtype=torch.float64)
        keep[1, 3:] = 0
        ref, _ = mha(x, x, x, need_weights=False, key_padding_mask=keep == 0)
        ours = attn(x, ((1.0 - keep) * -10000.0)[:, None, None, :])
        self.assertLess(float((ref - ours).abs().max()), 1e-12)
        # The block layout read as interleaved is a different function (the test has teeth).
        with torch.no_grad():
            attn.qkv.weight.copy_(mha.in_proj_weight)
        self.assertGreater(float((attn(x, None) - mha(x, x, x, need_weights=False)[0]).abs().max()), 1e-3)

    def test_glu_value_then_gate(self) -> None:
        cfg = micro()
        ffn = ct.FeedForward(cfg, dtype=torch.float64)
        x = torch.randn(3, cfg.hidden, dtype=torch.float64)
        W = getattr(ffn, "in").weight
        f2 = cfg.ffn // 2
        want = (x @ W[:f2].t()) * F.gelu(x @ W[f2:].t()) @ ffn.out.weight.t()
        self.assertLess(float((ffn(x) - want).abs().max()), 1e-12)
        swapped = F.gelu(x @ W[:f2].t()) * (x @ W[f2:].t()) @ ffn.out.weight.t()
        self.assertGreater(float((ffn(x) - swapped).abs().max()), 1e-6)

    def test_gelu_is_exact_erf(self) -> None:
        z = torch.linspace(-4, 4, 41, dtype=torch.float64)
        self.assertLess(float((F.gelu(z) - 0.5 * z * (1 + torch.erf(z / math.sqrt(2)))).abs().max()), 1e-15)

    def test_sinusoid_and_scale(self) -> None:
        pe = ct.sinusoid_table(7, 10)
        for p in range(7):
            for i in range(5):
                w = math.exp(-2 * i * math.log(10000.0) / 10)
                self.assertAlmostEqual(float(pe[p, 2 * i]), math.sin(p * w), places=14)
                self.assertAlmostEqual(float(pe[p, 2 * i + 1]), math.cos(p * w), places=14)
        model = ct.CrammedMLM(micro(hidden=16, heads=2))
        ct.init_params(model, 0)
        self.assertAlmostEqual(float(model.pos.scale), 0.25, places=7)

    def test_layernorm_eps(self) -> None:
        model = ct.CrammedMLM(ct.CrammedConfig.from_json(os.path.join(CONFIGS, "tiny.json")), device="meta")
        self.assertEqual(model.layers[0].norm1.eps, 1e-12)
        self.assertIsInstance(model.final_norm, torch.nn.LayerNorm)

    def test_sparse_equals_dense(self) -> None:
        """Sparse prediction gathers exactly `count` rows per sequence; with at most that many
        targets per sequence it is the dense loss (ignore_index=-100), with the same gradients."""
        for per_seq in (2, 1, 0):  # exactly count; fewer (padding slots); one sequence empty below
            with self.subTest(per_seq=per_seq):
                cfg_s = micro(seq=6, prediction_count=2)
                cfg_d = ct.CrammedConfig(**{**cfg_s.to_dict(), "sparse_prediction": False})  # type: ignore[arg-type]
                ms, md = make_model(cfg_s, seed=7), make_model(cfg_d, seed=7)
                tokens = torch.randint(0, cfg_s.vocab, (cfg_s.batch, cfg_s.seq), generator=torch.Generator().manual_seed(1))
                targets = targets_with(cfg_s, tokens, max(per_seq, 1), seed=2)
                if per_seq == 0:
                    targets[0] = ct.IGNORE_INDEX
                ls, ld = ms(tokens, targets), md(tokens, targets)
                self.assertLess(abs(float(ls) - float(ld)), 1e-13)
                gs = torch.autograd.grad(ls, list(ms.parameters()))
                gd = torch.autograd.grad(ld, list(md.parameters()))
                for a, b in zip(gs, gd):
                    self.assertLess(float((a - b).abs().max()), 1e-13)

    def test_sparse_overflow_keeps_first_targets(self) -> None:
        """A sequence with more than `count` targets keeps its first `count` (position order);
        slots are per sequence, so another sequence's spare slots are not borrowed."""
        cfg = micro(seq=6, prediction_count=2)
        dense = ct.CrammedConfig(**{**cfg.to_dict(), "sparse_prediction": False})  # type: ignore[arg-type]
        ms, md = make_model(cfg, seed=1), make_model(dense, seed=1)
        tokens = torch.randint(0, cfg.vocab, (2, 6), generator=torch.Generator().manual_seed(0))
        targets = torch.full((2, 6), ct.IGNORE_INDEX, dtype=torch.long)
        targets[0, [1, 2, 4, 5]] = torch.tensor([3, 4, 5, 6])   # 4 targets > 2 slots
        targets[1, 3] = 7                                        # 1 target < 2 slots
        trunc = targets.clone()
        trunc[0, [4, 5]] = ct.IGNORE_INDEX
        self.assertLess(abs(float(ms(tokens, targets)) - float(md(tokens, trunc))), 1e-13)
        h = torch.arange(12.0).view(2, 6, 1)
        hs, ts = ct.sparse_gather(h, targets, 2)
        self.assertEqual(hs[:, 0].long().tolist()[:3], [1, 2, 9])   # row 1: slot 0 = position 3
        self.assertEqual(ts.tolist()[:3], [3, 4, 7])
        self.assertEqual(ts.tolist()[3], ct.IGNORE_INDEX)           # padding slot

    def test_init(self) -> None:
        cfg = ct.CrammedConfig.from_json(os.path.join(CONFIGS, "untied_biases.json"))
        m1, m2, m3 = (ct.CrammedMLM(cfg) for _ in range(3))
        ct.init_params(m1, 5)
        ct.init_params(m2, 5)
        ct.init_params(m3, 6)
        p1, p2, p3 = (dict(m.named_parameters()) for m in (m1, m2, m3))
        for n, p in p1.items():
            self.assertTrue(torch.equal(p, p2[n]), n)
            if n.endswith(".bias"):
                self.assertEqual(float(p.abs().max()), 0.0, n)
            elif not ct.is_decayed(n):
                self.assertTrue(bool((p == 1).all()), n)
            else:
                self.assertFalse(torch.equal(p, p3[n]), n)
                self.assertAlmostEqual(float(p.std()), 0.02, delta=0.002 if p.numel() > 10000 else 0.006)
        # Fresh crammed model predicts ~uniformly: loss close to ln(vocab).
        cfg = micro(vocab=512, hidden=32, heads=4, ffn=64, seq=16, prediction_count=4)
        m = ct.CrammedMLM(cfg)
        ct.init_params(m, 0)
        b = ct.random_batch(cfg, 0)
        loss = float(m(b["tokens"], b["targets"]))
        self.assertLess(abs(loss - math.log(512)), 0.3)


class TestGradcheck(unittest.TestCase):
    def test_gradcheck_every_ablation(self) -> None:
        """torch.autograd.gradcheck (f64, all parameters at once) of the loss, every ablation,
        with and without attention mask."""
        for label, over in ABLATIONS.items():
            for with_mask in (False, True) if label == "crammed" else (False,):
                with self.subTest(ablation=label, mask=with_mask):
                    # One layer keeps the full (every-entry) numerical Jacobian cheap; the
                    # two-layer wiring is covered by test_matches_naive_spec.
                    cfg = micro(**{"layers": 1, **over})  # type: ignore[arg-type]
                    model = make_model(cfg, seed=11)
                    names = [n for n, _ in model.named_parameters()]
                    params = tuple(p.detach().clone().requires_grad_(True) for p in model.parameters())
                    gen = torch.Generator().manual_seed(12)
                    tokens = torch.randint(0, cfg.vocab, (cfg.batch, cfg.seq), generator=gen)
                    targets = targets_with(cfg, tokens, cfg.prediction_count, seed=13)
                    mask = None
                    if with_mask:
                        mask = torch.ones(cfg.batch, cfg.seq, dtype=torch.float64)
                        mask[1, -3:] = 0.0

                    def f(*ps: Tensor) -> Tensor:
                        return functional_call(model, dict(zip(names, ps)), (tokens, targets, mask))

                    self.assertTrue(torch.autograd.gradcheck(f, params, eps=1e-6, atol=1e-7, rtol=1e-5))


class TestOptimizer(unittest.TestCase):
    def _params(self) -> Dict[str, Tensor]:
        gen = torch.Generator().manual_seed(0)
        return {n: torch.randn(s, generator=gen, dtype=torch.float64)
                for n, s in [("embedding.weight", (5, 3)), ("layers.0.norm1.weight", (3,)),
                             ("layers.0.attn.qkv.bias", (9,)), ("pos.scale", (1,)), ("decoder.weight", (5, 3))]}

    def test_adamw_matches_torch(self) -> None:
        hp = ct.TrainHParams(lr=3e-2, weight_decay=0.1)
        init = self._params()
        ours = {n: p.clone() for n, p in init.items()}
        theirs = {n: p.clone().requires_grad_(True) for n, p in init.items()}
        opt = ct.AdamW(ours.items(), hp)
        topt = torch.optim.AdamW(
            [{"params": [p for n, p in theirs.items() if ct.is_decayed(n)], "weight_decay": hp.weight_decay},
             {"params": [p for n, p in theirs.items() if not ct.is_decayed(n)], "weight_decay": 0.0}],
            lr=hp.lr, betas=(hp.beta1, hp.beta2), eps=hp.eps)
        gen = torch.Generator().manual_seed(1)
        for step in range(25):
            grads = {n: torch.randn(p.shape, generator=gen, dtype=torch.float64) * (0.1 if step % 2 else 3.0)
                     for n, p in init.items()}
            opt.step(grads)
            for n, p in theirs.items():
                p.grad = grads[n].clone()
            topt.step()
        for n in init:
            self.assertLess(float((ours[n] - theirs[n].detach()).abs().max()), 1e-12, n)
            self.assertGreater(float((ours[n] - init[n]).abs().max()), 1e-3, n)

    def test_clip_matches_torch(self) -> None:
        gen = torch.Generator().manual_seed(3)
        for scale in (10.0, 1e-3):
            grads = [torch.randn(4, 3, generator=gen, dtype=torch.float64) * scale,
                     torch.randn(7, generator=gen, dtype=torch.float64) * scale]
            ps = [torch.zeros_like(g, requires_grad=True) for g in grads]
            for p, g in zip(ps, grads):
                p.grad = g.clone()
            tnorm = torch.nn.utils.clip_grad_norm_(ps, 0.5)
            norm = ct.global_grad_norm(grads)
            self.assertAlmostEqual(float(norm), float(tnorm), places=12)
            coef = torch.clamp(0.5 / (norm + 1e-6), max=1.0)
            for p, g in zip(ps, grads):
                self.assertLess(float((p.grad - g * coef).abs().max()), 1e-14)

    def test_train_step_matches_torch_loop(self) -> None:
        """Our step (loss, grad, clip, AdamW) == the usual torch training loop."""
        cfg = micro(**ABLATIONS["untied_biases_head_sin"])  # type: ignore[arg-type]
        a, b = make_model(cfg, seed=2), make_model(cfg, seed=2)
        batch = {"tokens": torch.randint(0, cfg.vocab, (2, cfg.seq), generator=torch.Generator().manual_seed(0))}
        batch["targets"] = targets_with(cfg, batch["tokens"], 2, seed=1)
        hp = ct.TrainHParams(lr=1e-2, clip=0.05)  # clip small enough to be active
        opt = ct.AdamW(a.named_parameters(), hp)
        named = list(b.named_parameters())
        topt = torch.optim.AdamW(
            [{"params": [p for n, p in named if ct.is_decayed(n)], "weight_decay": hp.weight_decay},
             {"params": [p for n, p in named if not ct.is_decayed(n)], "weight_decay": 0.0}],
            lr=hp.lr, betas=(hp.beta1, hp.beta2), eps=hp.eps)
        for _ in range(4):
            loss_a, norm_a, _ = ct.train_step(a, opt, batch)
            topt.zero_grad()
            loss_b = b(batch["tokens"], batch["targets"])
            loss_b.backward()
            norm_b = torch.nn.utils.clip_grad_norm_(b.parameters(), hp.clip)
            topt.step()
            self.assertAlmostEqual(loss_a, float(loss_b), places=12)
            self.assertAlmostEqual(norm_a, float(norm_b), places=12)
            self.assertGreater(norm_a, hp.clip)
        for (n, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
            # Not 1e-15: the key bias has an identically-zero true gradient (softmax is shift
            # invariant), so its gradient is rounding noise and AdamW's g / (|g| + 1e-12)
            # amplifies differences in that noise.
            self.assertLess(float((pa - pb).abs().max()), 1e-9, n)


class TestSafetensors(unittest.TestCase):
    def test_round_trip_and_layout(self) -> None:
        tensors = {
            "f64": torch.randn(2, 3, dtype=torch.float64),
            "f32": torch.randn(4, dtype=torch.float32),
            "bf16": torch.randn(3, 2).to(torch.bfloat16),
            "i32": torch.tensor([[1, -100], [7, 2 ** 31 - 1]], dtype=torch.int32),
            "i64": torch.tensor([-(2 ** 40), 5], dtype=torch.int64),
            "scalar": torch.tensor(1.5, dtype=torch.float32),
            "empty": torch.zeros(0, 4, dtype=torch.float32),
            "strided": torch.arange(12, dtype=torch.float32).view(3, 4).t(),
        }
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "x.safetensors")
            st.save_file(tensors, path, metadata={"k": "v"})
            back, meta = st.load_file_with_metadata(path)
            self.assertEqual(meta, {"k": "v"})
            self.assertEqual(list(back), list(tensors))
            for n, t in tensors.items():
                self.assertEqual(back[n].dtype, t.dtype, n)
                self.assertEqual(back[n].shape, t.shape, n)
                self.assertTrue(torch.equal(back[n], t), n)
            raw = open(path, "rb").read()
            (hlen,) = struct.unpack("<Q", raw[:8])
            self.assertEqual(hlen % 8, 0)
            header = json.loads(raw[8:8 + hlen])
            begin, end = header["f32"]["data_offsets"]
            self.assertEqual(header["f32"]["dtype"], "F32")
            vals = struct.unpack("<4f", raw[8 + hlen + begin:8 + hlen + end])
            self.assertEqual(list(vals), tensors["f32"].tolist())
            self.assertEqual(header["bf16"]["dtype"], "BF16")
            self.assertEqual(header["strided"]["shape"], [4, 3])
            try:  # cross-check with the official package when it happens to be installed
                from safetensors.torch import load_file as official_load  # type: ignore
            except ImportError:
                return
            off = official_load(path)
            for n, t in tensors.items():
                self.assertTrue(torch.equal(off[n], t), n)


class TestCLI(unittest.TestCase):
    def _run(self, *args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, os.path.join(REF, "crammed_torch.py"), *args],
                              capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return proc

    def test_end_to_end(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            # tiny.json's shape with fewer tokens: fast with the netlib BLAS of CI machines.
            tiny = ct.CrammedConfig.from_json(os.path.join(CONFIGS, "tiny.json")).to_dict()
            tiny.update(vocab=1024, seq=32, batch=4, prediction_count=8)
            cfgp = os.path.join(d, "cfg.json")
            with open(cfgp, "w") as f:
                json.dump(tiny, f)
            cfg = ct.CrammedConfig.from_dict(tiny)
            P, B, O, O64 = (os.path.join(d, x) for x in ("p.st", "b.st", "o.st", "o64.st"))
            self._run("--config", cfgp, "--init", "7", "--write-params", P, "--write-batch", B)
            params, batch = st.load_file(P), st.load_file(B)
            names = [n for n, _ in ct.CrammedMLM(cfg, device="meta").named_parameters()]
            self.assertEqual(sorted(params), sorted(names))
            self.assertEqual(batch["tokens"].dtype, torch.int32)
            self.assertEqual(list(batch["tokens"].shape), [4, 32])
            self.assertTrue(bool(((batch["targets"] != -100).sum(1) == 8).all()))

            steps = 20
            self._run("--config", cfgp, "--params", P, "--batch", B, "--steps", str(steps), "--out", O)
            out = st.load_file(O)
            self.assertEqual(list(out["loss"].shape), [steps])
            self.assertEqual(list(out["grad_norm"].shape), [steps])
            self.assertEqual(out["loss"].dtype, torch.float32)
            for n in names:
                self.assertEqual(out["grad." + n].shape, params[n].shape, n)
                self.assertEqual(out["param." + n].shape, params[n].shape, n)
            self.assertEqual(len(out), 2 + 2 * len(names))
            loss = out["loss"]
            self.assertTrue(bool(torch.isfinite(loss).all()))
            self.assertLess(float(loss[-1]), float(loss[0]) - 0.5)
            self.assertTrue(all(float(loss[i + 1]) < float(loss[i]) for i in range(steps - 1)))

            # f64 run: first-step loss/grads equal an in-process computation; f32 is close to f64.
            self._run("--config", cfgp, "--params", P, "--batch", B, "--steps", "2", "--dtype", "f64", "--out", O64)
            out64 = st.load_file(O64)
            self.assertEqual(out64["loss"].dtype, torch.float64)
            model = ct.CrammedMLM(cfg, dtype=torch.float64)
            ct.load_params(model, params)
            lb = ct.load_batch(B)
            l0 = model(lb["tokens"], lb["targets"])
            grads = torch.autograd.grad(l0, list(model.parameters()))
            self.assertAlmostEqual(float(out64["loss"][0]), float(l0.detach()), places=12)
            for n, g in zip(names, grads):
                self.assertLess(float((out64["grad." + n] - g).abs().max()), 1e-14, n)
            self.assertLess(abs(float(out64["loss"][0]) - float(loss[0])), 1e-4)
            self.assertLess(abs(float(out64["grad_norm"][0]) - float(out["grad_norm"][0])), 1e-4)

            # Optional key mask is accepted and changes the result.
            lb_mask = dict(batch)
            m = torch.ones(4, 32, dtype=torch.float32)
            m[:, -5:] = 0
            lb_mask["mask"] = m
            BM, OM = os.path.join(d, "bm.st"), os.path.join(d, "om.st")
            st.save_file(lb_mask, BM)
            self._run("--config", cfgp, "--params", P, "--batch", BM, "--steps", "1", "--out", OM)
            self.assertNotEqual(float(st.load_file(OM)["loss"][0]), float(loss[0]))

    def test_bad_params_rejected(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            cfgp = os.path.join(d, "cfg.json")
            with open(cfgp, "w") as f:
                json.dump(micro().to_dict(), f)
            P, B = os.path.join(d, "p.st"), os.path.join(d, "b.st")
            self._run("--config", cfgp, "--init", "1", "--write-params", P, "--write-batch", B)
            params = st.load_file(P)
            del params["pos.scale"]
            st.save_file(params, P)
            proc = subprocess.run([sys.executable, os.path.join(REF, "crammed_torch.py"), "--config", cfgp,
                                   "--params", P, "--batch", B, "--out", os.path.join(d, "o.st")],
                                  capture_output=True, text=True)
            self.assertNotEqual(proc.returncode, 0)
            self.assertIn("pos.scale", proc.stderr)


@unittest.skipUnless(hasattr(torch, "compile"), "torch.compile needs torch >= 2.0")
class TestCompile(unittest.TestCase):
    def test_fullgraph_compile(self) -> None:
        cfg = micro(vocab=64, hidden=16, heads=2, ffn=32, seq=8, prediction_count=2)
        model = make_model(cfg, seed=0, dtype=torch.float32)
        b = ct.random_batch(cfg, 0)
        try:
            compiled = torch.compile(model, fullgraph=True, dynamic=False)
            got = compiled(b["tokens"], b["targets"])
        except Exception as e:  # no C compiler / unsupported platform for inductor
            if "fullgraph" in str(e).lower() or "graph break" in str(e).lower():
                raise
            self.skipTest(f"inductor unavailable here: {type(e).__name__}: {str(e)[:200]}")
        self.assertLess(abs(float(got) - float(model(b["tokens"], b["targets"]))), 1e-5)


def main() -> int:
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    verbosity = 2 if "-v" in sys.argv[1:] else 1
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=verbosity, stream=sys.stdout).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    for test, reason in result.skipped:  # never skip silently: say what and why
        print(f"skipped: {test.id()}: {reason}")
    passed = result.testsRun - failed - len(result.skipped)
    print(f"{passed} passed, {failed} failed" + (f", {len(result.skipped)} skipped" if result.skipped else ""))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
