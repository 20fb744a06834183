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

from fpufuzz import oracle
from fpufuzz.errors import ModelError
from fpufuzz.state import (DEAD_MODE, GUEST_MODE, INIT, INIT_PART, KDATA_PARTS, KERNEL_MODE, KERNEL_PART, NEW_MODE,
                           PAGE_ABSENT, PAGE_NULL, PAGE_PRESENT, STOP_NONE, STOP_TRACED, STOP_TRAP, USER, WORKER, Cont,
                           CpuId, Ctx, FpuId, TaskId, Value, World)

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
X86_TRAP_PF = 14  # what a faulting user-memory XRSTOR reports for a page fault
EFAULT = 14
KVM_EXITS = {"kernel": 1, "user": 0}  # what a VM exit's handling returns: 1 re-enter the guest, 0 back to the VMM
# preempt_count() layout (include/linux/preempt.h): softirq_count() is the SOFTIRQ_MASK bits, in which serving a
# softirq counts SOFTIRQ_OFFSET and each local_bh_disable() SOFTIRQ_DISABLE_OFFSET.
SOFTIRQ_OFFSET = 1 << 8
SOFTIRQ_DISABLE_OFFSET = 2 * SOFTIRQ_OFFSET
HARDIRQ_OFFSET = 1 << 16
NET_RX_SOFTIRQ = 3  # the one modeled softirq vector (include/linux/interrupt.h)
# ptrace (include/uapi/linux/ptrace.h, arch/x86/include/uapi/asm/ptrace-abi.h) and the FPU regset
PTRACE_CONT, PTRACE_GETFPREGS, PTRACE_SETFPREGS = 7, 14, 15
SIGTRAP, SIGABRT, CLD_STOPPED = 5, 6, 5
TASK_TRACED = "TASK_TRACED"
REGSET_FP = "NT_PRFPREG"  # x86_64's FPU regset (struct user_i387_struct): xfpregs_get() / xfpregs_set()
XSTATE_COPY_FX = 0  # copy_xstate_to_uabi_buf(): the legacy FXSAVE area only

_PER_CPU_FPU = {fpu_fpregs_owner_ctx: "owner", in_kernel_fpu: "in_kernel_fpu"}
_THIS_FILE = __file__
# The events one kernel path may execute. The longest paths of the baseline run a few hundred (a signal frame's
# write retried across faults); a path past this loops without end -- in the kernel a soft lockup, not wrong
# registers -- and without it a mutant that deletes a loop's exit hung the explorer in a single transition.
MAX_PATH_EVENTS = 5_000
# What a loop's head records in a path's log (``Kernel.iterations``): a plain value, so logs stay hashable and
# readable in canonical forms.
LOOP_HEAD = "loop"


class Pause(BaseException):
    """Unwinds a kernel path that reached a point where it may be interleaved; ``label`` names the point. A
    ``BaseException``, so that a variant's ``except Exception`` cannot swallow it and corrupt the path's log."""

    def __init__(self, label: str):
        super().__init__(label)
        self.label = label


class TaskDead(BaseException):
    """Unwinds the path of a task that has just died (``do_task_dead()``): it never runs again. A
    ``BaseException`` for the same reason as ``Pause``."""


