#!/usr/bin/python3
"""Independent PyTorch reference of crammed-BERT masked language models.

This is cramc's external oracle: the C interpreter and the compiled train step
are checked against it, and GPU benchmarks time it under torch.compile. It is
written from the Cramming paper (Geiping & Goldstein, arXiv 2212.14034) and the
facts in shared/cramming-reference.md, not from cramc's IR.

Runs on torch 1.13 (Debian python3-torch) and torch 2.x. Forward has no
data-dependent Python control flow (all branches depend on the config only), so
`torch.compile(model, fullgraph=True)` works on torch 2.x.

Usage (see docs/reference.md):
    reference/crammed_torch.py --config C.json --init SEED --write-params P.safetensors [--write-batch B.safetensors]
    reference/crammed_torch.py --config C.json --params P.safetensors --batch B.safetensors \
        [--steps 3] [--lr 1e-3] [--dtype f32|f64] --out OUT.safetensors
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402  (sibling module; works when run as a script)

IGNORE_INDEX = -100


# ----------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------

@dataclass
class CrammedConfig:
    """Architecture of one crammed-BERT-style MLM. Defaults = the crammed BERT of the paper."""

    name: str = "bert_crammed"
    # dims
    vocab: int = 32768
    seq: int = 128            # max sequence length (size of the position table)
    hidden: int = 768
    heads: int = 12
    ffn: int = 3072           # width of ffn.in's output (GLU: halved to ffn/2 before ffn.out)
    layers: int = 16
    batch: int = 128          # default microbatch (used by --write-batch; the model takes any B)
    # normalisation
    norm: str = "layernorm"   # "layernorm" | "rmsnorm"
    norm_scheme: str = "pre"  # "pre" | "post"
    norm_eps: float = 1e-12
    emb_norm: bool = True     # norm after embedding + positions
    final_norm: bool = True   # norm after the last layer
    # blocks
    ffn_type: str = "glu"     # "glu" (GLU with GELU on the gate) | "gelu" (plain MLP)
    linear_bias: bool = False  # bias of attn.out, ffn.in, ffn.out, head.dense
    qkv_bias: bool = False     # bias of attn.qkv
    positions: str = "scaled-sinusoidal"  # "scaled-sinusoidal" | "sinusoidal" | "learned"
    # prediction
    head_transform: bool = False  # dense + GELU + norm before the decoder
    tie_decoder: bool = True      # decoder weight = embedding.weight
    decoder_bias: bool = False
    sparse_prediction: bool = True
    prediction_count: int = 32    # prediction slots per sequence (sparse_prediction)
    # training-time
    dropout: float = 0.0          # hidden, embedding and attention-prob dropout (off in pretraining)
    init_std: float = 0.02

    def __post_init__(self) -> None:
        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ValueError(f"config {self.name}: {msg}")
        need(self.norm in ("layernorm", "rmsnorm"), f"norm must be layernorm|rmsnorm, not {self.norm!r}")
        need(self.norm_scheme in ("pre", "post"), f"norm_scheme must be pre|post, not {self.norm_scheme!r}")
        need(self.ffn_type in ("glu", "gelu"), f"ffn_type must be glu|gelu, not {self.ffn_type!r}")
        need(self.positions in ("scaled-sinusoidal", "sinusoidal", "learned"),
             f"positions must be scaled-sinusoidal|sinusoidal|learned, not {self.positions!r}")
        need(self.hidden % self.heads == 0, f"hidden {self.hidden} not divisible by heads {self.heads}")
        need(self.hidden % 2 == 0, "hidden must be even (sin/cos pairs)")
        need(self.ffn_type != "glu" or self.ffn % 2 == 0, "GLU needs an even ffn")
        need(not self.sparse_prediction or 0 < self.prediction_count <= self.seq,
             "prediction_count must be in 1..seq")
        need(0.0 <= self.dropout < 1.0, "dropout must be in [0, 1)")

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def ffn_out_in(self) -> int:
        """Input width of ffn.out: GLU halves ffn.in's output (value * gelu(gate))."""
        return self.ffn // 2 if self.ffn_type == "glu" else self.ffn

    @classmethod
    def from_dict(cls, d: Dict[str, object]) -> "CrammedConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        # Keys starting with "_" are comments.
        unknown = sorted(k for k in d if k not in known and not k.startswith("_"))
        if unknown:
            raise ValueError(f"unknown config keys: {unknown} (known: {sorted(known)})")
        return cls(**{k: v for k, v in d.items() if k in known})  # type: ignore[arg-type]

    @classmethod
    def from_json(cls, path: str) -> "CrammedConfig":
        with open(path) as f:
            return cls.from_dict(json.load(f))

    def to_dict(self) -> Dict[str, object]:
        return dataclasses.asdict(self)


