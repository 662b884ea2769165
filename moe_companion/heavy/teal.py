"""TEAL's magnitude thresholds for the linear layers of an MLP: uniform and greedy allocation.

TEAL (Liu et al., 2024, "Training-free activation sparsity in large language models") prunes the
*input* of every linear layer: entries with ``|x| <= t`` are set to zero.  Each projection has its own
sparsifier with its own threshold, read off the calibrated distribution of *that projection's* input:
in a Llama MLP ``down_proj(act(gate_proj(x)) * up_proj(x))`` the ``gate`` and ``up`` sparsifiers both
read the distribution of ``x`` and the ``down`` sparsifier that of the intermediate state.  Two ways of
choosing the sparsity level of each projection (paper App. B.1):

* **uniform** -- the same target sparsity for every projection; each threshold is the quantile of its
  own projection's input (so ``gate`` and ``up``, reading the same tensor, get the *same* threshold);
* **greedy** -- per block, start from zero sparsity and repeatedly raise the sparsity of the one
  projection whose raise hurts the block's output least, until the parameter-weighted mean sparsity
  reaches the target; ``gate`` and ``up`` are raised independently and end with different sparsities
  (hence different thresholds).  The walk is run once up to the largest target and stored as a lookup
  table (effective sparsity -> per-projection sparsities) that is queried for every target.

Differences from TEAL's released code (``teal/greedyopt.py``), stated where they matter: the greedy block
here is the MLP alone (TEAL's block also contains the attention projections q, k, v, o and its error is
measured on the whole decoder layer's output, over the last quarter of each sequence); the error here is
the mean over calibration tokens of ``||y - y_pruned||_2`` on the MLP output.  Projection weights are the
parameter counts of the projections (TEAL's weights for Llama are equal for gate, up and down too).

:class:`Distribution` is the calibrate-once / query-many object: ``"exact"`` keeps the sorted magnitudes
(empirical quantile), ``"histogram"`` (TEAL's approach) keeps a fine histogram of ``|x|`` with geometric
bins between the smallest and largest non-zero magnitude and interpolates its CDF.  TEAL reads the
threshold as ``icdf(0.5 + s / 2)`` of the *signed* distribution, which equals the ``s``-quantile of
``|x|`` for a zero-mean symmetric distribution; the quantile of ``|x|`` used here meets the target
sparsity also when the distribution is skewed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .. import _validate as v

__all__ = [
    "Distribution",
    "GreedyLookup",
    "MLPParts",
    "MLPThresholds",
    "allocation_sparsities",
    "calibrate",
    "fit_threshold",
    "fit_thresholds",
    "prune",
    "realised_sparsity",
]


def _check_sparsity(sparsity, name="sparsity") -> float:
    return v.check_scalar(sparsity, name, lower=0.0, upper=1.0, upper_inclusive=False)


class Distribution:
    """The calibrated magnitude distribution of one projection's input: calibrate once, query many times.

    Parameters
    ----------
    x : array_like, any shape
        Calibration activations entering the projection.
    method : {"exact", "histogram"}
        Empirical quantile of ``|x|``, or TEAL's histogram inverse CDF.
    n_bins : int
        Bins of the histogram method.
    max_n : int
        The exact method keeps at most this many magnitudes (a seeded subsample beyond it).
    """

    def __init__(self, x, *, method: str = "exact", n_bins: int = 4096, max_n: int = 4_000_000):
        self.method = v.check_choice(method, "method", ("exact", "histogram"))
        n_bins = v.check_int(n_bins, "n_bins", lower=16)
        a = np.abs(np.asarray(x, dtype=np.float64)).ravel()
        if a.size == 0:
            raise ValueError("x must not be empty")
        if not np.all(np.isfinite(a)):
            raise ValueError("x must contain only finite values")
        self.n = int(a.size)
        if method == "exact":
            if a.size > max_n:
                a = np.random.default_rng(0).choice(a, size=max_n, replace=False)
            self._sorted = np.sort(a)
            return
        pos = a[a > 0]
        if pos.size == 0:
            self._edges, self._cdf = np.array([0.0, 0.0]), np.array([0.0, 1.0])
            return
        lo, hi = float(pos.min()), float(pos.max())
        # geometric bins: the same relative resolution for small and for massive activations
        edges = np.concatenate([[0.0], np.geomspace(lo, hi * (1 + 1e-9), n_bins)]) if hi > lo else np.array([0.0, hi])
        counts, _ = np.histogram(a, bins=edges)
        self._edges = edges
        self._cdf = np.concatenate([[0.0], np.cumsum(counts) / a.size])  # CDF at each edge

    def threshold(self, sparsity: float) -> float:
        """Threshold ``t`` with a share ``sparsity`` of the calibration magnitudes ``<= t`` (0 -> 0)."""
        sparsity = _check_sparsity(sparsity)
        if sparsity == 0.0:
            return 0.0
        if self.method == "exact":
            return float(np.quantile(self._sorted, sparsity, method="linear"))
        if self._edges[-1] == 0:
            return 0.0
        return float(np.interp(sparsity, self._cdf, self._edges))

    def sparsity(self, threshold: float) -> float:
        """Share of the calibration magnitudes ``<= threshold`` (the inverse query)."""
        threshold = v.check_scalar(threshold, "threshold", lower=0.0)
        if self.method == "exact":
            return float(np.searchsorted(self._sorted, threshold, side="right") / self._sorted.size)
        return float(np.interp(threshold, self._edges, self._cdf))

    def __repr__(self) -> str:
        return f"Distribution(method={self.method!r}, n={self.n})"


def fit_threshold(x, sparsity: float, *, method: str = "exact", n_bins: int = 4096) -> float:
    """Magnitude threshold ``t`` such that a share ``sparsity`` of ``x`` has ``|x| <= t`` (one query)."""
    sparsity = _check_sparsity(sparsity)
    return Distribution(x, method=method, n_bins=n_bins).threshold(sparsity)


def fit_thresholds(
    acts: Mapping[int, np.ndarray], sparsity: float, *, method: str = "exact", n_bins: int = 4096
) -> dict[int, float]:
    """Uniform allocation over layers: the same target ``sparsity`` for every layer, one threshold each."""
    return {layer: fit_threshold(x, sparsity, method=method, n_bins=n_bins) for layer, x in acts.items()}


def prune(x, threshold: float) -> np.ndarray:
    """Return ``x`` with entries of magnitude ``<= threshold`` set to zero (a copy)."""
    threshold = v.check_scalar(threshold, "threshold", lower=0.0)
    x = np.asarray(x)
    return np.where(np.abs(x) > threshold, x, np.zeros((), dtype=x.dtype))


def realised_sparsity(x, threshold: float) -> float:
    """Share of entries of ``x`` that :func:`prune` sets to zero."""
    threshold = v.check_scalar(threshold, "threshold", lower=0.0)
    return float(np.mean(np.abs(np.asarray(x)) <= threshold))


# ------------------------------------------------------------------------------ one MLP, projection by projection
@dataclass(frozen=True)
class MLPParts:
    """The linear layers of one MLP and how they compose.

    ``names`` are the sparsified projections in TEAL's terms: ``("gate", "up", "down")`` for a Llama
    MLP, ``("up", "down")`` for BERT (``intermediate.dense`` plays ``up``: it reads the MLP input;
    ``output.dense`` plays ``down``).  ``weights`` are their parameter counts.
    """

    family: str
    names: tuple
    weights: Mapping[str, float]
    modules: Mapping[str, object]
    act: object

    @classmethod
    def of(cls, block) -> MLPParts:
        """The parts of a Llama- or BERT-style :class:`~moe_companion.heavy.ffn.FFNBlock` (residual and norm left out)."""
        if block.kind not in ("llama", "bert") or block.moefied:
            what = "MoEfied" if block.moefied else f"{block.kind!r}"
            raise ValueError(
                f"block must be a Llama- or BERT-style MLP for TEAL thresholds, got the {what} FFN at {block.path!r}"
            )
        mods = {"up": block.up, "down": block.down}
        if block.gate is not None:
            mods = {"gate": block.gate, **mods}
        return cls(
            block.kind, tuple(mods), {k: float(m.weight.numel()) for k, m in mods.items()}, mods, block.activation
        )

    def forward(self, x, thresholds: Mapping[str, float] | None = None):
        """MLP output for input ``x`` (torch tensor), each projection's input pruned at its threshold.

        Also returns the intermediate state (the input of ``down``) before its pruning.
        """
        import torch

        t = dict.fromkeys(self.names, 0.0) if thresholds is None else thresholds

        def cut(z, name):
            return z if not t.get(name) else torch.where(z.abs() > t[name], z, torch.zeros_like(z))

        m = self.modules
        if self.family == "llama":
            h = self.act(m["gate"](cut(x, "gate"))) * m["up"](cut(x, "up"))
        else:
            h = self.act(m["up"](cut(x, "up")))
        return m["down"](cut(h, "down")), h


@dataclass(frozen=True)
class GreedyLookup:
    """TEAL's greedy lookup table of one block: rows of (effective sparsity, per-projection sparsities).

    ``rows[0]`` is all zeros; every later row raised one projection by its step.  :meth:`sparsities`
    returns the first row whose effective sparsity reaches the target.
    """

    names: tuple
    effective: tuple
    rows: tuple
    errors: tuple

    def sparsities(self, target: float) -> dict[str, float]:
        target = _check_sparsity(target, "target")
        for eff, row in zip(self.effective, self.rows):
            if eff >= target - 1e-9:
                return dict(zip(self.names, row))
        raise ValueError(
            f"target must be <= {self.effective[-1]:.4g} (the largest sparsity this lookup "
            f"was calibrated for), got {target}"
        )

    def effective_sparsity(self, target: float) -> float:
        target = _check_sparsity(target, "target")
        return next(eff for eff in self.effective if eff >= target - 1e-9)


class MLPThresholds:
    """Calibrated TEAL sparsifiers of one MLP: one :class:`Distribution` per projection, calibrated once.

    Parameters
    ----------
    parts : MLPParts
    calib : ndarray (n_tokens, d_model)
        Calibration MLP inputs of this layer.
    method : {"exact", "histogram"}
    """

    def __init__(self, parts: MLPParts, calib, *, method: str = "exact", n_bins: int = 4096):
        import torch

        self.parts = parts
        param = next(iter(parts.modules.values())).weight
        self._x = torch.as_tensor(np.asarray(calib), dtype=param.dtype, device=param.device)
        with torch.inference_mode():
            self._y, h = parts.forward(self._x)
        xs = self._x.float().cpu().numpy()
        # each projection's own input distribution (gate and up read the same tensor x: two objects, one data)
        self.distributions = {
            name: Distribution(h.float().cpu().numpy() if name == "down" else xs, method=method, n_bins=n_bins)
            for name in parts.names
        }
        self._greedy: GreedyLookup | None = None

    def uniform(self, sparsity: float) -> dict[str, float]:
        """Uniform allocation: every projection at ``sparsity``, thresholds from its own distribution."""
        sparsity = _check_sparsity(sparsity)
        return {name: d.threshold(sparsity) for name, d in self.distributions.items()}

    def thresholds(self, sparsities: Mapping[str, float]) -> dict[str, float]:
        """Thresholds for given per-projection sparsities."""
        return {name: self.distributions[name].threshold(sparsities[name]) for name in self.parts.names}

    def error(self, thresholds: Mapping[str, float]) -> float:
        """Mean over calibration tokens of ``||y - y_pruned||_2`` on the MLP output."""
        import torch

        with torch.inference_mode():
            y, _ = self.parts.forward(self._x, thresholds)
            return float(torch.linalg.vector_norm((y - self._y).float(), dim=-1).mean())

    def calibrate_greedy(self, max_target: float, *, step: float = 0.05) -> GreedyLookup:
        """Run TEAL's greedy walk once, up to effective sparsity ``max_target`` (cached; a larger target reruns).

        Each step tries raising every projection ``p`` by ``step * mean(w) / w_p`` (capped below 1) and
        keeps the raise with the smallest :meth:`error`; the effective sparsity is the ``w``-weighted mean.
        """
        max_target = _check_sparsity(max_target, "max_target")
        step = v.check_scalar(step, "step", lower=0.0, upper=0.5, lower_inclusive=False)
        if self._greedy is not None and self._greedy.effective[-1] >= max_target - 1e-9:
            return self._greedy
        names = self.parts.names
        w = np.array([self.parts.weights[n] for n in names], dtype=float)
        w = w / w.sum()
        steps = step * w.mean() / w
        s = np.zeros(len(names))
        eff, rows, errs = [0.0], [tuple(s)], [0.0]
        while eff[-1] < max_target - 1e-9:
            best = None
            for i in range(len(names)):
                if s[i] + steps[i] > 0.99 + 1e-12:
                    continue
                trial = s.copy()
                trial[i] += steps[i]
                err = self.error(self.thresholds(dict(zip(names, trial))))
                if best is None or err < best[0]:
                    best = (err, trial)
            if best is None:
                break
            s = best[1]
            eff.append(float(w @ s))
            rows.append(tuple(float(x) for x in s))
            errs.append(best[0])
        self._greedy = GreedyLookup(names, tuple(eff), tuple(rows), tuple(errs))
        return self._greedy

    def greedy(self, target: float, *, step: float = 0.05) -> dict[str, float]:
        """Greedy allocation at block sparsity ``target``: thresholds per projection (from the lookup)."""
        return self.thresholds(allocation_sparsities(self, "greedy", target, step=step))


def calibrate(model, layer: int, calib, *, method: str = "exact", n_bins: int = 4096) -> MLPThresholds:
    """:class:`MLPThresholds` of ``layer`` of ``model`` from its calibration MLP inputs ``calib``.

    ``model`` has a Llama- or BERT-style MLP (see :func:`moe_companion.heavy.ffn.find_ffns`).
    """
    from .ffn import find_ffns

    blocks = {b.layer: b for b in find_ffns(model, stack="encoder")}
    if layer not in blocks:
        raise ValueError(f"layer must be one of {sorted(blocks)}, got {layer}")
    return MLPThresholds(MLPParts.of(blocks[layer]), calib, method=method, n_bins=n_bins)


def allocation_sparsities(
    thr: MLPThresholds, allocation: str, target: float, *, step: float = 0.05
) -> dict[str, float]:
    """Per-projection sparsities of ``allocation`` ("uniform" or "greedy") at block sparsity ``target``."""
    v.check_choice(allocation, "allocation", ("uniform", "greedy"))
    target = _check_sparsity(target, "target")
    if allocation == "uniform":
        return dict.fromkeys(thr.parts.names, target)
    lookup = thr.calibrate_greedy(max(target, thr._greedy.effective[-1] if thr._greedy else 0.0), step=step)
    return lookup.sparsities(target)
