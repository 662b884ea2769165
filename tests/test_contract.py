"""The heavy-experiment contract, the Dask route and plain papermill (moe_companion.heavy.contract/cluster)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import heavy_toy
import pytest

from moe_companion.heavy import contract, modular, moefication, pretraining, probes
from moe_companion.heavy.store import ResultStore

HERE = Path(__file__).parent
ROOT = HERE.parent


def _values(path):
    return {json.dumps(k, sort_keys=True): v for k, v in ResultStore(path).items()}


def test_every_heavy_module_follows_the_contract():
    for mod in (modular, moefication, probes, pretraining):
        exp = mod.EXPERIMENT
        assert isinstance(exp, contract.Experiment)
        import inspect

        sig = inspect.signature(mod.run_experiment)
        assert list(sig.parameters)[:2] == ["params", "store"], mod.__name__
        assert sig.parameters["progress"].kind is inspect.Parameter.KEYWORD_ONLY
        ctx = contract.Context()
        if mod is not pretraining or mod.PROFILES["smoke"]["tokenizer"] == "bytes":
            units = exp.units(exp.check_params(mod.PROFILES["smoke"]), ctx)
            assert units and len({json.dumps(u, sort_keys=True) for u in units}) == len(units)


def test_run_experiment_resumes_and_returns_one_result_type(tmp_path, capsys):
    res = heavy_toy.run({"n": 4, "kill_marker": ""}, tmp_path / "r.jsonl", progress=True)
    assert isinstance(res, contract.ExperimentResult) and res.computed == 4 and len(res) == 4
    assert "[toy] unit 4/4 i=3" in capsys.readouterr().err  # one summary line per finished unit
    assert math.isnan(res.values[0]["nan"])
    again = heavy_toy.run({"n": 4, "kill_marker": ""}, tmp_path / "r.jsonl", progress=False)
    assert again.computed == 0 and again.data == res.data
    with pytest.raises(ValueError, match="n must be"):
        heavy_toy.run({"n": 0, "kill_marker": ""}, tmp_path / "r.jsonl")
    dup = contract.Experiment("dup", dict, lambda p, c: [{"a": 1}, {"a": 1}], lambda p, k, c: {}, lambda p, x, c: x)
    with pytest.raises(ValueError, match="declared twice"):
        contract.run_experiment(dup, {})


def test_notebook_params_resolve_the_profile_unless_given():
    ns = {"profile": "paper", "results_path": None, **{k: None for k in modular.PROFILES["cpu"]}}
    ns["seed"] = 3
    p = contract.notebook_params(modular, "paper", ns, chapter="modular_structure")
    assert p["model"] == "meta-llama/Llama-2-7b-hf" and p["layers"] == [0, 2, 16, 31] and p["seed"] == 3
    assert ns["model"] == p["model"] and ns["results_path"] == "generated/results/modular_structure-paper.jsonl"
    with pytest.raises(ValueError, match="profile"):
        contract.notebook_params(modular, "gpu", {})


@pytest.fixture()
def worker_path(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), str(ROOT), os.environ.get("PYTHONPATH", "")]))


@pytest.mark.heavy
def test_dask_results_equal_serial_and_a_killed_worker_loses_no_unit(tmp_path, worker_path):
    from moe_companion.heavy import cluster

    serial = heavy_toy.run({"n": 8, "kill_marker": ""}, tmp_path / "serial.jsonl", progress=False)
    marker = tmp_path / "killed.pid"
    stats = cluster.compute_units(
        "heavy_toy", {"n": 8, "kill_marker": str(marker)}, tmp_path / "dask.jsonl", workers=2, progress=False
    )
    assert marker.exists()  # a worker died in the middle of unit 3
    assert stats["computed"] == 8
    a, b = _values(tmp_path / "serial.jsonl"), _values(tmp_path / "dask.jsonl")
    strip = {k: {kk: vv for kk, vv in v.items() if kk != "nan"} for k, v in a.items()}
    assert strip == {k: {kk: vv for kk, vv in v.items() if kk != "nan"} for k, v in b.items()}
    # the notebook's serial loop then computes nothing: the store is the single source of truth
    again = heavy_toy.run({"n": 8, "kill_marker": str(marker)}, tmp_path / "dask.jsonl", progress=False)
    assert again.computed == 0 and again.data == serial.data


def _cli(*args, timeout=900):
    return subprocess.run(
        [sys.executable, "-m", "moe_companion", "heavy", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )


@pytest.mark.heavy
def test_cli_serial_and_two_workers_give_identical_results(tmp_path):
    ser = _cli("run", "moe_pretraining", "--profile", "smoke", "--output-dir", str(tmp_path / "ser"), "--quiet")
    assert ser.returncode == 0, ser.stderr
    par = _cli(
        "run",
        "moe_pretraining",
        "--profile",
        "smoke",
        "--output-dir",
        str(tmp_path / "par"),
        "--quiet",
        "--workers",
        "2",
    )
    assert par.returncode == 0, par.stderr
    a = _values(tmp_path / "ser" / "results" / "moe_pretraining-smoke.jsonl")
    b = _values(tmp_path / "par" / "results" / "moe_pretraining-smoke.jsonl")
    assert len(a) == 3 and a.keys() == b.keys()
    drop = {k: {kk: vv for kk, vv in v.items() if kk != "seconds"} for k, v in a.items()}
    assert drop == {k: {kk: vv for kk, vv in v.items() if kk != "seconds"} for k, v in b.items()}


@pytest.mark.heavy
def test_plain_papermill_and_a_params_file(tmp_path):
    """Route 1: jupytext + papermill with -p profile smoke; route 2: the CLI with -f params.yaml."""
    src = ROOT / "book" / "heavy" / "moe_pretraining.md"
    ipynb = tmp_path / "moe_pretraining.ipynb"
    subprocess.run(
        [sys.executable, "-m", "jupytext", "--to", "ipynb", str(src), "-o", str(ipynb)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    out = tmp_path / "out.ipynb"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "papermill",
            str(ipynb),
            str(out),
            "-p",
            "profile",
            "smoke",
            "-p",
            "results_path",
            str(tmp_path / "pm.jsonl"),
            "-p",
            "steps",
            "4",
            "--cwd",
            str(ROOT / "book"),
            "-k",
            "python3",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    text = out.read_text()
    assert "steps = 4" in text and "hidden = 16" in text  # the smoke profile's values, one given explicitly
    assert len(ResultStore(tmp_path / "pm.jsonl")) == 3
    pfile = tmp_path / "params.yaml"
    pfile.write_text("steps: 4\nseeds: [1]\n")
    cli = _cli(
        "run", "moe_pretraining", "--profile", "smoke", "-f", str(pfile), "--output-dir", str(tmp_path / "f"), "--quiet"
    )
    assert cli.returncode == 0, cli.stderr
    rec = json.loads((tmp_path / "f" / "moe_pretraining.run.json").read_text())
    assert rec["params"]["steps"] == 4 and rec["params"]["seeds"] == [1]
    bad = tmp_path / "bad.yaml"
    bad.write_text("stepz: 4\n")
    cli = _cli("run", "moe_pretraining", "--profile", "smoke", "-f", str(bad), "--output-dir", str(tmp_path / "g"))
    assert cli.returncode == 2 and "stepz is not a parameter" in cli.stderr
