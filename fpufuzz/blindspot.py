"""What would have found a mutant the fuzzer missed, derived from the explorer's counterexample and a census of
what the fuzzer actually draws on that mutant; nothing here knows any mutant.

* **steps**: each step of the counterexample has a *kind* (``schedule``, ``irq work=simd``, ``run until=L`` -- a
  path paused at point ``L``, ...), and each pause is followed by what the world did there, with whether the
  paused task's registers were live (``at L (TIF clear): irq work=simd``). The census counts how often the fuzzer's machine took each kind and pair; the ones the
  counterexample needs and the fuzzer rarely or never takes are where a rule, a plan action or a weight is
  missing.
* **depth**: the point of its path at which the counterexample acts (#0 is where the path starts), against how
  the fuzzer's plans reach it: the n-th decision of a plan acts at point #n-1 (one interrupt decision in
  ``fpufuzz.machine.ANYWHERE_EVERY`` at any later point where interrupts are on), a plan holds
  ``fpufuzz.machine.PLAN_LENGTH`` decisions, each one of ``fpufuzz.machine.ACTIONS``;
* **reachability**: properties of ``fpufuzz.reach.SOMETIMES`` the counterexample reaches and the campaign never
  did.

The census re-runs the ``ci`` campaign (its budget, one fixed seed) on the mutant with a counting model: under
``ci`` it is the very run that missed; under ``dev`` it is a sample of the same machine's habits.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

from hypothesis.stateful import run_state_machine_as_test

from fpufuzz import profiles
from fpufuzz.config import Config
from fpufuzz.determinism import without_local_constants
from fpufuzz.machine import ACTIONS, ANYWHERE_EVERY, PLAN_LENGTH, Campaign, Violation, machine_for
from fpufuzz.ops import DONE, Model, Step

RARE = 3  # report this many of the rarest step kinds and pairs


@dataclass
class BlindSpot:
    rare_steps: list[tuple[str, int]]  # (kind, times the fuzzer took it), rarest first
    rare_pairs: list[tuple[str, int]]
    census_steps: int  # steps the census saw in all
    unreached: list[str] = field(default_factory=list)  # reachability the counterexample has and the campaign not
    deep: list[tuple[str, int, str]] = field(default_factory=list)  # (label, depth, then) of deep pauses

    def lines(self) -> list[str]:
        out = [_depth_line(label, depth, then) for label, depth, then in self.deep]
        out += [f"the counterexample needs {kind!r}, which the fuzzer took {count:,} times in "
                f"{self.census_steps:,} steps" for kind, count in self.rare_steps]
        out += [f"it needs {kind!r}, which the fuzzer did {count:,} times" for kind, count in self.rare_pairs]
        out += [f"reachability property {name!r} (the counterexample reaches it) was never reached by the campaign"
                for name in self.unreached]
        return out


def _depth_line(label: str, depth: int, then: str) -> str:
    where = f"it does {then!r} at interleaving point #{depth} of a path ({label!r}): "
    anywhere = (f", or by one interrupt decision in {ANYWHERE_EVERY}, which lands at a point drawn among all the "
                f"later ones where interrupts are on" if then.startswith("irq") else "")
    if depth >= PLAN_LENGTH:
        return where + (f"deeper than a plan's {PLAN_LENGTH} decisions reach one point at a time, so only by a "
                        f"'stop' and a later rule{anywhere}")
    return where + (f"one plan acts there after {depth} 'continue' decisions in a row, each one of "
                    f"{len(ACTIONS)} actions{anywhere}")


def kind(step: Step) -> str:
    """A step without its task and CPU names: what the fuzzer must choose to do, not to whom."""
    if step.op == "run":
        return f"run until={step.get('until') or DONE}"
    detail = step.get("call") or step.get("work")
    return f"{step.op} {'call' if step.op == 'syscall' else 'work'}={detail}" if detail else step.op


class Pause(NamedTuple):
    """A point of a path at which the world does something else: where, how deep, what, and whether the paused
    task's ``TIF_NEED_FPU_LOAD`` was set (whether its registers were live), which decides what an interrupt or a
    switch there can break."""

    label: str
    depth: int  # interleaving points from the start of the path; its first is #0
    then: str  # the kind of the step that follows
    tif: bool

    @property
    def pair(self) -> str:
        return at(self.label, self.tif, self.then)


def at(label: str, tif: bool, then: str) -> str:
    """``at L (TIF set|clear): X``: what the world did at a pause. Runs after runs are left out, because the
    explorer reaches a later point in one ``run`` where the fuzzer may take several."""
    return f"at {label} (TIF {'set' if tif else 'clear'}): {then}"


def explain(variant, counterexample: list[Step], campaign_reached: list[str], along: list[str],
            config: Config | None = None, census_counts: tuple[Counter, Counter, int] | None = None,
            found_on: Config | None = None) -> BlindSpot:
    """What would have found ``counterexample``: the fuzzer's census is taken on ``config`` (its machine); the
    counterexample is replayed on ``found_on``, the machine the explorer found it on (default: ``config``), whose
    tasks it names (a fork's child on a one-task machine is a task the fuzzer's machine already has)."""
    steps, pair_counts, total = census_counts or census(variant, config or Config())
    # Only what the fuzzer takes in under 1% of its steps is a blind spot worth naming.
    rare = [k for k in sorted({kind(s) for s in counterexample}, key=lambda k: (steps[k], k))
            if steps[k] < 0.01 * total][:RARE]
    pauses = pauses_of(Model(variant, found_on or config or Config()), counterexample)
    rare_pairs = sorted({p.pair for p in pauses}, key=lambda k: (pair_counts[k], k))[:RARE]
    return BlindSpot([(k, steps[k]) for k in rare], [(k, pair_counts[k]) for k in rare_pairs], total,
                     [name for name in along if name not in campaign_reached],
                     [(p.label, p.depth, p.then) for p in pauses if p.depth >= 2])


def pauses_of(model: Model, steps: list[Step]) -> list[Pause]:
    """Every pause of the counterexample at which something else happens, found by replaying each ``run until=L``
    one point at a time (so depths count points as the fuzzer's plans do: its n-th decision acts at #n-1)."""
    world, depth, found = model.initial(), {}, []
    for i, step in enumerate(steps):
        if step.op != "run":
            world = model.apply(world, step).world
            continue
        name = step.get("task")
        index = world.task_index(name)
        if not world.tasks[index].cont.log:  # a path that has not run yet starts at point #0
            depth[name] = 0
        while True:
            world = model.apply(world, Step.make("run", task=name)).world
            cont = world.tasks[index].cont
            depth[name] = depth.get(name, 0) + 1
            if cont is None or cont.label == step.get("until"):
                break
        nxt = steps[i + 1] if i + 1 < len(steps) else None
        if cont is not None and nxt is not None and nxt.op != "run":
            found.append(Pause(cont.label, depth[name], kind(nxt), world.tasks[index].tif))
    return found


def census(variant, config: Config, examples: int | None = None) -> tuple[Counter, Counter, int]:
    """(step kinds, pairs of consecutive step kinds, steps) the fuzzer's machine takes on ``variant`` under the
    ``ci`` settings."""
    model = _CountingModel(variant, config)
    settings = profiles.get("ci")
    if examples is not None:
        from hypothesis import settings as Settings
        settings = Settings(settings, max_examples=examples)
    try:
        with without_local_constants():
            run_state_machine_as_test(lambda: machine_for(model, Campaign())(), settings=settings)
    except Violation:
        pass  # the census only counts; a violation here ends it early, with what it counted so far
    return model.kinds, model.pairs, sum(model.kinds.values())


class _CountingModel(Model):
    """The model, counting the kind of every step applied (a ``run`` by where it stopped) and every pair."""

    def __init__(self, variant, config: Config):
        super().__init__(variant, config)
        self.kinds: Counter = Counter()
        self.pairs: Counter = Counter()
        self._last: tuple[str, bool] | None = None  # (label, TIF) of the pause the next step happens at

    def initial(self):
        self._last = None  # a new example
        return super().initial()

    def apply(self, world, step, trace=None):
        result = super().apply(world, step, trace)
        if step.op == "run":
            task = result.world.tasks[result.world.task_index(step.get("task"))]
            step = Step.make("run", task=step.get("task"), until=DONE if task.cont is None else task.cont.label)
        self.kinds[kind(step)] += 1
        if self._last is not None and step.op != "run":
            self.pairs[at(*self._last, kind(step))] += 1
        paused = step.op == "run" and step.get("until") != DONE
        self._last = (step.get("until"), _tif(result.world, step.get("task"))) if paused else None
        return result


def _tif(world, task: str) -> bool:
    return world.tasks[world.task_index(task)].tif
