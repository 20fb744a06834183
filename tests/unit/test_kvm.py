"""KVM (issue 4, item 5; reference section 3 "KVM", operation 14, invariant I11): the guest buffer that
``fpu_swap_kvm_fpstate()`` attaches to ``fpu->fpstate``, each new kernel function's effect on the model state,
the generic paths saving into and loading from whichever buffer is attached, the new operations' legality, and
the observation points catching a deliberately wrong kernel while the baseline passes (v6.5-rc7 semantics)."""

from __future__ import annotations


import pytest
from helpers import patched, run, steps

from fpufuzz import Config, IllegalStep, Model, canon, reach, variant
from fpufuzz.corpus import CorpusFormatError, parse_config
from fpufuzz.explore import explore
from fpufuzz.ops import Step
from fpufuzz.runtime import TIF_NEED_FPU_LOAD
from fpufuzz.state import GUEST_MODE, INIT, KERNEL_PART, USER_MODE, Value

KVM = Config(cpus=2, users=2, kthreads=0, kvm=True)
U0, U1 = 2, 3  # task slots: idle0, idle1, u0, u1, one spare
IN_GUEST = ("syscall task=u0 call=kvm_create_vcpu", "run task=u0 until=done", "syscall task=u0 call=kvm_run",
            "run task=u0 until=done")


def model_with(config=KVM, **functions) -> Model:
    return patched(config, **functions)


@pytest.fixture
def fixed():
    return Model(variant.load("exec_invalidate_last_cpu"), KVM)


@pytest.fixture
def live(fixed):
    """u0 in user mode on CPU0 with live registers it wrote, and a vCPU (guest buffer INIT)."""
    world, findings = run(fixed, "schedule cpu=0 next=u0", "run task=u0 until=done", "user_write task=u0",
                          "syscall task=u0 call=kvm_create_vcpu", "run task=u0 until=done")
    assert not findings and world.fpus[U0].guest == INIT
    return world


@pytest.fixture
def guest(fixed, live):
    """u0's guest running on CPU0 after it wrote its registers once."""
    world, findings = run(fixed, "syscall task=u0 call=kvm_run", "run task=u0 until=done", "guest_write task=u0",
                          world=live)
    assert not findings and world.tasks[U0].mode == GUEST_MODE
    return world


def k_on(model, world, cpu=0):
    return model.kernel(world, cpu, pausable=False)


def violations(findings):
    return [f.name for f in findings if f.kind == "violation"]


# ---------------------------------------------------------------- kernel functions


def test_fpu_alloc_guest_fpstate_gives_an_init_buffer(fixed):
    world, _ = run(fixed, "schedule cpu=0 next=u0", "run task=u0 until=done")
    k = k_on(fixed, world)
    assert k.fpus[U0].guest is None
    k.fpu_alloc_guest_fpstate(k.filp_vcpu().arch.guest_fpu)
    assert k.fpus[U0].guest == INIT and not k.fpus[U0].in_guest


def test_swap_into_the_guest_saves_the_live_registers_into_the_tasks_buffer(fixed, live):
    k = k_on(fixed, live)
    k.fpus[U0] = k.fpus[U0]._replace(guest=Value(7, 8))
    k.fpu_swap_kvm_fpstate(k.filp_vcpu().arch.guest_fpu, True)
    assert k.fpus[U0].fpstate == live.cpus[0].regs  # the host's registers, saved
    assert k.fpus[U0].in_guest and k.cpus[0].regs == Value(7, 8)  # the guest's, loaded
    assert k.cpus[0].owner == U0 and k.fpus[U0].last_cpu == 0 and not k.tasks[U0].tif  # and marked live
    assert k.cpus[0].ctx == live.cpus[0].ctx


def test_swap_into_the_guest_with_tif_set_saves_nothing(fixed, live):
    k = k_on(fixed, live)
    k.set_thread_flag(TIF_NEED_FPU_LOAD)
    k.cpus[0] = k.cpus[0]._replace(regs=Value(KERNEL_PART, KERNEL_PART))
    k.fpu_swap_kvm_fpstate(k.filp_vcpu().arch.guest_fpu, True)
    assert k.fpus[U0].fpstate == live.fpus[U0].fpstate and k.cpus[0].regs == INIT and not k.tasks[U0].tif


