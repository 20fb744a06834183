"""The operations: what the world around the kernel can do next, and their legality.

One ``Step`` is one thing that happens on the machine:

=============================  ================================================================================
``user_write task=u0``         the task, running in user mode, writes its registers (a fresh value)
``syscall task=u0 call=C``     the task enters the kernel: ``execve``, ``simd`` (uses kernel FPU), ``getpid``,
                               ``exit`` or ``abort`` (SIGABRT: a core dump, then death)
``fork task=u0 child=u2``      the task calls clone(); the child (``u*`` a user task, ``w*`` a user worker) is
                               created in the most recently freed task slot
``signal task=u0 frame=P``     a signal is sent to the task, running in user mode; its handler's frame will go
                               to a page that is ``present``, ``absent`` (faults once) or ``bad`` (cannot be
                               faulted in: delivery fails, the task dies of SIGSEGV)
``frame_write task=u0``        the program (in a handler) writes the FPU state in its signal frame
``sigreturn task=u0 frame=P``  the program returns from its handler; the frame's page is ``present``, ``absent``
  ``[xrstor=modifies]``        or ``bad``, or the fpstate pointer is ``null``; a faulting XRSTOR may leave the
  ``[abi=ia32]``               registers ``modified``; an ``ia32`` frame takes the compat path
``stop task=u1``               the task, running in user mode, is stopped for its tracer (PTRACE_INTERRUPT): it
                               enters the kernel and sleeps in ``ptrace_stop()`` on its way back
``ptrace task=u0 target=u1``   the task, in user mode, makes a ptrace request on a stopped task: ``getfpregs``,
  ``req=R``                    ``setfpregs`` (new contents its program chose) or ``cont`` (resume it)
``kwork task=k0 work=W``       a kernel thread or user worker at the top of its loop does ``simd`` or ``exit``
``run task=u0 [until=L]``      the task runs in the kernel to its next interleaving point, or to point ``L``
                               (``until=done``: to the end of its path: user mode, or the top of its loop)
``schedule cpu=0 next=k0``     the CPU switches from its current task (which must be preemptible) to ``next``
``guest_write task=u0``        the task's vCPU runs guest code, which writes the registers (a fresh value)
``vmexit task=u0 exit=E``      the guest exits: ``kernel`` (KVM handles it and enters the guest again) or
                               ``user`` (KVM_RUN returns to the VMM); the kernel path runs to its next point
``irq cpu=0 work=simd``        a hard interrupt arrives on the CPU and its handler does ``work``: ``simd`` (uses
                               kernel FPU) or ``softirq`` (raises a softirq whose action uses kernel FPU; it is
                               served on the interrupt's exit, or where bottom halves are enabled again)
=============================  ================================================================================

The syscalls ``kvm_create_vcpu`` and ``kvm_run`` (config ``kvm=yes``) create the program's vCPU and run it.

The fuzzer, the explorer and replay all go through ``apply()`` and ``enabled()``: one model, one oracle.
"""

from __future__ import annotations

import shlex
from typing import NamedTuple

from fpufuzz import oracle
from fpufuzz.config import Config, initial_world
from fpufuzz.errors import FpufuzzError, IllegalStep, ModelError
from fpufuzz.oracle import Finding
from fpufuzz.runtime import PTRACE_CONT, PTRACE_GETFPREGS, PTRACE_SETFPREGS, Pause, PtRegs, TaskDead
from fpufuzz.state import (GUEST_MODE, IDLE, INIT_PART, KERNEL_MODE, KERNEL_PART, KTHREAD, NEW_MODE, PAGE_ABSENT,
                           PAGE_BAD, PAGE_NULL, PAGE_PRESENT, STOP_NONE, STOP_TRACED, STOP_TRAP, USER, USER_MODE,
                           WORKER, Cont, Frame, TaskId, Value, World)

SYSCALLS = {"execve": "sys_execve", "simd": "simd_work", "getpid": "sys_getpid", "exit": "sys_exit",
            "abort": "sys_tgkill",
            "kvm_create_vcpu": ("kvm_vm_ioctl", "KVM_CREATE_VCPU"), "kvm_run": ("kvm_vcpu_ioctl", "KVM_RUN")}
# The operation family (a config option) each kind of step belongs to; steps of no family are the core model's.
# A kind is the op, or the op with the argument that selects its kernel path (``kind()``).
FAMILY = {"fork": "lifecycle", "syscall call=exit": "lifecycle", "kwork work=exit": "lifecycle",
          "signal": "signals", "frame_write": "signals", "sigreturn": "signals",
          "syscall call=kvm_create_vcpu": "kvm", "syscall call=kvm_run": "kvm", "guest_write": "kvm", "vmexit": "kvm",
          "irq work=softirq": "softirq",
          "stop": "ptrace", "ptrace": "ptrace", "syscall call=abort": "ptrace"}
KVM_CALLS = ("kvm_create_vcpu", "kvm_run")
VMEXITS = ("kernel", "user")
PTRACE_REQUESTS = {"getfpregs": PTRACE_GETFPREGS, "setfpregs": PTRACE_SETFPREGS, "cont": PTRACE_CONT}
WORKS = {"simd": "simd_work", "softirq": "raise_simd_softirq"}  # what an interrupt handler does
KWORKS = {"simd": "simd_work", "exit": "do_exit"}  # what a kernel thread or user worker does
CHILD_KINDS = {"u": USER, "w": WORKER}  # a fork child's name says its kind
SIGNAL_FRAMES = (PAGE_PRESENT, PAGE_ABSENT, PAGE_BAD)
SIGRETURN_FRAMES = (PAGE_PRESENT, PAGE_ABSENT, PAGE_BAD, PAGE_NULL)
XRSTOR = ("keeps", "modifies")
ABIS = ("64", "ia32")
SIGRETURN_PATHS = {"64": "sys_rt_sigreturn", "ia32": "sys32_rt_sigreturn"}
DONE = "done"
PATH_CHOICES = ("call", "work", "req", "exit", "frame")  # step arguments that choose which kernel path runs

