"""Command line: ``python -m moe_companion heavy run NAME --profile cpu`` (also ``moe-companion``).

Commands
--------
``heavy run NAME --profile P [-p KEY VALUE ...] [-f params.yaml] [--output-dir D] [--results-path R]
[--force | --recompute] [--workers N | --scheduler ADDRESS] [--wait S]``
    Run one heavy chapter (validated before any model is loaded; skipped when cached).
``heavy run-all --profile P [--output-dir D] [--force | --recompute]``
    Run every heavy chapter whose source exists (missing or outdated ones only, unless --force).
``heavy check NAME|all --profile P [--dry-run [--layers N] [--seq S]]``
    What a run needs (models, data, token, GPU memory, disk, time); non-zero exit when missing.
``heavy list [--output-dir D]``
    Show the chapters, their modules and the state of their executed notebooks.
``findings [--chapter NAME] [--json] [--recompute]``
    Print every verdict of the book (reused from the last build's cache when current, else computed).
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["build_parser", "main"]


RUN_EPILOG = """\
cache: a chapter whose notebook records the same hash (chapter source, parameters, and the sources of
its import closure inside moe_companion) is skipped.  --force re-executes the notebook but reuses the
finished units in the result store (a re-render); --recompute also sets the result store aside
(renamed *.replaced-<UTC>, never deleted) so every unit is computed again.

outputs: cpu and paper publish to book/generated/; smoke writes to _build/heavy-smoke/ unless
--output-dir is given.  A second run of the same chapter and profile exits with a message (or waits
--wait seconds).  Cell output streams to this terminal (--quiet: no streaming, no progress bar).

cluster: --workers N computes the missing units on a Dask LocalCluster of N processes, --scheduler
tcp://HOST:8786 on an existing Dask cluster (e.g. dask-jobqueue on SLURM/PBS, one worker per GPU);
workers return values and this process alone appends them to the result store; the notebook then
renders from the store.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="moe-companion", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    heavy = sub.add_parser("heavy", help="heavy (papermill) chapters")
    hsub = heavy.add_subparsers(dest="action", required=True)

    def common(p):
        p.add_argument("--profile", required=True, help="cpu | paper | smoke")
        p.add_argument(
            "--output-dir",
            default=None,
            help="where NAME.ipynb goes (default book/generated; smoke: _build/heavy-smoke)",
        )
        again = p.add_mutually_exclusive_group()
        again.add_argument(
            "--force",
            action="store_true",
            help="re-render: re-execute the notebook even when cached, reusing stored units",
        )
        again.add_argument(
            "--recompute",
            action="store_true",
            help="recompute: set the stored units aside and compute every unit again",
        )
        p.add_argument("--quiet", action="store_true", help="no progress bar, no streamed cell output")
        p.add_argument(
            "--wait",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help="wait this long for a running run of the same chapter and profile (default: exit)",
        )

    fmt = argparse.RawDescriptionHelpFormatter
    run = hsub.add_parser("run", help="run one heavy chapter", epilog=RUN_EPILOG, formatter_class=fmt)
    run.add_argument("name")
    common(run)
    run.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "VALUE"),
        help="override a parameter (VALUE parsed as JSON when possible)",
    )
    run.add_argument(
        "-f",
        "--parameters-file",
        default=None,
        metavar="PARAMS.yaml",
        help="overrides from a YAML file (as papermill -f); -p values win",
    )
    run.add_argument("--results-path", default=None, help="unit store (.jsonl)")
    dist = run.add_mutually_exclusive_group()
    dist.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="compute the units on a local Dask cluster of N worker processes",
    )
    dist.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="compute the units on an existing Dask cluster (tcp://host:8786)",
    )
    run_all = hsub.add_parser("run-all", help="run every heavy chapter", epilog=RUN_EPILOG, formatter_class=fmt)
    common(run_all)
    chk = hsub.add_parser("check", help="what a run needs; fails fast when something is missing")
    chk.add_argument("name", help="a chapter or 'all'")
    chk.add_argument("--profile", required=True, help="cpu | paper | smoke")
    chk.add_argument(
        "--dry-run",
        action="store_true",
        help="build the models from their configs with random weights and time one unit per stage",
    )
    chk.add_argument("--layers", type=int, default=2, help="blocks of each model built for the dry run (default 2)")
    chk.add_argument("--seq", type=int, default=128, help="sample sequence length of the dry run (default 128)")
    lst = hsub.add_parser("list", help="list heavy chapters and their state")
    lst.add_argument("--output-dir", default=None)
    fnd = sub.add_parser("findings", help="every verdict of the book: value, uncertainty, rule, verdict")
    fnd.add_argument("--chapter", default=None, help="one chapter module (default: all, in toc order)")
    fnd.add_argument(
        "--json",
        action="store_true",
        help="a JSON list of objects (id, chapter, statement, paper_claim, value, uncertainty, n_seeds, verdict, rule)",
    )
    fnd.add_argument("--recompute", action="store_true", help="ignore the findings cache of the last build")
    return parser