def test_swap_out_of_the_guest_saves_the_guests_registers_and_loads_the_tasks(fixed, guest):
    k = k_on(fixed, guest)
    k.fpu_swap_kvm_fpstate(k.filp_vcpu().arch.guest_fpu, False)
    assert k.fpus[U0].guest == guest.cpus[0].regs and not k.fpus[U0].in_guest
    assert k.cpus[0].regs == guest.fpus[U0].fpstate == guest.expect[U0]


def test_generic_paths_use_the_attached_buffer(fixed, guest):
    """Context switch save, kernel_fpu_begin() and the restore on the way back all go through fpu->fpstate."""
    k = k_on(fixed, guest)
    k.kernel_fpu_begin()
    assert k.fpus[U0].guest == guest.cpus[0].regs and k.fpus[U0].fpstate == guest.fpus[U0].fpstate
    k.kernel_fpu_end()
    k.fpregs_restore_userregs()
    assert k.cpus[0].regs == guest.cpus[0].regs
    k.cpus[0] = k.cpus[0]._replace(regs=Value(9, 0))
    k.save_fpregs_to_fpstate(k.current.thread.fpu)
    assert k.fpus[U0].guest == Value(9, 0) and k.fpus[U0].fpstate == guest.fpus[U0].fpstate


def test_reading_the_fpstate_pointer_is_an_event_only_with_kvm(fixed, live):
    k = k_on(fixed, live)
    assert k.current.thread.fpu.fpstate.guest is False and len(k.log) == 1
    plain = Model(variant.load("exec_invalidate_last_cpu"), Config(cpus=2, users=2, kthreads=0))
    world, _ = run(plain, "schedule cpu=0 next=u0", "run task=u0 until=done")
    k = k_on(plain, world)
    k.current.thread.fpu.fpstate
    assert k.log == []


def test_the_kvm_run_path_pauses_in_guest_mode_and_resumes_at_the_vm_exit(fixed, guest):
    assert guest.tasks[U0].cont.label == "vmx_vcpu_run: guest mode" and guest.cpus[0].ctx.irqs_off
    world, _ = run(fixed, "vmexit task=u0 exit=kernel", world=guest)
    assert world.tasks[U0].mode != GUEST_MODE and world.tasks[U0].cont.label == "vcpu_enter_guest: local_irq_enable"
    world, findings = run(fixed, "run task=u0 until=done", world=world)  # the loop enters the guest again
    assert world.tasks[U0].mode == GUEST_MODE and not findings
    world, findings = run(fixed, "vmexit task=u0 exit=user", "run task=u0 until=done", world=world)
    assert world.tasks[U0].mode == USER_MODE and not violations(findings)
    assert world.cpus[0].regs == live_expect(world) and world.fpus[U0].guest == guest.expect_guest[U0]


def live_expect(world):
    return world.expect[U0]


# ---------------------------------------------------------------- operations: legality and effect


def test_kvm_is_a_machine_option(live):
    model = Model(variant.load("original"), Config(cpus=1, users=1, kthreads=0))
    world, _ = run(model, "schedule cpu=0 next=u0", "run task=u0 until=done")
    with pytest.raises(IllegalStep, match="kvm=yes"):
        run(model, "syscall task=u0 call=kvm_create_vcpu", world=world)
    assert not {s.get("call") for s in model.enabled(world)} & {"kvm_create_vcpu", "kvm_run"}
    assert "kvm=yes" in KVM.header() and parse_config(KVM.header(), "f") == KVM


def test_bad_kvm_config_value_is_one_line():
    with pytest.raises(CorpusFormatError, match="f:3: config: kvm must be yes or no"):
        parse_config("cpus=1 users=1 kthreads=0 kvm=maybe", "f:3")


