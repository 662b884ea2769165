"""Run heavy chapters with papermill: profiles, parameter validation, cache and atomic writes.

A heavy chapter is a MyST notebook ``book/heavy/<NAME>.md`` with one code cell tagged
``parameters``; its experiment module (see :data:`CHAPTERS`) defines ``PROFILES``, three dicts
``{"cpu": {...}, "paper": {...}, "smoke": {...}}`` with the same keys, the chapter's parameters.

:func:`run_chapter` (CLI: ``python -m moe_companion heavy run NAME --profile P [-p key value]``)

1. validates the profile and every override against ``PROFILES`` -- names, and values by the type
   of the profile's default (int, float, bool, str, list, ...), then the module's optional
   ``check_params(params) -> dict`` -- *before* torch/transformers are imported or any model is
   loaded (``PROFILES`` is read from the module's source with :mod:`ast` when it is a literal);
2. hashes the chapter source, the parameters, the package version and the experiment module's
   source (plus the modules listed in its optional ``CACHE_DEPENDS`` and the figure builder,
   :data:`RENDER_MODULES`) and returns at once when the
   stored hash next to the notebook (``NAME.run.json``) matches (``force=True`` re-runs);
3. converts the chapter with jupytext, runs it with papermill (working directory ``book/``),
   injecting ``{**PROFILES[profile], **overrides, "profile": ..., "results_path": ...}``;
4. drops plotly's duplicate JSON outputs (the book renders the ``text/html`` copy) and
   writes ``DIR/NAME.ipynb`` atomically: papermill writes a hidden ``.NAME.ipynb.partial-PID`` in
   ``DIR`` which is renamed over the old notebook (``os.replace``) only after a successful run.  A
   failed or killed run leaves the previous notebook untouched (a failed run's notebook is kept
   in a temporary folder whose path the error names).

Resuming is the chapter's job: its loops go through :class:`~moe_companion.heavy.store.ResultStore`
on ``results_path`` (default ``DIR/results/NAME-<profile>.jsonl``), which outlives a killed run.
"""
from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import _validate as v

__all__ = [
    "CHAPTERS",
    "PROFILE_NAMES",
    "Chapter",
    "HeavyRunError",
    "RunResult",
    "chapter_status",
    "get_chapter",
    "load_profiles",
    "parse_cli_value",
    "project_root",
    "resolve_params",
    "run_all",
    "run_chapter",
    "run_notebook",
]

#: Chapter name -> experiment module (the module holds ``PROFILES``).
CHAPTERS: dict[str, str] = {
    "modular_structure": "moe_companion.heavy.modular",
    "moefication_noise": "moe_companion.heavy.moefication",
    "linear_probes": "moe_companion.heavy.probes",
    "moe_pretraining": "moe_companion.heavy.pretraining",
}
PROFILE_NAMES = ("cpu", "paper", "smoke")
RESERVED = ("profile", "results_path")


class HeavyRunError(RuntimeError):
    """A chapter failed to execute (the message names the kept failed notebook)."""


