"""Command line: ``python -m moe_companion heavy run NAME --profile cpu`` (also ``moe-companion``).

Commands
--------
``heavy run NAME --profile P [-p KEY VALUE ...] [--output-dir D] [--results-path R] [--force]``
    Run one heavy chapter (validated before any model is loaded; skipped when cached).
``heavy run-all --profile P [--output-dir D] [--force]``
    Run every heavy chapter whose source exists (missing or outdated ones only, unless --force).
``heavy list [--output-dir D]``
    Show the chapters, their modules and the state of their executed notebooks.
``findings [--chapter NAME] [--json] [--recompute]``
    Print every verdict of the book (reused from the last build's cache when current, else computed).
"""
from __future__ import annotations

import argparse
import sys

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="moe-companion", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    heavy = sub.add_parser("heavy", help="heavy (papermill) chapters")
    hsub = heavy.add_subparsers(dest="action", required=True)

    def common(p):
        p.add_argument("--profile", required=True, help="cpu | paper | smoke")
        p.add_argument("--output-dir", default=None, help="where NAME.ipynb goes (default book/generated)")
        p.add_argument("--force", action="store_true", help="re-run even when the cache is current")
        p.add_argument("--quiet", action="store_true", help="no progress bar, no streamed cell output")

    run = hsub.add_parser("run", help="run one heavy chapter")
    run.add_argument("name")
    common(run)
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                     help="override a parameter (VALUE parsed as JSON when possible)")
    run.add_argument("--results-path", default=None, help="unit store (.jsonl)")
    run_all = hsub.add_parser("run-all", help="run every heavy chapter")
    common(run_all)
    lst = hsub.add_parser("list", help="list heavy chapters and their state")
    lst.add_argument("--output-dir", default=None)
    fnd = sub.add_parser("findings", help="every verdict of the book: value, uncertainty, rule, verdict")
    fnd.add_argument("--chapter", default=None, help="one chapter module (default: all, in toc order)")
    fnd.add_argument("--json", action="store_true", help="a JSON list of objects (id, chapter, statement, "
                     "paper_claim, value, uncertainty, n_seeds, verdict, rule)")
    fnd.add_argument("--recompute", action="store_true", help="ignore the findings cache of the last build")
    return parser


def _print_findings(args) -> int:
    import json

    from . import findings
    from .style import fmt

    found, how = findings.registry(args.chapter, use_cache=not args.recompute)
    cached = sorted(name for name, h in how.items() if h == "cached")
    computed = sorted(name for name, h in how.items() if h == "computed")
    print(f"findings: reused from the last build's cache for {len(cached)} chapter(s) {cached}; "
          f"computed now for {len(computed)} {computed}", file=sys.stderr)
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
                state = ("no notebook" if not st["notebook"] else
                         f"notebook from profile {st['profile']}, "
                         f"{'up to date' if st['up_to_date'] else 'outdated'}")
                src = "source ok" if st["source"] else "no source yet"
                mod = "module ok" if st["module_found"] else "no module yet"
                print(f"{name:20s} {st['module']:34s} {src}, {mod}; {state}")
            return 0
        if args.action == "run":
            overrides = {}
            for key, value in args.parameter:
                if key in overrides:
                    raise ValueError(f"{key} given twice with -p")
                overrides[key] = runner.parse_cli_value(value)
            res = runner.run_chapter(args.name, args.profile, overrides, output_dir=args.output_dir,
                                     results_path=args.results_path, force=args.force,
                                     progress=not args.quiet, log_output=not args.quiet)
            print(res)
            return 0
        results, failures = runner.run_all(args.profile, output_dir=args.output_dir, force=args.force,
                                           progress=not args.quiet, log_output=not args.quiet)
        if not results and not failures:
            print("no heavy chapter sources found")
        return 1 if failures else 0
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except runner.HeavyRunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
