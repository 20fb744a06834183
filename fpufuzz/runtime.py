"""The kernel namespace ``k``: how modeled kernel code reads and writes the machine state, and how it pauses.

Kernel functions (fpufuzz/kernel.py, fpufuzz/entry.py, and variants) never touch a ``World`` directly; they call
the primitives here, named after the kernel's own: ``this_cpu_read``, ``set_thread_flag``, ``preempt_disable``,
``os_xsave``, ``fpu.last_cpu = cpu`` ... Each primitive is an *event*.

Paused kernel paths (the design the explorer and replay rely on; docs/model.md tells it at length):

* A task in the kernel runs a *path* (``do_syscall_64``, ``irqentry_exit_to_user_mode``, ...). A slice of it runs
  until the next event at which the CPU's context allows an interleaving (interrupts on and not in a hard
  interrupt: an interrupt may arrive; also preemption and softirqs off: the task may be switched out). There
  the path pauses *before* the event.
* The pause is stored as a ``Cont``: the path, its arguments, and the results of every event executed so far.
  It is plain hashable data, so two tasks paused at the same point with the same history compare equal.
* Resuming re-runs the path from its start; each recorded event returns its recorded result and does nothing,
  so locals computed before the pause (a ``cpu`` read before a migration, say) keep their old values exactly as
  in the kernel. From the first unrecorded event on, execution is live.

Event results that name a CPU, a task or an fpu are typed (``CpuId``, ``TaskId``, ``FpuId``: ints that say what they
are), so the explorer's symmetry reduction can rename them inside logs.

This works because modeled kernel code is deterministic given its event results: it must reach state only
through ``k`` (the variant contract, docs/variants.md).
"""

from __future__ import annotations

import sys

from fpufuzz.errors import ModelError
from fpufuzz.state import INIT, KERNEL_PART, CpuId, Ctx, FpuId, TaskId, Value, World

# Kernel constants the modeled code uses, with the kernel's spellings.
fpu_fpregs_owner_ctx = "fpu_fpregs_owner_ctx"
in_kernel_fpu = "in_kernel_fpu"
TIF_NEED_FPU_LOAD = 1 << 0
_TIF_NEED_FPU_LOAD = TIF_NEED_FPU_LOAD
PF_KTHREAD = 1 << 21
PF_USER_WORKER = 1 << 14
XFEATURE_MASK_USER = 1 << 0  # the x87/SSE/AVX... components a program computes with
XFEATURE_MASK_SUPERVISOR = 1 << 1  # supervisor components (CET shadow-stack state)
XFEATURE_MASK_FPSTATE = XFEATURE_MASK_USER | XFEATURE_MASK_SUPERVISOR
KFPU_387 = 1 << 0
KFPU_MXCSR = 1 << 1
KFPU_DEFAULT = KFPU_MXCSR  # x86_64's kernel_fpu_begin(); 32-bit adds KFPU_387

_PER_CPU_FPU = {fpu_fpregs_owner_ctx: "owner", in_kernel_fpu: "in_kernel_fpu"}
_THIS_FILE = __file__


class Pause(BaseException):
    """Unwinds a kernel path that reached a point where it may be interleaved; ``label`` names the point. A
    ``BaseException``, so that a variant's ``except Exception`` cannot swallow it and corrupt the path's log."""

    def __init__(self, label: str):
        super().__init__(label)
        self.label = label


