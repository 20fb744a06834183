"""``fpufuzz mutate``: generate mutants of the kernel functions, classify them with the explorer, fuzz the
violating ones, and print the mutation score, the table of what caught what, and every survivor's blind spot."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fpufuzz import blindspot, corpus, mutate, mutscore, profiles
from fpufuzz.config import FAMILIES, Config
from fpufuzz.errors import FpufuzzError
from fpufuzz.explore import default_jobs
from fpufuzz.mutscore import Classification, Judged

EXIT_OK, EXIT_BELOW = 0, 1

MUTATE_EXAMPLES = """examples:
  fpufuzz mutate --profile ci                        every mutant: score, table, survivors (minutes)
  fpufuzz mutate --function fpu_reset_fpregs         only the mutants of one function
  fpufuzz mutate --list                              the mutants' names, nothing run
  fpufuzz mutate --list --write /tmp/mutants         ... and each as a variant module, for --variant PATH
  fpufuzz mutate --profile dev --min-score 1.0       exit 1 unless the fuzzer kills every violating mutant
"""


def add_arguments(p) -> None:
    p.add_argument("--function", action="append", metavar="NAME", help="mutate only this function (repeatable)")
    p.add_argument("--profile", default="ci", choices=profiles.PROFILES, help="the fuzzer's budget (default ci)")
    p.add_argument("--seed", type=int, help="seed the fuzzer (dev and deep are otherwise random)")
    p.add_argument("--jobs", type=int, default=default_jobs(), help="mutants judged at once (default: the CPUs)")
    p.add_argument("--limit", type=int, help="judge only the first N mutants (in generation order)")
    p.add_argument("--max-seconds", type=float, default=mutscore.MAX_SECONDS,
                   help=f"explorer time per mutant beyond the base kernel's own search on the mutant's machine "
                        f"(default {mutscore.MAX_SECONDS:g}); past it: unknown")
    p.add_argument("--min-score", type=float, help="exit 1 if killed ÷ violating is below this (0 to 1)")
    p.add_argument("--list", action="store_true", help="list the generated mutants and stop")
    p.add_argument("--write", metavar="DIR", type=Path,
                   help="also write the mutants as variant modules into DIR (a scratch folder, never variants/)")
    p.add_argument("--json", action="store_true", help="machine-readable results")


def cmd_mutate(args, console: Console) -> int:
    if args.jobs < 1 or (args.limit is not None and args.limit < 0) or args.max_seconds <= 0:
        raise FpufuzzError("--jobs must be at least 1, --limit at least 0, --max-seconds positive")
    if args.min_score is not None and not 0 <= args.min_score <= 1:
        raise FpufuzzError(f"--min-score {args.min_score}: give a fraction between 0 and 1")
    mutants = mutate.generate(args.function)[:args.limit]
    for m in mutants if args.write else []:
        mutate.write(m, args.write)
    if args.list:
        for m in mutants:
            print(m.name)
        return EXIT_OK
    start = time.perf_counter()
    judged = _judge(mutants, args, console)
    spots = {j.mutant: blind_spot(j, mutants) for j in judged if survived(j)}
    seconds = time.perf_counter() - start
    killed, violating, ratio = mutscore.score(judged)
    if args.json:
        print(json.dumps(as_json(judged, spots, args.profile, seconds), indent=2))
    else:
        _print(judged, spots, args.profile, seconds, console)
    below = args.min_score is not None and (ratio is None or ratio < args.min_score)
    return EXIT_BELOW if below else EXIT_OK


def _judge(mutants, args, console: Console) -> list[Judged]:
    columns = [TextColumn("mutants"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[last]}"),
               TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True, disable=args.json) as progress:
        task = progress.add_task("", total=len(mutants), last="")

        def done(j: Judged) -> None:
            progress.update(task, advance=1, last=f"{j.mutant}: {_verdict(j)}")

        return mutscore.judge_all(mutants, args.profile, args.seed, args.jobs, done, max_seconds=args.max_seconds)


def survived(j: Judged) -> bool:
    return j.hunt is not None and not j.hunt.killed


def blind_spot(j: Judged, mutants) -> blindspot.BlindSpot:
    mutant = next(m for m in mutants if m.name == j.mutant)
    c = j.classification
    return blindspot.explain(mutant.variant, c.steps, j.hunt.campaign_reached, c.reached, mutscore.FUZZ_MACHINE,
                             found_on=c.machine)


def _verdict(j: Judged) -> str:
    c, h = j.classification, j.hunt
    if c.kind != "violating":
        return c.kind
    return f"violating, {'killed' if h.killed else 'survived'}"


# ---------------------------------------------------------------- output


def summary(judged: list[Judged], profile: str, seconds: float) -> str:
    counts = {kind: sum(1 for j in judged if j.classification.kind == kind) for kind in mutscore.CLASSES}
    killed, violating, ratio = mutscore.score(judged)
    score = f"{ratio:.1%}" if ratio is not None else "n/a (nothing violates)"
    return (f"{len(judged)} mutants of {mutate.BASE}: " + ", ".join(f"{n} {k}" for k, n in counts.items())
            + f"; mutation score under {profile}: {killed}/{violating} killed = {score} ({seconds:.0f} s)")


def by_machine(judged: list[Judged]) -> str:
    """Where the explorer searched the mutants, with the violating ones of each machine."""
    rows = []
    for config in mutscore.MACHINES:
        mine = [j for j in judged if j.classification.machine == config]
        if mine:
            violating = sum(1 for j in mine if j.classification.kind == "violating")
            rows.append(f"{_family(config)}: {len(mine)} ({violating} violating)")
    return "explorer's machines: " + "; ".join(rows) if rows else "explorer's machines: none searched"


def _print(judged, spots, profile: str, seconds: float, console: Console) -> None:
    table = Table(title=f"violating mutants: what caught each (fuzzer: {profile})", show_edge=False)
    for column in ("mutant", "explorer's machine", "invariant", "shortest", "fuzzer", "s", "examples",
                   "reachability on the catch"):
        table.add_column(column)
    for j in judged:
        c, h = j.classification, j.hunt
        if c.kind != "violating":
            continue
        caught = ", ".join(h.reached if h.killed else c.reached) or "-"
        table.add_row(j.mutant, _family(c.machine), c.invariant, str(len(c.steps)),
                      "killed" if h.killed else "[red]SURVIVED[/]", f"{h.seconds:.1f}", str(h.examples or "-"), caught if h.killed else f"(explorer) {caught}")
    console.print(table)
    for j in judged:
        if j.classification.kind in ("unknown", "broken"):
            why = j.classification.error or f"search stopped ({j.classification.stopped})"
            console.print(f"{j.classification.kind}: {j.mutant}: {why}", markup=False, highlight=False)
    for j in judged:
        if j.mutant in spots:
            print_survivor(j, spots[j.mutant], console)
    console.print(by_machine(judged))
    console.print(summary(judged, profile, seconds))


def family(config: Config | None) -> str | None:
    """A machine of ``mutscore.MACHINES`` by its operation family ("core" for none); None for no machine."""
    return None if config is None else next((f for f in FAMILIES if getattr(config, f)), "core")


def _family(config: Config) -> str:
    return f"{family(config)} {config.cpus}x{config.users}"


def print_survivor(j: Judged, spot: blindspot.BlindSpot, console: Console) -> None:
    h = j.hunt
    error = f"; fuzzer error: {h.error}" if h.error else ""
    console.print(f"\n[bold red]survivor[/] {j.mutant}: the explorer's counterexample on "
                  f"{j.classification.machine.header()} ({len(j.classification.steps)} steps){error}")
    for number, step in enumerate(j.classification.steps, 1):
        console.print(f"  {number:2}. {step}", markup=False, highlight=False)
    console.print("  what would have found it:")
    for line in spot.lines():
        console.print(f"    - {line}", markup=False, highlight=False)


def as_json(judged, spots, profile: str, seconds: float) -> dict:
    killed, violating, ratio = mutscore.score(judged)
    return {"base": mutate.BASE, "profile": profile, "seconds": round(seconds, 1),
            "explorer_machines": [config.header() for config in mutscore.MACHINES],
            "fuzzer_machine": mutscore.FUZZ_MACHINE.header(),
            "counts": {kind: sum(1 for j in judged if j.classification.kind == kind) for kind in mutscore.CLASSES},
            "killed": killed, "violating": violating, "score": ratio,
            "mutants": [mutant_json(j, spots.get(j.mutant)) for j in judged]}


def classification_json(d: dict, where: str) -> Classification:
    """The explorer's verdict on a mutant as ``mutant_json`` wrote it, read back (e.g. to fuzz under another
    profile without searching again); FpufuzzError names ``where`` and the field."""
    try:
        kind = d["class"]
        if kind not in mutscore.CLASSES:
            raise FpufuzzError(f"{where}: class: {kind!r} is not one of {', '.join(mutscore.CLASSES)}")
        machine = d.get("explorer_machine")
        steps = d.get("counterexample")
        return Classification(kind, corpus.parse_config(machine, f"{where}: explorer_machine") if machine else None,
                              d.get("invariant"),
                              [corpus.parse_step(s, f"{where}: counterexample") for s in steps] if steps else None,
                              list(d.get("counterexample_reaches") or ()), int(d.get("explorer_states") or 0),
                              float(d.get("explorer_seconds") or 0.0), d.get("stopped"), d.get("error"))
    except KeyError as e:
        raise FpufuzzError(f"{where}: no field {e.args[0]!r}") from None
    except (TypeError, ValueError, AttributeError) as e:
        raise FpufuzzError(f"{where}: {e}") from None


def load_classifications(path: str, mutants: list | None = None) -> dict[str, Classification]:
    """The classifications in a JSON-lines file of ``mutant_json`` records (``bench/bench_mutate.py --jsonl``),
    by mutant name; FpufuzzError names the file, the line and the field. With ``mutants``, only the records whose
    source digest is that of today's mutant of the same name: once the base's lines move, a name stands for
    another mutant, and its old verdict (and counterexample) would be pinned on the wrong one."""
    current = None if mutants is None else mutate.digests(mutants)
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as e:
        raise FpufuzzError(f"{path}: {e.strerror}") from None
    known = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise FpufuzzError(f"{where}: not JSON ({e.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("mutant"), str):
            raise FpufuzzError(f"{where}: mutant: a record must name its mutant")
        if current is None or (record.get("source") is not None
                               and current.get(record["mutant"]) == record["source"]):
            known[record["mutant"]] = classification_json(record, where)
    return known


def mutant_json(j: Judged, spot, digest: str | None = None) -> dict:
    """``digest``: the mutant's (``Mutant.digest``), recorded so a later run can tell it is still the same mutant."""
    c, h = j.classification, j.hunt
    out = {"mutant": j.mutant, "function": j.function, "line": j.line, "mutation": j.mutation, "class": c.kind,
           "explorer_machine": c.machine.header() if c.machine else None,
           "invariant": c.invariant, "counterexample": [str(s) for s in c.steps] if c.steps else None,
           "counterexample_reaches": c.reached, "explorer_states": c.states,
           "explorer_seconds": round(c.seconds, 2), "stopped": c.stopped, "error": c.error}
    if h is not None:
        out["fuzzer"] = {"killed": h.killed, "invariant": h.invariant, "seconds": round(h.seconds, 2),
                         "examples": h.examples, "found_steps": h.found_steps,
                         "case": [str(s) for s in h.steps] if h.steps else None, "case_reaches": h.reached,
                         "campaign_reached": h.campaign_reached, "error": h.error}
    if digest is not None:
        out["source"] = digest
    if spot is not None:
        out["blind_spot"] = {"rare_steps": spot.rare_steps, "rare_pairs": spot.rare_pairs,
                             "census_steps": spot.census_steps, "unreached": spot.unreached}
    return out