# ----------------------------------------------------------------------------
# Modules (attribute names are chosen so that named_parameters() gives exactly
# the exchange names of docs/reference.md, e.g. layers.3.attn.qkv.weight)
# ----------------------------------------------------------------------------

class RMSNorm(nn.Module):
    """y = x * rsqrt(mean(x^2) + eps) * weight  (eps inside the root, no bias, no mean subtraction)."""

    def __init__(self, dim: int, eps: float, device=None, dtype=None) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim, device=device, dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def make_norm(cfg: CrammedConfig, dim: int, device=None, dtype=None) -> nn.Module:
    if cfg.norm == "layernorm":
        return nn.LayerNorm(dim, eps=cfg.norm_eps, device=device, dtype=dtype)
    return RMSNorm(dim, cfg.norm_eps, device=device, dtype=dtype)


def sinusoid_table(seq: int, hidden: int) -> Tensor:
    """Fixed positional table [seq, hidden] in float64, INTERLEAVED sin/cos:
    pe[p, 2i] = sin(p * w_i), pe[p, 2i+1] = cos(p * w_i), w_i = exp(-2i * ln(10000) / hidden).
    (Interleaved as in cramming's SinusoidalPositional, not the [sin | cos] halves of
    some other implementations.) Computed in float64 and rounded to the compute dtype
    once, so that every implementation can reproduce it to the last bit it keeps."""
    pos = torch.arange(seq, dtype=torch.float64).unsqueeze(1)
    div = torch.exp(torch.arange(0, hidden, 2, dtype=torch.float64) * (-math.log(10000.0) / hidden))
    pe = torch.zeros(seq, hidden, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)
    return pe


class Positions(nn.Module):
    """Additive position signal. Parameters: `scale` [1] (scaled-sinusoidal, init 1/sqrt(hidden)),
    `weight` [seq, hidden] (learned), none (sinusoidal)."""

    def __init__(self, cfg: CrammedConfig, device=None, dtype=None) -> None:
        super().__init__()
        self.kind = cfg.positions
        if self.kind == "learned":
            self.weight = nn.Parameter(torch.empty(cfg.seq, cfg.hidden, device=device, dtype=dtype))
        else:
            pe = sinusoid_table(cfg.seq, cfg.hidden).to(dtype or torch.get_default_dtype())
            # Non-persistent: a derived constant, not part of the exchanged parameters.
            self.register_buffer("pe", pe.to(device) if device is not None else pe, persistent=False)
            if self.kind == "scaled-sinusoidal":
                self.scale = nn.Parameter(torch.full((1,), 1.0 / math.sqrt(cfg.hidden),
                                                     device=device, dtype=dtype))

    def forward(self, seq_len: int) -> Tensor:
        if self.kind == "learned":
            return self.weight[:seq_len]
        if self.kind == "scaled-sinusoidal":
            return self.scale * self.pe[:seq_len]
        return self.pe[:seq_len]


