"""Heavy chapter "Modular structure in MLP activations" (Sec. 5, App. B.1, Figs. 1 and 7-10).

Figures and findings from the chapter's stored results (``book/generated/results/modular_structure-<profile>.jsonl``,
written by :mod:`moe_companion.heavy.modular`); nothing here loads a model.  :func:`published` reads the
parameters the published notebook ran with (``book/generated/modular_structure.run.json``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import plotly.graph_objects as go

from .. import findings as F
from .. import style
from ..figures import FigureSpec
from ..heavy import modular

TITLE = "Modular structure (Sec. 5, App. B.1)"
_BOOK = Path(__file__).resolve().parents[2] / "book"
_NULL_LABEL = {"shuffle": "column shuffle", "partition": "random partition", "spectrum": "rotated spectrum"}


def published(profile: str = "cpu") -> tuple[dict, list[dict]]:
    """Parameters and records of the published notebook (its run record; the profile's defaults before one)."""
    params = dict(modular.PROFILES[profile])
    run = _BOOK / "generated" / "modular_structure.run.json"
    if run.is_file():
        rec = json.loads(run.read_text())
        if rec.get("profile") == profile and set(modular.PROFILES[profile]) <= set(rec.get("params", {})):
            params = {k: rec["params"][k] for k in modular.PROFILES[profile]}
    path = _BOOK / "generated" / "results" / f"modular_structure-{profile}.jsonl"
    return params, modular.stored_records(params, path)


def short(name: str) -> str:
    """A model's short display name."""
    return name.split("/")[-1]


# ------------------------------------------------------------------------------ figures
def _outline(edges_tok, edges_feat) -> tuple[list, list]:
    xs, ys = [], []
    for b in range(len(edges_tok) - 1):
        t0, t1 = edges_tok[b] - 0.5, edges_tok[b + 1] - 0.5
        f0, f1 = edges_feat[b] - 0.5, edges_feat[b + 1] - 0.5
        if t1 <= t0 or f1 <= f0:
            continue
        xs += [round(f0, 2), round(f1, 2), round(f1, 2), round(f0, 2), round(f0, 2), None]
        ys += [round(t0, 2), round(t0, 2), round(t1, 2), round(t1, 2), round(t0, 2), None]
    return xs, ys


def _heatmap_spec(records, model, projection, allocation, title, caption) -> FigureSpec:
    table = {
        (r["layer"], r["sparsity"]): r
        for r in records
        if "heatmap" in r and r["model"] == model and r["projection"] == projection and r["allocation"] == allocation
    }
    if not table:
        raise ValueError(f"no heatmaps stored for {model} {projection} {allocation}")
    layers = sorted({k[0] for k in table})
    sps = sorted({k[1] for k in table})

    def traces(sparsity, layer=layers[0]):
        r = table[(min(layers, key=lambda x: abs(x - layer)), min(sps, key=lambda s: abs(s - sparsity)))]
        xs, ys = _outline(r["token_edges"], r["feature_edges"])
        return [
            go.Heatmap(
                z=r["heatmap"],
                zmin=0,
                zmax=100,
                colorscale="Viridis",
                colorbar=dict(title="percentile rank (%)", len=0.6),
                hovertemplate="%{z} %<extra></extra>",
            ),
            go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="white", width=1), hoverinfo="skip", showlegend=False),
        ]

    grid = {"layer": layers, "sparsity": sps} if len(layers) > 1 else {"sparsity": sps}
    return FigureSpec(
        traces,
        grid,
        initial={k: g[0] for k, g in grid.items()},
        labels={k: {"layer": "layer", "sparsity": "target sparsity s"}[k] for k in grid},
        fmt="{:g}",
        layout=dict(
            title=title,
            height=700,
            xaxis=style.axis("features (reordered by block)", showticklabels=False),
            yaxis=style.axis("tokens (reordered by block)", autorange="reversed", showticklabels=False),
        ),
        caption=caption,
    )


