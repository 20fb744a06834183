"""Benchmark of the exhaustive explorer.

    python bench/bench_explore.py [--big-seconds S] [--skip-big] [--whole-seconds S] [--skip-whole]

Prints, for the seed's variants: states/s, transitions/s, bytes per stored state; the time to the shortest
counterexample on ``original``; the time to a complete clean verdict on both fixes; the symmetry reduction's
factor (states with and without it); the speed-up of two worker processes over one; and, on the issue's machine
of 2 CPUs × 2 user tasks + 1 kernel thread, how far the search gets in ``--big-seconds``; and with every operation
family on (the whole machine: fork and exit, signals, KVM, softirqs, ptrace) at 2 CPUs × 2 user tasks, whether
the search completes or how deep it gets in ``--whole-seconds``; a search that stops prints its last full levels
and their growth, so whether the space was still widening shows. Asserts nothing: targets live in the issues and
the closing notes.
"""

from __future__ import annotations

import argparse

from fpufuzz import Config, Model, variant
from fpufuzz.config import WHOLE
from fpufuzz.cli_check import machine
from fpufuzz.explore import explore

FIXES = ("exec_invalidate_last_cpu", "exec_invalidate_both")
SMALL = Config(cpus=2, users=1, kthreads=0)
SEED = Config(cpus=2, users=1, kthreads=1)
BIG = Config(cpus=2, users=2, kthreads=1)
WHOLE_BIG = Config(cpus=2, users=2, kthreads=0, **WHOLE)


def run(name: str, config: Config, **options):
    return explore(Model(variant.load(name), config), **options)


def line(name: str, config: Config, r) -> str:
    verdict = f"shortest {len(r.steps)} steps" if r.steps else ("complete" if r.complete else f"stopped ({r.stopped})")
    text = (f"  {name:26} {machine(config):42} {r.outcome:19} {verdict:17} {r.states:>9,} states "
            f"depth {r.depth:>2}  {r.seconds:7.1f} s  {r.states_per_second:7,.0f} states/s  "
            f"{r.transitions_per_second:7,.0f} transitions/s  {r.bytes_per_state:4.0f} B/state  jobs {r.jobs}")
    return text + growth(r) if r.stopped else text


def growth(r) -> str:
    """A stopped search's last full levels (``levels`` holds only levels seen in full) and how fast they grew:
    whether the space was still widening."""
    if len(r.levels) < 3:
        return ""
    *_, a, b, c = r.levels
    return f"\n  {'':26} last full levels {a:,}, {b:,}, {c:,}: ×{b / a:.2f}, ×{c / b:.2f} a level"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big-seconds", type=float, default=600, help="time budget on 2 CPUs × 2 users + 1 kthread")
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--whole-seconds", type=float, default=600, help="time budget with every operation family")
    parser.add_argument("--skip-whole", action="store_true")
    args = parser.parse_args()

    print("shortest counterexample on original, and complete clean verdicts on both fixes:")
    for config in (SMALL, SEED):
        for name in ("original",) + FIXES:
            print(line(name, config, run(name, config, jobs=2)), flush=True)

    print("symmetry reduction (one job):")
    for name in FIXES:
        on, off = run(name, SMALL), run(name, SMALL, symmetry=False)
        print(f"  {name:26} {machine(SMALL)}: {off.states:,} states without, {on.states:,} with: "
              f"factor {off.states / on.states:.2f}; {off.seconds:.1f} s → {on.seconds:.1f} s", flush=True)

    print("two worker processes against one:")
    one, two = run(FIXES[0], SEED, jobs=1), run(FIXES[0], SEED, jobs=2)
    print(f"  {FIXES[0]} on {machine(SEED)}: {one.seconds:.1f} s with 1 job, {two.seconds:.1f} s with 2: "
          f"speed-up {one.seconds / two.seconds:.2f}×", flush=True)

    if not args.skip_big:
        print(f"the issue's machine, {machine(BIG)}, {args.big_seconds:.0f} s budget per variant (2 jobs):")
        for name in FIXES:
            print(line(name, BIG, run(name, BIG, jobs=2, max_seconds=args.big_seconds)), flush=True)

    if not args.skip_whole:
        print(f"every operation family, {machine(WHOLE_BIG)}, {args.whole_seconds:.0f} s budget per variant (2 jobs):")
        for name in FIXES:
            print(line(name, WHOLE_BIG, run(name, WHOLE_BIG, jobs=2, max_seconds=args.whole_seconds)), flush=True)


if __name__ == "__main__":
    main()
