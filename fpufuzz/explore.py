"""Breadth-first exploration of the model: the shortest counterexample, or a clean verdict up to a bound.

A first slice of the explorer (issue 5): no symmetry reduction yet, no parallelism. It runs the same model and
oracle as the fuzzer and replay (``Model.apply``). A transition is one corpus step; ``run`` goes to any later
interleaving point of the path in one step, so the length of a counterexample is measured as the corpus measures
it and compares directly with the fuzzer's minimized cases.

States are stored once, under a canonical form in which register values are renamed by first occurrence (a fresh
value is a name, not a number: two worlds that differ only in which fresh number a write drew behave alike).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from fpufuzz.ops import DONE, Model, Step
from fpufuzz.state import INIT_PART, KERNEL_PART, Value, World


@dataclass
class Exploration:
    outcome: str  # "clean" or "violates <invariant>"
    steps: list[Step] | None  # the shortest counterexample
    states: int
    transitions: int
    depth: int  # the deepest level fully explored
    complete: bool  # the frontier emptied: every reachable state was seen
    seconds: float
    levels: list[int] = field(default_factory=list)  # states first seen at each depth


def canonical(world: World) -> World:
    """``world`` with value parts renamed 1, 2, ... in order of first occurrence (INIT and K kept)."""
    names: dict[int, int] = {}

    def part(p: int) -> int:
        if p in (INIT_PART, KERNEL_PART):
            return p
        return names.setdefault(p, len(names) + 1)

    def walk(obj):
        if isinstance(obj, Value):
            return Value(part(obj.user), part(obj.sup))
        if isinstance(obj, tuple) and obj and not isinstance(obj, str):
            items = [walk(item) for item in obj]
            return type(obj)(*items) if hasattr(obj, "_fields") else tuple(items)
        return obj

    renamed = walk(world._replace(fresh=0))
    return renamed._replace(fresh=len(names))


def successors(model: Model, world: World):
    """(step, next world, violations) for every corpus step legal in ``world``."""
    for step in model.enabled(world):
        if step.op != "run":
            result = model.apply(world, step)
            yield step, result.world, [f for f in result.findings if f.kind == "violation"]
            continue
        task, current = step.get("task"), world
        while True:
            result = model.apply(current, step)
            after = result.world.tasks[result.world.task_index(task)]
            until = DONE if after.cont is None else after.cont.label
            violations = [f for f in result.findings if f.kind == "violation"]
            yield Step.make("run", task=task, until=until), result.world, violations
            if after.cont is None or violations:
                break
            current = result.world


def explore(model: Model, max_depth: int = 12, max_states: int = 2_000_000) -> Exploration:
    """Breadth-first from the initial state until a violation (shortest), the frontier empties, or a bound."""
    start = time.perf_counter()
    initial = model.initial()
    parents: dict[World, tuple[World | None, Step | None]] = {canonical(initial): (None, None)}
    frontier = deque([initial])
    transitions, depth, levels = 0, 0, [1]
    while frontier and depth < max_depth and len(parents) < max_states:
        next_frontier: deque = deque()
        for world in frontier:
            key = canonical(world)
            for step, after, violations in successors(model, world):
                transitions += 1
                if violations:
                    path = _path(parents, key) + [step]
                    return Exploration(f"violates {violations[0].name}", path, len(parents), transitions, depth,
                                       False, time.perf_counter() - start, levels)
                after_key = canonical(after)
                if after_key not in parents:
                    parents[after_key] = (key, step)
                    next_frontier.append(after)
        frontier = next_frontier
        depth += 1
        levels.append(len(frontier))
    return Exploration("clean", None, len(parents), transitions, depth, not frontier,
                       time.perf_counter() - start, levels)


def _path(parents, key) -> list[Step]:
    steps = []
    while True:
        parent, step = parents[key]
        if parent is None:
            return list(reversed(steps))
        steps.append(step)
        key = parent