def test_a_vcpu_is_created_once_per_program_and_run_only_when_created(fixed, live):
    with pytest.raises(IllegalStep, match="already"):
        run(fixed, "syscall task=u0 call=kvm_create_vcpu", world=live)
    world, _ = run(fixed, "schedule cpu=1 next=u1", "run task=u1 until=done", world=live)
    with pytest.raises(IllegalStep, match="no vCPU"):
        run(fixed, "syscall task=u1 call=kvm_run", world=world)
    calls = {s.get("call") for s in fixed.enabled(world) if s.get("task") == "u1"}
    assert "kvm_create_vcpu" in calls and "kvm_run" not in calls


def test_exec_and_fork_leave_the_new_program_without_a_vcpu():
    model = Model(variant.load("exec_invalidate_last_cpu"), Config(cpus=1, users=1, kthreads=0, lifecycle=True,
                                                                      kvm=True))
    world, _ = run(model, "schedule cpu=0 next=u0", "run task=u0 until=done", *IN_GUEST[:2],
                   "fork task=u0 child=u1", "run task=u0 until=done")
    assert world.expect_guest[U0 - 1] == INIT and world.expect_guest[U0] is None  # one CPU: u0 is slot 1
    world, _ = run(model, "syscall task=u0 call=execve", "run task=u0 until=done", world=world)
    assert world.expect_guest[U0 - 1] is None


def test_guest_steps_are_legal_in_guest_mode_only(fixed, live, guest):
    for step in ("guest_write task=u0", "vmexit task=u0 exit=user"):
        with pytest.raises(IllegalStep, match="not running guest code"):
            run(fixed, step, world=live)
    with pytest.raises(IllegalStep, match="vmexit"):
        run(fixed, "run task=u0", world=guest)
    with pytest.raises(IllegalStep, match="exit="):
        fixed.apply(guest, Step("vmexit", (("task", "u0"), ("exit", "mmio"))))
    with pytest.raises(CorpusFormatError, match="exit='mmio' is not one of kernel, user"):
        run(fixed, "vmexit task=u0 exit=mmio", world=guest)
    steps = {str(s) for s in fixed.enabled(guest)}
    assert {"guest_write task=u0", "vmexit task=u0 exit=kernel", "vmexit task=u0 exit=user"} <= steps
    assert not any(s.startswith(("irq cpu=0", "schedule cpu=0", "run task=u0")) for s in steps)


def test_a_guest_write_changes_the_guests_state_not_the_programs(fixed, live, guest):
    assert guest.expect[U0] == live.expect[U0]
    assert guest.expect_guest[U0] == guest.cpus[0].regs == Value(guest.fresh, INIT.sup)


def test_run_until_a_label_past_the_guest_entry_does_not_apply(fixed, live):
    world, _ = run(fixed, "syscall task=u0 call=kvm_run", world=live)
    with pytest.raises(IllegalStep, match="entered its guest"):
        run(fixed, "run task=u0 until='kvm_put_guest_fpu: nowhere'", world=world)


# ---------------------------------------------------------------- observation points


def test_guest_regs_violation_when_the_guest_state_is_not_saved_on_exit(live):
    model = Model(variant.load("kvm_swap_no_save_on_exit"), KVM)
    world, findings = run(model, "syscall task=u0 call=kvm_run", "run task=u0 until=done", "guest_write task=u0",
                          "vmexit task=u0 exit=user", "run task=u0 until=done", world=live)
    assert not violations(findings)
    _, findings = run(model, "syscall task=u0 call=kvm_run", "run task=u0 until=done", world=world)
    assert violations(findings) == ["guest-regs"]


def test_user_regs_violation_when_kvm_run_returns_with_the_guests_registers(live):
    model = model_with(kvm_put_guest_fpu=lambda k, vcpu: None)
    _, findings = run(model, "syscall task=u0 call=kvm_run", "run task=u0 until=done", "guest_write task=u0",
                      "vmexit task=u0 exit=user", "run task=u0 until=done", world=live)
    assert violations(findings) == ["user-regs"]


@pytest.mark.parametrize("reload, expected", [(False, ["guest-regs"]), (True, [])])
def test_guest_regs_violation_when_the_entry_skips_the_reload(live, reload, expected):
    """vcpu_enter_guest() must reload the guest's registers after an interrupt's kernel FPU use clobbered them."""
    model = model_with(vcpu_enter_guest=_enter_with_reload if reload else _enter_without_reload)
    world, findings = run(model, "syscall task=u0 call=kvm_run", "run task=u0 until=done", "guest_write task=u0",
                          "vmexit task=u0 exit=kernel", "irq cpu=0 work=simd", world=live)
    assert not findings and world.fpus[U0].guest == world.expect_guest[U0]  # saved into the attached buffer
    _, findings = run(model, "run task=u0 until=done", world=world)
    assert violations(findings) == expected


