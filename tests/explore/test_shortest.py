"""The explorer: breadth-first search over the same model and oracle as the fuzzer.

The shortest counterexample on ``original`` is the seed's scenario (9 steps), the fuzzer's minimized case is as
short, the two searches agree on every variant, and the reachable-state counts of two small machines are pinned
so that a silent change to the model shows up here.
"""

from __future__ import annotations

import pytest
from helpers import model_of, run

from fpufuzz import Config, canon, corpus, variant
from fpufuzz.explore import Memo, explore, successors
from fpufuzz.ops import Step
from fpufuzz.fuzz import fuzz
from fpufuzz.replay import replay

SMALL = dict(cpus=2, users=1, kthreads=0)
SEED_LENGTH = len(corpus.load("corpus/exec+migrate-back+kthread.case").steps)


def test_shortest_counterexample_on_original_is_no_longer_than_the_seeds():
    result = explore(model_of("original", **SMALL))
    assert result.outcome == "violates user-regs"
    assert len(result.steps) == 9 <= SEED_LENGTH
    assert result.levels[:4] == [1, 1, 1, 6]


@pytest.mark.parametrize("machine, symmetry, states, depth", [
    (dict(cpus=2, users=1, kthreads=0), True, 2418, 16),
    (dict(cpus=2, users=1, kthreads=0), False, 4836, 16),
    (dict(cpus=1, users=1, kthreads=1), True, 1577, 14),
])
def test_pinned_reachable_state_counts(machine, symmetry, states, depth):
    """Complete state spaces of the upstream fix. If the model changes on purpose, update the numbers and say
    why in the commit; if not, something changed silently."""
    result = explore(model_of("exec_invalidate_last_cpu", **machine), symmetry=symmetry)
    assert (result.outcome, result.complete, result.states, result.depth) == ("clean", True, states, depth)


def test_symmetry_reduction_keeps_verdicts_and_lengths():
    for name in ("original", "always_valid"):
        with_symmetry = explore(model_of(name, **SMALL))
        without = explore(model_of(name, **SMALL), symmetry=False)
        assert with_symmetry.outcome == without.outcome
        assert len(with_symmetry.steps) == len(without.steps)
        assert with_symmetry.states <= without.states


# Variants of the core model's code: one whose patch is to an operation family's code (FAMILIES) runs as its base
# on the small core machine, so agreeing there would only repeat its base's test; its family's explorer test and its
# fuzz test (with the family on) judge it.
CORE_VARIANTS = [name for name in variant.names() if not variant.load(name).families]


@pytest.mark.parametrize("name", CORE_VARIANTS)
def test_explorer_and_fuzzer_agree(name):
    """On a small machine the exhaustive search and the ci fuzzing profile reach the same verdict. A variant the
    explorer proves clean gets a short fuzzing budget: there, agreement means no false alarm (the full ci budget
    runs on the whole machine in tests/fuzz)."""
    v = variant.load(name)
    explored = explore(model_of(name, **SMALL))
    fuzzed = fuzz(v, Config(**SMALL), "ci", examples=None if explored.steps else 60)
    assert explored.outcome == fuzzed.outcome
    if explored.steps:
        assert len(fuzzed.steps) >= len(explored.steps)  # the explorer's is a shortest one


def test_the_counterexample_replays_as_a_corpus_case():
    result = explore(model_of("original", **SMALL))
    case = corpus.Case("explored", "", Config(**SMALL), result.steps, comments=[""] * len(result.steps))
    run = replay(case, variant.load("original"))
    assert run.outcome == "violates user-regs" and run.failing.number == len(result.steps)


def test_the_fuzzers_minimized_case_is_as_short_as_the_shortest(fuzz_config):
    """On the fuzz tests' whole machine, the seed's bug is found without being told the scenario and minimized to
    the explorer's shortest length; the minimized case is clean on both fixes."""
    found = fuzz(variant.load("original"), fuzz_config, "ci")
    shortest = explore(model_of("original", **SMALL))
    assert found.outcome == "violates user-regs"
    assert len(found.steps) == len(shortest.steps) < found.found_steps
    assert found.case.expect["exec_invalidate_last_cpu"] == "clean"
    assert found.case.expect["exec_invalidate_both"] == "clean"


def test_a_bound_is_stated_when_the_search_stops_early():
    result = explore(model_of("exec_invalidate_last_cpu", **SMALL), max_depth=5)
    assert (result.outcome, result.complete, result.stopped, result.depth) == ("clean", False, "depth", 5)
    assert result.states == sum(result.levels)


def test_a_time_bound_is_checked_after_every_state_not_only_between_levels():
    """A level is its predecessor times the branching factor, so a bound checked only between levels can overrun by
    a whole level. Past the deadline the search stops after the state it is expanding; the depth it states is the
    last level explored in full."""
    result = explore(model_of("exec_invalidate_last_cpu", **SMALL), max_seconds=1e-9)
    assert (result.stopped, result.complete, result.depth, result.levels) == ("time", False, 0, [1])
    assert result.states > 1  # the first state was expanded, and the search stopped inside the next level


def test_ctrl_c_stops_cleanly_with_the_bound_reached():
    def interrupt(progress):
        if progress.depth == 4:
            raise KeyboardInterrupt

    result = explore(model_of("exec_invalidate_last_cpu", **SMALL), progress=interrupt, every=0)
    assert result.stopped == "interrupted" and not result.complete and result.depth == 4
    assert result.states > sum(result.levels[:5]) - 1


