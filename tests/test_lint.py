"""ruff (lint + format, configured in pyproject.toml) is clean on the package, the tests, the benchmarks and
the code cells of every chapter."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest
from conftest import ROOT

RUFF = [sys.executable, "-m", "ruff"]
TREES = ["moe_companion", "tests", "bench"]


def _ruff(*args, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([*RUFF, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_ruff_check_is_clean():
    proc = _ruff("check", *TREES)
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_ruff_format_is_clean():
    proc = _ruff("format", "--check", *TREES)
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_ruff_is_clean_on_chapter_code_cells(tmp_path):
    sources = sorted((ROOT / "book").glob("*.md")) + sorted((ROOT / "book" / "heavy").glob("*.md"))
    out = tmp_path / "cells"
    out.mkdir()
    for src in sources:
        nb = jupytext.read(src)
        if not any(c.cell_type == "code" for c in nb.cells):
            continue
        jupytext.write(nb, out / f"{src.stem}.py", fmt="py:percent")
    shutil.copy(ROOT / "pyproject.toml", out / "pyproject.toml")
    # a notebook's cells are a script: imports may follow prose cells (E402), the last expression is shown (B018),
    # and import sorting cannot tell first-party modules apart in this temporary folder (I001)
    proc = _ruff("check", "--extend-ignore", "E402,B018,I001", ".", cwd=out)
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_ruff_catches_a_lint_error(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    assert _ruff("check", str(bad), cwd=tmp_path).returncode != 0
    assert Path(bad).exists()


@pytest.fixture(autouse=True, scope="module")
def _needs_ruff():
    if _ruff("--version").returncode != 0:
        pytest.fail("ruff is not installed: it is pinned in requirements.txt")
