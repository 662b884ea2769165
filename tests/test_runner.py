"""Runner, result store and CLI of the heavy chapters (moe_companion.heavy.runner/store/__main__)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from moe_companion.__main__ import main
from moe_companion.heavy import runner
from moe_companion.heavy.store import ResultStore

HEADER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""

CHAPTER = HEADER + textwrap.dedent("""
    # A tiny test chapter

    ```{code-cell} ipython3
    :tags: [parameters]
    profile = "cpu"
    results_path = "r.jsonl"
    n_units = 4
    sleep = 0.0
    fail = False
    pidfile = ""
    ```

    ```{code-cell} ipython3
    import os, time
    import numpy as np
    from moe_companion.heavy.store import ResultStore
    if pidfile:
        Path = __import__("pathlib").Path
        Path(pidfile).write_text(str(os.getpid()))
    store = ResultStore(results_path)
    def unit(i):
        time.sleep(sleep)
        return {"x": np.random.default_rng(i).normal(size=3).tolist()}
    values = [store.run({"unit": i}, lambda i=i: unit(i)) for i in range(n_units)]
    if fail:
        raise RuntimeError("planned failure")
    print(profile, len(values))
    ```
    """)

PROFILES = {p: {"n_units": 4, "sleep": 0.0, "fail": False, "pidfile": ""} for p in ("cpu", "paper", "smoke")}


@pytest.fixture()
def chapter(tmp_path):
    src = tmp_path / "tiny.md"
    src.write_text(CHAPTER)
    return src


def _run(src, out, **kw):
    params = runner.resolve_params("tiny", kw.pop("profile", "cpu"), kw.pop("overrides", {}), profiles=PROFILES)
    return runner.run_notebook(
        src,
        "tiny",
        "cpu",
        params,
        output_dir=out,
        book_dir=src.parent,
        results_path=kw.pop("results_path", out / "r.jsonl"),
        progress=False,
        **kw,
    )


# ------------------------------------------------------------------------------ store
def test_store_roundtrip_canonical_keys_and_json_identity(tmp_path):
    import numpy as np

    s = ResultStore(tmp_path / "a" / "r.jsonl")
    v1 = s.put({"b": 2, "a": 1}, {"x": np.float64(0.5), "t": (1, 2), "arr": np.arange(3)})
    assert v1 == {"x": 0.5, "t": [1, 2], "arr": [0, 1, 2]}
    assert s.get({"a": 1, "b": 2}) == v1 and {"a": 1, "b": 2} in s
    calls = []
    assert s.run({"a": 1, "b": 2}, lambda: calls.append(1) or {"x": 9}) == v1 and not calls
    s2 = ResultStore(tmp_path / "a" / "r.jsonl")
    assert s2.get({"b": 2, "a": 1}) == v1 and len(s2) == 1
    with pytest.raises(TypeError, match="value"):
        s.put({"a": 3}, [1, 2])
    with pytest.raises(TypeError, match="not JSON"):
        s.put({"a": 3}, {"x": object()})


def test_store_ignores_truncated_last_line(tmp_path):
    p = tmp_path / "r.jsonl"
    s = ResultStore(p)
    s.put({"u": 0}, {"v": 1.0})
    with open(p, "a") as fh:
        fh.write('{"key": {"u": 1}, "val')  # a kill mid-write
    s2 = ResultStore(p)
    assert len(s2) == 1 and s2.get({"u": 1}) is None
    s2.put({"u": 1}, {"v": 2.0})
    s3 = ResultStore(p)
    assert s3.get({"u": 1}) == {"v": 2.0} and s3.get({"u": 0}) == {"v": 1.0}


# ------------------------------------------------------------------------------ validation
def test_bad_profile_and_parameters_are_named():
    with pytest.raises(ValueError, match="profile"):
        runner.resolve_params("tiny", "gpu", profiles=PROFILES)
    with pytest.raises(ValueError, match="n_unitz"):
        runner.resolve_params("tiny", "cpu", {"n_unitz": 3}, profiles=PROFILES)
    with pytest.raises(TypeError, match="n_units"):
        runner.resolve_params("tiny", "cpu", {"n_units": 2.5}, profiles=PROFILES)
    with pytest.raises(TypeError, match="fail"):
        runner.resolve_params("tiny", "cpu", {"fail": "yes"}, profiles=PROFILES)
    with pytest.raises(ValueError, match="results_path"):
        runner.resolve_params("tiny", "cpu", {"results_path": "x"}, profiles=PROFILES)
    with pytest.raises(ValueError, match="keys differ"):
        runner.check_profiles({"cpu": {"a": 1}, "paper": {"a": 1}, "smoke": {"b": 1}})
    assert runner.resolve_params("tiny", "cpu", {"sleep": 1}, profiles=PROFILES)["sleep"] == 1.0
    with pytest.raises(ValueError, match="name"):
        runner.get_chapter("no_such_chapter")


def test_real_chapter_validation_happens_before_torch_import():
    code = textwrap.dedent("""
        import sys
        from moe_companion.__main__ import main
        rcs = [main(["heavy", "run", "modular_structure", "--profile", "gpu"]),
               main(["heavy", "run", "modular_structure", "--profile", "cpu", "-p", "n_tokenz", "5"]),
               main(["heavy", "run", "modular_structure", "--profile", "cpu", "-p", "n_blocks", "0"]),
               main(["heavy", "run", "modular_structure", "--profile", "cpu", "-p", "sparsities", "[0.2, 1.5]"])]
        print(rcs, "torch" in sys.modules, "transformers" in sys.modules)
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().endswith("[2, 2, 2, 2] False False"), out.stdout + out.stderr
    assert "profile must be one of" in out.stderr
    assert "n_tokenz is not a parameter" in out.stderr
    assert "n_blocks must be" in out.stderr
    assert "sparsities" in out.stderr