def test_two_worker_processes_find_the_same_states():
    serial = explore(model_of("exec_invalidate_last_cpu", **SMALL))
    parallel = explore(model_of("exec_invalidate_last_cpu", **SMALL), jobs=2)
    assert (parallel.states, parallel.levels, parallel.jobs) == (serial.states, serial.levels, 2)
    shortest = explore(model_of("original", **SMALL), jobs=2)
    assert len(shortest.steps) == 9


def test_the_memo_runs_a_slice_once_and_gives_the_same_successors():
    """A state's run successors are a chain its successors rerun; the memo runs each slice once, and the search
    sees exactly what it sees without it."""
    model = model_of("exec_invalidate_last_cpu", **SMALL)
    world = model.apply(model.initial(), Step.make("schedule", cpu=0, next="u0")).world  # u0 in ret_from_fork
    memo, calls = Memo(), []
    real = model.apply
    model.apply = lambda w, step, trace=None: (calls.append(step.op), real(w, step, trace))[1]
    first = list(successors(model, world, memo))
    ran = calls.count("run")
    again = list(successors(model, world, memo))
    model.apply = real
    assert ran > 0 and calls.count("run") == ran  # the second expansion ran no slice
    assert first == again == list(successors(model, world))


def test_canonical_form_renames_values_by_first_occurrence():
    world = model_of("original", **SMALL).initial()

    def shift(v):
        return v._replace(user=v.user + 10, sup=v.sup + 10) if v is not None and v.user > 0 else v

    shifted = world._replace(fpus=tuple(f._replace(fpstate=shift(f.fpstate)) for f in world.fpus),
                             expect=tuple(shift(v) for v in world.expect), fresh=99)
    assert shifted != world and canon.key(shifted) == canon.key(world)


def test_canonical_form_identifies_mirrored_cpus_and_swapped_users():
    one = model_of("original", cpus=2, users=1, kthreads=0)
    on_cpu0, _ = run(one, "schedule cpu=0 next=u0", "run task=u0 until=done")
    on_cpu1, _ = run(one, "schedule cpu=1 next=u0", "run task=u0 until=done")
    assert on_cpu0 != on_cpu1 and canon.key(on_cpu0) == canon.key(on_cpu1)
    assert canon.key(on_cpu0, symmetry=False) != canon.key(on_cpu1, symmetry=False)

    two = model_of("original", cpus=2, users=2, kthreads=0)
    u0_runs, _ = run(two, "schedule cpu=0 next=u0", "run task=u0 until=done", "user_write task=u0")
    u1_runs, _ = run(two, "schedule cpu=0 next=u1", "run task=u1 until=done", "user_write task=u1")
    assert u0_runs != u1_runs and canon.key(u0_runs) == canon.key(u1_runs)
    u1_waits_elsewhere, _ = run(two, "schedule cpu=1 next=u0", "run task=u0 until=done", "user_write task=u0")
    assert canon.key(u1_waits_elsewhere) != canon.key(u0_runs)  # u1 last ran on CPU0, not on u0's CPU


@pytest.mark.parametrize("name", ["clear_user_states_no_activate", "sigreturn_failure_keeps_regs"])
def test_the_explorer_finds_the_signal_bugs_and_the_fix_is_clean_to_the_same_depth(name):
    """With signals on, one CPU and one task suffice: the shortest counterexample, and nothing on the fix."""
    machine = dict(cpus=1, users=1, kthreads=0, signals=True)
    found = explore(model_of(name, **machine))
    assert found.outcome == "violates user-regs" and len(found.steps) <= 6
    assert [s.op for s in found.steps].count("sigreturn") + [s.op for s in found.steps].count("signal") >= 1
    fix = explore(model_of("exec_invalidate_last_cpu", **machine), max_depth=len(found.steps))
    assert fix.outcome == "clean" and fix.depth == len(found.steps)


def test_the_explorer_finds_the_pre_2022_irq_fpu_usable_bug_and_the_2025_shape_is_clean_with_softirqs():
    """59f5ede3bc0f's bug needs one CPU and one task: an interrupt inside exec's fpregs_lock() section. With softirqs
    and kernel-FPU section data on, the 2025 shape (d02198550423) is clean over its complete state space."""
    found = explore(model_of("irq_fpu_usable_in_fpregs_lock", cpus=1, users=1, kthreads=0))
    assert found.outcome == "violates user-regs" and len(found.steps) <= 6
    assert [s.op for s in found.steps].count("irq") == 1
    clean = explore(model_of("kernel_fpu_bh_disable", cpus=1, users=1, kthreads=0, softirq=True))
    assert (clean.outcome, clean.complete) == ("clean", True)


def test_the_explorer_follows_a_tracee_into_its_ptrace_stop():
    """A run that ends with its task asleep in ptrace_stop() is one transition (the task is off its CPU: running it
    on would be an illegal step), and the tracer's requests are explored from there."""
    result = explore(model_of("force_restore_cpu_invalidate", cpus=1, users=2, kthreads=0, ptrace=True), max_depth=6)
    assert result.outcome == "clean" and result.depth == 6 and not result.complete
