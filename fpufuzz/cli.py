"""The ``fpufuzz`` command. Exit codes: 0 clean (or all as expected), 1 violation (or a mismatch), 2 bad input."""

from __future__ import annotations

import argparse
import difflib
import inspect
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fpufuzz import __version__, cli_check, cli_fuzz, cli_mutate, cli_report, corpus, variant
from fpufuzz.errors import FpufuzzError
from fpufuzz.render import explain, print_run, run_json, verdict_line
from fpufuzz.replay import expected_outcome, replay

EXIT_CLEAN, EXIT_VIOLATION, EXIT_BAD_INPUT = 0, 1, 2

USAGE_EXAMPLES = """examples:
  fpufuzz variants                                  list the variants and what each expects
  fpufuzz variants --diff exec_invalidate_both      show a variant's functions beside the ones they replace
  fpufuzz replay corpus/exec+migrate-back+kthread.case --variant original --explain
  fpufuzz replay --check                            every corpus case on every variant, against expectations
  fpufuzz fuzz --check                              fuzz every variant, compare with each variant's EXPECT
  fpufuzz check --variant original                  exhaustive search: the shortest counterexample
  fpufuzz report --format markdown                  the verdict matrix, ready to paste into a reply
  fpufuzz mutate --profile ci                       the fuzzer's mutation score and its blind spots
"""


FUZZ_EXAMPLES = """examples:
  fpufuzz fuzz --variant original --seed 3            find the exec bug, print the minimized case
  fpufuzz fuzz --variant original --save              ... and write it into corpus/ (never overwriting)
  fpufuzz fuzz --check                                every variant against its EXPECT (exit 0 iff all match)
  fpufuzz fuzz --variant my_patch.py --profile dev    a patch under review, longer campaign
"""


