"""Chapter "Beyond linear models" (Sec. 3.1, App. B.3, Tables 2-3): dense vs MoE networks under feature noise.

Every figure, table and finding of the page comes from the experiments of :mod:`moe_companion.nonlinear`,
trained once per process: :func:`experiment`, :func:`sweep` and :func:`bigger_dense` are cached
(``functools.cache``), so the page's figures, tables and :func:`findings` share one training run.

Comparisons are *paired*: for one seed, the dense model and the MoE see the same training data, the same
test inputs and the same evaluation-noise draw, so the per-seed difference removes the data's own
variation. A difference "holds" only when its 95 % Student-t interval over the 5 seeds excludes 0 in the
paper's direction (the book-wide rule).
"""

from __future__ import annotations

import contextlib
import functools
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from .. import findings as F
from .. import nonlinear as nl
from .. import style
from ..figures import FigureSpec

TITLE = "Beyond linear models (App. B.3, Tables 2–3)"
#: The page's seeds (the paper's Table 3 lists seeds 1-4).
SEEDS = (1, 2, 3, 4, 5)
#: Table 3's noise level, also the level of the sensitivity check.
SIGMA = 0.1
#: Colour role of each model kind (moe_companion.style.COLORS).
ROLE = {"dense": "dense", "oracle": "sparse", "router": "router"}
#: Display labels, applied only when a figure or table is drawn.
LABELS = {"dense": "dense", "oracle": "MoE (oracle router)", "router": "MoE (learned router)"}
#: Sensitivity sweeps: name -> (task, hyper-parameter, values). Every setting is reported.
SWEEPS = {
    "regression_lr": ("regression", "lr", (1e-2, 3e-2, 1e-1)),
    "classification_lr": ("classification", "lr", (1e-2, 3e-2, 1e-1)),
    "classification_width": ("classification", "expert_hidden", (12, 24, 48)),
}
SWEEP_LABELS = {"lr": "learning rate", "expert_hidden": "expert width h"}
_METRIC_AXIS = {"regression": "test MSE (mean over seeds)", "classification": "test accuracy (%, mean over seeds)"}
_WHAT = {"metric": "noisy", "drop": "drop"}


# ------------------------------------------------------------------------------------------- experiments
@contextlib.contextmanager
def _one_thread():
    """torch on one thread while training (tiny tensors: more threads only spin), restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def experiment(task: str, seeds=SEEDS, **settings) -> nl.Experiment:
    """The chapter's experiment of ``task`` (all three kinds, every noise level), trained once per process."""
    return _experiment(task, tuple(seeds), tuple(sorted(settings.items())))


@functools.cache
def _experiment(task, seeds, items) -> nl.Experiment:
    with _one_thread():
        return nl.run_experiment(task, seeds, keep_models=True, **dict(items))


def sweep(name: str, seeds=SEEDS, **settings) -> dict:
    """Sensitivity sweep ``name`` of :data:`SWEEPS` (``{value: Experiment}``), trained once per process; the
    default value reuses :func:`experiment`."""
    if name not in SWEEPS:
        raise ValueError(f"name must be one of {sorted(SWEEPS)}, got {name!r}")
    return _sweep(name, tuple(seeds), tuple(sorted(settings.items())))


@functools.cache
def _sweep(name, seeds, items) -> dict:
    task, param, values = SWEEPS[name]
    settings = dict(items)
    base = experiment(task, seeds, **settings)
    with _one_thread():
        return nl.run_sensitivity(task, param, values, seeds, base=base, **settings)


def bigger_dense(seeds=SEEDS, **settings) -> nl.Experiment:
    """Classification: a dense network at least as large as the learned-router MoE, router counted."""
    return _bigger_dense(tuple(seeds), tuple(sorted(settings.items())))


@functools.cache
def _bigger_dense(seeds, items) -> nl.Experiment:
    settings = dict(items)
    counts = nl.parameter_counts("classification", **settings)
    cfg = nl.check_settings("classification", **settings)
    width = nl.dense_hidden_at_least(counts["router"]["total"], cfg["k"], cfg["block_dim"], cfg["n_classes"])
    with _one_thread():
        return nl.run_experiment("classification", seeds, kinds=("dense",), **{**settings, "dense_hidden": width})


def _interval(diffs) -> dict:
    return nl.paired_interval(diffs)


def _t(iv: dict) -> float:
    if iv["se"] == 0:
        return math.copysign(math.inf, iv["mean"]) if iv["mean"] else 0.0
    return iv["mean"] / iv["se"]


