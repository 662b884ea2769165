"""Tests of moe_companion.nonlinear (Section 3.1 / Appendix B.3: dense vs MoE networks under feature noise)."""
import numpy as np
import pandas as pd
import pytest
import torch

from moe_companion import nonlinear as nl
from moe_companion.model import BlockModel

torch.set_num_threads(1)

SMALL = {"n_train": 1024, "n_test": 1024, "epochs": 15, "batch_size": 128}


@pytest.fixture(scope="module")
def reg_small():
    return nl.run_experiment("regression", (0, 1), sigmas=(0.0, 0.1, 0.3), **SMALL)


@pytest.fixture(scope="module")
def cls_small():
    return nl.run_experiment("classification", (0, 1), sigmas=(0.0, 0.1), expert_hidden=12, **SMALL)


# ------------------------------------------------------------------------------------ parameter counts
@pytest.mark.parametrize("k,block_dim,n_classes,h", [(4, 8, 3, 24), (4, 8, 3, 12), (2, 5, 2, 13), (3, 4, 4, 0)])
def test_dense_and_oracle_parameter_counts_are_equal(k, block_dim, n_classes, h):
    d = k * block_dim
    if h == 0:  # choose the smallest width that works
        num, den = d + k + k * n_classes, d + 1 + n_classes
        h = den // np.gcd(num, den)
    for task in nl.TASKS:
        counts = {kind: nl.count_parameters(nl.build_model(kind, task, (0, 1), k=k, block_dim=block_dim,
                                                           n_classes=n_classes, expert_hidden=h))
                  for kind in nl.KINDS}
        assert counts["dense"] == counts["oracle"]
        # independent count from the architecture's definition
        if task == "regression":
            assert counts["oracle"] == d
        else:
            H = nl.matched_dense_hidden(k, block_dim, n_classes, h)
            assert counts["dense"] == H * d + H + n_classes * H + n_classes
            assert counts["oracle"] == k * (h * block_dim + h + n_classes * h) + n_classes
        assert counts["router"] == counts["oracle"] + d * k + k


def test_default_widths():
    assert nl.matched_dense_hidden(4, 8, 3, 24) == 32


def test_matched_dense_hidden_refuses_non_integer_width():
    with pytest.raises(ValueError, match="expert_hidden must be a multiple of 3"):
        nl.matched_dense_hidden(4, 8, 3, 10)


def test_experiment_records_equal_counts(reg_small, cls_small):
    for exp in (reg_small, cls_small):
        assert exp.params["dense"] == exp.params["oracle"]
    table = nl.parameter_table({"regression": reg_small, "classification": cls_small})
    assert table.loc["regression", nl.LABELS["dense"]] == 32
    assert table.loc["classification", nl.LABELS["dense"]] == table.loc["classification", nl.LABELS["oracle"]]


# ------------------------------------------------------------------------------------ determinism
def test_seeded_runs_are_bit_identical(reg_small):
    again = nl.run_experiment("regression", (0, 1), sigmas=(0.0, 0.1, 0.3), **SMALL)
    pd.testing.assert_frame_equal(reg_small.evals, again.evals, check_exact=True)
    for kind in nl.KINDS:
        for key in ("train_loss", "test_clean"):
            assert np.array_equal(reg_small.curves[kind][key], again.curves[kind][key])


def test_seeded_classification_runs_are_bit_identical(cls_small):
    again = nl.run_experiment("classification", (0, 1), sigmas=(0.0, 0.1), expert_hidden=12, **SMALL)
    pd.testing.assert_frame_equal(cls_small.evals, again.evals, check_exact=True)


def test_other_seed_gives_other_numbers(reg_small):
    other = nl.run_experiment("regression", (2, 3), sigmas=(0.0, 0.1, 0.3), kinds=("dense",), **SMALL)
    mine = reg_small.evals[reg_small.evals.kind == "dense"].metric.to_numpy()
    assert not np.allclose(mine, other.evals.metric.to_numpy())


def test_replicas_do_not_interact():
    """Seed 1 trained alone matches seed 1 trained beside seed 0 (up to float reassociation)."""
    both = nl.run_experiment("classification", (0, 1), sigmas=(0.0, 0.2), kinds=("oracle", "router"),
                             expert_hidden=12, **SMALL).evals
    alone = nl.run_experiment("classification", (1,), sigmas=(0.0, 0.2), kinds=("oracle", "router"),
                              expert_hidden=12, **SMALL).evals
    b = both[both.seed == 1].reset_index(drop=True)
    np.testing.assert_allclose(b.metric, alone.metric, atol=0.15)  # accuracy in %, 1024 test samples


