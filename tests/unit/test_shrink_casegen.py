"""Minimizing failing step lists and turning them into cases."""

from __future__ import annotations

from pathlib import Path

from helpers import model_of, steps

from fpufuzz import corpus, variant
from fpufuzz.casegen import build, canonical, case_name, existing_equivalent
from fpufuzz.ops import Step
from fpufuzz.config import Config
from fpufuzz.ops import Model
from fpufuzz.shrink import first_violation, merge_runs, minimize, same_bug, shortest_nearby, violates

WHOLE_MACHINE = dict(cpus=2, users=2, kthreads=1, lifecycle=True, signals=True, kvm=True, softirq=True, ptrace=True)

SEED = corpus.load(Path(__file__).resolve().parents[2] / "corpus" / "exec+migrate-back+kthread.case")

# The seed with detours a fuzzer leaves behind: scheduling round trips, runs cut into pieces, a harmless write.
PADDED = steps("schedule cpu=0 next=u0", "schedule cpu=0 next=idle0", "schedule cpu=0 next=u0",
               "run task=u0 until=done",
               "user_write task=u0", "syscall task=u0 call=execve", "irq cpu=1 work=simd",
               "schedule cpu=0 next=k0", "schedule cpu=1 next=u0",
               "run task=u0 until='fpregs_deactivate: write fpu_fpregs_owner_ctx'",
               "run task=u0 until='setup_new_exec: cond_resched'", "schedule cpu=1 next=idle1",
               "schedule cpu=0 next=u0", "run task=u0 until=done")


def test_merge_runs_joins_consecutive_runs_of_one_task():
    merged = merge_runs(PADDED)
    assert len(merged) == len(PADDED) - 1
    assert str(merged[9]) == "run task=u0 until='setup_new_exec: cond_resched'"


def test_minimize_removes_the_detours():
    model = model_of("original")
    assert violates(model, PADDED, "user-regs") == len(PADDED)
    small = minimize(model, PADDED, "user-regs")
    assert len(small) == 9 and violates(model, small, "user-regs") == 9
    for i in range(len(small)):  # 1-minimal
        assert violates(model, small[:i] + small[i + 1:], "user-regs") is None


def test_minimize_lets_the_parent_do_what_its_forked_child_did():
    """The fuzzer's 13-step find on the fuzz tests' machine: a forked child execs, and another user task holds
    CPU0. Deleting steps alone cannot drop the fork (the child is the one that execs); playing the child with its
    parent and the other task with the idle task gets the explorer's 9."""
    found = steps("schedule cpu=0 next=u0", "run task=u0 until=done", "fork task=u0 child=u2",
                  "run task=u0 until=done", "schedule cpu=0 next=u2", "run task=u2 until=done",
                  "syscall task=u2 call=execve", "schedule cpu=0 next=idle0", "schedule cpu=1 next=u2",
                  "run task=u2 until='setup_new_exec: cond_resched'", "schedule cpu=1 next=u1",
                  "schedule cpu=0 next=u2", "run task=u2 until=done")
    model = model_of("original", cpus=2, users=2, kthreads=1, lifecycle=True)
    small = minimize(model, found, "user-regs")
    assert len(small) == 9 and violates(model, small, "user-regs") == 9
    assert not any(step.op == "fork" for step in small)


def test_minimize_searches_the_lists_own_kinds_and_tasks_for_a_shorter_order():
    """The fuzzer's find on the whole machine (ci, seed 16), as deletions and renamings left it: a forked child
    execs while a kernel thread holds the other CPU. Playing the child with its parent fails here (the parent
    runs on CPU0 when the child is switched in there), so no deletion can drop the fork; a breadth-first search
    over the same kinds of step by the same tasks finds the explorer's 9."""
    found = steps("schedule cpu=0 next=u0", "run task=u0 until=done", "fork task=u0 child=u2",
                  "run task=u0 until=done", "schedule cpu=1 next=u2", "run task=u2 until=done",
                  "syscall task=u2 call=execve", "schedule cpu=1 next=k0", "schedule cpu=0 next=u2",
                  "run task=u2 until='fpregs_unlock: local_bh_enable'", "schedule cpu=0 next=idle0",
                  "schedule cpu=1 next=u2", "run task=u2 until=done")
    model = model_of("original", **WHOLE_MACHINE)
    assert violates(model, found, "user-regs") == len(found)
    assert len(minimize(model, found, "user-regs")) == 9
    nearby = shortest_nearby(model, found, "user-regs")
    assert len(nearby) == 9 and violates(model, nearby, "user-regs") == 9
    assert {step.op for step in nearby} <= {step.op for step in found}


