"""Kernel FPU in every context (issue 4, item 4): softirqs served on interrupt exit and at local_bh_enable(), the
preemption count as the kernel keeps it, kernel-FPU section data and its violation, the context-stack diagnostic,
the 2025 upstream shape (d02198550423) and the irq_fpu_usable() of before 59f5ede3bc0f. v6.5-rc7 semantics,
reference sections 2-3."""

from __future__ import annotations


import pytest
from helpers import patched, run

from fpufuzz import Config, FpufuzzError, IllegalStep, Model, casegen, reach, variant
from fpufuzz.corpus import CorpusFormatError, parse_config
from fpufuzz.ops import Step
from fpufuzz.runtime import HARDIRQ_OFFSET, NET_RX_SOFTIRQ, SOFTIRQ_DISABLE_OFFSET, SOFTIRQ_OFFSET, PtRegs
from fpufuzz.state import KDATA_PARTS, KERNEL_PART

SOFT = Config(cpus=1, users=1, kthreads=0, softirq=True)
U0 = 1  # task slots: idle0, u0


def model(name="exec_invalidate_last_cpu", config=SOFT) -> Model:
    return Model(variant.load(name), config)


def model_with(config=SOFT, **functions) -> Model:
    return patched(config, **functions)


def live(m: Model):
    """u0 in user mode on CPU0 with live registers it wrote."""
    world, findings = run(m, "schedule cpu=0 next=u0", "run task=u0 until=done", "user_write task=u0")
    assert not findings
    return world


def k_on(m, world):
    return m.kernel(world, 0, pausable=False)


def violations(findings):
    return [f.name for f in findings if f.kind == "violation"]


def until(m: Model, world, label: str):
    """Run u0 to ``label`` (its first occurrence)."""
    return run(m, f"run task=u0 until='{label}'", world=world)[0]


# ---------------------------------------------------------------- the preemption count and softirq primitives


def test_softirq_count_counts_serving_and_bh_disable_as_the_kernel_does():
    k = k_on(model(), live(model()))
    assert k.softirq_count() == 0 and not k.in_interrupt()
    k.local_bh_disable()
    assert k.softirq_count() == SOFTIRQ_DISABLE_OFFSET and k.in_interrupt() and not k.in_serving_softirq()
    k.__local_bh_disable_ip(0, SOFTIRQ_OFFSET)
    assert k.softirq_count() == SOFTIRQ_DISABLE_OFFSET + SOFTIRQ_OFFSET and k.in_serving_softirq()
    k.__local_bh_enable(SOFTIRQ_OFFSET)
    assert k.softirq_count() == SOFTIRQ_DISABLE_OFFSET


def test_raise_softirq_irqoff_marks_the_vector_pending():
    k = k_on(model(), live(model()))
    k.raise_softirq_irqoff(NET_RX_SOFTIRQ)
    assert k.local_softirq_pending() == 1 << NET_RX_SOFTIRQ and k.cpus[0].ctx.pending
    k.set_softirq_pending(0)
    assert not k.local_softirq_pending()


def test_irq_regs_say_whether_the_interrupt_came_from_user_mode():
    k = k_on(model(), live(model()))
    assert k.get_irq_regs() is None
    old = k.set_irq_regs(PtRegs(True))
    assert old is None and k.user_mode(k.get_irq_regs())
    k.set_irq_regs(old)
    assert k.get_irq_regs() is None


def test_irqs_disabled_and_irq_save_restore():
    k = k_on(model(), live(model()))
    assert not k.irqs_disabled()
    flags = k.local_irq_save()
    assert k.irqs_disabled() and flags is False
    k.local_irq_restore(flags)
    assert not k.irqs_disabled()


# ---------------------------------------------------------------- kernel/softirq.c


def test_irq_exit_serves_a_pending_softirq_whatever_the_preempt_count():
    m = model()
    k = k_on(m, live(m))
    k.preempt_disable()  # a task-context preempt-only section, say
    k.enter_hardirq()
    k.raise_softirq_irqoff(NET_RX_SOFTIRQ)
    k.irq_exit_rcu()
    ctx = k.cpus[0].ctx
    assert not ctx.pending and ctx.hardirq == 0 and ctx.serving == 0
    assert k.tasks[U0].tif and k.cpus[0].regs.user == KERNEL_PART  # the softirq used the FPU, saving u0's first


