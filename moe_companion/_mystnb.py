"""A myst-nb mime-render plugin: the book renders our figures from their ``text/html`` entry.

:class:`moe_companion.figures.BookRenderer` emits each figure twice — as an HTML div (for the
book) and as ``application/vnd.plotly.v1+json`` (for JupyterLab). myst-nb renders every entry of
a bundle before choosing one and warns about the plotly JSON, which ``-W`` turns into a failed
build. This plugin consumes the JSON entry only when it carries our marker, i.e. when the
HTML sibling is known to exist; a figure shown by any other renderer still warns (and fails).
"""

from __future__ import annotations

PLOTLY_MIME = "application/vnd.plotly.v1+json"
MARKER = "moe_companion_html"


class PlotlyJsonPlugin:
    """Render nothing for a marked plotly-JSON entry; reject everything else."""

    mime_priority_overrides = ()

    @staticmethod
    def handle_mime(renderer, data, inline):
        if data.mime_type == PLOTLY_MIME and isinstance(data.content, dict) and data.content.get(MARKER):
            return []
        return None