class Kernel:
    """The kernel namespace for one CPU executing one slice of one path.

    Kernel functions are attached to a per-variant subclass (see ``fpufuzz.variant.kernel_class``) and called
    as ``k.name(...)``; the methods here are the primitives they are built from.
    """

    config = None  # a fpufuzz.config.Config, set on the per-variant subclass

    def __init__(self, world: World, cpu: int, replay: tuple = (), pausable: bool = True, trace=None):
        self.cpus = list(world.cpus)
        self.tasks = list(world.tasks)
        self.fpus = list(world.fpus)
        self.cpu = cpu
        self._replay = replay
        self._nreplay = len(replay)
        self._i = 0
        self.log: list = list(replay)
        self.pausable = pausable
        self.warnings: list[tuple[str, str]] = []
        self.trace = trace  # a list to append (label, result) of live events to, or None

    # ------------------------------------------------------------ events

    def _event(self, eligible: bool, access: str, fn, *args):
        i = self._i
        self._i = i + 1
        if i < self._nreplay:
            return self._replay[i]
        if eligible and i > self._nreplay and self._may_pause():
            raise Pause(self._label(access))
        result = fn(*args)
        self.log.append(result)
        if self.trace is not None:
            self.trace.append((self._label(access), result))
        return result

    def probe(self, path: str, args: tuple) -> str:
        """The label of ``path``'s first event, without executing anything: where a path that is about to start
        is paused. A fresh path resumes by executing that event, like any paused path."""
        self._event = self._probe_event
        try:
            getattr(self, path)(*args)
        except Pause as pause:
            return pause.label
        return f"{path}: end"

    def _probe_event(self, eligible, access, fn, *args):
        raise Pause(self._label(access))

    def _may_pause(self) -> bool:
        ctx = self.cpus[self.cpu].ctx
        return self.pausable and not ctx.irqs_off and not ctx.hardirq

    def _label(self, access: str) -> str:
        frame = sys._getframe(1)
        while frame.f_code.co_filename == _THIS_FILE:
            frame = frame.f_back
        return f"{frame.f_code.co_name}: {access}"

    def world(self, template: World) -> World:
        return template._replace(cpus=tuple(self.cpus), tasks=tuple(self.tasks), fpus=tuple(self.fpus))

    # ------------------------------------------------------------ tasks and struct fpu

    @property
    def current(self) -> "TaskRef":
        return TaskRef(self, self.cpus[self.cpu].current)

    def task(self, index: int) -> "TaskRef":
        return TaskRef(self, index)

    @property
    def init_fpstate(self) -> "_InitFpstate":
        return _INIT_FPSTATE

    def smp_processor_id(self) -> int:
        return self._event(False, "smp_processor_id", lambda: CpuId(self.cpu))

    # ------------------------------------------------------------ per-CPU variables

    def this_cpu_read(self, var: str):
        field = self._per_cpu_field(var)
        raw = self._event(field != "current", f"read {var}", self._get_cpu, field)
        return self._wrap_per_cpu(field, raw)

    def this_cpu_write(self, var: str, value) -> None:
        field = self._per_cpu_field(var)
        raw = _unwrap(value)
        self._event(field != "current", f"write {var}", self._set_cpu, field, raw)

    raw_cpu_write = this_cpu_write

    def _per_cpu_field(self, var: str) -> str:
        if var == "current_task":
            return "current"
        try:
            return _PER_CPU_FPU[var]
        except KeyError:
            raise ModelError(f"no per-CPU variable {var!r} in the model") from None

    def _wrap_per_cpu(self, field: str, raw):
        if field == "owner":
            return None if raw is None else FpuRef(self, raw)
        if field == "current":
            return TaskRef(self, raw)
        return raw

    def _get_cpu(self, field: str):
        """A per-CPU value as the log records it: identities typed, so the explorer can rename them."""
        raw = getattr(self.cpus[self.cpu], field)
        if raw is None or field == "in_kernel_fpu":
            return raw
        return TaskId(raw) if field == "current" else FpuId(raw)

    def _set_cpu(self, field: str, raw) -> None:
        self.cpus[self.cpu] = self.cpus[self.cpu]._replace(**{field: raw})

    # ------------------------------------------------------------ thread flags

    def test_thread_flag(self, flag: int) -> bool:
        return self.test_tsk_thread_flag(self.current, flag)

    def set_thread_flag(self, flag: int) -> None:
        self.set_tsk_thread_flag(self.current, flag)

    def clear_thread_flag(self, flag: int) -> None:
        self.clear_tsk_thread_flag(self.current, flag)

    def read_thread_flags(self) -> int:
        return TIF_NEED_FPU_LOAD if self.test_thread_flag(TIF_NEED_FPU_LOAD) else 0

    def test_tsk_thread_flag(self, tsk: "TaskRef", flag: int) -> bool:
        _check_flag(flag)
        return self._event(True, "test TIF_NEED_FPU_LOAD", lambda: self.tasks[tsk.index].tif)

    def set_tsk_thread_flag(self, tsk: "TaskRef", flag: int) -> None:
        _check_flag(flag)
        self._event(True, "set TIF_NEED_FPU_LOAD", self._set_tif, tsk.index, True)

    def clear_tsk_thread_flag(self, tsk: "TaskRef", flag: int) -> None:
        _check_flag(flag)
        self._event(True, "clear TIF_NEED_FPU_LOAD", self._set_tif, tsk.index, False)

    def _set_tif(self, index: int, value: bool) -> None:
        self.tasks[index] = self.tasks[index]._replace(tif=value)

    # ------------------------------------------------------------ the hardware

    def os_xsave(self, fpstate: "FpstateRef") -> None:
        """XSAVE(S) of every component into ``fpstate`` (arch/x86/kernel/fpu/xstate.h); registers unchanged."""
        self._event(True, "xsave", self._set_fpstate, fpstate.fpu_id, lambda: self.cpus[self.cpu].regs)

    def os_xrstor(self, fpstate: "FpstateRef", mask: int) -> None:
        """XRSTOR(S) of the components in ``mask`` from ``fpstate`` (arch/x86/kernel/fpu/xstate.h)."""
        self._event(True, "xrstor", self._xrstor, fpstate.fpu_id, mask)

    def ldmxcsr(self) -> None:
        """Load MXCSR_DEFAULT: the user part of the registers is no longer the task's."""
        self._event(True, "ldmxcsr", self._clobber_user)

    def fninit(self) -> None:
        """FNINIT: likewise clobbers the user part."""
        self._event(True, "fninit", self._clobber_user)

    def kernel_fpu_use(self) -> None:
        """Model primitive: the SIMD instructions a kernel-FPU caller runs between begin and end (crypto, RAID,
        memcpy...). They clobber the user part of the registers; supervisor (CET) state is not touched."""
        self._event(True, "simd", self._clobber_user)

    def _set_fpstate(self, fpu_id: int, value) -> None:
        value = value() if callable(value) else value
        self.fpus[fpu_id] = self.fpus[fpu_id]._replace(fpstate=value)

    def _xrstor(self, fpu_id: int, mask: int) -> None:
        image, regs = self.fpus[fpu_id].fpstate, self.cpus[self.cpu].regs
        user = image.user if mask & XFEATURE_MASK_USER else regs.user
        sup = image.sup if mask & XFEATURE_MASK_SUPERVISOR else regs.sup
        self._set_cpu("regs", Value(user, sup))

    def _clobber_user(self) -> None:
        self._set_cpu("regs", Value(KERNEL_PART, self.cpus[self.cpu].regs.sup))

    # ------------------------------------------------------------ execution context

    def preempt_disable(self) -> None:
        self._event(False, "preempt_disable", self._ctx, "preempt", 1)

    def preempt_enable(self) -> None:
        self._event(False, "preempt_enable", self._ctx, "preempt", -1)
        self._point("preempt_enable")  # a preemption point once the count drops to zero

    def local_bh_disable(self) -> None:
        self._event(False, "local_bh_disable", self._ctx, "softirq", 1)

    def local_bh_enable(self) -> None:
        self._event(False, "local_bh_enable", self._ctx, "softirq", -1)
        self._point("local_bh_enable")

    def local_irq_disable(self) -> None:
        self._event(False, "local_irq_disable", self._irqs, True)

    def local_irq_enable(self) -> None:
        self._event(False, "local_irq_enable", self._irqs, False)
        self._point("local_irq_enable")

    def return_to_user_mode(self) -> None:
        """Model primitive for SYSRET/IRET at the end of the exit path: the current task runs in user mode, with
        interrupts on. Only the exit-to-user paths of fpufuzz/entry.py call it."""
        self._event(False, "return to user mode", self._to_user_mode)

    def _to_user_mode(self) -> None:
        index = self.cpus[self.cpu].current
        if self.tasks[index].kind != "user":
            raise ModelError(f"{self.tasks[index].name} is a kernel thread and cannot return to user mode")
        self.tasks[index] = self.tasks[index]._replace(mode="user")
        self._irqs(False)

    def cond_resched(self) -> None:
        """An explicit scheduling point (``might_sleep()``, ``cond_resched()``, a sleep in the path)."""
        self._point("cond_resched")

    def _point(self, what: str) -> None:
        self._event(True, what, _nothing)

    def in_nmi(self) -> bool:
        return False  # NMIs are not modeled: no modeled NMI handler touches the FPU

    def in_hardirq(self) -> bool:
        return self._event(False, "in_hardirq", lambda: bool(self.cpus[self.cpu].ctx.hardirq))

    def softirq_count(self) -> int:
        return self._event(False, "softirq_count", lambda: self.cpus[self.cpu].ctx.softirq)

    def _ctx(self, field: str, delta: int) -> None:
        ctx = self.cpus[self.cpu].ctx
        value = getattr(ctx, field) + delta
        if value < 0:
            raise ModelError(f"{field} count went negative on CPU{self.cpu}: an unbalanced enable")
        self._set_cpu("ctx", ctx._replace(**{field: value}))

    def _irqs(self, off: bool) -> None:
        self._set_cpu("ctx", self.cpus[self.cpu].ctx._replace(irqs_off=off))

    def enter_hardirq(self) -> None:
        """Model primitive for the interrupt entry code: irqs off, hardirq count up."""
        ctx = self.cpus[self.cpu].ctx
        self._set_cpu("ctx", ctx._replace(hardirq=ctx.hardirq + 1, irqs_off=True))

    def exit_hardirq(self, saved: Ctx) -> None:
        self._set_cpu("ctx", saved)

    # ------------------------------------------------------------ warnings

    def WARN_ON_FPU(self, condition) -> bool:
        """arch/x86/kernel/fpu/internal.h, as with CONFIG_X86_DEBUG_FPU=y: a fired warning is a finding."""
        return self._warn(condition, "WARN_ON_FPU")

    def WARN_ON_ONCE(self, condition) -> bool:
        return self._warn(condition, "WARN_ON_ONCE")

    def _warn(self, condition, macro: str) -> bool:
        fired = bool(condition)
        if fired:
            where = self._label(macro).split(":")[0]
            self._event(False, macro, self.warnings.append, (where, macro))
        return fired


