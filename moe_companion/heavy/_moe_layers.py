"""PyTorch side of MoEfication: the MoEfied FFN, routers and in-place model surgery.

Imported lazily by :mod:`moe_companion.heavy.moefication` (so that validating parameters never
imports torch).  See that module for the method and the notation.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from .. import _validate as v
from .ffn import FFNBlock, find_ffns

__all__ = [
    "ROUTERS",
    "MLPRouter",
    "MoEFFN",
    "collect_ffn_inputs",
    "expert_labels_of",
    "expert_scores",
    "moefiable_ffns",
    "moefy",
    "set_k",
    "topk_experts",
    "train_mlp_router",
]

#: Router names: the "ground truth" (top-K by the sum of each expert's post-activation values,
#: which needs the full input projection) and MoEfication's learned MLP router.
ROUTERS = ("ground_truth", "mlp")


def expert_scores(h: torch.Tensor, n_experts: int) -> torch.Tensor:
    """Sum of each expert's post-activation values.

    Parameters
    ----------
    h : tensor, shape (T, d_ff)
        Post-activation values with the neurons already ordered expert by expert
        (expert ``e`` owns columns ``e*s:(e+1)*s``, ``s = d_ff / n_experts``).
    n_experts : int

    Returns
    -------
    tensor, shape (T, n_experts)
    """
    return h.view(h.shape[0], n_experts, -1).sum(-1)


def topk_experts(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` largest scores per row, shape (T, k) (ties: lowest index first).

    Raises ``ValueError`` naming ``k`` unless ``1 <= k <= E`` (the number of experts, ``scores.shape[-1]``).
    """
    n_experts = scores.shape[-1]
    k = v.check_int(k, "k", lower=1)
    if k > n_experts:
        raise ValueError(f"k must be <= {n_experts} (the number of experts), got {k}")
    return torch.topk(scores, k, dim=-1, sorted=False).indices


class MLPRouter(nn.Module):
    """MoEfication's learned router: ``W2 tanh(W1 x / ||x||)`` with ``W1: d -> E``, ``W2: E -> E``.

    ``W1`` starts at the expert centroids of the L2-normalised ``W_in`` rows and ``W2`` at the
    identity, as in Zhang et al. (2021); :func:`train_mlp_router` fits it to predict the
    ground-truth expert scores.
    """

    def __init__(self, centroids: torch.Tensor):
        super().__init__()
        e, d = centroids.shape
        self.w1 = nn.Linear(d, e, bias=False)
        self.w2 = nn.Linear(e, e, bias=False)
        with torch.no_grad():
            self.w1.weight.copy_(centroids)
            self.w2.weight.copy_(torch.eye(e))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (T, d) -> (T, E)
        x = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return self.w2(torch.tanh(self.w1(x)))


