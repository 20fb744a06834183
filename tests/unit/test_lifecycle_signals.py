"""Fork, exit and signals (issue 4, first slice): each new kernel function's effect on the model state, each new
operation's legality, and each new observation point catching a deliberately wrong kernel while the baseline
passes (v6.5-rc7 semantics, reference section 3)."""

from __future__ import annotations


import pytest
from helpers import model_of, patched, run

from fpufuzz import Config, IllegalStep, Model, variant
from fpufuzz.runtime import TIF_NEED_FPU_LOAD, X86_TRAP_PF, UserBuf
from fpufuzz.state import INIT, INIT_PART, KERNEL_PART, Frame, Value

WHOLE = Config(cpus=2, users=2, kthreads=0, lifecycle=True, signals=True)
U0, U1, SPARE = 2, 3, 4  # task slots: idle0, idle1, u0, u1, one spare


def model_with(config=WHOLE, **functions) -> Model:
    return patched(config, **functions)


@pytest.fixture
def whole():
    return Model(variant.load("exec_invalidate_last_cpu"), WHOLE)


@pytest.fixture
def live(whole):
    """u0 in user mode on CPU0 with live registers it wrote."""
    world, findings = run(whole, "schedule cpu=0 next=u0", "run task=u0 until=done", "user_write task=u0")
    assert not findings
    return world


def k_on(model, world, cpu=0):
    return model.kernel(world, cpu, pausable=False)


# ---------------------------------------------------------------- kernel functions


def test_arch_dup_task_struct_copies_flags_last_cpu_and_image(whole, live):
    k = k_on(whole, live)
    k.arch_dup_task_struct(k.task(SPARE), k.current)
    assert k.tasks[SPARE].tif is False and k.fpus[SPARE] == live.fpus[U0]


def test_fpu_clone_user_child_gets_the_parents_registers_and_no_cache(whole, live):
    k = k_on(whole, live)
    k.arch_dup_task_struct(k.task(SPARE), k.current)
    k.fpu_clone(k.task(SPARE), 0, False, 0)
    assert k.fpus[SPARE].fpstate == live.cpus[0].regs and k.fpus[SPARE].last_cpu == -1 and k.tasks[SPARE].tif
    assert k.cpus[0].ctx == live.cpus[0].ctx


def test_fpu_clone_loads_the_parents_registers_first_when_tif_is_set(whole, live):
    k = k_on(whole, live)
    k.set_thread_flag(TIF_NEED_FPU_LOAD)
    k.fpus[U0] = k.fpus[U0]._replace(fpstate=Value(7, 8), last_cpu=-1)
    k.fpu_clone(k.task(SPARE), 0, False, 0)
    assert k.fpus[SPARE].fpstate == Value(7, 8) and not k.tasks[U0].tif and k.cpus[0].owner == U0


def test_fpu_clone_minimal_child_gets_init(whole, live):
    k = k_on(whole, live)
    k.fpu_clone(k.task(SPARE), 0, True, 0)
    assert k.fpus[SPARE].fpstate == INIT and k.tasks[SPARE].tif and k.fpus[SPARE].last_cpu == -1


def test_exit_thread_drops_this_cpus_tag_only(whole, live):
    k = k_on(whole, live)
    k.cpus[1] = k.cpus[1]._replace(owner=U0)
    k.exit_thread(k.current)
    assert k.cpus[0].owner is None and k.cpus[1].owner == U0


def test_fpu_clear_user_states_loads_init_user_part_and_keeps_supervisor(whole, live):
    k = k_on(whole, live)
    sup = live.cpus[0].regs.sup
    k.fpu__clear_user_states(k.current.thread.fpu)
    assert k.cpus[0].regs == Value(INIT_PART, sup) and not k.tasks[U0].tif and k.cpus[0].owner == U0