def _enter_without_reload(k, vcpu):
    k.preempt_disable()
    k.local_irq_disable()
    r = k.vmx_vcpu_run(vcpu)
    k.local_irq_enable()
    k.preempt_enable()
    return r


def _enter_with_reload(k, vcpu):
    k.preempt_disable()
    k.local_irq_disable()
    if k.test_thread_flag(TIF_NEED_FPU_LOAD):
        k.switch_fpu_return()
    r = k.vmx_vcpu_run(vcpu)
    k.local_irq_enable()
    k.preempt_enable()
    return r


def test_non_interference_covers_a_task_in_guest_mode(guest):
    from fpufuzz import oracle

    cpus = list(guest.cpus)
    cpus[0] = cpus[0]._replace(regs=Value(99, 0))
    after = guest._replace(cpus=tuple(cpus))
    assert [f.name for f in oracle.non_interference(guest, after, set())] == ["non-interference"]


# ---------------------------------------------------------------- reachability, canonical forms, explorer


def _reached(model, world, *texts):
    found = set()
    for text in texts:
        trace: list = []
        step = steps(text)[0]
        result = model.apply(world, step, trace)
        found |= reach.reached(world, step, result.world, trace)
        world = result.world
    return found


def test_each_kvm_reachability_property_has_a_scenario(fixed, guest):
    found = _reached(fixed, guest, "vmexit task=u0 exit=kernel", "irq cpu=0 work=simd", "run task=u0",
                     "schedule cpu=0 next=idle0", "schedule cpu=1 next=u0", "run task=u0 until=done",
                     "vmexit task=u0 exit=user", "run task=u0 until=done")
    assert {"vcpu-preempted", "vcpu-migrated", "irq-kernel-fpu-in-vcpu", "guest-reloaded",
            "kvm-run-returned"} <= found
    assert {p for p in found if p in reach.SOMETIMES} == found


def test_canonical_form_includes_the_guest_buffer_and_the_pointer(fixed, guest):
    k = k_on(fixed, guest)
    k.fpus[U0] = k.fpus[U0]._replace(in_guest=False)
    assert canon.key(k.world(guest)) != canon.key(guest)
    k.fpus[U0] = k.fpus[U0]._replace(in_guest=True, guest=Value(77, 0))
    assert canon.key(k.world(guest)) != canon.key(guest)


def test_the_explorer_finds_the_kvm_bug_and_the_fix_is_clean_to_the_same_depth():
    machine = Config(cpus=1, users=1, kthreads=0, kvm=True)
    ops = ("syscall:kvm_create_vcpu", "syscall:kvm_run", "run", "schedule", "user_write", "guest_write", "vmexit")
    found = explore(Model(variant.load("kvm_swap_no_save_on_exit"), machine, ops))
    assert found.outcome == "violates guest-regs" and len(found.steps) <= 11
    assert Step.make("vmexit", task="u0", exit="user") in found.steps
    fix = explore(Model(variant.load("exec_invalidate_last_cpu"), machine, ops), max_depth=len(found.steps))
    assert fix.outcome == "clean" and fix.depth == len(found.steps)


def test_the_explorer_completes_the_kvm_machine():
    """KVM_RUN's loop enters the guest once per pass for as long as the machine lets it; its paused path forgets
    the finished passes (``Kernel.iterations``), so the machine has finitely many states and a clean verdict is
    complete. Before, every pass lengthened the path's log: 1 CPU x 1 user task had no end (380,000 states cut at
    depth 26)."""
    fix = explore(Model(variant.load("exec_invalidate_last_cpu"), Config(cpus=1, users=1, kthreads=0, kvm=True)))
    assert fix.outcome == "clean" and fix.complete
    assert fix.depth > 12  # well past one KVM_RUN with a guest exit handled in the kernel and re-entered
