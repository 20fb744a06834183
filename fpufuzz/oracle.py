"""The reference oracle: what each user task's program must observe, independent of the lazy bookkeeping.

The oracle keeps one ghost value per user task, ``World.expect``: the register contents its program must see.
It changes only with the program's own actions (its register writes, exec's fresh image), which fpufuzz/ops.py
reports here; kernel code never reads or writes it. A verdict rests only on *violations*: a user-observable
value differs from the ghost at an observation point. Everything else the oracle checks is a *diagnostic*:
named, reported, never deciding, because correct kernels have legitimate windows where it does not hold.
"""

from __future__ import annotations

from typing import NamedTuple

from fpufuzz.state import INIT, USER, Value, World

# Violations decide verdicts. Each is checked at an observation point that user space can see.
VIOLATIONS = {
    "user-regs": "a task returned to user mode with registers that are not its program's (reference I1, values)",
}

# Diagnostics never decide. Each names its legitimate windows.
DIAGNOSTICS = {
    "fpregs-state-consistent": "in user mode a task owns its CPU's registers: owner is its fpu, last_cpu is the "
                               "CPU, TIF_NEED_FPU_LOAD clear (reference I1, bookkeeping). Windows: none known "
                               "in v6.5-rc7, but a correct patch may change the bookkeeping",
    "cache-sound": "whenever a task's restore would be skipped (owner and last_cpu match a CPU) while its "
                   "memory image is the authoritative one, the registers equal the memory image (reference "
                   "I4). Windows: signal and ptrace paths that write the image before invalidating, under lock",
    "kthread-tif": "kernel threads always have TIF_NEED_FPU_LOAD set (reference I8)",
    "kernel-fpu-owner": "while a CPU is in a kernel-FPU section its owner tag is NULL (reference I7)",
    "warn": "a WARN_ON_FPU / WARN_ON_ONCE fired in modeled kernel code (CONFIG_X86_DEBUG_FPU=y)",
    "context-balanced": "a kernel path ends (in user mode, or back at the top of a kernel thread's loop) with "
                        "preemption and bottom halves enabled again",
}


class Finding(NamedTuple):
    kind: str  # "violation" or "diagnostic"
    name: str  # a key of VIOLATIONS or DIAGNOSTICS
    task: str | None
    cpu: int | None
    expected: object
    actual: object
    message: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}: {self.message}"


# ---------------------------------------------------------------- the ghost: what programs do


def program_wrote(world: World, task: int, user_part: int) -> World:
    """The task's program wrote its registers: it must later see the new user part, its supervisor part as it
    was."""
    old = world.expect[task]
    return _set_expect(world, task, Value(user_part, old.sup))


def program_exec(world: World, task: int) -> World:
    """exec() replaces the program: the new one starts from ``init_fpstate``."""
    return _set_expect(world, task, INIT)


def _set_expect(world: World, task: int, value: Value) -> World:
    expect = list(world.expect)
    expect[task] = value
    return world._replace(expect=tuple(expect))


# ---------------------------------------------------------------- observation points (deciding)


def observe_user_entry(world: World, task: int) -> list[Finding]:
    """The task has just entered user mode: its program now reads its registers."""
    t = world.tasks[task]
    cpu = world.cpus[t.cpu]
    expected = world.expect[task]
    findings = []
    if cpu.regs != expected:
        findings.append(Finding("violation", "user-regs", t.name, t.cpu, expected, cpu.regs,
                                f"{t.name} entered user mode on CPU{t.cpu} with registers {cpu.regs}, but its "
                                f"program must see {expected}"))
    if not (cpu.owner == t.fpu and world.fpus[t.fpu].last_cpu == t.cpu and not t.tif):
        findings.append(Finding("diagnostic", "fpregs-state-consistent", t.name, t.cpu, "valid, TIF clear",
                                _bookkeeping(world, task),
                                f"{t.name} in user mode on CPU{t.cpu} with {_bookkeeping(world, task)}"))
    return findings


def _bookkeeping(world: World, task: int) -> str:
    t = world.tasks[task]
    owner = world.cpus[t.cpu].owner
    owner_name = "NULL" if owner is None else owner_of(world, owner)
    return f"owner={owner_name} last_cpu={world.fpus[t.fpu].last_cpu} TIF={int(t.tif)}"


def owner_of(world: World, fpu: int) -> str:
    for t in world.tasks:
        if t.fpu == fpu:
            return t.name
    return f"fpu#{fpu}"


# ---------------------------------------------------------------- diagnostics (never deciding)


def diagnostics(world: World) -> list[Finding]:
    """Internal consistency of the lazy-restore cache after a step."""
    findings = []
    for c, cpu in enumerate(world.cpus):
        if cpu.in_kernel_fpu and cpu.owner is not None:
            findings.append(Finding("diagnostic", "kernel-fpu-owner", None, c, None, cpu.owner,
                                    f"CPU{c} is in a kernel-FPU section with owner {owner_of(world, cpu.owner)}"))
    for index, t in enumerate(world.tasks):
        if t.kind != USER and not t.tif:
            findings.append(Finding("diagnostic", "kthread-tif", t.name, t.cpu, True, False,
                                    f"kernel thread {t.name} has TIF_NEED_FPU_LOAD clear"))
        if t.kind == USER:
            findings.extend(_cache_sound(world, index))
    return findings


def _cache_sound(world: World, index: int) -> list[Finding]:
    t = world.tasks[index]
    fpu = world.fpus[t.fpu]
    running = world.cpus[t.cpu].current == index
    memory_authoritative = t.tif or not running
    if not memory_authoritative or fpu.last_cpu < 0:
        return []
    cpu = world.cpus[fpu.last_cpu]
    if cpu.owner != t.fpu or cpu.regs == fpu.fpstate:
        return []
    return [Finding("diagnostic", "cache-sound", t.name, fpu.last_cpu, fpu.fpstate, cpu.regs,
                    f"CPU{fpu.last_cpu} would skip {t.name}'s restore (owner and last_cpu match) but holds "
                    f"{cpu.regs} while its memory image is {fpu.fpstate}")]


def context_balanced(world: World, task: int, cpu: int) -> list[Finding]:
    """A path that left preemption or bottom halves disabled (the kernel would complain of scheduling while
    atomic); reported, not deciding."""
    ctx = world.cpus[cpu].ctx
    if not ctx.atomic:
        return []
    name = world.tasks[task].name
    return [Finding("diagnostic", "context-balanced", name, cpu, "preempt=0 softirq=0",
                    f"preempt={ctx.preempt} softirq={ctx.softirq}",
                    f"{name}'s kernel path ended on CPU{cpu} with preempt={ctx.preempt} softirq={ctx.softirq}")]
