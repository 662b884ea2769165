"""TEAL-style magnitude thresholds and pruning of activations.

TEAL (Liu et al., 2024, "Training-free activation sparsity in large language models") prunes
the *input* of a linear layer: entries with ``|x| <= t`` are set to zero, with one threshold ``t``
per layer (and per projection) calibrated offline so that a target share of entries is removed.
TEAL stores, per layer, a histogram of the calibration activations and reads the threshold off
the inverse CDF of ``|x|``; with *uniform* allocation every layer gets the same target sparsity
(the *greedy* variant, which trades sparsity between the linear layers of a block to meet a
block-level budget, is not implemented here).

Two estimators are offered: ``"exact"`` (the empirical quantile of ``|x|``) and ``"histogram"``
(TEAL's approach: a fine histogram of ``|x|`` plus linear interpolation of its CDF; the bins
are geometric between the smallest and largest non-zero magnitude, so that massive activations,
orders of magnitude above the rest, do not coarsen the resolution where thresholds fall).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .. import _validate as v

__all__ = ["fit_threshold", "fit_thresholds", "greedy_mlp_allocation", "mlp_parts", "prune", "realised_sparsity"]


def _check_sparsity(sparsity, name="sparsity") -> float:
    return v.check_scalar(sparsity, name, lower=0.0, upper=1.0, upper_inclusive=False)


def fit_threshold(x, sparsity: float, *, method: str = "exact", n_bins: int = 4096) -> float:
    """Magnitude threshold ``t`` such that a share ``sparsity`` of ``x`` has ``|x| <= t``.

    Parameters
    ----------
    x : array_like, any shape
        Calibration activations of one layer.
    sparsity : float in [0, 1)
        Target share of pruned entries; 0 gives ``t = 0`` (nothing pruned unless exactly zero).
    method : {"exact", "histogram"}
        Empirical quantile, or TEAL's histogram inverse CDF.
    n_bins : int
        Bins of the histogram method.

    Returns
    -------
    float
        The threshold (same units as ``x``).
    """
    sparsity = _check_sparsity(sparsity)
    v.check_choice(method, "method", ("exact", "histogram"))
    n_bins = v.check_int(n_bins, "n_bins", lower=16)
    a = np.abs(np.asarray(x, dtype=np.float64)).ravel()
    if a.size == 0:
        raise ValueError("x must not be empty")
    if not np.all(np.isfinite(a)):
        raise ValueError("x must contain only finite values")
    if sparsity == 0.0:
        return 0.0
    if method == "exact":
        return float(np.quantile(a, sparsity, method="linear"))
    pos = a[a > 0]
    if pos.size == 0:
        return 0.0
    lo, hi = float(pos.min()), float(pos.max())
    # geometric bins: the same relative resolution for small and for massive activations
    edges = np.concatenate([[0.0], np.geomspace(lo, hi * (1 + 1e-9), n_bins)]) if hi > lo else np.array([0.0, hi])
    counts, _ = np.histogram(a, bins=edges)
    cdf = np.concatenate([[0.0], np.cumsum(counts) / a.size])  # CDF at each edge
    return float(np.interp(sparsity, cdf, edges))


def fit_thresholds(acts: Mapping[int, np.ndarray], sparsity: float, *, method: str = "exact",
                   n_bins: int = 4096) -> dict[int, float]:
    """Uniform allocation: the same target ``sparsity`` for every layer, one threshold per layer."""
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


# ------------------------------------------------------------------------------ greedy allocation
def mlp_parts(model, layer: int):
    """Split the MLP of ``layer`` into ``f_in`` (MLP input -> down-projection input) and ``f_out``.

    Llama-style: ``f_in(x) = act(gate_proj(x)) * up_proj(x)``, ``f_out = down_proj``;
    BERT-style: ``f_in(x) = act(intermediate.dense(x))``, ``f_out = output.dense`` (the residual and
    LayerNorm that follow are left out).  Returns ``(f_in, f_out, w_in, w_mid)`` where the weights are
    the shares of the MLP's parameters read by each input (2/3 and 1/3 for Llama, 1/2 and 1/2 for BERT).
    """
    from .activations import find_mlp_inputs

    mods = find_mlp_inputs(model)
    if layer not in mods:
        raise ValueError(f"layer must be one of {sorted(mods)}, got {layer}")
    for name, module in model.named_modules():
        if module is mods[layer]:
            parent = model.get_submodule(name.rsplit(".", 1)[0])
            break
    if hasattr(parent, "gate_proj") and hasattr(parent, "down_proj"):  # Llama MLP
        def f_in(x):
            return parent.act_fn(parent.gate_proj(x)) * parent.up_proj(x)
        return f_in, parent.down_proj, 2 / 3, 1 / 3
    # BERT: parent is `intermediate` (holds dense + act); the output projection is its sibling `output.dense`
    block = model.get_submodule(name.rsplit(".", 2)[0])
    if hasattr(parent, "intermediate_act_fn") and hasattr(block, "output"):
        def f_in(x):
            return parent.intermediate_act_fn(parent.dense(x))
        return f_in, block.output.dense, 1 / 2, 1 / 2
    raise ValueError(f"greedy allocation supports Llama- and BERT-style MLPs, not {type(model).__name__}")


def _subsample(a: np.ndarray, rng: np.random.Generator, max_n: int = 2_000_000) -> np.ndarray:
    return a if a.size <= max_n else rng.choice(a, size=max_n, replace=False)


def greedy_mlp_allocation(model, layer: int, calib, target: float, *, step: float = 0.05,
                          method: str = "exact") -> dict:
    """Greedy per-block sparsity allocation between the two inputs of one MLP (TEAL's greedy idea).

    TEAL's greedy mode meets a block-level sparsity budget (the parameter-weighted mean sparsity of the
    inputs of the block's linear layers) by repeatedly raising the sparsity of the input whose raise hurts
    the block output least.  Here the block is the MLP: the MLP input (read by up/gate projections) and
    the down-projection input.  Starting from 0, each step raises one input's sparsity by ``step`` (the
    last step only as far as the budget needs), choosing the input with the smaller relative error
    ``||y - y_pruned||^2 / ||y||^2`` of the MLP output on the calibration tokens.

    Parameters
    ----------
    model : transformers model (Llama- or BERT-style)
    layer : int
    calib : ndarray, shape (n_tokens, d)
        Calibration MLP inputs of ``layer`` (e.g. from :func:`~moe_companion.heavy.activations.capture_mlp_inputs`).
    target : float in [0, 1)
        Block-level sparsity ``w_in * s_in + w_mid * s_mid``.
    step : float in (0, 1)
        Sparsity increment of one greedy step.

    Returns
    -------
    dict
        ``{"s_in", "s_mid", "t_in", "t_mid", "block_sparsity", "rel_error"}``: the sparsities and
        thresholds of the MLP input and of the down-projection input, the block-level sparsity
        reached and the relative output error.
    """
    import torch

    target = _check_sparsity(target, "target")
    step = v.check_scalar(step, "step", lower=0.0, upper=1.0, lower_inclusive=False, upper_inclusive=False)
    f_in, f_out, w_in, w_mid = mlp_parts(model, layer)
    param = next(model.parameters())
    x = torch.as_tensor(np.asarray(calib), dtype=param.dtype, device=param.device)
    with torch.inference_mode():
        h = f_in(x)
        y = f_out(h)
        rng = np.random.default_rng(0)  # thresholds from at most 2M entries (the down input is large)
        ax, ah = (_subsample(t.abs().float().cpu().numpy().ravel(), rng) for t in (x, h))
        ynorm = float((y.float() ** 2).sum())
        memo: dict = {}

        def thr(a, s):
            key = (id(a), round(s, 9))
            if key not in memo:
                memo[key] = fit_threshold(a, s, method=method) if s > 0 else 0.0
            return memo[key]

        def error(s_in, s_mid):
            tx = thr(ax, s_in)
            xs = torch.where(x.abs() > tx, x, torch.zeros_like(x))
            hs = f_in(xs)
            th = thr(ah, s_mid)
            hs = torch.where(hs.abs() > th, hs, torch.zeros_like(hs))
            return float(((f_out(hs) - y).float() ** 2).sum()) / ynorm

        s = {"in": 0.0, "mid": 0.0}
        w = {"in": w_in, "mid": w_mid}
        while w_in * s["in"] + w_mid * s["mid"] < target - 1e-12:
            need = target - (w_in * s["in"] + w_mid * s["mid"])
            best = None
            for c in ("in", "mid"):
                inc = min(step, need / w[c], 0.99 - s[c])
                if inc <= 1e-12:
                    continue
                trial = dict(s, **{c: s[c] + inc})
                err = error(trial["in"], trial["mid"])
                if best is None or err < best[0]:
                    best = (err, trial)
            if best is None:
                break
            s = best[1]
        return {"s_in": s["in"], "s_mid": s["mid"], "t_in": thr(ax, s["in"]), "t_mid": thr(ah, s["mid"]),
                "block_sparsity": w_in * s["in"] + w_mid * s["mid"], "rel_error": error(s["in"], s["mid"])}
