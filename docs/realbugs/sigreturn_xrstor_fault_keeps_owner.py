"""x86/fpu: Invalidate FPU state after a failed XRSTOR from a user buffer

Author: Andy Lutomirski <luto@kernel.org>
Date: 2021-06-08
Commit: d8778e393afa421f1f117471144f8ce6deb6953a
Link: https://lkml.kernel.org/r/20210608144345.758116583@linutronix.de
Fixes: 1d731e731c4c ("x86/fpu: Add a fastpath to __fpu__restore_sig()", 2019, v5.2)

The state *before* this fix, on top of ``exec_invalidate_last_cpu``: the sigreturn fast path of v5.2 to v5.13.
The XRSTOR straight from the user's frame runs under ``fpregs_lock()`` whatever ``TIF_NEED_FPU_LOAD`` says, and
when it faults the lock is dropped and the fault handled without touching this CPU's owner tag. Intel and AMD allow a
faulting XRSTOR to have modified the registers; with TIF set they were not the sigreturning task's but another
task's, preserved there for it (``fpu_fpregs_owner_ctx`` and its ``last_cpu`` both still name it). While the page
is faulted in, the sigreturning task can be preempted, the victim scheduled back on this CPU, and it skips its
restore and enters user mode with part of the frame's contents in its registers. The fix drops the owner tag
(``__cpu_invalidate_fpregs_state()``) on a failed XRSTOR when TIF is set, the v6.5-rc7 code.

Adapted to the v6.5-rc7 shape, where the fast path is ``restore_fpregs_from_user()`` with the fault-in and retry
inside it (2021, after the fix); the 2019 code fell back to the slow path on a fault instead of retrying, which
changes nothing here: the victim can run wherever the failing task sleeps next.
"""

from fpufuzz.runtime import TIF_NEED_FPU_LOAD, X86_TRAP_PF, XFEATURE_MASK_USER

BASE = "exec_invalidate_last_cpu"
FAMILIES = ("signals",)  # the patch is to sigreturn
EXPECT = "violates user-regs"
FIXED_BY = "exec_invalidate_last_cpu"


def restore_fpregs_from_user(k, buf, xrestore, fx_only):
    """arch/x86/kernel/fpu/signal.c (v6.5-rc7) without the ``__cpu_invalidate_fpregs_state()`` that d8778e393afa
    added on a failed XRSTOR."""
    fpu = k.current.thread.fpu

    while True:
        k.fpregs_lock()
        k.pagefault_disable()
        ret = k.__restore_fpregs_from_user(buf, XFEATURE_MASK_USER, xrestore, fx_only)
        k.pagefault_enable()

        if ret:
            k.fpregs_unlock()

            # Only a page fault can be resolved.
            if ret != X86_TRAP_PF:
                return False
            if not k.fault_in_readable(buf, 0):
                continue
            return False

        # The supervisor state was saved by whatever set TIF; the user part came from the frame.
        if k.test_thread_flag(TIF_NEED_FPU_LOAD):
            k.os_xrstor_supervisor(fpu.fpstate)

        k.fpregs_mark_activate()
        k.fpregs_unlock()
        return True
