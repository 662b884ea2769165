"""Heavy chapter "MoEfication under word and character noise" (Sec. 5, Figs. 4, 5, 11, App. B.2).

Figures and findings from the stored units (``book/generated/results/moefication_noise-<profile>.jsonl``);
the experiment itself is :mod:`moe_companion.heavy.moefication`.  Intervals: 95 % bootstrap resampling
noise seeds and test sentences (paired: the same sentences and noise for dense and MoEfied models).
"""

from __future__ import annotations

from functools import cache, partial

import pandas as pd

from .. import findings as F
from .. import style
from ..figures import FigureSpec
from ..heavy import moefication as mf
from . import _heavy as H

TITLE = "MoEfication under noise (Sec. 5, App. B.2)"
CHAPTER = "moefication_noise"
NOISES = ("word", "char")
NOISE_LABEL = {"word": "word noise (adjacent swaps)", "char": "character noise (keyboard typos)"}
#: The paper's named intermediate sparsity (App. B.2: "at intermediate activation sparsity levels (40 experts)").
PAPER_K = 40
DROP_RULE = F.difference(
    "negative", what="MoEfied drop − dense drop (pp), paired bootstrap over seeds and sentences", key="d"
)
ACC_RULE = F.difference(
    "positive", what="MoEfied − dense noisy accuracy (pp), paired bootstrap over seeds and sentences", key="d"
)


def use_results(profile: str, path, params=None) -> None:
    """The page's store (its ``results_path``) and parameters are what :func:`stored` reads for ``profile``."""
    H.use_results(CHAPTER, profile, path, params)


@cache
def stored(profile: str = "cpu", results_path: str | None = None) -> dict:
    """The stored result of ``profile`` (computing nothing) and its summary: ``{"result", "summary"}``."""
    path = results_path or H.results_path(CHAPTER, profile)
    result = mf.load_result(path, **H.params_of(CHAPTER, profile, mf.PROFILES[profile]))
    return {"result": result, "summary": mf.summarize(result)}


def _rows(summary, noise: str):
    s = summary[summary["noise"] == noise]
    return s[~s["dense"]], s[s["dense"]].iloc[0]


def accuracy_traces(noise: float, *, summary=None):
    """Clean and noisy accuracy (%) against K: dense as flat lines, MoEfied as markers (95 % intervals)."""
    summary = stored()["summary"] if summary is None else summary
    nz = NOISES[int(round(noise))]
    sp, dn = _rows(summary, nz)
    x = sp["k"].tolist()
    xs = [min(x), max(x)]
    return [
        style.line(xs, [100 * dn["clean"]] * 2, "dense", "dense, clean", kind="reference"),
        H.ci_points(
            xs,
            [dn["noisy"]] * 2,
            [dn["noisy_lo"]] * 2,
            [dn["noisy_hi"]] * 2,
            "dense",
            "dense, noisy (95 % interval)",
            scale=100,
            mode="lines",
        ),
        style.line(x, 100 * sp["clean"], "sparse", "MoEfied, clean", kind="reference"),
        H.ci_points(
            x, sp["noisy"], sp["noisy_lo"], sp["noisy_hi"], "sparse", "MoEfied, noisy (95 % interval)", scale=100
        ),
    ]


def difference_traces(noise: float, *, summary=None):
    """Paired differences to dense (pp) against K: noisy accuracy and drop, with 95 % intervals."""
    summary = stored()["summary"] if summary is None else summary
    nz = NOISES[int(round(noise))]
    sp, _ = _rows(summary, nz)
    x = sp["k"].tolist()
    return [
        H.ci_points(
            x,
            sp["d_noisy"],
            sp["d_noisy_lo"],
            sp["d_noisy_hi"],
            "sparse",
            "noisy accuracy − dense (paper: > 0)",
            scale=100,
        ),
        H.ci_points(
            x,
            sp["d_gap"],
            sp["d_gap_lo"],
            sp["d_gap_hi"],
            "router",
            "drop − dense drop (paper: < 0)",
            scale=100,
            symbol="diamond",
            dash="dash",
        ),
        H.zero_line(x),
    ]


