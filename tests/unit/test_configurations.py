"""Kernel configurations and hardware options as machine options (issue 4, item 6): the preemption model decides
where a task inside the kernel can be switched out, the machine can narrow what a faulting XRSTOR does, FNSAVE
CPUs save in two events, and PREEMPT_RT implies full preemption. Each option changes what ``enabled()`` offers or
what the kernel does, and a case asking for something its configuration forbids is refused with one line that
names the field."""

from __future__ import annotations

import types

import pytest
from helpers import model_of, run

from fpufuzz import Config, CorpusFormatError, IllegalStep, Model, variant
from fpufuzz.corpus import parse
from fpufuzz.ops import MIGHT_SLEEP, PREEMPT, SLEEP, Step, point_kind
from fpufuzz.state import INIT_PART

U0 = 1  # task slot of u0 on a one-CPU machine (idle0, u0)
ONE = dict(cpus=1, users=1, kthreads=0)
CLEAN = [v.name for v in variant.load_all() if v.expect == "clean"]


def switch_offered(model, world) -> bool:
    return Step.make("schedule", cpu=0, next="idle0") in model.enabled(world)


def u0_in_user(model):
    world, findings = run(model, "schedule cpu=0 next=u0", "run task=u0 until=done", "user_write task=u0")
    assert not findings
    return world


# ---------------------------------------------------------------- the preemption model

# Where u0 is paused, the kind of point, and whether each preemption model may switch it out there.
PAUSES = {
    # the first event of a syscall that uses kernel FPU: only an interrupt's return to kernel mode could preempt
    "simd entry": (("syscall task=u0 call=simd",), PREEMPT, {"none": False, "voluntary": False, "full": True}),
    # right after kernel_fpu_end()'s preempt_enable(): a preemption point, nothing more
    "preempt_enable": (("syscall task=u0 call=simd", "run task=u0 until='kernel_fpu_end: preempt_enable'"),
                       PREEMPT, {"none": False, "voluntary": False, "full": True}),
    # exec's sched_exec(): stop_one_cpu() waits for the migration: a sleep in every model
    "sched_exec": (("syscall task=u0 call=execve",), SLEEP, {"none": True, "voluntary": True, "full": True}),
    # the exit-to-user loop: schedule() in every model
    "exit loop": (("syscall task=u0 call=getpid",), SLEEP, {"none": True, "voluntary": True, "full": True}),
    # ia32 sigreturn's copy from a present frame: might_fault() only
    "copy present": (("signal task=u0 frame=present", "run task=u0 until=done",
                      "sigreturn task=u0 frame=present abi=ia32",
                      "run task=u0 until='__fpu_restore_sig: copy_from_user: fault in'"),
                     MIGHT_SLEEP, {"none": False, "voluntary": True, "full": True}),
    # ... and from an absent one: the page fault may block
    "copy absent": (("signal task=u0 frame=present", "run task=u0 until=done",
                     "sigreturn task=u0 frame=absent abi=ia32",
                     "run task=u0 until='__fpu_restore_sig: copy_from_user: fault in'"),
                    SLEEP, {"none": True, "voluntary": True, "full": True}),
}


@pytest.mark.parametrize("preempt", ["none", "voluntary", "full"])
@pytest.mark.parametrize("pause", sorted(PAUSES))
def test_the_preemption_model_decides_where_a_kernel_path_can_be_switched_out(pause, preempt):
    texts, kind, switchable = PAUSES[pause]
    model = model_of("exec_invalidate_last_cpu", signals=True, preempt=preempt, **ONE)
    world, _ = run(model, *texts, world=u0_in_user(model))
    assert point_kind(world, U0) == kind
    assert switch_offered(model, world) is switchable[preempt]
    if not switchable[preempt]:
        with pytest.raises(IllegalStep, match=f"with config preempt={preempt} that is not a scheduling point"):
            run(model, "schedule cpu=0 next=idle0", world=world)
    else:
        run(model, "schedule cpu=0 next=idle0", world=world)


@pytest.mark.parametrize("preempt", ["none", "voluntary"])
def test_user_mode_and_rest_are_scheduling_points_in_every_model(preempt):
    model = model_of("exec_invalidate_last_cpu", preempt=preempt, cpus=1, users=1, kthreads=1)
    world = u0_in_user(model)
    assert switch_offered(model, world)  # a timer interrupt from user mode schedules on its way back
    world, _ = run(model, "schedule cpu=0 next=k0", world=world)
    assert Step.make("schedule", cpu=0, next="idle0") in model.enabled(world)  # k0 sleeps at the top of its loop


