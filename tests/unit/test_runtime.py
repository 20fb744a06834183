"""The runtime's pause/resume design: events, interleaving points from the context, replay of paused paths."""

from __future__ import annotations


import pytest
from helpers import model_of, patched, run

from fpufuzz import Config, IllegalStep, Model, variant


def model_with(**functions) -> Model:
    return patched(Config(), **functions)


def test_a_path_pauses_only_where_the_context_allows(baseline):
    world, _ = run(baseline, "schedule cpu=0 next=u0", "run task=u0 until=done", "syscall task=u0 call=execve")
    labels = []
    u0 = world.task_index("u0")
    while world.tasks[u0].cont is not None:
        world, _ = run(baseline, "run task=u0", world=world)
        labels.append(world.tasks[u0].cont.label if world.tasks[u0].cont else "user")
    assert labels[0] == "fpregs_deactivate: write fpu_fpregs_owner_ctx"  # inside fpregs_lock: irqs only
    assert "setup_new_exec: cond_resched" in labels and labels[-1] == "user"
    # no point inside the irqs-off exit work
    assert not any(label.startswith(("arch_exit", "fpregs_restore_userregs", "switch_fpu_return")) for label in labels)


def test_no_preemption_inside_fpregs_lock(baseline):
    world, _ = run(baseline, "schedule cpu=0 next=u0", "run task=u0 until=done", "syscall task=u0 call=execve",
                   'run task=u0 until="fpregs_deactivate: write fpu_fpregs_owner_ctx"')
    assert world.cpus[0].ctx.softirq == 1
    with pytest.raises(IllegalStep, match="preemption is off"):
        run(baseline, "schedule cpu=0 next=k0", world=world)
    world, _ = run(baseline, "irq cpu=0 work=simd", world=world)  # a hard interrupt may arrive
    assert world.cpus[0].ctx.softirq == 1


def test_resume_does_not_reapply_recorded_events(baseline):
    world, _ = run(baseline, "schedule cpu=0 next=u0", "run task=u0 until=done", "syscall task=u0 call=execve",
                   'run task=u0 until="fpu_reset_fpregs: write fpstate->regs"')
    ctx = world.cpus[0].ctx
    assert (ctx.softirq, ctx.preempt) == (1, 0)  # fpu__drop's preempt_disable/enable balanced, the bh count once
    world, _ = run(baseline, "run task=u0 until=done", world=world)
    assert world.cpus[0].ctx == ctx._replace(softirq=0)


def _stale_cpu_exec(k):
    """A deliberately wrong exec: reads the CPU number, sleeps, and uses the number afterwards."""
    cpu = k.smp_processor_id()
    k.cond_resched()
    k.current.thread.fpu.last_cpu = cpu


def test_locals_read_before_a_pause_keep_their_value_after_migration():
    model = model_with(sys_execve=_stale_cpu_exec)
    world, _ = run(model, "schedule cpu=0 next=u0", "run task=u0 until=done", "syscall task=u0 call=execve",
                   'run task=u0 until="_stale_cpu_exec: cond_resched"', "schedule cpu=0 next=k0",
                   "schedule cpu=1 next=u0", 'run task=u0 until="exit_to_user_mode_loop: cond_resched"')
    u0 = world.tasks[world.task_index("u0")]
    assert u0.cpu == 1 and world.fpus[u0.fpu].last_cpu == 0  # the value read on CPU0, as in the kernel


def test_paused_states_are_plain_hashable_data(baseline):
    texts = ["schedule cpu=0 next=u0", "run task=u0 until=done", "syscall task=u0 call=execve", "run task=u0"]
    a, _ = run(baseline, *texts)
    b, _ = run(baseline, *texts)
    assert a == b and hash(a) == hash(b) and a.tasks[2].cont.log


def test_double_underscore_names_survive_in_module_functions():
    def fpu_reset_fpregs(k):
        k.__fpu_invalidate_fpregs_state(k.current.thread.fpu)

    model = model_with(fpu_reset_fpregs=fpu_reset_fpregs)
    world, _ = run(model, "schedule cpu=0 next=u0", "run task=u0 until=done", "syscall task=u0 call=execve",
                   'run task=u0 until="setup_new_exec: cond_resched"')
    assert world.fpus[world.tasks[2].fpu].last_cpu == -1


def test_a_path_that_skips_the_exit_code_cannot_reach_user_mode():
    from fpufuzz.errors import ModelError

    model = model_with(syscall_exit_to_user_mode=lambda k: None)
    with pytest.raises(ModelError, match="without returning to user mode"):
        run(model, "schedule cpu=0 next=u0", "run task=u0 until=done")


def test_until_a_label_the_path_lacks_is_not_applicable(baseline):
    from fpufuzz.ops import LabelNotReached

    with pytest.raises(LabelNotReached):
        run(baseline, "schedule cpu=0 next=u0", 'run task=u0 until="nowhere: cond_resched"')


def test_kernel_fpu_from_a_hard_interrupt_in_user_mode_goes_through_the_exit_path(baseline, u0_in_user):
    world, findings = run(baseline, "irq cpu=0 work=simd", world=u0_in_user)
    u0 = world.tasks[2]
    assert u0.mode == "kernel" and u0.tif and world.cpus[0].owner is None
    world, findings = run(baseline, "run task=u0 until=done", world=world)
    assert not findings and world.cpus[0].regs == u0_in_user.cpus[0].regs