def test_data_match_the_block_model():
    data = nl.make_data("regression", (5,), n_train=300, n_test=200)
    s_model, s_train = np.random.SeedSequence(5).generate_state(5)[:2]
    bm = BlockModel.toeplitz(4, 8, 0.5, sigma2=0.0, seed=int(s_model))
    ref = bm.sample(300, seed=int(s_train))
    np.testing.assert_allclose(data.x_train[0].numpy(), ref.x, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(data.y_train[0].numpy(), ref.y, rtol=1e-5, atol=1e-5)
    x = data.x_train[0].numpy().reshape(300, 4, 8)
    active = np.abs(x).sum(-1) > 0
    assert np.array_equal(active.argmax(1), data.z_train[0].numpy()) and active.sum(1).max() == 1


def test_classification_labels_are_not_degenerate():
    data = nl.make_data("classification", (0, 1, 2), n_train=3000, n_test=10)
    for r in range(3):
        freq = np.bincount(data.y_train[r].numpy(), minlength=3) / 3000
        assert freq.min() > 0.1, freq


# ------------------------------------------------------------------------------------ behaviour
def test_oracle_moe_reaches_near_zero_clean_regression_error():
    data = nl.make_data("regression", (0, 1, 2), n_test=1024)
    model = nl.build_model("oracle", "regression", (0, 1, 2))
    nl.train_model(model, data)  # the chapter's defaults: 2048 samples, 40 epochs
    res = nl.evaluate(model, data, 0.0)
    var_y = data.y_test.var(dim=1).numpy()
    assert np.all(res["metric"][:, 0] < 1e-3 * var_y), res["metric"][:, 0] / var_y
    # the experts recover beta* block by block
    for r, seed in enumerate((0, 1, 2)):
        s_model = np.random.SeedSequence(seed).generate_state(5)[0]
        beta = BlockModel.toeplitz(4, 8, 0.5, sigma2=0.0, seed=int(s_model)).beta
        np.testing.assert_allclose(model.w[r].detach().numpy(), beta, atol=0.02)


def test_linear_noise_penalty_matches_the_weights(reg_small):
    """For linear models trained on clean data, E[noisy MSE - clean MSE] = sigma^2 * (weights hit by noise)^2."""
    data = nl.make_data("regression", (0, 1), n_train=1024, n_test=4096)
    sigma = 0.3
    for kind in ("dense", "oracle"):
        model = nl.build_model(kind, "regression", (0, 1))
        nl.train_model(model, data, epochs=20)
        res = nl.evaluate(model, data, (0.0, sigma))
        drop = res["metric"][:, 1] - res["metric"][:, 0]
        w = model.w.detach().numpy().reshape(2, 4, 8)
        z = data.z_test.numpy()
        if kind == "dense":
            pred = sigma**2 * (w**2).sum((1, 2))
        else:  # only the routed expert's block of noise reaches the output
            frac = np.stack([np.bincount(z[r], minlength=4) / z.shape[1] for r in range(2)])
            pred = sigma**2 * (frac * (w**2).sum(2)).sum(1)
        np.testing.assert_allclose(drop, pred, rtol=0.1)
        # and exactly, for the drawn noise, by a numpy re-computation
        x = data.x_test.numpy() + sigma * data.eps_test.numpy()
        if kind == "oracle":
            mask = np.zeros(x.shape)
            for r in range(2):
                mask[r] = np.repeat(np.eye(4)[z[r]], 8, axis=1)
            x = x * mask
        mse = (((x * model.w.detach().numpy()[:, None]).sum(-1) - data.y_test.numpy()) ** 2).mean(1)
        np.testing.assert_allclose(res["metric"][:, 1], mse, rtol=1e-4)


def test_oracle_ignores_inactive_blocks_and_dense_does_not():
    data = nl.make_data("classification", (0,), n_train=64, n_test=64)
    x, z = data.x_test, data.z_test
    other = x + torch.randn(x.shape, generator=torch.Generator().manual_seed(0)) * (
        torch.nn.functional.one_hot(z, 4).repeat_interleave(8, dim=-1) == 0)
    for kind, same in (("oracle", True), ("dense", False)):
        model = nl.build_model(kind, "classification", (0,))
        with torch.no_grad():
            a, _ = model(x, z)
            b, _ = model(other, z)
        assert torch.equal(a, b) == same


def test_router_learns_to_route_clean_classification(cls_small):
    ev = cls_small.evals
    assert ev[(ev.kind == "router") & (ev.sigma == 0)].routing.min() > 90
    assert (ev[ev.kind == "oracle"].routing == 100).all() and ev[ev.kind == "dense"].routing.isna().all()


def test_moe_more_robust_on_small_runs(reg_small, cls_small):
    """The paper's qualitative claim at sigma = 0.1 on the small test runs (means over 2 seeds)."""
    r = reg_small.summary().groupby(["kind", "sigma"]).mean(numeric_only=True)
    assert r.loc[("oracle", 0.1), "metric"] < r.loc[("dense", 0.1), "metric"]
    assert r.loc[("oracle", 0.1), "drop"] < r.loc[("dense", 0.1), "drop"]
    c = cls_small.summary().groupby(["kind", "sigma"]).mean(numeric_only=True)
    assert c.loc[("oracle", 0.1), "drop"] < c.loc[("dense", 0.1), "drop"]


def test_seed_wins(reg_small, cls_small):
    wins = nl.seed_wins(reg_small, sigmas=(0.1, 0.3))
    assert list(wins.index) == [0.1, 0.3]
    assert wins.loc[0.1, "MoE lower noisy error"] == "2/2"
    summ = cls_small.summary().set_index(["kind", "seed", "sigma"])
    n = sum(summ.loc[("oracle", s, 0.1), "metric"] > summ.loc[("dense", s, 0.1), "metric"] for s in (0, 1))
    assert nl.seed_wins(cls_small, sigmas=(0.1,)).loc[0.1, "MoE lower noisy error"] == f"{n}/2"


def test_drop_definition(reg_small, cls_small):
    s = reg_small.summary()
    row = s[(s.kind == "dense") & (s.seed == 0)].set_index("sigma")
    assert row.loc[0.3, "drop"] == pytest.approx(row.loc[0.3, "metric"] - row.loc[0.0, "metric"])
    c = cls_small.summary()
    row = c[(c.kind == "dense") & (c.seed == 0)].set_index("sigma")
    assert row.loc[0.1, "drop"] == pytest.approx(row.loc[0.0, "metric"] - row.loc[0.1, "metric"])


def test_curves_have_one_value_per_epoch(reg_small):
    for kind in nl.KINDS:
        assert reg_small.curves[kind]["train_loss"].shape == (2, SMALL["epochs"])
    dense = reg_small.curves["dense"]["train_loss"].mean(0)
    assert dense[-1] < 0.1 * dense[0]


# ------------------------------------------------------------------------------------ tables and figures
def test_tables_side_by_side_with_the_paper(reg_small, cls_small):
    t2 = nl.table2(reg_small, sigmas=(0.1, 0.3))
    assert list(t2.index) == [0.1, 0.3]
    assert t2.loc[0.1, "paper: dense"].startswith("3.13e-03")
    assert t2.loc[0.5 if 0.5 in t2.index else 0.3, "paper: dense / MoE"] == "2.78"
    drop = nl.table2(reg_small, "drop", sigmas=(0.1,))
    assert drop.loc[0.1, "paper: MoE"].startswith("-1.54e-05")
    assert "ours: " + nl.LABELS["oracle"] in drop.columns
    with pytest.raises(ValueError, match="part must be one of"):
        nl.table2(reg_small, "clean")
    t3 = nl.table3(cls_small)
    assert t3.loc["1", "paper dense: noisy acc (%)"] == "74.49"
    assert t3.loc["0", "paper MoE: noisy acc (%)"] == "–"
    assert "±" in t3.loc["mean ± std", "ours oracle: drop (pp)"]
    with pytest.raises(ValueError, match="exp must be a regression"):
        nl.table2(cls_small)
    with pytest.raises(ValueError, match="exp must be a classification"):
        nl.table3(reg_small)
    with pytest.raises(ValueError, match="sigma must be one of"):
        nl.table3(cls_small, sigma=0.4)


def test_theorem3_matches_trained_linear_models():
    exp = nl.run_experiment("regression", (0, 1, 2), sigmas=(0.0, 0.2), kinds=("dense", "oracle"), n_test=4096)
    theory = nl.theorem3_clean_training(exp, (0.2,))
    agg = exp.summary().groupby(["kind", "sigma"]).metric.mean()
    assert agg[("dense", 0.2)] == pytest.approx(theory.loc[0.2, "Theorem 3, dense"], rel=0.08)
    assert agg[("oracle", 0.2)] == pytest.approx(theory.loc[0.2, "Theorem 3, MoE"], rel=0.08)


def test_paper_table2_implied_clean_mse():
    t = nl.paper_table2_implied_clean()
    assert t.loc[0.5, "dense: noisy − drop"] == pytest.approx(2.03e-2 - 6.15e-2)
    assert (t["dense: noisy − drop"] < 0).sum() == 2


def test_sensitivity_reuses_base_and_builds_slider(reg_small):
    res = nl.run_sensitivity("regression", "lr", [1e-2, 3e-2], (0, 1), base=reg_small, sigmas=(0.0, 0.1, 0.3),
                             **SMALL)
    assert res[3e-2] is reg_small and res[1e-2] is not reg_small
    table = nl.sensitivity_table(res, "lr")
    assert set(table["oracle MoE better on both"]) <= {"yes", "no"}
    fig = nl.sigma_slider_figure(res, "lr")
    meta = fig.layout.meta["moe_sliders"]
    assert meta["values"] == [[1e-2, 3e-2]] and meta["traces_per_point"] == 3
    assert len(fig.data) == 6
    curves = nl.curves_figure({"regression": reg_small})
    assert len(curves.data) == 6


# ------------------------------------------------------------------------------------ bad inputs
def test_negative_sigma_is_refused(reg_small):
    model = nl.build_model("dense", "regression", (0, 1))
    data = nl.make_data("regression", (0, 1), n_train=16, n_test=16)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        nl.evaluate(model, data, -0.1)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        nl.run_experiment("regression", (0,), sigmas=(0.1, -0.2))
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        nl.table3(nl.Experiment("classification", {}, (0,)), sigma=-1)


@pytest.mark.parametrize("call", [
    lambda: nl.make_data("regression", (0,), k=0),
    lambda: nl.build_model("oracle", "classification", (0,), k=0),
    lambda: nl.run_experiment("regression", (0,), k=0),
    lambda: nl.matched_dense_hidden(0, 8, 3, 24),
])
def test_k_below_one_is_refused(call):
    with pytest.raises(ValueError, match="k must be >= 1"):
        call()


def test_mismatched_dimensions_are_refused():
    model = nl.build_model("oracle", "regression", (0, 1), block_dim=8)
    data4 = nl.make_data("regression", (0, 1), block_dim=4, n_train=16, n_test=16)
    with pytest.raises(ValueError, match="data.block_dim must match"):
        nl.evaluate(model, data4, 0.1)
    with pytest.raises(ValueError, match="data.block_dim must match"):
        nl.train_model(model, data4, epochs=1)
    with pytest.raises(ValueError, match=r"x must have shape \(replicas=2, n, d=32\)"):
        model(torch.zeros(2, 5, 31), torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="z must have shape"):
        model(torch.zeros(2, 5, 32), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="data.replicas must match"):
        nl.evaluate(model, nl.make_data("regression", (0,), n_train=16, n_test=16), 0.1)
    with pytest.raises(ValueError, match="data.task must match"):
        nl.evaluate(model, nl.make_data("classification", (0, 1), n_train=16, n_test=16), 0.1)
    with pytest.raises(ValueError, match="z must be given"):
        model(torch.zeros(2, 5, 32))


@pytest.mark.parametrize("call,match", [
    (lambda: nl.make_data("ranking", (0,)), "task must be one of"),
    (lambda: nl.build_model("sparse", "regression", (0,)), "kind must be one of"),
    (lambda: nl.make_data("regression", (0, 0)), "seeds must be distinct"),
    (lambda: nl.make_data("regression", ()), "seeds must list"),
    (lambda: nl.make_data("regression", (-1,)), r"seeds\[0\] must be >= 0"),
    (lambda: nl.make_data("classification", (0,), n_classes=1), "n_classes must be >= 2"),
    (lambda: nl.make_data("regression", (0,), rho=1.0), "rho must be < 1"),
    (lambda: nl.run_experiment("regression", (0,), epochs=0), "epochs must be >= 1"),
    (lambda: nl.run_experiment("regression", (0,), lr=0.0), "lr must be > 0"),
    (lambda: nl.run_experiment("regression", (0,), width=3), "settings has unknown names"),
    (lambda: nl.run_sensitivity("regression", "depth", [1]), "name must be one of"),
    (lambda: nl.run_experiment("classification", (0,), expert_hidden=10), "expert_hidden must be a multiple"),
])
def test_other_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_wrong_types_are_refused():
    with pytest.raises(TypeError, match="model must be"):
        nl.count_parameters(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="data must be a TaskData"):
        nl.evaluate(nl.build_model("dense", "regression", (0,)), "data", 0.1)
    with pytest.raises(TypeError, match="k must be an integer"):
        nl.make_data("regression", (0,), k=2.0)
