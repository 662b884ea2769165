"""Heavy chapter "MoE linear probes vs a dense Lasso probe under feature noise" (newer version, summary only).

Figures and findings from the stored units (``book/generated/results/linear_probes-<profile>.jsonl``); the
experiment is :mod:`moe_companion.heavy.probes`.  Intervals: 95 % bootstrap resampling seeds and test
examples (paired: both probes score the same noisy test inputs).  Every setting run is reported.
"""

from __future__ import annotations

import math
from functools import cache, partial

import pandas as pd

from .. import findings as F
from .. import style
from ..figures import FigureSpec
from ..heavy import probes
from . import _heavy as H

TITLE = "MoE linear probes (newer version, summary only)"
CHAPTER = "linear_probes"
NEWER = "[newer version, summary only] "
CLAIM = NEWER + (
    "'MoE-based linear probes consistently outperform dense Lasso baselines under feature noise, with "
    "performance drops reduced by up to 20% on classification tasks' (paper-v2-summary.md, Key Results)"
)
DROP_RULE = F.difference(
    "positive", what="dense drop − MoE drop (pp), paired bootstrap over seeds and test examples", key="d"
)
ACC_RULE = F.difference(
    "positive", what="MoE − dense noisy accuracy (pp), paired bootstrap over seeds and test examples", key="d"
)
CONDITION = {True: "noise in training, validation and test", False: "noise on the test activations only"}
SLUG = {True: "everywhere", False: "test_only"}
#: Drop reductions (a ratio) are quoted only where the dense drop is at least this many points.
MIN_DROP = 2.0


def use_results(profile: str, path, params=None) -> None:
    """The page's store (its ``results_path``) and parameters are what :func:`stored` reads for ``profile``."""
    H.use_results(CHAPTER, profile, path, params)


@cache
def stored(profile: str = "cpu", results_path: str | None = None) -> dict:
    """``{"rows", "settings", "task"}`` of the stored ``profile`` run (computing nothing)."""
    params = H.params_of(CHAPTER, profile, probes.PROFILES[profile])
    rows = probes.load_rows(params, results_path or H.results_path(CHAPTER, profile))
    task = params["tasks"][0]
    return {"rows": rows, "settings": probes.all_settings(rows, task=task), "task": task}


def _sel(settings, n_experts, noise_in_training):
    return [
        r
        for r in settings
        if r["n_experts"] == int(round(n_experts)) and r["noise_in_training"] == bool(round(noise_in_training))
    ]


def accuracy_traces(n_experts: float, noise_in_training: float, *, settings=None):
    """Dense and MoE test accuracy (%) against σ (σ = 0: clean) for one E and noise condition."""
    settings = stored()["settings"] if settings is None else settings
    rows = _sel(settings, n_experts, noise_in_training)
    x = [r["sigma"] for r in rows]
    return [
        style.line(x, [100 * r["dense_acc"] for r in rows], "dense", "dense Lasso probe"),
        style.line(x, [100 * r["moe_acc"] for r in rows], "sparse", f"MoE probe, E = {int(round(n_experts))}"),
    ]


def difference_traces(n_experts: float, noise_in_training: float, *, settings=None):
    """Paired differences (pp) against σ: MoE − dense accuracy, dense drop − MoE drop, 95 % intervals."""
    settings = stored()["settings"] if settings is None else settings
    rows = [r for r in _sel(settings, n_experts, noise_in_training) if r["sigma"] > 0]
    x = [r["sigma"] for r in rows]
    return [
        H.ci_points(
            x,
            [r["d_acc"] for r in rows],
            [r["d_acc_lo"] for r in rows],
            [r["d_acc_hi"] for r in rows],
            "sparse",
            "MoE − dense accuracy (paper: > 0)",
            scale=100,
        ),
        H.ci_points(
            x,
            [r["d_drop"] for r in rows],
            [r["d_drop_lo"] for r in rows],
            [r["d_drop_hi"] for r in rows],
            "router",
            "dense drop − MoE drop (paper: > 0)",
            scale=100,
            symbol="diamond",
            dash="dash",
        ),
        H.zero_line(x),
    ]


