"""Reachability ("sometimes") properties: interesting situations a clean verdict must have visited.

A fuzzer that never migrates a task inside exec, or never lets the lazy fast path skip a restore, says "clean"
about code it never exercised. Each property here is named, judged from one step (the world before and after,
and the kernel events the step executed), and reported with every fuzz and explore verdict. A variant expected
clean fails its fuzz test when a property it can reach was never reached; a variant that cannot reach one (say,
it never skips a restore) declares it in ``UNREACHABLE`` with the reason.
"""

from __future__ import annotations

from fpufuzz.ops import Step
from fpufuzz.runtime import PTRACE_GETFPREGS
from fpufuzz.state import GUEST_MODE, STOP_TRAP, USER, USER_MODE, World

SOMETIMES = {
    "restore-skipped": "a task returned to user mode and the restore was skipped because the registers were valid",
    "switched-in-on-owner-cpu": "a user task was switched in on a CPU whose owner tag still names its fpu",
    "preempted-in-kernel": "a task was switched out while paused inside a kernel path",
    "migrated-in-exec": "a task was switched in on another CPU while inside exec()",
    "exec-returned": "a task returned to user mode from exec()",
    "kernel-fpu-over-sleeping-owner": "kernel FPU use began on a CPU whose owner was a task not running there",
    "irq-kernel-fpu": "a hard interrupt used kernel FPU",
    "irq-in-fpregs-lock": "a hard interrupt arrived inside a fpregs_lock() (bottom halves off) section",
    "fork-live-parent": "a child was forked while its parent's registers were live (fpu_clone saved them as they "
                        "were)",
    "fork-reused-cached-fpu": "a fork took a freed fpu that a CPU's owner tag still named",
    "handler-entered": "a signal handler started in user mode after its frame was written",
    "sigframe-fault-preempted": "a task was switched out between a faulted signal-frame write and its retry",
    "sigreturn-fault-retried": "a sigreturn's XRSTOR from the frame faulted, the page was faulted in, and the "
                               "restore was retried",
    "sigreturn-failed": "a sigreturn failed and the task returned to user mode with the init state",
    "sigreturn-ia32": "an ia32 sigreturn went through the memory image and returned to user mode",
    "vcpu-preempted": "a task was switched out inside KVM_RUN with its guest's buffer attached (fpu->fpstate "
                      "swapped)",
    "vcpu-migrated": "a task was switched in on another CPU inside KVM_RUN with its guest's buffer attached",
    "irq-kernel-fpu-in-vcpu": "a hard interrupt's kernel FPU use saved a vCPU's guest registers into the attached "
                              "guest buffer",
    "guest-reloaded": "a guest was entered after vcpu_enter_guest() reloaded its registers from its buffer "
                      "(TIF_NEED_FPU_LOAD was set)",
    "kvm-run-returned": "KVM_RUN returned to user mode, the task's own FPU state swapped back",
    "irq-kernel-fpu-live-regs": "a hard interrupt used kernel FPU while the task it interrupted was inside a kernel "
                                "path with its registers live (TIF_NEED_FPU_LOAD clear): it had to save them",
    "softirq-kernel-fpu-over-sleeping-owner": "a softirq used kernel FPU on a CPU whose owner tag named a task not "
                                              "running there",
    "softirq-at-bh-enable": "a softirq raised while bottom halves were off was served where they were enabled again "
                            "(local_bh_enable(), fpregs_unlock()) and used kernel FPU",
    "softirq-refused-in-kernel-fpu": "a softirq that wanted the FPU interrupted a task's kernel-FPU section and was "
                                     "refused it",
    "ptrace-read": "a tracer read the FPU registers of a task stopped in ptrace_stop()",
    "ptrace-write-tif-clear": "a tracer began writing the FPU registers of a stopped task whose TIF_NEED_FPU_LOAD "
                              "was clear (v6.5-rc7's switch-out leaves it so)",
    "ptrace-write-cached-elsewhere": "a tracer began writing the FPU registers of a stopped task while they were "
                                     "still valid on a CPU other than the tracer's",
    "ptrace-resumed": "a task stopped for its tracer was resumed and returned to user mode",
    "coredump-live-regs": "a core dump synchronized the dumping task's live registers (fpu_sync_fpstate() found "
                          "TIF_NEED_FPU_LOAD clear)",
}

