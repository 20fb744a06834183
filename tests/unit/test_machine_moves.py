"""The fuzzer's scheduling moves (fpufuzz/machine.py): a context switch goes to the task whose registers the CPU
still holds on every other pick, and a program rule switches a task preempted inside a kernel path back in on its
last CPU and follows it to user mode."""

from __future__ import annotations

from helpers import model_of, steps

from fpufuzz.machine import Campaign, machine_for
from fpufuzz.ops import Step

TWO_USERS = dict(cpus=1, users=2, kthreads=0, signals=True)


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
