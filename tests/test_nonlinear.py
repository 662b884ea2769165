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
        counts = {
            kind: nl.count_parameters(
                nl.build_model(kind, task, (0, 1), k=k, block_dim=block_dim, n_classes=n_classes, expert_hidden=h)
            )
            for kind in nl.KINDS
        }
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


@pytest.mark.parametrize("task", nl.TASKS)
def test_parameter_counts_split_the_router_off(task):
    """Counted on built models; checked against the architecture's formula (issue 12 B5)."""
    c = nl.parameter_counts(task)
    d, k, C, h = 32, 4, 3, 24
    experts = d if task == "regression" else k * (h * 8 + h + C * h) + C
    assert c["dense"] == {"experts": experts, "router": 0, "total": experts}
    assert c["oracle"] == {"experts": experts, "router": 0, "total": experts}
    assert c["router"] == {"experts": experts, "router": d * k + k, "total": experts + d * k + k}


def test_dense_hidden_at_least_is_the_smallest_width():
    for n in (1155, 1287, 1299, 1300, 40):
        H = nl.dense_hidden_at_least(n)

        def count(w):
            return nl.count_parameters(nl.build_model("dense", "classification", (0,), dense_hidden=w))

        assert count(H) >= n and (H == 1 or count(H - 1) < n)
    with pytest.raises(ValueError, match="dense_hidden must be None for regression"):
        nl.build_model("dense", "regression", (0,), dense_hidden=8)
    with pytest.raises(ValueError, match="n_params must be >= 1"):
        nl.dense_hidden_at_least(0)


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


def test_seeds_take_generators_and_none_and_leave_global_state_alone():
    torch_state, np_state = torch.random.get_rng_state(), np.random.get_state()[1].copy()
    a = nl.make_data("regression", [np.random.default_rng(7), 3], n_train=16, n_test=16)
    b = nl.make_data("regression", [np.random.default_rng(7), 3], n_train=16, n_test=16)
    assert a.seeds == b.seeds and a.seeds[1] == 3 and torch.equal(a.x_train, b.x_train)
    assert nl.make_data("regression", np.random.default_rng(8), n_train=4, n_test=4).replicas == 1
    c = nl.make_data("regression", None, n_train=4, n_test=4)
    assert c.replicas == 1 and isinstance(c.seeds[0], int)
    model = nl.build_model("router", "regression", (0, 1))
    nl.train_model(model, nl.make_data("regression", (0, 1), n_train=32, n_test=8), epochs=1)
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state)
    with pytest.raises(TypeError, match="seeds must be a seed"):
        nl.make_data("regression", "01")
    with pytest.raises(TypeError, match=r"seeds\[0\] must be an integer"):
        nl.make_data("regression", [1.5])


def test_replicas_do_not_interact():
    """Seed 1 trained alone matches seed 1 trained beside seed 0 (up to float reassociation)."""
    both = nl.run_experiment(
        "classification", (0, 1), sigmas=(0.0, 0.2), kinds=("oracle", "router"), expert_hidden=12, **SMALL
    ).evals
    alone = nl.run_experiment(
        "classification", (1,), sigmas=(0.0, 0.2), kinds=("oracle", "router"), expert_hidden=12, **SMALL
    ).evals
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
        torch.nn.functional.one_hot(z, 4).repeat_interleave(8, dim=-1) == 0
    )
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


def test_advantage_is_the_paired_per_seed_difference(reg_small, cls_small):
    ev = reg_small.evals.set_index(["kind", "seed", "sigma"]).metric
    adv = nl.advantage(reg_small, "metric", 0.3)
    np.testing.assert_allclose(adv, [ev[("dense", s, 0.3)] - ev[("oracle", s, 0.3)] for s in (0, 1)])
    drop = nl.advantage(reg_small, "drop", 0.3, kind="router")
    expect = [
        (ev[("dense", s, 0.3)] - ev[("dense", s, 0.0)]) - (ev[("router", s, 0.3)] - ev[("router", s, 0.0)])
        for s in (0, 1)
    ]
    np.testing.assert_allclose(drop, expect, rtol=1e-9, atol=1e-12)
    ec = cls_small.evals.set_index(["kind", "seed", "sigma"]).metric
    np.testing.assert_allclose(
        nl.advantage(cls_small, "metric", 0.1), [ec[("oracle", s, 0.1)] - ec[("dense", s, 0.1)] for s in (0, 1)]
    )
    with pytest.raises(ValueError, match="sigma must be one of the evaluated"):
        nl.advantage(cls_small, "metric", 0.4)
    with pytest.raises(ValueError, match="what must be one of"):
        nl.advantage(cls_small, "clean", 0.1)


def test_paired_interval_matches_scipy():
    from scipy import stats

    x = np.array([0.3, 1.2, -0.4, 0.8, 0.5])
    iv = nl.paired_interval(x)
    ci = stats.ttest_1samp(x, 0.0).confidence_interval(0.95)
    assert iv["lo"] == pytest.approx(ci.low) and iv["hi"] == pytest.approx(ci.high)
    assert iv["mean"] == pytest.approx(0.48) and iv["n"] == 5
    assert nl.paired_interval([2.0])["lo"] == -np.inf


