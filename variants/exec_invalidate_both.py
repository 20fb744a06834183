"""Re: [PATCH] x86: Use __fpu_invalidate_fpregs_state() in exec (invalidate both)

Author: Lijun Pan <lijun.pan@intel.com>
Date: 2023-08-18
Link: https://lore.kernel.org/lkml/20230818170305.502891-1-rick.p.edgecombe@intel.com/

The reply's alternative: keep ``fpu__drop()`` and add ``__fpu_invalidate_fpregs_state()``, so both sides of
``fpregs_state_valid()`` are broken, "to be more rigorous and to prevent from future corner case".
"""

from fpufuzz.runtime import TIF_NEED_FPU_LOAD

EXPECT = "clean"


def fpu_reset_fpregs(k):
    """arch/x86/kernel/fpu/core.c (v6.5-rc7 plus the reply's one-line addition)."""
    fpu = k.current.thread.fpu

    k.fpregs_lock()
    k.fpu__drop(fpu)
    k.__fpu_invalidate_fpregs_state(fpu)
    # This does not change the actual hardware registers. It just resets the memory image and sets
    # TIF_NEED_FPU_LOAD so a subsequent return to usermode will reload the registers from the memory image.
    fpu.fpstate.regs = k.init_fpstate.regs
    k.set_thread_flag(TIF_NEED_FPU_LOAD)
    k.fpregs_unlock()
