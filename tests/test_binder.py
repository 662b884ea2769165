"""The Binder environment (binder/) would build on mybinder.org and runs every chapter's imports.

repo2docker reads binder/runtime.txt (the Python version), binder/requirements.txt (pip) and runs
binder/postBuild. Offline here we check what can be checked:

* the pins agree with ../requirements.txt and runtime.txt names the Python the pins exist for;
* (slow) a fresh Python 3.11 venv resolves exactly binder/requirements.txt with pip (``--dry-run --report``),
  and every module that any chapter imports — the code cells of every page of the table of contents, the
  stored heavy notebooks, and every module the ``moe_companion`` package imports anywhere, lazily or not —
  importable from the resolved distributions alone: an isolated interpreter (``python -S``) sees the stdlib,
  the repository and a folder linking the installed files of exactly the resolved distributions (their
  versions checked against the resolution), nothing else.
  ``MOE_BINDER_FULL=1`` instead installs the resolution into the fresh venv (about 2 minutes and 2 GB here),
  runs binder/postBuild in it and imports everything there.

Skipped (not failed) only when the package registry does not answer within a few seconds.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT, toc_pages

BINDER = ROOT / "binder"
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s#;]+)")
PIP_FAST = ["--timeout", "5", "--retries", "0", "--disable-pip-version-check"]


def _pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        m = PIN.match(line.strip())
        if m:
            out[m.group(1).lower().replace("_", "-")] = m.group(2)
    return out


def test_binder_files_pin_python_311_and_agree_with_requirements():
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"
    binder, main = _pins(BINDER / "requirements.txt"), _pins(ROOT / "requirements.txt")
    assert binder, "binder/requirements.txt pins nothing"
    differ = {k: (v, main.get(k)) for k, v in binder.items() if main.get(k) != v}
    assert not differ, f"binder pins differ from requirements.txt (binder, main): {differ}"
    for needed in ("torch", "jupytext", "jupyterlab", "jupyterlab-myst", "ipykernel", "transformers"):
        assert needed in binder, needed
    text = (BINDER / "requirements.txt").read_text()
    assert "download.pytorch.org/whl/cpu" in text, "torch must come from PyTorch's CPU index on Binder"
    assert os.access(BINDER / "postBuild", os.X_OK), "repo2docker runs postBuild only when it is executable"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'requires-python = ">=3.11"' in pyproject


# ------------------------------------------------------------------------------------------ what chapters import
def _cell_sources(page: str) -> list[str]:
    md, nb = ROOT / f"{page}.md", ROOT / f"{page}.ipynb"
    if md.exists():
        return re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", md.read_text(encoding="utf-8"), flags=re.S)
    if nb.exists():
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    return []


def _imports(source: str) -> set[str]:
    lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith((":", "%", "!"))]
    try:
        tree = ast.parse(textwrap.dedent("\n".join(lines)))
    except SyntaxError:
        return set()
    mods = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            mods.add(node.module)
    return mods


def chapter_imports() -> list[str]:
    """Every module imported by a chapter's code cells or anywhere in the moe_companion package."""
    mods = set()
    for page in toc_pages():
        for src in _cell_sources(page):
            mods |= _imports(src)
    for py in (ROOT / "moe_companion").rglob("*.py"):
        mods |= _imports(py.read_text(encoding="utf-8"))
        rel = py.relative_to(ROOT).with_suffix("")
        mods.add(".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts))
    mods.discard("__future__")
    return sorted(mods)


def test_chapter_imports_are_found():
    mods = chapter_imports()
    assert {"numpy", "plotly.graph_objects", "moe_companion.figures", "torch", "transformers"} <= set(mods)


# ------------------------------------------------------------------------------------------ the slow check
IMPORT_ALL = r"""
import importlib, json, os, sys
os.environ.setdefault("HF_HUB_OFFLINE", "1"); os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
failed = {}
for m in json.loads(sys.argv[1]):
    try:
        importlib.import_module(m)
    except Exception as exc:
        failed[m] = f"{type(exc).__name__}: {exc}"
print(json.dumps(failed))
"""


def _only_these_distributions(resolved: dict[str, str], target: Path) -> None:
    """Link into ``target`` the installed files of exactly the ``resolved`` distributions (top-level entries)."""
    import importlib.metadata as md

    target.mkdir()
    for dist in md.distributions():
        name = dist.metadata["Name"].lower().replace("_", "-")
        if name not in resolved or name == "moe-companion":
            continue
        base = Path(dist.locate_file(""))
        for f in dist.files or []:
            top = f.parts[0]
            if top in ("..", "__pycache__") or top.endswith(".pth"):
                continue
            src, dst = base / top, target / top
            if src.exists() and not dst.exists():
                dst.symlink_to(src)


def _registry_answers(python: str) -> bool:
    try:
        proc = subprocess.run(
            [python, "-m", "pip", "index", "versions", "jupyterlab-myst", *PIP_FAST],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0 and "2.7.0" in proc.stdout


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_fresh_venv_from_binder_files_resolves_and_imports_every_chapter(tmp_path):
    if sys.version_info[:2] != (3, 11):
        pytest.skip("runtime.txt asks for Python 3.11; this interpreter is another version")
    venv = tmp_path / "binder-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = str(venv / "bin" / "python")
    if not _registry_answers(py):
        pytest.skip("the package registry does not answer")
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [
            py,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            str(report),
            *PIP_FAST,
            "-r",
            str(BINDER / "requirements.txt"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    resolved = {
        i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"]
        for i in json.loads(report.read_text())["install"]
    }
    for name, version in _pins(BINDER / "requirements.txt").items():
        assert resolved.get(name, "").split("+")[0] == version, f"{name}: resolved {resolved.get(name)}"
    assert resolved["torch"].endswith("+cpu") or "download.pytorch.org" not in str(resolved), resolved["torch"]
    modules = chapter_imports()
    full = os.environ.get("MOE_BINDER_FULL") == "1"
    if full:
        proc = subprocess.run(
            [py, "-m", "pip", "install", "--quiet", *PIP_FAST, "-r", str(BINDER / "requirements.txt")],
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
        proc = subprocess.run(
            ["bash", str(BINDER / "postBuild")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        runner = py
    else:
        # the same versions, here: import under a hook that refuses every distribution Binder would not have
        import importlib.metadata as md

        mismatched = {}
        for name, version in resolved.items():
            try:
                have = md.version(name)
            except md.PackageNotFoundError:
                continue  # not installed here: any import needing it fails below
            if have.split("+")[0] != version.split("+")[0]:
                mismatched[name] = (have, version)
        pinned = _pins(BINDER / "requirements.txt")
        assert not {k: v for k, v in mismatched.items() if k in pinned}, mismatched
        # a site-packages holding only the resolved distributions, and an isolated interpreter (-I -S: no
        # site-packages of its own) that sees the stdlib, that folder and the repository, nothing else
        site = tmp_path / "site"
        _only_these_distributions(resolved, site)
        runner = sys.executable
    env = {**os.environ, "PYTHONPATH": f"{ROOT}" if full else f"{ROOT}:{site}", "MPLBACKEND": "Agg"}
    args = [runner] if full else [runner, "-S"]
    proc = subprocess.run(
        [*args, "-c", IMPORT_ALL, json.dumps(modules)], capture_output=True, text=True, timeout=600, cwd=ROOT, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    failed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not failed, f"chapter imports that fail in the Binder environment: {failed}"
