"""Spread a heavy chapter's units over a Dask distributed cluster; the JSONL store stays the one truth.

:func:`compute_units` is what ``python -m moe_companion heavy run NAME --workers N`` (a
:class:`distributed.LocalCluster` of ``N`` single-threaded worker processes) and ``--scheduler
ADDRESS`` (an existing cluster, e.g. one started by ``dask-jobqueue`` on SLURM/PBS with one worker per
GPU) run before the notebook executes:

1. the caller validates the parameters, lists the experiment's declared units
   (:mod:`moe_companion.heavy.contract`) and skips those already in the store;
2. it runs the experiment's ``prepare`` (shared prerequisites such as MoEfication's expert
   clustering), storing them -- so workers only read them;
3. every missing unit is one task ``run_unit(params, unit, ctx)`` on a worker; a worker keeps one
   context (the loaded model, encoded data) per experiment and parameters, and reads the store
   read-only;
4. results come back to the caller, the only writer, which appends each to the store as it arrives
   (``fsync``).  A killed worker loses only its unit in flight: Dask reruns it on another worker,
   and a killed caller resumes from the store on the next run.

The notebook then finds every unit in the store and only renders, so a cluster run and a serial
run publish the same notebook from the same values (units are seeded from their keys).
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

from .store import ResultStore, canonical_key

__all__ = ["compute_units", "run_unit_task"]

_CONTEXTS: dict[str, Any] = {}


def _experiment(module: str):
    mod = importlib.import_module(module)
    exp = getattr(mod, "EXPERIMENT", None)
    if exp is None:
        raise ValueError(f"module {module!r} defines no EXPERIMENT (the heavy-experiment contract)")
    return exp


def run_unit_task(
    module: str,
    params: Mapping[str, Any],
    unit: Mapping[str, Any],
    store_path: str | None,
    options: Mapping[str, Any] | None = None,
) -> tuple[dict, dict, float]:
    """On a worker: compute one unit; return ``(unit, value, seconds)`` (nothing is written)."""
    from .contract import Context, ReadOnlyStore

    exp = _experiment(module)
    ident = canonical_key({"module": module, "params": dict(params), "store": store_path})
    ctx = _CONTEXTS.get(ident)
    if ctx is None:
        _CONTEXTS.clear()  # one experiment's state per worker at a time (memory)
        ctx = _CONTEXTS[ident] = Context(store=ReadOnlyStore(store_path), progress=False, options=dict(options or {}))
    t0 = time.perf_counter()
    value = ResultStore.roundtrip(exp.run_unit(dict(params), dict(unit), ctx))
    return dict(unit), value, time.perf_counter() - t0


def compute_units(
    module: str,
    params: Mapping[str, Any],
    results_path: str | os.PathLike,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    options: Mapping[str, Any] | None = None,
    threads_per_worker: int = 1,
) -> dict:
    """Compute every missing unit of experiment ``module`` on a Dask cluster; append them to the store.

    Parameters
    ----------
    module : str
        The experiment module (defines ``EXPERIMENT``).
    params : mapping
        The chapter's parameters (validated here).
    results_path : path
        The JSONL :class:`~moe_companion.heavy.store.ResultStore`; only this process writes it.
    workers : int, optional
        Start a ``LocalCluster`` with this many worker processes (default 2 when no ``scheduler``).
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``); ``workers`` is then ignored.

    Returns
    -------
    dict with ``units`` (declared), ``cached``, ``computed`` and ``seconds``.
    """
    from tqdm import (
        tqdm,  # text bars on stderr (widget bars would be dead on the static site)
    )

    from .contract import Context, unit_label, varying_keys

    t0 = time.perf_counter()
    exp = _experiment(module)
    p = exp.check_params(params)
    store = ResultStore(results_path)
    ctx = Context(store=store, progress=progress, options=dict(options or {}))
    keys = [dict(k) for k in exp.units(p, ctx)]
    todo = [k for k in keys if store.get(k) is None]
    stats = {"units": len(keys), "cached": len(keys) - len(todo), "computed": 0, "seconds": 0.0}
    if not todo:
        return stats
    if exp.prepare is not None:
        exp.prepare(p, ctx)  # prerequisites are stored by this (the only) writer
    ctx.state.clear()  # free the caller's model before the workers load theirs
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        n = 2 if workers is None else int(workers)
        cluster = LocalCluster(
            n_workers=n, threads_per_worker=threads_per_worker, processes=True, dashboard_address=None, silence_logs=40
        )
        client = Client(cluster)
    else:
        client = Client(scheduler)
    varying = varying_keys(keys)
    where = scheduler or f"LocalCluster({len(client.scheduler_info()['workers'])} workers)"
    if progress:
        print(f"[{exp.name}] {len(todo)} of {len(keys)} units on {where}", file=sys.stderr, flush=True)
    try:
        futures = [
            client.submit(
                run_unit_task,
                module,
                p,
                k,
                str(store.path),
                dict(options or {}),
                pure=False,
                key=f"{exp.name}-{i}-{os.getpid()}-{time.time_ns()}",
            )
            for i, k in enumerate(todo)
        ]
        bar = tqdm(total=len(futures), desc=f"{exp.name} units (dask)", disable=not progress, mininterval=2.0)
        for fut in as_completed(futures):
            unit, value, secs = fut.result()
            store.put(unit, value)
            stats["computed"] += 1
            bar.update(1)
            if progress:
                what = exp.describe(unit, value) if exp.describe else ""
                bar.write(
                    f"[{exp.name}] unit {unit_label(unit, varying)}: {what} ({secs:.1f} s on a worker)", file=sys.stderr
                )
        bar.close()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    stats["seconds"] = time.perf_counter() - t0
    return stats
