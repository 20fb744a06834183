"""Fixed mutants with their known classification (issue 6), and the mutation score. Each mutant is looked up by
the operator and the source line it touches, never by a line number written here."""

from __future__ import annotations

import inspect

import pytest
from helpers import steps

from fpufuzz import casegen, mutate, mutscore, variant
from fpufuzz.config import Config
from fpufuzz.errors import ModelError
from fpufuzz.mutscore import Classification, Hunt, Judged
from fpufuzz.ops import Model
from fpufuzz.replay import replay


def mutant(function: str, mutation: str, text: str):
    """The mutant of ``function`` made by ``mutation`` at the first line containing ``text``."""
    lines, first = inspect.getsourcelines(mutate.base_variant().functions[function])
    line = first + next(i for i, source in enumerate(lines) if text in source)
    return next(m for m in mutate.generate([function]) if m.name == f"{function}:{line}:{mutation}")


def test_dropping_the_exec_invalidation_violates_and_the_fuzzer_kills_it():
    """Without ``__fpu_invalidate_fpregs_state()`` exec keeps last_cpu: the task can come back to the CPU whose
    owner tag still names it and skip loading its fresh image (the bug 1f69383b203e fixed, worse)."""
    m = mutant("fpu_reset_fpregs", "drop-invalidation", "__fpu_invalidate_fpregs_state")
    verdict = mutscore.classify(m)
    assert (verdict.kind, verdict.invariant, len(verdict.steps)) == ("violating", "user-regs", 4)
    assert {"restore-skipped", "exec-returned"} <= set(verdict.reached)
    found = mutscore.hunt(m, profile="ci")
    assert found.killed and found.invariant == "user-regs" and found.examples >= 1
    assert "exec-returned" in found.reached


def test_deleting_a_no_op_statement_is_equivalent():
    """``fpstate_reset()`` touches nothing the model tracks, so exec without it behaves the same everywhere."""
    verdict = mutscore.classify(mutant("fpu_flush_thread", "delete", "fpstate_reset"))
    assert verdict.kind == "equivalent" and verdict.steps is None and verdict.states > 1000


# A signals machine that is cheap to search completely (about 7 s): no preemption inside the kernel, and a
# faulting XRSTOR keeps the registers.
SIGNALS = Config(cpus=1, users=1, kthreads=0, signals=True, preempt="none", xrstor_fault="keeps")


def test_a_mutant_is_searched_on_the_first_machine_that_runs_its_function():
    """Signal delivery never runs on the core machine; it does on a machine with signals, where skipping the
    restore before the frame is written puts whatever the CPU holds into the frame."""
    machines = (mutscore.SMALL, SIGNALS)
    assert "copy_fpstate_to_sigframe" not in mutscore.exercised(mutscore.SMALL)
    assert mutscore.machine_of("copy_fpstate_to_sigframe", machines) == SIGNALS
    assert mutscore.machine_of("fpu_reset_fpregs", machines) == mutscore.SMALL
    verdict = mutscore.classify(mutant("copy_fpstate_to_sigframe", "delete", "fpregs_restore_userregs()"), machines)
    assert (verdict.kind, verdict.machine, verdict.invariant) == ("violating", SIGNALS, "sigframe")
    assert any(step.op == "signal" for step in verdict.steps)


def test_a_mutant_of_a_function_no_machine_runs_is_unexercised_not_equivalent():
    """Without a machine that delivers signals, a complete search of a signal-path mutant would read "equivalent"
    about code it never ran: it is not searched and not counted."""
    m = mutant("copy_fpstate_to_sigframe", "delete", "fpregs_unlock()")
    assert {"fpu_flush_thread", "fpu_reset_fpregs", "fpregs_restore_userregs"} <= mutscore.exercised(mutscore.SMALL)
    verdict = mutscore.classify(m, machines=(mutscore.SMALL,))
    assert verdict.kind == "unexercised" and verdict.states == 0 and verdict.machine is None
    assert mutscore.score([mutscore.Judged(m.name, m.function, m.line, m.mutation, verdict)]) == (0, 0, None)


def test_an_unbalanced_lock_is_broken_not_violating():
    verdict = mutscore.classify(mutant("fpu_reset_fpregs", "delete", "fpregs_lock()"))
    assert verdict.kind == "broken" and "softirq count went negative" in verdict.error