class Attention(nn.Module):
    """Bidirectional multi-head self-attention, written out by hand (torch 1.13 has no SDPA).

    QKV packing is PER-HEAD INTERLEAVED (Megatron/GPT-NeoX style, as in cramming's
    SeqFirstSelfAttention): the qkv Linear's output [.., 3H] is viewed as
    [.., heads, 3*head_dim] and split into Q, K, V, so head h owns output features
    [3dh*h, 3dh*h+dh) = Q_h, [3dh*h+dh, 3dh*h+2dh) = K_h, [3dh*h+2dh, 3dh*(h+1)) = V_h.
    This keeps each head's Q, K, V adjacent in the single fused GEMM's output and is
    what released crammed-BERT checkpoints contain. It is NOT HF BERT's [Q | K | V]
    block layout; tests convert between the two to check against nn.MultiheadAttention.
    """

    def __init__(self, cfg: CrammedConfig, device=None, dtype=None) -> None:
        super().__init__()
        self.heads = cfg.heads
        self.head_dim = cfg.head_dim
        self.p = cfg.dropout
        self.qkv = nn.Linear(cfg.hidden, 3 * cfg.hidden, bias=cfg.qkv_bias, device=device, dtype=dtype)
        self.out = nn.Linear(cfg.hidden, cfg.hidden, bias=cfg.linear_bias, device=device, dtype=dtype)

    def forward(self, x: Tensor, additive_mask: Optional[Tensor]) -> Tensor:
        b, s, h = x.shape
        qkv = self.qkv(x).view(b, s, self.heads, 3 * self.head_dim)
        q, k, v = qkv.split(self.head_dim, dim=-1)               # each [B, S, heads, dh]
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))         # [B, heads, S, dh]
        scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(self.head_dim))
        if additive_mask is not None:                             # [B, 1, 1, S], masks keys
            scores = scores + additive_mask
        probs = torch.softmax(scores, dim=-1)
        probs = F.dropout(probs, self.p, self.training)
        ctx = torch.matmul(probs, v).transpose(1, 2).reshape(b, s, h)  # heads concatenated in order
        return self.out(ctx)


class FeedForward(nn.Module):
    """GLU: in: H->F; value = first F/2 features, gate = second F/2; out(value * gelu(gate)): F/2->H.
    GELU: in: H->F; out(gelu(.)): F->H. GELU is the exact erf form everywhere."""

    def __init__(self, cfg: CrammedConfig, device=None, dtype=None) -> None:
        super().__init__()
        self.glu = cfg.ffn_type == "glu"
        # `in` is a Python keyword, hence add_module; the parameter is ffn.in.weight.
        self.add_module("in", nn.Linear(cfg.hidden, cfg.ffn, bias=cfg.linear_bias, device=device, dtype=dtype))
        self.out = nn.Linear(cfg.ffn_out_in, cfg.hidden, bias=cfg.linear_bias, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        y = getattr(self, "in")(x)
        if self.glu:
            value, gate = y.chunk(2, dim=-1)
            y = F.gelu(gate) * value
        else:
            y = F.gelu(y)
        return self.out(y)


class Layer(nn.Module):
    """Pre-LN: x += attn(norm1(x)); x += ffn(norm2(x)).
    Post-LN (original BERT): x = norm1(x + attn(x)); x = norm2(x + ffn(x))."""

    def __init__(self, cfg: CrammedConfig, device=None, dtype=None) -> None:
        super().__init__()
        self.pre = cfg.norm_scheme == "pre"
        self.p = cfg.dropout
        self.norm1 = make_norm(cfg, cfg.hidden, device, dtype)
        self.attn = Attention(cfg, device, dtype)
        self.norm2 = make_norm(cfg, cfg.hidden, device, dtype)
        self.ffn = FeedForward(cfg, device, dtype)

    def forward(self, x: Tensor, additive_mask: Optional[Tensor]) -> Tensor:
        drop = lambda t: F.dropout(t, self.p, self.training)  # noqa: E731
        if self.pre:
            x = x + drop(self.attn(self.norm1(x), additive_mask))
            x = x + drop(self.ffn(self.norm2(x)))
        else:
            x = self.norm1(x + drop(self.attn(x, additive_mask)))
            x = self.norm2(x + drop(self.ffn(x)))
        return x


class HeadTransform(nn.Module):
    """BERT prediction-head transform: norm(gelu(dense(x)))."""

    def __init__(self, cfg: CrammedConfig, device=None, dtype=None) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.hidden, cfg.hidden, bias=cfg.linear_bias, device=device, dtype=dtype)
        self.norm = make_norm(cfg, cfg.hidden, device, dtype)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(F.gelu(self.dense(x)))


