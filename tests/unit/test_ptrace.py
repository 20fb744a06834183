"""ptrace and core dumps (issue 4, item 3): each new kernel function's effect on the model state, the stop as a real
sleep, each new operation's legality, and each new observation point catching a deliberately wrong kernel while
the baseline passes (v6.5-rc7 semantics, reference sections 3 and 5, I10)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import patched, run

from fpufuzz import Config, IllegalStep, Model, corpus, reach, variant
from fpufuzz.errors import CorpusFormatError
from fpufuzz.ops import LabelNotReached, Step
from fpufuzz.replay import replay
from fpufuzz.runtime import REGSET_FP, TASK_TRACED, TIF_NEED_FPU_LOAD, Pause
from fpufuzz.state import KERNEL_PART, STOP_NONE, STOP_TRACED, Value

PTRACE = Config(cpus=2, users=2, kthreads=0, ptrace=True)
U0, U1 = 2, 3  # task slots: idle0, idle1, u0, u1
CASE = Path(__file__).resolve().parents[2] / "corpus" / "ptrace+set-cached-elsewhere+coredump.case"


def model_with(config=PTRACE, **functions) -> Model:
    return patched(config, **functions)


@pytest.fixture
def fixed():
    return Model(variant.load("exec_invalidate_last_cpu"), PTRACE)


@pytest.fixture
def live(fixed):
    """u0 in user mode on CPU0, u1 in user mode on CPU1 with live registers it wrote."""
    world, findings = run(fixed, "schedule cpu=0 next=u0", "run task=u0 until=done", "schedule cpu=1 next=u1",
                          "run task=u1 until=done", "user_write task=u1")
    assert not findings
    return world


@pytest.fixture
def stopped(fixed, live):
    """u1 stopped for its tracer on CPU1, its registers still cached there."""
    world, findings = run(fixed, "stop task=u1", "run task=u1 until=done", world=live)
    assert not findings
    return world


def k_on(model, world, cpu=0):
    return model.kernel(world, cpu, pausable=False)


# ---------------------------------------------------------------- kernel functions


def test_fpu_sync_fpstate_saves_live_registers_and_keeps_them(fixed, live):
    k = k_on(fixed, live, 1)
    assert k.fpus[U1].fpstate != live.cpus[1].regs  # the image is stale while the registers are live
    k.fpu_sync_fpstate(k.current.thread.fpu)
    assert k.fpus[U1].fpstate == k.cpus[1].regs == live.cpus[1].regs and k.cpus[1].owner == U1
    assert k.cpus[1].ctx.softirq == 0 and not k.warnings


def test_fpu_sync_fpstate_leaves_an_authoritative_image_alone(fixed, live):
    k = k_on(fixed, live, 1)
    k.set_thread_flag(TIF_NEED_FPU_LOAD)
    k.cpus[1] = k.cpus[1]._replace(regs=Value(KERNEL_PART, KERNEL_PART))
    k.fpu_sync_fpstate(k.current.thread.fpu)
    assert k.fpus[U1].fpstate == live.fpus[U1].fpstate


def test_sync_fpstate_syncs_only_the_current_task(fixed, live):
    k = k_on(fixed, live, 1)
    k.sync_fpstate(k.task(U0).thread.fpu)
    assert k.fpus[U1].fpstate == live.fpus[U1].fpstate and k.fpus[U0] == live.fpus[U0]
    k.sync_fpstate(k.current.thread.fpu)
    assert k.fpus[U1].fpstate == live.cpus[1].regs


def test_fpu_force_restore_invalidates_last_cpu_across_cpus(fixed, stopped):
    k = k_on(fixed, stopped, 0)  # the tracer's CPU; the tracee's registers are cached on CPU1
    k.fpu_force_restore(k.task(U1).thread.fpu)
    assert k.fpus[U1].last_cpu == -1 and k.cpus[1].owner == U1 and not k.warnings


def test_fpu_force_restore_warns_on_the_current_task(fixed, live):
    k = k_on(fixed, live, 1)
    k.fpu_force_restore(k.current.thread.fpu)
    assert k.warnings == [("fpu_force_restore", "WARN_ON_FPU")]


def test_xfpregs_get_hands_out_the_image(fixed, stopped):
    k = k_on(fixed, stopped, 0)
    assert k.xfpregs_get(k.task(U1), REGSET_FP, k.membuf_for(k.current, k.task(U1))) == 0
    assert k.readouts == [(U0, U1, stopped.fpus[U1].fpstate)]


def test_xfpregs_get_of_the_current_task_syncs_first(fixed, live):
    k = k_on(fixed, live, 1)
    k.xfpregs_get(k.current, REGSET_FP, k.membuf_for(k.current, k.current))
    assert k.readouts == [(U1, U1, live.cpus[1].regs)]


def test_xfpregs_set_writes_the_user_part_after_invalidating(fixed, stopped):
    k = k_on(fixed, stopped, 0)
    old = stopped.fpus[U1].fpstate
    assert k.xfpregs_set(k.task(U1), REGSET_FP, 0, 512, None, Value(42, 0)) == 0
    assert k.fpus[U1].fpstate == Value(42, old.sup) and k.fpus[U1].last_cpu == -1


def test_ptrace_stop_sleeps_after_the_ordinary_switch_out(fixed, live):
    """v6.5-rc7: the tracee leaves TIF clear, its image saved, and CPU1's owner tag and its last_cpu naming it."""
    k = fixed.kernel(live, 1)
    with pytest.raises(Pause) as pause:
        k.ptrace_stop(0, 0, 0, None)
    assert pause.value.label == "ptrace_stop: schedule"
    assert k.tasks[U1].stop == STOP_TRACED and k.cpus[1].current == 1  # switched to idle1
    assert not k.tasks[U1].tif and k.fpus[U1][:2] == (1, live.cpus[1].regs) and k.cpus[1].owner == U1


