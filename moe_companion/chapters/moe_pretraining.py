"""Heavy chapter "MoE vs dense language-model pretraining" (newer version, summary only: MiniMind).

Figures and findings from the stored units (``book/generated/results/moe_pretraining-<profile>.jsonl``); the
experiment is :mod:`moe_companion.heavy.pretraining`.  Comparisons are paired (same batches, same
validation windows per seed); intervals: 95 % bootstrap resampling seeds and validation windows.
"""

from __future__ import annotations

from functools import cache, partial

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .. import findings as F
from .. import style
from ..figures import FigureSpec
from ..heavy import pretraining
from . import _heavy as H

TITLE = "MoE pretraining (newer version, summary only)"
CHAPTER = "moe_pretraining"
NEWER = "[newer version, summary only] "
CLAIM = NEWER + (
    "'[Figure 2] MiniMind training curves show MoE matching or exceeding dense convergence speed despite "
    "60% fewer active parameters' (paper-v2-summary.md, Mechanism 2)"
)
ROLE = {"moe": "sparse", "dense_total": "dense", "dense_active": "accent"}
LABEL = {"moe": "MoE", "dense_total": "dense, same total parameters", "dense_active": "dense, same active parameters"}


def use_results(profile: str, path, params=None) -> None:
    """The page's store (its ``results_path``) and parameters are what :func:`stored` reads for ``profile``."""
    H.use_results(CHAPTER, profile, path, params)


@cache
def stored(profile: str = "cpu", results_path: str | None = None) -> dict:
    """The stored result of ``profile`` (training nothing)."""
    params = H.params_of(CHAPTER, profile, pretraining.PROFILES[profile])
    return pretraining.load_result(params, results_path or H.results_path(CHAPTER, profile))


def curve_traces(split: float, *, result=None):
    """Loss curves (mean over seeds; bars: min/max over seeds) against training tokens; split 0 = val, 1 = train."""
    result = stored() if result is None else result
    key = ("val_loss", "train_loss")[int(round(split))]
    out = []
    for name, runs in result["runs"].items():
        ys = np.array([r[key] for r in runs])
        pc = result["params"][name]
        out.append(
            H.ci_points(
                runs[0]["tokens"],
                ys.mean(0),
                ys.min(0),
                ys.max(0),
                ROLE[name],
                f"{LABEL[name]} ({pc['active']:,} active / {pc['total']:,})",
                mode="lines",
            )
        )
    return out


def gap_traces(reference: float, *, result=None):
    """Validation loss minus the reference dense model's (per seed, then mean; bars: min/max over seeds)."""
    result = stored() if result is None else result
    ref = ("dense_active", "dense_total")[int(round(reference))]
    runs = result["runs"]
    base = np.array([r["val_loss"] for r in runs[ref]])
    out = []
    for name in runs:
        if name == ref:
            continue
        d = np.array([r["val_loss"] for r in runs[name]]) - base
        out.append(
            H.ci_points(
                runs[name][0]["tokens"], d.mean(0), d.min(0), d.max(0), ROLE[name], f"{LABEL[name]} − {LABEL[ref]}"
            )
        )
    out.append(H.zero_line(runs[ref][0]["tokens"]))
    return out


def load_traces(step: float, *, result=None):
    """Share of the top-k assignments per routed expert and MoE layer at one evaluation (mean over seeds)."""
    result = stored() if result is None else result
    runs = result["runs"]["moe"]
    i = runs[0]["steps"].index(int(round(step)))
    load = np.array([r["load"][i] for r in runs]).mean(0)
    colors = [style.COLORS[c] for c in ("sparse", "router", "posterior", "paper")]
    return [
        go.Bar(
            x=[f"expert {e}" for e in range(load.shape[1])],
            y=np.round(load[ell], 4).tolist(),
            name=f"layer {ell}",
            marker_color=colors[ell % len(colors)],
        )
        for ell in range(load.shape[0])
    ]


def figures(profile: str = "cpu") -> dict:
    """The chapter's figure specs, built from the stored results of ``profile``."""
    result = stored(profile)
    steps = result["runs"]["moe"][0]["steps"]
    pick = steps if len(steps) <= 12 else [steps[i] for i in np.linspace(0, len(steps) - 1, 12).astype(int)]
    E, k = result["configs"]["moe"]["n_routed"], result["configs"]["moe"]["top_k"]
    tokens = style.axis("training tokens")
    return {
        "curves": FigureSpec(
            partial(curve_traces, result=result),
            {"split": [0, 1]},
            labels={"split": "curve (0 = validation, 1 = training)"},
            fmt="{:.0f}",
            layout=dict(
                title="Loss against training tokens",
                xaxis=tokens,
                yaxis=style.axis("cross-entropy (nats per byte-level token)"),
                legend=dict(orientation="h", y=1.02, yanchor="bottom"),
                margin=dict(t=140),
            ),
            caption="Validation or training cross-entropy against training tokens for the MoE and the two dense "
            "models; lines are means over seeds, bars span the seeds.",
        ),
        "gap": FigureSpec(
            partial(gap_traces, result=result),
            {"reference": [0, 1]},
            labels={"reference": "reference (0 = same active, 1 = same total parameters)"},
            fmt="{:.0f}",
            layout=dict(
                title="Validation loss relative to a dense model (below 0: better)",
                xaxis=tokens,
                yaxis=style.axis("loss difference (nats per token)"),
                legend=dict(orientation="h", y=1.02, yanchor="bottom"),
                margin=dict(t=140),
            ),
            caption="Validation loss of each model minus that of the chosen dense reference, against training "
            "tokens; means over seeds, bars span the per-seed differences; zero line dotted.",
        ),
        "load": FigureSpec(
            partial(load_traces, result=result),
            {"step": pick},
            initial={"step": pick[-1]},
            labels={"step": "training step"},
            fmt="{:g}",
            layout=dict(
                title="Share of top-k assignments per routed expert",
                barmode="group",
                xaxis=style.axis("routed expert"),
                yaxis=style.axis("load (fraction)", range=[0, 1.1 / k]),
                shapes=[
                    dict(
                        type="line",
                        xref="paper",
                        x0=0,
                        x1=1,
                        y0=1 / E,
                        y1=1 / E,
                        line=dict(dash="dot", color=style.COLORS["reference"]),
                    )
                ],
            ),
            caption="Fraction of the top-k assignments each routed expert received, per MoE layer, averaged over "
            "seeds; the dotted line is the balanced share 1/E; the slider follows training.",
        ),
    }


