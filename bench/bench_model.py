"""Benchmark of the core model: how fast steps apply, how fast a case replays, how big a state is.

    python bench/bench_model.py [--steps N] [--seed S]

Prints figures; asserts nothing (targets live in the issues and the closing notes, not in tests).
"""

from __future__ import annotations

import argparse
import pickle
import random
import statistics
import time
import tracemalloc
from pathlib import Path

from fpufuzz import Config, Model, corpus, variant
from fpufuzz.replay import replay

ROOT = Path(__file__).resolve().parent.parent


def random_walk(model: Model, steps: int, rng: random.Random):
    """Apply ``steps`` uniformly drawn legal steps, restarting from the initial state every 40 steps."""
    world, worlds = model.initial(), []
    for n in range(steps):
        if n % 40 == 0:
            world = model.initial()
        world = model.apply(world, rng.choice(model.enabled(world))).world
        worlds.append(world)
    return worlds


def bench_steps(name: str, steps: int, seed: int) -> tuple[float, list]:
    model = Model(variant.load(name), Config())
    start = time.perf_counter()
    worlds = random_walk(model, steps, random.Random(seed))
    return steps / (time.perf_counter() - start), worlds


def bench_replay(case_path: Path, name: str, repeat: int = 30) -> float:
    case, v = corpus.load(case_path), variant.load(name)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        replay(case, v)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def bytes_per_state(worlds: list) -> tuple[float, float]:
    distinct = list(dict.fromkeys(worlds))
    pickled = statistics.mean(len(pickle.dumps(w)) for w in distinct)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    copies = [pickle.loads(pickle.dumps(w)) for w in distinct]
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return pickled, held / len(copies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"fpufuzz core model benchmark: {args.steps} random legal steps per variant, seed {args.seed}, "
          f"{Config().header()}")
    seed_case = ROOT / "corpus" / "exec+migrate-back+kthread.case"
    worlds = []
    for name in variant.names():
        rate, walked = bench_steps(name, args.steps, args.seed)
        worlds += walked
        print(f"  {name:28} {rate:9.0f} steps/s   seed case replay {bench_replay(seed_case, name):6.2f} ms")
    pickled, resident = bytes_per_state(worlds)
    print(f"  state size: {pickled:.0f} bytes pickled, {resident:.0f} bytes resident per distinct state "
          f"(unshared copies; {len(set(worlds))} distinct states seen)")


if __name__ == "__main__":
    main()