def _excess_spec(records, params) -> FigureSpec:
    groups = [
        (params["model"], "up", params["layers"], "accent"),
        (params["second_model"], "up", params["second_layers"], "router"),
    ]
    symbols = ["circle", "square", "diamond", "triangle-up", "x"]
    from scipy.stats import t as student

    def traces(null, allocation=0):
        name = modular.NULLS[int(round(null)) - 1]
        alloc = params["allocations"][min(int(round(allocation)), len(params["allocations"]) - 1)]
        out = [style.line([0, max(params["sparsities"])], [0, 0], "reference", "no excess", kind="reference")]
        for model, proj, layers, role in groups:
            for j, layer in enumerate(layers):
                xs, mean, se = [], [], []
                for s in params["sparsities"]:
                    c = modular.contrast(
                        records,
                        modular.excess(name),
                        model=model,
                        projection=proj,
                        allocation=alloc,
                        layer=layer,
                        sparsity=s,
                    )
                    xs.append(s)
                    mean.append(c["mean"])
                    se.append(c["se"])
                q = float(student.ppf(0.975, params["n_samples"] - 1))
                tr = style.points(
                    xs, mean, se, role, f"{short(model)} L{layer}", z=q, symbol=symbols[j % len(symbols)], group=model
                )
                tr.mode = "lines+markers"
                tr.line = dict(color=style.COLORS[role], width=1.5)
                out.append(tr)
        return out

    grid = {"null": [1, 2, 3], "allocation": list(range(len(params["allocations"])))}
    alloc_names = ", ".join(f"{i} {a}" for i, a in enumerate(params["allocations"]))
    return FigureSpec(
        traces,
        grid,
        initial={"null": 3, "allocation": 0},
        labels={
            "null": "null (1 shuffle, 2 partition, 3 rotated spectrum)",
            "allocation": f"allocation ({alloc_names})",
        },
        fmt="{:g}",
        layout=dict(
            height=620,  # no title: the legend takes the top on narrow screens
            legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
            margin=dict(t=150),
            xaxis=style.axis("target sparsity s (block level for greedy)"),
            yaxis=style.axis("E − E_null (mean, 95 % t interval)"),
        ),
        caption="Markers: mean excess of the model's diagonal enrichment over the chosen null, per "
        "layer and sparsity, with 95 % t intervals over the token samples; grey: zero.",
    )


def figures(records, params) -> dict[str, FigureSpec]:
    """The chapter's figure specs built from ``records`` of ``params`` (any profile)."""
    m, s2, g = params["model"], params["second_model"], params["gate_model"]
    out = {
        "fig10": _heatmap_spec(
            records,
            m,
            "up",
            "uniform",
            f"{short(m)}: up-projection input, uniform TEAL thresholds (Figs. 1 and 10)",
            "Reordered percentile heatmaps of the first model's MLP input after uniform TEAL "
            "pruning; sliders: layer and target sparsity; white squares: diagonal blocks.",
        ),
        "fig7": _heatmap_spec(
            records,
            m,
            "up",
            "greedy",
            f"{short(m)}: up-projection input, greedy TEAL thresholds (Fig. 7)",
            "Reordered percentile heatmaps of the first model's up-projection input after "
            "greedy TEAL pruning, at the layers mapped from 0, 16 and 31.",
        ),
        "fig8": _heatmap_spec(
            records,
            s2,
            "up",
            "greedy",
            f"{short(s2)}: up_proj input, greedy TEAL thresholds (Fig. 8)",
            "Reordered percentile heatmaps of the second model's up_proj input after greedy TEAL pruning.",
        ),
        "excess": _excess_spec(records, params),
    }
    if params["gate_layers"]:
        out["fig9"] = _heatmap_spec(
            records,
            g,
            "gate",
            "greedy",
            f"{short(g)}: gate_proj input at its own greedy threshold (Fig. 9)",
            "Reordered percentile heatmaps of the gate_proj input pruned at the gate "
            "sparsifier's own greedy threshold.",
        )
    return out


class _Published(Mapping):
    """``FIGURES``: the figure specs of the published cpu results, built on first use."""

    def __init__(self):
        self._specs = None

    def _load(self):
        if self._specs is None:
            self._specs = figures(*published("cpu")[::-1])
        return self._specs

    def __getitem__(self, name):
        return self._load()[name]

    def __iter__(self):
        return iter(self._load())

    def __len__(self):
        return len(self._load())


FIGURES = _Published()


