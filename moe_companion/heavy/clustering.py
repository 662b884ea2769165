"""The one balanced k-means of the heavy chapters (MoEfication's experts, the probes' feature blocks).

:func:`balanced_assign` is the size-constrained assignment step (a linear assignment problem between the
points and ``sizes[c]`` copies of every centre, :func:`scipy.optimize.linear_sum_assignment`);
:func:`balanced_kmeans` iterates it with centroid updates (Lloyd).
"""

from __future__ import annotations

import numpy as np

from .. import _validate as v

__all__ = ["balanced_assign", "balanced_kmeans"]


def balanced_assign(cost, sizes) -> np.ndarray:
    """Labels minimising ``sum cost[i, label_i]`` with exactly ``sizes[c]`` points in cluster ``c``.

    Parameters
    ----------
    cost : array, shape (n, k)
        Cost of putting point ``i`` in cluster ``c`` (e.g. squared distances).
    sizes : array of int, shape (k,), summing to n
    """
    from scipy.optimize import linear_sum_assignment

    cost = np.asarray(cost, dtype=float)
    sizes = np.asarray(sizes, dtype=int)
    if cost.ndim != 2 or sizes.shape != (cost.shape[1],) or sizes.sum() != cost.shape[0] or (sizes < 0).any():
        raise ValueError(
            f"sizes must be {cost.shape[1:]} non-negative counts summing to n = {cost.shape[0]}, got {sizes.tolist()}"
        )
    slot = np.repeat(np.arange(sizes.size), sizes)
    rows, cols = linear_sum_assignment(cost[:, slot])
    labels = np.empty(cost.shape[0], dtype=int)
    labels[rows] = slot[cols]
    return labels


def balanced_kmeans(x, n_clusters: int, *, n_iter: int = 15, seed: int = 0) -> np.ndarray:
    """Balanced k-means: ``n_clusters`` clusters of exactly ``n / n_clusters`` points each.

    Lloyd iterations in which the assignment step minimises the total squared distance subject
    to equal cluster sizes -- a linear assignment problem between the ``n`` points and
    ``n / n_clusters`` copies of every centroid (``scipy.optimize.linear_sum_assignment``).
    Stops when the assignment no longer changes or after ``n_iter`` iterations.

    Parameters
    ----------
    x : array, shape (n, d)
    n_clusters : int, must divide n (the number of experts E; n = d_ff)
    n_iter : int >= 1
    seed : int >= 0
        Seed of the initial centroids (``n_clusters`` distinct points).

    Returns
    -------
    ndarray of int, shape (n,)
        Cluster of each point; ``np.bincount(labels) == n / n_clusters`` everywhere.
    """
    x = v.check_array(x, "x", ndim=2)
    n = x.shape[0]
    n_clusters = v.check_int(n_clusters, "n_experts", lower=1)
    if n % n_clusters:
        raise ValueError(f"n_experts must divide d_ff = {n}, got {n_clusters}")
    n_iter = v.check_int(n_iter, "n_iter", lower=1)
    size = n // n_clusters
    rng = np.random.default_rng(v.check_seed(seed))
    centers = x[rng.choice(n, n_clusters, replace=False)]
    labels = None
    sq = (x * x).sum(1)[:, None]
    for _ in range(n_iter):
        d2 = sq - 2.0 * x @ centers.T + (centers * centers).sum(1)[None, :]  # (n, E)
        new = balanced_assign(d2, np.full(n_clusters, size))
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        centers = np.zeros_like(centers)
        np.add.at(centers, labels, x)
        centers /= size
    return labels