def figures(profile: str = "cpu") -> dict:
    """The chapter's figure specs, built from the stored results of ``profile``."""
    summary = stored(profile)["summary"]
    grid = {"noise": [0, 1]}
    labels = {"noise": "noise type (0 = word swaps, 1 = keyboard typos)"}
    return {
        "accuracy": FigureSpec(
            partial(accuracy_traces, summary=summary),
            grid,
            labels=labels,
            fmt="{:.0f}",
            layout=dict(
                title="Accuracy under noise: dense vs MoEfied (Figs. 4 and 11, bottom)",
                xaxis=style.axis("active experts K (of E = 96)"),
                yaxis=style.axis("accuracy (%)"),
                legend=dict(orientation="h", y=1.02, yanchor="bottom"),
                margin=dict(t=140),
            ),
            caption="Clean and noisy test accuracy in percent against the number of active experts K; dense "
            "model as horizontal lines, MoEfied models as markers with 95 % bootstrap intervals; the "
            "slider picks word or character noise.",
        ),
        "difference": FigureSpec(
            partial(difference_traces, summary=summary),
            grid,
            labels=labels,
            fmt="{:.0f}",
            layout=dict(
                title="Paired differences to the dense model (Figs. 5 and 11, top)",
                xaxis=style.axis("active experts K (of E = 96)"),
                yaxis=style.axis("difference (percentage points)"),
                legend=dict(orientation="h", y=1.02, yanchor="bottom"),
                margin=dict(t=140),
            ),
            caption="MoEfied minus dense noisy accuracy and MoEfied minus dense accuracy drop, in percentage "
            "points, against K, with 95 % intervals from a bootstrap over noise seeds and test "
            "sentences; zero line dotted.",
        ),
    }


FIGURES = H.LazyFigures(figures)


def setting_findings(summary) -> list[F.Finding]:
    """One finding per (noise type, K) and claim: every setting run, each decided by the book-wide rule."""
    out = []
    for _, r in summary[~summary["dense"]].iterrows():
        nz, k = r["noise"], int(r["k"])
        n_seeds = int(r["n_seeds"])
        _, dn = _rows(summary, nz)
        method = f"bootstrap over {n_seeds} noise seeds and {int(r['n_test'])} test sentences (paired)"
        out.append(
            F.finding(
                f"{CHAPTER}.drop_{nz}_k{k}",
                statement=f"{nz} noise, K = {k}: the MoEfied model's accuracy drop minus the dense model's.",
                paper_claim="Sec. 5: sparsely activated models experience a smaller drop in accuracy at intermediate "
                "sparsity levels",
                value={"d": H.pp(r["d_gap"]), "drop": H.pp(r["gap"]), "dense_drop": H.pp(dn["gap"]), "k": k},
                uncertainty=F.interval(H.pp(r["d_gap_lo"]), H.pp(r["d_gap_hi"]), method, key="d"),
                n_seeds=n_seeds,
                rule=DROP_RULE,
            )
        )
        out.append(
            F.finding(
                f"{CHAPTER}.noisy_{nz}_k{k}",
                statement=f"{nz} noise, K = {k}: the MoEfied model's noisy accuracy minus the dense model's.",
                paper_claim="Sec. 5: sparse models consistently outperform their dense counterparts under noisy "
                "conditions at these sparsity levels",
                value={
                    "d": H.pp(r["d_noisy"]),
                    "noisy": H.pp(r["noisy"]),
                    "clean": H.pp(r["clean"]),
                    "dense_noisy": H.pp(dn["noisy"]),
                    "dense_clean": H.pp(dn["clean"]),
                    "k": k,
                },
                uncertainty=F.interval(H.pp(r["d_noisy_lo"]), H.pp(r["d_noisy_hi"]), method, key="d"),
                n_seeds=n_seeds,
                rule=ACC_RULE,
            )
        )
    return out


def settings_table(summary=None) -> pd.DataFrame:
    """Every (noise type, K) with both paired differences, their 95 % intervals and verdicts."""
    summary = stored()["summary"] if summary is None else summary
    found = {f.id: f for f in setting_findings(summary)}
    rows = []
    for _, r in summary[~summary["dense"]].iterrows():
        nz, k = r["noise"], int(r["k"])
        drop, noisy = found[f"{CHAPTER}.drop_{nz}_k{k}"], found[f"{CHAPTER}.noisy_{nz}_k{k}"]
        rows.append(
            {
                "noise": nz,
                "K": k,
                "clean acc (%)": style.fmt(100 * r["clean"]),
                "noisy acc (%)": style.fmt(100 * r["noisy"]),
                "drop (pp)": style.fmt(100 * r["gap"]),
                "drop − dense drop (pp)": f"{style.fmt(drop.value['d'])} {style.fmt_interval(*drop.interval())}",
                "smaller drop?": drop.verdict,
                "noisy − dense noisy (pp)": f"{style.fmt(noisy.value['d'])} {style.fmt_interval(*noisy.interval())}",
                "beats dense under noise?": noisy.verdict,
            }
        )
    return pd.DataFrame(rows)