def test_cli_parses_values_as_json():
    assert runner.parse_cli_value("0.5") == 0.5
    assert runner.parse_cli_value("[0, 0.4]") == [0, 0.4]
    assert runner.parse_cli_value("true") is True
    assert runner.parse_cli_value("meta-llama/Llama-2-7b-hf") == "meta-llama/Llama-2-7b-hf"


def test_cli_list_runs(capsys):
    assert main(["heavy", "list"]) == 0
    assert "modular_structure" in capsys.readouterr().out


# ------------------------------------------------------------------------------ execution
@pytest.mark.heavy
def test_cache_hit_and_invalidation(chapter, tmp_path):
    out = tmp_path / "gen"
    r1 = _run(chapter, out)
    assert r1.status == "executed" and (out / "tiny.ipynb").is_file()
    meta = json.loads((out / "tiny.run.json").read_text())
    assert meta["profile"] == "cpu" and len(meta["hash"]) == 64
    mtime = (out / "tiny.ipynb").stat().st_mtime_ns
    r2 = _run(chapter, out)
    assert r2.status == "cached" and (out / "tiny.ipynb").stat().st_mtime_ns == mtime
    assert _run(chapter, out, overrides={"n_units": 5}).status == "executed"  # parameters changed
    chapter.write_text(CHAPTER + "\nMore prose.\n")
    assert _run(chapter, out, overrides={"n_units": 5}).status == "executed"  # source changed
    assert _run(chapter, out, overrides={"n_units": 5}, force=True).status == "executed"
    nb = json.loads((out / "tiny.ipynb").read_text())
    injected = [c for c in nb["cells"] if "injected-parameters" in c.get("metadata", {}).get("tags", [])]
    assert injected and "n_units = 5" in "".join(injected[0]["source"])
    assert not list(out.glob(".tiny.ipynb.partial-*"))


