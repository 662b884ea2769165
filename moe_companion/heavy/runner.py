"""Run heavy chapters with papermill: profiles, parameter validation, cache and atomic writes.

A heavy chapter is a MyST notebook ``book/heavy/<NAME>.md`` with one code cell tagged
``parameters``; its experiment module (see :data:`CHAPTERS`) defines ``PROFILES``, three dicts
``{"cpu": {...}, "paper": {...}, "smoke": {...}}`` with the same keys, the chapter's parameters.

:func:`run_chapter` (CLI: ``python -m moe_companion heavy run NAME --profile P [-p key value]``)

1. validates the profile and every override against ``PROFILES`` -- names, and values by the type
   of the profile's default (int, float, bool, str, list, ...), then the module's optional
   ``check_params(params) -> dict`` -- *before* torch/transformers are imported or any model is
   loaded (``PROFILES`` is read from the module's source with :mod:`ast` when it is a literal);
2. hashes the chapter source, the parameters, the package version and the sources of the
   *import closure* inside ``moe_companion`` of the experiment module, the chapter's code cells and
   the figure builder (:func:`import_closure`, computed from the imports with :mod:`ast`), and
   returns at once when the run record stored in the notebook's metadata matches
   (``force=True`` re-renders; ``recompute=True`` also recomputes every unit);
3. converts the chapter with jupytext, runs it with papermill (working directory ``book/``),
   injecting ``{**PROFILES[profile], **overrides, "profile": ..., "results_path": ...}``;
4. drops plotly's duplicate JSON outputs (the book renders the ``text/html`` copy), removes local
   absolute paths, stores the run record in the notebook's metadata and writes ``DIR/NAME.ipynb``
   atomically: papermill writes a hidden ``.NAME.ipynb.partial-PID`` in ``DIR`` which is renamed
   over the old notebook (``os.replace``) only after a successful run (``NAME.run.json`` is a
   copy of the record).  A failed or killed run leaves the previous notebook untouched (a failed
   run's notebook is kept as ``DIR/.failed/NAME-PROFILE.ipynb``, named in the error).

Runs are locked per chapter and profile, temporary folders are removed on every exit path and the
kernel exits with the CLI (see :func:`run_notebook`).

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
            raise ValueError(f"{where}[{p!r}] keys differ from {where}['cpu']: {sorted(set(profiles[p]) ^ keys)}")
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


def resolve_params(
    chapter_or_module: str,
    profile: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    profiles: Mapping[str, Mapping] | None = None,
) -> dict[str, Any]:
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
            raise ValueError(
                f"{name} is not a parameter of {chapter_or_module}; known parameters: {', '.join(sorted(base))}"
            )
        base[name] = _coerce(name, value, profiles[profile][name])
    if checker:
        checked = getattr(importlib.import_module(module), checker)(dict(base))
        if checked is not None:
            base = dict(checked)
    return base


# ------------------------------------------------------------------------------ cache
# Modules that shape every heavy chapter's rendered output (slider figures and their fingerprints)
RENDER_MODULES = ("moe_companion.figures",)
PACKAGE = "moe_companion"

#: Files next to the result store that a chapter derives from it (``--recompute`` sets them aside too).
DERIVED_FILES: dict[str, tuple[str, ...]] = {"linear_probes": ("probes-*.npz",)}


def _resolve_from(node: ast.ImportFrom, module: str, is_pkg: bool) -> str | None:
    if node.level == 0:
        return node.module
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imported_modules(tree: ast.AST, module: str = "", is_pkg: bool = False) -> set[str]:
    """``moe_companion`` modules imported anywhere in ``tree`` (function-local imports included)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve_from(node, module, is_pkg)
            if not target:
                continue
            found.add(target)
            for a in node.names:  # ``from . import data`` imports a submodule
                found.add(f"{target}.{a.name}")
    out = set()
    for name in found:
        if name != PACKAGE and not name.startswith(PACKAGE + "."):
            continue
        while name and _package_file(name) is None:  # ``pkg.mod.func`` -> ``pkg.mod``
            name = name.rpartition(".")[0]
        if name:
            out.add(name)
    return out