# op -> ordered parameters; a value of None means free text, else the allowed values.
OPS: dict[str, dict[str, object]] = {
    "user_write": {"task": "task"},
    "syscall": {"task": "task", "call": tuple(SYSCALLS)},
    "fork": {"task": "task", "child": "name"},
    "signal": {"task": "task", "frame": SIGNAL_FRAMES},
    "frame_write": {"task": "task"},
    "sigreturn": {"task": "task", "frame": SIGRETURN_FRAMES, "xrstor": XRSTOR, "abi": ABIS},
    "stop": {"task": "task"},
    "ptrace": {"task": "task", "target": "task", "req": tuple(PTRACE_REQUESTS)},
    "kwork": {"task": "task", "work": tuple(KWORKS)},
    "run": {"task": "task", "until": "label?"},
    "schedule": {"cpu": "cpu", "next": "task"},
    "irq": {"cpu": "cpu", "work": tuple(WORKS)},
    "guest_write": {"task": "task"},
    "vmexit": {"task": "task", "exit": VMEXITS},
}

# op -> the argument that selects its kernel path (``kind()``), for the ops that have one
_PATH_ARG = {op: name for op, params in OPS.items() for name in PATH_CHOICES if isinstance(params.get(name), tuple)}
# (op, path argument's value) -> family, for the kinds FAMILY names with their argument ("syscall call=exit")
_ARG_FAMILY = {(k.partition(" ")[0], k.partition("=")[2]): f for k, f in FAMILY.items() if " " in k}

# Arguments that may be left out, with the value they stand for (``xrstor``: on a machine with config
# ``xrstor_fault=modifies``, modifies; see ``xrstor_fault()``).
DEFAULTS = {("sigreturn", "xrstor"): "keeps", ("sigreturn", "abi"): "64"}


class Step(NamedTuple):
    """One operation with its arguments, hashable; ``str()`` is its corpus spelling."""

    op: str
    args: tuple  # ((name, value), ...) in OPS order

    @classmethod
    def make(cls, op: str, **kwargs) -> "Step":
        return cls(op, tuple((name, kwargs[name]) for name in OPS[op] if kwargs.get(name) is not None))

    def get(self, name: str, default=None):
        for key, value in self.args:
            if key == name:
                return value
        return default

    def __str__(self) -> str:
        return " ".join([self.op] + [f"{key}={_quote(value)}" for key, value in self.args])


def _quote(value) -> str:
    text = str(value)
    return shlex.quote(text) if any(c.isspace() or c in "\"'#" for c in text) else text


class LabelNotReached(IllegalStep):
    """``run until=L`` on a variant whose path never pauses at ``L``: the case does not apply ("n/a")."""


class StepResult(NamedTuple):
    world: World
    findings: tuple[Finding, ...]


class Model:
    """A variant's kernel on a configured machine: the thing steps are applied to."""

    def __init__(self, variant, config: Config, ops: tuple[str, ...] | None = None,
                 actors: frozenset[str] | None = None):
        self.variant = variant
        self.config = config
        self.kernel_class = variant.kernel_class
        self.ops = None if ops is None else check_ops(ops)  # restrict what the world may do (explorer --ops)
        self.actors = actors  # restrict which tasks steps may name (idle tasks always may); None: all

    def initial(self) -> World:
        world = initial_world(self.config)
        for index, task in enumerate(world.tasks):
            if task.cont is not None:
                world = _set_task(world, index, cont=self.fresh_path(world, index, task.cont.path, *task.cont.args))
        return world

    def fresh_path(self, world: World, task: int, path: str, *args) -> Cont:
        """``path`` about to start for ``task``: nothing executed, paused before its first event."""
        return Cont(path, args, (), self.kernel(world, world.tasks[task].cpu).probe(path, args))

    def kernel(self, world: World, cpu: int, replay: tuple = (), pausable: bool = True, trace=None):
        k = self.kernel_class(world, cpu, replay, pausable, trace)
        k.config = self.config
        return k

    def apply(self, world: World, step: Step, trace: list | None = None) -> StepResult:
        """Apply one step; raise IllegalStep if the kernel could not take it here."""
        handler = _HANDLERS.get(step.op)
        if handler is None:
            raise IllegalStep(f"unknown operation {step.op!r}; known: {', '.join(OPS)}")
        needs = step_family(step)
        if needs is not None:
            _check_enabled(self.config, needs)
        result = handler(self, world, step, trace)
        others = oracle.non_interference(world, result.world, _actors(world, step))
        return result._replace(findings=result.findings + tuple(others)) if others else result

    def enabled(self, world: World) -> list[Step]:
        """Every step legal in ``world``, with ``run`` going to the next interleaving point."""
        steps = enabled(self.config, world)
        if self.ops is not None:
            steps = [s for s in steps if op_name(s) in self.ops or s.op in self.ops]
        if self.actors is not None:
            steps = [s for s in steps if all(s.get(arg) is None or s.get(arg) in self.actors
                                             or s.get(arg).startswith("idle") for arg in TASK_ARGS)]
        return steps


# The arguments of a step that name a task.
TASK_ARGS = ("task", "next", "target", "child")


def op_name(step: Step) -> str:
    """The step's name as ``--ops`` spells it: ``syscall:execve``, ``irq:simd``, ``ptrace:cont``, or the op."""
    value = step.get("call") or step.get("work") or step.get("req")
    return step.op if value is None else f"{step.op}:{value}"


