"""Chapter layer: one module per book chapter, composing domain functions into figures and findings.

A chapter module ``moe_companion/chapters/<page>.py`` belongs to the page ``book/<page>.md`` (or, for a
heavy chapter, ``book/generated/<page>.ipynb``) and exports

``TITLE``
    the chapter's short title (used by the errata page);
``FIGURES``
    a dict ``name -> figures.FigureSpec``: the one builder behind the static slider (``spec.static()``)
    and the live explorer (``spec.live()``);
``findings(**kwargs)``
    the chapter's verdicts (:class:`moe_companion.findings.Finding`), computed with the same functions as
    its figures.

Chapter modules hold no maths of their own: they call the domain modules (``theory``, ``simulate``,
``router``, ...). New chapters are picked up automatically (module name = page name).
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from types import ModuleType

__all__ = ["names", "module", "page"]

_ROOT = Path(__file__).resolve().parents[2]


def _toc_order() -> list[str]:
    toc = _ROOT / "_toc.yml"
    if not toc.is_file():
        return []
    import yaml

    data = yaml.safe_load(toc.read_text())
    files: list[str] = [data.get("root", "")]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))

    for part in data.get("parts", []):
        walk(part.get("chapters"))
    walk(data.get("chapters"))
    return [Path(f).stem for f in files]


def names() -> list[str]:
    """Every chapter module's name, in table-of-contents order (modules not in the toc last, sorted)."""
    found = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    order = {name: i for i, name in enumerate(_toc_order())}
    return sorted(found, key=lambda n: (order.get(n, len(order)), n))


def module(name: str) -> ModuleType:
    """The chapter module ``name`` (a ValueError naming the known chapters otherwise)."""
    if name not in names():
        raise ValueError(f"chapter must be one of {names()}, got {name!r}")
    return importlib.import_module(f"{__name__}.{name}")


def page(name: str) -> str:
    """The chapter's page path relative to the book's root folder, e.g. ``theorem3_robustness.md``."""
    if (_ROOT / "book" / f"{name}.md").is_file():
        return f"{name}.md"
    return f"generated/{name}.ipynb"
