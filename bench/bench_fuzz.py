"""Benchmark of the fuzzer: how fast it finds each known violation, how short the minimized case is, and how it
compares with a naive machine (one rule drawing any legal step).

    python bench/bench_fuzz.py [--seeds 20] [--naive-seeds 20] [--examples 3000] [--variant NAME ...]
                               [--config "cpus=2 users=1 kthreads=0"] [--rules] [--backend hypothesis-urandom]

For every variant whose EXPECT names a violation, over seeds 0..N-1 of the ``ci`` profile (derandomization off,
each seed its own run): found in how many seeds, seconds and examples to the first violation (median, max, and
every seed's count, sorted, so the tail shows), minimized length (and in how many seeds it equals the shortest
seen), and the explorer's shortest counterexample for comparison. A violation at the other observation point of
stale registers counts as found, as in the fuzz tests (``fpufuzz.fuzz.same_bug``).

``--config`` runs the machine in case-header spelling plus the families the variant declares (FAMILIES), as the
fuzz tests do (their machine: ``cpus=2 users=2 kthreads=1 lifecycle=yes signals=yes``); without it, the whole
machine of ``fpufuzz fuzz``. ``--rules`` adds, per variant, where the machine spends its rule draws over the
campaigns: each rule's share of the draws, and of the draws where its precondition held. Per variant it also prints
the median model steps to the first violation and the cost of a step: the median time is their product, so the
two say whether a faster fuzzer needs a cheaper step or a likelier bug. ``--backend hypothesis-urandom`` runs
Hypothesis's generator without its example tree and mutations (not reproducible; a measurement only): if the steps
to the bug stay the same, the rarity is the machine's, not the engine's.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from contextlib import contextmanager

from fpufuzz import Config, Model, variant
from fpufuzz.config import WHOLE
from fpufuzz.corpus import parse_config
from fpufuzz.explore import explore
from fpufuzz.fuzz import fuzz, same_bug
from fpufuzz.machine import FpuMachine


def campaign(v, config, seed: int, examples: int, naive: bool = False, backend: str | None = None):
    start = time.perf_counter()
    result = fuzz(v, config, profile="ci", seed=seed, examples=examples, naive=naive, backend=backend)
    seconds = result.campaign.first_violation
    return {"found": same_bug(result.outcome, v.expect), "outcome": result.outcome,
            "seconds": seconds if seconds is not None else
            time.perf_counter() - start, "examples": result.campaign.examples_to_violation or
            result.campaign.examples, "model_steps": result.campaign.steps_to_violation or result.campaign.steps,
            "length": len(result.steps) if result.steps else None}


def summarize(label: str, runs: list[dict]) -> dict:
    found = [r for r in runs if r["found"]]
    secs = [r["seconds"] for r in runs]
    line = {"label": label, "found": f"{len(found)}/{len(runs)}",
            "median_s": statistics.median(secs), "max_s": max(secs),
            "median_examples": statistics.median(r["examples"] for r in runs)}
    lengths = [r["length"] for r in found if r["length"]]
    if lengths:
        shortest = min(lengths)
        line["lengths"] = f"min {shortest}, median {statistics.median(lengths)}, at min {lengths.count(shortest)}/" \
                          f"{len(lengths)}"
    print(f"  {label:34} found {line['found']:>6}  median {line['median_s']:6.2f}s  max {line['max_s']:6.2f}s  "
          f"median examples {line['median_examples']:6.0f}  {line.get('lengths', '')}", flush=True)
    # The median time factors into model steps to the bug (how rare the machine makes it) and the cost of a step
    # (the model's and Hypothesis's), the two levers on it.
    per_step = sum(r["seconds"] for r in runs) / max(sum(r["model_steps"] for r in runs), 1)
    line["median_model_steps"] = statistics.median(r["model_steps"] for r in runs)
    print(f"  {'':34} median model steps to the first violation {line['median_model_steps']:,.0f}, "
          f"{1e6 * per_step:.0f} us a step (Hypothesis's choices included)", flush=True)
    each = sorted((r["examples"], "" if r["found"] else f" (not found: {r['outcome']})") for r in runs)
    print(f"  {'':34} examples per seed: {', '.join(f'{n}{miss}' for n, miss in each)}", flush=True)
    return line


@contextmanager
def rule_draws(counts: Counter, enabled: Counter):
    """Count, per rule of the fuzzer's machine, how often it runs (``counts``) and in how many rule draws its
    preconditions held (``enabled``; ``enabled["draws"]`` is the number of draws). Instrumentation only: it wraps
    the functions Hypothesis's rule markers call, and puts them back."""
    markers = {name: getattr(getattr(FpuMachine, name), "hypothesis_stateful_rule", None) for name in dir(FpuMachine)}
    markers = {name: m for name, m in markers.items() if m is not None}
    originals = {name: m.function for name, m in markers.items()}

    def wrap(name, function):
        def counted(machine, **arguments):
            counts[name] += 1
            enabled["draws"] += 1
            enabled.update(n for n, m in markers.items() if all(p(machine) for p in m.preconditions))
            return function(machine, **arguments)
        return counted

    for name, m in markers.items():
        m.function = wrap(name, m.function)
    try:
        yield
    finally:
        for name, m in markers.items():
            m.function = originals[name]


