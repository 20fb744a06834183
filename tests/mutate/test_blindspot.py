"""What would have found a survivor: step kinds, what happened at a pause, how deep in its path, and the census
of what the fuzzer draws (issue 6)."""

from __future__ import annotations

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
