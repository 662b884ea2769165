"""Findings as data: every verdict of the book is computed from a value, its uncertainty and a stated rule.

A :class:`Finding` records what the book claims (``statement``), the paper's words it tests
(``paper_claim``, quoted with its section, or ``None``), the measured ``value`` (a number or a small dict of
named numbers), its ``uncertainty`` (``None`` only for exact, closed-form values), the number of seeds, the
``rule`` that turns value and uncertainty into a verdict, and the ``verdict`` itself, which is never typed:
:func:`finding` computes it from the rule.

Verdicts (about the paper's claim when there is one, else about the book's statement):

``holds``
    the rule's interval (or exact value) lies on the paper's side;
``fails``
    it lies on the other side;
``inconclusive``
    the 95 % interval of the tested difference contains the decision threshold ("not reproduced at this scale");
``depends``
    the claim turns on a reading or a regime, which the rule names.

Chapter modules (:mod:`moe_companion.chapters`) build their findings with :func:`finding` (and the calibration
finding of a Monte Carlo overlay, one rule book-wide, with :func:`calibration`); pages glue them
with :func:`publish` and quote numbers with ``{glue:text}`KEY:.3f```. :func:`registry` collects every
chapter's findings (cached on disk, keyed on the package's source and the arguments) for the errata page and
the ``python -m moe_companion findings`` command.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "VERDICTS",
    "Z95",
    "Uncertainty",
    "Rule",
    "Finding",
    "finding",
    "se",
    "interval",
    "difference",
    "agreement",
    "exact",
    "depends",
    "EXPECTED_2SE",
    "CALIBRATION_TOL",
    "calibration",
    "publish",
    "table_markdown",
    "show",
    "errata_table",
    "registry",
    "compute",
    "JSON_KEYS",
]

VERDICTS = ("holds", "fails", "inconclusive", "depends")
#: Two-sided 95 % normal quantile.
Z95 = 1.959963984540054
JSON_KEYS = ("id", "chapter", "statement", "paper_claim", "value", "uncertainty", "n_seeds", "verdict", "rule")
_RELATIONS = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b}


# ------------------------------------------------------------------------------------------- uncertainty
@dataclass(frozen=True)
class Uncertainty:
    """Uncertainty of a finding's tested quantity.

    ``kind`` is ``"se"`` (a standard error; the interval is ``value ± Z95·se``) or ``"ci"`` (an interval
    ``[lo, hi]`` given directly, e.g. from a bootstrap). ``method`` says how it was obtained
    ("Monte Carlo over 200 000 draws", "bootstrap over test examples and 5 seeds", ...). ``key`` names the
    entry of a dict ``value`` it belongs to (``None`` for a scalar value).
    """

    kind: str
    method: str
    se: float | None = None
    lo: float | None = None
    hi: float | None = None
    level: float = 0.95
    n: int | None = None
    key: str | None = None

    def __post_init__(self):
        if self.kind not in ("se", "ci"):
            raise ValueError(f"uncertainty kind must be 'se' or 'ci', got {self.kind!r}")
        if self.kind == "se" and (self.se is None or not self.se >= 0):
            raise ValueError(f"uncertainty se must be >= 0, got {self.se!r}")
        if self.kind == "ci" and (self.lo is None or self.hi is None or not self.lo <= self.hi):
            raise ValueError(f"uncertainty needs lo <= hi, got [{self.lo!r}, {self.hi!r}]")
        if not 0 < self.level < 1:
            raise ValueError(f"uncertainty level must be in (0, 1), got {self.level!r}")

    def bounds(self, value: float) -> tuple[float, float]:
        """The interval ``(lo, hi)`` around ``value`` at this uncertainty's level."""
        if self.kind == "ci":
            return float(self.lo), float(self.hi)
        if abs(self.level - 0.95) > 1e-12:
            from scipy.stats import norm

            z = float(norm.ppf(0.5 + self.level / 2))
        else:
            z = Z95
        return float(value - z * self.se), float(value + z * self.se)

    def to_json(self) -> dict:
        out = {"kind": self.kind, "method": self.method, "level": self.level}
        for name in ("se", "lo", "hi", "n", "key"):
            val = getattr(self, name)
            if val is not None:
                out[name] = val
        return out