def default_corpus() -> Path:
    """``./corpus`` if there is one, else the corpus beside the installed package (an editable install)."""
    here = Path("corpus")
    return here if here.is_dir() else Path(__file__).resolve().parent.parent / "corpus"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    try:
        return args.handler(args, console)
    except FpufuzzError as e:
        print(f"fpufuzz: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return EXIT_CLEAN


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fpufuzz", epilog=USAGE_EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     description="Check patches to the x86 FPU lazy-restore state machine.")
    parser.add_argument("--version", action="version", version=f"fpufuzz {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("variants", help="list variants; --diff shows one beside what it replaces")
    p.add_argument("--diff", metavar="NAME", help="show each override of NAME beside the function it replaces")
    p.set_defaults(handler=cmd_variants)

    p = sub.add_parser("replay", help="replay a corpus case step by step, or --check every case",
                       epilog=USAGE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cases", nargs="*", metavar="CASE", help="case files (with --check: default all of corpus/)")
    p.add_argument("--variant", action="append", metavar="NAME", help="variant to run (repeatable)")
    p.add_argument("--explain", action="store_true", help="narrate the run as a numbered list")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--check", action="store_true", help="run cases on every variant; exit 0 iff all as expected")
    p.add_argument("--corpus", type=Path, default=None, help="corpus folder (default: ./corpus)")
    p.set_defaults(handler=cmd_replay)

    p = sub.add_parser("fuzz", help="fuzz variants against the oracle; minimized failures become corpus cases",
                       epilog=FUZZ_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli_fuzz.add_arguments(p)
    p.set_defaults(handler=lambda args, console: cli_fuzz.cmd_fuzz(args, console, default_corpus))

    p = sub.add_parser("check", help="explore every state up to a bound: shortest counterexample or clean",
                       epilog=cli_check.CHECK_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli_check.add_arguments(p)
    p.set_defaults(handler=lambda args, console: cli_check.cmd_check(args, console, default_corpus))

    p = sub.add_parser("mutate", help="mutants of the kernel functions: the fuzzer's mutation score and blind spots",
                       epilog=cli_mutate.MUTATE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli_mutate.add_arguments(p)
    p.set_defaults(handler=cli_mutate.cmd_mutate)

    p = sub.add_parser("report", help="verdict matrix: every variant × corpus cases, fuzzer and explorer")
    cli_report.add_arguments(p)
    p.set_defaults(handler=lambda args, console: cli_report.cmd_report(args, console, default_corpus))
    return parser


# ---------------------------------------------------------------- variants


def cmd_variants(args, console: Console) -> int:
    if args.diff:
        return _diff(variant.load(args.diff), console)
    table = Table(show_edge=False)
    for column in ("variant", "base", "expect", "fixed by", "overrides", "subject"):
        table.add_column(column)
    for v in variant.load_all():
        changed = ", ".join(list(v.overrides) + [f"+{n}" for n in v.added]) or "-"
        table.add_row(v.name, v.base or "v6.5-rc7", v.expect, v.fixed_by or "-", changed, v.subject)
    console.print(table)
    return EXIT_CLEAN


def _diff(v, console: Console) -> int:
    base = variant.load(v.base).functions if v.base else variant.baseline_functions()
    console.print(f"[bold]{v.name}[/]: {v.subject}  (on {v.base or 'the v6.5-rc7 baseline'})")
    if not v.overrides and not v.added:
        console.print("no functions replaced: this variant is its base")
    for name, fn in {**v.overrides, **v.added}.items():
        old = inspect.getsource(base[name]).splitlines() if name in base else []
        new = inspect.getsource(fn).splitlines()
        old_file = inspect.getsourcefile(base[name]) if name in base else "/dev/null"
        for line in difflib.unified_diff(old, new, old_file, inspect.getsourcefile(fn), lineterm=""):
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else ""
            console.print(line, style=style, markup=False)
    return EXIT_CLEAN


# ---------------------------------------------------------------- replay


def cmd_replay(args, console: Console) -> int:
    if args.check:
        return _check(args, console)
    if len(args.cases) != 1:
        raise FpufuzzError("replay takes one CASE file (or --check to run many)")
    case = corpus.load(args.cases[0])
    names = args.variant or variant.names()
    runs = [replay(case, variant.load(name)) for name in names]
    for run in runs:
        if args.json:
            print(json.dumps(run_json(run), indent=2))
        elif args.explain:
            console.print(f"[bold]{case.name}[/] on [bold]{run.variant.name}[/]: {case.summary}\n")
            for line in explain(run):
                console.print(line, markup=False)
            console.print(verdict_line(run))
        else:
            print_run(run, console)
    return EXIT_VIOLATION if any(run.outcome.startswith("violates") for run in runs) else EXIT_CLEAN


def _check(args, console: Console) -> int:
    paths = [Path(p) for p in args.cases] or corpus.discover(args.corpus or default_corpus())
    if not paths:
        raise FpufuzzError(f"no cases found in {args.corpus or default_corpus()}")
    cases = [corpus.load(p) for p in paths]
    variants = [variant.load(n) for n in (args.variant or variant.names())]
    table = Table(title="corpus × variants (observed; ✗ = not as expected)", show_edge=False)
    table.add_column("case")
    for v in variants:
        table.add_column(v.name)
    mismatches, results = [], []
    for case in cases:
        cells = []
        for v in variants:
            run = replay(case, v)
            expected = expected_outcome(case, v)
            ok = expected is None or expected == run.outcome
            mark = "" if expected is not None else " (unjudged)"
            cells.append(f"{'' if ok else '✗ '}{run.outcome}{mark}")
            results.append({"case": case.name, "variant": v.name, "observed": run.outcome,
                            "expected": expected, "ok": ok})
            if not ok:
                mismatches.append(f"{case.path}: {v.name}: expected {expected}, observed {run.outcome}")
        table.add_row(case.name, *cells)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        console.print(table)
        for line in mismatches:
            console.print(f"[red]mismatch: {line}[/]")
        console.print(f"{len(cases)} cases × {len(variants)} variants: "
                      f"{'all as expected' if not mismatches else f'{len(mismatches)} mismatches'}")
    return EXIT_VIOLATION if mismatches else EXIT_CLEAN


if __name__ == "__main__":
    sys.exit(main())