# ------------------------------------------------------------------------------ tables
def threshold_table(records, params):
    """Greedy per-projection sparsities (sample 0) of every model and layer (pandas; display strings)."""
    import pandas as pd

    rows = []
    for r in modular.select(records, allocation="greedy", projection="up", sample=0):
        if r["sparsity"] == 0:
            continue
        row = {"model": short(r["model"]), "layer": r["layer"], "block sparsity s": style.fmt(r["sparsity"])}
        for name in ("gate", "up", "down"):
            val = r["projection_sparsities"].get(name)
            row[f"{name} sparsity"] = "—" if val is None else style.fmt(val)
        rows.append(row)
    return pd.DataFrame(rows)


def excess_table(records, params, allocation: str = "uniform"):
    """E and E − E_null (mean and 95 % t interval over token samples) per model, layer and sparsity."""
    import pandas as pd

    rows = []
    for model, layers in ((params["model"], params["layers"]), (params["second_model"], params["second_layers"])):
        for layer in layers:
            for s in params["sparsities"]:
                where = dict(model=model, projection="up", allocation=allocation, layer=layer, sparsity=s)
                e = modular.contrast(records, lambda r: r["enrichment"], **where)
                row = {"model": short(model), "layer": layer, "s": style.fmt(s), "E": style.fmt(e["mean"])}
                for null in modular.NULLS:
                    c = modular.contrast(records, modular.excess(null), **where)
                    cell = f"{style.fmt(c['mean'])} {style.fmt_interval(c['lo'], c['hi'])}"
                    row[f"E − E₀ ({_NULL_LABEL[null]})"] = cell
                rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------ findings
def _ci(c: Mapping, method: str, key: str):
    return F.interval(c["lo"], c["hi"], method, n=c["n"], key=key)


