"""Iso-parameter language-model pretraining: MoE FFN vs dense FFN (the paper's MiniMind experiment).

The newer version of the paper trains MiniMind language models (8 layers, hidden 512, 4 routed
experts + 1 shared expert, top-2 gating, auxiliary load-balancing loss with alpha = 0.01, AdamW
lr 5e-4) and reports that the MoE matches or beats the dense model with far fewer *active*
parameters.  This module rebuilds that comparison at a size a CPU can train:

* :class:`LMConfig` -- one validated configuration for a decoder-only transformer whose FFN is
  either dense (SwiGLU of width ``d_ff``) or an MoE (``n_routed`` SwiGLU experts of width
  ``expert_d_ff`` chosen by top-``top_k`` softmax gating, plus ``n_shared`` always-on experts).
* :func:`matched_dense` -- the dense configuration with the same *total* or the same *active*
  parameter count as an MoE configuration; :func:`count_parameters` -- exact analytic counts.
* :class:`TinyLM` -- the model (pre-RMSNorm blocks, causal attention, learned positions, tied
  embeddings); :func:`load_balancing_loss` -- the Switch/MiniMind auxiliary loss.
* :func:`train_lm` -- seeded AdamW training that records train / validation loss against steps
  and tokens and the routing load of every expert over training.
* :func:`run_experiment` -- every (variant, seed) unit through a
  :class:`moe_companion.heavy.store.ResultStore`-like object, so an interrupted run resumes.

Torch is imported lazily (inside functions) only where a model is built, so that importing the
module to read :data:`PROFILES` stays cheap.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _validate as v

__all__ = [
    "EXPERIMENT",
    "PROFILES",
    "VARIANTS",
    "LMConfig",
    "active_ffn_share",
    "build_model",
    "check_params",
    "compare",
    "count_parameters",
    "encode_text",
    "load_balancing_loss",
    "load_corpus",
    "load_imbalance",
    "load_result",
    "matched_dense",
    "moe_config_from",
    "parameter_table",
    "run_experiment",
    "summarize",
    "train_lm",
    "variant_configs",
]


#: The three models compared: the MoE, a dense model with the MoE's total parameter count, and a
#: dense model with the MoE's active (per-token) parameter count.
VARIANTS = ("moe", "dense_total", "dense_active")

PROFILES: dict[str, dict[str, Any]] = {
    # The paper's configuration (MiniMind-MoE): needs a GPU and a real corpus from the hub.
    "paper": dict(
        corpus="hf:wikitext:wikitext-103-raw-v1",
        tokenizer="gpt2",
        max_chars=200_000_000,
        seq_len=512,
        n_layers=8,
        hidden=512,
        n_heads=8,
        n_routed=4,
        n_shared=1,
        expert_d_ff=1408,
        top_k=2,
        aux_alpha=0.01,
        lr=5e-4,
        weight_decay=0.1,
        batch_size=32,
        steps=20_000,
        eval_every=500,
        eval_batches=50,
        seeds=list(range(10)),
        variants=["moe", "dense_total", "dense_active"],
        torch_threads=0,
    ),
    # A tiny configuration on CPython's own documentation (pydoc_data.topics), a few minutes on CPU;
    # 5 seeds (the paper profile: 10, the paper's summary gives no seed count).
    "cpu": dict(
        corpus="pydoc",
        tokenizer="bytes",
        max_chars=1_200_000,
        seq_len=64,
        n_layers=2,
        hidden=64,
        n_heads=4,
        n_routed=4,
        n_shared=1,
        expert_d_ff=64,
        top_k=2,
        aux_alpha=0.01,
        lr=3e-3,
        weight_decay=0.1,
        batch_size=8,
        steps=1000,
        eval_every=100,
        eval_batches=16,
        seeds=[0, 1, 2, 3, 4],
        variants=["moe", "dense_total", "dense_active"],
        torch_threads=1,
    ),
    # A handful of steps: checks that the chapter executes.
    "smoke": dict(
        corpus="pydoc",
        tokenizer="bytes",
        max_chars=60_000,
        seq_len=16,
        n_layers=1,
        hidden=16,
        n_heads=2,
        n_routed=4,
        n_shared=1,
        expert_d_ff=8,
        top_k=2,
        aux_alpha=0.01,
        lr=3e-3,
        weight_decay=0.1,
        batch_size=4,
        steps=6,
        eval_every=3,
        eval_batches=2,
        seeds=[0],
        variants=["moe", "dense_total", "dense_active"],
        torch_threads=1,
    ),
}


# ---------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class LMConfig:
    """Configuration of a decoder-only transformer with a dense or an MoE feed-forward block.

    Parameters
    ----------
    vocab_size : int
        Number of token ids (256 for byte-level text).
    seq_len : int
        Maximum context length (learned positional embeddings of this length).
    n_layers, hidden, n_heads : int
        Depth, model width and attention heads; ``hidden`` must be divisible by ``n_heads``.
    ffn : {"dense", "moe"}
        Kind of feed-forward block in every layer.
    d_ff : int
        Inner width of the dense SwiGLU FFN (used when ``ffn == "dense"``).
    n_routed, n_shared, expert_d_ff : int
        MoE: number of routed experts, of always-active shared experts, and the inner width of each
        (SwiGLU) expert (used when ``ffn == "moe"``).
    top_k : int
        Routed experts per token, ``1 <= top_k <= n_routed``.
    aux_alpha : float
        Weight of the auxiliary load-balancing loss (>= 0).
    """

    vocab_size: int = 256
    seq_len: int = 64
    n_layers: int = 2
    hidden: int = 64
    n_heads: int = 4
    ffn: str = "moe"
    d_ff: int = 192
    n_routed: int = 4
    n_shared: int = 1
    expert_d_ff: int = 64
    top_k: int = 2
    aux_alpha: float = 0.01

    def __post_init__(self):
        v.check_int(self.vocab_size, "vocab_size", lower=2)
        v.check_int(self.seq_len, "seq_len", lower=1)
        v.check_int(self.n_layers, "n_layers", lower=1)
        v.check_int(self.hidden, "hidden", lower=1)
        v.check_int(self.n_heads, "n_heads", lower=1)
        if self.hidden % self.n_heads:
            raise ValueError(f"hidden must be divisible by n_heads, got hidden={self.hidden}, n_heads={self.n_heads}")
        v.check_choice(self.ffn, "ffn", ("dense", "moe"))
        v.check_int(self.d_ff, "d_ff", lower=1)
        v.check_int(self.n_routed, "n_routed", lower=1)
        v.check_int(self.n_shared, "n_shared", lower=0)
        v.check_int(self.expert_d_ff, "expert_d_ff", lower=1)
        v.check_int(self.top_k, "top_k", lower=1)
        if self.top_k > self.n_routed:
            raise ValueError(
                f"top_k must be <= n_routed (the number of routed experts), got "
                f"top_k={self.top_k}, n_routed={self.n_routed}"
            )
        v.check_scalar(self.aux_alpha, "aux_alpha", lower=0.0)

    def replace(self, **changes) -> LMConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """The fields as a plain (JSON-serialisable) dict."""
        return dataclasses.asdict(self)


def count_parameters(config: LMConfig) -> dict[str, int]:
    """Exact parameter counts of :class:`TinyLM` for ``config``, computed analytically.

    Returns
    -------
    dict
        ``total`` (all parameters), ``active`` (those used for one token: the routed experts not in
        the top-k are excluded), and the parts ``embedding`` (tokens + positions; the output head
        is tied), ``attention``, ``norms``, ``router``, ``ffn_total``, ``ffn_active``.
    """
    c = config
    h = c.hidden
    embedding = c.vocab_size * h + c.seq_len * h
    attention = c.n_layers * 4 * h * h
    norms = (2 * c.n_layers + 1) * h
    if c.ffn == "dense":
        router = 0
        ffn_total = ffn_active = c.n_layers * 3 * h * c.d_ff
    else:
        router = c.n_layers * h * c.n_routed
        expert = 3 * h * c.expert_d_ff
        ffn_total = c.n_layers * (c.n_routed + c.n_shared) * expert
        ffn_active = c.n_layers * (c.top_k + c.n_shared) * expert
    base = embedding + attention + norms + router
    return dict(
        total=base + ffn_total,
        active=base + ffn_active,
        embedding=embedding,
        attention=attention,
        norms=norms,
        router=router,
        ffn_total=ffn_total,
        ffn_active=ffn_active,
    )


def matched_dense(config: LMConfig, budget: str = "total") -> LMConfig:
    """The dense configuration whose parameter count matches the MoE's ``budget``.

    Parameters
    ----------
    config : LMConfig
        An MoE configuration (``ffn == "moe"``).
    budget : {"total", "active"}
        Match the MoE's total parameters or its active (per-token) parameters.

    Returns
    -------
    LMConfig
        Same attention/embedding sizes, ``ffn="dense"`` and the integer ``d_ff`` whose total count is
        nearest the target (the residual is below ``1.5 * hidden * n_layers`` parameters).
    """
    if config.ffn != "moe":
        raise ValueError(f"config.ffn must be 'moe' to match a dense model to it, got {config.ffn!r}")
    v.check_choice(budget, "budget", ("total", "active"))
    counts = count_parameters(config)
    target = counts[budget]
    dense0 = count_parameters(config.replace(ffn="dense", d_ff=1))
    per_unit = 3 * config.hidden * config.n_layers
    d_ff = max(1, int(round((target - (dense0["total"] - per_unit)) / per_unit)))
    return config.replace(ffn="dense", d_ff=d_ff)


def variant_configs(moe: LMConfig) -> dict[str, LMConfig]:
    """``{"moe": moe, "dense_total": ..., "dense_active": ...}`` (see :data:`VARIANTS`)."""
    return {"moe": moe, "dense_total": matched_dense(moe, "total"), "dense_active": matched_dense(moe, "active")}


# ---------------------------------------------------------------------------------- model
def load_balancing_loss(probs, topk_idx, n_experts: int, alpha: float):
    """Switch/MiniMind auxiliary load-balancing loss ``alpha * E * sum_i f_i P_i``.

    Parameters
    ----------
    probs : torch.Tensor, shape (T, E)
        Router softmax probabilities of ``T`` tokens.
    topk_idx : torch.Tensor, shape (T, k)
        Experts chosen for each token.
    n_experts : int
        ``E``.
    alpha : float
        Loss weight.

    Returns
    -------
    (aux, load) : (torch.Tensor scalar, torch.Tensor of shape (E,))
        ``load = f`` is the fraction of the ``T * k`` assignments that went to each expert and
        ``P`` the mean router probability.  With uniform router probabilities ``P_i = 1/E`` the loss
        equals ``alpha`` whatever ``f`` is; with sharp (one-hot) routing ``f = P`` and the loss is
        ``alpha * E * sum_i f_i^2 >= alpha``, with equality only for a balanced load.
    """
    import torch

    T, k = topk_idx.shape
    counts = torch.zeros(n_experts, dtype=probs.dtype, device=probs.device)
    counts.index_add_(0, topk_idx.reshape(-1), torch.ones(T * k, dtype=probs.dtype, device=probs.device))
    load = counts / (T * k)
    aux = alpha * n_experts * (load * probs.mean(0)).sum()
    return aux, load


def build_model(config: LMConfig, seed: int = 0):
    """A :class:`TinyLM` for ``config`` with weights drawn from ``torch.manual_seed(seed)``."""
    import torch

    if not isinstance(config, LMConfig):
        raise TypeError(f"config must be an LMConfig, got {type(config).__name__}")
    v.check_seed(seed)
    torch.manual_seed(seed)
    return _model_classes()["TinyLM"](config)


_CLASSES: dict[str, type] = {}


def _model_classes() -> dict[str, type]:
    """Define the torch modules on first use (keeps ``import torch`` out of module import)."""
    if _CLASSES:
        return _CLASSES
    import torch
    import torch.nn.functional as F
    from torch import nn

    class SwiGLU(nn.Module):
        """``down(silu(gate(x)) * up(x))``: 3 * hidden * width parameters, no biases."""

        def __init__(self, hidden: int, width: int):
            super().__init__()
            self.gate = nn.Linear(hidden, width, bias=False)
            self.up = nn.Linear(hidden, width, bias=False)
            self.down = nn.Linear(width, hidden, bias=False)

        def forward(self, x):
            return self.down(F.silu(self.gate(x)) * self.up(x))

    class TopKMoEFFN(nn.Module):  # trained top-k MoE (heavy._moe_layers.MoEFFN is the MoEfied one)
        """Top-k softmax-gated routed SwiGLU experts plus always-on shared experts."""

        def __init__(self, c: LMConfig):
            super().__init__()
            self.c = c
            self.router = nn.Linear(c.hidden, c.n_routed, bias=False)
            self.experts = nn.ModuleList(SwiGLU(c.hidden, c.expert_d_ff) for _ in range(c.n_routed))
            self.shared = nn.ModuleList(SwiGLU(c.hidden, c.expert_d_ff) for _ in range(c.n_shared))

        def forward(self, x):
            c = self.c
            shape = x.shape
            flat = x.reshape(-1, c.hidden)
            probs = F.softmax(self.router(flat), dim=-1)
            top_p, top_i = probs.topk(c.top_k, dim=-1)
            if c.top_k > 1:
                top_p = top_p / top_p.sum(-1, keepdim=True)
            out = torch.zeros_like(flat)
            for e, expert in enumerate(self.experts):
                tok, slot = (top_i == e).nonzero(as_tuple=True)
                if tok.numel():
                    out.index_add_(0, tok, expert(flat[tok]) * top_p[tok, slot, None])
            for expert in self.shared:
                out = out + expert(flat)
            aux, load = load_balancing_loss(probs, top_i, c.n_routed, c.aux_alpha)
            return out.reshape(shape), aux, load

    class DenseFFN(nn.Module):
        def __init__(self, c: LMConfig):
            super().__init__()
            self.mlp = SwiGLU(c.hidden, c.d_ff)

        def forward(self, x):
            return self.mlp(x), None, None

    class Block(nn.Module):
        def __init__(self, c: LMConfig):
            super().__init__()
            self.c = c
            self.norm1 = nn.RMSNorm(c.hidden, eps=1e-6)
            self.qkv = nn.Linear(c.hidden, 3 * c.hidden, bias=False)
            self.proj = nn.Linear(c.hidden, c.hidden, bias=False)
            self.norm2 = nn.RMSNorm(c.hidden, eps=1e-6)
            self.ffn = TopKMoEFFN(c) if c.ffn == "moe" else DenseFFN(c)

        def forward(self, x):
            B, T, H = x.shape
            nh = self.c.n_heads
            q, k, w = self.qkv(self.norm1(x)).split(H, dim=-1)
            q, k, w = (t.view(B, T, nh, H // nh).transpose(1, 2) for t in (q, k, w))
            att = F.scaled_dot_product_attention(q, k, w, is_causal=True)
            x = x + self.proj(att.transpose(1, 2).reshape(B, T, H))
            y, aux, load = self.ffn(self.norm2(x))
            return x + y, aux, load

    class TinyLM(nn.Module):
        """Decoder-only transformer: token + learned position embeddings, pre-norm blocks, tied head.

        ``forward(idx, targets=None)`` takes ``idx`` of shape (B, T) (int64, T <= seq_len) and returns
        ``(logits (B, T, V), ce_loss or None, aux_loss scalar, loads)`` where ``loads`` is a list of
        per-layer expert loads (shape (E,)) for MoE layers (empty for a dense model).
        """

        def __init__(self, c: LMConfig):
            super().__init__()
            self.config = c
            self.tok = nn.Embedding(c.vocab_size, c.hidden)
            self.pos = nn.Embedding(c.seq_len, c.hidden)
            self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layers))
            self.norm = nn.RMSNorm(c.hidden, eps=1e-6)
            self.apply(self._init)

        @staticmethod
        def _init(module):
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)

        def forward(self, idx, targets=None):
            T = idx.shape[1]
            if T > self.config.seq_len:
                raise ValueError(f"idx length must be <= seq_len={self.config.seq_len}, got {T}")
            x = self.tok(idx) + self.pos(torch.arange(T, device=idx.device))
            aux = x.new_zeros(())
            loads = []
            for block in self.blocks:
                x, a, load = block(x)
                if a is not None:
                    aux = aux + a
                    loads.append(load)
            logits = self.norm(x) @ self.tok.weight.T
            ce = None
            if targets is not None:
                ce = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
            return logits, ce, aux, loads

    _CLASSES.update(SwiGLU=SwiGLU, TopKMoEFFN=TopKMoEFFN, DenseFFN=DenseFFN, Block=Block, TinyLM=TinyLM)
    return _CLASSES


# ---------------------------------------------------------------------------------- data
def _pydoc_text() -> str:
    from .data import load_prose_text

    return load_prose_text()


def load_corpus(corpus: str, max_chars: int, *, load_dataset: Callable | None = None) -> str:
    """Return up to ``max_chars`` characters of English text.

    Parameters
    ----------
    corpus : str
        ``"pydoc"``: CPython's own documentation (``pydoc_data.topics``, ships with Python, offline);
        ``"hf:NAME[:CONFIG]"``: the ``text`` column of the train split of a hub dataset (paper profile;
        needs the network or a local cache).
    max_chars : int
        Length cap (characters).
    load_dataset : callable, optional
        Replacement for ``datasets.load_dataset`` (tests pass a fake; never downloads in tests).
    """
    max_chars = v.check_int(max_chars, "max_chars", lower=100)
    if not isinstance(corpus, str):
        raise TypeError(f"corpus must be a string, got {corpus!r}")
    if corpus == "pydoc":
        return _pydoc_text()[:max_chars]
    if corpus.startswith("hf:") and len(corpus) > 3:
        parts = corpus[3:].split(":")
        if load_dataset is None:
            from datasets import load_dataset
        ds = load_dataset(*parts, split="train")
        chunks, total = [], 0
        for line in ds["text"]:
            chunks.append(line)
            total += len(line)
            if total >= max_chars:
                break
        return "".join(chunks)[:max_chars]
    raise ValueError(f"corpus must be 'pydoc' or 'hf:NAME[:CONFIG]', got {corpus!r}")


#: Characters per tokenizer call in :func:`encode_text` (pieces end at a newline when possible).
_TOKENIZE_CHUNK = 1_000_000


def encode_text(text: str, tokenizer: str = "bytes") -> tuple[np.ndarray, int]:
    """Token ids of ``text`` and the vocabulary size.

    ``tokenizer="bytes"`` gives UTF-8 bytes (vocabulary 256, offline); any other value is the name
    or path of a Hugging Face tokenizer (paper profile).
    """
    if not isinstance(text, str) or not text:
        raise ValueError("text must be a non-empty string")
    if tokenizer == "bytes":
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64), 256
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer)
    chunk = _TOKENIZE_CHUNK  # tokenize in pieces cut at newlines (paper corpora are hundreds of MB)
    pieces, start = [], 0
    while start < len(text):
        end = len(text) if start + chunk >= len(text) else text.rfind("\n", start, start + chunk) + 1 or start + chunk
        pieces.append(np.asarray(tok(text[start:end], add_special_tokens=False)["input_ids"], dtype=np.int64))
        start = end
    ids = np.concatenate(pieces)
    return ids, int(len(tok))


# ---------------------------------------------------------------------------------- training
def _windows(tokens: np.ndarray, starts: np.ndarray, seq_len: int):
    import torch

    idx = starts[:, None] + np.arange(seq_len + 1)[None, :]
    chunk = torch.from_numpy(tokens[idx])
    return chunk[:, :-1].contiguous(), chunk[:, 1:].contiguous()


def train_lm(
    config: LMConfig,
    train_tokens: np.ndarray,
    val_tokens: np.ndarray,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    weight_decay: float = 0.1,
    eval_every: int = 25,
    eval_batches: int = 8,
    seed: int = 0,
    torch_threads: int = 0,
    device=None,
    progress: bool = False,
    desc: str = "steps",
) -> dict:
    """Train :class:`TinyLM` with AdamW and record its curves.

    The batch sequence depends only on ``seed`` (and the data), not on the model, so the three
    variants of one seed see exactly the same tokens; validation windows are fixed and evenly spaced.
    Learning rate: linear warm-up over ``min(50, steps // 10)`` steps, then cosine decay to 10 %.

    Parameters
    ----------
    config : LMConfig
    train_tokens, val_tokens : np.ndarray of int, shape (N,)
        Token streams (ids < ``config.vocab_size``); each longer than ``seq_len + 1``.
    steps, batch_size : int
        Optimiser steps and sequences per step; tokens per step = ``batch_size * seq_len``.
    lr, weight_decay : float
        AdamW settings (betas (0.9, 0.95), gradient clipping at norm 1).
    eval_every, eval_batches : int
        Evaluate every ``eval_every`` steps (and at the last step) on ``eval_batches`` fixed batches.
    seed : int
        Seeds the weights and the batch sequence; same seed and threads give bit-identical runs.
    torch_threads : int
        ``torch.set_num_threads`` value (0 leaves torch's setting unchanged).
    device : torch.device or str, optional
        Where to train (default CPU; the ``paper`` profile uses
        :func:`moe_companion.heavy.device.select_device`).  Training is float32.
    progress : bool
        A tqdm bar over the optimiser steps (label ``desc``).

    Returns
    -------
    dict (JSON-serialisable)
        ``steps``, ``tokens`` (lists at each evaluation), ``train_loss`` (mean cross-entropy in nats per
        token over the steps since the previous evaluation), ``val_loss``, ``aux_loss``, ``load``
        (per evaluation, per MoE layer, fraction of assignments per routed expert, averaged over the
        steps since the previous evaluation; empty lists for dense models), ``val_loss_windows``
        (the last evaluation's loss of each of the ``eval_batches * batch_size`` fixed validation
        windows, the same windows for every model), ``params`` (from
        :func:`count_parameters`), ``seconds`` (wall time) and ``config``.
    """
    import torch

    if not isinstance(config, LMConfig):
        raise TypeError(f"config must be an LMConfig, got {type(config).__name__}")
    steps = v.check_int(steps, "steps", lower=1)
    batch_size = v.check_int(batch_size, "batch_size", lower=1)
    lr = v.check_scalar(lr, "lr", lower=0.0, lower_inclusive=False)
    weight_decay = v.check_scalar(weight_decay, "weight_decay", lower=0.0)
    eval_every = v.check_int(eval_every, "eval_every", lower=1)
    eval_batches = v.check_int(eval_batches, "eval_batches", lower=1)
    seed = v.check_seed(seed)
    torch_threads = v.check_int(torch_threads, "torch_threads", lower=0)
    tr = np.asarray(train_tokens, dtype=np.int64)
    va = np.asarray(val_tokens, dtype=np.int64)
    for name, arr in (("train_tokens", tr), ("val_tokens", va)):
        if arr.ndim != 1 or arr.size < config.seq_len + 2:
            raise ValueError(
                f"{name} must be 1-D with more than seq_len + 1 = {config.seq_len + 1} tokens, got shape {arr.shape}"
            )
        if arr.min() < 0 or arr.max() >= config.vocab_size:
            raise ValueError(
                f"{name} must hold ids in [0, vocab_size={config.vocab_size}), got range [{arr.min()}, {arr.max()}]"
            )
    if torch_threads:
        torch.set_num_threads(torch_threads)

    T = config.seq_len
    rng = np.random.default_rng(seed)
    device = torch.device(device) if device is not None else torch.device("cpu")
    model = build_model(config, seed).to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
        betas=(0.9, 0.95),
    )
    warmup = min(50, steps // 10)

    def lr_at(step: int) -> float:
        if step < warmup:
            return lr * (step + 1) / warmup
        frac = (step - warmup) / max(1, steps - warmup)
        return lr * (0.1 + 0.45 * (1.0 + math.cos(math.pi * frac)))

    n_val = eval_batches * batch_size
    val_starts = np.linspace(0, va.size - T - 1, n_val).astype(np.int64)
    xs_val, ys_val = (t.to(device) for t in _windows(va, val_starts, T))

    def evaluate() -> np.ndarray:
        """Mean cross-entropy of every validation window (shape (n_val,)); their mean is the loss."""
        model.eval()
        out = []
        with torch.no_grad():
            for b in range(eval_batches):
                sl = slice(b * batch_size, (b + 1) * batch_size)
                logits = model(xs_val[sl])[0]
                ce = torch.nn.functional.cross_entropy(
                    logits.reshape(-1, logits.size(-1)), ys_val[sl].reshape(-1), reduction="none"
                )
                out.append(ce.view(logits.shape[0], -1).mean(1).double().cpu().numpy())
        model.train()
        return np.concatenate(out)

    out: dict[str, Any] = dict(steps=[], tokens=[], train_loss=[], val_loss=[], aux_loss=[], load=[])
    acc_ce, acc_aux, acc_load, acc_n = 0.0, 0.0, None, 0
    t0 = time.perf_counter()
    model.train()
    from tqdm import (
        tqdm,  # text bars on stderr (widget bars would be dead on the static site)
    )

    for step in tqdm(range(steps), desc=desc, disable=not progress, mininterval=2.0, leave=False):
        starts = rng.integers(0, tr.size - T - 1, size=batch_size)
        x, y = (t.to(device) for t in _windows(tr, starts, T))
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        _, ce, aux, loads = model(x, y)
        loss = ce + aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        acc_ce += float(ce.detach())
        acc_aux += float(aux.detach())
        if loads:
            stacked = torch.stack([ld.detach() for ld in loads]).cpu().numpy().astype(np.float64)
            acc_load = stacked if acc_load is None else acc_load + stacked
        acc_n += 1
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            out["steps"].append(step + 1)
            out["tokens"].append((step + 1) * batch_size * T)
            out["train_loss"].append(acc_ce / acc_n)
            out["aux_loss"].append(acc_aux / acc_n)
            out["load"].append([] if acc_load is None else (acc_load / acc_n).tolist())
            windows = evaluate()
            out["val_loss"].append(float(windows.mean()))
            acc_ce, acc_aux, acc_load, acc_n = 0.0, 0.0, None, 0
    out["val_loss_windows"] = windows.tolist()  # at the last evaluation: for paired bootstraps
    out["seconds"] = time.perf_counter() - t0
    out["params"] = count_parameters(config)
    out["config"] = config.to_dict()
    return out


# ---------------------------------------------------------------------------------- experiment
def check_params(params: Mapping[str, Any]) -> dict:
    """Validate a profile's parameters (the runner calls this before any model is loaded)."""
    p = v.check_keys(params, PROFILES["cpu"])
    seeds = p["seeds"]
    if not isinstance(seeds, (list, tuple)) or not seeds:
        raise ValueError(f"seeds must be a non-empty list of integers, got {seeds!r}")
    p["seeds"] = [v.check_seed(s, "seeds") for s in seeds]
    variants = p["variants"]
    if not isinstance(variants, (list, tuple)) or not variants:
        raise ValueError(f"variants must be a non-empty list, got {variants!r}")
    p["variants"] = [v.check_choice(x, "variants", VARIANTS) for x in variants]
    v.check_int(p["max_chars"], "max_chars", lower=100)
    for name in ("steps", "batch_size", "eval_every", "eval_batches"):
        v.check_int(p[name], name, lower=1)
    v.check_scalar(p["lr"], "lr", lower=0.0, lower_inclusive=False)
    v.check_scalar(p["weight_decay"], "weight_decay", lower=0.0)
    v.check_int(p["torch_threads"], "torch_threads", lower=0)
    if not isinstance(p["tokenizer"], str) or not p["tokenizer"]:
        raise ValueError(f"tokenizer must be 'bytes' or a tokenizer name, got {p['tokenizer']!r}")
    moe_config_from(p, 256)  # architecture errors (top_k > n_routed, hidden % n_heads) surface here
    return p


def moe_config_from(params: Mapping[str, Any], vocab_size: int) -> LMConfig:
    """The MoE :class:`LMConfig` described by a profile's parameters."""
    return LMConfig(
        vocab_size=vocab_size,
        seq_len=params["seq_len"],
        n_layers=params["n_layers"],
        hidden=params["hidden"],
        n_heads=params["n_heads"],
        ffn="moe",
        n_routed=params["n_routed"],
        n_shared=params["n_shared"],
        expert_d_ff=params["expert_d_ff"],
        top_k=params["top_k"],
        aux_alpha=params["aux_alpha"],
    )


_COMMON = (
    "corpus",
    "tokenizer",
    "max_chars",
    "lr",
    "weight_decay",
    "batch_size",
    "steps",
    "eval_every",
    "eval_batches",
)


def _vocab(p: dict, ctx) -> int:
    from .registry import TOKENIZERS

    if p["tokenizer"] in TOKENIZERS:
        return TOKENIZERS[p["tokenizer"]]["vocab"]
    return _tokens(p, ctx)[2]


def _tokens(p: dict, ctx):
    def build():
        text = load_corpus(p["corpus"], p["max_chars"], load_dataset=ctx.option("load_dataset"))
        tokens, vocab = encode_text(text, p["tokenizer"])
        split = int(0.9 * tokens.size)
        return tokens[:split], tokens[split:], vocab

    return ctx.get("tokens", build)


def _configs(p: dict, ctx) -> dict:
    return variant_configs(moe_config_from(p, _vocab(p, ctx)))


def _units(p: dict, ctx) -> list[dict]:
    configs = _configs(p, ctx)
    return [_unit_key(p, name, seed, configs[name]) for seed in p["seeds"] for name in p["variants"]]


def _run_unit(p: dict, key: dict, ctx) -> dict:
    train_tokens, val_tokens, _ = _tokens(p, ctx)
    device = ctx.option("device")
    if device is None:
        from .device import select_device

        device = ctx.get("device", lambda: select_device(verbose=ctx.progress)[0])
    return train_lm(
        LMConfig(**key["config"]),
        train_tokens,
        val_tokens,
        steps=p["steps"],
        batch_size=p["batch_size"],
        lr=p["lr"],
        weight_decay=p["weight_decay"],
        eval_every=p["eval_every"],
        eval_batches=p["eval_batches"],
        seed=key["seed"],
        torch_threads=p["torch_threads"],
        device=device,
        progress=ctx.progress,
        desc=f"{key['variant']} seed {key['seed']}",
    )


def _assemble(p: dict, pairs, ctx) -> dict:
    configs = _configs(p, ctx)
    train_tokens, val_tokens, _ = _tokens(p, ctx)
    runs: dict[str, list] = {name: [] for name in p["variants"]}
    for key, val in pairs:
        runs[key["variant"]].append(val)
    return {
        "configs": {k: c.to_dict() for k, c in configs.items()},
        "params": {k: count_parameters(c) for k, c in configs.items()},
        "runs": runs,
        "n_train_tokens": int(train_tokens.size),
        "n_val_tokens": int(val_tokens.size),
    }


def _describe(key: dict, val: dict) -> str:
    return f"val loss {val['val_loss'][-1]:.4f}"


def run_experiment(params: Mapping[str, Any], store=None, *, progress: bool = True, ctx=None, **options):
    """Train every (variant, seed) unit (the heavy-experiment contract).

    Parameters
    ----------
    params : mapping
        One of :data:`PROFILES` (possibly with overrides).
    store : ResultStore or path, optional
        Finished units are read back instead of recomputed.
    options
        ``load_dataset`` (passed to :func:`load_corpus`; tests), ``device`` (default
        :func:`moe_companion.heavy.device.select_device`).

    Returns
    -------
    :class:`~moe_companion.heavy.contract.ExperimentResult`; ``data`` is
    ``{"configs", "params", "runs": {variant: [run per seed]}, "n_train_tokens", "n_val_tokens"}``.
    """
    from .contract import run_experiment as run

    return run(EXPERIMENT, params, store, progress=progress, ctx=ctx, **options)


def _experiment():
    from .contract import Experiment

    return Experiment("moe_pretraining", check_params, _units, _run_unit, _assemble, describe=_describe)


#: The heavy-experiment contract of this chapter (see :mod:`moe_companion.heavy.contract`).
EXPERIMENT = _experiment()


def _unit_key(p: Mapping[str, Any], name: str, seed: int, cfg: LMConfig) -> dict:
    common = {k: p[k] for k in _COMMON}
    return {"experiment": "moe_pretraining", "variant": name, "seed": seed, "config": cfg.to_dict(), **common}


def load_result(params: Mapping[str, Any], results_path, *, vocab_size: int | None = None) -> dict:
    """The result of :func:`run_experiment` read from the result store, training nothing.

    ``vocab_size`` is needed only for a non-byte tokenizer (256 for ``"bytes"``).  Raises
    ``LookupError`` naming the first missing unit (or one stored by an older version of this module,
    without per-window validation losses).
    """
    from .store import ResultStore

    p = check_params(params)
    if vocab_size is None:
        if p["tokenizer"] != "bytes":
            raise ValueError(f"vocab_size is needed for tokenizer {p['tokenizer']!r}")
        vocab_size = 256
    configs = variant_configs(moe_config_from(p, vocab_size))
    store = ResultStore(results_path)
    runs: dict[str, list] = {name: [] for name in p["variants"]}
    for seed in p["seeds"]:
        for name in p["variants"]:
            val = store.get(_unit_key(p, name, seed, configs[name]))
            if val is None or "val_loss_windows" not in val:
                raise LookupError(
                    f"{results_path} lacks the unit {name}, seed {seed} for these parameters; run "
                    "`python -m moe_companion heavy run moe_pretraining`"
                )
            runs[name].append(val)
    return {
        "configs": {k: c.to_dict() for k, c in configs.items()},
        "params": {k: count_parameters(c) for k, c in configs.items()},
        "runs": runs,
    }


def summarize(result: Mapping[str, Any]) -> list[dict]:
    """One row per variant: parameters, final train/val loss (mean and s.d. over seeds), time."""
    rows = []
    for name, runs in result["runs"].items():
        val = np.array([r["val_loss"][-1] for r in runs])
        trn = np.array([r["train_loss"][-1] for r in runs])
        best = np.array([min(r["val_loss"]) for r in runs])
        pc = result["params"][name]
        rows.append(
            dict(
                variant=name,
                total_params=pc["total"],
                active_params=pc["active"],
                router_params=pc["router"],
                final_train_loss=float(trn.mean()),
                final_val_loss=float(val.mean()),
                val_loss_sd=float(val.std(ddof=1)) if val.size > 1 else 0.0,
                best_val_loss=float(best.mean()),
                seconds=float(np.mean([r["seconds"] for r in runs])),
                seeds=len(runs),
            )
        )
    return rows


def compare(
    result: Mapping[str, Any], reference: str, *, other: str = "moe", n_boot: int = 2000, seed: int = 0
) -> dict:
    """Final validation loss of ``reference`` minus that of ``other`` (> 0: ``other`` is better).

    Paired: every variant of one seed saw the same batches and is scored on the same validation
    windows.  The 95 % interval comes from a bootstrap that resamples seeds and validation windows
    (:func:`moe_companion.heavy.stats.crossed_bootstrap`).

    Returns
    -------
    dict with ``diff``, ``lo``, ``hi`` (nats per token), ``ref_loss``, ``other_loss``, ``n_seeds``,
    ``n_windows``.
    """
    from .stats import crossed_bootstrap

    runs = result["runs"]
    for name in (reference, other):
        if name not in runs:
            raise ValueError(f"variant must be one of the variants run {sorted(runs)}, got {name!r}")
    a = np.array([r["val_loss_windows"] for r in runs[reference]])
    b = np.array([r["val_loss_windows"] for r in runs[other]])
    d, lo, hi = crossed_bootstrap([a, b], lambda x, y: x - y, n_boot=n_boot, seed=seed)
    return {
        "diff": d,
        "lo": lo,
        "hi": hi,
        "ref_loss": float(a.mean()),
        "other_loss": float(b.mean()),
        "n_seeds": int(a.shape[0]),
        "n_windows": int(a.shape[1]),
    }


def parameter_table(result: Mapping[str, Any]) -> list[dict]:
    """Per variant: the FFN, total / active / router parameters and their ratios to the MoE's.

    The router's ``hidden * n_routed`` weights per layer are counted in the MoE's total and active
    parameters, so the iso-total dense model matches the MoE *including* its router.
    """
    moe = result["params"]["moe"]
    rows = []
    for name, pc in result["params"].items():
        cfg = result["configs"][name]
        ffn = (
            f"{cfg['n_routed']} routed + {cfg['n_shared']} shared experts of width {cfg['expert_d_ff']}, "
            f"top-{cfg['top_k']}"
            if cfg["ffn"] == "moe"
            else f"dense SwiGLU of width {cfg['d_ff']}"
        )
        rows.append(
            {
                "variant": name,
                "FFN": ffn,
                "total params": pc["total"],
                "active params": pc["active"],
                "router params": pc["router"],
                "FFN params (total / active)": f"{pc['ffn_total']} / {pc['ffn_active']}",
                "total / MoE total": round(pc["total"] / moe["total"], 3),
                "active / MoE active": round(pc["active"] / moe["active"], 3),
            }
        )
    return rows


def active_ffn_share(n_routed: int, n_shared: int, top_k: int) -> float:
    """Share of an equal-width MoE's FFN parameters active per token: ``(top_k + n_shared) / (n_routed + n_shared)``.

    Relative to a dense FFN of the MoE's total FFN size (iso-total) this is the active fraction, so
    ``1 - share`` is the reduction in active FFN parameters.
    """
    n_routed = v.check_int(n_routed, "n_routed", lower=1)
    n_shared = v.check_int(n_shared, "n_shared", lower=0)
    top_k = v.check_int(top_k, "top_k", lower=1, upper=n_routed)
    return (top_k + n_shared) / (n_routed + n_shared)


def load_imbalance(result: Mapping[str, Any]) -> dict:
    """Max / min expert load at the first and last evaluation (mean over seeds and layers)."""
    loads = np.array([r["load"] for r in result["runs"]["moe"]])  # (seeds, evals, layers, E)
    ratio = loads.max(-1) / np.maximum(loads.min(-1), 1e-12)
    return {
        "first": float(ratio[:, 0].mean()),
        "last": float(ratio[:, -1].mean()),
        "min_share_last": float(loads[:, -1].min()),
        "max_share_last": float(loads[:, -1].max()),
    }
