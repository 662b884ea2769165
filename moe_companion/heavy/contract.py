"""One contract for every heavy experiment: declared units, one ``run_unit``, one result type.

A heavy experiment module defines ``EXPERIMENT = Experiment(...)`` with

* ``check_params(params) -> dict`` -- validation, no torch import, before any model loads;
* ``units(params, ctx) -> list[dict]`` -- the declared list of unit keys (the
  :class:`~moe_companion.heavy.store.ResultStore` keys, JSON-able dicts), in a fixed order;
* ``run_unit(params, unit, ctx) -> dict`` -- compute one unit (JSON-able dict), seeded from its key
  only, reading shared state (a loaded model, encoded data) through ``ctx.get(name, factory)``;
* ``assemble(params, pairs, ctx)`` -- the chapter's view of all ``(unit, value)`` pairs;
* optional ``prepare(params, ctx)`` -- shared prerequisite units the single writer computes (and
  stores) before units are spread over workers (e.g. MoEfication's expert clustering);
* optional ``describe(unit, value) -> str`` -- the one-line summary printed per finished unit.

:func:`run_experiment` is the only loop: serial here, and the same ``run_unit`` is what
:mod:`moe_companion.heavy.cluster` sends to Dask workers (workers return values; only the caller
appends to the store).  Every module's ``run_experiment(params, store=None, *, progress=True,
ctx=None)`` is this function with its ``EXPERIMENT`` and returns an :class:`ExperimentResult`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .store import ResultStore, canonical_key

__all__ = ["Context", "Experiment", "ExperimentResult", "ReadOnlyStore", "as_store", "run_experiment"]


class ReadOnlyStore:
    """A view of a store file for workers: ``run`` returns the stored value or computes without writing."""

    def __init__(self, path: str | os.PathLike | None):
        self._store = ResultStore(path) if path is not None and os.path.exists(path) else None

    def get(self, key):
        return None if self._store is None else self._store.get(key)

    def __contains__(self, key) -> bool:
        return self.get(key) is not None

    def run(self, key, fn):
        found = self.get(key)
        return found if found is not None else fn()

    @property
    def path(self):
        return None if self._store is None else self._store.path


@dataclass
class Context:
    """What a unit may use besides its parameters: the store, options, and memoised shared state.

    Attributes
    ----------
    store : ResultStore, ReadOnlyStore or None
        Prerequisite units (``prepare``) go through ``store.run``.
    progress : bool
        Progress bars, notices and the per-unit summary lines.
    options : dict
        Experiment-specific extras (``device``, ``pools``, ``load_dataset``, ``cache_dir``, ...).
    """

    store: Any = None
    progress: bool = True
    options: dict = field(default_factory=dict)
    state: dict = field(default_factory=dict)

    def get(self, name, factory: Callable[[], Any]):
        """``state[name]``, computed once with ``factory()`` (a loaded model, encoded data, ...)."""
        if name not in self.state:
            self.state[name] = factory()
        return self.state[name]

    def option(self, name: str, default=None):
        return self.options.get(name, default)


@dataclass(frozen=True)
class Experiment:
    """A heavy experiment (see the module docstring)."""

    name: str
    check_params: Callable[[Mapping[str, Any]], dict]
    units: Callable[[dict, Context], list]
    run_unit: Callable[[dict, dict, Context], dict]
    assemble: Callable[[dict, list, Context], Any]
    prepare: Callable[[dict, Context], None] | None = None
    describe: Callable[[dict, dict], str] | None = None


@dataclass
class ExperimentResult:
    """What every heavy ``run_experiment`` returns.

    Attributes
    ----------
    experiment : str
    params : dict
        The validated parameters.
    units, values : list of dict
        The declared unit keys and their values, in declaration order.
    data : object
        The chapter's view of the results (``Experiment.assemble``).
    computed : int
        Units computed in this call (the others were read from the store).
    seconds : float
    """

    experiment: str
    params: dict
    units: list
    values: list
    data: Any
    computed: int = 0
    seconds: float = 0.0

    def __len__(self) -> int:
        return len(self.units)


def as_store(store) -> Any:
    """A store object from a path (``ResultStore``), a store-like object, or ``None`` (no store)."""
    if store is None or hasattr(store, "run"):
        return store
    return ResultStore(store)


def _brief(value: Mapping[str, Any]) -> str:
    out = []
    for k, val in value.items():
        if isinstance(val, float):
            out.append(f"{k}={val:.4g}")
        elif isinstance(val, (int, bool)) and not isinstance(val, bool):
            out.append(f"{k}={val}")
        if len(out) == 3:
            break
    return ", ".join(out)


def unit_label(unit: Mapping[str, Any], varying: list[str]) -> str:
    return " ".join(f"{k}={unit.get(k)}" for k in varying) or canonical_key(unit)


def varying_keys(units: list) -> list[str]:
    """Key names whose value differs between units (what identifies a unit in a summary line)."""
    if len(units) < 2:
        return [k for k in (units[0] if units else {}) if k not in ("experiment", "version", "config")][:3]
    names = []
    for k in units[0]:
        vals = {canonical_key({"v": u.get(k)}) for u in units}
        if len(vals) > 1:
            names.append(k)
    return names


def run_experiment(
    experiment: Experiment,
    params: Mapping[str, Any],
    store=None,
    *,
    progress: bool = True,
    ctx: Context | None = None,
    **options,
) -> ExperimentResult:
    """Run (or resume) every declared unit of ``experiment``; return an :class:`ExperimentResult`.

    Parameters
    ----------
    experiment : Experiment
    params : mapping
        The chapter's parameters (validated here by ``experiment.check_params``).
    store : ResultStore, path or None
        Finished units are read back, new ones appended (flushed) as they finish.
    progress : bool
        A tqdm bar over the units and one summary line per unit computed.
    ctx : Context, optional
        Reuse a context (shared state); ``options`` are merged into its options.
    """
    from tqdm import (
        tqdm,  # text bars on stderr (widget bars would be dead on the static site)
    )

    t0 = time.perf_counter()
    p = experiment.check_params(params)
    store = as_store(store)
    if ctx is None:
        ctx = Context(store=store, progress=progress)
    else:
        ctx.store = store if store is not None else ctx.store
    ctx.options.update(options)
    keys = [dict(k) for k in experiment.units(p, ctx)]
    seen = set()
    for k in keys:
        ck = canonical_key(k)
        if ck in seen:
            raise ValueError(f"{experiment.name}: unit {ck} is declared twice")
        seen.add(ck)
    stored = {} if store is None else {canonical_key(k): store.get(k) for k in keys}
    todo = [k for k in keys if stored.get(canonical_key(k)) is None]
    if todo and experiment.prepare is not None:
        experiment.prepare(p, ctx)
    varying = varying_keys(keys)
    values = []
    computed = 0
    bar = tqdm(keys, desc=f"{experiment.name} units", disable=not progress, mininterval=2.0)
    for i, key in enumerate(bar):
        val = stored.get(canonical_key(key))
        if val is None:
            u0 = time.perf_counter()
            val = experiment.run_unit(p, key, ctx)
            val = store.put(key, val) if store is not None else ResultStore.roundtrip(val)
            computed += 1
            if progress:
                what = experiment.describe(key, val) if experiment.describe else _brief(val)
                bar.write(
                    f"[{experiment.name}] unit {i + 1}/{len(keys)} {unit_label(key, varying)}: "
                    f"{what} ({time.perf_counter() - u0:.1f} s)",
                    file=sys.stderr,
                )
        values.append(val)
    bar.close()
    data = experiment.assemble(p, list(zip(keys, values)), ctx)
    return ExperimentResult(experiment.name, p, keys, values, data, computed, time.perf_counter() - t0)


def notebook_params(module, profile: str, namespace: Mapping[str, Any], *, chapter: str | None = None) -> dict:
    """The parameters of a heavy chapter's notebook: ``PROFILES[profile]`` unless a value is given.

    The chapter's ``parameters`` cell sets ``profile`` and every parameter to ``None``; papermill
    (``-p profile paper -p seeds "[0]"``) or the runner inject values after it.  A name still
    ``None`` takes the profile's value, so ``papermill ... -p profile paper`` runs the paper values.
    The result is validated by the module's ``check_params`` and written back into ``namespace``
    (a notebook's ``globals()``) so later cells see the resolved values.  ``namespace["results_path"]`` ``None``
    becomes ``generated/results/<chapter>-<profile>.jsonl`` (relative to ``book/``).
    """
    from .. import _validate as v

    profiles = module.PROFILES
    v.check_choice(profile, "profile", tuple(profiles))
    out = {}
    for name, default in profiles[profile].items():
        val = namespace.get(name)
        out[name] = default if val is None else val
    out = module.check_params(out) if hasattr(module, "check_params") else out
    if isinstance(namespace, dict):  # a notebook's globals(): later cells read the resolved names
        namespace.update(out)
        if chapter is not None and namespace.get("results_path") is None:
            namespace["results_path"] = f"generated/results/{chapter}-{profile}.jsonl"
    return out
