"""The operations: what the world around the kernel can do next, and their legality.

One ``Step`` is one thing that happens on the machine:

=============================  ================================================================================
``user_write task=u0``         the task, running in user mode, writes its registers (a fresh value)
``syscall task=u0 call=C``     the task enters the kernel: ``execve``, ``simd`` (uses kernel FPU) or ``getpid``
``kwork task=k0 work=simd``    a kernel thread, running at the top of its loop, starts a round of work
``run task=u0 [until=L]``      the task runs in the kernel to its next interleaving point, or to point ``L``
                               (``until=done``: to the end of its path: user mode, or the top of its loop)
``schedule cpu=0 next=k0``     the CPU switches from its current task (which must be preemptible) to ``next``
``irq cpu=0 work=simd``        a hard interrupt arrives on the CPU and its handler does ``work``
=============================  ================================================================================

The fuzzer, the explorer and replay all go through ``apply()`` and ``enabled()``: one model, one oracle.
"""

from __future__ import annotations

import shlex
from typing import NamedTuple

from fpufuzz import oracle
from fpufuzz.config import Config, initial_world
from fpufuzz.errors import FpufuzzError, IllegalStep, ModelError
from fpufuzz.oracle import Finding
from fpufuzz.runtime import Pause
from fpufuzz.state import IDLE, KERNEL_MODE, KTHREAD, USER, USER_MODE, Cont, Value, World

SYSCALLS = {"execve": "sys_execve", "simd": "simd_work", "getpid": "sys_getpid"}
WORKS = {"simd": "simd_work"}
DONE = "done"

# op -> ordered parameters; a value of None means free text, else the allowed values.
OPS: dict[str, dict[str, object]] = {
    "user_write": {"task": "task"},
    "syscall": {"task": "task", "call": tuple(SYSCALLS)},
    "kwork": {"task": "task", "work": tuple(WORKS)},
    "run": {"task": "task", "until": "label?"},
    "schedule": {"cpu": "cpu", "next": "task"},
    "irq": {"cpu": "cpu", "work": tuple(WORKS)},
}


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

    def __init__(self, variant, config: Config, ops: tuple[str, ...] | None = None):
        self.variant = variant
        self.config = config
        self.kernel_class = variant.kernel_class
        self.ops = None if ops is None else check_ops(ops)  # restrict what the world may do (explorer --ops)

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
        return handler(self, world, step, trace)

    def enabled(self, world: World) -> list[Step]:
        """Every step legal in ``world``, with ``run`` going to the next interleaving point."""
        steps = enabled(self.config, world)
        if self.ops is None:
            return steps
        return [s for s in steps if s.op in self.ops or f"{s.op}:{s.get('call') or s.get('work')}" in self.ops]


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


def _task(world: World, step: Step) -> int:
    name = step.get("task") if step.op not in ("schedule",) else step.get("next")
    try:
        return world.task_index(name)
    except KeyError:
        names = ", ".join(t.name for t in world.tasks)
        raise IllegalStep(f"no task {name!r} on this machine (tasks: {names})") from None


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
    fresh = world.fresh + 1
    cpus = list(world.cpus)
    cpus[cpu] = cpus[cpu]._replace(regs=Value(fresh, cpus[cpu].regs.sup))
    world = world._replace(cpus=tuple(cpus), fresh=fresh)
    return StepResult(oracle.program_wrote(world, index, fresh), ())


def _syscall(model: Model, world: World, step: Step, trace) -> StepResult:
    index = _task(world, step)
    _running(world, index, "make a system call")
    task = world.tasks[index]
    if task.kind != USER or task.mode != USER_MODE:
        raise IllegalStep(f"{task.name} is not in user mode, so it cannot make a system call")
    call = step.get("call")
    if call not in SYSCALLS:
        raise IllegalStep(f"unknown syscall {call!r}; known: {', '.join(SYSCALLS)}")
    world = _set_task(world, index, mode=KERNEL_MODE, cont=model.fresh_path(world, index, "do_syscall_64", SYSCALLS[call]))
    if call == "execve":
        world = oracle.program_exec(world, index)
    return StepResult(world, ())


def _kwork(model: Model, world: World, step: Step, trace) -> StepResult:
    index = _task(world, step)
    task = world.tasks[index]
    if task.kind != KTHREAD:
        raise IllegalStep(f"{task.name} is not a kernel thread")
    _running(world, index, "start work")
    if task.cont is not None:
        raise IllegalStep(f"{task.name} is busy at {task.cont.label}; run it to the end first")
    work = step.get("work")
    if work not in WORKS:
        raise IllegalStep(f"unknown work {work!r}; known: {', '.join(WORKS)}")
    return StepResult(_set_task(world, index, cont=model.fresh_path(world, index, "kthread_work", WORKS[work])), ())


# ---------------------------------------------------------------- running kernel paths


def _run(model: Model, world: World, step: Step, trace) -> StepResult:
    index = _task(world, step)
    cpu = _running(world, index, "run")
    if world.tasks[index].cont is None:
        raise IllegalStep(f"{world.tasks[index].name} is not in a kernel path (it is in user mode or idle)")
    until = step.get("until")
    findings: list[Finding] = []
    while True:
        world, paused = _slice(model, world, index, cpu, findings, trace)
        if until is None or (paused == until) or (paused is None and until == DONE):
            return StepResult(world, tuple(findings))
        if paused is None:
            raise LabelNotReached(f"{world.tasks[index].name}'s path ended without pausing at {until!r}")