def dense_table(summary=None) -> pd.DataFrame:
    """The dense model (K = E): clean and noisy accuracy and drop with 95 % intervals, per noise type."""
    summary = stored()["summary"] if summary is None else summary
    rows = []
    for nz in NOISES:
        _, dn = _rows(summary, nz)
        rows.append(
            {
                "noise": nz,
                "clean acc (%)": style.fmt(100 * dn["clean"]),
                "noisy acc (%)": f"{style.fmt(100 * dn['noisy'])} "
                f"{style.fmt_interval(100 * dn['noisy_lo'], 100 * dn['noisy_hi'])}",
                "drop (pp)": f"{style.fmt(100 * dn['gap'])} "
                f"{style.fmt_interval(100 * dn['gap_lo'], 100 * dn['gap_hi'])}",
            }
        )
    return pd.DataFrame(rows)


def findings(profile: str = "cpu") -> list[F.Finding]:
    """The nlpaug swap counts, the paper's two claims at K = 40 per noise type, and tallies over all settings."""
    st = stored(profile)
    summary, result = st["summary"], st["result"]
    dist = mf.swap_count_distribution(result)
    n_seeds = len(result["params"]["seeds"])
    out = [
        F.finding(
            f"{CHAPTER}.nlpaug_swap_counts",
            statement="Plain nlpaug with aug_min=1, aug_max=2 (the paper's call) makes two swaps in every sentence of "
            "four or more words; measured effective adjacent swaps per sentence: 2 on most sentences, 1 on "
            "a few, 0 where the two swaps cancel. It does produce the paper's 1-2 swaps (the book's earlier "
            "'cannot' was wrong), but not on every sentence.",
            paper_claim="App. B.2: 'we perform at least one and a maximum of two swaps per sentence' (nlpaug "
            "RandomWordAug)",
            value={
                "share_1_or_2": dist["share_1"] + dist["share_2"],
                "share_0": dist["share_0"],
                "share_1": dist["share_1"],
                "share_2": dist["share_2"],
                "share_more": dist["share_more"],
                "n": dist["n"],
                "seeds": float(n_seeds),
            },
            rule=F.exact(
                ">=",
                1.0,
                what=f"share of the {dist['n']} noisy sentences (test sentences × seeds) that "
                "differ from the clean one by 1 or 2 adjacent swaps",
                key="share_1_or_2",
            ),
        )
    ]
    sets = {f.id: f for f in setting_findings(summary)}
    for nz in result["params"]["noise_types"]:
        for kind in ("drop", "noisy"):
            f = sets.get(f"{CHAPTER}.{kind}_{nz}_k{PAPER_K}")
            if f is not None:
                out.append(f)
    for nz in result["params"]["noise_types"]:
        for kind, rule in (("drop", DROP_RULE), ("noisy", ACC_RULE)):
            sel = [f for f in sets.values() if f.id.startswith(f"{CHAPTER}.{kind}_{nz}_")]
            pooled = mf.pooled_difference(result, nz, kind)
            counts = {v: float(sum(f.verdict == v for f in sel)) for v in ("holds", "fails", "inconclusive")}
            out.append(
                F.finding(
                    f"{CHAPTER}.{kind}_{nz}_pooled",
                    statement=f"{nz} noise, averaged over all {pooled['n_k']} sparse K run (one pre-specified aggregate, "
                    f"not the best K): the MoEfied model's {'drop' if kind == 'drop' else 'noisy accuracy'} "
                    "minus the dense model's; the value also counts the settings where the claim holds, fails "
                    "or is inconclusive one by one.",
                    paper_claim=sel[0].paper_claim if sel else None,
                    value={"d": H.pp(pooled["d"]), **counts, "n_settings": float(len(sel))},
                    uncertainty=F.interval(
                        H.pp(pooled["lo"]),
                        H.pp(pooled["hi"]),
                        f"bootstrap over {n_seeds} noise seeds and the test sentences, shared by all K",
                        key="d",
                    ),
                    n_seeds=n_seeds,
                    rule=rule,
                )
            )
    return out