def op_names() -> list[str]:
    """What ``--ops`` accepts: operation names, and ``syscall:CALL`` / ``kwork:WORK`` / ``irq:WORK``."""
    names = list(OPS)
    for op, params in OPS.items():
        for allowed in params.values():
            if isinstance(allowed, tuple):
                names.extend(f"{op}:{value}" for value in allowed)
    return names


def check_ops(ops) -> frozenset[str]:
    known = op_names()
    for name in ops:
        if name not in known:
            raise FpufuzzError(f"--ops: unknown operation {name!r}; known: {', '.join(known)}")
    return frozenset(ops)


# ---------------------------------------------------------------- argument helpers


def _task(world: World, step: Step, key: str | None = None) -> int:
    """The live task the step names (``key``: under that argument)."""
    name = step.get(key) if key else step.get("task") if step.op not in ("schedule",) else step.get("next")
    try:
        index = world.task_index(name)
    except KeyError:
        index = None
    if index is None or not world.tasks[index].alive:
        names = ", ".join(t.name for t in world.tasks if t.alive)
        gone = " (it exited)" if index is not None else ""
        raise IllegalStep(f"no task {name!r} on this machine{gone} (tasks: {names})") from None
    return index


def _cpu(world: World, step: Step) -> int:
    cpu = step.get("cpu")
    if not isinstance(cpu, int) or not 0 <= cpu < len(world.cpus):
        raise IllegalStep(f"no CPU {cpu!r} on this machine (CPUs 0-{len(world.cpus) - 1})")
    return cpu


def _running(world: World, index: int, what: str) -> int:
    cpu = world.running_on(index)
    if cpu is None:
        raise IllegalStep(f"{world.tasks[index].name} is not running on any CPU, so it cannot {what}")
    return cpu


def _set_task(world: World, index: int, **changes) -> World:
    tasks = list(world.tasks)
    tasks[index] = tasks[index]._replace(**changes)
    return world._replace(tasks=tuple(tasks))


# ---------------------------------------------------------------- user space


def _user_write(model: Model, world: World, step: Step, trace) -> StepResult:
    index = _task(world, step)
    cpu = _running(world, index, "write its registers")
    if world.tasks[index].mode != USER_MODE:
        raise IllegalStep(f"{world.tasks[index].name} is in the kernel, not in user mode")
    world, fresh = _write_fresh(world, cpu)
    return StepResult(oracle.program_wrote(world, index, fresh), ())


def _write_fresh(world: World, cpu: int) -> tuple[World, int]:
    """Code running on ``cpu`` (a program, a guest) writes a fresh value into the registers' user part."""
    fresh = world.fresh + 1
    cpus = list(world.cpus)
    cpus[cpu] = cpus[cpu]._replace(regs=Value(fresh, cpus[cpu].regs.sup))
    return world._replace(cpus=tuple(cpus), fresh=fresh), fresh


def _syscall(model: Model, world: World, step: Step, trace) -> StepResult:
    index = _task(world, step)
    _running(world, index, "make a system call")
    task = world.tasks[index]
    if task.kind != USER or task.mode != USER_MODE:
        raise IllegalStep(f"{task.name} is not in user mode, so it cannot make a system call")
    call = step.get("call")
    if call not in SYSCALLS:
        raise IllegalStep(f"unknown syscall {call!r}; known: {', '.join(SYSCALLS)}")
    if call in KVM_CALLS:
        _check_vcpu(model.config, world, index, call)
    target = SYSCALLS[call] if isinstance(SYSCALLS[call], tuple) else (SYSCALLS[call],)
    world = _set_task(world, index, mode=KERNEL_MODE, cont=model.fresh_path(world, index, "do_syscall_64", *target))
    if call == "kvm_create_vcpu":
        world = oracle.program_created_vcpu(world, index)
    if call == "execve":
        world = oracle.program_exec(world, index)
    if call == "exit":
        world = oracle.program_exit(world, index)
    return StepResult(world, ())


def _check_vcpu(config: Config, world: World, index: int, call: str) -> None:
    has_vcpu = world.expect_guest[index] is not None
    if call == "kvm_create_vcpu" and has_vcpu:
        raise IllegalStep(f"{world.tasks[index].name}'s program has created its vCPU already (one per program)")
    if call == "kvm_run" and not has_vcpu:
        raise IllegalStep(f"{world.tasks[index].name}'s program has no vCPU; syscall call=kvm_create_vcpu first")


def _in_guest_mode(model: Model, world: World, step: Step, what: str) -> int:
    index = _task(world, step)
    if world.tasks[index].mode != GUEST_MODE:
        raise IllegalStep(f"{world.tasks[index].name} is not running guest code, so it cannot {what}")
    return index


def _guest_write(model: Model, world: World, step: Step, trace) -> StepResult:
    """The guest, running on the task's vCPU, writes the registers: the guest's state, not the VMM's."""
    index = _in_guest_mode(model, world, step, "write guest registers")
    cpu = world.tasks[index].cpu
    world, fresh = _write_fresh(world, cpu)
    return StepResult(oracle.guest_wrote(world, index, fresh), ())


def _vmexit(model: Model, world: World, step: Step, trace) -> StepResult:
    """The guest exits (a host interrupt, HLT, an MSR access: ``kernel``; I/O the VMM emulates: ``user``); the
    task's kernel path resumes at the VM exit and runs to its next interleaving point."""
    index = _in_guest_mode(model, world, step, "exit the guest")
    reason = _choice(step, "exit", VMEXITS)
    findings: list[Finding] = []
    world, _ = _slice(model, world, index, world.tasks[index].cpu, findings, trace, exit_reason=reason)
    return StepResult(world, tuple(findings))


