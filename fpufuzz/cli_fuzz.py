"""``fpufuzz fuzz``: fuzz variants with the Hypothesis machine, show progress, summarize, save minimized cases."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fpufuzz import casegen, corpus, profiles, variant
from fpufuzz.cli_check import add_kernel_config_arguments, kernel_config
from fpufuzz.config import WHOLE, Config
from fpufuzz.fuzz import FuzzResult, fuzz, required_reachability
from fpufuzz.machine import Campaign
from fpufuzz.reach import SOMETIMES

EXIT_CLEAN, EXIT_VIOLATION = 0, 1


def add_arguments(p) -> None:
    p.add_argument("--variant", action="append", metavar="NAME", help="variant to fuzz (repeatable; default all)")
    p.add_argument("--profile", default="ci", choices=profiles.PROFILES, help="Hypothesis settings profile")
    p.add_argument("--seed", type=int, help="seed the generator (runs are then reproducible)")
    p.add_argument("--examples", type=int, help="examples per variant (default: the profile's)")
    p.add_argument("--steps", type=int, help="rules per example (default: the profile's)")
    p.add_argument("--cpus", type=int, default=Config.cpus)
    p.add_argument("--users", type=int, default=Config.users)
    p.add_argument("--kthreads", type=int, default=Config.kthreads)
    p.add_argument("--spare", type=int, default=Config.spare, help="free task slots for forks (default 1)")
    add_kernel_config_arguments(p)
    p.add_argument("--save", action="store_true", help="write each minimized case into the corpus")
    p.add_argument("--corpus", type=Path, default=None, help="corpus folder for --save (default: ./corpus)")
    p.add_argument("--json", action="store_true", help="machine-readable summary")
    p.add_argument("--check", action="store_true", help="exit 0 iff every variant's outcome matches its EXPECT")


def cmd_fuzz(args, console: Console, default_corpus) -> int:
    config = Config(cpus=args.cpus, users=args.users, kthreads=args.kthreads, spare=args.spare, **WHOLE,
                    **kernel_config(args))
    variants = [variant.load(name) for name in (args.variant or variant.names())]
    budget = args.examples or profiles.get(args.profile).max_examples
    results = _run_all(variants, config, args, budget, console)
    saved = _save(results, args.corpus or default_corpus(), console) if args.save else {}
    if args.json:
        print(json.dumps([_as_json(r, saved.get(r.variant.name)) for r in results], indent=2))
    else:
        _summary(results, console, saved)
    if args.check:
        return EXIT_CLEAN if all(r.as_expected for r in results) else EXIT_VIOLATION
    return EXIT_VIOLATION if any(r.outcome != "clean" for r in results) else EXIT_CLEAN


def _run_all(variants, config, args, budget, console) -> list[FuzzResult]:
    results = []
    columns = [TextColumn("{task.description:28}"), BarColumn(), MofNCompleteColumn(), TextColumn("examples"),
               TextColumn("{task.fields[rate]:>7} steps/s  {task.fields[found]}"), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=args.json, disable=args.json) as progress:
        for v in variants:
            task = progress.add_task(v.name, total=budget, rate="", found="")

            def listener(campaign: Campaign, task=task) -> None:
                if campaign.examples % 10 == 0:
                    elapsed = max(1e-9, time.perf_counter() - campaign.started)
                    progress.update(task, completed=min(campaign.examples, budget),
                                    rate=f"{campaign.steps / elapsed:.0f}")

            result = fuzz(v, config, args.profile, args.seed, args.examples, args.steps,
                          campaign=Campaign(listener=listener))
            done = result.campaign.examples
            progress.update(task, total=max(done, 1), completed=done, found=result.outcome)
            results.append(result)
    return results


def _save(results: list[FuzzResult], directory: Path, console: Console) -> dict[str, str]:
    saved = {}
    for result in results:
        if result.case is not None:
            saved[result.variant.name] = casegen.save_new(result.case, directory)
    return saved


def _summary(results: list[FuzzResult], console: Console, saved: dict[str, str]) -> None:
    table = Table(title="fuzzing summary", show_edge=False)
    for column in ("variant", "expect", "outcome", "examples", "time", "reached", "case", "as expected"):
        table.add_column(column)
    for r in results:
        required = required_reachability(r.variant, r.config)
        reached = f"{len(r.campaign.reached & required)}/{len(required)}"
        case = f"{r.case.name} ({len(r.case.steps)} steps)" if r.case else "-"
        table.add_row(r.variant.name, r.variant.expect, r.outcome, str(r.campaign.examples), f"{r.elapsed:.1f}s",
                      reached, case, "yes" if r.as_expected else "[red]NO[/]")
    console.print(table)
    for r in results:
        if r.missing:
            console.print(f"[red]{r.variant.name}: never reached: {', '.join(sorted(r.missing))}[/] "
                          f"({'; '.join(SOMETIMES[m] for m in sorted(r.missing))})")
        if r.undrawn:
            console.print(f"[red]{r.variant.name}: never took a step of kind: {', '.join(sorted(r.undrawn))}[/] "
                          "(the machine has them; a longer profile, or a rule that draws them)")
        stale = r.campaign.diagnostics.get("stale-cache", 0)
        if stale and r.outcome == "clean":
            console.print(f"[yellow]{r.variant.name}: clean, but {stale} steps left a switched-out task's registers "
                          "stale behind an owner tag and last_cpu that still vouch for them (stale-cache): no "
                          "program saw it in this campaign; a longer profile or `fpufuzz check` may[/]")
        if r.case:
            console.print(f"\n[bold]{r.variant.name}[/]: minimized case:")
            console.print(corpus.render(r.case), markup=False, highlight=False)
            if r.variant.name in saved:
                console.print(f"saved: {saved[r.variant.name]}")


def _as_json(r: FuzzResult, saved: str | None) -> dict:
    return {"variant": r.variant.name, "expect": r.variant.expect, "outcome": r.outcome,
            "as_expected": r.as_expected, "profile": r.profile, "config": r.config.header(),
            "examples": r.campaign.examples, "steps": r.campaign.steps, "seconds": round(r.elapsed, 3),
            "seconds_to_violation": r.campaign.first_violation,
            "examples_to_violation": r.campaign.examples_to_violation,
            "steps_to_violation": r.campaign.steps_to_violation,
            "reached": sorted(r.campaign.reached), "missing": sorted(r.missing),
            "drawn": dict(sorted(r.campaign.drawn.items())), "undrawn": sorted(r.undrawn),
            "diagnostics": r.campaign.diagnostics, "message": r.message or None,
            "case": corpus.render(r.case) if r.case else None, "saved": saved}
