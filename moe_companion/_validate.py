"""The one place where parameters are checked.

Every public function validates its inputs here, before any heavy work, and raises a
``ValueError`` (or ``TypeError``) whose message starts with the parameter's name, e.g.
``ValueError: sigma2 must be >= 0, got -1``.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = [
    "check_scalar",
    "check_int",
    "check_array",
    "check_probabilities",
    "check_spd",
    "check_choice",
    "check_keys",
    "check_seed",
    "check_random_state",
    "check_size",
    "MAX_ELEMENTS",
]

#: Largest array (number of float64 elements, 4 GiB) a sampler may allocate at once.
MAX_ELEMENTS = 500_000_000


def _fmt(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return np.array2string(value, threshold=8, precision=4)
    return repr(value)


def check_scalar(
    value: Any,
    name: str,
    *,
    lower: float | None = None,
    upper: float | None = None,
    lower_inclusive: bool = True,
    upper_inclusive: bool = True,
) -> float:
    """Return ``value`` as a finite float, checking optional bounds.

    Raises
    ------
    TypeError
        If ``value`` is not a real number (bools are refused).
    ValueError
        If it is not finite or lies outside the bounds.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.ndarray)):
        raise TypeError(f"{name} must be a real number, got {_fmt(value)}")
    if isinstance(value, np.ndarray):
        if value.ndim != 0:
            raise TypeError(f"{name} must be a scalar, got an array of shape {value.shape}")
        value = value.item()
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if lower is not None:
        if lower_inclusive and value < lower:
            raise ValueError(f"{name} must be >= {lower:g}, got {value:g}")
        if not lower_inclusive and value <= lower:
            raise ValueError(f"{name} must be > {lower:g}, got {value:g}")
    if upper is not None:
        if upper_inclusive and value > upper:
            raise ValueError(f"{name} must be <= {upper:g}, got {value:g}")
        if not upper_inclusive and value >= upper:
            raise ValueError(f"{name} must be < {upper:g}, got {value:g}")
    return value


def check_int(value: Any, name: str, *, lower: int | None = None, upper: int | None = None) -> int:
    """Return ``value`` as an ``int`` (integral floats such as ``3.0`` are refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer, got {_fmt(value)}")
    value = int(value)
    if lower is not None and value < lower:
        raise ValueError(f"{name} must be >= {lower}, got {value}")
    if upper is not None and value > upper:
        raise ValueError(f"{name} must be <= {upper}, got {value}")
    return value


def check_array(
    value: Any,
    name: str,
    *,
    ndim: int | Iterable[int] | None = None,
    shape: tuple[int | None, ...] | None = None,
    lower: float | None = None,
    lower_inclusive: bool = True,
) -> np.ndarray:
    """Return ``value`` as a finite float64 array, checking dimension, shape and a lower bound.

    ``shape`` may contain ``None`` for a free axis.
    """
    raw = value if isinstance(value, np.ndarray) else None
    if raw is None:
        try:
            raw = np.asarray(value)
        except (TypeError, ValueError):  # ragged nesting
            raise TypeError(f"{name} must be an array of real numbers, got {_fmt(value)}") from None
    # strings ("0.5") and bools are not numbers, even though numpy would convert them
    if raw.dtype.kind in "USb" or (
        raw.dtype.kind == "O" and any(isinstance(x, (str, bytes, bool, np.bool_)) for x in raw.ravel())
    ):
        raise TypeError(f"{name} must be an array of real numbers, got {_fmt(value)}")
    try:
        arr = np.asarray(raw, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of real numbers, got {_fmt(value)}") from None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimension(s), got shape {arr.shape}")
    if shape is not None:
        if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
            want = "(" + ", ".join("n" if s is None else str(s) for s in shape) + ")"
            raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    if arr.size and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite values, got {_fmt(arr)}")
    if lower is not None and arr.size:
        bad = arr < lower if lower_inclusive else arr <= lower
        if np.any(bad):
            op = ">=" if lower_inclusive else ">"
            raise ValueError(f"{name} must be {op} {lower:g} everywhere, got min {arr.min():g}")
    return arr


def check_probabilities(value: Any, name: str = "p", *, atol: float = 1e-9) -> np.ndarray:
    """Return a probability vector: 1-D, finite, every entry > 0 and summing to 1."""
    p = check_array(value, name, ndim=1)
    if p.size == 0:
        raise ValueError(f"{name} must have at least one entry")
    if np.any(p <= 0):
        raise ValueError(f"{name} must be on the simplex with every entry > 0, got {_fmt(p)}")
    if abs(p.sum() - 1.0) > atol:
        raise ValueError(f"{name} must sum to 1 (be on the simplex), got sum {p.sum():.6g}")
    return p


def check_spd(value: Any, name: str, *, rtol: float = 1e-10) -> np.ndarray:
    """Return a symmetric positive definite matrix (symmetrised exactly), or raise.

    Both tests are relative to the matrix's own scale (its largest entry), so ``1e-12 * I`` is accepted
    and ``1e300 * I`` too; a smallest eigenvalue below ``rtol`` times that scale is refused.
    """
    a = check_array(value, name, ndim=2)
    if a.shape[0] != a.shape[1] or a.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty square matrix, got shape {a.shape}")
    scale = float(np.abs(a).max())
    if not np.allclose(a, a.T, rtol=0.0, atol=rtol * scale * 10):
        raise ValueError(f"{name} must be symmetric, max |A - A^T| = {np.abs(a - a.T).max():.3g}")
    a = 0.5 * (a + a.T)
    lam_min = np.linalg.eigvalsh(a)[0]
    if lam_min <= rtol * scale:
        raise ValueError(f"{name} must be positive definite, smallest eigenvalue {lam_min:.3g}")
    return a


def check_size(n: int, width: int, name: str = "n", *, limit: int | None = None) -> int:
    """Return ``n`` if an ``(n, width)`` float array stays within ``limit`` elements (:data:`MAX_ELEMENTS`).

    Raises a ``ValueError`` naming ``name`` before any allocation, instead of numpy's MemoryError.
    """
    limit = MAX_ELEMENTS if limit is None else limit
    width = max(int(width), 1)
    if n * width > limit:
        raise ValueError(
            f"{name} is too large: {n:,} x {width:,} = {n * width:,} floats "
            f"({8 * n * width / 2**30:.3g} GiB) exceed the limit MAX_ELEMENTS = {limit:,}; "
            f"use a smaller {name} or draw in batches"
        )
    return n


def check_choice(value: Any, name: str, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_keys(mapping: Any, required: Iterable[str], name: str = "params") -> dict:
    """Return ``dict(mapping)`` if it has every key of ``required``."""
    missing = set(required) - set(mapping)
    if missing:
        raise ValueError(f"{name} is missing {sorted(missing)}")
    return dict(mapping)


def check_seed(seed: Any, name: str = "seed") -> int:
    """Return a non-negative integer seed."""
    return check_int(seed, name, lower=0)


def check_random_state(seed: Any, name: str = "seed") -> np.random.Generator:
    """A ``numpy.random.Generator`` from ``seed`` (like scikit-learn's ``check_random_state``).

    ``seed`` is a non-negative int (same seed, same numbers), ``None`` (fresh entropy) or a ``Generator``
    (used as is, so a caller can thread one stream through several functions). Global state is never used.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng()
    if isinstance(seed, np.random.RandomState):
        raise TypeError(f"{name} must be an int, None or a numpy Generator, got a legacy RandomState")
    return np.random.default_rng(check_seed(seed, name))