def _package_file(name: str) -> Path | None:
    """File of module ``name`` inside this package, found on disk (nothing is imported)."""
    root = Path(__file__).resolve().parents[1]  # .../moe_companion
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = root.joinpath(*parts[1:])
    for cand in (base.with_suffix(".py") if len(parts) > 1 else None, base / "__init__.py"):
        if cand is not None and cand.is_file():
            return cand
    return None


def _code_cells(source_text: str) -> list[str]:
    """The code of a MyST notebook's ``{code-cell}`` blocks (magics dropped)."""
    import re

    cells = re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", source_text, re.DOTALL)
    out = []
    for c in cells:
        lines = [ln for ln in c.splitlines() if not ln.startswith((":", "%", "!"))]
        out.append("\n".join(lines))
    return out


def import_closure(modules: Iterable[str], source_text: str | None = None) -> dict[str, str]:
    """Source text of every ``moe_companion`` module reachable by imports from ``modules``.

    Computed from the imports (:mod:`ast`, all of them, also those inside functions), starting from
    ``modules`` and from the code cells of the chapter ``source_text``; package ``__init__`` files of
    the modules found are included.  Editing any module in the closure changes the cache hash.
    """
    todo = list(modules)
    if source_text:
        for code in _code_cells(source_text):
            try:
                todo.extend(imported_modules(ast.parse(code)))
            except SyntaxError:
                continue
    out: dict[str, str] = {}
    while todo:
        mod = todo.pop()
        origin = _package_file(mod) if mod not in out else None
        if origin is None:
            continue
        text = origin.read_text(encoding="utf-8")
        out[mod] = text
        is_pkg = origin.name == "__init__.py"
        try:
            todo.extend(imported_modules(ast.parse(text), mod, is_pkg))
        except SyntaxError:
            pass
        parent = mod.rpartition(".")[0]
        if parent:
            todo.append(parent)
    return out


def _sources_for_hash(module: str | None, source_text: str | None = None) -> dict[str, str]:
    if module is None and not source_text:
        return {}
    return import_closure([*([module] if module else []), *RENDER_MODULES], source_text)


def run_hash(source_text: str, params: Mapping[str, Any], module: str | None) -> str:
    """sha256 of chapter source + injected parameters + package version + the import closure's sources."""
    from .. import __version__

    payload = json.dumps(
        {
            "source": source_text,
            "params": dict(params),
            "version": __version__,
            "modules": _sources_for_hash(module, source_text),
        },
        sort_keys=True,
        default=str,
    )
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
        what = {
            "executed": f"executed in {self.seconds:.1f} s",
            "cached": "up to date (cached)",
            "kept-paper": "kept the current paper-profile notebook",
        }[self.status]
        return f"{self.name} [{self.profile}]: {what} -> {self.notebook}"


def _default_results_path(output_dir: Path, name: str, profile: str) -> Path:
    return output_dir / "results" / f"{name}-{profile}.jsonl"


def default_output_dir(profile: str) -> Path:
    """``book/generated`` for ``cpu``/``paper`` (they publish); ``_build/heavy-smoke`` for ``smoke``."""
    root = project_root()
    return root / "_build" / "heavy-smoke" if profile == "smoke" else root / "book" / "generated"


def _for_notebook(path: Path, book_dir: Path) -> str:
    """Path as written into the notebook: relative to book/ when inside it (portable pages)."""
    path = path.resolve()
    try:
        return path.relative_to(book_dir.resolve()).as_posix()
    except ValueError:
        return str(path)


