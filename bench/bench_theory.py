"""Benchmark: one risk curve (200 sigma^2 points, k = 20 experts, d_i = 50) two ways, side by side.

* eigenbasis: ``theory.risk_grid(model, sigma2=grid)`` -- one broadcast numpy expression for the dense
  *and* sparse curves (the eigendecompositions are computed once per model and cached; their one-off
  cost is printed separately);
* direct: the printed matrix formulas with explicit inverses, one sigma^2 point at a time
  (``theory.risk_dense_direct`` + ``theory.risk_sparse_direct``).

Prints the time per curve for each and the ratio; also checks that both agree.  Not a timed test.
Run: ``python bench/bench_theory.py``.
"""

from __future__ import annotations

import time

import numpy as np

from moe_companion import BlockModel, theory

K, DIM, POINTS = 20, 50, 200


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    model = BlockModel.toeplitz(K, DIM, rho=0.6, sigma2=0.5, seed=0)
    grid = np.geomspace(1e-2, 1e2, POINTS)
    _ = model.eigh, model.beta_eigen
    t_eigh = best_of(lambda: [np.linalg.eigh(c) for c in model.covariances], 5)

    def eigen():
        return theory.risk_grid(model, sigma2=grid)

    def direct():
        return (
            np.array([theory.risk_dense_direct(model, sigma2=s) for s in grid]),
            np.array([theory.risk_sparse_direct(model, sigma2=s) for s in grid]),
        )

    (de, se), (dd, sd) = eigen(), direct()
    err = max(np.max(np.abs(de - dd) / dd), np.max(np.abs(se - sd) / sd))
    t_eigen = best_of(eigen, 50)
    t_direct = best_of(direct, 3)
    print(f"curve: {POINTS} sigma^2 points, k = {K} experts, d_i = {DIM} (d = {K * DIM}); dense + sparse curves")
    print(f"one-off eigendecompositions (cached per model): {t_eigh * 1e3:8.3f} ms")
    print(
        f"eigenbasis (vectorised)  per curve pair:        {t_eigen * 1e3:8.3f} ms"
        f"  ({t_eigen * 1e3 / 2:.3f} ms per curve)"
    )
    print(f"direct (matrix inverses) per curve pair:        {t_direct * 1e3:8.3f} ms")
    print(f"ratio direct / eigenbasis:                      {t_direct / t_eigen:8.1f}x")
    print(f"ratio direct / (eigenbasis + eigendecomp.):     {t_direct / (t_eigen + t_eigh):8.1f}x")
    print(f"max relative difference between the two:        {err:.2e}")


if __name__ == "__main__":
    main()
