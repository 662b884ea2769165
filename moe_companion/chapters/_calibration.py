"""Calibration findings for Monte Carlo overlays (issue 12 C), shared by the Theorem 1 and Theorem 5 chapters.

Over all slider states of a figure, the share of points whose closed form lies within ±2 s.e. (≈ 95.4 %
expected if the closed form is what the simulation estimates and the s.e. is right) and within ±3 s.e.
(≈ 99.7 %). The share's 95 % interval is Clopper–Pearson (points treated as independent).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import beta

from .. import findings as F

#: A share of points within ±2 s.e. whose interval lies below this is implausible for a calibrated overlay.
PLAUSIBLE = 0.85


def calibration(
    fid: str, closed, mean, se, *, what: str, statement: str, paper_claim: str | None = None, n_seeds: int | None = None
) -> F.Finding:
    """A calibration finding from matching arrays of closed forms, Monte Carlo means and their s.e."""
    closed, mean, se = (np.asarray(a, dtype=float).ravel() for a in (closed, mean, se))
    ok = np.isfinite(closed) & np.isfinite(mean) & np.isfinite(se) & (se > 0)
    z = np.abs(closed[ok] - mean[ok]) / se[ok]
    n = int(z.size)
    if n == 0:
        raise ValueError(f"{fid}: no point with a finite closed form, mean and s.e.")
    k2 = int(np.sum(z <= 2.0))
    lo = 0.0 if k2 == 0 else float(beta.ppf(0.025, k2, n - k2 + 1))
    hi = 1.0 if k2 == n else float(beta.ppf(0.975, k2 + 1, n - k2))
    value = {"share_2se": k2 / n, "share_3se": float(np.mean(z <= 3.0)), "n_points": n, "median_z": float(np.median(z))}
    return F.finding(
        fid,
        statement=statement,
        paper_claim=paper_claim,
        value=value,
        n_seeds=n_seeds,
        uncertainty=F.interval(lo, hi, f"Clopper–Pearson over {n} figure points", n=n, key="share_2se"),
        rule=F.difference(
            "positive",
            threshold=PLAUSIBLE,
            key="share_2se",
            what=f"share of {what} within ±2 s.e. (≈ 0.954 expected; below {PLAUSIBLE:g} flags an implausible overlay)",
        ),
    )
