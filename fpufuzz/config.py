"""What machine a scenario runs on, and the state it starts from."""

from __future__ import annotations

from dataclasses import dataclass, replace

from fpufuzz.errors import FpufuzzError
from fpufuzz.state import (DEAD_MODE, IDLE, INIT, KERNEL, KERNEL_MODE, KTHREAD, USER, Cont, Cpu, Ctx, Fpu, Task, Value,
                           World)

MAX_CPUS, MAX_TASKS = 4, 6
# The kernel's preemption models (kernel/Kconfig.preempt): where a task inside the kernel can be switched out.
PREEMPTION_MODELS = ("none", "voluntary", "full")
# What a faulting XRSTOR from a user buffer may do to the registers: the hardware's latitude, narrowed or not.
XRSTOR_FAULTS = ("keeps", "modifies", "either")


@dataclass(frozen=True)
class Config:
    """The machine: CPUs, user tasks, kernel threads, free task slots for forks, and kernel configuration
    options. ``spare`` bounds the tasks: a fork needs a free slot (a spare one, or one an exited task left)."""

    cpus: int = 2
    users: int = 2
    kthreads: int = 1
    preempt_rt: bool = False  # CONFIG_PREEMPT_RT: fpregs_lock() is preempt_disable()
    spare: int = 1
    lifecycle: bool = False  # tasks fork (user tasks, user workers) and exit
    signals: bool = False  # signals are delivered to user tasks, which write their frames and sigreturn
    preempt: str = "full"  # CONFIG_PREEMPT_NONE / _VOLUNTARY / CONFIG_PREEMPT (see fpufuzz.ops.preemptible)
    xrstor_fault: str = "either"  # a faulting XRSTOR from a signal frame keeps the registers, modifies them, or either
    fnsave: bool = False  # the CPU has neither XSAVE nor FXSR: save_fpregs_to_fpstate() uses FNSAVE, then FRSTOR
    kvm: bool = False  # user tasks create a vCPU and run it (KVM_RUN): the guest's FPU state is swapped in and out
    softirq: bool = False  # interrupts raise softirqs that use kernel FPU; kernel-FPU sections carry their own data
    ptrace: bool = False  # user tasks are stopped for a tracer, which reads and writes their FPU registers; core dumps

    def __post_init__(self):
        if not 1 <= self.cpus <= MAX_CPUS:
            raise FpufuzzError(f"cpus={self.cpus}: choose 1 to {MAX_CPUS}")
        if not 1 <= self.users <= MAX_TASKS or not 0 <= self.kthreads <= MAX_TASKS:
            raise FpufuzzError(f"users={self.users} kthreads={self.kthreads}: choose users 1-{MAX_TASKS}, "
                               f"kthreads 0-{MAX_TASKS}")
        if not 0 <= self.spare <= MAX_TASKS:
            raise FpufuzzError(f"spare={self.spare}: choose 0 to {MAX_TASKS} free task slots")
        if self.preempt not in PREEMPTION_MODELS:
            raise FpufuzzError(f"preempt={self.preempt}: choose {', '.join(PREEMPTION_MODELS)}")
        if self.preempt_rt and self.preempt != "full":
            raise FpufuzzError(f"preempt_rt=yes with preempt={self.preempt}: PREEMPT_RT is fully preemptible "
                               "(it selects CONFIG_PREEMPTION); drop preempt= or set preempt=full")
        if self.xrstor_fault not in XRSTOR_FAULTS:
            raise FpufuzzError(f"xrstor_fault={self.xrstor_fault}: choose {', '.join(XRSTOR_FAULTS)}")
        if self.softirq and self.preempt_rt:
            raise FpufuzzError("softirq=yes with preempt_rt=yes: PREEMPT_RT serves softirqs in threads, which the "
                               "model does not have; choose one")

    def with_families(self, families) -> "Config":
        """This machine with the operation families ``families`` (a variant's ``FAMILIES``) turned on as well."""
        return replace(self, **dict.fromkeys(families, True))

    def header(self) -> str:
        text = f"cpus={self.cpus} users={self.users} kthreads={self.kthreads}"
        text += " preempt_rt=yes" if self.preempt_rt else ""
        text += " lifecycle=yes" if self.lifecycle else ""
        text += " signals=yes" if self.signals else ""
        text += " kvm=yes" if self.kvm else ""
        text += " softirq=yes" if self.softirq else ""
        text += " ptrace=yes" if self.ptrace else ""
        text += f" spare={self.spare}" if self.spare != Config.spare else ""
        text += f" preempt={self.preempt}" if self.preempt != Config.preempt else ""
        text += f" xrstor_fault={self.xrstor_fault}" if self.xrstor_fault != Config.xrstor_fault else ""
        return text + (" fnsave=yes" if self.fnsave else "")


# The whole machine the fuzz tests and ``fpufuzz fuzz`` use by default: every operation enabled. The core
# configuration (``Config()``) keeps the fixed task population of the first model, which the explorer's pinned
# state counts are measured on.
WHOLE = dict(lifecycle=True, signals=True, kvm=True, softirq=True, ptrace=True)
FAMILIES = tuple(WHOLE)  # the operation families: machine options that add operations


def initial_world(config: Config) -> World:
    """Every CPU runs its idle task with kernel-owned registers; each user task has just been forked (it waits in
    ``ret_from_fork`` with its own fresh register image in memory, ``TIF_NEED_FPU_LOAD`` set, ``last_cpu`` -1);
    each kernel thread sleeps at the top of its loop; ``spare`` task slots are free for forks. This is a state the kernel reaches, and nothing in it is
    cached: every later skip of a restore must be earned.
    The ``ret_from_fork`` continuations are unlabelled here; ``Model.initial()`` labels them with the
    variant's first event.
    """
    tasks, fpus, expect, fresh = [], [], [], 0
    for cpu in range(config.cpus):
        tasks.append(Task(f"idle{cpu}", IDLE, KERNEL_MODE, cpu, True, len(fpus), None))
        fpus.append(Fpu(-1, INIT))
        expect.append(None)
    for n in range(config.users):
        value = Value(fresh + 1, fresh + 2)
        fresh += 2
        tasks.append(Task(f"u{n}", USER, KERNEL_MODE, 0, True, len(fpus), Cont("ret_from_fork", (), (), "")))
        fpus.append(Fpu(-1, value))
        expect.append(value)
    for n in range(config.kthreads):
        tasks.append(Task(f"k{n}", KTHREAD, KERNEL_MODE, 0, True, len(fpus), None))
        fpus.append(Fpu(-1, INIT))
        expect.append(None)
    free = []
    for _ in range(config.spare):  # never used: no name, an fpu nothing has ever cached
        free.append(len(tasks))
        tasks.append(Task("", USER, DEAD_MODE, 0, True, len(fpus), None))
        fpus.append(Fpu(-1, INIT))
        expect.append(None)
    cpus = tuple(Cpu(cpu, None, KERNEL, False, Ctx()) for cpu in range(config.cpus))
    return World(cpus, tuple(tasks), tuple(fpus), tuple(expect), fresh, (None,) * len(tasks), (None,) * len(tasks),
                 tuple(free), (None,) * len(tasks))