def findings(
    *, profile: str = "cpu", params: Mapping | None = None, results_path: str | None = None
) -> list[F.Finding]:
    """The chapter's verdicts from stored results: the published ones of ``profile`` by default, or those of
    ``params`` in the store ``results_path`` (a notebook run elsewhere)."""
    if params is None and results_path is None:
        params, recs = published(profile)
    else:
        params = modular.check_params(params if params is not None else modular.PROFILES[profile])
        path = results_path or _BOOK / "generated" / "results" / f"modular_structure-{profile}.jsonl"
        recs = modular.stored_records(params, path)
    m, s2, g = params["model"], params["second_model"], params["gate_model"]
    n = params["n_samples"]
    method = f"t interval over {n} disjoint token samples of {params['n_tokens']} tokens (paired by sample)"
    rule_what = "mean over layers and sparsities of E − E_null"
    uni = dict(model=m, projection="up", allocation="uniform")
    out = []
    claims = {
        "shuffle": 'App. B.1: "approximate modular-diagonal patterns persist" (Figs. 1, 7-10)',
        "partition": 'App. B.1: "approximate modular-diagonal patterns persist" (Figs. 1, 7-10)',
        "spectrum": 'App. B.1: "approximate modular-diagonal patterns persist" (Figs. 1, 7-10)',
    }
    statements = {
        "shuffle": "The model's diagonal enrichment exceeds that of its own activations with every feature "
        "shuffled over tokens (no co-activation at all).",
        "partition": "The clustered blocks beat random feature partitions of the same sizes.",
        "spectrum": "The model's enrichment exceeds that of a surrogate with the same per-neuron marginals and "
        "the same correlation spectrum but randomly rotated axes: the co-activation is aligned with "
        "the neurons, not just strong.",
    }
    for null in modular.NULLS:
        c = modular.contrast(recs, modular.excess(null), **uni)
        out.append(
            F.finding(
                f"modular_structure.beats_{null}",
                statement=statements[null] + f" ({short(m)}, uniform thresholds)",
                paper_claim=claims[null],
                value={"excess": c["mean"], "n_samples": n},
                uncertainty=_ci(c, method, "excess"),
                n_seeds=n,
                rule=F.difference("positive", what=f"{rule_what} ({_NULL_LABEL[null]})", key="excess"),
            )
        )
    hi, lo = max(params["heatmap_sparsities"]), min(params["heatmap_sparsities"])
    c = modular.contrast(recs, modular.excess("spectrum"), sparsity=hi, minus={"sparsity": lo}, **uni)
    out.append(
        F.finding(
            "modular_structure.more_at_high_sparsity",
            statement=f"The excess over the rotated-spectrum null is larger at sparsity {hi:g} than at {lo:g} "
            f"({short(m)}, uniform, mean over layers).",
            paper_claim='App. B.1: "The structure is more pronounced ... at higher sparsity levels."',
            value={"difference": c["mean"], "high": hi, "low": lo},
            uncertainty=_ci(c, method, "difference"),
            n_seeds=n,
            rule=F.difference("positive", what="(E − E_null) at high minus at low sparsity", key="difference"),
        )
    )
    for tag, model, layers in (("", m, params["layers"]), ("_second", s2, params["second_layers"])):
        c = modular.contrast(
            recs,
            modular.excess("spectrum"),
            model=model,
            projection="up",
            allocation="uniform",
            layer=layers[0],
            minus={"layer": layers[-1]},
        )
        out.append(
            F.finding(
                f"modular_structure.earlier_layers{tag}",
                statement=f"The excess over the rotated-spectrum null is larger in layer {layers[0]} than in layer "
                f"{layers[-1]} ({short(model)}, uniform, mean over sparsities).",
                paper_claim='App. B.1: "The structure is more pronounced in earlier decoder layers"',
                value={"difference": c["mean"], "first": layers[0], "last": layers[-1]},
                uncertainty=_ci(c, method, "difference"),
                n_seeds=n,
                rule=F.difference("positive", what="(E − E_null) in the first minus the last layer", key="difference"),
            )
        )
    per = {
        a: modular.contrast(recs, modular.excess("spectrum"), model=m, projection="up", allocation=a)
        for a in params["allocations"]
    }
    worst = min(per, key=lambda a: per[a]["lo"])
    out.append(
        F.finding(
            "modular_structure.both_strategies",
            statement=f"Under both TEAL allocations the excess over the rotated-spectrum null is positive "
            f"({short(m)}); the rule tests the weaker one ({worst}).",
            paper_claim='App. B.1: "this structure holds across both thresholding strategies"',
            value={**{a: per[a]["mean"] for a in per}, "worst": per[worst]["mean"]},
            uncertainty=_ci(per[worst], method, "worst"),
            n_seeds=n,
            rule=F.difference("positive", what="E − E_null of the weaker allocation", key="worst"),
        )
    )
    c = modular.contrast(recs, modular.excess("spectrum"), model=s2, projection="up", allocation="greedy")
    out.append(
        F.finding(
            "modular_structure.second_model",
            statement=f"On the second model ({short(s2)}, greedy thresholds) the excess over the rotated-spectrum "
            "null is positive.",
            paper_claim="App. B.1, Fig. 8: the same patterns on Llama-3.1-8B",
            value={"excess": c["mean"]},
            uncertainty=_ci(c, method, "excess"),
            n_seeds=n,
            rule=F.difference("positive", what=rule_what + " (rotated spectrum)", key="excess"),
        )
    )
    if params["gate_layers"]:
        c = modular.contrast(recs, modular.excess("spectrum"), model=g, projection="gate", allocation="greedy")
        out.append(
            F.finding(
                "modular_structure.gate_proj",
                statement=f"The gate_proj input pruned at its own greedy threshold ({short(g)}) shows an excess over "
                "the rotated-spectrum null.",
                paper_claim='App. B.1, Fig. 9: "similar patterns in the input activations to the gate_proj layers"',
                value={"excess": c["mean"]},
                uncertainty=_ci(c, method, "excess"),
                n_seeds=n,
                rule=F.difference("positive", what=rule_what + " (rotated spectrum)", key="excess"),
            )
        )
        gated = modular.select(recs, model=g, allocation="greedy", projection="up", sample=0)
        gaps = [abs(r["projection_sparsities"]["gate"] - r["projection_sparsities"]["up"]) for r in gated]
        ugap = [
            abs(r["projection_thresholds"]["gate"] - r["projection_thresholds"]["up"])
            for r in modular.select(recs, model=g, allocation="uniform", projection="up", sample=0)
        ] or [0.0]
        out.append(
            F.finding(
                "modular_structure.gate_up_thresholds",
                statement=f"TEAL's greedy walk gives gate_proj and up_proj different sparsities ({short(g)}); under "
                "uniform allocation their thresholds coincide (the two read the same tensor).",
                paper_claim='App. B.1: Figure 9 "further support[s] the consistency of this phenomenon"',
                value={"max_gap": float(max(gaps)), "uniform_gap": float(max(ugap))},
                rule=F.exact(
                    ">", 0.0, what="largest |s_gate − s_up| of the greedy lookup over layers and targets", key="max_gap"
                ),
            )
        )
    return out
