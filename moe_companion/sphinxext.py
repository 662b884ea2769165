"""A small Sphinx extension that keeps the built book offline and its console clean.

Jupyter Book 1 always loads ``sphinx_thebe``, which injects a script naming a CDN URL for thebe
(and, in this version, injects it twice, a console ``SyntaxError``). The book does not use thebe
(launch buttons open Binder/JupyterLab instead), so its scripts are dropped from every page.

It also adds the ``paper`` role that marks a number quoted from the paper.
"""
from __future__ import annotations


def _is_thebe(js) -> bool:
    name = str(getattr(js, "filename", "") or "")
    body = str(getattr(js, "attributes", {}).get("body", ""))
    return "thebe" in name or "THEBE_JS_URL" in body


def _drop_thebe(app, pagename, templatename, context, doctree):
    files = context.get("script_files")
    if files:
        context["script_files"] = [js for js in files if not _is_thebe(js)]


def paper_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``{paper}`0.467``: a number quoted as printed in the paper (not computed by the book).

    Rendered as ``<span class="paper-number">`` so the hand-typed-decimal test can tell it from a glued
    value; every other decimal in verdict text must come from a finding through glue.
    """
    from docutils import nodes

    node = nodes.inline(rawtext, text, classes=["paper-number"])
    node["title"] = "as printed in the paper"
    return [node], []


def setup(app):
    app.add_role("paper", paper_role)
    app.connect("html-page-context", _drop_thebe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
