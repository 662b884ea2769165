"""Helpers shared by the theorem chapters: seeds per slider state, calibration findings."""

from __future__ import annotations

import zlib

import numpy as np

from .. import findings as F
from .. import simulate

#: Expected share of |Monte Carlo - closed form| <= 2 s.e. for normal, unbiased estimates.
EXPECTED_2SE = 0.9544997361036416


def state_seed(*values: float) -> int:
    """A seed that differs between slider states (so their Monte Carlo points are independent draws)."""
    key = ",".join(f"{float(x):.6g}" for x in values)
    return zlib.crc32(key.encode()) & 0x7FFFFFFF


def calibration_finding(fid: str, figure: str, mc, se, closed, *, tol: float = 0.05) -> F.Finding:
    """The calibration finding of one Monte Carlo overlay (issue 12 C), over every slider state."""
    cal = simulate.calibration(mc, se, closed)
    n = cal["points"]
    binom_se = float(np.sqrt(EXPECTED_2SE * (1 - EXPECTED_2SE) / n))
    return F.finding(
        fid,
        statement=f'The Monte Carlo points of the figure "{figure}" are calibrated: over all its slider states the '
        "closed form lies within ±2 s.e. of about 95 % of them (and within ±3 s.e. of about 99.7 %).",
        value={
            "share_2se": cal["share_2se"],
            "share_3se": cal["share_3se"],
            "points": n,
            "max_abs_z": cal["max_abs_z"],
            "excess_2se": cal["share_2se"] - EXPECTED_2SE,
        },
        uncertainty=F.se(
            binom_se, f"binomial s.e. of a share over {n} points at the expected 95.45 %", n=n, key="excess_2se"
        ),
        rule=F.agreement(
            tol,
            what="share within ±2 s.e. minus its expected 0.9545 (an implausible share is flagged as fails)",
            key="excess_2se",
        ),
    )


def top(title: str, t: int = 150) -> dict:
    """Layout pieces for a title at the very top and a horizontal legend just above the plot (no overlap:
    the top margin ``t`` holds both; the legend grows upwards into it)."""
    return dict(
        title=dict(text=title, y=0.99, yanchor="top"),
        margin=dict(t=t),
        legend=dict(orientation="h", y=1.0, yanchor="bottom", x=0),
    )