def _in_user_mode(world: World, step: Step, what: str) -> int:
    index = _task(world, step)
    _running(world, index, what)
    task = world.tasks[index]
    if task.kind != USER or task.mode != USER_MODE:
        raise IllegalStep(f"{task.name} is not in user mode, so it cannot {what}")
    return index


def kind(step: Step) -> str:
    """The step's kind: its op, with the argument that selects its kernel path if it has one (``syscall
    call=execve``, ``irq work=softirq``, ``sigreturn frame=null``, ...)."""
    name = _PATH_ARG.get(step.op)
    value = None if name is None else step.get(name)
    return step.op if value is None else f"{step.op} {name}={value}"


def family(kind: str) -> str | None:
    """The operation family of steps of this kind, None for the core model's."""
    return FAMILY.get(kind) or FAMILY.get(kind.partition(" ")[0])


def step_family(step: Step) -> str | None:
    """``family(kind(step))`` without building the kind's name (every step goes through it)."""
    name = _PATH_ARG.get(step.op)
    return FAMILY.get(step.op) or (None if name is None else _ARG_FAMILY.get((step.op, step.get(name))))


def enabled_kind(config: Config, kind: str) -> bool:
    """Whether the machine has the operation family of steps of this kind."""
    needs = family(kind)
    return needs is None or getattr(config, needs)


def kinds(config: Config) -> set[str]:
    """Every kind of step a machine with ``config``'s operation families can take (whether its size allows one:
    ``kwork`` needs a kernel thread or a forked worker)."""
    found = set()
    for op, params in OPS.items():
        choices = [f"{op} {name}={value}" for name in PATH_CHOICES if isinstance(params.get(name), tuple)
                   for value in params[name]]
        found |= {k for k in choices or [op] if enabled_kind(config, k)}
    if not config.kthreads and not config.lifecycle:
        found = {k for k in found if not k.startswith("kwork")}
    return found


def _check_enabled(config: Config, family: str) -> None:
    if not getattr(config, family):
        raise IllegalStep(f"the machine runs without {family} operations; enable them with config {family}=yes")


def _choice(step: Step, name: str, allowed) -> str:
    value = step.get(name, DEFAULTS.get((step.op, name)))
    if value not in allowed:
        raise IllegalStep(f"{step.op}: {name}={value!r} is not one of {', '.join(allowed)}")
    return value


def _fork(model: Model, world: World, step: Step, trace) -> StepResult:
    """The parent enters clone(); ``copy_process()`` will allocate the child's task_struct (the most recently freed
    slot when it gets there). A free slot is needed now, so the step means something; a fork that finds none by
    then fails with -ENOMEM, as in the kernel."""
    parent = _in_user_mode(world, step, "fork")
    name = step.get("child")
    if not isinstance(name, str) or name[:1] not in CHILD_KINDS or not name[1:].isdigit():
        raise IllegalStep(f"fork: child={name!r}: name the child u<N> (a user task) or w<N> (a user worker)")
    if any(t.name == name for t in world.tasks) or name in _pending_children(world):
        # An exited task's slot keeps its name until a fork reuses it; refusing that name too keeps every name in
        # a case one task (casegen renames tasks by name).
        raise IllegalStep(f"fork: child={name}: a task, an exited one, or a fork in progress already has that name")
    if not world.free:
        raise IllegalStep(f"fork: no free task slot (the machine has {len(world.tasks)}; an exit frees one, "
                          "config spare=N adds some)")
    cont = model.fresh_path(world, parent, "do_syscall_64", "sys_clone", name)
    return StepResult(_set_task(world, parent, mode=KERNEL_MODE, cont=cont), ())


def _signal(model: Model, world: World, step: Step, trace) -> StepResult:
    """A signal is sent to a task running in user mode: the IPI brings it into the kernel, and the signal is
    delivered on its way back. The handler's frame goes to a page in the state the step names."""
    index = _in_user_mode(world, step, "take a signal")
    if world.expect_frame[index] is not None or world.tasks[index].sigpending:
        raise IllegalStep(f"{world.tasks[index].name} is in its handler already (the signal is blocked there); "
                          "sigreturn first")
    page = _choice(step, "frame", SIGNAL_FRAMES)
    world = _set_frame(world, index, Frame(KERNEL_PART, page))  # stack garbage until the kernel writes the frame
    world = oracle.program_signalled(world, index)
    cont = model.fresh_path(world, index, "irqentry_exit_to_user_mode")
    return StepResult(_set_task(world, index, mode=KERNEL_MODE, cont=cont, sigpending=True), ())


def _frame_write(model: Model, world: World, step: Step, trace) -> StepResult:
    """The program writes the FPU part of its signal frame (it owns that memory); the page is present after."""
    index = _in_user_mode(world, step, "write its signal frame")
    if world.expect_frame[index] is None:
        raise IllegalStep(f"{world.tasks[index].name} has no signal frame (no signal was delivered)")
    fresh = world.fresh + 1
    world = _set_frame(world._replace(fresh=fresh), index, Frame(fresh, PAGE_PRESENT))
    return StepResult(oracle.program_wrote_frame(world, index, fresh), ())


def _sigreturn(model: Model, world: World, step: Step, trace) -> StepResult:
    """The handler returns: rt_sigreturn(), with the frame's page in the state the step names."""
    index = _in_user_mode(world, step, "return from a handler")
    if world.expect_frame[index] is None:
        raise IllegalStep(f"{world.tasks[index].name} is not in a signal handler")
    page = _choice(step, "frame", SIGRETURN_FRAMES)
    modifies = xrstor_fault(model.config, step) == "modifies"
    abi = _choice(step, "abi", ABIS)
    world = _set_frame(world, index, world.frames[index]._replace(page=page, xrstor_modifies=modifies))
    world = oracle.program_sigreturn(world, index, succeeds=page in (PAGE_PRESENT, PAGE_ABSENT))
    cont = model.fresh_path(world, index, "do_syscall_64", SIGRETURN_PATHS[abi])
    return StepResult(_set_task(world, index, mode=KERNEL_MODE, cont=cont), ())