def se(value_se: float, method: str, *, n: int | None = None, key: str | None = None) -> Uncertainty:
    """A standard-error uncertainty (95 % interval ``± 1.96 se``)."""
    return Uncertainty("se", method, se=float(value_se), n=n, key=key)


def interval(
    lo: float, hi: float, method: str, *, level: float = 0.95, n: int | None = None, key: str | None = None
) -> Uncertainty:
    """An interval uncertainty given directly (e.g. a bootstrap percentile interval)."""
    return Uncertainty("ci", method, lo=float(lo), hi=float(hi), level=level, n=n, key=key)


# ------------------------------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class Rule:
    """A stated criterion that turns ``(value, uncertainty)`` into a verdict.

    Build rules with :func:`difference`, :func:`agreement`, :func:`exact` or :func:`depends`; ``text`` is the
    sentence the book prints, ``params`` what :meth:`decide` needs (kept so a test can recompute it).
    """

    kind: str
    text: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def tested(self, value) -> float:
        """The number the rule looks at: ``value`` itself, or ``value[params['key']]``."""
        key = self.params.get("key")
        if key is None:
            if isinstance(value, Mapping):
                raise ValueError(f"rule {self.kind!r} needs key= to pick one entry of a dict value")
            return float(value)
        if not isinstance(value, Mapping) or key not in value:
            raise ValueError(f"rule {self.kind!r} looks for value[{key!r}], which the finding does not have")
        return float(value[key])

    def decide(self, value, uncertainty: Uncertainty | None) -> str:
        """The verdict this rule gives for ``value`` with ``uncertainty``."""
        if self.kind == "depends":
            return "depends"
        x = self.tested(value)
        if not math.isfinite(x):
            return "inconclusive"
        p = self.params
        if self.kind == "exact":
            if uncertainty is not None:
                raise ValueError("an exact rule takes no uncertainty (the value is a closed form)")
            return "holds" if _RELATIONS[p["relation"]](x, p["threshold"]) else "fails"
        if uncertainty is None:
            raise ValueError(f"rule {self.kind!r} needs an uncertainty")
        lo, hi = uncertainty.bounds(x)
        if self.kind == "difference":
            thr = p["threshold"]
            above, below = lo > thr, hi < thr
            if p["direction"] == "positive":
                return "holds" if above else "fails" if below else "inconclusive"
            return "holds" if below else "fails" if above else "inconclusive"
        if self.kind == "agreement":
            tol = p["tol"]
            if -tol <= lo and hi <= tol:
                return "holds"
            if lo > tol or hi < -tol:
                return "fails"
            return "inconclusive"
        raise ValueError(f"unknown rule kind {self.kind!r}")


def difference(direction: str, *, what: str, threshold: float = 0.0, key: str | None = None) -> Rule:
    """Directional rule: the paper says ``what`` is above (``"positive"``) or below (``"negative"``) ``threshold``.

    ``holds`` when the interval lies entirely on the paper's side of ``threshold``, ``fails`` when it lies
    entirely on the other side, otherwise ``inconclusive``.
    """
    if direction not in ("positive", "negative"):
        raise ValueError(f"direction must be 'positive' or 'negative', got {direction!r}")
    side = ">" if direction == "positive" else "<"
    thr = f"{threshold:g}"
    text = (
        f"{what}: the 95 % interval lies {side} {thr} (the paper's side) → holds; "
        f"entirely on the other side → fails; contains {thr} → inconclusive"
    )
    return Rule("difference", text, {"direction": direction, "threshold": float(threshold), "key": key})


def agreement(tol: float, *, what: str, key: str | None = None) -> Rule:
    """Equivalence rule for "formula = simulation": the interval of the difference must lie within ``±tol``.

    ``holds`` when the whole interval lies within ``[-tol, tol]``, ``fails`` when it lies entirely outside
    it, otherwise ``inconclusive``.
    """
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol!r}")
    text = (
        f"{what}: the 95 % interval lies within ±{tol:g} → holds; entirely outside ±{tol:g} → fails; "
        "otherwise inconclusive"
    )
    return Rule("agreement", text, {"tol": float(tol), "key": key})


