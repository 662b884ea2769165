"""Findings as data: every verdict is computed from its rule, carries its uncertainty, and is what the text quotes.

(a) no hand-typed decimal in the errata sources or in the chapters' warning boxes (glued or marked as the
paper's); (b) changing a seed changes the page's text; (c) every verdict follows from its rule and value,
recomputed here independently of ``Rule.decide``; (d) every stochastic finding has an uncertainty.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import jupytext
import numpy as np
import pytest
from conftest import ROOT, toc_pages
from nbclient import NotebookClient
from scipy import stats

from moe_companion import chapters
from moe_companion import findings as F

NOT_CHAPTERS = {"intro", "errata", "references"}
DECIMAL = re.compile(r"(?<![\w.])\d+\.\d+")
ROLE = re.compile(r"\{(glue:?\w*|paper)\}`[^`]*`")
BOX = re.compile(
    r"^(`{3,}|:{3,})\{(warning|danger|important|caution|attention|admonition|error)\}.*?^\1\s*$", re.S | re.M
)
CODE = re.compile(r"^(`{3,})\{code-cell\}.*?^\1\s*$", re.S | re.M)


@pytest.fixture(scope="module")
def registry():
    found, _ = F.registry()
    return found


def _stray_decimals(text: str) -> list[str]:
    text = CODE.sub("", text)
    return [line.strip() for line in text.splitlines() if DECIMAL.search(ROLE.sub("", line))]


def _verdict_sources() -> dict[str, str]:
    """Errata sources whole, and the warning boxes of every chapter source."""
    out = {
        str(p.relative_to(ROOT)): p.read_text()
        for p in [ROOT / "book" / "errata.md", *sorted((ROOT / "book" / "_errata").glob("*.md"))]
    }
    for path in [*sorted((ROOT / "book").glob("*.md")), *sorted((ROOT / "book" / "heavy").glob("*.md"))]:
        boxes = [m.group(0) for m in BOX.finditer(CODE.sub("", path.read_text()))]
        if boxes:
            out[f"{path.relative_to(ROOT)} (warning boxes)"] = "\n".join(boxes)
    return out


def test_decimal_scanner_catches_a_typed_number_and_spares_glue():
    assert _stray_decimals("dense wins beyond 3.32 here") == ["dense wins beyond 3.32 here"]
    assert _stray_decimals("dense wins beyond {glue:text}`t.x:.2f` ({paper}`0.467` printed)") == []
    box = "````{warning}\nR = 6.014\n````\n"
    assert BOX.search(box) and _stray_decimals(BOX.search(box).group(0)) == ["R = 6.014"]


@pytest.mark.parametrize("source", sorted(_verdict_sources()))
def test_no_hand_typed_decimal_in_verdict_text(source):
    stray = _stray_decimals(_verdict_sources()[source])
    assert not stray, (
        f"{source}: decimals typed by hand (glue them from a finding or mark them {{paper}}):\n" + "\n".join(stray[:10])
    )


def test_every_chapter_has_a_module_with_findings(registry):
    pages = [p for p in toc_pages() if p.split("/")[-1] not in NOT_CHAPTERS]
    names = [p.split("/")[-1] for p in pages]
    missing = sorted(set(names) - set(chapters.names()))
    assert not missing, f"toc chapters without a chapter module: {missing}"
    with_findings = {f.chapter for f in registry}
    assert set(names) <= with_findings, f"chapters without findings: {sorted(set(names) - with_findings)}"


def _independent_verdict(f: F.Finding) -> str:
    """Recompute a verdict from the rule's parameters without ``Rule.decide``."""
    p = f.rule.params
    if f.rule.kind == "depends":
        return "depends"
    x = f.value[p["key"]] if p.get("key") else f.value
    if f.rule.kind == "exact":
        ops = {">": x > p["threshold"], ">=": x >= p["threshold"], "<": x < p["threshold"], "<=": x <= p["threshold"]}
        return "holds" if ops[p["relation"]] else "fails"
    u = f.uncertainty
    if u.kind == "ci":
        lo, hi = u.lo, u.hi
    else:
        assert u.level == 0.95
        lo, hi = x - 1.96 * u.se, x + 1.96 * u.se
    if f.rule.kind == "difference":
        t = p["threshold"]
        paper_side, other_side = (lo > t, hi < t) if p["direction"] == "positive" else (hi < t, lo > t)
        return "holds" if paper_side else "fails" if other_side else "inconclusive"
    assert f.rule.kind == "agreement"
    tol = p["tol"]
    return "holds" if -tol <= lo and hi <= tol else "fails" if lo > tol or hi < -tol else "inconclusive"


def test_every_verdict_follows_from_its_rule_and_value(registry):
    assert registry
    for f in registry:
        assert f.verdict in F.VERDICTS
        assert f.verdict == _independent_verdict(f), f"{f.id}: verdict {f.verdict} does not follow from its rule"