# The kernel's double-underscore spellings; set outside the class body, which would mangle them.
setattr(Kernel, "__this_cpu_read", Kernel.this_cpu_read)
setattr(Kernel, "__this_cpu_write", Kernel.this_cpu_write)


def _nothing() -> None:
    return None


def _check_flag(flag: int) -> None:
    if flag != TIF_NEED_FPU_LOAD:
        raise ModelError(f"thread flag {flag:#x} is not modeled (only TIF_NEED_FPU_LOAD is)")


def _unwrap(value):
    if isinstance(value, (FpuRef, TaskRef)):
        return value.index if isinstance(value, TaskRef) else value.fpu_id
    return value


class TaskRef:
    """``struct task_struct *``: ``tsk.flags``, ``tsk.thread.fpu``."""

    __slots__ = ("k", "index")

    def __init__(self, k: Kernel, index: int):
        self.k, self.index = k, index

    @property
    def flags(self) -> int:
        return PF_KTHREAD if self.k.tasks[self.index].kind != "user" else 0

    @property
    def thread(self) -> "TaskRef":
        return self

    @property
    def fpu(self) -> "FpuRef":
        return FpuRef(self.k, self.k.tasks[self.index].fpu)

    def __eq__(self, other) -> bool:
        return isinstance(other, TaskRef) and other.index == self.index

    def __hash__(self) -> int:
        return hash(("task", self.index))


