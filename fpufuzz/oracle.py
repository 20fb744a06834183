"""The reference oracle: what each user task's program must observe, independent of the lazy bookkeeping.

The oracle keeps one ghost value per user task, ``World.expect``: the register contents its program must see.
It changes only with the program's own actions (its register writes, exec's fresh image), which fpufuzz/ops.py
reports here; kernel code never reads or writes it. A verdict rests only on *violations*: a user-observable
value differs from the ghost at an observation point. Everything else the oracle checks is a *diagnostic*:
named, reported, never deciding, because correct kernels have legitimate windows where it does not hold.
"""

from __future__ import annotations

from typing import NamedTuple

from fpufuzz.state import GUEST_MODE, INIT, INIT_PART, KDATA_PARTS, USER, USER_MODE, Ctx, Value, World

# Violations decide verdicts. Each is checked at an observation point that user space can see.
VIOLATIONS = {
    "user-regs": "a task returned to user mode with registers that are not its program's (reference I1, values): "
                 "its own, the INIT user state of a signal handler (supervisor state kept), the frame's contents "
                 "after a successful sigreturn, INIT after a failed one, a fork child's parent's at the fork, what "
                 "a tracer wrote into a stopped tracee (reference I10)",
    "sigframe": "a task in a signal handler found its frame's FPU state different from what its program had when "
                "the signal came, or from what it last wrote there (reference I9)",
    "regset": "a read of a task's FPU registers through the FPU regset handed user space something else than the "
              "task's program state: what a tracer's PTRACE_GETFPREGS read from a stopped tracee, or the FPU note "
              "of a core dump of the dumping task (reference I10, reads; fpu_sync_fpstate())",
    "non-interference": "a step changed what another task observes: the registers of a task running in user mode "
                        "or guest code, or the signal frame in another task's memory (reference I9, 'no other "
                        "task')",
    "guest-regs": "a vCPU entered its guest (VM entry) with registers that are not the guest's: what the guest last "
                  "wrote, or INIT for a new vCPU -- across preemption, migration and kernel FPU use in between "
                  "(reference I11)",
    "kernel-fpu-data": "a kernel-FPU section's registers changed under it between the first instruction of its "
                       "SIMD computation and its result (a nested or interrupting use, a restore): it computed with "
                       "corrupted data, which user space sees as corrupted output (reference I7, values; config "
                       "softirq=yes)",
}

# Stale or corrupted registers reach a program as its registers, through a signal frame written from them, as a
# guest's registers at a VM entry (the same generic paths save and restore the attached guest buffer), or through
# the FPU regset (a tracer's read, a core dump's note: fpu_sync_fpstate() saves the same registers). Which point a
# run meets first depends on its trajectory; all four are one bug seen at different places (``same_bug``: the fuzz
# tests count a known bug found by it, and fpufuzz.shrink minimizes by it).
STALE_REGISTERS = frozenset({"user-regs", "sigframe", "guest-regs", "regset"})


def same_bug(invariant: str) -> frozenset[str]:
    """The invariants whose violation is the bug a violation of ``invariant`` shows."""
    return STALE_REGISTERS if invariant in STALE_REGISTERS else frozenset({invariant})


