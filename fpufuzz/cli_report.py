"""``fpufuzz report``: the verdict matrix, every variant × (each corpus case, the fuzzer, the explorer).

In the spirit of the kernel memory model's litmus results: one row per variant, one column per test, each cell
the observed outcome, marked where it differs from what was expected. The markdown is meant to be pasted into a
reply on the list; the JSON carries everything, bounds included.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fpufuzz import corpus, profiles, variant
from fpufuzz.cli_check import add_kernel_config_arguments, as_expected, bound, machine, machine_config
from fpufuzz.config import Config
from fpufuzz.errors import FpufuzzError
from fpufuzz.explore import explore
from fpufuzz.fuzz import fuzz
from fpufuzz.ops import Model
from fpufuzz.replay import expected_outcome, replay

EXIT_CLEAN, EXIT_MISMATCH = 0, 1


def add_arguments(p) -> None:
    p.add_argument("--variant", action="append", metavar="NAME", help="variant to report (repeatable; default all)")
    p.add_argument("--format", default="text", choices=("text", "markdown", "json"))
    p.add_argument("--corpus", type=Path, default=None, help="corpus folder (default: ./corpus)")
    p.add_argument("--profile", default="ci", choices=profiles.PROFILES, help="fuzzing profile (default ci)")
    p.add_argument("--cpus", type=int, default=2, help="explorer machine (default 2 CPUs × 1 user task)")
    p.add_argument("--users", type=int, default=1)
    p.add_argument("--kthreads", type=int, default=0)
    p.add_argument("--lifecycle", action="store_true", help="explorer: tasks may fork and exit")
    p.add_argument("--signals", action="store_true", help="explorer: signals and sigreturn")
    p.add_argument("--kvm", action="store_true", help="explorer: vCPUs created and run (KVM_RUN)")
    p.add_argument("--softirq", action="store_true", help="explorer: softirqs and kernel-FPU section data")
    p.add_argument("--ptrace", action="store_true", help="explorer: ptrace stops, reads and writes; core dumps")
    p.add_argument("--spare", type=int, default=Config.spare, help="explorer: free task slots for forks")
    add_kernel_config_arguments(p)
    p.add_argument("--depth", type=int, default=1000, help="explorer depth bound (default: none)")
    p.add_argument("--no-fuzz", action="store_true", help="leave out the fuzzer's column")
    p.add_argument("--no-explore", action="store_true", help="leave out the explorer's column")


def cmd_report(args, console: Console, default_corpus) -> int:
    directory = args.corpus or default_corpus()
    cases = [corpus.load(p) for p in corpus.discover(directory)]
    if not cases and args.no_fuzz and args.no_explore:
        raise FpufuzzError(f"nothing to report: no cases in {directory} and both searches left out")
    explore_config = machine_config(args)
    rows = [_row(variant.load(name), cases, args, explore_config)
            for name in (args.variant or variant.names())]
    columns = [c.name for c in cases] + ([] if args.no_fuzz else ["fuzz"]) + ([] if args.no_explore else ["explore"])
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    elif args.format == "markdown":
        print(markdown(rows, columns, args, explore_config))
    else:
        _text(rows, columns, console)
    return EXIT_CLEAN if all(cell["ok"] for row in rows for cell in row["cells"].values()) else EXIT_MISMATCH


def _row(v, cases, args, config: Config) -> dict:
    cells = {}
    for case in cases:
        observed = replay(case, v).outcome
        expected = expected_outcome(case, v)
        cells[case.name] = _cell(observed, expected, expected is None or observed == expected)
    if not args.no_fuzz:
        result = fuzz(v, profile=args.profile)
        cells["fuzz"] = _cell(result.outcome, v.expect, result.as_expected,
                              f"{args.profile} profile, {result.campaign.examples} examples, {result.elapsed:.1f} s")
    if not args.no_explore:
        result = explore(Model(v, config), max_depth=args.depth)
        detail = (f"shortest {len(result.steps)} steps" if result.steps else bound(result)) + f", {machine(config)}"
        cells["explore"] = _cell(result.outcome, v.expect, as_expected(v, result), detail,
                                 states=result.states, complete=result.complete)
    return {"variant": v.name, "expect": v.expect, "subject": v.subject, "cells": cells}


def _cell(observed: str, expected: str | None, ok: bool, detail: str = "", **extra) -> dict:
    return {"observed": observed, "expected": expected, "ok": ok, "detail": detail, **extra}


def _short(cell: dict) -> str:
    text = "clean" if cell["observed"] == "clean" else cell["observed"].replace("violates ", "✗ ")
    if cell["observed"] == "n/a":
        text = "n/a"
    return text if cell["ok"] else f"{text} (expected {cell['expected']})"


def _text(rows, columns, console: Console) -> None:
    table = Table(title="verdicts (✗ name = violation found; '(expected …)' marks a surprise)", show_edge=False)
    table.add_column("variant")
    table.add_column("expect")
    for column in columns:
        table.add_column(column)
    for row in rows:
        cells = [row["cells"][c] for c in columns]
        table.add_row(row["variant"], row["expect"],
                      *[_short(c) if c["ok"] else f"[red]{_short(c)}[/]" for c in cells])
    console.print(table)
    surprises = sum(not c["ok"] for row in rows for c in row["cells"].values())
    console.print("all as expected" if not surprises else f"[red]{surprises} results differ from expectations[/]")


def markdown(rows, columns, args, config: Config) -> str:
    lines = ["| variant | expect | " + " | ".join(f"`{c}`" for c in columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    for row in rows:
        cells = [row["cells"][c] for c in columns]
        lines.append(f"| `{row['variant']}` | {row['expect']} | "
                     + " | ".join(_short(c) if c["ok"] else f"**{_short(c)}**" for c in cells) + " |")
    notes = ["", "✗ = the named user-observable violation was reproduced; **bold** = differs from expectation."]
    if not args.no_fuzz:
        notes.append(f"`fuzz`: Hypothesis stateful fuzzing, `{args.profile}` profile, default machine "
                     f"({machine(Config())}).")
    if not args.no_explore:
        details = {row["variant"]: row["cells"]["explore"]["detail"] for row in rows}
        notes.append(f"`explore`: breadth-first search of every reachable state on {machine(config)}:")
        notes.extend(f"- `{name}`: {detail}" for name, detail in details.items())
    notes.append("")
    notes.append("Generated by `fpufuzz report --format markdown` (model: Linux v6.5-rc7 x86 FPU).")
    return "\n".join(lines + notes)