def test_fpu_clear_user_states_reloads_supervisor_when_not_valid(whole, live):
    k = k_on(whole, live)
    k.cpus[0] = k.cpus[0]._replace(owner=None, regs=Value(5, KERNEL_PART))
    k.fpus[U0] = k.fpus[U0]._replace(fpstate=Value(3, 9))
    k.fpu__clear_user_states(k.current.thread.fpu)
    assert k.cpus[0].regs == Value(INIT_PART, 9)


def test_restore_fpregs_from_init_fpstate(whole, live):
    k = k_on(whole, live)
    k.restore_fpregs_from_init_fpstate(1)
    assert k.cpus[0].regs.user == INIT_PART and k.cpus[0].regs.sup == live.cpus[0].regs.sup


def _with_frame(k, page, value=KERNEL_PART, modifies=False):
    k.frames[U0] = Frame(value, page, modifies)
    return UserBuf(k, U0)


def test_copy_fpstate_to_sigframe_writes_the_live_registers(whole, live):
    k = k_on(whole, live)
    buf = _with_frame(k, "present")
    assert k.copy_fpstate_to_sigframe(buf, buf, 0, 0) is True
    assert k.frames[U0].value == live.cpus[0].regs.user


def test_copy_fpstate_to_sigframe_retries_after_faulting_the_page_in(whole, live):
    k = k_on(whole, live)
    buf = _with_frame(k, "absent")
    assert k.copy_fpstate_to_sigframe(buf, buf, 0, 0) is True
    assert k.frames[U0] == Frame(live.cpus[0].regs.user, "present")


def test_copy_fpstate_to_sigframe_fails_on_a_bad_page(whole, live):
    k = k_on(whole, live)
    buf = _with_frame(k, "bad")
    assert k.copy_fpstate_to_sigframe(buf, buf, 0, 0) is False and k.cpus[0].ctx.softirq == 0


def test_copy_fpregs_to_sigframe_reports_a_fault(whole, live):
    k = k_on(whole, live)
    assert k.copy_fpregs_to_sigframe(_with_frame(k, "absent"), 0) != 0


def test_restore_fpregs_from_user_loads_the_frame(whole, live):
    k = k_on(whole, live)
    assert k.restore_fpregs_from_user(_with_frame(k, "present", 42), 1, False) is True
    assert k.cpus[0].regs.user == 42 and k.cpus[0].owner == U0 and not k.tasks[U0].tif


def test_restore_fpregs_from_user_invalidates_foreign_registers_on_a_fault(whole, live):
    k = k_on(whole, live)
    k.set_thread_flag(TIF_NEED_FPU_LOAD)  # the registers are someone's cached state, not current's
    assert k.__restore_fpregs_from_user(_with_frame(k, "bad", 42, True), 1, 1, False) == X86_TRAP_PF
    assert k.restore_fpregs_from_user(UserBuf(k, U0), 1, False) is False
    assert k.cpus[0].owner is None and k.cpus[0].regs.user == KERNEL_PART


def test_restore_fpregs_from_user_retries_after_fault_in(whole, live):
    k = k_on(whole, live)
    k.set_thread_flag(TIF_NEED_FPU_LOAD)
    k.fpus[U0] = k.fpus[U0]._replace(fpstate=Value(1, 77))
    assert k.restore_fpregs_from_user(_with_frame(k, "absent", 42, True), 1, False) is True
    assert k.cpus[0].regs == Value(42, 77)  # user part from the frame, supervisor part from the image


def test_fpu_restore_sig_ia32_goes_through_the_image(whole, live):
    k = k_on(whole, live)
    buf = _with_frame(k, "present", 42)
    assert k.__fpu_restore_sig(buf, buf, True) is True
    assert k.fpus[U0].fpstate.user == 42 and k.cpus[0].regs.user == 42 and not k.tasks[U0].tif


def test_copy_sigframe_from_user_to_xstate(whole, live):
    k = k_on(whole, live)
    assert k.copy_sigframe_from_user_to_xstate(k.current, _with_frame(k, "absent", 9)) == 0
    assert k.fpus[U0].fpstate.user == 9


