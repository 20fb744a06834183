"""Judging mutants: the explorer classifies each one, the fuzzer kills it or misses it, and the score is
killed ÷ violating.

A verdict rests only on user-observable violations (``fpufuzz.oracle.VIOLATIONS``):

* **violating** — the explorer found a violation; its shortest counterexample is kept;
* **equivalent** — a complete search of the small machine found none, and the mutated function ran in it
  (equivalent *on that machine*);
* **unexercised** — the base kernel never calls the mutated function on the small machine (it belongs to a path
  of an operation family the machine does not have: signals, fork, KVM, ...), so the mutant behaves as the base
  there and the search would say nothing about it: not searched, not counted;
* **unknown** — the search stopped at its depth or time bound first;
* **broken** — the mutant crashed the model (an unbalanced preempt count, a path that never returns to user
  mode...) before any violation: in the kernel a splat, not wrong registers, so neither violating nor counted.

Only violating mutants are fuzzed; a fuzzer run that crashes the model instead of showing the violation is a miss.
"""

from __future__ import annotations

import functools
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from hypothesis.database import InMemoryExampleDatabase

from fpufuzz import mutate, reach
from fpufuzz.config import Config
from fpufuzz.explore import explore
from fpufuzz.fuzz import fuzz
from fpufuzz.mutate import Mutant
from fpufuzz.ops import Model, Step

CLASSES = ("violating", "equivalent", "unexercised", "unknown", "broken")
# The explorer's machine: the smallest on which the seed's bug shows, complete in seconds for the base kernel.
SMALL = Config(cpus=2, users=1, kthreads=0)
MAX_SECONDS = 30.0  # per mutant; the base kernel's complete search takes about 3-5 s


@dataclass
class Classification:
    """The explorer's verdict on one mutant."""

    kind: str  # one of CLASSES
    invariant: str | None = None
    steps: list[Step] | None = None  # the shortest counterexample
    reached: list[str] = field(default_factory=list)  # reachability properties along it
    states: int = 0
    seconds: float = 0.0
    stopped: str | None = None  # why an unknown search ended
    error: str | None = None  # what broke, for a broken mutant


@dataclass
class Hunt:
    """The fuzzer's campaign on one violating mutant."""

    killed: bool
    invariant: str | None = None
    seconds: float = 0.0  # to the first violation, or the whole campaign for a miss
    examples: int | None = None  # examples until the first violation
    found_steps: int = 0
    steps: list[Step] | None = None  # the minimized failing steps
    reached: list[str] = field(default_factory=list)  # reachability properties along them
    campaign_reached: list[str] = field(default_factory=list)  # everything the campaign reached
    error: str | None = None


@dataclass
class Judged:
    mutant: str
    function: str
    line: int
    mutation: str
    classification: Classification
    hunt: Hunt | None = None


def classify(mutant: Mutant, config: Config = SMALL, max_depth: int = 1000,
             max_seconds: float = MAX_SECONDS) -> Classification:
    if mutant.function not in exercised(config):
        return Classification("unexercised")
    model = Model(mutant.variant, config)
    try:
        result = explore(model, max_depth=max_depth, max_seconds=max_seconds, jobs=1)
    except Exception as e:  # the mutant's own code failing is a finding about the mutant, reported as broken
        return Classification("broken", error=f"{type(e).__name__}: {e}")
    common = dict(states=result.states, seconds=result.seconds)
    if result.steps:
        return Classification("violating", result.outcome.split()[-1], result.steps,
                              reached_along(model, result.steps), **common)
    if result.complete:
        return Classification("equivalent", **common)
    return Classification("unknown", stopped=result.stopped, **common)


@functools.cache
def exercised(config: Config = SMALL) -> frozenset[str]:
    """The base kernel's functions that run somewhere in a complete search of ``config``'s state space: a mutant
    of any other function has the base's state space there, so searching it proves nothing (it would read
    "equivalent"). Found by searching the base once with every function counted; kept per config."""
    base, called = mutate.base_variant(), set()
    cls = base.kernel_class
    counted = {name: _counted(getattr(cls, name), name, called) for name in base.functions}
    explore(Model(replace(base, kernel_class=type(cls.__name__, (cls,), counted)), config), max_depth=1000, jobs=1)
    return frozenset(called)


