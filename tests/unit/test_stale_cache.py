"""The fuzzer's target (fpufuzz.oracle.stale_caches, fpufuzz.machine): a switched-out task whose lazy-restore proof
holds over registers that are not its own, on a CPU outside any locked section, is one context switch from a
violation. A correct kernel never leaves one; the machine tells Hypothesis how many steps an example spent in such
states, so its target phase can steer towards them."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import steps
from hypothesis import Phase
from rich.console import Console

from fpufuzz import Config, Model, corpus, oracle, profiles, variant
from fpufuzz import machine as machine_module
from fpufuzz.cli_fuzz import _summary
from fpufuzz.fuzz import FuzzResult
from fpufuzz.machine import Campaign, Violation, machine_for
from fpufuzz.replay import replay

MACHINE = Config(cpus=2, users=2, kthreads=0, signals=True)
REALBUG = Path(__file__).parents[2] / "docs" / "realbugs" / "sigreturn_xrstor_fault_keeps_owner.py"

# u1 takes a signal on CPU1 and returns from it; at sigreturn's first point it moves to CPU0, switching out u0,
# whose registers CPU0 keeps; the XRSTOR from the paged-out frame faults and modifies the registers; u1 is at the
# fault-in, outside fpregs_lock().
TO_THE_FAULT_IN = ("schedule cpu=0 next=u0", "run task=u0 until=done", "schedule cpu=1 next=u1",
                   "run task=u1 until=done", "user_write task=u0", "user_write task=u1",
                   "signal task=u1 frame=present", "run task=u1 until=done",
                   "sigreturn task=u1 frame=absent xrstor=modifies", "schedule cpu=1 next=idle1",
                   "schedule cpu=0 next=u1", "run task=u1 until='__restore_fpregs_from_user: xrstor from user'",
                   "run task=u1 until='restore_fpregs_from_user: fault_in_readable'")
U0_BACK = ("schedule cpu=0 next=u0", "run task=u0 until=done")


def _buggy():
    return Model(variant.load_file(str(REALBUG)), MACHINE)


def _fixed():
    return Model(variant.load("exec_invalidate_last_cpu"), MACHINE)


def _walk(model, texts):
    """The worlds after each step, and the violations met."""
    world, worlds, violations = model.initial(), [], []
    for step in steps(*texts):
        result = model.apply(world, step)
        world = result.world
        worlds.append(world)
        violations += [f.name for f in result.findings if f.kind == "violation"]
    return worlds, violations


def test_a_faulting_xrstor_that_keeps_the_owner_tag_leaves_a_stale_cache_one_switch_from_a_violation():
    worlds, violations = _walk(_buggy(), TO_THE_FAULT_IN)
    assert [oracle.stale_caches(w) for w in worlds[-3:]] == [0, 0, 1]  # the XRSTOR point is still before it
    assert violations == []
    _, violations = _walk(_buggy(), TO_THE_FAULT_IN + U0_BACK)
    assert violations == ["user-regs"]


def test_the_fixed_kernel_drops_the_tag_and_leaves_no_stale_cache():
    worlds, violations = _walk(_fixed(), TO_THE_FAULT_IN + U0_BACK)
    assert all(oracle.stale_caches(w) == 0 for w in worlds) and violations == []


def test_a_stale_cache_inside_a_locked_section_is_a_legitimate_window_and_not_counted():
    """Between a restore's XRSTOR and its write of the owner tag, the CPU holds the new task's registers under the
    old tag: the ``cache-sound`` diagnostic's window, closed before anyone can switch in."""
    worlds, _ = _walk(_fixed(), ("schedule cpu=0 next=u0", "run task=u0 until=done", "schedule cpu=1 next=u1",
                                 "run task=u1 until=done", "user_write task=u1", "signal task=u0 frame=present",
                                 "schedule cpu=1 next=idle1", "schedule cpu=0 next=idle0", "schedule cpu=1 next=u0",
                                 "run task=u0 until='fpregs_activate: write fpu_fpregs_owner_ctx'"))
    world = worlds[-1]  # u0's delivery restored its registers on CPU1, still tagged as u1's
    assert oracle._cache_sound(world, world.task_index("u1")) and world.cpus[1].ctx.atomic
    assert oracle.stale_caches(world) == 0


def _machine(model, texts):
    machine = machine_for(model, Campaign())()
    for step in steps(*texts):
        machine.apply(step)
    return machine


def test_the_machine_reports_the_steps_spent_over_a_stale_cache_as_its_target(monkeypatch):
    observed = []
    monkeypatch.setattr(machine_module, "target", lambda value, label: observed.append((value, label)))
    _machine(_fixed(), TO_THE_FAULT_IN).teardown()
    assert observed == []  # nothing to steer towards: no observation, so Hypothesis's target phase stays idle
    _machine(_buggy(), TO_THE_FAULT_IN).teardown()
    assert observed == [(1.0, "stale-cache")]


def test_a_switch_on_a_stale_cache_takes_the_task_it_vouches_for_and_follows_it_to_user_mode():
    """An odd pick leaves the choice among all switches (the every-other-pick lean does not apply); with the
    cache stale, the vouched-for task is switched in anyway and run to user mode, where the bug shows."""
    machine = _machine(_buggy(), TO_THE_FAULT_IN)
    assert machine._stale_on(0) and not machine._stale_on(1)
    with pytest.raises(Violation) as found:
        machine._switch_out(machine.world.task_index("u1"), pick=1)
    assert found.value.finding.name == "user-regs" and found.value.finding.task == "u0"
    assert [str(s) for s in found.value.steps[-2:]] == ["schedule cpu=0 next=u0", "run task=u0 until=done"]


def test_on_the_fixed_kernel_the_same_switch_is_an_ordinary_pick():
    machine = _machine(_fixed(), TO_THE_FAULT_IN)
    assert not machine._stale_on(0)
    before = len(machine.steps)
    machine._switch_out(machine.world.task_index("u1"), pick=1)
    assert len(machine.steps) == before + 1  # the switch only: nobody is followed


def test_the_ci_and_dev_profiles_run_the_target_phase():
    for name in ("ci", "dev"):
        assert Phase.target in profiles.get(name).phases


def _clean_result(stale: int):
    campaign = Campaign(diagnostics={"stale-cache": stale} if stale else {})
    return FuzzResult(variant.load("exec_invalidate_last_cpu"), MACHINE, "ci", "clean", campaign, 1.0)


def test_a_clean_summary_warns_of_stale_caches_the_campaign_met_and_only_then():
    texts = []
    for stale in (0, 3):
        console = Console(record=True, width=200)
        _summary([_clean_result(stale)], console, {})
        texts.append(console.export_text())
    assert "stale-cache" not in texts[0]
    assert "clean, but 3 steps left a switched-out task's registers stale" in texts[1]



def test_replay_reports_the_stale_cache_where_the_seeds_bug_leaves_one():
    case = corpus.load(Path(__file__).parents[2] / "corpus" / "exec+migrate-back+kthread.case")

    def stale_steps(name):
        return [r.number for r in replay(case, variant.load(name)).records
                if any(d.name == "stale-cache" for d in r.diagnostics)]

    assert stale_steps("original") == [8]  # u0 switched out of CPU1, its stale registers tagged on CPU0
    assert stale_steps("exec_invalidate_last_cpu") == []
