"""The book renderer, the static-slider builder and the live explorer."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest

import moe_companion  # noqa: F401  (registers the renderer)
from moe_companion._mystnb import MARKER, PlotlyJsonPlugin
from moe_companion.explore import live_explorer
from moe_companion.figures import BookRenderer, fingerprint, slider_figure


def curves(a, b=0.0):
    x = np.linspace(0, 1, 5)
    return [
        go.Scatter(x=x, y=a * x + b, name="line", error_y=dict(array=0.1 * a * np.ones(5))),
        go.Scatter(x=x, y=(a + b) * x**2, name="parabola"),
    ]


def test_renderer_is_default_and_emits_a_div_without_plotlyjs():
    assert pio.renderers.default == "moe_book"
    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))
    bundle = BookRenderer().to_mimebundle(fig.to_plotly_json())
    html = bundle["text/html"]
    assert html.lstrip().startswith("<div") and "Plotly.newPlot" in html
    assert len(html) < 10_000, "plotly.js must not be inlined"
    assert "cdn" not in html.lower() and "<script src" not in html
    spec = bundle["application/vnd.plotly.v1+json"]
    assert spec[MARKER] is True and spec["data"][0]["y"] == [3, 4]


def test_mystnb_plugin_consumes_only_marked_plotly_json():
    class Data:
        def __init__(self, mime, content):
            self.mime_type, self.content = mime, content

    assert PlotlyJsonPlugin.handle_mime(None, Data("application/vnd.plotly.v1+json", {MARKER: True}), False) == []
    assert PlotlyJsonPlugin.handle_mime(None, Data("application/vnd.plotly.v1+json", {"data": []}), False) is None
    assert PlotlyJsonPlugin.handle_mime(None, Data("text/html", "<div/>"), False) is None


def _apply_restyle(fig_json, update):
    """Apply a plotly restyle update (per-trace lists) to a figure dict, as plotly.js does."""
    for key, values in update.items():
        for t, val in zip(fig_json["data"], values):
            node, parts = t, key.split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            if val is None:
                node.pop(parts[-1], None)
            else:
                node[parts[-1]] = val


def _shown(fig_json):
    return [t for t in fig_json["data"] if t.get("visible", True) is not False]


def _as_json(traces):
    return [json.loads(t.to_json()) for t in traces]


def test_one_slider_steps_show_the_function_at_each_grid_point():
    grid = {"a": [0.5, 1.0, 2.0]}
    fig = slider_figure(curves, grid)
    assert len(fig.layout.sliders) == 1
    fj = json.loads(fig.to_json())
    for i, a in enumerate(grid["a"]):
        _apply_restyle(fj, fig.layout.sliders[0].steps[i].args[0])
        shown = _shown(fj)
        want = _as_json(curves(a))
        assert len(shown) == 2
        for s, w in zip(shown, want):
            np.testing.assert_allclose(s["y"], w["y"])
        assert [fingerprint(t) for t in want] == pytest.approx(fig.layout.meta["moe_sliders"]["fingerprints"][i][0])


def test_two_sliders_always_show_the_curve_for_both_positions():
    grid = {"a": [0.5, 1.0, 2.0], "b": [-1.0, 0.0, 3.0, 4.0]}
    fig = slider_figure(curves, grid, initial={"a": 1.0, "b": 3.0})
    assert [s.active for s in fig.layout.sliders] == [1, 2]
    fj = json.loads(fig.to_json())
    rng = np.random.default_rng(0)
    pos = [1, 2]
    for _ in range(30):  # random walk over both sliders, in any order
        s = int(rng.integers(2))
        pos[s] = int(rng.integers(len(grid["ab"[s]])))
        _apply_restyle(fj, fig.layout.sliders[s].steps[pos[s]].args[0])
        want = _as_json(curves(grid["a"][pos[0]], grid["b"][pos[1]]))
        shown = _shown(fj)
        assert len(shown) == len(want)
        for got, w in zip(shown, want):
            np.testing.assert_allclose(got["y"], w["y"])
            if "error_y" in w:
                np.testing.assert_allclose(got["error_y"]["array"], w["error_y"]["array"])
        fp = fig.layout.meta["moe_sliders"]["fingerprints"][pos[0]][pos[1]]
        assert [fingerprint(t) for t in shown] == pytest.approx(fp)


@pytest.mark.parametrize(
    "grid, kwargs, exc, match",
    [
        ({"a": [1], "b": [1, 2]}, {}, ValueError, r"grid\['a'\] must have at least 2 values"),
        ({"a": [1, 2], "b": [1, 2], "c": [1, 2]}, {}, ValueError, "grid must map one or two parameter names"),
        ({}, {}, ValueError, "grid must map one or two"),
        ({"a": [1, np.nan]}, {}, ValueError, r"grid\['a'\] must contain only finite"),
        ({"a": [1, 2]}, {"labels": {"z": "Z"}}, ValueError, "labels names unknown parameters"),
        ({"a": [1, 2]}, {"initial": {"z": 1}}, ValueError, "initial names unknown parameters"),
    ],
)
def test_slider_figure_bad_inputs(grid, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        slider_figure(lambda a, b=0: curves(a, b), grid, **kwargs)


def test_slider_figure_refuses_inconsistent_trace_counts_and_non_callables():
    with pytest.raises(ValueError, match="expected 2 as at the first point"):
        slider_figure(lambda a: curves(a) if a < 2 else curves(a)[:1], {"a": [1, 2]})
    with pytest.raises(TypeError, match="traces_fn must be callable"):
        slider_figure(42, {"a": [1, 2]})
    with pytest.raises(TypeError, match="traces_fn must return a non-empty list"):
        slider_figure(lambda a: [], {"a": [1, 2]})


def test_live_explorer_redraws_the_same_builder_at_any_value():
    box = live_explorer(curves, {"a": [0.5, 2.0], "b": [-1.0, 4.0]})
    fig, sliders = box.figure, box.sliders
    assert isinstance(fig, go.FigureWidget) and set(sliders) == {"a", "b"}
    sliders["a"].value = 1.37  # off the static grid
    sliders["b"].value = 2.5
    want = _as_json(curves(sliders["a"].value, sliders["b"].value))
    for got, w in zip(fig.data, want):
        np.testing.assert_allclose(got.y, w["y"])
    np.testing.assert_allclose(fig.data[0].error_y.array, want[0]["error_y"]["array"])


def test_fingerprint_sees_a_heatmap_change_when_its_axes_stay():
    a = go.Heatmap(x=[0, 1], y=[0, 1], z=[[0, 0], [0, 1]]).to_plotly_json()
    b = go.Heatmap(x=[0, 1], y=[0, 1], z=[[1, 1], [0, 1]]).to_plotly_json()
    # y = [0, 1] weighs 0*1 + 1*2; z flattened [0, 0, 0, 1] vs [1, 1, 0, 1]
    assert fingerprint(a) == 2.0 + 4.0 and fingerprint(b) == 2.0 + (1 + 2 + 4)
    assert fingerprint(go.Scatter(x=[1, 2], y=[3, None]).to_plotly_json()) == 3.0


def test_fingerprint_tells_apart_shares_with_the_same_sum():
    assert fingerprint(go.Bar(y=[0.7, 0.3]).to_plotly_json()) != fingerprint(go.Bar(y=[0.3, 0.7]).to_plotly_json())


@pytest.mark.parametrize(
    "steps, exc, match", [(0, ValueError, "steps must be >= 1"), (-3, ValueError, "steps"), (2.5, TypeError, "steps")]
)
def test_live_explorer_refuses_bad_steps(steps, exc, match):
    with pytest.raises(exc, match=match):
        live_explorer(curves, {"a": [0.5, 1.0]}, steps=steps)


@pytest.mark.parametrize("fmt, exc", [(123, TypeError), ("{:.3q}", ValueError), ("{0} {1}", ValueError)])
def test_slider_figure_refuses_bad_fmt_before_evaluating(fmt, exc):
    calls = []

    def traces(a):
        calls.append(a)
        return curves(a)

    with pytest.raises(exc, match="fmt must"):
        slider_figure(traces, {"a": [0.5, 1.0]}, fmt=fmt)
    assert calls == [], "fmt must be checked before any trace is computed"


def test_live_explorer_gets_the_static_figures_layout():
    layout = dict(title="T", xaxis=dict(title=dict(text="σ² (noise variance)")), yaxis=dict(title=dict(text="risk")))
    box = live_explorer(curves, {"a": [0.5, 1.0]}, layout=layout)
    assert box.figure.layout.xaxis.title.text == "σ² (noise variance)"
    assert box.figure.layout.yaxis.title.text == "risk" and box.figure.layout.title.text == "T"
    assert not box.figure.layout.sliders


def test_renderer_labels_the_figure_and_drops_the_cloud_button():
    fig = slider_figure(curves, {"a": [0.5, 1.0]}, layout=dict(title="Risk <i>vs</i> n"))
    fig.layout.meta["moe_caption"] = 'Dense "and" sparse risk'
    html = BookRenderer().to_mimebundle(fig.to_plotly_json())["text/html"]
    assert 'aria-label="Risk vs n. Dense &quot;and&quot; sparse risk"' in html
    assert '"showSendToCloud": false' in html and '"displaylogo": false' in html