def test_irq_exit_leaves_the_softirq_pending_when_bottom_halves_are_off():
    m = model()
    k = k_on(m, live(m))
    k.local_bh_disable()
    k.enter_hardirq()
    k.raise_softirq_irqoff(NET_RX_SOFTIRQ)
    k.irq_exit_rcu()
    assert k.cpus[0].ctx.pending and not k.tasks[U0].tif
    k.local_bh_enable()  # served here, in task context
    assert not k.cpus[0].ctx.pending and k.tasks[U0].tif and k.cpus[0].ctx.preempt == 0


def test_do_softirq_does_nothing_in_interrupt_context():
    m = model()
    k = k_on(m, live(m))
    k.or_softirq_pending(1 << NET_RX_SOFTIRQ)
    k.local_bh_disable()
    k.do_softirq()
    assert k.cpus[0].ctx.pending
    k.local_bh_enable()
    assert not k.cpus[0].ctx.pending and not k.irqs_disabled()


def test_do_softirq_serves_with_softirq_offset_and_interrupts_on():
    seen = {}

    def softirq_work(k):
        seen.update(serving=k.in_serving_softirq(), hardirq=k.in_hardirq(), irqs_off=k.irqs_disabled(),
                    count=k.softirq_count())

    m = model_with(softirq_work=softirq_work)
    k = k_on(m, live(m))
    k.or_softirq_pending(1 << NET_RX_SOFTIRQ)
    k.do_softirq()
    assert seen == dict(serving=True, hardirq=False, irqs_off=False, count=SOFTIRQ_OFFSET)
    assert k.cpus[0].ctx.serving == 0 and not k.irqs_disabled() and not k.warnings


def test_preempt_count_sub_takes_the_hardirq_offset_only():
    k = k_on(model(), live(model()))
    k.enter_hardirq()
    k.preempt_count_sub(HARDIRQ_OFFSET)
    assert not k.in_hardirq()
    with pytest.raises(Exception, match="offset"):
        k.preempt_count_sub(1)


# ---------------------------------------------------------------- operations


def test_irq_work_softirq_is_a_machine_option():
    core = Model(variant.load("original"), Config(cpus=1, users=1, kthreads=0))
    world = live(core)
    with pytest.raises(IllegalStep, match="softirq=yes"):
        run(core, "irq cpu=0 work=softirq", world=world)
    assert Step.make("irq", cpu=0, work="softirq") not in core.enabled(world)
    assert Step.make("irq", cpu=0, work="softirq") in model().enabled(live(model()))


def test_a_softirq_from_user_mode_saves_and_the_exit_restores():
    m = model()
    world, findings = run(m, "irq cpu=0 work=softirq", "run task=u0 until=done", world=live(m))
    assert not findings and world.cpus[0].regs == live(m).expect[U0]


def test_a_softirq_inside_a_tasks_kernel_fpu_section_is_refused():
    m = model()
    world = until(m, run(m, "syscall task=u0 call=simd", world=live(m))[0], "simd_work: simd result")
    assert world.cpus[0].regs.user == KDATA_PARTS["task"]
    trace = []
    result = m.apply(world, Step.make("irq", cpu=0, work="softirq"), trace)
    assert not result.findings and result.world.cpus[0].regs == world.cpus[0].regs  # the section's data is intact
    assert "softirq-refused-in-kernel-fpu" in reach.reached(world, Step.make("irq", cpu=0, work="softirq"),
                                                            result.world, trace)
    world, findings = run(m, "run task=u0 until=done", world=result.world)
    assert not findings