# ------------------------------------------------------------------------------------------------ figures
def _sweep_traces(name: str, value: float, *, seeds: tuple = SEEDS) -> list:
    task, param, values = SWEEPS[name]
    # nearest run on a log scale (the live explorer moves continuously between the runs)
    val = min(values, key=lambda x: abs(math.log(x) - math.log(max(value, 1e-12))))
    exp = sweep(name, seeds)[val]
    agg = exp.summary().groupby(["kind", "sigma"]).metric.agg(["mean", "std", "count"])
    traces = []
    for kind in nl.KINDS:
        sub = agg.loc[kind]
        se = (sub["std"] / np.sqrt(sub["count"])).fillna(0.0).to_numpy()
        x = sub.index.to_numpy()
        traces.append(
            style.line(x, sub["mean"], ROLE[kind], LABELS[kind], showlegend=False, group=kind, hoverinfo="skip")
        )
        # markers: the seeds' mean with a 95 % Student-t interval over seeds
        traces.append(
            style.points(x, sub["mean"], se, ROLE[kind], LABELS[kind], group=kind, z=_t_quantile(len(exp.seeds)))
        )
    return traces


def _t_quantile(n: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.975, n - 1)) if n > 1 else 0.0


def _sweep_spec(name: str) -> FigureSpec:
    task, param, values = SWEEPS[name]
    label = SWEEP_LABELS[param]
    return FigureSpec(
        functools.partial(_traces_for, name),
        {param: [float(x) for x in values]},
        initial={param: float(values[1])},
        labels={param: label},
        fmt="{:g}",
        layout=dict(
            title=dict(text=f"{task}, by {label}", y=0.98, yanchor="top", x=0, xref="paper"),
            xaxis=style.axis("test noise σ"),
            yaxis=style.axis(_METRIC_AXIS[task]),
            legend=dict(orientation="h", y=1.02, yanchor="bottom"),
            margin=dict(t=130),
        ),
        caption=f"{task}: mean test {'MSE' if task == 'regression' else 'accuracy'} over 5 seeds of the dense "
        f"model, the oracle-routed MoE and the learned-router MoE against the test noise σ, with 95 % "
        f"intervals over seeds; the slider picks the {label} ({', '.join(f'{x:g}' for x in values)}).",
    )


def _traces_for(name: str, **params) -> list:
    return _sweep_traces(name, float(next(iter(params.values()))))


def noise_traces(sigma: float, *, task: str = "classification", seeds=SEEDS, **settings) -> list:
    """The default run's trained models evaluated at test noise ``sigma`` (any value, not only the grid):
    mean test metric over seeds with its 95 % Student-t interval, one bar per model."""
    exp = experiment(task, seeds, **settings)
    z = _t_quantile(len(exp.seeds))
    traces = []
    for kind in nl.KINDS:
        per_seed = nl.evaluate(exp.models[kind], exp.data, float(sigma))["metric"][:, 0]
        se = per_seed.std(ddof=1) / np.sqrt(per_seed.size) if per_seed.size > 1 else 0.0
        traces.append(
            go.Bar(
                x=[LABELS[kind]],
                y=style._rounded([per_seed.mean()]),
                name=LABELS[kind],
                marker_color=style.COLORS[ROLE[kind]],
                error_y=dict(type="data", array=style._rounded([z * se]), visible=True),
            )
        )
    return traces


FIGURES = {name: _sweep_spec(name) for name in SWEEPS}
FIGURES["classification_noise"] = FigureSpec(
    noise_traces,
    {"sigma": list(nl.SIGMAS)},
    initial={"sigma": SIGMA},
    labels={"sigma": "test noise σ"},
    fmt="{:.2f}",
    layout=dict(
        title=dict(text="accuracy at test noise σ", y=0.98, yanchor="top", x=0, xref="paper"),
        yaxis=style.axis("test accuracy (%)", range=[0, 100]),
        xaxis=style.axis("model"),
        showlegend=False,
        margin=dict(t=80, l=60, r=20),
    ),
    caption="Classification: noisy test accuracy of the trained dense network, oracle-routed MoE and learned-router "
    "MoE at the chosen test noise σ, mean over 5 seeds with 95 % intervals; the slider moves σ.",
)


def curves_figure(seeds: tuple = SEEDS, **settings) -> go.Figure:
    """Training curves of the default runs: train loss and clean test metric per epoch, mean over seeds."""
    tasks = nl.TASKS
    exps = {task: experiment(task, seeds, **settings) for task in tasks}
    fig = make_subplots(
        rows=2,
        cols=2,
        shared_xaxes=True,
        vertical_spacing=0.1,
        horizontal_spacing=0.12,
        subplot_titles=[f"{t}: training loss" for t in tasks]
        + [f"{t}: clean test {exps[t].metric_name}" for t in tasks],
    )
    for col, task in enumerate(tasks, start=1):
        for kind, hist in exps[task].curves.items():
            for row, key in ((1, "train_loss"), (2, "test_clean")):
                arr = hist[key]
                ep = np.arange(1, arr.shape[1] + 1)
                fig.add_trace(
                    style.line(
                        ep, arr.mean(0), ROLE[kind], LABELS[kind], group=kind, showlegend=(row == 1 and col == 1)
                    ),
                    row=row,
                    col=col,
                )
        loss = "MSE" if task == "regression" else "cross-entropy"
        ticks = {} if task == "regression" else {"dtick": "D2"}  # 1-2-5 labels only on the short cross-entropy range
        fig.update_yaxes(style.log_axis(f"train {loss} (log)", **ticks), row=1, col=col)
        if task == "regression":
            fig.update_yaxes(style.log_axis("clean test MSE (log)"), row=2, col=col)
        else:
            fig.update_yaxes(style.axis("clean test accuracy (%)"), row=2, col=col)
        fig.update_xaxes(style.axis("epoch"), row=2, col=col)
    fig.update_layout(
        height=640,
        template=style.TEMPLATE,
        margin=dict(t=60),
        legend=dict(orientation="h", y=1.06, yanchor="bottom"),
        meta={
            "moe_caption": "Training curves, mean over 5 seeds: training loss (top) and clean test "
            "metric (bottom) per epoch, for regression (left) and classification "
            "(right), dense vs oracle-routed vs learned-router MoE."
        },
    )
    return fig