# The machine option (operation family) without which a property cannot be reached; the others need only the core
# machine. A clean verdict is held to the properties of the families its machine enables.
FAMILY = {
    "fork-live-parent": "lifecycle", "fork-reused-cached-fpu": "lifecycle",
    "handler-entered": "signals", "sigframe-fault-preempted": "signals", "sigreturn-fault-retried": "signals",
    "sigreturn-failed": "signals", "sigreturn-ia32": "signals",
    "vcpu-preempted": "kvm", "vcpu-migrated": "kvm", "irq-kernel-fpu-in-vcpu": "kvm", "guest-reloaded": "kvm",
    "kvm-run-returned": "kvm",
    "irq-kernel-fpu-live-regs": "softirq", "softirq-kernel-fpu-over-sleeping-owner": "softirq",
    "softirq-at-bh-enable": "softirq", "softirq-refused-in-kernel-fpu": "softirq",
    "ptrace-read": "ptrace", "ptrace-write-tif-clear": "ptrace", "ptrace-write-cached-elsewhere": "ptrace",
    "ptrace-resumed": "ptrace", "coredump-live-regs": "ptrace",
}


def reachable_on(config) -> set[str]:
    """The properties a machine with ``config``'s operation families can reach."""
    return {name for name in SOMETIMES if name not in FAMILY or getattr(config, FAMILY[name])}


def reached(before: World, step: Step, after: World, trace: list) -> set[str]:
    """The properties this step reached. ``trace`` is the (label, result) list of its live kernel events."""
    found = set()
    if step.op == "schedule":
        found |= _at_switch(before, step)
    elif step.op == "irq":
        cpu = step.get("cpu")
        if before.cpus[cpu].ctx.softirq:
            found.add("irq-in-fpregs-lock")
        if _began_kernel_fpu(trace):
            found.add("irq-kernel-fpu")
            current = before.tasks[before.cpus[cpu].current]
            if before.fpus[current.fpu].in_guest and any(label == "save_fpregs_to_fpstate: xsave"
                                                         for label, _ in trace):
                found.add("irq-kernel-fpu-in-vcpu")
    if _began_kernel_fpu(trace) and _owner_sleeps(before, _step_cpu(before, step)):
        found.add("kernel-fpu-over-sleeping-owner")
    if step.op == "run":
        found |= _at_user_entry(before, step, after, trace)
        found |= _ptrace_read(before, step, trace)
    if step.get("task") and any(label == "vcpu_enter_guest: test TIF_NEED_FPU_LOAD" and result
                                for label, result in trace) and (
            after.tasks[after.task_index(step.get("task"))].mode == GUEST_MODE):
        found.add("guest-reloaded")
    if step.op in ("irq", "run"):
        found |= _kernel_fpu_contexts(before, step, trace)
    if step.op == "ptrace" and step.get("req") == "setfpregs":
        found |= _ptrace_write(before, step)
    if any(label == "fpu_sync_fpstate: test TIF_NEED_FPU_LOAD" and not result for label, result in trace):
        found.add("coredump-live-regs")
    if any(label == "fpu_clone: test TIF_NEED_FPU_LOAD" and not result for label, result in trace):
        found.add("fork-live-parent")
    for label, slot in trace:
        if label == "copy_process: alloc task_struct" and slot is not None and any(
                cpu.owner == before.tasks[slot].fpu for cpu in before.cpus):
            found.add("fork-reused-cached-fpu")
    return found


def _at_switch(before: World, step: Step) -> set[str]:
    found = set()
    cpu, nxt = step.get("cpu"), before.task_index(step.get("next"))
    task, prev = before.tasks[nxt], before.tasks[before.cpus[cpu].current]
    if prev.mode != USER_MODE and prev.cont is not None:
        found.add("preempted-in-kernel")
    index = before.cpus[cpu].current
    frame = before.frames[index]
    if (prev.cont is not None and not prev.sigpending and frame is not None and frame.page == "absent"
            and before.expect_frame[index] is not None
            and prev.cont.label in ("fpregs_unlock: local_bh_enable", "copy_fpstate_to_sigframe: clear_user")):
        found.add("sigframe-fault-preempted")
    if task.kind == USER and before.cpus[cpu].owner == task.fpu:
        found.add("switched-in-on-owner-cpu")
    if before.fpus[prev.fpu].in_guest and prev.cont is not None:
        found.add("vcpu-preempted")
    if before.fpus[task.fpu].in_guest and task.cpu != cpu:
        found.add("vcpu-migrated")
    if _in_exec(task) and task.cpu != cpu:
        found.add("migrated-in-exec")
    return found


