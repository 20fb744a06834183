"""The kernel paths around the FPU functions: syscall entry and exit, exec, the context switch, interrupts.

These are the generic kernel's code reduced to their FPU-relevant lines, with the kernel's names; like
fpufuzz/kernel.py they are part of the baseline a variant may override. Scheduling points that the real code
has for reasons outside the FPU (``sched_exec()`` balancing an exec'ing task onto another CPU, page faults while
mapping the new image, the ``need_resched`` check on the way out) appear as ``k.cond_resched()``.

A path that ends in user mode ends in ``syscall_exit_to_user_mode()`` or ``irqentry_exit_to_user_mode()``:
nothing else calls ``k.return_to_user_mode()``, so nothing else reaches user mode.
"""

from __future__ import annotations

from fpufuzz.runtime import _TIF_NEED_FPU_LOAD

# ---------------------------------------------------------------- arch/x86/entry/common.c


def do_syscall_64(k, nr):
    """A system call from user mode. arch/x86/entry/common.c (v6.5-rc7). ``nr`` names the syscall's body."""
    k.syscall_enter_from_user_mode()
    getattr(k, nr)()
    k.syscall_exit_to_user_mode()


def ret_from_fork(k):
    """A new task's first return to user mode. arch/x86/entry/entry_64.S, kernel/entry/common.c (v6.5-rc7)."""
    k.syscall_exit_to_user_mode()


# ---------------------------------------------------------------- kernel/entry/common.c


def syscall_enter_from_user_mode(k):
    """kernel/entry/common.c (v6.5-rc7). No FPU action: since the 2019 deferred-restore series the registers
    stay as user space left them until something in the kernel needs them."""


def syscall_exit_to_user_mode(k):
    """kernel/entry/common.c (v6.5-rc7): exit work with interrupts off, then back to user mode."""
    k.exit_to_user_mode_loop()
    k.local_irq_disable()
    k.exit_to_user_mode_prepare()
    k.return_to_user_mode()


def irqentry_exit_to_user_mode(k):
    """The return to user mode of an interrupt or exception that came from user mode, and of a user task that
    was preempted there. kernel/entry/common.c (v6.5-rc7)."""
    k.exit_to_user_mode_loop()
    k.local_irq_disable()
    k.exit_to_user_mode_prepare()
    k.return_to_user_mode()


def exit_to_user_mode_loop(k):
    """kernel/entry/common.c (v6.5-rc7): with ``_TIF_NEED_RESCHED`` set, ``schedule()`` runs here with interrupts
    on. Simplification: one pass, as a scheduling point; the flags are read after it, as the kernel re-reads
    them after every pass."""
    k.cond_resched()


def exit_to_user_mode_prepare(k):
    """kernel/entry/common.c (v6.5-rc7), interrupts off."""
    ti_work = k.read_thread_flags()
    k.arch_exit_to_user_mode_prepare(ti_work)


def arch_exit_to_user_mode_prepare(k, ti_work):
    """The FPU lines of arch/x86/include/asm/entry-common.h (v6.5-rc7): load the user registers if
    ``TIF_NEED_FPU_LOAD`` says the task's memory image is the one to use."""
    k.fpregs_assert_state_consistent()
    if ti_work & _TIF_NEED_FPU_LOAD:
        k.switch_fpu_return()


# ---------------------------------------------------------------- fs/exec.c and kernel/sched/core.c


def sys_execve(k):
    """exec(): fs/exec.c (v6.5-rc7) ``do_execveat_common()`` → ``bprm_execve()`` → ``load_elf_binary()``, reduced
    to the FPU reset and the scheduling points around it."""
    k.sched_exec()
    k.begin_new_exec()
    k.setup_new_exec()


def sys_getpid(k):
    """A system call that does not touch the FPU (kernel/sys.c): the common case, where the task returns to user
    space with ``TIF_NEED_FPU_LOAD`` still clear and its registers live."""


def sched_exec(k):
    """kernel/sched/core.c (v6.5-rc7): exec is a load-balancing point; the task may move to another CPU here."""
    k.cond_resched()


def begin_new_exec(k):
    """fs/exec.c (v6.5-rc7): the point of no return; ``flush_thread()`` resets the thread's FPU."""
    k.flush_thread()


def flush_thread(k):
    """arch/x86/kernel/process.c (v6.5-rc7), FPU line only."""
    k.fpu_flush_thread()


def setup_new_exec(k):
    """fs/exec.c (v6.5-rc7), then the rest of ``load_elf_binary()``: mapping the new image may sleep."""
    k.cond_resched()


def context_switch(k, prev, next):
    """kernel/sched/core.c (v6.5-rc7) ``context_switch()`` → ``switch_to()`` → ``__switch_to()``, with interrupts
    off until ``finish_task_switch()``."""
    k.local_irq_disable()
    k.__switch_to(prev, next)
    k.local_irq_enable()


# ---------------------------------------------------------------- kernel-mode FPU users


def simd_work(k):
    """Model path: kernel code that uses SIMD when it may (crypto, RAID, checksums), asking first as real callers
    do (``may_use_simd()`` is ``irq_fpu_usable()`` on x86). Used from a syscall, a kernel thread and an
    interrupt handler."""
    if k.irq_fpu_usable():
        k.kernel_fpu_begin()
        k.kernel_fpu_use()
        k.kernel_fpu_end()


def kthread_work(k, work):
    """Model path: one round of a kernel thread's loop (kernel/kthread.c), doing ``work``."""
    getattr(k, work)()


def handle_irq(k, work):
    """Model path: a hard interrupt's handler doing ``work``; it runs to completion with interrupts off."""
    getattr(k, work)()
