"""Each baseline kernel function's effect on the model state (v6.5-rc7 semantics, reference section 3)."""

from __future__ import annotations

from helpers import model_of

from fpufuzz.runtime import KFPU_MXCSR, TIF_NEED_FPU_LOAD, XFEATURE_MASK_FPSTATE, XFEATURE_MASK_USER
from fpufuzz.state import INIT, KERNEL_PART, Value

U0 = 2  # task index: idle0, idle1, u0, u1, k0


def kernel_on(model, world, cpu=0):
    return model.kernel(world, cpu, pausable=False)


def fpu(world, task=U0):
    return world.fpus[world.tasks[task].fpu]


def test_fpregs_state_valid_needs_both_owner_and_last_cpu(baseline, u0_in_user):
    k = kernel_on(baseline, u0_in_user)
    me = k.current.thread.fpu
    assert k.fpregs_state_valid(me, 0)
    assert not k.fpregs_state_valid(me, 1)
    k.__cpu_invalidate_fpregs_state()
    assert not k.fpregs_state_valid(me, 0)


def test_fpu_invalidate_clears_last_cpu_only(baseline, u0_in_user):
    k = kernel_on(baseline, u0_in_user)
    k.__fpu_invalidate_fpregs_state(k.current.thread.fpu)
    assert k.fpus[2].last_cpu == -1 and k.cpus[0].owner == 2


def test_activate_and_deactivate_set_the_owner_tag(baseline, u0_in_user):
    k = kernel_on(baseline, u0_in_user)
    other = k.task(3).thread.fpu
    k.fpregs_deactivate(other)  # unconditional: clears the tag although u0 owns it
    assert k.cpus[0].owner is None
    k.fpregs_activate(other)
    assert k.cpus[0].owner == 3


def test_fpregs_mark_activate(baseline, u0_in_user):
    k = kernel_on(baseline, u0_in_user)
    k.set_thread_flag(TIF_NEED_FPU_LOAD)
    k.__cpu_invalidate_fpregs_state()
    k.fpregs_mark_activate()
    assert (k.cpus[0].owner, k.fpus[2].last_cpu, k.tasks[U0].tif) == (2, 0, False)


def test_fpregs_restore_userregs_skips_when_valid(baseline, u0_in_user):
    k = kernel_on(baseline, u0_in_user)
    k.fpus[2] = k.fpus[2]._replace(fpstate=INIT)  # memory differs: a skip keeps the registers
    k.set_thread_flag(TIF_NEED_FPU_LOAD)
    k.fpregs_restore_userregs()
    assert k.cpus[0].regs == u0_in_user.cpus[0].regs and not k.tasks[U0].tif


def test_fpregs_restore_userregs_restores_when_invalid(baseline, u0_in_user):
    k = kernel_on(baseline, u0_in_user)
    k.fpus[2] = k.fpus[2]._replace(fpstate=INIT, last_cpu=-1)
    k.fpregs_restore_userregs()
    assert k.cpus[0].regs == INIT and k.fpus[2].last_cpu == 0 and k.cpus[0].owner == 2


def test_fpregs_restore_userregs_warns_for_kthreads(baseline):
    world = baseline.initial()
    k = kernel_on(baseline, world)  # idle0 is current
    k.set_thread_flag(TIF_NEED_FPU_LOAD)
    k.fpregs_restore_userregs()
    assert k.warnings == [("fpregs_restore_userregs", "WARN_ON_ONCE")] and k.tasks[0].tif


def test_switch_fpu_prepare_saves_and_keeps_owner(baseline, u0_in_user):
    k = kernel_on(baseline, u0_in_user)
    k.fpus[2] = k.fpus[2]._replace(fpstate=INIT, last_cpu=-1)
    k.switch_fpu_prepare(k.current.thread.fpu, 0)
    assert k.fpus[2] == fpu(u0_in_user)._replace(fpstate=u0_in_user.cpus[0].regs, last_cpu=0)
    assert k.cpus[0].owner == 2


def test_switch_fpu_prepare_does_nothing_for_kthreads(baseline):
    world = baseline.initial()
    k = kernel_on(baseline, world)
    k.switch_fpu_prepare(k.current.thread.fpu, 0)
    assert k.fpus == list(world.fpus)


def test_switch_fpu_finish_sets_tif_on_current(baseline, u0_in_user):
    k = kernel_on(baseline, u0_in_user)
    k.switch_fpu_finish()
    assert k.tasks[U0].tif


def test_switch_to_tests_tif_of_prev_and_flags_next(baseline, u0_in_user):
    k = kernel_on(baseline, u0_in_user)
    k.__switch_to(k.task(U0), k.task(4))
    assert k.cpus[0].current == 4 and k.tasks[4].tif and not k.tasks[U0].tif
    assert k.fpus[2].fpstate == u0_in_user.cpus[0].regs and k.fpus[2].last_cpu == 0


def test_switch_to_skips_save_when_prev_tif_set(baseline, u0_in_user):
    k = kernel_on(baseline, u0_in_user)
    k.set_thread_flag(TIF_NEED_FPU_LOAD)
    k.fpus[2] = k.fpus[2]._replace(fpstate=INIT, last_cpu=1)
    k.__switch_to(k.task(U0), k.task(4))
    assert k.fpus[2] == fpu(u0_in_user)._replace(fpstate=INIT, last_cpu=1)


