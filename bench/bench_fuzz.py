"""Benchmark of the fuzzer: how fast it finds each known violation, how short the minimized case is, and how it
compares with a naive machine (one rule drawing any legal step).

    python bench/bench_fuzz.py [--seeds 20] [--naive-seeds 20] [--examples 3000] [--variant NAME ...]

For every variant whose EXPECT names a violation, over seeds 0..N-1 of the ``ci`` profile (derandomization off,
each seed its own run): found in how many seeds, seconds and examples to the first violation (median, max),
minimized length (and in how many seeds it equals the shortest seen), and the explorer's shortest counterexample
for comparison. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time

from fpufuzz import Config, Model, variant
from fpufuzz.explore import explore
from fpufuzz.fuzz import fuzz


def campaign(v, seed: int, examples: int, naive: bool = False):
    start = time.perf_counter()
    result = fuzz(v, profile="ci", seed=seed, examples=examples, naive=naive)
    seconds = result.campaign.first_violation
    return {"found": result.outcome == v.expect, "seconds": seconds if seconds is not None else
            time.perf_counter() - start, "examples": result.campaign.examples_to_violation or
            result.campaign.examples, "length": len(result.steps) if result.steps else None}


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
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--naive-seeds", type=int, default=20)
    parser.add_argument("--examples", type=int, default=3000, help="budget per seed (unfound seeds count it)")
    parser.add_argument("--variant", action="append")
    args = parser.parse_args()
    names = args.variant or [n for n in variant.names() if variant.load(n).expect != "clean"]
    print(f"fpufuzz fuzzer benchmark: {args.seeds} seeds, budget {args.examples} examples per seed, profile ci")
    results = {}
    for name in names:
        v = variant.load(name)
        results[name] = summarize(name, [campaign(v, seed, args.examples) for seed in range(args.seeds)])
        shortest = explore(Model(v, Config(cpus=2, users=1, kthreads=0)), max_depth=12)
        if shortest.steps:
            print(f"  {'':34} the explorer's shortest counterexample (cpus=2 users=1 kthreads=0): "
                  f"{len(shortest.steps)} steps", flush=True)
    if args.naive_seeds and "original" in names:
        v = variant.load("original")
        naive = summarize("original (naive machine)",
                          [campaign(v, seed, args.examples, naive=True) for seed in range(args.naive_seeds)])
        ratio = naive["median_s"] / results["original"]["median_s"]
        print(f"  speed-up over the naive machine on original (median time to first violation): {ratio:.1f}x"
              f"{'  (naive not found in every seed: a lower bound)' if naive['found'] != f'{args.naive_seeds}/{args.naive_seeds}' else ''}")


if __name__ == "__main__":
    main()
