"""The machine state: plain, immutable, hashable data.

Everything the kernel's FPU code reads or writes lives in a ``World``: per CPU the current task, the
``fpu_fpregs_owner_ctx`` tag, the registers, ``in_kernel_fpu`` and the execution context; per task its mode,
CPU, ``TIF_NEED_FPU_LOAD`` and where it is paused in the kernel; per ``struct fpu`` its ``last_cpu`` and
in-memory image. The oracle's ghost state (what each program must observe) sits beside it, never read by
kernel code. Being tuples of tuples, a ``World`` is a dictionary key for the explorer and costs nothing to copy.

Register contents are abstract ``Value`` pairs: a user part (x87/SSE/AVX, what a program computes with) and a
supervisor part (the CET shadow-stack state, through which the seed's bug surfaced). ``INIT`` is
``init_fpstate``; ``KERNEL`` is whatever kernel-mode FPU use or boot left in the registers; every user write
draws a fresh number. Simplification: real registers have many components and XSAVE masks; the model keeps the
two parts the invariants need.
"""

from __future__ import annotations

from typing import NamedTuple

# Value parts: 0 is the init state, -1 is kernel-owned contents, positive numbers are fresh user values.
INIT_PART = 0
KERNEL_PART = -1
# With config softirq=yes, a kernel-FPU section's own data while its SIMD computation is in progress, by the context
# that runs it (task, softirq, hard interrupt): distinct, so a section can tell that its registers were clobbered
# under it. When the computation ends its data is dead and becomes KERNEL_PART like any other kernel leftovers.
KDATA_PARTS = {"task": -2, "softirq": -3, "hardirq": -4}
_KDATA_NAMES = {part: f"K{context[0]}" for context, part in KDATA_PARTS.items()}  # Kt, Ks, Kh


class Value(NamedTuple):
    """An abstract register image: (user part, supervisor part)."""

    user: int
    sup: int

    def __str__(self) -> str:
        if self == INIT:
            return "INIT"
        if self == KERNEL:
            return "K"
        return f"{_part(self.user, 'v')}/{_part(self.sup, 's')}"


def _part(part: int, prefix: str) -> str:
    if part == INIT_PART:
        return "init"
    if part == KERNEL_PART:
        return "K"
    if part in _KDATA_NAMES:
        return _KDATA_NAMES[part]
    return f"{prefix}{part}"


INIT = Value(INIT_PART, INIT_PART)
KERNEL = Value(KERNEL_PART, KERNEL_PART)

class CpuId(int):
    """A CPU number as kernel code holds it in a local (``smp_processor_id()``, ``fpu->last_cpu``). Equal to the
    plain int; the type lets the explorer's symmetry reduction rename CPU numbers inside a paused path's log."""

    __slots__ = ()


class TaskId(int):
    """A task as kernel code holds it (``current``, ``prev``): its index in ``World.tasks``."""

    __slots__ = ()


class FpuId(int):
    """A ``struct fpu *`` as kernel code holds it (``fpu_fpregs_owner_ctx``): an fpu identity."""

    __slots__ = ()


# Task kinds. Kernel threads and idle tasks have PF_KTHREAD; user workers (io_uring's, once PF_IO_WORKER) have
# PF_USER_WORKER: forked from a user task, they never return to user space.
USER, KTHREAD, IDLE, WORKER = "user", "kthread", "idle", "worker"
# Task modes. NEW: allocated by fork, not yet woken (wake_up_new_task); DEAD: a free task slot (exited, or never
# used), whose task_struct -- and struct fpu identity -- a later fork may reuse.
USER_MODE, KERNEL_MODE, NEW_MODE, DEAD_MODE = "user", "kernel", "new", "dead"
# GUEST: a vCPU thread between VM entry and VM exit: the CPU runs guest code from its registers (config kvm=yes).
GUEST_MODE = "guest"
# The page that holds a task's signal frame, as the world left it: present; absent (the access faults, and
# faulting it in makes it present); bad (the fault cannot be resolved: not mapped). NULL: the program passed a
# NULL fpstate pointer to sigreturn.
PAGE_PRESENT, PAGE_ABSENT, PAGE_BAD, PAGE_NULL = "present", "absent", "bad", "null"
# A task's ptrace stop (``Task.stop``): none; TRAP, a stop was requested (``JOBCTL_TRAP_STOP``, with
# ``TIF_SIGPENDING``: its tracer's PTRACE_INTERRUPT) and it will stop in ``get_signal()`` on its way to user mode;
# TRACED, stopped in ``ptrace_stop()`` (``TASK_TRACED``): switched out and not runnable until PTRACE_CONT.
STOP_NONE, STOP_TRAP, STOP_TRACED = "", "trap", "traced"