def test_the_2025_shape_defers_the_softirq_to_kernel_fpu_end():
    m = model("kernel_fpu_bh_disable")
    world = until(m, run(m, "syscall task=u0 call=simd", world=live(m))[0], "simd_work: simd result")
    assert world.cpus[0].ctx.softirq == 1  # fpregs_lock() held through the section
    world, findings = run(m, "irq cpu=0 work=softirq", world=world)
    assert world.cpus[0].ctx.pending and world.cpus[0].regs.user == KDATA_PARTS["task"]
    trace = []
    result = m.apply(world, Step.make("run", task="u0", until="done"), trace)
    assert not result.findings and not result.world.cpus[0].ctx.pending
    assert "softirq-at-bh-enable" in reach.reached(world, Step.make("run", task="u0", until="done"), result.world,
                                                   trace)


def test_a_softirq_raised_in_a_fpregs_lock_section_runs_at_fpregs_unlock():
    m = model(config=Config(cpus=1, users=1, kthreads=0, softirq=True, signals=True))
    world = until(m, run(m, "signal task=u0 frame=present", world=live(m))[0],
                  "copy_fpregs_to_sigframe: xsave to user")
    world, _ = run(m, "irq cpu=0 work=softirq", world=world)
    assert world.cpus[0].ctx.pending
    world, findings = run(m, "run task=u0 until=done", world=world)
    assert not findings and not world.cpus[0].ctx.pending


def test_a_hard_interrupt_may_arrive_inside_a_fpregs_lock_section():
    m = model()
    world = until(m, run(m, "syscall task=u0 call=execve", world=live(m))[0],
                  "fpu_reset_fpregs: set TIF_NEED_FPU_LOAD")
    assert world.cpus[0].ctx.softirq == 1
    assert {s.get("work") for s in m.enabled(world) if s.op == "irq"} == {"simd", "softirq"}


# ---------------------------------------------------------------- the oracle: section data and contexts


def nested_use_allowed(k):
    """A broken irq_fpu_usable(): always yes, even inside another kernel-FPU section."""
    return True


def test_a_nested_use_corrupts_the_sections_data_and_is_a_violation():
    m = model_with(irq_fpu_usable=nested_use_allowed)
    world = until(m, run(m, "syscall task=u0 call=simd", world=live(m))[0], "simd_work: simd result")
    world, findings = run(m, "irq cpu=0 work=simd", world=world)
    assert "kernel-fpu-context" in [f.name for f in findings] and not violations(findings)
    _, findings = run(m, "run task=u0 until=done", world=world)
    assert violations(findings) == ["kernel-fpu-data"]
    _, clean = run(model(), "syscall task=u0 call=simd", "run task=u0 until='simd_work: simd result'",
                   "irq cpu=0 work=simd", "run task=u0 until=done", world=live(model()))
    assert not clean


def test_section_data_is_dead_after_the_result():
    m = model()
    k = k_on(m, live(m))
    k.kernel_fpu_begin()
    k.kernel_fpu_use()
    assert k.cpus[0].regs.user == KERNEL_PART and not k.findings


def test_without_the_option_a_section_is_one_event_and_carries_no_data():
    core = Model(variant.load("exec_invalidate_last_cpu"), Config(cpus=1, users=1, kthreads=0))
    world = run(core, "syscall task=u0 call=simd", world=live(core))[0]
    labels = []
    while world.tasks[U0].cont is not None:
        labels.append(world.tasks[U0].cont.label)
        world = run(core, "run task=u0", world=world)[0]
    assert "simd_work: simd" in labels and "simd_work: simd result" not in labels


def test_context_diagnostic_for_a_hard_interrupt_inside_fpregs_lock():
    m = model("irq_fpu_usable_in_fpregs_lock")
    world = until(m, run(m, "syscall task=u0 call=execve", world=live(m))[0],
                  "fpu_reset_fpregs: set TIF_NEED_FPU_LOAD")
    world, findings = run(m, "irq cpu=0 work=simd", world=world)
    assert [f.name for f in findings] == ["kernel-fpu-context"] and "fpregs_lock" in findings[0].message
    _, findings = run(m, "run task=u0 until=done", world=world)
    assert violations(findings) == ["user-regs"]  # the new program starts with the old one's registers
    _, fixed = run(model(), "syscall task=u0 call=execve", "run task=u0 until='fpu_reset_fpregs: set "
                   "TIF_NEED_FPU_LOAD'", "irq cpu=0 work=simd", "run task=u0 until=done", world=live(model()))
    assert not fixed