class MoEFFN(nn.Module):
    """A feed-forward block split into ``E`` equal experts, ``K`` of which run per token.

    ``y = sum_{e in S(x)} W_out[:, e] act(W_in[e] x + b_in[e]) + b_out`` where expert ``e`` is a
    block of ``s = d_ff / E`` neurons and ``S(x)`` the ``K`` experts chosen by the router.  With
    ``K = E`` it is the dense FFN.

    Parameters
    ----------
    w_in : tensor, shape (d_ff, d)
    b_in : tensor, shape (d_ff,) or None
    w_out : tensor, shape (d, d_ff)
    b_out : tensor, shape (d,) or None
    activation : callable
        Elementwise activation (ReLU for T5, GELU for BERT).
    labels : array of int, shape (d_ff,)
        Expert of each neuron; every expert must own exactly ``d_ff / E`` neurons.
    k : int
        Active experts per token, ``1 <= k <= E``.
    router : {"ground_truth", "mlp"}
        ``"ground_truth"`` computes all post-activation values, keeps the top-``k`` experts by their
        sum and zeroes the others (as MoEfication's evaluation scripts); ``"mlp"`` selects with
        :attr:`mlp_router` and computes only the selected experts (the fast grouped kernel).

    Notes
    -----
    The grouped kernel (:meth:`grouped_forward`) sorts the (token, expert) pairs by expert and,
    per expert, gathers its tokens into a small preallocated buffer, runs the two matrix products
    and scatter-adds the result (``index_add_``).
    """

    def __init__(self, w_in, b_in, w_out, b_out, activation: Callable, labels, k: int, router: str = "ground_truth"):
        super().__init__()
        labels = np.asarray(labels)
        d_ff, d = w_in.shape
        if labels.shape != (d_ff,):
            raise ValueError(f"labels must have shape ({d_ff},), got {labels.shape}")
        n_experts = int(labels.max()) + 1
        counts = np.bincount(labels, minlength=n_experts)
        if np.any(counts != counts[0]):
            raise ValueError(f"labels must give every expert the same size, got sizes {sorted(set(counts.tolist()))}")
        self.n_experts = n_experts
        self.expert_size = d_ff // n_experts
        self.d = d
        perm = torch.as_tensor(np.argsort(labels, kind="stable"))
        self.register_buffer("perm", perm, persistent=False)
        self.register_buffer("labels", torch.as_tensor(labels), persistent=False)
        w_in_p = w_in.detach()[perm].contiguous()  # (d_ff, d), expert-major
        w_out_p = w_out.detach()[:, perm].contiguous()  # (d, d_ff)
        self.w_in = nn.Parameter(w_in_p, requires_grad=False)
        self.w_out = nn.Parameter(w_out_p, requires_grad=False)
        self.b_in = None if b_in is None else nn.Parameter(b_in.detach()[perm].clone(), requires_grad=False)
        self.b_out = None if b_out is None else nn.Parameter(b_out.detach().clone(), requires_grad=False)
        s, e = self.expert_size, n_experts
        # per-expert views for the grouped kernel: (E, d, s) and (E, s, d)
        self.register_buffer("w_in_e", w_in_p.view(e, s, d).transpose(1, 2).contiguous(), persistent=False)
        self.register_buffer("w_out_e", w_out_p.t().contiguous().view(e, s, d), persistent=False)
        self.activation = activation
        self.mlp_router: MLPRouter | None = None
        self.router = v.check_choice(router, "router", ROUTERS)
        self.k = k
        self._buffers_cache: dict = {}
        #: rows per chunk of the grouped kernel (keeps the gathered block in L2 cache)
        self.chunk_rows = 128
        #: kernel of the MLP-router path: "grouped" (only the selected experts), "masked" (dense
        #: product, unselected experts zeroed) or "auto" (grouped iff K <= E/2: on a 2-core CPU
        #: the grouped kernel loses to the dense product above about K = E/2, see bench/)
        self.kernel = "auto"
        self.last_selection: torch.Tensor | None = None

    # --------------------------------------------------------------------------- properties
    @property
    def k(self) -> int:
        return self._k

    @k.setter
    def k(self, value: int) -> None:
        self._k = v.check_int(value, "k", lower=1, upper=self.n_experts)

    def centroids(self) -> torch.Tensor:
        """Mean of each expert's L2-normalised ``W_in`` rows, shape (E, d)."""
        w = self.w_in / self.w_in.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return w.view(self.n_experts, self.expert_size, self.d).mean(1)

    # --------------------------------------------------------------------------- forward
    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """All post-activation values in expert-major order, shape (T, d_ff)."""
        z = x @ self.w_in.t()
        if self.b_in is not None:
            z = z + self.b_in
        return self.activation(z)

    def _out(self, h: torch.Tensor) -> torch.Tensor:
        y = h @ self.w_out.t()
        return y if self.b_out is None else y + self.b_out

    def select(self, x: torch.Tensor) -> torch.Tensor:
        """Experts chosen for each token, shape (T, k)."""
        if self.router == "mlp":
            if self.mlp_router is None:
                raise ValueError("router='mlp' needs a trained mlp_router (see train_mlp_router)")
            return topk_experts(self.mlp_router(x), self.k)
        return topk_experts(expert_scores(self.hidden(x), self.n_experts), self.k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, self.d)
        if self.k == self.n_experts:
            y = self._out(self.hidden(x2))
        elif self.router == "ground_truth":
            h = self.hidden(x2)
            idx = topk_experts(expert_scores(h, self.n_experts), self.k)
            self.last_selection = idx
            mask = torch.zeros(h.shape[0], self.n_experts, dtype=h.dtype, device=h.device)
            mask.scatter_(1, idx, 1.0)
            y = self._out((h.view(h.shape[0], self.n_experts, -1) * mask.unsqueeze(-1)).view_as(h))
        else:
            idx = self.select(x2)
            self.last_selection = idx
            grouped = self.kernel == "grouped" or (self.kernel == "auto" and 2 * self.k <= self.n_experts)
            y = self.grouped_forward(x2, idx) if grouped else self.masked_forward(x2, idx)
        return y.view(*shape[:-1], y.shape[-1])

    def masked_forward(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Reference: the dense FFN with all neurons outside the experts ``idx`` (T, k) zeroed."""
        h = self.hidden(x)
        mask = torch.zeros(h.shape[0], self.n_experts, dtype=h.dtype, device=h.device)
        mask.scatter_(1, idx, 1.0)
        return self._out((h.view(h.shape[0], self.n_experts, -1) * mask.unsqueeze(-1)).view_as(h))

    def _buffer(self, name: str, rows: int, cols: int, like: torch.Tensor) -> torch.Tensor:
        buf = self._buffers_cache.get(name)
        if buf is None or buf.shape[0] < rows or buf.shape[1] != cols or buf.dtype != like.dtype:
            buf = torch.empty(max(rows, 1), cols, dtype=like.dtype, device=like.device)
            self._buffers_cache[name] = buf
        return buf[:rows]

    def grouped_forward(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Compute only the selected experts: ``x`` (T, d), ``idx`` (T, k) -> (T, d).

        Token grouping: the (token, expert) pairs are sorted by expert; then, expert by expert,
        its tokens are gathered into a small preallocated buffer that stays in cache, the two
        matrix products run on it, and the result is scatter-added into the output.  No
        (T*k, d) intermediate is ever written to memory.
        """
        t, k = idx.shape
        flat = idx.reshape(-1)
        order = torch.argsort(flat, stable=True)
        tok = torch.div(order, k, rounding_mode="floor")
        counts = torch.bincount(flat, minlength=self.n_experts).tolist()
        cap = min(max(counts), self.chunk_rows)
        xb = self._buffer("xb", cap, self.d, x)
        hb = self._buffer("hb", cap, self.expert_size, x)
        yb = self._buffer("yb", cap, self.d, x)
        out = (
            torch.zeros(t, self.d, dtype=x.dtype, device=x.device)
            if self.b_out is None
            else self.b_out.expand(t, self.d).clone()
        )
        relu = self.activation in (torch.relu, torch.nn.functional.relu) or isinstance(self.activation, nn.ReLU)
        w_in_l, b_in_l, w_out_l = self._expert_views()
        index_select, mm, addmm, act = torch.index_select, torch.mm, torch.addmm, self.activation
        for n_e, tok_all, w1, b1, w2 in zip(counts, torch.split(tok, counts), w_in_l, b_in_l, w_out_l):
            for tok_e in (tok_all,) if n_e <= cap else torch.split(tok_all, cap):
                c = tok_e.shape[0]
                if c == 0:
                    continue
                xc, hc, yc = xb[:c], hb[:c], yb[:c]
                index_select(x, 0, tok_e, out=xc)
                if b1 is None:
                    mm(xc, w1, out=hc)
                else:
                    addmm(b1, xc, w1, out=hc)
                mm(hc.relu_() if relu else act(hc), w2, out=yc)
                out.index_add_(0, tok_e, yc)
        return out

    def _expert_views(self):
        """Per-expert weight views (lists), cached: W_in_e^T (d, s), b_in_e (s,), W_out_e^T (s, d)."""
        key = (self.w_in_e.data_ptr(), self.w_in_e.device)
        if getattr(self, "_views_key", None) != key:
            s = self.expert_size
            b = (
                [None] * self.n_experts
                if self.b_in is None
                else [self.b_in[e * s : (e + 1) * s] for e in range(self.n_experts)]
            )
            self._views = (list(self.w_in_e.unbind(0)), b, list(self.w_out_e.unbind(0)))
            self._views_key = key
        return self._views


# ------------------------------------------------------------------------------ model surgery
def moefiable_ffns(model: nn.Module) -> list[FFNBlock]:
    """The FFN blocks of ``model`` (:func:`~moe_companion.heavy.ffn.find_ffns`), refusing those MoEfication can't split.

    Supported: the ReLU T5 FFN (``kind = "t5"``: ``DenseReluDense`` is replaced) and the BERT-style one
    (``kind = "bert"``: ``intermediate`` becomes the MoEfied FFN, including the output projection, and
    ``output.dense`` the identity).  Raises ``ValueError`` naming ``model`` for a gated FFN (gated T5,
    Llama) and for a block that is already MoEfied.
    """
    blocks = find_ffns(model)
    for b in blocks:
        if b.kind == "t5-gated":
            raise ValueError(
                f"model has a gated T5 FFN at {b.path!r} (wi_0/wi_1); only the ReLU T5DenseActDense (t5-base) is supported"
            )
        if b.kind == "llama":
            raise ValueError(
                f"model has a gated Llama-style MLP at {b.path!r}; only T5 (ReLU) and BERT-style FFNs can be MoEfied"
            )
        if b.moefied:
            raise ValueError(f"model's FFN {b.path!r} is already MoEfied")
    return blocks


def moefy(model: nn.Module, labels: dict, k: int, router: str = "ground_truth") -> list[MoEFFN]:
    """Replace every FFN of ``model`` in place by a :class:`MoEFFN` (returns them, in order).

    Parameters
    ----------
    model : T5 (ReLU) or BERT-style transformers model
        See :func:`moefiable_ffns`.
    labels : dict path -> array of int, shape (d_ff,)
        Expert of each neuron per FFN, keyed by the block paths (``FFNBlock.path``) of
        :func:`~moe_companion.heavy.ffn.find_ffns` (see :func:`moe_companion.heavy.moefication.cluster_model`).
    k : int
        Active experts per token.
    router : {"ground_truth", "mlp"}
    """
    router = v.check_choice(router, "router", ROUTERS)
    blocks = moefiable_ffns(model)
    missing = [b.path for b in blocks if b.path not in labels]
    if missing:
        raise ValueError(f"labels has no entry for FFN(s) {missing[:3]}")
    moes = []
    for b in blocks:
        moe = MoEFFN(b.up.weight, b.up.bias, b.down.weight, b.down.bias, b.activation, labels[b.path], k, router)
        if b.kind == "t5":
            b.parent.DenseReluDense = moe
        else:
            b.parent.intermediate = moe
            b.parent.output.dense = nn.Identity()
        moes.append(moe)
    return moes


def _moes(model: nn.Module) -> list[MoEFFN]:
    return [m for m in model.modules() if isinstance(m, MoEFFN)]


def set_k(model: nn.Module, k: int) -> None:
    """Set the number of active experts of every MoEfied FFN (``k = E``: the dense model)."""
    for m in _moes(model):
        m.k = k


def expert_labels_of(model: nn.Module) -> dict:
    """``{block path: labels}`` of a MoEfied model (raises ``ValueError`` naming ``model`` if a block is dense)."""
    blocks = find_ffns(model)
    dense = [b.path for b in blocks if not b.moefied]
    if dense:
        raise ValueError(f"model must be MoEfied, but its FFN(s) {dense[:3]} are dense")
    return {b.path: b.moe.labels.numpy() for b in blocks}


@torch.no_grad()
def collect_ffn_inputs(model: nn.Module, run: Callable[[], None], max_tokens: int = 20000) -> list[torch.Tensor]:
    """Inputs of every MoEfied FFN (in order) while ``run()`` executes, each (<= max_tokens, d)."""
    moes = _moes(model)
    bags: list[list[torch.Tensor]] = [[] for _ in moes]
    hooks = [
        m.register_forward_pre_hook(lambda mod, args, i=i: bags[i].append(args[0].reshape(-1, mod.d).clone()))
        for i, m in enumerate(moes)
    ]
    try:
        run()
    finally:
        for h in hooks:
            h.remove()
    return [torch.cat(b)[:max_tokens] for b in bags]


def train_mlp_router(
    moe: MoEFFN, inputs: torch.Tensor, *, epochs: int = 10, lr: float = 0.01, batch_size: int = 512, seed: int = 0
) -> MLPRouter:
    """Fit MoEfication's MLP router of ``moe`` to its ground-truth expert scores on ``inputs`` (N, d).

    Targets are the expert scores divided by their batch maximum and clipped to [0, 1] (GELU
    scores can be negative); the loss is binary cross-entropy with logits, as in MoEfication.
    The router is attached to ``moe`` (``moe.mlp_router``) and returned.
    """
    g = torch.Generator().manual_seed(v.check_seed(seed))
    with torch.no_grad():
        init = moe.centroids().clone()
    router = MLPRouter(init)
    opt = torch.optim.Adam(router.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss()
    n = inputs.shape[0]
    with torch.enable_grad():
        for _ in range(epochs):
            order = torch.randperm(n, generator=g)
            for i in range(0, n, batch_size):
                xb = inputs[order[i : i + batch_size]]
                with torch.no_grad():
                    sc = expert_scores(moe.hidden(xb), moe.n_experts)
                    target = (sc / sc.max().clamp_min(1e-12)).clamp(0, 1)
                opt.zero_grad()
                loss = loss_fn(router(xb), target)
                loss.backward()
                opt.step()
    router.eval()
    for prm in router.parameters():
        prm.requires_grad_(False)
    moe.mlp_router = router
    return router
