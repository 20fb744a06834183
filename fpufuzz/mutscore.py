"""Judging mutants: the explorer classifies each one, the fuzzer kills it or misses it, and the score is
killed ÷ violating.

A verdict rests only on user-observable violations (``fpufuzz.oracle.VIOLATIONS``):

* **violating** — the explorer found a violation; its shortest counterexample is kept;
* **equivalent** — a complete search of the mutant's machine found none, and the mutated function ran in it
  (equivalent *on that machine*);
* **unexercised** — the base kernel calls the mutated function on none of the explorer's machines (``MACHINES``),
  so the mutant behaves as the base there and a search would say nothing about it: not searched, not counted;
* **unknown** — the search stopped at its depth or time bound first;
* **broken** — the mutant crashed the model (an unbalanced preempt count, a path that never returns to user
  mode...) before any violation: in the kernel a splat, not wrong registers, so neither violating nor counted.

Only violating mutants are fuzzed. A fuzzer run that ends in the kernel breaking (``ModelError``: a soft lockup,
an unbalanced count) before it shows the violation is a kill, as mutation tools count a crash or a timeout as
detection: the mutant's fuzz test fails and the patch is refused. It is reported as such (invariant
``model-error``, with the error); any other exception is the tool's fault and a miss.
"""

from __future__ import annotations

import functools
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from hypothesis.database import InMemoryExampleDatabase

from fpufuzz import mutate, reach
from fpufuzz.config import WHOLE, Config
from fpufuzz.explore import explore
from fpufuzz.errors import ModelError
from fpufuzz.fuzz import fuzz
from fpufuzz.machine import Campaign
from fpufuzz.mutate import Mutant
from fpufuzz.ops import Model, Step

CLASSES = ("violating", "equivalent", "unexercised", "unknown", "broken")
# The explorer's machines. A mutant is searched on the first one where the base kernel calls its function: the
# core machine (the smallest on which the seed's bug shows), then one per operation family, each the smallest that
# runs the family's paths, cheapest search first. Base searches measured on 2026-11-26 (one job): core 2.7 s,
# softirq 4.7 s, signals 14 s, lifecycle 47 s, ptrace 89 s (all complete); KVM does not complete on 1 CPU x 1 user
# (128,000 states at depth 23 in 2 minutes), so its mutants are judged within the bound.
SMALL = Config(cpus=2, users=1, kthreads=0)
MACHINES = (
    SMALL,
    Config(cpus=2, users=1, kthreads=0, softirq=True),  # softirqs using kernel FPU, on interrupt exit
    Config(cpus=1, users=1, kthreads=0, signals=True),  # delivery, frame writes, sigreturn
    Config(cpus=1, users=1, kthreads=0, lifecycle=True),  # fork, exit, a freed fpu reused
    Config(cpus=1, users=1, kthreads=0, kvm=True),  # vCPU runs and exits
    Config(cpus=1, users=2, kthreads=0, ptrace=True),  # a tracer and its tracee
)
FUZZ_MACHINE = Config(**WHOLE)  # the fuzzer's: what ``fpufuzz fuzz`` and the fuzz tests run
MODEL_ERROR = "model-error"  # the invariant of a kill by the kernel breaking (see the module docstring)
MAX_SECONDS = 30.0  # per mutant, beyond the base's own search time on its machine (``bound()``)


@dataclass
class Classification:
    """The explorer's verdict on one mutant."""

    kind: str  # one of CLASSES
    machine: Config | None = None  # where the explorer searched it (None: unexercised)
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


def classify(mutant: Mutant, machines: tuple[Config, ...] = MACHINES, max_depth: int = 1000,
             max_seconds: float = MAX_SECONDS) -> Classification:
    config = machine_of(mutant.function, machines)
    if config is None:
        return Classification("unexercised")
    model = Model(mutant.variant, config)
    try:
        result = explore(model, max_depth=max_depth, max_seconds=bound(config) + max_seconds, jobs=1)
    except Exception as e:  # the mutant's own code failing is a finding about the mutant, reported as broken
        return Classification("broken", config, error=f"{type(e).__name__}: {e}")
    common = dict(states=result.states, seconds=result.seconds)
    if result.steps:
        return Classification("violating", config, result.outcome.split()[-1], result.steps,
                              reached_along(model, result.steps), **common)
    if result.complete:
        return Classification("equivalent", config, **common)
    return Classification("unknown", config, stopped=result.stopped, **common)


def machine_of(function: str, machines: tuple[Config, ...] = MACHINES) -> Config | None:
    """The first of ``machines`` on which the base kernel calls ``function``, or None."""
    return next((config for config in machines if function in exercised(config)), None)


# The base's own search on a machine is stopped here: KVM's does not complete in minutes. A function first called
# beyond it counts as not exercised there, consistently with its mutants' searches, which get this much more.
BASE_SECONDS = 60.0


@functools.cache
def _base_search(config: Config) -> tuple[frozenset[str], float]:
    base, called = mutate.base_variant(), set()
    cls = base.kernel_class
    counted = {name: _counted(getattr(cls, name), name, called) for name in base.functions}
    result = explore(Model(replace(base, kernel_class=type(cls.__name__, (cls,), counted)), config),
                     max_depth=1000, max_seconds=BASE_SECONDS, jobs=1)
    return frozenset(called), result.seconds


def exercised(config: Config = SMALL) -> frozenset[str]:
    """The base kernel's functions that run somewhere in a search of ``config``'s state space (complete, or cut at
    ``BASE_SECONDS``): a mutant of any other function has the base's state space there, so searching it proves
    nothing (it would read "equivalent"). Found by searching the base once with every function counted; kept
    per config."""
    return _base_search(config)[0]


def bound(config: Config) -> float:
    """How long the base's own search of ``config`` took: a mutant's search gets that plus its margin."""
    return _base_search(config)[1]


def _counted(function, name: str, called: set[str]):
    def counted(*args, **kwargs):
        called.add(name)
        return function(*args, **kwargs)
    return counted


def hunt(mutant: Mutant, config: Config | None = None, profile: str = "ci", seed: int | None = None) -> Hunt:
    """Fuzz one mutant under ``profile`` on ``config`` (default: the fuzzer's machine, every operation family on,
    as ``fpufuzz fuzz`` and the fuzz tests run) with a fresh in-memory example database, so a rerun measures the
    same thing and no mutant learns from another."""
    config = config or FUZZ_MACHINE
    campaign = Campaign()
    try:
        result = fuzz(mutant.variant, config, profile, seed=seed, database=InMemoryExampleDatabase(),
                      campaign=campaign)
    except ModelError as e:  # the mutant's kernel broke under the fuzzer: its fuzz test fails
        return Hunt(True, MODEL_ERROR, time.perf_counter() - campaign.started, campaign.examples,
                    campaign_reached=sorted(campaign.reached), error=f"ModelError: {e}")
    except Exception as e:  # the tool's fault, not the mutant's: no evidence of a kill
        return Hunt(False, error=f"{type(e).__name__}: {e}")
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
    for function in sorted({m.function for m in mutants}):  # the base searches these need, once, before the
        machine_of(function)  # workers fork: they inherit them
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