def print_rule_draws(counts: Counter, enabled: Counter) -> None:
    draws = max(enabled["draws"], 1)
    shares = ", ".join(f"{name} {100 * n / draws:.0f}% (enabled in {100 * enabled[name] / draws:.0f}%)"
                       for name, n in counts.most_common())
    print(f"  {'':34} rule draws ({enabled['draws']}): {shares or 'none (found at boot)'}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--naive-seeds", type=int, default=20)
    parser.add_argument("--examples", type=int, default=3000, help="budget per seed (unfound seeds count it)")
    parser.add_argument("--variant", action="append")
    parser.add_argument("--config", help="the machine, as in a case header; the variant's FAMILIES are added")
    parser.add_argument("--rules", action="store_true", help="print each rule's share of the draws")
    parser.add_argument("--backend", choices=("hypothesis", "hypothesis-urandom"),
                        help="Hypothesis's backend; hypothesis-urandom draws without its example tree and mutations "
                             "(and is not reproducible): does the engine or the machine make the bug rare?")
    args = parser.parse_args()
    names = args.variant or [n for n in variant.names() if variant.load(n).expect != "clean"]
    base = parse_config(args.config, "--config") if args.config else Config(**WHOLE)
    print(f"fpufuzz fuzzer benchmark: {args.seeds} seeds, budget {args.examples} examples per seed, profile ci, "
          f"machine {base.header()}{' plus FAMILIES' if args.config else ''}"
          f"{f', backend {args.backend}' if args.backend else ''}")
    results = {}
    for name in names:
        v = variant.load(name)
        config = base.with_families(v.families)
        counts, enabled = Counter(), Counter()
        with rule_draws(counts, enabled) if args.rules else contextmanager(lambda: (yield))():
            runs = [campaign(v, config, seed, args.examples, backend=args.backend) for seed in range(args.seeds)]
        results[name] = summarize(name, runs)
        if args.rules:
            print_rule_draws(counts, enabled)
        shortest = explore(Model(v, Config(cpus=2, users=1, kthreads=0)), max_depth=12)
        if shortest.steps:
            print(f"  {'':34} the explorer's shortest counterexample (cpus=2 users=1 kthreads=0): "
                  f"{len(shortest.steps)} steps", flush=True)
    if args.naive_seeds and "original" in names:
        v = variant.load("original")
        naive = summarize("original (naive machine)",
                          [campaign(v, base, seed, args.examples, naive=True) for seed in range(args.naive_seeds)])
        ratio = naive["median_s"] / results["original"]["median_s"]
        print(f"  speed-up over the naive machine on original (median time to first violation): {ratio:.1f}x"
              f"{'  (naive not found in every seed: a lower bound)' if naive['found'] != f'{args.naive_seeds}/{args.naive_seeds}' else ''}")


if __name__ == "__main__":
    main()