# ------------------------------------------------------------------------------ locations
def project_root() -> Path:
    """The repository root (holds ``book/``): ``$MOE_COMPANION_ROOT``, else next to the package, else cwd."""
    env = os.environ.get("MOE_COMPANION_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parents[2]
    if (here / "book").is_dir():
        return here
    return Path.cwd().resolve()


@dataclass(frozen=True)
class Chapter:
    """A heavy chapter: its name, MyST source and experiment module."""

    name: str
    source: Path
    module: str

    @property
    def book_dir(self) -> Path:
        return project_root() / "book"


def get_chapter(name: str) -> Chapter:
    """Look up a chapter of :data:`CHAPTERS` (``ValueError`` naming ``name`` if unknown)."""
    v.check_choice(name, "name", CHAPTERS)
    return Chapter(name, project_root() / "book" / "heavy" / f"{name}.md", CHAPTERS[name])


# ------------------------------------------------------------------------------ profiles
def _module_origin(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"module {module!r} not found")
    return Path(spec.origin)


def _literal_assignment(tree: ast.Module, name: str):
    for node in tree.body:
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            try:
                return ast.literal_eval(node.value)
            except ValueError:
                return _NOT_LITERAL
    return None


_NOT_LITERAL = object()


def _defines_function(tree: ast.Module, name: str) -> bool:
    return any(isinstance(n, ast.FunctionDef) and n.name == name for n in tree.body)


def check_profiles(profiles: Any, where: str = "PROFILES") -> dict[str, dict]:
    """Check the ``PROFILES`` contract: keys cpu/paper/smoke, dicts with the same keys."""
    if not isinstance(profiles, Mapping) or set(profiles) != set(PROFILE_NAMES):
        got = sorted(profiles) if isinstance(profiles, Mapping) else type(profiles).__name__
        raise ValueError(f"{where} must map exactly {PROFILE_NAMES} to dicts, got {got}")
    keys = None
    for p in PROFILE_NAMES:
        if not isinstance(profiles[p], Mapping):
            raise ValueError(f"{where}[{p!r}] must be a dict")
        if keys is None:
            keys = set(profiles[p])
        elif set(profiles[p]) != keys:
            raise ValueError(f"{where}[{p!r}] keys differ from {where}['cpu']: "
                             f"{sorted(set(profiles[p]) ^ keys)}")
        bad = set(profiles[p]) & set(RESERVED)
        if bad:
            raise ValueError(f"{where}[{p!r}] must not define {sorted(bad)} (the runner injects them)")
    return {p: dict(profiles[p]) for p in PROFILE_NAMES}


def load_profiles(module: str) -> dict[str, dict]:
    """Return the module's ``PROFILES`` -- read from its source without importing it when literal."""
    tree = ast.parse(_module_origin(module).read_text(encoding="utf-8"))
    profiles = _literal_assignment(tree, "PROFILES")
    if profiles is _NOT_LITERAL:
        profiles = importlib.import_module(module).PROFILES
    elif profiles is None:
        raise ValueError(f"module {module!r} defines no PROFILES")
    return check_profiles(profiles, f"{module}.PROFILES")


def parse_cli_value(text: str) -> Any:
    """Parse a ``-p key value`` string: JSON when it parses (``0.5``, ``[0, 1]``, ``true``), else text."""
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def _coerce(name: str, value: Any, default: Any) -> Any:
    if default is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        return v.check_int(value, name)
    if isinstance(default, float):
        return v.check_scalar(value, name)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string, got {value!r}")
        return value
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{name} must be a list, got {value!r}")
        kinds = {type(d) for d in default}
        if len(kinds) == 1 and default:
            proto = default[0]
            return [_coerce(f"{name}[{i}]", x, proto) for i, x in enumerate(value)]
        if kinds == {int, float}:
            return [v.check_scalar(x, f"{name}[{i}]") for i, x in enumerate(value)]
        return list(value)
    if isinstance(default, Mapping):
        if not isinstance(value, Mapping):
            raise TypeError(f"{name} must be a dict, got {value!r}")
        return dict(value)
    return value


def resolve_params(chapter_or_module: str, profile: str, overrides: Mapping[str, Any] | None = None,
                   *, profiles: Mapping[str, Mapping] | None = None) -> dict[str, Any]:
    """Return ``{**PROFILES[profile], **overrides}`` validated, without loading any model.

    Parameters
    ----------
    chapter_or_module : str
        A chapter name of :data:`CHAPTERS` or an experiment module name.
    profile : {"cpu", "paper", "smoke"}
    overrides : mapping, optional
        Parameter values replacing the profile's (names must be profile keys; values are
        checked against the type of the profile's value).
    profiles : mapping, optional
        Use these profiles instead of the module's ``PROFILES`` (tests, ad-hoc chapters).

    Raises
    ------
    ValueError, TypeError
        Unknown profile or parameter name, or a bad value; the message names the parameter.
    """
    v.check_choice(profile, "profile", PROFILE_NAMES)
    module = CHAPTERS.get(chapter_or_module, chapter_or_module)
    if profiles is None:
        profiles = load_profiles(module)
        tree = ast.parse(_module_origin(module).read_text(encoding="utf-8"))
        checker = "check_params" if _defines_function(tree, "check_params") else None
    else:
        profiles = check_profiles(profiles)
        checker = None
    base = dict(profiles[profile])
    for name, value in dict(overrides or {}).items():
        if name in RESERVED:
            raise ValueError(f"{name} is set by the runner (use --profile / --results-path), not by -p")
        if name not in base:
            raise ValueError(f"{name} is not a parameter of {chapter_or_module}; "
                             f"known parameters: {', '.join(sorted(base))}")
        base[name] = _coerce(name, value, profiles[profile][name])
    if checker:
        checked = getattr(importlib.import_module(module), checker)(dict(base))
        if checked is not None:
            base = dict(checked)
    return base


# ------------------------------------------------------------------------------ cache
# Modules that shape every heavy chapter's rendered output (slider figures and their fingerprints)
RENDER_MODULES = ("moe_companion.figures",)


def _sources_for_hash(module: str | None) -> dict[str, str]:
    if module is None:
        return {}
    out = {}
    todo = [module, *RENDER_MODULES]
    while todo:
        mod = todo.pop()
        if mod in out:
            continue
        text = _module_origin(mod).read_text(encoding="utf-8")
        out[mod] = text
        deps = _literal_assignment(ast.parse(text), "CACHE_DEPENDS")
        if isinstance(deps, (list, tuple)):
            todo.extend(str(d) for d in deps)
    return out


def run_hash(source_text: str, params: Mapping[str, Any], module: str | None) -> str:
    """sha256 of chapter source + injected parameters + package version + module source(s)."""
    from .. import __version__

    payload = json.dumps({"source": source_text, "params": dict(params), "version": __version__,
                          "modules": _sources_for_hash(module)}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@dataclass
class RunResult:
    """What a run did: ``status`` is ``"executed"``, ``"cached"`` or ``"kept-paper"``."""

    name: str
    profile: str
    status: str
    notebook: Path
    results_path: str
    params: dict = field(default_factory=dict)
    seconds: float = 0.0

    def __str__(self) -> str:
        what = {"executed": f"executed in {self.seconds:.1f} s", "cached": "up to date (cached)",
                "kept-paper": "kept the current paper-profile notebook"}[self.status]
        return f"{self.name} [{self.profile}]: {what} -> {self.notebook}"


def _default_results_path(output_dir: Path, name: str, profile: str) -> Path:
    return output_dir / "results" / f"{name}-{profile}.jsonl"


def _for_notebook(path: Path, book_dir: Path) -> str:
    """Path as written into the notebook: relative to book/ when inside it (portable pages)."""
    path = path.resolve()
    try:
        return path.relative_to(book_dir.resolve()).as_posix()
    except ValueError:
        return str(path)


def _slim_notebook(path: Path) -> None:
    """Drop plotly's JSON mimetype from outputs that also carry ``text/html`` (what the book renders).

    The JSON copy would be pretty-printed by nbformat one number per line (several MB for a
    heatmap) and is never shown on the static site.
    """
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "text/html" in data and "application/vnd.plotly.v1+json" in data:
                del data["application/vnd.plotly.v1+json"]
    nbformat.write(nb, str(path))


def run_notebook(source: str | os.PathLike, name: str, profile: str, params: Mapping[str, Any], *,
                 output_dir: str | os.PathLike, book_dir: str | os.PathLike,
                 results_path: str | os.PathLike | None = None, module: str | None = None,
                 force: bool = False, progress: bool = True, log_output: bool = False,
                 kernel_name: str = "python3") -> RunResult:
    """Execute one MyST chapter with papermill into ``output_dir/name.ipynb`` (atomic, cached).

    ``params`` must already be validated (see :func:`resolve_params`).  This is the engine behind
    :func:`run_chapter`; tests call it with their own small chapters.
    """
    source = Path(source)
    output_dir = Path(output_dir).resolve()
    book_dir = Path(book_dir).resolve()
    if not source.is_file():
        raise FileNotFoundError(f"chapter source {source} does not exist")
    output_dir.mkdir(parents=True, exist_ok=True)
    rpath = (Path(results_path) if results_path is not None
             else _default_results_path(output_dir, name, profile)).resolve()  # relative: to the cwd
    inject = {**dict(params), "profile": profile, "results_path": _for_notebook(rpath, book_dir)}
    nb_path = output_dir / f"{name}.ipynb"
    meta_path = output_dir / f"{name}.run.json"
    source_text = source.read_text(encoding="utf-8")
    digest = run_hash(source_text, inject, module)
    if not force and nb_path.is_file() and meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except ValueError:
            meta = {}
        if meta.get("hash") == digest:
            return RunResult(name, profile, "cached", nb_path, inject["results_path"], inject)

    import jupytext
    import papermill as pm

    for stale in output_dir.glob(f".{name}.ipynb.partial-*"):
        try:
            pid = int(stale.name.rsplit("-", 1)[1])
            os.kill(pid, 0)  # still running: leave it
        except (ValueError, ProcessLookupError):
            stale.unlink(missing_ok=True)
        except PermissionError:
            pass
    rpath.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"moe-heavy-{name}-"))
    partial = output_dir / f".{name}.ipynb.partial-{os.getpid()}"
    t0 = time.perf_counter()
    try:
        nb = jupytext.read(source)
        nb.metadata.setdefault("kernelspec", {"display_name": "Python 3", "language": "python",
                                              "name": kernel_name})
        nb.metadata.pop("jupytext", None)
        src_nb = work / f"{name}.ipynb"
        jupytext.write(nb, src_nb, fmt="ipynb")
        try:
            with warnings.catch_warnings():  # the hidden partial name does not end in .ipynb on purpose
                warnings.filterwarnings("ignore", message="The specified file", category=UserWarning)
                pm.execute_notebook(str(src_nb), str(partial), parameters=inject, cwd=str(book_dir),
                                    kernel_name=kernel_name, progress_bar=progress, log_output=log_output)
        except BaseException as exc:
            kept = work / f"{name}.failed.ipynb"
            if partial.exists():
                shutil.move(str(partial), kept)
            if isinstance(exc, Exception):
                raise HeavyRunError(f"{name} [{profile}] failed: {type(exc).__name__}: "
                                    f"{str(exc).strip()[-2000:]}\n(executed notebook kept at {kept}; "
                                    f"{nb_path} left untouched)") from exc
            raise
        seconds = time.perf_counter() - t0
        _slim_notebook(partial)
        os.replace(partial, nb_path)
        meta = {"name": name, "profile": profile, "params": inject, "hash": digest,
                "seconds": round(seconds, 1), "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "python": sys.version.split()[0]}
        _atomic_write_text(meta_path, json.dumps(meta, indent=1, sort_keys=True) + "\n")
    finally:
        partial.unlink(missing_ok=True)
        if not any(work.glob("*.failed.ipynb")):
            shutil.rmtree(work, ignore_errors=True)
    return RunResult(name, profile, "executed", nb_path, inject["results_path"], inject, seconds)


def run_chapter(name: str, profile: str = "cpu", overrides: Mapping[str, Any] | None = None, *,
                output_dir: str | os.PathLike | None = None, results_path: str | os.PathLike | None = None,
                force: bool = False, progress: bool = True, log_output: bool = False,
                keep_paper: bool = True) -> RunResult:
    """Validate, then run chapter ``name`` in ``profile`` (see the module docstring).

    Parameters
    ----------
    name : str
        A key of :data:`CHAPTERS`.
    profile : {"cpu", "paper", "smoke"}
    overrides : mapping, optional
        Parameter values replacing the profile's defaults.
    output_dir : path, optional
        Where ``NAME.ipynb``/``NAME.run.json`` go; default ``book/generated``.
    results_path : path, optional
        The unit store; default ``output_dir/results/NAME-<profile>.jsonl``.
    force : bool
        Re-run even when the cached hash matches.
    keep_paper : bool
        When the stored notebook comes from the ``paper`` profile and is current for the present
        sources, a ``cpu``/``smoke`` request keeps it (status ``"kept-paper"``) instead of
        overwriting it -- so the Pages build can render the GPU workflow's notebooks.
    """
    chapter = get_chapter(name)
    params = resolve_params(name, profile, overrides)  # validation first: no model import before
    if not chapter.source.is_file():
        raise FileNotFoundError(f"chapter source {chapter.source} does not exist")
    out = Path(output_dir) if output_dir is not None else chapter.book_dir / "generated"
    if keep_paper and not force and profile != "paper":
        st = chapter_status(name, out)
        if st["profile"] == "paper" and st["up_to_date"]:
            # a current paper-profile notebook (e.g. from the GPU workflow's artifact) outranks cpu/smoke
            return RunResult(name, profile, "kept-paper", out / f"{name}.ipynb", "", params)
    return run_notebook(chapter.source, name, profile, params, output_dir=out, book_dir=chapter.book_dir,
                        results_path=results_path, module=chapter.module, force=force,
                        progress=progress, log_output=log_output)


def available_chapters() -> list[str]:
    """Chapters of :data:`CHAPTERS` whose source and experiment module both exist."""
    names = []
    for name, module in CHAPTERS.items():
        if get_chapter(name).source.is_file() and importlib.util.find_spec(module) is not None:
            names.append(name)
    return names


def run_all(profile: str = "cpu", *, output_dir: str | os.PathLike | None = None, force: bool = False,
            names: Iterable[str] | None = None, progress: bool = True,
            log_output: bool = False) -> tuple[list[RunResult], dict[str, str]]:
    """Run every available chapter (or ``names``) in ``profile``; return (results, failures)."""
    v.check_choice(profile, "profile", PROFILE_NAMES)
    todo = list(names) if names is not None else available_chapters()
    results, failures = [], {}
    for name in list(todo):  # validate every chapter before running any; a bad one does not stop the rest
        try:
            resolve_params(name, profile)
        except (ValueError, TypeError) as exc:
            failures[name] = f"invalid parameters: {exc}"
            print(f"{name} [{profile}]: INVALID\n{exc}", file=sys.stderr, flush=True)
            todo.remove(name)
    for name in todo:
        try:
            res = run_chapter(name, profile, output_dir=output_dir, force=force, progress=progress,
                              log_output=log_output)
            results.append(res)
            print(res, flush=True)
        except (HeavyRunError, FileNotFoundError) as exc:
            failures[name] = str(exc)
            print(f"{name} [{profile}]: FAILED\n{exc}", file=sys.stderr, flush=True)
    return results, failures


def chapter_status(name: str, output_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Describe chapter ``name``: source/module present, and which profile its stored notebook is from."""
    chapter = get_chapter(name)
    out = Path(output_dir) if output_dir is not None else chapter.book_dir / "generated"
    info: dict[str, Any] = {"name": name, "module": chapter.module, "source": chapter.source.is_file(),
                            "module_found": importlib.util.find_spec(chapter.module) is not None,
                            "notebook": (out / f"{name}.ipynb").is_file(), "profile": None,
                            "up_to_date": False}
    meta_path = out / f"{name}.run.json"
    if info["notebook"] and meta_path.is_file() and info["source"] and info["module_found"]:
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            prof = meta.get("profile")
            info["profile"] = prof
            params = resolve_params(name, prof, {k: val for k, val in meta.get("params", {}).items()
                                                  if k not in RESERVED})
            inject = {**params, "profile": prof, "results_path": meta["params"]["results_path"]}
            info["up_to_date"] = run_hash(chapter.source.read_text(encoding="utf-8"), inject,
                                          chapter.module) == meta.get("hash")
        except (ValueError, KeyError, TypeError):
            pass
    return info