FIGURES = H.LazyFigures(figures)


def parameter_table(result=None) -> pd.DataFrame:
    """The models compared, with total, active and router parameters (the router is counted)."""
    return pd.DataFrame(pretraining.parameter_table(stored() if result is None else result))


def summary_table(result=None) -> pd.DataFrame:
    """Final losses per variant (mean and s.d. over seeds) and wall time, formatted."""
    rows = pretraining.summarize(stored() if result is None else result)
    return pd.DataFrame(
        [
            {
                "variant": r["variant"],
                "total params": r["total_params"],
                "active params": r["active_params"],
                "router params": r["router_params"],
                "final val loss": f"{style.fmt(r['final_val_loss'], 4)} (s.d. {style.fmt(r['val_loss_sd'], 2)})",
                "final train loss": style.fmt(r["final_train_loss"], 4),
                "wall time per run (s)": style.fmt(r["seconds"], 3),
                "seeds": r["seeds"],
            }
            for r in rows
        ]
    )


def findings(profile: str = "cpu") -> list[F.Finding]:
    """MoE vs iso-active and iso-total dense (paired bootstrap), and the active-parameter recount (exact)."""
    result = stored(profile)
    c = result["configs"]["moe"]
    pc = result["params"]
    out = []
    for ref, what in (("dense_active", "the same active"), ("dense_total", "the same total (router included)")):
        if ref not in result["runs"]:
            continue
        cmp = pretraining.compare(result, ref)
        n = cmp["n_seeds"]
        out.append(
            F.finding(
                f"{CHAPTER}.moe_vs_{ref}",
                statement=f"Final validation loss of a dense model with {what} parameters minus the MoE's "
                "(> 0: the MoE is better).",
                paper_claim=CLAIM,
                value={
                    "d": cmp["diff"],
                    "dense_loss": cmp["ref_loss"],
                    "moe_loss": cmp["other_loss"],
                    "dense_params": float(pc[ref]["total"]),
                    "moe_total": float(pc["moe"]["total"]),
                    "moe_active": float(pc["moe"]["active"]),
                    "router": float(pc["moe"]["router"]),
                    "n_windows": float(cmp["n_windows"]),
                    "steps": float(result["runs"]["moe"][0]["steps"][-1]),
                },
                uncertainty=F.interval(
                    cmp["lo"],
                    cmp["hi"],
                    f"bootstrap over {n} seeds and {cmp['n_windows']} validation windows (paired)",
                    key="d",
                ),
                n_seeds=n,
                rule=F.difference("positive", what="dense − MoE final validation loss (nats per token)", key="d"),
            )
        )
    share = pretraining.active_ffn_share(c["n_routed"], c["n_shared"], c["top_k"])
    out.append(
        F.finding(
            f"{CHAPTER}.active_share_recount",
            statement=f"With {c['n_routed']} routed + {c['n_shared']} shared experts of equal width and top-{c['top_k']}, "
            "the share of FFN parameters active per token is (top_k + shared) / (routed + shared), so the MoE "
            "has 1 − share fewer active FFN parameters than a dense FFN of the same total size. '60 % fewer' "
            "would need an active share of two fifths, e.g. top-1 with 4 routed + 1 shared, or top-2 of 5 routed "
            "experts without a shared one.",
            paper_claim=CLAIM,
            value={
                "share": share,
                "fewer": 1 - share,
                "top1_share": pretraining.active_ffn_share(4, 1, 1),
                "no_shared_share": pretraining.active_ffn_share(5, 0, 2),
                "model_active_share": pc["moe"]["active"] / pc["moe"]["total"],
                "model_fewer_vs_total": 1 - pc["moe"]["active"] / pc["dense_total"]["total"],
            },
            rule=F.exact(
                ">=",
                0.6,
                what="reduction in active FFN parameters vs a dense FFN of equal total size (exact count)",
                key="fewer",
            ),
        )
    )
    imb = pretraining.load_imbalance(result)
    loads = np.array([r["load"][-1] for r in result["runs"]["moe"]])  # (seeds, layers, E)
    per_seed = (loads.max(-1) / np.maximum(loads.min(-1), 1e-12)).mean(-1)
    n = per_seed.size
    out.append(
        F.finding(
            f"{CHAPTER}.router_balanced",
            statement="The auxiliary loss keeps the routing balanced: the largest/smallest expert load ratio at the "
            "last evaluation (mean over layers and seeds) is below the rule's threshold.",
            value={
                "last": float(per_seed.mean()),
                "first": imb["first"],
                "min_share": imb["min_share_last"],
                "max_share": imb["max_share_last"],
            },
            uncertainty=F.se(
                float(per_seed.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
                f"standard error over {n} seeds",
                n=n,
                key="last",
            ),
            n_seeds=n,
            rule=F.difference(
                "negative", threshold=1.5, what="max/min expert load ratio at the last evaluation", key="last"
            ),
        )
    )
    return out
