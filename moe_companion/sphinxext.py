"""A small Sphinx extension that keeps the built book offline, light and its console clean.

* Jupyter Book 1 always loads ``sphinx_thebe``, which injects a script naming a CDN URL for thebe (and, in
  this version, injects it twice, a console ``SyntaxError``). The book does not use thebe (launch buttons
  open Binder/JupyterLab instead), so its scripts are dropped from every page.
* plotly.js (4.8 MB) and the figure script (``assets/moe-figures.js``: modebar, aria labels, narrow-screen
  layout, dark mode) load only on pages that have a plotly figure.
* ``assets/moe-book.css`` on every page: wide maths, tables and code scroll visibly instead of being cut;
  ``assets/moe-book.js``: search-result snippets without raw TeX.
* The ``paper`` role marks a number quoted from the paper.
"""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).with_name("assets")
FIGURE_SCRIPTS = ("plotly.min.js", "moe-figures.js")


def _is_thebe(js) -> bool:
    name = str(getattr(js, "filename", "") or "")
    body = str(getattr(js, "attributes", {}).get("body", ""))
    return "thebe" in name or "THEBE_JS_URL" in body


def _is_figure_script(js) -> bool:
    name = str(getattr(js, "filename", "") or js or "")
    return name.rsplit("/", 1)[-1] in FIGURE_SCRIPTS


def page_has_figure(body: str) -> bool:
    return "plotly-graph-div" in body or "Plotly.newPlot" in body


def _filter_scripts(app, pagename, templatename, context, doctree):
    files = context.get("script_files")
    if not files:
        return
    keep = [js for js in files if not _is_thebe(js)]
    if not page_has_figure(str(context.get("body", ""))):
        keep = [js for js in keep if not _is_figure_script(js)]
    context["script_files"] = keep


def _add_assets(app, config):
    config.html_static_path.append(str(ASSETS))


def paper_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``{paper}`0.467``: a number quoted as printed in the paper (not computed by the book).

    Rendered as ``<span class="paper-number">`` so the hand-typed-decimal test can tell it from a glued
    value; every other decimal in verdict text must come from a finding through glue.
    """
    from docutils import nodes

    node = nodes.inline(rawtext, text, classes=["paper-number"])
    node["title"] = "as printed in the paper"
    return [node], []


def _register_bibliography_style() -> None:
    """``bibtex_default_style: moe_authoryear``: the reference list labelled and sorted author–year, as the
    in-text citations (``bibtex_reference_style: author_year``) read — not pybtex's "alpha" labels."""
    from pybtex.plugin import register_plugin
    from pybtex.style.formatting.unsrt import Style as Unsrt
    from pybtex.style.labels import BaseLabelStyle

    def surname(person) -> str:
        name = " ".join(person.last_names) or " ".join(person.first_names)
        return name.replace("{", "").replace("}", "")

    class AuthorYearLabels(BaseLabelStyle):
        def format_labels(self, sorted_entries):
            seen: dict[str, int] = {}
            labels = []
            for entry in sorted_entries:
                people = entry.persons.get("author") or entry.persons.get("editor") or []
                names = [surname(p) for p in people]
                who = (
                    names[0]
                    if len(names) == 1
                    else f"{names[0]} and {names[1]}"
                    if len(names) == 2
                    else f"{names[0]} et al."
                    if names
                    else entry.fields.get("key", entry.key)
                )
                labels.append(f"{who}, {entry.fields.get('year', 'n.d.')}")
                seen[labels[-1]] = seen.get(labels[-1], 0) + 1
            counter: dict[str, int] = {}
            for label in labels:
                if seen[label] > 1:
                    counter[label] = counter.get(label, 0) + 1
                    yield label + "abcdefghijklmnopqrstuvwxyz"[counter[label] - 1]
                else:
                    yield label

    class AuthorYearStyle(Unsrt):
        default_label_style = AuthorYearLabels
        default_sorting_style = "author_year_title"

    try:
        register_plugin("pybtex.style.formatting", "moe_authoryear", AuthorYearStyle)
    except Exception:  # already registered (a second Sphinx app in the same process)
        pass


def setup(app):
    _register_bibliography_style()
    app.add_role("paper", paper_role)
    app.connect("config-inited", _add_assets)
    # after plotly.min.js (html_js_files get priority 800), before the inline Plotly.newPlot calls of the figures
    app.add_js_file("moe-figures.js", priority=850)
    app.add_css_file("moe-book.css")
    app.add_js_file("moe-book.js", priority=900)  # search snippets without raw TeX
    app.connect("html-page-context", _filter_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "2"}