class Kernel:
    """The kernel namespace for one CPU executing one slice of one path.

    Kernel functions are attached to a per-variant subclass (see ``fpufuzz.variant.kernel_class``) and called
    as ``k.name(...)``; the methods here are the primitives they are built from.
    """

    config = None  # a fpufuzz.config.Config, set on the per-variant subclass
    # A loop's first head -> its latest head, in ``log`` (``iterations``); made by the first loop that folds, so
    # the kernel objects of the hot path (one per slice) allocate nothing for it.
    _folds: dict[int, int] | None = None

    def __init__(self, world: World, cpu: int, replay: tuple = (), pausable: bool = True, trace=None):
        self.cpus = list(world.cpus)
        self.tasks = list(world.tasks)
        self.fpus = list(world.fpus)
        self.frames = list(world.frames)
        self.free = list(world.free)
        self.cpu = cpu
        self._replay = replay
        self._nreplay = len(replay)
        self._i = 0
        self.log: list = list(replay)
        self.pausable = pausable
        self.warnings: list[tuple[str, str]] = []
        self.findings: list = []  # oracle findings made at kernel events (kernel-FPU sections), as fpufuzz.oracle.Finding
        self.readouts: list[tuple[int, int, Value]] = []  # (reader, target, value) a regset get() handed out
        self.trace = trace  # a list to append (label, result) of live events to, or None
        self.exit_reason = None  # the VM exit the world makes a guest take (a ``vmexit`` step), or None
        self._irq_regs = None  # set_irq_regs(): whether the hard interrupt being handled came from user mode

    # ------------------------------------------------------------ events

    def _event(self, eligible: bool, access: str, fn, *args):
        i = self._i
        self._i = i + 1
        if i < self._nreplay:
            return self._replay[i]
        if eligible and i > self._nreplay and self._may_pause():
            raise Pause(self._label(access))
        if i >= MAX_PATH_EVENTS:
            raise ModelError(f"a kernel path ran {MAX_PATH_EVENTS} events without ending: an endless loop (in the "
                             f"kernel, a soft lockup) at {self._label(access)}")
        result = fn(*args)
        self.log.append(result)
        if self.trace is not None:
            self.trace.append((self._label(access), result))
        return result

    def iterations(self):
        """``for (;;)`` of a kernel loop whose passes carry no local from one to the next (each pass reads only
        the world and what it assigns itself): ``for _ in k.iterations():``. Each head records ``LOOP_HEAD`` in
        the log, and ``saved_log()`` drops the finished passes, keeping the first head and the pass in progress.
        Replaying that shorter log runs the same pass with the same results, so the paused path is the same; and
        a path that loops for as long as the machine lets it (``vcpu_run()``: one guest entry per pass) keeps a
        bounded log, so the explorer's state space stays finite. A loop that carries state across passes (a retry
        count, a cursor) must stay a plain ``while``: folding it would forget that state."""
        first = None
        while True:
            here = self._i
            self._i = here + 1
            if here >= self._nreplay:
                self.log.append(LOOP_HEAD)
            elif self._replay[here] != LOOP_HEAD:
                raise ModelError(f"a loop's head replayed over {self._replay[here]!r}: the path's log is not its own")
            if first is None:
                first = here
            else:
                if self._folds is None:
                    self._folds = {}
                self._folds[first] = here
            yield

    def saved_log(self) -> tuple:
        """The log a paused path keeps: ``log`` without the finished passes of its ``iterations()`` loops."""
        if not self._folds:
            return tuple(self.log)
        drop = set()
        for first, latest in self._folds.items():
            drop.update(range(first + 1, latest + 1))
        return tuple(result for i, result in enumerate(self.log) if i not in drop)

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
        return self.pausable and not ctx.irqs_off and not ctx.hardirq and not ctx.serving

    def _label(self, access: str) -> str:
        frame = sys._getframe(1)
        while frame.f_code.co_filename == _THIS_FILE:
            frame = frame.f_back
        return f"{frame.f_code.co_name}: {access}"

    def world(self, template: World) -> World:
        return template._replace(cpus=tuple(self.cpus), tasks=tuple(self.tasks), fpus=tuple(self.fpus),
                                 frames=tuple(self.frames), free=tuple(self.free))

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
        self._event(True, "xsave", self._set_fpstate, fpstate.fpu_id, lambda: self.cpus[self.cpu].regs,
                    fpstate.guest)

    def os_xrstor(self, fpstate: "FpstateRef", mask: int) -> None:
        """XRSTOR(S) of the components in ``mask`` from ``fpstate`` (arch/x86/kernel/fpu/xstate.h);
        ``k.init_fpstate`` loads the init state."""
        self._event(True, "xrstor", self._xrstor, getattr(fpstate, "fpu_id", None), mask,
                    getattr(fpstate, "guest", False))

    def ldmxcsr(self) -> None:
        """Load MXCSR_DEFAULT: the user part of the registers is no longer the task's."""
        self._event(True, "ldmxcsr", self._clobber_user)

    def fninit(self) -> None:
        """FNINIT: likewise clobbers the user part."""
        self._event(True, "fninit", self._clobber_user)

    def kernel_fpu_use(self) -> None:
        """Model primitive: the SIMD instructions a kernel-FPU caller runs between begin and end (crypto, RAID,
        memcpy...). They clobber the user part of the registers; supervisor (CET) state is not touched.

        With config ``softirq=yes`` the computation is two events, its first instruction (``simd``: the section's
        own data, marked by its context, goes into the registers) and its result (``simd result``: the data must
        still be there, else the section computed with corrupted data -- the ``kernel-fpu-data`` violation); an
        interrupt may arrive between them. Its data is dead afterwards (``K``). Without it, one event as before,
        so the core model's state counts stay as they are."""
        if not (self.config is not None and self.config.softirq):
            self._event(True, "simd", self._clobber_user, "simd")
            return
        self._event(True, "simd", self._simd_load)
        self._event(True, "simd result", self._simd_result)

    def _context(self) -> str:
        """Which context this CPU executes in, for kernel-FPU data: a hard interrupt, a softirq, or a task."""
        ctx = self.cpus[self.cpu].ctx
        return "hardirq" if ctx.hardirq else "softirq" if ctx.serving else "task"

    def _simd_load(self) -> None:
        cpu = self.cpus[self.cpu]
        self.findings.extend(oracle.kernel_fpu_context(self.cpu, cpu.ctx, cpu.regs, self._context(), "simd"))
        self._set_cpu("regs", Value(KDATA_PARTS[self._context()], cpu.regs.sup))

    def _simd_result(self) -> None:
        cpu = self.cpus[self.cpu]
        current = self.tasks[cpu.current].name
        self.findings.extend(oracle.kernel_fpu_result(self.cpu, cpu.regs, self._context(), current))
        self._set_cpu("regs", Value(KERNEL_PART, cpu.regs.sup))

    def use_xsave(self) -> bool:
        """``use_xsave()``, arch/x86/kernel/fpu/internal.h: the CPU has XSAVE. A fixed property of the machine
        (config ``fnsave=yes`` is a CPU with neither XSAVE nor FXSR), so reading it is not an event."""
        return not self.config.fnsave

    def fnsave(self, fpstate: "FpstateRef") -> None:
        """``fnsave; fwait`` into ``fpstate`` (arch/x86/kernel/fpu/core.c, the legacy branch of
        ``save_fpregs_to_fpstate()``): saves the registers, then *reinitialises* the FPU as FNINIT does -- the user
        part becomes the init state until something reloads it. Simplification: the model's image is saved whole
        (a real FNSAVE CPU has no XSAVE and so no supervisor state)."""
        self._event(True, "fnsave", self._fnsave, fpstate.fpu_id)

    def frstor(self, fpstate: "FpstateRef") -> None:
        """``frstor()`` from ``fpstate`` (arch/x86/kernel/fpu/legacy.h): reload the legacy (user) state."""
        self._event(True, "frstor", self._xrstor, fpstate.fpu_id, XFEATURE_MASK_USER)

    def _fnsave(self, fpu_id: int) -> None:
        regs = self.cpus[self.cpu].regs
        self._set_fpstate(fpu_id, regs)
        self._set_cpu("regs", Value(INIT.user, regs.sup))

    def os_xrstor_supervisor(self, fpstate: "FpstateRef") -> None:
        """XRSTORS of the supervisor components only (arch/x86/kernel/fpu/xstate.h)."""
        self.os_xrstor(fpstate, XFEATURE_MASK_SUPERVISOR)

    def os_xrstor_safe(self, fpstate: "FpstateRef", mask: int) -> int:
        """XRSTOR(S) from a kernel buffer that reports a #GP instead of oopsing. Simplification: a kernel image
        is always well formed here, so it never fails."""
        self.os_xrstor(fpstate, mask)
        return 0

    def _set_fpstate(self, fpu_id: int, value, guest: bool = False) -> None:
        """Write a memory image: the task's own buffer, or (``guest``) its vCPU's guest buffer."""
        value = value() if callable(value) else value
        if guest and self.fpus[fpu_id].guest is None:
            raise ModelError(f"fpu#{fpu_id}: a write to the guest buffer of a vCPU that was never created")
        self.fpus[fpu_id] = self.fpus[fpu_id]._replace(**{"guest" if guest else "fpstate": value})

    def _buffer(self, fpu_id: int, guest: bool) -> Value:
        fpu = self.fpus[fpu_id]
        if guest and fpu.guest is None:
            raise ModelError(f"fpu#{fpu_id}: a read of the guest buffer of a vCPU that was never created")
        return fpu.guest if guest else fpu.fpstate

    def _xrstor(self, fpu_id, mask: int, guest: bool = False) -> None:
        image, regs = (INIT if fpu_id is None else self._buffer(fpu_id, guest)), self.cpus[self.cpu].regs
        user = image.user if mask & XFEATURE_MASK_USER else regs.user
        sup = image.sup if mask & XFEATURE_MASK_SUPERVISOR else regs.sup
        self._set_cpu("regs", Value(user, sup))

    def _clobber_user(self, use: str | None = None) -> None:
        cpu = self.cpus[self.cpu]
        self.findings.extend(oracle.kernel_fpu_context(self.cpu, cpu.ctx, cpu.regs, self._context(), use))
        self._set_cpu("regs", Value(KERNEL_PART, cpu.regs.sup))

    # ------------------------------------------------------------ execution context

    def preempt_disable(self) -> None:
        self._event(False, "preempt_disable", self._ctx, "preempt", 1)

    def preempt_enable(self) -> None:
        self._event(False, "preempt_enable", self._ctx, "preempt", -1)
        self._point("preempt_enable")  # a preemption point once the count drops to zero

    def local_bh_disable(self) -> None:
        self._event(False, "local_bh_disable", self._ctx, "softirq", 1)

    def local_bh_enable(self) -> None:
        """include/linux/bottom_half.h, kernel/softirq.c ``__local_bh_enable_ip()`` (v6.5-rc7): the count drops
        (preemption stays off meanwhile), and a softirq raised while bottom halves were off is served now, unless
        the CPU is still in interrupt context; then the preemption point. One event for the drop and the kernel's
        test of what it left."""
        if self._event(False, "local_bh_enable", self._bh_enable):
            self._event(False, "preempt_count_inc", self._ctx, "preempt", 1)
            self.do_softirq()
            self._event(False, "preempt_count_dec", self._ctx, "preempt", -1)
        self._point("local_bh_enable")

    def _bh_enable(self) -> bool:
        self._ctx("softirq", -1)
        ctx = self.cpus[self.cpu].ctx
        return ctx.pending and not _in_interrupt(ctx)

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
        """An explicit scheduling point (``cond_resched()``, a sleep in the path: a blocking wait or allocation,
        ``schedule()``): every preemption model may switch tasks here (fpufuzz.ops.SCHEDULING_POINTS)."""
        self._point("cond_resched")

    def might_sleep(self) -> None:
        """``might_sleep()`` (include/linux/kernel.h) where nothing actually blocks: a scheduling point only with
        CONFIG_PREEMPT_VOLUNTARY (``might_resched()`` is ``__cond_resched()`` there) or full preemption."""
        self._point("might_sleep")

    def _point(self, what: str) -> None:
        self._event(True, what, _nothing)

    def in_nmi(self) -> bool:
        return False  # NMIs are not modeled: no modeled NMI handler touches the FPU

    def in_hardirq(self) -> bool:
        return self._event(False, "in_hardirq", lambda: bool(self.cpus[self.cpu].ctx.hardirq))

    def softirq_count(self) -> int:
        """``preempt_count() & SOFTIRQ_MASK``: bottom halves disabled, or a softirq being served."""
        return self._event(False, "softirq_count", lambda: _softirq_count(self.cpus[self.cpu].ctx))

    def in_interrupt(self) -> bool:
        """include/linux/preempt.h: hard interrupt, softirq being served, or bottom halves disabled (NMIs are not
        modeled)."""
        return self._event(False, "in_interrupt", lambda: _in_interrupt(self.cpus[self.cpu].ctx))

    def in_serving_softirq(self) -> bool:
        return self._event(False, "in_serving_softirq", lambda: bool(self.cpus[self.cpu].ctx.serving))

    def irqs_disabled(self) -> bool:
        return self._event(False, "irqs_disabled", lambda: self.cpus[self.cpu].ctx.irqs_off)

    def local_irq_save(self) -> bool:
        """Interrupts off; returns whether they were off before (the flags)."""
        return self._event(False, "local_irq_save", self._irq_save)

    def _irq_save(self) -> bool:
        was_off = self.cpus[self.cpu].ctx.irqs_off
        self._irqs(True)
        return was_off

    def local_irq_restore(self, flags: bool) -> None:
        self._event(False, "local_irq_restore", self._irqs, flags)
        if not flags:
            self._point("local_irq_restore")

    # ------------------------------------------------------------ softirqs (kernel/softirq.c)

    def local_softirq_pending(self) -> int:
        """The pending softirq vectors of this CPU (the model has one, ``NET_RX_SOFTIRQ``)."""
        return self._event(False, "local_softirq_pending",
                           lambda: (1 << NET_RX_SOFTIRQ) if self.cpus[self.cpu].ctx.pending else 0)

    def or_softirq_pending(self, mask: int) -> None:
        """Raise the softirq vectors in ``mask`` on this CPU (``__raise_softirq_irqoff()``'s store)."""
        self._event(False, "or_softirq_pending", self._set_pending, bool(mask & (1 << NET_RX_SOFTIRQ)), True)

    def set_softirq_pending(self, mask: int) -> None:
        self._event(False, "set_softirq_pending", self._set_pending, bool(mask & (1 << NET_RX_SOFTIRQ)), False)

    def _set_pending(self, value: bool, keep: bool) -> None:
        ctx = self.cpus[self.cpu].ctx
        self._set_cpu("ctx", ctx._replace(pending=value or (keep and ctx.pending)))

    def _local_bh_disable_ip(self, ip, cnt: int) -> None:
        """kernel/softirq.c: with ``SOFTIRQ_OFFSET``, this CPU starts serving softirqs (``softirq_handle_begin()``);
        with ``SOFTIRQ_DISABLE_OFFSET`` it is ``local_bh_disable()``."""
        if cnt == SOFTIRQ_DISABLE_OFFSET:
            return self.local_bh_disable()
        self._check_offset(cnt, SOFTIRQ_OFFSET)
        self._event(False, "softirq enter", self._ctx, "serving", 1)

    def _local_bh_enable(self, cnt: int) -> None:
        """kernel/softirq.c: with ``SOFTIRQ_OFFSET``, this CPU stops serving softirqs (``softirq_handle_end()``);
        no pending softirq is looked at and no preemption point follows."""
        self._check_offset(cnt, SOFTIRQ_OFFSET)
        self._event(False, "softirq exit", self._ctx, "serving", -1)

    def preempt_count_sub(self, val: int) -> None:
        """The interrupt exit's ``preempt_count_sub(HARDIRQ_OFFSET)``: the hard interrupt is over; interrupts stay
        off until the return from the interrupt."""
        self._check_offset(val, HARDIRQ_OFFSET)
        self._event(False, "preempt_count_sub HARDIRQ_OFFSET", self._ctx, "hardirq", -1)

    def _check_offset(self, value: int, expected: int) -> None:
        if value != expected:
            raise ModelError(f"preempt_count offset {value:#x} is not modeled here (only {expected:#x} is)")

    def set_irq_regs(self, regs: "PtRegs | None") -> "PtRegs | None":
        """arch/x86/include/asm/irq_regs.h: the interrupted context's registers for this interrupt's handler; returns
        the previous ones. The model keeps only whether they are user mode's."""
        old = self._irq_regs
        self._irq_regs = None if regs is None else regs.user
        return None if old is None else PtRegs(old)

    def get_irq_regs(self) -> "PtRegs | None":
        user = self._event(False, "get_irq_regs", lambda: self._irq_regs)
        return None if user is None else PtRegs(user)

    def user_mode(self, regs: "PtRegs") -> bool:
        """arch/x86/include/asm/ptrace.h: the registers were user mode's."""
        return regs.user

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
        """Model primitive for the return from the interrupt: the context as it was when the interrupt came; a
        softirq raised and left pending stays pending."""
        self._set_cpu("ctx", saved._replace(pending=self.cpus[self.cpu].ctx.pending))

    # ------------------------------------------------------------ task lifecycle

    def alloc_task_struct_node(self, name: str) -> "TaskRef | None":
        """kernel/fork.c: a task_struct for the new task ``name`` (``u<N>`` a user task, ``w<N>`` a user worker),
        from the allocator: the most recently freed one (SLUB hands out its per-CPU freelist LIFO), holding
        whatever its last owner left in it. None if there is none (-ENOMEM)."""
        index = self._event(True, "alloc task_struct", self._alloc_task, name)
        return None if index is None else TaskRef(self, index)

    def _alloc_task(self, name: str) -> int | None:
        if not self.free:
            return None
        index = self.free.pop(0)
        old = self.tasks[index]
        kind = WORKER if name.startswith("w") else USER
        self.tasks[index] = old._replace(name=name, kind=kind, mode=NEW_MODE, cpu=self.cpu, cont=None,
                                         sigpending=False, stop=STOP_NONE)
        return TaskId(index)

    def memcpy_task_struct(self, dst: "TaskRef", src: "TaskRef") -> None:
        """``memcpy(dst, src, arch_task_struct_size)``: the FPU fields the model tracks (thread flags, ``last_cpu``,
        the embedded register image) become the source's. One event: the copy is not interleaved with itself."""
        self._event(True, "memcpy task_struct", self._copy_task, dst.index, src.index)

    def _copy_task(self, dst: int, src: int) -> None:
        source, target = self.tasks[src], self.tasks[dst]
        self.tasks[dst] = target._replace(tif=source.tif)
        # The vCPU's guest buffer is not in the task_struct; the parent is not in KVM_RUN, so fpu->fpstate is its own.
        copied = self.fpus[source.fpu]
        self.fpus[target.fpu] = self.fpus[target.fpu]._replace(last_cpu=copied.last_cpu, fpstate=copied.fpstate)

    def wake_up_new_task(self, p: "TaskRef") -> None:
        """kernel/sched/core.c: the new task becomes runnable on this CPU. A user child will start in
        ``ret_from_fork``; a kernel thread or user worker at the top of its loop."""
        self._event(False, "wake_up_new_task", self._wake_new, p.index)

    def _wake_new(self, index: int) -> None:
        task = self.tasks[index]
        if task.mode != NEW_MODE:
            raise ModelError(f"wake_up_new_task({task.name}): the task is not a new one")
        cont = Cont("ret_from_fork", (), (), "") if task.kind == USER else None  # labelled by fpufuzz.ops
        self.tasks[index] = task._replace(mode=KERNEL_MODE, cpu=self.cpu, cont=cont)

    def do_task_dead(self) -> None:
        """kernel/sched/core.c: the exiting task's last ``__schedule()``. It switches to this CPU's idle task (the
        scheduler's choice; any other task can be switched in from there) and never returns; its task_struct,
        and with it its ``struct fpu``, goes back to the allocator. Simplification: freed at once rather than
        after an RCU grace period -- no fork can tell the difference."""
        prev = self.current
        self._event(False, "set TASK_DEAD", self._set_dead, prev.index)
        idle = next(i for i, t in enumerate(self.tasks) if t.kind == "idle" and t.cpu == self.cpu)
        pausable, self.pausable = self.pausable, False  # interrupts are off through the final switch
        self.context_switch(prev, self.task(idle))
        self.pausable = pausable
        raise TaskDead()

    def _set_dead(self, index: int) -> None:
        self.tasks[index] = self.tasks[index]._replace(mode=DEAD_MODE, cont=None, sigpending=False)
        self.free.insert(0, index)

    # ------------------------------------------------------------ signals and user memory

    def signal_pending(self) -> bool:
        """``TIF_SIGPENDING`` of the current task (a signal, or a requested ptrace stop, is pending)."""
        return self._event(False, "test TIF_SIGPENDING", self._signal_pending)

    def _signal_pending(self) -> bool:
        task = self.tasks[self.cpus[self.cpu].current]
        return task.sigpending or task.stop == STOP_TRAP

    def get_signal(self) -> bool:
        """kernel/signal.c: dequeue the pending signal (one, with a handler installed); True if there was one. A
        requested ptrace stop (``JOBCTL_TRAP_STOP``) is taken first: ``do_jobctl_trap()`` stops the task for its
        tracer, and once it is resumed the loop dequeues again (PTRACE_CONT with no signal: nothing)."""
        got = self._event(False, "get_signal", self._dequeue)
        if got == STOP_TRAP:
            self.do_jobctl_trap()
            got = self._event(False, "get_signal", self._dequeue)
        return got

    def _dequeue(self) -> bool | str:
        index = self.cpus[self.cpu].current
        if self.tasks[index].stop == STOP_TRAP:
            self.tasks[index] = self.tasks[index]._replace(stop=STOP_NONE)
            return STOP_TRAP
        pending = self.tasks[index].sigpending
        self.tasks[index] = self.tasks[index]._replace(sigpending=False)
        return pending

    # ------------------------------------------------------------ ptrace and regsets

    def set_special_state(self, state: str) -> None:
        """``set_special_state(TASK_TRACED)`` (include/linux/sched.h), under the siglock with interrupts off: the
        current task will sleep for its tracer at its next ``schedule()``."""
        if state != TASK_TRACED:
            raise ModelError(f"task state {state!r} is not modeled (only TASK_TRACED is)")
        self._event(False, "set TASK_TRACED", self._set_stop, self.cpus[self.cpu].current, STOP_TRACED)

    def _set_stop(self, index: int, stop: str) -> None:
        self.tasks[index] = self.tasks[index]._replace(stop=stop)

    def schedule(self) -> None:
        """kernel/sched/core.c: the current task, no longer ``TASK_RUNNING``, gives up its CPU: a context switch to
        this CPU's idle task (the scheduler's choice; any task can be switched in from there), and the path sleeps
        here, switched out, until it is woken and switched in again -- on whatever CPU -- and resumes after it."""
        asleep = self._i >= self._nreplay  # live: it goes to sleep now; replayed: it is resuming after the wake-up
        prev = self.current
        idle = next(i for i, t in enumerate(self.tasks) if t.kind == "idle" and t.cpu == self.cpu)
        pausable, self.pausable = self.pausable, False  # interrupts are off through the switch
        self.context_switch(prev, self.task(idle))
        self.pausable = pausable
        self._event(False, "schedule", _nothing)
        if asleep:
            raise Pause(self._label("schedule"))

    def wake_up_state(self, p: "TaskRef", state: str) -> bool:
        """kernel/sched/core.c: wake ``p`` if it sleeps in ``state`` (``__TASK_TRACED``): it is runnable again and
        resumes where it slept once the scheduler switches it in. True if it was woken."""
        return self._event(False, "wake_up_state", self._wake_traced, p.index)

    def _wake_traced(self, index: int) -> bool:
        if self.tasks[index].stop != STOP_TRACED:
            return False
        self._set_stop(index, STOP_NONE)
        return True

    def membuf_for(self, reader: "TaskRef", target: "TaskRef") -> "Membuf":
        """The ``struct membuf`` a regset's get() fills (``regset_get_alloc()``): a kernel buffer about ``target``
        whose contents then reach ``reader``'s user space as they are -- the tracer's PTRACE_GETFPREGS buffer, the
        core file. Allocating it touches no FPU state: not an event."""
        return Membuf(reader.index, target.index)

    def membuf_write(self, to: "Membuf", regs: Value) -> None:
        """``membuf_write()`` (include/linux/regset.h) of an FXSAVE image: what user space will read. The oracle
        checks it against the program state of the task it describes (fpufuzz/oracle.py, ``regset``)."""
        self._event(False, "membuf_write", self._membuf_write, to, regs)

    def _membuf_write(self, to: "Membuf", regs: Value) -> Value:
        self.readouts.append((to.reader, to.target, regs))
        return regs

    def user_regset_copyin(self, ubuf: Value) -> Value:
        """``user_regset_copyin()`` (include/linux/regset.h): copy the new FXSAVE image in from the tracer's buffer.
        The model passes the buffer's contents (``ubuf``, the user part the tracer's program chose) by value; the
        copy may fault and sleep, so it is an interleaving point."""
        return self._event(True, "copy_from_user", lambda: ubuf)

    def memcpy_fxsave(self, fpstate: "FpstateRef", newstate: Value) -> None:
        """``memcpy(&fpstate->regs.fxsave, &newstate, sizeof(newstate))``: the legacy FXSAVE area holds the user part
        (x87/SSE) of the image; the supervisor components elsewhere in the XSAVE buffer are kept. One event."""
        self._event(True, "write fpstate->regs.fxsave", self._write_fxsave, fpstate.fpu_id, newstate)

    def _write_fxsave(self, fpu_id: int, newstate: Value) -> None:
        image = self.fpus[fpu_id].fpstate
        self.fpus[fpu_id] = self.fpus[fpu_id]._replace(fpstate=Value(newstate.user, image.sup))

    def user_sigframe(self) -> "UserBuf | None":
        """The FPU area of the current task's signal frame in user memory, as ``get_sigframe()`` computes it on
        delivery and ``restore_sigcontext()`` reads it from ``sc->fpstate`` on sigreturn (None: NULL)."""
        index = self.cpus[self.cpu].current
        is_null = self._event(False, "read sc->fpstate",
                              lambda: (self.frames[index] is not None and self.frames[index].page == PAGE_NULL))
        return None if is_null else UserBuf(self, index)

    def pagefault_disable(self) -> None:
        """With page faults disabled, a faulting user access returns an error instead of sleeping; the model's
        user-access primitives always behave so (they report faults), so this changes nothing."""

    def pagefault_enable(self) -> None:
        """See ``pagefault_disable()``."""

    def xsave_to_user_sigframe(self, buf: "UserBuf") -> int:
        """XSAVE of the user components into the frame (arch/x86/kernel/fpu/xstate.h): 0, or -EFAULT if the page
        is not present (page faults are disabled around it)."""
        return self._event(True, "xsave to user", self._xsave_user, buf.index)

    def _xsave_user(self, index: int) -> int:
        frame = self.frames[index]
        if frame is None or frame.page != PAGE_PRESENT:
            return -EFAULT
        self.frames[index] = frame._replace(value=self.cpus[self.cpu].regs.user)
        return 0

    def _clear_user(self, buf: "UserBuf", size) -> int:
        """Zero the frame, faulting its page in (with page faults enabled: it may sleep): 0, or the bytes left."""
        return self._event(True, "clear_user", self._fault_in, buf.index, True)

    def fault_in_readable(self, buf: "UserBuf", size) -> int:
        """mm/gup.c: fault the frame's page in: 0, or the bytes that could not be."""
        return self._event(True, "fault_in_readable", self._fault_in, buf.index, False)

    def _fault_in(self, index: int, clear: bool) -> int:
        frame = self.frames[index]
        if frame is None or frame.page not in (PAGE_PRESENT, PAGE_ABSENT):
            return 1
        self.frames[index] = frame._replace(page=PAGE_PRESENT, value=INIT_PART if clear else frame.value)
        return 0

    def xrstor_from_user_sigframe(self, buf: "UserBuf", mask: int) -> int:
        """XRSTOR of the user components from the frame (arch/x86/kernel/fpu/xstate.h): 0, or X86_TRAP_PF if the
        page is not present. A faulting XRSTOR may have modified the registers nevertheless (the hardware
        restores component by component); whether it did is the world's choice, recorded with the frame."""
        return self._event(True, "xrstor from user", self._xrstor_user, buf.index)

    def _xrstor_user(self, index: int) -> int:
        frame, regs = self.frames[index], self.cpus[self.cpu].regs
        if frame is not None and frame.page == PAGE_PRESENT:
            self._set_cpu("regs", Value(frame.value, regs.sup))
            return 0
        if frame is not None and frame.xrstor_modifies:
            self._set_cpu("regs", Value(KERNEL_PART, regs.sup))
        return X86_TRAP_PF

    def _copy_from_user(self, fpstate: "FpstateRef | None", buf: "UserBuf") -> int:
        """Copy the frame into a memory image's user part (``fpstate`` None: only read it, as the ia32 legacy
        header is read into a local). Page faults are enabled: an absent page is faulted in first, which may
        sleep. 0, or the bytes not copied."""
        left = self._event(True, "copy_from_user: fault in", self._fault_in, buf.index, False)
        if left or fpstate is None:
            return left
        return self._event(True, "copy_from_user", self._copy_user, fpstate, buf.index)

    def _copy_user(self, fpstate: "FpstateRef", index: int) -> int:
        image = self._buffer(fpstate.fpu_id, fpstate.guest)
        self._set_fpstate(fpstate.fpu_id, Value(self.frames[index].value, image.sup), fpstate.guest)
        return 0

    # ------------------------------------------------------------ KVM

    def filp_vcpu(self) -> "VcpuRef":
        """``filp->private_data`` of a vCPU file descriptor: the vCPU the current task's program created (one per
        program; KVM refuses ioctls from another mm, so it is never another program's)."""
        return VcpuRef(self, self.cpus[self.cpu].current)

    def vzalloc_guest_fpstate(self, gfpu: "FpuGuestRef") -> None:
        """``vzalloc()`` of a guest buffer, initialised for user state (``fpstate_init_user()``): the init state.
        The model's buffer is the one beside the task's fpu; a new program's vCPU gets it afresh."""
        self._event(True, "vzalloc guest fpstate", self._alloc_guest, gfpu.fpu_id)

    def _alloc_guest(self, fpu_id: int) -> None:
        self.fpus[fpu_id] = self.fpus[fpu_id]._replace(guest=INIT, in_guest=False)

    def vmenter(self) -> int:
        """Model primitive for the VM entry and exit in ``__vmx_vcpu_run()`` (VMLAUNCH/VMRESUME; SVM's VMRUN alike):
        the CPU runs guest code from its registers as they are. The path pauses there, the task in guest mode,
        until the world makes the guest exit (a ``vmexit`` step, whose reason this returns: ``KVM_EXITS``). VMX
        does not switch the XSAVE state: the guest computes in the registers the kernel left it."""
        live = self._i >= self._nreplay
        self._event(False, "vmenter", self._set_mode, GUEST_MODE)
        if live:
            raise Pause(self._label("guest mode"))
        return self._event(False, "vmexit", self._vmexit)

    def _set_mode(self, mode: str) -> None:
        index = self.cpus[self.cpu].current
        self.tasks[index] = self.tasks[index]._replace(mode=mode)

    def _vmexit(self) -> int:
        if self.exit_reason not in KVM_EXITS:
            raise ModelError("the guest runs until a vmexit step makes it exit")
        self._set_mode(KERNEL_MODE)
        return KVM_EXITS[self.exit_reason]

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
setattr(Kernel, "__clear_user", Kernel._clear_user)
setattr(Kernel, "__copy_from_user", Kernel._copy_from_user)
setattr(Kernel, "__local_bh_disable_ip", Kernel._local_bh_disable_ip)
setattr(Kernel, "__local_bh_enable", Kernel._local_bh_enable)