def test_save_and_restore_fpregs(baseline, u0_in_user):
    k = kernel_on(baseline, u0_in_user)
    me = k.current.thread.fpu
    k.save_fpregs_to_fpstate(me)
    assert k.fpus[2].fpstate == k.cpus[0].regs
    k.fpus[2] = k.fpus[2]._replace(fpstate=Value(7, 8))
    k.restore_fpregs_from_fpstate(me.fpstate, XFEATURE_MASK_USER)
    assert k.cpus[0].regs == Value(7, u0_in_user.cpus[0].regs.sup)
    k.restore_fpregs_from_fpstate(me.fpstate, XFEATURE_MASK_FPSTATE)
    assert k.cpus[0].regs == Value(7, 8) and k.cpus[0].owner == 2 and k.fpus[2].last_cpu == 0


def test_kernel_fpu_begin_saves_user_state_and_invalidates_cpu(baseline, u0_in_user):
    k = kernel_on(baseline, u0_in_user)
    live = k.cpus[0].regs
    k.kernel_fpu_begin_mask(KFPU_MXCSR)
    assert k.tasks[U0].tif and k.fpus[2].fpstate == live
    assert k.cpus[0].owner is None and k.cpus[0].in_kernel_fpu and k.cpus[0].ctx.preempt == 1
    assert k.cpus[0].regs == Value(KERNEL_PART, live.sup)
    k.kernel_fpu_end()
    assert not k.cpus[0].in_kernel_fpu and k.cpus[0].ctx.preempt == 0 and not k.warnings


def test_kernel_fpu_begin_nested_warns(baseline, u0_in_user):
    k = kernel_on(baseline, u0_in_user)
    k.kernel_fpu_begin()
    k.kernel_fpu_begin()
    assert [w for w, _ in k.warnings] == ["kernel_fpu_begin_mask", "kernel_fpu_begin_mask"]


def test_kernel_fpu_end_without_begin_warns(baseline, u0_in_user):
    k = kernel_on(baseline, u0_in_user)
    k.preempt_disable()
    k.kernel_fpu_end()
    assert k.warnings == [("kernel_fpu_end", "WARN_ON_FPU")]


def test_irq_fpu_usable_by_context(baseline, u0_in_user):
    k = kernel_on(baseline, u0_in_user)
    assert k.irq_fpu_usable()
    k.enter_hardirq()
    assert k.irq_fpu_usable()
    k.cpus[0] = k.cpus[0]._replace(ctx=k.cpus[0].ctx._replace(softirq=1))
    assert not k.irq_fpu_usable()  # the interrupt hit a fpregs_lock()'ed region
    k.cpus[0] = k.cpus[0]._replace(ctx=k.cpus[0].ctx._replace(softirq=0), in_kernel_fpu=True)
    assert not k.irq_fpu_usable()  # it interrupted a kernel-FPU section


def test_fpregs_lock_is_bh_disable_or_preempt_disable_on_rt(baseline, u0_in_user):
    k = kernel_on(baseline, u0_in_user)
    k.fpregs_lock()
    assert k.cpus[0].ctx.softirq == 1 and k.cpus[0].ctx.preempt == 0
    k.fpregs_unlock()
    assert k.cpus[0].ctx.softirq == 0
    rt = model_of(preempt_rt=True)
    k = kernel_on(rt, u0_in_user)
    k.fpregs_lock()
    assert k.cpus[0].ctx.preempt == 1 and k.cpus[0].ctx.softirq == 0


def test_fpu_drop_clears_only_this_cpus_owner(baseline, u0_in_user):
    k = kernel_on(baseline, u0_in_user)
    k.cpus[1] = k.cpus[1]._replace(owner=2)
    k.fpu__drop(k.current.thread.fpu)
    assert k.cpus[0].owner is None and k.cpus[1].owner == 2 and k.fpus[2].last_cpu == 0
    assert k.cpus[0].ctx.preempt == 0


def test_fpu_drop_of_another_fpu_does_nothing(baseline, u0_in_user):
    k = kernel_on(baseline, u0_in_user)
    k.fpu__drop(k.task(3).thread.fpu)
    assert k.cpus[0].owner == 2


def test_fpu_reset_fpregs_baseline_resets_memory_and_drops(baseline, u0_in_user):
    k = kernel_on(baseline, u0_in_user)
    k.fpu_reset_fpregs()
    assert k.fpus[2].fpstate == INIT and k.tasks[U0].tif
    assert k.cpus[0].owner is None and k.fpus[2].last_cpu == 0  # the v6.5-rc7 bug's precondition
    assert k.cpus[0].regs == u0_in_user.cpus[0].regs  # registers untouched
    assert k.cpus[0].ctx == u0_in_user.cpus[0].ctx


def test_fpu_flush_thread_is_fpstate_reset_then_reset_fpregs(baseline, u0_in_user):
    k = kernel_on(baseline, u0_in_user)
    k.fpu_flush_thread()
    assert k.fpus[2].fpstate == INIT and k.tasks[U0].tif and k.cpus[0].owner is None


def test_switch_fpu_return_restores_on_exit(baseline, u0_in_user):
    k = kernel_on(baseline, u0_in_user)
    k.fpus[2] = k.fpus[2]._replace(fpstate=INIT, last_cpu=-1)
    k.set_thread_flag(TIF_NEED_FPU_LOAD)
    k.switch_fpu_return()
    assert k.cpus[0].regs == INIT and not k.tasks[U0].tif


def test_fpregs_assert_state_consistent_warns_only_with_tif_clear(baseline, u0_in_user):
    k = kernel_on(baseline, u0_in_user)
    k.fpregs_assert_state_consistent()
    assert not k.warnings
    k.__cpu_invalidate_fpregs_state()
    k.fpregs_assert_state_consistent()
    assert k.warnings == [("fpregs_assert_state_consistent", "WARN_ON_FPU")]
    k.set_thread_flag(TIF_NEED_FPU_LOAD)
    k.fpregs_assert_state_consistent()
    assert len(k.warnings) == 1
