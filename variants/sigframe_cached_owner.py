"""x86/fpu: Don't cache access to fpu_fpregs_owner_ctx

Author: Sebastian Andrzej Siewior <bigeasy@linutronix.de>
Date: 2019-11-28
Commit: 59c4bd853abcea95eccc167a7d7fd5f1a5f47b98
Link: https://lkml.kernel.org/r/20191128085306.hxfa2o3knqtu4wfn@linutronix.de
Link: https://bugzilla.kernel.org/show_bug.cgi?id=205663
Fixes: 5f409e20b794 ("x86/fpu: Defer FPU state load until return to userspace", 2019, v5.2)

The state *before* this fix, on top of ``exec_invalidate_last_cpu``: ``fpregs_state_valid()`` read the owner tag
with ``this_cpu_read_stable()``, which tells the compiler the value never changes, so it may load it once and
reuse it. Before the deferred restore that was true for a task's lifetime; since then the tag changes whenever
the task is preempted. gcc 9 hoisted the load out of the retry loop of ``copy_fpstate_to_sigframe()``: the
signal frame's XSAVE faults, the lock is dropped, the task is preempted and another task takes the FPU on this
CPU; the task comes back here with TIF set, the retry's ``fpregs_state_valid()`` compares against the tag read
before the first try, skips the restore, and the frame receives the other task's registers (Go's runtime tests
found it as corrupted floating point after signals, v5.2 to v5.4). The fix reads the tag with ``this_cpu_read()``,
as v6.5-rc7 does.

The model has no compiler, so the variant writes out what gcc 9 made of ``copy_fpstate_to_sigframe()``, as the
commit message shows it: the owner tag loaded once at the top, the inlined ``fpregs_restore_userregs()`` (then
``__fpregs_load_activate()``) comparing with that load. It is the one place the hoisting was reported;
``this_cpu_read_stable()`` elsewhere is not modeled (a compiler may or may not have cached it there).
"""

from fpufuzz.runtime import PF_KTHREAD, PF_USER_WORKER, TIF_NEED_FPU_LOAD, XFEATURE_MASK_FPSTATE, fpu_fpregs_owner_ctx

BASE = "exec_invalidate_last_cpu"
FAMILIES = ("signals",)  # the bug is in signal delivery
EXPECT = "violates sigframe"
FIXED_BY = "exec_invalidate_last_cpu"


def copy_fpstate_to_sigframe(k, buf, buf_fx, size, pkru):
    """arch/x86/kernel/fpu/signal.c (v6.5-rc7) as gcc 9 compiled it before 59c4bd853abc: the load of
    ``fpu_fpregs_owner_ctx`` in the inlined ``fpregs_state_valid()`` hoisted above the retry loop."""
    fpu = k.current.thread.fpu
    owner = k.this_cpu_read(fpu_fpregs_owner_ctx)  # this_cpu_read_stable(), loaded once and kept on the stack

    while True:
        k.fpregs_lock()
        if k.test_thread_flag(TIF_NEED_FPU_LOAD):
            # fpregs_restore_userregs(), inlined, with its fpregs_state_valid() using the value loaded above.
            cpu = k.smp_processor_id()
            if not k.WARN_ON_ONCE(k.current.flags & (PF_KTHREAD | PF_USER_WORKER)):
                if not (fpu == owner and cpu == fpu.last_cpu):
                    k.restore_fpregs_from_fpstate(fpu.fpstate, XFEATURE_MASK_FPSTATE)
                    k.fpregs_activate(fpu)
                    fpu.last_cpu = cpu
                k.clear_thread_flag(TIF_NEED_FPU_LOAD)

        k.pagefault_disable()
        ret = k.copy_fpregs_to_sigframe(buf_fx, pkru)
        k.pagefault_enable()
        k.fpregs_unlock()

        if not ret:
            return True
        if k.__clear_user(buf_fx, size):
            return False
