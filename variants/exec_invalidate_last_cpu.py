"""x86/fpu: Invalidate FPU state correctly on exec()

Author: Rick Edgecombe <rick.p.edgecombe@intel.com>
Date: 2023-08-18
Commit: 1f69383b203e28cf8a4ca9570e572da1699f76cd
Link: https://lore.kernel.org/lkml/20230818170305.502891-1-rick.p.edgecombe@intel.com/
Fixes: the exec() reset of every kernel since the deferred FPU restore (v5.2)

The patch that went upstream just before v6.5 (posted as "x86: Use __fpu_invalidate_fpregs_state() in exec").
exec() changes the task's *memory image*, so it must break the proof on the task's side: ``last_cpu = -1``
invalidates every CPU at once, where ``fpu__drop()`` reached only the CPU exec happened to run on.
"""

from fpufuzz.runtime import TIF_NEED_FPU_LOAD

EXPECT = "clean"


def fpu_reset_fpregs(k):
    """arch/x86/kernel/fpu/core.c (v6.5, after 1f69383b203e)."""
    fpu = k.current.thread.fpu

    k.fpregs_lock()
    k.__fpu_invalidate_fpregs_state(fpu)
    # This does not change the actual hardware registers. It just resets the memory image and sets
    # TIF_NEED_FPU_LOAD so a subsequent return to usermode will reload the registers from the memory image.
    fpu.fpstate.regs = k.init_fpstate.regs
    k.set_thread_flag(TIF_NEED_FPU_LOAD)
    k.fpregs_unlock()