# ------------------------------------------------------------------------------------------------- tables
def settings_table(**settings) -> pd.DataFrame:
    """The companion's choices (the paper states none of them)."""
    cfg = {**nl.DEFAULTS, **settings}
    return pd.DataFrame([{k: ("matched" if val is None else val) for k, val in cfg.items()}], index=["value"])


def parameter_table(seeds: tuple = SEEDS, **settings) -> pd.DataFrame:
    """Parameters per model, the router's counted (issue 12 B5), with the dense / model ratio."""
    rows = []
    for task in nl.TASKS:
        counts = nl.parameter_counts(task, **settings)
        dense = counts["dense"]["total"]
        for kind in nl.KINDS:
            c = counts[kind]
            rows.append(
                {
                    "task": task,
                    "model": LABELS[kind],
                    "experts / layers": c["experts"],
                    "router": c["router"],
                    "total": c["total"],
                    "total / dense": style.fmt(c["total"] / dense),
                }
            )
    big = bigger_dense(seeds, **settings)
    n_big, n_dense = big.params["dense"], nl.parameter_counts("classification", **settings)["dense"]["total"]
    rows.append(
        {
            "task": "classification",
            "model": f"dense, width {big.settings['dense_hidden']}",
            "experts / layers": n_big,
            "router": 0,
            "total": n_big,
            "total / dense": style.fmt(n_big / n_dense),
        }
    )
    return pd.DataFrame(rows).set_index(["task", "model"])


def table2(part: str = "noisy", seeds: tuple = SEEDS, **settings) -> pd.DataFrame:
    """Table 2 side by side with the paper, mean ± std over seeds per σ (``part``: "noisy" or "drop")."""
    if part not in ("noisy", "drop"):
        raise ValueError(f"part must be one of 'noisy', 'drop'; got {part!r}")
    exp = experiment("regression", seeds, **settings)
    col = "metric" if part == "noisy" else "drop"
    agg = exp.summary().groupby(["kind", "sigma"])[col].agg(["mean", "std"])
    theory = nl.theorem3_clean_training(exp).groupby(level="sigma").mean()
    paper_i = (0, 1) if part == "noisy" else (2, 3)
    rows = []
    for s in nl.SIGMAS_TABLE2:
        row = {"σ": s}
        for kind in nl.KINDS:
            row[f"ours: {LABELS[kind]}"] = style.fmt_pm(agg.loc[(kind, s), "mean"], agg.loc[(kind, s), "std"])
        if part == "noisy":
            row["Theorem 3 (clean training): dense"] = style.fmt(theory.loc[s, "dense"])
            row["Theorem 3 (clean training): MoE"] = style.fmt(theory.loc[s, "oracle"])
        row["ours: dense / oracle MoE"] = style.fmt(agg.loc[("dense", s), "mean"] / agg.loc[("oracle", s), "mean"])
        dense, moe = (nl.PAPER_TABLE2[s][i] for i in paper_i)
        row["paper: dense"] = style.fmt_pm(*dense)
        row["paper: MoE"] = style.fmt_pm(*moe)
        row["paper: dense / MoE"] = style.fmt(dense[0] / moe[0])
        rows.append(row)
    return pd.DataFrame(rows).set_index("σ")