@pytest.mark.heavy
def test_failed_run_leaves_old_notebook_intact(chapter, tmp_path):
    out = tmp_path / "gen"
    _run(chapter, out)
    before = (out / "tiny.ipynb").read_bytes()
    meta_before = (out / "tiny.run.json").read_bytes()
    with pytest.raises(runner.HeavyRunError, match="planned failure"):
        _run(chapter, out, overrides={"fail": True})
    assert (out / "tiny.ipynb").read_bytes() == before
    assert (out / "tiny.run.json").read_bytes() == meta_before
    assert sorted(p.name for p in out.iterdir()) == [
        ".failed",
        ".tiny-cpu.lock",
        "r.jsonl",
        "tiny.ipynb",
        "tiny.run.json",
    ]
    assert (out / ".failed" / "tiny-cpu.ipynb").is_file()  # the failed notebook, named in the error
    fresh = tmp_path / "fresh"
    with pytest.raises(runner.HeavyRunError):
        _run(chapter, fresh, overrides={"fail": True})
    assert not (fresh / "tiny.ipynb").exists()


_DRIVER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from moe_companion.heavy import runner
    sys.path.insert(0, {testdir!r})
    from test_runner import PROFILES
    src, out, pidfile, sleep = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    params = runner.resolve_params("tiny", "cpu", {{"n_units": 6, "sleep": sleep, "pidfile": pidfile}},
                                   profiles=PROFILES)
    runner.run_notebook(src, "tiny", "cpu", params, output_dir=out, book_dir=src.parent,
                        results_path=out / "r.jsonl", progress=False)
    """)


def _results(path):
    return {
        json.dumps(json.loads(line)["key"], sort_keys=True): json.loads(line)["value"]
        for line in Path(path).read_text().splitlines()
        if line.strip()
    }


@pytest.mark.heavy
def test_kill_and_resume_matches_uninterrupted_run(chapter, tmp_path):
    driver = tmp_path / "driver.py"
    driver.write_text(_DRIVER.format(testdir=str(Path(__file__).parent)))
    ref, out = tmp_path / "ref", tmp_path / "killed"
    pidfile = tmp_path / "kernel.pid"
    subprocess.run([sys.executable, str(driver), str(chapter), str(ref), "", "0"], check=True, timeout=180)

    proc = subprocess.Popen(
        [sys.executable, str(driver), str(chapter), str(out), str(pidfile), "1.0"], start_new_session=True
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if (out / "r.jsonl").exists() and len((out / "r.jsonl").read_text().splitlines()) >= 2:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the run never stored two units")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # runner + papermill
        if pidfile.exists():
            try:
                os.kill(int(pidfile.read_text()), signal.SIGKILL)  # the kernel (own session)
            except ProcessLookupError:
                pass
        proc.wait(timeout=30)
    time.sleep(0.5)
    n_done = len(_results(out / "r.jsonl"))
    assert 2 <= n_done < 6, n_done
    assert not (out / "tiny.ipynb").exists()  # no half-written notebook where the book reads

    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(driver), str(chapter), str(out), "", "0"], check=True, timeout=180)
    assert (out / "tiny.ipynb").is_file()
    assert _results(out / "r.jsonl") == _results(ref / "r.jsonl")
    assert len(_results(out / "r.jsonl")) == 6
    assert not list(out.glob(".tiny.ipynb.partial-*"))
    # the stored units were skipped: the restart with sleep=0 computed the rest, nothing recomputed
    keys = [
        json.loads(line)["key"]["unit"]
        for line in (out / "r.jsonl").read_text().splitlines()
        if line.strip().endswith("}")
    ]
    assert sorted(keys) == list(range(6)) and len(keys) == 6
    assert time.perf_counter() - t0 < 170


def test_a_current_paper_notebook_is_kept_by_cpu_requests(tmp_path):
    """The Pages build downloads the GPU run's notebooks; `run-all --profile cpu` must not overwrite them."""
    chapter = runner.get_chapter("modular_structure")
    out = tmp_path / "gen"
    out.mkdir()
    params = runner.resolve_params("modular_structure", "paper")
    inject = {**params, "profile": "paper", "results_path": "generated/results/modular_structure-paper.jsonl"}
    digest = runner.run_hash(chapter.source.read_text(), inject, chapter.module)
    (out / "modular_structure.ipynb").write_text("{}")
    meta = {"profile": "paper", "params": inject, "hash": digest}
    (out / "modular_structure.run.json").write_text(json.dumps(meta))
    res = runner.run_chapter("modular_structure", "smoke", output_dir=out, progress=False)
    assert res.status == "kept-paper" and (out / "modular_structure.ipynb").read_text() == "{}"
    st = runner.chapter_status("modular_structure", out)
    assert st["profile"] == "paper" and st["up_to_date"]
    meta["hash"] = "0" * 64  # outdated (e.g. the chapter changed since the GPU run): not kept
    (out / "modular_structure.run.json").write_text(json.dumps(meta))
    assert not runner.chapter_status("modular_structure", out)["up_to_date"]