def xrstor_allowed(config: Config) -> tuple[str, ...]:
    """What a faulting XRSTOR from a signal frame may do to the registers on this machine (config
    ``xrstor_fault``): the hardware may modify them, and whether it does is the world's choice unless the machine
    narrows it."""
    return XRSTOR if config.xrstor_fault == "either" else (config.xrstor_fault,)


def xrstor_fault(config: Config, step: Step) -> str:
    """The ``xrstor=`` of a sigreturn step: as written, or the machine's default when left out (``keeps``, or
    ``modifies`` on a machine whose XRSTOR always modifies). A choice the config forbids is refused, naming the
    field."""
    allowed = xrstor_allowed(config)
    value = step.get("xrstor")
    if value is None:
        return allowed[0]
    if value not in XRSTOR:
        raise IllegalStep(f"sigreturn: xrstor={value!r} is not one of {', '.join(XRSTOR)}")
    if value not in allowed:
        raise IllegalStep(f"sigreturn: xrstor={value} is forbidden by config xrstor_fault={config.xrstor_fault} "
                          f"(a faulting XRSTOR on this machine always {config.xrstor_fault} the registers)")
    return value


def _stop(model: Model, world: World, step: Step, trace) -> StepResult:
    """The task's tracer stops it (PTRACE_INTERRUPT): the task, running in user mode, is kicked into the kernel with
    the stop pending and will stop in ``get_signal()`` → ``ptrace_stop()`` on its way back. Simplification: the
    tracer's PTRACE_INTERRUPT call touches no FPU state and is not modeled; any other user task may trace it."""
    index = _in_user_mode(world, step, "be stopped for a tracer")
    if not tracers(world, index):
        raise IllegalStep(f"{world.tasks[index].name} has no tracer: no other user task is alive")
    cont = model.fresh_path(world, index, "irqentry_exit_to_user_mode")
    return StepResult(_set_task(world, index, mode=KERNEL_MODE, cont=cont, stop=STOP_TRAP), ())


def _ptrace(model: Model, world: World, step: Step, trace) -> StepResult:
    """A tracer's ptrace(2) request on a task stopped for it. For ``setfpregs`` the tracer's program chooses new
    contents (a fresh value), and the tracee's program must see them when it runs again (reference I10)."""
    tracer = _in_user_mode(world, step, "make a ptrace request")
    target = _task(world, step, "target")
    req = _choice(step, "req", PTRACE_REQUESTS)
    name = world.tasks[target].name
    if target == tracer:
        raise IllegalStep(f"ptrace: {name} cannot trace itself")
    if world.tasks[target].stop != STOP_TRACED:
        raise IllegalStep(f"ptrace: {name} is not stopped for a tracer (stop task={name} first)")
    if _ptrace_busy(world, target):
        raise IllegalStep(f"ptrace: another request on {name} is in progress")
    data = 0
    if req == "setfpregs":
        fresh = world.fresh + 1
        data = Value(fresh, INIT_PART)  # the tracer's buffer: its FXSAVE area is the user part
        world = oracle.program_traced_write(world._replace(fresh=fresh), target, fresh)
    cont = model.fresh_path(world, tracer, "do_syscall_64", "sys_ptrace", PTRACE_REQUESTS[req], TaskId(target), data)
    return StepResult(_set_task(world, tracer, mode=KERNEL_MODE, cont=cont), ())


def tracers(world: World, index: int) -> list[int]:
    """The tasks that may trace ``index``: the other live user tasks that are not stopped for a tracer themselves
    (so a stop never leaves the machine without a tracer that can resume it)."""
    return [i for i, t in enumerate(world.tasks)
            if i != index and t.kind == USER and t.alive and t.mode != NEW_MODE and t.stop == STOP_NONE]


def _ptrace_busy(world: World, target: int) -> bool:
    """A ptrace request on ``target`` is in progress (the tracer is inside ``sys_ptrace``)."""
    return any(t.alive and t.cont is not None and t.cont.args[:1] == ("sys_ptrace",) and t.cont.args[2] == target
               for t in world.tasks)


def _set_frame(world: World, index: int, frame: Frame | None) -> World:
    frames = list(world.frames)
    frames[index] = frame
    return world._replace(frames=tuple(frames))


def _kwork(model: Model, world: World, step: Step, trace) -> StepResult:
    index = _task(world, step)
    task = world.tasks[index]
    if task.kind not in (KTHREAD, WORKER):
        raise IllegalStep(f"{task.name} is not a kernel thread or user worker")
    _running(world, index, "start work")
    if task.cont is not None:
        raise IllegalStep(f"{task.name} is busy at {task.cont.label}; run it to the end first")
    work = step.get("work")
    if work not in KWORKS:
        raise IllegalStep(f"unknown work {work!r}; known: {', '.join(KWORKS)}")
    return StepResult(_set_task(world, index, cont=model.fresh_path(world, index, "kthread_work", KWORKS[work])), ())


# ---------------------------------------------------------------- running kernel paths


