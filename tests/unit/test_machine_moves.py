"""The fuzzer's scheduling moves (fpufuzz/machine.py): a context switch goes to the task whose registers the CPU
still holds on every other pick, and a program rule switches a task preempted inside a kernel path back in on its
last CPU and follows it to user mode."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import model_of, steps

from fpufuzz import corpus, variant
from fpufuzz.machine import ANYWHERE_EVERY, PLAN_LENGTH, Campaign, Violation, machine_for
from fpufuzz.ops import Model, Step

TWO_USERS = dict(cpus=1, users=2, kthreads=0, signals=True)
SEED_CASE = Path(__file__).resolve().parents[2] / "corpus" / "exec+migrate-back+kthread.case"


def _machine(*texts: str):
    machine = machine_for(model_of("exec_invalidate_last_cpu", **TWO_USERS), Campaign())()
    for step in steps(*texts):
        machine.apply(step)
    return machine


def _u1_in_delivery():
    """u0 left its registers on CPU0 and was switched out; u1 runs and a signal with an absent frame page is sent
    to it."""
    return _machine("schedule cpu=0 next=u0", "run task=u0 until=done", "schedule cpu=0 next=u1",
                    "run task=u1 until=done", "signal task=u1 frame=absent")


def _task(machine, name):
    return machine.world.tasks[machine.world.task_index(name)]


def test_the_cpu_goes_back_to_the_task_whose_registers_it_holds_on_every_other_pick():
    machine = _machine("schedule cpu=0 next=u0", "run task=u0 until=done", "schedule cpu=0 next=u1",
                       "run task=u1 until=done")
    assert machine.world.cpus[0].owner == _task(machine, "u1").fpu
    machine.apply(Step.make("schedule", cpu=0, next="u0"))  # u1 out; CPU0 holds u0's registers now
    machine.apply(Step.make("run", task="u0", until="done"))
    machine.apply(Step.make("schedule", cpu=0, next="idle0"))
    switches = [s for s in machine.legal["schedule"] if s.get("cpu") == 0]
    assert {s.get("next") for s in switches} == {"u0", "u1"}
    assert all(machine._next_task(switches, 0, pick).get("next") == "u0" for pick in (0, 2, 4, 6))
    assert {machine._next_task(switches, 0, pick).get("next") for pick in (1, 3, 5, 7)} == {"u0", "u1"}


def test_a_program_rule_wakes_a_preempted_task_on_its_last_cpu_and_follows_it_to_user_mode():
    machine = _u1_in_delivery()
    machine.follow("u1", [("continue", 0)] * 4 + [("switch_out", 0)])  # out between the frame write's tries
    index = machine.world.task_index("u1")
    assert machine.world.running_on(index) is None and machine.world.tasks[index].cont is not None
    assert "u1" in machine._returning  # switched out, runnable: a program rule may pick it
    machine._wake("u1", 0)
    machine.follow("u1", [])
    u1 = _task(machine, "u1")
    assert u1.mode == "user" and machine.world.running_on(index) == 0
    assert machine.world.frames[index].page == "present"  # the retry wrote the frame


def _in_exec():
    """u0, its registers live on CPU0, has just entered execve(): its path is paused at the path's first point."""
    machine = machine_for(model_of("exec_invalidate_last_cpu", cpus=2, users=1, kthreads=0), Campaign())()
    for step in steps("schedule cpu=0 next=u0", "run task=u0 until=done", "syscall task=u0 call=execve"):
        machine.apply(step)
    return machine


def _ahead(machine, task: str) -> list:
    """The worlds at each point of the task's path from here to its end, stepping a copy of the world."""
    model, world, worlds = machine.model, machine.world, []
    index = world.task_index(task)
    while world.tasks[index].cont is not None:
        worlds.append(world)
        world = model.apply(world, Step.make("run", task=task)).world
    return worlds


def _labels_ahead(machine, task: str) -> list[str]:
    index = machine.world.task_index(task)
    return [world.tasks[index].cont.label for world in _ahead(machine, task)]


def test_interrupts_may_land_at_every_point_where_they_are_on_and_looking_ahead_changes_nothing():
    """exec's path keeps interrupts on at every point, inside its fpregs_lock() section too (bottom halves are off
    there, not interrupts); looking ahead records no step and leaves the world as it was."""
    machine = _in_exec()
    world, taken, index = machine.world, list(machine.steps), machine.world.task_index("u0")
    points = machine._interruptible_ahead(index)
    assert machine.world is world and machine.steps == taken
    worlds = _ahead(machine, "u0")
    assert points == list(range(len(worlds))) and len(worlds) > PLAN_LENGTH
    assert any(w.cpus[0].ctx.softirq for w in worlds)  # the section is among them


def test_no_point_ahead_where_interrupts_are_off():
    """A context switch runs with interrupts off until finish_task_switch(): no interrupt lands there."""
    machine = _in_exec()
    index = machine.world.task_index("u0")
    off = machine.world._replace(cpus=tuple(c._replace(ctx=c.ctx._replace(irqs_off=True)) for c in machine.world.cpus))
    machine.world = off
    assert 0 not in machine._interruptible_ahead(index)


@pytest.mark.parametrize("which", [0, 1, 3])
def test_a_decision_whose_pick_says_anywhere_lands_at_the_point_it_picks(which):
    """One pick in ``ANYWHERE_EVERY`` lands its interrupt at any later point where interrupts are on: the
    ``which``-th of them (modulo their number), however deep in the path."""
    machine = _in_exec()
    index = machine.world.task_index("u0")
    points, labels = machine._interruptible_ahead(index), _labels_ahead(machine, "u0")
    pick = which * ANYWHERE_EVERY + ANYWHERE_EVERY - 1
    machine.follow("u0", [("irq", pick)])
    irq = next(i for i, s in enumerate(machine.steps) if s.op == "irq")
    paused_at = machine.steps[irq - 1].get("until") if machine.steps[irq - 1].op == "run" else labels[0]
    assert paused_at == labels[points[which % len(points)]]
    assert machine.world.tasks[index].mode == "user"  # the rest of the path ran to user mode


def test_other_picks_keep_their_landing():
    """A pick that does not say anywhere interrupts here (one in four) or inside the next section, as before."""
    machine = _in_exec()
    before = len(machine.steps)
    machine.follow("u0", [("irq", 0)])
    assert machine.steps[before].op == "irq"


def test_the_campaign_records_how_far_it_got_before_the_first_violation():
    """The benchmark's median time is model steps to the bug times the cost of a step: the campaign counts the
    steps up to the violation, that one included, and the example it came in."""
    seed, campaign = corpus.load(SEED_CASE), Campaign()
    machine = machine_for(Model(variant.load("original"), seed.config), campaign)()
    with pytest.raises(Violation):
        for step in seed.steps:
            machine.apply(step)
    assert (campaign.examples_to_violation, campaign.steps_to_violation) == (1, len(seed.steps))