class CrammedMLM(nn.Module):
    """Crammed-BERT-style masked LM. forward(tokens, targets, mask=None) -> mean cross-entropy."""

    def __init__(self, cfg: CrammedConfig, device=None, dtype=None) -> None:
        super().__init__()
        self.cfg = cfg
        self.embedding = nn.Embedding(cfg.vocab, cfg.hidden, device=device, dtype=dtype)
        self.pos = Positions(cfg, device, dtype)
        if cfg.emb_norm:
            self.emb_norm = make_norm(cfg, cfg.hidden, device, dtype)
        self.layers = nn.ModuleList([Layer(cfg, device, dtype) for _ in range(cfg.layers)])
        if cfg.final_norm:
            self.final_norm = make_norm(cfg, cfg.hidden, device, dtype)
        if cfg.head_transform:
            self.head = HeadTransform(cfg, device, dtype)
        # The decoder only owns parameters that are not tied: weight (untied), bias (optional).
        self.decoder = nn.Module()
        if not cfg.tie_decoder:
            self.decoder.weight = nn.Parameter(torch.empty(cfg.vocab, cfg.hidden, device=device, dtype=dtype))
        if cfg.decoder_bias:
            self.decoder.bias = nn.Parameter(torch.zeros(cfg.vocab, device=device, dtype=dtype))

    # -- pieces --------------------------------------------------------------

    def encode(self, tokens: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """tokens i64/i32 [B,S] (+ optional key mask [B,S], 1 = attend, 0 = padding) -> [B,S,H]."""
        cfg = self.cfg
        x = self.embedding(tokens.long()) + self.pos(tokens.shape[1])
        if cfg.emb_norm:
            x = self.emb_norm(x)
        x = F.dropout(x, cfg.dropout, self.training)
        additive = None
        if mask is not None:
            # Downstream-style additive key mask as in BERT/cramming: (1 - mask) * -10000.
            additive = ((1.0 - mask.to(x.dtype)) * -10000.0)[:, None, None, :]
        for layer in self.layers:
            x = layer(x, additive)
        if cfg.final_norm:
            x = self.final_norm(x)
        return x

    def decoder_weight(self) -> Tensor:
        return self.embedding.weight if self.cfg.tie_decoder else self.decoder.weight

    def logits(self, h: Tensor) -> Tensor:
        """Prediction head + decoder on rows h [N,H] -> [N,V]."""
        if self.cfg.head_transform:
            h = self.head(h)
        return F.linear(h, self.decoder_weight(), self.decoder.bias if self.cfg.decoder_bias else None)

    def forward(self, tokens: Tensor, targets: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        h = self.encode(tokens, mask)
        t = targets.long()
        if self.cfg.sparse_prediction:
            h, t = sparse_gather(h, t, self.cfg.prediction_count)   # [B*count, H], [B*count]
        else:
            h, t = h.reshape(-1, h.shape[-1]), t.reshape(-1)           # [B*S, H], [B*S]
        # Mean over positions whose target != -100 (gathered padding slots are -100 too).
        return F.cross_entropy(self.logits(h), t, ignore_index=IGNORE_INDEX)


def sparse_gather(h: Tensor, t: Tensor, count: int) -> Tuple[Tensor, Tensor]:
    """Static-shape gather of prediction rows, `count` slots per sequence.

    h [B,S,H], t [B,S] -> rows [B*count, H], targets [B*count]. Slot k of sequence b
    holds that sequence's k-th target position (target != -100) in position order;
    when a sequence has fewer than `count` targets the remaining slots hold
    non-target positions, whose target is -100 so the loss ignores them (and they get
    no gradient). A sequence with more than `count` targets keeps its first `count`.

    With at most `count` targets per sequence this is exactly the dense loss. The
    crammed collator masks exactly `count` (= 25% of seq) tokens per sequence, so every
    slot is used. Cramming itself does argsort(mask.flatten())[-B*count:] (order and
    overflow choice unspecified); we sort a unique per-row key instead so every
    backend can agree on the slot order. No data-dependent shapes or Python branching:
    fine for torch.compile(fullgraph=True)."""
    b, s, hid = h.shape
    idx = torch.arange(s, device=t.device)
    key = (t == IGNORE_INDEX).long() * s + idx                 # targets first, in position order
    pos = torch.argsort(key, dim=1)[:, :count]                 # [B, count]
    flat = (pos + torch.arange(b, device=t.device)[:, None] * s).reshape(b * count)
    return h.reshape(b * s, hid).index_select(0, flat), t.reshape(b * s).index_select(0, flat)


# ----------------------------------------------------------------------------
# Parameters: names, decay groups, init
# ----------------------------------------------------------------------------

NORM_MODULE_NAMES = ("emb_norm", "norm1", "norm2", "final_norm", "norm")


def is_decayed(name: str) -> bool:
    """Weight decay applies to embedding, linear/decoder weights and positions (incl. pos.scale,
    as in cramming, whose no-decay filter only matches 'bias' and 'norm'); not to biases
    or any norm parameter."""
    parts = name.split(".")
    return not (parts[-1] == "bias" or any(p in NORM_MODULE_NAMES for p in parts[:-1]))


@torch.no_grad()
def init_params(model: CrammedMLM, seed: int) -> None:
    """Fresh init, deterministic given the seed. Parameters are drawn in named_parameters()
    order from one CPU generator (float64 draws rounded to the model dtype):
    linear / embedding / learned-position / untied-decoder weights ~ N(0, init_std);
    biases 0; norm weights 1; pos.scale = 1/sqrt(hidden). The padding row is not zeroed
    (in cramming the tied table is re-drawn by the decoder's Linear init anyway)."""
    cfg = model.cfg
    gen = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if name == "pos.scale":
            p.fill_(1.0 / math.sqrt(cfg.hidden))
        elif name.endswith(".bias"):
            p.zero_()
        elif not is_decayed(name):  # norm weight
            p.fill_(1.0)
        else:
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * cfg.init_std)


def model_flops_per_token(cfg: CrammedConfig, seq: Optional[int] = None) -> float:
    """Model FLOPs of one train step per input token (for MFU): 3 x the forward matmul
    FLOPs (backward = 2 x forward), 2 FLOPs per multiply-add, nothing recomputed,
    non-matmul ops not counted. The same count as cramc's (`cramc --summary` prints the
    forward part; a step.so's metadata holds 3x it). Per token, forward:
      body      2 * L * (3H*H + H*H + F*H + F_out*H)          (qkv, attn.out, ffn.in, ffn.out)
      attention 2 * L * 2 * S * H                              (Q K^T and P V, all heads)
      head      2 * H*H * rows/S  if head_transform
      decoder   2 * H * V * rows/S                             (rows = count per sequence if sparse, else S)
    so for the crammed BERT = 6 N_matmul + 12 L S H + 6 H V count / S."""
    s = seq or cfg.seq
    h, layers = cfg.hidden, cfg.layers
    body = layers * (3 * h * h + h * h + cfg.ffn * h + cfg.ffn_out_in * h)
    rows = cfg.prediction_count if cfg.sparse_prediction else s
    fwd = 2.0 * body + 2.0 * layers * 2 * s * h + 2.0 * h * cfg.vocab * rows / s
    if cfg.head_transform:
        fwd += 2.0 * h * h * rows / s
    return 3.0 * fwd


def param_count(cfg: CrammedConfig) -> int:
    """Number of trainable scalars, without allocating (meta device)."""
    model = CrammedMLM(cfg, device="meta")
    return sum(p.numel() for p in model.parameters())


# `cram export`'s default names (--names cramming: the state-dict names of
# JonasGeiping/cramming) -> the exchange names above. Top-level names map
# whole; per-layer names map by prefix after "encoder.layers.N.".
_CRAMMING_TOP = {
    "encoder.embedding.word_embedding.weight": "embedding.weight",
    "encoder.embedding.pos_embedding.scale_factor": "pos.scale",
    "encoder.embedding.pos_embedding.embedding.weight": "pos.weight",
    "encoder.embedding.norm.weight": "emb_norm.weight",
    "encoder.embedding.norm.bias": "emb_norm.bias",
    "encoder.final_norm.weight": "final_norm.weight",
    "encoder.final_norm.bias": "final_norm.bias",
    "decoder.weight": "decoder.weight",
    "decoder.bias": "decoder.bias",
}
_CRAMMING_LAYER = (
    ("norm1.", "norm1."),
    ("norm2.", "norm2."),
    ("attn.self_attention.query_key_value.", "attn.qkv."),
    ("attn.dense.", "attn.out."),
    ("ffn.dense_in.", "ffn.in."),
    ("ffn.dense_out.", "ffn.out."),
)


def from_cramming_names(cfg: CrammedConfig, params: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Rename a `cram export` file written with cramming's state-dict names to the exchange
    names. The extra entries such a file carries are checked, then dropped: the tied
    `decoder.weight` (must equal the embedding when cfg.tie_decoder) and each layer's
    `attn.self_attention.norm_factor` buffer (must be 1/sqrt(head_dim)). Files already in
    exchange names (`cram export --names cramc`, `--write-params`) pass through unchanged."""
    if not any(k.startswith("encoder.") for k in params):
        return dict(params)
    out: Dict[str, Tensor] = {}
    for name, t in params.items():
        if name.endswith(".attn.self_attention.norm_factor"):
            want = 1.0 / math.sqrt(cfg.head_dim)
            if abs(float(t.reshape(-1)[0]) - want) > 1e-6 * want:
                raise ValueError(f"{name} = {float(t.reshape(-1)[0])}, expected 1/sqrt(head_dim) = {want}")
            continue
        if name in _CRAMMING_TOP:
            out[_CRAMMING_TOP[name]] = t
            continue
        parts = name.split(".")
        if len(parts) > 3 and parts[0] == "encoder" and parts[1] == "layers" and parts[2].isdigit():
            rest = ".".join(parts[3:])
            for theirs, ours in _CRAMMING_LAYER:
                if rest.startswith(theirs):
                    out[f"layers.{parts[2]}.{ours}{rest[len(theirs):]}"] = t
                    break
            else:
                raise KeyError(f"{name}: no counterpart in the reference model")
            continue
        raise KeyError(f"{name}: no counterpart in the reference model")
    if cfg.tie_decoder and "decoder.weight" in out:
        tied = out.pop("decoder.weight")
        if "embedding.weight" not in out or not torch.equal(tied, out["embedding.weight"]):
            raise ValueError("decoder.weight differs from the word embedding, but the config ties them")
    return out


def load_params(model: CrammedMLM, params: Dict[str, Tensor]) -> None:
    """Copy exchanged tensors into the model (casting dtype); names must match exactly.
    Files in cramming's names (`cram export`'s default) are renamed first."""
    params = from_cramming_names(model.cfg, params)
    own = dict(model.named_parameters())
    missing = sorted(set(own) - set(params))
    extra = sorted(set(params) - set(own))
    if missing or extra:
        raise KeyError(f"parameter names do not match the config: missing {missing}, unexpected {extra}")
    with torch.no_grad():
        for name, p in own.items():
            if tuple(params[name].shape) != tuple(p.shape):
                raise ValueError(f"{name}: shape {list(params[name].shape)} != expected {list(p.shape)}")
            p.copy_(params[name].to(p.dtype))


# ----------------------------------------------------------------------------
# Optimiser and train step
# ----------------------------------------------------------------------------

@dataclass
class TrainHParams:
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.98
    eps: float = 1e-12
    weight_decay: float = 0.01
    clip: float = 0.5             # global L2 grad-norm clip; <= 0 disables
    clip_eps: float = 1e-6        # as torch.nn.utils.clip_grad_norm_: coef = min(1, clip / (norm + 1e-6))


class AdamW:
    """Decoupled AdamW, written out (so the exact formula is on the page):
        m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  t += 1
        m_hat = m / (1 - b1^t);  v_hat = v / (1 - b2^t)
        p -= lr * (m_hat / (sqrt(v_hat) + eps) + wd * p)      (wd = 0 for no-decay params)
    Equal (up to rounding) to torch.optim.AdamW, which applies p *= 1 - lr*wd first."""

    def __init__(self, named_params: Iterable[Tuple[str, Tensor]], hp: TrainHParams) -> None:
        self.hp = hp
        self.params: List[Tuple[str, Tensor]] = list(named_params)
        self.m = {n: torch.zeros_like(p) for n, p in self.params}
        self.v = {n: torch.zeros_like(p) for n, p in self.params}
        self.t = 0

    @torch.no_grad()
    def step(self, grads: Dict[str, Tensor], lr: Optional[float] = None) -> None:
        hp = self.hp
        lr = hp.lr if lr is None else lr
        self.t += 1
        bc1 = 1.0 - hp.beta1 ** self.t
        bc2 = 1.0 - hp.beta2 ** self.t
        for name, p in self.params:
            g = grads[name]
            m, v = self.m[name], self.v[name]
            m.mul_(hp.beta1).add_(g, alpha=1.0 - hp.beta1)
            v.mul_(hp.beta2).addcmul_(g, g, value=1.0 - hp.beta2)
            wd = hp.weight_decay if is_decayed(name) else 0.0
            update = (m / bc1) / ((v / bc2).sqrt() + hp.eps) + wd * p
            p.sub_(lr * update)


def global_grad_norm(grads: Iterable[Tensor]) -> Tensor:
    """L2 norm over all gradient entries (norm of the per-tensor norms, as torch does)."""
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


def train_step(model: CrammedMLM, opt: AdamW, batch: Dict[str, Tensor]) -> Tuple[float, float, Dict[str, Tensor]]:
    """One step: loss, backward, global-norm clip, AdamW. Returns (loss, pre-clip grad norm,
    unclipped grads)."""
    hp = opt.hp
    names = [n for n, _ in opt.params]
    loss = model(batch["tokens"], batch["targets"], batch.get("mask"))
    grads = dict(zip(names, torch.autograd.grad(loss, [p for _, p in opt.params])))
    norm = global_grad_norm(grads.values())
    if hp.clip > 0:
        coef = torch.clamp(hp.clip / (norm + hp.clip_eps), max=1.0)
        clipped = {n: g * coef for n, g in grads.items()}
    else:
        clipped = grads
    opt.step(clipped)
    return float(loss.detach()), float(norm), grads


# ----------------------------------------------------------------------------
# Batches
# ----------------------------------------------------------------------------

def random_batch(cfg: CrammedConfig, seed: int, batch: Optional[int] = None) -> Dict[str, Tensor]:
    """A synthetic MLM batch: uniform tokens; exactly prediction_count targets per sequence
    (the original token), like the crammed collator (without 80/10/10 corruption, which
    belongs to the data pipeline, not the model)."""
    b = batch or cfg.batch
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, cfg.vocab, (b, cfg.seq), generator=gen, dtype=torch.int64)
    count = cfg.prediction_count if cfg.sparse_prediction else max(1, round(0.25 * cfg.seq))
    pos = torch.argsort(torch.rand(b, cfg.seq, generator=gen), dim=1)[:, :count]
    targets = torch.full_like(tokens, IGNORE_INDEX)
    targets.scatter_(1, pos, tokens.gather(1, pos))
    return {"tokens": tokens.to(torch.int32), "targets": targets.to(torch.int32)}


def load_batch(path: str) -> Dict[str, Tensor]:
    raw = safetensors_io.load_file(path)
    for k in ("tokens", "targets"):
        if k not in raw:
            raise KeyError(f"{path}: batch needs '{k}' (i32 [B,S]); has {sorted(raw)}")
    out = {"tokens": raw["tokens"].long(), "targets": raw["targets"].long()}
    if "mask" in raw:
        out["mask"] = raw["mask"]
    return out


# ----------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------

_DTYPE = {"f32": torch.float32, "f64": torch.float64}


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="crammed-BERT PyTorch reference: init / train-step cross-check")
    ap.add_argument("--config", required=True, help="config JSON (reference/configs/*.json)")
    ap.add_argument("--init", type=int, metavar="SEED", help="initialise parameters (and batch) from SEED")
    ap.add_argument("--write-params", metavar="P.safetensors", help="with --init: write the fresh parameters")
    ap.add_argument("--write-batch", metavar="B.safetensors", help="with --init: write a random MLM batch")
    ap.add_argument("--params", metavar="P.safetensors", help="parameters to load")
    ap.add_argument("--batch", metavar="B.safetensors", help="tokens/targets[/mask] to train on")
    ap.add_argument("--out", metavar="OUT.safetensors", help="loss, grad_norm, grad.* (step 1), param.* (after last step)")
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--dtype", choices=sorted(_DTYPE), default="f32")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--beta1", type=float, default=0.9)
    ap.add_argument("--beta2", type=float, default=0.98)
    ap.add_argument("--eps", type=float, default=1e-12)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--clip", type=float, default=0.5, help="global grad-norm clip (<= 0: off)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    args = ap.parse_args(argv)

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    cfg = CrammedConfig.from_json(args.config)
    dtype = _DTYPE[args.dtype]

    if args.init is not None:
        if not (args.write_params or args.write_batch):
            ap.error("--init needs --write-params and/or --write-batch")
        if args.write_params:
            model = CrammedMLM(cfg, dtype=torch.float32 if args.dtype == "f32" else dtype)
            init_params(model, args.init)
            safetensors_io.save_file({n: p.detach() for n, p in model.named_parameters()}, args.write_params,
                                     metadata={"config": json.dumps(cfg.to_dict()), "seed": str(args.init)})
        if args.write_batch:
            safetensors_io.save_file(random_batch(cfg, args.init + 1), args.write_batch)
        if not args.params:
            return 0

    if not (args.params and args.batch and args.out):
        ap.error("a train run needs --params, --batch and --out")
    if args.steps < 1:
        ap.error("--steps must be >= 1")

    model = CrammedMLM(cfg, dtype=dtype)
    load_params(model, safetensors_io.load_file(args.params))
    model.train()  # dropout (if cfg.dropout > 0) is active, as in a train step
    batch = load_batch(args.batch)
    if "mask" in batch:
        batch["mask"] = batch["mask"].to(dtype)
    hp = TrainHParams(lr=args.lr, beta1=args.beta1, beta2=args.beta2, eps=args.eps,
                      weight_decay=args.weight_decay, clip=args.clip)
    opt = AdamW(model.named_parameters(), hp)
    losses: List[float] = []
    norms: List[float] = []
    first_grads: Dict[str, Tensor] = {}
    for step in range(args.steps):
        loss, norm, grads = train_step(model, opt, batch)
        losses.append(loss)
        norms.append(norm)
        if step == 0:
            first_grads = grads
        print(f"step {step + 1}: loss {loss:.8g} grad_norm {norm:.8g}", file=sys.stderr)

    out: Dict[str, Tensor] = {
        "loss": torch.tensor(losses, dtype=dtype),
        "grad_norm": torch.tensor(norms, dtype=dtype),
    }
    for n, g in first_grads.items():
        out[f"grad.{n}"] = g.detach()
    for n, p in model.named_parameters():
        out[f"param.{n}"] = p.detach()
    safetensors_io.save_file(out, args.out, metadata={"config": json.dumps(cfg.to_dict()), "steps": str(args.steps)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