def test_every_stochastic_finding_has_an_uncertainty(registry):
    for f in registry:
        if f.rule.kind in ("difference", "agreement") or (f.n_seeds or 0) > 1:
            assert f.uncertainty is not None, f"{f.id}: stochastic finding without an uncertainty"
            assert f.uncertainty.method, f"{f.id}: the uncertainty must say how it was obtained"


def test_ids_are_unique_and_json_has_exactly_the_documented_keys(registry):
    ids = [f.id for f in registry]
    assert len(ids) == len(set(ids))
    for f in registry:
        assert tuple(f.to_json()) == F.JSON_KEYS
        json.dumps(f.to_json(), allow_nan=False)


def test_rules_decide_the_three_cases_and_refuse_bad_input():
    rule = F.difference("positive", what="gap")
    assert F.finding("c.a", statement="s", rule=rule, value=1.0, uncertainty=F.se(0.1, "mc")).verdict == "holds"
    assert F.finding("c.b", statement="s", rule=rule, value=-1.0, uncertainty=F.se(0.1, "mc")).verdict == "fails"
    assert F.finding("c.c", statement="s", rule=rule, value=0.1, uncertainty=F.se(0.1, "mc")).verdict == "inconclusive"
    neg = F.difference("negative", what="gap", threshold=1.0)
    assert (
        F.finding("c.d", statement="s", rule=neg, value=0.0, uncertainty=F.interval(-0.5, 0.5, "boot")).verdict
        == "holds"
    )
    ex = F.exact("<=", 0.0, what="gap")
    assert F.finding("c.e", statement="s", rule=ex, value=1.07).verdict == "fails"
    dep = F.depends({"A": "dense wins", "C": "MoE wins"}, what="the remark")
    assert F.finding("c.f", statement="s", rule=dep, value={"A": 1.0, "C": 0.0}).verdict == "depends"
    with pytest.raises(ValueError, match="needs an uncertainty"):
        F.finding("c.g", statement="s", rule=rule, value=1.0)
    with pytest.raises(ValueError, match="id must look like"):
        F.finding("nodot", statement="s", rule=ex, value=1.0)
    with pytest.raises(TypeError, match="value must be a number"):
        F.finding("c.h", statement="s", rule=ex, value="1.0")
    with pytest.raises(ValueError, match="direction must be"):
        F.difference("up", what="gap")
    with pytest.raises(ValueError, match="se must be >= 0"):
        F.se(-1.0, "mc")
    with pytest.raises(ValueError, match="chapter must be one of"):
        F.registry("no_such_chapter")


def test_calibration_holds_when_calibrated_and_fails_both_ways():
    rng = np.random.default_rng(0)
    n = 2000
    closed = rng.uniform(1.0, 2.0, n)
    se = np.full(n, 0.1)
    mean = closed + se * rng.standard_normal(n)

    def cal(**kw):
        return F.calibration("c.cal", figure="test", **{"closed": closed, "mean": mean, "se": se, **kw})

    good = cal()
    k = int(np.sum(np.abs(mean - closed) <= 2 * se))  # independent count and exact interval (scipy)
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    expected = 2 * stats.norm.cdf(2.0) - 1
    assert good.value["share_2se"] == k / n and good.value["points"] == n and good.value["left_out"] == 0
    assert good.value["excess_2se"] == pytest.approx(k / n - expected)
    assert good.interval() == pytest.approx((ci.low - expected, ci.high - expected))
    assert good.verdict == "holds"
    biased = cal(closed=closed + 1.5 * se)  # closed form 1.5 s.e. off: about 69 % within ±2 s.e.
    assert biased.verdict == "fails" and biased.value["excess_2se"] < 0
    inflated = cal(se=2 * se)  # s.e. twice too large: about all within ±2 s.e. (over-coverage)
    assert inflated.verdict == "fails" and inflated.value["excess_2se"] > 0
    few = cal(closed=closed[:30], mean=mean[:30], se=se[:30])  # 30 points cannot tell
    assert few.verdict == "inconclusive"
    holes = mean.copy()
    holes[:5] = np.nan
    zero = se.copy()
    zero[5] = 0.0
    part = cal(mean=holes.reshape(40, 50), se=zero.reshape(40, 50), closed=closed.reshape(40, 50))
    assert part.value["points"] == n - 6 and part.value["left_out"] == 6


def test_calibration_of_an_se_from_three_replicates_uses_student_t():
    reps = np.random.default_rng(1).standard_normal((3000, 3))  # exact closed form 0, three replicates a point
    kw = {"closed": np.zeros(3000), "mean": reps.mean(axis=1), "se": reps.std(axis=1, ddof=1) / np.sqrt(3)}
    t2 = F.calibration("c.cal", figure="test", dof=2, **kw)
    assert t2.value["expected_2se"] == pytest.approx(2 * stats.t.cdf(2.0, 2) - 1)  # 0.8165
    assert t2.verdict == "holds"
    assert F.calibration("c.cal", figure="test", **kw).verdict == "fails"  # against the normal 0.9545