def test_a_search_cut_by_its_bound_is_unknown():
    verdict = mutscore.classify(mutant("fpu_flush_thread", "delete", "fpstate_reset"), max_depth=3)
    assert verdict.kind == "unknown" and verdict.stopped == "depth" and verdict.machine == mutscore.SMALL


@pytest.mark.parametrize("error, killed", [(ModelError("a kernel path ran 5000 events without ending"), True),
                                           (AttributeError("'int' object has no attribute 'user'"), False)])
def test_a_fuzz_run_the_kernel_breaks_is_a_kill_and_a_tool_error_is_not(monkeypatch, error, killed):
    """A mutant whose kernel breaks under the fuzzer (a soft lockup) fails its fuzz test: a kill, reported with
    its error, as mutation tools count a crash. Any other exception is the tool's, and proves nothing."""
    def crash(variant, config, profile, seed=None, database=None, campaign=None):
        campaign.examples = 7
        raise error
    monkeypatch.setattr(mutscore, "fuzz", crash)
    found = mutscore.hunt(mutant("fpu_reset_fpregs", "drop-invalidation", "__fpu_invalidate_fpregs_state"))
    assert found.killed is killed and type(error).__name__ in found.error
    assert (found.invariant, found.examples) == ((mutscore.MODEL_ERROR, 7) if killed else (None, None))


def test_reachability_along_steps_is_judged_by_the_model():
    m = mutant("fpu_reset_fpregs", "drop-invalidation", "__fpu_invalidate_fpregs_state")
    assert mutscore.reached_along(Model(m.variant, mutscore.SMALL), []) == []


def judged(kind: str, killed: bool | None = None) -> Judged:
    return Judged("f:1:delete", "f", 1, "delete", Classification(kind),
                  None if killed is None else Hunt(killed))


@pytest.mark.parametrize("results, expected", [
    ([], (0, 0, None)),
    ([judged("equivalent"), judged("unknown"), judged("broken")], (0, 0, None)),
    ([judged("violating", True), judged("violating", False), judged("equivalent")], (1, 2, 0.5)),
    ([judged("violating", True)] * 3 + [judged("broken")], (3, 3, 1.0)),
])
def test_score_is_killed_over_violating(results, expected):
    assert mutscore.score(results) == expected


def test_a_case_found_on_a_mutant_is_n_a_where_another_variants_lock_covers_its_step():
    """Setting TIF_NEED_FPU_LOAD after fpregs_unlock() lets the exec path be switched out where the baseline's lock
    covers that point (the switch-out then saves the pre-exec registers over the reset image). A case with that
    switch is illegal on every other variant: it records n/a for them, and replaying it honours that, instead of the
    fuzzer crashing while building the case (it did, on a case the fuzzer found). The fuzzer kills the mutant."""
    m = mutant("fpu_reset_fpregs", "after-fpregs_unlock", "set_thread_flag(TIF_NEED_FPU_LOAD)")
    assert mutscore.hunt(m, profile="ci").killed
    found = steps("schedule cpu=0 next=u0", "run task=u0 until=done", "user_write task=u0",
                  "syscall task=u0 call=execve", "run task=u0 until='fpu_reset_fpregs: set TIF_NEED_FPU_LOAD'",
                  "schedule cpu=0 next=idle0", "schedule cpu=0 next=u0", "run task=u0 until=done")
    case = casegen.build(found, "user-regs", m.variant, "test")
    assert case.expect[m.variant.name] == "violates user-regs"
    assert case.expect["exec_invalidate_last_cpu"] == "n/a"
    assert replay(case, variant.load("exec_invalidate_last_cpu")).outcome == "n/a"


def test_a_task_left_running_while_stopped_for_its_tracer_is_never_migrated():
    """Without ``schedule()``, ptrace_stop() leaves the tracee running while marked TASK_TRACED. A plan's
    migration of it would have switched it in elsewhere, which the model refuses: the fuzzer raised IllegalStep
    (a tool error, counted as a miss) instead of judging the mutant."""
    found = mutscore.hunt(mutant("ptrace_stop", "delete", "k.schedule()"), profile="ci")
    assert found.error is None and found.killed