# Diagnostics never decide. Each names its legitimate windows.
DIAGNOSTICS = {
    "fpregs-state-consistent": "in user mode a task owns its CPU's registers: owner is its fpu, last_cpu is the "
                               "CPU, TIF_NEED_FPU_LOAD clear (reference I1, bookkeeping). Windows: none known "
                               "in v6.5-rc7, but a correct patch may change the bookkeeping",
    "cache-sound": "whenever a task's restore would be skipped (owner and last_cpu match a CPU) while its "
                   "memory image is the authoritative one, the registers equal the memory image (reference "
                   "I4). Windows: signal and ptrace paths that write the image before invalidating, under lock",
    "stale-cache": "no switched-out task's lazy-restore proof holds (owner and last_cpu) on a CPU outside any "
                   "locked section while that CPU's registers are not the task's memory image: one context switch "
                   "of the task there is a user-regs violation (``cache-sound`` without its windows). Windows: none "
                   "known; the fuzzer counts these steps and steers towards them (Hypothesis's target phase)",
    "kthread-tif": "kernel threads always have TIF_NEED_FPU_LOAD set (reference I8)",
    "kernel-fpu-owner": "while a CPU is in a kernel-FPU section its owner tag is NULL (reference I7)",
    "kernel-fpu-context": "kernel FPU was used where the context stack makes it unsafe (reference I7): in a hard "
                          "interrupt that interrupted a bottom-halves-off (fpregs_lock()) section or a softirq, or "
                          "over the live data of an interrupted kernel-FPU section. Judged from the modeled "
                          "contexts, never by asking the variant's irq_fpu_usable(); NMIs are not modeled",
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
    """exec() replaces the program: the new one starts from ``init_fpstate`` and has no signal frames and no
    vCPU."""
    return _set_guest_expect(_set_frame_expect(_set_expect(world, task, INIT), task, None), task, None)


def program_exit(world: World, task: int) -> World:
    """exit(): the program is gone; nothing observes this task again."""
    return _set_guest_expect(_set_frame_expect(_set_expect(world, task, None), task, None), task, None)


def program_created_vcpu(world: World, task: int) -> World:
    """KVM_CREATE_VCPU: the program's guest starts from the init state."""
    return _set_guest_expect(world, task, INIT)


def guest_wrote(world: World, task: int, user_part: int) -> World:
    """The guest on the task's vCPU wrote the registers: the guest must see them at its next entry; the VMM's
    program (``expect``) is untouched."""
    return _set_guest_expect(world, task, Value(user_part, world.expect_guest[task].sup))


def program_forked(world: World, parent: int, child: int) -> World:
    """clone(): a user child starts with the parent's registers as they are now (the parent cannot change them
    before the child's copy is made: it is in the kernel) and a copy of its memory, an outstanding signal
    frame included; a user worker runs no program."""
    if world.tasks[child].kind != USER:
        return _set_frame_expect(_set_expect(world, child, None), child, None)
    frames = list(world.frames)
    frames[child] = world.frames[parent]
    world = _set_guest_expect(world._replace(frames=tuple(frames)), child, None)  # KVM refuses the child's mm
    return _set_frame_expect(_set_expect(world, child, world.expect[parent]), child, world.expect_frame[parent])


def program_signalled(world: World, task: int) -> World:
    """A signal with a handler: the frame must hold the registers the program had; the handler starts from the
    init user state, with the task's supervisor state kept (``fpu__clear_user_states()``)."""
    old = world.expect[task]
    world = _set_frame_expect(world, task, old.user)
    return _set_expect(world, task, Value(INIT_PART, old.sup))


def program_wrote_frame(world: World, task: int, user_part: int) -> World:
    """The program wrote the FPU state in its own signal frame (user memory)."""
    return _set_frame_expect(world, task, user_part)


def program_sigreturn(world: World, task: int, succeeds: bool) -> World:
    """rt_sigreturn(): the frame's user state if the frame can be read, else the init user state; supervisor
    state is the kernel's and stays. Whether it can be read is the world's doing (the step names the page), never
    the kernel's answer."""
    old = world.expect[task]
    user = world.expect_frame[task] if succeeds else INIT_PART
    return _set_frame_expect(_set_expect(world, task, Value(user, old.sup)), task, None)


def program_traced_write(world: World, task: int, user_part: int) -> World:
    """A tracer's PTRACE_SETFPREGS on the stopped task: its program must see the new FXSAVE contents (the user
    part) when it runs again; the supervisor state is not in that regset and stays (reference I10). The tracee
    cannot run, and no other request on it can start, until the call is done: the ghost may change now."""
    old = world.expect[task]
    return _set_expect(world, task, Value(user_part, old.sup))


def _set_expect(world: World, task: int, value: Value | None) -> World:
    expect = list(world.expect)
    expect[task] = value
    return world._replace(expect=tuple(expect))


def _set_guest_expect(world: World, task: int, value: Value | None) -> World:
    if world.expect_guest[task] == value:
        return world
    expect = list(world.expect_guest)
    expect[task] = value
    return world._replace(expect_guest=tuple(expect))


def _set_frame_expect(world: World, task: int, value: int | None) -> World:
    expect = list(world.expect_frame)
    expect[task] = value
    return world._replace(expect_frame=tuple(expect))


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
    want_frame = world.expect_frame[task]
    if want_frame is not None:
        frame = world.frames[task]
        found = None if frame is None else frame.value
        if found != want_frame:
            findings.append(Finding("violation", "sigframe", t.name, t.cpu, want_frame, found,
                                    f"{t.name} entered user mode on CPU{t.cpu} in its signal handler with frame "
                                    f"contents {_user_part(found)}, but its program must find "
                                    f"{_user_part(want_frame)}"))
    return findings + _owns_registers(world, task, f"{t.name} in user mode on CPU{t.cpu}")


def observe_guest_entry(world: World, task: int) -> list[Finding]:
    """The task's vCPU has just entered its guest: the guest now reads the registers."""
    t = world.tasks[task]
    cpu = world.cpus[t.cpu]
    expected = world.expect_guest[task]
    findings = []
    if cpu.regs != expected:
        findings.append(Finding("violation", "guest-regs", t.name, t.cpu, expected, cpu.regs,
                                f"{t.name}'s guest entered on CPU{t.cpu} with registers {cpu.regs}, but it must "
                                f"see {expected}"))
    return findings + _owns_registers(world, task, f"{t.name} entered its guest on CPU{t.cpu}")


def _owns_registers(world: World, task: int, where: str) -> list[Finding]:
    """The bookkeeping side of an observation point (diagnostic): the task owns its CPU's registers -- owner tag
    its fpu, ``last_cpu`` this CPU, TIF_NEED_FPU_LOAD clear."""
    t = world.tasks[task]
    if world.cpus[t.cpu].owner == t.fpu and world.fpus[t.fpu].last_cpu == t.cpu and not t.tif:
        return []
    state = _bookkeeping(world, task)
    return [Finding("diagnostic", "fpregs-state-consistent", t.name, t.cpu, "valid, TIF clear", state,
                    f"{where} with {state}")]


def observe_regset(world: World, reader: int, target: int, regs: Value) -> list[Finding]:
    """A regset read handed ``regs`` to ``reader``'s user space (its ptrace buffer, or its core file when it reads
    itself): the FXSAVE area, the user part, must be ``target``'s program state."""
    expected = world.expect[target]
    if expected is None or regs.user == expected.user:
        return []
    who, whose = world.tasks[reader].name, world.tasks[target].name
    what = (f"{who}'s core dump recorded its FPU registers as {_user_part(regs.user)}" if reader == target else
            f"{who} read {whose}'s FPU registers through ptrace as {_user_part(regs.user)}")
    return [Finding("violation", "regset", whose, None, _user_part(expected.user), _user_part(regs.user),
                    f"{what}, but {whose}'s program state is {_user_part(expected.user)}")]


def _user_part(part: int | None) -> str:
    return "nothing" if part is None else str(Value(part, INIT_PART)).split("/")[0]


def non_interference(before: World, after: World, actors: set[int]) -> list[Finding]:
    """No step changes what a task it does not act for observes: the registers of a task running in user mode
    (it observes them at every instruction) and the signal frame in its memory."""
    findings = []
    for index, t in enumerate(after.tasks):
        if index in actors or not t.alive or not before.tasks[index].alive:
            continue
        if before.frames[index] != after.frames[index]:
            findings.append(Finding("violation", "non-interference", t.name, None, before.frames[index],
                                    after.frames[index], f"{t.name}'s signal frame changed from "
                                    f"{before.frames[index]} to {after.frames[index]} in a step not its own"))
        cpu = after.running_on(index)
        if t.mode in (USER_MODE, GUEST_MODE) and cpu is not None and after.cpus[cpu].regs != before.cpus[cpu].regs:
            findings.append(Finding("violation", "non-interference", t.name, cpu, before.cpus[cpu].regs,
                                    after.cpus[cpu].regs, f"{t.name}, running in {t.mode} mode on CPU{cpu}, had its "
                                    f"registers changed to {after.cpus[cpu].regs} in a step not its own"))
    return findings


def _bookkeeping(world: World, task: int) -> str:
    t = world.tasks[task]
    owner = world.cpus[t.cpu].owner
    owner_name = "NULL" if owner is None else owner_of(world, owner)
    return f"owner={owner_name} last_cpu={world.fpus[t.fpu].last_cpu} TIF={int(t.tif)}"


def owner_of(world: World, fpu: int) -> str:
    """The task whose struct fpu is ``fpu``; a tag naming a freed one reads ``u1's freed fpu``."""
    for t in world.tasks:
        if t.fpu == fpu:
            if not t.alive:
                return f"{t.name or 'spare'}'s freed fpu"
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
        if not t.alive or t.mode == "new":
            continue
        if t.kind != USER and not t.tif:
            findings.append(Finding("diagnostic", "kthread-tif", t.name, t.cpu, True, False,
                                    f"kernel thread {t.name} has TIF_NEED_FPU_LOAD clear"))
        if t.kind == USER:
            findings.extend(_cache_sound(world, index))
    for index, cpu in stale_tasks(world).items():
        name = world.tasks[index].name
        findings.append(Finding("diagnostic", "stale-cache", name, cpu, None, None,
                                f"{name} is switched out and CPU{cpu} would skip its restore over registers that are "
                                f"not its own, outside any locked section: switching {name} in there shows them"))
    return findings


def stale_caches(world: World) -> int:
    """How many user tasks, switched out, have a lazy-restore proof that holds over registers that are not their
    image, on a CPU outside any atomic section: the ``cache-sound`` diagnostic without its legitimate windows
    (those are inside the running task's own path, or inside a locked section on that CPU). One context switch
    of such a task onto that CPU skips its restore, so a correct kernel has none of these states; the fuzzer
    steers towards them (fpufuzz.machine, ``stale-cache``)."""
    return len(stale_tasks(world))


def stale_tasks(world: World) -> dict[int, int]:
    """The CPU of each such task, by task index."""
    found = {}
    for index, t in enumerate(world.tasks):
        if t.kind != USER or not t.alive or t.mode == "new" or world.running_on(index) is not None:
            continue
        last = world.fpus[t.fpu].last_cpu
        if last >= 0 and not world.cpus[last].ctx.atomic and _cache_sound(world, index):
            found[index] = last
    return found


def _cache_sound(world: World, index: int) -> list[Finding]:
    t = world.tasks[index]
    fpu = world.fpus[t.fpu]
    running = world.cpus[t.cpu].current == index
    memory_authoritative = t.tif or not running
    if not memory_authoritative or fpu.last_cpu < 0:
        return []
    cpu = world.cpus[fpu.last_cpu]
    image = fpu.guest if fpu.in_guest else fpu.fpstate  # the buffer fpu->fpstate points at
    if cpu.owner != t.fpu or cpu.regs == image:
        return []
    return [Finding("diagnostic", "cache-sound", t.name, fpu.last_cpu, image, cpu.regs,
                    f"CPU{fpu.last_cpu} would skip {t.name}'s restore (owner and last_cpu match) but holds "
                    f"{cpu.regs} while its memory image is {image}")]


def kernel_fpu_context(cpu: int, ctx: Ctx, regs: Value, context: str, use: str | None) -> list[Finding]:
    """Kernel code in ``context`` ("task", "softirq", "hardirq") on ``cpu`` clobbers the registers for kernel FPU use:
    ``use`` is "simd" for the computation's first instruction, None for the control-register setup of
    ``kernel_fpu_begin()``. Unsafe (reference I7) if the registers hold an interrupted section's live data, or if
    a hard interrupt's use interrupted a bottom-halves-off section (``fpregs_lock()``: a task's registers may be
    half-way through a save or restore there) or a softirq. A diagnostic: what the interrupted code then sees
    decides."""
    findings = []
    for other, part in KDATA_PARTS.items():
        if regs.user == part and other != context:
            findings.append(Finding("diagnostic", "kernel-fpu-context", None, cpu, None, context,
                                    f"kernel FPU use in {context} context on CPU{cpu} clobbered the live data of an "
                                    f"interrupted {other}-context kernel-FPU section"))
    if use == "simd" and context == "hardirq" and (ctx.softirq or ctx.serving):
        region = "a bottom-halves-off (fpregs_lock()) section" if ctx.softirq else "a softirq"
        findings.append(Finding("diagnostic", "kernel-fpu-context", None, cpu, None, context,
                                f"kernel FPU used on CPU{cpu} by a hard interrupt that interrupted {region}"))
    return findings


def kernel_fpu_result(cpu: int, regs: Value, context: str, task: str | None = None) -> list[Finding]:
    """A kernel-FPU section in ``context`` on ``cpu`` reads the result of its computation: its own data must still be
    in the registers (deciding: the section computed with whatever it found)."""
    expected = KDATA_PARTS[context]
    if regs.user == expected:
        return []
    return [Finding("violation", "kernel-fpu-data", task, cpu, Value(expected, regs.sup), regs,
                    f"a {context}-context kernel-FPU section on CPU{cpu}"
                    + (f" (current {task})" if task else "")
                    + f" found {Value(regs.user, regs.sup)} in the registers at its result instead of its own data "
                      f"{Value(expected, regs.sup)}: its computation used corrupted data")]


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