def test_calibration_refuses_bad_input_naming_the_parameter():
    ok = {"closed": [1.0, 2.0], "mean": [1.0, 2.0], "se": [0.1, 0.1]}
    bad = [
        (ValueError, "^mean must have the shape of closed", {"mean": [1.0, 2.0, 3.0]}),
        (ValueError, "^se must have the shape of closed", {"se": [[0.1, 0.1]]}),
        (ValueError, "^se must be >= 0", {"se": [0.1, -0.1]}),
        (ValueError, "no point with all three finite", {"mean": [np.nan, np.inf]}),
        (ValueError, "no point with all three finite", {"se": [0.0, np.nan]}),
        (TypeError, "^closed must be an array of real numbers", {"closed": ["a", "b"]}),
        (ValueError, "^dof must be a positive int", {"dof": 0}),
        (ValueError, "^dof must be a positive int", {"dof": 2.0}),
    ]
    for err, match, kw in bad:
        with pytest.raises(err, match=match):
            F.calibration("c.cal", figure="test", **{**ok, **kw})


def _glued(nb) -> dict[str, str]:
    out = {}
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            key = o.get("metadata", {}).get("scrapbook", {}).get("name")
            if key:
                out[key] = next((str(v) for m, v in o["data"].items() if m.endswith("text/plain")), "")
    return out


def _run_setting(seed: int) -> dict[str, str]:
    nb = jupytext.read(ROOT / "book" / "setting.md")
    call = 'findings.compute("setting")'
    hits = [c for c in nb.cells if c.cell_type == "code" and call in c.source]
    assert len(hits) == 1, "the setting page computes its findings in one cell"
    hits[0].source = hits[0].source.replace(call, f'findings.compute("setting", seed={seed}, use_cache=False)')
    nb.cells = [c for c in nb.cells if c.cell_type == "markdown" or "FIGURES" not in c.source]
    NotebookClient(nb, timeout=300, resources={"metadata": {"path": str(ROOT / "book")}}).execute()
    return _glued(nb)


def test_changing_a_seed_changes_the_text():
    a, b = _run_setting(0), _run_setting(1)
    key = "setting.eq3_is_least_squares_limit.worst_gap"
    assert key in a and key in b, sorted(a)
    assert a[key] != b[key], "the glued value did not move with the seed: is the number typed somewhere?"
    text = (ROOT / "book" / "setting.md").read_text()
    assert f"{{glue:text}}`{key}" in text, "the setting page quotes the glued value"


def test_findings_cli_json_lists_the_registry(tmp_path):
    env = {"MOE_FINDINGS_CACHE": str(tmp_path)}
    import os

    proc = subprocess.run(
        [sys.executable, "-m", "moe_companion", "findings", "--chapter", "setting", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert rows and all(tuple(r) == F.JSON_KEYS for r in rows)
    assert "computed now for 1" in proc.stderr
    again = subprocess.run(
        [sys.executable, "-m", "moe_companion", "findings", "--chapter", "setting"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )
    assert again.returncode == 0 and "reused from the last build's cache for 1" in again.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "moe_companion", "findings", "--chapter", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "chapter must be one of" in bad.stderr


def _html_text_outside_glue(path) -> list[str]:
    """Sentences of a built page that hold a decimal which is neither glued, marked {paper}, nor computed
    by a cell (a cell's output is the computation itself)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
    main = soup.find("article") or soup.find("main") or soup  # the page's text, not the site footer
    for node in main.select(
        ".pasted-text, .paper-number, .cell_output, .cell_input, script, style, div.highlight, code, a.headerlink"
    ):
        node.decompose()
    text = main.get_text(" ")
    return [m.group(0) for m in re.finditer(r"[^.\n]{0,60}(?<![\w.])\d+\.\d+[^\n]{0,20}", text)]


@pytest.mark.build
def test_rendered_errata_page_has_no_hand_typed_decimal(built_book):
    assert built_book.returncode == 0
    stray = _html_text_outside_glue(ROOT / "_build" / "html" / "book" / "errata.html")
    assert not stray, "decimals on the rendered errata page that no finding supplies:\n" + "\n".join(stray[:10])


@pytest.mark.build
def test_rendered_errata_page_lists_every_finding(built_book, registry):
    html = (ROOT / "_build" / "html" / "book" / "errata.html").read_text(encoding="utf-8")
    missing = [f.id for f in registry if f.id not in html]
    assert not missing, f"findings missing from the errata page: {missing}"