def _slice(model: Model, world: World, index: int, cpu: int, findings: list, trace):
    """Run ``index``'s path from where it is paused to the next interleaving point or its end."""
    cont = world.tasks[index].cont
    k = model.kernel(world, cpu, cont.log, trace=trace)
    try:
        getattr(k, cont.path)(*cont.args)
    except Pause as pause:
        findings.extend(_warnings(world, k, cpu))
        new = k.world(world)
        return _set_task(new, index, cont=cont._replace(log=tuple(k.log), label=pause.label)), pause.label
    findings.extend(_warnings(world, k, cpu))
    world = _set_task(k.world(world), index, cont=None)
    task = world.tasks[index]
    if task.kind == USER:
        if task.mode != USER_MODE:
            raise ModelError(f"{task.name}'s path {cont.path} ended without returning to user mode")
        findings.extend(oracle.observe_user_entry(world, index))
    findings.extend(oracle.context_balanced(world, index, cpu))
    return world, None


def _warnings(world: World, k, cpu: int) -> list[Finding]:
    current = world.tasks[world.cpus[cpu].current].name
    return [Finding("diagnostic", "warn", current, cpu, None, where, f"{macro} fired in {where} on CPU{cpu}")
            for where, macro in k.warnings]


# ---------------------------------------------------------------- the scheduler and interrupts


def _schedule(model: Model, world: World, step: Step, trace) -> StepResult:
    cpu = _cpu(world, step)
    nxt = _task(world, step)
    prev = world.cpus[cpu].current
    _check_runnable(world, nxt, cpu)
    _check_preemptible(world, prev, cpu)
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
    if world.running_on(nxt) is not None:
        raise IllegalStep(f"{task.name} is already running on CPU{task.cpu}")
    if task.kind == IDLE and task.cpu != cpu:
        raise IllegalStep(f"{task.name} is CPU{task.cpu}'s idle task; it cannot run on CPU{cpu}")


def _check_interruptible(world: World, cpu: int) -> None:
    ctx = world.cpus[cpu].ctx
    if ctx.irqs_off or ctx.hardirq:
        raise IllegalStep(f"CPU{cpu} runs with interrupts off here (a path left them off)")


def _check_preemptible(world: World, prev: int, cpu: int) -> None:
    _check_interruptible(world, cpu)
    task = world.tasks[prev]
    if task.mode == USER_MODE or task.cont is None:
        return
    ctx = world.cpus[cpu].ctx
    if ctx.atomic:
        raise IllegalStep(f"{task.name} cannot be switched out at {task.cont.label}: preemption is off there "
                          f"(preempt={ctx.preempt} softirq={ctx.softirq})")


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
    if world.tasks[current].mode == USER_MODE:  # an interrupt from user mode returns through the exit path
        world = _set_task(world, current, mode=KERNEL_MODE,
                          cont=model.fresh_path(world, current, "irqentry_exit_to_user_mode"))
    k = model.kernel(world, cpu, pausable=False, trace=trace)
    saved = k.cpus[cpu].ctx
    k.enter_hardirq()
    k.handle_irq(WORKS[work])
    k.exit_hardirq(saved)
    return StepResult(k.world(world), tuple(_warnings(world, k, cpu)))


_HANDLERS = {"user_write": _user_write, "syscall": _syscall, "kwork": _kwork, "run": _run,
             "schedule": _schedule, "irq": _irq}


# ---------------------------------------------------------------- what may happen next


def preemptible(world: World, cpu: int) -> bool:
    """The CPU may switch tasks now: interrupts on, and its task in user mode, at rest, or paused where
    preemption and bottom halves are enabled."""
    state = world.cpus[cpu]
    if state.ctx.irqs_off or state.ctx.hardirq:
        return False
    task = world.tasks[state.current]
    return task.mode == USER_MODE or task.cont is None or not state.ctx.atomic


def enabled(config: Config, world: World) -> list[Step]:
    """Every legal step, ``run`` without ``until`` (finest interleaving). Order is deterministic."""
    steps = []
    for index, task in enumerate(world.tasks):
        cpu = world.running_on(index)
        if cpu is None:
            continue
        if task.mode == USER_MODE:
            steps.append(Step.make("user_write", task=task.name))
            steps.extend(Step.make("syscall", task=task.name, call=c) for c in SYSCALLS)
        elif task.cont is not None:
            steps.append(Step.make("run", task=task.name))
        elif task.kind == KTHREAD:
            steps.extend(Step.make("kwork", task=task.name, work=w) for w in WORKS)
    for cpu, state in enumerate(world.cpus):
        ctx = state.ctx
        if ctx.irqs_off or ctx.hardirq:
            continue
        if not (config.preempt_rt and ctx.atomic):
            steps.extend(Step.make("irq", cpu=cpu, work=w) for w in WORKS)
        if not preemptible(world, cpu):
            continue
        for index, task in enumerate(world.tasks):
            if world.running_on(index) is None and not (task.kind == IDLE and task.cpu != cpu):
                steps.append(Step.make("schedule", cpu=cpu, next=task.name))
    return steps
