"""Chapter "Theorem 1: routing reduces to classification" (Sec. 4.1, App. A.7).

Figures: routing accuracy against ``n`` for the printed App. A.7 rule, the corrected plug-in Bayes rule,
scikit-learn's QDA and the Bayes router (sliders σ², spectral decay α; a second figure over k); the test
risk of the routed sparse MoE against σ² beside Theorem 2's closed forms and their Monte Carlo checks.
Findings: the printed rule (finite n and its n → ∞ limit), the corrected rule and its excess-risk rate,
the Bayes router's mis-routing rates, routed MoE vs dense, what A.7's bound lets the book check, and the
calibration of the risk figure's Monte Carlo overlay.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .. import _validate as v
from .. import findings as F
from .. import router as R
from .. import style
from ..figures import FigureSpec

TITLE = "Theorem 1 (router, Sec. 4.1, App. A.7)"
NS = (40, 64, 96, 160, 320, 640, 1280, 2560)
SIGMA2_TABLE = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
SIGMA2_RISK = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
EXCESS_NS = (160, 320, 640, 1280, 2560, 5120, 10240)


def _integer(value, name: str) -> int:
    """A slider value that must be a whole number (``4.0`` is accepted, ``2.6`` refused)."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    return v.check_int(value, name, lower=1)


@lru_cache(maxsize=256)
def _accuracy(sigma2: float, alpha: float, k: int, n_test: int, reps: int, seed: int) -> dict:
    model = R.router_model(k, 8, sigma2, alpha, seed=0)
    return R.accuracy_curve(model, NS, n_test=n_test, reps=reps, seed=seed)


def accuracy_traces(
    sigma2: float = 1.0, alpha: float = 0.0, k=4, *, n_test: int = 8000, reps: int = 2, seed: int = 0
) -> list:
    """Routing accuracy vs ``n``: the three routers, scikit-learn's QDA, the Bayes ceiling and chance 1/k."""
    k = _integer(k, "k")
    sigma2 = v.check_scalar(sigma2, "sigma2", lower=0.0)
    alpha = v.check_scalar(alpha, "alpha", lower=0.0)
    out = _accuracy(sigma2, alpha, k, n_test, reps, seed)
    n = out["n"].astype(float)
    lm = dict(mode="lines+markers")
    return [
        style.line(n, np.full(n.size, out["bayes"]), "router", "Bayes router (true covariances)"),
        style.line(n, out["corrected"], "accent", "plug-in Bayes rule (corrected)").update(**lm),
        style.line(n, out["sklearn"], "reference", "scikit-learn QDA, all d features").update(**lm),
        style.line(n, out["printed"], "paper", "App. A.7 rule as printed", kind="paper").update(**lm),
        style.line(n, np.full(n.size, 1.0 / k), "reference", "chance 1/k", kind="reference"),
    ]


def experts_traces(k=4) -> list:
    """:func:`accuracy_traces` at σ² = 0.5, α = 0 for ``k`` experts."""
    return accuracy_traces(0.5, 0.0, k)


@lru_cache(maxsize=32)
def _risk_rows(alpha: float, n: int, n_test: int, seed: int) -> tuple:
    return tuple(R.routing_risk_rows(SIGMA2_RISK, n=n, alpha=alpha, n_test=n_test, seed=seed))


def routing_risk_traces(alpha: float = 0.0, *, n: int = 640, n_test: int = 8000, seed: int = 0) -> list:
    """Test risk vs σ²: Theorem 2 (dense, perfect-routing sparse) with Monte Carlo checks, and routed MoEs."""
    rows = _risk_rows(float(alpha), n, n_test, seed)
    x = [r["sigma2"] for r in rows]
    col = lambda key: [r[key] for r in rows]  # noqa: E731
    return [
        style.line(x, col("risk_dense"), "dense", "dense Bayes (Thm 2)"),
        style.points(x, col("mc_dense"), col("mc_dense_se"), "dense", "dense, Monte Carlo"),
        style.line(x, col("risk_sparse"), "sparse", "sparse, perfect routing (Thm 2)"),
        style.points(
            x,
            col("mc_oracle"),
            col("mc_oracle_se"),
            "sparse",
            "sparse with the true label, Monte Carlo",
            symbol="diamond",
        ),
        style.points(
            x, col("bayes_risk"), col("bayes_risk_se"), "router", "sparse, Bayes router (Monte Carlo)", symbol="square"
        ).update(mode="lines+markers", line=dict(color=style.COLORS["router"])),
        style.line(x, col("corrected_risk"), "accent", f"sparse, corrected router (n = {n})").update(
            mode="lines+markers"
        ),
        style.line(x, col("printed_risk"), "paper", f"sparse, printed router (n = {n})", kind="paper").update(
            mode="lines+markers"
        ),
    ]