def _counted(function, name: str, called: set[str]):
    def counted(*args, **kwargs):
        called.add(name)
        return function(*args, **kwargs)
    return counted


def hunt(mutant: Mutant, config: Config | None = None, profile: str = "ci", seed: int | None = None) -> Hunt:
    """Fuzz one mutant under ``profile`` on ``config`` (default: the fuzzer's machine) with a fresh in-memory
    example database, so a rerun measures the same thing and no mutant learns from another."""
    config = config or Config()
    try:
        result = fuzz(mutant.variant, config, profile, seed=seed, database=InMemoryExampleDatabase())
    except Exception as e:  # a model crash under the fuzzer: it did not show a violation
        return Hunt(False, error=f"{type(e).__name__}: {e}")
    campaign = result.campaign
    reached = sorted(campaign.reached)
    if result.outcome == "clean":
        return Hunt(False, seconds=result.elapsed, campaign_reached=reached)
    model = Model(mutant.variant, config)
    return Hunt(True, result.outcome.split()[-1], campaign.first_violation or result.elapsed,
                campaign.examples_to_violation, result.found_steps, result.steps,
                reached_along(model, result.steps or []), reached)


def reached_along(model: Model, steps: list[Step]) -> list[str]:
    """The reachability properties (fpufuzz/reach.py) a step list reaches, in ``SOMETIMES`` order."""
    world, found = model.initial(), set()
    for step in steps:
        trace: list = []
        after = model.apply(world, step, trace).world
        found |= reach.reached(world, step, after, trace)
        world = after
    return [name for name in reach.SOMETIMES if name in found]


def judge(mutant: Mutant, profile: str = "ci", seed: int | None = None, fuzz_config: Config | None = None,
          max_seconds: float = MAX_SECONDS, known: dict[str, Classification] | None = None) -> Judged:
    """Classify ``mutant`` (or take its classification from ``known``, e.g. from a run under another profile),
    and fuzz it if it violates."""
    verdict = (known or {}).get(mutant.name) or classify(mutant, max_seconds=max_seconds)
    found = hunt(mutant, fuzz_config, profile, seed) if verdict.kind == "violating" else None
    return Judged(mutant.name, mutant.function, mutant.line, mutant.mutation, verdict, found)


def score(judged: list[Judged]) -> tuple[int, int, float | None]:
    """(killed, violating, killed ÷ violating); the ratio is None when nothing violates (no evidence either way)."""
    violating = [j for j in judged if j.classification.kind == "violating"]
    killed = sum(1 for j in violating if j.hunt is not None and j.hunt.killed)
    return killed, len(violating), (killed / len(violating) if violating else None)


# ---------------------------------------------------------------- many mutants, on several cores

_JOB: dict = {}


def judge_all(mutants: list[Mutant], profile: str = "ci", seed: int | None = None, jobs: int = 1,
              on_done: Callable[[Judged], None] | None = None, **options) -> list[Judged]:
    """Judge every mutant, ``jobs`` at a time in forked processes (a mutant's functions are compiled in memory
    and cannot be pickled; forked workers inherit them and are sent indices). Results keep the mutants' order."""
    _JOB.update(mutants=mutants, profile=profile, seed=seed, options=options)
    exercised()  # once, before the workers fork: they inherit it
    results: dict[int, Judged] = {}
    if jobs <= 1:
        for index in range(len(mutants)):
            results[index] = _judge_index(index)[1]
            if on_done:
                on_done(results[index])
    else:
        with multiprocessing.get_context("fork").Pool(jobs, maxtasksperchild=20) as pool:
            for index, judged in pool.imap_unordered(_judge_index, range(len(mutants))):
                results[index] = judged
                if on_done:
                    on_done(judged)
    return [results[i] for i in range(len(mutants))]


def _judge_index(index: int) -> tuple[int, Judged]:
    start = time.perf_counter()
    judged = judge(_JOB["mutants"][index], _JOB["profile"], _JOB["seed"], **_JOB["options"])
    judged.classification.seconds = judged.classification.seconds or time.perf_counter() - start
    return index, judged