@pytest.mark.parametrize("page, ia32, user", [("present", 0, 42), ("bad", 0, INIT_PART), ("bad", 1, INIT_PART)])
def test_fpu_restore_sig_frame_on_success_init_on_failure(whole, live, page, ia32, user):
    k = k_on(whole, live)
    k.fpu__restore_sig(_with_frame(k, page, 42), ia32)
    assert k.cpus[0].regs == Value(user, live.cpus[0].regs.sup) and k.cpus[0].ctx.softirq == 0


def test_fpu_restore_sig_null_frame_resets_to_init(whole, live):
    k = k_on(whole, live)
    assert k.fpu__restore_sig(None, 0) is True and k.cpus[0].regs.user == INIT_PART


# ---------------------------------------------------------------- operations: legality and effect


def test_lifecycle_and_signals_are_machine_options():
    model = Model(variant.load("original"), Config(cpus=1, users=1, kthreads=0))
    world, _ = run(model, "schedule cpu=0 next=u0", "run task=u0 until=done")
    for step in ("fork task=u0 child=u1", "syscall task=u0 call=exit", "signal task=u0 frame=present"):
        with pytest.raises(IllegalStep, match="config"):
            run(model, step, world=world)
    assert not {s.op for s in model.enabled(world)} & {"fork", "signal", "frame_write", "sigreturn"}


def test_fork_needs_user_mode_a_fresh_name_and_a_free_slot(whole, live):
    with pytest.raises(IllegalStep, match="already has that name"):
        run(whole, "fork task=u0 child=u1", world=live)
    with pytest.raises(IllegalStep, match="u<N>"):
        run(whole, "fork task=u0 child=x1", world=live)
    with pytest.raises(IllegalStep, match="not running"):
        run(whole, "fork task=u1 child=u2", world=live)
    world, _ = run(whole, "fork task=u0 child=u2", "run task=u0 until=done", world=live)
    assert world.tasks[SPARE].name == "u2" and world.expect[SPARE] == live.expect[U0]
    with pytest.raises(IllegalStep, match="no free task slot"):
        run(whole, "fork task=u0 child=u3", world=world)


def test_a_forked_child_starts_with_its_parents_registers(whole, live):
    world, findings = run(whole, "fork task=u0 child=u2", "run task=u0 until=done", "user_write task=u0",
                          "schedule cpu=1 next=u2", "run task=u2 until=done", world=live)
    assert not findings and world.cpus[1].regs == live.cpus[0].regs


def test_exit_frees_the_slot_for_reuse_and_the_name_for_nothing(whole, live):
    world, _ = run(whole, "syscall task=u0 call=exit", "run task=u0 until=done", world=live)
    assert world.free == (U0, SPARE) and world.cpus[0].current == 0 and world.cpus[0].owner is None
    with pytest.raises(IllegalStep, match="exited"):
        run(whole, "schedule cpu=0 next=u0", world=world)
    world, _ = run(whole, "schedule cpu=0 next=u1", "run task=u1 until=done", "fork task=u1 child=u2",
                   "run task=u1 until=done", world=world)
    assert world.tasks[U0].name == "u2" and world.tasks[U0].fpu == U0


def test_signal_legality(whole, live):
    with pytest.raises(IllegalStep, match="not running"):
        run(whole, "signal task=u1 frame=present", world=live)
    world, _ = run(whole, "signal task=u0 frame=present", "run task=u0 until=done", world=live)
    with pytest.raises(IllegalStep, match="handler already"):
        run(whole, "signal task=u0 frame=present", world=world)
    with pytest.raises(IllegalStep, match="not in a signal handler"):
        run(whole, "sigreturn task=u0 frame=present", world=live)
    with pytest.raises(IllegalStep, match="no signal frame"):
        run(whole, "frame_write task=u0", world=live)


def test_a_bad_signal_frame_kills_the_task(whole, live):
    world, findings = run(whole, "signal task=u0 frame=bad", "run task=u0 until=done", world=live)
    assert not world.tasks[U0].alive and not findings