_ACC_LAYOUT = dict(
    xaxis=style.log_axis("n (training samples)"),
    yaxis=style.axis("routing accuracy (share correct)", range=[0, 1.02]),
    legend=dict(orientation="h", y=1.02, yanchor="bottom"),
)
FIGURES = {
    "accuracy": FigureSpec(
        accuracy_traces,
        {"sigma2": [0.1, 0.25, 0.5, 1.0, 2.0, 4.0], "alpha": [0.0, 0.5, 1.0, 2.0]},
        initial={"sigma2": 1.0, "alpha": 0.0},
        labels={"sigma2": "σ²", "alpha": "spectral decay α"},
        layout=dict(title="Routing accuracy vs training size n (k = 4, dᵢ = 8)", **_ACC_LAYOUT),
        caption="Routing accuracy against the training size for the printed App. A.7 rule, the corrected plug-in "
        "Bayes rule, scikit-learn QDA, the Bayes router and chance; sliders: noise variance and spectral "
        "decay.",
    ),
    "experts": FigureSpec(
        experts_traces,
        {"k": [2, 4, 8, 16]},
        initial={"k": 4},
        labels={"k": "experts k"},
        fmt="{:.0f}",
        layout=dict(title="Routing accuracy vs n for k experts (σ² = 0.5)", **_ACC_LAYOUT),
        caption="Routing accuracy against the training size for 2 to 16 experts at noise variance 0.5.",
    ),
    "routing_risk": FigureSpec(
        routing_risk_traces,
        {"alpha": [0.0, 1.0, 2.0]},
        initial={"alpha": 0.0},
        labels={"alpha": "spectral decay α"},
        layout=dict(
            title="Test risk of the routed sparse MoE vs σ² (k = 4, dᵢ = 8, routers fitted on n = 640)",
            xaxis=style.log_axis("σ² (feature-noise variance)"),
            yaxis=style.axis("test risk E[(ŷ − y)²]"),
            legend=dict(orientation="h", y=1.02, yanchor="bottom"),
        ),
        caption="Test risk against the noise variance: Theorem 2's dense and perfect-routing sparse risks with "
        "Monte Carlo markers, and the sparse MoE routed by the Bayes, corrected and printed routers.",
    ),
}


# ------------------------------------------------------------------------------------------------ findings
def _jackknife_slope(ns, excess_reps) -> tuple[float, float]:
    """Slope of the mean excess curve and its jackknife s.e. over the training-set replicates (rows)."""
    full = R.loglog_slope(ns, excess_reps.mean(axis=0))
    r = excess_reps.shape[0]
    loo = np.array([R.loglog_slope(ns, np.delete(excess_reps, i, axis=0).mean(axis=0)) for i in range(r)])
    return full, float(np.sqrt((r - 1) / r * np.sum((loo - loo.mean()) ** 2)))


