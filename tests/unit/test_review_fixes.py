"""Regressions found in review: PREEMPT_RT interrupts, interrupts-off legality, unbalanced contexts, pauses that
a variant's ``except Exception`` must not swallow."""

from __future__ import annotations


import pytest
from helpers import model_of, patched, run

from fpufuzz import Config, IllegalStep, Model


def model_with(config=Config(), **functions) -> Model:
    return patched(config, **functions)


def test_no_false_alarm_on_preempt_rt_exec():
    """On RT, fpregs_lock() is preempt_disable(); a hard interrupt's kernel FPU (a threaded handler there) must not
    run inside fpu_reset_fpregs(), or it would save the old program's registers over the INIT image."""
    model = model_of("exec_invalidate_last_cpu", preempt_rt=True)
    world, _ = run(model, "schedule cpu=0 next=u0", "run task=u0 until=done", "user_write task=u0",
                   "syscall task=u0 call=execve", "run task=u0 until='fpu_reset_fpregs: set TIF_NEED_FPU_LOAD'")
    with pytest.raises(IllegalStep, match="PREEMPT_RT"):
        run(model, "irq cpu=0 work=simd", world=world)
    assert all(s.op != "irq" or s.get("cpu") != 0 for s in model.enabled(world))
    world, findings = run(model, "run task=u0 until=done", world=world)
    assert not [f for f in findings if f.kind == "violation"]


def test_a_path_that_leaves_bottom_halves_off_is_reported():
    def fpu_reset_fpregs(k):
        k.fpregs_lock()
        k.current.thread.fpu.fpstate.regs = k.init_fpstate.regs

    model = model_with(fpu_reset_fpregs=fpu_reset_fpregs)
    _, findings = run(model, "schedule cpu=0 next=u0", "run task=u0 until=done", "syscall task=u0 call=execve",
                      "run task=u0 until=done")
    assert any(f.name == "context-balanced" for f in findings)


def test_a_variant_catching_exceptions_cannot_swallow_a_pause():
    def fpu_reset_fpregs(k):
        try:
            k.fpregs_lock()
            k.__fpu_invalidate_fpregs_state(k.current.thread.fpu)
            k.fpregs_unlock()
        except Exception:  # a careless variant
            pass

    model = model_with(fpu_reset_fpregs=fpu_reset_fpregs)
    world, _ = run(model, "schedule cpu=0 next=u0", "run task=u0 until=done", "syscall task=u0 call=execve",
                   "run task=u0")
    assert world.tasks[2].cont.label == "__fpu_invalidate_fpregs_state: write fpu->last_cpu"