def figures(profile: str = "cpu") -> dict:
    """The chapter's figure specs, built from the stored results of ``profile``."""
    settings = stored(profile)["settings"]
    grid = {"n_experts": sorted({r["n_experts"] for r in settings}), "noise_in_training": [0, 1]}
    labels = {"n_experts": "experts E", "noise_in_training": "noise in training (0 = test only, 1 = everywhere)"}
    sigma_axis = style.axis("noise σ (in units of each feature's standard deviation)")
    return {
        "accuracy": FigureSpec(
            partial(accuracy_traces, settings=settings),
            grid,
            initial={"noise_in_training": 0},
            labels=labels,
            fmt="{:g}",
            layout=dict(
                title="Test accuracy against feature noise",
                xaxis=sigma_axis,
                yaxis=style.axis("test accuracy (%)"),
                margin=dict(t=140),
                legend=dict(orientation="h", y=1.02, yanchor="bottom"),
            ),
            caption="Dense Lasso probe and MoE probe test accuracy in percent against the noise level sigma; "
            "sliders choose the number of experts and whether the noise is also in training.",
        ),
        "difference": FigureSpec(
            partial(difference_traces, settings=settings),
            grid,
            initial={"noise_in_training": 0},
            labels=labels,
            fmt="{:g}",
            layout=dict(
                title="Paired differences MoE vs dense (95 % bootstrap intervals)",
                xaxis=sigma_axis,
                yaxis=style.axis("difference (percentage points)"),
                legend=dict(orientation="h", y=1.02, yanchor="bottom"),
                margin=dict(t=140),
            ),
            caption="MoE minus dense accuracy and dense minus MoE accuracy drop, in percentage points, against "
            "sigma, with 95 % intervals from a bootstrap over seeds and test examples; zero line dotted.",
        ),
    }


FIGURES = H.LazyFigures(figures)


def setting_findings(settings) -> list[F.Finding]:
    """One finding per (noise condition, E, σ > 0) and claim: every setting run, decided by the book-wide rule."""
    out = []
    for r in settings:
        if r["sigma"] <= 0:
            continue
        nit, E, s = r["noise_in_training"], r["n_experts"], r["sigma"]
        tag = f"{SLUG[nit]}_e{E}_s{str(s).replace('.', 'p')}"
        method = f"bootstrap over {r['n_seeds']} seeds and {r['n_test']} test examples (paired)"
        red = r["drop_reduction"]
        out.append(
            F.finding(
                f"{CHAPTER}.drop_{tag}",
                statement=f"{CONDITION[nit]}, E = {E}, σ = {s:g}: dense drop minus MoE drop.",
                paper_claim=CLAIM,
                value={
                    "d": H.pp(r["d_drop"]),
                    "dense_drop": H.pp(r["dense_drop"]),
                    "moe_drop": H.pp(r["moe_drop"]),
                    "reduction": red if math.isfinite(red) else float("nan"),
                },
                uncertainty=F.interval(H.pp(r["d_drop_lo"]), H.pp(r["d_drop_hi"]), method, key="d"),
                n_seeds=r["n_seeds"],
                rule=DROP_RULE,
            )
        )
        out.append(
            F.finding(
                f"{CHAPTER}.acc_{tag}",
                statement=f"{CONDITION[nit]}, E = {E}, σ = {s:g}: MoE minus dense noisy accuracy.",
                paper_claim=CLAIM,
                value={"d": H.pp(r["d_acc"]), "dense_acc": H.pp(r["dense_acc"]), "moe_acc": H.pp(r["moe_acc"])},
                uncertainty=F.interval(H.pp(r["d_acc_lo"]), H.pp(r["d_acc_hi"]), method, key="d"),
                n_seeds=r["n_seeds"],
                rule=ACC_RULE,
            )
        )
    return out