def table3(seeds: tuple = SEEDS, sigma: float = SIGMA, **settings) -> pd.DataFrame:
    """Table 3 side by side with the paper: noisy accuracy and drop (pp) per seed, then mean ± std."""
    exp = experiment("classification", seeds, **settings)
    summ = nl.at_sigma(exp, sigma)
    wide = summ.pivot_table(index="seed", columns="kind", values=["metric", "drop"])
    paper = nl.paper_table3()
    paper_cols = {"dense": ("dense", "dense_drop"), "oracle": ("oracle", "oracle_drop")}
    rows = []
    for seed in sorted(set(wide.index) | set(paper.index)):
        row = {"seed": str(seed)}
        for kind in nl.KINDS:
            ok = seed in wide.index
            row[f"ours {LABELS[kind]}: noisy acc (%)"] = style.fmt(wide.loc[seed, ("metric", kind)]) if ok else "–"
            row[f"ours {LABELS[kind]}: drop (pp)"] = style.fmt(wide.loc[seed, ("drop", kind)]) if ok else "–"
        for kind, (acc, drop) in paper_cols.items():
            ok = seed in paper.index
            row[f"paper {LABELS[kind]}: noisy acc (%)"] = style.fmt(paper.loc[seed, acc]) if ok else "–"
            row[f"paper {LABELS[kind]}: drop (pp)"] = style.fmt(paper.loc[seed, drop]) if ok else "–"
        rows.append(row)
    row = {"seed": "mean ± std"}
    for kind in nl.KINDS:
        for what, name in (("metric", "noisy acc (%)"), ("drop", "drop (pp)")):
            x = wide[(what, kind)]
            row[f"ours {LABELS[kind]}: {name}"] = style.fmt_pm(x.mean(), x.std())
    for kind, (acc, drop) in paper_cols.items():
        row[f"paper {LABELS[kind]}: noisy acc (%)"] = style.fmt_pm(paper[acc].mean(), paper[acc].std())
        row[f"paper {LABELS[kind]}: drop (pp)"] = style.fmt_pm(paper[drop].mean(), paper[drop].std())
    rows.append(row)
    return pd.DataFrame(rows).set_index("seed")


def advantage_table(task: str, kind: str = "oracle", seeds: tuple = SEEDS, **settings) -> pd.DataFrame:
    """Per σ, ``kind``'s paired advantage over the dense model (mean, 95 % interval, seeds won), both measures.

    Positive = ``kind`` better: lower noisy MSE / higher noisy accuracy, and smaller robustness drop.
    """
    exp = experiment(task, seeds, **settings)
    rows = []
    for s in nl.SIGMAS_TABLE2:
        row = {"σ": s}
        for what, name in (("metric", "noisy"), ("drop", "drop")):
            diffs = nl.advantage(exp, what, s, kind=kind)
            iv = _interval(diffs)
            row[f"{name}: advantage"] = style.fmt(iv["mean"])
            row[f"{name}: 95 % interval"] = style.fmt_interval(iv["lo"], iv["hi"])
            row[f"{name}: seeds won"] = f"{int((diffs > 0).sum())}/{diffs.size}"
        rows.append(row)
    return pd.DataFrame(rows).set_index("σ")


def sensitivity_table(seeds: tuple = SEEDS, sigma: float = SIGMA, **settings) -> pd.DataFrame:
    """Every setting of every sweep at ``sigma``: means, and the oracle MoE's paired advantage with its
    95 % interval and verdict (the book-wide rule) on the noisy metric and on the drop."""
    rows = []
    for name, (task, param, values) in SWEEPS.items():
        runs = sweep(name, seeds, **settings)
        for val in values:
            exp = runs[val]
            means = nl.at_sigma(exp, sigma).groupby("kind")[["metric", "drop"]].mean()
            row = {"sweep": f"{task}, {SWEEP_LABELS[param]}", "value": f"{val:g}"}
            for kind in nl.KINDS:
                row[f"{LABELS[kind]}: noisy"] = style.fmt(means.loc[kind, "metric"])
            for what in ("metric", "drop"):
                iv = _interval(nl.advantage(exp, what, sigma))
                verdict = F.difference("positive", what="advantage").decide(
                    iv["mean"], F.interval(iv["lo"], iv["hi"], "t")
                )
                row[f"MoE advantage, {_WHAT[what]} (95 % interval)"] = (
                    f"{style.fmt(iv['mean'])} {style.fmt_interval(iv['lo'], iv['hi'])} {verdict}"
                )
            rows.append(row)
    return pd.DataFrame(rows).set_index(["sweep", "value"])


def routing_table(seeds: tuple = SEEDS, **settings) -> pd.DataFrame:
    """How often the learned gate sends a noisy test sample to its true block (%), mean ± std over seeds."""
    out = {}
    for task in nl.TASKS:
        ev = experiment(task, seeds, **settings).evals
        agg = ev[ev.kind == "router"].groupby("sigma").routing.agg(["mean", "std"])
        out[task] = [style.fmt_pm(agg.loc[s, "mean"], agg.loc[s, "std"]) for s in (0.0, *nl.SIGMAS_TABLE2)]
    return pd.DataFrame(out, index=pd.Index((0.0, *nl.SIGMAS_TABLE2), name="σ"))


def clean_error_table(seeds: tuple = SEEDS, **settings) -> pd.DataFrame:
    """Largest clean test MSE over seeds (regression): float32 rounding level for both linear models."""
    ev = experiment("regression", seeds, **settings).evals
    worst = ev[ev.sigma == 0].groupby("kind").metric.max()
    return pd.DataFrame(
        {"largest clean test MSE over seeds": [style.fmt(worst[k]) for k in nl.KINDS]},
        index=[LABELS[k] for k in nl.KINDS],
    )


