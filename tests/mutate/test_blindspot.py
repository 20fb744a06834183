"""What would have found a survivor: step kinds, what happened at a pause, how deep in its path, and the census
of what the fuzzer draws (issue 6)."""

from __future__ import annotations

import pytest
from helpers import model_of, steps

from fpufuzz import blindspot
from fpufuzz.config import Config
from fpufuzz.ops import Step


def test_kinds_drop_names_and_keep_choices():
    assert [blindspot.kind(s) for s in steps("schedule cpu=1 next=u0", "syscall task=u0 call=simd",
                                              "irq cpu=0 work=simd", "run task=u0 until=done")] == [
        "schedule", "syscall call=simd", "irq work=simd", "run until=done"]


def test_a_pause_is_named_by_point_tif_and_what_happened():
    assert blindspot.Pause("a: b", 3, "irq work=simd", False).pair == "at a: b (TIF clear): irq work=simd"


def test_pause_depth_counts_points_from_the_start_of_the_path():
    model = model_of("exec_invalidate_last_cpu", cpus=2, users=1, kthreads=0)
    prefix = steps("schedule cpu=0 next=u0", "run task=u0 until=done", "syscall task=u0 call=simd")
    world = model.initial()
    for step in prefix:
        world = model.apply(world, step).world
    u0, one = world.task_index("u0"), Step.make("run", task="u0")
    first = model.apply(world, one).world.tasks[u0].cont.label
    second = model.apply(model.apply(world, one).world, one).world.tasks[u0].cont.label
    scenario = prefix + steps(f"run task=u0 until='{second}'", "irq cpu=0 work=simd", "run task=u0 until=done")
    assert first != second
    assert blindspot.pauses_of(model, scenario) == [(second, 2, "irq work=simd", False)]


def test_census_counts_every_step_the_machine_takes():
    kinds, pairs, total = blindspot.census(model_of("exec_invalidate_last_cpu").variant, Config(), examples=3)
    assert total == sum(kinds.values()) > 0 and kinds["schedule"] > 0
    assert all(p.startswith("at ") for p in pairs)


def test_a_counterexample_is_replayed_on_the_machine_the_explorer_found_it_on():
    """The lifecycle machine's counterexamples fork a child ``u1``, a task the fuzzer's machine already has: the
    pauses are read on the explorer's machine, the census stays the fuzzer's (here a stand-in, no campaign)."""
    from collections import Counter

    from fpufuzz import variant
    from fpufuzz.errors import IllegalStep
    from fpufuzz.mutscore import FUZZ_MACHINE

    found = steps("schedule cpu=0 next=u0", "run task=u0 until=done", "fork task=u0 child=u1", "irq cpu=0 work=simd",
                  "run task=u0 until='fpregs_activate: write fpu_fpregs_owner_ctx'", "irq cpu=0 work=simd",
                  "run task=u0 until=done")
    base, counts = variant.load("exec_invalidate_last_cpu"), (Counter(), Counter(), 1)
    spot = blindspot.explain(base, found, [], [], FUZZ_MACHINE, counts,
                             found_on=Config(cpus=1, users=1, kthreads=0, lifecycle=True))
    assert [(label, then) for label, _depth, then in spot.deep] == [
        ("fpregs_activate: write fpu_fpregs_owner_ctx", "irq work=simd")]
    with pytest.raises(IllegalStep, match="child=u1"):
        blindspot.explain(base, found, [], [], FUZZ_MACHINE, counts)


def test_a_deep_interrupt_is_explained_with_the_decisions_that_land_anywhere():
    deep_irq = blindspot._depth_line("fpregs_activate: write fpu_fpregs_owner_ctx", 8, "irq work=simd")
    deep_switch = blindspot._depth_line("setup_new_exec: cond_resched", 8, "schedule")
    assert "one interrupt decision in 8" in deep_irq and "interrupt decision" not in deep_switch
    assert "deeper than a plan's 6 decisions" in deep_switch