def _nothing() -> None:
    return None


def _softirq_count(ctx: Ctx) -> int:
    return ctx.softirq * SOFTIRQ_DISABLE_OFFSET + ctx.serving * SOFTIRQ_OFFSET


def _in_interrupt(ctx: Ctx) -> bool:
    return bool(ctx.hardirq or _softirq_count(ctx))


class PtRegs:
    """``struct pt_regs *`` of an interrupted context, as the model keeps it: user mode's or the kernel's."""

    __slots__ = ("user",)

    def __init__(self, user: bool):
        self.user = user


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
        """``tsk->flags``, read as a logged event (never an interleaving point): a path resumed after the task_struct
        it read was freed and handed to another task -- a forking parent, whose child has exited since -- reads
        what it read then, as the kernel's own execution did, and does not take another branch on replay."""
        return self.k._event(False, "read tsk->flags", self._flags)

    def _flags(self) -> int:
        kind = self.k.tasks[self.index].kind
        return 0 if kind == USER else PF_USER_WORKER if kind == WORKER else PF_KTHREAD

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
        """``fpu->fpstate``: the task's own buffer, or the guest's while KVM has swapped it in. Reading the pointer
        is an event (so a local keeps what it read across a pause) but not an interleaving point: only the task
        itself changes it, under fpregs_lock(). Without KVM it never changes, and reading it is not an event."""
        k = self.k
        if not getattr(k.config, "kvm", False):
            return FpstateRef(k, self.fpu_id)
        guest = k._event(False, "read fpu->fpstate", lambda: k.fpus[self.fpu_id].in_guest)
        return FpstateRef(k, self.fpu_id, guest)

    @fpstate.setter
    def fpstate(self, fpstate: "FpstateRef") -> None:
        if fpstate.fpu_id != self.fpu_id:
            raise ModelError("fpu->fpstate can point at the task's own buffer or its vCPU's guest buffer only")
        self.k._event(True, "write fpu->fpstate", self._set_in_guest, fpstate.guest)

    def _set_in_guest(self, guest: bool) -> None:
        self.k.fpus[self.fpu_id] = self.k.fpus[self.fpu_id]._replace(in_guest=guest)

    def _task_fpstate(self) -> "FpstateRef":
        """``fpu->__task_fpstate``. Simplification: the only buffer KVM ever parks there is the task's own (one vCPU
        per task, no nesting), so reading it gives that buffer and writing it records nothing."""
        return FpstateRef(self.k, self.fpu_id)

    def _set_task_fpstate(self, fpstate) -> None:
        if fpstate is not None and (fpstate.fpu_id, fpstate.guest) != (self.fpu_id, False):
            raise ModelError("fpu->__task_fpstate can hold the task's own buffer only")

    def __eq__(self, other) -> bool:
        return isinstance(other, FpuRef) and other.fpu_id == self.fpu_id

    def __hash__(self) -> int:
        return hash(("fpu", self.fpu_id))