def test_stale_registers_are_one_bug_at_four_observation_points_and_other_invariants_are_their_own():
    assert same_bug("guest-regs") == same_bug("user-regs") == {"user-regs", "sigframe", "guest-regs", "regset"}
    assert same_bug("non-interference") == {"non-interference"}
    assert same_bug("kernel-fpu-data") == {"kernel-fpu-data"}


def test_minimize_may_show_the_same_stale_registers_at_another_observation_point():
    """The fuzzer's find (ci, seed 3): the vCPU's state is stale at a VM entry after two migrations during KVM_RUN.
    The shortest list showing the bug shows it to the VMM in user mode instead (9 steps, an interrupt during
    KVM_RUN): the case names the point its own replay meets."""
    found = steps("schedule cpu=0 next=u0", "run task=u0 until=done", "syscall task=u0 call=kvm_create_vcpu",
                  "run task=u0 until=done", "syscall task=u0 call=kvm_run",
                  "run task=u0 until='vmx_vcpu_run: guest mode'", "vmexit task=u0 exit=kernel",
                  "run task=u0 until='vcpu_enter_guest: preempt_enable'", "schedule cpu=0 next=idle0",
                  "schedule cpu=1 next=u0", "run task=u0 until='vmx_vcpu_run: guest mode'", "guest_write task=u0",
                  "vmexit task=u0 exit=user", "run task=u0 until='vcpu_enter_guest: preempt_enable'",
                  "schedule cpu=1 next=idle1", "schedule cpu=0 next=u0", "run task=u0 until=done",
                  "syscall task=u0 call=kvm_run", "run task=u0 until='vmx_vcpu_run: guest mode'")
    model = model_of("kvm_swap_save_ignores_tif", **WHOLE_MACHINE)
    assert first_violation(model, found)[1].name == "guest-regs"
    small = minimize(model, found, "guest-regs")
    assert len(small) == 9 and first_violation(model, small)[0] == 9
    assert first_violation(model, small)[1].name in same_bug("guest-regs")


def test_the_nearby_search_tries_an_interrupt_where_a_migration_was():
    """The fuzzer's find (ci, seed 0), 1-minimal: a migration right after the signal frame was written. The
    shortest takes an interrupt's kernel FPU there instead, a kind of step the list does not have."""
    found = steps("schedule cpu=0 next=u0", "run task=u0 until=done", "signal task=u0 frame=present",
                  "run task=u0 until='fpregs_unlock: local_bh_enable'", "schedule cpu=0 next=idle0",
                  "schedule cpu=1 next=u0", "run task=u0 until=done")
    model = model_of("clear_user_states_no_activate", **WHOLE_MACHINE)
    nearby = shortest_nearby(model, found, "user-regs")
    assert len(nearby) == 6 and violates(model, nearby, "user-regs") == 6
    assert any(step.op == "irq" for step in nearby)


def test_the_nearby_search_tries_every_way_into_the_kernel():
    """The fuzzer's find (ci, seed 0), 1-minimal: a fork interrupted twice. An exec interrupted once is shorter:
    the search with every kind of step, by the same task, finds it."""
    found = steps("schedule cpu=0 next=u1", "run task=u1 until=done", "fork task=u1 child=u2",
                  "irq cpu=0 work=simd", "run task=u1 until='fpregs_activate: write fpu_fpregs_owner_ctx'",
                  "irq cpu=0 work=simd", "run task=u1 until=done")
    model = model_of("irq_fpu_usable_in_fpregs_lock", **WHOLE_MACHINE)
    assert violates(model, found, "user-regs") == 7
    nearby = shortest_nearby(model, found, "user-regs")
    assert len(nearby) == 6 and violates(model, nearby, "user-regs") == 6
    assert not any(step.op == "fork" for step in nearby)