def _run(model: Model, world: World, step: Step, trace) -> StepResult:
    """Run the task's path; it stops where ``until`` says, or where the task leaves the kernel: user mode, death,
    guest mode (VM entry), or sleep (``ptrace_stop()``); ``until=done`` stops at the last two too."""
    index = _task(world, step)
    cpu = _running(world, index, "run")
    if world.tasks[index].cont is None:
        raise IllegalStep(f"{world.tasks[index].name} is not in a kernel path (it is in user mode or idle)")
    if world.tasks[index].mode == GUEST_MODE:
        raise IllegalStep(f"{world.tasks[index].name} runs guest code; a vmexit step brings it back to the kernel")
    until = step.get("until")
    findings: list[Finding] = []
    while True:
        world, paused = _slice(model, world, index, cpu, findings, trace)
        if until is None or (paused == until) or (paused is None and until == DONE):
            return StepResult(world, tuple(findings))
        if paused is None:
            raise LabelNotReached(f"{world.tasks[index].name}'s path ended without pausing at {until!r}")
        if world.tasks[index].mode == GUEST_MODE:
            if until == DONE:
                return StepResult(world, tuple(findings))
            raise LabelNotReached(f"{world.tasks[index].name} entered its guest before pausing at {until!r}")
        if world.running_on(index) is None:  # it went to sleep there (ptrace_stop())
            if until == DONE:
                return StepResult(world, tuple(findings))
            raise LabelNotReached(f"{world.tasks[index].name} went to sleep at {paused!r} before {until!r}")


def _slice(model: Model, world: World, index: int, cpu: int, findings: list, trace, exit_reason=None):
    """Run ``index``'s path from where it is paused to the next interleaving point or its end (from guest mode:
    through the VM exit ``exit_reason``)."""
    cont = world.tasks[index].cont
    k = model.kernel(world, cpu, cont.log, trace=trace)
    k.exit_reason = exit_reason
    try:
        getattr(k, cont.path)(*cont.args)
    except Pause as pause:
        findings.extend(_warnings(world, k, cpu))
        findings.extend(_readouts(k.world(world), k))
        new = _label_new_tasks(model, _forked(world, k.world(world), index))
        new = _set_task(new, index, cont=cont._replace(log=k.saved_log(), label=pause.label))
        if new.tasks[index].mode == GUEST_MODE:
            findings.extend(oracle.observe_guest_entry(new, index))
        return new, pause.label
    except TaskDead:
        findings.extend(_warnings(world, k, cpu))
        findings.extend(_readouts(k.world(world), k))
        return k.world(world), None
    findings.extend(_warnings(world, k, cpu))
    findings.extend(_readouts(k.world(world), k))
    world = _set_task(_label_new_tasks(model, _forked(world, k.world(world), index)), index, cont=None)
    task = world.tasks[index]
    if task.kind == USER:
        if task.mode != USER_MODE:
            raise ModelError(f"{task.name}'s path {cont.path} ended without returning to user mode")
        findings.extend(oracle.observe_user_entry(world, index))
    findings.extend(oracle.context_balanced(world, index, cpu))
    return world, None


def _actors(world: World, step: Step) -> set[int]:
    """The tasks a step acts for: the task it names (and a fork's child), or the tasks a CPU step switches or
    interrupts."""
    actors = set()
    name = step.get("task") or step.get("next")
    if name is not None:
        actors.add(world.task_index(name))
    if step.get("cpu") is not None and 0 <= step.get("cpu") < len(world.cpus):
        actors.add(world.cpus[step.get("cpu")].current)
    return actors


def _forked(before: World, after: World, parent: int) -> World:
    """A task_struct allocated in this slice belongs to ``parent``'s new child: the oracle gives the child its
    program (and the copy of the parent's memory that fork makes)."""
    for slot in set(before.free) - set(after.free):
        after = oracle.program_forked(after, parent, slot)
    return after


def _label_new_tasks(model: Model, world: World) -> World:
    """A task ``wake_up_new_task()`` made runnable waits at its path's first event, like every paused path."""
    for index, task in enumerate(world.tasks):
        if task.cont is not None and task.cont.label == "":
            world = _set_task(world, index, cont=model.fresh_path(world, index, task.cont.path, *task.cont.args))
    return world


def _readouts(world: World, k) -> list[Finding]:
    """What the slice's regset reads handed to user space (a tracer's buffer, a core file), judged by the oracle."""
    return [f for reader, target, regs in k.readouts for f in oracle.observe_regset(world, reader, target, regs)]


def _warnings(world: World, k, cpu: int) -> list[Finding]:
    """The warnings that fired in a slice of kernel code, and what the oracle found at its kernel-FPU events."""
    current = world.tasks[world.cpus[cpu].current].name
    return [Finding("diagnostic", "warn", current, cpu, None, where, f"{macro} fired in {where} on CPU{cpu}")
            for where, macro in k.warnings] + list(k.findings)


# ---------------------------------------------------------------- the scheduler and interrupts


def _schedule(model: Model, world: World, step: Step, trace) -> StepResult:
    cpu = _cpu(world, step)
    nxt = _task(world, step)
    prev = world.cpus[cpu].current
    _check_runnable(world, nxt, cpu)
    _check_preemptible(world, prev, cpu, model.config)
    if world.tasks[prev].mode == USER_MODE:  # a timer interrupt from user mode, preempting at its exit
        world = _set_task(world, prev, mode=KERNEL_MODE, cont=model.fresh_path(world, prev, "irqentry_exit_to_user_mode"))
    world = _set_task(world, nxt, cpu=cpu)
    k = model.kernel(world, cpu, pausable=False, trace=trace)
    k.context_switch(k.task(prev), k.task(nxt))
    if k.cpus[cpu].current != nxt:
        raise ModelError(f"context_switch on CPU{cpu} did not make {world.tasks[nxt].name} current")
    return StepResult(k.world(world), tuple(_warnings(world, k, cpu)))