class FpuRef:
    """``struct fpu *``: compared by identity (an address in the kernel), fields read and written as events."""

    __slots__ = ("k", "fpu_id")

    def __init__(self, k: Kernel, fpu_id: int):
        self.k, self.fpu_id = k, fpu_id

    @property
    def last_cpu(self) -> int:
        return self.k._event(True, "read fpu->last_cpu", lambda: CpuId(self.k.fpus[self.fpu_id].last_cpu))

    @last_cpu.setter
    def last_cpu(self, cpu: int) -> None:
        self.k._event(True, "write fpu->last_cpu", self._set_last_cpu, cpu)

    def _set_last_cpu(self, cpu: int) -> None:
        self.k.fpus[self.fpu_id] = self.k.fpus[self.fpu_id]._replace(last_cpu=cpu)

    @property
    def fpstate(self) -> "FpstateRef":
        return FpstateRef(self.k, self.fpu_id)

    def __eq__(self, other) -> bool:
        return isinstance(other, FpuRef) and other.fpu_id == self.fpu_id

    def __hash__(self) -> int:
        return hash(("fpu", self.fpu_id))


class FpstateRef:
    """``struct fpstate *``: ``fpstate.regs`` is the in-memory register image."""

    __slots__ = ("k", "fpu_id")

    def __init__(self, k: Kernel, fpu_id: int):
        self.k, self.fpu_id = k, fpu_id

    @property
    def regs(self) -> Value:
        return self.k._event(True, "read fpstate->regs", lambda: self.k.fpus[self.fpu_id].fpstate)

    @regs.setter
    def regs(self, value: Value) -> None:
        self.k._event(True, "write fpstate->regs", self.k._set_fpstate, self.fpu_id, value)


class _InitFpstate:
    """``init_fpstate``: a constant; reading it is not an event."""

    regs = INIT


_INIT_FPSTATE = _InitFpstate()
