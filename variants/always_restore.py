"""Control: fpregs_restore_userregs() ignores the lazy-restore cache

Author: fpufuzz developers
Date: 2026-11-26
Link: docs/variants.md#controls

As ``exec_invalidate_last_cpu``, but every return to user space reloads the registers from memory, as kernels
did before the deferred restore. Slower, never wrong: it must be clean. It is the check against false alarms:
the oracle must not mistake a different (here: no) use of the cache for a bug, even though the owner and
``last_cpu`` bookkeeping it leaves behind differ from the baseline's.
"""

from fpufuzz.runtime import TIF_NEED_FPU_LOAD, XFEATURE_MASK_FPSTATE

BASE = "exec_invalidate_last_cpu"
EXPECT = "clean"
UNREACHABLE = {"restore-skipped": "this variant never skips a restore"}


def fpregs_restore_userregs(k):
    """arch/x86/kernel/fpu/context.h (v6.5-rc7) without the ``fpregs_state_valid()`` shortcut."""
    fpu = k.current.thread.fpu
    cpu = k.smp_processor_id()

    k.restore_fpregs_from_fpstate(fpu.fpstate, XFEATURE_MASK_FPSTATE)
    k.fpregs_activate(fpu)
    fpu.last_cpu = cpu
    k.clear_thread_flag(TIF_NEED_FPU_LOAD)