def _slim_notebook(
    path: Path, *, roots: Iterable[Path] = (), drop_tag: str | None = None, record: Mapping[str, Any] | None = None
) -> None:
    """Prepare an executed notebook for publishing (in place).

    Drops plotly's JSON mimetype from outputs that also carry ``text/html`` (the book renders the
    HTML copy; the JSON one is several MB pretty-printed), drops cells tagged ``drop_tag`` (the
    runner's watchdog cell), replaces the absolute ``roots`` by relative names in outputs and
    metadata (no local paths in committed notebooks) and stores the run ``record`` in
    ``metadata["moe_companion"]`` (published atomically with the notebook).
    """
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    if drop_tag:
        nb.cells = [c for c in nb.cells if drop_tag not in c.get("metadata", {}).get("tags", [])]
    reps = sorted({str(Path(r).resolve()) for r in roots if r}, key=len, reverse=True)

    def scrub(text: str) -> str:
        for r in reps:
            text = text.replace(r + os.sep, "").replace(r, ".")
        return text

    def walk(obj):
        if isinstance(obj, str):
            return scrub(obj)
        if isinstance(obj, list):
            return [walk(x) for x in obj]
        if isinstance(obj, dict):
            return {k: walk(x) for k, x in obj.items()}
        return obj

    for cell in nb.cells:
        outs = []
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "text/html" in data and "application/vnd.plotly.v1+json" in data:
                del data["application/vnd.plotly.v1+json"]
            outs.append(nbformat.from_dict(walk(dict(out))))
        if "outputs" in cell:
            cell["outputs"] = outs
        if cell.get("source"):
            cell["source"] = scrub(cell["source"])
    pm_meta = nb.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        if pm_meta.get(key):
            pm_meta[key] = Path(pm_meta[key]).name
    if pm_meta.get("parameters"):
        pm_meta["parameters"] = walk(dict(pm_meta["parameters"]))
    if record is not None:
        nb.metadata["moe_companion"] = walk(dict(record))
    nbformat.write(nb, str(path))


def notebook_record(nb_path: Path) -> dict:
    """The run record stored in an executed notebook (``{}`` if none), else its legacy ``.run.json``."""
    try:
        with open(nb_path, encoding="utf-8") as fh:
            meta = json.load(fh).get("metadata", {}).get("moe_companion")
    except (OSError, ValueError):
        return {}
    if isinstance(meta, dict) and meta.get("hash"):
        return meta
    legacy = nb_path.with_name(nb_path.name.replace(".ipynb", ".run.json"))
    try:  # notebooks written before the record moved into them
        return json.loads(legacy.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


# ------------------------------------------------------------------------------ safety: lock, temp, watchdog
class RunLocked(HeavyRunError):
    """Another run of the same chapter and profile holds the lock."""


class _Lock:
    """An exclusive ``flock`` on ``DIR/.NAME-PROFILE.lock`` (released when the process dies)."""

    def __init__(self, path: Path, what: str, wait: float = 0.0):
        self.path, self.what, self.wait, self.fh = path, what, wait, None

    def __enter__(self):
        import fcntl

        self.fh = open(self.path, "a+")
        t0 = time.monotonic()
        while True:
            try:
                fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - t0 >= self.wait:
                    self.fh.seek(0)
                    holder = self.fh.read().strip() or "?"
                    self.fh.close()
                    raise RunLocked(
                        f"{self.what} is already running (pid {holder}; lock {self.path}); wait for it "
                        f"to finish or pass --wait SECONDS"
                    ) from None
                time.sleep(0.5)
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(str(os.getpid()))
        self.fh.flush()
        return self

    def __exit__(self, *exc):
        import fcntl

        try:
            self.fh.seek(0)
            self.fh.truncate()
            fcntl.flock(self.fh, fcntl.LOCK_UN)
        finally:
            self.fh.close()


TEMP_PREFIX = "moe-heavy-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temp(tmp_root: str | os.PathLike | None = None) -> list[Path]:
    """Remove ``moe-heavy-*-PID-*`` temp folders of runs whose process is gone (a ``kill -9``)."""
    removed = []
    for d in Path(tmp_root or tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*"):
        parts = d.name.split("-")
        pid = next((int(x) for x in reversed(parts[:-1]) if x.isdigit()), None)
        if d.is_dir() and pid is not None and not _pid_alive(pid):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


WATCHDOG_TAG = "moe-companion-watchdog"


def kernel_watchdog(parent_pid: int, interval: float = 1.0) -> None:
    """Inside a chapter's kernel: exit the kernel when the process ``parent_pid`` (the CLI) is gone."""
    import threading

    def watch():
        while True:
            time.sleep(interval)
            if not _pid_alive(parent_pid):
                os._exit(70)

    threading.Thread(target=watch, name="moe-companion-watchdog", daemon=True).start()


def _check_output_dir(output_dir: Path) -> None:
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"output_dir must be a directory, got the existing file {output_dir}")
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"output_dir {output_dir} cannot be created: {exc.strerror or exc}") from None
    if not os.access(output_dir, os.W_OK | os.X_OK):
        raise ValueError(f"output_dir {output_dir} is not writable")


