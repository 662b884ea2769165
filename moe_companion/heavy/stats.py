"""Bootstrap intervals for the heavy chapters: crossed resampling of seeds and test examples.

Every heavy chapter scores the *same* test inputs with two models (dense and MoE) for several seeds;
a seed changes the noise draw, the training split or the initialisation, the test examples stay
the same.  :func:`crossed_bootstrap` resamples seeds and examples independently (with replacement,
the same example indices for every array: a paired comparison) and returns a percentile interval
of any statistic of the resampled arrays.  The book-wide verdict rule then reads the 95 % interval
of a difference: it must exclude 0 in the paper's direction for ``holds``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .. import _validate as v

__all__ = ["crossed_bootstrap", "mean_difference"]


def crossed_bootstrap(
    arrays: Sequence[np.ndarray], stat: Callable[..., float], *, n_boot: int = 2000, seed=0, level: float = 0.95
) -> tuple[float, float, float]:
    """Point estimate and percentile interval of ``stat(mean_1, ..., mean_m)`` under a seeds x examples
    bootstrap, where ``mean_i`` is the mean of ``arrays[i]`` over seeds and examples.

    Each replicate draws ``n_seeds`` seed indices and ``n_examples`` example indices with replacement
    (the same draws for every array: paired) and recomputes every mean on the resampled table; the
    means are evaluated as weighted sums with the draws' multiplicities, which equals indexing.

    Parameters
    ----------
    arrays : sequence of arrays, each of shape (n_seeds, n_examples) or (n_examples,)
        Per-seed, per-example scores of the same test examples (0/1 correctness, a loss, ...);
        a 1-D array does not depend on the seed (e.g. a clean run).
    stat : callable
        ``stat(*means)`` -> float (a difference, a ratio of differences, ...).
    n_boot : int
        Bootstrap replicates (>= 10).
    seed : int, None or numpy Generator
        Randomness of the resampling.
    level : float
        Interval level, in (0, 1).

    Returns
    -------
    (estimate, lo, hi) : floats
        ``stat`` of the original means and the ``level`` percentile interval (NaN bounds when more
        than half the replicates give a non-finite value).
    """
    n_boot = v.check_int(n_boot, "n_boot", lower=10)
    level = v.check_scalar(level, "level", lower=0.0, upper=1.0, lower_inclusive=False, upper_inclusive=False)
    if not arrays:
        raise ValueError("arrays must hold at least one array")
    arrs = [np.asarray(a, dtype=float) for a in arrays]
    full = [a for a in arrs if a.ndim == 2]
    if not full:
        raise ValueError("at least one array must have shape (n_seeds, n_examples)")
    n_seeds, n_ex = full[0].shape
    for i, a in enumerate(arrs):
        if a.ndim == 2 and a.shape != (n_seeds, n_ex) or a.ndim == 1 and a.shape != (n_ex,) or a.ndim > 2:
            raise ValueError(f"arrays[{i}] must have shape ({n_seeds}, {n_ex}) or ({n_ex},), got {a.shape}")
    rng = v.check_random_state(seed)
    est = float(stat(*[a.mean() for a in arrs]))
    ws = np.stack([np.bincount(rng.integers(0, n_seeds, n_seeds), minlength=n_seeds) for _ in range(n_boot)])
    we = np.stack([np.bincount(rng.integers(0, n_ex, n_ex), minlength=n_ex) for _ in range(n_boot)])
    means = []
    for a in arrs:
        if a.ndim == 2:
            means.append(np.einsum("bs,se,be->b", ws, a, we) / (n_seeds * n_ex))
        else:
            means.append(we @ a / n_ex)
    with np.errstate(divide="ignore", invalid="ignore"):
        reps = np.array([stat(*m) for m in zip(*means)], dtype=float)
    reps = reps[np.isfinite(reps)]
    if reps.size < n_boot // 2:
        return est, float("nan"), float("nan")
    q = (1 - level) / 2
    return est, float(np.quantile(reps, q)), float(np.quantile(reps, 1 - q))


def mean_difference(a: np.ndarray, b: np.ndarray, **kwargs) -> tuple[float, float, float]:
    """``mean(a) - mean(b)`` for paired (n_seeds, n_examples) scores, with its crossed-bootstrap interval."""
    return crossed_bootstrap([a, b], lambda x, y: x - y, **kwargs)
