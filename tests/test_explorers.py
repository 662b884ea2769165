"""The live explorers work in a kernel: each chapter runs with its explorer cells, then every slider moves.

On the site the explorer cells are tagged ``skip-execution`` (a frozen widget would pretend to be
interactive; the built-page test checks that no widget state is embedded).  Here they run as in
JupyterLab: every slider is moved to an off-grid value and the figure's data must change.
"""

from __future__ import annotations

import json

import jupytext
import nbformat
import pytest
from conftest import ROOT, toc_pages
from nbclient import NotebookClient

EXPLORER_CALLS = ("live_explorer(", "_explorer(", ".live(")

PROBE = """
import json as _json
from moe_companion.figures import fingerprint as _fp
_moves = []
for _name, _slider in _ex.sliders.items():
    _before = [_fp(t.to_plotly_json()) for t in _ex.figure.data]
    _slider.value = _slider.min + 0.37 * (_slider.max - _slider.min)  # off the static grid
    _after = [_fp(t.to_plotly_json()) for t in _ex.figure.data]
    _moves.append({"slider": _name, "changed": _before != _after, "traces": len(_after)})
print(_json.dumps(_moves))
"""


def _is_explorer(cell) -> bool:
    return cell.cell_type == "code" and any(call in cell.source for call in EXPLORER_CALLS)


def _chapters_with_explorers() -> list[str]:
    out = []
    for page in toc_pages():
        path = ROOT / f"{page}.md"
        if path.is_file() and any(_is_explorer(c) for c in jupytext.read(path).cells):
            out.append(page)
    return out


CHAPTERS = _chapters_with_explorers()


def test_every_theorem_chapter_has_an_explorer():
    assert {
        f"book/theorem{i}_{name}"
        for i, name in [(1, "router"), (2, "generalization"), (3, "robustness"), (4, "misrouting"), (5, "convergence")]
    } <= set(CHAPTERS)


@pytest.mark.parametrize("page", CHAPTERS)
def test_explorer_cells_are_never_executed_on_the_site(page):
    for cell in jupytext.read(ROOT / f"{page}.md").cells:
        if _is_explorer(cell) and "import" not in cell.source:
            assert "skip-execution" in cell.metadata.get("tags", []), f"{page}: explorer cell would execute"


@pytest.mark.parametrize("page", CHAPTERS)
def test_explorer_moves_in_a_kernel(page):
    nb = jupytext.read(ROOT / f"{page}.md")
    explorers = [c for c in nb.cells if _is_explorer(c) and "import" not in c.source]
    assert len(explorers) == 1, f"{page}: expected one explorer cell"
    cell = explorers[0]
    cell.metadata["tags"] = [t for t in cell.metadata.get("tags", []) if t != "skip-execution"]
    cell.source = f"_ex = {cell.source.strip()}\n_ex"
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    NotebookClient(nb, timeout=600, resources={"metadata": {"path": str(ROOT / "book")}}).execute()
    shown = cell.outputs[-1]["data"]
    assert "application/vnd.jupyter.widget-view+json" in shown, f"{page}: the explorer shows no widget"
    moves = json.loads("".join(o.get("text", "") for o in nb.cells[-1].outputs))
    assert moves and all(m["traces"] > 0 for m in moves)
    assert all(m["changed"] for m in moves), f"{page}: a slider did not change the figure: {moves}"
