"""Tests of the chapter module moe_companion.chapters.nonlinear (figures, tables and findings of App. B.3).

Small runs (few samples, few epochs) keep this fast; the numbers are then mostly inconclusive, which is
what the rule must say for them. Verdicts are recomputed here from the per-seed differences.
"""

import numpy as np
import pytest
import torch
from scipy import stats

from moe_companion import nonlinear as nl
from moe_companion import style
from moe_companion.chapters import nonlinear as ch

SEEDS = (0, 1, 2)
SMALL = {"n_train": 256, "n_test": 256, "epochs": 3}
_real_sweep = ch.sweep


@pytest.fixture(scope="module")
def found():
    return {f.id: f for f in ch.findings(seeds=SEEDS, **SMALL)}


def test_experiments_are_trained_once_and_shared(found, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("retrained although the run is cached")

    monkeypatch.setattr(nl, "train_model", refuse)
    again = ch.findings(seeds=SEEDS, **SMALL)  # every run cached: no training
    assert [f.id for f in again] == list(found)
    assert ch.experiment("regression", SEEDS, **SMALL) is ch.sweep("regression_lr", SEEDS, **SMALL)[3e-2]
    ch.table2("noisy", SEEDS, **SMALL), ch.sensitivity_table(SEEDS, **SMALL)


def test_training_leaves_torch_threads_as_they_were(found):
    before = torch.get_num_threads()
    ch.experiment("regression", (4,), **SMALL)
    assert torch.get_num_threads() == before


def test_findings_have_stable_ids_uncertainty_and_rule_verdicts(found):
    assert all(fid.startswith("nonlinear.") for fid in found)
    for f in found.values():
        assert f.verdict == f.rule.decide(f.value, f.uncertainty)
        if f.rule.kind in ("difference", "agreement"):
            assert f.uncertainty is not None and f.uncertainty.method
    assert {
        "nonlinear.iso_parameter_router_counted",
        "nonlinear.router_beats_bigger_dense",
        "nonlinear.table2_implied_clean_nonnegative",
        "nonlinear.sensitivity_classification_width",
    } <= set(found)


def test_weakest_sigma_interval_is_the_paired_t_interval(found):
    """Recompute the regression finding from the raw evaluations with scipy."""
    f = found["nonlinear.regression_moe_lower_noisy_mse"]
    ev = ch.experiment("regression", SEEDS, **SMALL).evals.set_index(["kind", "seed", "sigma"]).metric
    tstats, cis = {}, {}
    for s in nl.SIGMAS_TABLE2:
        d = np.array([ev[("dense", sd, s)] - ev[("oracle", sd, s)] for sd in SEEDS])
        res = stats.ttest_1samp(d, 0.0)
        tstats[s], cis[s] = res.statistic, res.confidence_interval(0.95)
    s_w = min(tstats, key=tstats.get)
    assert f.value["sigma"] == s_w
    assert f.uncertainty.lo == pytest.approx(cis[s_w].low) and f.uncertainty.hi == pytest.approx(cis[s_w].high)
    expected = "holds" if cis[s_w].low > 0 else "fails" if cis[s_w].high < 0 else "inconclusive"
    assert f.verdict == expected
    # the weakest σ decides: every σ's interval excludes 0 exactly when the weakest one's does
    assert (f.verdict == "holds") == all(ci.low > 0 for ci in cis.values())


def test_paper_table_findings_from_the_printed_numbers(found):
    f = found["nonlinear.table2_implied_clean_nonnegative"]
    assert f.verdict == "fails" and f.value["min"] == pytest.approx(2.03e-2 - 6.15e-2) and f.value["sigma"] == 0.5
    g = found["nonlinear.table2_drop_scales_as_sigma2"]
    assert g.value["growth"] == pytest.approx((6.15e-2 / 0.25) / (2.10e-4 / 0.01)) and g.verdict == "fails"
    drop = found["nonlinear.table3_paper_drop_gap"]
    d = np.array([1.03 - 0.16, 0.68 - 0.15, 0.01 - 0.0, 0.35 - 0.08])
    ci = stats.ttest_1samp(d, 0.0).confidence_interval(0.95)
    assert drop.uncertainty.lo == pytest.approx(ci.low) and drop.verdict == "inconclusive"
    assert found["nonlinear.table3_paper_accuracy_gap"].verdict == "holds"


def test_router_parameters_are_counted(found):
    f = found["nonlinear.iso_parameter_router_counted"]
    assert f.value["reg_router"] == 32 + 32 * 4 + 4 and f.value["cls_router"] == 1155 + 132
    assert f.value["reg_ratio"] == pytest.approx(164 / 32) and f.verdict == "fails"
    big = found["nonlinear.router_beats_bigger_dense"]
    assert big.value["dense_params"] >= big.value["router_params"]
    table = ch.parameter_table(SEEDS, **SMALL)
    assert table.loc[("regression", ch.LABELS["router"]), "router"] == 132
    assert table.loc[("classification", "dense, width 36"), "total"] == 36 * 36 + 3


def test_tables_side_by_side_with_the_paper(found):
    t2 = ch.table2("noisy", SEEDS, **SMALL)
    assert list(t2.index) == list(nl.SIGMAS_TABLE2)
    assert t2.loc[0.1, "paper: dense"] == style.fmt_pm(3.13e-3, 4.45e-6)
    assert t2.loc[0.5, "paper: dense / MoE"] == style.fmt(2.03e-2 / 1.36e-2)
    assert ch.table2("drop", SEEDS, **SMALL).loc[0.1, "paper: MoE"].startswith("−1.54")
    with pytest.raises(ValueError, match="part must be one of"):
        ch.table2("clean", SEEDS, **SMALL)
    t3 = ch.table3(SEEDS, **SMALL)
    assert t3.loc["1", "paper dense: noisy acc (%)"] == "74.5"
    assert t3.loc["0", "paper dense: noisy acc (%)"] == "–" and t3.loc["4", "ours dense: drop (pp)"] == "–"
    assert "±" in t3.loc["mean ± std", "ours MoE (oracle router): drop (pp)"]
    sens = ch.sensitivity_table(SEEDS, **SMALL)
    assert len(sens) == sum(len(v[2]) for v in ch.SWEEPS.values())  # every setting run is reported
    assert ch.paper_table2_table().loc[0.5, "dense: noisy − drop"] == style.fmt(2.03e-2 - 6.15e-2)
    assert list(ch.routing_table(SEEDS, **SMALL).index) == [0.0, *nl.SIGMAS_TABLE2]


def test_figures_use_the_book_colours_and_have_captions(found, monkeypatch):
    # draw the page's figure builders on the small runs
    monkeypatch.setattr(ch, "sweep", lambda name, seeds=SEEDS, **kw: _real_sweep(name, SEEDS, **SMALL))
    assert set(ch.FIGURES) == {*ch.SWEEPS, "classification_noise"}
    for name in ch.SWEEPS:
        spec = ch.FIGURES[name]
        assert spec.caption
        fig = spec.static()
        meta = fig.layout.meta["moe_sliders"]
        assert meta["values"] == [[float(x) for x in ch.SWEEPS[name][2]]] and meta["traces_per_point"] == 6
        colours = {tr.line.color if tr.mode == "lines" else tr.marker.color for tr in fig.data}
        assert colours == {style.COLORS[r] for r in ("dense", "sparse", "router")}
        assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    curves = ch.curves_figure(SEEDS, **SMALL)
    assert len(curves.data) == 12 and curves.layout.meta["moe_caption"]
    assert sum(tr.showlegend for tr in curves.data) == 3


def test_noise_explorer_reevaluates_the_trained_models(found):
    """At a grid σ the live builder reproduces the run's stored evaluation; off the grid it still computes."""
    exp = ch.experiment("classification", SEEDS, **SMALL)
    stored = nl.at_sigma(exp, 0.1).groupby("kind").metric.mean()
    bars = ch.noise_traces(0.1, seeds=SEEDS, **SMALL)
    assert [b.x[0] for b in bars] == [ch.LABELS[k] for k in nl.KINDS]
    for bar, kind in zip(bars, nl.KINDS):
        assert bar.y[0] == pytest.approx(stored[kind], rel=1e-4)
        assert bar.marker.color == style.COLORS[ch.ROLE[kind]]
    off = ch.noise_traces(0.137, seeds=SEEDS, **SMALL)
    assert all(0 <= b.y[0] <= 100 for b in off)
    assert ch.FIGURES["classification_noise"].caption
