"""A resumable store of finished units of work, one JSON line per unit.

A heavy chapter loops over units (e.g. one layer x sparsity, or one seed x K x noise level).
Each finished unit is appended to a JSON-lines file as ``{"key": {...}, "value": {...}}`` and
flushed to disk (``fsync``) at once, so a run killed mid-way loses at most the unit in progress.
Restarting the same loop skips every unit whose key is already stored.

Keys are compared by their canonical JSON (``sort_keys=True``): ``{"a": 1, "b": 2}`` and
``{"b": 2, "a": 1}`` are the same unit.  Values go through a JSON round trip *before* they are
returned, so a freshly computed value and a value read back from the file are identical objects
(tuples become lists, numpy scalars become Python numbers).  A run killed and restarted therefore
ends with exactly the values of an uninterrupted run -- provided every unit is seeded from its key,
never from global state.

Example
-------
>>> store = ResultStore(tmp_path / "results.jsonl")            # doctest: +SKIP
>>> store.run({"layer": 0, "sparsity": 0.4}, lambda: {"score": 1.7})  # doctest: +SKIP
{'score': 1.7}
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ResultStore", "canonical_key", "from_json_text", "to_json_text", "to_jsonable"]

#: Non-finite floats are stored as ``{"$float": "nan" | "inf" | "-inf"}`` (strict JSON has no NaN);
#: files written before this rule (bare ``NaN`` tokens) still load.
_NONFINITE = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}


def _tag_nonfinite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"$float": "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")}
    if isinstance(obj, dict):
        return {k: _tag_nonfinite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_tag_nonfinite(v) for v in obj]
    return obj


def _untag(obj: dict) -> Any:
    if len(obj) == 1 and "$float" in obj and obj["$float"] in _NONFINITE:
        return _NONFINITE[obj["$float"]]
    return obj


def to_json_text(obj: Any, **kw) -> str:
    """Strict JSON text of ``obj`` (numpy types converted, NaN/inf tagged, never bare ``NaN``)."""
    return json.dumps(_tag_nonfinite(to_jsonable(obj)), allow_nan=False, **kw)


def from_json_text(text: str) -> Any:
    """Inverse of :func:`to_json_text` (also reads legacy bare ``NaN``/``Infinity``)."""
    return json.loads(text, object_hook=_untag)


def to_jsonable(obj: Any) -> Any:
    """Return ``obj`` with numpy scalars/arrays and tuples turned into JSON types (recursively)."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"value of type {type(obj).__name__} is not JSON-serialisable: {obj!r}")


def canonical_key(key: Mapping[str, Any]) -> str:
    """Canonical JSON text of a unit key (sorted keys, no spaces)."""
    if not isinstance(key, Mapping):
        raise TypeError(f"key must be a dict, got {type(key).__name__}")
    return json.dumps(to_jsonable(key), sort_keys=True, separators=(",", ":"))


class ResultStore:
    """Append-only JSON-lines store of unit results, keyed by a dict of parameters.

    Parameters
    ----------
    path : str or Path
        The ``.jsonl`` file (created with its parent folders on the first :meth:`put`).  An
        existing file is read at once; a truncated last line (a run killed while writing) is
        ignored and overwritten by the next record.

    Notes
    -----
    One process writes a given file at a time.  When the same key is stored twice, the last
    record wins (also on reload).
    """

    def __init__(self, path: str | os.PathLike):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"path must be a .jsonl file, got the directory {self.path}")
        if self.path.parent.exists() and not self.path.parent.is_dir():
            raise ValueError(f"path's parent {self.path.parent} exists and is not a directory")
        self._data: dict[str, dict] = {}
        self._keys: dict[str, dict] = {}
        self._needs_newline = False
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        raw = self.path.read_bytes()
        self._needs_newline = bool(raw) and not raw.endswith(b"\n")
        for line in raw.decode("utf-8", errors="replace").splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                rec = from_json_text(line)
                ck = canonical_key(rec["key"])
                value = rec["value"]
            except (ValueError, KeyError, TypeError):
                continue  # a record cut by a kill: recomputed on the next run
            self._data[ck] = value
            self._keys[ck] = rec["key"]

    # ------------------------------------------------------------------ mapping-like API
    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Mapping[str, Any]) -> bool:
        return canonical_key(key) in self._data

    def __iter__(self) -> Iterator[dict]:
        return iter(dict(k) for k in self._keys.values())

    def items(self) -> list[tuple[dict, dict]]:
        """All ``(key, value)`` pairs in insertion order."""
        return [(self._keys[ck], self._data[ck]) for ck in self._data]

    def get(self, key: Mapping[str, Any]) -> dict | None:
        """Return the stored value of ``key``, or ``None``."""
        return self._data.get(canonical_key(key))

    def put(self, key: Mapping[str, Any], value: Mapping[str, Any]) -> dict:
        """Append ``{"key": key, "value": value}`` to the file (flush + fsync); return the stored value.

        Raises
        ------
        TypeError
            If ``key`` or ``value`` is not a dict of JSON-serialisable values.
        """
        if not isinstance(value, Mapping):
            raise TypeError(f"value must be a dict, got {type(value).__name__}")
        ck = canonical_key(key)
        key_j = json.loads(ck)
        value_j = self.roundtrip(value)
        line = to_json_text({"key": key_j, "value": value_j}, sort_keys=True) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            if self._needs_newline:
                fh.write("\n")
                self._needs_newline = False
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        self._data[ck] = value_j
        self._keys[ck] = key_j
        return value_j

    @staticmethod
    def roundtrip(value: Mapping[str, Any]) -> dict:
        """``value`` as it reads back from the file (JSON types; NaN/inf kept as floats)."""
        if not isinstance(value, Mapping):
            raise TypeError(f"value must be a dict, got {type(value).__name__}")
        return from_json_text(to_json_text(value))

    def run(self, key: Mapping[str, Any], fn: Callable[[], Mapping[str, Any]]) -> dict:
        """Return the stored value of ``key``; otherwise compute ``fn()``, store it and return it."""
        found = self.get(key)
        if found is not None:
            return found
        return self.put(key, fn())

    def __repr__(self) -> str:
        return f"ResultStore({str(self.path)!r}, units={len(self)})"