def findings(*, seed: int = 0, reps: int = 4, n_test: int = 20000) -> list[F.Finding]:
    """Theorem 1's verdicts (see the module docstring)."""
    rng = v.check_random_state(seed)
    out = []
    acc = {
        s2: R.accuracy_curve(R.router_model(4, 8, s2, 0.0), [2560], n_test=n_test, reps=2, seed=rng, with_sklearn=False)
        for s2 in (0.1, 1.0)
    }
    # the printed rule's excess risk at the largest n, per training set (paired with the common test set)
    m1 = R.router_model(4, 8, 1.0, 0.0)
    ex = R.excess_curve(m1, EXCESS_NS, n_test=n_test, reps=reps, seed=rng)  # one common test set, paired
    exc_c, exc_p, bayes1 = ex["corrected_reps"], ex["printed_reps"], ex["bayes"]
    p_last = exc_p[:, -1]
    out.append(
        F.finding(
            "theorem1_router.printed_rule_fails",
            statement="The App. A.7 score as printed routes worse than chance, and more data does not help: its "
            "excess misclassification risk stays far above any small ε.",
            paper_claim="App. A.7.1: with n ≥ C M²/ε² Σ max{dᵢ, log(k/δ)} the QDA router has R − R* ≤ ε",
            value={
                "excess_nmax": float(p_last.mean()),
                "n_max": EXCESS_NS[-1],
                "eps": 0.05,
                "acc_printed_s1": float(acc[1.0]["printed"][0]),
                "acc_bayes_s1": acc[1.0]["bayes"],
                "acc_printed_s01": float(acc[0.1]["printed"][0]),
                "acc_bayes_s01": acc[0.1]["bayes"],
                "chance": 0.25,
                "s_low": 0.1,
            },
            uncertainty=F.se(
                float(np.hypot(p_last.std(ddof=1) / np.sqrt(reps), np.sqrt(bayes1 * (1 - bayes1) / n_test))),
                f"{reps} training sets × test sets of {n_test:,}",
                n=reps,
                key="excess_nmax",
            ),
            n_seeds=reps,
            rule=F.difference(
                "negative",
                threshold=0.05,
                key="excess_nmax",
                what="excess risk R − R* of the printed rule at n = 10,240 (σ² = 1; ε = 0.05)",
            ),
        )
    )

    test = R.router_model(4, 8, 1.0, 0.0).sample(n_test, seed=rng)
    lim = {}
    for a in (0.0, 2.0):
        m = R.router_model(4, 8, 1.0, a)
        t = m.sample(n_test, seed=rng) if a else test
        lim[a] = (
            float(np.mean(R.printed_rule_true_covariances(m).predict(t.xbar) == t.z)),
            float(np.mean(R.bayes_router(m).predict(t.xbar) == t.z)),
        )
    acc0 = lim[0.0][0]
    out.append(
        F.finding(
            "theorem1_router.printed_rule_limit",
            statement="With the TRUE covariances plugged in (its n → ∞ limit) the printed score is still worse than "
            "chance: its error is not an estimation error.",
            paper_claim="App. A.7.2: R − R* ≤ K max‖Ĉᵢ − Cᵢ‖₂ (→ 0 as Ĉᵢ → Cᵢ)",
            value={
                "acc_a0": acc0,
                "acc_a2": lim[2.0][0],
                "bayes_a0": lim[0.0][1],
                "bayes_a2": lim[2.0][1],
                "excess_a0": lim[0.0][1] - acc0,
                "eps": 0.05,
            },
            uncertainty=F.se(
                float(np.sqrt(acc0 * (1 - acc0) / n_test + lim[0.0][1] * (1 - lim[0.0][1]) / n_test)),
                f"binomial, test sets of {n_test:,}",
                n=n_test,
                key="excess_a0",
            ),
            rule=F.difference(
                "negative",
                threshold=0.05,
                key="excess_a0",
                what="excess risk of the printed score with the true Cᵢ (σ² = 1, α = 0; ε = 0.05)",
            ),
        )
    )

    slope, slope_se = _jackknife_slope(np.array(EXCESS_NS, dtype=float), exc_c)
    gap = float(np.max([acc[s2]["bayes"] - acc[s2]["corrected"][0] for s2 in (0.1, 1.0)]))
    out.append(
        F.finding(
            "theorem1_router.corrected_rate",
            statement="With the Bayes-rule score (plug-in Ĉᵢ, known σ²) the excess risk vanishes like n^slope, faster "
            "than the n^(−1/2) that the bound's 1/ε² implies: the bound holds (for a large enough C) but is "
            "loose.",
            paper_claim="App. A.7.1: n ≥ C M²/ε² Σ max{dᵢ, log(k/δ)}, i.e. R − R* ≲ n^(−1/2)",
            value={
                "slope": slope,
                "excess_first": float(exc_c[:, 0].mean()),
                "excess_last": float(exc_c[:, -1].mean()),
                "n_first": EXCESS_NS[0],
                "n_last": EXCESS_NS[-1],
                "gap_2560": gap,
            },
            uncertainty=F.se(slope_se, f"jackknife over {reps} training-set replicates", n=reps, key="slope"),
            n_seeds=reps,
            rule=F.difference(
                "negative",
                threshold=-0.5,
                key="slope",
                what="log-log slope of the corrected rule's excess risk against n (σ² = 1; n = 160…10,240)",
            ),
        )
    )

    rows = R.routing_risk_rows((0.1, 0.5, 1.0, 2.0), n=640, n_test=n_test, seed=rng)
    by = {r["sigma2"]: r for r in rows}
    err = {s2: by[s2]["bayes_error_rate"] for s2 in by}
    ese = {s2: float(np.sqrt(e * (1 - e) / n_test)) for s2, e in err.items()}
    low = F.difference("negative", threshold=0.05, what="x").decide(err[0.1], F.se(ese[0.1], "binomial"))
    high = F.difference("negative", threshold=0.05, what="x").decide(err[1.0], F.se(ese[1.0], "binomial"))
    out.append(
        F.finding(
            "theorem1_router.nearly_perfect",
            statement='"A nearly perfect router" (Bayes mis-routing rate below 5 %) is feasible only at low noise: '
            "Theorem 1 bounds R − R*, not R*, and the Bayes router itself errs often under heavy noise.",
            paper_claim='Sec. 4.1: "achieving a nearly perfect router is theoretically feasible within our framework"',
            value={
                "err_s01": err[0.1],
                "err_s05": err[0.5],
                "err_s1": err[1.0],
                "err_s2": err[2.0],
                "s_low": 0.1,
                "s_mid": 0.5,
            },
            uncertainty=F.se(ese[1.0], f"binomial, test set of {n_test:,}", n=n_test, key="err_s1"),
            rule=F.depends(
                {
                    "σ² = 0.1": f"{low} (mis-routing {style.pct(err[0.1])})",
                    "σ² = 1": f"{high} (mis-routing {style.pct(err[1.0])})",
                },
                what="Bayes mis-routing rate < 5 % (k = 4, dᵢ = 8, Σᵢ = I)",
            ),
        )
    )

    r1, r2 = by[1.0], by[2.0]
    out.append(
        F.finding(
            "theorem1_router.routed_vs_dense",
            statement="With hard top-1 Bayes routing the sparse MoE loses most of Theorem 2's advantage at σ² = 1 and is "
            "worse than the dense Bayes estimator at σ² = 2 (hard routing only: see the posterior-gated MoE in "
            "the Theorem 2 chapter).",
            paper_claim='Sec. 4.1: the router analysis "decouples the analysis of expert performance from the challenge '
            'of routing"',
            value={
                "diff_s2": r2["bayes_risk"] - r2["mc_dense"],
                "routed_s2": r2["bayes_risk"],
                "dense_s2": r2["risk_dense"],
                "routed_s1": r1["bayes_risk"],
                "sparse_s1": r1["risk_sparse"],
                "dense_s1": r1["risk_dense"],
                "cost_s01": by[0.1]["bayes_cost"],
                "cost_s1": r1["bayes_cost"],
                "thm4_cost_s1": r1["thm4_cost"],
            },
            uncertainty=F.se(
                r2["bayes_paired_se"], f"paired Monte Carlo, {n_test:,} common test points", n=n_test, key="diff_s2"
            ),
            rule=F.difference(
                "negative",
                key="diff_s2",
                what="risk of the Bayes-routed MoE − dense risk at σ² = 2 (paired, same test points)",
            ),
        )
    )

    out.append(
        F.finding(
            "theorem1_router.bound_checkable",
            statement="What the book can check of A.7's bound: its rate in n (the slope finding), not its constants "
            "(C, K are unspecified and problem-dependent), not the cited inequality of Fan et al. (2012) (no "
            "source here), and the informal Theorem 1 drops the bound's 1/ε² factor.",
            paper_claim="Sec. 4.1, Theorem 1 (informal): n ≥ O(poly(d, log(1/δ))); App. A.7.2: R − R* ≤ K max‖Ĉᵢ − Cᵢ‖₂ "
            "(Fan et al., 2012)",
            value={"slope": slope},
            rule=F.depends(
                {
                    "as a rate (ε ∝ n^(−1/2))": f"consistent: measured slope {style.fmt(slope)} is steeper",
                    "as a bound with constants": "not checkable: C and K are not given",
                    "informal statement": "incomplete: the 1/ε² dependence is dropped",
                },
                what="App. A.7's sample-complexity bound",
            ),
        )
    )

    risk_rows = [r for a in FIGURES["routing_risk"].grid["alpha"] for r in _risk_rows(float(a), 640, 8000, 0)]
    closed = [r["risk_dense"] for r in risk_rows] + [r["risk_sparse"] for r in risk_rows]
    mean = [r["mc_dense"] for r in risk_rows] + [r["mc_oracle"] for r in risk_rows]
    se = [r["mc_dense_se"] for r in risk_rows] + [r["mc_oracle_se"] for r in risk_rows]
    out.append(
        F.calibration(
            "theorem1_router.calibration_routing_risk",
            figure="Test risk of the routed sparse MoE vs σ²",
            closed=closed,
            mean=mean,
            se=se,
            against="Theorem 2's dense and true-label sparse risks",
        )
    )
    return out