def test_ptrace_resume_wakes_a_stopped_task_only(fixed, stopped, live):
    k = k_on(fixed, stopped, 0)
    assert k.ptrace_resume(k.task(U1), 7, 0) == 0 and k.tasks[U1].stop == STOP_NONE
    assert k.wake_up_state(k.task(U1), TASK_TRACED) is False  # already running: nothing to wake


# ---------------------------------------------------------------- operations: legality and effect


def test_ptrace_is_a_machine_option(live):
    model = Model(variant.load("original"), Config(cpus=2, users=2, kthreads=0))
    for step in ("stop task=u1", "syscall task=u1 call=abort", "ptrace task=u0 target=u1 req=cont"):
        with pytest.raises(IllegalStep, match="ptrace=yes"):
            run(model, step, world=live)
    assert not {s.op for s in model.enabled(live)} & {"stop", "ptrace"}
    assert not any(s.get("call") == "abort" for s in model.enabled(live))


def test_a_stop_needs_user_mode_and_a_tracer(fixed, live):
    alone = Model(fixed.variant, Config(cpus=1, users=1, kthreads=0, ptrace=True))
    world, _ = run(alone, "schedule cpu=0 next=u0", "run task=u0 until=done")
    with pytest.raises(IllegalStep, match="no tracer"):
        run(alone, "stop task=u0", world=world)
    world, _ = run(fixed, "stop task=u1", world=live)
    with pytest.raises(IllegalStep, match="not in user mode"):
        run(fixed, "stop task=u1", world=world)


def test_a_stopped_task_sleeps_until_cont(fixed, stopped):
    assert stopped.tasks[U1].stop == STOP_TRACED and stopped.running_on(U1) is None
    with pytest.raises(IllegalStep, match="TASK_TRACED"):
        run(fixed, "schedule cpu=1 next=u1", world=stopped)
    with pytest.raises(IllegalStep, match="not running"):
        run(fixed, "run task=u1", world=stopped)
    assert not any(s.get("next") == "u1" for s in fixed.enabled(stopped))
    with pytest.raises(IllegalStep, match="no tracer"):
        run(fixed, "stop task=u0", world=stopped)  # its only tracer is stopped itself
    world, _ = run(fixed, "ptrace task=u0 target=u1 req=cont", "run task=u0 until=done", "schedule cpu=1 next=u1",
                   "run task=u1 until=done", world=stopped)
    assert world.tasks[U1].mode == "user" and world.cpus[1].regs == stopped.fpus[U1].fpstate


def test_a_run_ends_where_the_task_sleeps(fixed, live):
    world, _ = run(fixed, "stop task=u1", world=live)
    with pytest.raises(LabelNotReached, match="went to sleep"):
        run(fixed, "run task=u1 until='syscall_exit_to_user_mode: return to user mode'", world=world)
    world, _ = run(fixed, "run task=u1 until='ptrace_stop: schedule'", world=world)
    assert world.tasks[U1].cont.label == "ptrace_stop: schedule"