def _check_runnable(world: World, nxt: int, cpu: int) -> None:
    task = world.tasks[nxt]
    if task.mode == NEW_MODE:
        raise IllegalStep(f"{task.name} is being forked; it is not runnable until wake_up_new_task()")
    if world.running_on(nxt) is not None:
        raise IllegalStep(f"{task.name} is already running on CPU{task.cpu}")
    if task.kind == IDLE and task.cpu != cpu:
        raise IllegalStep(f"{task.name} is CPU{task.cpu}'s idle task; it cannot run on CPU{cpu}")
    if task.stop == STOP_TRACED:
        raise IllegalStep(f"{task.name} is stopped for its tracer (TASK_TRACED); a ptrace req=cont wakes it")


def _check_interruptible(world: World, cpu: int) -> None:
    ctx = world.cpus[cpu].ctx
    if ctx.irqs_off or ctx.hardirq:
        raise IllegalStep(f"CPU{cpu} runs with interrupts off here (a path left them off)")


def _check_preemptible(world: World, prev: int, cpu: int, config: Config | None = None) -> None:
    _check_interruptible(world, cpu)
    if not preemptible(world, cpu):
        task, ctx = world.tasks[prev], world.cpus[cpu].ctx
        raise IllegalStep(f"{task.name} cannot be switched out at {task.cont.label}: preemption is off there "
                          f"(preempt={ctx.preempt} softirq={ctx.softirq})")
    if not preemptible(world, cpu, config):
        task = world.tasks[prev]
        raise IllegalStep(f"{task.name} cannot be switched out at {task.cont.label}: with config "
                          f"preempt={config.preempt} that is not a scheduling point ({_SCHEDULES[config.preempt]})")


def _irq(model: Model, world: World, step: Step, trace) -> StepResult:
    cpu = _cpu(world, step)
    work = step.get("work")
    if work not in WORKS:
        raise IllegalStep(f"unknown work {work!r}; known: {', '.join(WORKS)}")
    _check_interruptible(world, cpu)
    if model.config.preempt_rt and world.cpus[cpu].ctx.atomic:
        # PREEMPT_RT runs interrupt handlers as threads: their kernel-FPU work waits until the CPU can schedule.
        raise IllegalStep(f"on PREEMPT_RT the threaded handler cannot run on CPU{cpu} while preemption is off")
    current = world.cpus[cpu].current
    from_user = world.tasks[current].mode == USER_MODE
    if from_user:  # an interrupt from user mode returns through the exit path
        world = _set_task(world, current, mode=KERNEL_MODE,
                          cont=model.fresh_path(world, current, "irqentry_exit_to_user_mode"))
    k = model.kernel(world, cpu, pausable=False, trace=trace)
    saved = k.cpus[cpu].ctx
    k.enter_hardirq()
    old_regs = k.set_irq_regs(PtRegs(from_user))
    k.handle_irq(WORKS[work])
    k.set_irq_regs(old_regs)
    k.irq_exit_rcu()  # softirqs raised meanwhile are served here if the interrupted context allows it
    k.exit_hardirq(saved)
    return StepResult(k.world(world), tuple(_warnings(world, k, cpu)))


_HANDLERS = {"user_write": _user_write, "syscall": _syscall, "fork": _fork, "signal": _signal,
             "frame_write": _frame_write, "sigreturn": _sigreturn, "kwork": _kwork, "run": _run,
             "schedule": _schedule, "irq": _irq, "guest_write": _guest_write, "vmexit": _vmexit,
             "stop": _stop, "ptrace": _ptrace}


# ---------------------------------------------------------------- what may happen next


# Where a task paused inside a kernel path may be switched out, by preemption model (kernel/Kconfig.preempt). A
# pause point's kind comes from its label's access (fpufuzz/runtime.py names them):
#  * "sleep": an explicit scheduling point -- cond_resched(), schedule() in the exit-to-user loop, a blocking
#    wait (sched_exec()'s stop_one_cpu(), a blocking allocation, mapping the new image) -- and a user-memory access
#    whose page is not present: the page fault may block. Every model switches here.
#  * "might_sleep": might_sleep() and might_fault() annotations where nothing blocks (a user copy from a present
#    page). With CONFIG_PREEMPT_VOLUNTARY they call __cond_resched() (include/linux/kernel.h, might_resched());
#    with CONFIG_PREEMPT_NONE they do nothing.
#  * "preempt": every other point -- preempt_enable(), local_bh_enable(), local_irq_enable(), an interrupt returning
#    to kernel mode (irqentry_exit_cond_resched()) anywhere interrupts are on. Only CONFIG_PREEMPT preempts here.
# Return to user mode is a scheduling point in every model (exit_to_user_mode_loop() calls schedule()); a task
# in user mode or at rest (a kernel thread at the top of its loop, sleeping) can always be switched.
SLEEP, MIGHT_SLEEP, PREEMPT = "sleep", "might_sleep", "preempt"
_SLEEPS = ("cond_resched",)
_MIGHT_SLEEPS = ("might_sleep",)
_USER_FAULTS = ("clear_user", "fault_in_readable", "copy_from_user: fault in")  # may fault with page faults on
SCHEDULING_POINTS = {"none": (SLEEP,), "voluntary": (SLEEP, MIGHT_SLEEP), "full": (SLEEP, MIGHT_SLEEP, PREEMPT)}
_SCHEDULES = {"none": "only explicit sleeps, cond_resched() and faults that page in are",
              "voluntary": "only explicit sleeps, cond_resched(), might_sleep() and user-memory accesses are",
              "full": "every point with preemption enabled is"}


def point_kind(world: World, index: int) -> str:
    """The kind of scheduling point where task ``index`` is paused (see SCHEDULING_POINTS)."""
    access = world.tasks[index].cont.label.partition(": ")[2]
    if access in _SLEEPS:
        return SLEEP
    if access in _USER_FAULTS:
        frame = world.frames[index] if index < len(world.frames) else None
        return MIGHT_SLEEP if frame is not None and frame.page == PAGE_PRESENT else SLEEP
    return MIGHT_SLEEP if access in _MIGHT_SLEEPS else PREEMPT