# -------------------------------------------------------------------------------------------------- tables
def accuracy_table(sigma2s=SIGMA2_TABLE, *, n: int = 2560, n_test: int = 20000, seed: int = 0):
    """One row per σ²: accuracies of the Bayes, corrected, scikit-learn and printed routers at ``n`` (α = 0)."""
    import pandas as pd

    rows = []
    for s2 in sigma2s:
        out = R.accuracy_curve(R.router_model(4, 8, float(s2), 0.0), [n], n_test=n_test, reps=1, seed=seed)
        rows.append(
            {
                "σ²": float(s2),
                "Bayes": out["bayes"],
                "Bayes s.e.": out["bayes_se"],
                "corrected": float(out["corrected"][0]),
                "sklearn QDA": float(out["sklearn"][0]),
                "printed (A.7)": float(out["printed"][0]),
                "chance": 0.25,
            }
        )
    return pd.DataFrame(rows).round(4)


def excess_table(*, n_test: int = 40000, reps: int = 4, seed: int = 0):
    """Excess risk R − R* of the corrected and printed rules against ``n`` (σ² = 1, α = 0)."""
    import pandas as pd

    ex = R.excess_curve(R.router_model(4, 8, 1.0, 0.0), EXCESS_NS, n_test=n_test, reps=reps, seed=seed)
    return pd.DataFrame(
        {
            "n": ex["n"],
            "excess, corrected": ex["corrected"],
            "s.e.": ex["corrected_se"],
            "excess, printed": ex["printed"],
        }
    ).round(5)


def routing_table(*, n: int = 640, n_test: int = 20000, seed: int = 0):
    """Risk of the routed sparse MoE per router beside Theorem 2, one row per σ² (α = 0)."""
    import pandas as pd

    cols = {
        "sigma2": "σ²",
        "risk_sparse": "R_sparse (Thm 2)",
        "risk_dense": "R_dense (Thm 2)",
        "bayes_risk": "Bayes: risk",
        "bayes_misrouted": "Bayes: mis-routed part",
        "bayes_error_rate": "Bayes: error rate",
        "bayes_cost": "Bayes: cost per mis-route",
        "thm4_cost": "Thm 4 cost (η→0, reading A)",
        "corrected_risk": "corrected: risk",
        "printed_risk": "printed: risk",
        "printed_error_rate": "printed: error rate",
    }
    rows = R.routing_risk_rows((0.1, 0.25, 0.5, 1.0, 2.0), n=n, n_test=n_test, seed=seed)
    return pd.DataFrame([{label: r[key] for key, label in cols.items()} for r in rows]).round(4)