def test_the_nearby_search_only_takes_the_named_tasks_steps():
    model = Model(variant.load("original"), Config(cpus=2, users=2, kthreads=1), ops=("schedule", "run"),
                  actors=frozenset({"u1"}))
    enabled = model.enabled(model.initial())
    assert enabled and {step.op for step in enabled} == {"schedule"}
    assert {step.get("next") for step in enabled} == {"u1"}


def test_minimize_drops_a_whole_episode_no_single_step_or_pair_can_take_out():
    """The fuzzer's 25-step find on the whole machine (ci, seed 6): before its exec, the task created a vCPU and ran
    it through three VM exits and two migrations. Every step of that detour is needed by the next, so it goes in one
    piece, from the task's first step in user mode to its path's return there."""
    vcpu = ("syscall task=u0 call=kvm_create_vcpu", "run task=u0 until=done", "syscall task=u0 call=kvm_run",
            "run task=u0 until='vmx_vcpu_run: guest mode'", "vmexit task=u0 exit=kernel",
            "run task=u0 until='vcpu_enter_guest: preempt_enable'", "schedule cpu=0 next=idle0",
            "schedule cpu=1 next=u0", "run task=u0 until='vmx_vcpu_run: guest mode'", "vmexit task=u0 exit=kernel",
            "run task=u0 until='vcpu_enter_guest: preempt_enable'", "schedule cpu=1 next=idle1",
            "schedule cpu=0 next=u0", "run task=u0 until='vmx_vcpu_run: guest mode'", "vmexit task=u0 exit=user",
            "run task=u0 until=done")
    found = steps("schedule cpu=0 next=u0", "run task=u0 until=done", *vcpu, "syscall task=u0 call=execve",
                  "schedule cpu=0 next=idle0", "schedule cpu=1 next=u0",
                  "run task=u0 until='fpregs_unlock: local_bh_enable'", "schedule cpu=1 next=idle1",
                  "schedule cpu=0 next=u0", "run task=u0 until=done")
    model = model_of("original", cpus=2, users=1, kthreads=0, kvm=True)
    assert violates(model, found, "user-regs") == len(found)
    small = minimize(model, found, "user-regs")
    assert len(small) == 9 and not any(step.op == "vmexit" for step in small)


# force_restore_cpu_invalidate's 12 steps: a tracer on CPU1 writes the registers of a tracee stopped on CPU0, which
# then comes back to CPU0 (seed 0 of the whole machine's campaign).
_TRACE_TAIL = ("ptrace task=u0 target=u1 req=setfpregs", "run task=u0 until=done",
               "ptrace task=u0 target=u1 req=cont", "run task=u0 until=done", "schedule cpu=0 next=u1",
               "run task=u1 until=done")


def test_a_task_the_machine_starts_with_plays_a_forked_one():
    """The fuzzer's 14-step find (whole machine, ci, seed 8): the tracer is a child forked for the purpose. The
    list never names u0, which the machine has from the start and which can trace as well: playing the child
    with it drops the fork and its run."""
    found = steps("schedule cpu=0 next=u1", "run task=u1 until=done", "fork task=u1 child=u2",
                  "run task=u1 until=done", "schedule cpu=1 next=u2", "stop task=u1",
                  "run task=u1 until='ptrace_stop: schedule'", "run task=u2 until=done",
                  *(step.replace("u0", "u2") for step in _TRACE_TAIL))
    model = model_of("force_restore_cpu_invalidate", **WHOLE_MACHINE)
    assert violates(model, found, "user-regs") == len(found) == 14
    small = minimize(model, found, "user-regs")
    assert len(small) == 12 and not any(step.op == "fork" for step in small)