def _at_user_entry(before: World, step: Step, after: World, trace: list) -> set[str]:
    index = before.task_index(step.get("task"))
    if before.tasks[index].mode == USER_MODE or after.tasks[index].mode != USER_MODE:
        return set()
    found = set()
    tif_set = before.tasks[index].tif or any(label.endswith(": set TIF_NEED_FPU_LOAD") for label, _ in trace)
    if tif_set and not any(label.endswith(": xrstor") for label, _ in trace):
        found.add("restore-skipped")
    if _in_exec(before.tasks[index]):
        found.add("exec-returned")
    cont, labels = before.tasks[index].cont, [label for label, _ in trace]
    if after.expect_frame[index] is not None and any(label.startswith("fpu__clear_user_states") for label in labels):
        found.add("handler-entered")
    if cont.args[:1] in (("sys_rt_sigreturn",), ("sys32_rt_sigreturn",)):
        if any(label == "restore_fpregs_from_user: fault_in_readable" and result == 0 for label, result in trace):
            found.add("sigreturn-fault-retried")
        if any(label.startswith("restore_fpregs_from_init_fpstate") for label in labels) and (
                before.frames[index] is not None and before.frames[index].page != "null"):
            found.add("sigreturn-failed")
        if cont.args == ("sys32_rt_sigreturn",):
            found.add("sigreturn-ia32")
    if cont.args == ("kvm_vcpu_ioctl", "KVM_RUN"):
        found.add("kvm-run-returned")
    if STOP_TRAP in cont.log:  # get_signal() took a ptrace stop on this path
        found.add("ptrace-resumed")
    return found


def _ptrace_read(before: World, step: Step, trace: list) -> set[str]:
    cont = before.tasks[before.task_index(step.get("task"))].cont
    if cont.args[:2] == ("sys_ptrace", PTRACE_GETFPREGS) and any(label.endswith(": membuf_write")
                                                                   for label, _ in trace):
        return {"ptrace-read"}
    return set()


def _ptrace_write(before: World, step: Step) -> set[str]:
    found = set()
    tracer = before.tasks[before.task_index(step.get("task"))]
    target = before.tasks[before.task_index(step.get("target"))]
    if not target.tif:
        found.add("ptrace-write-tif-clear")
    last_cpu = before.fpus[target.fpu].last_cpu
    if last_cpu >= 0 and last_cpu != tracer.cpu and before.cpus[last_cpu].owner == target.fpu:
        found.add("ptrace-write-cached-elsewhere")
    return found


def _in_exec(task) -> bool:
    return task.cont is not None and task.cont.path == "do_syscall_64" and task.cont.args == ("sys_execve",)


def _kernel_fpu_contexts(before: World, step: Step, trace: list) -> set[str]:
    """Which contexts of this step used, or were refused, kernel FPU. A ``run`` step executes in task context, an
    ``irq`` step in a hard interrupt until its exit drops the hardirq count; softirqs are served between
    ``softirq enter`` and ``softirq exit`` events."""
    found = set()
    cpu = _step_cpu(before, step)
    state = before.cpus[cpu]
    current = before.tasks[state.current]
    for context, began in _uses(step, trace):
        if context == "hardirq" and began and current.kind == USER and current.mode != USER_MODE and (
                current.cont is not None and not current.tif):
            found.add("irq-kernel-fpu-live-regs")
        if context == "softirq" and began:
            if _owner_sleeps(before, cpu):
                found.add("softirq-kernel-fpu-over-sleeping-owner")
            if step.op == "run":
                found.add("softirq-at-bh-enable")
        if context == "softirq" and not began and state.in_kernel_fpu:
            found.add("softirq-refused-in-kernel-fpu")
    return found


def _uses(step: Step, trace: list) -> list[tuple[str, bool]]:
    """(context, whether it began a kernel-FPU section) for each hard interrupt and softirq in ``trace``."""
    uses, context, began = [], "hardirq" if step.op == "irq" else "task", False
    for label, _ in trace:
        if label.endswith(": preempt_count_sub HARDIRQ_OFFSET") or label.endswith(": softirq exit"):
            uses.append((context, began))
            context, began = "task", False
        elif label.endswith(": softirq enter"):
            context, began = "softirq", False
        elif label == "kernel_fpu_begin_mask: write in_kernel_fpu":
            began = True
    return [(c, b) for c, b in uses if c != "task"]


def _began_kernel_fpu(trace: list) -> bool:
    return any(label == "kernel_fpu_begin_mask: write in_kernel_fpu" for label, _ in trace)


def _step_cpu(world: World, step: Step) -> int:
    if step.get("cpu") is not None:
        return step.get("cpu")
    return world.tasks[world.task_index(step.get("task"))].cpu


def _owner_sleeps(world: World, cpu: int) -> bool:
    owner = world.cpus[cpu].owner
    if owner is None:
        return False
    return all(world.cpus[t.cpu].current != i for i, t in enumerate(world.tasks) if t.fpu == owner)
