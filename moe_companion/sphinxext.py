"""A small Sphinx extension that keeps the built book offline and its console clean.

Jupyter Book 1 always loads ``sphinx_thebe``, which injects a script naming a CDN URL for thebe
(and, in this version, injects it twice, a console ``SyntaxError``). The book does not use thebe
(launch buttons open Binder/JupyterLab instead), so its scripts are dropped from every page.
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


def setup(app):
    app.connect("html-page-context", _drop_thebe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