def _check_results_path(rpath: Path) -> None:
    if rpath.is_dir():
        raise ValueError(f"results_path must be a .jsonl file, got the directory {rpath}")
    parent = rpath.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"results_path {rpath}: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK) or (rpath.exists() and not os.access(rpath, os.W_OK)):
        raise ValueError(f"results_path {rpath} is not writable")


def _set_aside(rpath: Path, name: str) -> list[Path]:
    """``--recompute``: rename the result store (and derived caches) to ``*.replaced-<UTC>`` (kept)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    moved = []
    for f in [rpath, *[g for pat in DERIVED_FILES.get(name, ()) for g in rpath.parent.glob(pat)]]:
        if f.is_file():
            dest = f.with_name(f"{f.name}.replaced-{stamp}")
            os.replace(f, dest)
            moved.append(dest)
    return moved


def run_notebook(
    source: str | os.PathLike,
    name: str,
    profile: str,
    params: Mapping[str, Any],
    *,
    output_dir: str | os.PathLike,
    book_dir: str | os.PathLike,
    results_path: str | os.PathLike | None = None,
    module: str | None = None,
    force: bool = False,
    recompute: bool = False,
    progress: bool = True,
    log_output: bool = False,
    kernel_name: str = "python3",
    lock_wait: float = 0.0,
    before_execute=None,
) -> RunResult:
    """Execute one MyST chapter with papermill into ``output_dir/name.ipynb`` (atomic, cached, locked).

    ``params`` must already be validated (see :func:`resolve_params`).  This is the engine behind
    :func:`run_chapter`; tests call it with their own small chapters.

    * ``force`` re-renders (re-executes the notebook) but reuses the stored units;
    * ``recompute`` also sets the stored units aside (renamed, never deleted) so every unit is computed;
    * one lock per chapter and profile in ``output_dir`` (a second run raises :class:`RunLocked`
      after ``lock_wait`` seconds);
    * the run record (parameters, hash) is written into the notebook's metadata, and the notebook is
      published with one ``os.replace``; ``NAME.run.json`` is a copy written after it;
    * the temporary folder is removed on every exit path (a ``kill -9`` leaves one that the next run
      removes); the kernel exits when this process dies (a watchdog cell, dropped from the output);
    * ``before_execute(results_path)`` runs after the cache check, before the kernel starts (the
      Dask route computes the units there).
    """
    source = Path(source)
    output_dir = Path(output_dir).resolve()
    book_dir = Path(book_dir).resolve()
    if not source.is_file():
        raise FileNotFoundError(f"chapter source {source} does not exist")
    _check_output_dir(output_dir)
    rpath = (
        Path(results_path) if results_path is not None else _default_results_path(output_dir, name, profile)
    ).resolve()  # relative: to the cwd
    _check_results_path(rpath)
    inject = {**dict(params), "profile": profile, "results_path": _for_notebook(rpath, book_dir)}
    nb_path = output_dir / f"{name}.ipynb"
    meta_path = output_dir / f"{name}.run.json"
    source_text = source.read_text(encoding="utf-8")
    digest = run_hash(source_text, inject, module)
    with _Lock(output_dir / f".{name}-{profile}.lock", f"{name} [{profile}]", lock_wait):
        if not force and not recompute and nb_path.is_file():
            rec = notebook_record(nb_path)
            if rec.get("hash") == digest:
                return RunResult(name, profile, "cached", nb_path, inject["results_path"], inject)
        if recompute:
            _set_aside(rpath, name)
        rpath.parent.mkdir(parents=True, exist_ok=True)
        if before_execute is not None:
            before_execute(rpath)
        return _execute(
            source,
            name,
            profile,
            inject,
            digest,
            nb_path,
            meta_path,
            output_dir,
            book_dir,
            progress=progress,
            log_output=log_output,
            kernel_name=kernel_name,
        )


def _execute(
    source,
    name,
    profile,
    inject,
    digest,
    nb_path,
    meta_path,
    output_dir,
    book_dir,
    *,
    progress,
    log_output,
    kernel_name,
) -> RunResult:
    import jupytext
    import nbformat
    import papermill as pm

    for stale in output_dir.glob(f".{name}.ipynb.partial-*"):
        try:
            if not _pid_alive(int(stale.name.rsplit("-", 1)[1])):
                stale.unlink(missing_ok=True)
        except ValueError:
            stale.unlink(missing_ok=True)
    clean_stale_temp()
    work = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{name}-{os.getpid()}-"))
    partial = output_dir / f".{name}.ipynb.partial-{os.getpid()}"
    failed_dir = output_dir / ".failed"
    t0 = time.perf_counter()
    try:
        nb = jupytext.read(source)
        nb.metadata.setdefault("kernelspec", {"display_name": "Python 3", "language": "python", "name": kernel_name})
        nb.metadata.pop("jupytext", None)
        watch = nbformat.v4.new_code_cell(
            f"from moe_companion.heavy.runner import kernel_watchdog\nkernel_watchdog({os.getpid()})",
            metadata={"tags": [WATCHDOG_TAG]},
        )
        nb.cells.insert(0, watch)
        src_nb = work / f"{name}.ipynb"
        jupytext.write(nb, src_nb, fmt="ipynb")
        try:
            with warnings.catch_warnings():  # the hidden partial name does not end in .ipynb on purpose
                warnings.filterwarnings("ignore", message="The specified file", category=UserWarning)
                pm.execute_notebook(
                    str(src_nb),
                    str(partial),
                    parameters=inject,
                    cwd=str(book_dir),
                    kernel_name=kernel_name,
                    progress_bar=progress,
                    log_output=log_output,
                )
        except BaseException as exc:
            kept = None
            if partial.exists():
                failed_dir.mkdir(exist_ok=True)
                kept = failed_dir / f"{name}-{profile}.ipynb"
                os.replace(partial, kept)
            if isinstance(exc, Exception):
                msg = str(exc).strip()
                raise HeavyRunError(
                    f"{name} [{profile}] failed: {type(exc).__name__}: "
                    f"{msg[-4000:] if len(msg) > 4000 else msg}\n(executed notebook kept at "
                    f"{kept}; {nb_path} left untouched)"
                ) from exc
            raise
        seconds = time.perf_counter() - t0
        meta = {
            "name": name,
            "profile": profile,
            "params": inject,
            "hash": digest,
            "seconds": round(seconds, 1),
            "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "python": sys.version.split()[0],
        }
        _slim_notebook(partial, roots=[book_dir, project_root(), work, Path.home()], drop_tag=WATCHDOG_TAG, record=meta)
        os.replace(partial, nb_path)  # notebook and its run record: one atomic step
        _atomic_write_text(meta_path, json.dumps(notebook_record(nb_path), indent=1, sort_keys=True) + "\n")
    finally:
        partial.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    return RunResult(name, profile, "executed", nb_path, inject["results_path"], inject, seconds)


def run_chapter(
    name: str,
    profile: str = "cpu",
    overrides: Mapping[str, Any] | None = None,
    *,
    output_dir: str | os.PathLike | None = None,
    results_path: str | os.PathLike | None = None,
    force: bool = False,
    recompute: bool = False,
    progress: bool = True,
    log_output: bool = False,
    keep_paper: bool = True,
    lock_wait: float = 0.0,
    workers: int | None = None,
    scheduler: str | None = None,
    preflight: bool = True,
) -> RunResult:
    """Validate, then run chapter ``name`` in ``profile`` (see the module docstring).

    Parameters
    ----------
    name : str
        A key of :data:`CHAPTERS`.
    profile : {"cpu", "paper", "smoke"}
    overrides : mapping, optional
        Parameter values replacing the profile's defaults.
    output_dir : path, optional
        Where ``NAME.ipynb``/``NAME.run.json`` go; default :func:`default_output_dir` (``book/generated``
        for cpu/paper, ``_build/heavy-smoke`` for smoke: a smoke run never replaces the book's notebook).
    results_path : path, optional
        The unit store; default ``output_dir/results/NAME-<profile>.jsonl``.
    force : bool
        Re-render (re-execute the notebook) even when the cached hash matches; stored units are reused.
    recompute : bool
        Also recompute every unit (the old store is renamed aside, not deleted).
    keep_paper : bool
        When the stored notebook comes from the ``paper`` profile and is current for the present
        sources, a ``cpu``/``smoke`` request keeps it (status ``"kept-paper"``) instead of
        overwriting it -- so the Pages build can render the GPU workflow's notebooks.
    lock_wait : float
        Seconds to wait for a running run of the same chapter and profile (then :class:`RunLocked`).
    workers, scheduler : optional
        Compute the missing units on a Dask cluster first (``workers`` local processes, or the
        scheduler at ``scheduler``); the notebook then reads them from the store.
    preflight : bool
        For ``paper``: run :func:`moe_companion.heavy.check.preflight` first (CUDA, token, hub/cache),
        failing in seconds instead of after the kernel starts.
    """
    chapter = get_chapter(name)
    params = resolve_params(name, profile, overrides)  # validation first: no model import before
    if not chapter.source.is_file():
        raise FileNotFoundError(f"chapter source {chapter.source} does not exist")
    if profile == "paper" and preflight:
        from .check import preflight as check

        check(name, params)
    out = Path(output_dir) if output_dir is not None else default_output_dir(profile)
    if workers is not None:
        workers = v.check_int(workers, "workers", lower=1)
    if keep_paper and not force and not recompute and profile != "paper":
        st = chapter_status(name, out)
        if st["profile"] == "paper" and st["up_to_date"]:
            # a current paper-profile notebook (e.g. from the GPU workflow's artifact) outranks cpu/smoke
            return RunResult(name, profile, "kept-paper", out / f"{name}.ipynb", "", params)
    before = None
    if workers is not None or scheduler is not None:

        def before(rpath):
            from .cluster import compute_units

            compute_units(chapter.module, params, rpath, workers=workers, scheduler=scheduler, progress=progress)

    return run_notebook(
        chapter.source,
        name,
        profile,
        params,
        output_dir=out,
        book_dir=chapter.book_dir,
        results_path=results_path,
        module=chapter.module,
        force=force,
        recompute=recompute,
        progress=progress,
        log_output=log_output,
        lock_wait=lock_wait,
        before_execute=before,
    )


def available_chapters() -> list[str]:
    """Chapters of :data:`CHAPTERS` whose source and experiment module both exist."""
    names = []
    for name, module in CHAPTERS.items():
        if get_chapter(name).source.is_file() and importlib.util.find_spec(module) is not None:
            names.append(name)
    return names


def run_all(
    profile: str = "cpu",
    *,
    output_dir: str | os.PathLike | None = None,
    force: bool = False,
    recompute: bool = False,
    names: Iterable[str] | None = None,
    progress: bool = True,
    log_output: bool = False,
    **kw,
) -> tuple[list[RunResult], dict[str, str]]:
    """Run every available chapter (or ``names``) in ``profile``; return (results, failures)."""
    v.check_choice(profile, "profile", PROFILE_NAMES)
    todo = list(names) if names is not None else available_chapters()
    results, failures = [], {}
    for name in list(todo):  # validate every chapter before running any; a bad one does not stop the rest
        try:
            params = resolve_params(name, profile)
            if profile == "paper" and kw.get("preflight", True):
                from .check import preflight

                preflight(name, params)
        except (ValueError, TypeError, HeavyRunError) as exc:
            failures[name] = f"invalid parameters: {exc}" if not isinstance(exc, HeavyRunError) else str(exc)
            print(f"{name} [{profile}]: NOT RUN\n{exc}", file=sys.stderr, flush=True)
            todo.remove(name)
    for name in todo:
        try:
            res = run_chapter(
                name,
                profile,
                output_dir=output_dir,
                force=force,
                recompute=recompute,
                progress=progress,
                log_output=log_output,
                **{**kw, "preflight": False},
            )
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
    info: dict[str, Any] = {
        "name": name,
        "module": chapter.module,
        "source": chapter.source.is_file(),
        "module_found": importlib.util.find_spec(chapter.module) is not None,
        "notebook": (out / f"{name}.ipynb").is_file(),
        "profile": None,
        "up_to_date": False,
    }
    if info["notebook"] and info["source"] and info["module_found"]:
        meta = notebook_record(out / f"{name}.ipynb")
        try:
            prof = meta.get("profile")
            info["profile"] = prof
            params = resolve_params(
                name, prof, {k: val for k, val in meta.get("params", {}).items() if k not in RESERVED}
            )
            inject = {**params, "profile": prof, "results_path": meta["params"]["results_path"]}
            info["up_to_date"] = run_hash(
                chapter.source.read_text(encoding="utf-8"), inject, chapter.module
            ) == meta.get("hash")
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
    return info
