"""Figure builders of the Theorem 2-4 chapters: stable trace layout, data from the closed forms."""
import numpy as np
import pytest

from moe_companion import theory
from moe_companion import theory_plots as TP
from moe_companion.figures import slider_figure


def test_p_first_puts_p1_first_and_spreads_the_rest():
    np.testing.assert_allclose(TP.p_first(4, 0.4), [0.4, 0.2, 0.2, 0.2])
    with pytest.raises(ValueError, match="p1"):
        TP.p_first(4, 1.0)
    with pytest.raises(ValueError, match="k"):
        TP.p_first(1, 0.5)


@pytest.mark.parametrize("builder, params", [
    (TP.thm2_traces, [dict(p1=0.25, rho=0.5), dict(p1=0.9, rho=0.0)]),
    (TP.thm3_traces, [dict(sigma2=0.24, p1=0.8), dict(sigma2=0.05, p1=0.0625)]),
    (TP.thm3_gap_traces, [dict(sigma2=0.24, kappa=1.2), dict(sigma2=0.1, kappa=3.0)]),
    (TP.thm3_direction_map_traces, [dict(ratio=2.0), dict(ratio=100.0)]),
    (TP.thm4_traces, [dict(sigma2=0.5, p1=0.85), dict(sigma2=2.0, p1=0.1)]),
    (TP.thm4_sigma_traces, [dict(eta=2.0, rho=0.3), dict(eta=5.0, rho=0.9)]),
])
def test_builders_return_the_same_trace_layout_everywhere(builder, params):
    a, b = (builder(**p) for p in params)
    assert len(a) == len(b) >= 2
    assert [t.type for t in a] == [t.type for t in b]
    assert [t.name for t in a] == [t.name for t in b]


def test_thm2_curve_is_the_closed_form_and_points_are_close():
    tr = TP.thm2_traces(p1=0.25, rho=0.5)
    dense, sparse = theory.risk_grid(TP.thm2_model(0.25, 0.5), sigma2=TP.THM2_SIGMA2)
    np.testing.assert_allclose(tr[0].y, dense, rtol=1e-4)
    np.testing.assert_allclose(tr[1].y, sparse, rtol=1e-4)
    m_dense = np.array([theory.risk_dense(TP.thm2_model(0.25, 0.5, float(s))) for s in TP.THM2_MC_SIGMA2])
    assert np.all(np.abs(np.asarray(tr[2].y) - m_dense) <= np.asarray(tr[2].error_y.array) * 1.34)  # 4 s.e.


def test_thm3_crossover_marker_and_counterexample():
    tr = TP.thm3_traces(sigma2=0.24, p1=0.8)
    t = theory.crossover_sigma_o2(TP.thm3_model(0.24, 0.8)) / 0.24
    assert tr[-1].x[0] == pytest.approx(t)
    assert TP.thm3_traces(sigma2=0.05, p1=0.0625)[-1].x[0] is None  # no crossover: sparse always wins
    ce = TP.thm3_counterexample(n_samples=20_000)
    assert ce["paper condition holds"] and ce["R_sparse (closed form)"] > ce["R_dense (closed form)"]
    mean, se = ce["R_sparse - R_dense (paired MC)"]
    assert mean - 3 * se > 0


def test_thm4_table_has_every_reading_and_printed_row():
    rows = TP.thm4_table(TP.thm4_model(0.5, 0.85), 0, 1, 2.0, n_samples=20_000)
    assert [r["reading"] for r in rows] == [*theory.READINGS, "printed"]
    for r in rows[:-1]:
        assert abs(r["dense: derived"] - r["dense: MC"]) <= 3 * r["dense: MC s.e."]
        assert abs(r["sparse: derived"] - r["sparse: MC"]) <= 3 * r["sparse: MC s.e."]
    assert rows[-1]["dense: derived"] < 0


def test_slider_figure_is_small():
    fig = slider_figure(TP.thm3_direction_map_traces, {"ratio": [2, 10, 100]})
    assert len(fig.to_json()) < 300_000