def test_might_sleep_is_a_scheduling_point_with_voluntary_preemption_only():
    def sys_getpid(k):
        k.might_sleep()

    base = variant.load("exec_invalidate_last_cpu")
    v = variant.derived("might_sleep_getpid", base, {"sys_getpid": sys_getpid}, "getpid calls might_sleep()")
    for preempt, switchable in (("none", False), ("voluntary", True), ("full", True)):
        model = Model(v, Config(preempt=preempt, **ONE))
        world, _ = run(model, "syscall task=u0 call=getpid", world=u0_in_user(model))
        assert world.tasks[U0].cont.label == "sys_getpid: might_sleep"
        assert point_kind(world, U0) == MIGHT_SLEEP and switch_offered(model, world) is switchable


def test_the_seed_bug_needs_no_preemption():
    """exec's migrations happen at its sleeps, so the exec bug shows on a PREEMPT_NONE kernel too (the seed's case
    replays unchanged), and its fix is clean there."""
    from fpufuzz.corpus import load
    from fpufuzz.replay import replay

    case = load("corpus/exec+migrate-back+kthread.case")
    for preempt in ("none", "voluntary"):
        case.config = Config(**{**vars(case.config), "preempt": preempt})
        assert replay(case, variant.load("original")).outcome == "violates user-regs"
        assert replay(case, variant.load("exec_invalidate_last_cpu")).outcome == "clean"


def test_the_fuzzer_waits_for_a_scheduling_point_of_the_preemption_model():
    from fpufuzz.machine import Campaign, machine_for

    model = model_of("exec_invalidate_last_cpu", preempt="none", **ONE)
    machine = machine_for(model, Campaign())()
    machine.apply(Step.make("schedule", cpu=0, next="u0"))
    machine.apply(Step.make("run", task="u0", until="done"))
    machine.apply(Step.make("syscall", task="u0", call="simd"))
    assert not machine._preemptible(U0) and machine.preemptible_cpus == []
    machine.follow("u0", [("switch_out", 0)])  # waits through kernel_fpu_begin/end for the exit loop's schedule()
    assert machine.steps[-2].get("until") == "exit_to_user_mode_loop: cond_resched"
    assert machine.steps[-1] == Step.make("schedule", cpu=0, next="idle0")


# ---------------------------------------------------------------- configuration errors


@pytest.mark.parametrize("config, message", [
    ("preempt=lazy", r"<case>:4: config: preempt must be one of none, voluntary, full, not 'lazy'"),
    ("preempt_rt=yes preempt=none", r"<case>:4: config: preempt_rt=yes with preempt=none: PREEMPT_RT is fully"),
    ("xrstor_fault=sometimes", r"<case>:4: config: xrstor_fault must be one of keeps, modifies, either"),
    ("fnsave=maybe", r"<case>:4: config: fnsave must be yes or no"),
])
def test_a_bad_configuration_is_one_line_naming_the_field(config, message):
    with pytest.raises(CorpusFormatError, match=message) as e:
        parse(f"fpufuzz-case 1\nname: x\nsummary: x\nconfig: cpus=1 users=1 kthreads=0 {config}\n\nsteps:\n"
              "  schedule cpu=0 next=u0\n")
    assert "\n" not in str(e.value)


def test_config_header_round_trips_every_option():
    config = Config(cpus=1, users=1, kthreads=0, preempt="voluntary", xrstor_fault="keeps", fnsave=True)
    assert config.header() == "cpus=1 users=1 kthreads=0 preempt=voluntary xrstor_fault=keeps fnsave=yes"
    case = parse(f"fpufuzz-case 1\nname: x\nsummary: x\nconfig: {config.header()}\n\nsteps:\n"
                 "  schedule cpu=0 next=u0\n")
    assert case.config == config and Config().header() == "cpus=2 users=2 kthreads=1"


# ---------------------------------------------------------------- what a faulting XRSTOR may do

SIGRETURN_CASE = """fpufuzz-case 1
name: x
summary: x
config: cpus=1 users=1 kthreads=0 signals=yes xrstor_fault={fault}

steps:
  schedule cpu=0 next=u0
  run task=u0 until=done
  signal task=u0 frame=present
  run task=u0 until=done
  sigreturn task=u0 frame=absent{xrstor}
"""


@pytest.mark.parametrize("fault, xrstor", [("keeps", " xrstor=modifies"), ("modifies", " xrstor=keeps")])
def test_a_case_asking_for_an_xrstor_its_machine_forbids_is_refused(fault, xrstor):
    with pytest.raises(CorpusFormatError, match=rf"<case>:11: sigreturn: xrstor={xrstor.split('=')[1]} is "
                                                rf"forbidden by config xrstor_fault={fault}") as e:
        parse(SIGRETURN_CASE.format(fault=fault, xrstor=xrstor))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("fault, offered, default", [
    ("either", {None, "modifies"}, False), ("keeps", {None}, False), ("modifies", {"modifies"}, True)])