def test_bootstrap_ratio_agrees_with_scipy_and_is_seeded():
    from scipy import stats

    rng = np.random.default_rng(0)
    den = rng.uniform(1, 2, 12)
    num = 0.4 * den + rng.normal(0, 0.05, 12)
    ours = nl.bootstrap_ratio(num, den, n_boot=20_000, seed=1)
    ref = stats.bootstrap(
        (num, den),
        lambda a, b: a.mean() / b.mean(),
        paired=True,
        vectorized=False,
        n_resamples=4000,
        method="percentile",
        random_state=2,
    ).confidence_interval
    assert ours["ratio"] == pytest.approx(num.mean() / den.mean())
    assert ours["lo"] == pytest.approx(ref.low, abs=0.01) and ours["hi"] == pytest.approx(ref.high, abs=0.01)
    assert nl.bootstrap_ratio(num, den, seed=5) == nl.bootstrap_ratio(num, den, seed=5)
    from_gen = nl.bootstrap_ratio(num, den, seed=np.random.default_rng(5))
    assert from_gen["lo"] == nl.bootstrap_ratio(num, den, seed=5)["lo"]
    with pytest.raises(ValueError, match="num and den must be paired"):
        nl.bootstrap_ratio(num, den[:-1])


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


# ------------------------------------------------------------------------------------ analysis
def test_theorem3_matches_trained_linear_models():
    exp = nl.run_experiment("regression", (0, 1, 2), sigmas=(0.0, 0.2), kinds=("dense", "oracle"), n_test=4096)
    theory = nl.theorem3_clean_training(exp, (0.2,)).groupby(level="sigma").mean()
    agg = exp.summary().groupby(["kind", "sigma"]).metric.mean()
    assert agg[("dense", 0.2)] == pytest.approx(theory.loc[0.2, "dense"], rel=0.08)
    assert agg[("oracle", 0.2)] == pytest.approx(theory.loc[0.2, "oracle"], rel=0.08)


def test_paper_table2_implied_clean_mse():
    t = nl.paper_table2_implied_clean()
    assert t.loc[0.5, "dense_implied_clean"] == pytest.approx(2.03e-2 - 6.15e-2)
    assert t.loc[0.5, "dense_implied_clean_sd"] == pytest.approx(5.37e-5 + 4.07e-5)
    assert (t["dense_implied_clean"] < 0).sum() == 2
    assert t.loc[0.1, "dense_drop_over_sigma2"] == pytest.approx(2.10e-4 / 0.01)
    assert nl.paper_table3().loc[3, "oracle_drop"] == 0.0


def test_sensitivity_reuses_base(reg_small):
    res = nl.run_sensitivity("regression", "lr", [1e-2, 3e-2], (0, 1), base=reg_small, sigmas=(0.0, 0.1, 0.3), **SMALL)
    assert res[3e-2] is reg_small and res[1e-2] is not reg_small
    assert res[1e-2].settings["lr"] == 1e-2


# ------------------------------------------------------------------------------------ bad inputs
def test_negative_sigma_is_refused(reg_small):
    model = nl.build_model("dense", "regression", (0, 1))
    data = nl.make_data("regression", (0, 1), n_train=16, n_test=16)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        nl.evaluate(model, data, -0.1)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        nl.run_experiment("regression", (0,), sigmas=(0.1, -0.2))
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        nl.advantage(reg_small, "metric", sigma=-1)


@pytest.mark.parametrize(
    "call",
    [
        lambda: nl.make_data("regression", (0,), k=0),
        lambda: nl.build_model("oracle", "classification", (0,), k=0),
        lambda: nl.run_experiment("regression", (0,), k=0),
        lambda: nl.matched_dense_hidden(0, 8, 3, 24),
    ],
)
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


@pytest.mark.parametrize(
    "call,match",
    [
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
        (lambda: nl.run_experiment("regression", (0,), kinds=("dense", "oracle", "dense")), "kinds must not repeat"),
        (lambda: nl.run_experiment("regression", (0,), kinds=()), "kinds must list"),
        (lambda: nl.run_sensitivity("regression", "lr", [1e-2, 1e-2]), "values must be distinct"),
        (lambda: nl.run_sensitivity("regression", "lr", [1e-2], lr=0.1), "settings must not also set 'lr'"),
        (lambda: nl.run_experiment("regression", (0,), dense_hidden=8), "dense_hidden must be None for regression"),
        (lambda: nl.run_experiment("classification", (0,), dense_hidden=0), "dense_hidden must be >= 1"),
    ],
)
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


# ------------------------------------------------------------------------------------ validated before any work
@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if data are drawn or a model is trained."""

    def refuse(*args, **kwargs):
        raise AssertionError("heavy work started before the inputs were validated")

    monkeypatch.setattr(nl, "make_data", refuse)
    monkeypatch.setattr(nl, "train_model", refuse)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: nl.run_sensitivity("regression", "epochs", [1, 0], (0,)), r"values\[1\]: epochs must be >= 1"),
        (
            lambda: nl.run_sensitivity("classification", "expert_hidden", [12, 24, 10], (0,)),
            r"values\[2\]: expert_hidden must be a multiple of 3",
        ),
        (lambda: nl.run_sensitivity("regression", "lr", [1e-2, -1.0], (0,)), r"values\[1\]: lr must be > 0"),
        (lambda: nl.run_experiment("classification", (0,), expert_hidden=10), "expert_hidden must be a multiple of 3"),
        (lambda: nl.run_experiment("regression", (0,), kinds=("router", "router")), "kinds must not repeat"),
        (lambda: nl.run_experiment("regression", (0,), n_test=0), "n_test must be >= 1"),
        (
            lambda: nl.run_sensitivity("regression", "lr", [1e-2], (0,), kinds=("dense", "dense")),
            "kinds must not repeat",
        ),
    ],
)
def test_bad_settings_are_refused_before_any_work(no_work, call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_check_settings_types_and_names():
    with pytest.raises(TypeError, match="epochs must be an integer"):
        nl.check_settings("regression", epochs=2.5)
    with pytest.raises(ValueError, match="settings has unknown names"):
        nl.check_settings("regression", width=3)
    assert nl.check_settings("classification", expert_hidden=12)["expert_hidden"] == 12