def interruptible(world: World, cpu: int, config: Config) -> bool:
    """A hard interrupt's kernel-FPU work may run on the CPU now: interrupts are on and, on PREEMPT_RT (threaded
    handlers), the CPU can schedule."""
    ctx = world.cpus[cpu].ctx
    return not (ctx.irqs_off or ctx.hardirq or (config.preempt_rt and ctx.atomic))


def preemptible(world: World, cpu: int, config: Config | None = None) -> bool:
    """The CPU may switch tasks now: interrupts on, and its task in user mode, at rest, or paused where
    preemption and bottom halves are enabled, at a scheduling point of the machine's preemption model
    (``config.preempt``; without a config, full preemption)."""
    state = world.cpus[cpu]
    if state.ctx.irqs_off or state.ctx.hardirq:
        return False
    task = world.tasks[state.current]
    if task.mode == USER_MODE or task.cont is None:
        return True
    if state.ctx.atomic:
        return False
    return config is None or config.preempt == "full" or point_kind(world, state.current) in SCHEDULING_POINTS[
        config.preempt]


def enabled(config: Config, world: World) -> list[Step]:
    """Every legal step, ``run`` without ``until`` (finest interleaving). Order is deterministic."""
    steps = []
    for index, task in enumerate(world.tasks):
        cpu = world.running_on(index)
        if cpu is None:
            continue
        if task.mode == USER_MODE:
            steps.extend(_user_steps(config, world, index))
        elif task.mode == GUEST_MODE:
            steps.append(Step.make("guest_write", task=task.name))
            steps.extend(Step.make("vmexit", task=task.name, exit=e) for e in VMEXITS)
        elif task.cont is not None:
            steps.append(Step.make("run", task=task.name))
        elif task.kind in (KTHREAD, WORKER):
            steps.extend(Step.make("kwork", task=task.name, work=w) for w in KWORKS
                         if w != "exit" or config.lifecycle)
    for cpu in range(len(world.cpus)):
        if interruptible(world, cpu, config):
            steps.extend(Step.make("irq", cpu=cpu, work=w) for w in WORKS if w != "softirq" or config.softirq)
        if not preemptible(world, cpu, config):
            continue
        for index, task in enumerate(world.tasks):
            if not task.alive or task.mode == NEW_MODE or task.stop == STOP_TRACED:
                continue
            if world.running_on(index) is None and not (task.kind == IDLE and task.cpu != cpu):
                steps.append(Step.make("schedule", cpu=cpu, next=task.name))
    return steps


def _user_steps(config: Config, world: World, index: int) -> list[Step]:
    """What a program running in user mode can do, and what can happen to it there."""
    name = world.tasks[index].name
    steps = [Step.make("user_write", task=name)]
    steps.extend(Step.make("syscall", task=name, call=c) for c in SYSCALLS
                 if ("syscall", c) not in _ARG_FAMILY or getattr(config, _ARG_FAMILY["syscall", c])
                 and (c not in KVM_CALLS or _vcpu_call(config, world, index, c)))
    if config.lifecycle and world.free:
        steps.extend(Step.make("fork", task=name, child=child_name(world, prefix)) for prefix in CHILD_KINDS)
    if config.ptrace:
        steps.extend(_ptrace_steps(world, index))
    if not config.signals:
        return steps
    if world.expect_frame[index] is None:
        steps.extend(Step.make("signal", task=name, frame=page) for page in SIGNAL_FRAMES)
        return steps
    steps.append(Step.make("frame_write", task=name))
    for page in SIGRETURN_FRAMES:
        if page in (PAGE_ABSENT, PAGE_BAD):  # the XRSTOR faults: what it does to the registers, as the machine allows
            steps.extend(Step.make("sigreturn", task=name, frame=page, xrstor=None if x == "keeps" else x)
                         for x in xrstor_allowed(config))
        else:
            steps.append(Step.make("sigreturn", task=name, frame=page))
        if page != PAGE_NULL:
            steps.append(Step.make("sigreturn", task=name, frame=page, abi="ia32"))
    return steps


def _vcpu_call(config: Config, world: World, index: int, call: str) -> bool:
    """The KVM call the program can make: create its vCPU, or run the one it has."""
    return config.kvm and (world.expect_guest[index] is None) == (call == "kvm_create_vcpu")


def _ptrace_steps(world: World, index: int) -> list[Step]:
    """A user task may be stopped for a tracer, and may act as the tracer of every other stopped task."""
    name = world.tasks[index].name
    steps = [Step.make("stop", task=name)] if tracers(world, index) else []
    for target, t in enumerate(world.tasks):
        if target != index and t.alive and t.stop == STOP_TRACED and not _ptrace_busy(world, target):
            steps.extend(Step.make("ptrace", task=name, target=t.name, req=req) for req in PTRACE_REQUESTS)
    return steps


def _pending_children(world: World) -> set[str]:
    """Names of children whose fork is in progress and has not allocated their task_struct yet."""
    return {t.cont.args[1] for t in world.tasks
            if t.alive and t.cont is not None and t.cont.path == "do_syscall_64" and t.cont.args[:1] == ("sys_clone",)}


def child_name(world: World, prefix: str) -> str:
    """The name a new child gets: the lowest ``<prefix><N>`` no task slot carries (a dead slot keeps its last
    name until it is reused, so a new task never takes the name of one that just exited)."""
    taken = {t.name for t in world.tasks} | _pending_children(world)
    return next(f"{prefix}{n}" for n in range(len(world.tasks) + 1) if f"{prefix}{n}" not in taken)
