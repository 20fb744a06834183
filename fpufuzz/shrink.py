"""Minimize a failing step list, knowing what steps mean.

Hypothesis shrinks choice sequences; a step list found by the machine still carries scheduling round trips and
runs cut into pieces at every interleaving point. This pass works on the concrete steps (corpus spelling): it
merges consecutive runs of one task, then removes steps, single and in pairs, and whole episodes of a program
(from a step a task takes in user mode to a return of its path there), for as long as the replay still ends in a
violation of the same bug, and tries the CPU's idle task in place of a task switched in, and one task (of the
list, or one the machine starts with) in place of another of its kind (then removes again). Last, the explorer
searches the list's neighbourhood (its own kinds of step and tasks, and interrupts) for a shorter order. The
result is 1-minimal: removing any one step, or any two, loses the violation. It is not always the shortest
counterexample that exists; the explorer on the whole machine gives that.

The same bug: a violation of the same invariant, or, for stale registers, a violation at any of their
observation points (``oracle.STALE_REGISTERS``: a program's registers, its signal frame, a guest's registers, a
regset read; ``oracle.same_bug``), as the fuzz tests count a known bug found. Which point a run meets
first depends on its path; the shortest list that shows the registers may show them elsewhere, and the case
names the point its own replay meets.
"""

from __future__ import annotations

from fpufuzz.errors import IllegalStep
from fpufuzz.explore import explore
from fpufuzz.ops import DONE, TASK_ARGS, Model, Step, op_name
from fpufuzz.oracle import Finding, same_bug

_PAIR_LIMIT = 40  # steps; beyond it the all-pairs pass costs more than it is worth


def first_violation(model: Model, steps: list[Step]) -> tuple[int, Finding] | None:
    """The number of steps up to and including the first violation, and the violation; None if there is none or a
    step is illegal where it comes."""
    world = model.initial()
    for count, step in enumerate(steps, start=1):
        try:
            result = model.apply(world, step)
        except IllegalStep:
            return None
        violations = [f for f in result.findings if f.kind == "violation"]
        if violations:
            return count, violations[0]
        world = result.world
    return None


def violates(model: Model, steps: list[Step], invariant: str) -> int | None:
    """The number of steps up to and including the first violation, if it is the bug a violation of ``invariant``
    shows; else None."""
    found = first_violation(model, steps)
    return found[0] if found and found[1].name in same_bug(invariant) else None


def merge_runs(steps: list[Step]) -> list[Step]:
    """``run task=T until=A`` followed at once by ``run task=T until=B`` is ``run task=T until=B``."""
    merged: list[Step] = []
    for step in steps:
        if merged and step.op == "run" and merged[-1].op == "run" and merged[-1].get("task") == step.get("task"):
            merged[-1] = step
        else:
            merged.append(step)
    return merged


def minimize(model: Model, steps: list[Step], invariant: str) -> list[Step]:
    """A 1-minimal step list that still shows the bug a violation of ``invariant`` shows, on ``model``."""
    end = violates(model, steps, invariant)
    if end is None:
        raise ValueError(f"the steps do not violate {invariant}")
    steps = steps[:end]
    merged = merge_runs(steps)
    if (end := violates(model, merged, invariant)) is not None:
        steps = merged[:end]
    steps = _delete(model, steps, invariant)
    steps = _one_task_instead(model, _idle_instead(model, steps, invariant), invariant)
    return shortest_nearby(model, steps, invariant)


# The neighbourhood searches' bound. The explorer checks it between levels, so the last level can go past it:
# about a second on this machine. On the whole machine, the seed's bug minimized to 13 or 17 steps on 4 seeds of
# 20 (a forked child playing the victim, a ptrace stop and continue, which no deletion or renaming could undo);
# the shortest is 9.
NEARBY_STATES = 5_000

# Interrupts join the last search, among the list's own kinds of step: they need no task, may come wherever
# interrupts are enabled, and use the FPU as a context switch does, so an interrupt is often the shorter way to what
# a switch out and back did (clear_user_states_no_activate's 7-step cases through a migration became the 6 steps of an
# interrupt, 8 seeds of 8).
_INTERRUPTS = ("irq:simd", "irq:softirq")


def shortest_nearby(model: Model, steps: list[Step], invariant: str) -> list[Step]:
    """A shortest list, if one is shorter than ``steps``, by the same tasks: breadth-first searches (fpufuzz.explore,
    the same model) on ``model`` with only those tasks acting, to one step less than the shortest list so far,
    within ``NEARBY_STATES`` each. First with every kind of step: another way into the kernel may be shorter (an
    exec where a fork was, a signal where a vCPU run was); it reaches about depth 6 on the whole machine. Then with
    only the list's own kinds, which reaches deeper: another order (a parent doing what its forked child did, say).
    Then with those and interrupts: an interrupt where a switch out and back was (a search of its own, since the
    interrupts cost the one before its depth: the seed's 13-step find went to 9 only without them). Deletions and
    renamings only make a list shorter by taking things out. The explorer stops at the first violation of any
    invariant; one that is not the same bug is not taken."""
    actors = frozenset(step.get(arg) for step in steps for arg in TASK_ARGS if step.get(arg))
    own = {op_name(step) for step in steps}
    # dict.fromkeys: a list that has both interrupts already is searched with its own kinds once
    for kinds in dict.fromkeys((None, tuple(sorted(own)), tuple(sorted(own | set(_INTERRUPTS))))):
        nearby = Model(model.variant, model.config, ops=kinds, actors=actors)
        found = explore(nearby, max_depth=len(steps) - 1, max_states=NEARBY_STATES)
        if found.steps and violates(model, found.steps, invariant) == len(found.steps) < len(steps):
            steps = found.steps
    return steps