# ---------------------------------------------------------------- the variants' functions


def test_2025_kernel_fpu_begin_takes_fpregs_lock_only_with_interrupts_on():
    m = model("kernel_fpu_bh_disable")
    k = k_on(m, live(m))
    k.kernel_fpu_begin()
    assert k.cpus[0].ctx.softirq == 1 and k.cpus[0].ctx.preempt == 0
    k.kernel_fpu_end()
    assert k.cpus[0].ctx.softirq == 0
    k.enter_hardirq()
    k.kernel_fpu_begin()
    assert k.cpus[0].ctx.softirq == 0
    k.kernel_fpu_end()
    assert not k.warnings


def test_2025_irq_fpu_usable_warns_on_a_nested_use_outside_hard_interrupts():
    m = model("kernel_fpu_bh_disable")
    k = k_on(m, live(m))
    k.kernel_fpu_begin()
    assert not k.irq_fpu_usable() and k.warnings == [("irq_fpu_usable", "WARN_ON_FPU")]
    k.enter_hardirq()
    k.warnings.clear()
    assert not k.irq_fpu_usable() and not k.warnings


def test_pre_2022_irq_fpu_usable_allows_a_hard_interrupt_inside_fpregs_lock():
    m = model("irq_fpu_usable_in_fpregs_lock")
    k = k_on(m, live(m))
    assert k.irq_fpu_usable()  # task context
    k.local_bh_disable()
    k.enter_hardirq()
    assert k.irq_fpu_usable()  # the bug: the fix says no (softirq_count() != 0)
    k.this_cpu_write("in_kernel_fpu", True)
    assert not k.irq_fpu_usable()
    fixed = k_on(model(), live(model()))
    fixed.local_bh_disable()
    fixed.enter_hardirq()
    assert not fixed.irq_fpu_usable()


def test_pre_2022_interrupted_user_mode():
    m = model("irq_fpu_usable_in_fpregs_lock")
    k = k_on(m, live(m))
    k.enter_hardirq()
    k.this_cpu_write("in_kernel_fpu", True)
    assert not k.interrupted_user_mode() and not k.irq_fpu_usable()
    k.set_irq_regs(PtRegs(True))
    assert k.interrupted_user_mode() and k.irq_fpu_usable()


# ---------------------------------------------------------------- configuration, cases


def test_config_softirq_header_and_errors():
    assert Config(softirq=True).header().endswith("softirq=yes")
    assert parse_config("cpus=1 users=1 kthreads=0 softirq=yes", "x.case:3").softirq
    with pytest.raises(CorpusFormatError, match="x.case:3: config: softirq must be yes or no"):
        parse_config("cpus=1 softirq=maybe", "x.case:3")
    with pytest.raises(FpufuzzError, match="PREEMPT_RT"):
        Config(softirq=True, preempt_rt=True)


def test_casegen_keeps_softirqs_when_the_steps_need_them():
    steps = [Step.make("schedule", cpu=0, next="u0"), Step.make("irq", cpu=0, work="softirq")]
    assert casegen.canonical(steps)[1].softirq
    steps = [Step.make("run", task="u0", until="simd_work: simd result")]
    assert casegen.canonical(steps)[1].softirq
    assert not casegen.canonical([Step.make("irq", cpu=0, work="simd")])[1].softirq


def test_context_diagnostic_without_the_option_too():
    core = Model(variant.load("irq_fpu_usable_in_fpregs_lock"), Config(cpus=1, users=1, kthreads=0))
    world = until(core, run(core, "syscall task=u0 call=execve", world=live(core))[0],
                  "fpu_reset_fpregs: set TIF_NEED_FPU_LOAD")
    _, findings = run(core, "irq cpu=0 work=simd", world=world)
    assert [f.name for f in findings] == ["kernel-fpu-context"]