def exact(relation: str, threshold: float = 0.0, *, what: str, key: str | None = None) -> Rule:
    """Rule for an exact (closed-form, deterministic) value: ``holds`` iff ``value relation threshold``."""
    if relation not in _RELATIONS:
        raise ValueError(f"relation must be one of {sorted(_RELATIONS)}, got {relation!r}")
    text = f"{what} (exact, no sampling error) {relation} {threshold:g} → holds, otherwise fails"
    return Rule("exact", text, {"relation": relation, "threshold": float(threshold), "key": key})


def depends(readings: Mapping[str, str], *, what: str) -> Rule:
    """A claim that turns on an interpretation: ``readings`` maps each reading's name to its outcome."""
    if len(readings) < 2:
        raise ValueError(f"readings must name at least two readings, got {dict(readings)!r}")
    named = "; ".join(f"{name}: {outcome}" for name, outcome in readings.items())
    return Rule("depends", f"{what} depends on the reading — {named}", {"readings": dict(readings)})


# ---------------------------------------------------------------------------------------------- findings
@dataclass(frozen=True)
class Finding:
    """One verdict of the book. Build it with :func:`finding` (which computes ``verdict``)."""

    id: str
    chapter: str
    statement: str
    paper_claim: str | None
    value: Any
    uncertainty: Uncertainty | None
    n_seeds: int | None
    rule: Rule
    verdict: str

    def to_json(self) -> dict:
        """The JSON object of ``findings --json``: exactly :data:`JSON_KEYS`."""
        return {
            "id": self.id,
            "chapter": self.chapter,
            "statement": self.statement,
            "paper_claim": self.paper_claim,
            "value": _jsonable(self.value),
            "uncertainty": None if self.uncertainty is None else self.uncertainty.to_json(),
            "n_seeds": self.n_seeds,
            "verdict": self.verdict,
            "rule": self.rule.text,
        }

    def interval(self) -> tuple[float, float] | None:
        """The 95 % interval of the rule's tested quantity (``None`` for exact or ``depends`` findings)."""
        if self.uncertainty is None or self.rule.kind == "depends":
            return None
        return self.uncertainty.bounds(self.rule.tested(self.value))


def _jsonable(value):
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _check_value(value, name: str):
    if isinstance(value, Mapping):
        if not value:
            raise ValueError(f"{name} must not be an empty dict")
        return {str(k): _check_value(v, f"{name}[{k!r}]") for k, v in value.items()}
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "item"):
        raise TypeError(f"{name} must be a number or a dict of numbers, got {type(value).__name__}")
    return float(value)


def finding(
    id: str,
    *,
    statement: str,
    rule: Rule,
    value,
    uncertainty: Uncertainty | None = None,
    paper_claim: str | None = None,
    n_seeds: int | None = None,
    chapter: str | None = None,
) -> Finding:
    """Build a :class:`Finding`; its verdict is ``rule.decide(value, uncertainty)``.

    ``id`` is ``"<chapter>.<slug>"`` (letters, digits, ``_`` and ``-`` in the slug); ``chapter`` defaults
    to the part before the dot. A stochastic finding (a ``difference`` or ``agreement`` rule) must carry an
    uncertainty.
    """
    if (
        not isinstance(id, str)
        or id.count(".") != 1
        or not all(part.replace("_", "").replace("-", "").isalnum() for part in id.split("."))
    ):
        raise ValueError(f"id must look like '<chapter>.<slug>', got {id!r}")
    chapter = chapter or id.split(".")[0]
    if id.split(".")[0] != chapter:
        raise ValueError(f"id {id!r} must start with its chapter {chapter!r}")
    if not isinstance(statement, str) or not statement.strip():
        raise ValueError("statement must be a non-empty sentence")
    if not isinstance(rule, Rule):
        raise TypeError(f"rule must be a Rule (findings.difference/agreement/exact/depends), got {rule!r}")
    value = _check_value(value, "value")
    if rule.kind in ("difference", "agreement") and uncertainty is None:
        raise ValueError(f"{id}: a {rule.kind} rule is stochastic and needs an uncertainty")
    if n_seeds is not None and (isinstance(n_seeds, bool) or not isinstance(n_seeds, int) or n_seeds < 1):
        raise ValueError(f"n_seeds must be a positive int or None, got {n_seeds!r}")
    verdict = rule.decide(value, uncertainty)
    return Finding(id, chapter, statement.strip(), paper_claim, value, uncertainty, n_seeds, rule, verdict)


