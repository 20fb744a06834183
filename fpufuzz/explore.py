"""Exhaustive exploration: the shortest counterexample, or a clean verdict that states its bound.

Breadth-first search over the same model and oracle as the fuzzer and replay (``Model.apply``). A transition is
one corpus step; ``run`` reaches any later interleaving point of its path in one transition, so a
counterexample's length is measured as the corpus measures it and compares directly with the fuzzer's
minimized cases. Breadth-first order makes the first counterexample found a shortest one; symmetry reduction
keeps that true, because worlds of one class are at the same distance from the start.

Each reachable class of worlds is stored once, as a 16-byte fingerprint of its canonical form
(fpufuzz/canon.py) with the number of the state it was first reached from; concrete worlds are kept only for
the frontier. The counterexample is rebuilt by re-running the model along that chain of fingerprints, so its
steps name the tasks and CPUs of one concrete run from the initial state.

Expanding a level is embarrassingly parallel: with ``jobs > 1`` forked worker processes expand slices of the
frontier and return the successors they have not returned before; the parent keeps the one table of states.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from array import array
from dataclasses import dataclass, field

from fpufuzz import canon
from fpufuzz.ops import DONE, Model, Step
from fpufuzz.state import GUEST_MODE, World


@dataclass
class Exploration:
    outcome: str  # "clean" or "violates <invariant>"
    steps: list[Step] | None  # the shortest counterexample
    states: int  # distinct classes of worlds reached
    transitions: int
    depth: int  # the deepest level fully explored
    complete: bool  # the frontier emptied: every reachable state was seen
    seconds: float
    levels: list[int] = field(default_factory=list)  # states first seen at each depth
    stopped: str | None = None  # why a clean search ended early: "depth", "states", "time", "interrupted"
    symmetry: bool = True
    jobs: int = 1
    bytes_per_state: float = 0.0  # memory of the table of states (fingerprint, index, parent) per state

    @property
    def states_per_second(self) -> float:
        return self.states / self.seconds if self.seconds else 0.0

    @property
    def transitions_per_second(self) -> float:
        return self.transitions / self.seconds if self.seconds else 0.0

    @property
    def collision_probability(self) -> float:
        return canon.collision_probability(self.states)


@dataclass
class Progress:
    depth: int
    states: int
    transitions: int
    frontier: int  # states at this depth
    expanded: int  # of which expanded so far
    seconds: float


def successors(model: Model, world: World, memo: "Memo | None" = None):
    """(step, next world, violation names) for every corpus step legal in ``world``; ``run`` steps go to each
    later interleaving point of the path (``until=``), so one transition is one corpus step. With ``memo``, a
    slice of a path already run from the same concrete world is looked up, not run again."""
    apply = model.apply if memo is None else memo.runner(model)
    for step in model.enabled(world):
        if step.op != "run":
            result = model.apply(world, step)
            yield step, result.world, _violations(result)
            continue
        task, current = step.get("task"), world
        while True:
            result = apply(current, step)
            after = result.world.tasks[result.world.task_index(task)]
            until = DONE if after.cont is None else after.cont.label
            violations = _violations(result)
            yield Step.make("run", task=task, until=until), result.world, violations
            if after.cont is None or violations or after.mode == GUEST_MODE:  # a VM entry stops the path
                break
            if result.world.running_on(result.world.task_index(task)) is None:  # it went to sleep (ptrace_stop())
                break
            current = result.world


def _violations(result) -> tuple[str, ...]:
    return tuple(f.name for f in result.findings if f.kind == "violation")


def explore(model: Model, max_depth: int = 1000, max_states: int = 50_000_000, symmetry: bool = True,
            jobs: int = 1, progress=None, every: float = 0.5, max_seconds: float | None = None) -> Exploration:
    """Breadth-first from the initial state until a violation (the shortest), the frontier empties (complete),
    ``max_depth``, ``max_states`` (checked between levels), ``max_seconds`` (checked after every state, reported as
    "time"; the depth reported is the last level explored in full), or Ctrl-C.
    ``progress`` is called with a ``Progress`` about every ``every`` seconds."""
    search = _Search(model, symmetry, jobs, progress, every)
    try:
        return search.run(max_depth, max_states, max_seconds)
    finally:
        search.close()


class _OutOfTime(Exception):
    pass


class _Search:
    def __init__(self, model: Model, symmetry: bool, jobs: int, progress, every: float):
        self.model, self.symmetry, self.progress, self.every = model, symmetry, progress, every
        self.jobs = max(1, jobs)
        self.index: dict[bytes, int] = {}  # fingerprint -> state number
        self.keys: list[bytes] = []  # state number -> fingerprint
        self.parent = array("q")  # state number -> number of the state it was first reached from
        self.transitions = 0
        self.levels: list[int] = []
        self.pool = None
        self.memo = Memo()

    def table_bytes(self) -> int:
        """Memory held by the table of states: the dictionary, the fingerprints, the parent numbers."""
        one_key = sys.getsizeof(self.keys[0])
        return (sys.getsizeof(self.index) + sys.getsizeof(self.keys) + len(self.keys) * one_key
                + self.parent.itemsize * len(self.parent))

    def add(self, key: bytes, parent: int) -> bool:
        if key in self.index:
            return False
        self.index[key] = len(self.keys)
        self.keys.append(key)
        self.parent.append(parent)
        return True

    def run(self, max_depth: int, max_states: int, max_seconds: float | None = None) -> Exploration:
        self.start = time.perf_counter()
        self.deadline = None if max_seconds is None else self.start + max_seconds
        initial = self.model.initial()
        self.add(canon.key(initial, self.symmetry), -1)
        frontier, depth, stopped, found = [(0, initial)], 0, None, None
        self.levels = [1]
        self.last_report = self.start
        try:
            while frontier:
                if depth >= max_depth or len(self.keys) >= max_states:
                    stopped = "depth" if depth >= max_depth else "states"
                    break
                frontier, found = self.expand(frontier, depth)
                if found is not None:
                    break
                depth += 1
                self.levels.append(len(frontier))
        except KeyboardInterrupt:
            stopped = "interrupted"
        except _OutOfTime:  # inside a level: a level is its predecessor times the branching factor
            stopped = "time"
        seconds = time.perf_counter() - self.start
        per_state = self.table_bytes() / len(self.keys)
        common = dict(states=len(self.keys), transitions=self.transitions, seconds=seconds, levels=self.levels,
                      symmetry=self.symmetry, jobs=self.jobs, bytes_per_state=per_state)
        if found is not None:
            number, violation = found
            return Exploration(f"violates {violation}", self.counterexample(number), depth=depth, complete=False,
                               **common)
        return Exploration("clean", None, depth=depth, complete=not frontier, stopped=stopped, **common)

    # ------------------------------------------------------------ one level

    def expand(self, frontier, depth):
        """Expand every state of the frontier; return the next frontier, or the (state number, violation) of the
        first violating transition found."""
        nxt: list = []
        if self.jobs > 1 and len(frontier) >= 64 * self.jobs:
            results = self._parallel(frontier)
        else:
            results = (_expand_one(self.model, self.symmetry, number, world, None, self.memo)
                       for number, world in frontier)
        for done, (number, edges, count) in enumerate(results, 1):
            self.transitions += count
            for key, world, violation in edges:
                if violation:
                    return nxt, (number, violation)
                if self.add(key, number):
                    nxt.append((len(self.keys) - 1, world))
            self._report(depth, len(frontier), done)
            if self.deadline is not None and time.perf_counter() >= self.deadline:
                raise _OutOfTime
        return nxt, None

    def _parallel(self, frontier):
        if self.pool is None:
            context = multiprocessing.get_context("fork")
            self.pool = context.Pool(self.jobs, initializer=_worker_init, initargs=(self.model, self.symmetry))
        chunk = max(1, min(256, len(frontier) // (8 * self.jobs)))
        return self.pool.imap(_worker_expand, frontier, chunksize=chunk)

    def _report(self, depth: int, frontier: int, done: int) -> None:
        if self.progress is None:
            return
        now = time.perf_counter()
        if now - self.last_report >= self.every or done == frontier:
            self.last_report = now
            self.progress(Progress(depth, len(self.keys), self.transitions, frontier, done, now - self.start))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None

    # ------------------------------------------------------------ the counterexample

    def counterexample(self, number: int) -> list[Step]:
        """The steps from the initial state to state ``number`` and on through a violating transition, re-run on
        concrete worlds (the stored chain is of classes; any member's successors reach the next class)."""
        chain = []
        while number >= 0:
            chain.append(self.keys[number])
            number = self.parent[number]
        chain.reverse()
        world, steps = self.model.initial(), []
        for wanted in chain[1:]:
            step, world = next((s, w) for s, w, v in successors(self.model, world)
                               if not v and canon.key(w, self.symmetry) == wanted)
            steps.append(step)
        steps.append(next(s for s, w, v in successors(self.model, world) if v))
        return steps


# Successors repeat: on 2 CPUs x 1 user task, 17,396 transitions reach 2,945 distinct concrete worlds (different
# interleavings of independent steps meet). Remembering the fingerprint of each concrete world saves the canonical
# form, about half the cost of a transition, for the repeats. Slices of paths repeat too: a state's ``run``
# successors are the path's later points one after the other, and each of those states, expanded in its turn,
# runs the rest of the same chain again (on 2 CPUs x 1 user task, 10,360 slices run from 1,953 distinct
# (world, task) pairs). Both memories are bounded by clearing them when full.
CACHE_LIMIT = 100_000


class Memo:
    """What one search (or one worker) remembers about concrete worlds: their fingerprints, and the result of
    running a task's path one slice on from them. Paths are deterministic, so a remembered slice is the slice."""

    def __init__(self):
        self.keys: dict[World, bytes] = {}
        self.slices: dict[tuple[World, Step], object] = {}

    def key(self, after: World, symmetry: bool) -> bytes:
        concrete = after._replace(fresh=0)  # the next fresh number is a name, whatever it is
        key = self.keys.get(concrete)
        if key is None:
            if len(self.keys) >= CACHE_LIMIT:
                self.keys.clear()
            key = self.keys[concrete] = canon.key(after, symmetry)
        return key

    def runner(self, model: Model):
        """``model.apply`` for ``run`` steps, remembering each slice by the world it starts from (``fresh``
        included: a slice may draw fresh values)."""
        slices = self.slices

        def apply(world: World, step: Step):
            result = slices.get((world, step))
            if result is None:
                if len(slices) >= CACHE_LIMIT:
                    slices.clear()
                result = slices[world, step] = model.apply(world, step)
            return result
        return apply


def _expand_one(model: Model, symmetry: bool, number: int, world: World, seen: set | None, memo: Memo):
    """(number, [(key, world, first violation name or None)], transitions) for one state. With ``seen`` (a
    worker's memory of keys it already returned), repeated successors are left out."""
    edges, count = [], 0
    for _step, after, violations in successors(model, world, memo):
        count += 1
        if violations:
            return number, edges + [(None, None, violations[0])], count
        key = memo.key(after, symmetry)
        if seen is not None:
            if key in seen:
                continue
            seen.add(key)
        edges.append((key, after, None))
    return number, edges, count


_WORKER: dict = {}


def _worker_init(model: Model, symmetry: bool) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops and reports
    _WORKER.update(model=model, symmetry=symmetry, seen=set(), memo=Memo())


def _worker_expand(item):
    number, world = item
    return _expand_one(_WORKER["model"], _WORKER["symmetry"], number, world, _WORKER["seen"], _WORKER["memo"])


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