def test_ptrace_requests_need_a_stopped_target_and_one_at_a_time(fixed, live, stopped):
    with pytest.raises(IllegalStep, match="not stopped"):
        run(fixed, "ptrace task=u0 target=u1 req=getfpregs", world=live)
    with pytest.raises(IllegalStep, match="cannot trace itself"):
        run(fixed, "ptrace task=u0 target=u0 req=getfpregs", world=live)
    with pytest.raises(IllegalStep, match="req='peek'"):
        fixed.apply(stopped, Step.make("ptrace", task="u0", target="u1", req="peek"))
    busy, _ = run(fixed, "ptrace task=u0 target=u1 req=setfpregs", world=stopped)
    assert busy.expect[U1] == Value(busy.fresh, stopped.expect[U1].sup)  # I10: the ghost is what was written
    assert not any(s.op == "ptrace" for s in fixed.enabled(busy))


def test_a_tracer_write_reaches_the_tracee(fixed, stopped):
    world, findings = run(fixed, "ptrace task=u0 target=u1 req=setfpregs", "run task=u0 until=done",
                          "ptrace task=u0 target=u1 req=getfpregs", "run task=u0 until=done",
                          "ptrace task=u0 target=u1 req=cont", "run task=u0 until=done",
                          "schedule cpu=1 next=u1", "run task=u1 until=done", world=stopped)
    assert not [f for f in findings if f.kind == "violation"]
    assert world.cpus[1].regs == world.expect[U1] and world.expect[U1].user == stopped.fresh + 1


def test_abort_dumps_core_and_exits(fixed, live):
    world, findings = run(fixed, "syscall task=u1 call=abort", "run task=u1 until=done", world=live)
    assert not findings and not world.tasks[U1].alive and world.cpus[1].owner is None


# ---------------------------------------------------------------- observation points


def test_regset_violation_when_a_core_dump_does_not_sync(live):
    model = model_with(sync_fpstate=lambda k, fpu: None)  # forgets the current task's live registers
    _, findings = run(model, "syscall task=u1 call=abort", "run task=u1 until=done", world=live)
    assert [f.name for f in findings if f.kind == "violation"] == ["regset"]
    assert "core dump" in findings[0].message


def test_regset_violation_when_a_tracer_reads_the_wrong_task(stopped):
    def copy_regset_to_user(k, target, view, setno, offset, size, data):
        return k.xfpregs_get(k.current, setno, k.membuf_for(k.current, target))  # the tracer's own image

    model = model_with(copy_regset_to_user=copy_regset_to_user)
    _, findings = run(model, "ptrace task=u0 target=u1 req=getfpregs", "run task=u0 until=done", world=stopped)
    assert [f.name for f in findings if f.kind == "violation"] == ["regset"]
    assert "through ptrace" in findings[0].message


def test_user_regs_violation_when_the_write_is_not_forced_across_cpus(stopped):
    model = Model(variant.load("force_restore_cpu_invalidate"), PTRACE)
    steps = ("ptrace task=u0 target=u1 req=setfpregs", "run task=u0 until=done", "ptrace task=u0 target=u1 req=cont",
             "run task=u0 until=done", "schedule cpu=1 next=u1", "run task=u1 until=done")
    _, findings = run(model, *steps, world=stopped)
    assert [f.name for f in findings if f.kind == "violation"] == ["user-regs"]
    _, findings = run(model, *steps[:4], "schedule cpu=0 next=u1", "run task=u1 until=done", world=stopped)
    assert not [f for f in findings if f.kind == "violation"]  # on the tracer's CPU the per-CPU form is enough


# ---------------------------------------------------------------- the case, reachability and bad input


def test_the_case_reaches_every_ptrace_property():
    records = replay(corpus.load(CASE), variant.load("exec_invalidate_last_cpu")).records
    found = set().union(*(reach.reached(r.before, r.step, r.after, r.trace) for r in records))
    assert {"ptrace-read", "ptrace-write-tif-clear", "ptrace-write-cached-elsewhere", "ptrace-resumed",
            "coredump-live-regs"} <= found


def test_bad_ptrace_input_is_one_line():
    with pytest.raises(CorpusFormatError, match=r"x:3: req='peek' is not one of getfpregs, setfpregs, cont"):
        corpus.parse_step("ptrace task=u0 target=u1 req=peek", "x:3")
    with pytest.raises(CorpusFormatError, match="ptrace needs target="):
        corpus.parse_step("ptrace task=u0 req=cont", "x:4")
    text = CASE.read_text().replace("ptrace=yes", "ptrace=maybe")
    with pytest.raises(CorpusFormatError, match="config: ptrace must be yes or no"):
        corpus.parse(text)