class Cont(NamedTuple):
    """Where a task is paused inside a kernel path: the path, its arguments, and the results of every event the
    path has executed so far. Resuming re-runs the path from its start, answering each recorded event from
    ``log`` without touching the state again, and goes on live from the first unrecorded event (see
    docs/model.md, "Paused kernel paths"). ``label`` is where it is paused, for people and for ``run until=``."""

    path: str
    args: tuple
    log: tuple
    label: str


class Ctx(NamedTuple):
    """A CPU's execution context, as ``preempt_count()`` and the irq flag describe it."""

    preempt: int = 0  # preempt_disable() depth
    softirq: int = 0  # local_bh_disable() depth (softirq_count() != 0)
    hardirq: int = 0  # hard interrupt nesting (in_hardirq())
    irqs_off: bool = False
    serving: int = 0  # SOFTIRQ_OFFSET: a softirq is being served here (in_serving_softirq()); only inside a step
    pending: bool = False  # local_softirq_pending(): a softirq was raised and waits to be served (config softirq)

    @property
    def atomic(self) -> bool:
        """Preemption or bottom halves are disabled, or a softirq is being served: the task here cannot be switched
        out."""
        return bool(self.preempt or self.softirq or self.serving)


class Cpu(NamedTuple):
    current: int  # index of the task running on this CPU (its idle task when nothing else runs)
    owner: int | None  # fpu_fpregs_owner_ctx: the fpu id whose state the registers hold, or NULL
    regs: Value
    in_kernel_fpu: bool
    ctx: Ctx


class Task(NamedTuple):
    name: str
    kind: str  # USER, KTHREAD or IDLE
    mode: str  # USER_MODE or KERNEL_MODE
    cpu: int  # the CPU it runs on, or last ran on (task_cpu())
    tif: bool  # TIF_NEED_FPU_LOAD
    fpu: int  # identity of its struct fpu (an address in the kernel; may be reused)
    cont: Cont | None  # where it is paused in the kernel; None in user mode or at rest
    sigpending: bool = False  # a signal is pending (TIF_SIGPENDING), to be delivered on the way to user mode
    stop: str = STOP_NONE  # ptrace: STOP_TRAP (a stop requested) or STOP_TRACED (stopped for its tracer)

    @property
    def alive(self) -> bool:
        return self.mode != DEAD_MODE


class Frame(NamedTuple):
    """The FPU part of a task's signal frame: user memory, which the kernel reaches only through the user-access
    primitives (they may fault), and the program may write."""

    value: int  # the user part of the XSAVE image in the frame (supervisor state never goes to user memory)
    page: str  # PAGE_PRESENT, PAGE_ABSENT, PAGE_BAD or PAGE_NULL
    xrstor_modifies: bool = False  # a faulting XRSTOR from this frame leaves the registers modified (hardware may)


class Fpu(NamedTuple):
    last_cpu: int  # -1 is "invalid"
    fpstate: Value  # fpu->__fpstate.regs: the task's own in-memory image
    # The vCPU the task's program runs (config kvm=yes): its guest buffer, ``vcpu->arch.guest_fpu.fpstate->regs``
    # (None: no vCPU), and whether ``fpu->fpstate`` points at it rather than at the task's own buffer (KVM swapped
    # them in fpu_swap_kvm_fpstate(); ``fpu->__task_fpstate`` then holds the task's own). Not part of struct fpu:
    # the model gives each task at most one vCPU and keeps its buffer beside the task's fpu.
    guest: Value | None = None
    in_guest: bool = False


class World(NamedTuple):
    cpus: tuple[Cpu, ...]
    tasks: tuple[Task, ...]
    fpus: tuple[Fpu, ...]
    expect: tuple[Value | None, ...]  # oracle ghost: what each user task's program must observe (None: kthread)
    fresh: int  # the last fresh value number handed out
    frames: tuple[Frame | None, ...] = ()  # per task slot: its signal frame in user memory, None: none written
    expect_frame: tuple[int | None, ...] = ()  # oracle ghost: the user part each outstanding frame must hold
    free: tuple[int, ...] = ()  # free task slots, most recently freed first (a fork takes the first: SLUB's LIFO)
    expect_guest: tuple[Value | None, ...] = ()  # oracle ghost: per task slot, what its vCPU's guest must observe

    def task_index(self, name: str) -> int:
        """The live task called ``name``; failing that, the free slot a task of that name exited from (a dead slot
        keeps its last name for the record until a fork reuses it)."""
        dead = None
        for i, task in enumerate(self.tasks):
            if task.name == name and name:
                if task.mode != DEAD_MODE:
                    return i
                dead = i
        if dead is None:
            raise KeyError(name)
        return dead

    def running_on(self, task: int) -> int | None:
        """The CPU ``task`` is current on, or None."""
        cpu = self.tasks[task].cpu
        return cpu if self.cpus[cpu].current == task else None