def paper_table2_table() -> pd.DataFrame:
    """What Table 2's printed numbers imply (computed from the printed means)."""
    t = nl.paper_table2_implied_clean()
    cols = {
        "dense_implied_clean": "dense: noisy − drop",
        "oracle_implied_clean": "MoE: noisy − drop",
        "dense_drop_over_sigma2": "dense: drop / σ²",
        "oracle_drop_over_sigma2": "MoE: drop / σ²",
        "noisy_ratio": "noisy MSE dense / MoE",
    }
    out = t[list(cols)].rename(columns=cols).map(style.fmt)
    out.index.name = "σ"
    return out


# ----------------------------------------------------------------------------------------------- findings
_T2 = "App. B.3, Table 2: 'The MoE model is more robust to noise, showing lower MSE and a smaller drop in performance.'"
_T3 = (
    "App. B.3, Table 3 (σ = 0.1): 'The MoE model achieves higher accuracy, and its performance drops less "
    "than the dense model's.'"
)
_PAIRED = "paired Student-t interval over {n} seeds (same data, test inputs and noise draw per seed)"


def _weakest(exp: nl.Experiment, what: str, sigmas, kind: str = "oracle") -> tuple[float, dict, int, int]:
    """The σ where ``kind``'s advantage over dense is least certain (smallest t); every σ's interval excludes
    0 exactly when this one's does. Returns (σ, interval, seeds×σ won, cases)."""
    ivs, wins, cases = {}, 0, 0
    for s in sigmas:
        d = nl.advantage(exp, what, s, kind=kind)
        ivs[s] = _interval(d)
        wins, cases = wins + int((d > 0).sum()), cases + d.size
    s = min(ivs, key=lambda key: _t(ivs[key]))
    return s, ivs[s], wins, cases


def _moe_vs_dense(
    fid: str,
    exp: nl.Experiment,
    what: str,
    sigmas,
    statement: str,
    claim: str | None,
    kind: str = "oracle",
    extra: dict | None = None,
) -> F.Finding:
    s, iv, wins, cases = _weakest(exp, what, sigmas, kind)
    n = len(exp.seeds)
    value = {"diff": iv["mean"], "sigma": s, "wins": wins, "cases": cases, **(extra or {})}
    unit = {"regression": "MSE", "classification": "accuracy (pp)"}[exp.task]
    return F.finding(
        fid,
        statement=statement,
        paper_claim=claim,
        value=value,
        n_seeds=n,
        uncertainty=F.interval(iv["lo"], iv["hi"], _PAIRED.format(n=n), n=n, key="diff"),
        rule=F.difference(
            "positive",
            key="diff",
            what=f"{LABELS[kind]} − dense advantage ({_WHAT[what]}, {unit}; positive = MoE better), "
            f"at the σ of {list(sigmas)} where it is least certain",
        ),
    )


def _router_counts(**settings) -> dict:
    out = {}
    for task, short in (("regression", "reg"), ("classification", "cls")):
        c = nl.parameter_counts(task, **settings)
        for kind in nl.KINDS:
            out[f"{short}_{kind}"] = c[kind]["total"]
        out[f"{short}_gate"] = c["router"]["router"]
        out[f"{short}_ratio"] = c["router"]["total"] / c["dense"]["total"]
    out["max_ratio"] = max(out["reg_ratio"], out["cls_ratio"])
    return out