def test_signal_delivery_then_sigreturn_round_trip(whole, live):
    world, findings = run(whole, "signal task=u0 frame=present", "run task=u0 until=done", world=live)
    assert not findings and world.frames[U0].value == live.expect[U0].user
    assert world.cpus[0].regs == Value(INIT_PART, live.expect[U0].sup)
    world, findings = run(whole, "frame_write task=u0", "sigreturn task=u0 frame=present",
                          "run task=u0 until=done", world=world)
    assert not findings and world.cpus[0].regs.user == world.fresh and world.expect_frame[U0] is None


# ---------------------------------------------------------------- observation points


def test_sigframe_violation_when_the_frame_is_not_written(live):
    def copy_fpregs_to_sigframe(k, buf, pkru):
        return 0  # claims success, writes nothing

    model = model_with(copy_fpregs_to_sigframe=copy_fpregs_to_sigframe)
    _, findings = run(model, "signal task=u0 frame=present", "run task=u0 until=done", world=live)
    assert [f.name for f in findings if f.kind == "violation"] == ["sigframe"]


def test_user_regs_violation_when_the_handler_does_not_start_from_init(live):
    def handle_signal(k):
        k.setup_rt_frame()

    model = model_with(handle_signal=handle_signal)
    _, findings = run(model, "signal task=u0 frame=present", "run task=u0 until=done", world=live)
    assert [f.name for f in findings if f.kind == "violation"] == ["user-regs"]


def test_non_interference_violation_when_another_tasks_frame_is_written(live):
    def user_sigframe_of_u1(k):
        return k.copy_fpstate_to_sigframe(UserBuf(k, U1), UserBuf(k, U1), 0, 0)

    model = model_with(setup_rt_frame=lambda k: user_sigframe_of_u1(k) and False)
    world = live._replace(frames=tuple(Frame(0, "present") if i == U1 else f for i, f in enumerate(live.frames)))
    _, findings = run(model, "signal task=u0 frame=present", "run task=u0 until=done", world=world)
    assert "non-interference" in [f.name for f in findings if f.kind == "violation"]


def test_user_regs_violation_when_a_failed_sigreturn_keeps_the_registers(live):
    model = Model(variant.load("sigreturn_failure_keeps_regs"), WHOLE)
    world, _ = run(model, "signal task=u0 frame=present", "run task=u0 until=done", "user_write task=u0",
                   world=live)
    _, findings = run(model, "sigreturn task=u0 frame=bad", "run task=u0 until=done", world=world)
    assert [f.name for f in findings if f.kind == "violation"] == ["user-regs"]
    baseline = Model(variant.load("exec_invalidate_last_cpu"), WHOLE)
    _, findings = run(baseline, "sigreturn task=u0 frame=bad", "run task=u0 until=done", world=world)
    assert not [f for f in findings if f.kind == "violation"]


def test_a_parent_resumed_after_its_childs_task_struct_was_reused_replays_its_own_reads():
    """Found by the fuzzer (a model error, not a verdict): u0 forks a worker, which runs and exits before u0 has
    left the kernel; u1's fork gets the freed task_struct for a user child. u0's path, resumed, re-runs from its
    start and must see the worker's flags it read in fpu_clone(), not the new occupant's, or it takes the other
    branch and unbalances fpregs_lock()."""
    model = model_of("exec_invalidate_last_cpu", cpus=2, users=2, kthreads=0, lifecycle=True)
    world, findings = run(model, "schedule cpu=0 next=u0", "run task=u0 until=done",
                          "schedule cpu=1 next=u1", "run task=u1 until=done",
                          "fork task=u0 child=w0", "run task=u0 until='exit_to_user_mode_loop: cond_resched'",
                          "schedule cpu=0 next=w0", "kwork task=w0 work=exit", "run task=w0 until=done",
                          "fork task=u1 child=u2", "run task=u1 until=done",
                          "schedule cpu=0 next=u0", "run task=u0 until=done")
    assert not [f for f in findings if f.kind == "violation"]
    u0 = world.tasks[world.task_index("u0")]
    assert u0.mode == "user" and world.cpus[0].ctx.softirq == 0