def _stream_cell_output(enabled: bool) -> None:
    """papermill logs cell stdout/stderr at INFO on the 'papermill' logger: print it to the terminal."""
    import logging

    log = logging.getLogger("papermill")
    if enabled and not any(getattr(h, "_moe", False) for h in log.handlers):
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("%(message)s"))
        h._moe = True
        log.addHandler(h)
        log.setLevel(logging.INFO)
        log.propagate = False


def _terminate_on_sigterm() -> None:
    """SIGTERM/SIGHUP raise SystemExit, so every ``finally`` (temp folders, locks) runs."""
    import signal

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def _overrides(args, runner) -> dict:
    overrides = {}
    if getattr(args, "parameters_file", None):
        import yaml

        path = args.parameters_file
        try:
            with open(path, encoding="utf-8") as fh:
                data = yaml.safe_load(fh) or {}
        except OSError as exc:
            raise ValueError(f"parameters_file {path!r} cannot be read: {exc.strerror}") from None
        if not isinstance(data, dict):
            raise ValueError(f"parameters_file must hold a mapping of parameter names, got {type(data).__name__}")
        overrides.update(data)
    seen = set()
    for key, value in args.parameter:
        if key in seen:
            raise ValueError(f"{key} given twice with -p")
        seen.add(key)
        overrides[key] = runner.parse_cli_value(value)
    return overrides


def _check(args) -> int:
    from .heavy import check, runner

    names = list(runner.CHAPTERS) if args.name == "all" else [args.name]
    status = 0
    for name in names:
        runner.get_chapter(name)
        params = runner.resolve_params(name, args.profile)
        req = check.requirements(name, args.profile, params)
        print(check.format_requirements(req), flush=True)
        if args.profile == "paper":
            try:
                check.preflight(name, params)
                print(f"{name} [paper]: ready (CUDA, token, hub/cache)")
            except check.PreflightError as exc:
                print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
                for line in str(exc).splitlines()[1:]:
                    if line.startswith("  - "):
                        print(line, file=sys.stderr)
                status = 1
        if args.dry_run:
            print(
                check.format_dry_run(
                    check.dry_run(
                        name, "paper" if args.profile == "paper" else args.profile, n_layers=args.layers, seq=args.seq
                    )
                ),
                flush=True,
            )
    return status


def _print_findings(args) -> int:
    import json

    from . import findings
    from .style import fmt

    found, how = findings.registry(args.chapter, use_cache=not args.recompute)
    cached = sorted(name for name, h in how.items() if h == "cached")
    computed = sorted(name for name, h in how.items() if h == "computed")
    print(
        f"findings: reused from the last build's cache for {len(cached)} chapter(s) {cached}; "
        f"computed now for {len(computed)} {computed}",
        file=sys.stderr,
    )
    if args.json:
        print(json.dumps([f.to_json() for f in found], indent=1, ensure_ascii=False))
        return 0
    for f in found:
        print(f"{f.id}  [{f.verdict}]  {f.statement}")
        if f.paper_claim:
            print(f"    paper: {f.paper_claim}")
        value = f.value if not isinstance(f.value, dict) else ", ".join(f"{k}={fmt(v)}" for k, v in f.value.items())
        unc = "exact" if f.uncertainty is None else f"{f.uncertainty.kind} ({f.uncertainty.method})"
        seeds = "" if f.n_seeds is None else f", {f.n_seeds} seeds"
        print(f"    value: {value if isinstance(value, str) else fmt(value)}; uncertainty: {unc}{seeds}")
        print(f"    rule: {f.rule.text}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "findings":
        try:
            return _print_findings(args)
        except (ValueError, TypeError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    from .heavy import runner

    try:
        if args.action == "list":
            for name in runner.CHAPTERS:
                st = runner.chapter_status(name, args.output_dir)
                state = (
                    "no notebook"
                    if not st["notebook"]
                    else f"notebook from profile {st['profile']}, {'up to date' if st['up_to_date'] else 'outdated'}"
                )
                src = "source ok" if st["source"] else "no source yet"
                mod = "module ok" if st["module_found"] else "no module yet"
                print(f"{name:20s} {st['module']:34s} {src}, {mod}; {state}")
            return 0
        if args.action == "check":
            return _check(args)
        _terminate_on_sigterm()
        _stream_cell_output(not args.quiet)
        if args.action == "run":
            res = runner.run_chapter(
                args.name,
                args.profile,
                _overrides(args, runner),
                output_dir=args.output_dir,
                results_path=args.results_path,
                force=args.force,
                recompute=args.recompute,
                progress=not args.quiet,
                log_output=not args.quiet,
                lock_wait=args.wait,
                workers=args.workers,
                scheduler=args.scheduler,
            )
            print(res)
            return 0
        results, failures = runner.run_all(
            args.profile,
            output_dir=args.output_dir,
            force=args.force,
            recompute=args.recompute,
            progress=not args.quiet,
            log_output=not args.quiet,
            lock_wait=args.wait,
        )
        if not results and not failures:
            print("no heavy chapter sources found")
        return 1 if failures else 0
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except runner.HeavyRunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the pre-flight's own error type lives in heavy.check
        if type(exc).__name__ == "PreflightError":
            print(f"error: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