def settings_table(settings=None) -> pd.DataFrame:
    """All settings: accuracies, drops, drop reduction, paired differences with 95 % intervals, verdicts."""
    settings = stored()["settings"] if settings is None else settings
    found = {f.id: f for f in setting_findings(settings)}
    rows = []
    for r in settings:
        if r["sigma"] <= 0:
            continue
        tag = f"{SLUG[r['noise_in_training']]}_e{r['n_experts']}_s{str(r['sigma']).replace('.', 'p')}"
        drop, acc = found[f"{CHAPTER}.drop_{tag}"], found[f"{CHAPTER}.acc_{tag}"]
        rows.append(
            {
                "noise in training": "yes" if r["noise_in_training"] else "no",
                "E": r["n_experts"],
                "σ": f"{r['sigma']:g}",
                "dense acc (%)": style.fmt(100 * r["dense_acc"]),
                "MoE acc (%)": style.fmt(100 * r["moe_acc"]),
                "dense / MoE drop (pp)": f"{style.fmt(100 * r['dense_drop'])} / {style.fmt(100 * r['moe_drop'])}",
                "drop reduction [95 %]": f"{style.pct(r['drop_reduction'], 0)} "
                f"[{style.pct(r['drop_reduction_lo'], 0)}, "
                f"{style.pct(r['drop_reduction_hi'], 0)}]"
                if 100 * r["dense_drop"] >= MIN_DROP
                else "— (dense drop < 2 pp)",
                "dense − MoE drop (pp) [95 %]": f"{style.fmt(drop.value['d'])} {style.fmt_interval(*drop.interval())}",
                "smaller drop?": drop.verdict,
                "MoE − dense acc (pp) [95 %]": f"{style.fmt(acc.value['d'])} {style.fmt_interval(*acc.interval())}",
                "more accurate?": acc.verdict,
                "re-routed": style.pct(r["routing_flip"], 0),
                "params dense / MoE": f"{r['dense_params']} / {r['moe_params']}",
            }
        )
    return pd.DataFrame(rows)


def findings(profile: str = "cpu") -> list[F.Finding]:
    """Per noise condition and claim: the tally over all (E, σ) settings, and the largest drop reduction."""
    st = stored(profile)
    sets = setting_findings(st["settings"])
    out = []
    for nit in (False, True):
        for kind, what, rule in (
            ("drop", "dense drop − MoE drop", DROP_RULE),
            ("acc", "MoE − dense noisy accuracy", ACC_RULE),
        ):
            sel = [f for f in sets if f.id.startswith(f"{CHAPTER}.{kind}_{SLUG[nit]}_")]
            if not sel:
                continue
            pooled = probes.pooled_difference(st["rows"], task=st["task"], noise_in_training=nit, what=kind)
            value = {
                "d": H.pp(pooled["d"]),
                **{v: float(sum(f.verdict == v for f in sel)) for v in ("holds", "fails", "inconclusive")},
                "n_settings": float(len(sel)),
            }
            if kind == "drop":  # the largest drop reduction, where the dense drop is at least MIN_DROP pp
                rows = [
                    r
                    for r in st["settings"]
                    if r["noise_in_training"] == nit
                    and r["sigma"] > 0
                    and 100 * r["dense_drop"] >= MIN_DROP
                    and math.isfinite(r["drop_reduction"])
                ]
                if rows:
                    best = max(rows, key=lambda r: r["drop_reduction"])
                    value.update(
                        max_reduction=100 * best["drop_reduction"],
                        max_reduction_lo=100 * best["drop_reduction_lo"],
                        max_reduction_hi=100 * best["drop_reduction_hi"],
                        max_e=float(best["n_experts"]),
                        max_sigma=best["sigma"],
                        n_big=float(len(rows)),
                    )
            out.append(
                F.finding(
                    f"{CHAPTER}.{kind}_{SLUG[nit]}",
                    statement=f"{CONDITION[nit]}: {what} (pp), averaged over all {len(sel)} (E, σ) settings run (one "
                    "pre-specified aggregate, not the best setting); the value also counts the settings where "
                    "the claim holds, fails or is inconclusive one by one.",
                    paper_claim=CLAIM,
                    value=value,
                    n_seeds=sel[0].n_seeds,
                    uncertainty=F.interval(
                        H.pp(pooled["lo"]),
                        H.pp(pooled["hi"]),
                        f"bootstrap over {sel[0].n_seeds} seeds and the test examples, shared by all settings",
                        key="d",
                    ),
                    rule=rule,
                )
            )
    return out