class FpstateRef:
    """``struct fpstate *``: ``fpstate.regs`` is the in-memory register image; a task's own buffer, or (``guest``)
    the guest buffer of its vCPU."""

    __slots__ = ("k", "fpu_id", "guest")

    def __init__(self, k: Kernel, fpu_id: int, guest: bool = False):
        self.k, self.fpu_id, self.guest = k, fpu_id, guest

    @property
    def regs(self) -> Value:
        return self.k._event(True, "read fpstate->regs", self.k._buffer, self.fpu_id, self.guest)

    @regs.setter
    def regs(self, value: Value) -> None:
        self.k._event(True, "write fpstate->regs", self.k._set_fpstate, self.fpu_id, value, self.guest)

    @property
    def is_confidential(self) -> bool:
        """Simplification: confidential guests (SEV-ES, TDX: the firmware saves and restores their state) are not
        modeled."""
        return False

    @property
    def in_use(self) -> bool:
        """``fpstate->in_use``: a guest buffer is in use while it is attached (``fpu->fpstate`` points at it)."""
        return self.guest and self.k._event(False, "read fpstate->in_use", lambda: self.k.fpus[self.fpu_id].in_guest)

    @in_use.setter
    def in_use(self, value: bool) -> None:
        """Simplification: derived from ``fpu->fpstate`` (one vCPU per task), so setting it records nothing."""

    def __eq__(self, other) -> bool:
        return isinstance(other, FpstateRef) and (other.fpu_id, other.guest) == (self.fpu_id, self.guest)

    def __hash__(self) -> int:
        return hash(("fpstate", self.fpu_id, self.guest))