def test_schedule_legality(baseline):
    with pytest.raises(IllegalStep, match="idle task"):
        run(baseline, "schedule cpu=1 next=u0", "schedule cpu=0 next=idle1")
    with pytest.raises(IllegalStep, match="already running"):
        run(baseline, "schedule cpu=0 next=u0", "schedule cpu=1 next=u0")
    with pytest.raises(IllegalStep, match="no CPU"):
        run(baseline, "schedule cpu=5 next=u0")


def test_enabled_steps_are_all_legal():
    model = model_of("original")
    world = model.initial()
    for _ in range(30):
        options = model.enabled(world)
        assert options
        for step in options:
            model.apply(world, step)  # must not raise
        world = model.apply(world, options[len(options) // 2]).world


def test_a_path_that_never_ends_is_a_model_error_not_a_hang(baseline, monkeypatch):
    """A patch (or a mutant) that deletes a loop's exit would spin forever inside one step; past MAX_PATH_EVENTS
    events the path is reported as an endless loop (in the kernel, a soft lockup)."""
    from fpufuzz import runtime
    from fpufuzz.errors import ModelError

    def fpu_flush_thread(k):
        while True:
            k.fpregs_lock()
            k.fpregs_unlock()

    monkeypatch.setattr(runtime, "MAX_PATH_EVENTS", 300)
    model = model_with(fpu_flush_thread=fpu_flush_thread)
    world, _ = run(model, "schedule cpu=0 next=u0", "run task=u0 until=done", "syscall task=u0 call=execve")
    with pytest.raises(ModelError, match="endless loop"):
        run(model, "run task=u0 until=done", world=world)
    run(baseline, "schedule cpu=0 next=u0", "run task=u0 until=done", "syscall task=u0 call=execve",
        "run task=u0 until=done")  # the baseline's exec stays far below the bound


# ---------------------------------------------------------------- loops whose passes carry nothing


def _unfolded(monkeypatch):
    """Paused paths keep every event of their loops' finished passes (no folding)."""
    from fpufuzz import runtime

    monkeypatch.setattr(runtime.Kernel, "saved_log", lambda k: tuple(k.log))


def _without_logs(world):
    return world._replace(tasks=tuple(t if t.cont is None else t._replace(cont=t.cont._replace(log=()))
                                      for t in world.tasks))


@pytest.mark.parametrize("config", [dict(cpus=1, users=1, kthreads=0, kvm=True),
                                    dict(cpus=2, users=2, kthreads=1, lifecycle=True, signals=True, kvm=True,
                                         softirq=True, ptrace=True)], ids=["kvm", "whole"])
def test_folding_finished_loop_passes_changes_nothing_but_the_log(config, monkeypatch):
    """The soundness of ``Kernel.iterations``: along random walks, a model whose paused paths forget their loops'
    finished passes and one whose paths keep them take the same steps to the same worlds (logs aside) with the
    same findings. Walks restart every 80 steps and lean on running paths; some paths must fold (else the test
    proves nothing)."""
    import random

    base = variant.load("exec_invalidate_last_cpu")
    folded, unfolded = Model(base, Config(**config)), Model(base, Config(**config))
    shorter = 0
    for seed in range(3):
        rng = random.Random(seed)
        world = folded.initial()
        plain = world
        for n in range(400):
            if n % 80 == 0:
                world = plain = folded.initial()
            options = folded.enabled(world)
            with monkeypatch.context() as m:
                _unfolded(m)
                assert unfolded.enabled(plain) == options
                # lean on running paths and guest exits, or a walk seldom finishes a loop's pass
                step = rng.choice([s for s in options if s.op in ("run", "vmexit")] or options
                                  if rng.random() < 0.6 else options)
                slow = unfolded.apply(plain, step)
            fast = folded.apply(world, step)
            assert _without_logs(fast.world) == _without_logs(slow.world), f"seed {seed} step {n}: {step}"
            assert fast.findings == slow.findings
            shorter += sum(len(a.cont.log) < len(b.cont.log) for a, b in zip(fast.world.tasks, slow.world.tasks)
                           if a.cont is not None)
            world, plain = fast.world, slow.world
    assert shorter > 0


def test_a_paused_loop_keeps_its_first_head_and_the_pass_in_progress(baseline):
    from fpufuzz.runtime import LOOP_HEAD, Kernel

    def path(k, passes):
        k._event(False, "before", lambda: "before")
        for n, _ in enumerate(k.iterations()):
            if n == passes:
                return
            k._event(False, "pass", lambda: f"pass {n}")

    k = Kernel(baseline.initial(), 0)
    path(k, 3)
    assert k.saved_log() == ("before", LOOP_HEAD)  # at pass 3's head: nothing of a pass is in progress
    k = Kernel(baseline.initial(), 0)
    passes = k.iterations()
    k._event(False, "before", lambda: "before")
    for n in range(3):
        next(passes)
        k._event(False, "pass", lambda: f"pass {n}")
    assert k.saved_log() == ("before", LOOP_HEAD, "pass 2")
    again = Kernel(baseline.initial(), 0, replay=k.saved_log())  # the shorter log replays pass 2 as it ran
    passes = again.iterations()
    assert again._event(False, "before", lambda: "live") == "before"
    next(passes)
    assert again._event(False, "pass", lambda: "live") == "pass 2"
    assert again._event(False, "pass", lambda: "live") == "live"


def test_a_loop_head_must_replay_over_its_own_record(baseline):
    """A log that does not hold a loop head where the path has one is not this path's: an error, not a guess."""
    from fpufuzz.errors import ModelError
    from fpufuzz.runtime import Kernel

    world = baseline.initial()
    k = Kernel(world, 0, replay=("not a loop head",))
    with pytest.raises(ModelError, match="loop's head"):
        next(iter(k.iterations()))