def findings(*, seeds: tuple = SEEDS, seed=0, **settings) -> list[F.Finding]:
    """The chapter's verdicts, from the cached runs the page's figures and tables use.

    ``seeds`` are the experiments' seeds, ``seed`` the bootstrap's (int, None or numpy Generator);
    ``settings`` override :data:`moe_companion.nonlinear.DEFAULTS` (the tests use small runs).
    """
    seeds = tuple(seeds)
    reg, cls = experiment("regression", seeds, **settings), experiment("classification", seeds, **settings)
    n = len(seeds)
    out = []

    # --- Table 2 (regression) and Table 3 (classification): oracle MoE vs dense, paired over seeds
    out.append(
        _moe_vs_dense(
            "nonlinear.regression_moe_lower_noisy_mse",
            reg,
            "metric",
            nl.SIGMAS_TABLE2,
            "At equal parameter counts the oracle-routed linear MoE has a lower noisy test MSE than the dense linear "
            "model at every σ of Table 2.",
            _T2,
        )
    )
    out.append(
        _moe_vs_dense(
            "nonlinear.regression_moe_smaller_drop",
            reg,
            "drop",
            nl.SIGMAS_TABLE2,
            "The oracle-routed linear MoE's robustness drop (noisy − clean MSE) is smaller than the dense model's at "
            "every σ of Table 2.",
            _T2,
        )
    )
    acc = nl.at_sigma(cls, SIGMA).groupby("kind")[["metric", "drop"]].mean()
    extra = {
        "dense_acc": acc.loc["dense", "metric"],
        "moe_acc": acc.loc["oracle", "metric"],
        "router_acc": acc.loc["router", "metric"],
        "dense_drop": acc.loc["dense", "drop"],
        "moe_drop": acc.loc["oracle", "drop"],
        "router_drop": acc.loc["router", "drop"],
    }
    _, _, wins_all, cases_all = _weakest(cls, "metric", nl.SIGMAS_TABLE2)
    out.append(
        _moe_vs_dense(
            "nonlinear.classification_moe_higher_noisy_accuracy",
            cls,
            "metric",
            (SIGMA,),
            "At equal parameter counts the oracle-routed ReLU MoE has a higher noisy test accuracy than the dense "
            "ReLU network at σ = 0.1.",
            _T3,
            extra={**extra, "wins_all": wins_all, "cases_all": cases_all},
        )
    )
    _, _, wins_all, cases_all = _weakest(cls, "drop", nl.SIGMAS_TABLE2)
    out.append(
        _moe_vs_dense(
            "nonlinear.classification_moe_smaller_drop",
            cls,
            "drop",
            (SIGMA,),
            "The oracle-routed ReLU MoE loses less accuracy to noise (clean − noisy) than the dense network "
            "at σ = 0.1.",
            _T3,
            extra={**extra, "wins_all": wins_all, "cases_all": cases_all},
        )
    )
    dd = nl.at_sigma(cls, SIGMA).pivot_table(index="seed", columns="kind", values="drop").loc[list(seeds)]
    ratio = nl.bootstrap_ratio(dd["oracle"].to_numpy(), dd["dense"].to_numpy(), seed=seed)
    paper3 = nl.paper_table3()
    out.append(
        F.finding(
            "nonlinear.classification_drop_ratio",
            statement="At σ = 0.1 the oracle MoE's mean accuracy drop is less than half the dense network's.",
            paper_claim="App. B.3, Table 3: 'its performance drops less than the dense model's' (the book's stronger "
            "reading: less than half)",
            value={"ratio": ratio["ratio"], "paper_ratio": paper3["oracle_drop"].mean() / paper3["dense_drop"].mean()},
            uncertainty=F.interval(
                ratio["lo"],
                ratio["hi"],
                f"percentile bootstrap over the {n} seeds (paired), {ratio['n_boot']:,} resamples",
                n=n,
                key="ratio",
            ),
            n_seeds=n,
            rule=F.difference(
                "negative", threshold=0.5, key="ratio", what="MoE drop / dense drop (ratio of the means over seeds)"
            ),
        )
    )

    # --- Theorem 3 with clean training predicts the regression numbers
    theory = nl.theorem3_clean_training(reg)
    summ = reg.summary().set_index(["kind", "seed", "sigma"]).metric
    devs = {}
    for s in nl.SIGMAS_TABLE2:
        meas = np.array([summ[("dense", sd, s)] / summ[("oracle", sd, s)] for sd in seeds])
        pred = np.array([theory.loc[(sd, s), "dense"] / theory.loc[(sd, s), "oracle"] for sd in seeds])
        devs[s] = (meas / pred - 1, meas, pred)
    ivs = {s: _interval(d[0]) for s, d in devs.items()}
    s_w = max(ivs, key=lambda key: max(abs(ivs[key]["lo"]), abs(ivs[key]["hi"])))
    out.append(
        F.finding(
            "nonlinear.theorem3_predicts_regression",
            statement="Trained on clean inputs, the linear models' noisy-MSE ratio dense / MoE is the one Theorem 3 "
            "predicts with training noise σ² = 0, ‖β*‖² / Σᵢ pᵢ‖βᵢ*‖² (about k), within 10 % at every σ.",
            value={
                "rel_dev": ivs[s_w]["mean"],
                "sigma": s_w,
                "ratio_measured": float(devs[s_w][1].mean()),
                "ratio_theory": float(devs[s_w][2].mean()),
                "ratio_min": float(min(d[1].min() for d in devs.values())),
                "ratio_max": float(max(d[1].max() for d in devs.values())),
            },
            uncertainty=F.interval(ivs[s_w]["lo"], ivs[s_w]["hi"], _PAIRED.format(n=n), n=n, key="rel_dev"),
            n_seeds=n,
            rule=F.agreement(
                0.1,
                key="rel_dev",
                what="measured / predicted ratio − 1, at the σ of Table 2 where it is furthest from 0",
            ),
        )
    )

    # --- Table 2 is internally inconsistent (from the printed numbers)
    t2 = nl.paper_table2_implied_clean()
    s_min = float(t2["dense_implied_clean"].idxmin())
    x, sd = t2.loc[s_min, "dense_implied_clean"], t2.loc[s_min, "dense_implied_clean_sd"]
    out.append(
        F.finding(
            "nonlinear.table2_implied_clean_nonnegative",
            statement="If Table 2's drop is 'noisy − clean MSE' of one trained model, its implied clean MSE "
            "(noisy − drop) is non-negative and the same at every σ.",
            paper_claim="App. B.3, Table 2: dense / MoE noisy MSE and robustness drop per σ",
            value={
                "min": x,
                "sigma": s_min,
                "dense_s04": t2.loc[0.4, "dense_implied_clean"],
                "dense_s05": t2.loc[0.5, "dense_implied_clean"],
                "moe_min": t2["oracle_implied_clean"].min(),
                "moe_max": t2["oracle_implied_clean"].max(),
            },
            uncertainty=F.interval(
                x - F.Z95 * sd,
                x + F.Z95 * sd,
                "the paper's printed ± of noisy MSE and drop, "
                "added (an upper bound on the sd of the difference), × 1.96",
                key="min",
            ),
            rule=F.difference(
                "positive",
                key="min",
                what="smallest implied clean MSE (noisy − drop) of the dense model over Table 2's σ",
            ),
        )
    )
    out.append(
        F.finding(
            "nonlinear.table2_drop_scales_as_sigma2",
            statement="For a fixed linear model trained on clean inputs the drop is σ² times a fixed squared weight "
            "norm, so Table 2's dense drop / σ² should stay within a factor 2 from σ = 0.1 to 0.5.",
            paper_claim="App. B.3: Table 2's regression uses 'a single-layer linear network'",
            value={
                "growth": t2.loc[0.5, "dense_drop_over_sigma2"] / t2.loc[0.1, "dense_drop_over_sigma2"],
                "dense_s01": t2.loc[0.1, "dense_drop_over_sigma2"],
                "dense_s05": t2.loc[0.5, "dense_drop_over_sigma2"],
                "noisy_ratio_s01": t2.loc[0.1, "noisy_ratio"],
                "noisy_ratio_s05": t2.loc[0.5, "noisy_ratio"],
            },
            rule=F.exact("<=", 2.0, key="growth", what="printed dense drop / σ² at σ = 0.5 divided by that at σ = 0.1"),
        )
    )

    # --- the paper's own Table 3, tested by the same rule
    for slug, (dense_col, moe_col), sign, what, stmt in (
        (
            "table3_paper_accuracy_gap",
            ("dense", "oracle"),
            1.0,
            "MoE − dense noisy accuracy (pp)",
            "On the paper's own four seeds, the MoE's noisy accuracy is higher than the dense model's.",
        ),
        (
            "table3_paper_drop_gap",
            ("dense_drop", "oracle_drop"),
            -1.0,
            "dense − MoE drop (pp)",
            "On the paper's own four seeds, the MoE's accuracy drop is smaller than the dense model's.",
        ),
    ):
        d = sign * (paper3[moe_col] - paper3[dense_col]).to_numpy()
        iv = _interval(d)
        out.append(
            F.finding(
                f"nonlinear.{slug}",
                statement=stmt,
                paper_claim=_T3,
                value={
                    "diff": iv["mean"],
                    "dense_mean": paper3[dense_col].mean(),
                    "dense_std": paper3[dense_col].std(),
                    "moe_mean": paper3[moe_col].mean(),
                    "moe_std": paper3[moe_col].std(),
                },
                uncertainty=F.interval(
                    iv["lo"], iv["hi"], "paired Student-t interval over the paper's 4 printed seeds", n=4, key="diff"
                ),
                n_seeds=4,
                rule=F.difference("positive", key="diff", what=what),
            )
        )

    # --- the learned router (the book's extension)
    ev = pd.concat([reg.evals.assign(task="regression"), cls.evals.assign(task="classification")])
    clean = ev[(ev.kind == "router") & (ev.sigma == 0)].groupby("task").routing
    per_task = {t: _interval(clean.get_group(t).to_numpy()) for t in nl.TASKS}
    low = min(per_task, key=lambda t: per_task[t]["lo"])
    routing_all = ev[(ev.kind == "router") & (ev.sigma == 0)].routing
    out.append(
        F.finding(
            "nonlinear.router_learns_routing",
            statement="A learned softmax top-1 gate on squared features, trained jointly with the experts, sends more "
            "than 95 % of clean test samples to the expert of their block, in both tasks.",
            value={
                "accuracy": per_task[low]["mean"],
                "regression": per_task["regression"]["mean"],
                "classification": per_task["classification"]["mean"],
                "min": float(routing_all.min()),
                "max": float(routing_all.max()),
            },
            uncertainty=F.interval(
                per_task[low]["lo"],
                per_task[low]["hi"],
                f"Student-t interval over {n} seeds, task with the lower bound",
                n=n,
                key="accuracy",
            ),
            n_seeds=n,
            rule=F.difference(
                "positive", threshold=95.0, key="accuracy", what="clean routing accuracy of the learned gate (%)"
            ),
        )
    )
    for task, exp in (("regression", reg), ("classification", cls)):
        sig = nl.SIGMAS_TABLE2 if task == "regression" else (SIGMA,)
        worst = min((_weakest(exp, w, sig, "router") + (w,) for w in ("metric", "drop")), key=lambda r: _t(r[1]))
        f = _moe_vs_dense(
            f"nonlinear.router_beats_dense_{task}",
            exp,
            worst[4],
            sig,
            f"{task.capitalize()}: the learned-router MoE (router not counted: see the parameter "
            f"finding) beats the dense model on the noisy error and on the drop "
            f"({'every σ of Table 2' if task == 'regression' else 'σ = 0.1'}); the measure shown "
            f"is the less certain of the two.",
            None,
            kind="router",
            extra={"measure_is_drop": float(worst[4] == "drop")},
        )
        out.append(f)

    # --- issue 12 B5: the router's parameters
    counts = _router_counts(**settings)
    out.append(
        F.finding(
            "nonlinear.iso_parameter_router_counted",
            statement="Counting the router's parameters, the learned-router MoE is not iso-parameter with the dense "
            "model: its gate adds d·k + k parameters (the oracle MoE gets its routing as free side information).",
            paper_claim="Sec. 1: 'even when an MoE and its dense counterpart have the same number of parameters'; "
            "abstract: 'even without increase in parameter count'",
            value=counts,
            rule=F.exact(
                "<=",
                1.0,
                key="max_ratio",
                what="largest (learned-router MoE parameters, gate included) / (dense parameters) over tasks",
            ),
        )
    )
    big = bigger_dense(seeds, **settings)
    merged = nl.Experiment(
        "classification",
        cls.settings,
        cls.seeds,
        params={"dense": big.params["dense"], "router": cls.params["router"]},
        evals=pd.concat([big.evals, cls.evals[cls.evals.kind == "router"]], ignore_index=True),
    )
    worst = min((_weakest(merged, w, (SIGMA,), "router") + (w,) for w in ("metric", "drop")), key=lambda r: _t(r[1]))
    out.append(
        _moe_vs_dense(
            "nonlinear.router_beats_bigger_dense",
            merged,
            worst[4],
            (SIGMA,),
            "Classification at σ = 0.1: the learned-router MoE still beats a dense network with at least as many "
            "parameters as the MoE has with its router counted, on the noisy accuracy and on the drop (the less "
            "certain of the two shown).",
            None,
            kind="router",
            extra={
                "dense_params": big.params["dense"],
                "router_params": cls.params["router"],
                "dense_width": big.settings["dense_hidden"],
                "measure_is_drop": float(worst[4] == "drop"),
            },
        )
    )

    # --- sensitivity: every setting of every sweep, oracle MoE vs dense at σ = 0.1, both measures
    for name, (task, param, values) in SWEEPS.items():
        runs = sweep(name, seeds, **settings)
        cases = [(val, w, _interval(nl.advantage(runs[val], w, SIGMA))) for val in values for w in ("metric", "drop")]
        val, w, iv = min(cases, key=lambda c: _t(c[2]))
        wins = sum(int((nl.advantage(runs[v_], w_, SIGMA) > 0).sum()) for v_ in values for w_ in ("metric", "drop"))
        out.append(
            F.finding(
                f"nonlinear.sensitivity_{name}",
                statement=f"{task.capitalize()}: the oracle MoE beats the dense model at σ = 0.1 on the noisy error "
                f"and "
                f"on the drop for every {SWEEP_LABELS[param]} tried ({', '.join(f'{x:g}' for x in values)}); "
                f"the setting shown is the least certain one.",
                paper_claim=_T2 if task == "regression" else _T3,
                value={
                    "diff": iv["mean"],
                    "weakest_value": float(val),
                    "measure_is_drop": float(w == "drop"),
                    "wins": wins,
                    "cases": 2 * len(values) * n,
                    "settings": len(values),
                },
                uncertainty=F.interval(iv["lo"], iv["hi"], _PAIRED.format(n=n), n=n, key="diff"),
                n_seeds=n,
                rule=F.difference(
                    "positive",
                    key="diff",
                    what="oracle MoE − dense advantage at σ = 0.1, least certain setting and measure",
                ),
            )
        )
    # the learned router at the largest learning rate
    runs = sweep("classification_lr", seeds, **settings)
    hi_lr = max(SWEEPS["classification_lr"][2])
    d = nl.advantage(runs[hi_lr], "metric", SIGMA, kind="router")
    iv = _interval(d)
    m = nl.at_sigma(runs[hi_lr], SIGMA).groupby("kind").metric.mean()
    ev_hi = runs[hi_lr].evals
    reg_hi = nl.at_sigma(sweep("regression_lr", seeds, **settings)[max(SWEEPS["regression_lr"][2])], SIGMA)
    reg_m = reg_hi.groupby("kind").metric.mean()
    out.append(
        F.finding(
            "nonlinear.router_fragile_at_high_lr",
            statement=f"The learned router is the fragile part: at learning rate {hi_lr:g} in classification the "
            "learned-router MoE's noisy accuracy falls below the dense network's.",
            value={
                "diff": iv["mean"],
                "lr": hi_lr,
                "router_acc": m["router"],
                "dense_acc": m["dense"],
                "routing": float(ev_hi[(ev_hi.kind == "router") & (ev_hi.sigma == 0)].routing.mean()),
                "reg_router_mse": reg_m["router"],
                "reg_dense_mse": reg_m["dense"],
            },
            uncertainty=F.interval(iv["lo"], iv["hi"], _PAIRED.format(n=n), n=n, key="diff"),
            n_seeds=n,
            rule=F.difference("negative", key="diff", what="learned-router MoE − dense noisy accuracy at σ = 0.1 (pp)"),
        )
    )
    return out