def test_cache_key_covers_the_figure_builder():
    """A change to the slider-figure builder changes every heavy chapter's rendered figures."""
    sources = runner._sources_for_hash("moe_companion.heavy.modular")
    assert {"moe_companion.figures", "moe_companion.heavy.teal"} <= set(sources)
    assert runner._sources_for_hash(None) == {}


# ------------------------------------------------------------------------------ import closure
def test_import_closure_is_computed_from_the_imports():
    import ast

    tree = ast.parse(
        "import numpy\nfrom .. import _validate as v\n"
        "def f():\n    from .data import token_stream\n    from . import teal\n"
    )
    assert runner.imported_modules(tree, "moe_companion.heavy.foo") == {
        "moe_companion._validate",
        "moe_companion.heavy.data",
        "moe_companion.heavy.teal",
        "moe_companion.heavy",
        "moe_companion",
    }
    for name, module in runner.CHAPTERS.items():
        src = runner.get_chapter(name).source.read_text()
        closure = runner.import_closure([module], src)
        # data.py feeds every chapter (directly or through the registry); theory modules feed none
        assert "moe_companion.heavy.data" in closure, name
        assert not {"moe_companion.theory", "moe_companion.simulate", "moe_companion.router"} & set(closure), name
    assert "moe_companion.heavy.activations" in runner.import_closure(["moe_companion.heavy.modular"])
    assert "moe_companion.heavy.noise" in runner.import_closure(["moe_companion.heavy.moefication"])


def test_editing_a_module_in_the_closure_changes_the_hash(monkeypatch):
    chapter = runner.get_chapter("linear_probes")
    params = {**runner.resolve_params("linear_probes", "cpu"), "profile": "cpu", "results_path": "r.jsonl"}
    text = chapter.source.read_text()
    before = runner.run_hash(text, params, chapter.module)
    real = runner._package_file

    def edited(name, edit):
        def fake(mod):
            path = real(mod)
            if mod == name and path is not None:
                tmp = Path(os.environ["PYTEST_TMP"]) / (mod + ".py")
                tmp.write_text(path.read_text() + edit)
                return tmp
            return path

        return fake

    import tempfile

    with tempfile.TemporaryDirectory() as d:
        monkeypatch.setenv("PYTEST_TMP", d)
        monkeypatch.setattr(runner, "_package_file", edited("moe_companion.heavy.data", "\n# edited\n"))
        assert runner.run_hash(text, params, chapter.module) != before
        monkeypatch.setattr(runner, "_package_file", edited("moe_companion.theory", "\n# edited\n"))
        assert runner.run_hash(text, params, chapter.module) == before