# ------------------------------------------------------------------------------------------ calibration
#: Share of a standard normal within ±2: what a calibrated overlay's share within ±2 s.e. should be (s.e. from
#: many draws; see ``dof`` of :func:`calibration` for an s.e. from a few replicates).
EXPECTED_2SE = math.erf(math.sqrt(2.0))
#: The book-wide tolerance on ``excess_2se = share_2se − expected_2se`` (see :func:`calibration`).
CALIBRATION_TOL = 0.03


def calibration(
    id: str,
    *,
    figure: str,
    closed,
    mean,
    se,
    against: str = "its closed form",
    dof: int | None = None,
    paper_claim: str | None = None,
    n_seeds: int | None = None,
) -> Finding:
    """The calibration finding of a figure's Monte Carlo overlay against its closed form, over all slider states.

    The one calibration rule of the book: is the closed form within ±2 s.e. of the Monte Carlo estimate as
    often as it should be (95.45 %, or ``2 T_dof(2) − 1`` for an s.e. from few replicates), neither less nor
    more?

    Parameters
    ----------
    id : str
        The finding's id, ``"<chapter>.calibration_<figure>"``.
    figure : str
        The figure's name as the statement quotes it.
    closed, mean, se : array_like of float, one shape ``(...)``
        Every point of the overlay (all slider states and traces, in any shape, flattened): the closed form,
        the Monte Carlo estimate and its standard error. Points where one of the three is not finite, or
        ``se == 0``, are left out (and counted in ``value["left_out"]``).
    against : str, optional
        What the closed form is, as the statement names it.
    dof : int or None, optional
        Degrees of freedom of each s.e. when it is a sample standard deviation over a few replicates
        (``reps − 1``): ``z`` then follows Student's t and the calibrated share is ``2 T_dof(2) − 1``
        (0.8165 for 3 replicates). ``None`` (default): an s.e. from many draws, the normal 0.9545.
    paper_claim : str or None, optional
        The paper's words the finding tests, if any.
    n_seeds : int or None, optional
        Monte Carlo replicates behind each point, if one number.

    Returns
    -------
    Finding
        ``value`` holds ``share_2se`` and ``share_3se`` (shares of the points with
        ``|mean − closed| <= 2 se``, resp. ``3 se``; 0.9545 and 0.9973 for a normal ``z``), ``points`` (used),
        ``left_out``, ``max_abs_z`` (largest ``|mean − closed| / se``), ``expected_2se`` (the calibrated
        share: 0.9545, or its Student-t value for ``dof``) and ``excess_2se`` (``share_2se −
        expected_2se``, the tested quantity). ``uncertainty`` is the exact (Clopper–Pearson) 95 % interval
        of ``share_2se``, shifted by ``−expected_2se``. The rule is ``agreement(CALIBRATION_TOL)`` on
        ``excess_2se``.

    Raises
    ------
    ValueError
        If ``mean`` or ``se`` does not have the shape of ``closed``, if ``se`` has a negative entry, if no
        point has a finite closed form, mean and s.e. with ``se > 0``, or if ``dof`` is not a positive int.
    TypeError
        If ``closed``, ``mean`` or ``se`` is not an array of real numbers.

    Notes
    -----
    Why this rule. If the closed form is what the simulation estimates and the s.e. is right, ``z = (mean −
    closed) / se`` is close to standard normal and ``share_2se`` estimates ``2 Φ(2) − 1 = 0.9545``. The test
    is two-sided because miscalibration goes both ways: too few points within ±2 s.e. means a closed form
    off the simulation (bias) or too small an s.e.; too many means too large an s.e. (error bars that would
    hide a bias). It is an agreement (equivalence) rule: ``holds`` when the whole 95 % interval of the
    excess lies within ``±CALIBRATION_TOL``, ``fails`` when it lies entirely outside, else ``inconclusive``
    (too few points to tell). The tolerance 0.03 must stay below the head-room ``1 − 0.9545 = 0.0455``,
    else a share of 1 (every point inside, however large the s.e.) could never fail; the band
    ``[0.9245, 0.9845]`` is a true spread of the estimates between 0.83 and 1.13 times the stated s.e.
    The share is binomial, bounded by 1 and skewed near it, so its interval is the exact Clopper–Pearson one
    rather than a normal approximation (which spills over 1 and under-covers at a few dozen points). A
    share, unlike a χ² of the ``z``, is not swayed by a few heavy-tailed points (a noisy s.e.). An s.e.
    from a few replicates is itself noisy, so ``z`` is t-distributed and fewer points fall within ±2 s.e.
    even for an exact closed form; ``dof`` sets the reference share accordingly (the head-room is then
    larger, and the tolerance the same).

    The interval treats the points as independent draws (a chapter seeds each slider state apart, e.g. with
    ``chapters._common.state_seed``). At a share of 0.9545 it takes about 300 points to ``hold``, and
    about 240, all inside, to ``fail`` on over-coverage; fewer give ``inconclusive``.
    """
    import numpy as np
    from scipy.stats import beta, t

    if dof is not None and (isinstance(dof, bool) or not isinstance(dof, int) or dof < 1):
        raise ValueError(f"dof must be a positive int or None, got {dof!r}")
    expected = EXPECTED_2SE if dof is None else float(2 * t.cdf(2.0, dof) - 1)

    arrays = {}
    for name, x in (("closed", closed), ("mean", mean), ("se", se)):
        try:
            arrays[name] = np.asarray(x, dtype=float)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be an array of real numbers, got {x!r:.80}") from None
    shape = arrays["closed"].shape
    for name in ("mean", "se"):
        if arrays[name].shape != shape:
            raise ValueError(f"{name} must have the shape of closed {shape}, got {arrays[name].shape}")
    c, m, s = (arrays[name].ravel() for name in ("closed", "mean", "se"))
    if np.any(s < 0):
        raise ValueError(f"se must be >= 0, got {s[s < 0][:3]}")
    ok = np.isfinite(c) & np.isfinite(m) & np.isfinite(s) & (s > 0)
    if not ok.any():
        raise ValueError(f"closed, mean and se have no point with all three finite and se > 0 (of {c.size})")
    # (counted here, not in a maths module: the heavy chapters' findings import this module, and their run
    # cache must not depend on the theory modules)
    z = np.abs(m[ok] - c[ok]) / s[ok]
    n, k = int(z.size), int(np.sum(z <= 2))
    cal = {"share_2se": k / n, "share_3se": float(np.mean(z <= 3)), "max_abs_z": float(z.max())}
    lo = 0.0 if k == 0 else float(beta.ppf(0.025, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(0.975, k + 1, n - k))
    return finding(
        id,
        statement=f'The Monte Carlo points of the figure "{figure}" are calibrated against {against}: over all its '
        f"slider states the closed form lies within ±2 s.e. of {100 * expected:.1f} % of them, neither fewer (a "
        "biased closed form or too small an s.e.) nor more (too large an s.e.).",
        paper_claim=paper_claim,
        value={
            "share_2se": cal["share_2se"],
            "share_3se": cal["share_3se"],
            "points": n,
            "left_out": int(c.size - n),
            "max_abs_z": cal["max_abs_z"],
            "expected_2se": expected,
            "excess_2se": cal["share_2se"] - expected,
        },
        uncertainty=interval(
            lo - expected,
            hi - expected,
            f"Clopper–Pearson 95 % interval of the share over {n} points (as independent), less {expected:.4f}",
            n=n,
            key="excess_2se",
        ),
        n_seeds=n_seeds,
        rule=agreement(
            CALIBRATION_TOL,
            what=f"share of the points within ±2 s.e. minus its calibrated value {expected:.4f}"
            + ("" if dof is None else f" (Student t, {dof} degrees of freedom)")
            + " (below: biased closed form or s.e. too small; above: s.e. too large)",
            key="excess_2se",
        ),
    )


# ----------------------------------------------------------------------------------------- page helpers
def _glue_items(f: Finding) -> dict[str, Any]:
    from .style import fmt, fmt_interval

    items: dict[str, Any] = {
        f"{f.id}.verdict": f.verdict,
        f"{f.id}.rule": f.rule.text,
        f"{f.id}.statement": f.statement,
    }
    if isinstance(f.value, Mapping):
        items.update({f"{f.id}.{k}": v for k, v in f.value.items()})
    else:
        items[f"{f.id}.value"] = f.value
    if f.uncertainty is not None:
        if f.uncertainty.se is not None:
            items[f"{f.id}.se"] = f.uncertainty.se
        if f.rule.kind != "depends":
            lo, hi = f.interval()
            items[f"{f.id}.lo"], items[f"{f.id}.hi"] = lo, hi
            items[f"{f.id}.ci"] = fmt_interval(lo, hi)
    if f.n_seeds is not None:
        items[f"{f.id}.n_seeds"] = f.n_seeds
    items[f"{f.id}.summary"] = _summary(f, fmt)
    return items


def _summary(f: Finding, fmt) -> str:
    if isinstance(f.value, Mapping):
        key = f.rule.params.get("key")
        shown = f"{key} = {fmt(f.value[key])}" if key else ", ".join(f"{k} = {fmt(v)}" for k, v in f.value.items())
    else:
        shown = fmt(f.value)
    if f.uncertainty is not None and f.rule.kind != "depends":
        lo, hi = f.interval()
        shown += f" (95 % interval {fmt(lo)} to {fmt(hi)})"
    return shown


def publish(findings: Sequence[Finding], *, display: bool = False) -> dict[str, Any]:
    """Glue every finding for the page: ``ID.verdict``, ``ID.value`` (or ``ID.NAME`` per dict entry),
    ``ID.se``, ``ID.lo``, ``ID.hi``, ``ID.ci``, ``ID.n_seeds``, ``ID.rule``, ``ID.summary``.

    Quote them in the prose as ``{glue:text}`ID.value:.3f``` (numbers) or ``{glue:text}`ID.verdict```.
    Returns the glued mapping (also what a test compares with the page).
    """
    from myst_nb import glue

    items: dict[str, Any] = {}
    for f in findings:
        items.update(_glue_items(f))
    for key, val in items.items():
        glue(key, val, display=display)
    return items


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table_markdown(findings: Sequence[Finding], *, links: Mapping[str, str] | None = None, ids: bool = False) -> str:
    """A Markdown table of findings: statement, verdict, value with interval, rule (and chapter links, ids)."""
    from .style import fmt

    head = "| finding | verdict | value (95 % interval) | rule |" + (" chapter |" if links else "")
    sep = "|---|---|---|---|" + ("---|" if links else "")
    rows = [head, sep]
    for f in findings:
        claim = f"{_cell(f.statement)}" + (f"<br>*Paper:* {_cell(f.paper_claim)}" if f.paper_claim else "")
        if ids:
            claim += f"<br>`{f.id}`"
        row = f"| {claim} | **{f.verdict}** | {_cell(_summary(f, fmt))} | {_cell(f.rule.text)} |"
        if links:
            row += f" {links.get(f.chapter, '')} |"
        rows.append(row)
    return "\n".join(rows)


def errata_table(findings: Sequence[Finding]):
    """The errata page's summary: every finding, in toc order, with a link to its chapter (Markdown)."""
    from IPython.display import Markdown

    from . import chapters

    links = {}
    for name in {f.chapter for f in findings}:
        mod = chapters.module(name)
        target = chapters.page(name).replace(".md", ".html").replace(".ipynb", ".html")
        links[name] = f"[{getattr(mod, 'TITLE', name)}]({target})"
    return Markdown(table_markdown(findings, links=links, ids=True))


def show(findings: Sequence[Finding]):
    """Display ``findings`` as a Markdown table on the page (the evidence box beside a figure)."""
    from IPython.display import Markdown

    return Markdown(table_markdown(findings))


# ---------------------------------------------------------------------------------------------- registry
def _source_hash() -> str:
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    results = root.parent / "book" / "generated" / "results"
    if results.is_dir():  # heavy chapters' findings come from their stored results
        for path in sorted(results.glob("*.jsonl")):
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _cache_dir() -> Path | None:
    env = os.environ.get("MOE_FINDINGS_CACHE")
    if env == "off":
        return None
    return Path(env) if env else Path(__file__).resolve().parents[1] / "_build" / ".findings"


def _to_cache(f: Finding) -> dict:
    unc = (
        None
        if f.uncertainty is None
        else {k: getattr(f.uncertainty, k) for k in ("kind", "method", "se", "lo", "hi", "level", "n", "key")}
    )
    return {
        "id": f.id,
        "chapter": f.chapter,
        "statement": f.statement,
        "paper_claim": f.paper_claim,
        "value": f.value,
        "uncertainty": unc,
        "n_seeds": f.n_seeds,
        "rule": {"kind": f.rule.kind, "text": f.rule.text, "params": dict(f.rule.params)},
    }


def _from_cache(d: dict) -> Finding:
    unc = None if d["uncertainty"] is None else Uncertainty(**d["uncertainty"])
    return finding(
        d["id"],
        statement=d["statement"],
        rule=Rule(**d["rule"]),
        value=d["value"],
        uncertainty=unc,
        paper_claim=d["paper_claim"],
        n_seeds=d["n_seeds"],
        chapter=d["chapter"],
    )


def compute(chapter: str, *, use_cache: bool = True, **kwargs) -> tuple[list[Finding], str]:
    """Findings of one chapter module and how they were obtained (``"computed"`` or ``"cached"``).

    The cache (``_build/.findings/``, or ``$MOE_FINDINGS_CACHE``; ``off`` disables it) is keyed on the
    chapter, ``kwargs`` and a hash of the package's sources and stored heavy results, so a change to any of
    them recomputes.
    """
    from . import chapters

    module = chapters.module(chapter)
    cache = _cache_dir() if use_cache else None
    path = None
    if cache is not None:
        key = hashlib.sha256(
            json.dumps([chapter, kwargs, _source_hash()], sort_keys=True, default=str).encode()
        ).hexdigest()[:16]
        path = cache / f"{chapter}-{key}.json"
        if path.is_file():
            try:
                return [_from_cache(d) for d in json.loads(path.read_text())], "cached"
            except (ValueError, TypeError, KeyError):
                pass  # unreadable or from an older format: recompute
    out = list(module.findings(**kwargs))
    for f in out:
        if not isinstance(f, Finding):
            raise TypeError(f"{chapter}.findings() returned {type(f).__name__}, expected Finding")
        if f.chapter != chapter:
            raise ValueError(f"{chapter}.findings() returned {f.id!r} of chapter {f.chapter!r}")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps([_to_cache(f) for f in out]))
        tmp.replace(path)  # atomic: a killed run leaves no half-written cache entry
    return out, "computed"


def registry(chapter: str | None = None, *, use_cache: bool = True) -> tuple[list[Finding], dict[str, str]]:
    """Every finding of the book (or of one chapter) in table-of-contents order, and how each chapter's were
    obtained (``{chapter: "computed" | "cached"}``). Ids are unique book-wide."""
    from . import chapters

    names = [chapter] if chapter is not None else chapters.names()
    if chapter is not None and chapter not in chapters.names():
        raise ValueError(f"chapter must be one of {chapters.names()}, got {chapter!r}")
    out, how = [], {}
    for name in names:
        found, how[name] = compute(name, use_cache=use_cache)
        out.extend(found)
    ids = [f.id for f in out]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"finding ids must be unique, repeated: {dup}")
    return out, how
