"""Benchmark of the fuzzer's power: the mutation score of every generated mutant under ``ci`` and ``dev``.

    python bench/bench_mutate.py [--jobs N] [--profiles ci dev] [--dev-seed S] [--json FILE]
                                 [--machine core|softirq|signals|lifecycle|kvm|ptrace] [--jsonl FILE]
                                 [--classified FILE]

Generates every mutant of the fixed kernel (fpufuzz/mutate.py), classifies each once with the explorer, then
fuzzes the violating ones under each profile, as ``fpufuzz mutate --profile P`` does. Prints the counts per
class, the score and the time per profile, and every survivor with the explorer's counterexample and what would
have found it. ``ci`` is derandomized; ``dev`` is random unless ``--dev-seed`` is given. ``--machine`` judges only
the mutants the explorer searches on that machine (``mutscore.MACHINES``: the core one or an operation family's);
``--jsonl`` writes one line per mutant as soon as it is judged, so a long run's results survive its interruption;
``--classified`` reads such a file back and takes the explorer's verdicts from it (e.g. to run ``dev`` after a
``ci`` run without searching every mutant again); mutants it does not name, or whose source changed since, are
classified as usual (each record carries a digest of its mutant's source: a name, function:line:mutation, names
another mutant once the base's lines move).
Asserts nothing: the
targets (at least 50 violating mutants; 100% killed under dev, at least 95% under ci) live in issue 6.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from rich.console import Console

from fpufuzz import cli_mutate, mutate, mutscore
from fpufuzz.config import FAMILIES
from fpufuzz.errors import FpufuzzError
from fpufuzz.explore import default_jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=default_jobs())
    parser.add_argument("--profiles", nargs="+", default=["ci", "dev"], choices=["ci", "dev", "deep"])
    parser.add_argument("--dev-seed", type=int, default=None, help="seed for dev and deep (default: random)")
    parser.add_argument("--json", help="also write every result as JSON into this file")
    parser.add_argument("--machine", choices=["core", *FAMILIES], help="only the mutants searched on this machine")
    parser.add_argument("--jsonl", help="append one JSON line per mutant to this file as each is judged")
    parser.add_argument("--classified", help="take the explorer's verdicts from this --jsonl file of an earlier run")
    args = parser.parse_args()
    console = Console(highlight=False, width=160)

    start = time.perf_counter()
    mutants = mutate.generate()
    try:
        known = cli_mutate.load_classifications(args.classified, mutants) if args.classified else {}
    except FpufuzzError as e:
        sys.exit(f"bench_mutate: {e}")
    if args.classified:
        console.print(f"{len(known)} classifications taken from {args.classified} (records whose mutant's source "
                      "changed since are classified again)")
    if args.machine:
        mutants = [m for m in mutants if _machine(m, known) == args.machine]
    print(f"{len(mutants)} mutants of {mutate.BASE} generated in {time.perf_counter() - start:.1f} s "
          f"({len({m.function for m in mutants})} functions)", flush=True)
    out = {}
    for profile in args.profiles:
        seed = None if profile == "ci" else args.dev_seed
        start = time.perf_counter()
        classified_here = not known
        judged = mutscore.judge_all(mutants, profile, seed, args.jobs, _lines(args.jsonl, profile, mutants),
                                    known=known)
        known.update({j.mutant: j.classification for j in judged})
        spots = {j.mutant: cli_mutate.blind_spot(j, mutants) for j in judged if cli_mutate.survived(j)}
        seconds = time.perf_counter() - start
        console.print(cli_mutate.summary(judged, profile, seconds))
        console.print(cli_mutate.by_machine(judged))
        _times(judged, classified_here, console)
        for j in judged:
            if j.mutant in spots:
                cli_mutate.print_survivor(j, spots[j.mutant], console)
        out[profile] = cli_mutate.as_json(judged, spots, profile, seconds)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


def _machine(mutant, known: dict) -> str | None:
    """The family of the machine the explorer searches ``mutant`` on (as an earlier run recorded it, if given)."""
    if mutant.name in known:
        return cli_mutate.family(known[mutant.name].machine)
    return cli_mutate.family(mutscore.machine_of(mutant.function))


def _lines(path: str | None, profile: str, mutants):
    if path is None:
        return None
    digests = mutate.digests(mutants)

    def write(j) -> None:
        with open(path, "a") as f:
            f.write(json.dumps({"profile": profile, **cli_mutate.mutant_json(j, None, digests[j.mutant])}) + "\n")
    return write


def _times(judged, classified_here: bool, console: Console) -> None:
    kills = sorted(j.hunt.seconds for j in judged if j.hunt is not None and j.hunt.killed)
    examples = sorted(j.hunt.examples for j in judged if j.hunt is not None and j.hunt.killed)
    if kills:
        median = kills[len(kills) // 2]
        console.print(f"  time to kill: median {median:.1f} s, max {kills[-1]:.1f} s; examples to kill: median "
                      f"{examples[len(examples) // 2]}, max {examples[-1]}")
    if classified_here:
        explorer = sum(j.classification.seconds for j in judged)
        console.print(f"  explorer time summed over mutants: {explorer:.0f} s")
    else:
        console.print("  classifications reused from the first profile: the time is the fuzzer's")


if __name__ == "__main__":
    main()