def test_xrstor_fault_narrows_the_sigreturns_offered(fault, offered, default):
    model = model_of("exec_invalidate_last_cpu", signals=True, xrstor_fault=fault, **ONE)
    world, _ = run(model, "schedule cpu=0 next=u0", "run task=u0 until=done", "signal task=u0 frame=present",
                   "run task=u0 until=done")
    for page in ("absent", "bad"):
        steps = [s for s in model.enabled(world) if s.op == "sigreturn" and s.get("frame") == page
                 and s.get("abi") is None]
        assert {s.get("xrstor") for s in steps} == offered
    if fault != "either":
        forbidden = "modifies" if fault == "keeps" else "keeps"
        with pytest.raises(IllegalStep, match=f"forbidden by config xrstor_fault={fault}"):
            run(model, f"sigreturn task=u0 frame=bad xrstor={forbidden}", world=world)
    world, _ = run(model, "sigreturn task=u0 frame=absent", world=world)  # xrstor= left out: the machine's default
    assert world.frames[U0].xrstor_modifies is default


# ---------------------------------------------------------------- FNSAVE


def test_fnsave_reinitialises_the_registers_until_frstor_reloads_them():
    model = model_of("exec_invalidate_last_cpu", fnsave=True, **ONE)
    world, _ = run(model, "syscall task=u0 call=simd", "run task=u0 until='save_fpregs_to_fpstate: frstor'",
                   world=u0_in_user(model))
    mine = world.expect[U0]
    assert world.cpus[0].regs.user == INIT_PART and world.fpus[U0].fpstate == mine  # the window
    world, _ = run(model, "run task=u0", world=world)
    assert world.cpus[0].regs == mine  # FRSTOR: as after an XSAVE


def test_without_fnsave_the_save_is_one_event():
    model = model_of("exec_invalidate_last_cpu", **ONE)
    world = u0_in_user(model)
    with pytest.raises(IllegalStep):
        run(model, "syscall task=u0 call=simd", "run task=u0 until='save_fpregs_to_fpstate: frstor'", world=world)


@pytest.mark.parametrize("name", CLEAN)
def test_the_fnsave_window_is_reachable_and_harmless_for_correct_variants(name):
    """An interrupt in the window between FNSAVE and FRSTOR (kernel_fpu_begin() runs with interrupts on) finds
    the FPU taken and leaves it alone; fork's save, under fpregs_lock(), likewise. Every correct variant returns
    the program its own registers."""
    model = model_of(name, fnsave=True, lifecycle=True, **ONE)
    world, findings = run(model, "syscall task=u0 call=simd", "run task=u0 until='save_fpregs_to_fpstate: frstor'",
                          "irq cpu=0 work=simd", "run task=u0 until=done",
                          "user_write task=u0", "fork task=u0 child=u1",
                          "run task=u0 until='save_fpregs_to_fpstate: frstor'", "irq cpu=0 work=simd",
                          "run task=u0 until=done", "schedule cpu=0 next=u1", "run task=u1 until=done",
                          world=u0_in_user(model))
    assert not [f for f in findings if f.kind == "violation" or f.name == "warn"], findings
    assert world.cpus[0].regs == world.expect[world.task_index("u1")] == world.expect[U0]


# ---------------------------------------------------------------- the 2025 switch_fpu()


def test_switch_fpu_sets_tif_on_the_task_switched_out():
    """730faa15a069: the outgoing task with live registers gets TIF set (and its registers saved, last_cpu
    recorded); the incoming one is left alone. In v6.5-rc7 it is the other way round."""
    for name, out_tif in (("switch_fpu_single", True), ("exec_invalidate_last_cpu", False)):
        model = model_of(name, cpus=1, users=2, kthreads=0)
        world = u0_in_user(model)
        world, _ = run(model, "schedule cpu=0 next=u1", world=world)
        assert world.tasks[U0].tif is out_tif and world.fpus[U0].last_cpu == 0
        assert world.fpus[U0].fpstate == world.expect[U0] and world.cpus[0].owner == world.tasks[U0].fpu


def test_switch_fpu_is_declared_new_and_called_from_switch_to():
    v = variant.load("switch_fpu_single")
    assert set(v.added) == {"switch_fpu"} and set(v.overrides) == {"__switch_to"}
    assert v.base == "exec_invalidate_last_cpu" and v.expect == "clean"
    assert isinstance(v.added["switch_fpu"], types.FunctionType)


def test_a_found_case_keeps_the_kernel_options_of_its_machine():
    """A counterexample found on a PREEMPT_NONE machine is a case on a PREEMPT_NONE machine: casegen sizes the
    machine to the steps but keeps its kernel options."""
    from fpufuzz.casegen import build
    from fpufuzz.corpus import load

    machine = Config(cpus=2, users=2, kthreads=1, preempt="none", fnsave=True)
    case = build(load("corpus/exec+migrate-back+kthread.case").steps, "user-regs", variant.load("original"), "test",
                 machine)
    assert (case.config.preempt, case.config.fnsave, case.config.preempt_rt) == ("none", True, False)
    assert case.expect["original"] == "violates user-regs"
