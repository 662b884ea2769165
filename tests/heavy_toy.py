"""A toy heavy experiment for the contract and cluster tests (importable by Dask worker processes)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from moe_companion.heavy.contract import Experiment, run_experiment

PROFILES = {p: {"n": 6, "kill_marker": ""} for p in ("cpu", "paper", "smoke")}


def check_params(params):
    p = dict(params)
    if not isinstance(p.get("n"), int) or p["n"] < 1:
        raise ValueError(f"n must be an int >= 1, got {p.get('n')!r}")
    return p


def _units(p, ctx):
    return [{"experiment": "toy", "i": i} for i in range(p["n"])]


def _prepare(p, ctx):
    ctx.store.run({"experiment": "toy", "unit": "offset"}, lambda: {"offset": 0.5})


def _run_unit(p, key, ctx):
    offset = ctx.store.run({"experiment": "toy", "unit": "offset"}, lambda: {"offset": 0.5})["offset"]
    marker = p["kill_marker"]
    if marker and key["i"] == 3 and not Path(marker).exists():
        Path(marker).write_text(str(os.getpid()))
        os._exit(1)  # this worker dies mid-unit, once
    rng = np.random.default_rng(key["i"])
    return {"x": float(rng.normal() + offset), "nan": float("nan"), "pid": 0}


def _assemble(p, pairs, ctx):
    return [v["x"] for _, v in pairs]


EXPERIMENT = Experiment("toy", check_params, _units, _run_unit, _assemble, prepare=_prepare)


def run(params, store=None, **kw):
    return run_experiment(EXPERIMENT, params, store, **kw)