class VcpuRef:
    """``struct kvm_vcpu *``: ``vcpu.arch.guest_fpu`` is its ``struct fpu_guest``. A vCPU belongs to one task."""

    __slots__ = ("k", "index")

    def __init__(self, k: Kernel, index: int):
        self.k, self.index = k, index

    @property
    def arch(self) -> "VcpuRef":
        return self

    @property
    def guest_fpu(self) -> "FpuGuestRef":
        return FpuGuestRef(self.k, self.k.tasks[self.index].fpu)


class FpuGuestRef:
    """``struct fpu_guest *``: ``gfpu.fpstate`` is the guest buffer (allocated once by fpu_alloc_guest_fpstate())."""

    __slots__ = ("k", "fpu_id")

    def __init__(self, k: Kernel, fpu_id: int):
        self.k, self.fpu_id = k, fpu_id

    @property
    def fpstate(self) -> FpstateRef:
        return FpstateRef(self.k, self.fpu_id, True)


class UserBuf:
    """``void __user *``: the FPU area of a task's signal frame; reached only through the user-access
    primitives."""

    __slots__ = ("k", "index")

    def __init__(self, k: Kernel, index: int):
        self.k, self.index = k, index

    def __eq__(self, other) -> bool:
        return isinstance(other, UserBuf) and other.index == self.index

    def __hash__(self) -> int:
        return hash(("user", self.index))


class Membuf:
    """``struct membuf``: a kernel buffer a regset's get() writes, about task slot ``target``, whose contents go to
    the user space of task slot ``reader``."""

    __slots__ = ("reader", "target")

    def __init__(self, reader: int, target: int):
        self.reader, self.target = reader, target


class _InitFpstate:
    """``init_fpstate``: a constant; reading it is not an event."""

    regs = INIT


_INIT_FPSTATE = _InitFpstate()


setattr(FpuRef, "__task_fpstate", property(FpuRef._task_fpstate, FpuRef._set_task_fpstate))