# ------------------------------------------------------------------------------ safe runs
def test_store_writes_strict_json_for_nan_and_inf_and_refuses_directories(tmp_path):
    import math

    s = ResultStore(tmp_path / "r.jsonl")
    v = s.put({"u": 0}, {"x": float("nan"), "y": [float("inf"), -float("inf"), 1.5]})
    assert math.isnan(v["x"]) and v["y"][:2] == [float("inf"), -float("inf")]

    def refuse(token):
        raise ValueError(f"bare {token} in the file")

    for line in (tmp_path / "r.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=refuse)  # strict JSON: no NaN / Infinity tokens
    back = ResultStore(tmp_path / "r.jsonl").get({"u": 0})
    assert math.isnan(back["x"]) and back["y"] == [float("inf"), -float("inf"), 1.5]
    legacy = tmp_path / "old.jsonl"
    legacy.write_text('{"key": {"u": 1}, "value": {"x": NaN}}\n')  # files written before the rule
    assert math.isnan(ResultStore(legacy).get({"u": 1})["x"])
    with pytest.raises(ValueError, match="path must be a .jsonl file, got the directory"):
        ResultStore(tmp_path)
    with pytest.raises(TypeError, match="path must be a str"):
        ResultStore(3)


def test_output_dir_and_results_path_are_checked(chapter, tmp_path):
    afile = tmp_path / "a_file"
    afile.write_text("x")
    with pytest.raises(ValueError, match="output_dir must be a directory"):
        _run(chapter, afile)
    with pytest.raises(ValueError, match="results_path must be a .jsonl file, got the directory"):
        _run(chapter, tmp_path / "gen", results_path=tmp_path)
    with pytest.raises(ValueError, match="is a file, not a directory"):
        _run(chapter, tmp_path / "gen", results_path=afile / "r.jsonl")
    if os.geteuid() != 0:  # root writes anywhere: nothing to refuse
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        with pytest.raises(ValueError, match="not writable"):
            _run(chapter, ro)
    assert main(["heavy", "run", "modular_structure", "--profile", "cpu", "--output-dir", str(afile)]) == 2
    assert (
        main(
            [
                "heavy",
                "run",
                "modular_structure",
                "--profile",
                "cpu",
                "--output-dir",
                str(tmp_path / "o"),
                "--results-path",
                str(tmp_path),
            ]
        )
        == 2
    )


def test_smoke_writes_outside_the_book_and_help_explains_force_and_recompute(capsys):
    assert runner.default_output_dir("cpu") == runner.project_root() / "book" / "generated"
    smoke = runner.default_output_dir("smoke")
    assert "generated" not in smoke.parts and smoke.parts[-2:] == ("_build", "heavy-smoke")
    with pytest.raises(SystemExit):
        main(["heavy", "run", "--help"])
    text = capsys.readouterr().out
    assert "--recompute" in text and "--force" in text and "re-render" in text
    assert "--workers" in text and "--scheduler" in text and "-f PARAMS.yaml" in text


def test_second_run_of_a_chapter_and_profile_is_refused_while_the_first_holds_the_lock(chapter, tmp_path):
    out = tmp_path / "gen"
    out.mkdir()
    with (
        runner._Lock(out / ".tiny-cpu.lock", "tiny [cpu]"),
        pytest.raises(runner.RunLocked, match=r"tiny \[cpu\] is already running \(pid \d+"),
    ):
        _run(chapter, out)
    assert not (out / "tiny.ipynb").exists()


def test_stale_temp_folders_of_dead_runs_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{runner.TEMP_PREFIX}tiny-{dead.pid}-abc123"
    live = tmp_path / f"{runner.TEMP_PREFIX}tiny-{os.getpid()}-def456"
    stale.mkdir()
    live.mkdir()
    assert runner.clean_stale_temp(tmp_path) == [stale]
    assert not stale.exists() and live.exists()


def test_paper_run_fails_fast_before_any_kernel_or_torch_import():
    code = textwrap.dedent("""
        import sys
        from moe_companion.__main__ import main
        rc = main(["heavy", "run", "modular_structure", "--profile", "paper"])
        print(rc, "torch" in sys.modules, "transformers" in sys.modules, "papermill" in sys.modules)
        """)
    env = {**os.environ, "HF_HOME": "/nonexistent-hf-home", "HF_HUB_OFFLINE": "1"}
    env.pop("HF_TOKEN", None)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert out.stdout.strip().endswith("1 False False False"), out.stdout + out.stderr
    assert "CUDA" in out.stderr and "HF_TOKEN" in out.stderr and "meta-llama/Llama-2-7b-hf" in out.stderr


@pytest.mark.heavy
def test_run_record_lives_in_the_notebook_and_paths_are_relative(chapter, tmp_path):
    out = tmp_path / "gen"
    _run(chapter, out)
    nb = json.loads((out / "tiny.ipynb").read_text())
    rec = nb["metadata"]["moe_companion"]
    assert rec == json.loads((out / "tiny.run.json").read_text()) and len(rec["hash"]) == 64
    assert str(tmp_path) not in (out / "tiny.ipynb").read_text()  # no absolute local paths
    assert not [c for c in nb["cells"] if runner.WATCHDOG_TAG in c.get("metadata", {}).get("tags", [])]
    # a stale or missing run.json cannot make a notebook look current or outdated: the record is inside it
    (out / "tiny.run.json").write_text(json.dumps({**rec, "hash": "0" * 64}))
    assert _run(chapter, out).status == "cached"
    (out / "tiny.run.json").unlink()
    assert _run(chapter, out).status == "cached"
    # --recompute sets the units aside (kept) and computes them again; --force reuses them
    lines = (out / "r.jsonl").read_text()
    assert _run(chapter, out, force=True).status == "executed" and (out / "r.jsonl").read_text() == lines
    assert _run(chapter, out, recompute=True).status == "executed"
    assert len(list(out.glob("r.jsonl.replaced-*"))) == 1 and _results(out / "r.jsonl") == _results(
        next(out.glob("r.jsonl.replaced-*"))
    )
    assert not list(Path(tempfile_dir()).glob(f"{runner.TEMP_PREFIX}tiny-{os.getpid()}-*"))


def tempfile_dir():
    import tempfile

    return tempfile.gettempdir()


_KILL_DRIVER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from moe_companion.heavy import runner
    sys.path.insert(0, {testdir!r})
    from test_runner import PROFILES
    src, out, pidfile = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    params = runner.resolve_params("tiny", "cpu", {{"n_units": 50, "sleep": 1.0, "pidfile": pidfile}},
                                   profiles=PROFILES)
    runner.run_notebook(src, "tiny", "cpu", params, output_dir=out, book_dir=src.parent,
                        results_path=out / "r.jsonl", progress=False)
    """)


@pytest.mark.heavy
def test_the_kernel_dies_with_the_cli(chapter, tmp_path):
    driver = tmp_path / "driver.py"
    driver.write_text(_KILL_DRIVER.format(testdir=str(Path(__file__).parent)))
    out, pidfile = tmp_path / "gen", tmp_path / "kernel.pid"
    proc = subprocess.Popen([sys.executable, str(driver), str(chapter), str(out), str(pidfile)])
    deadline = time.time() + 120
    while time.time() < deadline and not pidfile.exists():
        time.sleep(0.2)
    assert pidfile.exists(), "the kernel never started"
    kernel = int(pidfile.read_text())
    os.kill(proc.pid, signal.SIGKILL)  # only the CLI: the kernel is in its own session
    proc.wait(timeout=30)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            os.kill(kernel, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.kill(kernel, signal.SIGKILL)
        pytest.fail("the kernel outlived the CLI")
    # the next run removes the killed run's temp folder and runs
    assert runner.clean_stale_temp() is not None
    assert not list(Path(tempfile_dir()).glob(f"{runner.TEMP_PREFIX}tiny-{proc.pid}-*"))
