"""x86/fpu: Do not mark the registers active in fpu__clear_user_states()

Author: fpufuzz developers (a mistake as a patch author would make it)
Date: 2026-11-27
Link: https://lore.kernel.org/lkml/?q=%22fpu__clear_user_states%22

As ``exec_invalidate_last_cpu``, but ``fpu__clear_user_states()`` loads the init user state into the registers
and stops there, on the reasoning that the signal path has just made the registers live anyway. It has not
always: the frame is written with the lock dropped afterwards, so the task may have been preempted and moved,
and then ``TIF_NEED_FPU_LOAD`` is set. The exit to user mode then reloads the stale memory image over the init
state: the handler starts with the interrupted program's registers (and a failed sigreturn does not reset).
"""

from fpufuzz.runtime import XFEATURE_MASK_USER

BASE = "exec_invalidate_last_cpu"
FAMILIES = ("signals",)  # the patch is to signal delivery and sigreturn
EXPECT = "violates user-regs"
FIXED_BY = "exec_invalidate_last_cpu"


def fpu__clear_user_states(k, fpu):
    """arch/x86/kernel/fpu/core.c (v6.5-rc7) without ``fpregs_mark_activate()``."""
    k.WARN_ON_FPU(fpu != k.current.thread.fpu)

    k.fpregs_lock()
    if not k.fpregs_state_valid(fpu, k.smp_processor_id()):
        k.os_xrstor_supervisor(fpu.fpstate)

    k.restore_fpregs_from_init_fpstate(XFEATURE_MASK_USER)
    k.fpregs_unlock()
