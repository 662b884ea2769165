"""Helpers shared by the theorem chapters: seeds per slider state, a title-and-legend layout."""

from __future__ import annotations

import zlib


def state_seed(*values: float) -> int:
    """A seed that differs between slider states (so their Monte Carlo points are independent draws)."""
    key = ",".join(f"{float(x):.6g}" for x in values)
    return zlib.crc32(key.encode()) & 0x7FFFFFFF


def top(title: str, t: int = 150) -> dict:
    """Layout pieces for a title at the very top and a horizontal legend just above the plot (no overlap:
    the top margin ``t`` holds both; the legend grows upwards into it)."""
    return dict(
        title=dict(text=title, y=0.99, yanchor="top"),
        margin=dict(t=t),
        legend=dict(orientation="h", y=1.0, yanchor="bottom", x=0),
    )