def test_an_episode_goes_with_the_rest_of_its_path():
    """The fuzzer's 29-step find (whole machine, ci, seed 2) ran a vCPU between two ptrace sessions. Taking out
    the KVM_RUN episode leaves its path's last run with nothing to run: that step goes too, as do the first
    session's, and the list comes down to the 12 steps of the bug."""
    found = steps("schedule cpu=0 next=u0", "run task=u0 until=done", "stop task=u0", "schedule cpu=0 next=u1",
                  "schedule cpu=1 next=u0", "run task=u0 until='ptrace_stop: schedule'", "schedule cpu=0 next=idle0",
                  "schedule cpu=1 next=u1", "run task=u1 until=done", "ptrace task=u1 target=u0 req=cont",
                  "schedule cpu=1 next=idle1", "schedule cpu=0 next=u1", "run task=u1 until=done",
                  "syscall task=u1 call=kvm_create_vcpu", "run task=u1 until=done", "syscall task=u1 call=kvm_run",
                  "run task=u1 until='vmx_vcpu_run: guest mode'", "vmexit task=u1 exit=user",
                  "schedule cpu=1 next=u0", "run task=u0 until=done", "stop task=u0",
                  "run task=u0 until='ptrace_stop: schedule'", "run task=u1 until=done",
                  "ptrace task=u1 target=u0 req=setfpregs", "run task=u1 until=done",
                  "ptrace task=u1 target=u0 req=cont", "run task=u1 until=done", "schedule cpu=1 next=u0",
                  "run task=u0 until=done")
    model = model_of("force_restore_cpu_invalidate", **WHOLE_MACHINE)
    assert violates(model, found, "user-regs") == len(found) == 29
    small = minimize(model, found, "user-regs")
    assert len(small) == 12 and not any(step.op in ("vmexit", "fork") for step in small)


def test_canonical_renames_by_first_appearance_and_sizes_the_machine():
    renamed, config = canonical(steps("schedule cpu=1 next=u1", "run task=u1 until=done",
                                      "schedule cpu=1 next=idle1"))
    assert [str(s) for s in renamed] == ["schedule cpu=0 next=u0", "run task=u0 until=done",
                                         "schedule cpu=0 next=idle0"]
    assert (config.cpus, config.users, config.kthreads) == (1, 1, 0)


def test_case_name_lists_the_ingredients():
    assert case_name(SEED.steps, "user-regs") == "user-regs+execve+kthread+migrate"


def test_build_records_the_outcome_on_every_variant():
    case = build(SEED.steps, "user-regs", variant.load("original"), "test")
    assert case.expect == {name: SEED.expect.get(name, "clean") for name in variant.names()}
    assert case.summary.startswith("Found by fpufuzz on original: u0 entered user mode")


def test_an_equivalent_case_is_recognized_up_to_renaming(tmp_path):
    corpus.save(SEED, tmp_path)
    swapped = [Step(s.op, tuple((k, {"u0": "u1"}.get(v, v) if isinstance(v, str) else (1 - v if k == "cpu" else v))
                                for k, v in s.args)) for s in SEED.steps]
    swapped = [Step(s.op, tuple((k, {"idle1": "idle0", "idle0": "idle1"}.get(v, v)) for k, v in s.args))
               for s in swapped]
    other = build(swapped, "user-regs", variant.load("original"), "test")
    assert existing_equivalent(other, tmp_path) is not None


def test_a_child_named_after_an_exited_task_is_a_new_task_in_the_case():
    """Found by the fuzzer: u0 dies, its slot goes to u1's first child, and u1's second child takes the free name
    u0. The case must keep the two u0s apart (casegen renames by name) and replay."""
    from fpufuzz.corpus import parse_step

    raw = [parse_step(t) for t in (
        "schedule cpu=1 next=u0", "run task=u0 until=done", "signal task=u0 frame=bad", "run task=u0 until=done",
        "schedule cpu=1 next=u1", "run task=u1 until=done", "fork task=u1 child=u2", "run task=u1 until=done",
        "signal task=u1 frame=absent", "run task=u1 until=done", "fork task=u1 child=u0", "run task=u1 until=done",
        "schedule cpu=0 next=u0", "run task=u0 until=done", "user_write task=u0", "sigreturn task=u0 frame=bad",
        "run task=u0 until=done")]
    renamed, config = canonical(raw, Config(lifecycle=True, signals=True))
    assert (config.users, config.spare) == (2, 2)
    assert [s.get("child") for s in renamed if s.op == "fork"] == ["u2", "u3"]
    assert renamed[12].get("next") == "u3"
    case = build(raw, "user-regs", variant.load("sigreturn_failure_keeps_regs"), "test",
                         Config(lifecycle=True, signals=True))
    assert case.expect["sigreturn_failure_keeps_regs"] == "violates user-regs"