def _delete(model: Model, steps: list[Step], invariant: str) -> list[Step]:
    """Remove steps, neighbours one or two at a time, then any pair, until none can go."""
    changed = True
    while changed:
        changed = False
        for width in (2, 1):
            index = len(steps) - width
            while index >= 0:
                candidate = merge_runs(steps[:index] + steps[index + width:])
                end = violates(model, candidate, invariant)
                if end is not None:
                    steps, changed = candidate[:end], True
                index = min(index, len(steps) - width) - 1
        if not changed:
            steps, changed = _drop_episode(model, steps, invariant)
        if not changed:
            steps, changed = _drop_any_pair(model, steps, invariant)
    return steps


# Steps that take a user task from user mode into the kernel (or act on its user state there).
_ENTRIES = ("user_write", "syscall", "fork", "signal", "frame_write", "sigreturn", "stop", "ptrace")


def _drop_episode(model: Model, steps: list[Step], invariant: str) -> tuple[list[Step], bool]:
    """Remove one episode of a task's program: from a step it takes in user mode to a later return of its path to
    user mode (``run task=T until=done``), with every step between, longest first. A detour such as creating and
    running a vCPU is many steps that only go together (each one alone is needed by the next), so neither single
    nor pair removals can take it out. Steps the removal leaves illegal go with it: an episode cut at a return to
    user mode that is not its path's own leaves that path's later runs with nothing to run."""
    for first, entry in enumerate(steps):
        if entry.op not in _ENTRIES:
            continue
        task = entry.get("task")
        for last in range(len(steps) - 1, first, -1):
            step = steps[last]
            if step.op == "run" and step.get("task") == task and step.get("until") == DONE:
                candidate = _legal(model, merge_runs(steps[:first] + steps[last + 1:]))
                end = violates(model, candidate, invariant)
                if end is not None:
                    return candidate[:end], True
    return steps, False


def _idle_instead(model: Model, steps: list[Step], invariant: str) -> list[Step]:
    """A task switched in only to take a CPU from another can often be the CPU's idle task, which touches no FPU
    state; the steps that made the task (a fork, its run) can then go. Each such substitution is kept if the
    deletions then make the list shorter."""
    for index, step in enumerate(steps):
        if step.op != "schedule" or step.get("next").startswith("idle"):
            continue
        idle = Step.make("schedule", cpu=step.get("cpu"), next=f"idle{step.get('cpu')}")
        candidate = steps[:index] + [idle] + steps[index + 1:]
        end = violates(model, candidate, invariant)
        if end is not None:
            shorter = _delete(model, candidate[:end], invariant)
            if len(shorter) < len(steps):
                return _idle_instead(model, shorter, invariant)
    return steps


_TASK_ARGS = TASK_ARGS[:3]  # the fork's child is the task it creates: renaming it is not playing it


def _one_task_instead(model: Model, steps: list[Step], invariant: str) -> list[Step]:
    """What a forked child does, its parent can often do itself, one user task can often play two, and a task the
    machine starts with can play a forked one: try each task of the list, or of the initial world, in place of
    another of its kind (the steps that created it dropped), then delete again; kept if the list gets shorter."""
    names = sorted({step.get(arg) for step in steps for arg in _TASK_ARGS if step.get(arg)})
    initial = [t.name for t in model.initial().tasks if t.alive and t.name and t.name not in names]
    for gone in names:
        for kept in names + initial:
            if kept == gone or kept[0] != gone[0] or kept.startswith("idle"):
                continue
            candidate = _legal(model, [_rename(step, gone, kept) for step in steps if step.get("child") != gone])
            end = violates(model, candidate, invariant)
            if end is not None:
                shorter = _idle_instead(model, _delete(model, candidate[:end], invariant), invariant)
                if len(shorter) < len(steps):
                    return _one_task_instead(model, shorter, invariant)
    return steps


def _legal(model: Model, steps: list[Step]) -> list[Step]:
    """The steps that are legal where they come, the others left out (a renamed task's steps that its new
    player cannot take: it is already running there, it has no path to run)."""
    world, kept = model.initial(), []
    for step in steps:
        try:
            world = model.apply(world, step).world
        except IllegalStep:
            continue
        kept.append(step)
    return kept


def _rename(step: Step, gone: str, kept: str) -> Step:
    if not any(step.get(arg) == gone for arg in _TASK_ARGS):
        return step
    return Step(step.op, tuple((name, kept if name in _TASK_ARGS and value == gone else value)
                               for name, value in step.args))


def _drop_any_pair(model: Model, steps: list[Step], invariant: str) -> tuple[list[Step], bool]:
    """Remove two steps that are not neighbours (a switch out and its switch back, say); quadratic, so only once
    the cheaper passes are stuck and the list is short."""
    if len(steps) > _PAIR_LIMIT:
        return steps, False
    for first in range(len(steps)):
        for second in range(first + 2, len(steps)):
            candidate = merge_runs(steps[:first] + steps[first + 1:second] + steps[second + 1:])
            end = violates(model, candidate, invariant)
            if end is not None:
                return candidate[:end], True
    return steps, False
